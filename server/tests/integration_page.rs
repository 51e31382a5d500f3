//! SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning and the SCIM gate, through the real
//! router on a real database.

mod common;

use axum::http::StatusCode;
use common::*;
use server::on_db;
use std::sync::{Arc, Mutex};

const TEST_CONNECTION: &str =
    "/Users?filter=userName+eq+%22a3c4f1a2-9b1e-4c55-8f63-0e7d1c2b9a10%22";

fn assert_scim_error(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let body = r.json();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], status.as_u16().to_string());
}

/// Signs in, enables provisioning and generates a token through the console's own calls.
async fn console_with_token(app: &TestApp) -> (String, String) {
    let cookie = app.setup().await;
    let r = app
        .server_fn("set_provisioning", &[("enabled", "true")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.server_fn("issue_token", &[], Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (cookie, r.json()["token"].as_str().unwrap().to_string())
}

async fn scim_get(app: &TestApp, token: Option<&str>, uri: &str) -> Reply {
    app.scim_raw("GET", &format!("/scim/v2/contoso-pharma{uri}"), token, None)
        .await
}

#[tokio::test]
async fn the_page_shows_the_endpoint_and_starts_disabled_without_tokens() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(v["enabled"], false);
    assert_eq!(
        v["endpoint_url"],
        format!("{PUBLIC_URL}/scim/v2/contoso-pharma")
    );
    assert_eq!(v["tokens"].as_array().unwrap().len(), 0);
    assert_eq!(v["overlap_minutes"], 60);
    // Server-rendered for a signed-in admin, with the labels the seed article uses.
    let page = app
        .get("/setup-admin/integration/microsoft-entra", Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for label in [
        "Automatic user provisioning",
        "SCIM Provisioning endpoint URL",
        "Bearer Token",
        "Generate token",
    ] {
        assert!(page.body.contains(label), "page lacks {label}");
    }
    // Signed out, the page sends you to sign in; the data call refuses.
    assert_eq!(
        app.get("/setup-admin/integration/microsoft-entra", None)
            .await
            .location(),
        Some("/sign-in")
    );
    let r = app.server_fn("load_integration", &[], None).await;
    assert!(r.body.contains("sign in again"), "{}", r.body);
}

#[tokio::test]
async fn test_connection_passes_with_an_enabled_tenant_and_a_live_token() {
    let app = TestApp::new().await;
    let (_, token) = console_with_token(&app).await;
    assert!(token.starts_with("bbz_scim_") && token.len() == 73 && token.len() < 1024);

    // Exactly as Entra's Test Connection sends it: no Accept, no Content-Type.
    let r = scim_get(&app, Some(&token), TEST_CONNECTION).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let body = r.json();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], serde_json::json!([]));

    // The same query really reads the users table: the admin's own account is found.
    let r = scim_get(
        &app,
        Some(&token),
        "/Users?filter=userName+eq+%22ADA%40contoso.example%22",
    )
    .await;
    assert_eq!(r.json()["totalResults"], 1, "{}", r.body);
    assert_eq!(r.json()["Resources"][0]["userName"], EMAIL);
}

#[tokio::test]
async fn the_gate_refuses_every_wrong_credential_alike() {
    let app = TestApp::new().await;
    let (_, token) = console_with_token(&app).await;
    let other = app.scim_tenant("Fabrikam").await;

    let unknown = format!("bbz_scim_{}", "0".repeat(64));
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("missing", None, "/scim/v2/contoso-pharma/Users".into()),
        (
            "unknown",
            Some(unknown),
            "/scim/v2/contoso-pharma/Users".into(),
        ),
        (
            "other tenant's",
            Some(other.token.clone()),
            "/scim/v2/contoso-pharma/Users".into(),
        ),
        (
            "unknown slug",
            Some(token.clone()),
            "/scim/v2/nope/Users".into(),
        ),
    ];
    let mut bodies = Vec::new();
    for (what, tok, uri) in cases {
        let r = app.scim_raw("GET", &uri, tok.as_deref(), None).await;
        assert_scim_error(&r, StatusCode::UNAUTHORIZED);
        assert!(
            r.header("www-authenticate").unwrap().starts_with("Bearer"),
            "{what}"
        );
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "all 401s say the same"
    );

    for header in [
        format!("Basic {token}"),
        "Bearer".into(),
        "Bearer ".into(),
        token.clone(),
    ] {
        let req = axum::http::Request::get("/scim/v2/contoso-pharma/Users")
            .header("authorization", header.clone())
            .body(axum::body::Body::empty())
            .unwrap();
        assert_scim_error(&app.send(req).await, StatusCode::UNAUTHORIZED);
    }
    // The other tenant's token works on its own endpoint.
    let r = app.scim("GET", &other, "/Users", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn disabled_provisioning_answers_403_saying_why() {
    let app = TestApp::new().await;
    let (cookie, token) = console_with_token(&app).await;
    app.server_fn("set_provisioning", &[("enabled", "false")], Some(&cookie))
        .await;
    let r = scim_get(&app, Some(&token), TEST_CONNECTION).await;
    assert_scim_error(&r, StatusCode::FORBIDDEN);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Automatic user provisioning is disabled for this organisation")
    );
    // A wrong token still gets 401, not a hint that the organisation exists.
    let r = scim_get(&app, Some("bbz_scim_wrong"), TEST_CONNECTION).await;
    assert_scim_error(&r, StatusCode::UNAUTHORIZED);
    app.server_fn("set_provisioning", &[("enabled", "true")], Some(&cookie))
        .await;
    assert_eq!(
        scim_get(&app, Some(&token), TEST_CONNECTION).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_token_for_the_overlap_and_revoke_is_immediate() {
    let app = TestApp::new().await;
    let (cookie, old) = console_with_token(&app).await;
    let r = app
        .server_fn("issue_token", &[], Some(&cookie))
        .await
        .json();
    let new = r["token"].as_str().unwrap().to_string();
    assert_eq!(r["rotated"], true);
    assert_ne!(old, new);

    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    let states: Vec<&str> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["Active", "Retiring"]);
    for tok in [&old, &new] {
        assert_eq!(
            scim_get(&app, Some(tok), TEST_CONNECTION).await.status,
            StatusCode::OK
        );
    }

    // One hour later (the default overlap) the old token is gone, the new one works.
    app.clock.advance_ms(60 * 60 * 1000 + 1);
    assert_scim_error(
        &scim_get(&app, Some(&old), TEST_CONNECTION).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(
        scim_get(&app, Some(&new), TEST_CONNECTION).await.status,
        StatusCode::OK
    );
    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(v["tokens"][1]["state"], "Expired");

    // Revoke ends the new one at once.
    let id = v["tokens"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .server_fn("revoke_token", &[("token_id", &id)], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_scim_error(
        &scim_get(&app, Some(&new), TEST_CONNECTION).await,
        StatusCode::UNAUTHORIZED,
    );
    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(v["tokens"][0]["state"], "Revoked");
    // Another organisation's token id cannot be revoked from here.
    let r = app
        .server_fn(
            "revoke_token",
            &[("token_id", "not-a-token")],
            Some(&cookie),
        )
        .await;
    assert!(r.body.contains("does not exist"), "{}", r.body);
}

#[tokio::test]
async fn the_overlap_is_configurable_up_to_a_day() {
    let app = TestApp::new().await;
    let (cookie, old) = console_with_token(&app).await;
    let r = app
        .server_fn("set_token_overlap", &[("minutes", "1441")], Some(&cookie))
        .await;
    assert!(
        r.body.contains("between 0 minutes and 24 hours"),
        "{}",
        r.body
    );
    let r = app
        .server_fn("set_token_overlap", &[("minutes", "120")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.server_fn("issue_token", &[], Some(&cookie)).await;
    app.clock.advance_ms(119 * 60 * 1000);
    assert_eq!(
        scim_get(&app, Some(&old), TEST_CONNECTION).await.status,
        StatusCode::OK
    );
    app.clock.advance_ms(2 * 60 * 1000);
    assert_eq!(
        scim_get(&app, Some(&old), TEST_CONNECTION).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_never_shown_again() {
    let app = TestApp::new().await;
    let (cookie, token) = console_with_token(&app).await;
    let rows: Vec<(String, String)> = on_db!(&app.db, |p| sqlx::query_as(
        "SELECT token_hash, hint FROM scim_tokens"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, server::auth::sha256_hex(&token));
    assert_eq!(
        rows[0].1,
        format!("bbz_scim_…{}", &token[token.len() - 4..])
    );
    let v = app.server_fn("load_integration", &[], Some(&cookie)).await;
    assert!(
        !v.body.contains(&token[9..]),
        "the page data never carries the secret"
    );
    let page = app
        .get("/setup-admin/integration/microsoft-entra", Some(&cookie))
        .await;
    assert!(!page.body.contains(&token[9..]));
}

#[tokio::test]
async fn last_use_is_recorded_at_most_once_a_minute() {
    let app = TestApp::new().await;
    let (_, token) = console_with_token(&app).await;
    let last_used = || async {
        on_db!(&app.db, |p| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT last_used_at FROM scim_tokens"
        )
        .fetch_one(p)
        .await
        .unwrap())
    };
    assert_eq!(last_used().await, None);
    scim_get(&app, Some(&token), TEST_CONNECTION).await;
    assert_eq!(last_used().await, Some(START_MS));
    app.clock.advance_ms(30_000);
    scim_get(&app, Some(&token), TEST_CONNECTION).await;
    assert_eq!(
        last_used().await,
        Some(START_MS),
        "no write within the minute"
    );
    app.clock.advance_ms(31_000);
    scim_get(&app, Some(&token), TEST_CONNECTION).await;
    assert_eq!(last_used().await, Some(START_MS + 61_000));
}

#[tokio::test]
async fn every_change_is_audited_with_who_and_where() {
    let app = TestApp::new().await;
    let (cookie, _) = console_with_token(&app).await;
    app.server_fn("issue_token", &[], Some(&cookie)).await;
    app.server_fn("set_token_overlap", &[("minutes", "30")], Some(&cookie))
        .await;
    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    let id = v["tokens"][0]["id"].as_str().unwrap().to_string();
    app.server_fn("revoke_token", &[("token_id", &id)], Some(&cookie))
        .await;
    app.server_fn("set_provisioning", &[("enabled", "false")], Some(&cookie))
        .await;
    let v = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    let actions: Vec<&str> = v["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "provisioning_disabled",
            "token_revoked",
            "overlap_changed",
            "token_rotated",
            "token_generated",
            "provisioning_enabled"
        ]
    );
    assert!(
        v["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == EMAIL)
    );
    assert_eq!(
        v["recent"][0]["client_addr"], "unknown",
        "oneshot requests have no peer address"
    );
}

/// Collects every log line written while `f` runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_contains_a_token_or_session() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::new().await;
    let (cookie, token) = console_with_token(&app).await;
    scim_get(&app, Some(&token), TEST_CONNECTION).await;
    scim_get(&app, Some(&format!("{token}x")), TEST_CONNECTION).await;
    app.scim_raw("GET", "/scim/v2/nope/Users", Some(&token), None)
        .await;
    app.server_fn("issue_token", &[], Some(&cookie)).await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(&token[9..]), "a token reached the log");
    assert!(!text.contains(&cookie), "a session id reached the log");
}

fn cli(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("BITABIZ_PUBLIC_URL", "https://bitabiz.example.com")
        .env("BITABIZ_ADMIN_PASSWORD", "a long operator password")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_operator_cli_enables_rotates_and_disables() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    let out = cli(
        &url,
        &[
            "tenant",
            "create",
            "--name",
            "Woodgrove",
            "--admin-email",
            "ops@woodgrove.example",
        ],
    );
    assert!(out.status.success());
    assert!(
        cli(&url, &["provisioning", "enable", "--tenant", "woodgrove"])
            .status
            .success()
    );
    let out = cli(
        &url,
        &["provisioning", "rotate-token", "--tenant", "woodgrove"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0],
        "SCIM_ENDPOINT=https://bitabiz.example.com/scim/v2/woodgrove"
    );
    let token = lines[1]
        .strip_prefix("SCIM_TOKEN=bbz_scim_")
        .expect("token line");
    assert_eq!(token.len(), 64);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(token),
        "the token is printed once, to stdout"
    );
    assert!(
        cli(&url, &["provisioning", "disable", "--tenant", "woodgrove"])
            .status
            .success()
    );
    let out = cli(&url, &["provisioning", "enable", "--tenant", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organisation with the slug 'nope'"));

    let db = server::store::Db::open(&url).await.unwrap();
    let audit: Vec<(String, String)> = on_db!(&db, |p| sqlx::query_as(
        "SELECT actor, action FROM audit_log ORDER BY id"
    )
    .fetch_all(p)
    .await
    .unwrap());
    let actions: Vec<&str> = audit.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "organisation_created",
            "provisioning_enabled",
            "token_generated",
            "provisioning_disabled"
        ]
    );
    assert!(audit.iter().all(|(actor, _)| actor == "cli"));
}
