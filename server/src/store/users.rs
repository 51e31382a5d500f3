//! Users as the console sees them (admins and counts). SCIM's view lives in `store::scim`.

use super::{Db, StoreResult, on_db};

/// An admin account that may sign in with a password.
#[derive(sqlx::FromRow, Clone)]
pub struct AdminCredentials {
    pub user_id: String,
    pub tenant_id: String,
    pub tenant_slug: String,
    pub tenant_name: String,
    pub password_hash: String,
    pub active: bool,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("user_id", &self.user_id)
            .field("tenant_slug", &self.tenant_slug)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct AdminRow {
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: i64,
}

/// The statement of [`admins_by_email`]. `u.is_admin = TRUE` is written as the condition of
/// the index it reads (`users_admin_email`, which holds admins only).
pub const ADMINS_BY_EMAIL: &str = "SELECT u.id AS user_id, u.tenant_id, t.slug AS tenant_slug, t.name AS tenant_name, \
     u.password_hash, u.active \
     FROM users u JOIN tenants t ON t.id = u.tenant_id \
     WHERE u.email_lc = $1 AND u.is_admin = TRUE AND u.deleted_at IS NULL \
     AND u.password_hash IS NOT NULL ORDER BY t.name";

/// Every live admin account with this email, across organisations.
pub async fn admins_by_email(db: &Db, email_lc: &str) -> StoreResult<Vec<AdminCredentials>> {
    let rows = on_db!(db, |p| sqlx::query_as(ADMINS_BY_EMAIL)
        .bind(email_lc)
        .fetch_all(p)
        .await)?;
    Ok(rows)
}

pub async fn list_admins(db: &Db, tenant_id: &str) -> StoreResult<Vec<AdminRow>> {
    let rows = on_db!(db, |p| sqlx::query_as(
        "SELECT id, display_name, email, active, created_at FROM users \
         WHERE tenant_id = $1 AND is_admin = TRUE AND deleted_at IS NULL ORDER BY created_at, id"
    )
    .bind(tenant_id)
    .fetch_all(p)
    .await)?;
    Ok(rows)
}

/// Users that came from a provisioning client and are still live, counted up to 10,001 (Home
/// shows "More than 10,000": an exact count of a million users is not worth a page view).
pub async fn count_provisioned(db: &Db, tenant_id: &str) -> StoreResult<i64> {
    let n = on_db!(db, |p| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE tenant_id = $1 AND source = 'scim' \
         AND deleted_at IS NULL LIMIT 10001) c",
        )
        .bind(tenant_id)
        .fetch_one(p)
        .await
    })?;
    Ok(n)
}
