//! What the SCIM suites share: request bodies as Entra sends them, and assertions on the shape of
//! every SCIM answer (content type, RFC 7644 §3.12 error bodies, ListResponses, no nulls).
#![allow(dead_code)]

use crate::common::{Reply, ScimTenant, TestApp};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// Percent-encodes a query value the way Entra does (`+` for spaces).
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `?filter=...`, encoded.
pub fn filter_q(filter: &str) -> String {
    format!("?filter={}", enc(filter))
}

/// A user as Entra's default mapping creates it (every mandatory attribute present).
pub fn user_json(user_name: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": user_name,
        "active": true,
        "displayName": format!("{given} {family}"),
        "name": { "givenName": given, "familyName": family, "formatted": format!("{given} {family}") },
        "emails": [{ "primary": true, "type": "work", "value": user_name }],
        "externalId": user_name.split('@').next().unwrap_or(user_name),
        "locale": "en-US",
    })
}

pub fn patch_ops(ops: Value) -> Value {
    json!({ "schemas": [PATCH_SCHEMA], "Operations": ops })
}

/// The content type every SCIM answer (success or error) must carry.
pub fn assert_scim_type(r: &Reply) {
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/scim+json"),
        "content-type {ct:?} (status {}, body {})",
        r.status,
        r.body
    );
}

/// A successful SCIM answer: the status, the content type and a JSON body without nulls.
pub fn ok_json(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert_scim_type(r);
    let v = r.json();
    assert_no_nulls(&v);
    v
}

/// An RFC 7644 §3.12 error answer: returns the body for further checks on `detail`.
pub fn assert_error(r: &Reply, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_scim_type(r);
    let v = r.json();
    assert_eq!(v["schemas"], json!([ERROR_SCHEMA]), "{v}");
    assert_eq!(v["status"], json!(status.to_string()), "{v}");
    match scim_type {
        Some(t) => assert_eq!(v["scimType"], json!(t), "{v}"),
        None => assert!(v.get("scimType").is_none(), "{v}"),
    }
    assert!(
        v["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "an error says what went wrong: {v}"
    );
    assert_no_nulls(&v);
    v
}

/// No `null` anywhere in a document (RFC 7643 §2.5: unassigned attributes are omitted).
pub fn assert_no_nulls(v: &Value) {
    fn walk(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Null => found.push(at.to_string()),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}[{i}]"), found);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    walk(x, &format!("{at}.{k}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(v, "$", &mut found);
    assert!(found.is_empty(), "nulls at {found:?} in {v}");
}

/// A ListResponse: checks its envelope and returns (totalResults, Resources).
pub fn list_of(r: &Reply) -> (i64, Vec<Value>) {
    let v = ok_json(r, StatusCode::OK);
    assert_eq!(v["schemas"], json!([LIST_SCHEMA]), "{v}");
    let resources = v["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("Resources must be a list, even when empty: {v}"))
        .clone();
    assert_eq!(v["itemsPerPage"], json!(resources.len()), "{v}");
    assert!(v["startIndex"].as_i64().is_some_and(|i| i >= 1), "{v}");
    (v["totalResults"].as_i64().expect("totalResults"), resources)
}

/// The ids of a ListResponse's resources, in order.
pub fn ids(resources: &[Value]) -> Vec<String> {
    resources
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .expect("every resource has an id")
                .to_string()
        })
        .collect()
}

impl TestApp {
    /// POSTs a user (201 expected) and returns the created resource.
    pub async fn create_user(&self, t: &ScimTenant, user_name: &str) -> Value {
        let (given, family) = user_name
            .split('@')
            .next()
            .unwrap_or("x")
            .split_once('.')
            .unwrap_or(("Test", "User"));
        let r = self
            .scim(
                "POST",
                t,
                "/Users",
                Some(user_json(user_name, given, family)),
            )
            .await;
        ok_json(&r, StatusCode::CREATED)
    }

    /// POSTs a group with these members (201 expected) and returns the created resource.
    pub async fn create_group(&self, t: &ScimTenant, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        let r = self
            .scim(
                "POST",
                t,
                "/Groups",
                Some(json!({ "schemas": [GROUP_SCHEMA], "displayName": name, "members": members })),
            )
            .await;
        ok_json(&r, StatusCode::CREATED)
    }

    /// `GET {path}?filter=...` (200 expected): (totalResults, Resources).
    pub async fn scim_filter(&self, t: &ScimTenant, path: &str, filter: &str) -> (i64, Vec<Value>) {
        let r = self
            .scim("GET", t, &format!("{path}{}", filter_q(filter)), None)
            .await;
        list_of(&r)
    }
}
