//! Evaluation of a [`Filter`] over SCIM JSON resources, and `sortBy` keys.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AttrPath, CompareOp, Filter};
use crate::scim::schema::{AttrType, AttributeDef, ResourceKind};

/// Key lookup that ignores case, preferring an exact match (RFC 7643 §2.1).
pub(crate) fn key_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m String> {
    if let Some((k, _)) = map.get_key_value(name) {
        return Some(k);
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name))
}

pub(crate) fn get_ci<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    let map = v.as_object()?;
    key_ci(map, name).and_then(|k| map.get(k))
}

/// Booleans may be stored or sent as `"True"`/`"false"` strings (Entra does this).
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_datetime(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// Present in the `pr` sense: not missing, null, `""`, `[]` or `{}`.
pub(crate) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A whole resource: top-level core attributes, extensions under their URN key.
    Resource(&'a Value, ResourceKind),
    /// One value of a multi-valued attribute, inside `attr[...]`.
    Element(&'a Value, Option<&'static AttributeDef>),
}

/// Evaluates `filter` against a full SCIM resource as JSON (core attributes at the top level,
/// extension attributes in an object under the extension URN; keys in any case).
pub fn matches(filter: &Filter, resource: &Value, kind: ResourceKind) -> bool {
    eval(filter, Scope::Resource(resource, kind))
}

/// Evaluates a value filter (the inside of `emails[...]`) against one value of the multi-valued
/// attribute `parent`. PATCH uses this to pick the values a path targets.
pub fn matches_value(
    filter: &Filter,
    element: &Value,
    parent: Option<&'static AttributeDef>,
) -> bool {
    eval(filter, Scope::Element(element, parent))
}

fn eval(filter: &Filter, scope: Scope<'_>) -> bool {
    match filter {
        // Long `a and b and c ...` chains are left-deep trees; walking the left spine in a loop
        // keeps the recursion depth bounded by the parser's nesting limit.
        Filter::And(..) => {
            let mut f = filter;
            while let Filter::And(left, right) = f {
                if !eval(right, scope) {
                    return false;
                }
                f = left;
            }
            eval(f, scope)
        }
        Filter::Or(..) => {
            let mut f = filter;
            while let Filter::Or(left, right) = f {
                if eval(right, scope) {
                    return true;
                }
                f = left;
            }
            eval(f, scope)
        }
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Present(path) => lookup(scope, path).0.into_iter().any(is_present),
        Filter::Compare { path, op, value } => compare_path(scope, path, *op, value),
        Filter::ValuePath { path, filter } => {
            let (values, def) = lookup(scope, path);
            values
                .into_iter()
                .any(|el| eval(filter, Scope::Element(el, def)))
        }
    }
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Null => {}
        Value::Array(items) => out.extend(items.iter().filter(|x| !x.is_null())),
        other => out.push(other),
    }
}

fn collect<'a>(container: Option<&'a Value>, attr: &str, sub: Option<&str>) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(v) = container.and_then(|c| get_ci(c, attr)) else {
        return out;
    };
    match sub {
        None => push_flat(v, &mut out),
        Some(s) => {
            let mut parents = Vec::new();
            push_flat(v, &mut parents);
            for p in parents {
                if let Some(x) = get_ci(p, s) {
                    push_flat(x, &mut out);
                }
            }
        }
    }
    out
}

/// The container holding a path's attribute: the resource itself for core attributes, the
/// extension object for URN-qualified ones.
fn container_for<'a>(res: &'a Value, kind: ResourceKind, path: &AttrPath) -> Option<&'a Value> {
    match &path.urn {
        None => Some(res),
        Some(u) if kind.is_core_urn(u) => Some(res),
        Some(u) => get_ci(res, u),
    }
}

/// The values a path refers to (multi-valued attributes flattened) and their definition.
fn lookup<'a>(
    scope: Scope<'a>,
    path: &AttrPath,
) -> (Vec<&'a Value>, Option<&'static AttributeDef>) {
    match scope {
        Scope::Resource(res, kind) => {
            let container = container_for(res, kind, path);
            (
                collect(container, &path.attr, path.sub.as_deref()),
                path.def(kind),
            )
        }
        Scope::Element(el, parent) => {
            let def = parent.and_then(|p| p.sub(&path.attr));
            let def = match &path.sub {
                None => def,
                Some(s) => def.and_then(|d| d.sub(s)),
            };
            // A multi-valued attribute of plain values: `value` is the value itself.
            if !el.is_object() {
                let own = path.attr.eq_ignore_ascii_case("value") && path.sub.is_none();
                return (if own { vec![el] } else { Vec::new() }, def);
            }
            (collect(Some(el), &path.attr, path.sub.as_deref()), def)
        }
    }
}

fn compare_path(scope: Scope<'_>, path: &AttrPath, op: CompareOp, rhs: &Value) -> bool {
    let (values, def) = lookup(scope, path);
    let mut leaves = Vec::new();
    for v in values {
        if v.is_object() {
            if let Some(x) = get_ci(v, "value") {
                push_flat(x, &mut leaves);
            }
        } else {
            leaves.push(v);
        }
    }
    let leaf_def = match def {
        Some(d) if d.is_complex() => d.sub("value"),
        other => other,
    };
    if rhs.is_null() {
        let any = leaves.iter().any(|v| is_present(v));
        return match op {
            CompareOp::Eq => !any,
            CompareOp::Ne => any,
            _ => false,
        };
    }
    match op {
        CompareOp::Ne => !leaves
            .iter()
            .any(|v| compare(v, leaf_def, CompareOp::Eq, rhs)),
        _ => leaves.iter().any(|v| compare(v, leaf_def, op, rhs)),
    }
}

fn ordering_holds(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else {
        return false;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn number_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn compare(leaf: &Value, def: Option<&AttributeDef>, op: CompareOp, rhs: &Value) -> bool {
    let ty = def.map(|d| d.ty);
    if ty == Some(AttrType::Boolean) || leaf.is_boolean() || rhs.is_boolean() {
        let (Some(a), Some(b)) = (as_bool(leaf), as_bool(rhs)) else {
            return false;
        };
        return match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        };
    }
    if let (Value::Number(a), Value::Number(b)) = (leaf, rhs) {
        return ordering_holds(op, number_cmp(a, b));
    }
    if ty == Some(AttrType::DateTime)
        && !op.is_substring()
        && let (Some(a), Some(b)) = (as_datetime(leaf), as_datetime(rhs))
    {
        return ordering_holds(op, Some(a.cmp(&b)));
    }
    let (Value::String(a), Value::String(b)) = (leaf, rhs) else {
        return false;
    };
    if def.is_some_and(|d| d.case_exact) {
        string_op(op, a, b)
    } else {
        string_op(op, &a.to_lowercase(), &b.to_lowercase())
    }
}

fn string_op(op: CompareOp, a: &str, b: &str) -> bool {
    match op {
        CompareOp::Co => a.contains(b),
        CompareOp::Sw => a.starts_with(b),
        CompareOp::Ew => a.ends_with(b),
        _ => ordering_holds(op, Some(a.cmp(b))),
    }
}

/// A value to order resources by (`sortBy`). Values of different kinds order as
/// booleans < numbers < dates < strings, so a mixed column still sorts deterministically.
#[derive(Debug, Clone)]
pub enum SortKey {
    Bool(bool),
    Number(f64),
    DateTime(OffsetDateTime),
    /// Already lower-cased when the attribute is not `caseExact`.
    String(String),
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Number(_) => 1,
            SortKey::DateTime(_) => 2,
            SortKey::String(_) => 3,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::DateTime(a), SortKey::DateTime(b)) => a.cmp(b),
            (SortKey::String(a), SortKey::String(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey {}

/// The key to sort `resource` by `path`, or `None` when it has no value (RFC 7644 §3.4.2.3 sorts
/// those last in ascending order; the caller places them). Multi-valued attributes sort by their
/// primary value, else the first; a complex attribute without sub-attribute by its `value`.
pub fn sort_key(resource: &Value, path: &AttrPath, kind: ResourceKind) -> Option<SortKey> {
    let container = container_for(resource, kind, path)?;
    let attr = get_ci(container, &path.attr)?;
    let element = match attr {
        Value::Array(items) => items
            .iter()
            .find(|v| get_ci(v, "primary").and_then(as_bool) == Some(true))
            .or_else(|| items.first())?,
        other => other,
    };
    let def = path.def(kind);
    let (leaf, def) = match &path.sub {
        Some(s) => (get_ci(element, s)?, def),
        None if element.is_object() => {
            (get_ci(element, "value")?, def.and_then(|d| d.sub("value")))
        }
        None => (element, def),
    };
    let ty = def.map(|d| d.ty);
    match leaf {
        Value::Bool(b) => Some(SortKey::Bool(*b)),
        Value::Number(n) => n.as_f64().map(SortKey::Number),
        Value::String(s) => {
            if ty == Some(AttrType::DateTime)
                && let Some(t) = as_datetime(leaf)
            {
                return Some(SortKey::DateTime(t));
            }
            if ty == Some(AttrType::Boolean)
                && let Some(b) = as_bool(leaf)
            {
                return Some(SortKey::Bool(b));
            }
            if def.is_some_and(|d| d.case_exact) {
                Some(SortKey::String(s.clone()))
            } else {
                Some(SortKey::String(s.to_lowercase()))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn user_name_is_case_insensitive() {
        let u = user();
        assert!(m(r#"userName eq "bjensen@example.com""#, &u));
        assert!(m(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#, &u));
        assert!(!m(r#"userName eq "bjensen""#, &u));
    }

    #[test]
    fn case_exact_attributes() {
        let u = user();
        assert!(m(r#"externalId eq "BJensen""#, &u));
        assert!(!m(r#"externalId eq "bjensen""#, &u));
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#, &u));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#, &u));
    }

    #[test]
    fn unknown_attributes_compare_case_insensitively() {
        let u = json!({"nickname2": "Babs"});
        assert!(matches(
            &p(r#"nickname2 eq "BABS""#),
            &u,
            ResourceKind::User
        ));
    }

    #[test]
    fn json_keys_match_in_any_case() {
        let u = json!({"USERNAME": "x", "Emails": [{"VALUE": "a@b.c", "Type": "work"}]});
        assert!(matches(&p(r#"userName eq "x""#), &u, ResourceKind::User));
        assert!(matches(
            &p(r#"emails[type eq "WORK"]"#),
            &u,
            ResourceKind::User
        ));
        assert!(matches(
            &p(r#"emails.value eq "a@b.c""#),
            &u,
            ResourceKind::User
        ));
    }

    #[test]
    fn string_operators() {
        let u = user();
        assert!(m(r#"name.familyName co "malley""#, &u));
        assert!(m(r#"userName sw "BJ""#, &u));
        assert!(!m(r#"userName sw "jensen""#, &u));
        assert!(m(r#"userName ew ".COM""#, &u));
        assert!(m(r#"title gt "A""#, &u));
        assert!(m(r#"title lt "z""#, &u));
        assert!(m(r#"title ge "tour guide""#, &u));
        assert!(m(r#"title le "tour guide""#, &u));
        assert!(!m(r#"title gt "tour guide""#, &u));
    }

    #[test]
    fn rfc_example_semantics() {
        let u = user();
        assert!(m("title pr", &u));
        assert!(m(r#"title pr and userType eq "Employee""#, &u));
        assert!(m(r#"title pr or userType eq "Intern""#, &u));
        assert!(m(
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(!m(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            &u
        ));
        assert!(m(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            &u
        ));
        assert!(m(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            &u
        ));
    }

    #[test]
    fn value_filter_requires_one_value_to_match_all_terms() {
        let u = user();
        // The home email is at jensen.org; the work one at example.com: no single value has both.
        assert!(!m(
            r#"emails[type eq "home" and value co "example.com"]"#,
            &u
        ));
        assert!(m(r#"emails[type eq "home" and value co "jensen.org"]"#, &u));
        assert!(m(r#"emails[not (type eq "work")]"#, &u));
        assert!(!m(r#"ims[type eq "aim"]"#, &u));
        assert!(!m(r#"phoneNumbers[type eq "work"]"#, &u));
    }

    #[test]
    fn complex_multi_valued_without_sub_uses_value() {
        let u = user();
        assert!(m(r#"emails eq "BABS@jensen.org""#, &u));
        assert!(m(r#"emails co "jensen""#, &u));
        assert!(!m(r#"emails eq "work""#, &u));
    }

    #[test]
    fn datetimes_compare_as_instants() {
        let u = user();
        assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, &u));
        assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, &u));
        assert!(m(r#"meta.lastModified le "2011-05-13T04:42:34Z""#, &u));
        assert!(!m(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, &u));
        assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, &u));
        assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33.5Z""#, &u));
        assert!(m(r#"meta.created lt "2010-01-23T05:00:00+00:00""#, &u));
        // Offsets are honoured: 01:00 at +02:00 is 23:00 the previous day in UTC.
        assert!(m(r#"meta.lastModified gt "2011-05-13T01:00:00+02:00""#, &u));
        assert!(m(r#"meta.created sw "2010-01""#, &u));
    }

    #[test]
    fn booleans() {
        let u = user();
        assert!(m("active eq true", &u));
        assert!(!m("active eq false", &u));
        assert!(m("active ne false", &u));
        assert!(m(r#"active eq "True""#, &u));
        assert!(!m("active gt false", &u));
        assert!(!m(r#"active co "t""#, &u));
        let stored_as_string = json!({"active": "False"});
        assert!(matches(
            &p("active eq false"),
            &stored_as_string,
            ResourceKind::User
        ));
    }

    #[test]
    fn validate_flags_boolean_ordering_and_bare_complex() {
        assert!(validate(&p("active gt false"), ResourceKind::User).is_err());
        assert!(validate(&p(r#"active co "t""#), ResourceKind::User).is_err());
        assert!(validate(&p(r#"name eq "x""#), ResourceKind::User).is_err());
        assert!(validate(&p(r#"emails[primary gt true]"#), ResourceKind::User).is_err());
        assert!(validate(&p("active eq false"), ResourceKind::User).is_ok());
        assert!(validate(&p(r#"emails co "x" and nonsense gt 1"#), ResourceKind::User).is_ok());
        assert!(validate(&p(r#"members eq "x""#), ResourceKind::Group).is_ok());
    }

    #[test]
    fn presence() {
        let u = user();
        assert!(m("emails pr", &u));
        assert!(m("name pr", &u));
        assert!(m("name.givenName pr", &u));
        assert!(!m("name.middleName pr", &u));
        assert!(!m("nickName pr", &u));
        assert!(m(&format!("{ENT}:manager pr"), &u));
        let empty = json!({"title": "", "emails": [], "name": {}, "nickName": null});
        for f in ["title pr", "emails pr", "name pr", "nickName pr"] {
            assert!(!matches(&p(f), &empty, ResourceKind::User), "{f}");
        }
    }

    #[test]
    fn not_equal_and_null() {
        let u = user();
        assert!(m(r#"nickName ne "x""#, &u));
        assert!(m(r#"title ne "x""#, &u));
        assert!(!m(r#"title ne "TOUR GUIDE""#, &u));
        assert!(m("nickName eq null", &u));
        assert!(!m("title eq null", &u));
        assert!(m("title ne null", &u));
        assert!(!m("nickName ne null", &u));
        assert!(!m("title gt null", &u));
        // ne over a multi-valued attribute: true only when no value equals.
        assert!(!m(r#"emails.type ne "home""#, &u));
        assert!(m(r#"emails.type ne "other""#, &u));
    }

    #[test]
    fn not_negates() {
        let u = user();
        assert!(m(r#"not (userName eq "nobody")"#, &u));
        assert!(!m(r#"not (userName pr)"#, &u));
        assert!(m(r#"not (not (userName pr))"#, &u));
    }

    #[test]
    fn mismatched_types_never_match() {
        let u = user();
        assert!(!m("userName eq 5", &u));
        assert!(!m(r#"x-count eq "7""#, &u));
        assert!(!m("title eq true", &u));
        assert!(!m(r#"name eq "Barbara""#, &u));
    }

    #[test]
    fn numbers() {
        let u = user();
        assert!(m("x-count eq 7", &u));
        assert!(m("x-count eq 7.0", &u));
        assert!(m("x-count gt 6.5", &u));
        assert!(m("x-count le 7", &u));
        assert!(!m("x-count lt -1", &u));
        assert!(!m("x-count co 7", &u));
    }

    #[test]
    fn enterprise_extension_attributes() {
        let u = user();
        assert!(m(&format!(r#"{ENT}:department eq "tour operations""#), &u));
        assert!(m(
            &format!(r#"{}:DEPARTMENT eq "Tour Operations""#, ENT.to_uppercase()),
            &u
        ));
        assert!(m(&format!(r#"{ENT}:employeeNumber eq "701984""#), &u));
        assert!(m(
            &format!(r#"{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &u
        ));
        assert!(m(
            &format!(r#"{ENT}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &u
        ));
        assert!(m(&format!(r#"{ENT}:manager.displayName co "smith""#), &u));
        // Unqualified extension attributes are not looked up in the extension.
        assert!(!m(r#"department eq "Tour Operations""#, &u));
    }

    #[test]
    fn custom_extension_attributes() {
        let u = user();
        assert!(m(&format!(r#"{CUSTOM}:badgeColor eq "blue""#), &u));
        assert!(m(&format!(r#"{CUSTOM}:floor ge 3"#), &u));
        assert!(!m(&format!(r#"{CUSTOM}:missing pr"#), &u));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:Other:2.0:User:badgeColor pr"#,
            &u
        ));
    }

    #[test]
    fn core_urn_prefix_is_the_top_level() {
        let u = user();
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b""#,
            &u
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
            &u
        ));
    }

    #[test]
    fn group_membership_filters() {
        let g = json!({
            "id": "g1",
            "displayName": "Sales",
            "members": [{"value": "u1", "display": "A"}, {"value": "u2"}]
        });
        let gm = |f: &str| matches(&p(f), &g, ResourceKind::Group);
        assert!(gm(r#"id eq "g1" and members eq "u2""#));
        assert!(!gm(r#"id eq "g1" and members eq "u3""#));
        assert!(gm(r#"members[value eq "u1"]"#));
        assert!(!gm(r#"members[value eq "U1"]"#));
        assert!(gm(r#"displayName eq "sales""#));
        assert!(gm(r#"members.value eq "u1""#));
    }

    #[test]
    fn value_filter_on_plain_values() {
        let r = json!({"tags": ["red", "Blue"]});
        assert!(matches(
            &p(r#"tags[value eq "blue"]"#),
            &r,
            ResourceKind::User
        ));
        assert!(matches(&p(r#"tags eq "RED""#), &r, ResourceKind::User));
        assert!(!matches(
            &p(r#"tags[value eq "green"]"#),
            &r,
            ResourceKind::User
        ));
    }

    #[test]
    fn matches_value_on_one_element() {
        let f = p(r#"type eq "work""#);
        let emails = resolve(ResourceKind::User, None, "emails", None);
        assert!(matches_value(
            &f,
            &json!({"type": "WORK", "value": "x"}),
            emails
        ));
        assert!(!matches_value(&f, &json!({"type": "home"}), emails));
        assert!(!matches_value(&f, &json!("work"), emails));
    }

    #[test]
    fn non_object_resources_match_nothing() {
        for r in [json!(null), json!([1, 2]), json!("userName")] {
            assert!(!matches(&p("userName pr"), &r, ResourceKind::User));
            assert!(matches(&p(r#"userName ne "x""#), &r, ResourceKind::User));
        }
    }

    /// One resource, many filters, the expected answer for each.
    #[test]
    fn evaluation_table() {
        let u = user();
        let cases: &[(&str, bool)] = &[
            (r#"userName eq "bjensen@example.com""#, true),
            (r#"userName ne "bjensen@example.com""#, false),
            (r#"userName co "JENSEN""#, true),
            (r#"userName sw "x""#, false),
            (r#"userName ew "com""#, true),
            (r#"userName gt "a""#, true),
            (r#"userName lt "a""#, false),
            (r#"displayName eq "babs jensen""#, true),
            (
                r#"name.givenName eq "Barbara" and name.familyName co "mal""#,
                true,
            ),
            (
                r#"name.givenName eq "Barbara" and name.familyName co "xyz""#,
                false,
            ),
            (r#"name.givenName eq "x" or name.familyName sw "o'""#, true),
            (r#"not (name.givenName eq "x") and active eq true"#, true),
            (
                r#"(userType eq "Employee" or userType eq "Intern") and active eq true"#,
                true,
            ),
            (
                r#"userType eq "Employee" or userType eq "Intern" and active eq false"#,
                true,
            ),
            (
                r#"(userType eq "Employee" or userType eq "Intern") and active eq false"#,
                false,
            ),
            (r#"emails[type eq "work"]"#, true),
            (r#"emails[type eq "work" and primary eq true]"#, true),
            (r#"emails[type eq "home" and primary eq true]"#, false),
            (r#"emails[primary pr]"#, true),
            (r#"emails[display pr]"#, false),
            (r#"emails[value ew ".org"] and ims[value co "foo"]"#, true),
            (r#"emails.primary eq true"#, true),
            (r#"emails.value sw "babs""#, true),
            (r#"ims.type eq "XMPP""#, true),
            (r#"meta.resourceType eq "User""#, true),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.created lt "2010-01-23T04:56:23Z""#, true),
            (r#"meta.created gt "2010-01-23T04:56:22Z""#, false),
            (r#"meta.created eq "2010-01-23T04:56:22.000Z""#, true),
            (r#"meta.created eq "not a date""#, false),
            (r#"externalId sw "BJ""#, true),
            (r#"externalId sw "bj""#, false),
            (r#"id pr"#, true),
            (r#"password pr"#, false),
            (r#"x-count ge 7 and x-count le 7"#, true),
            (r#"x-count ne 7"#, false),
            (r#"x-count ne 8"#, true),
            (
                r#"schemas eq "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER""#,
                true,
            ),
            (r#"schemas co "enterprise""#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "7""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber lt "8""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr"#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter ne "x""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:badgeColor co "LU""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:customext:2.0:user:BADGECOLOR eq "blue""#,
                true,
            ),
            (
                r#"active eq true and emails[type eq "work"] and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#,
                true,
            ),
            (
                r#"nickName eq "x" or nickName pr or not (nickName pr)"#,
                true,
            ),
        ];
        for (f, expected) in cases {
            assert_eq!(m(f, &u), *expected, "{f}");
        }
    }

    // --- sorting --------------------------------------------------------------------------

    #[test]
    fn sort_keys_order_strings_case_insensitively() {
        let a = json!({"userName": "alice"});
        let b = json!({"userName": "Bob"});
        let path = AttrPath::new("userName");
        let ka = sort_key(&a, &path, ResourceKind::User);
        let kb = sort_key(&b, &path, ResourceKind::User);
        assert!(ka < kb);
        assert_eq!(kb, Some(SortKey::String("bob".into())));
    }

    #[test]
    fn sort_keys_keep_case_for_case_exact() {
        let a = json!({"externalId": "a"});
        let b = json!({"externalId": "B"});
        let path = AttrPath::new("externalId");
        let ka = sort_key(&a, &path, ResourceKind::User).expect("key");
        let kb = sort_key(&b, &path, ResourceKind::User).expect("key");
        assert!(kb < ka, "uppercase sorts first in a case-exact comparison");
    }

    #[test]
    fn sort_keys_use_primary_then_first() {
        let u = user();
        let k = sort_key(&u, &AttrPath::new("emails"), ResourceKind::User);
        assert_eq!(k, Some(SortKey::String("bjensen@example.com".into())));
        let k = sort_key(
            &u,
            &AttrPath::new("emails").with_sub("type"),
            ResourceKind::User,
        );
        assert_eq!(k, Some(SortKey::String("work".into())));
        let no_primary = json!({"emails": [{"value": "Z@x"}, {"value": "a@x"}]});
        let k = sort_key(
            &no_primary,
            &AttrPath::new("emails").with_sub("value"),
            ResourceKind::User,
        );
        assert_eq!(k, Some(SortKey::String("z@x".into())));
    }

    #[test]
    fn sort_keys_dates_numbers_missing() {
        let early = json!({"meta": {"lastModified": "2020-01-01T10:00:00+05:00"}});
        let late = json!({"meta": {"lastModified": "2020-01-01T06:00:00Z"}});
        let path = AttrPath::new("meta").with_sub("lastModified");
        let ke = sort_key(&early, &path, ResourceKind::User).expect("key");
        let kl = sort_key(&late, &path, ResourceKind::User).expect("key");
        assert!(ke < kl, "05:00Z is before 06:00Z");
        assert!(matches!(ke, SortKey::DateTime(_)));
        assert_eq!(sort_key(&json!({}), &path, ResourceKind::User), None);
        assert!(SortKey::Number(2.0) < SortKey::Number(10.0));
        assert!(SortKey::Number(1e9) < SortKey::String("0".into()));
        let ext = sort_key(
            &user(),
            &AttrPath::with_urn(ENT, "department"),
            ResourceKind::User,
        );
        assert_eq!(ext, Some(SortKey::String("tour operations".into())));
        let active = sort_key(
            &json!({"active": "True"}),
            &AttrPath::new("active"),
            ResourceKind::User,
        );
        assert_eq!(active, Some(SortKey::Bool(true)));
    }
}
