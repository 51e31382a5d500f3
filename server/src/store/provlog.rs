//! The provisioning log and its hourly counters: batch writes from the log writer, keyset
//! listings for the console, retention pruning.

use super::{Db, StoreResult, on_db};
use std::collections::HashMap;
use std::sync::Arc;

/// One stored log entry.
#[derive(sqlx::FromRow, Debug, Clone, Default, PartialEq)]
pub struct LogRow {
    pub id: String,
    pub tenant_id: String,
    pub at: i64,
    pub duration_us: i64,
    pub method: String,
    pub path: String,
    pub operation: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub outcome: String,
    pub status: i64,
    pub scim_type: Option<String>,
    pub error_detail: Option<String>,
    pub client_addr: String,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    pub parent_id: Option<String>,
    /// For a user's successful change: the entry of the user's change before it (the chain a
    /// user's history follows, migration 0013).
    pub prev_entry: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, at, duration_us, method, path, operation, action, target_type, \
     target_id, target_name, outcome, status, scim_type, error_detail, client_addr, request_body, \
     response_body, parent_id, prev_entry";
/// Listings leave the bodies out; an entry's page reads them.
const LIST_COLUMNS: &str = "id, tenant_id, at, duration_us, method, path, operation, action, \
     target_type, target_id, target_name, outcome, status, scim_type, error_detail, client_addr, \
     NULL AS request_body, NULL AS response_body, parent_id, prev_entry";
const NCOLS: usize = 20;
/// Entries that change their target. Must read exactly as the predicate of the partial indexes
/// `provisioning_log_target` and `provisioning_log_operation` (migrations 0010, 0011): both
/// databases use a partial index only when the query repeats its predicate.
const CHANGES_ONLY: &str = "operation <> 'user_read' AND operation <> 'group_read'";
/// Entries in `provisioning_log_target` (migrations 0012, 0013): changes, except a user's
/// creation and a user's successful changes. A user's random id would cost every POST and PATCH
/// of /Users a random page of the index; its changes are found through their chain instead
/// (`user_chain`), its creation near its creation time (`creation_of`). Repeated word for word
/// by the queries that use the index.
const IN_TARGET_INDEX: &str = "operation <> 'user_read' AND operation <> 'group_read' \
     AND operation <> 'user_create' AND (outcome <> 'success' OR operation NOT LIKE 'user%')";
/// Entries that did not succeed: the predicate of `provisioning_log_outcome` (migration 0011).
const NOT_SUCCESS: &str = "outcome <> 'success'";
/// Operations that only read: a filter for them walks the time key (they are most entries).
const READ_OPERATIONS: [&str; 2] = ["user_read", "group_read"];
const DAY_MS: i64 = 86_400_000;
/// Rows per INSERT statement (20 parameters each, far below both databases' limits).
const INSERT_CHUNK: usize = 50;

/// Requests of one organisation in one hour, added to the stored counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCounts {
    pub requests: i64,
    pub failures: i64,
    pub rejected: i64,
    pub dropped: i64,
    pub last_at: i64,
}

#[derive(sqlx::FromRow, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourRow {
    pub hour: i64,
    pub requests: i64,
    pub failures: i64,
    pub rejected: i64,
    pub dropped: i64,
    pub last_at: i64,
}

/// SQLite gets anonymous `?` marks: binding looks each `$n` name up in a list, so with named
/// marks a statement's binding cost grows with the square of its parameters (at 50 rows, 5%
/// of a busy server's time).
fn insert_sql(n: usize, anonymous: bool) -> String {
    let rows: Vec<String> = (0..n)
        .map(|r| {
            let marks: Vec<String> = (1..=NCOLS)
                .map(|c| {
                    if anonymous {
                        "?".to_string()
                    } else {
                        format!("${}", r * NCOLS + c)
                    }
                })
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    // A repeated write (after a failure) skips what an earlier part stored.
    format!(
        "INSERT INTO provisioning_log ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    )
}

static FULL_INSERT_SQLITE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_sql(INSERT_CHUNK, true));
static FULL_INSERT_PG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| insert_sql(INSERT_CHUNK, false));

const UPSERT_HOUR: &str = "INSERT INTO provisioning_hourly \
     (tenant_id, hour, requests, failures, rejected, dropped, last_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (tenant_id, hour) DO UPDATE SET \
     requests = provisioning_hourly.requests + excluded.requests, \
     failures = provisioning_hourly.failures + excluded.failures, \
     rejected = provisioning_hourly.rejected + excluded.rejected, \
     dropped = provisioning_hourly.dropped + excluded.dropped, \
     last_at = CASE WHEN excluded.last_at > provisioning_hourly.last_at \
               THEN excluded.last_at ELSE provisioning_hourly.last_at END";

/// Inserts `$chunk` (at most [`INSERT_CHUNK`] rows) in the transaction `$tx`.
macro_rules! insert_chunk {
    ($tx:ident, $chunk:expr, $anonymous:expr) => {{
        let chunk: &[LogRow] = $chunk;
        // Full chunks (most of a busy log's rows) reuse their text, built once.
        let sql: std::borrow::Cow<'static, str> = match (chunk.len(), $anonymous) {
            (INSERT_CHUNK, true) => FULL_INSERT_SQLITE.as_str().into(),
            (INSERT_CHUNK, false) => FULL_INSERT_PG.as_str().into(),
            (n, anonymous) => insert_sql(n, anonymous).into(),
        };
        // The text holds only column names and placeholders; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        // Texts are bound as shared copies: binding a `&String` costs SQLite's driver two
        // allocations (a copy, and the shared box around it), this one.
        let t = |s: &String| Arc::<str>::from(s.as_str());
        let o = |s: &Option<String>| s.as_deref().map(Arc::<str>::from);
        for r in chunk {
            q = q
                .bind(t(&r.id))
                .bind(t(&r.tenant_id))
                .bind(r.at)
                .bind(r.duration_us)
                .bind(t(&r.method))
                .bind(t(&r.path))
                .bind(t(&r.operation))
                .bind(t(&r.action))
                .bind(o(&r.target_type))
                .bind(o(&r.target_id))
                .bind(o(&r.target_name))
                .bind(t(&r.outcome))
                .bind(r.status)
                .bind(o(&r.scim_type))
                .bind(o(&r.error_detail))
                .bind(t(&r.client_addr))
                .bind(o(&r.request_body))
                .bind(o(&r.response_body))
                .bind(o(&r.parent_id))
                .bind(o(&r.prev_entry));
        }
        q.execute(&mut *$tx).await?;
    }};
}

/// Adds `$hours` to the stored counters in the transaction `$tx`.
macro_rules! upsert_hours {
    ($tx:ident, $hours:expr) => {
        for ((tenant, hour), c) in $hours {
            sqlx::query(UPSERT_HOUR)
                .bind(tenant)
                .bind(hour)
                .bind(c.requests)
                .bind(c.failures)
                .bind(c.rejected)
                .bind(c.dropped)
                .bind(c.last_at)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// Writes a batch of entries and the counters they add, in one transaction (on SQLite in the
/// log's own file, `store::log_file_of`, so it holds no lock SCIM's writes wait for). Safe to
/// repeat after a failure: an entry already stored is skipped.
pub async fn write_batch(
    db: &Db,
    rows: &[LogRow],
    hours: &HashMap<(String, i64), HourCounts>,
) -> StoreResult<()> {
    match &db.log() {
        Db::Sqlite(p) => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_chunk!(tx, chunk, true);
            }
            upsert_hours!(tx, hours);
            tx.commit().await?;
            Ok(())
        }
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            // Log entries need not wait for the disk (see `Db::for_log_writes`).
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_chunk!(tx, chunk, false);
            }
            upsert_hours!(tx, hours);
            tx.commit().await?;
            Ok(())
        }
    }
}

/// `$first, …` (`n` placeholders).
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement of [`target_names`] for `n` ids.
pub fn target_names_sql(db: &Db, groups: bool, n: usize) -> String {
    let tenant = db.tenant_by_key();
    let (cols, table) = if groups {
        ("id, display_name", "scim_groups")
    } else {
        ("id, user_name", "users")
    };
    format!(
        "SELECT {cols} FROM {table} WHERE {tenant} = $1 AND id IN ({})",
        marks(2, n)
    )
}

/// Names of these users (userName, deprovisioned ones included) or groups (displayName).
pub async fn target_names(
    db: &Db,
    tenant_id: &str,
    groups: bool,
    ids: &[String],
) -> StoreResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = target_names_sql(db, groups, chunk.len());
        let rows: Vec<(String, String)> = on_db!(db, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The name an earlier entry knew for this target (a deleted group has no row any more).
pub async fn last_known_name(
    db: &Db,
    tenant_id: &str,
    target_id: &str,
) -> StoreResult<Option<String>> {
    let db = &db.log();
    let name = on_db!(db, |p| sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT target_name FROM provisioning_log WHERE tenant_id = $1 AND target_id = $2 \
             AND {IN_TARGET_INDEX} AND target_name IS NOT NULL ORDER BY at DESC LIMIT 1"
    )))
    .bind(tenant_id)
    .bind(target_id)
    .fetch_optional(p)
    .await)?;
    Ok(name)
}

/// The SQL of [`creation_of`]: `$1` organisation, `$2`/`$3` the window of arrival times,
/// `$4` the user. On SQLite it names the operation index (without statistics SQLite may prefer
/// the time key and test every entry of the window).
pub fn creation_sql(sqlite: bool) -> String {
    let hint = if sqlite {
        " INDEXED BY provisioning_log_operation"
    } else {
        ""
    };
    format!(
        "SELECT {COLUMNS} FROM provisioning_log{hint} WHERE tenant_id = $1 \
         AND operation = 'user_create' AND {CHANGES_ONLY} AND at >= $2 AND at <= $3 \
         AND target_id = $4 ORDER BY at DESC, id DESC LIMIT 1"
    )
}

/// The entry of the request that created this user (creations are not in the target index).
/// Its request arrived before the user was stored, at most `window_ms` before (the request
/// timeout), so it is found by walking the creations back from the user's creation time in
/// the operation index, which ends with each entry's target: normally the first few it meets.
pub async fn creation_of(
    db: &Db,
    tenant_id: &str,
    user_id: &str,
    created_at: i64,
    window_ms: i64,
) -> StoreResult<Option<LogRow>> {
    let db = &db.log();
    let sql = creation_sql(matches!(db, Db::Sqlite(_)));
    // A second of slack: the entry's time and the user's come from one clock, read in order,
    // but a wall clock may step back a little.
    let row = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(tenant_id)
        .bind(created_at - window_ms)
        .bind(created_at + 1_000)
        .bind(user_id)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

/// Where a walk of a user's chain of changes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainEnd {
    /// At the user's first logged change: what comes before is its creation.
    Start,
    /// At the limit: older changes follow.
    Limit,
    /// At an entry that is no longer there (pruned by retention, or lost when the queue was
    /// full): what came before it cannot be followed.
    Gap,
}

/// A user's successful changes, newest first, at most `limit`: the chain from the user's
/// `last_entry` through each entry's `prev_entry` (migration 0013), one key lookup per entry.
pub async fn user_chain(
    db: &Db,
    tenant_id: &str,
    user_id: &str,
    limit: usize,
) -> StoreResult<(Vec<LogRow>, ChainEnd)> {
    let db = &db.log();
    let last: Option<Option<String>> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT last_entry FROM users WHERE tenant_id = $1 AND id = $2"
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(p)
    .await)?;
    let mut next = last.flatten();
    let mut rows = Vec::new();
    while let Some(id) = next {
        if rows.len() >= limit {
            return Ok((rows, ChainEnd::Limit));
        }
        let Some(row) = get(db, tenant_id, &id).await? else {
            return Ok((rows, ChainEnd::Gap));
        };
        // In the order the changes were applied, which for parallel requests is not always
        // the order they arrived in (entry ids); `limit` bounds the walk.
        next = row.prev_entry.clone();
        rows.push(row);
    }
    Ok((rows, ChainEnd::Start))
}

pub async fn tenant_id_by_slug(db: &Db, slug: &str) -> StoreResult<Option<String>> {
    let id = on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM tenants WHERE slug = $1"
    )
    .bind(slug)
    .fetch_optional(p)
    .await)?;
    Ok(id)
}

pub async fn retention_days(db: &Db, tenant_id: &str) -> StoreResult<Option<i64>> {
    let d = on_db!(db, |p| sqlx::query_scalar(
        "SELECT retention_days FROM provisioning_log_settings WHERE tenant_id = $1"
    )
    .bind(tenant_id)
    .fetch_optional(p)
    .await)?;
    Ok(d)
}

pub async fn set_retention_days(db: &Db, tenant_id: &str, days: i64) -> StoreResult<()> {
    super::execute!(
        db,
        sqlx::query(
            "INSERT INTO provisioning_log_settings (tenant_id, retention_days) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET retention_days = excluded.retention_days"
        )
        .bind(tenant_id)
        .bind(days)
    )?;
    Ok(())
}

/// Rows deleted per statement while pruning, so no transaction holds the log for long.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes entries older than each organisation's retention, and counters older than
/// `keep_hours_ms`. Returns the number of entries deleted.
pub async fn prune(db: &Db, now: i64, default_days: i64, keep_hours_ms: i64) -> StoreResult<u64> {
    let db = &db.log();
    let tenants: Vec<(String, Option<i64>)> = on_db!(db, |p| sqlx::query_as(
        "SELECT t.id, s.retention_days FROM tenants t \
         LEFT JOIN provisioning_log_settings s ON s.tenant_id = t.id"
    )
    .fetch_all(p)
    .await)?;
    let mut deleted = 0;
    for (tenant, days) in tenants {
        let before = now - days.unwrap_or(default_days) * DAY_MS;
        loop {
            // SQLite's log is keyed by (tenant, at, id) and has no index on id alone.
            let sql = match db {
                Db::Sqlite(_) => {
                    "DELETE FROM provisioning_log WHERE (tenant_id, at, id) IN \
                     (SELECT tenant_id, at, id FROM provisioning_log \
                     WHERE tenant_id = $1 AND at < $2 ORDER BY at LIMIT $3 + 0)"
                }
                Db::Postgres(_) => {
                    "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log \
                     WHERE tenant_id = $1 AND at < $2 ORDER BY at LIMIT $3 + 0)"
                }
            };
            let n = super::execute!(
                db,
                sqlx::query(sql)
                    .bind(&tenant)
                    .bind(before)
                    .bind(PRUNE_CHUNK)
            )?;
            deleted += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
    }
    super::execute!(
        db,
        sqlx::query("DELETE FROM provisioning_hourly WHERE hour < $1").bind(now - keep_hours_ms)
    )?;
    Ok(deleted)
}

/// What the log page filters by; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub outcome: Option<String>,
    pub operation: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only the entries that changed this target (a user's history; lookups are left out).
    pub target_id: Option<String>,
    /// Only these operations (a user's history: the ones that change users).
    pub operations: Vec<String>,
    /// Only the operations of this Bulk request.
    pub parent_id: Option<String>,
}

/// The listing's SQL: `$1` is the organisation, then one mark per filter field in the order
/// of `LogFilter`, then the cursor (three marks: at, at, id) when `after_cursor`, then the
/// limit. Each filter that an index serves repeats its predicate (`NOT_SUCCESS`,
/// `CHANGES_ONLY`); the cursor bounds `at` so a later page starts inside the key.
///
/// SQLite is told which index serves a filter of rare entries: without statistics it prefers
/// the time key once a cursor bounds `at` (the key holds whole rows, an index needs a lookup
/// per row), and would then walk past every newer entry to find a page of failures.
pub fn list_sql(f: &LogFilter, after_cursor: bool, with_bodies: bool, sqlite: bool) -> String {
    let cols = if with_bodies { COLUMNS } else { LIST_COLUMNS };
    let rare_outcome = f.outcome.as_deref().is_some_and(|o| o != "success");
    let rare_operation = f
        .operation
        .as_deref()
        .is_some_and(|o| !READ_OPERATIONS.contains(&o));
    let index = if f.target_id.is_some() {
        Some("provisioning_log_target")
    } else if f.parent_id.is_some() {
        None
    } else if rare_outcome {
        Some("provisioning_log_outcome")
    } else if rare_operation {
        Some("provisioning_log_operation")
    } else {
        None
    };
    let hint = match index {
        Some(i) if sqlite => format!(" INDEXED BY {i}"),
        _ => String::new(),
    };
    let mut sql = format!("SELECT {cols} FROM provisioning_log{hint} WHERE tenant_id = $1");
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.outcome.is_some() {
        sql.push_str(&format!(" AND outcome = {}", next()));
        if rare_outcome {
            sql.push_str(&format!(" AND {NOT_SUCCESS}"));
        }
    }
    if f.operation.is_some() {
        sql.push_str(&format!(" AND operation = {}", next()));
        if rare_operation {
            sql.push_str(&format!(" AND {CHANGES_ONLY}"));
        }
    }
    if !f.operations.is_empty() {
        let m: Vec<String> = f.operations.iter().map(|_| next()).collect();
        sql.push_str(&format!(" AND operation IN ({})", m.join(", ")));
        if f.operations
            .iter()
            .all(|o| !READ_OPERATIONS.contains(&o.as_str()))
        {
            sql.push_str(&format!(" AND {CHANGES_ONLY}"));
        }
    }
    if f.from.is_some() {
        sql.push_str(&format!(" AND at >= {}", next()));
    }
    if f.to.is_some() {
        sql.push_str(&format!(" AND at < {}", next()));
    }
    if f.target_id.is_some() {
        sql.push_str(&format!(
            " AND target_id = {} AND {IN_TARGET_INDEX}",
            next()
        ));
    }
    if f.parent_id.is_some() {
        sql.push_str(&format!(" AND parent_id = {}", next()));
    }
    if after_cursor {
        let (a, b, c) = (next(), next(), next());
        sql.push_str(&format!(" AND at <= {a} AND (at < {b} OR id < {c})"));
    }
    let lim = next();
    sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {lim} + 0"));
    sql
}

/// Newest first, `limit` rows strictly older than `before` (at, id).
pub async fn list(
    db: &Db,
    tenant_id: &str,
    f: &LogFilter,
    before: Option<(i64, String)>,
    limit: i64,
    with_bodies: bool,
) -> StoreResult<Vec<LogRow>> {
    let db = &db.log();
    let sql = list_sql(
        f,
        before.is_some(),
        with_bodies,
        matches!(db, Db::Sqlite(_)),
    );
    let rows = on_db!(db, |p| {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant_id);
        if let Some(v) = &f.outcome {
            q = q.bind(v);
        }
        if let Some(v) = &f.operation {
            q = q.bind(v);
        }
        for v in &f.operations {
            q = q.bind(v);
        }
        if let Some(v) = f.from {
            q = q.bind(v);
        }
        if let Some(v) = f.to {
            q = q.bind(v);
        }
        if let Some(v) = &f.target_id {
            q = q.bind(v);
        }
        if let Some(v) = &f.parent_id {
            q = q.bind(v);
        }
        if let Some((at, id)) = &before {
            q = q.bind(*at).bind(*at).bind(id);
        }
        q.bind(limit).fetch_all(p).await
    })?;
    Ok(rows)
}

/// The time an entry id starts with (12 hex digits of milliseconds, see `provlog::entry_id`).
pub fn time_of_id(id: &str) -> Option<i64> {
    let head = id.get(..12)?;
    if id.as_bytes().get(12) != Some(&b'-') || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(head, 16).ok()
}

/// One entry with its bodies, found through the time key its id carries.
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> StoreResult<Option<LogRow>> {
    let db = &db.log();
    let Some(at) = time_of_id(id) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM provisioning_log WHERE tenant_id = $1 AND at = $2 AND id = $3"
    );
    let row = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(tenant_id)
        .bind(at)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

/// Counters of the hours in `[from, to)`.
pub async fn hours(db: &Db, tenant_id: &str, from: i64, to: i64) -> StoreResult<Vec<HourRow>> {
    let db = &db.log();
    let rows = on_db!(db, |p| sqlx::query_as(
        "SELECT hour, requests, failures, rejected, dropped, last_at FROM provisioning_hourly \
         WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour"
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .fetch_all(p)
    .await)?;
    Ok(rows)
}

/// When the organisation's SCIM endpoint was last called (from the counters: one row).
pub async fn last_request_at(db: &Db, tenant_id: &str) -> StoreResult<Option<i64>> {
    let db = &db.log();
    let at: Option<i64> = on_db!(db, |p| {
        sqlx::query_scalar(
        "SELECT last_at FROM provisioning_hourly WHERE tenant_id = $1 ORDER BY hour DESC LIMIT 1"
    )
    .bind(tenant_id)
    .fetch_optional(p)
    .await
    })?;
    Ok(at.filter(|a| *a > 0))
}

/// The newest entry with this outcome (an index seek, not a scan).
pub async fn latest_with_outcome(
    db: &Db,
    tenant_id: &str,
    outcome: &str,
) -> StoreResult<Option<LogRow>> {
    let db = &db.log();
    let rare = if outcome == "success" {
        String::new()
    } else {
        format!(" AND {NOT_SUCCESS}")
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM provisioning_log WHERE tenant_id = $1 AND outcome = $2{rare} \
         ORDER BY at DESC, id DESC LIMIT 1"
    );
    let row = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(tenant_id)
        .bind(outcome)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

/// The newest entry of all.
pub async fn latest(db: &Db, tenant_id: &str) -> StoreResult<Option<LogRow>> {
    let db = &db.log();
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM provisioning_log WHERE tenant_id = $1 \
         ORDER BY at DESC, id DESC LIMIT 1"
    );
    let row = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(tenant_id)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_id_gives_its_time() {
        let at = 1_764_547_200_123_i64;
        let id = format!("{at:012x}-{:010x}-abcd1234", 7);
        assert_eq!(time_of_id(&id), Some(at));
        assert_eq!(time_of_id("000000000000-0000000000-x"), Some(0));
        for bad in [
            "",
            "zzzzzzzzzzzz-1",
            "019ad0a1b2c3",
            "019ad0a1b2c3x1",
            "é19ad0a1b2c3-1",
        ] {
            assert_eq!(time_of_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_an_index_serves_repeat_its_predicate() {
        let only = |outcome: Option<&str>, operation: Option<&str>| LogFilter {
            outcome: outcome.map(str::to_string),
            operation: operation.map(str::to_string),
            ..LogFilter::default()
        };
        let sql = |f: &LogFilter| list_sql(f, false, false, false);
        assert!(sql(&only(Some("failure"), None)).contains(NOT_SUCCESS));
        assert!(!sql(&only(Some("success"), None)).contains(NOT_SUCCESS));
        assert!(sql(&only(None, Some("user_create"))).contains(CHANGES_ONLY));
        assert!(!sql(&only(None, Some("user_read"))).contains(CHANGES_ONLY));
        assert!(!sql(&only(Some("failure"), None)).contains("INDEXED BY"));
        assert!(
            list_sql(&only(Some("failure"), None), false, false, true)
                .contains("INDEXED BY provisioning_log_outcome")
        );
        let history = LogFilter {
            operations: vec!["user_create".into(), "user_update".into()],
            ..LogFilter::default()
        };
        assert!(list_sql(&history, true, false, true).contains(CHANGES_ONLY));
    }
}
