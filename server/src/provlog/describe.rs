//! Turns one SCIM exchange (method, path, status, bodies) into a log entry an admin can read:
//! what it did in words, its target, its outcome, and the bodies with secrets removed and long
//! lists summarised. Pure: no I/O, so it runs in the log writer, off the request path.

use serde_json::{Map, Value, json};

use super::lean::{self, is_secret_key};

/// What a request did, as one of a few kinds the log page filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateUser,
    UpdateUser,
    DisableUser,
    EnableUser,
    DeprovisionUser,
    ReadUsers,
    CreateGroup,
    UpdateGroup,
    DeleteGroup,
    ReadGroups,
    Bulk,
    Discovery,
    Other,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::CreateUser,
        Operation::UpdateUser,
        Operation::DisableUser,
        Operation::EnableUser,
        Operation::DeprovisionUser,
        Operation::ReadUsers,
        Operation::CreateGroup,
        Operation::UpdateGroup,
        Operation::DeleteGroup,
        Operation::ReadGroups,
        Operation::Bulk,
        Operation::Discovery,
        Operation::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Operation::CreateUser => "user_create",
            Operation::UpdateUser => "user_update",
            Operation::DisableUser => "user_disable",
            Operation::EnableUser => "user_enable",
            Operation::DeprovisionUser => "user_deprovision",
            Operation::ReadUsers => "user_read",
            Operation::CreateGroup => "group_create",
            Operation::UpdateGroup => "group_update",
            Operation::DeleteGroup => "group_delete",
            Operation::ReadGroups => "group_read",
            Operation::Bulk => "bulk",
            Operation::Discovery => "discovery",
            Operation::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Operation::CreateUser => "Create user",
            Operation::UpdateUser => "Update user",
            Operation::DisableUser => "Disable user",
            Operation::EnableUser => "Re-enable user",
            Operation::DeprovisionUser => "Deprovision user",
            Operation::ReadUsers => "Look up users",
            Operation::CreateGroup => "Create group",
            Operation::UpdateGroup => "Update group or members",
            Operation::DeleteGroup => "Delete group",
            Operation::ReadGroups => "Look up groups",
            Operation::Bulk => "Bulk request",
            Operation::Discovery => "Discovery",
            Operation::Other => "Other",
        }
    }

    pub fn from_code(code: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Operations that change a user: its provisioning history.
    pub fn changes_user(self) -> bool {
        matches!(
            self,
            Operation::CreateUser
                | Operation::UpdateUser
                | Operation::DisableUser
                | Operation::EnableUser
                | Operation::DeprovisionUser
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by the gate: bad token, or provisioning switched off.
    Rejected,
}

impl Outcome {
    pub fn of_status(status: u16) -> Outcome {
        match status {
            401 | 403 => Outcome::Rejected,
            s if s >= 400 => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    User,
    Group,
}

impl TargetType {
    pub fn code(self) -> &'static str {
        match self {
            TargetType::User => "User",
            TargetType::Group => "Group",
        }
    }
}

/// One exchange as the middleware saw it. Bodies are the bytes as sent (bounded).
#[derive(Debug, Clone, Default)]
pub struct Seen<'a> {
    pub method: &'a str,
    /// The path below `/scim/v2/{slug}`, e.g. `/Users/abc`.
    pub path: &'a str,
    pub query: &'a str,
    pub status: u16,
    pub request: Option<&'a [u8]>,
    pub response: Option<&'a [u8]>,
    /// A list answer's summary as its handler built it ([`super::Listed`]), if it did.
    pub listed: Option<&'a [u8]>,
    /// A list answer's `totalResults` from its handler, known even when the bodies were left
    /// out (the queue's byte budget).
    pub total: Option<i64>,
    /// The one resource's id, from the handler, for an answer of one.
    pub first_id: Option<&'a str>,
    /// True when `listed` is stored as it is ([`super::Listed::as_stored`]): it is not parsed.
    pub listed_as_stored: bool,
}

/// The readable entry. `action` may contain `{target}`, filled in by the writer once it knows the
/// target's name (a DELETE carries no name).
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub operation: Operation,
    pub outcome: Outcome,
    pub action: String,
    pub target_type: Option<TargetType>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub scim_type: Option<String>,
    pub error_detail: Option<String>,
    pub request_text: Option<String>,
    pub response_text: Option<String>,
}

pub const TARGET: &str = "{target}";
/// A stored body is cut at this many bytes (the full answer went to the client).
pub const MAX_STORED_BODY: usize = 32 * 1024;
/// Lists longer than this are summarised (`members`, `Resources`, `Operations`).
pub const MAX_LIST_ITEMS: usize = 10;
const REMOVED: &str = "(removed)";

fn parse(bytes: Option<&[u8]>) -> Option<Value> {
    bytes
        .filter(|b| !b.is_empty())
        .and_then(|b| serde_json::from_slice(b).ok())
}

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn str_ci(v: &Value, key: &str) -> Option<String> {
    get_ci(v, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Removes secrets and summarises long lists, in place.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if is_secret_key(k) {
                    *x = json!(REMOVED);
                } else {
                    redact(x);
                }
            }
            // A PATCH `value` object keyed by paths (`{"password": ...}`) is covered above; an
            // operation whose path names a secret carries it in `value`.
            let path_is_secret = o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str())
                .is_some_and(is_secret_key);
            if path_is_secret {
                for (k, x) in o.iter_mut() {
                    if k.eq_ignore_ascii_case("value") {
                        *x = json!(REMOVED);
                    }
                }
            }
        }
        Value::Array(a) => {
            if a.len() > MAX_LIST_ITEMS {
                let total = a.len();
                a.truncate(MAX_LIST_ITEMS);
                a.push(json!(format!(
                    "… and {} more ({} in all; not stored)",
                    total - MAX_LIST_ITEMS,
                    total
                )));
            }
            for x in a.iter_mut() {
                redact(x);
            }
        }
        _ => {}
    }
}

/// The text stored for a body: redacted JSON (compact: the console pretty-prints it when
/// shown), cut at `MAX_STORED_BODY`. A body that is not JSON is not stored (it may hold
/// anything); its size is.
pub fn stored_text(bytes: Option<&[u8]>) -> Option<String> {
    stored_from(bytes, parse(bytes))
}

/// Attributes a list answer keeps of each resource: enough to see what was found.
pub const LISTED_KEYS: [&str; 5] = ["id", "userName", "displayName", "externalId", "active"];

/// Whether a list answer keeps this attribute of each resource (any case).
pub fn is_listed_key(k: &str) -> bool {
    LISTED_KEYS.iter().any(|l| l.eq_ignore_ascii_case(k))
}

/// A list answer (lookups, searches) is stored as its counts and, per resource, the attributes
/// that identify it: lookups are most of Entra's traffic, and the whole resources are on the
/// user's and group's pages.
fn summarise_list(v: &mut Value) {
    let Some(resources) = v
        .as_object_mut()
        .and_then(|o| {
            o.iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case("Resources"))
        })
        .and_then(|(_, r)| r.as_array_mut())
    else {
        return;
    };
    let mut trimmed = false;
    for r in resources.iter_mut() {
        if let Value::Object(o) = r {
            let before = o.len();
            o.retain(|k, _| is_listed_key(k));
            trimmed |= o.len() < before;
        }
    }
    if trimmed {
        resources.push(json!(LIST_SUMMARY_STORED));
        drop_list_schemas(v);
    }
}

/// Marks a list answer stored as a summary, as the console shows it.
pub const LIST_SUMMARY: &str =
    "… other attributes not stored (list answers keep what identifies each resource)";
/// [`LIST_SUMMARY`] as stored. A summary also leaves out the answer's `schemas` when it is
/// [`LIST_SCHEMA`] alone; [`shown_text`] puts both back. Lookups are most of the log's entries,
/// and these two were about 150 of the 650 bytes of each.
pub const LIST_SUMMARY_STORED: &str = "…";
/// A list answer's schema.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// True for a list answer's usual `schemas`: [`LIST_SCHEMA`] alone.
pub fn is_list_schemas(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.len() == 1 && a[0] == LIST_SCHEMA)
}

/// Leaves a summary's usual `schemas` out (see [`LIST_SUMMARY_STORED`]).
pub fn drop_list_schemas(v: &mut Value) {
    if let Some(o) = v.as_object_mut()
        && o.get("schemas").is_some_and(is_list_schemas)
    {
        o.remove("schemas");
    }
}

/// A stored summary as the console shows it: the marker in full, the `schemas` put back.
fn expand_summary(v: &mut Value) {
    let Some(o) = v.as_object_mut() else {
        return;
    };
    let Some(marker) = o
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("Resources"))
        .and_then(|(_, r)| r.as_array_mut())
        .and_then(|r| r.last_mut())
        .filter(|m| m.as_str() == Some(LIST_SUMMARY_STORED))
    else {
        return;
    };
    *marker = json!(LIST_SUMMARY);
    if !o.contains_key("schemas") {
        o.insert("schemas".into(), json!([LIST_SCHEMA]));
    }
}

/// As [`stored_text`], from the body already parsed (`parsed` is `parse(bytes)`).
fn stored_from(bytes: Option<&[u8]>, parsed: Option<Value>) -> Option<String> {
    let bytes = bytes.filter(|b| !b.is_empty())?;
    let Some(v) = parsed else {
        return Some(format!("({} bytes, not JSON; not stored)", bytes.len()));
    };
    Some(stored_value(v))
}

/// A parsed body as stored: member lists summarised, secrets redacted, at most 32 KB.
fn stored_value(mut v: Value) -> String {
    summarise_list(&mut v);
    redact(&mut v);
    let mut text = serde_json::to_string(&v).unwrap_or_default();
    if text.len() > MAX_STORED_BODY {
        let mut cut = MAX_STORED_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut: longer than 32 KB)");
    }
    text
}

/// A stored body as shown: indented when it is whole JSON (a list summary in full: see
/// [`LIST_SUMMARY_STORED`]), else as stored.
pub fn shown_text(stored: &str) -> String {
    serde_json::from_str::<Value>(stored)
        .ok()
        .and_then(|mut v| {
            expand_summary(&mut v);
            serde_json::to_string_pretty(&v).ok()
        })
        .unwrap_or_else(|| stored.to_string())
}

/// The resource path split into (`Users`|`Groups`|…, optional id).
fn split_path(path: &str) -> (String, Option<String>) {
    let mut parts = path.trim_matches('/').splitn(3, '/');
    let first = parts.next().unwrap_or("").to_string();
    let second = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    (first, second)
}

/// `filter=userName eq "x"` → ("userName", "x") for the simple equality lookups Entra sends.
fn lookup_term(query: &str) -> Option<(String, String)> {
    let filter = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
        .map(|(_, v)| v.into_owned())?;
    let (attr, rest) = filter.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let value = rest
        .strip_prefix("eq ")
        .or_else(|| rest.strip_prefix("EQ "))
        .or_else(|| rest.strip_prefix("Eq "))?
        .trim();
    let value = value.strip_prefix('"')?;
    let end = value.find('"')?;
    if !value[end + 1..].trim().is_empty() {
        // `id eq "g" and members eq "u"`: a membership check.
        return Some(("membership".into(), value[..end].to_string()));
    }
    Some((attr.to_string(), value[..end].to_string()))
}

/// PATCH operations as (op, path, value), with Entra's path-less value objects spread out.
fn patch_ops(req: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let Some(ops) = get_ci(req, "Operations").and_then(Value::as_array) else {
        return out;
    };
    for op in ops {
        let kind = str_ci(op, "op").unwrap_or_default().to_ascii_lowercase();
        let value = get_ci(op, "value").cloned().unwrap_or(Value::Null);
        match str_ci(op, "path") {
            Some(p) => out.push((kind, p, value)),
            None => {
                if let Value::Object(o) = &value {
                    for (k, v) in o {
                        out.push((kind.clone(), k.clone(), v.clone()));
                    }
                }
            }
        }
    }
    out
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A path as an admin reads it: the attribute after any schema URN.
pub fn short_path(p: &str) -> String {
    let p = p.trim();
    if p.to_ascii_lowercase().starts_with("urn:") {
        // urn:…:User:department → department
        if let Some(i) = p.rfind(':') {
            return p[i + 1..].to_string();
        }
    }
    p.to_string()
}

fn member_count(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Null => 0,
        _ => 1,
    }
}

pub fn describe(s: &Seen<'_>) -> Described {
    let outcome = Outcome::of_status(s.status);
    let (resource, id) = split_path(s.path);
    let method = s.method.to_ascii_uppercase();
    // Most entries are lookups and user writes: read their bodies without building them
    // where that stores the same thing (see `lean`).
    let user_write = resource.eq_ignore_ascii_case("Users")
        && ((method == "POST" && id.is_none()) || (method == "PUT" && id.is_some()));
    // A PATCH's answer is the user too (its request, operations with paths, is not).
    let user_answer = user_write
        || (resource.eq_ignore_ascii_case("Users")
            && method == "PATCH"
            && id.as_deref().is_some_and(|i| i != ".search"));
    let list_answer = outcome == Outcome::Success
        && (resource.eq_ignore_ascii_case("Users") || resource.eq_ignore_ascii_case("Groups"))
        && ((method == "GET" && id.is_none())
            || (method == "POST" && id.as_deref() == Some(".search")));
    let (req, req_as_sent) = if user_write {
        view(s.request)
    } else {
        (parse(s.request), None)
    };
    let (res, res_as_sent) = if user_answer {
        view(s.response)
    } else if list_answer && s.listed.is_some() && s.listed_as_stored {
        // Described from the handler's total and first id, stored as the handler wrote it.
        (None, None)
    } else if list_answer {
        let lean = match s.listed {
            Some(summary) => parse(Some(summary)),
            None => s.response.and_then(lean::list_summary),
        };
        let res = if lean.is_some() {
            lean
        } else {
            parse(s.response)
        };
        (res, None)
    } else {
        (parse(s.response), None)
    };
    let mut d = Described {
        operation: Operation::Other,
        outcome,
        action: String::new(),
        target_type: None,
        target_id: None,
        target_name: None,
        scim_type: None,
        error_detail: None,
        request_text: None,
        response_text: None,
    };
    if outcome != Outcome::Success {
        d.scim_type = res.as_ref().and_then(|r| str_ci(r, "scimType"));
        d.error_detail = res.as_ref().and_then(|r| str_ci(r, "detail"));
    }
    let res_doc = res.as_ref().filter(|_| outcome == Outcome::Success);
    let is_users = resource.eq_ignore_ascii_case("Users");
    let is_groups = resource.eq_ignore_ascii_case("Groups");
    let is_search = id.as_deref() == Some(".search");
    if is_users || is_groups {
        d.target_type = Some(if is_users {
            TargetType::User
        } else {
            TargetType::Group
        });
        if !is_search {
            d.target_id = id.clone();
        }
        if let Some(r) = res_doc
            && d.target_id.is_none()
            && method == "POST"
            && !is_search
        {
            d.target_id = str_ci(r, "id");
        }
        let name_key = if is_users { "userName" } else { "displayName" };
        d.target_name = res_doc
            .and_then(|r| str_ci(r, name_key))
            .or_else(|| req.as_ref().and_then(|r| str_ci(r, name_key)));
    }
    let noun = if is_users { "user" } else { "group" };
    let shown = d.target_name.clone().unwrap_or_else(|| TARGET.to_string());
    let name = || shown.clone();
    let ok = outcome == Outcome::Success;
    let (operation, action) = match (method.as_str(), is_users, is_groups, &id) {
        (_, _, _, _) if resource.eq_ignore_ascii_case("Bulk") => {
            let n = req
                .as_ref()
                .and_then(|r| get_ci(r, "Operations"))
                .map(member_count)
                .unwrap_or(0);
            let failed = res
                .as_ref()
                .and_then(|r| get_ci(r, "Operations"))
                .and_then(Value::as_array)
                .map(|ops| {
                    ops.iter()
                        .filter(|o| {
                            str_ci(o, "status")
                                .and_then(|s| s.parse::<u16>().ok())
                                .is_some_and(|s| s >= 400)
                        })
                        .count()
                })
                .unwrap_or(0);
            let mut a = format!("Bulk request with {}", plural(n, "operation", "operations"));
            if ok && failed > 0 {
                a.push_str(&format!(" ({failed} failed)"));
            }
            (Operation::Bulk, a)
        }
        ("GET", true, _, None)
        | ("GET", _, true, None)
        | ("POST", true, _, Some(_))
        | ("POST", _, true, Some(_))
            if id.is_none() || is_search =>
        {
            let op = if is_users {
                Operation::ReadUsers
            } else {
                Operation::ReadGroups
            };
            let total = res_doc
                .and_then(|r| get_ci(r, "totalResults"))
                .and_then(Value::as_i64)
                .or(s.total.filter(|_| outcome == Outcome::Success));
            let found = |n: i64| {
                if n == 0 {
                    "not found".to_string()
                } else if n == 1 {
                    "found".to_string()
                } else {
                    format!("{n} found")
                }
            };
            let a = match (is_search, lookup_term(s.query)) {
                (false, Some((attr, v))) if attr == "membership" => {
                    format!(
                        "Checked a membership of group {v}{}",
                        total
                            .map(|n| if n == 0 {
                                " (not a member)".to_string()
                            } else {
                                " (member)".to_string()
                            })
                            .unwrap_or_default()
                    )
                }
                (false, Some((attr, v))) => {
                    d.target_name.get_or_insert(v.clone());
                    format!(
                        "Looked up {noun} {attr} = {v}{}",
                        total
                            .map(|n| format!(" ({})", found(n)))
                            .unwrap_or_default()
                    )
                }
                _ => format!(
                    "Listed {noun}s{}",
                    total
                        .map(|n| format!(" ({})", plural(n as usize, "result", "results")))
                        .unwrap_or_default()
                ),
            };
            if total == Some(1) {
                d.target_id = match res_doc
                    .and_then(|r| get_ci(r, "Resources"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                {
                    Some(first) => str_ci(first, "id"),
                    None => s.first_id.map(str::to_string),
                };
            }
            (op, a)
        }
        ("GET", _, _, Some(_)) => {
            let op = if is_users {
                Operation::ReadUsers
            } else {
                Operation::ReadGroups
            };
            (op, format!("Read {noun} {}", name()))
        }
        ("POST", true, _, None) => {
            let a = if ok {
                format!("Created user {}", name())
            } else {
                format!("Could not create user {}", name())
            };
            (Operation::CreateUser, a)
        }
        ("POST", _, true, None) => {
            let n = req
                .as_ref()
                .and_then(|r| get_ci(r, "members"))
                .map(member_count)
                .unwrap_or(0);
            let with = if n > 0 {
                format!(" with {}", plural(n, "member", "members"))
            } else {
                String::new()
            };
            let a = if ok {
                format!("Created group {}{with}", name())
            } else {
                format!("Could not create group {}", name())
            };
            (Operation::CreateGroup, a)
        }
        ("PUT", true, _, Some(_)) => {
            let active = req
                .as_ref()
                .and_then(|r| get_ci(r, "active"))
                .and_then(as_bool);
            let verb = if ok { "Replaced" } else { "Could not replace" };
            let mut a = format!("{verb} user {}", name());
            if ok && active == Some(false) {
                a.push_str(" (inactive)");
            }
            (Operation::UpdateUser, a)
        }
        ("PUT", _, true, Some(_)) => {
            let n = req
                .as_ref()
                .and_then(|r| get_ci(r, "members"))
                .map(member_count)
                .unwrap_or(0);
            let verb = if ok { "Replaced" } else { "Could not replace" };
            (
                Operation::UpdateGroup,
                format!(
                    "{verb} group {} ({})",
                    name(),
                    plural(n, "member", "members")
                ),
            )
        }
        ("PATCH", true, _, Some(_)) => {
            let ops = req.as_ref().map(patch_ops).unwrap_or_default();
            let active = ops
                .iter()
                .filter(|(_, p, _)| p.eq_ignore_ascii_case("active"))
                .filter_map(|(_, _, v)| as_bool(v))
                .next_back();
            let mut others: Vec<String> = ops
                .iter()
                .filter(|(_, p, _)| !p.eq_ignore_ascii_case("active"))
                .map(|(_, p, _)| short_path(p))
                .collect();
            others.dedup();
            let list = |v: &[String]| {
                if v.len() > 4 {
                    format!("{} and {} more", v[..4].join(", "), v.len() - 4)
                } else {
                    v.join(", ")
                }
            };
            let (op, mut a) = match active {
                Some(false) => (Operation::DisableUser, format!("Disabled user {}", name())),
                Some(true) => (Operation::EnableUser, format!("Re-enabled user {}", name())),
                None => (Operation::UpdateUser, format!("Updated user {}", name())),
            };
            if !others.is_empty() {
                if active.is_some() {
                    a.push_str(&format!(" and changed {}", list(&others)));
                } else {
                    a.push_str(&format!(": {}", list(&others)));
                }
            }
            if !ok {
                a = format!("Could not apply: {a}");
            }
            (op, a)
        }
        ("PATCH", _, true, Some(_)) => {
            let ops = req.as_ref().map(patch_ops).unwrap_or_default();
            let mut added = 0usize;
            let mut removed = 0usize;
            let mut removed_all = false;
            let mut renamed: Option<String> = None;
            let mut other = 0usize;
            for (op, p, v) in &ops {
                let lp = p.to_ascii_lowercase();
                if lp == "members" {
                    match op.as_str() {
                        "add" => added += member_count(v),
                        "remove" if v.is_null() => removed_all = true,
                        "remove" => removed += member_count(v),
                        "replace" => {
                            removed_all = true;
                            added += member_count(v);
                        }
                        _ => other += 1,
                    }
                } else if lp.starts_with("members[") {
                    removed += 1;
                } else if lp == "displayname" {
                    renamed = v.as_str().map(str::to_string);
                } else {
                    other += 1;
                }
            }
            let g = name();
            let mut parts = Vec::new();
            if removed_all {
                parts.push(format!("Removed all members from {g}"));
            }
            if added > 0 {
                parts.push(format!(
                    "Added {} to {g}",
                    plural(added, "member", "members")
                ));
            }
            if removed > 0 {
                parts.push(format!(
                    "Removed {} from {g}",
                    plural(removed, "member", "members")
                ));
            }
            if let Some(n) = renamed {
                parts.push(format!("Renamed group {g} to {n}"));
            }
            if parts.is_empty() || other > 0 {
                parts.push(format!("Updated group {g}"));
            }
            let mut a = parts.join("; ");
            if !ok {
                a = format!("Could not apply: {a}");
            }
            (Operation::UpdateGroup, a)
        }
        ("DELETE", true, _, Some(_)) => {
            let verb = if ok {
                "Deprovisioned"
            } else {
                "Could not deprovision"
            };
            (
                Operation::DeprovisionUser,
                format!("{verb} user {}", name()),
            )
        }
        ("DELETE", _, true, Some(_)) => {
            let verb = if ok { "Deleted" } else { "Could not delete" };
            (Operation::DeleteGroup, format!("{verb} group {}", name()))
        }
        _ if ["ServiceProviderConfig", "ResourceTypes", "Schemas"]
            .iter()
            .any(|r| resource.eq_ignore_ascii_case(r)) =>
        {
            (Operation::Discovery, format!("Read {resource}"))
        }
        _ if resource == ".search" => (Operation::Other, "Searched users and groups".to_string()),
        _ => (Operation::Other, format!("{method} {}", s.path)),
    };
    d.operation = operation;
    d.action = match outcome {
        Outcome::Rejected => {
            let why = if s.status == 401 {
                "invalid token"
            } else {
                "provisioning is disabled"
            };
            format!("Rejected: {why} ({})", lower_first(&action))
        }
        _ => action,
    };
    if outcome == Outcome::Rejected {
        // The gate stopped it: nothing was read or changed.
        d.target_id = None;
    }
    // Each body is parsed once: what was read above, redacted, is what is stored.
    d.request_text = req_as_sent.or_else(|| stored_from(s.request, req));
    d.response_text = res_as_sent.or_else(|| match (s.response, s.listed, res) {
        // The handler's summary stands for a list answer the log did not keep.
        (None, Some(text), None) if s.listed_as_stored => String::from_utf8(text.to_vec()).ok(),
        (None, Some(_), Some(summary)) => Some(stored_value(summary)),
        (bytes, _, parsed) => stored_from(bytes, parsed),
    });
    d
}

/// A body as its top-level scalars and its text when it can be stored as sent, else parsed.
fn view(bytes: Option<&[u8]>) -> (Option<Value>, Option<String>) {
    match bytes.filter(|b| !b.is_empty()).and_then(lean::as_sent) {
        Some(kept) => (Some(kept.top), Some(kept.text)),
        None => (parse(bytes), None),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Fills `{target}` with the target's name, else its id, else a neutral word.
pub fn fill_target(action: &str, name: Option<&str>, id: Option<&str>) -> String {
    if !action.contains(TARGET) {
        return action.to_string();
    }
    action.replace(TARGET, name.or(id).unwrap_or("(unknown)"))
}

/// Keys of a user document flattened to readable attribute paths with display values, for the
/// history's "from → to". Metadata and derived attributes are left out.
pub fn flatten_user(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(o) = doc.as_object() {
        flatten_obj(o, "", &mut out);
    }
    out.sort();
    out
}

fn flatten_obj(o: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    for (k, v) in o {
        if prefix.is_empty()
            && ["id", "meta", "schemas", "groups", "password"]
                .iter()
                .any(|s| k.eq_ignore_ascii_case(s))
        {
            continue;
        }
        let key = if k.to_ascii_lowercase().starts_with("urn:") {
            // Extension attributes: named without the URN (department, not urn:…:department).
            String::new()
        } else if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten_obj(inner, &key, out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let label = item
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| (i + 1).to_string());
                    let base = format!("{key}[{label}]");
                    match item {
                        Value::Object(io) => {
                            let mut tmp = Vec::new();
                            flatten_obj(io, &base, &mut tmp);
                            out.extend(tmp.into_iter().filter(|(p, _)| !p.ends_with(".type")));
                        }
                        other => out.push((base, scalar(other))),
                    }
                }
            }
            Value::Null => {}
            other => out.push((key, scalar(other))),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What changed between two user documents: (attribute, from, to).
pub fn diff_users(before: &Value, after: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    let a: std::collections::BTreeMap<_, _> = flatten_user(before).into_iter().collect();
    let b: std::collections::BTreeMap<_, _> = flatten_user(after).into_iter().collect();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| (k.clone(), a.get(k).cloned(), b.get(k).cloned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        method: &str,
        path: &str,
        query: &str,
        status: u16,
        req: Value,
        res: Value,
    ) -> Described {
        let rq = if req.is_null() {
            Vec::new()
        } else {
            req.to_string().into_bytes()
        };
        let rs = if res.is_null() {
            Vec::new()
        } else {
            res.to_string().into_bytes()
        };
        describe(&Seen {
            method,
            path,
            query,
            status,
            request: Some(&rq),
            response: Some(&rs),
            listed: None,
            total: None,
            first_id: None,
            listed_as_stored: false,
        })
    }

    #[test]
    fn user_writes_read_as_sentences() {
        let d = run(
            "POST",
            "/Users",
            "",
            201,
            json!({"userName": "alice@contoso.com", "password": "Secret1!"}),
            json!({"id": "u1", "userName": "alice@contoso.com"}),
        );
        assert_eq!(d.action, "Created user alice@contoso.com");
        assert_eq!(
            (d.operation, d.outcome),
            (Operation::CreateUser, Outcome::Success)
        );
        assert_eq!(d.target_id.as_deref(), Some("u1"));
        let req = d.request_text.unwrap();
        assert!(!req.contains("Secret1!") && req.contains(REMOVED), "{req}");

        let disable =
            json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
        let d = run(
            "PATCH",
            "/Users/u1",
            "",
            200,
            disable,
            json!({"id": "u1", "userName": "alice@contoso.com"}),
        );
        assert_eq!(d.action, "Disabled user alice@contoso.com");
        assert_eq!(d.operation, Operation::DisableUser);
        // A PATCH's answer (the user) is stored as sent; its operations are read and redacted.
        let answer = br#"{"id": "u1",  "userName": "alice@contoso.com", "active": false}"#;
        let ops = br#"{"Operations": [{"op": "replace", "path": "password", "value": "Pw-9x!"}]}"#;
        let d = describe(&Seen {
            method: "PATCH",
            path: "/Users/u1",
            query: "",
            status: 200,
            request: Some(ops),
            response: Some(answer),
            listed: None,
            total: None,
            first_id: None,
            listed_as_stored: false,
        });
        assert_eq!(
            d.response_text.as_deref().map(str::as_bytes),
            Some(&answer[..])
        );
        assert_eq!(d.target_name.as_deref(), Some("alice@contoso.com"));
        let req = d.request_text.unwrap();
        assert!(!req.contains("Pw-9x!"), "{req}");

        let flagged = json!({"Operations": [{"op": "replace", "value": {"active": true, "title": "CEO", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales"}}]});
        let d = run(
            "PATCH",
            "/Users/u1",
            "",
            200,
            flagged,
            json!({"id": "u1", "userName": "a"}),
        );
        assert_eq!(d.action, "Re-enabled user a and changed title, department");

        let d = run("DELETE", "/Users/u1", "", 204, Value::Null, Value::Null);
        assert_eq!(d.action, "Deprovisioned user {target}");
        assert_eq!(
            fill_target(&d.action, Some("bob"), Some("u1")),
            "Deprovisioned user bob"
        );
        assert_eq!(d.target_id.as_deref(), Some("u1"));
    }

    #[test]
    fn failures_keep_the_scim_error() {
        let d = run(
            "POST",
            "/Users",
            "",
            400,
            json!({"userName": "nolast@contoso.com", "name": {"givenName": "No"}}),
            json!({"status": "400", "scimType": "invalidValue", "detail": "name.familyName is required by BitaBIZ and is missing or empty."}),
        );
        assert_eq!(d.outcome, Outcome::Failure);
        assert_eq!(d.action, "Could not create user nolast@contoso.com");
        assert_eq!(d.scim_type.as_deref(), Some("invalidValue"));
        assert!(d.error_detail.unwrap().contains("name.familyName"));
        assert_eq!(d.target_id, None);
    }

    #[test]
    fn rejections_say_why() {
        let d = run(
            "GET",
            "/Users",
            "filter=userName+eq+%22x%22",
            401,
            Value::Null,
            json!({"detail": "Authorization failed"}),
        );
        assert_eq!(d.outcome, Outcome::Rejected);
        assert!(
            d.action.starts_with("Rejected: invalid token"),
            "{}",
            d.action
        );
        let d = run(
            "POST",
            "/Users",
            "",
            403,
            json!({"userName": "a"}),
            json!({"detail": "disabled"}),
        );
        assert!(
            d.action.starts_with("Rejected: provisioning is disabled"),
            "{}",
            d.action
        );
    }

    #[test]
    fn list_answers_keep_what_identifies_each_resource() {
        let answer = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
            "Resources": [{"id": "u1", "userName": "alice@contoso.com", "active": true,
                           "externalId": "e1", "title": "Engineer",
                           "emails": [{"value": "alice@contoso.com"}],
                           "groups": [{"value": "g1"}]}],
        });
        let t = stored_text(Some(answer.to_string().as_bytes())).unwrap();
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["totalResults"], 1);
        let kept = &v["Resources"][0];
        assert_eq!(kept["id"], "u1");
        assert_eq!(kept["userName"], "alice@contoso.com");
        assert_eq!(kept["externalId"], "e1");
        assert_eq!(kept["active"], true);
        assert!(
            kept.get("title").is_none() && kept.get("emails").is_none(),
            "{t}"
        );
        // Stored short: the marker's short form, and no `schemas`. Shown in full.
        assert_eq!(v["Resources"][1], LIST_SUMMARY_STORED);
        assert_eq!(v.get("schemas"), None, "{t}");
        let shown: Value = serde_json::from_str(&shown_text(&t)).unwrap();
        assert_eq!(shown["Resources"][1], LIST_SUMMARY);
        assert_eq!(shown["schemas"], json!([LIST_SCHEMA]));
        assert_eq!(shown["Resources"][0], v["Resources"][0]);
        assert_eq!(shown["totalResults"], 1);
        // Summaries stored before in full are shown as they are.
        let mut before = v.clone();
        before["Resources"][1] = json!(LIST_SUMMARY);
        before["schemas"] = json!(["urn:example:other"]);
        let shown: Value = serde_json::from_str(&shown_text(&before.to_string())).unwrap();
        assert_eq!(shown, before);
        // Other schemas stay with the summary.
        let mut other = answer.clone();
        other["schemas"] = json!(["urn:example:other"]);
        let t = stored_text(Some(other.to_string().as_bytes())).unwrap();
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["schemas"], json!(["urn:example:other"]));
        // A lookup that found nothing is stored whole, and so is a single resource.
        let empty = json!({"totalResults": 0, "Resources": []});
        let t = stored_text(Some(empty.to_string().as_bytes())).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap(), empty);
        let one = json!({"id": "u1", "userName": "a", "title": "Engineer"});
        let t = stored_text(Some(one.to_string().as_bytes())).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap(), one);
    }

    #[test]
    fn group_membership_changes_are_counted() {
        let add = json!({"Operations": [{"op": "Add", "path": "members", "value": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}]});
        let d = run("PATCH", "/Groups/g1", "", 204, add, Value::Null);
        assert_eq!(d.action, "Added 3 members to {target}");
        assert_eq!(
            fill_target(&d.action, Some("Sales"), None),
            "Added 3 members to Sales"
        );
        let rm = json!({"Operations": [{"op": "remove", "path": "members[value eq \"a\"]"}]});
        let d = run("PATCH", "/Groups/g1", "", 204, rm, Value::Null);
        assert_eq!(d.action, "Removed 1 member from {target}");
        let d = run(
            "POST",
            "/Groups",
            "",
            201,
            json!({"displayName": "Sales", "members": []}),
            json!({"id": "g1", "displayName": "Sales"}),
        );
        assert_eq!(d.action, "Created group Sales");
    }

    #[test]
    fn lookups_name_the_term_and_the_result() {
        let d = run(
            "GET",
            "/Users",
            "filter=userName+eq+%22alice%40contoso.com%22",
            200,
            Value::Null,
            json!({"totalResults": 0, "Resources": []}),
        );
        assert_eq!(
            d.action,
            "Looked up user userName = alice@contoso.com (not found)"
        );
        assert_eq!(d.operation, Operation::ReadUsers);

        // With the summary its handler built, a lookup is described exactly as by parsing.
        let answer = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
            "Resources": [{"id": "u1", "userName": "alice@contoso.com", "active": true,
                "title": "Engineer", "groups": [{"value": "g1"}]}]});
        let bytes = answer.to_string().into_bytes();
        let seen = |response, listed| Seen {
            method: "GET",
            path: "/Users",
            query: "filter=userName+eq+%22alice%40contoso.com%22",
            status: 200,
            request: None,
            response,
            listed,
            total: None,
            first_id: None,
            listed_as_stored: false,
        };
        let summary = super::super::lean::list_summary_text(&answer);
        let parsed = describe(&seen(Some(&bytes), None));
        assert_eq!(describe(&seen(Some(&bytes), Some(&summary))), parsed);
        // The recording layer keeps only the summary of a list answer, not the answer.
        assert_eq!(describe(&seen(None, Some(&summary))), parsed);
        // With neither (the queue's byte budget left them out), the count still tells.
        let bare = Seen {
            total: Some(1),
            ..seen(None, None)
        };
        assert_eq!(
            describe(&bare).action,
            "Looked up user userName = alice@contoso.com (found)"
        );
        let refused = Seen {
            status: 400,
            ..bare
        };
        assert!(!describe(&refused).action.contains("found"));
        assert_eq!(
            parsed.action,
            "Looked up user userName = alice@contoso.com (found)"
        );
        // Stored as the handler wrote it, the summary is not parsed: the same entry.
        let listed =
            super::super::Listed::of(&answer, 1, &axum::body::Bytes::from(answer.to_string()));
        assert!(listed.as_stored);
        let fast = Seen {
            total: Some(1),
            first_id: listed.first_id.as_deref(),
            listed_as_stored: true,
            ..seen(None, Some(&listed.summary))
        };
        assert_eq!(describe(&fast), parsed);
        assert!(
            !parsed
                .response_text
                .as_deref()
                .unwrap()
                .contains("Engineer"),
            "{parsed:?}"
        );
    }

    /// A summary marked as stored is not redacted (`Listed::as_stored`): that holds only while
    /// no attribute a list answer keeps is named like a secret.
    #[test]
    fn list_answers_keep_no_secret_named_attribute() {
        for k in LISTED_KEYS {
            assert!(!super::super::lean::is_secret_key(k), "{k}");
        }
        assert!(super::super::lean::is_secret_key("clientSecret"));
    }

    /// A summary the handler marks as stored is exactly what parsing and storing it would
    /// give, and a list answer is described alike either way: for pages of 0 to 12 resources,
    /// with attributes left out or not, Users and Groups.
    #[test]
    fn summaries_marked_as_stored_are_what_storing_them_gives() {
        for n in 0..=12usize {
            for extra in [false, true] {
                for path in ["/Users", "/Groups"] {
                    let resources: Vec<Value> = (0..n)
                        .map(|i| {
                            let mut r = json!({"id": format!(" u{i} "), "userName": format!("ü{i}\"q"),
                                "displayName": "A \u{1} b", "active": i % 2 == 0});
                            if extra {
                                r["title"] = json!("Engineer");
                            }
                            r
                        })
                        .collect();
                    let answer = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                        "totalResults": n, "startIndex": 1, "itemsPerPage": n,
                        "Resources": resources});
                    let sent = axum::body::Bytes::from(answer.to_string());
                    let listed = super::super::Listed::of(&answer, n as i64, &sent);
                    // A summary that leaves nothing out is the answer as sent, shared; either
                    // way it is the text the summary writer gives.
                    assert_eq!(
                        &listed.summary[..],
                        &super::super::lean::list_summary_text(&answer)[..],
                        "{n} {extra}"
                    );
                    assert_eq!(
                        listed.summary.as_ptr() == sent.as_ptr(),
                        !extra || n == 0,
                        "{n} {extra}"
                    );
                    let items = n + usize::from(extra && n > 0);
                    assert_eq!(listed.as_stored, items <= MAX_LIST_ITEMS, "{n} {extra}");
                    let stored = stored_value(serde_json::from_slice(&listed.summary).unwrap());
                    if listed.as_stored {
                        assert_eq!(stored.as_bytes(), &listed.summary[..], "{n} {extra}");
                    }
                    let seen = |as_stored: bool| Seen {
                        method: "GET",
                        path,
                        query: "filter=userName+eq+%22a%22",
                        status: 200,
                        request: None,
                        response: None,
                        listed: Some(&listed.summary),
                        total: Some(n as i64),
                        first_id: listed.first_id.as_deref(),
                        listed_as_stored: as_stored,
                    };
                    let parsed = describe(&seen(false));
                    assert_eq!(parsed.response_text.as_deref(), Some(stored.as_str()));
                    if listed.as_stored {
                        assert_eq!(describe(&seen(true)), parsed, "{n} {extra} {path}");
                    }
                    if n == 1 {
                        assert_eq!(parsed.target_id.as_deref(), Some("u0"));
                    }
                }
            }
        }
    }

    #[test]
    fn long_lists_are_summarised_and_bodies_bounded() {
        let members: Vec<Value> = (0..5000)
            .map(|i| json!({"value": format!("user-{i}")}))
            .collect();
        let t = stored_text(Some(
            json!({"displayName": "Big", "members": members})
                .to_string()
                .as_bytes(),
        ))
        .unwrap();
        assert!(
            t.contains("… and 4990 more (5000 in all; not stored)"),
            "{t}"
        );
        assert!(t.len() < MAX_STORED_BODY);
        let t = stored_text(Some(b"password=hunter2")).unwrap();
        assert!(!t.contains("hunter2"));
        let big = json!({"x": "y".repeat(100_000)}).to_string();
        let t = stored_text(Some(big.as_bytes())).unwrap();
        assert!(t.len() <= MAX_STORED_BODY + 64);
    }

    #[test]
    fn secrets_are_removed_everywhere() {
        let mut v = json!({"Operations": [{"op": "replace", "path": "password", "value": "p1"},
                                          {"op": "replace", "value": {"password": "p2"}}],
                           "client_secret": "s", "access_token": "t", "nested": {"Password": "p3"}});
        redact(&mut v);
        let s = v.to_string();
        for secret in ["p1", "p2", "p3", "\"s\"", "\"t\""] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
    }

    #[test]
    fn user_diffs_name_attributes() {
        let a = json!({"userName": "a", "title": "Engineer", "emails": [{"type": "work", "value": "a@x"}],
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}, "meta": {"version": "1"}});
        let b = json!({"userName": "a", "title": "Lead", "emails": [{"type": "work", "value": "a@x"}],
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}, "meta": {"version": "2"}, "active": false});
        let d = diff_users(&a, &b);
        assert_eq!(
            d,
            vec![
                ("active".into(), None, Some("false".into())),
                (
                    "department".into(),
                    Some("R&D".into()),
                    Some("Sales".into())
                ),
                ("title".into(), Some("Engineer".into()), Some("Lead".into())),
            ]
        );
    }
}
