//! The token endpoint, `POST /scim/v2/{slug}/oauth/token` (RFC 6749 §4.4). It sits beside the
//! SCIM routes, outside the SCIM gate: the client authenticates with its secret, not a bearer.

use app::backend::ClientAddr;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::json;

use super::request::{ErrorCode, OAuthError, parse_token_request};
use crate::AppState;

/// Largest token request accepted; a real one is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/scim/v2/{tenant}/oauth/token",
            post(token).fallback(method_not_allowed),
        )
        .with_state(state)
}

/// §5.1: token answers (and errors) must never be cached.
fn no_store(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            ErrorCode::InvalidRequest | ErrorCode::UnsupportedGrantType => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut res = (status, axum::Json(body)).into_response();
        no_store(&mut res);
        let h = res.headers_mut();
        match self.code {
            ErrorCode::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"BitaBIZ token endpoint\""),
                );
            }
            ErrorCode::TooManyAttempts => {
                let secs = super::THROTTLE_WINDOW_MS / 1000;
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        res
    }
}

async fn method_not_allowed() -> Response {
    let mut res = OAuthError::new(
        ErrorCode::InvalidRequest,
        "The token endpoint only accepts POST.",
    )
    .into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

async fn token(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return OAuthError::new(
            ErrorCode::TooLarge,
            "The token request is larger than this endpoint accepts (8 KiB).",
        )
        .into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // An unreadable Authorization header is still an (unsupported) authentication attempt.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let creds = match parse_token_request(content_type, authorization, &body) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let addr = client.map_or_else(|| "unknown".to_string(), |Extension(c)| c.0);
    let now = state.clock.now_ms();
    match super::exchange(&state.db, &slug, &addr, &creds, now).await {
        Ok(grant) => {
            let body = json!({
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
            });
            let mut res = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}
