//! `/Bulk` (RFC 7644 §3.7): each operation runs the same operation as the single request
//! (`resources`, over the directory service), for the organisation the gate already checked
//! once, and gets the same answer. `bulkId:` references to resources created earlier in the
//! same request are replaced by their ids. Each operation gets its own provisioning log entry,
//! linked to the Bulk request's.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::discovery::MAX_BULK_OPERATIONS;
use super::error::{ScimError, ScimResult};
use super::groups::Groups;
use super::resources::{Resource, create_op, delete_op, patch_op, replace_op};
use super::schema::ResourceKind;
use super::users::Users;
use super::wire::{Projection, ScimTenant, read_json, scim_json};
use crate::AppState;
use crate::directory::{LogLink, Preconditions};
use crate::provlog::OperationDone;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

fn field<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Replaces every `bulkId:x` (a whole string, or a path segment) with the id created for x.
fn substitute(v: &Value, ids: &HashMap<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(substitute_str(s, ids)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, ids))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, ids)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn substitute_str(s: &str, ids: &HashMap<String, String>) -> Result<String, String> {
    let Some(at) = s.find("bulkId:") else {
        return Ok(s.to_string());
    };
    let rest = &s[at + "bulkId:".len()..];
    let end = rest.find(['/', '"', ' ']).unwrap_or(rest.len());
    let key = &rest[..end];
    let id = ids.get(key).ok_or_else(|| key.to_string())?;
    Ok(format!(
        "{}{}{}",
        &s[..at],
        id,
        substitute_str(&rest[end..], ids)?
    ))
}

fn error_result(method: &str, bulk_id: Option<&str>, e: ScimError) -> Value {
    let mut body = json!({
        "schemas": [super::error::ERROR_SCHEMA],
        "status": e.status.as_u16().to_string(),
        "detail": e.detail,
    });
    if let Some(t) = e.scim_type {
        body["scimType"] = json!(t.as_str());
    }
    let mut r =
        json!({ "method": method, "status": e.status.as_u16().to_string(), "response": body });
    if let Some(b) = bulk_id {
        r["bulkId"] = json!(b);
    }
    r
}

pub async fn bulk(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    log_tag: Option<Extension<crate::provlog::LogTag>>,
    body: Body,
) -> ScimResult<Response> {
    let body = read_json(body).await?;
    let obj = body.as_object().cloned().unwrap_or_default();
    let schemas_ok = field(&obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
            })
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "A bulk request must list the schema {BULK_REQUEST_SCHEMA}."
        )));
    }
    let ops = field(&obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("A bulk request needs an Operations list."))?;
    if ops.len() > MAX_BULK_OPERATIONS {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("A bulk request may carry at most {MAX_BULK_OPERATIONS} operations."),
        ));
    }
    let fail_on_errors = field(&obj, "failOnErrors")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0);

    // Each operation's provisioning log entry links to this request's.
    let log_tag = log_tag.map(|Extension(tag)| tag);
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    let mut errors = 0u64;
    for op in ops {
        let Some(op) = op.as_object() else {
            results.push(error_result(
                "",
                None,
                ScimError::invalid_syntax("Each operation must be an object."),
            ));
            errors += 1;
            continue;
        };
        let method = field(op, "method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let bulk_id = field(op, "bulkId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let outcome = run_one(
            &state,
            &t,
            log_tag.as_ref(),
            op,
            &method,
            bulk_id.as_deref(),
            &created,
        )
        .await;
        let (result, new_id) = match outcome {
            Ok(v) => v,
            Err(e) => (error_result(&method, bulk_id.as_deref(), e), None),
        };
        if let (Some(b), Some(id)) = (&bulk_id, new_id) {
            created.insert(b.clone(), id);
        }
        let failed = result["status"]
            .as_str()
            .and_then(|s| s.parse::<u16>().ok())
            .is_some_and(|s| s >= 400);
        results.push(result);
        if failed {
            errors += 1;
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break;
            }
        }
    }
    Ok(scim_json(
        StatusCode::OK,
        &json!({ "schemas": [BULK_RESPONSE_SCHEMA], "Operations": results }),
    ))
}

/// What an operation's path names: a collection (`/Users`) or one resource (`/Users/{id}`).
fn target(path: &str) -> Option<(ResourceKind, Option<&str>)> {
    let path = path.strip_suffix('/').unwrap_or(path);
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find_map(|kind| {
            let rest = path.strip_prefix(kind.endpoint())?;
            if rest.is_empty() {
                return Some((kind, None));
            }
            let id = rest.strip_prefix('/')?;
            (!id.is_empty() && !id.contains(['/', '?', '#'])).then_some((kind, Some(id)))
        })
}

fn header_text(headers: &header::HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Runs one operation through the directory service, as the single request would run.
async fn dispatch<R: Resource>(
    state: &AppState,
    t: &ScimTenant,
    method: &str,
    id: Option<&str>,
    pre: &Preconditions,
    link: &LogLink,
    data: Value,
) -> ScimResult<Response> {
    let proj = Projection::default();
    let object = |data: Value| {
        if data.is_object() {
            Ok(data)
        } else {
            Err(ScimError::invalid_syntax(
                "The operation's data must be a JSON object.",
            ))
        }
    };
    match (method, id) {
        ("POST", None) => create_op::<R>(state, t, &proj, object(data)?).await,
        ("PUT", Some(id)) => replace_op::<R>(state, t, id, link, &proj, pre, object(data)?).await,
        ("PATCH", Some(id)) => patch_op::<R>(state, t, id, link, &proj, pre, object(data)?).await,
        ("DELETE", Some(id)) => delete_op::<R>(state, t, id, link, pre).await,
        _ => Err(ScimError::method_not_allowed()),
    }
}

async fn run_one(
    state: &AppState,
    t: &ScimTenant,
    log_tag: Option<&crate::provlog::LogTag>,
    op: &Map<String, Value>,
    method: &str,
    bulk_id: Option<&str>,
    created: &HashMap<String, String>,
) -> ScimResult<(Value, Option<String>)> {
    if !matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(ScimError::invalid_syntax(
            "method must be POST, PUT, PATCH or DELETE.",
        ));
    }
    if method == "POST" && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(
            "A POST operation needs a bulkId.",
        ));
    }
    let unresolved = |k: String| {
        ScimError::new(
            StatusCode::CONFLICT,
            Some(super::error::ScimType::InvalidValue),
            format!("bulkId:{k} does not refer to a resource created earlier in this request."),
        )
    };
    let path = field(op, "path").and_then(Value::as_str).unwrap_or("");
    let path = substitute_str(path, created).map_err(unresolved)?;
    let Some((kind, id)) = target(&path) else {
        return Err(ScimError::invalid_value(format!(
            "Bulk path '{path}' must be /Users, /Users/{{id}}, /Groups or /Groups/{{id}}."
        )));
    };
    let data = match field(op, "data") {
        Some(d) => substitute(d, created).map_err(unresolved)?,
        None => Value::Null,
    };
    let pre = Preconditions {
        if_match: field(op, "version")
            .and_then(Value::as_str)
            .map(str::to_string),
        if_none_match: None,
    };
    let log = log_tag.map(|_| state.provlog.start_operation());
    let link = log
        .as_ref()
        .map(|start| start.link().clone())
        .unwrap_or_default();
    let request = log_tag
        .filter(|_| !data.is_null())
        .map(|_| Bytes::from(data.to_string()));
    let answer = match kind {
        ResourceKind::User => dispatch::<Users>(state, t, method, id, &pre, &link, data).await,
        ResourceKind::Group => dispatch::<Groups>(state, t, method, id, &pre, &link, data).await,
    };
    let (parts, body) = answer
        .unwrap_or_else(IntoResponse::into_response)
        .into_parts();
    let status = parts.status;
    let (location, version) = (
        header_text(&parts.headers, header::LOCATION),
        header_text(&parts.headers, header::ETAG),
    );
    // The operations' answers are built in memory; reading one cannot fail or wait.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| ScimError::internal())?;
    if let (Some(tag), Some(start)) = (log_tag, log) {
        state.provlog.record_operation(
            start,
            OperationDone {
                parent: tag,
                slug: &t.slug,
                method,
                path: &path,
                status: status.as_u16(),
                request,
                response: bytes.clone(),
            },
        );
    }
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut r = json!({ "method": method, "status": status.as_u16().to_string() });
    if let Some(b) = bulk_id {
        r["bulkId"] = json!(b);
    }
    let location = location.or_else(|| answer["meta"]["location"].as_str().map(str::to_string));
    if let Some(l) = location {
        r["location"] = json!(l);
    }
    if let Some(v) = version {
        r["version"] = json!(v);
    }
    if status.is_client_error() || status.is_server_error() {
        r["response"] = answer;
        return Ok((r, None));
    }
    let new_id = (method == "POST")
        .then(|| answer["id"].as_str().map(str::to_string))
        .flatten();
    Ok((r, new_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_ids_are_substituted_everywhere() {
        let ids = HashMap::from([("u1".to_string(), "abc".to_string())]);
        assert_eq!(
            substitute_str("/Users/bulkId:u1", &ids).unwrap(),
            "/Users/abc"
        );
        let v = substitute(&json!({"members": [{"value": "bulkId:u1"}]}), &ids).unwrap();
        assert_eq!(v["members"][0]["value"], "abc");
        assert_eq!(substitute_str("bulkId:nope", &ids).unwrap_err(), "nope");
        assert_eq!(substitute_str("plain", &ids).unwrap(), "plain");
    }

    #[test]
    fn operation_paths_name_a_collection_or_one_resource() {
        assert_eq!(target("/Users"), Some((ResourceKind::User, None)));
        assert_eq!(target("/Groups/"), Some((ResourceKind::Group, None)));
        assert_eq!(
            target("/Users/abc"),
            Some((ResourceKind::User, Some("abc")))
        );
        assert_eq!(
            target("/Groups/g1/"),
            Some((ResourceKind::Group, Some("g1")))
        );
        for bad in [
            "",
            "/",
            "/Users/a/b",
            "/Usersx",
            "/users",
            "/Schemas",
            "/Users//",
            "/Users/a?x=1",
        ] {
            assert_eq!(target(bad), None, "{bad}");
        }
    }
}
