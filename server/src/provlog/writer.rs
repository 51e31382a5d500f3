//! The one writer of the log (a thread of its own on SQLite, a task on PostgreSQL): takes what
//! is queued (waiting briefly to gather a batch), describes each exchange, resolves
//! organisation and target names with one query per batch, and writes entries and hourly
//! counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::describe::{self, Outcome, Seen, TargetType};
use super::{DAY_MS, DEFAULT_RETENTION_DAYS, Exchange, HOUR_MS, Inner, LostCounts, Msg, Text};
use crate::store::provlog::{self as store, HourCounts, LogRow};
use crate::store::{Db, StoreResult};

/// Entries per batch, at most.
const BATCH: usize = 4000;
/// How long the writer waits for more entries once it has some: fewer, larger transactions
/// under load, at the cost of this much delay before an entry shows in the console. Few
/// commits mattered most while the log shared the directory's SQLite file: each commit made
/// every connection reading the directory drop its page cache (measured at 1M users: 25 ms cost
/// lookups 13–18% of their throughput, 250 ms 8–10%). In its own file (`store::log_file_of`)
/// only the log's readers do.
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
    /// Runs on a thread of its own ([`Writer::spawn`]): describes where it runs.
    own_thread: bool,
}

impl Writer {
    pub(super) fn new(rx: mpsc::Receiver<Msg>, db: Db, inner: Arc<Inner>) -> Writer {
        Writer {
            rx,
            db: db.for_log_writes(),
            inner,
            slugs: HashMap::new(),
            own_thread: false,
        }
    }

    /// Starts the writer. On SQLite it runs on a thread of its own (`provlog-writer`), where it
    /// also describes the entries; on PostgreSQL, or if that thread cannot start, as a task of
    /// the current runtime that describes on a blocking thread.
    ///
    /// Its own thread keeps the log's memory off the threads that answer requests: the
    /// allocator gives memory back most cheaply on the thread that took it, and a batch's rows,
    /// descriptions and statements are made and dropped there. (A PostgreSQL connection belongs
    /// to the runtime that opened it, and the log shares the directory's pool: it stays on the
    /// server's runtime.)
    pub fn spawn(self) {
        if matches!(self.db, Db::Sqlite(_)) {
            let run = |mut writer: Writer, own_thread| async move {
                writer.own_thread = own_thread;
                writer.run().await
            };
            crate::process::spawn_on_own_thread("provlog-writer", self, run);
        } else {
            tokio::spawn(self.run());
        }
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
                    Msg::Entry(e) => entries.push(e),
                    Msg::Flush(done) => flushes.push(done),
                }
            }
            self.write(entries).await;
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    async fn write(&mut self, mut entries: Vec<Exchange>) {
        entries.append(
            &mut self
                .inner
                .kept_links
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let bytes: usize = entries.iter().map(Exchange::body_bytes).sum();
        let described = describe_batch(entries, &self.inner, self.own_thread).await;
        let lost = std::mem::take(&mut *self.inner.lost.lock().unwrap_or_else(|p| p.into_inner()));
        if described.is_empty() && lost.is_empty() {
            self.inner.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return;
        }
        // Rows are built once; a retry repeats only what reads or writes the database.
        let mut batch = Batch::of(described);
        let mut attempt = 0;
        loop {
            match self.try_write(&mut batch, &lost).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "provisioning log write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = batch.rows.len(), "provisioning log write failed; entries lost");
                    for (r, slug) in batch.rows.iter().zip(&batch.slugs) {
                        self.inner.count_lost(slug, r.at, r.status as u16, 1);
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

    /// Fills in what the database knows (organisations, target names) and writes the batch
    /// with its counters. Safe to repeat after a failure.
    async fn try_write(
        &mut self,
        batch: &mut Batch,
        lost: &HashMap<(String, i64), LostCounts>,
    ) -> StoreResult<()> {
        if !batch.tenants_known {
            for (r, slug) in batch.rows.iter_mut().zip(&batch.slugs) {
                if r.tenant_id.is_empty()
                    && let Some(t) = self.tenant_of(slug).await?
                {
                    r.tenant_id = t;
                }
            }
            // Requests for an organisation that does not exist are not logged anywhere.
            let mut slugs = std::mem::take(&mut batch.slugs).into_iter();
            let mut kept_slugs = Vec::with_capacity(batch.rows.len());
            batch.rows.retain(|r| {
                let slug = slugs.next().unwrap_or_default();
                let keep = !r.tenant_id.is_empty();
                if keep {
                    kept_slugs.push(slug);
                }
                keep
            });
            batch.slugs = kept_slugs;
            batch.tenants_known = true;
        }
        self.resolve_names(&mut batch.rows).await?;
        let mut hours: HashMap<(String, i64), HourCounts> = HashMap::new();
        for (slug, per_hour) in &batch.hours {
            let Some(tenant) = self.tenant_of(slug).await? else {
                continue;
            };
            for (hour, c) in per_hour {
                hours.insert((tenant.clone(), *hour), *c);
            }
        }
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
        store::write_batch(&self.db, &batch.rows, &hours).await
    }

    /// Names targets the entries know only by id (a PATCH or DELETE by id), from the batch's
    /// own entries, the directory, or an earlier entry (a deleted group has no row any more),
    /// and fills the name into each action. Rows that already have one are left alone.
    async fn resolve_names(&self, rows: &mut [LogRow]) -> StoreResult<()> {
        // (organisation, group?) → ids wanted.
        let mut wanted: HashMap<(&str, bool), Vec<&str>> = HashMap::new();
        for r in rows.iter() {
            if r.target_name.is_none()
                && let Some(id) = &r.target_id
            {
                let groups = r.target_type.as_deref() == Some(TargetType::Group.code());
                wanted.entry((&r.tenant_id, groups)).or_default().push(id);
            }
        }
        if wanted.is_empty() {
            fill_actions(rows, &HashMap::new());
            return Ok(());
        }
        let mut known: HashMap<(String, String), String> = HashMap::new();
        // Names the batch itself knows (a creation names its target).
        let want_ids: std::collections::HashSet<&str> =
            wanted.values().flatten().copied().collect();
        for r in rows.iter() {
            if let (Some(id), Some(name)) = (&r.target_id, &r.target_name)
                && want_ids.contains(id.as_str())
            {
                known.insert((r.tenant_id.clone(), id.clone()), name.clone());
            }
        }
        let wanted: Vec<(String, bool, Vec<String>)> = wanted
            .into_iter()
            .map(|((t, g), ids)| {
                let mut ids: Vec<String> = ids
                    .into_iter()
                    .filter(|id| !known.contains_key(&(t.to_string(), id.to_string())))
                    .map(str::to_string)
                    .collect();
                ids.sort();
                ids.dedup();
                (t.to_string(), g, ids)
            })
            .collect();
        for (tenant, groups, ids) in wanted {
            if ids.is_empty() {
                continue;
            }
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
        fill_actions(rows, &known);
        Ok(())
    }
}

/// Names each row's target from `known` where it had none, and fills its action's `{target}`
/// (with the name, else the id).
fn fill_actions(rows: &mut [LogRow], known: &HashMap<(String, String), String>) {
    for r in rows.iter_mut() {
        if r.target_name.is_none()
            && let Some(id) = &r.target_id
        {
            r.target_name = known.get(&(r.tenant_id.clone(), id.clone())).cloned();
        }
        if r.action.contains(describe::TARGET) {
            r.action =
                describe::fill_target(&r.action, r.target_name.as_deref(), r.target_id.as_deref());
        }
    }
}

/// A batch of entries as rows, built once from what was described.
struct Batch {
    rows: Vec<LogRow>,
    /// Each row's organisation slug (its `tenant_id` is filled in from it).
    slugs: Vec<String>,
    tenants_known: bool,
    /// Counters per organisation slug and hour.
    hours: HashMap<String, HashMap<i64, HourCounts>>,
}

impl Batch {
    fn of(described: Vec<(Exchange, describe::Described)>) -> Batch {
        let mut rows = Vec::with_capacity(described.len());
        let mut slugs = Vec::with_capacity(described.len());
        let mut hours: HashMap<String, HashMap<i64, HourCounts>> = HashMap::new();
        for (e, d) in described {
            let hour = e.at - e.at.rem_euclid(HOUR_MS);
            let per_hour = match hours.get_mut(e.text(Text::Slug)) {
                Some(h) => h,
                None => hours.entry(e.text(Text::Slug).to_string()).or_default(),
            };
            let c = per_hour.entry(hour).or_default();
            // A Bulk request's operations are counted one by one; the request itself only
            // when it failed as a whole.
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
            let skipped = || {
                e.bodies_dropped.then(|| {
                    "(not kept: the log writer was busy; the request was answered normally)"
                        .to_string()
                })
            };
            let request_body = d.request_text.or_else(skipped);
            let response_body = d.response_text.or_else(skipped);
            rows.push(LogRow {
                id: e.text(Text::Id).to_string(),
                tenant_id: String::new(),
                at: e.at,
                duration_us: e.duration_us,
                method: e.text(Text::Method).to_string(),
                path: e.text(Text::Path).to_string(),
                operation: d.operation.code().to_string(),
                action: d.action,
                target_type: d.target_type.map(|t| t.code().to_string()),
                target_id: d.target_id,
                target_name: d.target_name,
                outcome: d.outcome.code().to_string(),
                status: e.status as i64,
                scim_type: d.scim_type,
                error_detail: d.error_detail,
                client_addr: e.text(Text::ClientAddr).to_string(),
                request_body,
                response_body,
                parent_id: e.entry(Text::ParentId).map(str::to_string),
                prev_entry: e.entry(Text::PrevEntry).map(str::to_string),
            });
            slugs.push(e.text(Text::Slug).to_string());
        }
        Batch {
            rows,
            slugs,
            tenants_known: false,
            hours,
        }
    }
}

/// Describes the entries: `here` on the writer's own thread, otherwise on a blocking thread
/// (parsing and redacting a batch's bodies must not hold a runtime worker). An entry whose
/// describing panics is counted as lost, never silent.
async fn describe_batch(
    entries: Vec<Exchange>,
    inner: &Arc<Inner>,
    here: bool,
) -> Vec<(Exchange, describe::Described)> {
    let n = entries.len();
    let lost_to = inner.clone();
    let describe_all = move |entries: Vec<Exchange>| -> Vec<(Exchange, describe::Described)> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                describe::describe(&Seen {
                    method: e.text(Text::Method),
                    path: e.text(Text::Path),
                    query: e.text(Text::Query),
                    status: e.status,
                    request: e.request.as_deref(),
                    response: e.response.as_deref(),
                    listed: e.listed.as_deref(),
                    total: e.listed_total,
                    first_id: e.entry(Text::FirstId),
                    listed_as_stored: e.listed_as_stored,
                })
            }));
            match d {
                Ok(d) => out.push((e, d)),
                Err(_) => {
                    tracing::error!("describing a provisioning log entry failed; entry lost");
                    lost_to.count_lost(e.text(Text::Slug), e.at, e.status, 1);
                }
            }
        }
        out
    };
    if here {
        return describe_all(entries);
    }
    match tokio::task::spawn_blocking(move || describe_all(entries)).await {
        Ok(described) => described,
        Err(e) => {
            // Describing panicked (a bug) or the runtime is going away: the entries are lost,
            // and counted (they cannot be attributed to an organisation any more).
            tracing::error!(error = %e, entries = n, "describing provisioning log entries failed");
            inner.lost_total.fetch_add(n as u64, Ordering::Relaxed);
            Vec::new()
        }
    }
}

/// Deletes entries past each organisation's retention and old hourly counters.
pub async fn prune(db: &Db, now: i64) -> StoreResult<u64> {
    store::prune(db, now, DEFAULT_RETENTION_DAYS, KEEP_HOURS_MS).await
}
