//! HTTP plumbing shared by the console and SCIM: client address, cross-site request refusal,
//! page access rules, health and the stylesheet.

use app::backend::ClientAddr;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::AppState;
use crate::console::Console;
use crate::store::tenants;

/// The request's id: taken from a trusted proxy's `X-Request-Id` when it looks sane, otherwise
/// made here; echoed in the response and written in every log line about the request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// True when a trusted reverse proxy says the client reached it over HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedHttps(pub bool);

const X_REQUEST_ID: &str = "x-request-id";

fn sane_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Finds the client's address (believing `X-Forwarded-For` and `X-Forwarded-Proto` only from
/// trusted proxies) and puts it in the request's extensions for audit, throttling and logs.
/// Behind a trusted proxy that reports HTTPS, session cookies get `Secure` even when the
/// public URL was configured without https.
pub async fn client_addr(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = &state.settings.trusted_proxies;
    let from_proxy = peer.is_some_and(|p| crate::net::any_contains(trusted, p));
    let addr = match peer {
        Some(peer) => {
            let forwarded: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            crate::net::client_ip(peer, &forwarded, trusted).to_string()
        }
        None => "unknown".into(),
    };
    let https = from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| from_proxy && sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(ClientAddr(addr));
    req.extensions_mut().insert(ForwardedHttps(https));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    if https && !state.settings.public_url.starts_with("https://") {
        add_secure_to_cookies(res.headers_mut());
    }
    res
}

fn add_secure_to_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| {
            if c.to_ascii_lowercase().contains("; secure") {
                c.to_string()
            } else {
                format!("{c}; Secure")
            }
        })
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        if let Ok(v) = http::HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// One log line and one latency observation per request. Paths are logged without their query
/// (SCIM filters carry names and emails); no header or body is logged.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let op = crate::metrics::operation(&method, &path);
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    state.metrics.observe_request(op, status, elapsed);
    if op != "health" && op != "metrics" {
        tracing::info!(
            target: "bitabiz::request",
            request_id = %id,
            method = %method,
            path = %path,
            operation = op,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            client = %client,
            "request"
        );
    }
    res
}

/// Bounds how long a request may take (Entra gives up after 60 s and retries): past the
/// configured time the work is dropped (its transaction rolls back) and the client gets 503.
pub async fn limit_request_time(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let scim = req.uri().path().starts_with("/scim/");
    match tokio::time::timeout(state.settings.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            state
                .metrics
                .requests_timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("request cut off by the request timeout");
            let detail = "The request took too long and was stopped. Try again.";
            let mut res = if scim {
                crate::scim::error::ScimError::new(StatusCode::SERVICE_UNAVAILABLE, None, detail)
                    .into_response()
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, detail).into_response()
            };
            res.headers_mut()
                .insert(header::RETRY_AFTER, http::HeaderValue::from_static("5"));
            res
        }
    }
}

/// The policy every response carries; console pages add their per-request script nonce (see
/// [`page_csp`]). `wasm-unsafe-eval` lets the hydration bundle instantiate its WebAssembly.
fn csp(nonce: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Called inside Leptos rendering: sets the page's Content-Security-Policy with the nonce
/// Leptos puts on its hydration script.
pub fn page_csp() {
    use leptos::prelude::use_context;
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) && let Ok(v) = http::HeaderValue::from_str(&csp(Some(&nonce)))
    {
        res.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// A Content-Security-Policy on every response that has none, and `Cache-Control: no-store` on
/// everything but the static bundle: console pages and server-function answers carry
/// organisation data (and once a SCIM token) that no shared or browser cache may keep.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let cacheable = path.starts_with("/pkg/") || path == "/style.css";
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = http::HeaderValue::from_str(&csp(None))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if !cacheable {
        h.insert(
            header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
    }
    res
}

/// Refuses state-changing requests that a browser sent from another site. SCIM requests carry a
/// bearer token, not a cookie, and are exempt.
pub async fn refuse_cross_site(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.uri().path().starts_with("/scim/") {
        return next.run(req).await;
    }
    if same_origin(req.headers(), &state.settings.public_url) {
        next.run(req).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "Cross-site request refused: this action must come from the BitaBIZ console itself.",
        )
            .into_response()
    }
}

fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// True when `Origin` (or, without it, `Referer`) names the configured public URL's origin.
/// The `Host` header is never consulted: under DNS rebinding an attacker's page reaches this
/// server with its own name in both `Origin` and `Host`.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(origin_of);
    let Some(claimed) = claimed else { return false };
    let Some(public) = origin_of(public_url) else {
        return false;
    };
    claimed == public || loopback_alias(&public).is_some_and(|alias| claimed == alias)
}

/// On a loopback public URL, the other usual name for the same socket (`localhost` for
/// `127.0.0.1` and back): both can only be this machine, unlike a name in `Host`.
fn loopback_alias(origin: &str) -> Option<String> {
    let (scheme, host) = origin.split_once("://")?;
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    let other = match name {
        "127.0.0.1" | "[::1]" => "localhost",
        "localhost" => "127.0.0.1",
        _ => return None,
    };
    Some(match port {
        Some(p) => format!("{scheme}://{other}:{p}"),
        None => format!("{scheme}://{other}"),
    })
}

/// Who may see which console page, decided before rendering: the first-run page only while
/// nothing is set up, the sign-in page only when signed out, everything else only when signed in.
#[derive(Clone)]
pub struct PageGuard {
    pub state: AppState,
    pub console: Arc<Console>,
    pub pages: Arc<HashSet<String>>,
}

pub async fn guard_pages(State(g): State<PageGuard>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !is_page(&g.pages, req.uri().path()) {
        return next.run(req).await;
    }
    let installed = match tenants::install_completed(&g.state.db).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "page guard: database unavailable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering. Try again shortly.",
            )
                .into_response();
        }
    };
    let path = req.uri().path();
    if path == "/setup" {
        return if installed {
            Redirect::to("/sign-in").into_response()
        } else {
            next.run(req).await
        };
    }
    if !installed {
        return Redirect::to("/setup").into_response();
    }
    let signed_in = match app::api::session_from_headers(req.headers()) {
        Some(secret) => matches!(g.console.authenticate(&secret).await, Ok(Some(_))),
        None => false,
    };
    match (path == "/sign-in", signed_in) {
        (true, true) => Redirect::to("/").into_response(),
        (false, false) => Redirect::to("/sign-in").into_response(),
        _ => next.run(req).await,
    }
}

/// True when `path` is one of the console's routes; `:id` / `{id}` segments match any one
/// segment (a user's or a log entry's page needs the same sign-in as the rest).
pub fn is_page(pages: &HashSet<String>, path: &str) -> bool {
    if pages.contains(path) {
        return true;
    }
    let segs: Vec<&str> = path.split('/').collect();
    pages.iter().any(|p| {
        let pat: Vec<&str> = p.split('/').collect();
        pat.len() == segs.len()
            && pat.iter().zip(&segs).all(|(a, b)| {
                a == b || ((a.starts_with(':') || a.starts_with('{')) && !b.is_empty())
            })
    })
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// Prometheus text metrics, for configured client addresses or with the metrics token.
pub async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    let client: Option<std::net::IpAddr> = req
        .extensions()
        .get::<ClientAddr>()
        .and_then(|c| c.0.parse().ok());
    let by_addr =
        client.is_some_and(|ip| crate::net::any_contains(&state.settings.metrics_allow, ip));
    let by_token = state
        .settings
        .metrics_token_hash
        .as_deref()
        .is_some_and(|want| {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| {
                    crate::auth::constant_time_eq(&crate::auth::sha256_hex(t.trim()), want)
                })
        });
    if !(by_addr || by_token) {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let (pool_size, pool_idle, pool_max) = state.db.pool_usage();
    let text = state.metrics.render(&crate::metrics::Gauges {
        db_kind: state.db.kind(),
        db_pool_size: pool_size,
        db_pool_idle: pool_idle,
        db_pool_max: pool_max,
        hash_slots_in_use: state.hasher.in_use(),
        hash_waiting: state.hasher.waiting(),
        hash_slots: state.settings.hash_slots.max(1),
        hashes_computed: state.hasher.computed(),
        hashes_refused: state.hasher.refused(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

const STYLESHEET: &str = include_str!("../../style/main.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn dynamic_routes_are_pages() {
        let pages: HashSet<String> = ["/", "/users", "/users/{id}", "/x/:id/y"]
            .into_iter()
            .map(String::from)
            .collect();
        assert!(is_page(&pages, "/users"));
        assert!(is_page(&pages, "/users/abc"));
        assert!(is_page(&pages, "/x/1/y"));
        assert!(!is_page(&pages, "/users/"));
        assert!(!is_page(&pages, "/users/a/b"));
        assert!(!is_page(&pages, "/pkg/bitabiz.js"));
    }

    #[test]
    fn same_origin_accepts_the_public_url_only() {
        let public = "http://127.0.0.1:3000";
        assert!(same_origin(
            &headers(&[(header::ORIGIN, "http://127.0.0.1:3000")]),
            public
        ));
        assert!(same_origin(
            &headers(&[(header::REFERER, "http://127.0.0.1:3000/sign-in")]),
            public
        ));
        // DNS rebinding: the attacker's name in both Origin and Host.
        assert!(!same_origin(
            &headers(&[
                (header::ORIGIN, "http://evil.test"),
                (header::HOST, "evil.test")
            ]),
            public
        ));
        // The loopback alias of a loopback public URL is the same machine.
        assert!(same_origin(
            &headers(&[(header::ORIGIN, "http://localhost:3000")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[(header::ORIGIN, "http://localhost:3001")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[
                (header::ORIGIN, "http://bitabiz.evil.test"),
                (header::HOST, "bitabiz.evil.test")
            ]),
            "https://bitabiz.example.com"
        ));
        assert!(!same_origin(
            &headers(&[(header::ORIGIN, "http://evil.example")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[(header::ORIGIN, "https://127.0.0.1:3000")]),
            public
        ));
        assert!(!same_origin(&headers(&[]), public));
        assert!(!same_origin(&headers(&[(header::ORIGIN, "null")]), public));
    }
}
