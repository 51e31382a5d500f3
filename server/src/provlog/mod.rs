//! The provisioning log: one entry per SCIM request (and per Bulk operation), written off the
//! request path.
//!
//! The SCIM router's outermost layer ([`record`]) copies what it needs (method, path, status,
//! the bodies as bytes, timing, client address) into a bounded queue and answers at once; one
//! writer task describes each exchange in words, removes secrets, and writes entries in batches
//! together with per-hour counters (so health and charts never read the raw log). A full queue
//! never slows or fails SCIM: the entry is dropped and counted, and the count is shown on the
//! console. [`ProvLog::drain`] writes everything queued (graceful shutdown); a crash loses at
//! most what is queued (≤ `capacity` entries, normally the last few milliseconds).

mod capture;
pub mod describe;
mod lean;
mod writer;

use app::backend::ClientAddr;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::directory::LogLink;
use crate::store::Db;

pub use writer::{Writer, prune};

/// Entries waiting to be written, at most.
pub const DEFAULT_CAPACITY: usize = 20_000;
/// Bytes of bodies waiting to be written, at most; beyond it entries are kept without bodies.
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;
/// A user's changes kept without their bodies while the queue is full, at most.
pub const MAX_KEPT_LINKS: usize = 10_000;
/// Bodies larger than this are not kept (the SCIM limit for requests is 1 MiB).
pub const MAX_KEPT_BODY: usize = 1024 * 1024 + 1;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
pub const DEFAULT_RETENTION_DAYS: i64 = 30;

/// One SCIM exchange as seen by the middleware, before it is described.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub id: String,
    pub slug: String,
    pub at: i64,
    pub duration_us: i64,
    pub method: String,
    /// Below `/scim/v2/{slug}`.
    pub path: String,
    pub query: String,
    pub status: u16,
    pub client_addr: String,
    pub request: Option<Bytes>,
    pub response: Option<Bytes>,
    /// True when the bodies were left out because the queue held too many bytes.
    pub bodies_dropped: bool,
    pub parent_id: Option<String>,
    /// True for a user's change that was written: the user's row points to this entry, so the
    /// entry must not be lost (see [`ProvLog::enqueue`]).
    pub chained: bool,
    /// The entry of the change this one follows, for a user's change (see [`LogLink`]).
    pub prev_entry: Option<String>,
    /// A list answer's summary, from its handler ([`Listed`]).
    pub listed: Option<serde_json::Value>,
    /// The size of the answer `listed` stands for, counted against the queue's byte budget
    /// like a kept answer (the summary is smaller, so the bound holds).
    pub listed_bytes: usize,
    /// A list answer's `totalResults`, taken from `listed` when the bodies are left out, so
    /// that a lookup still says whether it found its user.
    pub listed_total: Option<i64>,
}

impl Exchange {
    /// Leaves the bodies out, the list summary (a part of the answer) with them.
    fn drop_bodies(&mut self) {
        if let Some(total) = self
            .listed
            .as_ref()
            .and_then(|v| v.get("totalResults"))
            .and_then(serde_json::Value::as_i64)
        {
            self.listed_total = Some(total);
        }
        self.request = None;
        self.response = None;
        self.listed = None;
        self.listed_bytes = 0;
        self.bodies_dropped = true;
    }

    fn body_bytes(&self) -> usize {
        self.request.as_ref().map_or(0, Bytes::len)
            + self.response.as_ref().map_or(0, Bytes::len)
            + self.listed_bytes
    }
}

enum Msg {
    Entry(Box<Exchange>),
    Flush(oneshot::Sender<()>),
}

/// Counts of requests whose entries were lost, per organisation slug and hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LostCounts {
    pub requests: i64,
    pub failures: i64,
    pub rejected: i64,
}

struct Inner {
    tx: Option<mpsc::Sender<Msg>>,
    clock: Arc<dyn Clock>,
    lost: Mutex<HashMap<(String, i64), LostCounts>>,
    /// A user's changes that found the queue full, kept without bodies (see [`ProvLog::enqueue`]).
    kept_links: Mutex<Vec<Exchange>>,
    lost_total: AtomicU64,
    queued_bytes: AtomicUsize,
    body_budget: usize,
}

/// Handle to the log: cheap to clone, shared by the SCIM router and the server's shutdown.
#[derive(Clone)]
pub struct ProvLog {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub capacity: usize,
    pub body_budget: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: DEFAULT_CAPACITY,
            body_budget: DEFAULT_BODY_BUDGET,
        }
    }
}

/// Put in a list answer's extensions by the Users and Groups list handlers while the log is on:
/// what the entry stores of the answer (see `lean::list_summary_of`), taken from the answer
/// before it was written, so the writer need not parse it back. Lookups are most of Entra's
/// traffic.
#[derive(Debug, Clone)]
pub struct Listed(pub serde_json::Value);

impl Listed {
    pub fn of(answer: &serde_json::Value) -> Listed {
        Listed(lean::list_summary_of(answer))
    }
}

/// Put in a SCIM request's extensions by [`record`]: the entry id, so Bulk can link its
/// operations to it.
#[derive(Debug, Clone)]
pub struct LogTag {
    pub entry_id: String,
    pub client_addr: String,
}

impl ProvLog {
    /// Starts the writer on the current runtime. (The retention pruner is a background job:
    /// see [`crate::jobs`].)
    pub fn start(db: Db, clock: Arc<dyn Clock>) -> ProvLog {
        let (log, writer) = ProvLog::new(db, clock, Options::default());
        writer.spawn();
        log
    }

    /// A log whose writer the caller starts (tests hold it back to fill the queue).
    pub fn new(db: Db, clock: Arc<dyn Clock>, opts: Options) -> (ProvLog, Writer) {
        let (tx, rx) = mpsc::channel(opts.capacity.max(1));
        let inner = Arc::new(Inner {
            tx: Some(tx),
            clock,
            lost: Mutex::new(HashMap::new()),
            kept_links: Mutex::new(Vec::new()),
            lost_total: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            body_budget: opts.body_budget,
        });
        let writer = Writer::new(rx, db, inner.clone());
        (ProvLog { inner }, writer)
    }

    /// A log that records nothing (benchmarks compare SCIM with and without the log).
    pub fn off(clock: Arc<dyn Clock>) -> ProvLog {
        ProvLog {
            inner: Arc::new(Inner {
                tx: None,
                clock,
                lost: Mutex::new(HashMap::new()),
                kept_links: Mutex::new(Vec::new()),
                lost_total: AtomicU64::new(0),
                queued_bytes: AtomicUsize::new(0),
                body_budget: 0,
            }),
        }
    }

    pub fn is_on(&self) -> bool {
        self.inner.tx.is_some()
    }

    /// Entries lost since the start because the queue was full (or the database failed).
    pub fn lost_total(&self) -> u64 {
        self.inner.lost_total.load(Ordering::Relaxed)
    }

    /// Waits until every entry queued before this call is written.
    pub async fn flush(&self) {
        let Some(tx) = &self.inner.tx else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Graceful shutdown: writes everything queued. Call once the server has stopped taking
    /// requests (after `axum::serve(...).with_graceful_shutdown(...)` returns).
    pub async fn drain(&self) {
        self.flush().await;
    }

    fn enqueue(&self, mut e: Exchange) {
        let Some(tx) = &self.inner.tx else { return };
        let bytes = e.body_bytes();
        let queued = self.inner.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if queued + bytes > self.inner.body_budget {
            self.inner.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            e.drop_bodies();
        }
        let kept = e.body_bytes();
        let Err(err) = tx.try_send(Msg::Entry(Box::new(e))) else {
            return;
        };
        self.inner.queued_bytes.fetch_sub(kept, Ordering::Relaxed);
        let full = matches!(err, mpsc::error::TrySendError::Full(_));
        let (mpsc::error::TrySendError::Full(Msg::Entry(mut e))
        | mpsc::error::TrySendError::Closed(Msg::Entry(mut e))) = err
        else {
            return;
        };
        // A user's written change is kept without its bodies: the user's row points to its
        // entry, and losing it would cut the user's history there.
        if full && e.chained {
            let mut links = self
                .inner
                .kept_links
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if links.len() < MAX_KEPT_LINKS {
                e.drop_bodies();
                links.push(*e);
                return;
            }
        }
        if full {
            tracing::warn!("provisioning log queue full: entry dropped and counted");
        }
        self.inner.count_lost(&e.slug, e.at, e.status, 1);
    }
}

/// When a Bulk operation started, for its entry (see [`ProvLog::record_operation`]), and the
/// entry's link for the change it makes.
pub struct OperationStart {
    at: i64,
    started: Instant,
    link: LogLink,
}

impl OperationStart {
    pub fn link(&self) -> &LogLink {
        &self.link
    }
}

/// One Bulk operation as the Bulk handler ran it: what the entry of a sub-request holds.
pub struct OperationDone<'a> {
    pub parent: &'a LogTag,
    pub slug: &'a str,
    pub method: &'a str,
    /// Below `/scim/v2/{slug}`, as the operation named it (bulkIds replaced).
    pub path: &'a str,
    pub status: u16,
    pub request: Option<Bytes>,
    pub response: Bytes,
}

impl ProvLog {
    pub fn start_operation(&self) -> OperationStart {
        let at = self.inner.clock.now_ms();
        OperationStart {
            at,
            started: Instant::now(),
            link: LogLink::for_entry(entry_id(at)),
        }
    }

    /// Records a Bulk operation, which the Bulk handler runs through the directory service
    /// itself (not through the router and its recording layer). Its entry links to the Bulk
    /// request's.
    pub fn record_operation(&self, start: OperationStart, op: OperationDone<'_>) {
        if !self.is_on() {
            return;
        }
        self.enqueue(Exchange {
            id: start.link.entry_id().unwrap_or_default().to_string(),
            slug: op.slug.to_string(),
            at: start.at,
            duration_us: micros_since(start.started),
            method: op.method.to_string(),
            path: op.path.to_string(),
            query: String::new(),
            status: op.status,
            client_addr: op.parent.client_addr.clone(),
            request: kept(op.request),
            response: kept(Some(op.response)),
            bodies_dropped: false,
            parent_id: Some(op.parent.entry_id.clone()),
            chained: start.link.chained().is_some(),
            prev_entry: start.link.chained().flatten(),
            listed: None,
            listed_bytes: 0,
            listed_total: None,
        });
    }
}

impl Inner {
    fn count_lost(&self, slug: &str, at: i64, status: u16, n: i64) {
        self.lost_total.fetch_add(n as u64, Ordering::Relaxed);
        let hour = at - at.rem_euclid(HOUR_MS);
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: an unknown slug cannot grow this beyond what one flush clears.
        if lost.len() > 100_000 {
            return;
        }
        let c = lost.entry((slug.to_string(), hour)).or_default();
        c.requests += n;
        match describe::Outcome::of_status(status) {
            describe::Outcome::Failure => c.failures += n,
            describe::Outcome::Rejected => c.rejected += n,
            describe::Outcome::Success => {}
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);
/// Drawn once per process: keeps the ids of several servers apart.
static PROCESS_TAIL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_string());

/// Entry ids sort like the requests arrived (time, then a per-process sequence), so entries of
/// one millisecond list in order; the per-process random tail keeps ids of several servers
/// apart (the sequence keeps one server's apart).
fn entry_id(at: i64) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{:012x}-{:010x}-{}", at.max(0), seq, *PROCESS_TAIL)
}

/// A body as an entry keeps it: not empty, and not over the size kept.
fn kept(body: Option<Bytes>) -> Option<Bytes> {
    body.filter(|b| !b.is_empty() && b.len() < MAX_KEPT_BODY)
}

fn micros_since(started: Instant) -> i64 {
    started.elapsed().as_micros().min(i64::MAX as u128) as i64
}

/// The layer on the SCIM router: records every request, whatever its outcome (the gate's
/// rejections included), without delaying the answer.
pub async fn record(State(log): State<ProvLog>, req: Request, next: Next) -> Response {
    if !log.is_on() {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at = log.inner.clock.now_ms();
    let (slug, path) = {
        let full_path = match req.extensions().get::<OriginalUri>() {
            Some(u) => u.0.path(),
            None => req.uri().path(),
        };
        let rest = full_path.strip_prefix("/scim/v2/").unwrap_or("");
        match rest.split_once('/') {
            Some((s, p)) => (s.to_string(), format!("/{p}")),
            None => (rest.to_string(), "/".to_string()),
        }
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().as_str().to_string();
    let client_addr = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let id = entry_id(at);
    let (mut parts, body) = req.into_parts();
    // Only a Bulk request reads its tag (its operations' entries link to its entry).
    if path.trim_end_matches('/').eq_ignore_ascii_case("/Bulk") {
        parts.extensions.insert(LogTag {
            entry_id: id.clone(),
            client_addr: client_addr.clone(),
        });
    }
    // A change learns its entry; a user's change tells back the entry it follows.
    let link = (parts.method != axum::http::Method::GET
        && parts.method != axum::http::Method::POST)
        .then(|| LogLink::for_entry(id.clone()));
    if let Some(l) = &link {
        parts.extensions.insert(l.clone());
    }
    // A request without a body (lookups) is passed on as it is.
    let (body, seen) = if http_body::Body::size_hint(&body).exact() == Some(0) {
        (body, None)
    } else {
        let (tee, seen) = capture::Tee::wrap(body, MAX_KEPT_BODY);
        (Body::new(tee), Some(seen))
    };
    let res = next.run(Request::from_parts(parts, body)).await;

    let status = res.status().as_u16();
    let (mut parts, body) = res.into_parts();
    let listed = parts.extensions.remove::<Listed>().map(|l| l.0);
    // SCIM answers are built in memory; collecting them costs no copy.
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "SCIM answer body failed");
            Bytes::new()
        }
    };
    // A list answer's summary is all the log keeps of it, so the answer's bytes stay with the
    // connection that sends them instead of travelling to the writer. (Measured at 1M users,
    // this did not move the log's cost on lookups beyond the noise; it saves the queue memory.)
    let listed_bytes = if listed.is_some() { bytes.len() } else { 0 };
    let response = if listed.is_some() {
        None
    } else {
        kept(Some(bytes.clone()))
    };
    let res = Response::from_parts(parts, Body::from(bytes));
    let request = seen.and_then(|s| s.take());
    let chain = link.and_then(|l| l.chained());
    log.enqueue(Exchange {
        id,
        slug,
        at,
        duration_us: micros_since(started),
        method,
        path,
        query,
        status,
        client_addr,
        request: kept(request),
        response,
        bodies_dropped: false,
        parent_id: None,
        chained: chain.is_some(),
        prev_entry: chain.flatten(),
        listed,
        listed_bytes,
        listed_total: None,
    });
    res
}
