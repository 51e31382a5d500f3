//! Leases on background jobs: one holder per job at a time across every instance sharing the
//! database. A lease is taken or renewed by one conditional upsert, which succeeds only for
//! the current holder or once the lease has expired, so of many concurrent takers exactly one
//! wins (PostgreSQL locks the row for the upsert; SQLite has one writer at a time).
//!
//! Expiry is judged by the taker's clock: instances' clocks must agree to well within a lease
//! (NTP does). The jobs are idempotent, so a skew only risks a brief overlap, never damage.

use super::{Db, StoreResult, execute, on_db};

/// Takes `job`'s lease for `holder` until `until`, or renews it if `holder` already has it.
/// `Some(last_run_at)` when `holder` now holds it; `None` when someone else does.
pub async fn acquire(
    db: &Db,
    job: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> StoreResult<Option<i64>> {
    let last_run: Option<i64> = on_db!(db, |p| {
        sqlx::query_scalar(
        "INSERT INTO job_leases (job, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4 \
         RETURNING last_run_at"
    )
    .bind(job)
    .bind(holder)
    .bind(until)
    .bind(now)
    .fetch_optional(p)
    .await
    })?;
    Ok(last_run)
}

/// Records that `holder` ran `job` at `at` (only while it still holds the lease).
pub async fn mark_run(db: &Db, job: &str, holder: &str, at: i64) -> StoreResult<bool> {
    let n = execute!(
        db,
        sqlx::query("UPDATE job_leases SET last_run_at = $1 WHERE job = $2 AND holder = $3")
            .bind(at)
            .bind(job)
            .bind(holder)
    )?;
    Ok(n == 1)
}

/// Gives up every lease `holder` has (at shutdown), so another instance takes over at once
/// instead of after the expiry.
pub async fn release_all(db: &Db, holder: &str) -> StoreResult<u64> {
    execute!(
        db,
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE holder = $1").bind(holder)
    )
    .map_err(Into::into)
}

/// Every lease: (job, holder, expires_at), by job.
pub async fn all(db: &Db) -> StoreResult<Vec<(String, String, i64)>> {
    let rows = on_db!(db, |p| sqlx::query_as(
        "SELECT job, holder, expires_at FROM job_leases ORDER BY job"
    )
    .fetch_all(p)
    .await)?;
    Ok(rows)
}
