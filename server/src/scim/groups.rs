//! `/Groups`: create, read, list/search, replace, patch and delete. Members live in their own
//! table; a request that does not ask for members never loads them.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

use super::error::{ScimError, ScimResult};
use super::filter::{CompareOp, Filter};
use super::http::{
    ListParams, Projection, ScimTenant, check_preconditions, etag, list_params_from_query,
    list_params_from_search, list_response, not_modified, projection_from_query, read_json,
    resource_response, scim_json,
};
use super::patch::{MemberChange, PatchRequest, apply_group_patch};
use super::projection::project;
use super::resource::{
    conjuncts, eq_string, list_in_memory, meta, normalize, set_once, stored_doc, strip_keys,
};
use super::schema::ResourceKind;
use crate::AppState;
use crate::store::StoreError;
use crate::store::scim_groups::{
    self, GroupRecord, GroupSelector, GroupWrite, Member, MemberKind, MemberOp,
};

const KIND: ResourceKind = ResourceKind::Group;

pub fn render(rec: &GroupRecord, members: Option<&[Member]>, t: &ScimTenant) -> Value {
    let mut doc = stored_doc(&rec.resource);
    doc.insert("id".into(), json!(rec.id));
    doc.insert("displayName".into(), json!(rec.display_name));
    if let Some(x) = &rec.external_id {
        doc.insert("externalId".into(), json!(x));
    }
    if !doc.contains_key("schemas") {
        doc.insert("schemas".into(), json!([KIND.core_schema().id]));
    }
    if let Some(members) = members {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                let plural = if m.kind == MemberKind::Group {
                    "Groups"
                } else {
                    "Users"
                };
                let mut v = json!({
                    "value": m.id,
                    "$ref": format!("{}/{plural}/{}", t.base_url, m.id),
                    "type": m.kind.as_str(),
                });
                if let Some(d) = &m.display {
                    v["display"] = json!(d);
                }
                v
            })
            .collect();
        doc.insert("members".into(), Value::Array(list));
    }
    doc.insert(
        "meta".into(),
        meta(
            KIND,
            &t.base_url,
            &rec.id,
            rec.created_at,
            rec.updated_at,
            rec.version,
        ),
    );
    Value::Object(doc)
}

fn display_name(doc: &Value) -> ScimResult<String> {
    doc.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("displayName"))
        })
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ScimError::invalid_value("displayName is required and is missing or empty."))
}

fn external_id(doc: &Value) -> Option<String> {
    doc.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("externalId")))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

fn storable(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        strip_keys(o, &["id", "meta", "members"]);
    }
    d.to_string()
}

/// Member ids from a `members` value: `[{"value": id, ...}]` or bare id strings.
fn member_ids(v: &Value) -> ScimResult<Vec<String>> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a.as_slice(),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id} objects.",
            ));
        }
    };
    items
        .iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    ScimError::invalid_value("every member needs a \"value\" (the member's id).")
                }),
            _ => Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id} objects.",
            )),
        })
        .collect()
}

/// The kinds of every id, or a 400 naming the first one that is not a user or group here.
async fn resolve(
    state: &AppState,
    t: &ScimTenant,
    ids: &[String],
) -> ScimResult<HashMap<String, MemberKind>> {
    let kinds = scim_groups::resolve_members(&state.db, &t.id, ids).await?;
    if let Some(missing) = ids.iter().find(|id| !kinds.contains_key(*id)) {
        return Err(ScimError::invalid_value(format!(
            "member {missing} is not a user or group of this organisation."
        )));
    }
    Ok(kinds)
}

async fn conflict(state: &AppState, t: &ScimTenant, name: &str, own_id: Option<&str>) -> ScimError {
    let sel = GroupSelector {
        display_name: Some(name.to_string()),
        ..Default::default()
    };
    let taken = scim_groups::select(&state.db, &t.id, &sel, None)
        .await
        .unwrap_or_default();
    if taken.iter().any(|g| Some(g.id.as_str()) != own_id) {
        ScimError::uniqueness(format!(
            "A group named '{name}' already exists in this organisation."
        ))
    } else {
        ScimError::uniqueness(
            "That externalId is already used by another group of this organisation.",
        )
    }
}

async fn load(state: &AppState, t: &ScimTenant, id: &str) -> ScimResult<GroupRecord> {
    scim_groups::get(&state.db, &t.id, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ScimError::not_found(format!("Group {id} not found.")),
            e => e.into(),
        })
}

async fn render_with(
    state: &AppState,
    t: &ScimTenant,
    rec: &GroupRecord,
    proj: &Projection,
) -> ScimResult<Value> {
    let doc = if proj.omits("members") {
        render(rec, None, t)
    } else {
        let members = scim_groups::members_of(&state.db, std::slice::from_ref(&rec.id)).await?;
        render(
            rec,
            Some(members.get(&rec.id).map(Vec::as_slice).unwrap_or(&[])),
            t,
        )
    };
    Ok(project(&doc, KIND, &proj.attributes, &proj.excluded))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let body = read_json(body).await?;
    let members = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
        .map(|(_, v)| member_ids(v))
        .transpose()?
        .unwrap_or_default();
    let doc = normalize(KIND, body, &["members"])?;
    let name = display_name(&doc)?;
    let kinds = resolve(&state, &t, &members).await?;
    let with_kinds: Vec<(String, MemberKind)> =
        members.iter().map(|m| (m.clone(), kinds[m])).collect();
    let resource = storable(&doc);
    let ext = external_id(&doc);
    let g = GroupWrite {
        display_name: &name,
        external_id: ext.as_deref(),
        resource: &resource,
    };
    let rec =
        match scim_groups::insert(&state.db, &t.id, &g, &with_kinds, state.clock.now_ms()).await {
            Ok(r) => r,
            Err(StoreError::Conflict(_)) => return Err(conflict(&state, &t, &name, None).await),
            Err(e) => return Err(e.into()),
        };
    let doc = render_with(&state, &t, &rec, &proj).await?;
    Ok(resource_response(StatusCode::CREATED, &doc, true))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let rec = load(&state, &t, &id).await?;
    if not_modified(&headers, &etag(rec.version)) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let doc = render_with(&state, &t, &rec, &proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

/// Column conditions for the filter; `members eq "id"` (and `members[value eq "id"]`,
/// `members.value eq "id"`) must be such a condition, as members are not in the documents.
fn selector(filter: Option<&Filter>) -> ScimResult<(GroupSelector, bool)> {
    let mut sel = GroupSelector::default();
    let Some(f) = filter else {
        return Ok((sel, true));
    };
    let mut exact = true;
    for term in conjuncts(f) {
        let used = if let Some(v) = eq_string(term, KIND, None, "displayName", None) {
            set_once(&mut sel.display_name, v)
        } else if let Some(v) = eq_string(term, KIND, None, "externalId", None) {
            set_once(&mut sel.external_id, v)
        } else if let Some(v) = eq_string(term, KIND, None, "id", None) {
            set_once(&mut sel.id, v)
        } else if let Some(v) = member_eq(term) {
            if !set_once(&mut sel.member, v) {
                return Err(ScimError::invalid_filter(
                    "Only one members condition is supported per filter.",
                ));
            }
            true
        } else {
            if mentions_members(term) {
                return Err(ScimError::invalid_filter(
                    "members can only be filtered as 'members eq \"id\"' (or members[value eq \"id\"]) joined with 'and'.",
                ));
            }
            false
        };
        exact &= used;
    }
    Ok((sel, exact))
}

fn member_eq(f: &Filter) -> Option<&str> {
    if let Some(v) = eq_string(f, KIND, None, "members", None)
        .or_else(|| eq_string(f, KIND, None, "members", Some("value")))
    {
        return Some(v);
    }
    match f {
        Filter::ValuePath { path, filter } if path.refers_to(KIND, None, "members", None) => {
            match filter.as_ref() {
                Filter::Compare {
                    path,
                    op: CompareOp::Eq,
                    value: Value::String(s),
                } if path.attr.eq_ignore_ascii_case("value") => Some(s),
                _ => None,
            }
        }
        _ => None,
    }
}

fn mentions_members(f: &Filter) -> bool {
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. } => {
            path.attr.eq_ignore_ascii_case("members")
        }
        Filter::And(a, b) | Filter::Or(a, b) => mentions_members(a) || mentions_members(b),
        Filter::Not(a) => mentions_members(a),
    }
}

async fn run_list(state: &AppState, t: &ScimTenant, p: &ListParams) -> ScimResult<Response> {
    let (sel, exact) = selector(p.filter.as_ref())?;
    let proj = Projection {
        attributes: p.attributes.clone(),
        excluded: p.excluded.clone(),
    };
    let with_members = !proj.omits("members");
    let render_all = |rows: Vec<GroupRecord>| async move {
        let members = if with_members {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Some(scim_groups::members_of(&state.db, &ids).await?)
        } else {
            None
        };
        Ok::<_, ScimError>(
            rows.iter()
                .map(|r| {
                    render(
                        r,
                        members
                            .as_ref()
                            .map(|m| m.get(&r.id).map(Vec::as_slice).unwrap_or(&[])),
                        t,
                    )
                })
                .collect::<Vec<Value>>(),
        )
    };
    if exact && p.sort_by.is_none() {
        let total = scim_groups::count(&state.db, &t.id, &sel).await?;
        let rows = if p.count == 0 {
            Vec::new()
        } else {
            scim_groups::select(&state.db, &t.id, &sel, Some((p.count, p.start_index - 1))).await?
        };
        let page = render_all(rows)
            .await?
            .iter()
            .map(|d| project(d, KIND, &p.attributes, &p.excluded))
            .collect();
        return Ok(scim_json(
            StatusCode::OK,
            &list_response(total, p.start_index, page),
        ));
    }
    // The member condition is already applied by the store: evaluate the rest in memory.
    let rest = p.filter.as_ref().map(strip_member_terms);
    let rows = scim_groups::select(&state.db, &t.id, &sel, None).await?;
    let docs = render_all(rows).await?;
    let params = ListParams {
        filter: rest.flatten(),
        ..p.clone()
    };
    Ok(scim_json(
        StatusCode::OK,
        &list_in_memory(KIND, docs, &params),
    ))
}

/// The filter without its top-level member conditions (`None` when nothing else is left).
fn strip_member_terms(f: &Filter) -> Option<Filter> {
    conjuncts(f)
        .into_iter()
        .filter(|t| member_eq(t).is_none())
        .cloned()
        .reduce(|a, b| Filter::And(Box::new(a), Box::new(b)))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    run_list(&state, &t, &list_params_from_query(&q)?).await
}

pub async fn search(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    body: Body,
) -> ScimResult<Response> {
    let body = read_json(body).await?;
    run_list(&state, &t, &list_params_from_search(&body)?).await
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let rec = load(&state, &t, &id).await?;
    check_preconditions(&headers, &etag(rec.version))?;
    let body = read_json(body).await?;
    let members = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
        .map(|(_, v)| member_ids(v))
        .transpose()?;
    let doc = normalize(KIND, body, &["members"])?;
    // PUT replaces the member list only when it carries one (RFC 7644 §3.5.1 leaves unsent
    // attributes to the server; clearing a large group by omission would be a nasty surprise).
    let ops = match &members {
        Some(ids) => vec![MemberOp::RemoveAll, MemberOp::Add(ids.clone())],
        None => Vec::new(),
    };
    let kinds = resolve(&state, &t, members.as_deref().unwrap_or(&[])).await?;
    let saved = save(&state, &t, &rec, Some(&doc), &ops, &kinds).await?;
    let doc = render_with(&state, &t, &saved, &proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

async fn save(
    state: &AppState,
    t: &ScimTenant,
    rec: &GroupRecord,
    doc: Option<&Value>,
    ops: &[MemberOp],
    kinds: &HashMap<String, MemberKind>,
) -> ScimResult<GroupRecord> {
    let (name, ext, resource) = match doc {
        Some(d) => (display_name(d)?, external_id(d), storable(d)),
        None => (
            rec.display_name.clone(),
            rec.external_id.clone(),
            rec.resource.clone(),
        ),
    };
    let g = GroupWrite {
        display_name: &name,
        external_id: ext.as_deref(),
        resource: &resource,
    };
    let now = state.clock.now_ms();
    match scim_groups::update(
        &state.db,
        &t.id,
        &rec.id,
        rec.version,
        doc.map(|_| &g),
        ops,
        kinds,
        now,
    )
    .await
    {
        Ok(r) => Ok(r),
        Err(StoreError::Conflict(what)) if what == "version" => Err(ScimError::new(
            StatusCode::CONFLICT,
            None,
            "The group was changed by another request at the same time; retry.",
        )),
        Err(StoreError::Conflict(_)) => Err(conflict(state, t, &name, Some(&rec.id)).await),
        Err(e) => Err(e.into()),
    }
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let req = PatchRequest::from_value(read_json(body).await?)?;
    let rec = load(&state, &t, &id).await?;
    check_preconditions(&headers, &etag(rec.version))?;
    let mut doc = render(&rec, None, &t);
    if let Some(o) = doc.as_object_mut() {
        strip_keys(o, &["meta"]);
    }
    let before = doc.clone();
    let changes = apply_group_patch(&mut doc, &req.operations)?;
    let mut ops = Vec::new();
    let mut added = Vec::new();
    for c in changes {
        match c {
            MemberChange::Add(ids) => {
                added.extend(ids.iter().cloned());
                ops.push(MemberOp::Add(ids));
            }
            MemberChange::Remove(ids) => ops.push(MemberOp::Remove(ids)),
            MemberChange::RemoveAll => ops.push(MemberOp::RemoveAll),
            MemberChange::ReplaceAll(ids) => {
                added.extend(ids.iter().cloned());
                ops.push(MemberOp::RemoveAll);
                ops.push(MemberOp::Add(ids));
            }
        }
    }
    let kinds = resolve(&state, &t, &added).await?;
    if added.contains(&rec.id) {
        return Err(ScimError::invalid_value(
            "A group cannot be a member of itself.",
        ));
    }
    let doc_changed = doc != before;
    let saved = save(&state, &t, &rec, doc_changed.then_some(&doc), &ops, &kinds).await?;
    if proj.is_requested() {
        let doc = render_with(&state, &t, &saved, &proj).await?;
        return Ok(resource_response(StatusCode::OK, &doc, false));
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&etag(saved.version)) {
        res.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(res)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let rec = load(&state, &t, &id).await?;
    check_preconditions(&headers, &etag(rec.version))?;
    scim_groups::delete(&state.db, &t.id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;

    fn sel(f: &str) -> ScimResult<(GroupSelector, bool)> {
        selector(Some(&parse_filter(f).unwrap()))
    }

    #[test]
    fn entra_membership_checks_are_exact_lookups() {
        for f in [
            r#"id eq "g1" and members eq "u1""#,
            r#"id eq "g1" and members[value eq "u1"]"#,
            r#"id eq "g1" and members.value eq "u1""#,
        ] {
            let (s, exact) = sel(f).unwrap();
            assert_eq!(
                (s.id.as_deref(), s.member.as_deref()),
                (Some("g1"), Some("u1")),
                "{f}"
            );
            assert!(exact, "{f}");
        }
        let (s, exact) = sel(r#"displayName eq "Sales""#).unwrap();
        assert_eq!(s.display_name.as_deref(), Some("Sales"));
        assert!(exact);
    }

    #[test]
    fn unsupported_member_filters_are_refused() {
        assert_eq!(
            sel(r#"members eq "a" or displayName eq "b""#)
                .unwrap_err()
                .scim_type,
            Some("invalidFilter")
        );
        assert!(sel(r#"members pr"#).is_err());
        let (_, exact) = sel(r#"displayName sw "Sa""#).unwrap();
        assert!(!exact);
    }

    #[test]
    fn member_ids_accept_objects_and_strings() {
        assert_eq!(
            member_ids(&json!([{"value": "a", "$ref": null}, "b"])).unwrap(),
            vec!["a", "b"]
        );
        assert!(member_ids(&json!([{"display": "x"}])).is_err());
        assert!(member_ids(&json!("a")).is_err());
    }
}
