//! SCIM PATCH (RFC 7644 §3.5.2) applied to resource JSON, with the shapes Microsoft Entra ID
//! sends (see shared/entra-scim.md): string booleans, pathless replaces whose keys are paths,
//! `emails[type eq "work"].value` that must create the value, manager given as an id, custom
//! extension URNs missing from `schemas`, and idempotent removes.
//!
//! Group membership is never applied to JSON: [`apply_group_patch`] returns [`MemberChange`]s for
//! the store to execute, so a PATCH that adds one member to a 100k-member group stays cheap.
//!
//! The work is split by job: `request` reads the body into [`PatchOperation`]s, `apply` applies
//! one operation to a resource document (paths, extension containers, the `schemas` list, whole
//! and sub-attributes), `multi` handles values of multi-valued attributes picked by a value filter
//! or listed for removal, `normalise` brings values to their schema form, and `members` turns
//! group membership operations into [`MemberChange`]s.

use serde_json::Value;

use crate::scim::schema::ResourceKind;

mod apply;
mod members;
mod multi;
mod normalise;
mod request;
#[cfg(test)]
mod test_support;

use apply::apply_operation;
use members::group_operation;
pub use request::{PATCH_OP_SCHEMA, PatchOpKind, PatchOperation, PatchRequest};

/// The RFC 7644 §3.12 `scimType` of a failed PATCH; every one is answered with status 400.
pub use super::error::ScimType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct PatchError {
    pub scim_type: ScimType,
    pub detail: String,
}

impl PatchError {
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> Self {
        PatchError {
            scim_type,
            detail: detail.into(),
        }
    }
}

fn fail<T>(scim_type: ScimType, detail: impl Into<String>) -> Result<T, PatchError> {
    Err(PatchError::new(scim_type, detail))
}

/// A membership change for the store to apply, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    ReplaceAll(Vec<String>),
}

/// Applies `ops` to `resource` (a full SCIM resource: core attributes at the top level,
/// extensions under their URN). All or nothing: on error `resource` is left untouched.
pub fn apply_patch(
    resource: &mut Value,
    ops: &[PatchOperation],
    kind: ResourceKind,
) -> Result<(), PatchError> {
    apply_patch_within(resource, ops, kind, &super::limits::current())
}

/// [`apply_patch`] under explicit size limits.
pub fn apply_patch_within(
    resource: &mut Value,
    ops: &[PatchOperation],
    kind: ResourceKind,
    limits: &super::limits::ScimLimits,
) -> Result<(), PatchError> {
    check_operation_sizes(ops, limits)?;
    let mut work = resource.clone();
    let doc = work.as_object_mut().ok_or_else(|| {
        PatchError::new(ScimType::InvalidSyntax, "the resource is not a JSON object")
    })?;
    for op in ops {
        apply_operation(doc, op, kind)?;
    }
    check_size(&work, limits)?;
    *resource = work;
    Ok(())
}

/// The size limits on what a client sends (checked before any work, so an oversized value
/// costs nothing) and on the document that results (what would be stored).
fn check_operation_sizes(
    ops: &[PatchOperation],
    limits: &super::limits::ScimLimits,
) -> Result<(), PatchError> {
    for op in ops {
        if let Some(v) = &op.value {
            let path = op.path.as_deref().unwrap_or("");
            let membership = super::limits::is_membership_path(path);
            super::limits::check(v, path, membership, limits)
                .map_err(|e| PatchError::new(ScimType::InvalidValue, e))?;
        }
        if let Some(p) = &op.path {
            super::limits::check(&Value::String(p.clone()), "path", false, limits)
                .map_err(|e| PatchError::new(ScimType::InvalidPath, e))?;
        }
    }
    Ok(())
}

fn check_size(doc: &Value, limits: &super::limits::ScimLimits) -> Result<(), PatchError> {
    super::limits::check(doc, "", false, limits)
        .map_err(|e| PatchError::new(ScimType::InvalidValue, e))
}

/// Like [`apply_patch`] for a Group whose JSON carries no `members`: other attributes are applied
/// to `resource`, membership operations are returned for the store. All or nothing.
pub fn apply_group_patch(
    resource: &mut Value,
    ops: &[PatchOperation],
) -> Result<Vec<MemberChange>, PatchError> {
    let limits = super::limits::current();
    check_operation_sizes(ops, &limits)?;
    let mut work = resource.clone();
    let mut changes = Vec::new();
    let doc = work.as_object_mut().ok_or_else(|| {
        PatchError::new(ScimType::InvalidSyntax, "the resource is not a JSON object")
    })?;
    for op in ops {
        group_operation(doc, op, &mut changes)?;
    }
    check_size(&work, &limits)?;
    *resource = work;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn oversized_values_are_refused_before_and_after_applying() {
        let small = crate::scim::limits::ScimLimits {
            max_string_chars: 16,
            max_values: 3,
            ..Default::default()
        };
        let mut r = base();
        let before = r.clone();
        let e = apply_patch_within(
            &mut r,
            &ops(json!([{"op": "replace", "path": "displayName", "value": "x".repeat(17)}])),
            ResourceKind::User,
            &small,
        )
        .unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidValue);
        assert!(e.detail.contains("displayName"), "{}", e.detail);
        // Two added values are within the limit on their own, not on top of the two present.
        let e = apply_patch_within(
            &mut r,
            &ops(json!([{"op": "add", "path": "emails", "value": [{"value": "a@b"}, {"value": "c@d"}]}])),
            ResourceKind::User,
            &small,
        )
        .unwrap_err();
        assert!(
            e.detail.starts_with("'emails' has 4 values"),
            "{}",
            e.detail
        );
        let e = apply_patch_within(
            &mut r,
            &ops(json!([{"op": "replace", "value": {"nickName": "a\u{0}b"}}])),
            ResourceKind::User,
            &small,
        )
        .unwrap_err();
        assert!(e.detail.contains("NUL"));
        assert_eq!(r, before, "nothing applied");
        // Group membership is not counted.
        let mut g = json!({"displayName": "G"});
        let members: Vec<Value> = (0..10).map(|i| json!({"value": format!("u{i}")})).collect();
        let changes = apply_group_patch(
            &mut g,
            &ops(json!([{"op": "add", "path": "members", "value": members}])),
        )
        .unwrap();
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn all_or_nothing() {
        let u = base();
        let ty = err_type(
            &u,
            json!([
                {"op": "replace", "path": "title", "value": "changed"},
                {"op": "replace", "path": "active", "value": "False"},
                {"op": "replace", "path": "nonsense", "value": "x"}
            ]),
        );
        assert_eq!(ty, ScimType::InvalidPath);
    }

    #[test]
    fn non_object_resource_is_rejected() {
        let mut r = json!([]);
        let e = apply_patch(&mut r, &[], ResourceKind::User).expect_err("not an object");
        assert_eq!(e.scim_type, ScimType::InvalidSyntax);
    }

    #[test]
    fn empty_operation_list_changes_nothing() {
        let u = base();
        assert_eq!(ok(&u, json!([])), u);
    }

    #[test]
    fn rfc_add_member_to_group_json() {
        let mut g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides", "members": [{"value": "a"}]});
        apply_patch(
            &mut g,
            &ops(json!([{"op": "add", "path": "members", "value": [{"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223", "value": "2819c223"}]}])),
            ResourceKind::Group,
        )
        .expect("add member");
        assert_eq!(g["members"].as_array().map(Vec::len), Some(2));
        apply_patch(
            &mut g,
            &ops(json!([{"op": "remove", "path": "members[value eq \"2819c223\"]"}])),
            ResourceKind::Group,
        )
        .expect("remove member");
        assert_eq!(g["members"], json!([{"value": "a"}]));
        apply_patch(
            &mut g,
            &ops(json!([{"op": "remove", "path": "members"}])),
            ResourceKind::Group,
        )
        .expect("remove all");
        assert!(g.get("members").is_none());
    }

    #[test]
    fn entra_documented_update_sequence() {
        let r = ok(
            &base(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@contoso.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Add", "path": "displayName", "value": "Alice Updated"},
                {"op": "Add", "path": "title", "value": "Engineer"},
                {"op": "Add", "path": "preferredLanguage", "value": "en-US"},
                {"op": "Add", "path": "externalId", "value": "alice2"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "E-42"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-7"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:badge", "value": "B1"}
            ]),
        );
        assert_eq!(
            emails_of_type(&r, "work")[0]["value"],
            "updatedEmail@contoso.com"
        );
        assert_eq!(r["name"]["familyName"], "updatedFamilyName");
        assert_eq!(r["displayName"], "Alice Updated");
        assert_eq!(r["title"], "Engineer");
        assert_eq!(r["preferredLanguage"], "en-US");
        assert_eq!(r["externalId"], "alice2");
        assert_eq!(
            r[ENT],
            json!({"employeeNumber": "E-42", "department": "R&D", "manager": {"value": "m-7"}})
        );
        assert_eq!(
            r["addresses"],
            json!([{"type": "work", "locality": "Redmond"}])
        );
        assert_eq!(r["active"], false);
        assert_eq!(r["schemas"], json!([CORE, ENT, CUSTOM]));
        assert_eq!(r["id"], "u1");
        assert_eq!(r["meta"], base()["meta"]);
    }

    /// Malformed or forbidden operations, each with the error type a client should see.
    #[test]
    fn error_table() {
        let cases: Vec<(Value, ScimType)> = vec![
            (json!({"op": "remove"}), ScimType::NoTarget),
            (json!({"op": "replace", "value": 5}), ScimType::InvalidValue),
            (
                json!({"op": "replace", "value": [1]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "nonsense", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": "name.nope", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": "emails[type eq \"work\"", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": "emails[type xx \"work\"]", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": "emails]", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": "urn:x", "value": 1}),
                ScimType::InvalidPath,
            ),
            (
                json!({"op": "add", "path": ENT, "value": "flat"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "id", "value": "new"}),
                ScimType::Mutability,
            ),
            (
                json!({"op": "remove", "path": "meta"}),
                ScimType::Mutability,
            ),
            (
                json!({"op": "add", "path": "groups", "value": {"value": "g"}}),
                ScimType::Mutability,
            ),
            (
                json!({"op": "remove", "path": "userName"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "active", "value": "maybe"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "name", "value": "flat"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "x509Certificates", "value": [{"value": 5.5}]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "emails", "value": [{"primary": "sometimes"}]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"op": "add", "path": "title"}),
                ScimType::InvalidValue,
            ),
        ];
        for (op, expected) in cases {
            assert_eq!(err_type(&base(), json!([op.clone()])), expected, "{op}");
        }
    }
}
