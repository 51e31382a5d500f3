//! Failed sign-ins, counted per key (an account or a client address) over a sliding window.
//! Kept in the database so several server instances share the count.

use super::{Db, StoreResult, execute, on_db};

pub async fn failures_since(db: &Db, key: &str, since: i64) -> StoreResult<i64> {
    let n = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM sign_in_failures WHERE throttle_key = $1 AND at >= $2"
    )
    .bind(key)
    .bind(since)
    .fetch_one(p)
    .await)?;
    Ok(n)
}

pub async fn record_failure(db: &Db, keys: &[&str], now: i64) -> StoreResult<()> {
    on_db!(db, |p| {
        let mut tx = p.begin().await?;
        for key in keys {
            sqlx::query("INSERT INTO sign_in_failures (throttle_key, at) VALUES ($1, $2)")
                .bind(*key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    })?;
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("DELETE FROM sign_in_failures WHERE throttle_key = $1").bind(key)
    )?;
    Ok(())
}

pub async fn prune(db: &Db, before: i64) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("DELETE FROM sign_in_failures WHERE at < $1").bind(before)
    )?;
    Ok(())
}
