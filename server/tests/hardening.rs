//! Abuse and race defences through the real router on a real database (SQLite; PostgreSQL too
//! when TEST_DATABASE_URL is set): sign-in throttling under concurrency, bounded password
//! hashing, sign-in timing, DNS rebinding, concurrent token rotation, console error statuses,
//! security headers, metrics, request ids and trusted proxies.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::*;
use server::Settings;
use server::console::{MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS, THROTTLE_WINDOW_MS};
use server::on_db;
use std::net::SocketAddr;
use std::time::Duration;

/// A sign-in request as the hydrated page sends it, optionally from a given peer socket.
fn sign_in_request(email: &str, password: &str, peer: Option<SocketAddr>) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("email", email), ("password", password)])
        .finish();
    let mut req = Request::post("/api/sign_in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("origin", PUBLIC_URL)
        .body(Body::from(body))
        .unwrap();
    if let Some(p) = peer {
        req.extensions_mut().insert(ConnectInfo(p));
    }
    req
}

/// Sends all requests at once; returns (status, body) in order.
async fn concurrently(app: &TestApp, reqs: Vec<Request<Body>>) -> Vec<(StatusCode, String)> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|req| {
            let router = app.router.clone();
            tokio::spawn(async move {
                let res = router.oneshot(req).await.unwrap();
                let status = res.status();
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn patient() -> Settings {
    Settings {
        public_url: PUBLIC_URL.into(),
        hash_wait: Duration::from_secs(120),
        ..Settings::default()
    }
}

#[tokio::test]
async fn concurrent_wrong_passwords_cannot_overrun_the_account_limit() {
    let app = TestApp::with_settings(patient()).await;
    app.setup().await;
    let before = app.state.hasher.computed();
    let reqs = (0..30)
        .map(|_| sign_in_request(EMAIL, "not the password at all", None))
        .collect();
    let answers = concurrently(&app, reqs).await;
    let wrong = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::BAD_REQUEST && b.contains("Wrong email or password"))
        .count();
    let throttled = answers
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::TOO_MANY_REQUESTS && b.contains("Too many failed sign-in attempts")
        })
        .count();
    assert_eq!(wrong as i64, MAX_FAILURES_PER_ACCOUNT, "{answers:?}");
    assert_eq!(wrong + throttled, 30, "{answers:?}");
    assert_eq!(
        app.state.hasher.computed() - before,
        MAX_FAILURES_PER_ACCOUNT as u64,
        "only the admitted attempts ran argon2"
    );
    // The account is now locked for the window, even for the right password.
    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    app.clock.advance_ms(THROTTLE_WINDOW_MS + 1);
    assert_eq!(app.sign_in(EMAIL, PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_guesses_from_one_address_cannot_overrun_its_limit() {
    let app = TestApp::with_settings(patient()).await;
    app.setup().await;
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let reqs = (0..40)
        .map(|i| sign_in_request(&format!("guess{i}@contoso.example"), "whatever", Some(peer)))
        .collect();
    let answers = concurrently(&app, reqs).await;
    let checked = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!(checked as i64, MAX_FAILURES_PER_ADDRESS, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s == StatusCode::BAD_REQUEST || *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // Another address is not affected.
    let other: SocketAddr = "198.51.100.8:40000".parse().unwrap();
    let r = concurrently(&app, vec![sign_in_request(EMAIL, PASSWORD, Some(other))]).await;
    assert_eq!(r[0].0, StatusCode::OK, "{}", r[0].1);
}

#[tokio::test]
async fn sign_ins_beyond_the_hashing_slots_are_told_to_try_again() {
    let app = TestApp::with_settings(Settings {
        public_url: PUBLIC_URL.into(),
        hash_slots: 1,
        hash_wait: Duration::from_millis(1),
        ..Settings::default()
    })
    .await;
    app.setup().await;
    let reqs = (0..6)
        .map(|i| sign_in_request(&format!("someone{i}@contoso.example"), "guess", None))
        .collect();
    let answers = concurrently(&app, reqs).await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!busy.is_empty(), "one slot, six at once: {answers:?}");
    assert!(
        busy.iter().all(|(_, b)| b.contains("try again")),
        "{busy:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s != StatusCode::INTERNAL_SERVER_ERROR)
    );
    // A turned-away attempt was never judged, so it does not count against the address.
    let counted = server::store::throttle::failures_since(&app.db, "address:unknown", 0)
        .await
        .unwrap();
    assert_eq!(counted as usize, answers.len() - busy.len());
    assert_eq!(app.state.hasher.refused() as usize, busy.len());
}

#[tokio::test]
async fn a_wrong_password_costs_one_hash_however_many_organisations_use_the_email() {
    let app = TestApp::new().await;
    app.setup().await;
    let hash = server::auth::password::hash(PASSWORD.into()).await.unwrap();
    for name in ["Fabrikam", "Woodgrove"] {
        server::store::tenants::create_with_admin(
            &app.db,
            server::store::tenants::InstallGate::Operator,
            name,
            &server::domain::slugify(name),
            server::store::tenants::NewAdmin {
                name: "Ada",
                email: EMAIL,
                password_hash: &hash,
                source: "cli",
            },
            START_MS,
        )
        .await
        .unwrap();
    }
    let hashes = |app: &TestApp| app.state.hasher.computed();
    let n = hashes(&app);
    let r = app.sign_in(EMAIL, "a wrong password").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        hashes(&app) - n,
        1,
        "admin in three organisations, one hash"
    );
    let n = hashes(&app);
    let r = app
        .sign_in("nobody@contoso.example", "a wrong password")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(hashes(&app) - n, 1, "unknown email, one hash");
    // The right password checks every organisation to offer the choice.
    let n = hashes(&app);
    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.json()["ChooseTenant"].as_array().unwrap().len(), 3);
    assert_eq!(hashes(&app) - n, 3);
}

#[tokio::test]
async fn dns_rebinding_cannot_use_the_host_header_to_pass_the_origin_check() {
    let app = TestApp::new().await;
    let rebound = |name: &str, form: &[(&str, &str)]| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        Request::post(format!("/api/{name}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://evil.test")
            .header("host", "evil.test")
            .body(Body::from(body))
            .unwrap()
    };
    // The first-run form of a fresh install.
    let r = app
        .send(rebound("create_organisation", &setup_form()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let info = app.server_fn("load_setup_info", &[], None).await.json();
    assert_eq!(info["needs_setup"], true, "nothing was created");
    app.setup().await;
    let r = app
        .send(rebound(
            "sign_in",
            &[("email", EMAIL), ("password", PASSWORD)],
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.session_cookie().is_none());
}

#[tokio::test]
async fn the_first_run_form_on_loopback_checks_origin_against_the_public_url() {
    let app = TestApp::with_settings(Settings {
        public_url: "http://127.0.0.1:3000".into(),
        ..Settings::default()
    })
    .await;
    for (origin, host) in [
        ("http://evil.test:3000", "evil.test:3000"),
        ("http://127.0.0.2:3000", "127.0.0.2:3000"),
    ] {
        let r = app
            .send(
                Request::post("/api/create_organisation")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("origin", origin)
                    .header("host", host)
                    .body(Body::from(
                        form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(setup_form())
                            .finish(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}");
    }
    let r = app
        .server_fn_from(
            "create_organisation",
            &setup_form(),
            None,
            Some("http://localhost:3000"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "localhost is the same machine: {}",
        r.body
    );
}

#[tokio::test]
async fn ten_concurrent_rotations_all_succeed_and_leave_one_active_token() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let reqs = (0..10)
        .map(|_| {
            Request::post("/api/issue_token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .header("origin", PUBLIC_URL)
                .header("cookie", format!("bbz_session={cookie}"))
                .body(Body::empty())
                .unwrap()
        })
        .collect();
    let answers = concurrently(&app, reqs).await;
    for (s, b) in &answers {
        assert_eq!(*s, StatusCode::OK, "{b}");
    }
    let (active, total): (i64, i64) = on_db!(&app.db, |p| {
        let a = sqlx::query_scalar(
            "SELECT COUNT(*) FROM scim_tokens WHERE expires_at IS NULL AND revoked_at IS NULL",
        )
        .fetch_one(p)
        .await
        .unwrap();
        let t = sqlx::query_scalar("SELECT COUNT(*) FROM scim_tokens")
            .fetch_one(p)
            .await
            .unwrap();
        (a, t)
    });
    assert_eq!((active, total), (1, 10));
}

#[tokio::test]
async fn console_errors_carry_client_statuses_not_500() {
    let app = TestApp::new().await;
    let r = app
        .server_fn(
            "create_organisation",
            &[
                ("org_name", "X"),
                ("admin_name", "A"),
                ("email", "not-an-email"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let cookie = app.setup().await;
    let r = app.sign_in(EMAIL, "wrong password here").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("Wrong email or password."));
    let r = app
        .server_fn("load_home", &[], Some("no-such-session"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = app.server_fn("load_home", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .server_fn("set_token_overlap", &[("minutes", "99999")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app
        .server_fn("revoke_token", &[("token_id", "nope")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn console_pages_have_a_nonce_csp_and_are_never_cached() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let page = app.get("/", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").unwrap().to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a script nonce in the policy");
    assert!(nonce.len() >= 16, "{csp}");
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the policy's nonce"
    );
    assert!(
        csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let second = app.get("/", Some(&cookie)).await;
    assert_ne!(
        second.header("content-security-policy"),
        Some(csp.as_str()),
        "a fresh nonce per page"
    );
    let api = app.server_fn("load_home", &[], Some(&cookie)).await;
    assert_eq!(api.header("cache-control"), Some("no-store"));
    assert!(api.header("content-security-policy").is_some());
    let sign_in = app.get("/sign-in", None).await;
    assert_eq!(sign_in.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn metrics_need_an_allowed_address_or_the_token_and_count_outcomes() {
    let token = "metrics-token-0123456789";
    let app = TestApp::with_settings(Settings {
        public_url: PUBLIC_URL.into(),
        metrics_token_hash: Some(server::auth::sha256_hex(token)),
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        metrics_allow: vec!["192.0.2.10".parse().unwrap()],
        ..Settings::default()
    })
    .await;
    app.setup().await;
    app.sign_in(EMAIL, "wrong password here").await;
    let t = app.scim_tenant("Northwind").await;
    let r = app
        .scim(
            "POST",
            &t,
            "/Users",
            Some(serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "m@x.example",
                "externalId": "m",
                "active": true,
                "displayName": "M X",
                "name": {"givenName": "M", "familyName": "X"},
                "emails": [{"primary": true, "type": "work", "value": "m@x.example"}],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.scim_raw(
        "GET",
        &format!("/scim/v2/{}/Users", t.slug),
        Some("bbz_scim_wrong"),
        None,
    )
    .await;

    let get = |peer: &str, forwarded: Option<&str>, bearer: Option<&str>| {
        let mut req = Request::get("/metrics");
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    };
    assert_eq!(
        app.send(get("203.0.113.1:1", None, None)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(get("203.0.113.1:1", None, Some("wrong-token-xxxxxxxx")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // X-Forwarded-For counts only from a trusted proxy.
    assert_eq!(
        app.send(get("203.0.113.1:1", Some("192.0.2.10"), None))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.send(get("10.1.2.3:1", Some("192.0.2.10"), None))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(get("192.0.2.10:1", None, None)).await.status,
        StatusCode::OK
    );
    let r = app.send(get("203.0.113.1:1", None, Some(token))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.body;
    for line in [
        "bitabiz_sign_in_total{outcome=\"wrong\"} 1",
        "bitabiz_scim_auth_total{outcome=\"ok\"} 1",
        "bitabiz_scim_auth_total{outcome=\"invalid\"} 1",
        "bitabiz_http_requests_total{operation=\"scim_users_create\",status=\"201\"} 1",
        "bitabiz_http_request_duration_seconds_count{operation=\"console_api\",status=\"400\"} 1",
        "bitabiz_db_pool_max_connections ",
        "bitabiz_password_hashes_total ",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
}

#[tokio::test]
async fn every_response_has_a_request_id_and_proxies_are_believed_only_when_trusted() {
    let app = TestApp::with_settings(Settings {
        public_url: PUBLIC_URL.into(),
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..Settings::default()
    })
    .await;
    let h1 = app.get("/healthz", None).await;
    let h2 = app.get("/healthz", None).await;
    let (a, b) = (
        h1.header("x-request-id").unwrap(),
        h2.header("x-request-id").unwrap(),
    );
    assert!(a.len() >= 16 && a != b);

    app.setup().await;
    let via = |peer: &str| {
        let mut req = sign_in_request(EMAIL, PASSWORD, Some(peer.parse().unwrap()));
        let h = req.headers_mut();
        h.insert("x-forwarded-for", "198.51.100.23".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-request-id", "proxy-chosen-id-1".parse().unwrap());
        req
    };
    // A trusted proxy: its client address is audited, HTTPS makes the cookie Secure, and its
    // request id is kept.
    let r = app.send(via("10.9.9.9:5000")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
    assert_eq!(r.header("x-request-id"), Some("proxy-chosen-id-1"));
    // Anyone else: the headers are ignored.
    let r = app.send(via("203.0.113.50:5000")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.header("set-cookie").unwrap().contains("Secure"));
    assert_ne!(r.header("x-request-id"), Some("proxy-chosen-id-1"));
    let addrs: Vec<String> = on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT client_addr FROM audit_log WHERE action = 'signed_in' ORDER BY at, id"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert!(addrs.contains(&"198.51.100.23".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"203.0.113.50".to_string()), "{addrs:?}");
}

fn scim_user(user_name: &str) -> serde_json::Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": "ext",
        "active": true,
        "displayName": "L X",
        "name": {"givenName": "L", "familyName": "X"},
        "emails": [{"primary": true, "type": "work", "value": "l@x.example"}],
    })
}

#[tokio::test]
async fn scim_strings_and_arrays_have_length_limits_with_clear_errors() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Limits").await;
    let expect_400 = |r: &Reply, needle: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let j = r.json();
        assert_eq!(j["scimType"], "invalidValue", "{}", r.body);
        assert!(j["detail"].as_str().unwrap().contains(needle), "{}", r.body);
    };
    let long = format!("{}@x.example", "a".repeat(100_000));
    let r = app.scim("POST", &t, "/Users", Some(scim_user(&long))).await;
    expect_400(&r, "userName");
    let r = app
        .scim("POST", &t, "/Users", Some(scim_user("nul\u{0}@x.example")))
        .await;
    expect_400(&r, "NUL");
    let mut many = scim_user("phones@x.example");
    many["phoneNumbers"] = (0..40_000)
        .map(|i| serde_json::json!({"value": i.to_string()}))
        .collect();
    let r = app.scim("POST", &t, "/Users", Some(many)).await;
    expect_400(&r, "phoneNumbers");

    // PATCH and PUT go through the same check; nothing is stored.
    let r = app
        .scim("POST", &t, "/Users", Some(scim_user("ok@x.example")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let patch = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "d".repeat(5000)}]
    });
    let r = app
        .scim("PATCH", &t, &format!("/Users/{id}"), Some(patch))
        .await;
    expect_400(&r, "displayName");
    let mut put = scim_user("ok@x.example");
    put["nickName"] = serde_json::json!("tab\u{0}");
    let r = app
        .scim("PUT", &t, &format!("/Users/{id}"), Some(put))
        .await;
    expect_400(&r, "NUL");
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(r.json()["displayName"], "L X");
    let g = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "g".repeat(3000),
    });
    let r = app.scim("POST", &t, "/Groups", Some(g)).await;
    expect_400(&r, "displayName");
}
