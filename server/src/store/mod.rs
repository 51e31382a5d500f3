//! The only place with SQL. One concrete `Db` knows both SQLite and PostgreSQL; the SQL text is
//! shared (`$1` placeholders work in both) and `on_db!` runs the same body on either pool.

pub mod audit;
pub mod batch;
pub mod directory_view;
pub mod gate_cache;
pub mod leases;
pub mod oauth;
pub mod provlog;
pub mod query;
pub mod readers;
pub mod scim_groups;
pub mod scim_users;
pub mod sessions;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod users;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// A SQLite database: its pool, and the readers of its hottest statements ([`readers`]). It
/// derefs to the pool.
#[derive(Clone)]
pub struct SqliteDb {
    pool: SqlitePool,
    readers: Arc<readers::Readers>,
    /// The provisioning log's side ([`Db::log`]); `None` on that side itself.
    log: Option<Arc<SqliteDb>>,
}

impl SqliteDb {
    pub fn new(pool: SqlitePool) -> SqliteDb {
        let log = log_pool(&pool, LOG_READERS, |o| o).map(|p| SqliteDb::with_log(p, None));
        SqliteDb::with_log(pool, log)
    }

    fn with_log(pool: SqlitePool, log: Option<SqliteDb>) -> SqliteDb {
        let readers = readers::Readers::new(
            (*pool.connect_options()).clone(),
            pool.options().get_acquire_timeout(),
        );
        SqliteDb {
            pool,
            readers: Arc::new(readers),
            log: log.map(Arc::new),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn readers(&self) -> &readers::Readers {
        &self.readers
    }
}

/// Page size of the log's file, in bytes (SQLite's default is 4,096). An entry of a user's
/// creation or change is about 1.6 KB with its bodies; the log's table keeps its rows in its
/// key (`WITHOUT ROWID`), where a page of 4 KB holds at most about 1 KB of a row and the rest
/// goes to an overflow page of its own, mostly empty. In pages of 16 KB such an entry fits:
/// the same 1,851,127 entries took 3.9 GB in 4 KB pages and 2.1 GB in 16 KB (each file
/// rebuilt by `VACUUM`); throughput at 1M users was the same within the runs' spread.
pub const LOG_PAGE_SIZE: u32 = 16_384;

/// Connections that read the provisioning log (console pages, the pruning job), at most.
const LOG_READERS: u32 = 4;

/// The file of the provisioning log beside the directory's: `data/bitabiz.db` →
/// `data/bitabiz-log.db`.
///
/// A file of its own, because SQLite has one write lock per file: in the directory's file, each
/// of the log's commits held the lock that SCIM's own writes wait for. (At 1M users, log on
/// against off, five runs: PATCH −9.4% to −12.8%, against −14.8% the same day in one file;
/// POST −5.9% to −12.2%, against −9.4%: that gap is mostly the log's CPU and disk now.)
pub fn log_file_of(directory: &Path) -> PathBuf {
    let stem = directory
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match directory.extension() {
        Some(ext) => format!("{stem}-log.{}", ext.to_string_lossy()),
        None => format!("{stem}-log"),
    };
    directory.with_file_name(name)
}

/// Whether these options name a file (not an in-memory database, which has no file beside).
fn is_file(opts: &SqliteConnectOptions) -> bool {
    let name = opts.get_filename().to_string_lossy();
    !(name.is_empty() || name == ":memory:" || name.starts_with("file:"))
}

/// Connections to the log's file ([`log_file_of`]), opened when first used, with the
/// directory's file attached as `directory`: the log's statements also read names of users and
/// groups and the organisations' settings, and SQLite finds a table not in the log's file
/// there. A transaction that writes only the log's tables takes only the log's write lock.
/// `tune` adjusts the connections' options. `None` for an in-memory database.
fn log_pool(
    directory: &SqlitePool,
    max: u32,
    tune: impl FnOnce(SqliteConnectOptions) -> SqliteConnectOptions,
) -> Option<SqlitePool> {
    let opts = directory.connect_options();
    if !is_file(&opts) {
        return None;
    }
    let attach = opts.get_filename().to_string_lossy().into_owned();
    let log_opts = tune((*opts).clone().filename(log_file_of(opts.get_filename())));
    Some(
        lazy_pool_options(max)
            .acquire_timeout(directory.options().get_acquire_timeout())
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move { attach_file(conn, &attach, "directory").await })
            })
            .connect_lazy_with(log_opts),
    )
}

/// Attaches the database `file` to this connection as `schema` (a name written into the
/// statement: only this module's literals).
async fn attach_file(
    conn: &mut sqlx::SqliteConnection,
    file: &str,
    schema: &'static str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE $1 AS {schema}"
    )))
    .bind(file)
    .execute(conn)
    .await
    .map(drop)
}

impl std::ops::Deref for SqliteDb {
    type Target = SqlitePool;
    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

impl Db {
    /// Where the provisioning log's statements run: on SQLite the log's file
    /// ([`log_file_of`]) through its own pool, on PostgreSQL the same pool. (That side's
    /// `readers` are not used: they would open the log's file without the directory's.)
    pub fn log(&self) -> Db {
        match self {
            Db::Sqlite(SqliteDb { log: Some(log), .. }) => Db::Sqlite((**log).clone()),
            _ => self.clone(),
        }
    }

    /// The SQLite pool, on SQLite.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match self {
            Db::Sqlite(db) => Some(db.pool()),
            Db::Postgres(_) => None,
        }
    }
}

impl From<SqlitePool> for Db {
    fn from(pool: SqlitePool) -> Db {
        Db::Sqlite(SqliteDb::new(pool))
    }
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(db) => {
                let $pool = db.pool();
                $body
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub use crate::on_db;

/// Executes a statement built by `$query` on either pool; yields the number of affected rows.
macro_rules! execute {
    ($db:expr, $query:expr) => {
        $crate::store::on_db!($db, |pool| $query
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    };
}
pub(crate) use execute;

/// One unit of work: a transaction on either database. A change and its audit entry go through
/// the same `Work` and commit together or not at all. On SQLite it holds the write lock from the
/// start (`BEGIN IMMEDIATE`): a transaction that reads and then writes cannot take the lock
/// later when another writer has committed meanwhile ("database is locked").
pub struct Work {
    tx: WorkTx,
    /// Set by a change to tokens, secrets or the provisioning switch: the SCIM gate's cache
    /// must forget what it holds once (and only once) the change is visible.
    credentials_changed: bool,
}

pub enum WorkTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the unit of work's connection, whichever database it is.
#[macro_export]
macro_rules! on_work {
    ($work:expr, |$conn:ident| $body:expr) => {
        match $work.tx_mut() {
            $crate::store::WorkTx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::WorkTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub use crate::on_work;

impl Work {
    pub fn tx_mut(&mut self) -> &mut WorkTx {
        &mut self.tx
    }

    /// Commits everything done through this unit of work.
    pub async fn commit(self) -> StoreResult<()> {
        match self.tx {
            WorkTx::Sqlite(tx) => tx.commit().await?,
            WorkTx::Postgres(tx) => tx.commit().await?,
        }
        if self.credentials_changed {
            gate_cache::credentials_changed();
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.tx, WorkTx::Postgres(_))
    }

    /// The change touches what the SCIM gate caches (see `commit`).
    pub fn changes_credentials(&mut self) {
        self.credentials_changed = true;
    }
}

/// Which unique rule a write broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniqueKey {
    UserName,
    ExternalId,
    GroupName,
    /// The install already has its first organisation.
    Install,
    /// Any other unique index, by name.
    Other(String),
}

impl std::fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UniqueKey::UserName => "userName",
            UniqueKey::ExternalId => "externalId",
            UniqueKey::GroupName => "group name",
            UniqueKey::Install => "installation",
            UniqueKey::Other(s) => s,
        })
    }
}

impl UniqueKey {
    /// From a unique violation: PostgreSQL names the index, SQLite lists its columns.
    fn of(constraint: Option<&str>, message: &str) -> UniqueKey {
        let text = constraint.unwrap_or(message);
        if text.contains("user_name") {
            UniqueKey::UserName
        } else if text.contains("external_id") {
            UniqueKey::ExternalId
        } else if text.contains("scim_groups_tenant_name") || text.contains("display_name_lc") {
            UniqueKey::GroupName
        } else {
            UniqueKey::Other(text.to_string())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The row changed since the version the write was computed from.
    #[error("changed by another write")]
    Stale,
    #[error("conflict on {0}")]
    Conflict(UniqueKey),
    /// The change would leave the organisation without an active admin.
    #[error("the organisation's last active admin")]
    LastAdmin,
    #[error("database error: {0}")]
    Internal(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(UniqueKey::of(d.constraint(), d.message()))
            }
            _ => StoreError::Internal(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("cannot create the database folder {0}: {1}")]
    Folder(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Database pool bounds. `max: None` means the default for the database (8 for SQLite, 16
/// for PostgreSQL: several instances share PostgreSQL's `max_connections`).
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    pub max: Option<u32>,
    pub min: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            max: None,
            min: 0,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl Db {
    /// Connects; for SQLite, creates the file and its folder and turns on WAL, foreign keys and
    /// a busy timeout.
    pub async fn open(url: &str) -> Result<Db, OpenError> {
        Self::open_with(url, PoolSize::default()).await
    }

    /// Like [`Db::open`] with explicit pool bounds.
    pub async fn open_with(url: &str, size: PoolSize) -> Result<Db, OpenError> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(OpenError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| OpenError::Folder(dir.display().to_string(), e))?;
            }
            let pool = SqlitePoolOptions::new()
                // A connection to a local file does not go stale; the check before each use
                // would cost every query a second round trip to the connection's thread.
                .test_before_acquire(false)
                .max_connections(size.max.unwrap_or(8))
                .min_connections(size.min)
                .acquire_timeout(size.acquire_timeout)
                .connect_with(opts)
                .await
                .map_err(OpenError::Connect)?;
            Ok(Db::from(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(size.max.unwrap_or(16))
                .min_connections(size.min)
                .acquire_timeout(size.acquire_timeout)
                .connect(url)
                .await
                .map_err(OpenError::Connect)?;
            Ok(Db::Postgres(pool))
        } else {
            Err(OpenError::UnsupportedUrl)
        }
    }

    /// The connection the provisioning log is written through. On SQLite its own connection,
    /// whose commits are not flushed to disk one by one (`synchronous=NORMAL`): every commit with
    /// `FULL` waits for an fsync while it holds SQLite's single write lock, and SCIM's own writes
    /// queue behind it. WAL keeps the database consistent either way; a process crash loses no
    /// committed entry, a power loss can lose the last batches (as it loses the queue). On
    /// PostgreSQL the same pool (the log's transactions turn off `synchronous_commit` instead).
    pub fn for_log_writes(&self) -> Db {
        match self {
            Db::Sqlite(p) => {
                let tune = |o: SqliteConnectOptions| {
                    o.synchronous(SqliteSynchronous::Normal)
                        // 16 MB of page cache (default 2 MB): a batch's new pages and the
                        // paths to them stay cached between batches instead of being read back.
                        .pragma("cache_size", "-16384")
                };
                match log_pool(p.pool(), 1, tune) {
                    Some(pool) => Db::Sqlite(SqliteDb::with_log(pool, None)),
                    None => Db::from(one_connection(tune((*p.connect_options()).clone()))),
                }
            }
            Db::Postgres(_) => self.clone(),
        }
    }

    /// Applies pending migrations; a failure must stop the start.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        match self {
            Db::Sqlite(p) => {
                // The migrations reach the log's file as `provlog` (see `log_file_of`).
                let opts = (*p.connect_options()).clone();
                let log = match is_file(&opts) {
                    true => log_file_of(opts.get_filename())
                        .to_string_lossy()
                        .into_owned(),
                    false => ":memory:".to_string(),
                };
                let mut conn = opts.connect().await.map_err(OpenError::Connect)?;
                let attached = async {
                    attach_file(&mut conn, &log, "provlog").await?;
                    // Before the file's first page is written; a file that exists keeps its own.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "PRAGMA provlog.page_size = {LOG_PAGE_SIZE}; \
                         PRAGMA provlog.journal_mode = WAL;"
                    )))
                    .execute(&mut conn)
                    .await
                };
                attached.await.map_err(OpenError::Connect)?;
                let done = sqlx::migrate!("../migrations/sqlite").run(&mut conn).await;
                let moved = match done {
                    Ok(()) => match remake_lost_log(&mut conn).await {
                        Ok(()) => move_log_to_its_file(&mut conn).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                let _ = sqlx::Connection::close(conn).await;
                moved
            }
            Db::Postgres(p) => sqlx::migrate!("../migrations/postgres").run(p).await,
        }
        .map_err(OpenError::Migrate)
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(db) => {
                db.readers.close().await;
                db.pool.close().await;
                if let Some(log) = &db.log {
                    log.pool.close().await;
                }
            }
            Db::Postgres(p) => p.close().await,
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        execute!(self, sqlx::query("SELECT 1"))?;
        Ok(())
    }

    pub fn dialect(&self) -> query::Dialect {
        match self {
            Db::Sqlite(_) => query::Dialect::Sqlite,
            Db::Postgres(_) => query::Dialect::Postgres,
        }
    }

    /// `tenant_id` as a term of a statement that reads rows by primary key (see
    /// [`query::Dialect::tenant_by_key`]).
    pub fn tenant_by_key(&self) -> String {
        self.dialect().tenant_by_key("tenant_id")
    }

    /// The SQL for a JSON document bound at placeholder `n` (SQLite stores JSONB blobs, which its
    /// JSON functions read without parsing).
    pub fn json_param(&self, n: usize) -> String {
        match self {
            Db::Sqlite(_) => format!("jsonb(${n})"),
            Db::Postgres(_) => format!("${n}::jsonb"),
        }
    }

    /// Connections open (in use and idle), idle, and the configured largest pool.
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        on_db!(self, |p| (
            p.size(),
            p.num_idle(),
            p.options().get_max_connections()
        ))
    }

    /// Opens a unit of work that will write (see [`Work`]).
    pub async fn begin_work(&self) -> StoreResult<Work> {
        let tx = match self {
            Db::Sqlite(p) => WorkTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => WorkTx::Postgres(p.begin().await?),
        };
        Ok(Work {
            tx,
            credentials_changed: false,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// The log's tables and their columns, as the directory's file held them before migration 19.
const LOG_TABLES: [(&str, &str); 2] = [
    (
        "provisioning_log",
        "tenant_id, at, id, duration_us, method, path, operation, action, target_type, \
         target_id, target_name, outcome, status, scim_type, error_detail, client_addr, \
         request_body, response_body, parent_id, prev_entry",
    ),
    (
        "provisioning_hourly",
        "tenant_id, hour, requests, failures, rejected, dropped, last_at",
    ),
];

/// Makes the log's tables again when its file has lost them after migration 19 ran (the file
/// deleted, or a backup of the directory's file restored without it): the log then starts
/// empty, where every write of it failed before. Migration 19's statements can be repeated
/// (`IF NOT EXISTS`); a later migration that changes the log's tables must be repeated here.
async fn remake_lost_log(
    conn: &mut sqlx::SqliteConnection,
) -> Result<(), sqlx::migrate::MigrateError> {
    let present: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM provlog.sqlite_master WHERE type = 'table' AND name = 'provisioning_log'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if present.is_none() {
        tracing::warn!("the provisioning log's file had none of its tables; the log starts empty");
        sqlx::raw_sql(include_str!(
            "../../../migrations/sqlite/0019_log_in_its_own_file.sql"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves rows the log wrote into the directory's file (before migration 19) to the log's own
/// (attached as `provlog`), table by table: a transaction that copies (it writes only the log's
/// file), then one that drops the old table (only the directory's). A crash between them leaves
/// both, and the next start copies again, skipping what is there. SQLite would commit one
/// transaction over both files one file after the other, the directory's first.
async fn move_log_to_its_file(
    conn: &mut sqlx::SqliteConnection,
) -> Result<(), sqlx::migrate::MigrateError> {
    for (table, columns) in LOG_TABLES {
        let present: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = $1",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await?;
        if present.is_none() {
            continue;
        }
        let copy = format!(
            "INSERT OR IGNORE INTO provlog.{table} ({columns}) SELECT {columns} FROM main.{table}"
        );
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(copy))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if rows > 0 {
            tracing::info!(
                table,
                rows,
                "moved the provisioning log's rows to its own file"
            );
        }
        let drop = format!("DROP TABLE main.{table}");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A pool of one SQLite connection, opened when first used, for a writer that needs its own
/// (the log's, the group commit's). An in-memory database is shared by name (sqlx opens it with
/// a shared cache), so such a pool reaches the same one as the pool whose options it was given.
pub(crate) fn one_connection(opts: SqliteConnectOptions) -> SqlitePool {
    lazy_pool_options(1).connect_lazy_with(opts)
}

/// A pool of up to `max` SQLite connections opened when first used, none kept when idle, not
/// checked before each use (a connection to a local file does not go stale).
fn lazy_pool_options(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(max)
        .min_connections(0)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new user's id: a UUID that begins with its creation time (version 7), so a new user's
/// entry in the primary key's index lands on that index's last page, which every create
/// writes and keeps cached, instead of on a random one (at 1,000,000 users, mostly a page read
/// from disk). Ids stay opaque to clients: after the time come 74 bits, a counter that starts at
/// a random value each millisecond (so ids of one process sort in the order they were made)
/// and random bits.
pub fn new_user_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
