//! The console's Users and Groups pages and their listing queries, through the real router on a
//! real database (SQLite; PostgreSQL too when TEST_DATABASE_URL is set): search, filters, sort,
//! keyset pagination at its boundaries, a user's attributes, groups and provisioning history.

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use scim_support::*;
use serde_json::{Value, json};
use server::clock::Clock;
use server::on_db;
use server::store::directory_view::{self as dv, Cursor, SearchMode, UserQuery, UserSort};

/// Enables provisioning on the organisation made by `setup()` and issues a token.
async fn setup_tenant_scim(app: &TestApp) -> ScimTenant {
    use server::provisioning::{self, Actor};
    let tenant = server::store::tenants::by_slug(&app.db, "contoso-pharma")
        .await
        .unwrap()
        .unwrap();
    let who = Actor {
        name: "test",
        client_addr: "",
    };
    let now = app.clock.now_ms();
    provisioning::set_enabled(&app.db, &tenant.id, true, &who, now)
        .await
        .unwrap();
    let token = provisioning::issue_token(&app.db, &tenant.id, &who, now)
        .await
        .unwrap();
    ScimTenant {
        id: tenant.id,
        slug: tenant.slug,
        token: token.secret,
    }
}

/// Inserts users straight into the store (fast), named `{prefix}{i:03}`; `updated_at` grows
/// with i.
async fn seed_users(app: &TestApp, tenant_id: &str, prefix: &str, n: usize) {
    on_db!(&app.db, |p| {
        let mut tx = p.begin().await.unwrap();
        for i in 0..n {
            let un = format!("{prefix}{i:03}@contoso.com");
            sqlx::query(
                "INSERT INTO users (id, tenant_id, user_name, user_name_lc, given_name, family_name, \
                 display_name, email, email_lc, active, is_admin, resource, source, version, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $3, $4, TRUE, FALSE, '{}', 'scim', 1, $8, $8)",
            )
            .bind(format!("{prefix}-{i:03}"))
            .bind(tenant_id)
            .bind(&un)
            .bind(un.to_lowercase())
            .bind("Seed")
            .bind(format!("{prefix}{i:03}"))
            .bind(format!("Seed {prefix}{i:03}"))
            .bind(START_MS + i as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
}

fn q(sort: UserSort) -> UserQuery {
    UserQuery {
        sort,
        limit: 50,
        ..Default::default()
    }
}

/// Binds a console statement's values (`directory_view::Arg`) to a query.
macro_rules! bind_dv {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                dv::Arg::Text(s) => q.bind(s.clone()),
                dv::Arg::Int(n) => q.bind(*n),
            };
        }
        q
    }};
}

/// A cursor in the middle of any name order.
fn mid_cursor() -> Cursor {
    Cursor {
        key: "m".into(),
        id: "x".into(),
    }
}

/// SQLite's plan of a console statement, its steps joined by "; ".
async fn sqlite_plan(pool: &sqlx::SqlitePool, sql: &str, args: &[dv::Arg]) -> String {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain.as_str()));
    let rows = bind_dv!(q, args).fetch_all(pool).await.unwrap();
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
}

async fn all_pages(app: &TestApp, tenant: &str, mut query: UserQuery) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = dv::users(&app.db, tenant, &query).await.unwrap();
        pages.push(page.rows.iter().map(|r| r.user_name.clone()).collect());
        match page.next {
            Some(c) => query.after = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 100, "pagination must end");
    }
}

#[tokio::test]
async fn users_are_paged_by_keyset_at_the_boundaries() {
    let app = TestApp::new().await;
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    // Exactly one page: no next page.
    seed_users(&app, &t.id, "a", 49).await;
    let pages = all_pages(&app, &t.id, q(UserSort::Name)).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].len(), 50, "49 seeded + the admin");
    // One more: a second page with one row.
    seed_users(&app, &t.id, "b", 1).await;
    let pages = all_pages(&app, &t.id, q(UserSort::Name)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [50, 1]);
    seed_users(&app, &t.id, "c", 70).await;
    let pages = all_pages(&app, &t.id, q(UserSort::Name)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 21]);
    let flat: Vec<String> = pages.concat();
    let mut sorted = flat.clone();
    sorted.sort_by_key(|u| u.to_lowercase());
    assert_eq!(flat.len(), 121);
    // Names sort by display name ("Ada Admin", "Seed a000", …).
    assert_eq!(flat[0], EMAIL);
    assert_eq!(flat[1], "a000@contoso.com");
    assert_eq!(flat[120], "c069@contoso.com");
    let mut dedup = flat.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 121, "no row twice, none skipped");

    // Last change, newest first.
    let pages = all_pages(&app, &t.id, q(UserSort::Changed)).await;
    assert_eq!(pages.concat().len(), 121);
    let first = &pages[0];
    assert!(
        first.iter().take(3).all(|u| u.starts_with('c')),
        "{first:?}"
    );

    // Counts stop at the cap.
    let n = dv::count_users(&app.db, &t.id, &q(UserSort::Name))
        .await
        .unwrap();
    assert_eq!(n, 121);
    // A garbled cursor is a first page, never an error.
    assert_eq!(Cursor::decode("not-hex"), None);
}

#[tokio::test]
async fn search_filters_and_sources() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let alice = app.create_user(&t, "alice.smith@contoso.com").await;
    app.create_user(&t, "bob.jones@contoso.com").await;
    let carol = app.create_user(&t, "carol.smithers@contoso.com").await;
    let disable = patch_ops(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    app.scim(
        "PATCH",
        &t,
        &format!("/Users/{}", carol["id"].as_str().unwrap()),
        Some(disable),
    )
    .await;
    app.clock.advance_ms(1000);
    app.scim(
        "DELETE",
        &t,
        &format!("/Users/{}", alice["id"].as_str().unwrap()),
        None,
    )
    .await;

    let names = |rows: &[dv::UserListRow]| -> Vec<String> {
        rows.iter().map(|r| r.user_name.clone()).collect()
    };
    let run = |search: &str, mode: SearchMode| UserQuery {
        search: Some(search.into()),
        mode,
        limit: 50,
        ..Default::default()
    };
    // Prefix: userName, email, display name or family name; case-insensitive.
    let r = dv::users(&app.db, &t.id, &run("ALICE", SearchMode::Prefix))
        .await
        .unwrap();
    assert_eq!(names(&r.rows), ["alice.smith@contoso.com"]);
    let r = dv::users(&app.db, &t.id, &run("smith", SearchMode::Prefix))
        .await
        .unwrap();
    assert_eq!(
        names(&r.rows),
        ["alice.smith@contoso.com", "carol.smithers@contoso.com"],
        "family names"
    );
    let r = dv::users(&app.db, &t.id, &run("ada", SearchMode::Prefix))
        .await
        .unwrap();
    assert_eq!(names(&r.rows), [EMAIL], "the admin's display name");
    let r = dv::users(&app.db, &t.id, &run("jones", SearchMode::Prefix))
        .await
        .unwrap();
    assert_eq!(names(&r.rows), ["bob.jones@contoso.com"]);
    let r = dv::users(&app.db, &t.id, &run("ones@", SearchMode::Prefix))
        .await
        .unwrap();
    assert!(r.rows.is_empty(), "prefix is not contains");
    // Contains, with LIKE's wildcards taken literally.
    let r = dv::users(&app.db, &t.id, &run("ones@", SearchMode::Contains))
        .await
        .unwrap();
    assert_eq!(names(&r.rows), ["bob.jones@contoso.com"]);
    assert!(!r.partial);
    let r = dv::users(&app.db, &t.id, &run("%", SearchMode::Contains))
        .await
        .unwrap();
    assert!(r.rows.is_empty());

    // Status and source filters, through the server function the page calls.
    let list = |form: Vec<(&'static str, &'static str)>| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let mut f = form;
            f.push(("query[after]", ""));
            app.server_fn("load_users", &f, Some(&cookie)).await.json()
        }
    };
    let names_of = |v: &Value| -> Vec<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["user_name"].as_str().unwrap().to_string())
            .collect()
    };
    let v = list(vec![("query[status]", "deprovisioned")]).await;
    assert_eq!(names_of(&v), ["alice.smith@contoso.com"]);
    assert_eq!(v["rows"][0]["status"], "Deprovisioned");
    assert_eq!(v["count_text"], "1 user");
    let v = list(vec![("query[status]", "disabled")]).await;
    assert_eq!(names_of(&v), ["carol.smithers@contoso.com"]);
    let v = list(vec![
        ("query[status]", "active"),
        ("query[source]", "entra"),
    ])
    .await;
    assert_eq!(names_of(&v), ["bob.jones@contoso.com"]);
    let v = list(vec![("query[source]", "local")]).await;
    assert_eq!(names_of(&v), [EMAIL]);
    assert_eq!(v["rows"][0]["source"], "Local");
    let v = list(vec![("query[q]", "car"), ("query[match]", "contains")]).await;
    assert_eq!(names_of(&v), ["carol.smithers@contoso.com"]);
    assert_eq!(v["rows"][0]["source"], "Microsoft Entra ID");
    let v = list(vec![("query[sort]", "changed")]).await;
    assert_eq!(
        names_of(&v)[0],
        "alice.smith@contoso.com",
        "deprovisioned last"
    );

    // The page renders on the server, for reading without JavaScript.
    let r = app.get("/users?status=disabled", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("carol.smithers@contoso.com"),
        "rendered on the server"
    );
    assert!(!r.body.contains("bob.jones@contoso.com"));
    let r = app.get("/users", None).await;
    assert_eq!(r.location(), Some("/sign-in"));
}

#[tokio::test]
async fn contains_search_is_bounded_and_continues() {
    let app = TestApp::new().await;
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    seed_users(&app, &t.id, "x", 999).await;
    seed_users(&app, &t.id, "y", 999).await;
    seed_users(&app, &t.id, "z", 999).await;
    seed_users(&app, &t.id, "w", 999).await;
    seed_users(&app, &t.id, "v", 999).await;
    seed_users(&app, &t.id, "u", 999).await;
    // "z998" is beyond the first window of 5,000 users in name order.
    let mut query = UserQuery {
        search: Some("z998".into()),
        mode: SearchMode::Contains,
        limit: 50,
        ..Default::default()
    };
    let first = dv::users(&app.db, &t.id, &query).await.unwrap();
    assert!(first.rows.is_empty());
    assert!(
        first.partial,
        "the window ended before the organisation did"
    );
    query.after = first.next;
    let second = dv::users(&app.db, &t.id, &query).await.unwrap();
    assert_eq!(second.rows.len(), 1);
    assert_eq!(second.rows[0].user_name, "z998@contoso.com");
    assert!(!second.partial);
    assert_eq!(second.next, None);
}

/// What each item of a user page's history says happened, newest first.
fn history_whats(user: &Value) -> Vec<&str> {
    user["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["what"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_users_page_shows_attributes_groups_and_history() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let boss = app.create_user(&t, "grace.hopper@contoso.com").await;
    let boss_id = boss["id"].as_str().unwrap().to_string();
    let mut u = user_json("alan.turing@contoso.com", "Alan", "Turing");
    u["title"] = json!("Engineer");
    u["phoneNumbers"] = json!([{"type": "mobile", "value": "+44 1234"}]);
    u["addresses"] = json!([{"type": "work", "locality": "Manchester", "country": "GB"}]);
    u["roles"] = json!([{"value": "Analyst", "primary": true}]);
    u[ENTERPRISE] =
        json!({"department": "Research", "employeeNumber": "42", "manager": {"value": boss_id}});
    u["urn:ietf:params:scim:schemas:extension:Contoso:2.0:User"] = json!({"badge": "B-7"});
    let r = app.scim("POST", &t, "/Users", Some(u)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    app.clock.advance_ms(60_000);
    let p = patch_ops(json!([
        {"op": "Replace", "path": "title", "value": "Senior Engineer"},
        {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "Computing"}
    ]));
    assert_eq!(
        app.scim("PATCH", &t, &format!("/Users/{id}"), Some(p))
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance_ms(60_000);
    let off = patch_ops(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    app.scim("PATCH", &t, &format!("/Users/{id}"), Some(off))
        .await;
    let on = patch_ops(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    app.scim("PATCH", &t, &format!("/Users/{id}"), Some(on))
        .await;
    let g = app.create_group(&t, "Codebreakers", &[&id]).await;
    app.state.provlog.flush().await;

    let v = app
        .server_fn("load_user", &[("id", &id)], Some(&cookie))
        .await
        .json();
    assert_eq!(v["name"], "Alan Turing");
    assert_eq!(v["status"], "Active");
    let facts: Vec<(String, String, Value)> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["facts"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["label"].as_str().unwrap().to_string(),
                f["value"].as_str().unwrap().to_string(),
                f["href"].clone(),
            )
        })
        .collect();
    let has = |label: &str, value: &str| {
        facts
            .iter()
            .any(|(l, v, _)| l == label && v.contains(value))
    };
    assert!(has("Job title", "Senior Engineer"), "{facts:?}");
    assert!(has("Department", "Computing"));
    assert!(has("Employee ID", "42"));
    assert!(has("Phone (mobile)", "+44 1234"));
    assert!(has("Address (work)", "Manchester, GB"));
    assert!(has("Role", "Analyst (primary)"));
    assert!(has("Contoso.badge", "B-7"), "custom extension attributes");
    let manager = facts.iter().find(|(l, _, _)| l == "Manager").unwrap();
    assert_eq!(manager.1, "grace hopper");
    assert_eq!(manager.2, json!(format!("/users/{boss_id}")));
    assert_eq!(v["groups"][0]["text"], "Codebreakers");
    assert_eq!(
        v["groups"][0]["href"],
        json!(format!("/groups/{}", g["id"].as_str().unwrap()))
    );

    let h = v["history"].as_array().unwrap();
    assert_eq!(
        history_whats(&v),
        ["Re-enabled", "Disabled", "Updated", "Created"],
        "newest first"
    );
    let changes = &h[2]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&json!({"attribute": "title", "from": "Engineer", "to": "Senior Engineer"})),
        "{changes}"
    );
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&json!({"attribute": "department", "from": "Research", "to": "Computing"})),
        "{changes}"
    );
    assert_eq!(
        h[1]["changes"],
        json!([{"attribute": "active", "from": "true", "to": "false"}])
    );

    // Deprovisioned: still on the console, shown as such, its history ends with it.
    app.scim("DELETE", &t, &format!("/Users/{id}"), None).await;
    app.state.provlog.flush().await;
    let v = app
        .server_fn("load_user", &[("id", &id)], Some(&cookie))
        .await
        .json();
    assert_eq!(v["status"], "Deprovisioned");
    assert_eq!(v["history"][0]["what"], "Deprovisioned");
    assert_eq!(
        v["history_end"], "Complete",
        "the history reaches the creation"
    );
    let r = app.get(&format!("/users/{id}"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Deprovisioned") && r.body.contains("Alan Turing"));
    assert!(
        !r.body.contains("history-end"),
        "no line under a complete history"
    );

    // An entry the log no longer holds (retention pruned it) ends the history there, and the
    // page says why older changes are missing.
    let disabled = v["history"][2]["entry_id"].as_str().unwrap().to_string();
    assert_eq!(v["history"][2]["what"], "Disabled");
    app.forget_log_entry(&disabled).await;
    let v = app
        .server_fn("load_user", &[("id", &id)], Some(&cookie))
        .await
        .json();
    assert_eq!(history_whats(&v), ["Deprovisioned", "Re-enabled"]);
    assert_eq!(v["history_end"], "Gap");
    let r = app.get(&format!("/users/{id}"), Some(&cookie)).await;
    assert!(
        r.body
            .contains("Older changes are no longer in the provisioning log"),
        "{}",
        r.body
    );
    // Another organisation's user is not found.
    let other = app.scim_tenant("Fabrikam").await;
    let theirs = app.create_user(&other, "x@fabrikam.com").await;
    let r = app
        .server_fn(
            "load_user",
            &[("id", theirs["id"].as_str().unwrap())],
            Some(&cookie),
        )
        .await;
    assert!(r.body.contains("no such user"), "{}", r.body);
}

#[tokio::test]
async fn groups_list_counts_and_pages_members() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    seed_users(&app, &t.id, "m", 120).await;
    let ids: Vec<String> = (0..120).map(|i| format!("m-{i:03}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let big = app.create_group(&t, "Everyone", &refs).await;
    app.create_group(&t, "Admins", &refs[..2]).await;
    app.create_group(&t, "empty", &[]).await;
    let v = app
        .server_fn("load_groups", &[("q", ""), ("after", "")], Some(&cookie))
        .await
        .json();
    let rows: Vec<(String, i64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["members"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("Admins".to_string(), 2),
            ("empty".to_string(), 0),
            ("Everyone".to_string(), 120)
        ]
    );
    assert_eq!(v["count_text"], "3 groups");
    let v = app
        .server_fn("load_groups", &[("q", "ev"), ("after", "")], Some(&cookie))
        .await
        .json();
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);

    let gid = big["id"].as_str().unwrap();
    let page = |after: String, q: &'static str| {
        let (app, cookie, gid) = (&app, cookie.clone(), gid.to_string());
        async move {
            app.server_fn(
                "load_group",
                &[("id", gid.as_str()), ("q", q), ("after", after.as_str())],
                Some(&cookie),
            )
            .await
            .json()
        }
    };
    let p1 = page(String::new(), "").await;
    assert_eq!(p1["member_count"], 120);
    assert_eq!(p1["members"].as_array().unwrap().len(), 50);
    assert_eq!(p1["members"][0]["user_name"], "m000@contoso.com");
    let p2 = page(p1["next"].as_str().unwrap().to_string(), "").await;
    let p3 = page(p2["next"].as_str().unwrap().to_string(), "").await;
    assert_eq!(p3["members"].as_array().unwrap().len(), 20);
    assert!(p3["next"].is_null());
    assert_eq!(p3["members"][19]["user_name"], "m119@contoso.com");
    let s = page(String::new(), "m11").await;
    assert_eq!(s["members"].as_array().unwrap().len(), 10, "m110…m119");
    let r = app.get(&format!("/groups/{gid}"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("m000@contoso.com"));
}

/// Every page of a group's members (from the store, `limit` at a time) by userName.
async fn member_pages(
    app: &TestApp,
    tenant: &str,
    group: &str,
    search: Option<&str>,
    limit: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = dv::group_members(&app.db, tenant, group, search, after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.rows.len() as i64 <= limit);
        out.extend(page.rows.iter().map(|r| r.user_name.clone()));
        match page.next {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// A group's members are listed from the group's own name index (migration 0015): in name
/// order across pages wherever the members sit in the organisation, a rename moves a member,
/// a new member takes its place, and a search finds members by name, userName, email or family
/// name and nobody else. On SQLite no page walks the organisation's users.
#[tokio::test]
async fn a_groups_members_are_paged_by_name_from_the_groups_own_index() {
    let app = TestApp::new().await;
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    seed_users(&app, &t.id, "q", 300).await;
    // Sparse: every seventh user of the organisation, and one who sorts last ("zoe young").
    let seeded: Vec<usize> = (0..300).step_by(7).collect();
    let zoe = app.create_user(&t, "zoe.young@contoso.com").await;
    let zoe_id = zoe["id"].as_str().unwrap();
    let mut ids: Vec<String> = seeded.iter().map(|i| format!("q-{i:03}")).collect();
    ids.push(zoe_id.to_string());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let g = app.create_group(&t, "Sparse", &refs).await;
    let gid = g["id"].as_str().unwrap();
    let mut expected: Vec<String> = seeded
        .iter()
        .map(|i| format!("q{i:03}@contoso.com"))
        .collect();
    expected.push("zoe.young@contoso.com".into());
    for limit in [1, 10, 200] {
        assert_eq!(
            member_pages(&app, &t.id, gid, None, limit).await,
            expected,
            "pages of {limit}"
        );
    }

    // Zoe's new display name sorts first; a new member ("bob brown") takes the next place.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{zoe_id}"),
            Some(patch_ops(
                json!([{ "op": "replace", "path": "displayName", "value": "Abe Adams" }]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bob = app.create_user(&t, "bob.brown@contoso.com").await;
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Groups/{gid}"),
            Some(patch_ops(json!([{ "op": "add", "path": "members",
                "value": [{ "value": bob["id"] }] }]))),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let first = dv::group_members(&app.db, &t.id, gid, None, None, 3)
        .await
        .unwrap();
    let names: Vec<(&str, &str)> = first
        .rows
        .iter()
        .map(|r| (r.user_name.as_str(), r.name_key.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("zoe.young@contoso.com", "abe adams"),
            ("bob.brown@contoso.com", "bob brown"),
            ("q000@contoso.com", "seed q000"),
        ]
    );
    assert_eq!(member_pages(&app, &t.id, gid, None, 7).await.len(), 45);

    // Searches: userName ("q01": only q014 is a member), name key ("seed q02"), family name
    // ("brown"), a userName whose display name no longer matches ("zoe"), a non-member.
    for (term, want) in [
        ("q01", vec!["q014@contoso.com"]),
        ("Seed Q02", vec!["q021@contoso.com", "q028@contoso.com"]),
        ("brown", vec!["bob.brown@contoso.com"]),
        ("zoe", vec!["zoe.young@contoso.com"]),
        ("q001", vec![]),
    ] {
        assert_eq!(
            member_pages(&app, &t.id, gid, Some(term), 1).await,
            want,
            "search {term:?}"
        );
        // Both ways of searching find the same members (the store picks one by how many
        // users of the organisation the term matches).
        for how in [
            dv::MemberSearch::Collect(term),
            dv::MemberSearch::Walk(term),
        ] {
            let (sql, args) = dv::group_members_sql(&app.db, &t.id, gid, Some(how), None, 200);
            let rows: Vec<dv::UserListRow> = on_db!(&app.db, |p| {
                bind_dv!(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())), &args)
                    .fetch_all(p)
                    .await
                    .unwrap()
            });
            let names: Vec<&str> = rows.iter().map(|r| r.user_name.as_str()).collect();
            assert_eq!(names, want, "{how:?}");
        }
    }
    let seeds = member_pages(&app, &t.id, gid, Some("seed"), 10).await;
    assert_eq!(seeds.len(), seeded.len());
    assert!(seeds.windows(2).all(|w| w[0] < w[1]), "{seeds:?}");

    // A deprovisioned member leaves the group and its page.
    let r = app
        .scim(
            "DELETE",
            &t,
            &format!("/Users/{}", bob["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let after = member_pages(&app, &t.id, gid, None, 50).await;
    assert_eq!(after.len(), 44);
    assert!(!after.contains(&"bob.brown@contoso.com".to_string()));

    // The plans: the group's name index, each user by key, never a walk of the users.
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let cursor = Cursor {
        key: "seed q100".into(),
        id: "q-100".into(),
    };
    for (search, after) in [
        (None, None),
        (None, Some(&cursor)),
        (Some(dv::MemberSearch::Collect("q01")), Some(&cursor)),
        (Some(dv::MemberSearch::Walk("q01")), Some(&cursor)),
    ] {
        let (sql, args) = dv::group_members_sql(&app.db, &t.id, gid, search, after, 51);
        let plan = sqlite_plan(pool, &sql, &args).await;
        assert!(
            plan.contains("group_members_by_name") && !plan.contains("SCAN"),
            "{search:?}: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "sorted afterwards: {plan}");
    }
}

/// On SQLite the Users page lists a status that few users have (Disabled, Deprovisioned) from
/// that status's own index, in either order and from any cursor: before migration 0016 a
/// status by name walked the organisation's name index, testing every user (4.4 s at a
/// million users with none disabled).
#[tokio::test]
async fn a_rare_status_is_listed_from_its_own_index_on_sqlite() {
    use dv::{UserStatus, users_sql};
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let cursor = mid_cursor();
    for (status, index) in [
        (UserStatus::Disabled, "disabled"),
        (UserStatus::Deprovisioned, "deprovisioned"),
    ] {
        for sort in [UserSort::Name, UserSort::Changed] {
            // Also with a term so common that the page walks (see `users_sql`).
            for search in [None, Some("a")] {
                for after in [None, Some(cursor.clone())] {
                    let query = UserQuery {
                        status: Some(status),
                        search: search.map(String::from),
                        after: after.clone(),
                        ..q(sort)
                    };
                    let (sql, args) = users_sql(&app.db, "tenant", &query, 51, false);
                    let plan = sqlite_plan(pool, &sql, &args).await;
                    assert!(
                        plan.contains(&format!("users_console_{index}"))
                            && !plan.contains("TEMP B-TREE"),
                        "{status:?} {sort:?} {search:?} after={}: {plan}",
                        after.is_some()
                    );
                }
            }
        }
    }
}

/// Sign-in finds admins by email across organisations, the one read of `email_lc` without an
/// organisation, through `users_admin_email`: an index of admins only, so a SCIM user's
/// creation writes no entry into it. The sign-in lookup still reads an index (it would read
/// every user of every organisation otherwise) and still finds the admin, not a provisioned
/// user with the same email.
#[tokio::test]
async fn sign_in_reads_an_email_index_of_admins_only() {
    use server::store::Db;
    use server::store::users::{ADMINS_BY_EMAIL, admins_by_email};
    let app = TestApp::new().await;
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let mut same_email = user_json("ada.provisioned@contoso.example", "Ada", "Provisioned");
    same_email["emails"] = json!([{ "value": EMAIL, "type": "work", "primary": true }]);
    let r = app.scim("POST", &t, "/Users", Some(same_email)).await;
    ok_json(&r, StatusCode::CREATED);
    let found = admins_by_email(&app.db, &EMAIL.to_lowercase())
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the admin, not the provisioned user");
    if let Some(pool) = app.db.sqlite_pool() {
        let explain = format!("EXPLAIN QUERY PLAN {ADMINS_BY_EMAIL}");
        let steps: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(explain.as_str()))
                .bind(EMAIL)
                .fetch_all(pool)
                .await
                .unwrap();
        let plan = steps
            .into_iter()
            .map(|s| s.3)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(plan.contains("USING INDEX users_admin_email"), "{plan}");
    }
    // The indexes on email_lc alone, as each database writes their definition.
    let (defs_sql, admins_only) = match &app.db {
        Db::Sqlite(_) => (
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' \
             AND sql LIKE '%(email_lc)%'",
            "WHERE is_admin = TRUE",
        ),
        Db::Postgres(_) => (
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'users' \
             AND indexdef LIKE '%(email_lc)%'",
            "WHERE (is_admin = true)",
        ),
    };
    let defs: Vec<String> =
        on_db!(&app.db, |p| sqlx::query_scalar(defs_sql).fetch_all(p).await).unwrap();
    assert_eq!(defs.len(), 1, "{defs:?}");
    assert!(defs[0].ends_with(admins_only), "{defs:?}");
}

/// On SQLite the Users page's prefix search collects the users it matches from one index range
/// per column: for userName, email and family name the live users' index (SCIM's) and the
/// deprovisioned users' own (migration 0020 removed the indexes of every user on these
/// columns), and the name index. Left to choose, SQLite walked the organisation in the page's
/// order (42 s at a million users for a term nobody matches). A common term walks on purpose.
#[tokio::test]
async fn a_prefix_search_collects_its_users_from_their_indexes_on_sqlite() {
    use dv::{UserStatus, users_sql};
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let cursor = mid_cursor();
    for sort in [UserSort::Name, UserSort::Changed] {
        for status in [None, Some(UserStatus::Active)] {
            for after in [None, Some(cursor.clone())] {
                let query = UserQuery {
                    search: Some("Smi".into()),
                    status,
                    after: after.clone(),
                    ..q(sort)
                };
                let (sql, args) = users_sql(&app.db, "tenant", &query, 51, true);
                let plan = sqlite_plan(pool, &sql, &args).await;
                for index in [
                    "users_tenant_user_name",
                    "users_gone_user_name",
                    "users_live_email",
                    "users_gone_email",
                    "users_live_family",
                    "users_gone_family",
                    "users_console_name",
                ] {
                    assert!(
                        plan.contains(&format!("INDEX {index} (tenant_id=? AND ")),
                        "{index}, {sort:?} {status:?} after={}: {plan}",
                        after.is_some()
                    );
                }
                assert!(
                    !plan.contains("SCAN users") && !plan.contains("(tenant_id=?);"),
                    "{plan}"
                );
                assert!(
                    plan.contains(
                        "SCAN m; SEARCH users USING INDEX sqlite_autoindex_users_1 (id=?)"
                    ),
                    "{plan}"
                );
            }
            // Its count too.
            let query = UserQuery {
                search: Some("Smi".into()),
                status,
                ..q(sort)
            };
            let (sql, args) = dv::count_users_sql(&app.db, "tenant", &query, true);
            let plan = sqlite_plan(pool, &sql, &args).await;
            assert!(
                plan.contains("INDEX users_gone_family (tenant_id=? AND ")
                    && plan.contains(
                        "SCAN m; SEARCH users USING INDEX sqlite_autoindex_users_1 (id=?)"
                    )
                    && !plan.contains("(tenant_id=?);"),
                "count: {plan}"
            );
        }
    }
    // A common term with a filter few users pass is counted from that filter's index.
    for (status, source, index) in [
        (Some(UserStatus::Disabled), None, "users_console_disabled"),
        (
            Some(UserStatus::Deprovisioned),
            None,
            "users_console_deprovisioned",
        ),
        (None, Some(dv::UserSource::Local), "users_console_local"),
    ] {
        let query = UserQuery {
            search: Some("a".into()),
            status,
            source,
            ..q(UserSort::Name)
        };
        let (sql, args) = dv::count_users_sql(&app.db, "tenant", &query, false);
        let plan = sqlite_plan(pool, &sql, &args).await;
        assert!(
            plan.contains(&format!("INDEX {index}")) && !plan.contains("SCAN users"),
            "{index}: {plan}"
        );
    }
    // The pages of both forms hold the same users (alice deprovisioned, by userName and email;
    // carol by family name; the admin by display name).
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let alice = app.create_user(&t, "smith.alice@contoso.com").await;
    app.create_user(&t, "carol.x@contoso.com").await;
    let mut carol = user_json("carol.y@contoso.com", "Carol", "Smithers");
    carol["displayName"] = json!("Carol Y");
    ok_json(
        &app.scim("POST", &t, "/Users", Some(carol)).await,
        StatusCode::CREATED,
    );
    app.create_user(&t, "bob@contoso.com").await;
    // A family name found in any case (SQLite's own lower() folds ASCII only).
    let eva = user_json("eva@contoso.com", "Eva", "Öberg");
    ok_json(
        &app.scim("POST", &t, "/Users", Some(eva)).await,
        StatusCode::CREATED,
    );
    let gone = format!("/Users/{}", alice["id"].as_str().unwrap());
    app.scim("DELETE", &t, &gone, None).await;
    for term in ["SMI", "ada", "carol", "öB", "zz"] {
        let mut pages = Vec::new();
        for collect in [true, false] {
            let query = UserQuery {
                search: Some(term.into()),
                ..q(UserSort::Name)
            };
            let (sql, args) = users_sql(&app.db, &t.id, &query, 51, collect);
            let rows: Vec<dv::UserListRow> = on_db!(&app.db, |p| bind_dv!(
                sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())),
                &args
            )
            .fetch_all(p)
            .await
            .unwrap());
            pages.push(rows.into_iter().map(|r| r.user_name).collect::<Vec<_>>());
        }
        assert_eq!(pages[0], pages[1], "{term}");
        let expected = match term {
            "SMI" => vec!["carol.y@contoso.com", "smith.alice@contoso.com"],
            "ada" => vec![EMAIL],
            "carol" => vec!["carol.x@contoso.com", "carol.y@contoso.com"],
            "öB" => vec!["eva@contoso.com"],
            _ => vec![],
        };
        assert_eq!(pages[0], expected, "{term}");
        let query = UserQuery {
            search: Some(term.into()),
            ..q(UserSort::Name)
        };
        let n = dv::count_users(&app.db, &t.id, &query).await.unwrap();
        assert_eq!(n, expected.len() as i64, "{term}");
    }
    let gone = UserQuery {
        search: Some("smi".into()),
        status: Some(dv::UserStatus::Deprovisioned),
        ..q(UserSort::Changed)
    };
    assert_eq!(dv::count_users(&app.db, &t.id, &gone).await.unwrap(), 1);
    let page = dv::users(&app.db, &t.id, &gone).await.unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].user_name, "smith.alice@contoso.com");
}

/// Creating a user writes an entry into every index that holds the new row, at a random place
/// for most: at a million users each such page is mostly read from disk. So no two of those
/// indexes may have the same key, or one whose key begins the other's (SQLite; migration 0020
/// removed four such pairs between SCIM's indexes and the console's).
#[tokio::test]
async fn a_new_user_is_written_into_no_two_indexes_of_one_key_on_sqlite() {
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let mut body = user_json("kim.new@contoso.com", "Kim", "New");
    body["externalId"] = json!("kim-1");
    body["title"] = json!("Engineer");
    let r = app.scim("POST", &t, "/Users", Some(body)).await;
    let id = ok_json(&r, StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let indexes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    // Each index holding the user, by its key's columns (indexes on expressions aside).
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for (name, sql) in indexes {
        if let Some(cond) = sql
            .as_deref()
            .and_then(|s| s.split_once(" WHERE "))
            .map(|w| w.1)
        {
            let check = format!("SELECT COUNT(*) FROM users WHERE id = $1 AND ({cond})");
            let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(check.as_str()))
                .bind(&id)
                .fetch_one(pool)
                .await
                .unwrap();
            if held == 0 {
                continue;
            }
        }
        let info = format!("PRAGMA index_info('{name}')");
        let cols: Vec<(i64, i64, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(info.as_str()))
                .fetch_all(pool)
                .await
                .unwrap();
        if cols.iter().all(|c| c.2.is_some()) {
            keys.push((name, cols.into_iter().filter_map(|c| c.2).collect()));
        }
    }
    assert!(
        keys.iter().any(|(n, _)| n == "users_live_email"),
        "the check sees the partial indexes: {keys:?}"
    );
    for (a, ka) in &keys {
        for (b, kb) in &keys {
            assert!(
                a == b || !kb.starts_with(ka),
                "{a} {ka:?} and {b} {kb:?}: one user, two entries of one key"
            );
        }
    }
}
