//! The provisioning log: one entry per SCIM request (and per Bulk operation), written off the
//! request path.
//!
//! The SCIM router's outermost layer ([`record`]) copies what it needs (method, path, status,
//! the bodies as bytes, timing, client address) into a bounded queue and answers at once; one
//! writer (its own thread on SQLite) describes each exchange in words, removes secrets, and
//! writes entries in batches together with per-hour counters (so health and charts never read
//! the raw log). A full queue never slows or fails SCIM: the entry is dropped and counted, and
//! the count is shown on the console. [`ProvLog::drain`] writes everything queued (graceful
//! shutdown); a crash loses at most what is queued (≤ `capacity` entries, normally the last
//! few milliseconds).

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

/// The texts of an exchange, in the order they are written into [`Texts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// The entry's id (see [`entry_id`]).
    Id,
    /// The organisation's slug in `/scim/v2/{slug}`.
    Slug,
    Method,
    /// Below `/scim/v2/{slug}`.
    Path,
    Query,
    ClientAddr,
    /// The Bulk request's entry, for a Bulk operation's.
    ParentId,
    /// The entry of the change this one follows, for a user's change (see [`LogLink`]).
    PrevEntry,
    /// [`Listed::first_id`]: kept when the bodies are left out, like the list's total.
    FirstId,
}

const TEXTS: usize = 9;

/// An exchange's texts in one buffer: an entry crosses from the request's thread to the log's
/// threads as one allocation rather than one per text. (Memory freed by another thread than the
/// one that allocated it is slow to reuse: measured at 1M users, the allocator's share of a
/// lookup's CPU nearly doubled with the log on when each entry carried its texts apart.)
#[derive(Debug, Clone, Default)]
struct Texts {
    buf: String,
    ends: [u32; TEXTS],
    /// How many texts are written (at most [`TEXTS`]).
    written: u8,
}

impl Texts {
    fn with_capacity(n: usize) -> Texts {
        Texts {
            buf: String::with_capacity(n),
            ..Texts::default()
        }
    }

    /// Writes the next text (in [`Text`]'s order) from its parts.
    fn push(&mut self, which: Text, parts: &[&str]) {
        debug_assert_eq!(which as u8, self.written, "texts are written in order");
        for p in parts {
            self.buf.push_str(p);
        }
        self.end(which);
    }

    /// Ends the text `which` at the buffer's end (texts skipped before it are empty).
    fn end(&mut self, which: Text) {
        if (which as u8) < self.written {
            return;
        }
        // Texts are bounded by the request's size (far below 4 GiB).
        let end = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        for slot in &mut self.ends[usize::from(self.written)..=which as usize] {
            *slot = end;
        }
        self.written = which as u8 + 1;
    }

    /// Writes the last text: the entry a user's change follows, from its link's
    /// [`LogLink::chained`] (none for other exchanges and for a user's first change).
    fn push_chain(&mut self, chain: Option<&Option<String>>) {
        let prev = chain.and_then(|c| c.as_deref()).unwrap_or_default();
        self.push(Text::PrevEntry, &[prev]);
    }

    fn get(&self, which: Text) -> &str {
        let i = which as usize;
        if i >= usize::from(self.written) {
            return "";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    fn get_opt(&self, which: Text) -> Option<&str> {
        Some(self.get(which)).filter(|t| !t.is_empty())
    }
}

/// One SCIM exchange as seen by the middleware, before it is described.
#[derive(Debug, Clone)]
pub struct Exchange {
    texts: Texts,
    pub at: i64,
    pub duration_us: i64,
    pub status: u16,
    pub request: Option<Bytes>,
    pub response: Option<Bytes>,
    /// True when the bodies were left out because the queue held too many bytes.
    pub bodies_dropped: bool,
    /// True for a user's change that was written: the user's row points to this entry, so the
    /// entry must not be lost (see [`ProvLog::enqueue`]).
    pub chained: bool,
    /// A list answer's summary, from its handler ([`Listed`]).
    pub listed: Option<Bytes>,
    /// The size of the answer `listed` stands for, counted against the queue's byte budget
    /// like a kept answer (the summary is smaller, so the bound holds).
    pub listed_bytes: usize,
    /// A list answer's `totalResults`, from its handler, so that a lookup still says whether it
    /// found its user when the bodies are left out.
    pub listed_total: Option<i64>,
    /// [`Listed::as_stored`].
    pub listed_as_stored: bool,
}

impl Exchange {
    /// One of the exchange's texts (empty when it has none).
    fn text(&self, which: Text) -> &str {
        self.texts.get(which)
    }

    /// A text that names an entry (the Bulk request's, the change before), if there is one.
    fn entry(&self, which: Text) -> Option<&str> {
        self.texts.get_opt(which)
    }

    /// Leaves the bodies out, the list summary (a part of the answer) with them.
    fn drop_bodies(&mut self) {
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
    Entry(Exchange),
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
/// what the entry stores of the answer (see `lean::list_summary_text`), written from the answer
/// before it was sent, so the writer need not parse the answer. Lookups are most of Entra's
/// traffic.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The summary as compact JSON.
    pub summary: Bytes,
    /// The answer's `totalResults`.
    pub total: i64,
    /// The id of the one resource an answer of one holds (a lookup that found its user): the
    /// entry's target.
    pub first_id: Option<String>,
    /// True when `summary` is already the text the entry stores: storing it whole (secrets
    /// redacted, lists of more than ten items cut, 32 KB at most) would change nothing, so the
    /// writer stores it without parsing it.
    pub as_stored: bool,
}

impl Listed {
    /// The summary of `answer`, which was sent as `sent`. When the summary leaves nothing out
    /// (an empty answer, as for Entra's Test Connection, or resources that hold only the
    /// attributes a summary keeps) it is the answer as sent, shared rather than written again.
    pub fn of(answer: &serde_json::Value, total: i64, sent: &Bytes) -> Listed {
        let shape = lean::summary_shape(answer);
        let summary = if shape.whole {
            sent.clone()
        } else {
            Bytes::from(lean::list_summary_text_of(answer, shape))
        };
        let as_stored =
            summary.len() <= describe::MAX_STORED_BODY && shape.items <= describe::MAX_LIST_ITEMS;
        let first_id = (total == 1)
            .then(|| answer.get("Resources")?.get(0)?.get("id")?.as_str())
            .flatten()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        Listed {
            summary,
            total,
            first_id,
            as_stored,
        }
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
    /// Starts the writer (see [`Writer::spawn`]). (The retention pruner is a background job:
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
        let Err(err) = tx.try_send(Msg::Entry(e)) else {
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
                links.push(e);
                return;
            }
        }
        if full {
            tracing::warn!("provisioning log queue full: entry dropped and counted");
        }
        self.inner.count_lost(e.text(Text::Slug), e.at, e.status, 1);
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
        let chain = start.link.chained();
        let mut texts =
            Texts::with_capacity(128 + op.slug.len() + op.path.len() + op.parent.client_addr.len());
        texts.push(Text::Id, &[start.link.entry_id().unwrap_or_default()]);
        texts.push(Text::Slug, &[op.slug]);
        texts.push(Text::Method, &[op.method]);
        texts.push(Text::Path, &[op.path]);
        texts.push(Text::Query, &[]);
        texts.push(Text::ClientAddr, &[&op.parent.client_addr]);
        texts.push(Text::ParentId, &[&op.parent.entry_id]);
        texts.push_chain(chain.as_ref());
        self.enqueue(Exchange {
            texts,
            at: start.at,
            duration_us: micros_since(start.started),
            status: op.status,
            request: kept(op.request),
            response: kept(Some(op.response)),
            bodies_dropped: false,
            chained: chain.is_some(),
            listed: None,
            listed_bytes: 0,
            listed_total: None,
            listed_as_stored: false,
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
    let mut id = String::with_capacity(ENTRY_ID_LEN);
    write_entry_id(&mut id, at);
    id
}

/// 12 + 1 + 10 + 1 + 8 characters.
const ENTRY_ID_LEN: usize = 32;

fn write_entry_id(out: &mut String, at: i64) {
    use std::fmt::Write as _;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let _ = write!(out, "{:012x}-{:010x}-{}", at.max(0), seq, *PROCESS_TAIL);
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
    let mut texts = Texts::with_capacity(
        ENTRY_ID_LEN + 100 + req.uri().path().len() + req.uri().query().map_or(0, str::len),
    );
    write_entry_id(&mut texts.buf, at);
    texts.end(Text::Id);
    {
        let full_path = match req.extensions().get::<OriginalUri>() {
            Some(u) => u.0.path(),
            None => req.uri().path(),
        };
        let rest = full_path.strip_prefix("/scim/v2/").unwrap_or("");
        let (slug, below) = rest.split_once('/').unwrap_or((rest, ""));
        texts.push(Text::Slug, &[slug]);
        texts.push(Text::Method, &[req.method().as_str()]);
        texts.push(Text::Path, &["/", below]);
    }
    texts.push(Text::Query, &[req.uri().query().unwrap_or("")]);
    texts.push(
        Text::ClientAddr,
        &[req
            .extensions()
            .get::<ClientAddr>()
            .map_or("", |c| c.0.as_str())],
    );
    texts.push(Text::ParentId, &[]);
    let (mut parts, body) = req.into_parts();
    // Only a Bulk request reads its tag (its operations' entries link to its entry).
    if texts
        .get(Text::Path)
        .trim_end_matches('/')
        .eq_ignore_ascii_case("/Bulk")
    {
        parts.extensions.insert(LogTag {
            entry_id: texts.get(Text::Id).to_string(),
            client_addr: texts.get(Text::ClientAddr).to_string(),
        });
    }
    // A change learns its entry; a user's change tells back the entry it follows.
    let link = (parts.method != axum::http::Method::GET
        && parts.method != axum::http::Method::POST)
        .then(|| LogLink::for_entry(texts.get(Text::Id).to_string()));
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
    let listed = parts.extensions.remove::<Listed>();
    // A list answer's summary is all the log keeps of it: the answer is passed on untouched
    // and its bytes stay with the connection that sends them.
    let (res, response, listed_bytes) = if listed.is_some() {
        let len = http_body::Body::size_hint(&body).exact().unwrap_or(0);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        (Response::from_parts(parts, body), None, len)
    } else {
        // SCIM answers are built in memory; collecting them costs no copy.
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "SCIM answer body failed");
                Bytes::new()
            }
        };
        let kept_answer = kept(Some(bytes.clone()));
        (
            Response::from_parts(parts, Body::from(bytes)),
            kept_answer,
            0,
        )
    };
    let request = seen.and_then(|s| s.take());
    let chain = link.and_then(|l| l.chained());
    texts.push_chain(chain.as_ref());
    let (listed, listed_total, listed_as_stored) = match listed {
        Some(l) => {
            texts.push(Text::FirstId, &[l.first_id.as_deref().unwrap_or_default()]);
            (Some(l.summary), Some(l.total), l.as_stored)
        }
        None => (None, None, false),
    };
    log.enqueue(Exchange {
        texts,
        at,
        duration_us: micros_since(started),
        status,
        request: kept(request),
        response,
        bodies_dropped: false,
        chained: chain.is_some(),
        listed,
        listed_bytes,
        listed_total,
        listed_as_stored,
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_keeps_its_texts_in_one_buffer() {
        let mut t = Texts::with_capacity(8);
        t.push(Text::Id, &["0001-02-abc"]);
        t.push(Text::Slug, &["contoso"]);
        t.push(Text::Method, &["PATCH"]);
        t.push(Text::Path, &["/", "Users/u1"]);
        t.push(Text::Query, &[]);
        t.push(Text::ClientAddr, &["10.0.0.1"]);
        t.push(Text::ParentId, &[]);
        t.push(Text::PrevEntry, &["0000-01-abc"]);
        let e = Exchange {
            texts: t,
            at: 0,
            duration_us: 0,
            status: 200,
            request: None,
            response: None,
            bodies_dropped: false,
            chained: true,
            listed: None,
            listed_bytes: 0,
            listed_total: None,
            listed_as_stored: false,
        };
        let texts = [Text::Id, Text::Slug, Text::Method, Text::Path, Text::Query];
        assert_eq!(
            texts.map(|t| e.text(t)),
            ["0001-02-abc", "contoso", "PATCH", "/Users/u1", ""]
        );
        assert_eq!(e.text(Text::ClientAddr), "10.0.0.1");
        assert_eq!(e.entry(Text::ParentId), None, "an empty text is no id");
        assert_eq!(e.entry(Text::PrevEntry), Some("0000-01-abc"));
        assert_eq!(
            e.texts.buf.len(),
            "0001-02-abccontosoPATCH/Users/u110.0.0.10000-01-abc".len()
        );

        // Texts not written yet read as empty.
        let mut t = Texts::default();
        t.push(Text::Id, &["x"]);
        assert_eq!((t.get(Text::Id), t.get(Text::Path)), ("x", ""));
        assert_eq!(t.get_opt(Text::PrevEntry), None);
    }

    #[test]
    fn entry_ids_have_their_fixed_length_and_sort_by_time() {
        let a = entry_id(1);
        let b = entry_id(2);
        assert_eq!(a.len(), ENTRY_ID_LEN);
        assert!(a < b);
        let mut t = Texts::with_capacity(0);
        write_entry_id(&mut t.buf, 3);
        t.end(Text::Id);
        assert_eq!(t.get(Text::Id).len(), ENTRY_ID_LEN);
        assert!(t.get(Text::Id) > b.as_str());
    }
}
