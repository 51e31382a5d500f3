//! The search index of a resource: what the database compares when a filter or `sortBy` names
//! an attribute that is not an indexed column.
//!
//! It is built from the resource exactly as the pure evaluator (`filter::matches`) reads it, so
//! that a condition on the index selects the same resources as the evaluator would:
//! - `v`: for every path (`attr`, `attr.sub`, `urn:attr`, `urn:attr.sub`, lower-cased), the values
//!   a comparison sees: multi-valued attributes flattened, complex values replaced by their `value`
//!   sub-attribute, strings case-folded unless the schema says `caseExact`, non-scalars dropped;
//! - `p`: the paths that are present in the RFC 7644 `pr` sense, and, prefixed with `=`, the paths
//!   with a present comparable value (`eq null` is their negation);
//! - `e`: for multi-valued, complex and extension-defined attributes, one small index (`v`, `p`)
//!   per element, for value filters (`emails[type eq "work" and value co "x"]`);
//! - `s`: the `sortBy` key of every path as `[rank, number, text]` (booleans < numbers < dates <
//!   strings; dates as fixed-width UTC text).
//!
//! `groups` (users) and `members` (groups) are not in it: they are memberships, queried as such;
//! nor is `meta`, which comes from columns.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::filter::{AttrPath, SortKey, get_ci, is_present, sort_key};
use super::schema::{AttributeDef, ResourceKind, resolve};

/// Attributes that live outside the document: memberships, and `meta`, which the database
/// derives from columns (so a membership change never has to rewrite the index).
const DERIVED: &[&str] = &["groups", "members", "meta"];

fn flat(v: &Value) -> Vec<&Value> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().filter(|x| !x.is_null()).collect(),
        other => vec![other],
    }
}

/// A comparable value as the evaluator sees it through `def`: strings folded unless case-exact.
fn leaf(v: &Value, def: Option<&AttributeDef>) -> Option<Value> {
    match v {
        Value::String(s) if def.is_some_and(|d| d.case_exact) => Some(Value::String(s.clone())),
        Value::String(s) => Some(Value::String(s.to_lowercase())),
        Value::Bool(_) | Value::Number(_) => Some(v.clone()),
        _ => None,
    }
}

/// The values found at one path, and the definition comparisons use for them.
struct Found<'a> {
    values: Vec<&'a Value>,
    def: Option<&'static AttributeDef>,
}

impl Found<'_> {
    fn write(&self, key: &str, vals: &mut Map<String, Value>, present: &mut Map<String, Value>) {
        if self.values.iter().any(|v| is_present(v)) {
            present.insert(key.to_string(), json!(1));
        }
        let leaf_def = match self.def {
            Some(d) if d.is_complex() => d.sub("value"),
            other => other,
        };
        let mut raw = Vec::new();
        for v in &self.values {
            if v.is_object() {
                if let Some(x) = get_ci(v, "value") {
                    raw.extend(flat(x));
                }
            } else {
                raw.push(*v);
            }
        }
        if raw.iter().any(|v| is_present(v)) {
            present.insert(format!("={key}"), json!(1));
        }
        let leaves: Vec<Value> = raw.iter().filter_map(|v| leaf(v, leaf_def)).collect();
        if !leaves.is_empty() {
            vals.insert(key.to_string(), Value::Array(leaves));
        }
    }
}

/// `v` and `p` of one container (the resource, an extension object, or an element), for its
/// attributes and their sub-attributes. `def_of(attr, sub)` gives the schema definition.
fn container(
    obj: &Map<String, Value>,
    prefix: &str,
    def_of: &dyn Fn(&str, Option<&str>) -> Option<&'static AttributeDef>,
    skip: &dyn Fn(&str) -> bool,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut vals = Map::new();
    let mut present = Map::new();
    for (k, v) in obj {
        if skip(k) {
            continue;
        }
        let key = format!("{prefix}{}", k.to_lowercase());
        let values = flat(v);
        Found {
            values: values.clone(),
            def: def_of(k, None),
        }
        .write(&key, &mut vals, &mut present);
        // Sub-attributes: gathered over every element, as `attr.sub` reads them.
        let mut subs: Vec<(String, Vec<&Value>)> = Vec::new();
        for parent in values.iter().filter_map(|p| p.as_object()) {
            for (s, sv) in parent {
                let s_lc = s.to_lowercase();
                match subs.iter_mut().find(|(n, _)| *n == s_lc) {
                    Some((_, list)) => list.extend(flat(sv)),
                    None => subs.push((s_lc, flat(sv))),
                }
            }
        }
        for (s, values) in subs {
            Found {
                values,
                def: def_of(k, Some(&s)),
            }
            .write(&format!("{key}.{s}"), &mut vals, &mut present);
        }
    }
    (vals, present)
}

/// One element of a multi-valued or complex attribute, indexed as its own small document.
fn element(el: &Value, parent: Option<&'static AttributeDef>) -> Value {
    let (vals, present) = match el {
        Value::Object(o) => container(
            o,
            "",
            &|a, s| {
                let d = parent.and_then(|p| p.sub(a));
                match s {
                    None => d,
                    Some(s) => d.and_then(|d| d.sub(s)),
                }
            },
            &|_| false,
        ),
        // A plain value: `value` is the value itself.
        other => {
            let mut vals = Map::new();
            let mut present = Map::new();
            Found {
                values: vec![other],
                def: parent.and_then(|p| p.sub("value")),
            }
            .write("value", &mut vals, &mut present);
            (vals, present)
        }
    };
    json!({ "v": vals, "p": present })
}

fn wants_elements(def: Option<&AttributeDef>) -> bool {
    def.is_none_or(|d| d.multi_valued || d.is_complex())
}

fn sort_json(k: SortKey) -> Value {
    match k {
        SortKey::Bool(b) => json!([0, i32::from(b), null]),
        SortKey::Number(n) => json!([1, n, null]),
        SortKey::DateTime(t) => {
            let utc = t.to_offset(time::UtcOffset::UTC);
            // Fixed width, so text order is time order.
            let text = format!(
                "{:+07}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute(),
                utc.second(),
                utc.nanosecond()
            );
            json!([2, null, text])
        }
        SortKey::String(s) => json!([3, null, s]),
    }
}

fn is_urn(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("urn:")
}

/// The search index of a rendered resource (with `meta`, without `groups`/`members`).
pub fn build(doc: &Value, kind: ResourceKind) -> Value {
    let Some(obj) = doc.as_object() else {
        return json!({});
    };
    let skip_core = |k: &str| is_urn(k) || DERIVED.iter().any(|d| d.eq_ignore_ascii_case(k));
    let core_def = |a: &str, s: Option<&str>| resolve(kind, None, a, s);
    let (mut vals, mut present) = container(obj, "", &core_def, &skip_core);
    let mut elements = Map::new();
    let mut sorts = Map::new();
    let mut index_attr = |urn: Option<&str>, attr: &str, v: &Value, key: &str| {
        let def = resolve(kind, urn, attr, None);
        if wants_elements(def) && !v.is_null() {
            let els: Vec<Value> = flat(v).into_iter().map(|el| element(el, def)).collect();
            if !els.is_empty() {
                elements.insert(key.to_string(), Value::Array(els));
            }
        }
        let path = AttrPath {
            urn: urn.map(str::to_string),
            attr: attr.to_string(),
            sub: None,
        };
        if let Some(k) = sort_key(doc, &path, kind) {
            sorts.insert(key.to_string(), sort_json(k));
        }
        let first = match v {
            Value::Array(items) => items.first(),
            other => Some(other),
        };
        if let Some(Value::Object(o)) = first {
            for s in o.keys() {
                let p = AttrPath {
                    sub: Some(s.clone()),
                    ..path.clone()
                };
                if let Some(k) = sort_key(doc, &p, kind) {
                    sorts.insert(format!("{key}.{}", s.to_lowercase()), sort_json(k));
                }
            }
        }
    };
    for (k, v) in obj {
        if skip_core(k) {
            continue;
        }
        index_attr(None, k, v, &k.to_lowercase());
    }
    for (urn, ext) in obj.iter().filter(|(k, _)| is_urn(k)) {
        let Some(ext_obj) = ext.as_object() else {
            continue;
        };
        let prefix = format!("{}:", urn.to_lowercase());
        let ext_def = |a: &str, s: Option<&str>| resolve(kind, Some(urn), a, s);
        let (v2, p2) = container(ext_obj, &prefix, &ext_def, &|_| false);
        vals.extend(v2);
        present.extend(p2);
        for (k, v) in ext_obj {
            index_attr(Some(urn), k, v, &format!("{prefix}{}", k.to_lowercase()));
        }
    }
    json!({ "v": vals, "p": present, "e": elements, "s": sorts })
}

/// An RFC 3339 instant as nanoseconds since the epoch.
pub fn instant_nanos(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "ID-1",
            "userName": "Alice@Contoso.com",
            "externalId": "Ext-1",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [
                {"value": "Alice@Contoso.com", "type": "work", "primary": true},
                {"value": "a@home.test", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "manager": {"value": "M-1"}
            },
            "urn:custom:Ext": {"Badge": "X9", "since": "2025-03-01T10:00:00+02:00"},
            "groups": [{"value": "g"}],
            "meta": {"created": "2026-01-01T00:00:00Z", "resourceType": "User"}
        })
    }

    #[test]
    fn values_are_flattened_and_folded_as_the_schema_says() {
        let ix = build(&user(), ResourceKind::User);
        assert_eq!(ix["v"]["username"], json!(["alice@contoso.com"]));
        assert_eq!(ix["v"]["externalid"], json!(["Ext-1"]), "caseExact kept");
        assert_eq!(ix["v"]["id"], json!(["ID-1"]));
        assert_eq!(ix["v"]["name.familyname"], json!(["smith"]));
        assert_eq!(
            ix["v"]["emails"],
            json!(["alice@contoso.com", "a@home.test"])
        );
        assert_eq!(ix["v"]["emails.type"], json!(["work", "home"]));
        assert_eq!(ix["v"]["emails.primary"], json!([true]));
        assert_eq!(
            ix["v"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department"],
            json!(["sales"])
        );
        assert_eq!(
            ix["v"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager"],
            json!(["m-1"]),
            "manager.value is not caseExact"
        );
        assert_eq!(ix["v"]["urn:custom:ext:badge"], json!(["x9"]));
        assert!(ix["v"].get("groups").is_none(), "memberships stay out");
    }

    #[test]
    fn presence_elements_and_sort_keys() {
        let ix = build(&user(), ResourceKind::User);
        assert_eq!(ix["p"]["name"], json!(1));
        assert!(
            ix["p"].get("=name").is_none(),
            "name has no comparable value"
        );
        assert_eq!(ix["p"]["=emails"], json!(1));
        let els = ix["e"]["emails"].as_array().unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!(els[0]["v"]["type"], json!(["work"]));
        assert_eq!(els[1]["v"]["value"], json!(["a@home.test"]));
        assert_eq!(ix["s"]["emails"], json!([3, null, "alice@contoso.com"]));
        assert_eq!(ix["s"]["active"], json!([0, 1, null]));
        assert!(
            ix["s"].get("meta.created").is_none(),
            "meta comes from columns"
        );
        assert_eq!(
            ix["s"]["urn:custom:ext:since"],
            json!([3, null, "2025-03-01t10:00:00+02:00"]),
            "untyped strings sort as strings"
        );
        assert!(
            ix["e"].get("username").is_none(),
            "simple attributes have none"
        );
    }

    #[test]
    fn empty_values_are_not_present() {
        let ix = build(
            &json!({"userName": "u", "title": "", "emails": [], "nickName": null}),
            ResourceKind::User,
        );
        assert!(ix["p"].get("title").is_none());
        assert_eq!(ix["v"]["title"], json!([""]), "eq \"\" still finds it");
        assert!(ix["p"].get("emails").is_none());
        assert!(ix["v"].get("nickname").is_none());
    }
}
