//! What every SCIM handler shares on the wire: JSON bodies and answers, list parameters and
//! the ListResponse, ETags and preconditions.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

use super::error::{SCIM_CONTENT_TYPE, ScimError, ScimResult};
use super::filter::{AttrPath, Filter, parse_attr_path, parse_filter};
use super::projection::parse_attribute_list;
use super::schema::ResourceKind;
use crate::directory::{DirError, Preconditions};
use crate::store::{StoreError, UniqueKey};

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Largest request body accepted (advertised as bulk.maxPayloadSize).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Largest page a list returns (advertised as filter.maxResults).
pub const MAX_RESULTS: i64 = 1000;
pub const DEFAULT_COUNT: i64 = 100;

pub use super::resource::{ScimTenant, etag};

/// A successful SCIM answer: JSON with the SCIM content type.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    scim_text(status, Bytes::from(body.to_string()))
}

/// A SCIM answer already written as JSON.
fn scim_text(status: StatusCode, text: Bytes) -> Response {
    let mut res = (status, text).into_response();
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

/// The preconditions a request sent (`If-Match`, `If-None-Match`).
pub fn preconditions(headers: &HeaderMap) -> Preconditions {
    let value = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Preconditions {
        if_match: value(header::IF_MATCH),
        if_none_match: value(header::IF_NONE_MATCH),
    }
}

fn plural(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "user",
        ResourceKind::Group => "group",
    }
}

/// The one place a directory failure becomes a SCIM answer.
impl From<DirError> for ScimError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::Invalid(e) => e,
            DirError::NotFound { kind, id } => {
                ScimError::not_found(format!("{} {id} not found.", kind.name()))
            }
            DirError::Taken { kind, key, value } => match (kind, key) {
                (_, UniqueKey::ExternalId) => ScimError::uniqueness(format!(
                    "externalId '{value}' is already used by another {} of this organisation.",
                    plural(kind)
                )),
                (ResourceKind::User, UniqueKey::UserName) => ScimError::uniqueness(format!(
                    "userName '{value}' is already in use in this organisation."
                )),
                (ResourceKind::Group, UniqueKey::GroupName) => ScimError::uniqueness(format!(
                    "A group named '{value}' already exists in this organisation."
                )),
                // A key the server assigns (the id): nothing the client sent is in use, and
                // the same request sent again gets a new id.
                (kind, _) => ScimError::new(
                    StatusCode::CONFLICT,
                    None,
                    format!(
                        "The {} collided with another on a key the server assigns; retry.",
                        kind.name().to_lowercase()
                    ),
                ),
            },
            DirError::Precondition(detail) => {
                ScimError::new(StatusCode::PRECONDITION_FAILED, None, detail)
            }
            DirError::Stale { kind } => ScimError::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                format!(
                    "The {} was changed by another request since the version in If-Match.",
                    plural(kind)
                ),
            ),
            DirError::Busy { kind } => ScimError::new(
                StatusCode::CONFLICT,
                None,
                format!(
                    "The {} is being changed by many requests at the same time; retry.",
                    plural(kind)
                ),
            ),
            DirError::LastAdmin => StoreError::LastAdmin.into(),
            DirError::Store(e) => e.into(),
        }
    }
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

/// A Users or Groups list answer; with the log on, it carries what the log stores of it
/// ([`crate::provlog::Listed`]).
pub fn list_answer(total: i64, start_index: i64, resources: Vec<Value>, log_on: bool) -> Response {
    let body = list_response(total, start_index, resources);
    let text = Bytes::from(body.to_string());
    let listed = log_on.then(|| crate::provlog::Listed::of(&body, total, &text));
    let mut res = scim_text(StatusCode::OK, text);
    if let Some(l) = listed {
        res.extensions_mut().insert(l);
    }
    res
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
        assert_eq!(
            e.scim_type,
            Some(super::super::error::ScimType::InvalidFilter)
        );
        let p = list_params_from_query(&q(&[
            ("sortBy", "name.familyName"),
            ("sortOrder", "Descending"),
        ]))
        .unwrap();
        assert!(p.descending);
        assert_eq!(p.sort_by.unwrap().sub.as_deref(), Some("familyName"));
    }

    #[test]
    fn preconditions_are_read_from_headers_and_answer_412() {
        let mut h = HeaderMap::new();
        assert_eq!(preconditions(&h), Preconditions::default());
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"2\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        let p = preconditions(&h);
        assert_eq!(p.if_match.as_deref(), Some("W/\"2\""));
        assert_eq!(p.if_none_match.as_deref(), Some("*"));
        let e = ScimError::from(p.check("W/\"3\"").unwrap_err());
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        assert!(e.detail.contains("W/\"3\""), "{}", e.detail);
    }

    #[test]
    fn directory_failures_become_scim_answers() {
        let taken = |kind, key| {
            ScimError::from(DirError::Taken {
                kind,
                key,
                value: "x@y".into(),
            })
        };
        let e = taken(ResourceKind::User, UniqueKey::UserName);
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.scim_type, Some(super::super::error::ScimType::Uniqueness));
        assert!(e.detail.contains("userName 'x@y'"), "{}", e.detail);
        let e = taken(ResourceKind::Group, UniqueKey::ExternalId);
        assert!(e.detail.contains("externalId 'x@y'") && e.detail.contains("group"));
        let e = taken(ResourceKind::Group, UniqueKey::GroupName);
        assert_eq!(e.scim_type, Some(super::super::error::ScimType::Uniqueness));
        assert!(e.detail.contains("named 'x@y'"), "{}", e.detail);
        // The primary key (SQLite names its column, PostgreSQL its constraint): a retry, not
        // a claim that the client's userName or name is taken.
        for key in ["users.id", "users_pkey"] {
            let e = taken(ResourceKind::User, UniqueKey::Other(key.into()));
            assert_eq!((e.status, e.scim_type), (StatusCode::CONFLICT, None));
            assert!(
                !e.detail.contains("x@y") && e.detail.contains("retry"),
                "{}",
                e.detail
            );
        }
        let e = taken(
            ResourceKind::Group,
            UniqueKey::Other("scim_groups.id".into()),
        );
        assert!(!e.detail.contains("named"), "{}", e.detail);
        let e = ScimError::from(DirError::NotFound {
            kind: ResourceKind::Group,
            id: "g1".into(),
        });
        assert_eq!(
            (e.status, e.detail.as_str()),
            (StatusCode::NOT_FOUND, "Group g1 not found.")
        );
        let stale = ScimError::from(DirError::Stale {
            kind: ResourceKind::User,
        });
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        let busy = ScimError::from(DirError::Busy {
            kind: ResourceKind::Group,
        });
        assert_eq!(busy.status, StatusCode::CONFLICT);
        assert_eq!(
            ScimError::from(DirError::LastAdmin).scim_type,
            Some(super::super::error::ScimType::Mutability)
        );
    }
}
