//! The PATCH request body: the PatchOp schema, the `Operations` list and each operation's `op`,
//! `path` and `value`, read as leniently as Entra needs (any key case, `"Replace"`, blank paths).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{PatchError, ScimType, fail};
use crate::scim::filter::key_ci;

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    /// Entra sends `"Add"`, `"Replace"`, `"Remove"`; the RFC spells them in lower case.
    pub fn parse(s: &str) -> Option<PatchOpKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "add" => Some(PatchOpKind::Add),
            "remove" => Some(PatchOpKind::Remove),
            "replace" => Some(PatchOpKind::Replace),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for PatchOpKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PatchOpKind::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown PATCH op '{s}'")))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    /// `None` for a missing, null or blank path.
    pub path: Option<String>,
    /// `None` when the key is absent; `Some(Value::Null)` for an explicit null.
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub schemas: Vec<String>,
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Checks and converts a parsed body; every failure is `invalidSyntax` (`invalidPath` for a
    /// non-string path), which is what the handler should answer.
    pub fn from_value(body: Value) -> Result<PatchRequest, PatchError> {
        let Value::Object(body) = body else {
            return fail(
                ScimType::InvalidSyntax,
                "the PATCH body must be a JSON object",
            );
        };
        let schemas: Vec<String> = match key_ci(&body, "schemas").and_then(|k| body.get(k)) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !schemas
            .iter()
            .any(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
        {
            return fail(
                ScimType::InvalidSyntax,
                format!("the PATCH body must list the schema {PATCH_OP_SCHEMA}"),
            );
        }
        let ops = match key_ci(&body, "Operations").and_then(|k| body.get(k)) {
            Some(Value::Array(ops)) => ops,
            _ => {
                return fail(
                    ScimType::InvalidSyntax,
                    "the PATCH body needs an \"Operations\" array",
                );
            }
        };
        let mut operations = Vec::with_capacity(ops.len());
        for (n, raw) in ops.iter().enumerate() {
            operations.push(parse_operation(n + 1, raw)?);
        }
        Ok(PatchRequest {
            schemas,
            operations,
        })
    }

    /// Parses raw body bytes; malformed JSON is `invalidSyntax`.
    pub fn from_slice(body: &[u8]) -> Result<PatchRequest, PatchError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            PatchError::new(
                ScimType::InvalidSyntax,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        PatchRequest::from_value(value)
    }
}

impl<'de> Deserialize<'de> for PatchRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        PatchRequest::from_value(v).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

fn parse_operation(n: usize, raw: &Value) -> Result<PatchOperation, PatchError> {
    let Value::Object(obj) = raw else {
        return fail(
            ScimType::InvalidSyntax,
            format!("operation {n} is not an object"),
        );
    };
    let field = |name: &str| key_ci(obj, name).and_then(|k| obj.get(k));
    let op = match field("op") {
        Some(Value::String(s)) => PatchOpKind::parse(s).ok_or_else(|| {
            PatchError::new(
                ScimType::InvalidSyntax,
                format!("operation {n}: unknown op '{s}' (expected add, remove or replace)"),
            )
        })?,
        _ => {
            return fail(
                ScimType::InvalidSyntax,
                format!("operation {n} has no \"op\""),
            );
        }
    };
    let path = match field("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            return fail(
                ScimType::InvalidPath,
                format!("operation {n}: \"path\" must be a string"),
            );
        }
    };
    Ok(PatchOperation {
        op,
        path,
        value: field("value").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn request_accepts_operations_key_in_any_case() {
        for key in ["Operations", "operations", "OPERATIONS"] {
            let r = PatchRequest::from_value(json!({
                "schemas": [PATCH_OP_SCHEMA],
                key: [{"op": "add", "path": "title", "value": "x"}]
            }))
            .expect("parses");
            assert_eq!(r.operations.len(), 1, "{key}");
        }
    }

    #[test]
    fn request_schema_is_required_and_case_insensitive() {
        let upper = json!({"schemas": [PATCH_OP_SCHEMA.to_uppercase()], "Operations": []});
        assert!(PatchRequest::from_value(upper).is_ok());
        for body in [
            json!({"Operations": []}),
            json!({"schemas": [], "Operations": []}),
            json!({"schemas": "urn:ietf:params:scim:api:messages:2.0:PatchOp", "Operations": []}),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "Operations": []}),
        ] {
            let e = PatchRequest::from_value(body).expect_err("schema missing");
            assert_eq!(e.scim_type, ScimType::InvalidSyntax);
        }
    }

    #[test]
    fn request_shape_errors_are_invalid_syntax() {
        for body in [
            json!([]),
            json!("x"),
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {}}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "title"}]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "merge", "path": "title"}]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": 1}]}),
        ] {
            let e = PatchRequest::from_value(body.clone()).expect_err("invalid");
            assert_eq!(e.scim_type, ScimType::InvalidSyntax, "{body}");
        }
        let e = PatchRequest::from_value(
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": 5}]}),
        )
        .expect_err("invalid");
        assert_eq!(e.scim_type, ScimType::InvalidPath);
    }

    #[test]
    fn request_ops_parse_case_insensitively() {
        let o = ops(json!([
            {"op": "Add", "path": "title", "value": 1},
            {"op": "replace", "path": "title", "value": 1},
            {"op": "REMOVE", "path": "title"},
            {"OP": "Replace", "PATH": "title", "VALUE": null}
        ]));
        let kinds: Vec<_> = o.iter().map(|o| o.op).collect();
        assert_eq!(
            kinds,
            [
                PatchOpKind::Add,
                PatchOpKind::Replace,
                PatchOpKind::Remove,
                PatchOpKind::Replace
            ]
        );
        assert_eq!(o[2].value, None);
        assert_eq!(o[3].value, Some(Value::Null));
        assert_eq!(o[3].path.as_deref(), Some("title"));
    }

    #[test]
    fn request_blank_or_null_path_is_no_path() {
        let o = ops(json!([
            {"op": "replace", "path": "", "value": {}},
            {"op": "replace", "path": null, "value": {}},
            {"op": "replace", "path": "  title ", "value": "x"}
        ]));
        assert_eq!(o[0].path, None);
        assert_eq!(o[1].path, None);
        assert_eq!(o[2].path.as_deref(), Some("title"));
    }

    #[test]
    fn request_from_slice_and_serde() {
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#;
        let r = PatchRequest::from_slice(body).expect("parses");
        assert_eq!(r.operations[0].op, PatchOpKind::Replace);
        let via_serde: PatchRequest = serde_json::from_slice(body).expect("serde");
        assert_eq!(via_serde, r);
        let e = PatchRequest::from_slice(b"{not json").expect_err("bad json");
        assert_eq!(e.scim_type, ScimType::InvalidSyntax);
        assert!(serde_json::from_str::<PatchRequest>(r#"{"Operations":[]}"#).is_err());
        assert_eq!(ScimType::NoTarget.as_str(), "noTarget");
        assert_eq!(ScimType::InvalidValue.as_str(), "invalidValue");
    }

    #[test]
    fn every_patch_op_spelling_is_applied() {
        for op in ["add", "Add", "ADD", "replace", "Replace", "REPLACE"] {
            let r = ok(
                &base(),
                json!([{"op": op, "path": "nickName", "value": "N"}]),
            );
            assert_eq!(r["nickName"], "N", "{op}");
        }
        for op in ["remove", "Remove", "REMOVE"] {
            let mut u = base();
            u["nickName"] = json!("N");
            let r = ok(&u, json!([{"op": op, "path": "nickName"}]));
            assert!(r.get("nickName").is_none(), "{op}");
        }
    }
}
