//! Group commit for SQLite writes on the hot path.
//!
//! SQLite has one writer at a time, and each commit waits for the disk (an fsync: about
//! 0.8 ms on our machines), so writes committed one by one top out near 1,200 per second
//! whatever the CPU, and concurrent writers poll for the lock in millisecond sleeps. Here
//! writes queue in the process instead: one writer (on a thread of its own) takes every write
//! waiting, runs each in its own savepoint inside one transaction, commits once, and only then
//! answers each caller.
//!
//! - A write that fails (a uniqueness conflict, say) is rolled back to its savepoint alone;
//!   the others in the batch still commit.
//! - Nobody hears "done" before the commit that holds their write succeeded; if the commit
//!   fails, every write of the batch hears the failure.
//! - Writes of one batch run in the order they were queued and see each other, as they would
//!   one after another.
//! - A write of one statement ([`Batcher::write_statement`]) needs no savepoint: SQLite backs
//!   out a statement that breaks a constraint by itself and the transaction goes on. Each
//!   savepoint and release is a round trip to the connection's thread, which cost more than
//!   the insert itself. Any other failure of such a write fails the whole batch (some errors
//!   end the transaction, and nothing after them may run outside it).

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Weak};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{StoreError, StoreResult};

// Work must not open a transaction of its own: it runs inside the batch's.

/// Writes per transaction, at most.
const MAX_BATCH: usize = 128;
/// Writes waiting, at most; beyond, callers wait for room (backpressure, never loss).
const QUEUE: usize = 1024;

/// A write's future, boxed (a batch holds writes of several kinds).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Done = Box<dyn Any + Send>;
type Work =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<Done>> + Send>;

struct Job {
    work: Work,
    /// One statement: no savepoint (see the module's notes).
    one_statement: bool,
    answer: oneshot::Sender<StoreResult<Done>>,
}

/// Handle to the writer of one SQLite pool: cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Job>,
}

/// The in-process gate of one SQLite database's write lock, shared by every batcher of this
/// process on that file (a test or a tool may start several). When one holds SQLite's write
/// lock, another learns it only by failing, and SQLite's busy handler retries after sleeps of
/// 1, 2, 5, 10 … ms. Taking this gate around each transaction, the next starts the moment the
/// previous commits, in the order they came. (Other processes on the same file still meet the
/// busy handler. The provisioning log has a file and a write lock of its own,
/// `store::log_file_of`.)
pub type WriteGate = Arc<Mutex<()>>;

/// The gate of the database `pool` writes, shared by every pool of this process on that file.
pub fn write_gate(pool: &SqlitePool) -> WriteGate {
    static GATES: LazyLock<std::sync::Mutex<HashMap<PathBuf, Weak<Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let key = pool.connect_options().get_filename().to_path_buf();
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(gate) = gates.get(&key).and_then(Weak::upgrade) {
        return gate;
    }
    gates.retain(|_, g| g.strong_count() > 0);
    let gate = WriteGate::default();
    gates.insert(key, Arc::downgrade(&gate));
    gate
}

/// Page cache of the batches' connection, in KiB (SQLite's default is 2,000).
const WRITER_CACHE_KB: u32 = 32 * 1024;

/// The batches' own connection (one: SQLite has one writer at a time anyway).
///
/// - **Its own, so its page cache stays warm.** A connection drops its whole page cache when it
///   finds that another connection wrote since its last transaction. On the shared pool a batch
///   ran on whichever connection was free, one that other batches had written behind, and read
///   every page of its inserts' paths again (root to leaf, in every index). This connection is
///   written behind only by rare console writes (the log has a file of its own); 32 MB holds
///   the upper levels of every index at 1,000,000 users.
/// - **Savepoint journals in memory** (`temp_store=MEMORY`). A batch's savepoints keep a copy
///   of each page a write changes; past 64 KiB SQLite moved that copy to a temporary file and
///   wrote it there. The journal is bounded by the batch ([`MAX_BATCH`] writes).
///
/// Measured at 1,000,000 users (release, 16 clients): POST /Users 845–1,185/s before, 1,210–1,426
/// with a 64 MB cache and 1,232 with this one; the writer thread's reads fell from 9% to 2% of
/// the server's samples and the temporary file's writes (11%) went away.
fn writer_pool(pool: &SqlitePool) -> SqlitePool {
    let opts = (*pool.connect_options())
        .clone()
        .pragma("cache_size", format!("-{WRITER_CACHE_KB}"))
        .pragma("temp_store", "MEMORY");
    super::one_connection(opts)
}

fn internal(what: &str) -> StoreError {
    StoreError::Internal(sqlx::Error::Protocol(what.to_string()))
}

impl Batcher {
    /// Starts the writer on a thread of its own (`directory-writer`; as a task of the current
    /// runtime if that thread cannot start); it ends when every handle is dropped.
    ///
    /// Its own thread, because a batch waits for its connection's thread after every
    /// statement: as a task it then waited for a runtime worker too, and under load those are
    /// busy answering requests (the provisioning log, when on, adds to their work).
    pub fn start(pool: SqlitePool) -> Batcher {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let writer = (writer_pool(&pool), write_gate(&pool), jobs);
        crate::process::spawn_on_own_thread("directory-writer", writer, |(p, g, j), _| {
            run(p, g, j)
        });
        Batcher { queue }
    }

    /// Runs `work` in the next batch and answers once that batch is committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.queue_work(work, false).await
    }

    /// Like [`Batcher::write`] for a `work` that runs exactly one statement, whose only
    /// expected failure is a uniqueness conflict.
    pub async fn write_statement<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.queue_work(work, true).await
    }

    async fn queue_work<T, F>(&self, work: F, one_statement: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (answer, wait) = oneshot::channel();
        let work: Work =
            Box::new(move |c| Box::pin(async move { work(c).await.map(|v| Box::new(v) as Done) }));
        self.queue
            .send(Job {
                work,
                one_statement,
                answer,
            })
            .await
            .map_err(|_| internal("the write queue is closed"))?;
        let done = wait
            .await
            .map_err(|_| internal("the writer stopped before answering"))??;
        done.downcast::<T>()
            .map(|v| *v)
            .map_err(|_| internal("the writer answered with another type"))
    }
}

async fn run(pool: SqlitePool, gate: WriteGate, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (works, answers): (Vec<(Work, bool)>, Vec<_>) = batch
            .drain(..)
            .map(|j| ((j.work, j.one_statement), j.answer))
            .unzip();
        // A write that panics (a bug) fails its batch, rolled back, and not the writer: a dead
        // writer would leave the server unable to write until it restarts.
        let n = answers.len();
        let results = match tokio::spawn(commit_batch(pool.clone(), gate.clone(), works)).await {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "a write batch panicked; none of it committed");
                (0..n)
                    .map(|_| Err(internal("the write batch failed")))
                    .collect()
            }
        };
        for (answer, result) in answers.into_iter().zip(results) {
            // A caller that went away (request cancelled) still had its write committed.
            let _ = answer.send(result);
        }
    }
}

/// Runs each work in its savepoint of one transaction; one answer per work, in order.
async fn commit_batch(
    pool: SqlitePool,
    gate: WriteGate,
    works: Vec<(Work, bool)>,
) -> Vec<StoreResult<Done>> {
    let n = works.len();
    // Held until the transaction ends, committed or rolled back (dropped after `tx`).
    let _gate = gate.lock().await;
    let fail_all = |what: &str| (0..n).map(|_| Err(internal(what))).collect();
    // IMMEDIATE: the write lock is taken now, so no statement of the batch fails on it. A
    // transaction dropped without commit is rolled back.
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "could not start a write batch");
            return fail_all("could not start a transaction");
        }
    };
    let mut answers = Vec::with_capacity(n);
    for (work, one_statement) in works {
        if one_statement {
            let result = work(&mut tx).await;
            match &result {
                Ok(_) | Err(StoreError::Conflict(_)) => answers.push(result),
                Err(e) => {
                    tracing::error!(error = %e, "a write of the batch failed");
                    return fail_all("the write batch failed");
                }
            }
            continue;
        }
        if let Err(e) = sqlx::query("SAVEPOINT w").execute(&mut *tx).await {
            tracing::error!(error = %e, "a savepoint of the write batch failed");
            return fail_all("the write batch failed");
        }
        let result = work(&mut tx).await;
        let end = if result.is_ok() {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = sqlx::raw_sql(end).execute(&mut *tx).await {
            // The transaction's state is unknown: nothing of it may commit.
            tracing::error!(error = %e, "a savepoint of the write batch failed");
            return fail_all("the write batch failed");
        }
        answers.push(result);
    }
    if let Err(e) = tx.commit().await {
        tracing::error!(error = %e, "a write batch did not commit");
        return fail_all("the write did not commit");
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> SqlitePool {
        let dir = tempfile::tempdir().unwrap().keep();
        let url = format!("sqlite://{}/b.db", dir.display());
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                opts.create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
            )
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    /// The batchers of one database share one gate, and each waits for it: while it is held,
    /// neither starts its transaction. Another database has its own.
    #[tokio::test]
    async fn batchers_of_one_database_take_turns_at_one_gate() {
        let pool = pool().await;
        let same = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with((*pool.connect_options()).clone())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&write_gate(&pool), &write_gate(&same)));
        let other = super::tests::pool().await;
        assert!(!Arc::ptr_eq(&write_gate(&pool), &write_gate(&other)));

        let held = write_gate(&pool).lock_owned().await;
        let writes = [("a", pool.clone()), ("b", same.clone())].map(|(key, pool)| {
            let b = Batcher::start(pool);
            tokio::spawn(async move { b.write(insert(key)).await })
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            writes.iter().all(|w| !w.is_finished()),
            "each batch waited for the gate"
        );
        drop(held);
        for write in writes {
            assert_eq!(write.await.unwrap().unwrap(), 1);
        }
    }

    /// The batches run on the writer's own thread, not on the runtime of whoever started it,
    /// and the thread ends once every handle is dropped.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn batches_run_on_a_thread_of_their_own() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        let (name, task) = b
            .write(|_c| {
                Box::pin(async move {
                    // `<pid>/task/<tid>`: the thread as the system knows it.
                    let me = std::fs::read_link("/proc/thread-self").unwrap();
                    let name = std::thread::current().name().map(str::to_string);
                    Ok((name, std::path::Path::new("/proc").join(me)))
                })
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("directory-writer"));
        assert!(task.exists());
        assert_eq!(b.write(insert("after")).await.unwrap(), 1);
        drop(b);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while task.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer's thread did not end"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    fn insert(
        k: &'static str,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<u64>> + Send + 'static
    {
        move |c| {
            Box::pin(async move {
                let r = sqlx::query("INSERT INTO t (k) VALUES ($1)")
                    .bind(k)
                    .execute(&mut *c)
                    .await?;
                Ok(r.rows_affected())
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_together_and_a_failure_stays_alone() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        let keys: Vec<&'static str> = vec!["a", "b", "c", "a", "d", "b", "e"];
        let tasks: Vec<_> = keys
            .iter()
            .map(|k| {
                let b = b.clone();
                let k = *k;
                tokio::spawn(async move { (k, b.write(insert(k)).await) })
            })
            .collect();
        let mut ok = Vec::new();
        let mut conflicts = 0;
        for t in tasks {
            match t.await.unwrap() {
                (k, Ok(1)) => ok.push(k),
                (_, Err(StoreError::Conflict(_))) => conflicts += 1,
                (k, other) => panic!("{k}: {other:?}"),
            }
        }
        ok.sort();
        assert_eq!(ok, vec!["a", "b", "c", "d", "e"]);
        assert_eq!(conflicts, 2, "each duplicate fails alone");
        let stored: Vec<String> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, vec!["a", "b", "c", "d", "e"]);
    }

    /// A write that fails for another reason than a conflict.
    fn broken()
    -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<u64>> + Send + 'static
    {
        move |c| {
            Box::pin(async move {
                let r = sqlx::query("INSERT INTO missing (k) VALUES (1)")
                    .execute(&mut *c)
                    .await?;
                Ok(r.rows_affected())
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_panics_fails_its_batch_and_the_writer_goes_on() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        // Hold the write lock so the three writes gather into one batch behind the first.
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.write(insert("first")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let before = tokio::spawn({
            let b = b.clone();
            async move { b.write(insert("before")).await }
        });
        let panics = tokio::spawn({
            let b = b.clone();
            async move {
                b.write(
                    |_c: &mut SqliteConnection| -> BoxFuture<'_, StoreResult<u64>> {
                        Box::pin(async { panic!("a bug in a write") })
                    },
                )
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        drop(conn);
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert!(before.await.unwrap().is_err(), "its batch did not commit");
        assert!(panics.await.unwrap().is_err());
        // The writer is still there.
        assert_eq!(b.write(insert("after")).await.unwrap(), 1);
        let stored: Vec<String> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, vec!["after", "first"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_statement_writes_need_no_savepoint_but_an_odd_failure_fails_the_batch() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        let keys: Vec<&'static str> = vec!["a", "b", "a", "c", "b"];
        let tasks: Vec<_> = keys
            .iter()
            .map(|k| {
                let b = b.clone();
                let k = *k;
                tokio::spawn(async move { b.write_statement(insert(k)).await })
            })
            .collect();
        let mut conflicts = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(1) => {}
                Err(StoreError::Conflict(_)) => conflicts += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(conflicts, 2, "a duplicate is backed out alone");
        let stored: Vec<String> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, vec!["a", "b", "c"]);

        // Any other failure: nothing of the batch commits and every write hears it. While
        // another connection holds the write lock, a first write waits alone for it and the
        // next three gather into one batch behind it.
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        let spawn = |w| {
            let b = b.clone();
            tokio::spawn(async move { b.write_statement(w).await })
        };
        let waiting = spawn(Box::new(insert("z"))
            as Box<
                dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<u64>>
                    + Send,
            >);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let batch = [
            spawn(Box::new(insert("d"))),
            spawn(Box::new(broken())),
            spawn(Box::new(insert("e"))),
        ];
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        drop(conn);
        assert_eq!(waiting.await.unwrap().unwrap(), 1);
        for t in batch {
            assert!(t.await.unwrap().is_err());
        }
        let stored: Vec<String> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(
            stored,
            vec!["a", "b", "c", "z"],
            "nothing of the failed batch"
        );
    }

    /// The connection's `temp_store` and `cache_size`, read inside a batch.
    fn settings()
    -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<(i64, i64)>>
    + Send
    + 'static {
        move |c| {
            Box::pin(async move {
                let temp: i64 = sqlx::query_scalar("PRAGMA temp_store")
                    .fetch_one(&mut *c)
                    .await?;
                let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
                    .fetch_one(&mut *c)
                    .await?;
                Ok((temp, cache))
            })
        }
    }

    /// The batches write through their own connection, with a large page cache and their
    /// savepoints' journal in memory; the pool's connections keep SQLite's defaults.
    #[tokio::test]
    async fn batches_write_through_their_own_connection_with_a_warm_cache() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        let kb = -i64::from(WRITER_CACHE_KB);
        assert_eq!(b.write(settings()).await.unwrap(), (2, kb));
        let mut other = pool.acquire().await.unwrap();
        let temp: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(&mut *other)
            .await
            .unwrap();
        assert_eq!(temp, 0, "the pool's connections are left as they were");
        drop(other);
        // Writes through the batches' connection are seen by the pool.
        assert_eq!(b.write(insert("seen")).await.unwrap(), 1);
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t WHERE k = 'seen'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn an_answer_comes_after_the_commit() {
        let pool = pool().await;
        let b = Batcher::start(pool.clone());
        b.write(insert("x")).await.unwrap();
        // Another connection sees it: the answer came after the commit.
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE k = 'x'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
