use super::{Db, StoreError, StoreResult, Work, new_id, on_db, on_work};
use crate::domain::Tenant;

/// How long a rotated SCIM token keeps working unless the tenant chose otherwise.
pub const DEFAULT_OVERLAP_SECS: i64 = 3600;

pub struct NewAdmin<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub source: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallGate {
    /// The first-run page: fails with `Conflict(Install)` when the install already has an
    /// organisation, even under a concurrent second attempt.
    FirstRun,
    /// The operator CLI may always add organisations; it also closes the first-run page.
    Operator,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    slug: String,
    name: String,
    provisioning_enabled: bool,
    token_overlap_secs: i64,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: r.id,
            slug: r.slug,
            name: r.name,
            provisioning_enabled: r.provisioning_enabled,
            token_overlap_secs: r.token_overlap_secs,
            created_at: r.created_at,
        }
    }
}

pub async fn install_completed(db: &Db) -> StoreResult<bool> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM install")
        .fetch_one(p)
        .await)?;
    Ok(n > 0)
}

/// Creates an organisation and its first admin in one transaction. `slug_base` gets a numeric
/// suffix when taken. Returns the tenant.
pub async fn create_with_admin(
    db: &Db,
    gate: InstallGate,
    name: &str,
    slug_base: &str,
    admin: NewAdmin<'_>,
    now: i64,
) -> StoreResult<Tenant> {
    let mut w = db.begin_work().await?;
    let tenant = create_with_admin_in(&mut w, gate, name, slug_base, admin, now).await?;
    w.commit().await?;
    Ok(tenant)
}

/// [`create_with_admin`] inside a unit of work (with its audit entry, say).
pub async fn create_with_admin_in(
    w: &mut Work,
    gate: InstallGate,
    name: &str,
    slug_base: &str,
    admin: NewAdmin<'_>,
    now: i64,
) -> StoreResult<Tenant> {
    let tenant_id = new_id();
    let user_id = new_id();
    let email_lc = admin.email.to_lowercase();
    on_work!(w, |tx| {
        let closed = sqlx::query(
            "INSERT INTO install (id, completed_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gate == InstallGate::FirstRun && closed == 0 {
            return Err(StoreError::Conflict(super::UniqueKey::Install));
        }
        let mut slug = slug_base.to_string();
        for n in 2.. {
            let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE slug = $1")
                .bind(&slug)
                .fetch_one(&mut *tx)
                .await?;
            if taken == 0 {
                break;
            }
            slug = format!("{slug_base}-{n}");
        }
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, provisioning_enabled, created_at) VALUES ($1, $2, $3, FALSE, $4)",
        )
        .bind(&tenant_id)
        .bind(&slug)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO users (id, tenant_id, user_name, user_name_lc, display_name, email, email_lc, \
             active, is_admin, password_hash, resource, source, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, TRUE, $8, '{}', $9, 1, $10, $10)",
        )
        .bind(&user_id)
        .bind(&tenant_id)
        .bind(admin.email)
        .bind(&email_lc)
        .bind(admin.name)
        .bind(admin.email)
        .bind(&email_lc)
        .bind(admin.password_hash)
        .bind(admin.source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(Tenant {
            id: tenant_id,
            slug,
            name: name.to_string(),
            provisioning_enabled: false,
            token_overlap_secs: DEFAULT_OVERLAP_SECS,
            created_at: now,
        })
    })
}

pub async fn by_id(db: &Db, id: &str) -> StoreResult<Tenant> {
    let row: TenantRow = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT id, slug, name, provisioning_enabled, token_overlap_secs, created_at FROM tenants WHERE id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    })?;
    Ok(row.into())
}

pub async fn by_slug(db: &Db, slug: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<TenantRow> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT id, slug, name, provisioning_enabled, token_overlap_secs, created_at FROM tenants WHERE slug = $1"
    )
    .bind(slug)
    .fetch_optional(p)
    .await
    })?;
    Ok(row.map(Into::into))
}

pub async fn set_provisioning(w: &mut Work, tenant_id: &str, enabled: bool) -> StoreResult<()> {
    set_value(
        w,
        "UPDATE tenants SET provisioning_enabled = $1 WHERE id = $2",
        enabled,
        tenant_id,
    )
    .await?;
    w.changes_credentials();
    Ok(())
}

/// Sets one setting of an organisation in the unit of work: `sql` updates `tenants` with the
/// value at `$1` for the organisation at `$2`. `NotFound` when there is no such organisation.
pub(super) async fn set_value<T>(
    w: &mut Work,
    sql: &'static str,
    value: T,
    tenant_id: &str,
) -> StoreResult<()>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'q> sqlx::Encode<'q, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + Send
        + 'static,
{
    let n = on_work!(w, |c| sqlx::query(sql)
        .bind(value)
        .bind(tenant_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// What issuing a first-run setup code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupCodeIssue {
    /// The given code is now the live one.
    Issued,
    /// Another code is live (issued by another instance or an earlier start) until then; the
    /// given code was not stored.
    AlreadyLive { expires_at: i64 },
}

/// What the setup page learns about the code it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupCodeState {
    /// The live code, not expired.
    Live,
    /// Was issued, and expired at this time.
    Expired { expired_at: i64 },
    /// Was issued, but a newer code replaced it (`bitabiz setup-code`).
    Replaced,
    /// Never issued.
    Unknown,
}

const PUT_LIVE_CODE: &str = "INSERT INTO setup_code_live (id, code_hash, created_at, expires_at) \
     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET code_hash = excluded.code_hash, \
     created_at = excluded.created_at, expires_at = excluded.expires_at";

/// Makes `code_hash` the live setup code until `expires_at`, unless another code is still live:
/// one conditional upsert of the single live-code row, so of several instances starting
/// together exactly one issues its code.
pub async fn issue_setup_code(
    db: &Db,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<SetupCodeIssue> {
    put_setup_code(db, code_hash, now, expires_at, false).await
}

/// Makes `code_hash` the live setup code until `expires_at` whatever code was live (the
/// operator's `bitabiz setup-code`); the code it replaces stops working.
pub async fn replace_setup_code(
    db: &Db,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    put_setup_code(db, code_hash, now, expires_at, true).await?;
    Ok(())
}

async fn put_setup_code(
    db: &Db,
    code_hash: &str,
    now: i64,
    expires_at: i64,
    replace: bool,
) -> StoreResult<SetupCodeIssue> {
    let upsert = if replace {
        PUT_LIVE_CODE.to_string()
    } else {
        format!("{PUT_LIVE_CODE} WHERE setup_code_live.expires_at <= $2")
    };
    // A unit of work holds SQLite's write lock from the start (no read-then-upgrade). On
    // PostgreSQL the upsert locks the live-code row; a concurrent issuer waits for it, then
    // finds a live code and does nothing.
    let mut w = db.begin_work().await?;
    let issued = on_work!(w, |tx| {
        let taken = sqlx::query(sqlx::AssertSqlSafe(upsert.as_str()))
            .bind(code_hash)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            let live: i64 =
                sqlx::query_scalar("SELECT expires_at FROM setup_code_live WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            SetupCodeIssue::AlreadyLive { expires_at: live }
        } else {
            sqlx::query(
                "INSERT INTO setup_codes (code_hash, created_at, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(code_hash)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            SetupCodeIssue::Issued
        }
    });
    w.commit().await?;
    Ok(issued)
}

/// Whether `code_hash` is the live setup code at `now`, and if not, why not.
pub async fn setup_code_state(db: &Db, code_hash: &str, now: i64) -> StoreResult<SetupCodeState> {
    let row: Option<(i64, Option<i64>)> = on_db!(db, |p| sqlx::query_as(
        "SELECT s.expires_at, l.expires_at FROM setup_codes s \
         LEFT JOIN setup_code_live l ON l.code_hash = s.code_hash WHERE s.code_hash = $1"
    )
    .bind(code_hash)
    .fetch_optional(p)
    .await)?;
    Ok(match row {
        None => SetupCodeState::Unknown,
        Some((_, Some(live_until))) if live_until > now => SetupCodeState::Live,
        Some((_, Some(live_until))) => SetupCodeState::Expired {
            expired_at: live_until,
        },
        Some((until, None)) if until <= now => SetupCodeState::Expired { expired_at: until },
        Some((_, None)) => SetupCodeState::Replaced,
    })
}

pub async fn set_token_overlap(w: &mut Work, tenant_id: &str, secs: i64) -> StoreResult<()> {
    set_value(
        w,
        "UPDATE tenants SET token_overlap_secs = $1 WHERE id = $2",
        secs,
        tenant_id,
    )
    .await
}
