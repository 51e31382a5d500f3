//! Builders shared by the PATCH tests of every part.

use serde_json::{Value, json};

use super::*;

pub(super) const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(super) const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
pub(super) const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

pub(super) fn ops(operations: Value) -> Vec<PatchOperation> {
    PatchRequest::from_value(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations}))
        .expect("valid request")
        .operations
}

pub(super) fn patch(resource: &Value, operations: Value) -> Result<Value, PatchError> {
    let mut r = resource.clone();
    apply_patch(&mut r, &ops(operations), ResourceKind::User)?;
    Ok(r)
}

pub(super) fn ok(resource: &Value, operations: Value) -> Value {
    match patch(resource, operations.clone()) {
        Ok(r) => r,
        Err(e) => panic!("{operations} failed: {e:?}"),
    }
}

pub(super) fn err_type(resource: &Value, operations: Value) -> ScimType {
    let before = resource.clone();
    let mut r = resource.clone();
    let e =
        apply_patch(&mut r, &ops(operations.clone()), ResourceKind::User).expect_err("should fail");
    assert_eq!(
        r, before,
        "a failed patch must leave the resource untouched"
    );
    e.scim_type
}

pub(super) fn base() -> Value {
    json!({
        "schemas": [CORE],
        "id": "u1",
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "active": true,
        "emails": [
            {"value": "alice@contoso.com", "type": "work", "primary": true},
            {"value": "alice@home.example", "type": "home"}
        ],
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-01T00:00:00Z"}
    })
}

pub(super) fn emails_of_type<'a>(r: &'a Value, ty: &str) -> Vec<&'a Value> {
    r["emails"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["type"] == ty).collect())
        .unwrap_or_default()
}
