//! The one task that writes the log: takes what is queued (waiting briefly to gather a batch),
//! describes each exchange, resolves organisation and target names with one query per batch,
//! and writes entries and hourly counters in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::describe::{self, Outcome, Seen, TargetType};
use super::{DAY_MS, DEFAULT_RETENTION_DAYS, Exchange, HOUR_MS, Inner, LostCounts, Msg};
use crate::store::provlog::{self as store, HourCounts, LogRow};
use crate::store::{Db, StoreResult};

/// Entries per batch, at most.
const BATCH: usize = 4000;
/// How long the writer waits for more entries once it has some: fewer, larger transactions
/// under load, at the cost of this much delay before an entry shows in the console. Few
/// commits matter: on SQLite each commit makes every connection reading the directory drop its
/// page cache (measured at 1M users: 25 ms cost lookups 13–18% of their throughput, 250 ms 8–10%).
const LINGER: Duration = Duration::from_millis(250);
/// Hourly counters are kept this long (the daily chart shows 30 days).
const KEEP_HOURS_MS: i64 = 90 * DAY_MS;
/// Slug lookups cached (organisations are few; unknown slugs are not cached).
const SLUG_CACHE: usize = 10_000;

pub struct Writer {
    rx: mpsc::Receiver<Msg>,
    db: Db,
    inner: Arc<Inner>,
    slugs: HashMap<String, String>,
}

impl Writer {
    pub(super) fn new(rx: mpsc::Receiver<Msg>, db: Db, inner: Arc<Inner>) -> Writer {
        Writer {
            rx,
            db: db.for_log_writes(),
            inner,
            slugs: HashMap::new(),
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(mut self) {
        let mut buf: Vec<Msg> = Vec::with_capacity(BATCH);
        loop {
            if self.rx.recv_many(&mut buf, BATCH).await == 0 {
                return;
            }
            if buf.len() < BATCH && !buf.iter().any(|m| matches!(m, Msg::Flush(_))) {
                // Sleep while the batch gathers rather than wake for every entry: a wake per
                // SCIM request cost more than writing the entry.
                tokio::time::sleep(LINGER).await;
                while buf.len() < BATCH {
                    match self.rx.try_recv() {
                        Ok(m) => buf.push(m),
                        Err(_) => break,
                    }
                }
            }
            let mut entries = Vec::new();
            let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
            for m in buf.drain(..) {
                match m {
                    Msg::Entry(e) => entries.push(*e),
                    Msg::Flush(done) => flushes.push(done),
                }
            }
            self.write(entries).await;
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    async fn write(&mut self, entries: Vec<Exchange>) {
        let bytes: usize = entries.iter().map(Exchange::body_bytes).sum();
        let keys: Vec<(String, i64, u16)> = entries
            .iter()
            .map(|e| (e.slug.clone(), e.at, e.status))
            .collect();
        let entries = match describe_batch(entries).await {
            Ok(described) => described,
            Err(e) => {
                // A bug, not a database failure: the batch is counted as lost, never silently.
                tracing::error!(error = %e, "describing provisioning log entries failed");
                for (slug, at, status) in keys {
                    self.inner.count_lost(&slug, at, status, 1);
                }
                self.inner.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                return;
            }
        };
        let lost = std::mem::take(&mut *self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()));
        if entries.is_empty() && lost.is_empty() {
            return;
        }
        let mut attempt = 0;
        loop {
            match self.try_write(&entries, &lost).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "provisioning log write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = entries.len(), "provisioning log write failed; entries lost");
                    // Counted as lost; the counters are retried with the next batch.
                    for (e, _) in &entries {
                        self.inner.count_lost(&e.slug, e.at, e.status, 1);
                    }
                    let mut l = self.inner.lost.lock().unwrap_or_else(|p| p.into_inner());
                    for (k, v) in lost {
                        let c = l.entry(k).or_default();
                        c.requests += v.requests;
                        c.failures += v.failures;
                        c.rejected += v.rejected;
                    }
                    break;
                }
            }
        }
        self.inner.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    async fn tenant_of(&mut self, slug: &str) -> StoreResult<Option<String>> {
        if let Some(id) = self.slugs.get(slug) {
            return Ok(Some(id.clone()));
        }
        let id = store::tenant_id_by_slug(&self.db, slug).await?;
        if let Some(id) = &id {
            if self.slugs.len() >= SLUG_CACHE {
                self.slugs.clear();
            }
            self.slugs.insert(slug.to_string(), id.clone());
        }
        Ok(id)
    }

    async fn try_write(
        &mut self,
        entries: &[(Exchange, describe::Described)],
        lost: &HashMap<(String, i64), LostCounts>,
    ) -> StoreResult<()> {
        let mut rows: Vec<LogRow> = Vec::with_capacity(entries.len());
        let mut hours: HashMap<(String, i64), HourCounts> = HashMap::new();
        for (e, d) in entries {
            // Requests for an organisation that does not exist are not anyone's log.
            let Some(tenant) = self.tenant_of(&e.slug).await? else {
                continue;
            };
            let d = d.clone();
            let skipped = e.bodies_dropped.then(|| {
                "(not kept: the log writer was busy; the request was answered normally)".to_string()
            });
            let hour = e.at - e.at.rem_euclid(HOUR_MS);
            let c = hours.entry((tenant.clone(), hour)).or_default();
            // A Bulk request is counted through its operations, unless it failed as a whole.
            let counted =
                !(d.operation == describe::Operation::Bulk && d.outcome == Outcome::Success);
            if counted {
                c.requests += 1;
                match d.outcome {
                    Outcome::Failure => c.failures += 1,
                    Outcome::Rejected => c.rejected += 1,
                    Outcome::Success => {}
                }
            }
            c.last_at = c.last_at.max(e.at);
            rows.push(LogRow {
                id: e.id.clone(),
                tenant_id: tenant,
                at: e.at,
                duration_us: e.duration_us,
                method: e.method.clone(),
                path: e.path.clone(),
                operation: d.operation.code().to_string(),
                action: d.action,
                target_type: d.target_type.map(|t| t.code().to_string()),
                target_id: d.target_id,
                target_name: d.target_name,
                outcome: d.outcome.code().to_string(),
                status: e.status as i64,
                scim_type: d.scim_type,
                error_detail: d.error_detail,
                client_addr: e.client_addr.clone(),
                request_body: d.request_text.or(skipped.clone()),
                response_body: d.response_text.or(skipped),
                parent_id: e.parent_id.clone(),
            });
        }
        self.resolve_names(&mut rows).await?;
        for ((slug, hour), l) in lost {
            let Some(tenant) = self.tenant_of(slug).await? else {
                continue;
            };
            let c = hours.entry((tenant, *hour)).or_default();
            c.requests += l.requests;
            c.failures += l.failures;
            c.rejected += l.rejected;
            c.dropped += l.requests;
        }
        store::write_batch(&self.db, &rows, &hours).await
    }

    /// Fills in target names the request and answer did not carry (DELETE, group PATCH): from
    /// the batch itself, the users/groups tables, else the last entry that knew the name.
    async fn resolve_names(&self, rows: &mut [LogRow]) -> StoreResult<()> {
        let mut known: HashMap<(String, String), String> = HashMap::new();
        for r in rows.iter() {
            if let (Some(id), Some(name)) = (&r.target_id, &r.target_name) {
                known.insert((r.tenant_id.clone(), id.clone()), name.clone());
            }
        }
        let mut wanted: HashMap<(String, bool), Vec<String>> = HashMap::new();
        for r in rows.iter() {
            if r.target_name.is_none()
                && let Some(id) = &r.target_id
                && !known.contains_key(&(r.tenant_id.clone(), id.clone()))
            {
                let groups = r.target_type.as_deref() == Some(TargetType::Group.code());
                wanted
                    .entry((r.tenant_id.clone(), groups))
                    .or_default()
                    .push(id.clone());
            }
        }
        for ((tenant, groups), mut ids) in wanted {
            ids.sort();
            ids.dedup();
            let found = store::target_names(&self.db, &tenant, groups, &ids).await?;
            for id in ids {
                let name = match found.get(&id) {
                    Some(n) => Some(n.clone()),
                    None => store::last_known_name(&self.db, &tenant, &id).await?,
                };
                if let Some(n) = name {
                    known.insert((tenant.clone(), id), n);
                }
            }
        }
        for r in rows.iter_mut() {
            if r.target_name.is_none()
                && let Some(id) = &r.target_id
            {
                r.target_name = known.get(&(r.tenant_id.clone(), id.clone())).cloned();
            }
            r.action =
                describe::fill_target(&r.action, r.target_name.as_deref(), r.target_id.as_deref());
        }
        Ok(())
    }
}

/// Describes a batch on a blocking thread: parsing and redacting hundreds of bodies must not
/// hold a runtime worker away from answering requests.
async fn describe_batch(
    entries: Vec<Exchange>,
) -> Result<Vec<(Exchange, describe::Described)>, String> {
    let describe_all = |entries: Vec<Exchange>| -> Vec<(Exchange, describe::Described)> {
        entries
            .into_iter()
            .map(|e| {
                let d = describe::describe(&Seen {
                    method: &e.method,
                    path: &e.path,
                    query: &e.query,
                    status: e.status,
                    request: e.request.as_deref(),
                    response: e.response.as_deref(),
                });
                (e, d)
            })
            .collect()
    };
    tokio::task::spawn_blocking(move || describe_all(entries))
        .await
        .map_err(|e| e.to_string())
}

/// Deletes entries past each organisation's retention and old hourly counters.
pub async fn prune(db: &Db, now: i64) -> StoreResult<u64> {
    store::prune(db, now, DEFAULT_RETENTION_DAYS, KEEP_HOURS_MS).await
}
