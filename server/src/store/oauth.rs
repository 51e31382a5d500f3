//! OAuth 2.0 client credentials for the SCIM endpoint: client secrets, the access tokens issued
//! for them, and the organisation's credential-lifetime settings. Secrets and access tokens are
//! looked up by the SHA-256 of the presented value; nothing here ever sees them in clear.

use super::tokens::GateRow;
use super::{Db, StoreError, StoreResult, Work, execute, new_id, on_db, on_work};

/// The organisation's credential-lifetime settings.
#[derive(sqlx::FromRow, Debug, Clone, Copy, PartialEq)]
pub struct Lifetimes {
    pub access_token_lifetime_secs: i64,
    /// `None`: bearer tokens never expire on their own (the default).
    pub bearer_max_lifetime_days: Option<i64>,
}

pub async fn lifetimes(db: &Db, tenant_id: &str) -> StoreResult<Lifetimes> {
    let row = on_db!(db, |p| sqlx::query_as(
        "SELECT access_token_lifetime_secs, bearer_max_lifetime_days FROM tenants WHERE id = $1"
    )
    .bind(tenant_id)
    .fetch_one(p)
    .await)?;
    Ok(row)
}

pub async fn set_access_token_lifetime(
    w: &mut Work,
    tenant_id: &str,
    secs: i64,
) -> StoreResult<()> {
    super::tenants::set_value(
        w,
        "UPDATE tenants SET access_token_lifetime_secs = $1 WHERE id = $2",
        secs,
        tenant_id,
    )
    .await?;
    w.changes_credentials();
    Ok(())
}

pub async fn set_bearer_max_lifetime(
    w: &mut Work,
    tenant_id: &str,
    days: Option<i64>,
) -> StoreResult<()> {
    super::tenants::set_value(
        w,
        "UPDATE tenants SET bearer_max_lifetime_days = $1 WHERE id = $2",
        days,
        tenant_id,
    )
    .await?;
    w.changes_credentials();
    Ok(())
}

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub id: String,
    pub tenant_id: String,
    pub hint: String,
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
    /// The expiry the admin chose.
    pub valid_until: i64,
    /// End of the rotation overlap, once a newer secret replaced this one.
    pub retire_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl SecretRow {
    /// When the secret stops working: its expiry or the end of its rotation overlap.
    pub fn ends_at(&self) -> i64 {
        self.retire_at
            .map_or(self.valid_until, |r| r.min(self.valid_until))
    }
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.ends_at() > now
    }
}

const SECRET_COLUMNS: &str = "id, tenant_id, hint, created_at, created_by, last_used_at, \
                              valid_until, retire_at, revoked_at";

pub async fn list_secrets(db: &Db, tenant_id: &str) -> StoreResult<Vec<SecretRow>> {
    let sql = format!(
        "SELECT {SECRET_COLUMNS} FROM oauth_client_secrets WHERE tenant_id = $1 \
         ORDER BY created_at DESC, (retire_at IS NULL) DESC, id"
    );
    let rows = on_db!(db, |p| {
        // Only the constant column list is pasted; the value is bound.
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant_id)
            .fetch_all(p)
            .await
    })?;
    Ok(rows)
}

/// Stores a new client secret and puts every other live, non-retiring secret of the tenant on
/// its way out at `retire_at`, in one transaction (there is never a moment without a valid
/// secret). Returns the new secret's id and the hints of the secrets now retiring.
pub struct NewSecret<'a> {
    pub tenant_id: &'a str,
    pub secret_hash: &'a str,
    pub hint: &'a str,
    pub created_by: &'a str,
    pub valid_until: i64,
}

pub async fn issue_secret(
    w: &mut Work,
    new: NewSecret<'_>,
    now: i64,
    retire_at: i64,
) -> StoreResult<(String, Vec<String>)> {
    let id = new_id();
    let issued = on_work!(w, |tx| {
        let retiring: Vec<String> = sqlx::query_scalar(
            "SELECT hint FROM oauth_client_secrets WHERE tenant_id = $1 AND revoked_at IS NULL \
             AND retire_at IS NULL AND valid_until > $2 ORDER BY created_at",
        )
        .bind(new.tenant_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE oauth_client_secrets SET retire_at = $1 WHERE tenant_id = $2 \
             AND revoked_at IS NULL AND retire_at IS NULL AND valid_until > $3",
        )
        .bind(retire_at)
        .bind(new.tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oauth_client_secrets (id, tenant_id, secret_hash, hint, created_at, \
             created_by, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(new.tenant_id)
        .bind(new.secret_hash)
        .bind(new.hint)
        .bind(now)
        .bind(new.created_by)
        .bind(new.valid_until)
        .execute(&mut *tx)
        .await?;
        Ok::<_, StoreError>((id, retiring))
    })?;
    w.changes_credentials();
    Ok(issued)
}

/// Revokes one secret of the tenant and deletes the access tokens issued for it; returns its
/// hint. Revoking twice is harmless.
pub async fn revoke_secret(
    w: &mut Work,
    tenant_id: &str,
    secret_id: &str,
    now: i64,
) -> StoreResult<String> {
    let hint = on_work!(w, |tx| {
        let hint: Option<String> = sqlx::query_scalar(
            "SELECT hint FROM oauth_client_secrets WHERE id = $1 AND tenant_id = $2",
        )
        .bind(secret_id)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let hint = hint.ok_or(StoreError::NotFound)?;
        sqlx::query(
            "UPDATE oauth_client_secrets SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(secret_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM oauth_access_tokens WHERE secret_id = $1 AND tenant_id = $2")
            .bind(secret_id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        Ok::<_, StoreError>(hint)
    })?;
    w.changes_credentials();
    Ok(hint)
}

/// What the token endpoint needs about a presented secret, in one round trip.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ClientAuthRow {
    pub secret_id: String,
    pub secret_hash: String,
    pub tenant_id: String,
    pub tenant_slug: String,
    pub access_token_lifetime_secs: i64,
    pub valid_until: i64,
    pub retire_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ClientAuthRow {
    pub fn ends_at(&self) -> i64 {
        self.retire_at
            .map_or(self.valid_until, |r| r.min(self.valid_until))
    }
}

pub async fn client_lookup(db: &Db, secret_hash: &str) -> StoreResult<Option<ClientAuthRow>> {
    let row = on_db!(db, |p| sqlx::query_as(
        "SELECT s.id AS secret_id, s.secret_hash, s.tenant_id, t.slug AS tenant_slug, \
         t.access_token_lifetime_secs, s.valid_until, s.retire_at, s.revoked_at \
         FROM oauth_client_secrets s JOIN tenants t ON t.id = s.tenant_id WHERE s.secret_hash = $1"
    )
    .bind(secret_hash)
    .fetch_optional(p)
    .await)?;
    Ok(row)
}

/// Stores an access token, records the secret's use and drops the tenant's access tokens that
/// expired over a day ago (so the table holds about a day's worth per organisation, and the last
/// request made with one stays known).
pub async fn issue_access_token(
    db: &Db,
    tenant_id: &str,
    secret_id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    let id = new_id();
    on_db!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("DELETE FROM oauth_access_tokens WHERE tenant_id = $1 AND expires_at <= $2")
            .bind(tenant_id)
            .bind(now - KEEP_EXPIRED_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_access_tokens (id, tenant_id, secret_id, token_hash, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(secret_id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE oauth_client_secrets SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(secret_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    })
}

/// Expired access tokens are kept this long (for "last request"), then deleted.
const KEEP_EXPIRED_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(sqlx::FromRow)]
struct AccessGateRow {
    token_id: String,
    token_hash: String,
    tenant_id: String,
    tenant_slug: String,
    provisioning_enabled: bool,
    last_used_at: Option<i64>,
    expires_at: i64,
    secret_valid_until: i64,
    secret_retire_at: Option<i64>,
    secret_revoked_at: Option<i64>,
}

/// The SCIM gate's one lookup for an access token: the token, its secret and its tenant. The
/// token ends with its secret: revoked, rotated out (after the overlap) or expired.
pub async fn access_gate_lookup(db: &Db, token_hash: &str) -> StoreResult<Option<GateRow>> {
    let row: Option<AccessGateRow> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT a.id AS token_id, a.token_hash, a.tenant_id, t.slug AS tenant_slug, \
         t.provisioning_enabled, a.last_used_at, a.expires_at, s.valid_until AS secret_valid_until, \
         s.retire_at AS secret_retire_at, s.revoked_at AS secret_revoked_at \
         FROM oauth_access_tokens a JOIN oauth_client_secrets s ON s.id = a.secret_id \
         JOIN tenants t ON t.id = a.tenant_id WHERE a.token_hash = $1"
    )
    .bind(token_hash)
    .fetch_optional(p)
    .await
    })?;
    Ok(row.map(|r| {
        let ends = [
            Some(r.expires_at),
            Some(r.secret_valid_until),
            r.secret_retire_at,
        ]
        .into_iter()
        .flatten()
        .min();
        GateRow {
            token_id: r.token_id,
            token_hash: r.token_hash,
            tenant_id: r.tenant_id,
            tenant_slug: r.tenant_slug,
            provisioning_enabled: r.provisioning_enabled,
            last_used_at: r.last_used_at,
            expires_at: ends,
            revoked_at: r.secret_revoked_at,
            access_token: true,
        }
    }))
}

pub async fn touch_access_token(db: &Db, token_id: &str, now: i64) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("UPDATE oauth_access_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
    )?;
    Ok(())
}

/// A live credential with an end of life between `from` and `to`, for the expiry warnings.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct Expiring {
    /// `bearer` or `secret`.
    pub kind: String,
    pub hint: String,
    pub valid_until: i64,
}

/// Credentials whose own expiry (not a rotation overlap) falls in `[from, to]`, that were not
/// revoked or rotated out before it. Soonest first.
pub async fn expiring(db: &Db, tenant_id: &str, from: i64, to: i64) -> StoreResult<Vec<Expiring>> {
    let rows = on_db!(db, |p| sqlx::query_as(
        "SELECT 'bearer' AS kind, hint, valid_until FROM scim_tokens WHERE tenant_id = $1 \
         AND revoked_at IS NULL AND valid_until IS NOT NULL AND valid_until BETWEEN $2 AND $3 \
         AND (expires_at IS NULL OR expires_at > valid_until) \
         UNION ALL \
         SELECT 'secret' AS kind, hint, valid_until FROM oauth_client_secrets WHERE tenant_id = $1 \
         AND revoked_at IS NULL AND valid_until BETWEEN $2 AND $3 \
         AND (retire_at IS NULL OR retire_at > valid_until) \
         ORDER BY valid_until, hint"
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .fetch_all(p)
    .await)?;
    Ok(rows)
}

/// How many credentials of the tenant pass the gate at `now`: (bearer tokens, client secrets).
pub async fn live_counts(db: &Db, tenant_id: &str, now: i64) -> StoreResult<(i64, i64)> {
    let counts = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT \
         (SELECT COUNT(*) FROM scim_tokens WHERE tenant_id = $1 AND revoked_at IS NULL \
          AND (expires_at IS NULL OR expires_at > $2) AND (valid_until IS NULL OR valid_until > $2)), \
         (SELECT COUNT(*) FROM oauth_client_secrets WHERE tenant_id = $1 AND revoked_at IS NULL \
          AND (retire_at IS NULL OR retire_at > $2) AND valid_until > $2)"
    )
    .bind(tenant_id)
    .bind(now)
    .fetch_one(p)
    .await
    })?;
    Ok(counts)
}

/// The last SCIM request the gate let through (recorded at most once a minute per credential).
pub async fn last_request(db: &Db, tenant_id: &str) -> StoreResult<Option<i64>> {
    let at: Option<i64> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT MAX(at) FROM (\
         SELECT MAX(last_used_at) AS at FROM scim_tokens WHERE tenant_id = $1 \
         UNION ALL \
         SELECT MAX(last_used_at) AS at FROM oauth_access_tokens WHERE tenant_id = $1) AS uses"
    )
    .bind(tenant_id)
    .fetch_one(p)
    .await)?;
    Ok(at)
}
