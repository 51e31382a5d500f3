//! Test harness: the real router on a fresh database per test (SQLite in a temp folder, or a
//! new PostgreSQL database when TEST_DATABASE_URL points at a server), with a manual clock.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use server::clock::{Clock, ManualClock};
use server::store::Db;
use server::{AppState, Settings};
use std::sync::Arc;
use tower::ServiceExt;

pub const PUBLIC_URL: &str = "http://bitabiz.test";
pub const START_MS: i64 = 1_790_000_000_000;

pub struct TestApp {
    pub router: Router,
    pub clock: ManualClock,
    pub db: Db,
    pub state: AppState,
    _dir: Option<tempfile::TempDir>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
    /// The session cookie value set by this reply, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("bbz_session="))
            .map(|c| {
                c["bbz_session=".len()..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|v| !v.is_empty())
    }
}

/// A database with every migration applied: SQLite in a temporary folder, or a new database
/// on the PostgreSQL of `TEST_DATABASE_URL`.
pub async fn fresh_db() -> (Db, Option<tempfile::TempDir>) {
    let (db, dir) = empty_db().await;
    db.migrate().await.unwrap();
    (db, dir)
}

/// Like [`fresh_db`], before any migration (for tests of an upgrade).
pub async fn empty_db() -> (Db, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let admin = Db::open(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            if let Db::Postgres(p) = &admin {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(p)
                    .await
                    .unwrap();
                p.close().await;
            }
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            let db = Db::open(&format!("{base}/{name}")).await.unwrap();
            (db, None)
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/test.db", dir.path().display());
            let db = Db::open(&url).await.unwrap();
            (db, Some(dir))
        }
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_settings(Settings {
            public_url: PUBLIC_URL.into(),
            setup_code_required: false,
            ..Settings::default()
        })
        .await
    }

    pub async fn with_settings(settings: Settings) -> Self {
        let (db, dir) = fresh_db().await;
        let clock = ManualClock::new(START_MS);
        let state = AppState::new(
            db.clone(),
            Arc::new(clock.clone()) as Arc<dyn Clock>,
            settings,
            server::leptos_options("target/site"),
        );
        TestApp {
            router: server::router(state.clone()),
            clock,
            db,
            state,
            _dir: dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::get(path).header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("cookie", format!("bbz_session={c}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// Calls a console server function the way the hydrated page does (form-encoded POST from
    /// the console's own origin).
    pub async fn server_fn(
        &self,
        name: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> Reply {
        self.server_fn_from(name, form, cookie, Some(PUBLIC_URL))
            .await
    }

    pub async fn server_fn_from(
        &self,
        name: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::post(format!("/api/{name}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = cookie {
            req = req.header("cookie", format!("bbz_session={c}"));
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// Runs the first-run setup and returns the admin's session cookie.
    pub async fn setup(&self) -> String {
        let r = self
            .server_fn("create_organisation", &setup_form(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "setup failed: {}", r.body);
        r.session_cookie().expect("setup sets a session cookie")
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.server_fn("sign_in", &[("email", email), ("password", password)], None)
            .await
    }

    /// Deletes one provisioning log entry, as retention pruning would.
    pub async fn forget_log_entry(&self, id: &str) {
        server::on_db!(&self.db.log(), |p| {
            sqlx::query("DELETE FROM provisioning_log WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .unwrap();
        });
    }
}

pub const ORG: &str = "Contoso Pharma";
pub const EMAIL: &str = "ada@contoso.example";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn setup_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("org_name", ORG),
        ("admin_name", "Ada Admin"),
        ("email", EMAIL),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ]
}

/// An organisation with automatic provisioning enabled and a live SCIM token.
pub struct ScimTenant {
    pub id: String,
    pub slug: String,
    pub token: String,
}

impl TestApp {
    /// Creates an organisation named `name` (through the store, as the operator CLI does),
    /// enables provisioning and issues a token.
    pub async fn scim_tenant(&self, name: &str) -> ScimTenant {
        use server::provisioning::{self, Actor};
        use server::store::tenants;
        let admin = tenants::NewAdmin {
            name: "Op",
            email: "op@example.com",
            password_hash: "x",
            source: "cli",
        };
        let slug = server::domain::slugify(name);
        let t = tenants::create_with_admin(
            &self.db,
            tenants::InstallGate::Operator,
            name,
            &slug,
            admin,
            START_MS,
        )
        .await
        .unwrap();
        server::directory::reindex_pending(&self.db).await.unwrap();
        let who = Actor {
            name: "test",
            client_addr: "",
        };
        provisioning::set_enabled(&self.db, &t.id, true, &who, START_MS)
            .await
            .unwrap();
        let token = provisioning::issue_token(&self.db, &t.id, &who, START_MS)
            .await
            .unwrap();
        ScimTenant {
            id: t.id,
            slug: t.slug,
            token: token.secret,
        }
    }

    /// A SCIM request to `/scim/v2/{slug}{path}` with `Authorization: Bearer token`.
    pub async fn scim(
        &self,
        method: &str,
        t: &ScimTenant,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.scim_raw(
            method,
            &format!("/scim/v2/{}{path}", t.slug),
            Some(&t.token),
            body.map(|b| b.to_string()),
        )
        .await
    }

    pub async fn scim_raw(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(tok) = token {
            req = req.header("authorization", format!("Bearer {tok}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/scim+json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }
}
