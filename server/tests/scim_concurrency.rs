//! What Entra's parallel requests need (it sends many at once during large syncs and counts
//! every 409 as a failure): member changes of one group commute, concurrent creates of one
//! userName give one 201, attribute PATCHes of one user never lose an update, and a member add
//! racing the member's deprovisioning never leaves a deleted user in a group. Requests run
//! concurrently through the real router on a real database (SQLite; PostgreSQL too when
//! TEST_DATABASE_URL is set).

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use futures_util::future::join_all;
use scim_support::*;
use serde_json::{Value, json};

fn add_member(uid: &str) -> Value {
    patch_ops(json!([{ "op": "Add", "path": "members", "value": [{ "value": uid }] }]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_patches_of_one_group_commute() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut uids = Vec::new();
    for i in 0..24 {
        let u = app.create_user(&t, &format!("p{i}.user@contoso.com")).await;
        uids.push(u["id"].as_str().unwrap().to_string());
    }
    let g = app.create_group(&t, "Sales", &[]).await;
    let gid = g["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    let replies = join_all(
        uids.iter()
            .map(|u| app.scim("PATCH", &t, &path, Some(add_member(u)))),
    )
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    // Each answer carries the version its own change made (not one read after a later change).
    let mut versions: Vec<String> = replies
        .iter()
        .map(|r| r.header("etag").unwrap().to_string())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), uids.len(), "{versions:?}");
    let r = app.scim("GET", &t, &path, None).await;
    let doc = ok_json(&r, StatusCode::OK);
    let members: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), uids.len());
    // Every change counted in the version.
    assert_eq!(
        r.header("etag"),
        Some(format!("W/\"{}\"", 1 + uids.len()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_user_name_give_one_201() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    for round in 0..3 {
        let name = format!("race{round}@contoso.com");
        let replies = join_all((0..12).map(|i| {
            let mut u = user_json(&name, "Race", "Condition");
            u["externalId"] = json!(format!("ext-{round}-{i}"));
            app.scim("POST", &t, "/Users", Some(u))
        }))
        .await;
        let created = replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "round {round}");
        for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_error(r, 409, Some("uniqueness"));
        }
        let (total, _) = app
            .scim_filter(&t, "/Users", &format!("userName eq \"{name}\""))
            .await;
        assert_eq!(total, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attribute_patches_of_one_user_never_lose_an_update() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "many.changes@contoso.com").await;
    let path = format!("/Users/{}", u["id"].as_str().unwrap());
    let ext = "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User";
    let replies = join_all((0..16).map(|i| {
        app.scim(
            "PATCH",
            &t,
            &path,
            Some(patch_ops(json!([{
                "op": "Add", "path": format!("{ext}:attr{i}"), "value": format!("v{i}")
            }]))),
        )
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app.scim("GET", &t, &path, None).await;
    let doc = ok_json(&r, StatusCode::OK);
    for i in 0..16 {
        assert_eq!(
            doc[ext][format!("attr{i}")],
            format!("v{i}"),
            "attr{i} lost: {doc}"
        );
    }
    // A client that pins the version it read gets 412 when another write got in first.
    let stale = r.header("etag").unwrap().to_string();
    let r = app
        .scim(
            "PATCH",
            &t,
            &path,
            Some(patch_ops(
                json!([{ "op": "Replace", "path": "title", "value": "A" }]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let req = axum::http::Request::builder()
        .method("PATCH")
        .uri(format!("/scim/v2/{}{path}", t.slug))
        .header("authorization", format!("Bearer {}", t.token))
        .header("content-type", "application/scim+json")
        .header("if-match", stale)
        .body(axum::body::Body::from(
            patch_ops(json!([{ "op": "Replace", "path": "title", "value": "B" }])).to_string(),
        ))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_add_racing_a_delete_never_keeps_the_deleted_user() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let g = app.create_group(&t, "Racers", &[]).await;
    let gid = g["id"].as_str().unwrap().to_string();
    let path = format!("/Groups/{gid}");
    for round in 0..25 {
        let u = app
            .create_user(&t, &format!("r{round}.gone@contoso.com"))
            .await;
        let uid = u["id"].as_str().unwrap().to_string();
        let user_path = format!("/Users/{uid}");
        let (add, del) = tokio::join!(
            app.scim("PATCH", &t, &path, Some(add_member(&uid))),
            app.scim("DELETE", &t, &user_path, None),
        );
        assert!(
            matches!(add.status.as_u16(), 204 | 400),
            "add: {} {}",
            add.status,
            add.body
        );
        assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
        let (found, _) = app
            .scim_filter(&t, "/Groups", &format!("members eq \"{uid}\""))
            .await;
        assert_eq!(
            found, 0,
            "round {round}: a deprovisioned user stayed a member"
        );
    }
}

/// Parallel creates and deprovisionings keep an unfiltered listing's total exact (on SQLite it
/// is the organisation's counter row, kept by triggers; on PostgreSQL a count), while the
/// provisioning log writes beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_and_deletes_keep_the_total_exact() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    // The organisation's admin, a user too.
    let before = list_of(&app.scim("GET", &t, "/Users", None).await).0;
    let first: Vec<String> = join_all((0..10).map(|i| {
        let (app, t) = (&app, &t);
        async move { app.create_user(t, &format!("first{i}@contoso.com")).await }
    }))
    .await
    .iter()
    .map(|u| u["id"].as_str().unwrap().to_string())
    .collect();
    // Twenty creates and the ten deletes at once.
    let creates = join_all((0..20).map(|i| {
        let (app, t) = (&app, &t);
        async move {
            let body = user_json(&format!("second{i}@contoso.com"), "Second", "User");
            app.scim("POST", t, "/Users", Some(body)).await.status
        }
    }));
    let deletes = join_all(first.iter().map(|id| {
        let (app, t) = (&app, &t);
        async move {
            app.scim("DELETE", t, &format!("/Users/{id}"), None)
                .await
                .status
        }
    }));
    let (created, deleted) = tokio::join!(creates, deletes);
    assert!(
        created.iter().all(|s| *s == StatusCode::CREATED),
        "{created:?}"
    );
    assert!(
        deleted.iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{deleted:?}"
    );
    // A later page reads the total (a first page with room would count what it found).
    let r = app
        .scim("GET", &t, "/Users?startIndex=2&count=1", None)
        .await;
    assert_eq!(list_of(&r).0, before + 20);
    let (total, all) = list_of(&app.scim("GET", &t, "/Users?count=100", None).await);
    assert_eq!((total, all.len() as i64), (before + 20, before + 20));
    // The console's search finds each side in its own index (migration 0020): the deprovisioned
    // users in theirs, the new ones in the live users'.
    use server::store::directory_view::{self as dv, UserQuery, UserStatus};
    for (term, status, n) in [
        ("first", Some(UserStatus::Deprovisioned), 10),
        ("first", None, 10),
        ("second", Some(UserStatus::Active), 20),
        ("second", None, 20),
    ] {
        let q = UserQuery {
            search: Some(term.into()),
            status,
            limit: 50,
            ..Default::default()
        };
        let page = dv::users(&app.db, &t.id, &q).await.unwrap();
        assert_eq!(page.rows.len(), n, "{term} {status:?}");
        assert_eq!(dv::count_users(&app.db, &t.id, &q).await.unwrap(), n as i64);
    }
}

/// Creates sent at once get distinct time-ordered ids (UUID version 7), each naming its own
/// user: ids made in the same millisecond on several threads never collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_get_distinct_time_ordered_ids() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let created = join_all((0..30).map(|i| {
        let (app, t) = (&app, &t);
        async move {
            let name = format!("at.once{i}@contoso.com");
            let body = user_json(&name, "At", "Once");
            let r = app.scim("POST", t, "/Users", Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            (name, r.json()["id"].as_str().unwrap().to_string())
        }
    }))
    .await;
    let ids: std::collections::HashSet<&str> = created.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 30, "distinct ids");
    for (name, id) in &created {
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["userName"], name.as_str());
    }
}

/// A user renamed while being added to groups: every membership ends with the user's final
/// name as its sort key (the console lists a group's members in that order, from the group's
/// own index), whichever of the two commits first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renames_racing_member_adds_leave_every_membership_in_name_order() {
    use server::store::directory_view as dv;
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let (app, t) = (&app, &t);
    for round in 0..3 {
        let u = app
            .create_user(t, &format!("renamed{round}@contoso.com"))
            .await;
        let uid = u["id"].as_str().unwrap().to_string();
        let mut gids = Vec::new();
        for i in 0..8 {
            let g = app.create_group(t, &format!("Team {round}-{i}"), &[]).await;
            gids.push(g["id"].as_str().unwrap().to_string());
        }
        let user_path = format!("/Users/{uid}");
        let adds = gids.iter().map(|g| {
            let path = format!("/Groups/{g}");
            let body = add_member(&uid);
            async move { app.scim("PATCH", t, &path, Some(body)).await }
        });
        let renames = (0..8).map(|i| {
            let body = patch_ops(json!([{
                "op": "Replace", "path": "displayName", "value": format!("Name {round}-{i}")
            }]));
            let path = user_path.clone();
            async move { app.scim("PATCH", t, &path, Some(body)).await }
        });
        let (added, renamed) = futures_util::join!(join_all(adds), join_all(renames));
        for r in added.iter().chain(&renamed) {
            assert!(r.status.is_success(), "{} {}", r.status, r.body);
        }
        let doc = ok_json(&app.scim("GET", t, &user_path, None).await, StatusCode::OK);
        let key = doc["displayName"].as_str().unwrap().to_lowercase();
        for g in &gids {
            let page = dv::group_members(&app.db, &t.id, g, None, None, 10)
                .await
                .unwrap();
            let keys: Vec<(&str, &str)> = page
                .rows
                .iter()
                .map(|r| (r.id.as_str(), r.name_key.as_str()))
                .collect();
            assert_eq!(keys, [(uid.as_str(), key.as_str())], "round {round}");
        }
    }
}

/// Parallel PATCHes of one user, each changing a different indexed column: the write of each
/// names only its own columns (SQLite), so none may carry another's old value back. Afterwards
/// the document holds every change, and each column's lookup finds the user by its new value
/// and no longer by its old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_patches_of_different_columns_all_land_in_row_and_document() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "ann.lee@contoso.com").await;
    let path = format!("/Users/{}", u["id"].as_str().unwrap());
    let changes = [
        ("userName", json!("ann.new@contoso.com")),
        ("externalId", json!("ann-ext-2")),
        ("name.givenName", json!("Anne")),
        ("name.familyName", json!("Leigh")),
        ("displayName", json!("Anne Leigh")),
        (
            "emails[type eq \"work\"].value",
            json!("anne.leigh@contoso.com"),
        ),
        ("title", json!("Engineer")),
        ("active", json!(false)),
    ];
    for round in 0..3 {
        let replies = join_all(changes.iter().map(|(attr, value)| {
            let value = if round == 2 {
                value.clone()
            } else if value.is_boolean() {
                json!(round == 1)
            } else {
                json!(format!("{}-{round}", value.as_str().unwrap()))
            };
            app.scim(
                "PATCH",
                &t,
                &path,
                Some(patch_ops(
                    json!([{ "op": "replace", "path": attr, "value": value }]),
                )),
            )
        }))
        .await;
        for r in &replies {
            assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.body);
        }
    }
    let doc = ok_json(&app.scim("GET", &t, &path, None).await, StatusCode::OK);
    assert_eq!(doc["userName"], "ann.new@contoso.com", "{doc}");
    assert_eq!(doc["externalId"], "ann-ext-2", "{doc}");
    assert_eq!(doc["name"]["givenName"], "Anne", "{doc}");
    assert_eq!(doc["name"]["familyName"], "Leigh", "{doc}");
    assert_eq!(doc["displayName"], "Anne Leigh", "{doc}");
    assert_eq!(doc["emails"][0]["value"], "anne.leigh@contoso.com", "{doc}");
    assert_eq!(doc["title"], "Engineer", "{doc}");
    assert_eq!(doc["active"], false, "{doc}");
    for (filter, found) in [
        ("userName eq \"ann.new@contoso.com\"", 1),
        ("userName eq \"ann.new@contoso.com-1\"", 0),
        ("externalId eq \"ann-ext-2\"", 1),
        ("name.givenName eq \"Anne\"", 1),
        ("name.familyName eq \"Leigh\"", 1),
        ("name.familyName sw \"Leigh-\"", 0),
        ("displayName eq \"Anne Leigh\"", 1),
        (
            "emails[type eq \"work\"].value eq \"anne.leigh@contoso.com\"",
            1,
        ),
        ("emails.value sw \"anne.leigh@contoso.com-\"", 0),
        ("title eq \"Engineer\"", 1),
        ("active eq false", 1),
    ] {
        let (n, _) = app.scim_filter(&t, "/Users", filter).await;
        assert_eq!(n, found, "{filter}");
    }
}

/// Deep pages of a sort no index holds, placed by a sample (SQLite), and pages of the same
/// sort in parts over HTTP, answered while other clients change the very titles they sort by:
/// every answer is whole. The total is the organisation's (the count before the window, in
/// it and after it come from one read of each part, so no user is counted twice or missed),
/// and every page is full, with distinct users (a user whose title changed after the window
/// was read is sorted by its new title among the window's users).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_sorted_pages_stay_whole_while_their_keys_change() {
    use server::domain::query::{Cond, Page, Query};
    use server::scim::filter::parse_attr_path;
    use server::scim::query::Target;
    use server::scim::schema::ResourceKind;
    use server::store::query::page_ids_by_sample;
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut made = Vec::new();
    for i in 0..240 {
        let mut u = user_json(&format!("u{i}@contoso.com"), "Ann", "Lee");
        u["title"] = json!(format!("T{:03}", (i * 7) % 240));
        let r = app.scim("POST", &t, "/Users", Some(u)).await;
        made.push(
            ok_json(&r, StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Everyone: these users and the organisation's admin.
    let (total, all) = list_of(&app.scim("GET", &t, "/Users?count=1000", None).await);
    assert_eq!(total, 241);
    let all = ids(&all);
    let target = Target {
        kind: ResourceKind::User,
        base_url: "https://bitabiz.test/scim/v2/t",
    };
    for round in 0..3 {
        // Forty title changes, and beside them sampled pages and listings at several depths.
        let paths: Vec<String> = made
            .iter()
            .step_by(6)
            .map(|id| format!("/Users/{id}"))
            .collect();
        let changes = paths.iter().enumerate().map(|(k, path)| {
            let title = format!("T{:03}", (k * 53 + round * 17) % 240);
            app.scim(
                "PATCH",
                &t,
                path,
                Some(patch_ops(
                    json!([{ "op": "replace", "path": "title", "value": title }]),
                )),
            )
        });
        let sampled = [30i64, 120, 200, 236].into_iter().flat_map(|offset| {
            [false, true].map(|descending| {
                let q = Query {
                    cond: Cond::Const(true),
                    sort: target
                        .sort(Some(&parse_attr_path("title").unwrap()), descending)
                        .unwrap(),
                    page: Page { offset, limit: 7 },
                };
                let db = app.db.clone();
                let tenant = t.id.clone();
                async move { (offset, page_ids_by_sample(&db, &tenant, &q).await.unwrap()) }
            })
        });
        let pages =
            [1, 100, 230].map(|start| format!("/Users?sortBy=title&startIndex={start}&count=7"));
        let listed = pages.iter().map(|path| app.scim("GET", &t, path, None));
        let (changed, sampled, listed) =
            tokio::join!(join_all(changes), join_all(sampled), join_all(listed));
        for r in &changed {
            assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.body);
        }
        for (offset, found) in sampled {
            let Some((n, page)) = found else {
                // PostgreSQL has no sampled pages.
                assert!(!matches!(app.db, server::store::Db::Sqlite(_)));
                continue;
            };
            assert_eq!(n, total, "round {round}, offset {offset}");
            let mut distinct = page.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), page.len(), "round {round}: {page:?}");
            assert_eq!(
                page.len() as i64,
                7.min(total - offset),
                "round {round}, {offset}"
            );
            assert!(
                page.iter().all(|id| all.contains(id)),
                "round {round}: {page:?}"
            );
        }
        for r in &listed {
            let (n, page) = list_of(r);
            assert_eq!(n, total, "round {round}: {}", r.body);
            let page = ids(&page);
            assert!(
                !page.is_empty() && page.len() <= 7,
                "round {round}: {page:?}"
            );
        }
    }
}

/// Lookups are answered by the database's readers (SQLite: connections of their own, lent
/// without sqlx's check on release). Many clients at once, more than there are readers, each
/// create a user and look it up at once, change it and look it up by the new value, and
/// deprovision it: every lookup sees the change its own client had answered just before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_lookup_sees_the_change_answered_before_it_under_parallel_load() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let app = &app;
    let t = &t;
    let client = |c: usize| async move {
        for i in 0..4 {
            let name = format!("rw{c}-{i}@contoso.com");
            let r = app
                .scim("POST", t, "/Users", Some(user_json(&name, "Read", "Write")))
                .await;
            let id = ok_json(&r, StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string();
            let (total, found) = app
                .scim_filter(t, "/Users", &format!("userName eq \"{name}\""))
                .await;
            assert_eq!(total, 1, "{name} right after its creation");
            assert_eq!(found[0]["id"], id.as_str());

            let renamed = format!("moved{c}-{i}@contoso.com");
            let op = patch_ops(json!([{ "op": "Replace", "path": "userName", "value": renamed }]));
            let r = app
                .scim("PATCH", t, &format!("/Users/{id}"), Some(op))
                .await;
            assert!(r.status.is_success(), "{}", r.body);
            let (old, _) = app
                .scim_filter(t, "/Users", &format!("userName eq \"{name}\""))
                .await;
            let (new, found) = app
                .scim_filter(t, "/Users", &format!("userName eq \"{renamed}\""))
                .await;
            assert_eq!((old, new), (0, 1), "{name} renamed");
            assert_eq!(found[0]["id"], id.as_str());

            let r = app.scim("DELETE", t, &format!("/Users/{id}"), None).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
            let (gone, _) = app
                .scim_filter(t, "/Users", &format!("userName eq \"{renamed}\""))
                .await;
            assert_eq!(gone, 0, "{renamed} after its deprovisioning");
        }
    };
    join_all((0..16).map(client)).await;
    let (total, _) = app.scim_filter(t, "/Users", "userName sw \"moved\"").await;
    assert_eq!(total, 0);
}

/// On SQLite, Entra's lookups (with the groups of the user they find), Test Connection and
/// reads of a user by id are answered by the database's readers, so they need none of the
/// pool's connections: they are answered while every pooled connection is taken (long scans,
/// a slow transaction). PostgreSQL answers them from its pool.
#[tokio::test]
async fn lookups_and_reads_by_id_need_no_pooled_connection_on_sqlite() {
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "held@contoso.com").await;
    let uid = u["id"].as_str().unwrap().to_string();
    let g = app.create_group(&t, "Holders", &[uid.as_str()]).await;
    let gid = g["id"].as_str().unwrap().to_string();
    // Warm what the token check caches, while the pool is free.
    app.scim_filter(&t, "/Users", "userName eq \"nobody@contoso.com\"")
        .await;

    let mut taken = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        taken.push(pool.acquire().await.unwrap());
    }
    let (total, found) = without_the_pool(
        "the lookup",
        app.scim_filter(&t, "/Users", "userName eq \"held@contoso.com\""),
    )
    .await;
    assert_eq!(total, 1);
    assert_eq!(found[0]["groups"][0]["value"], gid.as_str());
    let (none, _) = without_the_pool(
        "Test Connection",
        app.scim_filter(&t, "/Users", "userName eq \"nobody@contoso.com\""),
    )
    .await;
    assert_eq!(none, 0);
    let r = without_the_pool(
        "the read by id",
        app.scim("GET", &t, &format!("/Users/{uid}"), None),
    )
    .await;
    let user = ok_json(&r, StatusCode::OK);
    assert_eq!(user["groups"][0]["display"], "Holders");
    drop(taken);
}

/// What `answer` gives, within 5 s: it must not wait for a pooled connection, which none of
/// the test's requests gets back before the end.
async fn without_the_pool<T>(what: &str, answer: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(5), answer)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for a pooled connection"))
}

/// SQLite's connections do not take turns at process-wide locks to read a page or allocate:
/// the build leaves out `SQLITE_ENABLE_MEMORY_MANAGEMENT` (with it, every connection's page
/// cache is one shared cache behind one mutex) and counts no memory (`SQLITE_DEFAULT_MEMSTATUS`
/// 0: otherwise every allocation takes one more global mutex). Both are set in
/// `.cargo/config.toml`. Measured at 1M users: with them back, the log's writer contends with
/// the readers of Entra's lookups, and a lookup costs 3–4 µs more CPU.
#[tokio::test]
async fn sqlite_connections_share_no_page_cache_lock() {
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        options.iter().any(|o| o == "THREADSAFE=1"),
        "still safe to share between threads: {options:?}"
    );
}
