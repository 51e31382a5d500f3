//! Sign-in attempts, counted per key (an account or a client address) over a sliding window.
//! Kept in the database so several server instances share the count.
//!
//! An attempt is *reserved* before its password is checked: one short write transaction
//! counts the window and, when under every limit, records the attempt as a failure. A later
//! success releases the reservation. So N concurrent guesses cannot all pass a check made
//! before any of them is counted.

use super::{Db, StoreResult, execute, new_id, on_work};

/// Held for the duration of the reservation transaction on PostgreSQL; SQLite's
/// `BEGIN IMMEDIATE` serialises writers on its own.
const PG_THROTTLE_LOCK: i64 = 0x6274_7a5f_7468_726f; // "btz_thro"

/// Whether the attempt may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Go ahead; release the id if the attempt turns out not to be a failure.
    Granted(String),
    /// A limit is reached; nothing was recorded.
    Refused,
}

/// A key and its limit within the window.
pub struct Limit<'a> {
    pub key: &'a str,
    pub max: i64,
}

const COUNT: &str = "SELECT COUNT(*) FROM sign_in_failures WHERE throttle_key = $1 AND at >= $2";
const INSERT: &str =
    "INSERT INTO sign_in_failures (throttle_key, at, attempt_id) VALUES ($1, $2, $3)";

pub async fn reserve(
    db: &Db,
    limits: &[Limit<'_>],
    since: i64,
    now: i64,
) -> StoreResult<Reservation> {
    let id = new_id();
    // One unit of work: SQLite's holds the write lock from its start; on PostgreSQL an
    // advisory lock serialises reservations for the transaction's length.
    let mut w = db.begin_work().await?;
    if w.is_postgres() {
        on_work!(w, |c| sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_THROTTLE_LOCK)
            .execute(c)
            .await
            .map(|_| ()))?;
    }
    let mut refused = false;
    for l in limits {
        let n: i64 = on_work!(w, |c| sqlx::query_scalar(COUNT)
            .bind(l.key)
            .bind(since)
            .fetch_one(c)
            .await)?;
        if n >= l.max {
            refused = true;
            break;
        }
    }
    if !refused {
        for l in limits {
            on_work!(w, |c| sqlx::query(INSERT)
                .bind(l.key)
                .bind(now)
                .bind(&id)
                .execute(c)
                .await
                .map(|_| ()))?;
        }
    }
    w.commit().await?;
    Ok(if refused {
        Reservation::Refused
    } else {
        Reservation::Granted(id)
    })
}

/// Takes back a reservation (the attempt succeeded, or never got to check the password).
pub async fn release(db: &Db, attempt_id: &str) -> StoreResult<()> {
    execute!(
        db,
        sqlx::query("DELETE FROM sign_in_failures WHERE attempt_id = $1").bind(attempt_id)
    )?;
    Ok(())
}

pub async fn failures_since(db: &Db, key: &str, since: i64) -> StoreResult<i64> {
    let n = super::on_db!(db, |p| sqlx::query_scalar(COUNT)
        .bind(key)
        .bind(since)
        .fetch_one(p)
        .await)?;
    Ok(n)
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
