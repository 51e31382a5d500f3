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

/// Puts the peer's address in the request's extensions for audit and throttling.
pub async fn client_addr(mut req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    req.extensions_mut().insert(ClientAddr(addr));
    next.run(req).await
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

/// True when `Origin` (or, without it, `Referer`) names the public URL's origin or this
/// request's own Host under the public URL's scheme.
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
    if claimed == public {
        return true;
    }
    let scheme = public.split("://").next().unwrap_or("http");
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| claimed == format!("{scheme}://{}", host.to_ascii_lowercase()))
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
    fn same_origin_accepts_public_url_and_own_host_only() {
        let public = "http://127.0.0.1:3000";
        assert!(same_origin(
            &headers(&[(header::ORIGIN, "http://127.0.0.1:3000")]),
            public
        ));
        assert!(same_origin(
            &headers(&[(header::REFERER, "http://127.0.0.1:3000/sign-in")]),
            public
        ));
        assert!(same_origin(
            &headers(&[
                (header::ORIGIN, "http://localhost:3000"),
                (header::HOST, "localhost:3000")
            ]),
            public
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
