//! The SCIM endpoint under `/scim/v2/{tenant-slug}`: the bearer-token gate, routing, and what
//! every handler shares (JSON bodies, list parameters, ListResponse, ETags).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

use super::error::{SCIM_CONTENT_TYPE, ScimError, ScimResult};
use super::filter::{AttrPath, Filter, parse_attr_path, parse_filter};
use super::projection::parse_attribute_list;
use super::{bulk, discovery, groups, users};
use crate::AppState;
use crate::auth::{constant_time_eq, sha256_hex};
use crate::store::tokens;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Largest request body accepted (advertised as bulk.maxPayloadSize).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Largest page a list returns (advertised as filter.maxResults).
pub const MAX_RESULTS: i64 = 1000;
pub const DEFAULT_COUNT: i64 = 100;
/// `last_used_at` is written at most this often per token.
const TOKEN_TOUCH_MS: i64 = 60_000;
/// Bearer values longer than this are not tokens of ours; refused before hashing.
const MAX_TOKEN_LEN: usize = 1024;

/// The organisation a SCIM request was authenticated for, put in the request by the gate.
#[derive(Debug, Clone)]
pub struct ScimTenant {
    pub id: String,
    pub slug: String,
    /// `{public-url}/scim/v2/{slug}`, for `meta.location` and `$ref`.
    pub base_url: String,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new();
    let api = both(api, "/Users", get(users::list).post(users::create));
    let api = both(api, "/Users/.search", post(users::search));
    let api = both(
        api,
        "/Users/{id}",
        get(users::get_one)
            .put(users::replace)
            .patch(users::patch)
            .delete(users::delete),
    );
    let api = both(api, "/Groups", get(groups::list).post(groups::create));
    let api = both(api, "/Groups/.search", post(groups::search));
    let api = both(
        api,
        "/Groups/{id}",
        get(groups::get_one)
            .put(groups::replace)
            .patch(groups::patch)
            .delete(groups::delete),
    );
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

/// Every SCIM request needs a live bearer token of the organisation named in the URL; the
/// organisation must have automatic provisioning enabled.
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
    let Some(token) = bearer(req.headers()) else {
        return ScimError::unauthorized().into_response();
    };
    // One lookup by hash whatever is wrong (unknown token, other tenant, unknown slug), so the
    // answer takes the same time and says the same thing.
    let hash = sha256_hex(token);
    let row = match tokens::gate_lookup(&state.db, &hash).await {
        Ok(row) => row,
        Err(e) => return ScimError::from(e).into_response(),
    };
    let now = state.clock.now_ms();
    let Some(row) = row.filter(|r| {
        let same_hash = constant_time_eq(&r.token_hash, &hash);
        let same_tenant = constant_time_eq(&r.tenant_slug, &slug);
        let live = r.revoked_at.is_none() && r.expires_at.is_none_or(|t| t > now);
        same_hash & same_tenant & live
    }) else {
        return ScimError::unauthorized().into_response();
    };
    if !row.provisioning_enabled {
        return ScimError::forbidden(
            "Automatic user provisioning is disabled for this organisation. An admin can enable it in \
             SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning.",
        )
        .into_response();
    }
    if row.last_used_at.is_none_or(|t| now - t >= TOKEN_TOUCH_MS)
        && let Err(e) = tokens::touch(&state.db, &row.token_id, now).await
    {
        tracing::warn!(error = %e, "could not record SCIM token use");
    }
    let base_url = format!("{}/scim/v2/{}", state.settings.public_url, row.tenant_slug);
    req.extensions_mut().insert(ScimTenant {
        id: row.tenant_id,
        slug: row.tenant_slug,
        base_url,
    });
    next.run(req).await
}

/// A successful SCIM answer: JSON with the SCIM content type.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    res
}

/// A single resource with its `ETag` (and `Location` for creations).
pub fn resource_response(status: StatusCode, body: &Value, created: bool) -> Response {
    let mut res = scim_json(status, body);
    if let Some(v) = body["meta"]["version"]
        .as_str()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        res.headers_mut().insert(header::ETAG, v);
    }
    if created
        && let Some(l) = body["meta"]["location"]
            .as_str()
            .and_then(|v| HeaderValue::from_str(v).ok())
    {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res
}

/// Reads a JSON object body, whatever the declared content type (Entra's Test Connection once
/// sent none). Over-size → 413, not JSON → 400 invalidSyntax.
pub async fn read_json(body: Body) -> ScimResult<Value> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await.map_err(|_| {
        ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("The request body is larger than the {MAX_PAYLOAD_BYTES} bytes this server accepts."),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ScimError::invalid_syntax(format!("The request body is not valid JSON: {e}."))
    })?;
    if !value.is_object() {
        return Err(ScimError::invalid_syntax(
            "The request body must be a JSON object.",
        ));
    }
    Ok(value)
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// RFC 7644 §3.14: a stale `If-Match` (or a matching `If-None-Match` on a write) → 412.
pub fn check_preconditions(headers: &HeaderMap, current: &str) -> ScimResult<()> {
    let listed = |name: header::HeaderName| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| {
            v.split(',').map(|t| t.trim()).any(|t| {
                t == "*"
                    || t == current
                    || t.trim_start_matches("W/") == current.trim_start_matches("W/")
            })
        })
    };
    if listed(header::IF_MATCH) == Some(false) {
        return Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            format!("The resource has changed: its version is now {current}."),
        ));
    }
    if listed(header::IF_NONE_MATCH) == Some(true) {
        return Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "The resource already exists at that version.",
        ));
    }
    Ok(())
}

/// True when `If-None-Match` names the current version (a GET then answers 304).
pub fn not_modified(headers: &HeaderMap, current: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == current || t.trim() == "*"))
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub start_index: i64,
    pub count: i64,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

/// Read-side parameters (`attributes`, `excludedAttributes`) of a single-resource request.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    pub fn is_requested(&self) -> bool {
        !self.attributes.is_empty() || !self.excluded.is_empty()
    }
    /// Whether the client asked for `name` to be left out (or asked only for others).
    pub fn omits(&self, name: &str) -> bool {
        let names = |l: &[AttrPath]| {
            l.iter()
                .any(|p| p.attr.eq_ignore_ascii_case(name) && p.urn.is_none())
        };
        if !self.attributes.is_empty() {
            !names(&self.attributes)
        } else {
            names(&self.excluded)
        }
    }
}

fn lower_keys(q: &HashMap<String, String>) -> HashMap<String, String> {
    q.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

pub fn projection_from_query(q: &HashMap<String, String>) -> ScimResult<Projection> {
    let q = lower_keys(q);
    let list = |k: &str| -> ScimResult<Vec<AttrPath>> {
        match q.get(k) {
            Some(v) => parse_attribute_list(v).map_err(|e| ScimError::invalid_value(e.0)),
            None => Ok(Vec::new()),
        }
    };
    Ok(Projection {
        attributes: list("attributes")?,
        excluded: list("excludedattributes")?,
    })
}

fn parse_int(name: &str, v: &str) -> ScimResult<i64> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, got '{v}'.")))
}

/// Query parameters of a list request (unknown ones are ignored).
pub fn list_params_from_query(q: &HashMap<String, String>) -> ScimResult<ListParams> {
    let proj = projection_from_query(q)?;
    let q = lower_keys(q);
    let filter = match q.get("filter").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(f) => Some(parse_filter(f).map_err(|e| ScimError::invalid_filter(e.0))?),
        None => None,
    };
    let start_index = q
        .get("startindex")
        .map(|v| parse_int("startIndex", v))
        .transpose()?;
    let count = q.get("count").map(|v| parse_int("count", v)).transpose()?;
    let sort_by = match q.get("sortby").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_attr_path(s).map_err(|e| ScimError::invalid_value(e.0))?),
        None => None,
    };
    let descending = q
        .get("sortorder")
        .is_some_and(|o| o.eq_ignore_ascii_case("descending"));
    Ok(ListParams {
        filter,
        start_index: start_index.unwrap_or(1).max(1),
        count: count.unwrap_or(DEFAULT_COUNT).clamp(0, MAX_RESULTS),
        sort_by,
        descending,
        attributes: proj.attributes,
        excluded: proj.excluded,
    })
}

/// The same parameters from a POST `.search` body (RFC 7644 §3.4.3).
pub fn list_params_from_search(body: &Value) -> ScimResult<ListParams> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("Expected a SearchRequest object."))?;
    let mut q = HashMap::new();
    for (k, v) in obj {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        q.insert(k.clone(), text);
    }
    list_params_from_query(&q)
}

pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_parameters_are_clamped_and_case_insensitive() {
        let p = list_params_from_query(&q(&[("StartIndex", "0"), ("COUNT", "5000")])).unwrap();
        assert_eq!((p.start_index, p.count), (1, MAX_RESULTS));
        let p = list_params_from_query(&q(&[("count", "-3")])).unwrap();
        assert_eq!(p.count, 0);
        assert!(list_params_from_query(&q(&[("count", "x")])).is_err());
        let e = list_params_from_query(&q(&[("filter", "userName eq")])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidFilter"));
        let p = list_params_from_query(&q(&[
            ("sortBy", "name.familyName"),
            ("sortOrder", "Descending"),
        ]))
        .unwrap();
        assert!(p.descending);
        assert_eq!(p.sort_by.unwrap().sub.as_deref(), Some("familyName"));
    }

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

    #[test]
    fn preconditions_compare_versions() {
        let mut h = HeaderMap::new();
        assert!(check_preconditions(&h, "W/\"3\"").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"2\""));
        assert_eq!(
            check_preconditions(&h, "W/\"3\"").unwrap_err().status,
            StatusCode::PRECONDITION_FAILED
        );
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"3\""));
        assert!(check_preconditions(&h, "W/\"3\"").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(check_preconditions(&h, "W/\"3\"").is_ok());
    }
}
