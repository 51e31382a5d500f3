//! Upgrades keep what was written: a migration runs over a database that an earlier version
//! filled (SQLite; PostgreSQL too when TEST_DATABASE_URL is set).

mod common;

use common::*;
use server::on_db;
use server::store::Db;
use server::store::provlog::{self as logstore, ChainEnd, LogFilter};

/// An organisation, three users and the log an earlier version wrote for them: u1 created,
/// updated, a failed update, disabled, read, deprovisioned; u2 updated once; u3 never changed.
const BEFORE_0013: &str = "
INSERT INTO tenants (id, slug, name, created_at) VALUES ('t1', 'c', 'C', 0);
INSERT INTO users (id, tenant_id, user_name, user_name_lc, source, created_at, updated_at)
    VALUES ('u1', 't1', 'a', 'a', 'scim', 0, 0), ('u2', 't1', 'b', 'b', 'scim', 0, 0),
           ('u3', 't1', 'c', 'c', 'scim', 0, 0);
INSERT INTO provisioning_log
    (id, tenant_id, at, duration_us, method, path, operation, action, target_id, outcome, status)
VALUES
    ('000000000001-e1', 't1', 1, 0, 'POST', '/Users', 'user_create', 'x', 'u1', 'success', 201),
    ('000000000002-e2', 't1', 2, 0, 'PATCH', '/Users/u1', 'user_update', 'x', 'u1', 'success', 200),
    ('000000000003-e3', 't1', 3, 0, 'PATCH', '/Users/u1', 'user_update', 'x', 'u1', 'failure', 400),
    ('000000000004-e4', 't1', 4, 0, 'PATCH', '/Users/u1', 'user_disable', 'x', 'u1', 'success', 200),
    ('000000000005-e5', 't1', 5, 0, 'PATCH', '/Users/u2', 'user_update', 'x', 'u2', 'success', 200),
    ('000000000006-e6', 't1', 6, 0, 'PATCH', '/Groups/g', 'group_update', 'x', 'g', 'success', 200),
    ('000000000007-e7', 't1', 7, 0, 'GET', '/Users/u1', 'user_read', 'x', 'u1', 'success', 200),
    ('000000000008-e8', 't1', 8, 0, 'DELETE', '/Users/u1', 'user_deprovision', 'x', 'u1', 'success', 204);
";

async fn chain_ids(db: &Db, user: &str) -> (Vec<String>, ChainEnd) {
    let (rows, end) = logstore::user_chain(db, "t1", user, 10).await.unwrap();
    (rows.into_iter().map(|r| r.id).collect(), end)
}

/// Requests and failures of organisation t1 in the first hour of the epoch, per stored hour.
async fn first_hour_counts(db: &Db) -> Vec<(i64, i64)> {
    let hours = logstore::hours(db, "t1", 0, 3_600_000).await.unwrap();
    hours.iter().map(|h| (h.requests, h.failures)).collect()
}

#[tokio::test]
async fn migration_13_links_the_history_users_already_have() {
    let (db, _dir) = empty_db().await;
    match &db {
        Db::Sqlite(p) => {
            sqlx::migrate!("../migrations/sqlite")
                .run_to(12, p.pool())
                .await
        }
        Db::Postgres(p) => sqlx::migrate!("../migrations/postgres").run_to(12, p).await,
    }
    .unwrap();
    on_db!(&db, |p| {
        sqlx::raw_sql(BEFORE_0013).execute(p).await.unwrap();
    });
    db.migrate().await.unwrap();

    let (u1, end) = chain_ids(&db, "u1").await;
    assert_eq!(
        u1,
        ["000000000008-e8", "000000000004-e4", "000000000002-e2"],
        "the successful changes, newest first"
    );
    assert_eq!(end, ChainEnd::Start);
    assert_eq!(chain_ids(&db, "u2").await.0, ["000000000005-e5"]);
    assert!(chain_ids(&db, "u3").await.0.is_empty());
    // The target index keeps the failure and the group's change, not the chained entries.
    let listed = |target: &'static str| {
        let db = db.clone();
        async move {
            let f = LogFilter {
                target_id: Some(target.to_string()),
                ..LogFilter::default()
            };
            logstore::list(&db, "t1", &f, None, 10, false)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("u1").await, ["000000000003-e3"]);
    assert_eq!(listed("g").await, ["000000000006-e6"]);
}

/// SQLite keeps each organisation's count of live users in `live_user_counts` (migration 0014):
/// filled from the users already there, then kept by triggers through creation, deprovisioning,
/// return, deletion, a move between organisations, and the organisation's deletion.
#[tokio::test]
async fn live_user_counts_follow_every_change_of_users() {
    let (db, _dir) = empty_db().await;
    let Some(p) = db.sqlite_pool() else {
        return;
    };
    sqlx::migrate!("../migrations/sqlite")
        .run_to(13, p)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES ('t1', 'c', 'C', 0), ('t2', 'f', 'F', 0);
         INSERT INTO users (id, tenant_id, user_name, user_name_lc, source, created_at, updated_at, deleted_at)
         VALUES ('u1', 't1', 'a', 'a', 'scim', 0, 0, NULL), ('u2', 't1', 'b', 'b', 'scim', 0, 0, NULL),
                ('u3', 't1', 'c', 'c', 'scim', 0, 0, 5), ('u4', 't2', 'd', 'd', 'scim', 0, 0, NULL);",
    )
    .execute(p)
    .await
    .unwrap();
    db.migrate().await.unwrap();

    let counts = || async {
        let kept: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, n FROM live_user_counts WHERE n <> 0 ORDER BY 1")
                .fetch_all(p)
                .await
                .unwrap();
        let real: Vec<(String, i64)> = sqlx::query_as(
            "SELECT tenant_id, COUNT(*) FROM users WHERE deleted_at IS NULL GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(p)
        .await
        .unwrap();
        assert_eq!(kept, real, "the kept counts are the real ones");
        kept
    };
    let pair = |t: &str, n: i64| (t.to_string(), n);
    assert_eq!(counts().await, [pair("t1", 2), pair("t2", 1)], "filled");
    for (step, sql, want) in [
        (
            "created",
            "INSERT INTO users (id, tenant_id, user_name, user_name_lc, source, created_at, updated_at) \
             VALUES ('u5', 't1', 'e', 'e', 'scim', 0, 0)",
            vec![pair("t1", 3), pair("t2", 1)],
        ),
        (
            "deprovisioned",
            "UPDATE users SET deleted_at = 9 WHERE id = 'u1'",
            vec![pair("t1", 2), pair("t2", 1)],
        ),
        (
            "deprovisioned again",
            "UPDATE users SET deleted_at = 10 WHERE id = 'u1'",
            vec![pair("t1", 2), pair("t2", 1)],
        ),
        (
            "back",
            "UPDATE users SET deleted_at = NULL WHERE id = 'u3'",
            vec![pair("t1", 3), pair("t2", 1)],
        ),
        (
            "moved",
            "UPDATE users SET tenant_id = 't2' WHERE id = 'u2'",
            vec![pair("t1", 2), pair("t2", 2)],
        ),
        (
            "deleted",
            "DELETE FROM users WHERE id IN ('u1', 'u5')",
            vec![pair("t1", 1), pair("t2", 2)],
        ),
        (
            "organisation deleted",
            "DELETE FROM tenants WHERE id = 't2'",
            vec![pair("t1", 1)],
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(p)
            .await
            .unwrap();
        assert_eq!(counts().await, want, "{step}");
    }
}

/// Migration 19 moves the log out of the directory's file into its own. The move copies, then
/// drops; a start cut short between the two (a crash) left rows in both files, and the next
/// start finishes the move without losing or doubling an entry.
#[tokio::test]
async fn migration_19_moves_the_log_to_its_own_file_even_after_a_crash_half_way() {
    use sqlx::ConnectOptions;
    let (db, _dir) = empty_db().await;
    let Some(p) = db.sqlite_pool() else {
        return;
    };
    sqlx::migrate!("../migrations/sqlite")
        .run_to(18, p)
        .await
        .unwrap();
    sqlx::raw_sql(BEFORE_0013).execute(p).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO provisioning_hourly (tenant_id, hour, requests, failures, last_at)
         VALUES ('t1', 0, 8, 1, 8)",
    )
    .execute(p)
    .await
    .unwrap();
    // The first start: migration 19 and the copy of the first entries, then the crash.
    let log_file = server::store::log_file_of(p.connect_options().get_filename());
    let mut first = (*p.connect_options()).clone().connect().await.unwrap();
    sqlx::query("ATTACH DATABASE $1 AS provlog")
        .bind(log_file.to_string_lossy().into_owned())
        .execute(&mut first)
        .await
        .unwrap();
    sqlx::migrate!("../migrations/sqlite")
        .run_to(19, &mut first)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO provlog.provisioning_log SELECT * FROM main.provisioning_log WHERE at <= 3",
    )
    .execute(&mut first)
    .await
    .unwrap();
    drop(first);

    db.migrate().await.unwrap();
    let all = logstore::list(&db, "t1", &LogFilter::default(), None, 100, false)
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 8, "every entry once: {ids:?}");
    assert_eq!(ids[0], "000000000008-e8", "newest first");
    assert_eq!(first_hour_counts(&db).await, [(8, 1)]);
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM main.sqlite_master \
         WHERE tbl_name IN ('provisioning_log', 'provisioning_hourly')",
    )
    .fetch_one(p)
    .await
    .unwrap();
    assert_eq!(left, 0, "nothing of the log left in the directory's file");
    // A start after the move finds nothing to move.
    db.migrate().await.unwrap();
}

/// A directory whose log's file went missing (deleted, or the directory's file restored from a
/// backup without it) starts with an empty log that works, instead of one whose every write
/// fails for want of its tables: migration 19 does not run twice.
#[tokio::test]
async fn a_lost_log_file_starts_again_empty() {
    let (db, _dir) = empty_db().await;
    let Some(p) = db.sqlite_pool() else {
        return;
    };
    db.migrate().await.unwrap();
    sqlx::raw_sql("INSERT INTO tenants (id, slug, name, created_at) VALUES ('t1', 'c', 'C', 0)")
        .execute(p)
        .await
        .unwrap();
    let file = p.connect_options().get_filename().to_path_buf();
    let log_file = server::store::log_file_of(&file);
    db.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut f = log_file.clone().into_os_string();
        f.push(suffix);
        let _ = std::fs::remove_file(f);
    }
    let db = Db::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    assert!(log_file.exists());
    let hour = logstore::HourCounts {
        requests: 2,
        failures: 1,
        ..Default::default()
    };
    let hours = std::collections::HashMap::from([(("t1".to_string(), 0), hour)]);
    logstore::write_batch(&db, &[], &hours).await.unwrap();
    assert_eq!(first_hour_counts(&db).await, [(2, 1)]);
    let none = logstore::list(&db, "t1", &LogFilter::default(), None, 10, false)
        .await
        .unwrap();
    assert!(none.is_empty());
}
