use super::{Db, StoreResult, execute, on_db};

/// A live console session with what the header needs; looked up by the secret's hash.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SessionRow {
    pub user_id: String,
    pub tenant_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub is_admin: bool,
    pub tenant_name: String,
    pub tenant_slug: String,
}

pub async fn create(
    db: &Db,
    id_hash: &str,
    user_id: &str,
    tenant_id: &str,
    now: i64,
) -> StoreResult<()> {
    execute!(db, sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, tenant_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)"
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(tenant_id)
    .bind(now))?;
    Ok(())
}

pub async fn lookup(db: &Db, id_hash: &str) -> StoreResult<Option<SessionRow>> {
    let row = on_db!(db, |p| sqlx::query_as(
        "SELECT s.user_id, s.tenant_id, s.created_at, s.last_seen_at, u.display_name, u.email, \
         u.active, u.is_admin, t.name AS tenant_name, t.slug AS tenant_slug \
         FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = s.tenant_id \
         WHERE s.id_hash = $1 AND u.deleted_at IS NULL"
    )
    .bind(id_hash)
    .fetch_optional(p)
    .await)?;
    Ok(row)
}

pub async fn touch(db: &Db, id_hash: &str, now: i64) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
    )?;
    Ok(())
}

pub async fn delete(db: &Db, id_hash: &str) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash)
    )?;
    Ok(())
}

/// Drops sessions idle since `idle_before` or created before `created_before`.
pub async fn prune(db: &Db, idle_before: i64, created_before: i64) -> StoreResult<u64> {
    let n = execute!(
        db,
        sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(created_before)
    )?;
    Ok(n)
}
