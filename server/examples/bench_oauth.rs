//! Prints latency figures for OAuth 2.0 client credentials: a token fetch from the token
//! endpoint, and SCIM requests with an access token beside the same requests with a bearer
//! token. Through the real router on a real database (a temp SQLite file, or
//! BENCH_DATABASE_URL=postgres://… on an empty database). Not a test: it asserts nothing and
//! only reports.
//!
//!     cargo run -p server --release --example bench_oauth [-- USERS]

use axum::body::Body;
use axum::http::Request;
use server::clock::{Clock, ManualClock, SystemClock};
use server::oauth::{self, SecretYears};
use server::provisioning::{self, Actor};
use server::store::{Db, tenants};
use server::{AppState, Settings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

async fn call(router: &axum::Router, req: Request<Body>) -> (u16, Vec<u8>) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<48} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?} mean={:>9.1?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1],
        total / samples.len() as u32
    );
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
    // A manual clock (started at the real time) lets the refused-fetch figures skip the
    // throttle window instead of tripping it.
    let clock = ManualClock::new(SystemClock.now_ms());
    let now = clock.now_ms();
    let admin = tenants::NewAdmin {
        name: "Bench",
        email: "bench@example.com",
        password_hash: "x",
        source: "cli",
    };
    let slug = format!("bench-oauth-{now}");
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
    let bearer = provisioning::issue_token(&db, &t.id, &who, now)
        .await?
        .secret;
    let secret = oauth::issue_client_secret(&db, &t.id, SecretYears::default(), &who, now)
        .await?
        .secret;
    let router = server::router(AppState::new(
        db.clone(),
        Arc::new(clock.clone()),
        Settings {
            public_url: "http://bench.local".into(),
            ..Settings::default()
        },
        server::leptos_options("target/site"),
    ));
    let token_path = format!("/scim/v2/{}/oauth/token", t.slug);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", oauth::client_id(&t.id))
        .append_pair("client_secret", &secret)
        .finish();
    let token_request = || {
        Request::post(&token_path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.clone()))
            .unwrap()
    };
    println!("database: {} · users: {users}", db.kind());

    let mut access = String::new();
    let mut samples = Vec::new();
    for _ in 0..1000 {
        let t0 = Instant::now();
        let (status, body) = call(&router, token_request()).await;
        samples.push(t0.elapsed());
        assert_eq!(status, 200);
        access = serde_json::from_slice::<serde_json::Value>(&body)?["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    report("POST oauth/token (client_credentials, body auth)", samples);

    let scim = |token: &str, path: &str, body: Option<String>| {
        let mut req = Request::builder()
            .method(if body.is_some() { "POST" } else { "GET" })
            .uri(format!("/scim/v2/{}{path}", t.slug))
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            req = req.header("content-type", "application/scim+json");
        }
        req.body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap()
    };
    for i in 0..users {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i}@contoso.example"),
            "externalId": format!("user{i}"),
            "name": {"givenName": "Given", "familyName": format!("Family{i}")},
            "emails": [{"type": "work", "value": format!("user{i}@contoso.example"), "primary": true}],
            "active": true
        });
        let token = if i % 2 == 0 { &access } else { &bearer };
        let (status, _) = call(&router, scim(token, "/Users", Some(body.to_string()))).await;
        assert_eq!(status, 201);
    }

    // Each kind twice, alternating, so warm-up and disk noise show instead of favouring one.
    let kinds = [("access token", &access), ("bearer token", &bearer)];
    for (name, token) in kinds.into_iter().chain(kinds) {
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let t0 = Instant::now();
            let (status, _) = call(&router, scim(token, "/ServiceProviderConfig", None)).await;
            samples.push(t0.elapsed());
            assert_eq!(status, 200);
        }
        report(&format!("GET /ServiceProviderConfig, {name}"), samples);
        let mut samples = Vec::new();
        for i in 0..2000 {
            let path = format!(
                "/Users?filter=userName+eq+%22user{}%40contoso.example%22",
                i % users
            );
            let t0 = Instant::now();
            let (status, _) = call(&router, scim(token, &path, None)).await;
            samples.push(t0.elapsed());
            assert_eq!(status, 200);
        }
        report(&format!("GET /Users?filter=userName eq, {name}"), samples);
    }
    // Refused fetches: the clock jumps past the throttle window every few attempts, so the
    // per-client and per-address limits never trip.
    let wrong = form.replace(&secret[7..], &"0".repeat(64));
    let unknown = form.replace(
        oauth::client_id(&t.id),
        "00000000-0000-4000-8000-000000000000",
    );
    let refusals = [("wrong secret", &wrong), ("unknown client", &unknown)];
    for (name, body) in refusals.into_iter().chain(refusals) {
        let mut samples = Vec::new();
        for i in 0..500 {
            if i % (oauth::MAX_FAILURES_PER_CLIENT - 1) as usize == 0 {
                clock.advance_ms(oauth::THROTTLE_WINDOW_MS + 1);
            }
            let req = Request::post(&token_path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body.clone()))
                .unwrap();
            let t0 = Instant::now();
            let (status, _) = call(&router, req).await;
            samples.push(t0.elapsed());
            assert_eq!(status, 401);
        }
        report(&format!("POST oauth/token, {name} (401)"), samples);
    }
    Ok(())
}
