//! Values of multi-valued attributes: the ones a value filter picks (`emails[type eq "work"]`,
//! created from the filter when none matches), the ones listed for removal, at most one primary,
//! and the canonical text that makes duplicate checks a hash look-up.

use serde_json::{Map, Value};

use super::apply::{Target, merge_into, sub_key};
use super::normalise::normalize_value;
use super::request::PatchOpKind;
use super::{PatchError, ScimType, fail};
use crate::scim::filter::{
    AttrPath, CompareOp, Filter, as_bool, get_ci, is_present, key_ci, matches_value,
};
use crate::scim::schema::{AttrType, AttributeDef};

/// After a sub-attribute is removed, a value left with only its `type`/`primary` label (say
/// `{"type":"work"}` once the address is gone) carries no data and is dropped.
pub(super) fn has_content(el: &Value) -> bool {
    match el {
        Value::Object(o) => o.iter().any(|(k, v)| {
            !k.eq_ignore_ascii_case("type") && !k.eq_ignore_ascii_case("primary") && is_present(v)
        }),
        other => is_present(other),
    }
}

pub(super) fn filtered(
    container: &mut Map<String, Value>,
    name: &str,
    op: PatchOpKind,
    t: &Target<'_>,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let remove = op == PatchOpKind::Remove;
    match container.get_mut(name) {
        Some(Value::Array(_)) => {}
        // Nothing to remove: removes by filter are idempotent (Entra retries them).
        None | Some(Value::Null) if remove => return Ok(()),
        None | Some(Value::Null) => {
            container.insert(name.to_string(), Value::Array(Vec::new()));
        }
        Some(other) => {
            let prev = other.take();
            *other = Value::Array(vec![prev]);
        }
    }
    let Some(Value::Array(arr)) = container.get_mut(name) else {
        return fail(
            ScimType::InvalidPath,
            format!("'{}' is not multi-valued", t.text),
        );
    };
    let selected: Vec<usize> = (0..arr.len())
        .filter(|&i| matches_value(filter, &arr[i], t.def))
        .collect();
    let chosen: std::collections::HashSet<usize> = selected.iter().copied().collect();
    if remove {
        match sub {
            Some(s) => {
                for &i in &selected {
                    if let Value::Object(o) = &mut arr[i]
                        && let Some(k) = key_ci(o, s).cloned()
                    {
                        o.remove(&k);
                    }
                }
                let mut i = 0;
                arr.retain(|el| {
                    let keep = !chosen.contains(&i) || has_content(el);
                    i += 1;
                    keep
                });
            }
            None => {
                let mut i = 0;
                arr.retain(|_| {
                    let keep = !chosen.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        if arr.is_empty() {
            container.remove(name);
        }
        return Ok(());
    }
    let Some(value) = value else {
        return Ok(());
    };
    let new = match sub {
        Some(_) => normalize_value(value, t.sub_def, &t.text)?,
        None => normalize_value(value, t.def, &t.text)?,
    };
    let mut written = selected.clone();
    if selected.is_empty() {
        // Entra's `emails[type eq "work"].value` on a user without a work email: create the
        // value from the filter's equality terms instead of failing with noTarget.
        let Some(mut el) = template_from_filter(filter, t.def) else {
            return fail(
                ScimType::NoTarget,
                format!("no value of '{}' matches the filter", t.attr),
            );
        };
        match (sub, new) {
            (Some(s), v) => {
                let k = sub_key(&mut el, s, t.sub_def);
                el.insert(k, v);
            }
            (None, Value::Object(o)) => merge_into(&mut el, &o, t.def),
            (None, _) => {
                return fail(
                    ScimType::InvalidValue,
                    format!("the value for '{}' must be an object", t.text),
                );
            }
        }
        arr.push(Value::Object(el));
        written.push(arr.len() - 1);
    } else {
        let template = template_from_filter(filter, t.def);
        for &i in &selected {
            match (sub, &new, &mut arr[i]) {
                (Some(s), v, Value::Object(o)) => {
                    let k = sub_key(o, s, t.sub_def);
                    o.insert(k, v.clone());
                }
                (None, Value::Object(n), Value::Object(o)) if op == PatchOpKind::Add => {
                    merge_into(o, n, t.def);
                }
                (None, Value::Object(n), slot) => {
                    // Replace the whole value, keeping the filter's labels (`type`) when the
                    // new value leaves them out so that the value stays findable.
                    let mut el = template.clone().unwrap_or_default();
                    merge_into(&mut el, n, t.def);
                    *slot = Value::Object(el);
                }
                (None, v, slot) => *slot = v.clone(),
                (Some(_), _, _) => {}
            }
        }
    }
    if let Some(&keep) = written.iter().rev().find(|&&i| is_primary(&arr[i])) {
        clear_other_primaries(arr, keep);
    }
    Ok(())
}

/// `type eq "work" and primary eq true` → `{"type": "work", "primary": true}`; `None` when the
/// filter is not a conjunction of equalities on sub-attributes.
fn template_from_filter(filter: &Filter, def: Option<&AttributeDef>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut stack = vec![filter];
    while let Some(f) = stack.pop() {
        match f {
            Filter::And(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            Filter::Compare {
                path:
                    AttrPath {
                        urn: None,
                        attr,
                        sub: None,
                    },
                op: CompareOp::Eq,
                value,
            } if !value.is_null() => {
                let sub_def = def.and_then(|d| d.sub(attr));
                let v = match sub_def {
                    Some(sd) if sd.ty == AttrType::Boolean => Value::Bool(as_bool(value)?),
                    _ => value.clone(),
                };
                out.insert(
                    sub_def.map_or_else(|| attr.clone(), |d| d.name.to_string()),
                    v,
                );
            }
            _ => return None,
        }
    }
    Some(out)
}

pub(super) fn is_primary(v: &Value) -> bool {
    get_ci(v, "primary").and_then(as_bool) == Some(true)
}

/// RFC 7643 §2.4: at most one value may be primary; the one just written wins.
pub(super) fn clear_other_primaries(arr: &mut [Value], keep: usize) {
    for (i, el) in arr.iter_mut().enumerate() {
        if i != keep
            && let Value::Object(o) = el
            && let Some(k) = key_ci(o, "primary").cloned()
            && o.get(&k).and_then(as_bool) == Some(true)
        {
            o.insert(k, Value::Bool(false));
        }
    }
}

pub(super) fn remove_listed(
    container: &mut Map<String, Value>,
    name: &str,
    listed: &Value,
    def: Option<&AttributeDef>,
) {
    let listed: Vec<&Value> = match listed {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if let Some(Value::Array(arr)) = container.get_mut(name) {
        let value_def = def.and_then(|d| d.sub("value"));
        // Two values are the same when equal, or when their `value` sub-attributes are (Entra
        // lists only `{"value": id}` when removing): two hash look-ups per element.
        let whole: std::collections::HashSet<String> =
            listed.iter().map(|l| canonical(l)).collect();
        let keys: std::collections::HashSet<String> = listed
            .iter()
            .filter_map(|l| value_key(l, value_def))
            .collect();
        arr.retain(|el| {
            !(whole.contains(&canonical(el))
                || value_key(el, value_def).is_some_and(|k| keys.contains(&k)))
        });
        if arr.is_empty() {
            container.remove(name);
        }
    }
}

/// What identifies a value for removal: its `value` sub-attribute (or itself, when simple),
/// lower-cased unless the attribute is case-exact.
fn value_key(v: &Value, value_def: Option<&AttributeDef>) -> Option<String> {
    let x = if v.is_object() {
        get_ci(v, "value")?
    } else {
        v
    };
    let s = x
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| x.to_string());
    Some(if value_def.is_some_and(|d| d.case_exact) {
        s
    } else {
        s.to_lowercase()
    })
}

/// A text form that is equal exactly when the values are (`==`), whatever the key order of
/// their objects: the key of a hash look-up.
pub(super) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    write(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use serde_json::json;

    // --- Entra: emails, phones, addresses by type ------------------------------------------------

    #[test]
    fn replace_work_email_creates_it_when_missing() {
        let mut u = base();
        u["emails"] = json!([{"value": "alice@home.example", "type": "home"}]);
        let r = ok(
            &u,
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@contoso.com"}]),
        );
        assert_eq!(
            r["emails"],
            json!([
                {"value": "alice@home.example", "type": "home"},
                {"type": "work", "value": "alice@contoso.com"}
            ])
        );
    }

    #[test]
    fn replace_work_email_creates_the_attribute() {
        let mut u = base();
        u.as_object_mut().map(|o| o.remove("emails"));
        let r = ok(
            &u,
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x@y.z"}]),
        );
        assert_eq!(r["emails"], json!([{"type": "work", "value": "x@y.z"}]));
    }

    #[test]
    fn replace_work_email_updates_only_the_work_email() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}]),
        );
        assert_eq!(
            emails_of_type(&r, "work"),
            [&json!({"value": "new@contoso.com", "type": "work", "primary": true})]
        );
        assert_eq!(
            emails_of_type(&r, "home"),
            [&json!({"value": "alice@home.example", "type": "home"})]
        );
    }

    #[test]
    fn filter_values_match_case_insensitively() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": "EMAILS[TYPE EQ \"WORK\"].VALUE", "value": "n@c.com"}]),
        );
        assert_eq!(emails_of_type(&r, "work")[0]["value"], "n@c.com");
        assert_eq!(r["emails"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn add_work_email_by_filter_behaves_as_replace() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "n@c.com"}]),
        );
        assert_eq!(emails_of_type(&r, "work").len(), 1);
        assert_eq!(emails_of_type(&r, "work")[0]["value"], "n@c.com");
    }

    #[test]
    fn proxy_addresses_as_other_emails() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": "emails[type eq \"other\"].value", "value": "smtp:alias@contoso.com"}]),
        );
        assert_eq!(
            emails_of_type(&r, "other")[0]["value"],
            "smtp:alias@contoso.com"
        );
        assert_eq!(r["emails"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn entra_phone_numbers_by_type() {
        let r = ok(
            &base(),
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0100"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"},
                {"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 555 0102"},
                {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"}
            ]),
        );
        assert_eq!(
            r["phoneNumbers"],
            json!([
                {"type": "work", "value": "+1 555 0100"},
                {"type": "mobile", "value": "+1 555 0199"},
                {"type": "fax", "value": "+1 555 0102"}
            ])
        );
    }

    #[test]
    fn entra_work_address_built_field_by_field() {
        let r = ok(
            &base(),
            json!([
                {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
                {"op": "Add", "path": "addresses[type eq \"work\"].region", "value": "WA"},
                {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"},
                {"op": "Add", "path": "addresses[type eq \"work\"].country", "value": "US"},
                {"op": "Add", "path": "addresses[type eq \"other\"].formatted", "value": "Building 4"}
            ]),
        );
        assert_eq!(
            r["addresses"],
            json!([
                {"type": "work", "streetAddress": "1 Main St", "locality": "Redmond", "region": "WA", "postalCode": "98052", "country": "US"},
                {"type": "other", "formatted": "Building 4"}
            ])
        );
    }

    // --- replace, add and remove by filter -------------------------------------------------------

    #[test]
    fn replace_by_filter_updates_every_match() {
        let mut u = base();
        u["emails"] = json!([
            {"value": "a@x", "type": "other"},
            {"value": "b@x", "type": "other"},
            {"value": "c@x", "type": "work"}
        ]);
        let r = ok(
            &u,
            json!([{"op": "replace", "path": "emails[type eq \"other\"].display", "value": "alias"}]),
        );
        assert_eq!(r["emails"][0]["display"], "alias");
        assert_eq!(r["emails"][1]["display"], "alias");
        assert!(r["emails"][2].get("display").is_none());
    }

    #[test]
    fn replace_by_filter_without_sub_replaces_the_value() {
        // RFC 7644 §3.5.2.3 example: replace the work address as a whole.
        let mut u = base();
        u["addresses"] = json!([{"type": "work", "streetAddress": "old", "locality": "gone"}, {"type": "home", "streetAddress": "h"}]);
        let r = ok(
            &u,
            json!([{
                "op": "replace",
                "path": "addresses[type eq \"work\"]",
                "value": {"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "primary": true}
            }]),
        );
        assert_eq!(
            r["addresses"][0],
            json!({"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "primary": true})
        );
        assert_eq!(
            r["addresses"][1],
            json!({"type": "home", "streetAddress": "h"})
        );
    }

    #[test]
    fn replace_by_filter_keeps_the_filter_label() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x"}}]),
        );
        assert_eq!(
            emails_of_type(&r, "work"),
            [&json!({"type": "work", "value": "w@x"})]
        );
    }

    #[test]
    fn add_by_filter_without_sub_merges() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "Work"}}]),
        );
        assert_eq!(
            emails_of_type(&r, "work"),
            [
                &json!({"value": "alice@contoso.com", "type": "work", "primary": true, "display": "Work"})
            ]
        );
    }

    #[test]
    fn replace_by_filter_that_cannot_build_a_value_is_no_target() {
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "x"}])
            ),
            ScimType::NoTarget
        );
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "replace", "path": "emails[type eq \"a\" or type eq \"b\"].value", "value": "x"}])
            ),
            ScimType::NoTarget
        );
    }

    #[test]
    fn created_value_uses_all_equality_terms() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\" and primary eq \"True\"].value", "value": "1"}]),
        );
        assert_eq!(
            r["phoneNumbers"],
            json!([{"type": "work", "primary": true, "value": "1"}])
        );
    }

    #[test]
    fn remove_by_filter() {
        let r = ok(
            &base(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "alice@contoso.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn remove_by_filter_rfc_example() {
        let r = ok(
            &base(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"contoso.com\"]"}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "alice@home.example", "type": "home"}])
        );
    }

    #[test]
    fn remove_last_value_drops_the_attribute() {
        let r = ok(
            &base(),
            json!([{"op": "remove", "path": "emails[value pr]"}]),
        );
        assert!(r.get("emails").is_none());
    }

    #[test]
    fn remove_by_filter_without_match_is_idempotent() {
        let u = base();
        assert_eq!(
            ok(
                &u,
                json!([{"op": "Remove", "path": "emails[type eq \"other\"]"}])
            ),
            u
        );
        assert_eq!(
            ok(
                &u,
                json!([{"op": "Remove", "path": "phoneNumbers[type eq \"work\"].value"}])
            ),
            u
        );
        assert_eq!(ok(&u, json!([{"op": "Remove", "path": "phoneNumbers"}])), u);
    }

    #[test]
    fn remove_sub_by_filter_drops_a_value_left_empty() {
        let r = ok(
            &base(),
            json!([{"op": "Remove", "path": "emails[type eq \"home\"].value"}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "alice@contoso.com", "type": "work", "primary": true}])
        );
        let mut u = base();
        u["addresses"] = json!([{"type": "work", "streetAddress": "s", "locality": "l"}]);
        let r = ok(
            &u,
            json!([{"op": "Remove", "path": "addresses[type eq \"work\"].streetAddress"}]),
        );
        assert_eq!(r["addresses"], json!([{"type": "work", "locality": "l"}]));
    }

    // --- listed values and primaries -------------------------------------------------------------

    /// 40,000 phone numbers (with repeats), then removing 20,000 of them by value: linear
    /// work now; with a scan of the array per value this ran for seconds to minutes.
    #[test]
    fn large_multi_valued_attributes_are_handled_in_linear_time() {
        let roomy = crate::scim::limits::ScimLimits {
            max_values: 100_000,
            ..Default::default()
        };
        let phones: Vec<Value> = (0..40_000)
            .map(|i| json!({"value": format!("+1 555 {:06}", i % 30_000), "type": "work"}))
            .collect();
        let mut r = base();
        apply_patch_within(
            &mut r,
            &ops(json!([{"op": "add", "path": "phoneNumbers", "value": phones}])),
            ResourceKind::User,
            &roomy,
        )
        .unwrap();
        assert_eq!(r["phoneNumbers"].as_array().map(Vec::len), Some(30_000));
        let gone: Vec<Value> = (0..20_000)
            .map(|i| json!({"value": format!("+1 555 {:06}", i)}))
            .collect();
        apply_patch_within(
            &mut r,
            &ops(json!([{"op": "remove", "path": "phoneNumbers", "value": gone}])),
            ResourceKind::User,
            &roomy,
        )
        .unwrap();
        assert_eq!(r["phoneNumbers"].as_array().map(Vec::len), Some(10_000));
        assert_eq!(r["phoneNumbers"][0]["value"], "+1 555 020000");
    }

    #[test]
    fn remove_listed_values_from_multi_valued() {
        let r = ok(
            &base(),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "ALICE@home.example"}]}]),
        );
        assert_eq!(
            r["emails"],
            json!([{"value": "alice@contoso.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn primary_true_clears_other_primaries() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other", "primary": "True"}]}]),
        );
        assert_eq!(r["emails"][0]["primary"], false);
        assert_eq!(r["emails"][2]["primary"], true);
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        assert_eq!(emails_of_type(&r, "work")[0]["primary"], false);
        assert_eq!(emails_of_type(&r, "home")[0]["primary"], true);
    }
}
