//! BitaBIZ backend: the axum router that serves the console (Leptos, server-rendered and
//! hydrated) and, in later modules, the SCIM endpoint.

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod directory;
pub mod domain;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod organisations;
pub mod process;
pub mod provisioning;
pub mod provlog;
pub mod scim;
pub mod serve;
pub mod store;
pub mod web;

/// Every program built on this crate (the `bitabiz` binary, the bench, the tests) allocates
/// with mimalloc. A SCIM request allocates and frees hundreds of small blocks, many of them
/// freed on another thread than the one that made them (the database connections' threads,
/// the log writer); glibc's malloc took a sixth of the request threads' CPU on Entra's lookup.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use app::backend::ConsoleBackend;
use axum::Router;
use axum::middleware;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::console::Console;
use crate::metrics::Metrics;
use crate::net::IpRange;
use crate::store::Db;

/// Deployment settings the request handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// External base URL without a trailing slash.
    pub public_url: String,
    /// True when the server listens beyond loopback: the first-run page then asks for the
    /// one-time code printed at start.
    pub setup_code_required: bool,
    /// Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpRange>,
    /// Client addresses that may read `/metrics` without the metrics token.
    pub metrics_allow: Vec<IpRange>,
    /// SHA-256 of the token that also opens `/metrics` (never the token itself).
    pub metrics_token_hash: Option<String>,
    /// Longest time a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Password hashes run at once, and how long a sign-in waits for a free slot.
    pub hash_slots: usize,
    pub hash_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:3000".into(),
            setup_code_required: false,
            trusted_proxies: Vec::new(),
            metrics_allow: IpRange::loopback(),
            metrics_token_hash: None,
            request_timeout: Duration::from_secs(50),
            hash_slots: auth::password::DEFAULT_CONCURRENT_HASHES,
            hash_wait: auth::password::DEFAULT_HASH_WAIT,
        }
    }
}

/// The server's shared state: one allocation, so the many clones a request makes (each
/// middleware layer and extractor clones its state, and routing clones each layer stack) cost
/// one reference count each instead of one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Clone)]
pub struct Shared {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// Shared: the state is cloned for every layer of every request.
    pub leptos: Arc<LeptosOptions>,
    pub hasher: Arc<PasswordHasher>,
    pub metrics: Arc<Metrics>,
    /// The provisioning log's queue (SCIM requests are recorded off the request path).
    pub provlog: provlog::ProvLog,
    /// Recent answers of the SCIM token gate (see `store::gate_cache`).
    pub gate_cache: Arc<store::gate_cache::GateCache>,
    /// The directory service over the same database and clock; on SQLite it holds the group
    /// commit for SCIM's writes (`store::batch`).
    pub directory: directory::Directory,
}

impl AppState {
    pub fn new(db: Db, clock: Arc<dyn Clock>, settings: Settings, leptos: LeptosOptions) -> Self {
        let hasher = Arc::new(PasswordHasher::new(settings.hash_slots, settings.hash_wait));
        // Starts the log's writer task: call from within the runtime.
        let (db_for_log, clock_for_log) = (db.clone(), clock.clone());
        let writes = match &db {
            Db::Sqlite(p) => Some(store::batch::Batcher::start(p.pool().clone())),
            Db::Postgres(_) => None,
        };
        let directory = directory::Directory {
            db: db.clone(),
            writes,
            clock: clock.clone(),
        };
        AppState(Arc::new(Shared {
            db,
            clock,
            settings: Arc::new(settings),
            leptos: Arc::new(leptos),
            hasher,
            metrics: Arc::new(Metrics::default()),
            provlog: provlog::ProvLog::start(db_for_log, clock_for_log),
            gate_cache: Arc::default(),
            directory,
        }))
    }

    /// The directory service (users and groups under the connector's rules).
    pub fn directory(&self) -> &directory::Directory {
        &self.directory
    }

    /// The same state with another provisioning log (switched off, or with other options).
    pub fn with_provlog(self, provlog: provlog::ProvLog) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.provlog = provlog;
        AppState(Arc::new(shared))
    }
}

/// Leptos options for a site whose bundle is `<site_root>/pkg/bitabiz{.js,_bg.wasm}`.
pub fn leptos_options(site_root: &str) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("bitabiz")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .build()
}

/// The console's page routes, walked out of the app once per process.
///
/// Walking them suppresses resource loading process-wide while it runs (Leptos' route-list
/// generation sets a global flag), and a resource first polled inside that window never
/// resolves: a page rendered while another router was being built hung forever. Several
/// routers in one process (tests, the multi-instance test, the benchmark) share this one list,
/// so the walk happens before any page can render.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// The whole application; tests drive it with `oneshot` without binding a port.
pub fn router(state: AppState) -> Router {
    let console = Arc::new(Console::new(state.clone()));
    let backend: Arc<dyn ConsoleBackend> = console.clone();
    let options = (*state.leptos).clone();
    let routes = page_routes();
    let pages: HashSet<String> = routes.iter().map(|r| r.path().to_string()).collect();

    let provide = {
        let backend = backend.clone();
        move || {
            provide_context(backend.clone());
            web::page_csp();
        }
    };
    let ui = Router::new()
        .leptos_routes_with_context(&options, routes, provide.clone(), {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            provide,
            app::shell,
        ))
        .with_state(options);

    let guard = web::PageGuard {
        state: state.clone(),
        console,
        pages: Arc::new(pages),
    };
    Router::new()
        .route("/healthz", get(web::healthz))
        .route("/metrics", get(web::metrics))
        .route("/style.css", get(web::stylesheet))
        .with_state(state.clone())
        .merge(scim::routes::router(state.clone()))
        // OAuth 2.0 token endpoint beside the SCIM routes, outside the SCIM gate.
        .merge(oauth::http::router(state.clone()))
        .merge(ui)
        .layer(middleware::from_fn_with_state(guard, web::guard_pages))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::refuse_cross_site,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::limit_request_time,
        ))
        .layer(middleware::from_fn(web::security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), web::observe))
        .layer(middleware::from_fn_with_state(state, web::client_addr))
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                http::header::X_CONTENT_TYPE_OPTIONS,
                http::HeaderValue::from_static("nosniff"),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                http::header::X_FRAME_OPTIONS,
                http::HeaderValue::from_static("DENY"),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                http::header::REFERRER_POLICY,
                http::HeaderValue::from_static("same-origin"),
            ),
        )
}
