//! Turning stored rows into SCIM documents and client documents into storable ones, shared by
//! the User and Group handlers.

use serde_json::{Map, Value, json};

use super::error::{ScimError, ScimResult};
use super::filter::{AttrPath, Filter, sort_key};
use super::patch::{PatchOpKind, PatchOperation, apply_patch};
use super::schema::ResourceKind;
use crate::clock::rfc3339;

/// The organisation a SCIM request was authenticated for, put in the request by the gate.
#[derive(Debug, Clone)]
pub struct ScimTenant {
    pub id: String,
    pub slug: String,
    /// `{public-url}/scim/v2/{slug}`, for `meta.location` and `$ref`.
    pub base_url: String,
}

/// A resource version as a weak ETag.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Removes `keys` from `obj`, ignoring case.
pub fn strip_keys(obj: &mut Map<String, Value>, keys: &[&str]) {
    obj.retain(|k, _| !keys.iter().any(|r| k.eq_ignore_ascii_case(r)));
}

/// A client's document (POST/PUT) in canonical form: known attribute names in their schema
/// spelling, string booleans made booleans, extension URNs listed in `schemas`. Read-only
/// attributes (`id`, `meta`, and `groups`/`members`, which are handled separately) are dropped,
/// as RFC 7644 §3.3 says a server ignores them on create.
pub fn normalize(kind: ResourceKind, body: Value, drop: &[&str]) -> ScimResult<Value> {
    let mut obj = match body {
        Value::Object(o) => o,
        _ => {
            return Err(ScimError::invalid_syntax(
                "The request body must be a JSON object.",
            ));
        }
    };
    strip_keys(&mut obj, &["id", "meta", "schemas"]);
    strip_keys(&mut obj, drop);
    obj.retain(|_, v| !v.is_null());
    let mut doc = json!({ "schemas": [kind.core_schema().id] });
    if !obj.is_empty() {
        let op = PatchOperation {
            op: PatchOpKind::Replace,
            path: None,
            value: Some(Value::Object(obj)),
        };
        apply_patch(&mut doc, &[op], kind)?;
    }
    Ok(doc)
}

/// The stored document of a row (`{}` when none), as an object.
pub fn stored_doc(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

pub fn meta(
    kind: ResourceKind,
    base_url: &str,
    id: &str,
    created: i64,
    modified: i64,
    version: i64,
) -> Value {
    json!({
        "resourceType": kind.name(),
        "created": rfc3339(created),
        "lastModified": rfc3339(modified),
        "location": format!("{base_url}{}/{id}", kind.endpoint()),
        "version": etag(version),
    })
}

/// Sorts by `by`; resources without a value go last if ascending and first if descending
/// (RFC 7644 §3.4.2.3).
pub fn sort_docs(kind: ResourceKind, docs: &mut [Value], by: &AttrPath, descending: bool) {
    docs.sort_by(|a, b| {
        let (ka, kb) = (sort_key(a, by, kind), sort_key(b, by, kind));
        // RFC 7644 §3.4.2.3: a resource without the value is ordered last if ascending and
        // first if descending (as if above every value). Ties keep their order.
        let ascending = match (ka, kb) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => x.cmp(&y),
        };
        if descending {
            ascending.reverse()
        } else {
            ascending
        }
    });
}

/// The top-level `and` terms of a filter.
pub fn conjuncts(f: &Filter) -> Vec<&Filter> {
    match f {
        Filter::And(a, b) => {
            let mut v = conjuncts(a);
            v.extend(conjuncts(b));
            v
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_attr_path;
    use serde_json::json;

    fn titles(docs: &[Value]) -> Vec<Value> {
        docs.iter().map(|d| d["title"].clone()).collect()
    }

    /// RFC 7644 §3.4.2.3: without the value, last if ascending and first if descending; those
    /// without it keep their order among themselves.
    #[test]
    fn missing_values_sort_last_ascending_and_first_descending() {
        let docs = vec![
            json!({"id": "1", "title": "b"}),
            json!({"id": "2"}),
            json!({"id": "3", "title": "a"}),
            json!({"id": "4"}),
        ];
        let by = parse_attr_path("title").unwrap();
        let mut up = docs.clone();
        sort_docs(ResourceKind::User, &mut up, &by, false);
        assert_eq!(
            titles(&up),
            [json!("a"), json!("b"), Value::Null, Value::Null]
        );
        assert_eq!(
            (up[2]["id"].clone(), up[3]["id"].clone()),
            (json!("2"), json!("4"))
        );
        let mut down = docs;
        sort_docs(ResourceKind::User, &mut down, &by, true);
        assert_eq!(
            titles(&down),
            [Value::Null, Value::Null, json!("b"), json!("a")]
        );
        assert_eq!(
            (down[0]["id"].clone(), down[1]["id"].clone()),
            (json!("2"), json!("4"))
        );
    }
}
