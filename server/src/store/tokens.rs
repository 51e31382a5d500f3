//! SCIM bearer tokens, looked up by the SHA-256 of the presented secret.

use super::{Db, StoreError, StoreResult, Work, execute, new_id, on_db, on_work};

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub tenant_id: String,
    pub token_hash: String,
    pub hint: String,
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
    /// End of the rotation overlap, once a newer token replaced this one.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// End of life under the organisation's maximum bearer-token lifetime, if it has one.
    pub valid_until: Option<i64>,
}

impl TokenRow {
    /// Accepted by the SCIM gate at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.ends_at().is_none_or(|t| t > now)
    }

    /// When the token stops working, whichever comes first: the overlap's end or its lifetime.
    pub fn ends_at(&self) -> Option<i64> {
        match (self.expires_at, self.valid_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What the gate needs in one round trip: the token (if its hash is known) and its tenant.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct GateRow {
    pub token_id: String,
    pub token_hash: String,
    pub tenant_id: String,
    pub tenant_slug: String,
    pub provisioning_enabled: bool,
    pub last_used_at: Option<i64>,
    /// When the credential stops working (every limit that applies, already combined).
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// An OAuth access token rather than a bearer token (set by `store::oauth`).
    #[sqlx(default)]
    pub access_token: bool,
}

pub async fn gate_lookup(db: &Db, token_hash: &str) -> StoreResult<Option<GateRow>> {
    let row = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT k.id AS token_id, k.token_hash, k.tenant_id, t.slug AS tenant_slug, \
         t.provisioning_enabled, k.last_used_at, k.revoked_at, \
         CASE WHEN k.valid_until IS NOT NULL AND (k.expires_at IS NULL OR k.valid_until < k.expires_at) \
         THEN k.valid_until ELSE k.expires_at END AS expires_at \
         FROM scim_tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.token_hash = $1"
    )
    .bind(token_hash)
    .fetch_optional(p)
    .await
    })?;
    Ok(row)
}

pub async fn list(db: &Db, tenant_id: &str) -> StoreResult<Vec<TokenRow>> {
    let rows = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT id, tenant_id, token_hash, hint, created_at, created_by, last_used_at, expires_at, \
         revoked_at, valid_until FROM scim_tokens WHERE tenant_id = $1 \
         ORDER BY created_at DESC, (expires_at IS NULL) DESC, id"
    )
    .bind(tenant_id)
    .fetch_all(p)
    .await
    })?;
    Ok(rows)
}

/// Stores a new token and puts every other live, non-retiring token of the tenant on its way
/// out at `retire_at`, in the caller's unit of work, so there is never a moment with no valid
/// token. Returns the new token's id and the hints of the tokens now retiring. `valid_until` is
/// the new token's end of life when the organisation has a maximum bearer-token lifetime.
///
/// Concurrent rotations queue, not fail: on SQLite the unit of work holds the write lock from
/// its start; on PostgreSQL the tenant row is locked first, so each rotation retires the token
/// the previous one issued and exactly one token stays without expiry.
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    w: &mut Work,
    tenant_id: &str,
    token_hash: &str,
    hint: &str,
    created_by: &str,
    now: i64,
    retire_at: i64,
    valid_until: Option<i64>,
) -> StoreResult<(String, Vec<String>)> {
    let id = new_id();
    if w.is_postgres() {
        on_work!(w, |c| sqlx::query(
            "SELECT id FROM tenants WHERE id = $1 FOR UPDATE"
        )
        .bind(tenant_id)
        .fetch_optional(c)
        .await
        .map(|_| ()))?;
    }
    let retiring: Vec<String> = on_work!(w, |c| sqlx::query_scalar(
        "UPDATE scim_tokens SET expires_at = $1 \
         WHERE tenant_id = $2 AND revoked_at IS NULL AND expires_at IS NULL \
         AND (valid_until IS NULL OR valid_until > $3) RETURNING hint",
    )
    .bind(retire_at)
    .bind(tenant_id)
    .bind(now)
    .fetch_all(c)
    .await)?;
    on_work!(w, |c| sqlx::query(
        "INSERT INTO scim_tokens (id, tenant_id, token_hash, hint, created_at, created_by, \
         valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(token_hash)
    .bind(hint)
    .bind(now)
    .bind(created_by)
    .bind(valid_until)
    .execute(c)
    .await
    .map(|_| ()))?;
    w.changes_credentials();
    Ok((id, retiring))
}

/// Revokes one token of the tenant; returns its hint. Revoking twice is harmless.
pub async fn revoke(
    w: &mut Work,
    tenant_id: &str,
    token_id: &str,
    now: i64,
) -> StoreResult<String> {
    let hint: Option<String> = on_work!(w, |c| sqlx::query_scalar(
        "SELECT hint FROM scim_tokens WHERE id = $1 AND tenant_id = $2"
    )
    .bind(token_id)
    .bind(tenant_id)
    .fetch_optional(c)
    .await)?;
    let hint = hint.ok_or(StoreError::NotFound)?;
    on_work!(w, |c| {
        sqlx::query(
        "UPDATE scim_tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL"
    )
    .bind(now)
    .bind(token_id)
    .bind(tenant_id)
    .execute(c)
    .await
    .map(|_| ())
    })?;
    w.changes_credentials();
    Ok(hint)
}

pub async fn touch(db: &Db, token_id: &str, now: i64) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("UPDATE scim_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token_id)
    )?;
    Ok(())
}
