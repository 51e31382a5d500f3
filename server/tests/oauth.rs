//! OAuth 2.0 client credentials for the SCIM endpoint: the token endpoint (RFC 6749 §4.4, §5),
//! access tokens at the SCIM gate, client-secret lifecycle, credential lifetimes and expiry
//! warnings, and the operator CLI. Through the real router on a real database (SQLite, and
//! PostgreSQL when TEST_DATABASE_URL is set).

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::*;
use serde_json::Value;
use server::clock::Clock;
use server::oauth::{DAY_MS, MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_CLIENT};
use server::on_db;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const SLUG: &str = "contoso-pharma";
const TOKEN_PATH: &str = "/scim/v2/contoso-pharma/oauth/token";
const TEST_CONNECTION: &str =
    "/Users?filter=userName+eq+%22a3c4f1a2-9b1e-4c55-8f63-0e7d1c2b9a10%22";
const FORM: &str = "application/x-www-form-urlencoded";
const MINUTE: i64 = 60 * 1000;
const HOUR: i64 = 60 * MINUTE;

/// An organisation set up through the console, provisioning on, one client secret.
struct Org {
    cookie: String,
    client_id: String,
    secret: String,
}

async fn issue_secret(app: &TestApp, cookie: &str, years: &str) -> Value {
    let r = app
        .server_fn("issue_client_secret", &[("years", years)], Some(cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

async fn oauth_view(app: &TestApp, cookie: &str) -> Value {
    let r = app.server_fn("load_oauth_clients", &[], Some(cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

async fn org(app: &TestApp) -> Org {
    let cookie = app.setup().await;
    let r = app
        .server_fn("set_provisioning", &[("enabled", "true")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let issued = issue_secret(app, &cookie, "2").await;
    let v = oauth_view(app, &cookie).await;
    Org {
        client_id: v["client_id"].as_str().unwrap().to_string(),
        secret: issued["secret"].as_str().unwrap().to_string(),
        cookie,
    }
}

/// A new session after the clock moved past the old one's expiry.
async fn sign_in_again(app: &TestApp) -> String {
    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.session_cookie().unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn body_creds(id: &str, secret: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", id)
        .append_pair("client_secret", secret)
        .finish()
}

/// A raw token request, from `addr` when given.
async fn token_req(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &str,
    addr: Option<&str>,
) -> Reply {
    let mut req = Request::post(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    if let Some(a) = addr {
        let sock: SocketAddr = format!("{a}:50000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(sock));
    }
    app.send(req).await
}

/// Client authentication in the body, as Microsoft Entra ID sends it.
async fn fetch(app: &TestApp, id: &str, secret: &str) -> Reply {
    token_req(
        app,
        TOKEN_PATH,
        Some(FORM),
        None,
        &body_creds(id, secret),
        None,
    )
    .await
}

async fn access_token(app: &TestApp, id: &str, secret: &str) -> String {
    let r = fetch(app, id, secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_string()
}

async fn scim_get(app: &TestApp, token: &str) -> Reply {
    app.scim_raw(
        "GET",
        &format!("/scim/v2/{SLUG}{TEST_CONNECTION}"),
        Some(token),
        None,
    )
    .await
}

/// An RFC 6749 §5.2 error: status, `error` code, no caching, a plain-ASCII description.
fn assert_oauth_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    let body = r.json();
    assert_eq!(body["error"], code, "{}", r.body);
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "{d}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            r.header("www-authenticate").unwrap().starts_with("Basic"),
            "{:?}",
            r.headers
        );
    }
}

fn assert_scim_401(r: &Reply) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn both_client_authentication_forms_issue_access_tokens_the_gate_accepts() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    assert!(o.secret.starts_with("bbz_cs_") && o.secret.len() == 7 + 64);

    for (what, auth, body) in [
        ("body", None, body_creds(&o.client_id, &o.secret)),
        (
            "basic",
            Some(basic(&o.client_id, &o.secret)),
            "grant_type=client_credentials".to_string(),
        ),
        (
            "basic + same client_id in body",
            Some(basic(&o.client_id, &o.secret)),
            format!("grant_type=client_credentials&client_id={}", o.client_id),
        ),
    ] {
        let r = token_req(
            &app,
            TOKEN_PATH,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            auth.as_deref(),
            &body,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(r.header("pragma"), Some("no-cache"), "{what}");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let v = r.json();
        assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);
        let token = v["access_token"].as_str().unwrap();
        assert!(
            token.starts_with("bbz_at_") && token.len() == 7 + 64,
            "{token}"
        );

        let r = scim_get(&app, token).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
        assert_eq!(r.json()["totalResults"], 0);
    }
}

/// What, content type, Authorization, body, expected status and `error`.
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    String,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn malformed_requests_get_the_rfc_6749_errors() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let good = body_creds(&o.client_id, &o.secret);
    let b = basic(&o.client_id, &o.secret);
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<Case> = vec![
        (
            "json",
            Some("application/json"),
            None,
            format!(
                "{{\"grant_type\":\"client_credentials\",\"client_id\":\"{}\"}}",
                o.client_id
            ),
            bad,
            "invalid_request",
        ),
        (
            "no content type",
            None,
            None,
            good.clone(),
            bad,
            "invalid_request",
        ),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            None,
            good.clone(),
            bad,
            "invalid_request",
        ),
        (
            "no grant_type",
            Some(FORM),
            None,
            format!("client_id={}&client_secret={}", o.client_id, o.secret),
            bad,
            "invalid_request",
        ),
        (
            "empty grant_type",
            Some(FORM),
            None,
            format!(
                "grant_type=&client_id={}&client_secret={}",
                o.client_id, o.secret
            ),
            bad,
            "invalid_request",
        ),
        (
            "password grant",
            Some(FORM),
            None,
            good.replace("client_credentials", "password"),
            bad,
            "unsupported_grant_type",
        ),
        (
            "authorization_code grant",
            Some(FORM),
            Some(&b),
            "grant_type=authorization_code&code=x".into(),
            bad,
            "unsupported_grant_type",
        ),
        (
            "both auth methods",
            Some(FORM),
            Some(&b),
            good.clone(),
            bad,
            "invalid_request",
        ),
        (
            "repeated grant_type",
            Some(FORM),
            None,
            format!("{good}&grant_type=client_credentials"),
            bad,
            "invalid_request",
        ),
        (
            "basic and another client_id",
            Some(FORM),
            Some(&b),
            "grant_type=client_credentials&client_id=someone-else".into(),
            bad,
            "invalid_request",
        ),
        (
            "no client auth",
            Some(FORM),
            None,
            "grant_type=client_credentials".into(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "secret without id",
            Some(FORM),
            None,
            format!("grant_type=client_credentials&client_secret={}", o.secret),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "bearer scheme",
            Some(FORM),
            Some("Bearer abc"),
            "grant_type=client_credentials".into(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "broken basic",
            Some(FORM),
            Some("Basic %%%"),
            "grant_type=client_credentials".into(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "binary body",
            Some(FORM),
            None,
            "\u{0}\u{1}%ff%fe=%%".into(),
            bad,
            "invalid_request",
        ),
    ];
    for (what, ct, auth, body, status, code) in cases {
        let r = token_req(&app, TOKEN_PATH, ct, auth, &body, None).await;
        assert_oauth_error(&r, status, code);
        assert!(!r.body.contains(&o.secret), "{what}");
    }

    // Bounded body: 8 KiB.
    let huge = format!("{good}&pad={}", "x".repeat(9 * 1024));
    let r = token_req(&app, TOKEN_PATH, Some(FORM), None, &huge, None).await;
    assert_oauth_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");

    // Only POST.
    let r = app
        .send(Request::get(TOKEN_PATH).body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["error"], "invalid_request");

    // None of these counted as a failed client authentication except the four invalid_client
    // ones, so the right secret still works.
    assert_eq!(
        fetch(&app, &o.client_id, &o.secret).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_client_wrong_secret_and_foreign_credentials_get_one_answer() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let other = app.scim_tenant("Fabrikam").await;
    let who = server::provisioning::Actor {
        name: "test",
        client_addr: "",
    };
    let foreign = server::oauth::issue_client_secret(
        &app.db,
        &other.id,
        server::oauth::SecretYears::default(),
        &who,
        START_MS,
    )
    .await
    .unwrap();
    let wrong = format!("bbz_cs_{}", "0".repeat(64));
    let cases = [
        (
            "unknown client",
            "00000000-0000-0000-0000-000000000000".to_string(),
            o.secret.clone(),
            TOKEN_PATH.to_string(),
        ),
        (
            "wrong secret",
            o.client_id.clone(),
            wrong.clone(),
            TOKEN_PATH.to_string(),
        ),
        (
            "not a secret at all",
            o.client_id.clone(),
            "hunter2".into(),
            TOKEN_PATH.to_string(),
        ),
        (
            "other organisation's secret",
            o.client_id.clone(),
            foreign.secret.clone(),
            TOKEN_PATH.to_string(),
        ),
        (
            "other organisation's client",
            other.id.clone(),
            foreign.secret.clone(),
            TOKEN_PATH.to_string(),
        ),
        (
            "unknown slug",
            o.client_id.clone(),
            o.secret.clone(),
            "/scim/v2/nope/oauth/token".to_string(),
        ),
    ];
    let mut answers = Vec::new();
    for (what, id, secret, path) in cases {
        let r = token_req(
            &app,
            &path,
            Some(FORM),
            None,
            &body_creds(&id, &secret),
            None,
        )
        .await;
        assert_oauth_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        let r2 = token_req(
            &app,
            &path,
            Some(FORM),
            Some(&basic(&id, &secret)),
            "grant_type=client_credentials",
            None,
        )
        .await;
        assert_oauth_error(&r2, StatusCode::UNAUTHORIZED, "invalid_client");
        let challenge = r.header("www-authenticate").map(str::to_string);
        answers.push((what, r.body, challenge, r2.body));
    }
    assert!(
        answers
            .windows(2)
            .all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2 && w[0].3 == w[1].3),
        "every failure says the same: {answers:?}"
    );
    // The other organisation's credentials work on its own endpoint.
    let r = token_req(
        &app,
        &format!("/scim/v2/{}/oauth/token", other.slug),
        Some(FORM),
        None,
        &body_creds(&other.id, &foreign.secret),
        Some("10.9.9.9"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn access_tokens_expire_with_the_organisations_lifetime() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let token = access_token(&app, &o.client_id, &o.secret).await;
    app.clock.advance_ms(HOUR - 1000);
    assert_eq!(scim_get(&app, &token).await.status, StatusCode::OK);
    app.clock.advance_ms(1000);
    let r = scim_get(&app, &token).await;
    assert_scim_401(&r);
    // The same 401 as for a token that never existed.
    let unknown = scim_get(&app, &format!("bbz_at_{}", "0".repeat(64))).await;
    assert_eq!(r.body, unknown.body);

    // The lifetime is the organisation's choice, 60 minutes to 6 hours.
    for bad in ["59", "361", "0", "-60"] {
        let r = app
            .server_fn(
                "set_access_token_lifetime",
                &[("minutes", bad)],
                Some(&o.cookie),
            )
            .await;
        assert!(
            r.body.contains("between 60 minutes and 6 hours"),
            "{bad}: {}",
            r.body
        );
    }
    let r = app
        .server_fn(
            "set_access_token_lifetime",
            &[("minutes", "360")],
            Some(&o.cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        oauth_view(&app, &o.cookie).await["access_token_minutes"],
        360
    );
    let r = fetch(&app, &o.client_id, &o.secret).await;
    assert_eq!(r.json()["expires_in"], 6 * 3600);
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    app.clock.advance_ms(6 * HOUR - 1000);
    assert_eq!(scim_get(&app, &token).await.status, StatusCode::OK);
    app.clock.advance_ms(1000);
    assert_scim_401(&scim_get(&app, &token).await);
}

#[tokio::test]
async fn rotation_keeps_old_secrets_for_the_overlap_then_ends_them_and_their_tokens() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let old_token = access_token(&app, &o.client_id, &o.secret).await;
    let r = app
        .server_fn("set_token_overlap", &[("minutes", "30")], Some(&o.cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rotated = issue_secret(&app, &o.cookie, "2").await;
    assert_eq!(rotated["rotated"], true);
    assert!(rotated["old_secrets_until"].is_string());
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, o.secret);
    let states: Vec<String> = oauth_view(&app, &o.cookie).await["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["Active", "Retiring"]);

    // During the overlap both secrets fetch tokens; the old one's tokens end with the overlap.
    let r = fetch(&app, &o.client_id, &o.secret).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["expires_in"],
        30 * 60,
        "never longer than its secret"
    );
    assert_eq!(scim_get(&app, &old_token).await.status, StatusCode::OK);
    let new_token = access_token(&app, &o.client_id, &new).await;

    app.clock.advance_ms(30 * MINUTE);
    assert_oauth_error(
        &fetch(&app, &o.client_id, &o.secret).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_scim_401(&scim_get(&app, &old_token).await);
    assert_eq!(scim_get(&app, &new_token).await.status, StatusCode::OK);
    assert_eq!(
        oauth_view(&app, &o.cookie).await["secrets"][1]["state"],
        "Expired"
    );
}

#[tokio::test]
async fn revoking_a_secret_ends_its_access_tokens_at_once() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let t1 = access_token(&app, &o.client_id, &o.secret).await;
    let t2 = access_token(&app, &o.client_id, &o.secret).await;
    assert_ne!(t1, t2);
    // A bearer token of the same organisation is unaffected.
    let bearer = app
        .server_fn("issue_token", &[], Some(&o.cookie))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let id = oauth_view(&app, &o.cookie).await["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .server_fn(
            "revoke_client_secret",
            &[("secret_id", &id)],
            Some(&o.cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for t in [&t1, &t2] {
        assert_scim_401(&scim_get(&app, t).await);
    }
    assert_oauth_error(
        &fetch(&app, &o.client_id, &o.secret).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_eq!(scim_get(&app, &bearer).await.status, StatusCode::OK);
    assert_eq!(
        oauth_view(&app, &o.cookie).await["secrets"][0]["state"],
        "Revoked"
    );
    let left: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM oauth_access_tokens"
    )
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(left, 0, "the revoked secret's access tokens are deleted");
    // Unknown ids, and revoking from another organisation, are refused.
    let r = app
        .server_fn(
            "revoke_client_secret",
            &[("secret_id", "nope")],
            Some(&o.cookie),
        )
        .await;
    assert!(r.body.contains("does not exist"), "{}", r.body);
}

#[tokio::test]
async fn an_expired_secret_is_refused() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    app.server_fn("set_provisioning", &[("enabled", "true")], Some(&cookie))
        .await;
    for bad in ["0", "4", "x"] {
        let r = app
            .server_fn("issue_client_secret", &[("years", bad)], Some(&cookie))
            .await;
        assert_ne!(r.status, StatusCode::OK, "{bad}");
    }
    let issued = issue_secret(&app, &cookie, "1").await;
    let secret = issued["secret"].as_str().unwrap().to_string();
    let id = oauth_view(&app, &cookie).await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // One year from START_MS (2026-09-21): the same day in 2027.
    assert_eq!(issued["expires_at"], "2027-09-21 14:13 UTC");
    let left = 365 * DAY_MS;
    app.clock.advance_ms(left - 2 * HOUR);
    let r = fetch(&app, &id, &secret).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["expires_in"], 3600);
    app.clock.advance_ms(90 * MINUTE);
    // Half an hour left on the secret: the token says so, and ends with it.
    let r = fetch(&app, &id, &secret).await;
    assert_eq!(r.json()["expires_in"], 30 * 60);
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(scim_get(&app, &token).await.status, StatusCode::OK);
    app.clock.advance_ms(30 * MINUTE);
    assert_oauth_error(
        &fetch(&app, &id, &secret).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    assert_scim_401(&scim_get(&app, &token).await);
    let cookie = sign_in_again(&app).await;
    assert_eq!(
        oauth_view(&app, &cookie).await["secrets"][0]["state"],
        "Expired"
    );
}

#[tokio::test]
async fn the_gate_treats_access_tokens_and_bearer_tokens_alike() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let bearer = app
        .server_fn("issue_token", &[], Some(&o.cookie))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let access = access_token(&app, &o.client_id, &o.secret).await;
    // Both kinds live at once: an organisation can move from one to the other.
    for t in [&bearer, &access] {
        let r = scim_get(&app, t).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // A provisioned user, created with the access token, read with the bearer token.
    let t = ScimTenant {
        id: String::new(),
        slug: SLUG.into(),
        token: access.clone(),
    };
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "grace@contoso.example",
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": "grace@contoso.example", "type": "work", "primary": true}],
        "active": true
    });
    let r = app.scim("POST", &t, "/Users", Some(user)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .scim_raw(
            "GET",
            &format!("/scim/v2/{SLUG}/Users?filter=userName+eq+%22grace%40contoso.example%22"),
            Some(&bearer),
            None,
        )
        .await;
    assert_eq!(r.json()["totalResults"], 1, "{}", r.body);

    // Another organisation's access token is refused here with the usual 401.
    let other = app.scim_tenant("Fabrikam").await;
    let who = server::provisioning::Actor {
        name: "test",
        client_addr: "",
    };
    let fs = server::oauth::issue_client_secret(
        &app.db,
        &other.id,
        server::oauth::SecretYears::default(),
        &who,
        START_MS,
    )
    .await
    .unwrap();
    let r = token_req(
        &app,
        &format!("/scim/v2/{}/oauth/token", other.slug),
        Some(FORM),
        None,
        &body_creds(&other.id, &fs.secret),
        None,
    )
    .await;
    let foreign = r.json()["access_token"].as_str().unwrap().to_string();
    let refused = scim_get(&app, &foreign).await;
    assert_scim_401(&refused);
    assert_eq!(refused.body, scim_get(&app, "bbz_scim_nope").await.body);

    // Provisioning disabled: 403 for both kinds.
    app.server_fn("set_provisioning", &[("enabled", "false")], Some(&o.cookie))
        .await;
    for t in [&bearer, &access] {
        let r = scim_get(&app, t).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    // The token endpoint still authenticates the client: the SCIM answer says what is wrong.
    assert_eq!(
        fetch(&app, &o.client_id, &o.secret).await.status,
        StatusCode::OK
    );

    // Use is recorded: the access token (for "last request") and the secret (on fetch).
    let (tok_used, secret_used): (Option<i64>, Option<i64>) = on_db!(&app.db, |p| sqlx::query_as(
        "SELECT (SELECT MAX(last_used_at) FROM oauth_access_tokens), \
         (SELECT MAX(last_used_at) FROM oauth_client_secrets WHERE tenant_id <> $1)"
    )
    .bind(&other.id)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(tok_used, Some(START_MS));
    assert_eq!(secret_used, Some(START_MS));
}

#[tokio::test]
async fn failed_attempts_are_throttled_per_client_and_per_address() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let wrong = format!("bbz_cs_{}", "1".repeat(64));
    // Per client: spread over addresses, so only the client's count trips.
    for i in 0..MAX_FAILURES_PER_CLIENT {
        let r = token_req(
            &app,
            TOKEN_PATH,
            Some(FORM),
            None,
            &body_creds(&o.client_id, &wrong),
            Some(&format!("10.0.0.{i}")),
        )
        .await;
        assert_oauth_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let r = token_req(
        &app,
        TOKEN_PATH,
        Some(FORM),
        None,
        &body_creds(&o.client_id, &o.secret),
        Some("10.0.1.1"),
    )
    .await;
    assert_oauth_error(&r, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("900"));
    assert!(!r.body.contains("access_token"));
    // Basic authentication is throttled the same way.
    let r = token_req(
        &app,
        TOKEN_PATH,
        Some(FORM),
        Some(&basic(&o.client_id, &o.secret)),
        "grant_type=client_credentials",
        Some("10.0.1.2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // After the window, the right secret works again.
    app.clock.advance_ms(15 * MINUTE + 1);
    assert_eq!(
        fetch(&app, &o.client_id, &o.secret).await.status,
        StatusCode::OK
    );

    // Per address: many clients from one address.
    for i in 0..MAX_FAILURES_PER_ADDRESS {
        let r = token_req(
            &app,
            TOKEN_PATH,
            Some(FORM),
            None,
            &body_creds(&format!("client-{i}"), &wrong),
            Some("192.0.2.7"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = token_req(
        &app,
        TOKEN_PATH,
        Some(FORM),
        None,
        &body_creds(&o.client_id, &o.secret),
        Some("192.0.2.7"),
    )
    .await;
    assert_oauth_error(&r, StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    // The same client from elsewhere is not affected.
    let r = token_req(
        &app,
        TOKEN_PATH,
        Some(FORM),
        None,
        &body_creds(&o.client_id, &o.secret),
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn parallel_token_requests_all_get_distinct_working_tokens() {
    let app = Arc::new(TestApp::new().await);
    let o = org(&app).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        let (id, secret) = (o.client_id.clone(), o.secret.clone());
        tasks.push(tokio::spawn(async move {
            access_token(&app, &id, &secret).await
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    let mut unique = tokens.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8);
    let mut tasks = Vec::new();
    for t in tokens {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { scim_get(&app, &t).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
}

/// Log lines written on the current thread, once `capture_logs` was called on it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static SINK: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|s| {
            if let Some(c) = &*s.borrow() {
                c.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A scoped subscriber (`set_default`) misses events while other tests of the binary run in
/// parallel without one (the global level filter can drop to OFF), so this binary installs
/// one global subscriber that hands each line to the capture of the thread that wrote it.
/// Requests run on the test's own thread (`#[tokio::test]` is single-threaded).
fn capture_logs() -> Captured {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadSink)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let c = Captured::default();
    SINK.with(|s| *s.borrow_mut() = Some(c.clone()));
    c
}

#[tokio::test]
async fn secrets_and_access_tokens_are_stored_hashed_and_never_logged() {
    let logs = capture_logs();

    let app = TestApp::new().await;
    let o = org(&app).await;
    let token = access_token(&app, &o.client_id, &o.secret).await;
    scim_get(&app, &token).await;
    scim_get(&app, &format!("{token}x")).await;
    fetch(&app, &o.client_id, &format!("{}x", o.secret)).await;
    token_req(
        &app,
        TOKEN_PATH,
        Some(FORM),
        Some(&basic(&o.client_id, &o.secret)),
        &body_creds(&o.client_id, &o.secret),
        None,
    )
    .await;
    let rotated = issue_secret(&app, &o.cookie, "3").await;
    let second = rotated["secret"].as_str().unwrap().to_string();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("client authentication failed"),
        "the failure is logged: {text}"
    );
    for s in [&o.secret, &second, &token] {
        assert!(!text.contains(&s[7..]), "a secret reached the log");
    }

    // Only hashes and hints in the database, in any table a secret could reach.
    let (hash, hint): (String, String) = on_db!(&app.db, |p| sqlx::query_as(
        "SELECT secret_hash, hint FROM oauth_client_secrets ORDER BY created_at, hint LIMIT 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    let first_hash = server::auth::sha256_hex(&o.secret);
    let second_hash = server::auth::sha256_hex(&second);
    assert!(hash == first_hash || hash == second_hash);
    assert!(
        hint.starts_with("bbz_cs_…") && hint.chars().count() == 12,
        "{hint}"
    );
    let token_hash: String = on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT token_hash FROM oauth_access_tokens"
    )
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(token_hash, server::auth::sha256_hex(&token));
    let dump: Vec<String> = on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT id || secret_hash || hint || created_by FROM oauth_client_secrets \
         UNION ALL SELECT id || token_hash || secret_id FROM oauth_access_tokens \
         UNION ALL SELECT actor || action || detail FROM audit_log \
         UNION ALL SELECT throttle_key FROM sign_in_failures"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert!(dump.iter().any(|d| d.contains("client_secret_rotated")));
    for row in &dump {
        for s in [&o.secret, &second, &token] {
            assert!(!row.contains(&s[7..]), "a secret is stored in clear: {row}");
        }
    }
    // And never sent back after the one-time display.
    let v = app
        .server_fn("load_oauth_clients", &[], Some(&o.cookie))
        .await;
    assert!(!v.body.contains(&second[7..]));
    let page = app
        .get("/setup-admin/integration/microsoft-entra", Some(&o.cookie))
        .await;
    assert!(!page.body.contains(&second[7..]));
}

#[tokio::test]
async fn the_page_shows_the_oauth_section_and_audits_every_change() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let v = oauth_view(&app, &o.cookie).await;
    assert_eq!(v["token_endpoint"], format!("{PUBLIC_URL}{TOKEN_PATH}"));
    assert_eq!(v["access_token_minutes"], 60);
    assert_eq!(v["bearer_max_days"], Value::Null, "off by default");
    let s = &v["secrets"][0];
    assert_eq!(s["state"], "Active");
    assert_eq!(s["created_by"], EMAIL);
    assert_eq!(s["last_used_at"], Value::Null);
    assert_eq!(
        s["hint"],
        format!("bbz_cs_…{}", &o.secret[o.secret.len() - 4..])
    );
    fetch(&app, &o.client_id, &o.secret).await;
    let v = oauth_view(&app, &o.cookie).await;
    assert!(v["secrets"][0]["last_used_at"].is_string());

    let page = app
        .get("/setup-admin/integration/microsoft-entra", Some(&o.cookie))
        .await;
    for label in [
        "OAuth 2.0 client credentials",
        "Token endpoint URL",
        "Client identifier",
        "Rotate client secret",
        "Access-token lifetime",
    ] {
        assert!(page.body.contains(label), "page lacks {label}");
    }
    // The "no live credential" warning knows about client secrets.
    let integ = app
        .server_fn("load_integration", &[], Some(&o.cookie))
        .await
        .json();
    assert_eq!(integ["has_live_client_secret"], true);

    app.server_fn(
        "set_access_token_lifetime",
        &[("minutes", "120")],
        Some(&o.cookie),
    )
    .await;
    app.server_fn(
        "set_bearer_max_lifetime",
        &[("days", "90")],
        Some(&o.cookie),
    )
    .await;
    let id = oauth_view(&app, &o.cookie).await["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.server_fn(
        "revoke_client_secret",
        &[("secret_id", &id)],
        Some(&o.cookie),
    )
    .await;
    let v = app
        .server_fn("load_integration", &[], Some(&o.cookie))
        .await
        .json();
    let actions: Vec<&str> = v["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        [
            "client_secret_revoked",
            "bearer_max_lifetime_changed",
            "access_token_lifetime_changed",
            "client_secret_generated"
        ]
    );
    assert_eq!(v["has_live_client_secret"], false);
}

async fn warnings(app: &TestApp, cookie: &str) -> Value {
    app.server_fn("load_credential_warnings", &[], Some(cookie))
        .await
        .json()
}

#[tokio::test]
async fn credentials_warn_from_thirty_days_before_they_expire() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let mut cookie = o.cookie.clone();
    assert_eq!(warnings(&app, &cookie).await, serde_json::json!([]));

    // Bearer tokens never expire unless the organisation sets a maximum lifetime.
    for bad in ["-1", "1100"] {
        let r = app
            .server_fn("set_bearer_max_lifetime", &[("days", bad)], Some(&cookie))
            .await;
        assert!(
            r.body.contains("maximum bearer-token lifetime"),
            "{}",
            r.body
        );
    }
    let r = app
        .server_fn("set_bearer_max_lifetime", &[("days", "30")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bearer = app
        .server_fn("issue_token", &[], Some(&cookie))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let w = warnings(&app, &cookie).await;
    assert_eq!(w.as_array().unwrap().len(), 1, "{w}");
    let text = w[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "Bearer token bbz_scim_…{}",
            &bearer[bearer.len() - 4..]
        )),
        "{text}"
    );
    assert!(
        text.contains("(in 30 days)") && text.contains("Rotate token"),
        "{text}"
    );
    let tokens = app
        .server_fn("load_integration", &[], Some(&cookie))
        .await
        .json();
    assert!(tokens["tokens"][0]["valid_until"].is_string());

    // The client secret (2 years) starts warning 30 days before its expiry.
    app.clock.advance_ms(30 * DAY_MS);
    cookie = sign_in_again(&app).await;
    assert_scim_401(&scim_get(&app, &bearer).await);
    let w = warnings(&app, &cookie).await;
    assert_eq!(w[0]["lapsed"], true, "{w}");
    assert!(w[0]["text"].as_str().unwrap().contains("expired on"), "{w}");
    // Turning the maximum off does not touch tokens already issued, and a new one never expires.
    app.server_fn("set_bearer_max_lifetime", &[("days", "0")], Some(&cookie))
        .await;
    app.server_fn("issue_token", &[], Some(&cookie)).await;
    assert_eq!(
        warnings(&app, &cookie).await,
        serde_json::json!([]),
        "replaced: no warning"
    );

    let secret_end = server::oauth::SecretYears::default().after(START_MS);
    app.clock
        .advance_ms(secret_end - 31 * DAY_MS - app.clock.now_ms());
    cookie = sign_in_again(&app).await;
    assert_eq!(
        warnings(&app, &cookie).await,
        serde_json::json!([]),
        "not yet"
    );
    app.clock.advance_ms(2 * DAY_MS);
    cookie = sign_in_again(&app).await;
    let w = warnings(&app, &cookie).await;
    assert_eq!(w.as_array().unwrap().len(), 1, "{w}");
    let text = w[0]["text"].as_str().unwrap();
    assert!(text.starts_with("Client secret bbz_cs_…"), "{text}");
    assert!(text.contains("Rotate client secret"), "{text}");
    // Home shows it on one line.
    let home = app.get("/", Some(&cookie)).await;
    assert!(
        home.body.contains("Client secret bbz_cs_…"),
        "home lacks the warning"
    );
    // Rotating replaces it: the old secret is retiring, the new one has two years.
    issue_secret(&app, &cookie, "2").await;
    assert_eq!(warnings(&app, &cookie).await, serde_json::json!([]));
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
async fn the_operator_cli_issues_client_credentials_and_reports_status() {
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
        &["provisioning", "oauth-client", "--tenant", "woodgrove"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        "TOKEN_ENDPOINT=https://bitabiz.example.com/scim/v2/woodgrove/oauth/token"
    );
    let client_id = lines[1].strip_prefix("CLIENT_ID=").expect("client id line");
    let secret = lines[2]
        .strip_prefix("CLIENT_SECRET=")
        .expect("secret line");
    assert!(
        secret.starts_with("bbz_cs_") && secret.len() == 71,
        "{secret}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
    let out = cli(
        &url,
        &[
            "provisioning",
            "oauth-client",
            "--tenant",
            "woodgrove",
            "--years",
            "4",
        ],
    );
    assert!(!out.status.success());

    // The printed credentials work against a server on that database.
    let db = server::store::Db::open(&url).await.unwrap();
    let state = server::AppState::new(
        db.clone(),
        Arc::new(server::clock::SystemClock),
        server::Settings {
            public_url: "https://bitabiz.example.com".into(),
            ..server::Settings::default()
        },
        server::leptos_options("target/site"),
    );
    let router = server::router(state);
    let req = Request::post("/scim/v2/woodgrove/oauth/token")
        .header("content-type", FORM)
        .body(Body::from(body_creds(client_id, secret)))
        .unwrap();
    let res = tower::ServiceExt::oneshot(router.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let req = Request::get("/scim/v2/woodgrove/Users")
        .header(
            "authorization",
            format!("Bearer {}", v["access_token"].as_str().unwrap()),
        )
        .body(Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let out = cli(&url, &["provisioning", "status", "--tenant", "woodgrove"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8(out.stdout).unwrap();
    for want in [
        "Automatic user provisioning: enabled",
        "Token endpoint: https://bitabiz.example.com/scim/v2/woodgrove/oauth/token",
        &format!("Client identifier: {client_id}"),
        "Access-token lifetime: 1 hour",
        "Bearer-token maximum lifetime: off",
        &format!(
            "client secret  bbz_cs_…{}  active",
            &secret[secret.len() - 4..]
        ),
    ] {
        assert!(status.contains(want), "status lacks {want}:\n{status}");
    }
    assert!(!status.contains("Last request: never"), "{status}");
    assert!(!status.contains(&secret[7..]));
    let out = cli(&url, &["provisioning", "status", "--tenant", "nope"]);
    assert!(!out.status.success());

    let audit: Vec<(String, String)> = on_db!(&db, |p| sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'client_secret%'"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert_eq!(
        audit,
        [("cli".to_string(), "client_secret_generated".to_string())]
    );
}

#[tokio::test]
async fn the_status_report_lists_live_credentials_last_request_and_warnings() {
    let app = TestApp::new().await;
    let o = org(&app).await;
    let tenant = server::store::tenants::by_slug(&app.db, SLUG)
        .await
        .unwrap()
        .unwrap();
    let status = |now: i64| {
        let (db, tenant) = (app.db.clone(), tenant.clone());
        async move {
            server::oauth::cli::status(&db, &tenant, PUBLIC_URL, now)
                .await
                .unwrap()
                .join("\n")
        }
    };
    let text = status(app.clock.now_ms()).await;
    assert!(text.contains("Last request: never"), "{text}");
    assert!(
        text.contains("Automatic user provisioning: enabled"),
        "{text}"
    );
    let hint = format!("bbz_cs_…{}", &o.secret[o.secret.len() - 4..]);
    assert!(
        text.contains(&format!("client secret  {hint}  active")),
        "{text}"
    );
    assert!(!text.contains("bearer token "), "{text}");

    // A SCIM request with an access token is the last request.
    let token = access_token(&app, &o.client_id, &o.secret).await;
    app.clock.advance_ms(5 * MINUTE);
    assert_eq!(scim_get(&app, &token).await.status, StatusCode::OK);
    let text = status(app.clock.now_ms()).await;
    let at = server::clock::display_time(app.clock.now_ms());
    assert!(text.contains(&format!("Last request: {at}")), "{text}");

    // Twenty days before the secret's end: a warning, and how to replace it from the CLI.
    let end = server::oauth::SecretYears::default().after(START_MS);
    let text = status(end - 20 * DAY_MS).await;
    assert!(
        text.contains(&format!("WARNING: Client secret {hint} expires on")),
        "{text}"
    );
    assert!(text.contains("(in 20 days)"), "{text}");
    assert!(
        text.contains("bitabiz provisioning oauth-client --tenant contoso-pharma"),
        "{text}"
    );
    // After it: no live credential, and the lapse is reported.
    let text = status(end + DAY_MS).await;
    assert!(text.contains("Live credentials: none"), "{text}");
    assert!(
        text.contains(&format!("EXPIRED: Client secret {hint} expired on")),
        "{text}"
    );
}

/// Concurrent secret issues and revocations of one organisation all succeed (on SQLite a
/// transaction that reads before it writes failed with "database is locked" when another
/// writer committed in between).
#[tokio::test]
async fn concurrent_secret_issues_and_revocations_all_succeed() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (db, id) = (app.db.clone(), t.id.clone());
        tasks.push(tokio::spawn(async move {
            let who = server::provisioning::Actor {
                name: "test",
                client_addr: "",
            };
            let issued = server::oauth::issue_client_secret(
                &db,
                &id,
                server::oauth::SecretYears::default(),
                &who,
                START_MS,
            )
            .await?;
            server::oauth::revoke_client_secret(&db, &id, &issued.id, &who, START_MS)
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}
