//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which parts of a resource a
//! response carries, driven by each attribute's `returned` characteristic (RFC 7643 §7).
//!
//! - `returned: always` (`id`) is always there, and so is `schemas`;
//! - `returned: never` (`password`) never is, even when asked for;
//! - `returned: request` only when named in `attributes`;
//! - `returned: default` unless `attributes` is given without it or `excludedAttributes` names it.
//!
//! When both lists are given, `attributes` wins and `excludedAttributes` is ignored (the RFC
//! expects one or the other). Unknown and custom-extension attributes count as `default`.

use serde_json::{Map, Value};

use super::filter::{AttrPath, FilterError, MAX_FILTER_LEN, parse_attr_path};
use super::schema::{AttributeDef, ResourceKind, Returned, resolve};

/// Parses the comma-separated `attributes` or `excludedAttributes` query parameter. Blank items
/// (`a,,b`, a trailing comma) are skipped.
pub fn parse_attribute_list(input: &str) -> Result<Vec<AttrPath>, FilterError> {
    if input.chars().count() > MAX_FILTER_LEN {
        return Err(FilterError(format!(
            "attribute list is longer than {MAX_FILTER_LEN} characters"
        )));
    }
    input
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse_attr_path)
        .collect()
}

/// Returns the part of `resource` that a response should carry.
pub fn project(
    resource: &Value,
    kind: ResourceKind,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let sel = Selection {
        kind,
        attributes,
        excluded: if attributes.is_empty() { excluded } else { &[] },
    };
    let mut out = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            out.insert(key.clone(), value.clone());
            continue;
        }
        if let Some(ext) = value.as_object().filter(|_| is_urn(key)) {
            if kind.is_core_urn(key) {
                // Not a shape this server produces, but harmless to pass through a selection.
                continue;
            }
            let whole_asked = attributes.iter().any(|a| names_schema(a, key));
            let whole_excluded = sel.excluded.iter().any(|a| names_schema(a, key));
            if whole_excluded {
                continue;
            }
            let mut ext_out = Map::new();
            for (name, v) in ext {
                let def = resolve(kind, Some(key), name, None);
                let projected = if whole_asked {
                    keep_unless_never(v, def)
                } else {
                    sel.attribute(Some(key), name, v, def)
                };
                if let Some(p) = projected {
                    ext_out.insert(name.clone(), p);
                }
            }
            if !ext_out.is_empty() {
                out.insert(key.clone(), Value::Object(ext_out));
            }
            continue;
        }
        let def = resolve(kind, None, key, None);
        if let Some(p) = sel.attribute(None, key, value, def) {
            out.insert(key.clone(), p);
        }
    }
    Value::Object(out)
}

struct Selection<'a> {
    kind: ResourceKind,
    attributes: &'a [AttrPath],
    excluded: &'a [AttrPath],
}

impl Selection<'_> {
    fn attribute(
        &self,
        urn: Option<&str>,
        name: &str,
        value: &Value,
        def: Option<&'static AttributeDef>,
    ) -> Option<Value> {
        let returned = def.map_or(Returned::Default, |d| d.returned);
        match returned {
            Returned::Never => return None,
            Returned::Always => return Some(value.clone()),
            Returned::Default | Returned::Request => {}
        }
        if !self.attributes.is_empty() {
            let asked: Vec<&AttrPath> = self
                .attributes
                .iter()
                .filter(|a| names_attribute(a, self.kind, urn, name))
                .collect();
            if asked.is_empty() {
                return None;
            }
            if asked.iter().any(|a| a.sub.is_none()) {
                return Some(value.clone());
            }
            let subs: Vec<&str> = asked.iter().filter_map(|a| a.sub.as_deref()).collect();
            return non_empty(map_elements(value, |o| keep_subs(o, &subs, def)));
        }
        if returned == Returned::Request {
            return None;
        }
        let dropped: Vec<&AttrPath> = self
            .excluded
            .iter()
            .filter(|a| names_attribute(a, self.kind, urn, name))
            .collect();
        if dropped.iter().any(|a| a.sub.is_none()) {
            return None;
        }
        if dropped.is_empty() {
            return Some(value.clone());
        }
        let subs: Vec<&str> = dropped.iter().filter_map(|a| a.sub.as_deref()).collect();
        non_empty(map_elements(value, |o| drop_subs(o, &subs, def)))
    }
}

fn keep_unless_never(v: &Value, def: Option<&AttributeDef>) -> Option<Value> {
    (def.map_or(Returned::Default, |d| d.returned) != Returned::Never).then(|| v.clone())
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// `attributes=urn:...:enterprise:2.0:User` names a whole extension; it parses as URN
/// `urn:...:2.0` plus attribute `User`, so the parts are joined back for the comparison.
fn names_schema(a: &AttrPath, key: &str) -> bool {
    a.sub.is_none()
        && a.urn.as_deref().is_some_and(|u| {
            key.len() == u.len() + 1 + a.attr.len()
                && key
                    .get(..u.len())
                    .is_some_and(|k| k.eq_ignore_ascii_case(u))
                && key
                    .get(u.len() + 1..)
                    .is_some_and(|k| k.eq_ignore_ascii_case(&a.attr))
        })
}

fn names_attribute(a: &AttrPath, kind: ResourceKind, urn: Option<&str>, name: &str) -> bool {
    let same_schema = match urn {
        None => a.is_core(kind),
        Some(u) => a.urn.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u)),
    };
    same_schema && a.attr.eq_ignore_ascii_case(name)
}

/// Applies `f` to a complex value, or to each value of a multi-valued one.
fn map_elements(value: &Value, f: impl Fn(&Map<String, Value>) -> Map<String, Value>) -> Value {
    match value {
        Value::Object(o) => Value::Object(f(o)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|el| match el {
                    Value::Object(o) => {
                        Some(Value::Object(f(o))).filter(|v| v != &Value::Object(Map::new()))
                    }
                    _ => None,
                })
                .collect(),
        ),
        // A sub-attribute of a simple value selects nothing.
        _ => Value::Null,
    }
}

fn sub_returned(def: Option<&AttributeDef>, name: &str) -> Returned {
    def.and_then(|d| d.sub(name))
        .map_or(Returned::Default, |s| s.returned)
}

fn keep_subs(
    o: &Map<String, Value>,
    subs: &[&str],
    def: Option<&AttributeDef>,
) -> Map<String, Value> {
    o.iter()
        .filter(|(k, _)| {
            let r = sub_returned(def, k);
            r == Returned::Always
                || (r != Returned::Never && subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn drop_subs(
    o: &Map<String, Value>,
    subs: &[&str],
    def: Option<&AttributeDef>,
) -> Map<String, Value> {
    o.iter()
        .filter(|(k, _)| {
            let r = sub_returned(def, k);
            r == Returned::Always
                || (r != Returned::Never
                    && r != Returned::Request
                    && !subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn non_empty(v: Value) -> Option<Value> {
    match &v {
        Value::Null => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        _ => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";

    fn list(s: &str) -> Vec<AttrPath> {
        parse_attribute_list(s).expect("valid attribute list")
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, CUSTOM],
            "id": "u1",
            "externalId": "alice",
            "userName": "alice@contoso.com",
            "password": "hunter2",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [
                {"value": "a@contoso.com", "type": "work", "primary": true},
                {"value": "a@home.example", "type": "home"}
            ],
            "meta": {"resourceType": "User", "location": "https://x/Users/u1"},
            ENT: {"department": "Sales", "manager": {"value": "m1"}},
            CUSTOM: {"badge": "B"}
        })
    }

    fn select(attributes: &str, excluded: &str) -> Value {
        project(
            &user(),
            ResourceKind::User,
            &list(attributes),
            &list(excluded),
        )
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    #[test]
    fn default_view_drops_only_never_returned() {
        let v = select("", "");
        let mut expected = user();
        expected.as_object_mut().map(|o| o.remove("password"));
        assert_eq!(v, expected);
    }

    #[test]
    fn attributes_select_plus_always_returned() {
        let v = select("userName", "");
        assert_eq!(
            v,
            json!({"schemas": user()["schemas"], "id": "u1", "userName": "alice@contoso.com"})
        );
    }

    #[test]
    fn attributes_are_case_insensitive() {
        let v = select("USERNAME,Name.GivenName", "");
        assert_eq!(keys(&v), ["id", "name", "schemas", "userName"]);
        assert_eq!(v["name"], json!({"givenName": "Alice"}));
    }

    #[test]
    fn attributes_sub_attribute_of_multi_valued() {
        let v = select("emails.value", "");
        assert_eq!(
            v["emails"],
            json!([{"value": "a@contoso.com"}, {"value": "a@home.example"}])
        );
        let v = select("emails.value,emails.type", "");
        assert_eq!(
            v["emails"][1],
            json!({"value": "a@home.example", "type": "home"})
        );
        let v = select("emails.display", "");
        assert!(v.get("emails").is_none(), "no value has a display");
    }

    #[test]
    fn attributes_core_urn_qualified() {
        let v = select("urn:ietf:params:scim:schemas:core:2.0:User:userName", "");
        assert_eq!(keys(&v), ["id", "schemas", "userName"]);
    }

    #[test]
    fn attributes_extension_attribute() {
        let v = select(&format!("{ENT}:department"), "");
        assert_eq!(v[ENT], json!({"department": "Sales"}));
        assert!(v.get(CUSTOM).is_none());
        let v = select(&format!("{ENT}:manager.value"), "");
        assert_eq!(v[ENT], json!({"manager": {"value": "m1"}}));
        let v = select(&format!("{CUSTOM}:badge"), "");
        assert_eq!(v[CUSTOM], json!({"badge": "B"}));
    }

    #[test]
    fn attributes_whole_extension() {
        let v = select(ENT, "");
        assert_eq!(v[ENT], user()[ENT]);
        assert!(v.get("userName").is_none());
    }

    #[test]
    fn unqualified_name_does_not_select_extension_attribute() {
        let v = select("department", "");
        assert!(v.get(ENT).is_none());
    }

    #[test]
    fn never_returned_even_when_asked() {
        let v = select("password,userName", "");
        assert!(v.get("password").is_none());
        assert_eq!(v["userName"], "alice@contoso.com");
    }

    #[test]
    fn excluded_removes_default_attributes() {
        let v = select("", "emails,meta");
        assert!(v.get("emails").is_none());
        assert!(v.get("meta").is_none());
        assert_eq!(v["userName"], "alice@contoso.com");
        assert!(v.get("password").is_none());
    }

    #[test]
    fn excluded_never_removes_always() {
        let v = select("", "id,schemas");
        assert_eq!(v["id"], "u1");
        assert!(v.get("schemas").is_some());
    }

    #[test]
    fn excluded_sub_attributes() {
        let v = select("", "name.givenName,emails.primary");
        assert_eq!(v["name"], json!({"familyName": "Smith"}));
        assert_eq!(
            v["emails"][0],
            json!({"value": "a@contoso.com", "type": "work"})
        );
        let v = select("", "name.givenName,name.familyName");
        assert!(v.get("name").is_none());
    }

    #[test]
    fn excluded_extension_parts() {
        let v = select("", &format!("{ENT}:manager"));
        assert_eq!(v[ENT], json!({"department": "Sales"}));
        let v = select("", &format!("{ENT}:manager,{ENT}:department"));
        assert!(v.get(ENT).is_none(), "an emptied extension is left out");
        let v = select("", ENT);
        assert!(v.get(ENT).is_none());
        assert_eq!(v[CUSTOM], json!({"badge": "B"}));
    }

    #[test]
    fn attributes_win_over_excluded() {
        let v = select("userName", "userName");
        assert_eq!(v["userName"], "alice@contoso.com");
    }

    #[test]
    fn entra_group_lookup_excludes_members() {
        let g = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g1",
            "displayName": "Sales",
            "members": [{"value": "u1"}],
            "meta": {"resourceType": "Group"}
        });
        let v = project(&g, ResourceKind::Group, &[], &list("members"));
        assert_eq!(keys(&v), ["displayName", "id", "meta", "schemas"]);
        let v = project(&g, ResourceKind::Group, &list("displayName"), &[]);
        assert_eq!(keys(&v), ["displayName", "id", "schemas"]);
        let v = project(&g, ResourceKind::Group, &list("members.value"), &[]);
        assert_eq!(v["members"], json!([{"value": "u1"}]));
    }

    #[test]
    fn resource_keys_in_other_case_are_recognised() {
        let r = json!({"ID": "u1", "Password": "x", "userName": "a"});
        let v = project(&r, ResourceKind::User, &list("username"), &[]);
        assert_eq!(v, json!({"ID": "u1", "userName": "a"}));
    }

    #[test]
    fn non_object_passes_through() {
        assert_eq!(
            project(&json!([1]), ResourceKind::User, &[], &[]),
            json!([1])
        );
    }

    #[test]
    fn attribute_list_parsing() {
        let l = list(&format!(" userName, name.givenName,,{ENT}:department ,"));
        assert_eq!(
            l,
            [
                AttrPath::new("userName"),
                AttrPath::new("name").with_sub("givenName"),
                AttrPath::with_urn(ENT, "department")
            ]
        );
        assert!(list("").is_empty());
        assert!(parse_attribute_list("a b").is_err());
        assert!(parse_attribute_list("userName,(x)").is_err());
        assert!(parse_attribute_list(&"a,".repeat(MAX_FILTER_LEN)).is_err());
    }

    #[test]
    fn names_schema_compares_whole_urn() {
        let a = list(ENT).remove(0);
        assert!(names_schema(&a, ENT));
        assert!(names_schema(&a, &ENT.to_uppercase()));
        assert!(!names_schema(&a, CUSTOM));
        assert!(!names_schema(&AttrPath::new("User"), ENT));
    }
}
