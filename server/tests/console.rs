//! The console's first run, sign-in, sessions and request protection, through the real router
//! on a real database (SQLite; PostgreSQL too when TEST_DATABASE_URL is set).

mod common;

use axum::http::StatusCode;
use common::*;
use server::Settings;
use server::console::{SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, THROTTLE_WINDOW_MS};
use server::on_db;

#[tokio::test]
async fn health_answers_when_the_database_does() {
    let app = TestApp::new().await;
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "ok");
}

#[tokio::test]
async fn a_fresh_install_sends_every_page_to_setup() {
    let app = TestApp::new().await;
    for path in ["/", "/sign-in"] {
        let r = app.get(path, None).await;
        assert!(r.status.is_redirection(), "{path}: {}", r.status);
        assert_eq!(r.location(), Some("/setup"), "{path}");
    }
    let r = app.get("/setup", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Create organisation"));
    let info = app.server_fn("load_setup_info", &[], None).await.json();
    assert_eq!(info["needs_setup"], true);
    assert_eq!(info["needs_code"], false);
}

#[tokio::test]
async fn setup_creates_the_organisation_and_signs_the_admin_in() {
    let app = TestApp::new().await;
    let r = app
        .server_fn("create_organisation", &setup_form(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cookie_header = r.header("set-cookie").unwrap().to_string();
    assert!(cookie_header.contains("HttpOnly"), "{cookie_header}");
    assert!(cookie_header.contains("SameSite=Lax"), "{cookie_header}");
    assert!(
        !cookie_header.contains("Secure"),
        "plain-http public URL: {cookie_header}"
    );
    let cookie = r.session_cookie().unwrap();
    assert_eq!(cookie.len(), 64, "256-bit session id, hex");

    let home = app.get("/", Some(&cookie)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains(ORG), "home shows the organisation");
    let data = app.server_fn("load_home", &[], Some(&cookie)).await.json();
    assert_eq!(data["tenant_name"], ORG);
    assert_eq!(data["tenant_slug"], "contoso-pharma");
    assert_eq!(data["admins"][0]["email"], EMAIL);
    assert_eq!(data["admins"][0]["is_you"], true);

    // The setup page is closed for good: GET redirects, POST is refused.
    let r = app.get("/setup", None).await;
    assert_eq!(r.location(), Some("/sign-in"));
    let mut form = setup_form();
    form[0] = ("org_name", "Takeover Inc");
    let r = app.server_fn("create_organisation", &form, None).await;
    assert_ne!(r.status, StatusCode::OK);
    assert!(r.body.contains("already set up"), "{}", r.body);
    assert!(r.session_cookie().is_none());
}

#[tokio::test]
async fn setup_explains_what_is_wrong_with_the_form() {
    let app = TestApp::new().await;
    let cases: [(&str, &str, &str); 4] = [
        ("password", "short", "at least 12 characters"),
        ("confirm", "something else entirely", "do not match"),
        ("email", "not-an-email", "valid email"),
        ("org_name", "   ", "Organisation name is required"),
    ];
    for (field, value, message) in cases {
        let mut form = setup_form();
        for f in form.iter_mut() {
            if f.0 == field {
                f.1 = value;
            }
            if field == "password" && f.0 == "confirm" {
                f.1 = value;
            }
        }
        let r = app.server_fn("create_organisation", &form, None).await;
        assert_ne!(r.status, StatusCode::OK, "{field}");
        assert!(r.body.contains(message), "{field}: {}", r.body);
    }
    // Nothing was created by the refused attempts.
    let info = app.server_fn("load_setup_info", &[], None).await.json();
    assert_eq!(info["needs_setup"], true);
}

#[tokio::test]
async fn a_public_install_needs_the_setup_code_from_the_log() {
    let app = TestApp::with_settings(Settings {
        public_url: PUBLIC_URL.into(),
        setup_code_required: true,
        ..Settings::default()
    })
    .await;
    let day = 24 * 3600 * 1000;
    let issued = server::store::tenants::issue_setup_code(
        &app.db,
        &server::auth::sha256_hex("c0ffee"),
        START_MS,
        START_MS + day,
    )
    .await
    .unwrap();
    assert_eq!(issued, server::store::tenants::SetupCodeIssue::Issued);
    let info = app.server_fn("load_setup_info", &[], None).await.json();
    assert_eq!(info["needs_code"], true);
    let mut form = setup_form();
    form.push(("setup_code", "wrong"));
    let r = app.server_fn("create_organisation", &form, None).await;
    assert!(r.body.contains("setup code is not correct"), "{}", r.body);
    form.pop();
    form.push(("setup_code", " c0ffee "));
    let r = app.server_fn("create_organisation", &form, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn sign_in_succeeds_with_the_right_password_only() {
    let app = TestApp::new().await;
    let first = app.setup().await;

    for (email, password) in [
        (EMAIL, "wrong password here"),
        ("nobody@contoso.example", PASSWORD),
    ] {
        let r = app.sign_in(email, password).await;
        assert_ne!(r.status, StatusCode::OK);
        assert!(r.body.contains("Wrong email or password."), "{}", r.body);
        assert!(r.session_cookie().is_none());
    }

    // Email matching ignores case and surrounding spaces.
    let r = app.sign_in(" ADA@Contoso.Example ", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.session_cookie().unwrap();
    assert_ne!(first, second, "every sign-in gets a fresh session id");
    assert_eq!(app.get("/", Some(&second)).await.status, StatusCode::OK);
    // Signed in, the sign-in page sends you home.
    assert_eq!(
        app.get("/sign-in", Some(&second)).await.location(),
        Some("/")
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled_for_fifteen_minutes() {
    let app = TestApp::new().await;
    app.setup().await;
    for _ in 0..5 {
        let r = app.sign_in(EMAIL, "wrong password here").await;
        assert!(r.body.contains("Wrong email or password."));
    }
    // Even the right password is refused while the account is throttled.
    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert!(
        r.body.contains("Too many failed sign-in attempts"),
        "{}",
        r.body
    );
    assert!(r.session_cookie().is_none());

    app.clock.advance_ms(THROTTLE_WINDOW_MS + 1);
    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_their_lifetime() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;

    app.clock.advance_ms(SESSION_IDLE_MS - 60_000);
    assert_eq!(
        app.get("/", Some(&cookie)).await.status,
        StatusCode::OK,
        "still inside the idle window"
    );
    app.clock.advance_ms(SESSION_IDLE_MS + 1);
    assert_eq!(
        app.get("/", Some(&cookie)).await.location(),
        Some("/sign-in"),
        "idle too long"
    );

    let r = app.sign_in(EMAIL, PASSWORD).await;
    let cookie = r.session_cookie().unwrap();
    let hour = 60 * 60 * 1000;
    let mut elapsed = 0;
    while elapsed + hour < SESSION_ABSOLUTE_MS {
        app.clock.advance_ms(hour);
        elapsed += hour;
        assert_eq!(
            app.get("/", Some(&cookie)).await.status,
            StatusCode::OK,
            "active at {elapsed} ms"
        );
    }
    app.clock.advance_ms(SESSION_ABSOLUTE_MS - elapsed + 1);
    assert_eq!(
        app.get("/", Some(&cookie)).await.location(),
        Some("/sign-in"),
        "past the absolute lifetime"
    );
    let r = app.server_fn("load_home", &[], Some(&cookie)).await;
    assert!(r.body.contains("Please sign in again"), "{}", r.body);
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let r = app.server_fn("sign_out", &[], Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    // Replaying the old cookie gets nothing.
    assert_eq!(
        app.get("/", Some(&cookie)).await.location(),
        Some("/sign-in")
    );
    let who = app
        .server_fn("load_session", &[], Some(&cookie))
        .await
        .json();
    assert!(who.is_null());
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let app = TestApp::new().await;
    let form = [("email", EMAIL), ("password", PASSWORD)];
    for origin in [Some("http://evil.example"), None] {
        let r = app.server_fn_from("sign_in", &form, None, origin).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(r.body.contains("Cross-site request refused"));
    }
    let r = app
        .server_fn_from(
            "create_organisation",
            &setup_form(),
            None,
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let info = app.server_fn("load_setup_info", &[], None).await.json();
    assert_eq!(
        info["needs_setup"], true,
        "the refused request changed nothing"
    );
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let (hashes, passwords): (Vec<String>, Vec<String>) = on_db!(&app.db, |p| {
        let h: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions")
            .fetch_all(p)
            .await
            .unwrap();
        let pw: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users")
            .fetch_all(p)
            .await
            .unwrap();
        (h, pw)
    });
    assert_eq!(hashes, vec![server::auth::sha256_hex(&cookie)]);
    assert!(!hashes.contains(&cookie));
    assert!(passwords[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(!passwords[0].contains(PASSWORD));
}

#[tokio::test]
async fn an_email_that_is_admin_in_two_organisations_chooses_one() {
    let app = TestApp::new().await;
    app.setup().await;
    let hash = server::auth::password::hash(PASSWORD.into()).await.unwrap();
    let admin = server::store::tenants::NewAdmin {
        name: "Ada",
        email: EMAIL,
        password_hash: &hash,
        source: "cli",
    };
    let other = server::store::tenants::create_with_admin(
        &app.db,
        server::store::tenants::InstallGate::Operator,
        "Fabrikam",
        "fabrikam",
        admin,
        START_MS,
    )
    .await
    .unwrap();
    server::directory::reindex_pending(&app.db).await.unwrap();

    let r = app.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.session_cookie().is_none());
    let choices = r.json()["ChooseTenant"].as_array().cloned().unwrap();
    assert_eq!(choices.len(), 2);

    let r = app
        .server_fn(
            "sign_in",
            &[
                ("email", EMAIL),
                ("password", PASSWORD),
                ("tenant", &other.slug),
            ],
            None,
        )
        .await;
    let cookie = r
        .session_cookie()
        .expect("signed in to the chosen organisation");
    let who = app
        .server_fn("load_session", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(who["tenant_name"], "Fabrikam");
}

#[tokio::test]
async fn the_cli_creates_organisations_and_prints_their_slug() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    let run = |name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitabiz"))
            .args([
                "tenant",
                "create",
                "--name",
                name,
                "--admin-email",
                "ops@example.com",
            ])
            .env("DATABASE_URL", &url)
            .env("BITABIZ_ADMIN_PASSWORD", "a long operator password")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run("Northwind Traders"), "northwind-traders\n");
    assert_eq!(run("Northwind Traders"), "northwind-traders-2\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args([
            "tenant",
            "create",
            "--name",
            "X",
            "--admin-email",
            "ops@example.com",
        ])
        .env("DATABASE_URL", &url)
        .env("BITABIZ_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
}

/// Building a router walks the app for its page routes, and Leptos suppresses resource loading
/// process-wide during that walk: a page whose resource first polled inside the window never
/// finished. Several routers live in one process (these tests, the multi-instance test, the
/// benchmark), so pages must keep rendering while others are built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_routers_are_built() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let builder = {
        let stop = stop.clone();
        let state = app.state.clone();
        let rt = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let _in_runtime = rt.enter();
            let mut built = 0u32;
            while !stop.load(Ordering::Relaxed) {
                drop(server::router(state.clone()));
                built += 1;
            }
            built
        })
    };
    for round in 0..150 {
        let page = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            app.get("/", Some(&cookie)),
        )
        .await
        .unwrap_or_else(|_| panic!("render {round} never finished while routers were built"));
        assert_eq!(page.status, StatusCode::OK, "render {round}");
        assert!(
            page.body.contains(ORG),
            "render {round} shows the home page"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let built = builder.join().unwrap();
    assert!(built > 0, "no router was built beside the renders");
}
