//! Periodic background jobs (session pruning, provisioning-log retention) that run on one
//! instance at a time, however many share the database.
//!
//! Every instance runs a small loop per job: take or renew the job's lease (see
//! [`crate::store::leases`]) every third of the lease time; the holder runs the job when its
//! period has passed since the last run by *any* instance (kept with the lease), and keeps
//! renewing while the job runs. When the holder stops, its lease runs out and another instance
//! takes over within one lease time; a clean shutdown gives the leases up at once.
//! `/metrics` shows which jobs this instance holds (`bitabiz_job_lease_held`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Db, leases};

/// A job's work: what it removed (for the log), or why it failed.
pub type JobRun =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// A job's name (the lease key and the `job` label), how often it runs, how long after this
/// process starts it may first run here, and its work.
pub struct Job {
    pub name: &'static str,
    pub period: Duration,
    pub first_after: Duration,
    pub run: JobRun,
}

pub const SESSIONS_PRUNE: &str = "sessions_prune";
pub const PROVISIONING_LOG_PRUNE: &str = "provisioning_log_prune";

/// The server's background jobs: expired console sessions every 10 minutes, and the
/// provisioning log's retention every hour (first a minute after start, off the start's path).
pub fn server_jobs(state: &crate::AppState) -> Vec<Job> {
    let sessions = state.clone();
    let log = (state.db.clone(), state.clock.clone());
    vec![
        Job {
            name: SESSIONS_PRUNE,
            period: Duration::from_secs(600),
            first_after: Duration::ZERO,
            run: Box::new(move || {
                let state = sessions.clone();
                Box::pin(async move {
                    crate::console::prune_sessions(&state)
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        },
        Job {
            name: PROVISIONING_LOG_PRUNE,
            period: Duration::from_secs(3600),
            first_after: Duration::from_secs(60),
            run: Box::new(move || {
                let (db, clock) = log.clone();
                Box::pin(async move {
                    crate::provlog::prune(&db, clock.now_ms())
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        },
    ]
}

/// The running job loops of this process.
pub struct Jobs {
    db: Db,
    metrics: Arc<Metrics>,
    holder: String,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

struct Runner {
    db: Db,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    holder: String,
    lease: Duration,
}

/// An id for this process as a lease holder, readable by an operator: host, process id and a
/// random part (a restarted process with a reused pid is someone else).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

impl Jobs {
    /// Starts one lease loop per job on the current runtime.
    pub fn start(
        db: Db,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        lease: Duration,
        jobs: Vec<Job>,
    ) -> Jobs {
        let holder = holder_id();
        let runner = Arc::new(Runner {
            db: db.clone(),
            clock,
            metrics: metrics.clone(),
            holder: holder.clone(),
            lease,
        });
        let started = Instant::now();
        let tasks = jobs
            .into_iter()
            .map(|job| {
                runner.metrics.set_lease(job.name, None);
                (job.name, tokio::spawn(runner.clone().run(job, started)))
            })
            .collect();
        Jobs {
            db,
            metrics,
            holder,
            tasks,
        }
    }

    /// This process's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Stops the loops (a job in progress is abandoned; each is safe to cut short) and gives
    /// this process's leases up so another instance takes over without waiting for expiry.
    pub async fn stop(self) {
        for (_, t) in &self.tasks {
            t.abort();
        }
        for (name, t) in self.tasks {
            let _ = t.await;
            self.metrics.set_lease(name, None);
        }
        if let Err(e) = leases::release_all(&self.db, &self.holder).await {
            tracing::warn!(error = %e, "giving up the background job leases failed; they expire on their own");
        }
    }
}

impl Runner {
    fn renew_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(100))
    }

    /// Takes or renews the lease; whether this process holds it now. The lease is counted
    /// from before the statement was sent, so this process never believes it holds a lease
    /// longer than the database does.
    async fn take(&self, name: &'static str, held: &mut bool) -> Option<i64> {
        let asked = Instant::now();
        let now = self.clock.now_ms();
        let until = now + self.lease.as_millis() as i64;
        match leases::acquire(&self.db, name, &self.holder, now, until).await {
            Ok(Some(last_run)) => {
                if !*held {
                    tracing::info!(job = name, holder = %self.holder, "this instance now runs the background job");
                }
                *held = true;
                self.metrics.set_lease(name, Some(asked + self.lease));
                Some(last_run)
            }
            Ok(None) => {
                if *held {
                    tracing::warn!(job = name, "another instance took over the background job");
                }
                *held = false;
                self.metrics.set_lease(name, None);
                None
            }
            // The lease stays believed until its own expiry; the next round tries again.
            Err(e) => {
                tracing::warn!(job = name, error = %e, "renewing the background job's lease failed");
                None
            }
        }
    }

    async fn run(self: Arc<Self>, job: Job, started: Instant) {
        let mut held = false;
        let period_ms = job.period.as_millis() as i64;
        loop {
            if let Some(last_run) = self.take(job.name, &mut held).await {
                let now = self.clock.now_ms();
                if started.elapsed() >= job.first_after && now - last_run >= period_ms {
                    self.run_once(&job, &mut held, now).await;
                }
            }
            tokio::time::sleep(self.renew_every()).await;
        }
    }

    /// Runs the job, renewing the lease meanwhile, then records the run with the lease.
    async fn run_once(&self, job: &Job, held: &mut bool, now: i64) {
        let work = (job.run)();
        tokio::pin!(work);
        let mut renew = tokio::time::interval_at(
            tokio::time::Instant::now() + self.renew_every(),
            self.renew_every(),
        );
        let outcome = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = renew.tick() => {
                    // Lost meanwhile (a long stall): this run finishes; the jobs are idempotent.
                    self.take(job.name, held).await;
                }
            }
        };
        match outcome {
            Ok(0) => {}
            Ok(n) => tracing::info!(job = job.name, rows = n, "background job done"),
            Err(e) => tracing::warn!(job = job.name, error = %e, "background job failed"),
        }
        if let Err(e) = leases::mark_run(&self.db, job.name, &self.holder, now).await {
            tracing::warn!(job = job.name, error = %e, "recording the background job's run failed");
        }
    }
}
