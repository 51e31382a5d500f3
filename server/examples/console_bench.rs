//! Prints page timings of the console (Users, Groups, Provisioning log, health) on an
//! organisation with many users and log entries, and SCIM throughput with the provisioning log
//! on and off. Rows are inserted straight into the database in batches (seeding through SCIM
//! would take hours). Not a test: it asserts nothing and only reports.
//!
//!     cargo run -p server --release --example console_bench [-- USERS LOG_ENTRIES]
//!     BENCH_DATABASE_URL=postgres://… (an empty database) for PostgreSQL

use axum::body::Body;
use axum::http::Request;
use server::clock::{Clock, SystemClock};
use server::provisioning::{self, Actor};
use server::provlog::ProvLog;
use server::store::{Db, sessions, tenants, users};
use server::{AppState, Settings, on_db};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const GIVEN: [&str; 24] = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Edsger",
    "Barbara",
    "Donald",
    "Ken",
    "Dennis",
    "Margaret",
    "Tim",
    "Radia",
    "Frances",
    "John",
    "Katherine",
    "Niklaus",
    "Leslie",
    "Bjarne",
    "Guido",
    "Anders",
    "Hedy",
    "Claude",
    "Sophie",
    "Yukihiro",
];
const FAMILY: [&str; 24] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "Berners-Lee",
    "Perlman",
    "Allen",
    "McCarthy",
    "Johnson",
    "Wirth",
    "Lamport",
    "Stroustrup",
    "van Rossum",
    "Hejlsberg",
    "Lamarr",
    "Shannon",
    "Wilson",
    "Matsumoto",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn report(name: &str, mut first_byte: Vec<Duration>, mut full: Vec<Duration>, bytes: usize) {
    first_byte.sort();
    full.sort();
    let p = |v: &Vec<Duration>, q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name:<52} first byte p50={:>8.1?} p95={:>8.1?} · rendered p50={:>8.1?} p95={:>8.1?} · {:>6} B",
        p(&first_byte, 0.5),
        p(&first_byte, 0.95),
        p(&full, 0.5),
        p(&full, 0.95),
        bytes
    );
}

async fn page(router: &axum::Router, cookie: &str, path: &str, n: usize) {
    let mut fb = Vec::new();
    let mut full = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let req = Request::get(path)
            .header("accept", "text/html")
            .header("cookie", format!("bbz_session={cookie}"))
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        let res = router.clone().oneshot(req).await.unwrap();
        fb.push(t.elapsed());
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        full.push(t.elapsed());
        assert!(status.is_success(), "{path}: {status}");
        size = body.len();
    }
    report(&format!("GET {path}"), fb, full, size);
}

/// Multi-row INSERTs of `cols` values per row, `rows` at a time, in one transaction per call.
async fn insert_rows(db: &Db, table: &str, cols: &[&str], rows: &[Vec<Val>]) {
    for chunk in rows.chunks(500) {
        let n = cols.len();
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let marks: Vec<String> = (1..=n).map(|c| format!("${}", r * n + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            cols.join(", "),
            values.join(", ")
        );
        on_db!(db, |p| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for row in chunk {
                for v in row {
                    q = match v {
                        Val::T(s) => q.bind(s.clone()),
                        Val::O(s) => q.bind(s.clone()),
                        Val::I(i) => q.bind(*i),
                        Val::OI(i) => q.bind(*i),
                        Val::B(b) => q.bind(*b),
                    };
                }
            }
            q.execute(p).await.unwrap();
        });
    }
}

#[derive(Clone)]
enum Val {
    T(String),
    O(Option<String>),
    I(i64),
    OI(Option<i64>),
    B(bool),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n_users: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let n_log: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/console.db", dir.path().display()));
    let db = Db::open(&url).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let hash = server::auth::password::hash("bench password 123".into()).await?;
    let slug = format!("bench-{now}");
    let t = tenants::create_with_admin(
        &db,
        tenants::InstallGate::Operator,
        "Bench",
        &slug,
        tenants::NewAdmin {
            name: "Bench Admin",
            email: "admin@bench.example",
            password_hash: &hash,
            source: "cli",
        },
        now,
    )
    .await?;
    let who = Actor {
        name: "bench",
        client_addr: "",
    };
    provisioning::set_enabled(&db, &t.id, true, &who, now).await?;
    let token = provisioning::issue_token(&db, &t.id, &who, now)
        .await?
        .secret;
    let admin = users::list_admins(&db, &t.id).await?.remove(0);
    let secret = server::auth::random_secret_hex();
    sessions::create(
        &db,
        &server::auth::sha256_hex(&secret),
        &admin.id,
        &t.id,
        now,
    )
    .await?;
    println!(
        "database: {} · users: {n_users} · log entries: {n_log}",
        db.kind()
    );

    // Users.
    let started = Instant::now();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut ids = Vec::with_capacity(n_users);
    // A sparse group's members: users whose given name sorts last, so in name order they
    // come after everyone else.
    let last_given = GIVEN.iter().max().copied().unwrap_or_default();
    let mut sorting_last = Vec::new();
    let mut batch = Vec::new();
    for i in 0..n_users {
        let id = uuid::Uuid::new_v4().to_string();
        let g = GIVEN[rng.below(24) as usize];
        let f = FAMILY[rng.below(24) as usize];
        let un = format!(
            "{}.{}{i}@contoso.example",
            g.to_lowercase(),
            f.to_lowercase().replace(' ', "")
        );
        let roll = rng.below(100);
        let deleted = (roll < 2).then_some(now - 1000);
        if g == last_given && deleted.is_none() && sorting_last.len() < 10_001 {
            sorting_last.push(id.clone());
        }
        let active = roll >= 5;
        let resource = format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{un}","displayName":"{g} {f}","name":{{"givenName":"{g}","familyName":"{f}"}},"emails":[{{"type":"work","value":"{un}","primary":true}}],"title":"Engineer","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{{"department":"Dept {}"}}}}"#,
            i % 40
        );
        let at = now - (rng.below(30 * 86_400_000) as i64);
        batch.push(vec![
            Val::T(id.clone()),
            Val::T(t.id.clone()),
            Val::T(un.clone()),
            Val::T(un.to_lowercase()),
            Val::O(Some(format!("ext{i}"))),
            Val::O(Some(g.into())),
            Val::O(Some(f.into())),
            Val::O(Some(format!("{g} {f}"))),
            Val::O(Some(un.clone())),
            Val::O(Some(un.to_lowercase())),
            Val::B(active && deleted.is_none()),
            Val::B(false),
            Val::T(resource),
            Val::T("scim".into()),
            Val::I(1),
            Val::I(at),
            Val::I(at),
            Val::OI(deleted),
        ]);
        ids.push(id);
        if batch.len() == 50_000 {
            insert_rows(
                &db,
                "users",
                &[
                    "id",
                    "tenant_id",
                    "user_name",
                    "user_name_lc",
                    "external_id",
                    "given_name",
                    "family_name",
                    "display_name",
                    "email",
                    "email_lc",
                    "active",
                    "is_admin",
                    "resource",
                    "source",
                    "version",
                    "created_at",
                    "updated_at",
                    "deleted_at",
                ],
                &batch,
            )
            .await;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert_rows(
            &db,
            "users",
            &[
                "id",
                "tenant_id",
                "user_name",
                "user_name_lc",
                "external_id",
                "given_name",
                "family_name",
                "display_name",
                "email",
                "email_lc",
                "active",
                "is_admin",
                "resource",
                "source",
                "version",
                "created_at",
                "updated_at",
                "deleted_at",
            ],
            &batch,
        )
        .await;
    }
    println!("seeded {n_users} users in {:.1?}", started.elapsed());

    // Groups: 1,000 small ones, one with up to 100,000 members, and one whose members sort last.
    let started = Instant::now();
    let mut groups = Vec::new();
    for i in 0..1000 {
        groups.push(vec![
            Val::T(uuid::Uuid::new_v4().to_string()),
            Val::T(t.id.clone()),
            Val::T(format!("Team {i:04}")),
            Val::T(format!("team {i:04}")),
            Val::T("{}".into()),
            Val::I(now),
            Val::I(now),
        ]);
    }
    let big = uuid::Uuid::new_v4().to_string();
    groups.push(vec![
        Val::T(big.clone()),
        Val::T(t.id.clone()),
        Val::T("Everyone".into()),
        Val::T("everyone".into()),
        Val::T("{}".into()),
        Val::I(now),
        Val::I(now),
    ]);
    let gcols = [
        "id",
        "tenant_id",
        "display_name",
        "display_name_lc",
        "resource",
        "created_at",
        "updated_at",
    ];
    insert_rows(&db, "scim_groups", &gcols, &groups).await;
    let members: Vec<Vec<Val>> = ids
        .iter()
        .step_by((n_users / 100_000).max(1))
        .take(100_000)
        .map(|id| {
            vec![
                Val::T(big.clone()),
                Val::T(id.clone()),
                Val::T("User".into()),
            ]
        })
        .collect();
    let sparse = uuid::Uuid::new_v4().to_string();
    insert_rows(
        &db,
        "scim_groups",
        &gcols,
        &[vec![
            Val::T(sparse.clone()),
            Val::T(t.id.clone()),
            Val::T("Sorting last".into()),
            Val::T("sorting last".into()),
            Val::T("{}".into()),
            Val::I(now),
            Val::I(now),
        ]],
    )
    .await;
    let members: Vec<Vec<Val>> = members
        .into_iter()
        .chain(sorting_last.iter().map(|id| {
            vec![
                Val::T(sparse.clone()),
                Val::T(id.clone()),
                Val::T("User".into()),
            ]
        }))
        .collect();
    let n_members = members.len();
    for chunk in members.chunks(50_000) {
        insert_rows(
            &db,
            "group_members",
            &["group_id", "member_id", "member_type"],
            chunk,
        )
        .await;
    }
    println!(
        "seeded 1,002 groups ({n_members} members in Everyone and Sorting last) in {:.1?}",
        started.elapsed()
    );

    // Log entries over 30 days, with the hourly counters they imply.
    let started = Instant::now();
    let mut hours: HashMap<i64, (i64, i64, i64, i64)> = HashMap::new();
    let mut batch = Vec::new();
    let cols = [
        "id",
        "tenant_id",
        "at",
        "duration_us",
        "method",
        "path",
        "operation",
        "action",
        "target_type",
        "target_id",
        "target_name",
        "outcome",
        "status",
        "scim_type",
        "error_detail",
        "client_addr",
        "request_body",
        "response_body",
        "parent_id",
    ];
    for i in 0..n_log {
        let at = now - (rng.below(30 * 86_400_000) as i64);
        let uid = &ids[rng.below(ids.len() as u64) as usize];
        let roll = rng.below(100);
        let (outcome, status, action, detail) = if roll < 2 {
            (
                "failure",
                400,
                "Could not create user someone@contoso.example",
                Some("name.familyName is required by BitaBIZ and is missing or empty."),
            )
        } else if roll < 3 {
            (
                "rejected",
                401,
                "Rejected: invalid token (listed users)",
                None,
            )
        } else {
            (
                "success",
                200,
                "Updated user someone@contoso.example: title",
                None,
            )
        };
        let h = at - at.rem_euclid(3_600_000);
        let c = hours.entry(h).or_default();
        c.0 += 1;
        c.1 += (outcome == "failure") as i64;
        c.2 += (outcome == "rejected") as i64;
        c.3 = c.3.max(at);
        batch.push(vec![
            Val::T(format!("{at:012x}-{i:010x}-bench")),
            Val::T(t.id.clone()),
            Val::I(at),
            Val::I(1500 + rng.below(5000) as i64),
            Val::T("PATCH".into()),
            Val::T(format!("/Users/{uid}")),
            Val::T("user_update".into()),
            Val::T(action.into()),
            Val::O(Some("User".into())),
            Val::O(Some(uid.clone())),
            Val::O(Some("someone@contoso.example".into())),
            Val::T(outcome.into()),
            Val::I(status),
            Val::O(detail.map(|_| "invalidValue".to_string())),
            Val::O(detail.map(str::to_string)),
            Val::T("203.0.113.7".into()),
            Val::O(Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"title","value":"Senior Engineer"}]}"#.into())),
            Val::O(Some(r#"{"id":"x","userName":"someone@contoso.example","title":"Senior Engineer","active":true}"#.into())),
            Val::O(None),
        ]);
        if batch.len() == 50_000 {
            insert_rows(&db.log(), "provisioning_log", &cols, &batch).await;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert_rows(&db.log(), "provisioning_log", &cols, &batch).await;
    }
    let rollups: Vec<Vec<Val>> = hours
        .into_iter()
        .map(|(h, c)| {
            vec![
                Val::T(t.id.clone()),
                Val::I(h),
                Val::I(c.0),
                Val::I(c.1),
                Val::I(c.2),
                Val::I(0),
                Val::I(c.3),
            ]
        })
        .collect();
    insert_rows(
        &db.log(),
        "provisioning_hourly",
        &[
            "tenant_id",
            "hour",
            "requests",
            "failures",
            "rejected",
            "dropped",
            "last_at",
        ],
        &rollups,
    )
    .await;
    println!("seeded {n_log} log entries in {:.1?}", started.elapsed());
    if let Db::Sqlite(p) = &db.log() {
        // The log's file, and the directory's attached to it.
        sqlx::query("ANALYZE").execute(p.pool()).await?;
    }
    if let Db::Postgres(p) = &db {
        sqlx::query("ANALYZE").execute(p).await?;
    }

    let state = |log: ProvLog| {
        AppState::new(
            db.clone(),
            clock.clone(),
            Settings {
                public_url: "http://bench.local".into(),
                ..Settings::default()
            },
            server::leptos_options("target/site"),
        )
        .with_provlog(log)
    };
    let on = ProvLog::start(db.clone(), clock.clone());
    let router = server::router(state(on.clone()));
    let some_user = &ids[ids.len() / 2];
    let entry: String = on_db!(&db.log(), |p| sqlx::query_scalar(
        "SELECT id FROM provisioning_log WHERE tenant_id = $1 ORDER BY at DESC LIMIT 1"
    )
    .bind(&t.id)
    .fetch_one(p)
    .await)?;
    println!(
        "\npage timings (20 requests each; first byte = response head, rendered = whole body)"
    );
    let n = 20;
    for path in [
        "/".to_string(),
        "/users".into(),
        "/users?sort=changed".into(),
        "/users?q=grace.hopper12".into(),
        "/users?q=lovelace".into(),
        "/users?q=nobody-has-this-name".into(),
        "/users?q=ada&status=disabled".into(),
        "/users?q=hopper99&match=contains".into(),
        "/users?status=disabled".into(),
        "/users?status=deprovisioned&sort=changed".into(),
        format!("/users/{some_user}"),
        "/groups".into(),
        format!("/groups/{big}"),
        format!("/groups/{big}?q=ada"),
        format!("/groups/{sparse}"),
        format!("/groups/{sparse}?q=zz"),
        "/setup-admin/integration/microsoft-entra".into(),
        "/setup-admin/integration/microsoft-entra/log".into(),
        "/setup-admin/integration/microsoft-entra/log?outcome=failure".into(),
        "/setup-admin/integration/microsoft-entra/log?operation=user_create&range=24h".into(),
        format!("/setup-admin/integration/microsoft-entra/log/{entry}"),
    ] {
        page(&router, &secret, &path, n).await;
    }

    // SCIM throughput, log off and on, alternating, 16 concurrent clients.
    println!("\nSCIM throughput (16 concurrent clients, 4 s per run, runs alternate off/on)");
    let off_router = server::router(state(ProvLog::off(clock.clone())));
    let mut seq = 0usize;
    for workload in ["lookup", "create", "patch"] {
        let mut totals = HashMap::new();
        for round in 0..2 {
            for (label, r) in [("off", &off_router), ("on", &router)] {
                seq += 1;
                let deadline = Instant::now() + Duration::from_secs(4);
                let mut tasks = Vec::new();
                for c in 0..16 {
                    let r = r.clone();
                    let (slug, token) = (slug.clone(), token.clone());
                    let target = ids[(c * 7919 + round) % ids.len()].clone();
                    tasks.push(tokio::spawn(async move {
                        let mut done = 0u64;
                        while Instant::now() < deadline {
                            let (method, path, body) = match workload {
                                "lookup" => ("GET", format!("/Users?filter=userName+eq+%22ada.lovelace{}%40contoso.example%22", done * 16 + c as u64), None),
                                "create" => ("POST", "/Users".to_string(), Some(format!(
                                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new{seq}-{c}-{done}@contoso.example","name":{{"givenName":"N","familyName":"W"}},"emails":[{{"type":"work","value":"new{seq}-{c}-{done}@contoso.example"}}],"active":true}}"#))),
                                _ => ("PATCH", format!("/Users/{target}"), Some(format!(
                                    r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Replace","path":"title","value":"T{done}"}}]}}"#))),
                            };
                            let mut req = Request::builder()
                                .method(method)
                                .uri(format!("/scim/v2/{slug}{path}"))
                                .header("authorization", format!("Bearer {token}"));
                            if body.is_some() {
                                req = req.header("content-type", "application/scim+json");
                            }
                            let req = req.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
                            let res = r.clone().oneshot(req).await.unwrap();
                            let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
                            done += 1;
                        }
                        done
                    }));
                }
                let mut total = 0;
                for t in tasks {
                    total += t.await?;
                }
                *totals.entry(label).or_insert(0u64) += total;
                on.flush().await;
            }
        }
        let off = totals["off"] as f64 / 8.0;
        let onr = totals["on"] as f64 / 8.0;
        println!(
            "{workload:<8} log off {off:>7.0} req/s · log on {onr:>7.0} req/s · {:+.1}%",
            (onr / off - 1.0) * 100.0
        );
    }
    println!("entries lost (queue full): {}", on.lost_total());
    Ok(())
}
