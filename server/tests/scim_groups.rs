//! SCIM `/Groups` as Microsoft Entra ID drives it (see shared/entra-scim.md), through the real
//! router on a real database (SQLite; PostgreSQL too when TEST_DATABASE_URL is set).

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use scim_support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .unwrap_or_else(|| panic!("members expected: {group}"))
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Entra's membership check: `id eq "<gid>" and members eq "<uid>"` without the member list.
async fn is_member(app: &TestApp, t: &ScimTenant, gid: &str, uid: &str) -> bool {
    let f = format!(r#"id eq "{gid}" and members eq "{uid}""#);
    let r = app
        .scim(
            "GET",
            t,
            &format!("/Groups?excludedAttributes=members&filter={}", enc(&f)),
            None,
        )
        .await;
    let (total, found) = list_of(&r);
    assert_eq!(total as usize, found.len());
    for g in &found {
        assert_eq!(g["id"], gid);
        assert!(g.get("members").is_none(), "members were excluded: {g}");
    }
    total == 1
}

#[tokio::test]
async fn group_lifecycle_create_members_check_remove_rename_delete() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut users = Vec::new();
    let mut names = Vec::new();
    for n in ["ann.one", "ben.two", "cat.three", "dov.four"] {
        let u = app.create_user(&t, &format!("{n}@contoso.com")).await;
        names.push((u["displayName"].as_str().unwrap().to_string(), id_of(&u)));
        users.push(id_of(&u));
    }
    let [u1, u2, u3, u4] = [&users[0], &users[1], &users[2], &users[3]];
    let lookup = format!(
        "/Groups?excludedAttributes=members&filter={}",
        enc(r#"displayName eq "Sales""#)
    );

    // Lookup, then create as Entra does.
    assert_eq!(list_of(&app.scim("GET", &t, &lookup, None).await).0, 0);
    let object_id = uuid::Uuid::new_v4().to_string();
    let r = app
        .scim(
            "POST",
            &t,
            "/Groups",
            Some(json!({
                "schemas": [GROUP_SCHEMA, ADSCIM_GROUP],
                "externalId": object_id,
                "displayName": "Sales",
                "members": [],
            })),
        )
        .await;
    let g = ok_json(&r, StatusCode::CREATED);
    let gid = id_of(&g);
    let loc = format!("{PUBLIC_URL}/scim/v2/{}/Groups/{gid}", t.slug);
    assert_eq!(g["displayName"], "Sales");
    assert_eq!(g["externalId"], object_id);
    assert!(
        g["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(GROUP_SCHEMA))
    );
    assert_eq!(g["meta"]["resourceType"], "Group");
    assert_eq!(g["meta"]["location"], loc);
    assert_eq!(g["meta"]["version"], "W/\"1\"");
    assert!(g["meta"]["created"].is_string() && g["meta"]["lastModified"].is_string());
    assert_eq!(r.location(), Some(loc.as_str()));
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert!(g["members"].as_array().is_none_or(|m| m.is_empty()), "{g}");

    let (total, found) = list_of(&app.scim("GET", &t, &lookup, None).await);
    assert_eq!((total, ids(&found)), (1, vec![gid.clone()]));
    assert!(found[0].get("members").is_none(), "{}", found[0]);
    assert_eq!(found[0]["displayName"], "Sales");

    // Several members per operation, several operations per request: 204 and no body.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([
                { "op": "Add", "path": "members", "value": [
                    { "$ref": null, "value": u1 }, { "$ref": null, "value": u2 }
                ]},
                { "op": "Add", "path": "members", "value": [{ "$ref": null, "value": u3 }] },
            ]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    for (uid, member) in [(u1, true), (u2, true), (u3, true), (u4, false)] {
        assert_eq!(is_member(&app, &t, &gid, uid).await, member, "{uid}");
    }
    let f = format!(r#"id eq "{gid}" and members[value eq "{u2}"]"#);
    assert_eq!(app.scim_filter(&t, "/Groups", &f).await.0, 1);

    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    let g = ok_json(&r, StatusCode::OK);
    assert_eq!(member_ids(&g), set(&[u1, u2, u3]));
    for m in g["members"].as_array().unwrap() {
        let uid = m["value"].as_str().unwrap();
        assert_eq!(
            m["$ref"],
            format!("{PUBLIC_URL}/scim/v2/{}/Users/{uid}", t.slug)
        );
        assert_eq!(m["type"], "User");
        let (name, _) = names.iter().find(|(_, id)| id == uid).unwrap();
        assert_eq!(m["display"], *name, "{m}");
    }

    // Remove, without the flag (value list) and with it (value filter path).
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([
                { "op": "Remove", "path": "members", "value": [{ "value": u1 }] }
            ]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([
                { "op": "remove", "path": format!("members[value eq \"{u2}\"]") }
            ]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for (uid, member) in [(u1, false), (u2, false), (u3, true)] {
        assert_eq!(is_member(&app, &t, &gid, uid).await, member, "{uid}");
    }
    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    assert_eq!(member_ids(&ok_json(&r, StatusCode::OK)), set(&[u3]));

    // Rename.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([
                { "op": "Replace", "path": "displayName", "value": "Sales EMEA" }
            ]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(list_of(&app.scim("GET", &t, &lookup, None).await).0, 0);
    let (total, found) = app
        .scim_filter(&t, "/Groups", r#"displayName eq "sales emea""#)
        .await;
    assert_eq!((total, ids(&found)), (1, vec![gid.clone()]));
    assert_eq!(found[0]["displayName"], "Sales EMEA");
    assert_eq!(
        member_ids(&found[0]),
        set(&[u3]),
        "the rename kept the members"
    );

    // Users carry their groups.
    let r = app.scim("GET", &t, &format!("/Users/{u3}"), None).await;
    let u = ok_json(&r, StatusCode::OK);
    assert_eq!(
        u["groups"],
        json!([{
            "value": gid,
            "display": "Sales EMEA",
            "$ref": loc,
            "type": "direct",
        }])
    );
    let r = app.scim("GET", &t, &format!("/Users/{u1}"), None).await;
    assert!(ok_json(&r, StatusCode::OK).get("groups").is_none());

    // Delete.
    let r = app
        .scim("DELETE", &t, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.body.is_empty());
    assert_error(
        &app.scim("GET", &t, &format!("/Groups/{gid}"), None).await,
        404,
        None,
    );
    assert_error(
        &app.scim("DELETE", &t, &format!("/Groups/{gid}"), None)
            .await,
        404,
        None,
    );
    let r = app.scim("GET", &t, &format!("/Users/{u3}"), None).await;
    assert!(ok_json(&r, StatusCode::OK).get("groups").is_none());
    assert_eq!(list_of(&app.scim("GET", &t, "/Groups", None).await).0, 0);
}

#[tokio::test]
async fn a_patch_with_an_unknown_member_changes_nothing() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u1 = id_of(&app.create_user(&t, "ann.one@contoso.com").await);
    let u2 = id_of(&app.create_user(&t, "ben.two@contoso.com").await);
    let gone = id_of(&app.create_user(&t, "gil.gone@contoso.com").await);
    let r = app
        .scim("DELETE", &t, &format!("/Users/{gone}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let other = app.scim_tenant("Fabrikam").await;
    let foreign = id_of(&app.create_user(&other, "fay.far@fabrikam.com").await);
    let g = app.create_group(&t, "Sales", &[&u1]).await;
    let gid = id_of(&g);
    assert_eq!(member_ids(&g), set(&[&u1]));

    let unknown = uuid::Uuid::new_v4().to_string();
    for bad in [&unknown, &gone, &foreign] {
        let r = app
            .scim(
                "PATCH",
                &t,
                &format!("/Groups/{gid}"),
                Some(patch_ops(json!([
                    { "op": "Replace", "path": "displayName", "value": "Renamed" },
                    { "op": "Remove", "path": "members", "value": [{ "value": u1 }] },
                    { "op": "Add", "path": "members", "value": [{ "value": u2 }, { "value": bad }] },
                ]))),
            )
            .await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains(bad.as_str()), "{e}");
        let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
        let now = ok_json(&r, StatusCode::OK);
        assert_eq!(now, g, "all or nothing");
    }
    assert!(is_member(&app, &t, &gid, &u1).await);
    assert!(!is_member(&app, &t, &gid, &u2).await);

    // The same on create: no group appears.
    let r = app
        .scim(
            "POST",
            &t,
            "/Groups",
            Some(
                json!({ "displayName": "Ops", "members": [{ "value": u1 }, { "value": unknown }] }),
            ),
        )
        .await;
    assert_error(&r, 400, Some("invalidValue"));
    assert_eq!(
        app.scim_filter(&t, "/Groups", r#"displayName eq "Ops""#)
            .await
            .0,
        0
    );
}

#[tokio::test]
async fn group_display_names_are_unique_per_organisation() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let sales = id_of(&app.create_group(&t, "Sales", &[]).await);
    let r = app
        .scim(
            "POST",
            &t,
            "/Groups",
            Some(json!({ "schemas": [GROUP_SCHEMA], "displayName": "SALES", "members": [] })),
        )
        .await;
    let e = assert_error(&r, 409, Some("uniqueness"));
    assert!(e["detail"].as_str().unwrap().contains("SALES"), "{e}");
    let (total, found) = app
        .scim_filter(&t, "/Groups", r#"displayName eq "SALES""#)
        .await;
    assert_eq!((total, ids(&found)), (1, vec![sales.clone()]));

    // Renaming another group onto it collides too, and leaves that group as it was.
    let ops = id_of(&app.create_group(&t, "Ops", &[]).await);
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{ops}"),
            Some(patch_ops(json!([
                { "op": "replace", "value": { "displayName": "sales" } }
            ]))),
        )
        .await;
    assert_error(&r, 409, Some("uniqueness"));
    let r = app.scim("GET", &t, &format!("/Groups/{ops}"), None).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["displayName"], "Ops");

    // Another organisation may have its own Sales.
    let other = app.scim_tenant("Fabrikam").await;
    app.create_group(&other, "Sales", &[]).await;
}

/// The root search answers a user attribute's terms for groups without reading them; that
/// holds because no group can hold one: a body or a PATCH that names one is refused.
#[tokio::test]
async fn groups_hold_no_user_attributes() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let sales = id_of(&app.create_group(&t, "Sales", &[]).await);
    let alice = id_of(&app.create_user(&t, "alice@contoso.com").await);
    let body = json!({ "schemas": [GROUP_SCHEMA], "displayName": "Ops", "userName": "ops" });
    let r = app.scim("POST", &t, "/Groups", Some(body.clone())).await;
    assert_error(&r, 400, Some("invalidPath"));
    let r = app
        .scim("PUT", &t, &format!("/Groups/{sales}"), Some(body))
        .await;
    assert_error(&r, 400, Some("invalidPath"));
    for op in [
        json!({ "op": "add", "path": "userName", "value": "x" }),
        json!({ "op": "replace", "value": { "active": true } }),
    ] {
        let r = app
            .scim(
                "PATCH",
                &t,
                &format!("/Groups/{sales}"),
                Some(patch_ops(json!([op]))),
            )
            .await;
        assert_error(&r, 400, Some("invalidPath"));
    }

    let search = |f: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f,
        })
    };
    let r = app
        .scim(
            "POST",
            &t,
            "/.search",
            Some(search(r#"userName eq "ALICE@contoso.com""#)),
        )
        .await;
    let (total, found) = list_of(&r);
    assert_eq!((total, ids(&found)), (1, vec![alice.clone()]));
    let r = app
        .scim(
            "POST",
            &t,
            "/.search",
            Some(search(r#"userName ne "alice@contoso.com""#)),
        )
        .await;
    let (total, found) = list_of(&r);
    let found = ids(&found);
    assert_eq!(total as usize, found.len());
    assert!(found.contains(&sales), "every group: {found:?}");
    assert!(!found.contains(&alice), "{found:?}");
}

const BIG_GROUP: usize = 100_000;
const BATCH: usize = 10_000;

/// Inserts `n` live users of the tenant straight into the store, in one transaction; returns
/// their ids. (100k users through HTTP would take minutes.)
async fn insert_users(app: &TestApp, tenant_id: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    server::on_db!(&app.db, |p| {
        let mut tx = p.begin().await.unwrap();
        for (c, chunk) in ids.chunks(1000).enumerate() {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO users (id, tenant_id, user_name, user_name_lc, given_name, family_name, \
                 email, email_lc, source, created_at, updated_at) ",
            );
            q.push_values(chunk.iter().enumerate(), |mut b, (i, id)| {
                let name = format!("bulk{}@contoso.com", c * 1000 + i);
                b.push_bind(id.clone())
                    .push_bind(tenant_id.to_string())
                    .push_bind(name.clone())
                    .push_bind(name.clone())
                    .push_bind("Bulk")
                    .push_bind("User")
                    .push_bind(name.clone())
                    .push_bind(name)
                    .push_bind("scim")
                    .push_bind(START_MS)
                    .push_bind(START_MS);
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    });
    ids
}

async fn rename_table(app: &TestApp, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    server::on_db!(&app.db, |p| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        .unwrap());
}

#[tokio::test]
async fn a_100k_member_group_is_never_truncated_and_stays_cheap_to_change() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let started = Instant::now();
    let users = insert_users(&app, &t.id, BIG_GROUP).await;
    let gid = id_of(&app.create_group(&t, "Everyone", &[]).await);
    let inserted = started.elapsed();

    for batch in users.chunks(BATCH) {
        let members: Vec<Value> = batch.iter().map(|id| json!({ "value": id })).collect();
        let r = app
            .scim(
                "PATCH",
                &t,
                &format!("/Groups/{gid}"),
                Some(patch_ops(
                    json!([{ "op": "Add", "path": "members", "value": members }]),
                )),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    let added = started.elapsed();

    // Reads that exclude members must not touch the member table: with it renamed away they
    // still answer, while a read that needs members fails (which shows the probe works).
    rename_table(&app, "group_members", "group_members_hidden").await;
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    let g = ok_json(&r, StatusCode::OK);
    assert_eq!(g["displayName"], "Everyone");
    assert!(g.get("members").is_none());
    let f = enc(r#"displayName eq "Everyone""#);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Groups?excludedAttributes=members&filter={f}"),
            None,
        )
        .await;
    assert_eq!(list_of(&r).0, 1);
    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    let e = assert_error(&r, 500, None);
    assert!(
        !e["detail"].as_str().unwrap().contains("group_members"),
        "no internals leak: {e}"
    );
    rename_table(&app, "group_members_hidden", "group_members").await;

    // The whole list, never truncated.
    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    let g = ok_json(&r, StatusCode::OK);
    let got = member_ids(&g);
    assert_eq!(g["members"].as_array().unwrap().len(), BIG_GROUP);
    assert_eq!(got, users.iter().cloned().collect::<BTreeSet<_>>());
    let full_read = started.elapsed();

    // One more member, and the membership check Entra makes for it.
    let extra = id_of(&app.create_user(&t, "late.joiner@contoso.com").await);
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([
                { "op": "Add", "path": "members", "value": [{ "$ref": null, "value": extra }] }
            ]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(is_member(&app, &t, &gid, &extra).await);
    assert!(is_member(&app, &t, &gid, &users[BIG_GROUP / 2]).await);
    let count: i64 = server::on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1"
    )
    .bind(&gid)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(count, BIG_GROUP as i64 + 1);
    eprintln!(
        "100k group: users inserted {inserted:?}, members added {:?}, full read {:?}, total {:?}",
        added - inserted,
        full_read - added,
        started.elapsed()
    );
}

#[tokio::test]
async fn replace_nested_groups_and_deprovisioned_members() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u1 = id_of(&app.create_user(&t, "ann.one@contoso.com").await);
    let u2 = id_of(&app.create_user(&t, "ben.two@contoso.com").await);
    let u3 = id_of(&app.create_user(&t, "cat.three@contoso.com").await);
    let inner = id_of(&app.create_group(&t, "Inner", &[&u3]).await);
    // Entra's own samples carry explicit nulls: they mean "no value".
    let r = app
        .scim(
            "POST",
            &t,
            "/Groups",
            Some(json!({
                "schemas": [GROUP_SCHEMA],
                "displayName": "Outer",
                "externalId": null,
                "members": [{ "value": u1, "$ref": null }, { "value": inner, "type": "Group" }],
            })),
        )
        .await;
    let outer = ok_json(&r, StatusCode::CREATED);
    let gid = id_of(&outer);
    assert!(outer.get("externalId").is_none(), "{outer}");
    assert_eq!(member_ids(&outer), set(&[&u1, &inner]));
    let nested = outer["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["value"] == inner.as_str())
        .unwrap();
    assert_eq!(nested["type"], "Group");
    assert_eq!(nested["display"], "Inner");
    assert!(
        nested["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Groups/{inner}"))
    );

    // A group cannot contain itself.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(
                json!([{ "op": "add", "path": "members", "value": [{ "value": gid }] }]),
            )),
        )
        .await;
    assert_error(&r, 400, Some("invalidValue"));

    // Replace the member list by PATCH; ask for the result back (200 instead of 204).
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}?attributes=members"),
            Some(patch_ops(json!([
                { "op": "replace", "path": "members", "value": [{ "value": u2 }, { "value": u3 }] }
            ]))),
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(member_ids(&v), set(&[&u2, &u3]));

    // PUT replaces name and members; without members it keeps them.
    let r = app
        .scim(
            "PUT",
            &t,
            &format!("/Groups/{gid}"),
            Some(json!({ "displayName": "Outer 2", "members": [{ "value": u1 }] })),
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(
        (v["displayName"].clone(), member_ids(&v)),
        (json!("Outer 2"), set(&[&u1]))
    );
    let r = app
        .scim(
            "PUT",
            &t,
            &format!("/Groups/{gid}"),
            Some(json!({ "displayName": "Outer 3" })),
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(
        (v["displayName"].clone(), member_ids(&v)),
        (json!("Outer 3"), set(&[&u1]))
    );

    // Deprovisioning a user, or deleting a group, takes it out of every group.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([{ "op": "add", "path": "members", "value": [{ "value": u2 }, { "value": inner }] }]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.scim("DELETE", &t, &format!("/Users/{u1}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.scim("DELETE", &t, &format!("/Groups/{inner}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    assert_eq!(member_ids(&ok_json(&r, StatusCode::OK)), set(&[&u2]));
    assert!(!is_member(&app, &t, &gid, &u1).await);

    // Removing everyone: a remove of `members` without a value.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([{ "op": "Remove", "path": "members" }]))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    assert!(
        ok_json(&r, StatusCode::OK)["members"]
            .as_array()
            .is_none_or(|m| m.is_empty())
    );
}

/// Whether a group has no search index.
async fn unindexed(db: &server::store::Db, id: &str) -> bool {
    let sql = "SELECT search IS NULL FROM scim_groups WHERE id = $1";
    server::on_db!(db, |p| sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap())
}

/// The pass that writes missing search indexes writes a group's only at the version it read:
/// a group changed since has its own write's index (or none, for the next pass).
#[tokio::test]
async fn the_index_pass_writes_a_groups_index_only_at_the_version_it_read() {
    use server::directory::groups::search_index;
    use server::store::scim_groups;
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let g = app.create_group(&t, "Sales", &[]).await;
    let id = g["id"].as_str().unwrap().to_string();
    let sql = "UPDATE scim_groups SET search = NULL WHERE id = $1";
    server::on_db!(&app.db, |p| sqlx::query(sql)
        .bind(&id)
        .execute(p)
        .await
        .map(|_| ()))
    .unwrap();
    let rec = scim_groups::get(&app.db, &t.id, &id).await.unwrap();
    let ix = search_index(&rec);
    scim_groups::set_index(&app.db, &id, rec.version - 1, &ix)
        .await
        .unwrap();
    assert!(
        unindexed(&app.db, &id).await,
        "written over a newer version"
    );
    scim_groups::set_index(&app.db, &id, rec.version, &ix)
        .await
        .unwrap();
    assert!(!unindexed(&app.db, &id).await);
}
