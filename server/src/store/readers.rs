//! Connections for the hottest single-statement reads on SQLite (Entra's lookups, Test
//! Connection, the listings' pages), handed out without sqlx's check on release.
//!
//! sqlx returns every pooled connection with a ping: a round trip to the connection's own
//! thread (SQLite runs each connection on one) that wakes it and then the request's task
//! again. It is there to flush what a cancelled future may have left open, a transaction
//! above all. A reader runs single statements only, outside any transaction, and sqlx-sqlite
//! finishes or resets a statement whose future was dropped before it runs the next command,
//! so a reader goes straight back to the idle list. Entra's lookup at a million users, log
//! on, interleaved runs: 13,000/s with 125 µs of CPU a request through the pool, 15,600/s
//! with 110 µs through readers.

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How many readers a database keeps at most: a reader's statement holds its thread for tens
/// of microseconds, so a few keep both cores busy while other connections serve the rest.
/// Six measured the same as three (Entra's lookup 15,058–16,099/s against 15,064–15,841/s at
/// a million users, interleaved), with more memory: each reader has its own page cache and
/// statement cache.
pub const READERS: usize = 3;

/// The readers of one SQLite database, opened when first needed.
pub struct Readers {
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
    opts: SqliteConnectOptions,
    acquire_timeout: Duration,
}

/// A reader lent out; it goes back to the idle list when dropped, unless discarded.
pub struct Reader<'a> {
    conn: Option<SqliteConnection>,
    readers: &'a Readers,
    _permit: SemaphorePermit<'a>,
}

impl Readers {
    /// Readers that connect with `opts` (the pool's own, so the same pragmas apply).
    pub fn new(opts: SqliteConnectOptions, acquire_timeout: Duration) -> Readers {
        Readers {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(READERS),
            opts,
            acquire_timeout,
        }
    }

    /// An idle reader, or a new one; waits for one to come back while all are lent, up to
    /// the pool's own acquire timeout.
    pub async fn get(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if self.permits.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => SqliteConnection::connect_with(&self.opts).await?,
        };
        Ok(Reader {
            conn: Some(conn),
            readers: self,
            _permit: permit,
        })
    }

    /// Closes the idle readers; those lent out close when they come back, and no reader is
    /// lent any more.
    pub async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.lock());
        for conn in idle {
            // A reader that fails to close cleanly is gone either way.
            let _ = conn.close().await;
        }
    }

    /// How many readers are open and idle (for tests).
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list is consistent at every step, so a panic elsewhere leaves nothing to repair.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reader<'_> {
    /// The connection, for one statement.
    pub fn conn(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }

    /// Drops the connection instead of returning it: after an error nothing is assumed about
    /// its state.
    pub fn discard(mut self) {
        self.conn = None;
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.readers.permits.is_closed()
        {
            self.readers.lock().push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readers(acquire_timeout: Duration) -> (Readers, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/r.db", dir.path().display());
        let opts: SqliteConnectOptions = url.parse().unwrap();
        let opts = opts
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        (Readers::new(opts, acquire_timeout), dir)
    }

    async fn one(reader: &mut Reader<'_>, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(reader.conn())
            .await
            .unwrap()
    }

    /// A reader goes back to the idle list and is lent again; a discarded one is closed.
    #[tokio::test]
    async fn readers_are_lent_again_unless_discarded() {
        let (readers, _dir) = readers(Duration::from_secs(10)).await;
        let mut a = readers.get().await.unwrap();
        let mut b = readers.get().await.unwrap();
        assert_eq!(one(&mut a, "SELECT 1").await, 1);
        assert_eq!(one(&mut b, "SELECT 2").await, 2);
        drop(a);
        drop(b);
        assert_eq!(readers.idle(), 2);
        let mut again = readers.get().await.unwrap();
        assert_eq!(readers.idle(), 1, "an idle reader was lent, none opened");
        assert_eq!(one(&mut again, "SELECT 3").await, 3);
        again.discard();
        assert_eq!(readers.idle(), 1);
    }

    /// At most [`READERS`] are lent at once: one more waits, up to the acquire timeout.
    #[tokio::test]
    async fn no_more_than_the_limit_are_lent() {
        let (readers, _dir) = readers(Duration::from_millis(50)).await;
        let mut lent = Vec::new();
        for _ in 0..READERS {
            lent.push(readers.get().await.unwrap());
        }
        assert!(matches!(
            readers.get().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        lent.pop();
        assert!(readers.get().await.is_ok());
    }

    /// A reader whose statement was abandoned half-way (a request that timed out, a client
    /// that left) answers its next statement with that statement's rows: this is why readers
    /// need no check on release.
    #[tokio::test]
    async fn a_reader_whose_statement_was_abandoned_answers_the_next_one_right() {
        let (readers, _dir) = readers(Duration::from_secs(10)).await;
        let mut reader = readers.get().await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(reader.conn())
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (7)")
            .execute(reader.conn())
            .await
            .unwrap();
        {
            // A statement that runs for seconds, dropped after it started.
            let long = sqlx::query_scalar::<_, i64>(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                 WHERE x < 100000000) SELECT x FROM c",
            )
            .fetch_all(reader.conn());
            tokio::select! {
                _ = long => panic!("the long statement was meant to be abandoned"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        drop(reader);
        assert_eq!(readers.idle(), 1);
        let mut again = readers.get().await.unwrap();
        assert_eq!(one(&mut again, "SELECT n FROM t").await, 7);
        assert_eq!(one(&mut again, "SELECT count(*) FROM t").await, 1);
    }

    /// After `close`, no reader is lent and the idle ones are gone.
    #[tokio::test]
    async fn closed_readers_lend_nothing() {
        let (readers, _dir) = readers(Duration::from_secs(10)).await;
        let lent = readers.get().await.unwrap();
        drop(readers.get().await.unwrap());
        readers.close().await;
        assert_eq!(readers.idle(), 0);
        assert!(matches!(readers.get().await, Err(sqlx::Error::PoolClosed)));
        drop(lent);
        assert_eq!(
            readers.idle(),
            0,
            "a reader lent before the close is not kept"
        );
    }
}
