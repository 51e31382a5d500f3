//! Discovery (RFC 7644 §4): what this server supports, described exactly.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::{ScimError, ScimResult};
use super::schema::{ALL_SCHEMAS, ResourceKind, schema_json};
use super::wire::{
    MAX_PAYLOAD_BYTES, MAX_RESULTS, ScimTenant, list_response, read_json, scim_json,
};
use crate::AppState;

/// Most operations one /Bulk request may carry (advertised as bulk.maxOperations).
pub const MAX_BULK_OPERATIONS: usize = 1000;

pub fn service_provider_config_json(t: &ScimTenant) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{}/ServiceProviderConfig", t.base_url),
        "patch": { "supported": true },
        "bulk": { "supported": true, "maxOperations": MAX_BULK_OPERATIONS, "maxPayloadSize": MAX_PAYLOAD_BYTES },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The organisation's SCIM bearer token from SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning.",
            "primary": true
        }, {
            "type": "oauth2",
            "name": "OAuth 2.0 client credentials",
            "description": format!("An access token from the token endpoint {}/oauth/token (RFC 6749 §4.4, client credentials from SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning), sent as a bearer token.", t.base_url),
            "specUri": "https://www.rfc-editor.org/rfc/rfc6749",
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", t.base_url)
        }
    })
}

pub async fn service_provider_config(Extension(t): Extension<ScimTenant>) -> Response {
    scim_json(StatusCode::OK, &service_provider_config_json(&t))
}

fn resource_type_json(kind: ResourceKind, t: &ScimTenant) -> Value {
    let (name, endpoint) = (kind.name(), kind.endpoint());
    let description = match kind {
        ResourceKind::User => "User accounts of the organisation",
        ResourceKind::Group => "Groups of the organisation",
    };
    let extensions: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|s| json!({ "schema": s.id, "required": false }))
        .collect();
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": description,
        "schema": kind.core_schema().id,
        "meta": { "resourceType": "ResourceType", "location": format!("{}/ResourceTypes/{name}", t.base_url) }
    });
    if !extensions.is_empty() {
        v["schemaExtensions"] = Value::Array(extensions);
    }
    v
}

pub async fn resource_types(Extension(t): Extension<ScimTenant>) -> Response {
    let all: Vec<Value> = [ResourceKind::User, ResourceKind::Group]
        .iter()
        .map(|k| resource_type_json(*k, &t))
        .collect();
    scim_json(StatusCode::OK, &list_response(all.len() as i64, 1, all))
}

pub async fn resource_type(
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
) -> ScimResult<Response> {
    let kind = match id.to_ascii_lowercase().as_str() {
        "user" => ResourceKind::User,
        "group" => ResourceKind::Group,
        _ => return Err(ScimError::not_found(format!("No resource type '{id}'."))),
    };
    Ok(scim_json(StatusCode::OK, &resource_type_json(kind, &t)))
}

fn schema_with_location(s: &super::schema::SchemaDef, t: &ScimTenant) -> Value {
    let mut v = schema_json(s);
    v["meta"]["location"] = json!(format!("{}/Schemas/{}", t.base_url, s.id));
    v
}

pub async fn schemas(Extension(t): Extension<ScimTenant>) -> Response {
    let all: Vec<Value> = ALL_SCHEMAS
        .iter()
        .map(|s| schema_with_location(s, &t))
        .collect();
    scim_json(StatusCode::OK, &list_response(all.len() as i64, 1, all))
}

pub async fn schema(
    Extension(t): Extension<ScimTenant>,
    Path((_, id)): Path<(String, String)>,
) -> ScimResult<Response> {
    ALL_SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .map(|s| scim_json(StatusCode::OK, &schema_with_location(s, &t)))
        .ok_or_else(|| ScimError::not_found(format!("No schema '{id}'.")))
}

/// POST /.search at the root: searches Users and Groups together (RFC 7644 §3.4.3).
pub async fn root_search(
    State(state): State<AppState>,
    Extension(t): Extension<ScimTenant>,
    body: Body,
) -> ScimResult<Response> {
    use crate::domain::query::{Cond, Page};
    use crate::store::query::{self as sq, RootOrder, Table};
    use crate::store::{scim_groups, scim_users};
    let body = read_json(body).await?;
    let p = super::wire::list_params_from_search(&body)?;
    let cond_for = |kind| -> ScimResult<Cond> {
        let target = super::query::Target {
            kind,
            base_url: &t.base_url,
        };
        match &p.filter {
            Some(f) => target.cond(f),
            None => Ok(Cond::Const(true)),
        }
    };
    let (ucond, gcond) = (
        cond_for(ResourceKind::User)?,
        cond_for(ResourceKind::Group)?,
    );
    let order = match &p.sort_by {
        None => RootOrder::Kind,
        Some(by) if by.refers_to(ResourceKind::User, None, "meta", Some("created")) => {
            RootOrder::Created
        }
        Some(by) if by.refers_to(ResourceKind::User, None, "meta", Some("lastModified")) => {
            RootOrder::Modified
        }
        // Both kinds share the core schema URN prefix rules; a path names the same index key.
        Some(by) => RootOrder::Indexed(super::query::key_of(by, ResourceKind::User)),
    };
    let page = Page {
        offset: p.start_index - 1,
        limit: p.count,
    };
    let search = sq::RootSearch {
        tenant_id: &t.id,
        users: &ucond,
        groups: &gcond,
        order: &order,
        descending: p.descending,
    };
    let (total, found) = if order == RootOrder::Kind {
        sq::root_page_by_kind(&state.db, &search, page).await?
    } else {
        sq::root_page_sorted(&state.db, &search, page).await?
    };
    let ids = |which: Table| -> Vec<String> {
        found
            .iter()
            .filter(|(k, _)| *k == which)
            .map(|(_, id)| id.clone())
            .collect()
    };
    let (user_ids, group_ids) = (ids(Table::Users), ids(Table::Groups));
    let users = scim_users::by_ids(&state.db, &t.id, &user_ids).await?;
    let memberships = scim_users::groups_of(&state.db, &t.id, &user_ids).await?;
    let groups = scim_groups::by_ids(&state.db, &t.id, &group_ids).await?;
    let page: Vec<Value> = found
        .iter()
        .filter_map(|(k, id)| match k {
            Table::Users => users.iter().find(|u| &u.id == id).map(|u| {
                let d = crate::directory::users::render(
                    u,
                    memberships.get(&u.id).map(Vec::as_slice).unwrap_or(&[]),
                    &t,
                );
                super::projection::project(&d, ResourceKind::User, &p.attributes, &p.excluded)
            }),
            Table::Groups => groups.iter().find(|g| &g.id == id).map(|g| {
                let d = crate::directory::groups::render(g, None, &t);
                super::projection::project(&d, ResourceKind::Group, &p.attributes, &p.excluded)
            }),
        })
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, p.start_index, page),
    ))
}
