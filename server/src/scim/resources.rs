//! The HTTP side of `/Users` and `/Groups`, written once for both: each handler reads the
//! request, calls the directory service and writes the answer. What differs between the two
//! kinds (how a resource is rendered, how a list is read) is the [`Resource`] trait, which
//! `users::Users` and `groups::Groups` implement. `/Bulk` calls the same operations
//! ([`create_op`], [`replace_op`], [`patch_op`], [`delete_op`]) with the tenant the gate
//! already checked.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;

use super::error::{ScimError, ScimResult};
use super::patch::PatchRequest;
use super::schema::ResourceKind;
use super::wire::{
    ListParams, Projection, ScimTenant, etag, list_params_from_query, list_params_from_search,
    preconditions, projection_from_query, read_json, resource_response,
};
use crate::AppState;
use crate::directory::{DirResult, Directory, LogLink, Preconditions};

/// A kind of SCIM resource as the HTTP layer serves it.
pub trait Resource: Send + Sync + 'static {
    const KIND: ResourceKind;
    /// Whether a PATCH that asks for no attributes answers 204 (a group's document carries its
    /// members, which may be 100,000) instead of the resource.
    const PATCH_ANSWERS_NO_CONTENT: bool;
    type Record: Send + Sync;

    fn version(rec: &Self::Record) -> i64;
    fn get(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
    ) -> impl Future<Output = DirResult<Self::Record>> + Send;
    fn create(
        dir: &Directory,
        t: &ScimTenant,
        body: Value,
    ) -> impl Future<Output = DirResult<Self::Record>> + Send;
    fn replace(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        body: Value,
        pre: &Preconditions,
        link: &LogLink,
    ) -> impl Future<Output = DirResult<Self::Record>> + Send;
    fn patch(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        req: &PatchRequest,
        pre: &Preconditions,
        link: &LogLink,
    ) -> impl Future<Output = DirResult<Self::Record>> + Send;
    fn remove(
        dir: &Directory,
        t: &ScimTenant,
        id: &str,
        pre: &Preconditions,
        link: &LogLink,
    ) -> impl Future<Output = DirResult<()>> + Send;
    /// The resource's document as the projection asks for it (reading what it derives).
    fn render(
        state: &AppState,
        t: &ScimTenant,
        rec: &Self::Record,
        proj: &Projection,
    ) -> impl Future<Output = ScimResult<Value>> + Send;
    /// A resource just created: it belongs to no group and has the members it was sent with.
    fn render_created(
        state: &AppState,
        t: &ScimTenant,
        rec: &Self::Record,
        proj: &Projection,
    ) -> impl Future<Output = ScimResult<Value>> + Send;
    /// One page of a list or search.
    fn list(
        state: &AppState,
        t: &ScimTenant,
        p: &ListParams,
    ) -> impl Future<Output = ScimResult<Response>> + Send;
}

/// The handlers' error answers: a directory failure is mapped once, in `wire`.
fn scim<T>(r: DirResult<T>) -> ScimResult<T> {
    r.map_err(ScimError::from)
}

pub async fn create_op<R: Resource>(
    state: &AppState,
    t: &ScimTenant,
    proj: &Projection,
    body: Value,
) -> ScimResult<Response> {
    let rec = scim(R::create(state.directory(), t, body).await)?;
    let doc = R::render_created(state, t, &rec, proj).await?;
    Ok(resource_response(StatusCode::CREATED, &doc, true))
}

pub async fn replace_op<R: Resource>(
    state: &AppState,
    t: &ScimTenant,
    id: &str,
    link: &LogLink,
    proj: &Projection,
    pre: &Preconditions,
    body: Value,
) -> ScimResult<Response> {
    let rec = scim(R::replace(state.directory(), t, id, body, pre, link).await)?;
    let doc = R::render(state, t, &rec, proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

pub async fn patch_op<R: Resource>(
    state: &AppState,
    t: &ScimTenant,
    id: &str,
    link: &LogLink,
    proj: &Projection,
    pre: &Preconditions,
    body: Value,
) -> ScimResult<Response> {
    let req = PatchRequest::from_value(body)?;
    let rec = scim(R::patch(state.directory(), t, id, &req, pre, link).await)?;
    if R::PATCH_ANSWERS_NO_CONTENT && !proj.is_requested() {
        let mut res = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(R::version(&rec))) {
            res.headers_mut().insert(header::ETAG, v);
        }
        return Ok(res);
    }
    let doc = R::render(state, t, &rec, proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

pub async fn delete_op<R: Resource>(
    state: &AppState,
    t: &ScimTenant,
    id: &str,
    link: &LogLink,
    pre: &Preconditions,
) -> ScimResult<Response> {
    scim(R::remove(state.directory(), t, id, pre, link).await)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn create<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    create_op::<R>(&state, &t, &proj, read_json(body).await?).await
}

pub async fn get_one<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let rec = scim(R::get(state.directory(), &t, &id).await)?;
    if preconditions(&headers).not_modified(&etag(R::version(&rec))) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let doc = R::render(&state, &t, &rec, &proj).await?;
    Ok(resource_response(StatusCode::OK, &doc, false))
}

pub async fn list<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    R::list(&state, &t, &list_params_from_query(&q)?).await
}

pub async fn search<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    body: Body,
) -> ScimResult<Response> {
    let body = read_json(body).await?;
    R::list(&state, &t, &list_params_from_search(&body)?).await
}

pub async fn replace<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    link: Option<Extension<LogLink>>,
    headers: HeaderMap,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let body = read_json(body).await?;
    let link = link.map(|l| l.0).unwrap_or_default();
    replace_op::<R>(
        &state,
        &t,
        &id,
        &link,
        &proj,
        &preconditions(&headers),
        body,
    )
    .await
}

pub async fn patch<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    link: Option<Extension<LogLink>>,
    headers: HeaderMap,
    body: Body,
) -> ScimResult<Response> {
    let proj = projection_from_query(&q)?;
    let body = read_json(body).await?;
    let link = link.map(|l| l.0).unwrap_or_default();
    patch_op::<R>(
        &state,
        &t,
        &id,
        &link,
        &proj,
        &preconditions(&headers),
        body,
    )
    .await
}

pub async fn delete<R: Resource>(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
    link: Option<Extension<LogLink>>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let link = link.map(|l| l.0).unwrap_or_default();
    delete_op::<R>(&state, &t, &id, &link, &preconditions(&headers)).await
}
