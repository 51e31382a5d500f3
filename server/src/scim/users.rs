//! `/Users`: create, read, list/search, replace, patch and deprovision.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

use super::error::{ScimError, ScimResult};
use super::filter::{CompareOp, Filter};
use super::patch::{PatchRequest, apply_patch};
use super::projection::project;
use super::query::Target;
use super::resource::{conjuncts, meta, normalize, stored_doc};
use super::schema::ResourceKind;
use super::wire::{
    ListParams, ScimTenant, check_preconditions, list_params_from_query, list_params_from_search,
    list_response, not_modified, projection_from_query, read_json, resource_response, scim_json,
};
use crate::AppState;
use crate::domain::query::{Column, Cond, Page, Query as DirQuery, TextOp};
use crate::store::query::{Fetched, Table};
use crate::store::scim_users::{self, SearchIndex, UserColumns, UserRecord};
use crate::store::{StoreError, UniqueKey};

const KIND: ResourceKind = ResourceKind::User;

/// The SCIM document of a stored user: the client's document with the authoritative columns,
/// the derived `groups` and `meta`.
pub fn render(rec: &UserRecord, groups: &[(String, String)], t: &ScimTenant) -> Value {
    let mut doc = stored_doc(&rec.resource);
    doc.insert("id".into(), json!(rec.id));
    doc.insert("userName".into(), json!(rec.user_name));
    doc.insert("active".into(), json!(rec.active));
    if let Some(x) = &rec.external_id {
        doc.insert("externalId".into(), json!(x));
    }
    // Accounts made in the console have no SCIM document yet: show what the columns know.
    if !doc.contains_key("name") && (rec.given_name.is_some() || rec.family_name.is_some()) {
        let mut name = serde_json::Map::new();
        if let Some(g) = &rec.given_name {
            name.insert("givenName".into(), json!(g));
        }
        if let Some(f) = &rec.family_name {
            name.insert("familyName".into(), json!(f));
        }
        doc.insert("name".into(), Value::Object(name));
    }
    if !doc.contains_key("displayName")
        && let Some(d) = &rec.display_name
    {
        doc.insert("displayName".into(), json!(d));
    }
    if !doc.contains_key("emails")
        && let Some(e) = &rec.email
    {
        doc.insert(
            "emails".into(),
            json!([{ "value": e, "type": "work", "primary": true }]),
        );
    }
    if !doc.contains_key("schemas") {
        doc.insert("schemas".into(), json!([KIND.core_schema().id]));
    }
    if !groups.is_empty() {
        let list: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "$ref": format!("{}/Groups/{id}", t.base_url), "display": name, "type": "direct" })
            })
            .collect();
        doc.insert("groups".into(), Value::Array(list));
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

fn non_empty(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string that is not blank, kept as sent (the console and member lists show exactly what the
/// document holds, and the search index compares that).
fn as_sent(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

fn get_ci<'a>(obj: &'a Value, key: &str) -> &'a Value {
    obj.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

/// The indexed columns of a document, enforcing the connector's mandatory attributes:
/// userName, an email, name.givenName and name.familyName.
pub fn columns(doc: &Value) -> ScimResult<UserColumns> {
    user_columns(doc, true)
}

/// As [`columns`]; `names_required` is false for a console admin, whose account was made with a
/// display name only: SCIM may update it (Entra links an admin's account) without first sending
/// a given and family name.
fn user_columns(doc: &Value, names_required: bool) -> ScimResult<UserColumns> {
    let missing = |attr: &str| {
        ScimError::invalid_value(format!(
            "{attr} is required by BitaBIZ and is missing or empty."
        ))
    };
    let user_name = non_empty(get_ci(doc, "userName")).ok_or_else(|| missing("userName"))?;
    let name = get_ci(doc, "name");
    let given_name = as_sent(get_ci(name, "givenName"));
    let family_name = as_sent(get_ci(name, "familyName"));
    if names_required {
        given_name
            .as_ref()
            .ok_or_else(|| missing("name.givenName"))?;
        family_name
            .as_ref()
            .ok_or_else(|| missing("name.familyName"))?;
    }
    let emails: Vec<&Value> = get_ci(doc, "emails")
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let email_of = |pred: &dyn Fn(&Value) -> bool| {
        emails
            .iter()
            .filter(|e| pred(e))
            .find_map(|e| non_empty(get_ci(e, "value")))
    };
    // The console shows the work email, else the primary one, else the first.
    let email = email_of(&|e| {
        get_ci(e, "type")
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
    })
    .or_else(|| email_of(&|e| get_ci(e, "primary").as_bool() == Some(true)))
    .or_else(|| email_of(&|_| true))
    .ok_or_else(|| missing("emails (at least one email address)"))?;
    let active = match get_ci(doc, "active") {
        Value::Bool(b) => *b,
        Value::Null => true,
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ScimError::invalid_value(format!(
                "active must be a boolean, got {other}."
            )));
        }
    };
    Ok(UserColumns {
        user_name,
        external_id: non_empty(get_ci(doc, "externalId")),
        given_name,
        family_name,
        display_name: as_sent(get_ci(doc, "displayName")),
        email: Some(email),
        active,
    })
}

/// What a stored document keeps: the document minus what the server derives, and minus any
/// `password` a client sends (BitaBIZ users sign in through SSO; a SCIM password would
/// otherwise sit in the database in clear).
pub fn storable(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        super::resource::strip_keys(o, &["id", "meta", "groups", "password"]);
    }
    d.to_string()
}

/// A record as it will be stored (for building its search index before the write).
pub fn record(id: String, cols: &UserColumns, resource: &str, now: i64) -> UserRecord {
    UserRecord::created(id, cols, resource, now)
}

/// The search index of a user as SCIM renders it (without `groups` and `meta`, which the
/// database answers from memberships and columns).
pub fn search_index(rec: &UserRecord) -> SearchIndex {
    let none = ScimTenant {
        id: String::new(),
        slug: String::new(),
        base_url: String::new(),
    };
    let ix = super::index::build(&render(rec, &[], &none), KIND);
    // A column stands in for the index only when the attribute has exactly one string value.
    let single = |key: &str| match ix["v"][key].as_array().map(Vec::as_slice) {
        Some([Value::String(s)]) => Some(s.clone()),
        _ => None,
    };
    SearchIndex {
        display_name_lc: single("displayname"),
        given_name_lc: single("name.givenname"),
        family_name_lc: single("name.familyname"),
        doc: ix.to_string(),
    }
}

/// A 409 naming what collided, so the client (and the admin reading Entra's log) knows.
fn conflict(key: &UniqueKey, cols: &UserColumns) -> ScimError {
    match key {
        UniqueKey::ExternalId => ScimError::uniqueness(format!(
            "externalId '{}' is already in use in this organisation.",
            cols.external_id.as_deref().unwrap_or("")
        )),
        _ => ScimError::uniqueness(format!(
            "userName '{}' is already in use in this organisation.",
            cols.user_name
        )),
    }
}

async fn render_one(state: &AppState, t: &ScimTenant, rec: &UserRecord) -> ScimResult<Value> {
    let groups = scim_users::groups_of(&state.db, &t.id, std::slice::from_ref(&rec.id)).await?;
    Ok(render(
        rec,
        groups.get(&rec.id).map(Vec::as_slice).unwrap_or(&[]),
        t,
    ))
}

async fn load(state: &AppState, t: &ScimTenant, id: &str) -> ScimResult<UserRecord> {
    scim_users::get(&state.db, &t.id, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ScimError::not_found(format!("User {id} not found.")),
            e => e.into(),
        })
}

pub async fn create(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let doc = normalize(KIND, read_json(body).await?, &["groups"])?;
    let cols = columns(&doc)?;
    let now = state.clock.now_ms();
    let resource = storable(&doc);
    let id = crate::store::new_id();
    let ix = search_index(&record(id.clone(), &cols, &resource, now));
    let rec = match scim_users::insert(
        &state.db,
        state.writes.as_ref(),
        &t.id,
        &id,
        &cols,
        &resource,
        &ix,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(StoreError::Conflict(key)) => return Err(conflict(&key, &cols)),
        Err(e) => return Err(e.into()),
    };
    let full = render(&rec, &[], &t);
    Ok(resource_response(
        StatusCode::CREATED,
        &project(&full, KIND, &proj.attributes, &proj.excluded),
        true,
    ))
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
    if not_modified(&headers, &super::wire::etag(rec.version)) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let doc = render_one(&state, &t, &rec).await?;
    Ok(resource_response(
        StatusCode::OK,
        &project(&doc, KIND, &proj.attributes, &proj.excluded),
        false,
    ))
}

/// `emails[type eq "work" and value eq "x"]` (also as Entra writes it, `...].value eq "x"`).
fn work_email_eq(f: &Filter) -> Option<&str> {
    let Filter::ValuePath { path, filter } = f else {
        return None;
    };
    if !path.refers_to(KIND, None, "emails", None) {
        return None;
    }
    let terms = conjuncts(filter);
    let is_work = terms.iter().any(|t| {
        matches!(t, Filter::Compare { path, op: CompareOp::Eq, value: Value::String(s) }
            if path.attr.eq_ignore_ascii_case("type") && s.eq_ignore_ascii_case("work"))
    });
    let value = terms.iter().find_map(|t| match t {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(s),
        } if path.attr.eq_ignore_ascii_case("value") => Some(s.as_str()),
        _ => None,
    });
    if is_work { value } else { None }
}

async fn run_list(state: &AppState, t: &ScimTenant, p: &ListParams) -> ScimResult<Response> {
    let target = Target {
        kind: KIND,
        base_url: &t.base_url,
    };
    let mut cond = match &p.filter {
        Some(f) => target.cond(f)?,
        None => Cond::Const(true),
    };
    // Entra's work-email lookup narrows through the indexed work-email column first (the index
    // condition still decides). The column holds the first work email a user has.
    if let Some(v) = p
        .filter
        .as_ref()
        .and_then(|f| conjuncts(f).into_iter().find_map(work_email_eq))
    {
        cond = Cond::and(vec![
            Cond::Column(Column::EmailLc, TextOp::Eq, v.to_lowercase()),
            cond,
        ]);
    }
    let query = DirQuery {
        cond,
        sort: target.sort(p.sort_by.as_ref(), p.descending)?,
        page: Page {
            offset: p.start_index - 1,
            limit: p.count,
        },
    };
    let columns = scim_users::columns_with_groups(state.db.dialect());
    let (total, page) = crate::store::query::page_of::<scim_users::UserWithGroups>(
        &state.db,
        Table::Users,
        &t.id,
        columns,
        &query,
    )
    .await?;
    let docs = match page {
        _ if p.count == 0 => Vec::new(),
        Fetched::Rows(rows) => rows
            .iter()
            .map(|r| render(&r.user, &r.group_list(), t))
            .collect(),
        Fetched::Ids(ids) => {
            let rows = scim_users::by_ids(&state.db, &t.id, &ids).await?;
            render_all(state, t, &rows).await?
        }
    };
    let page = docs
        .iter()
        .map(|d| project(d, KIND, &p.attributes, &p.excluded))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, p.start_index, page),
    ))
}

async fn render_all(
    state: &AppState,
    t: &ScimTenant,
    rows: &[UserRecord],
) -> ScimResult<Vec<Value>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let groups = scim_users::groups_of(&state.db, &t.id, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| render(r, groups.get(&r.id).map(Vec::as_slice).unwrap_or(&[]), t))
        .collect())
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
    check_preconditions(&headers, &super::wire::etag(rec.version))?;
    let body = read_json(body).await?;
    if let Some(sent) = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")))
        && sent.1.as_str().is_some_and(|s| s != id)
    {
        return Err(ScimError::bad_request(
            super::error::ScimType::Mutability,
            "id is read-only and cannot be changed.",
        ));
    }
    let doc = normalize(KIND, body, &["groups"])?;
    // PUT replaces whatever is there (last writer wins) unless the client pinned a version.
    let expect = headers
        .contains_key(axum::http::header::IF_MATCH)
        .then_some(rec.version);
    match write(&state, &t, &rec, &doc, expect).await? {
        Some(saved) => respond(&state, &t, &saved, &proj).await,
        None => Err(stale()),
    }
}

/// Tries a PATCH this many times when a concurrent write got in between the read and the write
/// (and the client sent no `If-Match`), so parallel attribute changes never lose one.
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
    for _ in 0..PATCH_ATTEMPTS {
        let rec = load(&state, &t, &id).await?;
        check_preconditions(&headers, &super::wire::etag(rec.version))?;
        let mut doc = render(&rec, &[], &t);
        if let Some(o) = doc.as_object_mut() {
            super::resource::strip_keys(o, &["meta"]);
        }
        apply_patch(&mut doc, &req.operations, KIND)?;
        match write(&state, &t, &rec, &doc, Some(rec.version)).await? {
            Some(saved) => return respond(&state, &t, &saved, &proj).await,
            None if if_match => return Err(stale()),
            None => continue,
        }
    }
    Err(ScimError::new(
        StatusCode::CONFLICT,
        None,
        "The user is being changed by many requests at the same time; retry.",
    ))
}

fn stale() -> ScimError {
    ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "The user was changed by another request since the version in If-Match.",
    )
}

/// Writes `doc` over `rec`; `None` when `expect` was given and the row has moved on.
async fn write(
    state: &AppState,
    t: &ScimTenant,
    rec: &UserRecord,
    doc: &Value,
    expect: Option<i64>,
) -> ScimResult<Option<UserRecord>> {
    let cols = user_columns(doc, !rec.is_admin)?;
    let now = state.clock.now_ms();
    let resource = storable(doc);
    let ix = search_index(&record(rec.id.clone(), &cols, &resource, now));
    // An admin signs in with this address: the organisation must see the change, and the
    // entry commits with it.
    let email_change = (rec.is_admin && cols.email != rec.email).then(|| {
        format!(
            "Sign-in email of admin {} changed by SCIM provisioning: {} → {}",
            cols.user_name,
            rec.email.as_deref().unwrap_or("(none)"),
            cols.email.as_deref().unwrap_or("(none)")
        )
    });
    let audit = email_change
        .as_deref()
        .map(|detail| crate::store::audit::NewAuditEntry {
            tenant_id: &t.id,
            actor: "scim",
            action: "admin_email_changed",
            detail,
            client_addr: "",
        });
    match scim_users::update(
        &state.db,
        state.writes.as_ref(),
        &t.id,
        &rec.id,
        expect,
        &cols,
        &resource,
        &ix,
        audit,
        now,
    )
    .await
    {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::Stale) => Ok(None),
        Err(StoreError::Conflict(key)) => Err(conflict(&key, &cols)),
        Err(e) => Err(e.into()),
    }
}

async fn respond(
    state: &AppState,
    t: &ScimTenant,
    saved: &UserRecord,
    proj: &super::wire::Projection,
) -> ScimResult<Response> {
    let full = render_one(state, t, saved).await?;
    Ok(resource_response(
        StatusCode::OK,
        &project(&full, KIND, &proj.attributes, &proj.excluded),
        false,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let rec = load(&state, &t, &id).await?;
    check_preconditions(&headers, &super::wire::etag(rec.version))?;
    scim_users::deprovision(&state.db, &t.id, &id, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_derived_attributes_are_never_stored() {
        let doc = json!({"userName": "a", "password": "hunter2hunter2", "Password": "x", "groups": [], "meta": {}});
        let stored = storable(&doc);
        assert!(!stored.contains("hunter2"), "{stored}");
        assert!(!stored.to_lowercase().contains("password"), "{stored}");
        assert!(!stored.contains("groups") && !stored.contains("meta"));
        assert!(stored.contains("userName"));
    }

    #[test]
    fn mandatory_attributes_are_named() {
        let ok = json!({"userName": "a@b.c", "name": {"givenName": "A", "familyName": "B"},
                        "emails": [{"value": "home@b.c", "type": "home"}, {"value": "w@b.c", "type": "work"}]});
        let c = columns(&ok).unwrap();
        assert_eq!(c.email.as_deref(), Some("w@b.c"));
        assert!(c.active);
        for (drop, named) in [
            ("userName", "userName"),
            ("name", "name.givenName"),
            ("emails", "emails"),
        ] {
            let mut d = ok.clone();
            d.as_object_mut().unwrap().remove(drop);
            let e = columns(&d).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(crate::scim::error::ScimType::InvalidValue)
            );
            assert!(e.detail.contains(named), "{}", e.detail);
        }
        let mut d = ok.clone();
        d["name"]["familyName"] = json!("  ");
        assert!(columns(&d).unwrap_err().detail.contains("name.familyName"));
        let mut d = ok;
        d["active"] = json!("False");
        assert!(!columns(&d).unwrap().active);
    }
}
