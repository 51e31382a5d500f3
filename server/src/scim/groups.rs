//! `/Groups` over HTTP: how a group is rendered and how a list is read. Members live in their
//! own table; a request that does not ask for members never loads them. The handlers are the
//! generic ones of `resources`; the rules are the directory service's (`directory::groups`).

use axum::response::Response;
use serde_json::Value;

use super::error::ScimResult;
use super::projection::project;
use super::query::Target;
use super::resources::Resource;
use super::schema::ResourceKind;
use super::wire::{ListParams, Projection, ScimTenant, list_answer};
use crate::AppState;
use crate::directory::groups::render;
use crate::directory::{DirResult, Directory, LogLink, Preconditions};
use crate::domain::query::{Cond, Page, Query as DirQuery};
use crate::store::query::{Fetched, Table};
use crate::store::scim_groups::{self, GroupRecord};

const KIND: ResourceKind = ResourceKind::Group;

/// `/Groups`.
pub struct Groups;

impl Resource for Groups {
    const KIND: ResourceKind = KIND;
    const PATCH_ANSWERS_NO_CONTENT: bool = true;
    type Record = GroupRecord;

    fn version(rec: &GroupRecord) -> i64 {
        rec.version
    }
    async fn get(dir: &Directory, t: &ScimTenant, id: &str) -> DirResult<GroupRecord> {
        dir.group(t, id).await
    }
    async fn create(dir: &Directory, t: &ScimTenant, body: Value) -> DirResult<GroupRecord> {
        dir.create_group(t, body).await
    }
    async fn replace(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        body: Value,
        pre: &Preconditions,
        _link: &LogLink,
    ) -> DirResult<GroupRecord> {
        dir.replace_group(t, id, body, pre).await
    }
    async fn patch(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        req: &super::patch::PatchRequest,
        pre: &Preconditions,
        _link: &LogLink,
    ) -> DirResult<GroupRecord> {
        dir.patch_group(t, id, req, pre).await
    }
    async fn remove(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        pre: &Preconditions,
        _link: &LogLink,
    ) -> DirResult<()> {
        dir.delete_group(t, id, pre).await
    }
    async fn render(
        state: &AppState,
        t: &ScimTenant,
        rec: &GroupRecord,
        proj: &Projection,
    ) -> ScimResult<Value> {
        render_with(state, t, rec, proj).await
    }
    async fn render_created(
        state: &AppState,
        t: &ScimTenant,
        rec: &GroupRecord,
        proj: &Projection,
    ) -> ScimResult<Value> {
        render_with(state, t, rec, proj).await
    }
    async fn list(state: &AppState, t: &ScimTenant, p: &ListParams) -> ScimResult<Response> {
        run_list(state, t, p).await
    }
}

/// The group's document; its members are read only when the projection keeps them.
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
    Ok(list_answer(
        total,
        p.start_index,
        page,
        state.provlog.is_on(),
    ))
}
