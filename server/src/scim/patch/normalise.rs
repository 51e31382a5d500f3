//! Values brought to their schema form before they are stored: string booleans become booleans,
//! numbers sent for strings become strings, known sub-attribute keys get their schema spelling,
//! and the enterprise manager, sent in several shapes, becomes `{"value": id}`.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{PatchError, ScimType, fail};
use crate::scim::filter::{as_bool, get_ci, key_ci};
use crate::scim::schema::{AttrType, AttributeDef};

fn invalid<T>(path: &str, what: &str) -> Result<T, PatchError> {
    fail(ScimType::InvalidValue, format!("'{path}' {what}"))
}

/// Checks one value (one element, for multi-valued attributes) against its definition and brings
/// it to its canonical JSON form: string booleans become booleans, known sub-attribute keys get
/// their schema spelling, null sub-attributes are dropped. Unknown attributes pass unchanged.
pub(super) fn normalize_value(
    v: &Value,
    def: Option<&AttributeDef>,
    path: &str,
) -> Result<Value, PatchError> {
    let Some(def) = def else {
        return Ok(v.clone());
    };
    match def.ty {
        AttrType::Complex => {
            let obj = match v {
                Value::Object(o) => o.clone(),
                // A bare scalar for a complex attribute that has a `value` (say a role name).
                Value::String(_) | Value::Number(_) | Value::Bool(_)
                    if def.sub("value").is_some() =>
                {
                    let mut o = Map::new();
                    o.insert("value".into(), v.clone());
                    o
                }
                _ => return invalid(path, "needs an object value"),
            };
            let mut out = Map::new();
            for (k, x) in obj {
                if x.is_null() {
                    continue;
                }
                match def.sub(&k) {
                    Some(sd) => {
                        out.insert(sd.name.to_string(), normalize_value(&x, Some(sd), path)?);
                    }
                    None => {
                        out.insert(k, x);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        AttrType::Boolean => match as_bool(v) {
            Some(b) => Ok(Value::Bool(b)),
            None => invalid(path, "must be a boolean"),
        },
        AttrType::String => match v {
            Value::String(_) => Ok(v.clone()),
            // Numbers sent for a string attribute (an employee number) keep their digits.
            Value::Number(n) => Ok(Value::String(n.to_string())),
            _ => invalid(path, "must be a string"),
        },
        AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => Ok(v.clone()),
            _ => invalid(path, "must be a string"),
        },
        AttrType::DateTime => match v.as_str() {
            Some(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(v.clone()),
            _ => invalid(path, "must be an RFC 3339 date-time string"),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            _ => invalid(path, "must be an integer"),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => Ok(v.clone()),
            _ => invalid(path, "must be a number"),
        },
    }
}

/// The manager arrives as an id string, `{"value": id}` or `[{"value": id}]`; it is stored as
/// `{"value": id}` (plus `$ref` when given). An empty string, empty array or empty value clears it.
pub(super) fn normalize_manager(v: &Value) -> Result<Option<Value>, PatchError> {
    const PATH: &str = "manager";
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(serde_json::json!({ "value": s }))),
        Value::Array(a) => match a.as_slice() {
            [] => Ok(None),
            [one] => normalize_manager(one),
            _ => invalid(PATH, "takes a single manager"),
        },
        Value::Object(o) => {
            let id = match get_ci(v, "value") {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return invalid(PATH, "value must be the manager's id as a string"),
            };
            let mut out = Map::new();
            out.insert("value".into(), Value::String(id));
            if let Some(r) = key_ci(o, "$ref").and_then(|k| o.get(k))
                && r.is_string()
            {
                out.insert("$ref".into(), r.clone());
            }
            Ok(Some(Value::Object(out)))
        }
        _ => invalid(PATH, "must be the manager's id"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use serde_json::json;

    // --- Entra: active as a string boolean -------------------------------------------------------

    #[test]
    fn entra_disable_with_string_false() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(r["active"], json!(false));
    }

    #[test]
    fn entra_disable_with_boolean_false() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "active", "value": false}]),
        );
        assert_eq!(r["active"], json!(false));
    }

    #[test]
    fn string_booleans_in_any_case() {
        for (s, b) in [
            ("True", true),
            ("TRUE", true),
            ("true", true),
            ("fAlSe", false),
        ] {
            let r = ok(
                &base(),
                json!([{"op": "Replace", "path": "active", "value": s}]),
            );
            assert_eq!(r["active"], json!(b), "{s}");
        }
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "Replace", "path": "active", "value": "yes"}])
            ),
            ScimType::InvalidValue
        );
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "Replace", "path": "active", "value": 1}])
            ),
            ScimType::InvalidValue
        );
    }

    #[test]
    fn entra_restore_with_add() {
        let mut u = base();
        u["active"] = json!(false);
        let r = ok(
            &u,
            json!([{"op": "Add", "path": "active", "value": "True"}]),
        );
        assert_eq!(r["active"], json!(true));
    }

    #[test]
    fn roles_from_entra() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": "roles", "value": [
                {"primary": "False", "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}
            ]}]),
        );
        assert_eq!(
            r["roles"],
            json!([{"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}])
        );
    }

    // --- enterprise manager ----------------------------------------------------------------------

    #[test]
    fn manager_by_id_string() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": "m-1"}]),
        );
        assert_eq!(r[ENT]["manager"], json!({"value": "m-1"}));
    }

    #[test]
    fn manager_by_list_or_object() {
        for v in [
            json!([{"value": "m-2"}]),
            json!({"value": "m-2"}),
            json!({"VALUE": "m-2", "displayName": "Boss"}),
        ] {
            let r = ok(
                &base(),
                json!([{"op": "Replace", "path": format!("{ENT}:manager"), "value": v}]),
            );
            assert_eq!(r[ENT]["manager"], json!({"value": "m-2"}), "{v}");
        }
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": format!("{ENT}:manager"), "value": {"value": "m", "$ref": "../Users/m"}}]),
        );
        assert_eq!(
            r[ENT]["manager"],
            json!({"value": "m", "$ref": "../Users/m"})
        );
    }

    #[test]
    fn manager_cleared_by_empty_values_or_remove() {
        let with_manager = ok(
            &base(),
            json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": "m-1"}]),
        );
        for op in [
            json!({"op": "Replace", "path": format!("{ENT}:manager"), "value": ""}),
            json!({"op": "Replace", "path": format!("{ENT}:manager"), "value": []}),
            json!({"op": "Replace", "path": format!("{ENT}:manager"), "value": {"value": ""}}),
            json!({"op": "Replace", "path": format!("{ENT}:manager"), "value": null}),
            json!({"op": "Replace", "path": format!("{ENT}:manager")}),
            json!({"op": "Remove", "path": format!("{ENT}:manager")}),
            json!({"op": "Replace", "path": format!("{ENT}:manager.value"), "value": ""}),
            json!({"op": "Remove", "path": format!("{ENT}:manager.value")}),
        ] {
            let r = ok(&with_manager, json!([op.clone()]));
            assert!(
                r.get(ENT).is_none(),
                "{op}: the emptied extension is dropped"
            );
            assert_eq!(r["schemas"], json!([CORE]), "{op}");
        }
    }

    #[test]
    fn manager_value_path_and_pathless_key() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": format!("{ENT}:manager.value"), "value": "m-3"}]),
        );
        assert_eq!(r[ENT]["manager"], json!({"value": "m-3"}));
        let r = ok(
            &base(),
            json!([{"op": "replace", "value": {format!("{ENT}:manager"): "m-4"}}]),
        );
        assert_eq!(r[ENT]["manager"], json!({"value": "m-4"}));
    }

    #[test]
    fn manager_with_several_values_is_invalid() {
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": [{"value": "a"}, {"value": "b"}]}])
            ),
            ScimType::InvalidValue
        );
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "Add", "path": format!("{ENT}:manager"), "value": {"value": 5}}])
            ),
            ScimType::InvalidValue
        );
    }

    // --- types -----------------------------------------------------------------------------------

    #[test]
    fn type_errors_are_invalid_value() {
        for (path, value) in [
            ("userName", json!({"a": 1})),
            ("name", json!([1])),
            ("displayName", json!(true)),
            ("emails", json!([[1]])),
            ("active", json!(null)),
        ] {
            let e = patch(
                &base(),
                json!([{"op": "add", "path": path, "value": value}]),
            );
            assert_eq!(
                e.map_err(|e| e.scim_type).err(),
                Some(ScimType::InvalidValue),
                "{path}"
            );
        }
    }

    #[test]
    fn numbers_for_string_attributes_become_strings() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": format!("{ENT}:employeeNumber"), "value": 701984}]),
        );
        assert_eq!(r[ENT]["employeeNumber"], "701984");
    }

    #[test]
    fn custom_extension_values_are_stored_as_sent() {
        let r = ok(
            &base(),
            json!([
                {"op": "Add", "path": format!("{CUSTOM}:flags"), "value": ["a", "b"]},
                {"op": "Add", "path": format!("{CUSTOM}:flags"), "value": ["b", "c"]},
                {"op": "Add", "path": format!("{CUSTOM}:count"), "value": 3},
                {"op": "Add", "path": format!("{CUSTOM}:isVip"), "value": "True"}
            ]),
        );
        assert_eq!(
            r[CUSTOM],
            json!({"flags": ["a", "b", "c"], "count": 3, "isVip": "True"})
        );
    }
}
