//! The scale benchmark: seeds an organisation of N users (through the store, not HTTP), 1,000
//! groups and one large group, serves it from a separate server process on loopback, and drives
//! it over HTTP with concurrent keep-alive clients. Prints, per size, a table of p50/p99
//! latency, requests per second (and the ratio to a bare axum handler measured in the same
//! run), the server's RSS and the database size. It asserts nothing; tests never time anything.
//!
//!     cargo run -p server --release --example bench -- [USERS ...]     (default: 10000 1000000)
//!
//! `BENCH_CLIENTS` (default 16) and `BENCH_SECS` (default 3) tune the concurrent runs.
//! `BENCH_ONLY=lookup,POST` runs only the rows whose name contains one of the words (the bare
//! handler always runs). `BENCH_DB_DIR=DIR` keeps each size's seeded database in DIR and reuses
//! it on the next run (seeding 1M users takes about a quarter of an hour; the users that earlier
//! runs' POST rows created are removed first, so each run measures the seeded size; their log
//! entries stay). `BENCH_PROVLOG=off` serves without the provisioning log;
//! `BENCH_PROVLOG=compare` serves the same database from two processes, log on and log off, and
//! measures every row on both, alternately, so the two figures share the machine's conditions:
//! in `BENCH_ROUNDS` rounds (4 by default), the order swapped each round, after one uncounted
//! warm-up run of the row on each (`BENCH_WARMUP=0` leaves it out), then prints each row's
//! log-on against log-off throughput and CPU over all counted rounds.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use server::clock::{Clock, SystemClock};
use server::directory::{groups as scim_groups_http, users as scim_users_http};
use server::provisioning::{self, Actor};
use server::store::scim_groups::{self, GroupRecord, GroupWrite, MemberKind, MemberOp};
use server::store::scim_users::{self, NewUser};
use server::store::{Db, tenants};
use server::{AppState, Settings};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const FAMILIES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White",
];
const GIVEN: &[&str] = &[
    "Alex", "Sam", "Maria", "Wei", "Fatima", "John", "Olga", "Ravi", "Chen", "Lucia",
];
const TITLES: &[&str] = &["Engineer", "Manager", "Analyst", "Designer", "Director"];
const DEPARTMENTS: &[&str] = &["Sales", "R&D", "Finance", "Support", "Legal", "Marketing"];
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User";
const BIG_GROUP: usize = 100_000;

fn user_doc(i: usize) -> Value {
    let family = FAMILIES[i % FAMILIES.len()];
    let given = GIVEN[(i / 7) % GIVEN.len()];
    let mut u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": format!("user{i}@contoso.example"),
        "externalId": format!("ext{i}"),
        "active": true,
        "displayName": format!("{given} {family} {i}"),
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "emails": [{"type": "work", "value": format!("user{i}@contoso.example"), "primary": true}],
        ENTERPRISE: {"department": DEPARTMENTS[i % DEPARTMENTS.len()], "employeeNumber": format!("{i}")},
    });
    // Half of the users have a title, a tenth a custom extension attribute.
    if i.is_multiple_of(2) {
        u["title"] = json!(TITLES[(i / 2) % TITLES.len()]);
    }
    if i.is_multiple_of(10) {
        u[CUSTOM] = json!({"costCentre": format!("CC{}", i % 100)});
    }
    u
}

/// Seeds `n` users, 1,000 groups of 10 members and one group of min(n, 100k) members.
async fn seed(db: &Db, tenant_id: &str, n: usize) -> anyhow::Result<(Vec<String>, String)> {
    let now = SystemClock.now_ms();
    let mut ids = Vec::with_capacity(n);
    let mut batch_docs = Vec::new();
    let started = Instant::now();
    for start in (0..n).step_by(4000) {
        batch_docs.clear();
        for i in start..(start + 4000).min(n) {
            let u = scim_users_http::NewUserDoc::of(user_doc(i), now)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            batch_docs.push(u);
        }
        let rows: Vec<NewUser> = batch_docs.iter().map(|u| u.row()).collect();
        scim_users::insert_many(db, tenant_id, &rows, now).await?;
        ids.extend(batch_docs.iter().map(|u| u.id.clone()));
        if start.is_multiple_of(100_000) && start > 0 {
            eprint!("\r  seeded {start} users ({:.0?})", started.elapsed());
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!("\r  seeded {n} users in {:.1?}", started.elapsed());
    let group = |name: String| {
        let id = server::store::new_id();
        let rec = GroupRecord {
            id: id.clone(),
            display_name: name,
            external_id: None,
            resource: "{}".into(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        (id, rec)
    };
    for g in 0..1000 {
        let (id, rec) = group(format!("Team {g}"));
        let search = scim_groups_http::search_index(&rec);
        let members: Vec<(String, MemberKind)> = (0..10)
            .map(|k| (ids[(g * 10 + k) % n].clone(), MemberKind::User))
            .collect();
        let w = GroupWrite {
            id: &id,
            display_name: &rec.display_name,
            search: &search,
            external_id: None,
            resource: "{}",
        };
        scim_groups::insert(db, tenant_id, &w, &members, now).await?;
    }
    let (big, rec) = group("Everyone".into());
    let search = scim_groups_http::search_index(&rec);
    let w = GroupWrite {
        id: &big,
        display_name: "Everyone",
        search: &search,
        external_id: None,
        resource: "{}",
    };
    scim_groups::insert(db, tenant_id, &w, &[], now).await?;
    let members: Vec<String> = ids.iter().take(BIG_GROUP).cloned().collect();
    let kinds: HashMap<String, MemberKind> = members
        .iter()
        .map(|m| (m.clone(), MemberKind::User))
        .collect();
    scim_groups::update(
        db,
        tenant_id,
        &big,
        None,
        None,
        &[MemberOp::Add(members)],
        &kinds,
        now,
    )
    .await?;
    eprintln!("  seeded groups in {:.1?}", started.elapsed());
    Ok((ids, big))
}

/// A keep-alive HTTP/1.1 client: just enough for the benchmark (Content-Length bodies).
struct Client {
    stream: BufReader<TcpStream>,
    host: String,
    token: String,
}

impl Client {
    async fn connect(addr: &str, token: &str) -> anyhow::Result<Client> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::new(s),
            host: addr.to_string(),
            token: token.to_string(),
        })
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<u16> {
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await?;
        Ok(status)
    }
}

struct Row {
    name: String,
    p50: Duration,
    p99: Duration,
    rps: f64,
    rss_mb: f64,
    /// Server CPU time (user + system) per request: unlike req/s, not skewed by other work on
    /// the machine.
    cpu_us: f64,
}

fn pct(s: &[Duration], p: f64) -> Duration {
    s[((s.len() as f64 - 1.0) * p) as usize]
}

/// CPU time (user + system) the process used so far, in microseconds.
fn cpu_us(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14th and 15th.
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    // Linux reports CPU time in clock ticks of 1/100 s.
    ticks * 10_000.0
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("RssAnon:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// One server process under test (two in `BENCH_PROVLOG=compare`).
struct Target {
    label: &'static str,
    addr: String,
    pid: u32,
}

struct Driver {
    targets: Vec<Target>,
    token: String,
    clients: usize,
    secs: u64,
    only: Vec<String>,
    rows: Vec<Row>,
    /// Runs per target and row, alternating the targets' order (`BENCH_ROUNDS`).
    rounds: usize,
    /// Every run of every row on every target (for the compare summary).
    runs: Vec<Run>,
    /// Compared servers first run each row once uncounted (`BENCH_WARMUP`, on by default).
    warm_up: bool,
}

/// One row's run on one target: requests served, seconds, server CPU µs.
struct Run {
    row: String,
    target: usize,
    round: usize,
    requests: usize,
    secs: f64,
    cpu_us: f64,
}

impl Driver {
    /// `clients` connections send requests made by `path(i)` for `secs` seconds (or at most
    /// `max` requests each).
    async fn run<F>(
        &mut self,
        name: &str,
        clients: usize,
        max: usize,
        method: &'static str,
        make: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(usize) -> (String, Option<String>) + Send + Sync + 'static,
    {
        if !self.wants(name) {
            return Ok(());
        }
        let make = Arc::new(make);
        let n = self.targets.len();
        if self.warm_up {
            // Whichever server runs a row first finds the pages it reads cold: in the compare
            // runs, the first round's first server ran 20-35% slower than in its later rounds.
            // One uncounted run on each (the round after the counted ones, for its numbers).
            for t in 0..n {
                self.run_on(t, self.rounds, name, clients, max, method, make.clone())
                    .await?;
            }
        }
        for round in 0..self.rounds {
            for k in 0..n {
                // The first target goes first in even rounds, last in odd ones.
                let t = if round % 2 == 0 { k } else { n - 1 - k };
                self.run_on(t, round, name, clients, max, method, make.clone())
                    .await?;
            }
        }
        Ok(())
    }

    fn wants(&self, name: &str) -> bool {
        name.starts_with("bare")
            || self.only.is_empty()
            || self.only.iter().any(|w| name.contains(w.as_str()))
    }

    /// For `BENCH_PROVLOG=compare`: each row's requests per second and CPU per request over all
    /// rounds, log on against log off.
    fn print_compare(&self) {
        if self.targets.len() != 2 {
            return;
        }
        println!(
            "\nlog on vs off, {} interleaved rounds of {} s each:",
            self.rounds, self.secs
        );
        let mut names: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !names.contains(&r.row.as_str()) {
                names.push(&r.row);
            }
        }
        for name in names {
            let sum = |target: usize| {
                self.runs
                    .iter()
                    .filter(|r| r.row == name && r.target == target)
                    .fold((0usize, 0.0, 0.0), |a, r| {
                        (a.0 + r.requests, a.1 + r.secs, a.2 + r.cpu_us)
                    })
            };
            let (a, b) = (sum(0), sum(1));
            let rps = |x: (usize, f64, f64)| x.0 as f64 / x.1.max(1e-9);
            let cpu = |x: (usize, f64, f64)| x.2 / x.0.max(1) as f64;
            // Each round's two runs are adjacent in time; the median of their ratios is less
            // moved by one slow moment of the machine than the totals are.
            let mut per_round: Vec<f64> = (0..self.rounds)
                .filter_map(|round| {
                    let of = |target: usize| {
                        self.runs
                            .iter()
                            .find(|r| r.row == name && r.target == target && r.round == round)
                    };
                    let (on, off) = (of(0)?, of(1)?);
                    let rate = |r: &Run| r.requests as f64 / r.secs.max(1e-9);
                    Some((rate(on) / rate(off).max(1e-9) - 1.0) * 100.0)
                })
                .collect();
            per_round.sort_by(f64::total_cmp);
            let median = match per_round.len() {
                0 => f64::NAN,
                n if n % 2 == 1 => per_round[n / 2],
                n => (per_round[n / 2 - 1] + per_round[n / 2]) / 2.0,
            };
            println!(
                "  {name:<52} {:>8.0} vs {:>8.0} req/s ({:+.1}%; median of rounds {:+.1}%) · CPU {:>5.0} vs {:>5.0} µs/req ({:+.1}%)",
                rps(a),
                rps(b),
                (rps(a) / rps(b) - 1.0) * 100.0,
                median,
                cpu(a),
                cpu(b),
                (cpu(a) / cpu(b) - 1.0) * 100.0
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_on<F>(
        &mut self,
        target: usize,
        round: usize,
        name: &str,
        clients: usize,
        max: usize,
        method: &'static str,
        make: Arc<F>,
    ) -> anyhow::Result<()>
    where
        F: Fn(usize) -> (String, Option<String>) + Send + Sync + 'static,
    {
        let Target { label, addr, pid } = &self.targets[target];
        let base = name.to_string();
        let warming = round == self.rounds;
        let name = match (label.is_empty(), self.rounds > 1) {
            _ if warming => format!("{name} [{label} warm-up, not counted]"),
            (true, _) => name.to_string(),
            (false, false) => format!("{name} [{label}]"),
            (false, true) => format!("{name} [{label} #{}]", round + 1),
        };
        let deadline = Instant::now() + Duration::from_secs(self.secs);
        let started = Instant::now();
        let cpu_before = cpu_us(*pid);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let mut client = Client::connect(addr, &self.token).await?;
            let make = make.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut bad = 0usize;
                // Each server and round gets its own numbers (creates must not collide).
                let mut i = c + target * 100_000_000 + round * 10_000_000;
                while Instant::now() < deadline && lat.len() < max {
                    let (path, body) = make(i);
                    let t = Instant::now();
                    let status = client.call(method, &path, body.as_deref()).await?;
                    lat.push(t.elapsed());
                    if status >= 400 {
                        bad += 1;
                    }
                    i += clients;
                }
                Ok::<_, anyhow::Error>((lat, bad))
            }));
        }
        let mut all = Vec::new();
        let mut bad = 0;
        for t in tasks {
            let (lat, b) = t.await??;
            all.extend(lat);
            bad += b;
        }
        let wall = started.elapsed();
        let cpu_spent = cpu_us(*pid) - cpu_before;
        if warming {
            eprintln!(
                "  {name:<52} {:>8.0} req/s",
                all.len() as f64 / wall.as_secs_f64()
            );
            return Ok(());
        }
        self.runs.push(Run {
            row: base,
            target,
            round,
            requests: all.len(),
            secs: wall.as_secs_f64(),
            cpu_us: cpu_spent,
        });
        all.sort();
        let row = Row {
            name: if bad > 0 {
                format!("{name} ({bad} errors)")
            } else {
                name
            },
            p50: pct(&all, 0.5),
            p99: pct(&all, 0.99),
            rps: all.len() as f64 / wall.as_secs_f64(),
            rss_mb: rss_mb(*pid),
            cpu_us: cpu_spent / all.len().max(1) as f64,
        };
        eprintln!(
            "  {:<52} p50 {:>9.2?} p99 {:>9.2?} {:>8.0} req/s  RSS {:>6.0} MB  CPU {:>6.0} µs/req",
            row.name, row.p50, row.p99, row.rps, row.rss_mb, row.cpu_us
        );
        self.rows.push(row);
        Ok(())
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The server side: the real router plus a bare handler (bearer check + fixed ListResponse)
/// as the yardstick, on the given database, until killed.
async fn serve(url: &str, addr: &str, token: String) -> anyhow::Result<()> {
    let db = Db::open(url).await?;
    let state = AppState::new(
        db,
        Arc::new(SystemClock),
        Settings {
            public_url: format!("http://{addr}"),
            ..Settings::default()
        },
        server::leptos_options("target/site"),
    );
    // BENCH_PROVLOG=off measures SCIM without the provisioning log.
    let state = if std::env::var("BENCH_PROVLOG").as_deref() == Ok("off") {
        let clock = state.clock.clone();
        state.with_provlog(server::provlog::ProvLog::off(clock))
    } else {
        state
    };
    let expected = format!("Bearer {token}");
    let bare = get(move |headers: HeaderMap| {
        let ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        async move {
            if !ok {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": [],
            });
            (
                [("content-type", "application/scim+json")],
                body.to_string(),
            )
                .into_response()
        }
    });
    let app = Router::new()
        .route("/bench/bare", bare)
        .merge(server::router(state));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn db_size_mb(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0) as f64
        / 1e6
}

/// The organisation, user ids and big group of a database seeded by an earlier run.
async fn reuse(db: &Db) -> anyhow::Result<(String, Vec<String>, String)> {
    let Some(p) = db.sqlite_pool() else {
        anyhow::bail!("the benchmark seeds SQLite only");
    };
    let tenant_id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'bench'")
        .fetch_one(p)
        .await?;
    // The POST rows of earlier runs created users; remove them so every run measures the size
    // it was seeded at (they grew a kept 1M database to 1.45M). Every seeded user has the
    // seed's one creation time, the earliest of the organisation's SCIM users.
    let started = Instant::now();
    let removed = sqlx::query(
        "DELETE FROM users WHERE tenant_id = $1 AND deleted_at IS NULL AND source = 'scim' \
         AND created_at > (SELECT MIN(created_at) FROM users \
           WHERE tenant_id = $1 AND deleted_at IS NULL AND source = 'scim')",
    )
    .bind(&tenant_id)
    .execute(p)
    .await?
    .rows_affected();
    if removed > 0 {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(p)
            .await?;
        eprintln!(
            "  removed {removed} users created by earlier runs ({:.1?})",
            started.elapsed()
        );
    }
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE tenant_id = $1 AND source = 'scim' AND deleted_at IS NULL",
    )
    .bind(&tenant_id)
    .fetch_all(p)
    .await?;
    let big: String = sqlx::query_scalar(
        "SELECT id FROM scim_groups WHERE tenant_id = $1 AND display_name = 'Everyone'",
    )
    .bind(&tenant_id)
    .fetch_one(p)
    .await?;
    Ok((tenant_id, ids, big))
}

async fn one_size(n: usize, clients: usize, secs: u64) -> anyhow::Result<Vec<Row>> {
    eprintln!("== {n} users");
    let tmp = tempfile::tempdir()?;
    let dir = match std::env::var_os("BENCH_DB_DIR") {
        Some(d) => std::path::PathBuf::from(d).join(format!("bench-{n}")),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/bench.db", dir.display());
    let seeded_mark = dir.join("seeded");
    let db = Db::open(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    let who = Actor {
        name: "bench",
        client_addr: "",
    };
    let (tenant_id, ids, big) = if seeded_mark.exists() {
        let (tenant_id, ids, big) = reuse(&db).await?;
        eprintln!(
            "  reusing the database in {} ({} users)",
            dir.display(),
            ids.len()
        );
        (tenant_id, ids, big)
    } else {
        let admin = tenants::NewAdmin {
            name: "Bench",
            email: "bench@example.com",
            password_hash: "x",
            source: "cli",
        };
        let t = tenants::create_with_admin(
            &db,
            tenants::InstallGate::Operator,
            "Bench",
            "bench",
            admin,
            now,
        )
        .await?;
        server::directory::reindex_pending(&db).await?;
        provisioning::set_enabled(&db, &t.id, true, &who, now).await?;
        let (ids, big) = seed(&db, &t.id, n).await?;
        // No ANALYZE: the server never collects planner statistics, so the benchmark measures
        // the plans a real installation gets. (Statistics would also change costs: this SQLite
        // is built with STAT4, whose samples make it re-plan a statement on every new binding.)
        if let Some(p) = db.sqlite_pool() {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        std::fs::write(&seeded_mark, big.as_bytes())?;
        (t.id, ids, big)
    };
    let token = provisioning::issue_token(&db, &tenant_id, &who, now)
        .await?
        .secret;
    db.close().await;

    // Compared servers run each row in several interleaved rounds, so that a slow moment of the
    // machine does not fall on one of them only.
    let compare = std::env::var("BENCH_PROVLOG").as_deref() == Ok("compare");
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(if compare { 4 } else { 1 })
        .max(1);
    let modes: &[(&'static str, &str)] = match std::env::var("BENCH_PROVLOG").as_deref() {
        Ok("compare") => &[("log on", "on"), ("log off", "off")],
        Ok("off") => &[("", "off")],
        _ => &[("", "on")],
    };
    let mut children = Vec::new();
    let mut targets = Vec::new();
    for (label, log) in modes {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let addr = format!("127.0.0.1:{port}");
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["--serve", &url, &addr])
            .env("BENCH_TOKEN", &token)
            .env("BENCH_PROVLOG", log)
            .spawn()?;
        for _ in 0..200 {
            if TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        targets.push(Target {
            label,
            addr,
            pid: child.id(),
        });
        children.push(child);
    }
    let only = std::env::var("BENCH_ONLY")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut d = Driver {
        targets,
        token,
        clients,
        secs,
        only,
        rows: Vec::new(),
        rounds,
        runs: Vec::new(),
        warm_up: compare && std::env::var("BENCH_WARMUP").as_deref() != Ok("0"),
    };
    let base = "/scim/v2/bench";
    let c = d.clients;
    let nn = n;
    d.run(
        "bare axum handler (bearer + fixed list)",
        c,
        usize::MAX,
        "GET",
        |_| ("/bench/bare".into(), None),
    )
    .await?;
    d.run(
        "Entra lookup: userName eq (hit, with groups)",
        c,
        usize::MAX,
        "GET",
        move |i| {
            let f = enc(&format!(
                "userName eq \"user{}@contoso.example\"",
                (i * 7919) % nn
            ));
            (format!("{base}/Users?filter={f}"), None)
        },
    )
    .await?;
    // Entra's lookups while other clients of the same organisation send filters that read
    // every user: what a token holder running reports does to provisioning.
    let busy = "Entra lookup while 4 clients scan (title pr)";
    if d.wants(busy) {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut scanners = Vec::new();
        for _ in 0..4 {
            let mut client = Client::connect(&d.targets[0].addr, &d.token).await?;
            let stop = stop.clone();
            let path = format!("{base}/Users?count=10&filter={}", enc("title pr"));
            scanners.push(tokio::spawn(async move {
                let mut done = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    client.call("GET", &path, None).await?;
                    done += 1;
                }
                Ok::<_, anyhow::Error>(done)
            }));
        }
        d.run(busy, c, usize::MAX, "GET", move |i| {
            let f = enc(&format!(
                "userName eq \"user{}@contoso.example\"",
                (i * 7919) % nn
            ));
            (format!("{base}/Users?filter={f}"), None)
        })
        .await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut scans = 0;
        for s in scanners {
            scans += s.await??;
        }
        eprintln!("  ({scans} scans answered meanwhile)");
    }
    d.run(
        "Test Connection: userName eq (no match)",
        c,
        usize::MAX,
        "GET",
        move |i| {
            let f = enc(&format!(
                "userName eq \"{:08x}-0000-4000-8000-000000000000\"",
                i
            ));
            (format!("{base}/Users?filter={f}"), None)
        },
    )
    .await?;
    d.run("externalId eq", c, usize::MAX, "GET", move |i| {
        let f = enc(&format!("externalId eq \"ext{}\"", (i * 7919) % nn));
        (format!("{base}/Users?filter={f}"), None)
    })
    .await?;
    d.run(
        "work email: emails[type eq \"work\"].value eq",
        c,
        usize::MAX,
        "GET",
        move |i| {
            let f = enc(&format!(
                "emails[type eq \"work\" and value eq \"user{}@contoso.example\"]",
                (i * 7919) % nn
            ));
            (format!("{base}/Users?filter={f}"), None)
        },
    )
    .await?;
    d.run(
        "displayName eq (indexed column)",
        c,
        usize::MAX,
        "GET",
        move |i| {
            let k = (i * 7919) % nn;
            let f = enc(&format!(
                "displayName eq \"{} {} {k}\"",
                GIVEN[(k / 7) % GIVEN.len()],
                FAMILIES[k % FAMILIES.len()]
            ));
            (format!("{base}/Users?filter={f}"), None)
        },
    )
    .await?;
    let g = ids[ids.len() / 2].clone();
    d.run(
        "Groups: members eq (Entra membership check)",
        c,
        usize::MAX,
        "GET",
        move |_| {
            let f = enc(&format!("members eq \"{g}\""));
            (
                format!("{base}/Groups?excludedAttributes=members&filter={f}"),
                None,
            )
        },
    )
    .await?;
    let deep = n.saturating_sub(9_999).max(1);
    d.run(
        "deep page: startIndex=N-9999&count=100",
        1,
        20,
        "GET",
        move |_| (format!("{base}/Users?startIndex={deep}&count=100"), None),
    )
    .await?;
    for (label, filter) in [
        (
            "name.familyName eq \"Smith\" (1 in 20, count=100)",
            "name.familyName eq \"Smith\"",
        ),
        ("userName co \"r12345\" (scan)", "userName co \"r12345\""),
        ("title pr (scan of the index)", "title pr"),
        (
            "department eq (enterprise, index scan)",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Legal\"",
        ),
        (
            "custom extension eq (index scan)",
            "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:costCentre eq \"CC42\"",
        ),
        (
            "emails[value ew \"99@contoso.example\"] (scan)",
            "emails[value ew \"99@contoso.example\"]",
        ),
        ("not (active eq true) (scan)", "not (active eq true)"),
        (
            "employeeNumber eq, one match late (scan)",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"987654\"",
        ),
    ] {
        let f = enc(filter);
        d.run(label, 1, 3, "GET", move |_| {
            (format!("{base}/Users?count=100&filter={f}"), None)
        })
        .await?;
    }
    for (label, query, times) in [
        (
            "sortBy=name.familyName&count=10 (index)",
            "sortBy=name.familyName&count=10",
            20,
        ),
        (
            "sortBy=name.familyName descending, startIndex=500001",
            "sortBy=name.familyName&sortOrder=descending&startIndex=500001&count=10",
            5,
        ),
        (
            "sortBy=title&count=10 (sort of all)",
            "sortBy=title&count=10",
            3,
        ),
        (
            "sortBy=title&startIndex=19991 (deepest sorted in parts)",
            "sortBy=title&startIndex=19991&count=10",
            1,
        ),
        (
            "sortBy=title&startIndex=49991 (placed by a sample)",
            "sortBy=title&startIndex=49991&count=10",
            1,
        ),
        (
            "sortBy=title&startIndex=100001 (placed by a sample)",
            "sortBy=title&startIndex=100001&count=10",
            1,
        ),
        (
            "sortBy=title descending, startIndex=500001 (sample)",
            "sortBy=title&sortOrder=descending&startIndex=500001&count=10",
            1,
        ),
        (
            "sortBy=title&startIndex=990001 (placed by a sample)",
            "sortBy=title&startIndex=990001&count=10",
            1,
        ),
        (
            "filter=title pr&sortBy=title&startIndex=300001 (sample)",
            "filter=title%20pr&sortBy=title&startIndex=300001&count=10",
            1,
        ),
        (
            "filter=title pr&sortBy=title (sort of a filter)",
            "filter=title%20pr&sortBy=title&count=10",
            1,
        ),
        (
            "filter=title pr&sortBy=department descending",
            "filter=title%20pr&sortBy=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aenterprise%3A2.0%3AUser%3Adepartment&sortOrder=descending&count=10",
            1,
        ),
    ] {
        d.run(label, 1, times, "GET", move |_| {
            (format!("{base}/Users?{query}"), None)
        })
        .await?;
    }
    d.run(
        "sortBy=userName descending, count=10 (index)",
        1,
        20,
        "GET",
        move |_| {
            (
                format!("{base}/Users?sortBy=userName&sortOrder=descending&count=10"),
                None,
            )
        },
    )
    .await?;
    d.run(
        "root POST /.search userName eq",
        c,
        usize::MAX,
        "POST",
        move |i| {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": format!("userName eq \"user{}@contoso.example\"", (i * 7919) % nn),
            });
            (format!("{base}/.search"), Some(body.to_string()))
        },
    )
    .await?;
    d.run(
        "root POST /.search title pr (scan)",
        1,
        1,
        "POST",
        move |_| {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "title pr",
                "count": 10,
            });
            (format!("{base}/.search"), Some(body.to_string()))
        },
    )
    .await?;
    d.run(
        "root POST /.search sortBy=title (sort of all)",
        1,
        1,
        "POST",
        move |_| {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "sortBy": "title",
                "count": 10,
            });
            (format!("{base}/.search"), Some(body.to_string()))
        },
    )
    .await?;
    let stamp = now;
    d.run("POST /Users", c, usize::MAX, "POST", move |i| {
        let mut u = user_doc(10_000_000 + i);
        u["userName"] = json!(format!("new{stamp}-{i}@contoso.example"));
        u["externalId"] = json!(format!("new{stamp}-{i}"));
        (format!("{base}/Users"), Some(u.to_string()))
    })
    .await?;
    // The keys above sort next to each other: userName and externalId begin with `new`, so
    // each new entry lands where the last one did, on a page every create keeps cached. A
    // directory's new users (an Entra object id as externalId, a person's name in the
    // userName) land anywhere in those indexes: here each key begins at a random place among
    // the seeded users' keys.
    d.run(
        "POST /Users (keys at random places)",
        c,
        usize::MAX,
        "POST",
        move |i| {
            let spot = (stamp as u64 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_mul(0xBF58_476D_1CE4_E5B9)
                % n as u64;
            let mut u = user_doc(20_000_000 + i);
            let name = format!("user{spot}.{stamp}.{i}@contoso.example");
            u["userName"] = json!(name);
            u["emails"][0]["value"] = json!(name);
            u["externalId"] = json!(format!("ext{spot}.{stamp}.{i}"));
            (format!("{base}/Users"), Some(u.to_string()))
        },
    )
    .await?;
    let patch_ids = Arc::new(ids.clone());
    d.run(
        "PATCH /Users/{id} (replace title)",
        c,
        usize::MAX,
        "PATCH",
        move |i| {
            let id = &patch_ids[(i * 104_729) % patch_ids.len()];
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "title", "value": format!("T{i}")}],
            });
            (format!("{base}/Users/{id}"), Some(body.to_string()))
        },
    )
    .await?;
    let add_ids = Arc::new(ids.clone());
    let big2 = big.clone();
    d.run(
        "add one member to the big group",
        1,
        200,
        "PATCH",
        move |i| {
            let id = &add_ids[(BIG_GROUP + i * 13) % add_ids.len()];
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}],
            });
            (format!("{base}/Groups/{big2}"), Some(body.to_string()))
        },
    )
    .await?;
    let big3 = big.clone();
    d.run(
        "GET big group, excludedAttributes=members",
        1,
        50,
        "GET",
        move |_| {
            (
                format!("{base}/Groups/{big3}?excludedAttributes=members"),
                None,
            )
        },
    )
    .await?;
    d.print_compare();
    let rows = std::mem::take(&mut d.rows);
    eprintln!("  database size {:.0} MB", db_size_mb(&dir));
    for mut child in children {
        child.kill()?;
        child.wait()?;
    }
    let mut rows = rows;
    rows.push(Row {
        name: "database size (MB, in the rps column)".into(),
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        rps: db_size_mb(&dir),
        rss_mb: 0.0,
        cpu_us: 0.0,
    });
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        // The server under test runs as the `bitabiz` binary does.
        server::process::tune_allocators();
        let token = std::env::var("BENCH_TOKEN")?;
        return tokio::runtime::Runtime::new()?.block_on(serve(&args[2], &args[3], token));
    }
    let sizes: Vec<usize> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        sizes
    };
    let clients = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new()?;
    let mut tables = Vec::new();
    for n in &sizes {
        tables.push(rt.block_on(one_size(*n, clients, secs))?);
    }
    println!(
        "\n{clients} clients for concurrent rows; release build; SQLite; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let bare: Vec<f64> = tables
        .iter()
        .map(|t| t.first().map_or(1.0, |r| r.rps))
        .collect();
    print!("{:<52}", "request");
    for n in &sizes {
        print!(" | {:>28}", format!("{n} users: p50 / p99"));
        print!(" | {:>15}", "req/s (×bare)");
        print!(" | {:>7}", "RSS MB");
        print!(" | {:>10}", "CPU µs/req");
    }
    println!();
    for (i, row) in tables[0].iter().enumerate() {
        print!("{:<52}", row.name);
        for (t, b) in tables.iter().zip(&bare) {
            let r = &t[i];
            print!(" | {:>28}", format!("{:.2?} / {:.2?}", r.p50, r.p99));
            print!(" | {:>15}", format!("{:.0} ({:.2})", r.rps, r.rps / b));
            print!(" | {:>7.0}", r.rss_mb);
            print!(" | {:>10.0}", r.cpu_us);
        }
        println!();
    }
    Ok(())
}
