//! The SCIM endpoint under `/scim/v2/{tenant-slug}`: the routes and the bearer-token gate that
//! stands before them. What the handlers share (bodies, list parameters, ETags) is in `wire`.

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};

use super::error::ScimError;
use super::groups::Groups;
use super::resources::{self, Resource};
use super::users::Users;
use super::wire::ScimTenant;
use super::{bulk, discovery};
use crate::AppState;
use crate::auth::{constant_time_eq, sha256_hex};
use crate::store::gate_cache;

/// `last_used_at` is written at most this often per token.
const TOKEN_TOUCH_MS: i64 = 60_000;
/// Bearer values longer than this are not tokens of ours; refused before hashing.
const MAX_TOKEN_LEN: usize = 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new();
    let api = resource_routes::<Users>(api);
    let api = resource_routes::<Groups>(api);
    let api = both(api, "/.search", post(discovery::root_search));
    let api = both(
        api,
        "/ServiceProviderConfig",
        get(discovery::service_provider_config),
    );
    let api = both(api, "/ResourceTypes", get(discovery::resource_types));
    let api = both(api, "/ResourceTypes/{id}", get(discovery::resource_type));
    let api = both(api, "/Schemas", get(discovery::schemas));
    let api = both(api, "/Schemas/{id}", get(discovery::schema));
    let api = both(api, "/Bulk", post(bulk::bulk));
    let api = both(api, "/Me", any(me));
    // A catch-all already matches a trailing slash; routing it twice panics at startup.
    let api = api
        .route("/Me/{*rest}", any(me))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        // Outside the gate, so rejected requests are logged too.
        .layer(middleware::from_fn_with_state(
            state.provlog.clone(),
            crate::provlog::record,
        ))
        .with_state(state);
    Router::new().nest("/scim/v2/{tenant}", api)
}

/// The collection, its search and its items, each with and without a trailing slash.
fn resource_routes<R: Resource>(api: Router<AppState>) -> Router<AppState> {
    let base = R::KIND.endpoint();
    let api = both(
        api,
        base,
        get(resources::list::<R>).post(resources::create::<R>),
    );
    let api = both(
        api,
        &format!("{base}/.search"),
        post(resources::search::<R>),
    );
    both(
        api,
        &format!("{base}/{{id}}"),
        get(resources::get_one::<R>)
            .put(resources::replace::<R>)
            .patch(resources::patch::<R>)
            .delete(resources::delete::<R>),
    )
}

/// Routes `path` and `path/`: clients differ on trailing slashes.
fn both(r: Router<AppState>, path: &str, m: MethodRouter<AppState>) -> Router<AppState> {
    r.route(path, m.clone()).route(&format!("{path}/"), m)
}

async fn unknown_route() -> ScimError {
    ScimError::not_found("No such SCIM endpoint.")
}

async fn method_not_allowed() -> ScimError {
    ScimError::method_not_allowed()
}

async fn me() -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "/Me is not supported: SCIM clients here act for an organisation, not a user.",
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
        .then_some(token)
}

/// Every SCIM request needs a live bearer token or OAuth access token (`crate::oauth`) of the
/// organisation named in the URL; the organisation must have automatic provisioning enabled.
async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Inside `nest` the request URI has lost its prefix (and with it the slug); the router
    // keeps the URI as the client sent it.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.0.path().to_string());
    let slug = path
        .strip_prefix("/scim/v2/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_string();
    let outcome = |what: &'static str| state.metrics.count(crate::metrics::SCIM_AUTH, what);
    let Some(token) = bearer(req.headers()) else {
        outcome("missing");
        return ScimError::unauthorized().into_response();
    };
    // One lookup by hash whatever is wrong (unknown token, other tenant, unknown slug), so the
    // answer takes the same time and says the same thing.
    let hash = sha256_hex(token);
    let row = match state.gate_cache.get(&hash) {
        Some(kept) => Some(kept),
        None => {
            let generation = gate_cache::generation();
            let read_at = std::time::Instant::now();
            match crate::oauth::gate_lookup(&state.db, token, &hash).await {
                Ok(row) => {
                    if let Some(r) = &row {
                        state.gate_cache.put(&hash, r, generation, read_at);
                    }
                    row
                }
                Err(e) => {
                    outcome("error");
                    return ScimError::from(e).into_response();
                }
            }
        }
    };
    let now = state.clock.now_ms();
    let Some(row) = row.filter(|r| {
        let same_hash = constant_time_eq(&r.token_hash, &hash);
        let same_tenant = constant_time_eq(&r.tenant_slug, &slug);
        let live = r.revoked_at.is_none() && r.expires_at.is_none_or(|t| t > now);
        same_hash & same_tenant & live
    }) else {
        outcome("invalid");
        return ScimError::unauthorized().into_response();
    };
    if !row.provisioning_enabled {
        outcome("disabled");
        return ScimError::forbidden(
            "Automatic user provisioning is disabled for this organisation. An admin can enable it in \
             SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning.",
        )
        .into_response();
    }
    if row.last_used_at.is_none_or(|t| now - t >= TOKEN_TOUCH_MS) {
        match crate::oauth::touch(&state.db, &row, now).await {
            Ok(()) => state.gate_cache.touched(&hash, now),
            Err(e) => tracing::warn!(error = %e, "could not record SCIM token use"),
        }
    }
    outcome("ok");
    let base_url = format!("{}/scim/v2/{}", state.settings.public_url, row.tenant_slug);
    req.extensions_mut().insert(ScimTenant {
        id: row.tenant_id,
        slug: row.tenant_slug,
        base_url,
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_needs_the_scheme_and_a_bounded_token() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer   abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", "a".repeat(2000))).unwrap(),
        );
        assert_eq!(bearer(&h), None);
    }
}
