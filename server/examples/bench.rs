//! Prints speed and memory figures for the SCIM endpoint, measured through the real router on
//! a real database (a temp SQLite file, or BENCH_DATABASE_URL=postgres://… on an empty
//! database). Not a test: it asserts nothing and only reports.
//!
//!     cargo run -p server --release --example bench [-- USERS]

use axum::body::Body;
use axum::http::Request;
use server::clock::{Clock, SystemClock};
use server::provisioning::{self, Actor};
use server::store::{Db, tenants};
use server::{AppState, Settings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

struct Bench {
    router: axum::Router,
    slug: String,
    token: String,
}

impl Bench {
    async fn call(&self, method: &str, path: &str, body: Option<String>) -> (u16, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/scim/v2/{}{path}", self.slug))
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header("content-type", "application/scim+json");
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<44} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?} mean={:>9.1?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1],
        total / samples.len() as u32
    );
}

async fn timed<F, Fut>(n: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        out.push(t.elapsed());
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let db = Db::open(&url).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let admin = tenants::NewAdmin {
        name: "Bench",
        email: "bench@example.com",
        password_hash: "x",
        source: "cli",
    };
    let slug = format!("bench-{}", now);
    let t = tenants::create_with_admin(
        &db,
        tenants::InstallGate::Operator,
        "Bench",
        &slug,
        admin,
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
    // BENCH_PROVLOG=off measures SCIM without the provisioning log.
    let provlog = if std::env::var("BENCH_PROVLOG").as_deref() == Ok("off") {
        server::provlog::ProvLog::off(clock.clone())
    } else {
        server::provlog::ProvLog::start(db.clone(), clock.clone())
    };
    let log_on = provlog.is_on();
    let state = AppState {
        provlog,
        db: db.clone(),
        clock,
        settings: Arc::new(Settings {
            public_url: "http://bench.local".into(),
            setup_code_required: false,
        }),
        leptos: server::leptos_options("target/site"),
    };
    let b = Bench {
        router: server::router(state),
        slug: t.slug.clone(),
        token,
    };
    let b = &b;
    println!(
        "database: {} · users: {users} · provisioning log: {}",
        db.kind(),
        if log_on { "on" } else { "off" }
    );
    println!("RSS at start: {} KiB", rss_kib("VmRSS:"));

    // The token check alone: SHA-256 of the presented token plus one indexed lookup.
    let hash = server::auth::sha256_hex(&b.token);
    report(
        "gate: sha256 + token lookup",
        timed(5000, |_| {
            let (db, hash) = (&db, &hash);
            async move {
                server::store::tokens::gate_lookup(db, hash).await.unwrap();
            }
        })
        .await,
    );
    report(
        "GET /ServiceProviderConfig (gate + tiny answer)",
        timed(2000, |_| async {
            assert_eq!(b.call("GET", "/ServiceProviderConfig", None).await.0, 200);
        })
        .await,
    );
    let wrong = &Bench {
        router: b.router.clone(),
        slug: b.slug.clone(),
        token: "bbz_scim_wrong".into(),
    };
    report(
        "GET with a wrong token (401)",
        timed(2000, |_| async {
            assert_eq!(wrong.call("GET", "/Users", None).await.0, 401);
        })
        .await,
    );

    let created = timed(users, |i| async move {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i}@contoso.example"),
            "externalId": format!("user{i}"),
            "name": {"givenName": "Given", "familyName": format!("Family{i}")},
            "emails": [{"type": "work", "value": format!("user{i}@contoso.example"), "primary": true}],
            "active": true
        });
        assert_eq!(b.call("POST", "/Users", Some(body.to_string())).await.0, 201);
    }).await;
    report("POST /Users", created);

    report(
        "Test Connection (userName eq, no match)",
        timed(2000, |_| async {
            let (s, _) = b
                .call(
                    "GET",
                    "/Users?filter=userName+eq+%22c0ffee00-0000-4000-8000-000000000000%22",
                    None,
                )
                .await;
            assert_eq!(s, 200);
        })
        .await,
    );
    report(
        "GET /Users?filter=userName eq (match)",
        timed(2000, |i| async move {
            let path = format!(
                "/Users?filter=userName+eq+%22user{}%40contoso.example%22",
                i % users
            );
            assert_eq!(b.call("GET", &path, None).await.0, 200);
        })
        .await,
    );
    report(
        "GET /Users?filter=externalId eq",
        timed(2000, |i| async move {
            let path = format!("/Users?filter=externalId+eq+%22user{}%22", i % users);
            assert_eq!(b.call("GET", &path, None).await.0, 200);
        })
        .await,
    );

    let (_, body) = b
        .call(
            "GET",
            "/Users?filter=userName+eq+%22user1%40contoso.example%22",
            None,
        )
        .await;
    let id = serde_json::from_slice::<serde_json::Value>(&body)?["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    report("PATCH /Users/{id} (Entra: replace active)", timed(1000, |i| {
        let id = id.clone();
        async move {
            let v = if i % 2 == 0 { "False" } else { "True" };
            let body = format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Replace","path":"active","value":"{v}"}}]}}"#);
            assert_eq!(b.call("PATCH", &format!("/Users/{id}"), Some(body)).await.0, 200);
        }
    }).await);
    report(
        "GET /Users?count=100 (page of 100)",
        timed(200, |_| async {
            assert_eq!(
                b.call("GET", "/Users?count=100&startIndex=101", None)
                    .await
                    .0,
                200
            );
        })
        .await,
    );
    report(
        "GET /Users?filter=name.familyName co (scan)",
        timed(20, |_| async {
            assert_eq!(
                b.call("GET", "/Users?filter=name.familyName+co+%22y1%22", None)
                    .await
                    .0,
                200
            );
        })
        .await,
    );

    // Throughput: 16 concurrent clients doing Entra's lookup for 3 seconds.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for c in 0..16 {
        let b = Bench {
            router: b.router.clone(),
            slug: b.slug.clone(),
            token: b.token.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let path = format!(
                    "/Users?filter=userName+eq+%22user{}%40contoso.example%22",
                    (c * 97 + n as usize) % users
                );
                assert_eq!(b.call("GET", &path, None).await.0, 200);
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    println!(
        "throughput (16 concurrent userName lookups, 3 s): {:.0} requests/s",
        total as f64 / 3.0
    );
    println!(
        "RSS at end: {} KiB, peak {} KiB",
        rss_kib("VmRSS:"),
        rss_kib("VmHWM:")
    );
    Ok(())
}
