//! One operation applied to a resource document: what its path designates (checked against the
//! schema), the container it lives in (core or an extension, listed in `schemas`), and the
//! whole-attribute and sub-attribute cases. Value filters are in `multi`.

use serde_json::{Map, Value};

use super::multi::{
    canonical, clear_other_primaries, filtered, has_content, is_primary, remove_listed,
};
use super::normalise::{normalize_manager, normalize_value};
use super::request::{PatchOpKind, PatchOperation};
use super::{PatchError, ScimType, fail};
use crate::scim::filter::{
    Filter, FilterError, PatchPath, get_ci, is_present, key_ci, matches_value, parse_patch_path,
};
use crate::scim::schema::{
    AttributeDef, ENTERPRISE_USER_SCHEMA, Mutability, ResourceKind, resolve,
};

pub(super) fn apply_operation(
    doc: &mut Map<String, Value>,
    op: &PatchOperation,
    kind: ResourceKind,
) -> Result<(), PatchError> {
    match op.path.as_deref() {
        None => match op.op {
            PatchOpKind::Remove => fail(ScimType::NoTarget, "a remove operation needs a path"),
            _ => match &op.value {
                Some(Value::Object(obj)) => apply_object(doc, op.op, None, obj, kind),
                _ => fail(
                    ScimType::InvalidValue,
                    "an add or replace without a path needs an object of attributes as value",
                ),
            },
        },
        Some(path) => {
            if let Some(urn) = schema_urn_path(doc, path, kind) {
                return apply_schema_object(doc, op.op, &urn, op.value.as_ref(), kind);
            }
            let pp = parse_patch_path(path).map_err(|e| bad_path(path, e))?;
            apply_path(doc, op.op, &pp, op.value.as_ref(), kind)
        }
    }
}

pub(super) fn bad_path(path: &str, e: FilterError) -> PatchError {
    PatchError::new(ScimType::InvalidPath, format!("invalid path '{path}': {e}"))
}

/// A path that names a whole schema (`urn:...:enterprise:2.0:User`) rather than an attribute.
/// Custom extensions are recognised by being listed in `schemas` or ending in the resource
/// type name, as Entra's `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User` do.
pub(super) fn schema_urn_path(
    doc: &Map<String, Value>,
    path: &str,
    kind: ResourceKind,
) -> Option<String> {
    if path.contains('[') || !path.get(..4)?.eq_ignore_ascii_case("urn:") {
        return None;
    }
    if let Some(s) = kind.schema(path) {
        return Some(s.id.to_string());
    }
    let suffix = format!(":{}", kind.name());
    let ends_with_kind = path.len() > suffix.len()
        && path
            .get(path.len() - suffix.len()..)
            .is_some_and(|t| t.eq_ignore_ascii_case(&suffix));
    (ends_with_kind || listed_schema(doc, path)).then(|| path.to_string())
}

fn listed_schema(doc: &Map<String, Value>, urn: &str) -> bool {
    key_ci(doc, "schemas")
        .and_then(|k| doc.get(k))
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
        })
}

/// Add/replace without path: each key of the value object is a path of its own (plain, dotted,
/// URN-qualified, even filtered), or a schema URN holding an object of that schema's attributes.
pub(super) fn apply_object(
    doc: &mut Map<String, Value>,
    op: PatchOpKind,
    urn: Option<&str>,
    obj: &Map<String, Value>,
    kind: ResourceKind,
) -> Result<(), PatchError> {
    for (key, value) in obj {
        if urn.is_none() {
            if key.eq_ignore_ascii_case("schemas") {
                // The schema list follows from the attributes written; clients that send a whole
                // resource as the value include it, and it must not fail the request.
                continue;
            }
            if value.is_object()
                && let Some(schema) = schema_urn_path(doc, key, kind)
            {
                apply_schema_object(doc, op, &schema, Some(value), kind)?;
                continue;
            }
        }
        let path = match urn {
            Some(u) => format!("{u}:{key}"),
            None => key.clone(),
        };
        let pp = parse_patch_path(&path).map_err(|e| bad_path(&path, e))?;
        apply_path(doc, op, &pp, Some(value), kind)?;
    }
    Ok(())
}

pub(super) fn apply_schema_object(
    doc: &mut Map<String, Value>,
    op: PatchOpKind,
    urn: &str,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), PatchError> {
    let core = kind.is_core_urn(urn);
    match (op, value) {
        (PatchOpKind::Remove, _) | (_, None | Some(Value::Null)) => {
            if core {
                return fail(ScimType::InvalidPath, "the core schema cannot be removed");
            }
            if let Some(k) = key_ci(doc, urn).cloned() {
                doc.remove(&k);
            }
            unlist_schema(doc, urn);
            Ok(())
        }
        (_, Some(Value::Object(obj))) => {
            let inner = if core { None } else { Some(urn) };
            apply_object(doc, op, inner, obj, kind)?;
            tidy_extensions(doc);
            Ok(())
        }
        _ => fail(
            ScimType::InvalidValue,
            format!("the value for '{urn}' must be an object of its attributes"),
        ),
    }
}

/// What a parsed path designates, checked against the schema.
pub(super) struct Target<'p> {
    /// Extension URN; `None` for the core schema and the common attributes.
    ext: Option<String>,
    pub(super) attr: String,
    pub(super) def: Option<&'static AttributeDef>,
    sub: Option<String>,
    pub(super) sub_def: Option<&'static AttributeDef>,
    filter: Option<&'p Filter>,
    pub(super) text: String,
}

impl Target<'_> {
    fn is_manager(&self) -> bool {
        self.ext
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA))
            && self.attr.eq_ignore_ascii_case("manager")
    }

    fn mutability(&self) -> Mutability {
        match (self.def, self.sub_def) {
            (Some(d), _) if d.mutability == Mutability::ReadOnly => Mutability::ReadOnly,
            (_, Some(s)) => s.mutability,
            (Some(d), None) => d.mutability,
            (None, None) => Mutability::ReadWrite,
        }
    }
}

fn target<'p>(pp: &'p PatchPath, kind: ResourceKind) -> Result<Target<'p>, PatchError> {
    let a = &pp.attr;
    let text = match (&pp.filter, &pp.sub_after_filter) {
        (Some(f), Some(s)) => format!("{a}[{f}].{s}"),
        (Some(f), None) => format!("{a}[{f}]"),
        _ => a.to_string(),
    };
    let ext = a.urn.clone().filter(|u| !kind.is_core_urn(u));
    let ext_known = match &ext {
        None => true,
        Some(u) => kind.known_extension(u).is_some(),
    };
    // The parent attribute's definition; the sub-attribute's is looked up from it below.
    let def = resolve(kind, a.urn.as_deref(), &a.attr, None);
    if def.is_none() && ext_known {
        return fail(
            ScimType::InvalidPath,
            format!("'{text}' is not an attribute of a {}", kind.name()),
        );
    }
    let sub = a.sub.clone().or_else(|| pp.sub_after_filter.clone());
    let sub_def = match (&sub, def) {
        (Some(s), Some(d)) => {
            let Some(sd) = d.sub(s) else {
                return fail(
                    ScimType::InvalidPath,
                    format!("'{text}': '{}' has no sub-attribute '{s}'", d.name),
                );
            };
            Some(sd)
        }
        _ => None,
    };
    if pp.filter.is_some() && def.is_some_and(|d| !d.multi_valued) {
        return fail(
            ScimType::InvalidPath,
            format!("'{text}': a value filter needs a multi-valued attribute"),
        );
    }
    Ok(Target {
        ext,
        attr: def.map_or_else(|| a.attr.clone(), |d| d.name.to_string()),
        def,
        sub: sub_def.map(|d| d.name.to_string()).or(sub),
        sub_def,
        filter: pp.filter.as_ref(),
        text,
    })
}

pub(super) fn apply_path(
    doc: &mut Map<String, Value>,
    op: PatchOpKind,
    pp: &PatchPath,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), PatchError> {
    let t = target(pp, kind)?;
    // An explicit null (or, for replace, no value at all) means "no value": RFC 7643 §2.5.
    let value = value.filter(|v| !v.is_null());
    let op = match (op, value) {
        (PatchOpKind::Add, None) => {
            return fail(
                ScimType::InvalidValue,
                format!("add to '{}' needs a non-null value", t.text),
            );
        }
        (PatchOpKind::Replace, None) => PatchOpKind::Remove,
        (op, _) => op,
    };
    if op == PatchOpKind::Remove
        && value.is_none()
        && t.filter.is_none()
        && t.sub.is_none()
        && t.def.is_some_and(|d| d.required)
    {
        return fail(
            ScimType::InvalidValue,
            format!("'{}' is required and cannot be removed", t.attr),
        );
    }
    let mutability = t.mutability();
    if matches!(mutability, Mutability::ReadOnly | Mutability::Immutable) {
        // Writing the value a read-only or immutable attribute already has is allowed (clients
        // echo whole resources); anything that changes it is refused.
        let before = doc.clone();
        let had_value = target_had_value(doc, &t);
        apply_target(doc, op, &t, value, kind)?;
        tidy_extensions(doc);
        if *doc != before && (mutability == Mutability::ReadOnly || had_value) {
            let what = if mutability == Mutability::ReadOnly {
                "read-only"
            } else {
                "immutable"
            };
            return fail(
                ScimType::Mutability,
                format!("'{}' is {what} and cannot be changed", t.text),
            );
        }
        return Ok(());
    }
    apply_target(doc, op, &t, value, kind)?;
    tidy_extensions(doc);
    Ok(())
}

/// Whether the values a target designates (after its filter, at its sub-attribute) exist.
fn target_had_value(doc: &Map<String, Value>, t: &Target<'_>) -> bool {
    let Some(v) = attribute_value(doc, t) else {
        return false;
    };
    let values: Vec<&Value> = match v {
        Value::Array(a) => a
            .iter()
            .filter(|e| t.filter.is_none_or(|f| matches_value(f, e, t.def)))
            .collect(),
        other => vec![other],
    };
    values.into_iter().any(|e| match &t.sub {
        Some(s) => get_ci(e, s).is_some_and(is_present),
        None => is_present(e),
    })
}

fn attribute_value<'d>(doc: &'d Map<String, Value>, t: &Target<'_>) -> Option<&'d Value> {
    let container = match &t.ext {
        None => doc,
        Some(u) => doc.get(key_ci(doc, u)?)?.as_object()?,
    };
    container.get(key_ci(container, &t.attr)?)
}

fn apply_target(
    doc: &mut Map<String, Value>,
    op: PatchOpKind,
    t: &Target<'_>,
    value: Option<&Value>,
    kind: ResourceKind,
) -> Result<(), PatchError> {
    let Some(container) = container_mut(doc, t.ext.as_deref(), kind, op != PatchOpKind::Remove)
    else {
        // Removing from an extension the resource does not have: nothing to do.
        return Ok(());
    };
    let name = attribute_key(container, t);
    match (t.filter, t.sub.as_deref()) {
        (None, None) => whole_attribute(container, &name, op, t, value),
        (None, Some(sub)) => sub_attribute(container, &name, op, t, sub, value),
        (Some(f), sub) => filtered(container, &name, op, t, f, sub, value),
    }
}

/// The key an attribute is stored under. Known attributes are moved to their schema spelling
/// (`USERNAME` → `userName`) so responses stay canonical; unknown ones keep the existing spelling.
fn attribute_key(container: &mut Map<String, Value>, t: &Target<'_>) -> String {
    let existing = key_ci(container, &t.attr).cloned();
    match (existing, t.def) {
        (Some(k), Some(d)) if k != d.name => {
            if let Some(v) = container.remove(&k) {
                container.insert(d.name.to_string(), v);
            }
            d.name.to_string()
        }
        (Some(k), _) => k,
        (None, _) => t.attr.clone(),
    }
}

/// Sub-attribute keys get the same treatment as attribute keys.
pub(super) fn sub_key(
    obj: &mut Map<String, Value>,
    name: &str,
    def: Option<&AttributeDef>,
) -> String {
    let canonical = def.map_or(name, |d| d.name);
    match key_ci(obj, name).cloned() {
        Some(k) if def.is_some() && k != canonical => {
            if let Some(v) = obj.remove(&k) {
                obj.insert(canonical.to_string(), v);
            }
            canonical.to_string()
        }
        Some(k) => k,
        None => canonical.to_string(),
    }
}

fn container_mut<'d>(
    doc: &'d mut Map<String, Value>,
    ext: Option<&str>,
    kind: ResourceKind,
    create: bool,
) -> Option<&'d mut Map<String, Value>> {
    let Some(urn) = ext else {
        return Some(doc);
    };
    let known = kind.known_extension(urn).map(|s| s.id);
    let key = match (key_ci(doc, urn).cloned(), known) {
        // A known extension stored under another spelling moves to its schema id.
        (Some(k), Some(id)) if k != id => {
            if let Some(v) = doc.remove(&k) {
                doc.insert(id.to_string(), v);
            }
            id.to_string()
        }
        (Some(k), _) => k,
        (None, _) if create => {
            let canonical = known.unwrap_or(urn).to_string();
            doc.insert(canonical.clone(), Value::Object(Map::new()));
            canonical
        }
        (None, _) => return None,
    };
    if create {
        list_schema(doc, kind, &key);
    }
    let slot = doc.get_mut(&key)?;
    if !slot.is_object() {
        if !create {
            return None;
        }
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Entra writes custom extension attributes without listing the URN in `schemas`; a resource
/// that carries an extension must list it (RFC 7643 §3).
fn list_schema(doc: &mut Map<String, Value>, kind: ResourceKind, urn: &str) {
    let key = key_ci(doc, "schemas")
        .cloned()
        .unwrap_or_else(|| "schemas".to_string());
    let core = || Value::Array(vec![Value::from(kind.core_schema().id)]);
    let slot = doc.entry(key).or_insert_with(core);
    if !slot.is_array() {
        *slot = core();
    }
    if let Value::Array(schemas) = slot
        && !schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        schemas.push(Value::from(urn));
    }
}

fn unlist_schema(doc: &mut Map<String, Value>, urn: &str) {
    if let Some(k) = key_ci(doc, "schemas").cloned()
        && let Some(Value::Array(a)) = doc.get_mut(&k)
    {
        a.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
    }
}

/// Drops extension objects that became empty, and their URN from `schemas`.
fn tidy_extensions(doc: &mut Map<String, Value>) {
    let empty: Vec<String> = doc
        .iter()
        .filter(|(k, v)| {
            k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
                && v.as_object().is_some_and(Map::is_empty)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in empty {
        doc.remove(&k);
        unlist_schema(doc, &k);
    }
}

fn is_multi(t: &Target<'_>, current: Option<&Value>, new: Option<&Value>) -> bool {
    match t.def {
        Some(d) => d.multi_valued,
        None => current.is_some_and(Value::is_array) || new.is_some_and(Value::is_array),
    }
}

fn whole_attribute(
    container: &mut Map<String, Value>,
    name: &str,
    op: PatchOpKind,
    t: &Target<'_>,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let multi = is_multi(t, container.get(name), value);
    let Some(value) = value.filter(|_| op != PatchOpKind::Remove) else {
        // Remove. Entra (without aadOptscim062020) removes values of a multi-valued attribute
        // by listing them in `value`.
        match value {
            Some(v) if multi => remove_listed(container, name, v, t.def),
            _ => {
                container.remove(name);
            }
        }
        return Ok(());
    };
    if t.is_manager() {
        match normalize_manager(value)? {
            Some(m) => container.insert(name.to_string(), m),
            None => container.remove(name),
        };
        return Ok(());
    }
    if multi {
        let items: Vec<Value> = match value {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            other => vec![other],
        }
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| normalize_value(v, t.def, &t.text))
        .collect::<Result<_, _>>()?;
        let mut arr = match (op, container.remove(name)) {
            (PatchOpKind::Add, Some(Value::Array(a))) => a,
            (PatchOpKind::Add, Some(old)) if !old.is_null() => vec![old],
            _ => Vec::new(),
        };
        let mut last_primary = None;
        // Values already present, by canonical text: a linear pass instead of a search of the
        // whole array per new value (40,000 phone numbers took seconds).
        let mut index: std::collections::HashMap<String, usize> = arr
            .iter()
            .enumerate()
            .map(|(i, e)| (canonical(e), i))
            .collect();
        for item in items {
            let key = canonical(&item);
            let pos = match index.get(&key) {
                Some(&p) => p,
                None => {
                    arr.push(item);
                    index.insert(key, arr.len() - 1);
                    arr.len() - 1
                }
            };
            if is_primary(&arr[pos]) {
                last_primary = Some(pos);
            }
        }
        if let Some(keep) = last_primary {
            clear_other_primaries(&mut arr, keep);
        }
        if !arr.is_empty() {
            container.insert(name.to_string(), Value::Array(arr));
        }
        return Ok(());
    }
    let complex = match t.def {
        Some(d) => d.is_complex(),
        None => value.is_object() && container.get(name).is_some_and(Value::is_object),
    };
    if complex {
        // RFC 7644 §3.5.2.1/§3.5.2.3: the sub-attributes given replace theirs, others stay.
        let Value::Object(new) = normalize_value(value, t.def, &t.text)? else {
            return fail(
                ScimType::InvalidValue,
                format!("'{}' is complex: its value must be an object", t.text),
            );
        };
        let slot = container
            .entry(name.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(obj) = slot {
            merge_into(obj, &new, t.def);
            if obj.is_empty() {
                container.remove(name);
            }
        }
        return Ok(());
    }
    let v = normalize_value(value, t.def, &t.text)?;
    container.insert(name.to_string(), v);
    Ok(())
}

pub(super) fn merge_into(
    obj: &mut Map<String, Value>,
    new: &Map<String, Value>,
    def: Option<&AttributeDef>,
) {
    for (k, v) in new {
        let sub_def = def.and_then(|d| d.sub(k));
        let key = sub_key(obj, k, sub_def);
        if v.is_null() {
            obj.remove(&key);
        } else {
            obj.insert(key, v.clone());
        }
    }
}

fn sub_attribute(
    container: &mut Map<String, Value>,
    name: &str,
    op: PatchOpKind,
    t: &Target<'_>,
    sub: &str,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    if t.is_manager() && sub.eq_ignore_ascii_case("value") {
        let id = match value.filter(|_| op != PatchOpKind::Remove) {
            None => None,
            Some(v) => normalize_manager(v)?,
        };
        match id {
            Some(m) => container.insert(name.to_string(), m),
            None => container.remove(name),
        };
        return Ok(());
    }
    let multi = is_multi(t, container.get(name), None);
    let new = match value.filter(|_| op != PatchOpKind::Remove) {
        Some(v) => Some(normalize_value(v, t.sub_def, &t.text)?),
        None => None,
    };
    if multi {
        match (container.get_mut(name), new) {
            (Some(Value::Array(arr)), None) => {
                for el in arr.iter_mut() {
                    if let Value::Object(o) = el
                        && let Some(k) = key_ci(o, sub).cloned()
                    {
                        o.remove(&k);
                    }
                }
                arr.retain(has_content);
                if arr.is_empty() {
                    container.remove(name);
                }
            }
            (_, None) => {}
            (Some(Value::Array(arr)), Some(v)) if !arr.is_empty() => {
                // `emails.value` without a filter targets every value (RFC 7644 §3.5.2.3).
                for el in arr.iter_mut() {
                    if let Value::Object(o) = el {
                        let k = sub_key(o, sub, t.sub_def);
                        o.insert(k, v.clone());
                    }
                }
            }
            (_, Some(v)) => {
                let mut el = Map::new();
                el.insert(sub.to_string(), v);
                container.insert(name.to_string(), Value::Array(vec![Value::Object(el)]));
            }
        }
        return Ok(());
    }
    match new {
        None => {
            if let Some(Value::Object(o)) = container.get_mut(name) {
                if let Some(k) = key_ci(o, sub).cloned() {
                    o.remove(&k);
                }
                if o.is_empty() {
                    container.remove(name);
                }
            }
        }
        Some(v) => {
            let slot = container
                .entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(o) = slot {
                let k = sub_key(o, sub, t.sub_def);
                o.insert(k, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use serde_json::json;

    // --- pathless values (Entra: several attributes without a path) ------------------------------

    #[test]
    fn entra_pathless_replace_with_path_keys() {
        let r = ok(
            &base(),
            json!([{
                "op": "replace",
                "value": {
                    "name.givenName": "A",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "X",
                    "active": false,
                    "displayName": "Alice S",
                    "emails[type eq \"work\"].value": "a@contoso.com"
                }
            }]),
        );
        assert_eq!(r["name"], json!({"givenName": "A", "familyName": "Smith"}));
        assert_eq!(r[ENT]["department"], "X");
        assert_eq!(r["active"], false);
        assert_eq!(r["displayName"], "Alice S");
        assert_eq!(emails_of_type(&r, "work")[0]["value"], "a@contoso.com");
        assert_eq!(emails_of_type(&r, "home").len(), 1);
        assert!(
            r["schemas"]
                .as_array()
                .is_some_and(|s| s.contains(&json!(ENT)))
        );
    }

    #[test]
    fn pathless_value_with_urn_key_holding_object() {
        let r = ok(
            &base(),
            json!([{
                "op": "Add",
                "value": {
                    ENT: {"department": "Sales", "manager": {"value": "m1"}, "employeeNumber": 42},
                    CUSTOM: {"badge": "B-7"}
                }
            }]),
        );
        assert_eq!(
            r[ENT],
            json!({"department": "Sales", "manager": {"value": "m1"}, "employeeNumber": "42"})
        );
        assert_eq!(r[CUSTOM], json!({"badge": "B-7"}));
        let schemas = r["schemas"].as_array().expect("schemas");
        assert!(schemas.contains(&json!(ENT)));
        assert!(schemas.contains(&json!(CUSTOM)));
    }

    #[test]
    fn pathless_value_with_core_urn_key_holding_object() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "value": {CORE: {"title": "CEO"}}}]),
        );
        assert_eq!(r["title"], "CEO");
        assert!(r.get(CORE).is_none());
    }

    #[test]
    fn pathless_add_rfc_example() {
        // RFC 7644 §3.5.2.1: add emails and a nickname without a path.
        let r = ok(
            &base(),
            json!([{
                "op": "add",
                "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickName": "Babs"}
            }]),
        );
        assert_eq!(r["nickName"], "Babs");
        assert_eq!(r["emails"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn pathless_value_must_be_an_object() {
        assert_eq!(
            err_type(&base(), json!([{"op": "replace", "value": "x"}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            err_type(&base(), json!([{"op": "add"}])),
            ScimType::InvalidValue
        );
    }

    #[test]
    fn pathless_value_ignores_schemas_and_unchanged_id() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "value": {"schemas": ["x"], "id": "u1", "title": "T"}}]),
        );
        assert_eq!(r["schemas"], json!([CORE]));
        assert_eq!(r["title"], "T");
    }

    #[test]
    fn remove_without_path_is_no_target() {
        assert_eq!(
            err_type(&base(), json!([{"op": "remove"}])),
            ScimType::NoTarget
        );
        assert_eq!(
            err_type(&base(), json!([{"op": "remove", "value": {"title": "x"}}])),
            ScimType::NoTarget
        );
    }

    // --- single and multi-valued -----------------------------------------------------------------

    #[test]
    fn add_on_single_valued_replaces() {
        let mut u = base();
        u["title"] = json!("Engineer");
        let r = ok(
            &u,
            json!([{"op": "Add", "path": "title", "value": "Manager"}]),
        );
        assert_eq!(r["title"], "Manager");
    }

    #[test]
    fn add_on_multi_valued_appends_and_dedupes() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": "emails", "value": [
                {"value": "alice@home.example", "type": "home"},
                {"value": "third@x", "type": "other"},
                {"value": "third@x", "type": "other"}
            ]}]),
        );
        assert_eq!(r["emails"].as_array().map(Vec::len), Some(3));
        assert_eq!(r["emails"][2], json!({"value": "third@x", "type": "other"}));
    }

    #[test]
    fn add_single_object_to_multi_valued() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": "emails", "value": {"value": "x@y", "type": "other"}}]),
        );
        assert_eq!(r["emails"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn replace_multi_valued_replaces_all() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x", "type": "work"}]}]),
        );
        assert_eq!(r["emails"], json!([{"value": "only@x", "type": "work"}]));
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "emails", "value": []}]),
        );
        assert!(r.get("emails").is_none());
    }

    #[test]
    fn sub_attribute_of_multi_valued_without_filter() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "emails.display", "value": "D"}]),
        );
        assert!(
            r["emails"]
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e["display"] == "D"))
        );
        let mut u = base();
        u.as_object_mut().map(|o| o.remove("emails"));
        let r = ok(
            &u,
            json!([{"op": "add", "path": "emails.value", "value": "v@x"}]),
        );
        assert_eq!(r["emails"], json!([{"value": "v@x"}]));
        let r = ok(&base(), json!([{"op": "remove", "path": "emails.primary"}]));
        assert!(
            r["emails"]
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e.get("primary").is_none()))
        );
    }

    // --- complex single-valued -------------------------------------------------------------------

    #[test]
    fn sub_attribute_paths() {
        let r = ok(
            &base(),
            json!([
                {"op": "Replace", "path": "name.givenName", "value": "Alicia"},
                {"op": "Add", "path": "name.middleName", "value": "M"}
            ]),
        );
        assert_eq!(
            r["name"],
            json!({"givenName": "Alicia", "familyName": "Smith", "middleName": "M"})
        );
        let r = ok(
            &base(),
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]),
        );
        assert!(
            r.get("name").is_none(),
            "an emptied complex attribute is removed"
        );
    }

    #[test]
    fn replace_complex_merges_sub_attributes() {
        let r = ok(
            &base(),
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Jones", "formatted": null}}]),
        );
        assert_eq!(
            r["name"],
            json!({"givenName": "Alice", "familyName": "Jones"})
        );
    }

    #[test]
    fn sub_attribute_creates_parent() {
        let mut u = base();
        u.as_object_mut().map(|o| o.remove("name"));
        let r = ok(
            &u,
            json!([{"op": "replace", "path": "name.familyName", "value": "Smith"}]),
        );
        assert_eq!(r["name"], json!({"familyName": "Smith"}));
    }

    // --- enterprise and custom extensions --------------------------------------------------------

    #[test]
    fn enterprise_attributes_by_urn_path() {
        let r = ok(
            &base(),
            json!([
                {"op": "Add", "path": format!("{ENT}:department"), "value": "Sales"},
                {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "E-1"}
            ]),
        );
        assert_eq!(
            r[ENT],
            json!({"department": "Sales", "employeeNumber": "E-1"})
        );
        assert_eq!(r["schemas"], json!([CORE, ENT]));
    }

    #[test]
    fn extension_key_in_other_case_is_canonicalised() {
        let mut u = base();
        u["URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER"] =
            json!({"Department": "Old"});
        let r = ok(
            &u,
            json!([{"op": "replace", "path": format!("{ENT}:department"), "value": "New"}]),
        );
        assert_eq!(r[ENT], json!({"department": "New"}));
        assert_eq!(
            r.as_object().map(|o| o.len()),
            u.as_object().map(|o| o.len())
        );
    }

    #[test]
    fn urn_paths_ignore_case_and_use_canonical_keys() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": format!("{}:DEPARTMENT", ENT.to_uppercase()), "value": "Sales"}]),
        );
        assert_eq!(r[ENT], json!({"department": "Sales"}));
        assert_eq!(r["schemas"], json!([CORE, ENT]));
    }

    #[test]
    fn manager_display_name_is_read_only() {
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "Add", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}])
            ),
            ScimType::Mutability
        );
    }

    #[test]
    fn extension_container_path() {
        let r = ok(
            &base(),
            json!([{"op": "add", "path": ENT, "value": {"department": "D", "costCenter": "C"}}]),
        );
        assert_eq!(r[ENT], json!({"department": "D", "costCenter": "C"}));
        let r = ok(&r, json!([{"op": "remove", "path": ENT}]));
        assert!(r.get(ENT).is_none());
        assert_eq!(r["schemas"], json!([CORE]));
        assert_eq!(
            err_type(&base(), json!([{"op": "remove", "path": CORE}])),
            ScimType::InvalidPath
        );
    }

    #[test]
    fn custom_extension_attribute_is_written_and_listed() {
        let r = ok(
            &base(),
            json!([{"op": "Add", "path": format!("{CUSTOM}:costCode"), "value": "CC-9"}]),
        );
        assert_eq!(r[CUSTOM], json!({"costCode": "CC-9"}));
        assert_eq!(r["schemas"], json!([CORE, CUSTOM]));
        let r = ok(
            &r,
            json!([{"op": "Replace", "path": format!("{}:COSTCODE", CUSTOM.to_lowercase()), "value": "CC-10"}]),
        );
        assert_eq!(
            r[CUSTOM],
            json!({"costCode": "CC-10"}),
            "existing spelling kept for unknown attributes"
        );
        let r = ok(
            &r,
            json!([{"op": "Remove", "path": format!("{CUSTOM}:costCode")}]),
        );
        assert!(r.get(CUSTOM).is_none());
        assert_eq!(r["schemas"], json!([CORE]));
    }

    #[test]
    fn schemas_created_when_missing() {
        let mut u = base();
        u.as_object_mut().map(|o| o.remove("schemas"));
        let r = ok(
            &u,
            json!([{"op": "Add", "path": format!("{CUSTOM}:x"), "value": "y"}]),
        );
        assert_eq!(r["schemas"], json!([CORE, CUSTOM]));
    }

    // --- names, paths, mutability ----------------------------------------------------------------

    #[test]
    fn attribute_names_are_case_insensitive_and_canonicalised() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": "USERNAME", "value": "new@contoso.com"}]),
        );
        assert_eq!(r["userName"], "new@contoso.com");
        let mut u = base();
        let v = u
            .as_object_mut()
            .and_then(|o| o.remove("userName"))
            .expect("userName");
        u["UserName"] = v;
        let r = ok(
            &u,
            json!([{"op": "Replace", "path": "username", "value": "n@c"}]),
        );
        assert_eq!(r["userName"], "n@c");
        assert!(r.get("UserName").is_none());
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": "NAME.GIVENNAME", "value": "Al"}]),
        );
        assert_eq!(r["name"]["givenName"], "Al");
        assert!(r["name"].get("GIVENNAME").is_none());
    }

    #[test]
    fn core_urn_prefixed_paths() {
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": format!("{CORE}:displayName"), "value": "A"}]),
        );
        assert_eq!(r["displayName"], "A");
        let r = ok(
            &base(),
            json!([{"op": "Replace", "path": format!("{CORE}:name.familyName"), "value": "F"}]),
        );
        assert_eq!(r["name"]["familyName"], "F");
    }

    #[test]
    fn unknown_paths_are_invalid_path() {
        for path in [
            "nonsense".to_string(),
            "name.nope".to_string(),
            "title.value".to_string(),
            format!("{ENT}:nope"),
            format!("{ENT}:manager.nope"),
            "members".to_string(),
            "schemas".to_string(),
            "name[givenName eq \"x\"]".to_string(),
            "emails[type eq \"work\"].nope".to_string(),
            "emails[type eq".to_string(),
            "bad path".to_string(),
        ] {
            assert_eq!(
                err_type(
                    &base(),
                    json!([{"op": "replace", "path": path.clone(), "value": "x"}])
                ),
                ScimType::InvalidPath,
                "{path}"
            );
        }
    }

    #[test]
    fn read_only_attributes_are_mutability_errors() {
        for (path, value) in [
            ("id", json!("other")),
            ("meta", json!({"version": "W/\"2\""})),
            ("meta.lastModified", json!("2025-01-01T00:00:00Z")),
            ("groups", json!([{"value": "g1"}])),
        ] {
            assert_eq!(
                err_type(
                    &base(),
                    json!([{"op": "replace", "path": path, "value": value}])
                ),
                ScimType::Mutability,
                "{path}"
            );
        }
        assert_eq!(
            err_type(&base(), json!([{"op": "remove", "path": "id"}])),
            ScimType::Mutability
        );
    }

    #[test]
    fn writing_the_current_value_of_a_read_only_attribute_is_allowed() {
        let u = base();
        assert_eq!(
            ok(&u, json!([{"op": "replace", "path": "id", "value": "u1"}])),
            u
        );
        assert_eq!(ok(&u, json!([{"op": "remove", "path": "groups"}])), u);
    }

    #[test]
    fn immutable_attributes_can_be_set_once() {
        // Group member values are immutable: creating a member is fine, changing one is not.
        let g = json!({"displayName": "G", "members": [{"value": "u1"}]});
        let mut r = g.clone();
        apply_patch(
            &mut r,
            &ops(json!([{"op": "add", "path": "members[value eq \"u2\"].value", "value": "u2"}])),
            ResourceKind::Group,
        )
        .expect("adding a member value");
        assert_eq!(r["members"], json!([{"value": "u1"}, {"value": "u2"}]));
        let mut r = g.clone();
        let e = apply_patch(
            &mut r,
            &ops(
                json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u9"}]),
            ),
            ResourceKind::Group,
        )
        .expect_err("changing an immutable value");
        assert_eq!(e.scim_type, ScimType::Mutability);
        assert_eq!(r, g);
    }

    #[test]
    fn required_attributes_cannot_be_removed() {
        assert_eq!(
            err_type(&base(), json!([{"op": "remove", "path": "userName"}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "replace", "path": "userName", "value": null}])
            ),
            ScimType::InvalidValue
        );
    }

    #[test]
    fn explicit_null_removes() {
        let mut u = base();
        u["title"] = json!("T");
        let r = ok(
            &u,
            json!([{"op": "replace", "path": "title", "value": null}]),
        );
        assert!(r.get("title").is_none());
        let r = ok(
            &u,
            json!([{"op": "replace", "value": {"title": null, "nickName": "N"}}]),
        );
        assert!(r.get("title").is_none());
        assert_eq!(r["nickName"], "N");
        assert_eq!(
            err_type(&u, json!([{"op": "add", "path": "title", "value": null}])),
            ScimType::InvalidValue
        );
        assert_eq!(
            err_type(&u, json!([{"op": "add", "path": "title"}])),
            ScimType::InvalidValue
        );
    }

    #[test]
    fn filter_on_single_valued_attribute_is_invalid_path() {
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "y"}])
            ),
            ScimType::InvalidPath
        );
    }
}
