//! Group membership operations, which are never applied to JSON: each becomes a
//! [`MemberChange`] for the store (add, remove, remove all, replace all), in request order.

use serde_json::{Map, Value};

use super::apply::{apply_object, apply_path, apply_schema_object, bad_path, schema_urn_path};
use super::request::{PatchOpKind, PatchOperation};
use super::{MemberChange, PatchError, ScimType, fail};
use crate::scim::filter::{
    AttrPath, CompareOp, Filter, PatchPath, get_ci, parse_attr_path, parse_patch_path,
};
use crate::scim::schema::ResourceKind;

pub(super) fn group_operation(
    doc: &mut Map<String, Value>,
    op: &PatchOperation,
    changes: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    let kind = ResourceKind::Group;
    let Some(path) = op.path.as_deref() else {
        if op.op == PatchOpKind::Remove {
            return fail(ScimType::NoTarget, "a remove operation needs a path");
        }
        let Some(Value::Object(obj)) = &op.value else {
            return fail(
                ScimType::InvalidValue,
                "an add or replace without a path needs an object of attributes as value",
            );
        };
        let mut rest = Map::new();
        split_members(obj, kind, op.op, &mut rest, changes)?;
        return apply_object(doc, op.op, None, &rest, kind);
    };
    if let Some(urn) = schema_urn_path(doc, path, kind) {
        if let (true, Some(Value::Object(obj))) = (kind.is_core_urn(&urn), &op.value)
            && op.op != PatchOpKind::Remove
        {
            let mut rest = Map::new();
            split_members(obj, kind, op.op, &mut rest, changes)?;
            return apply_object(doc, op.op, None, &rest, kind);
        }
        return apply_schema_object(doc, op.op, &urn, op.value.as_ref(), kind);
    }
    let pp = parse_patch_path(path).map_err(|e| bad_path(path, e))?;
    if pp.attr.is_core(kind) && pp.attr.attr.eq_ignore_ascii_case("members") {
        return members_path(op, &pp, changes);
    }
    apply_path(doc, op.op, &pp, op.value.as_ref(), kind)
}

/// Moves `members` out of a pathless value object into membership changes.
fn split_members(
    obj: &Map<String, Value>,
    kind: ResourceKind,
    op: PatchOpKind,
    rest: &mut Map<String, Value>,
    changes: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    for (k, v) in obj {
        if kind.is_core_urn(k)
            && let Value::Object(inner) = v
        {
            split_members(inner, kind, op, rest, changes)?;
            continue;
        }
        let is_members = parse_attr_path(k)
            .is_ok_and(|p| p.is_core(kind) && p.attr.eq_ignore_ascii_case("members"));
        if !is_members {
            rest.insert(k.clone(), v.clone());
            continue;
        }
        let pp = parse_patch_path(k).map_err(|e| bad_path(k, e))?;
        let single = PatchOperation {
            op,
            path: Some(k.clone()),
            value: Some(v.clone()),
        };
        members_path(&single, &pp, changes)?;
    }
    Ok(())
}

fn members_path(
    op: &PatchOperation,
    pp: &PatchPath,
    changes: &mut Vec<MemberChange>,
) -> Result<(), PatchError> {
    if pp.attr.sub.is_some() || pp.sub_after_filter.is_some() {
        return fail(
            ScimType::InvalidPath,
            "member sub-attributes cannot be patched; use \"members\" or members[value eq \"id\"]",
        );
    }
    let value = op.value.as_ref().filter(|v| !v.is_null());
    if let Some(f) = &pp.filter {
        let Some(ids) = value_eq_ids(f) else {
            return fail(
                ScimType::InvalidFilter,
                "unsupported member filter: only members[value eq \"id\"], optionally joined with or, is supported",
            );
        };
        if op.op != PatchOpKind::Remove {
            return fail(
                ScimType::InvalidPath,
                "add and replace on members[...] are not supported; use the path \"members\"",
            );
        }
        changes.push(MemberChange::Remove(dedup(ids)));
        return Ok(());
    }
    match (op.op, value) {
        (PatchOpKind::Add, None) => {}
        (PatchOpKind::Add, Some(v)) => {
            let ids = member_ids(v)?;
            if !ids.is_empty() {
                changes.push(MemberChange::Add(ids));
            }
        }
        (PatchOpKind::Replace, None) | (PatchOpKind::Remove, None) => {
            changes.push(MemberChange::RemoveAll)
        }
        (PatchOpKind::Replace, Some(v)) => changes.push(MemberChange::ReplaceAll(member_ids(v)?)),
        (PatchOpKind::Remove, Some(v)) => {
            // An empty list removes nothing; only a remove without value empties the group.
            let ids = member_ids(v)?;
            if !ids.is_empty() {
                changes.push(MemberChange::Remove(ids));
            }
        }
    }
    Ok(())
}

fn member_ids(v: &Value) -> Result<Vec<String>, PatchError> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(s) => s.as_str(),
            Value::Object(_) => match get_ci(item, "value") {
                Some(Value::String(s)) => s.as_str(),
                _ => {
                    return fail(
                        ScimType::InvalidValue,
                        "each member needs a \"value\" holding the member's id",
                    );
                }
            },
            _ => {
                return fail(
                    ScimType::InvalidValue,
                    "members must be objects like {\"value\": \"<id>\"}",
                );
            }
        };
        if id.trim().is_empty() {
            return fail(ScimType::InvalidValue, "a member id is empty");
        }
        ids.push(id.to_string());
    }
    Ok(dedup(ids))
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// `value eq "a"` or `value eq "a" or value eq "b"` → the ids; anything else is unsupported.
fn value_eq_ids(f: &Filter) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![f];
    while let Some(f) = stack.pop() {
        match f {
            Filter::Or(a, b) => {
                stack.push(b);
                stack.push(a);
            }
            Filter::Compare {
                path:
                    AttrPath {
                        urn: None,
                        attr,
                        sub: None,
                    },
                op: CompareOp::Eq,
                value: Value::String(id),
            } if attr.eq_ignore_ascii_case("value") => out.push(id.clone()),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use serde_json::json;

    fn group_changes(
        resource: &Value,
        operations: Value,
    ) -> Result<(Value, Vec<MemberChange>), PatchError> {
        let mut r = resource.clone();
        let changes = apply_group_patch(&mut r, &ops(operations))?;
        Ok((r, changes))
    }

    fn group() -> Value {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Sales", "externalId": "obj-1"})
    }

    fn changes(operations: Value) -> Vec<MemberChange> {
        match group_changes(&group(), operations.clone()) {
            Ok((g, c)) => {
                assert!(
                    g.get("members").is_none(),
                    "members must never be written to JSON"
                );
                c
            }
            Err(e) => panic!("{operations}: {e:?}"),
        }
    }

    fn group_err(operations: Value) -> ScimType {
        let mut g = group();
        let e = apply_group_patch(&mut g, &ops(operations)).expect_err("should fail");
        assert_eq!(g, group());
        e.scim_type
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entra_add_members() {
        let c = changes(json!([{"op": "Add", "path": "members", "value": [
            {"$ref": null, "value": "u1"},
            {"$ref": null, "value": "u2"}
        ]}]));
        assert_eq!(c, [MemberChange::Add(ids(&["u1", "u2"]))]);
    }

    #[test]
    fn entra_remove_members_without_flag() {
        let c = changes(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]));
        assert_eq!(c, [MemberChange::Remove(ids(&["u1"]))]);
    }

    #[test]
    fn entra_remove_member_with_flag() {
        let c = changes(json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]));
        assert_eq!(c, [MemberChange::Remove(ids(&["u1"]))]);
    }

    #[test]
    fn remove_members_by_or_filter() {
        let c = changes(
            json!([{"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\" or (VALUE EQ \"u3\")]"}]),
        );
        assert_eq!(c, [MemberChange::Remove(ids(&["u1", "u2", "u3"]))]);
    }

    #[test]
    fn remove_all_members() {
        assert_eq!(
            changes(json!([{"op": "remove", "path": "members"}])),
            [MemberChange::RemoveAll]
        );
        assert_eq!(
            changes(json!([{"op": "replace", "path": "members", "value": null}])),
            [MemberChange::RemoveAll]
        );
        assert_eq!(
            changes(json!([{"op": "remove", "path": "members", "value": []}])),
            []
        );
    }

    #[test]
    fn replace_members() {
        let c = changes(
            json!([{"op": "replace", "path": "members", "value": [{"value": "a", "display": "A"}, {"value": "b"}]}]),
        );
        assert_eq!(c, [MemberChange::ReplaceAll(ids(&["a", "b"]))]);
        let c = changes(json!([{"op": "replace", "path": "members", "value": []}]));
        assert_eq!(c, [MemberChange::ReplaceAll(vec![])]);
    }

    #[test]
    fn pathless_replace_with_members_and_attributes() {
        let (g, c) = group_changes(
            &group(),
            json!([{"op": "replace", "value": {
                "displayName": "Sales EU",
                "members": [{"value": "u1"}]
            }}]),
        )
        .expect("applies");
        assert_eq!(g["displayName"], "Sales EU");
        assert!(g.get("members").is_none());
        assert_eq!(c, [MemberChange::ReplaceAll(ids(&["u1"]))]);
        let (_, c) = group_changes(
            &group(),
            json!([{"op": "add", "value": {"Members": [{"value": "u1"}]}}]),
        )
        .expect("applies");
        assert_eq!(c, [MemberChange::Add(ids(&["u1"]))]);
    }

    #[test]
    fn many_operations_keep_their_order() {
        let c = changes(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u1"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u1"}]},
            {"op": "Replace", "path": "displayName", "value": "New"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": "u3"}]}
        ]));
        assert_eq!(
            c,
            [
                MemberChange::Add(ids(&["u1", "u2"])),
                MemberChange::Remove(ids(&["u1"])),
                MemberChange::Add(ids(&["u3"]))
            ]
        );
    }

    #[test]
    fn group_attributes_still_apply() {
        let (g, c) = group_changes(
            &group(),
            json!([
                {"op": "Replace", "path": "displayName", "value": "Renamed"},
                {"op": "Replace", "path": "externalId", "value": "obj-2"}
            ]),
        )
        .expect("applies");
        assert!(c.is_empty());
        assert_eq!(g["displayName"], "Renamed");
        assert_eq!(g["externalId"], "obj-2");
    }

    #[test]
    fn unsupported_member_filters() {
        assert_eq!(
            group_err(json!([{"op": "remove", "path": "members[display eq \"x\"]"}])),
            ScimType::InvalidFilter
        );
        assert_eq!(
            group_err(
                json!([{"op": "remove", "path": "members[value eq \"x\" and type eq \"User\"]"}])
            ),
            ScimType::InvalidFilter
        );
        assert_eq!(
            group_err(json!([{"op": "remove", "path": "members[value ne \"x\"]"}])),
            ScimType::InvalidFilter
        );
        assert_eq!(
            group_err(json!([{"op": "remove", "path": "members[value eq 5]"}])),
            ScimType::InvalidFilter
        );
        assert_eq!(
            group_err(
                json!([{"op": "add", "path": "members[value eq \"x\"]", "value": {"value": "x"}}])
            ),
            ScimType::InvalidPath
        );
        assert_eq!(
            group_err(json!([{"op": "remove", "path": "members[value eq \"x\"].display"}])),
            ScimType::InvalidPath
        );
        assert_eq!(
            group_err(json!([{"op": "replace", "path": "members.value", "value": "x"}])),
            ScimType::InvalidPath
        );
    }

    #[test]
    fn bad_member_values() {
        assert_eq!(
            group_err(json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            group_err(json!([{"op": "add", "path": "members", "value": [{"value": ""}]}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            group_err(json!([{"op": "add", "path": "members", "value": [5]}])),
            ScimType::InvalidValue
        );
        let c = changes(json!([{"op": "add", "path": "members", "value": ["bare-id"]}]));
        assert_eq!(c, [MemberChange::Add(ids(&["bare-id"]))]);
    }

    #[test]
    fn group_errors_leave_everything_untouched() {
        assert_eq!(
            group_err(json!([
                {"op": "Replace", "path": "displayName", "value": "Renamed"},
                {"op": "Add", "path": "members", "value": [{"value": "u1"}]},
                {"op": "Replace", "path": "id", "value": "g2"}
            ])),
            ScimType::Mutability
        );
        assert_eq!(group_err(json!([{"op": "remove"}])), ScimType::NoTarget);
        assert_eq!(
            group_err(json!([{"op": "remove", "path": "displayName"}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            group_err(json!([{"op": "replace", "path": "userName", "value": "x"}])),
            ScimType::InvalidPath
        );
    }
}
