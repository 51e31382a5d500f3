use super::{Db, StoreError, StoreResult, execute, new_id, on_db};
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
    let tenant_id = new_id();
    let user_id = new_id();
    let email_lc = admin.email.to_lowercase();
    on_db!(db, |p| {
        let mut tx = p.begin().await?;
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
        tx.commit().await?;
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

pub async fn set_provisioning(db: &Db, tenant_id: &str, enabled: bool) -> StoreResult<()> {
    let n = execute!(
        db,
        sqlx::query("UPDATE tenants SET provisioning_enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(tenant_id)
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    super::gate_cache::credentials_changed();
    Ok(())
}

pub async fn save_setup_code(db: &Db, code_hash: &str, now: i64) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("INSERT INTO setup_codes (code_hash, created_at) VALUES ($1, $2)")
            .bind(code_hash)
            .bind(now)
    )?;
    Ok(())
}

pub async fn setup_code_exists(db: &Db, code_hash: &str) -> StoreResult<bool> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM setup_codes WHERE code_hash = $1"
    )
    .bind(code_hash)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

pub async fn set_token_overlap(db: &Db, tenant_id: &str, secs: i64) -> StoreResult<()> {
    let n = execute!(
        db,
        sqlx::query("UPDATE tenants SET token_overlap_secs = $1 WHERE id = $2")
            .bind(secs)
            .bind(tenant_id)
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
