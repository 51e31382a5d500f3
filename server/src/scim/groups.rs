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
use super::patch::{MemberChange, PatchRequest, apply_group_patch};
use super::projection::project;
use super::query::Target;
use super::resource::{meta, normalize, stored_doc, strip_keys};
use super::schema::ResourceKind;
use super::wire::{
    ListParams, Projection, ScimTenant, check_preconditions, etag, list_params_from_query,
    list_params_from_search, list_response, not_modified, projection_from_query, read_json,
    resource_response, scim_json,
};
use crate::AppState;
use crate::domain::query::{Cond, Page, Query as DirQuery};
use crate::store::query::{Fetched, Table};
use crate::store::scim_groups::{self, GroupRecord, GroupWrite, Member, MemberKind, MemberOp};
use crate::store::{StoreError, UniqueKey};

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

/// The search index of a group as SCIM renders it (members and `meta` are answered from their
/// tables and columns).
pub fn search_index(rec: &GroupRecord) -> String {
    let none = ScimTenant {
        id: String::new(),
        slug: String::new(),
        base_url: String::new(),
    };
    super::index::build(&render(rec, None, &none), KIND).to_string()
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

fn conflict(key: &UniqueKey, name: &str) -> ScimError {
    match key {
        UniqueKey::ExternalId => ScimError::uniqueness(
            "That externalId is already used by another group of this organisation.",
        ),
        _ => ScimError::uniqueness(format!(
            "A group named '{name}' already exists in this organisation."
        )),
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
    let id = crate::store::new_id();
    let now = state.clock.now_ms();
    let search = search_index(&GroupRecord {
        id: id.clone(),
        display_name: name.clone(),
        external_id: ext.clone(),
        resource: resource.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
    });
    let g = GroupWrite {
        id: &id,
        display_name: &name,
        search: &search,
        external_id: ext.as_deref(),
        resource: &resource,
    };
    let rec = match scim_groups::insert(&state.db, &t.id, &g, &with_kinds, now).await {
        Ok(r) => r,
        Err(StoreError::Conflict(key)) => return Err(conflict(&key, &name)),
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

async fn run_list(state: &AppState, t: &ScimTenant, p: &ListParams) -> ScimResult<Response> {
    let target = Target {
        kind: KIND,
        base_url: &t.base_url,
    };
    let query = DirQuery {
        cond: match &p.filter {
            Some(f) => target.cond(f)?,
            None => Cond::Const(true),
        },
        sort: target.sort(p.sort_by.as_ref(), p.descending)?,
        page: Page {
            offset: p.start_index - 1,
            limit: p.count,
        },
    };
    let (total, page) = crate::store::query::page_of(
        &state.db,
        Table::Groups,
        &t.id,
        scim_groups::COLUMNS,
        &query,
    )
    .await?;
    let rows = match page {
        Fetched::Rows(rows) => rows,
        Fetched::Ids(ids) => scim_groups::by_ids(&state.db, &t.id, &ids).await?,
    };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let proj = Projection {
        attributes: p.attributes.clone(),
        excluded: p.excluded.clone(),
    };
    let members = if proj.omits("members") || rows.is_empty() {
        None
    } else {
        Some(scim_groups::members_of(&state.db, &ids).await?)
    };
    let page = rows
        .iter()
        .map(|r| {
            let m = members
                .as_ref()
                .map(|m| m.get(&r.id).map(Vec::as_slice).unwrap_or(&[]));
            project(&render(r, m, t), KIND, &p.attributes, &p.excluded)
        })
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, p.start_index, page),
    ))
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
    let expect = headers
        .contains_key(axum::http::header::IF_MATCH)
        .then_some(rec.version);
    let saved = save(&state, &t, &rec, Some(&doc), &ops, &kinds, expect)
        .await?
        .ok_or_else(stale)?;
    let doc = render_with(&state, &t, &saved, &proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

/// Writes the group: its document (when given) and member changes. `expect` pins the version
/// (a moved row gives `None`); member-only changes commute and need none.
async fn save(
    state: &AppState,
    t: &ScimTenant,
    rec: &GroupRecord,
    doc: Option<&Value>,
    ops: &[MemberOp],
    kinds: &HashMap<String, MemberKind>,
    expect: Option<i64>,
) -> ScimResult<Option<GroupRecord>> {
    let (name, ext, resource) = match doc {
        Some(d) => (display_name(d)?, external_id(d), storable(d)),
        None => (
            rec.display_name.clone(),
            rec.external_id.clone(),
            rec.resource.clone(),
        ),
    };
    let search = search_index(&GroupRecord {
        display_name: name.clone(),
        external_id: ext.clone(),
        resource: resource.clone(),
        ..rec.clone()
    });
    let g = GroupWrite {
        id: &rec.id,
        display_name: &name,
        search: &search,
        external_id: ext.as_deref(),
        resource: &resource,
    };
    let now = state.clock.now_ms();
    match scim_groups::update(
        &state.db,
        &t.id,
        &rec.id,
        expect,
        doc.map(|_| &g),
        ops,
        kinds,
        now,
    )
    .await
    {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::Stale) => Ok(None),
        Err(StoreError::Conflict(key)) => Err(conflict(&key, &name)),
        Err(e) => Err(e.into()),
    }
}

fn stale() -> ScimError {
    ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "The group was changed by another request since the version in If-Match.",
    )
}

/// Attempts of a PATCH that changes the group's own attributes while other writes get in.
const PATCH_ATTEMPTS: usize = 16;

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
    let if_match = headers.contains_key(axum::http::header::IF_MATCH);
    let mut saved = None;
    for _ in 0..PATCH_ATTEMPTS {
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
        // Member-only changes commute: Entra sends them for one group in parallel, and none of
        // them depends on the others. Only a change of the group's own attributes (or a client
        // If-Match) pins the version it was computed from.
        let expect = (doc_changed || if_match).then_some(rec.version);
        match save(
            &state,
            &t,
            &rec,
            doc_changed.then_some(&doc),
            &ops,
            &kinds,
            expect,
        )
        .await?
        {
            Some(s) => {
                saved = Some(s);
                break;
            }
            None if if_match => return Err(stale()),
            None => continue,
        }
    }
    let Some(saved) = saved else {
        return Err(ScimError::new(
            StatusCode::CONFLICT,
            None,
            "The group is being changed by many requests at the same time; retry.",
        ));
    };
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
