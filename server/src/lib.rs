//! BitaBIZ backend: the axum router that serves the console (Leptos, server-rendered and
//! hydrated) and, in later modules, the SCIM endpoint.

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod provisioning;
pub mod provlog;
pub mod scim;
pub mod store;
pub mod web;

use app::backend::ConsoleBackend;
use axum::Router;
use axum::middleware;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::collections::HashSet;
use std::sync::Arc;

use crate::clock::Clock;
use crate::console::Console;
use crate::store::Db;

/// Deployment settings the request handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// External base URL without a trailing slash.
    pub public_url: String,
    /// True when the server listens beyond loopback: the first-run page then asks for the
    /// one-time code printed at start.
    pub setup_code_required: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub leptos: LeptosOptions,
    /// The provisioning log's queue (SCIM requests are recorded off the request path).
    pub provlog: provlog::ProvLog,
}

/// Leptos options for a site whose bundle is `<site_root>/pkg/bitabiz{.js,_bg.wasm}`.
pub fn leptos_options(site_root: &str) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("bitabiz")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .build()
}

/// The whole application; tests drive it with `oneshot` without binding a port.
pub fn router(state: AppState) -> Router {
    let console = Arc::new(Console::new(state.clone()));
    let backend: Arc<dyn ConsoleBackend> = console.clone();
    let options = state.leptos.clone();
    let routes = generate_route_list(app::App);
    let pages: HashSet<String> = routes.iter().map(|r| r.path().to_string()).collect();

    let provide = {
        let backend = backend.clone();
        move || provide_context(backend.clone())
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
        .route("/style.css", get(web::stylesheet))
        .with_state(state.clone())
        .merge(scim::http::router(state.clone()))
        .merge(ui)
        .layer(middleware::from_fn_with_state(guard, web::guard_pages))
        .layer(middleware::from_fn_with_state(
            state,
            web::refuse_cross_site,
        ))
        .layer(middleware::from_fn(web::client_addr))
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
