//! `/Users` over HTTP: how a user is rendered and how a list is read. The handlers are the
//! generic ones of `resources`; the rules are the directory service's (`directory::users`).

use serde_json::Value;

use super::error::ScimResult;
use super::filter::{CompareOp, Filter};
use super::projection::project;
use super::query::Target;
use super::resource::conjuncts;
use super::resources::Resource;
use super::schema::ResourceKind;
use super::wire::{ListParams, Projection, ScimTenant, list_answer};
use crate::AppState;
use crate::directory::users::render;
use crate::directory::{DirResult, Directory, LogLink, Preconditions};
use crate::domain::query::{Column, Cond, Page, Query as DirQuery, TextOp};
use crate::store::query::{Fetched, Table};
use crate::store::scim_users::{self, UserRecord};
use axum::response::Response;

const KIND: ResourceKind = ResourceKind::User;

/// `/Users`.
pub struct Users;

impl Resource for Users {
    const KIND: ResourceKind = KIND;
    const PATCH_ANSWERS_NO_CONTENT: bool = false;
    type Record = UserRecord;

    fn version(rec: &UserRecord) -> i64 {
        rec.version
    }
    async fn get(dir: &Directory, t: &ScimTenant, id: &str) -> DirResult<UserRecord> {
        dir.user(t, id).await
    }
    async fn create(dir: &Directory, t: &ScimTenant, body: Value) -> DirResult<UserRecord> {
        dir.create_user(t, body).await
    }
    async fn replace(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        body: Value,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<UserRecord> {
        dir.replace_user(t, id, body, pre, link).await
    }
    async fn patch(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        req: &super::patch::PatchRequest,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<UserRecord> {
        dir.patch_user(t, id, req, pre, link).await
    }
    async fn remove(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<()> {
        dir.deprovision_user(t, id, pre, link).await
    }
    async fn render(
        state: &AppState,
        t: &ScimTenant,
        rec: &UserRecord,
        proj: &Projection,
    ) -> ScimResult<Value> {
        let groups = scim_users::groups_of(&state.db, &t.id, std::slice::from_ref(&rec.id)).await?;
        let doc = render(
            rec,
            groups.get(&rec.id).map(Vec::as_slice).unwrap_or(&[]),
            t,
        );
        Ok(project(&doc, KIND, &proj.attributes, &proj.excluded))
    }
    async fn render_created(
        _state: &AppState,
        t: &ScimTenant,
        rec: &UserRecord,
        proj: &Projection,
    ) -> ScimResult<Value> {
        Ok(project(
            &render(rec, &[], t),
            KIND,
            &proj.attributes,
            &proj.excluded,
        ))
    }
    async fn list(state: &AppState, t: &ScimTenant, p: &ListParams) -> ScimResult<Response> {
        run_list(state, t, p).await
    }
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
    Ok(list_answer(
        total,
        p.start_index,
        page,
        state.provlog.is_on(),
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
