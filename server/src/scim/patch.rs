//! SCIM PATCH (RFC 7644 §3.5.2) applied to resource JSON, with the shapes Microsoft Entra ID
//! sends (see shared/entra-scim.md): string booleans, pathless replaces whose keys are paths,
//! `emails[type eq "work"].value` that must create the value, manager given as an id, custom
//! extension URNs missing from `schemas`, and idempotent removes.
//!
//! Group membership is never applied to JSON: [`apply_group_patch`] returns [`MemberChange`]s for
//! the store to execute, so a PATCH that adds one member to a 100k-member group stays cheap.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::filter::{
    AttrPath, CompareOp, Filter, FilterError, PatchPath, as_bool, get_ci, is_present, key_ci,
    matches_value, parse_attr_path, parse_patch_path,
};
use super::schema::{
    AttrType, AttributeDef, ENTERPRISE_USER_SCHEMA, Mutability, ResourceKind, resolve,
};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

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
            let membership = path
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("members"));
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

// ---------------------------------------------------------------------------------------------
// Operations

fn apply_operation(
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

fn bad_path(path: &str, e: FilterError) -> PatchError {
    PatchError::new(ScimType::InvalidPath, format!("invalid path '{path}': {e}"))
}

/// A path that names a whole schema (`urn:...:enterprise:2.0:User`) rather than an attribute.
/// Custom extensions are recognised by being listed in `schemas` or ending in the resource
/// type name, as Entra's `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User` do.
fn schema_urn_path(doc: &Map<String, Value>, path: &str, kind: ResourceKind) -> Option<String> {
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
fn apply_object(
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

fn apply_schema_object(
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
struct Target<'p> {
    /// Extension URN; `None` for the core schema and the common attributes.
    ext: Option<String>,
    attr: String,
    def: Option<&'static AttributeDef>,
    sub: Option<String>,
    sub_def: Option<&'static AttributeDef>,
    filter: Option<&'p Filter>,
    text: String,
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

fn apply_path(
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
fn sub_key(obj: &mut Map<String, Value>, name: &str, def: Option<&AttributeDef>) -> String {
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

fn merge_into(obj: &mut Map<String, Value>, new: &Map<String, Value>, def: Option<&AttributeDef>) {
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

/// After a sub-attribute is removed, a value left with only its `type`/`primary` label (say
/// `{"type":"work"}` once the address is gone) carries no data and is dropped.
fn has_content(el: &Value) -> bool {
    match el {
        Value::Object(o) => o.iter().any(|(k, v)| {
            !k.eq_ignore_ascii_case("type") && !k.eq_ignore_ascii_case("primary") && is_present(v)
        }),
        other => is_present(other),
    }
}

fn filtered(
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

fn is_primary(v: &Value) -> bool {
    get_ci(v, "primary").and_then(as_bool) == Some(true)
}

/// RFC 7643 §2.4: at most one value may be primary; the one just written wins.
fn clear_other_primaries(arr: &mut [Value], keep: usize) {
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

fn remove_listed(
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
fn canonical(v: &Value) -> String {
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

// ---------------------------------------------------------------------------------------------
// Values

fn invalid<T>(path: &str, what: &str) -> Result<T, PatchError> {
    fail(ScimType::InvalidValue, format!("'{path}' {what}"))
}

/// Checks one value (one element, for multi-valued attributes) against its definition and brings
/// it to its canonical JSON form: string booleans become booleans, known sub-attribute keys get
/// their schema spelling, null sub-attributes are dropped. Unknown attributes pass unchanged.
fn normalize_value(v: &Value, def: Option<&AttributeDef>, path: &str) -> Result<Value, PatchError> {
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
fn normalize_manager(v: &Value) -> Result<Option<Value>, PatchError> {
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

// ---------------------------------------------------------------------------------------------
// Groups

fn group_operation(
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
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    fn ops(operations: Value) -> Vec<PatchOperation> {
        PatchRequest::from_value(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations}))
            .expect("valid request")
            .operations
    }

    fn patch(resource: &Value, operations: Value) -> Result<Value, PatchError> {
        let mut r = resource.clone();
        apply_patch(&mut r, &ops(operations), ResourceKind::User)?;
        Ok(r)
    }

    fn ok(resource: &Value, operations: Value) -> Value {
        match patch(resource, operations.clone()) {
            Ok(r) => r,
            Err(e) => panic!("{operations} failed: {e:?}"),
        }
    }

    fn err_type(resource: &Value, operations: Value) -> ScimType {
        let before = resource.clone();
        let mut r = resource.clone();
        let e = apply_patch(&mut r, &ops(operations.clone()), ResourceKind::User)
            .expect_err("should fail");
        assert_eq!(
            r, before,
            "a failed patch must leave the resource untouched"
        );
        e.scim_type
    }

    fn group_changes(
        resource: &Value,
        operations: Value,
    ) -> Result<(Value, Vec<MemberChange>), PatchError> {
        let mut r = resource.clone();
        let changes = apply_group_patch(&mut r, &ops(operations))?;
        Ok((r, changes))
    }

    fn base() -> Value {
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

    fn emails_of_type<'a>(r: &'a Value, ty: &str) -> Vec<&'a Value> {
        r["emails"]
            .as_array()
            .map(|a| a.iter().filter(|e| e["type"] == ty).collect())
            .unwrap_or_default()
    }

    // --- request parsing ------------------------------------------------------------------

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

    // --- Entra: active ---------------------------------------------------------------------

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

    // --- Entra: several attributes without a path ---------------------------------------

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

    // --- Entra: emails, phones, addresses by type ------------------------------------------

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

    // --- single and multi-valued ----------------------------------------------------------

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

    // --- complex single-valued --------------------------------------------------------

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

    // --- enterprise extension and manager ----------------------------------------------

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

    // --- custom extensions -------------------------------------------------------------

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

    // --- names, paths, mutability ------------------------------------------------------

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
    fn filter_on_single_valued_attribute_is_invalid_path() {
        assert_eq!(
            err_type(
                &base(),
                json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": "y"}])
            ),
            ScimType::InvalidPath
        );
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

    // --- groups: membership as changes -------------------------------------------------

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
