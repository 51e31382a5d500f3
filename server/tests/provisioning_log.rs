//! The provisioning log through the real router on a real database (SQLite; PostgreSQL too
//! when TEST_DATABASE_URL is set): an entry per SCIM request and Bulk operation, described in
//! words, secrets removed, hourly counters, retention, a full queue, and the drain at shutdown.

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use scim_support::*;
use serde_json::{Value, json};
use server::clock::Clock;
use server::provlog::{self, ProvLog};
use server::store::provlog::{self as logstore, LogFilter, LogRow};
use server::{AppState, Settings};
use std::sync::Arc;

async fn entries(app: &TestApp, tenant_id: &str) -> Vec<LogRow> {
    app.state.provlog.flush().await;
    let mut rows = logstore::list(&app.db, tenant_id, &LogFilter::default(), None, 1000, true)
        .await
        .unwrap();
    rows.reverse();
    rows
}

/// What the target index holds for `target_id` (a target listing reads only it).
async fn in_target_index(app: &TestApp, tenant_id: &str, target_id: &str) -> Vec<LogRow> {
    let f = LogFilter {
        target_id: Some(target_id.to_string()),
        ..LogFilter::default()
    };
    logstore::list(&app.db, tenant_id, &f, None, 100, false)
        .await
        .unwrap()
}

/// One PATCH of the user's title per value, each answered 200.
async fn retitle(app: &TestApp, t: &ScimTenant, id: &str, titles: &[&str]) {
    for title in titles {
        let p = patch_ops(json!([{"op": "Replace", "path": "title", "value": title}]));
        let r = app.scim("PATCH", t, &format!("/Users/{id}"), Some(p)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

fn actions(rows: &[LogRow]) -> Vec<String> {
    rows.iter().map(|r| r.action.clone()).collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_scim_operation_is_logged_in_words() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let q = filter_q(r#"userName eq "alice@contoso.com""#);
    app.scim("GET", &t, &format!("/Users{q}"), None).await;
    let alice = id_of(&app.create_user(&t, "alice@contoso.com").await);
    let bob = id_of(&app.create_user(&t, "bob@contoso.com").await);
    let carol = id_of(&app.create_user(&t, "carol@contoso.com").await);
    app.scim("GET", &t, &format!("/Users{q}"), None).await;
    app.scim("GET", &t, &format!("/Users/{alice}"), None).await;
    let disable = patch_ops(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let r = app
        .scim("PATCH", &t, &format!("/Users/{alice}"), Some(disable))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let enable = patch_ops(json!([{"op": "replace", "value": {"active": true, "title": "Lead"}}]));
    app.scim("PATCH", &t, &format!("/Users/{alice}"), Some(enable))
        .await;
    let sales = id_of(&app.create_group(&t, "Sales", &[]).await);
    let add = patch_ops(json!([{"op": "Add", "path": "members",
        "value": [{"value": alice}, {"value": bob}, {"value": carol}]}]));
    let r = app
        .scim("PATCH", &t, &format!("/Groups/{sales}"), Some(add))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let rm = patch_ops(json!([{"op": "Remove", "path": format!("members[value eq \"{bob}\"]")}]));
    app.scim("PATCH", &t, &format!("/Groups/{sales}"), Some(rm))
        .await;
    app.scim("DELETE", &t, &format!("/Users/{carol}"), None)
        .await;
    app.scim("DELETE", &t, &format!("/Groups/{sales}"), None)
        .await;
    app.scim("GET", &t, "/ServiceProviderConfig", None).await;
    // A user without a last name fails with the SCIM error kept.
    let mut nolast = user_json("nolast@contoso.com", "No", "Last");
    nolast["name"].as_object_mut().unwrap().remove("familyName");
    let r = app.scim("POST", &t, "/Users", Some(nolast)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A wrong token is rejected, and logged for the organisation named in the URL.
    let r = app
        .scim_raw(
            "GET",
            &format!("/scim/v2/{}/Users", t.slug),
            Some("bbz_scim_wrong"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let rows = entries(&app, &t.id).await;
    let a = actions(&rows);
    let expect = [
        "Looked up user userName = alice@contoso.com (not found)",
        "Created user alice@contoso.com",
        "Created user bob@contoso.com",
        "Created user carol@contoso.com",
        "Looked up user userName = alice@contoso.com (found)",
        "Read user alice@contoso.com",
        "Disabled user alice@contoso.com",
        "Re-enabled user alice@contoso.com and changed title",
        "Created group Sales",
        "Added 3 members to Sales",
        "Removed 1 member from Sales",
        "Deprovisioned user carol@contoso.com",
        "Deleted group Sales",
        "Read ServiceProviderConfig",
        "Could not create user nolast@contoso.com",
        "Rejected: invalid token (listed users)",
    ];
    assert_eq!(a, expect, "{a:#?}");
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes[..14], ["success"; 14]);
    assert_eq!(outcomes[14..], ["failure", "rejected"]);
    // The found lookup's answer is stored as its handler summarised it: what identifies alice.
    let found: serde_json::Value =
        serde_json::from_str(rows[4].response_body.as_deref().unwrap()).unwrap();
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], alice.as_str(), "{found}");
    assert_eq!(found["Resources"][0]["userName"], "alice@contoso.com");
    assert!(found["Resources"][0].get("emails").is_none(), "{found}");
    assert_eq!(
        found["Resources"][1],
        server::provlog::describe::LIST_SUMMARY_STORED,
        "{found}"
    );
    assert_eq!(
        found.get("schemas"),
        None,
        "stored without the list's schema"
    );
    let failed = &rows[14];
    assert_eq!(failed.status, 400);
    assert_eq!(failed.scim_type.as_deref(), Some("invalidValue"));
    assert!(
        failed
            .error_detail
            .as_deref()
            .unwrap()
            .contains("name.familyName"),
        "{failed:?}"
    );
    let created = &rows[1];
    assert_eq!(created.target_id.as_deref(), Some(alice.as_str()));
    assert_eq!(created.target_type.as_deref(), Some("User"));
    assert_eq!(created.operation, "user_create");
    assert!(
        created
            .response_body
            .as_deref()
            .unwrap()
            .contains("alice@contoso.com")
    );
    assert_eq!(
        rows[12].target_name.as_deref(),
        Some("Sales"),
        "a deleted group keeps its name"
    );
    assert!(
        rows.iter()
            .all(|r| r.duration_us >= 0 && !r.path.is_empty())
    );
}

#[tokio::test]
async fn unknown_organisations_are_not_logged_anywhere() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let r = app
        .scim_raw("GET", "/scim/v2/nobody/Users", Some(&t.token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(entries(&app, &t.id).await.is_empty());
}

#[tokio::test]
async fn bulk_operations_each_get_an_entry_linked_to_the_request() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_json("dan@contoso.com", "Dan", "Ray")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": "bulkId:u1"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": patch_ops(json!([{"op": "replace", "path": "active", "value": false}]))},
            {"method": "DELETE", "path": "/Users/does-not-exist"}
        ]
    });
    let r = app.scim("POST", &t, "/Bulk", Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows = entries(&app, &t.id).await;
    let bulk = rows
        .iter()
        .find(|r| r.operation == "bulk")
        .expect("the Bulk request");
    assert_eq!(bulk.action, "Bulk request with 4 operations (1 failed)");
    assert_eq!(bulk.parent_id, None);
    let ops: Vec<&LogRow> = rows
        .iter()
        .filter(|r| r.parent_id.as_deref() == Some(&bulk.id))
        .collect();
    let a: Vec<&str> = ops.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        a,
        [
            "Created user dan@contoso.com",
            "Created group Ops with 1 member",
            "Disabled user dan@contoso.com",
            "Could not deprovision user does-not-exist",
        ]
    );
    assert_eq!(ops[3].status, 404);
    assert!(ops.iter().all(|o| o.client_addr == bulk.client_addr));

    // Counted per operation: 4 requests, 1 failure (the Bulk envelope itself is not counted).
    let now = app.clock.now_ms();
    let hours = logstore::hours(
        &app.db,
        &t.id,
        now - provlog::HOUR_MS,
        now + provlog::HOUR_MS,
    )
    .await
    .unwrap();
    assert_eq!(hours.iter().map(|h| h.requests).sum::<i64>(), 4);
    assert_eq!(hours.iter().map(|h| h.failures).sum::<i64>(), 1);
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut u = user_json("eve@contoso.com", "Eve", "Lin");
    u["password"] = json!("Tr0ub4dor&3-secret");
    let created = app.scim("POST", &t, "/Users", Some(u)).await;
    let id = id_of(&created.json());
    let p = patch_ops(json!([
        {"op": "replace", "path": "password", "value": "N3w-pass-secret"},
        {"op": "replace", "value": {"password": "Th1rd-pass-secret"}}
    ]));
    app.scim("PATCH", &t, &format!("/Users/{id}"), Some(p))
        .await;
    // The bearer token is never stored, even when a request fails.
    app.scim_raw(
        "GET",
        &format!("/scim/v2/{}/Users", t.slug),
        Some("bbz_scim_leaked-token-value"),
        None,
    )
    .await;
    let rows = entries(&app, &t.id).await;
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let all = format!("{r:?}");
        for secret in [
            "Tr0ub4dor",
            "N3w-pass",
            "Th1rd-pass",
            "leaked-token-value",
            &t.token,
        ] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }
    assert!(
        rows[0]
            .request_body
            .as_deref()
            .unwrap()
            .contains("(removed)")
    );
}

#[tokio::test]
async fn large_member_lists_are_summarised() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let g = id_of(&app.create_group(&t, "Everyone", &[]).await);
    let members: Vec<Value> = (0..300)
        .map(|i| json!({"value": format!("missing-{i}")}))
        .collect();
    let p = patch_ops(json!([{"op": "Add", "path": "members", "value": members}]));
    app.scim("PATCH", &t, &format!("/Groups/{g}"), Some(p))
        .await;
    let rows = entries(&app, &t.id).await;
    let patch = rows.last().unwrap();
    assert!(
        patch.action.contains("Added 300 members to Everyone"),
        "{}",
        patch.action
    );
    let body = patch.request_body.as_deref().unwrap();
    assert!(
        body.contains("… and 290 more (300 in all; not stored)"),
        "{body}"
    );
    assert!(!body.contains("missing-299"));
}

#[tokio::test]
async fn hourly_counters_feed_health_without_reading_the_log() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    app.create_user(&t, "a@contoso.com").await;
    let mut bad = user_json("b@contoso.com", "B", "B");
    bad["name"].as_object_mut().unwrap().remove("familyName");
    app.scim("POST", &t, "/Users", Some(bad)).await;
    app.clock.advance_ms(provlog::HOUR_MS);
    app.create_user(&t, "c@contoso.com").await;
    app.scim_raw(
        "GET",
        &format!("/scim/v2/{}/Users", t.slug),
        Some("nope"),
        None,
    )
    .await;
    app.state.provlog.flush().await;

    let now = app.clock.now_ms();
    let hours = logstore::hours(
        &app.db,
        &t.id,
        now - 3 * provlog::HOUR_MS,
        now + provlog::HOUR_MS,
    )
    .await
    .unwrap();
    let counts: Vec<(i64, i64, i64)> = hours
        .iter()
        .map(|h| (h.requests, h.failures, h.rejected))
        .collect();
    assert_eq!(counts, [(2, 1, 0), (2, 0, 1)]);

    // The health box: counts of 24 h, the last error in full, the last request.
    let h = app
        .server_fn("load_provisioning_health", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(
        (
            h["requests_24h"].as_i64(),
            h["failures_24h"].as_i64(),
            h["rejected_24h"].as_i64()
        ),
        (Some(4), Some(1), Some(1))
    );
    assert_eq!(h["enabled"], true);
    assert_eq!(h["silent"], false);
    assert_eq!(h["last_request_ago"], "just now");
    assert_eq!(h["last_error"]["row"]["outcome"], "Rejected");
    assert_eq!(h["hourly"].as_array().unwrap().len(), 24);
    assert_eq!(h["daily"].as_array().unwrap().len(), 30);
    let hourly: i64 = h["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(hourly, 4);

    // Silent for more than two 40-minute cycles: the warning.
    app.clock.advance_ms(81 * 60 * 1000);
    let h = app
        .server_fn("load_provisioning_health", &[], Some(&cookie))
        .await
        .json();
    assert_eq!(h["silent"], true);
    let home = app.server_fn("load_home", &[], Some(&cookie)).await.json();
    let line = home["provisioning_summary"].as_str().unwrap();
    assert!(
        line.contains("4 requests, 1 failures, 1 rejected"),
        "{line}"
    );
    assert!(line.contains("silent"), "{line}");
}

/// Enables provisioning on the organisation made by `setup()` and issues a token.
pub async fn setup_tenant_scim(app: &TestApp) -> ScimTenant {
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

#[tokio::test]
async fn retention_is_per_organisation_and_pruned() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    let other = app.scim_tenant("Fabrikam").await;
    app.create_user(&t, "old@contoso.com").await;
    app.create_user(&other, "old@fabrikam.com").await;
    let r = app
        .server_fn("set_log_retention", &[("days", "7")], Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .server_fn("set_log_retention", &[("days", "0")], Some(&cookie))
        .await;
    assert!(r.body.contains("between 1 and 365"), "{}", r.body);
    let log = app
        .server_fn(
            "load_provisioning_log",
            &[("query[range]", "")],
            Some(&cookie),
        )
        .await
        .json();
    assert_eq!(log["retention_days"], 7);
    app.clock.advance_ms(8 * provlog::DAY_MS);
    app.create_user(&t, "new@contoso.com").await;
    app.state.provlog.flush().await;
    let deleted = provlog::prune(&app.db, app.clock.now_ms()).await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        actions(&entries(&app, &t.id).await),
        ["Created user new@contoso.com"]
    );
    assert_eq!(
        entries(&app, &other.id).await.len(),
        1,
        "the default 30 days still holds"
    );
    app.clock.advance_ms(23 * provlog::DAY_MS);
    provlog::prune(&app.db, app.clock.now_ms()).await.unwrap();
    assert!(entries(&app, &other.id).await.is_empty());
}

fn state_with(app: &TestApp, log: ProvLog) -> AppState {
    AppState::new(
        app.db.clone(),
        Arc::new(app.clock.clone()) as Arc<dyn Clock>,
        Settings {
            public_url: PUBLIC_URL.into(),
            ..Settings::default()
        },
        server::leptos_options("target/site"),
    )
    .with_provlog(log)
}

/// `base` served through a log of its own whose writer the test starts (or holds back).
fn with_own_log(base: TestApp, opts: provlog::Options) -> (TestApp, ProvLog, provlog::Writer) {
    let clock: Arc<dyn Clock> = Arc::new(base.clock.clone());
    let (log, writer) = ProvLog::new(base.db.clone(), clock, opts);
    let mut app = base;
    app.router = server::router(state_with(&app, log.clone()));
    app.state = app.state.clone().with_provlog(log.clone());
    (app, log, writer)
}

#[tokio::test]
async fn a_full_queue_never_blocks_scim_and_the_loss_is_counted() {
    let base = TestApp::new().await;
    let t = base.scim_tenant("Contoso").await;
    let (app, log, writer) = with_own_log(
        base,
        provlog::Options {
            capacity: 2,
            body_budget: 1 << 20,
        },
    );
    // The writer is not running: the queue holds 2; the other 3 requests are still answered.
    for _ in 0..5 {
        let r = app.scim("GET", &t, "/ServiceProviderConfig", None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(log.lost_total(), 3);
    writer.spawn();
    log.flush().await;
    assert_eq!(entries(&app, &t.id).await.len(), 2);
    let now = app.clock.now_ms();
    let hours = logstore::hours(
        &app.db,
        &t.id,
        now - provlog::HOUR_MS,
        now + provlog::HOUR_MS,
    )
    .await
    .unwrap();
    assert_eq!(
        (hours[0].requests, hours[0].dropped),
        (5, 3),
        "lost entries still count"
    );
}

/// With the queue full, a user's written change is kept without its bodies (the user's row
/// points to its entry; losing it would cut the user's history there); other entries are lost
/// and counted.
#[tokio::test]
async fn a_full_queue_keeps_a_users_changes_without_bodies() {
    let base = TestApp::new().await;
    let t = base.scim_tenant("Contoso").await;
    let id = id_of(&base.create_user(&t, "kept@contoso.com").await);
    base.state.provlog.flush().await;
    let (app, log, writer) = with_own_log(
        base,
        provlog::Options {
            capacity: 1,
            body_budget: 1 << 20,
        },
    );
    // The writer is not running: the queue holds the first PATCH only.
    retitle(&app, &t, &id, &["one", "two", "three"]).await;
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(log.lost_total(), 1, "only the lookup is lost");
    writer.spawn();
    log.flush().await;
    let (chain, end) = logstore::user_chain(&app.db, &t.id, &id, 10).await.unwrap();
    assert_eq!(end, logstore::ChainEnd::Start, "{:?}", actions(&chain));
    assert_eq!(chain.len(), 3);
    let kept_whole: Vec<bool> = chain
        .iter()
        .map(|r| {
            r.response_body
                .as_deref()
                .is_some_and(|b| b.starts_with('{'))
        })
        .collect();
    assert_eq!(kept_whole, [false, false, true], "newest first");
    assert!(chain.iter().all(|r| r.operation == "user_update"));
}

#[tokio::test]
async fn bodies_beyond_the_byte_budget_are_left_out_not_the_entries() {
    let base = TestApp::new().await;
    let t = base.scim_tenant("Contoso").await;
    let (app, log, writer) = with_own_log(
        base,
        provlog::Options {
            capacity: 100,
            body_budget: 10,
        },
    );
    writer.spawn();
    app.create_user(&t, "big@contoso.com").await;
    // A lookup's answer is left out too, summary and all.
    let q = filter_q(r#"userName eq "big@contoso.com""#);
    app.scim("GET", &t, &format!("/Users{q}"), None).await;
    let rows = entries(&app, &t.id).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]
            .request_body
            .as_deref()
            .unwrap()
            .contains("not kept")
    );
    let lookup = &rows[1];
    // What the answer held is not kept either (the summary is part of the answer, and the
    // byte budget bounds the queue's memory only if nothing of the answer stays); its count
    // is, so the entry still says that the user was found.
    assert_eq!(
        lookup.action, "Looked up user userName = big@contoso.com (found)",
        "{lookup:?}"
    );
    assert!(
        lookup
            .response_body
            .as_deref()
            .unwrap()
            .contains("not kept"),
        "{lookup:?}"
    );
    assert_eq!(log.lost_total(), 0);
}

#[tokio::test]
async fn shutdown_drains_the_queue() {
    let base = TestApp::new().await;
    let t = base.scim_tenant("Contoso").await;
    let (app, log, writer) = with_own_log(base, provlog::Options::default());
    for i in 0..40 {
        app.create_user(&t, &format!("u{i}@contoso.com")).await;
    }
    // Queued, not yet written: the writer starts only now, as at the end of a busy moment.
    writer.spawn();
    log.drain().await;
    let rows = logstore::list(&app.db, &t.id, &LogFilter::default(), None, 1000, false)
        .await
        .unwrap();
    assert_eq!(rows.len(), 40);
}

#[tokio::test]
async fn concurrent_requests_each_get_one_entry() {
    let app = Arc::new(TestApp::new().await);
    let t = Arc::new(app.scim_tenant("Contoso").await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (app, t) = (app.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            app.scim(
                "POST",
                &t,
                "/Users",
                Some(user_json(&format!("p{i}@contoso.com"), "P", "Q")),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    // Lookups at once, as Entra sends them: each gets its entry, its answer stored short.
    let mut lookups = Vec::new();
    for i in 0..24 {
        let (app, t) = (app.clone(), t.clone());
        lookups.push(tokio::spawn(async move {
            app.scim_filter(&t, "/Users", &format!("userName eq \"p{i}@contoso.com\""))
                .await
                .0
        }));
    }
    for task in lookups {
        assert_eq!(task.await.unwrap(), 1);
    }
    let rows = entries(&app, &t.id).await;
    assert_eq!(rows.len(), 48);
    let mut ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 48);
    let found: Vec<&LogRow> = rows.iter().filter(|r| r.operation == "user_read").collect();
    assert_eq!(found.len(), 24);
    for r in found {
        let body: Value = serde_json::from_str(r.response_body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body["Resources"][1],
            server::provlog::describe::LIST_SUMMARY_STORED,
            "{body}"
        );
        assert_eq!(body.get("schemas"), None, "{body}");
        assert_eq!(body["Resources"][0]["id"], r.target_id.as_deref().unwrap());
    }
}

/// A user's creation is kept out of the target index (a random page per POST); its entry is
/// found near the user's creation time, among creations arriving in parallel.
#[tokio::test]
async fn a_users_creation_entry_is_found_among_parallel_creations() {
    const WINDOW: i64 = 60_000;
    let app = Arc::new(TestApp::new().await);
    let t = Arc::new(app.scim_tenant("Contoso").await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (app, t) = (app.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("c{i}@contoso.com");
            let r = app
                .scim("POST", &t, "/Users", Some(user_json(&name, "C", "D")))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            (name, id_of(&r.json()))
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }
    app.state.provlog.flush().await;
    for (name, id) in &created {
        let user = server::store::scim_users::get(&app.db, &t.id, id)
            .await
            .unwrap();
        let row = logstore::creation_of(&app.db, &t.id, id, user.created_at, WINDOW)
            .await
            .unwrap()
            .expect("the creation entry");
        assert_eq!(row.target_id.as_deref(), Some(id.as_str()));
        assert_eq!(row.action, format!("Created user {name}"));
        assert!(row.response_body.is_some(), "with its bodies");
        // Not through the target index: a target listing holds the user's changes only.
        let changes = in_target_index(&app, &t.id, id).await;
        assert!(changes.is_empty(), "{changes:?}");
    }
    // Outside the window (a user created long after any request for it), nothing is found.
    let (_, id) = &created[0];
    let user = server::store::scim_users::get(&app.db, &t.id, id)
        .await
        .unwrap();
    let late = user.created_at + WINDOW + 5_000;
    assert!(
        logstore::creation_of(&app.db, &t.id, id, late, WINDOW)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_log_page_filters_pages_and_opens_entries() {
    let app = TestApp::new().await;
    let cookie = app.setup().await;
    let t = setup_tenant_scim(&app).await;
    for i in 0..55 {
        app.create_user(&t, &format!("user{i:02}@contoso.com"))
            .await;
        app.clock.advance_ms(1000);
    }
    let mut bad = user_json("nolast@contoso.com", "No", "Last");
    bad["name"].as_object_mut().unwrap().remove("familyName");
    app.scim("POST", &t, "/Users", Some(bad)).await;
    app.state.provlog.flush().await;

    let page = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let mut f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f.push(("query[to]", ""));
            app.server_fn("load_provisioning_log", &f, Some(&cookie))
                .await
                .json()
        }
    };
    let first = page(vec![]).await;
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(
        rows[0]["action"], "Could not create user nolast@contoso.com",
        "newest first"
    );
    let next = first["next"].as_str().unwrap().to_string();
    let second = page(vec![("query[before]", next)]).await;
    let rows2 = second["rows"].as_array().unwrap();
    assert_eq!(rows2.len(), 6);
    assert!(second["next"].is_null());
    assert_eq!(rows2[5]["action"], "Created user user00@contoso.com");

    let failures = page(vec![("query[outcome]", "failure".into())]).await;
    let f = failures["rows"].as_array().unwrap();
    assert_eq!(f.len(), 1);
    assert!(f[0]["error"].as_str().unwrap().contains("name.familyName"));
    let creates = page(vec![
        ("query[operation]", "user_create".into()),
        ("query[range]", "1h".into()),
    ])
    .await;
    assert_eq!(creates["rows"].as_array().unwrap().len(), 50);
    let bad_date = page(vec![("query[from]", "yesterday".into())]).await;
    assert!(bad_date["notice"].as_str().unwrap().contains("not a date"));

    let id = f[0]["id"].as_str().unwrap();
    let entry = app
        .server_fn("load_log_entry", &[("id", id)], Some(&cookie))
        .await
        .json();
    assert!(
        entry["request"]
            .as_str()
            .unwrap()
            .contains("nolast@contoso.com")
    );
    assert!(entry["response"].as_str().unwrap().contains("invalidValue"));
    assert_eq!(entry["scim_type"], "invalidValue");

    // Pages: signed in they render; signed out they send to sign-in; other organisations'
    // entries are not found.
    let r = app
        .get(
            &format!("/setup-admin/integration/microsoft-entra/log/{id}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("name.familyName"),
        "the entry renders on the server"
    );
    let r = app
        .get(
            &format!("/setup-admin/integration/microsoft-entra/log/{id}"),
            None,
        )
        .await;
    assert_eq!(r.location(), Some("/sign-in"));
    let r = app.server_fn("load_log_entry", &[("id", id)], None).await;
    assert!(r.body.contains("session has ended"), "{}", r.body);
    let other = app.scim_tenant("Fabrikam").await;
    app.create_user(&other, "x@fabrikam.com").await;
    let theirs = entries(&app, &other.id).await;
    let r = app
        .server_fn("load_log_entry", &[("id", &theirs[0].id)], Some(&cookie))
        .await;
    assert!(r.body.contains("does not exist"), "{}", r.body);

    // A lookup's answer is stored short and opens in full: the marker of what was left out,
    // and the list's schema.
    app.scim_filter(&t, "/Users", "userName eq \"user07@contoso.com\"")
        .await;
    app.state.provlog.flush().await;
    let lookup = entries(&app, &t.id)
        .await
        .into_iter()
        .find(|r| r.operation == "user_read")
        .unwrap();
    let stored = lookup.response_body.as_deref().unwrap();
    assert!(
        !stored.contains("not stored") && !stored.contains("schemas"),
        "{stored}"
    );
    let entry = app
        .server_fn("load_log_entry", &[("id", &lookup.id)], Some(&cookie))
        .await
        .json();
    let shown: Value = serde_json::from_str(entry["response"].as_str().unwrap()).unwrap();
    assert_eq!(shown["Resources"][0]["userName"], "user07@contoso.com");
    assert_eq!(
        shown["Resources"][1],
        server::provlog::describe::LIST_SUMMARY
    );
    assert_eq!(
        shown["schemas"],
        json!([server::provlog::describe::LIST_SCHEMA])
    );
}

/// Every filter gives what filtering the whole log in memory gives, for the common values
/// (successes, lookups: walked on the time key) and the rare ones (served by partial indexes),
/// one page at a time across entries of one millisecond.
#[tokio::test]
async fn log_filters_agree_with_the_whole_log_page_by_page() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    for i in 0..7 {
        let name = format!("u{i}@contoso.com");
        let id = id_of(&app.create_user(&t, &name).await);
        app.scim("GET", &t, &format!("/Users/{id}"), None).await;
        app.scim(
            "GET",
            &t,
            &format!("/Users{}", filter_q(&format!(r#"userName eq "{name}""#))),
            None,
        )
        .await;
        if i % 3 == 0 {
            app.scim_raw(
                "GET",
                &format!("/scim/v2/{}/Users", t.slug),
                Some("bbz_scim_wrong"),
                None,
            )
            .await;
            let dup = app
                .scim("POST", &t, "/Users", Some(user_json(&name, "U", "Dup")))
                .await;
            assert_eq!(dup.status, StatusCode::CONFLICT);
        }
        app.clock.advance_ms(if i % 2 == 0 { 0 } else { 1000 });
    }
    let all = entries(&app, &t.id).await;
    assert_eq!(
        all.len(),
        27,
        "7 × (create, get, lookup) + 3 × (rejected, duplicate)"
    );
    let cases: Vec<LogFilter> = ["success", "failure", "rejected"]
        .iter()
        .map(|o| LogFilter {
            outcome: Some(o.to_string()),
            ..LogFilter::default()
        })
        .chain(["user_read", "user_create"].iter().map(|o| LogFilter {
            operation: Some(o.to_string()),
            ..LogFilter::default()
        }))
        .collect();
    for f in cases {
        let want: Vec<String> = all
            .iter()
            .rev()
            .filter(|r| f.outcome.as_ref().is_none_or(|o| &r.outcome == o))
            .filter(|r| f.operation.as_ref().is_none_or(|o| &r.operation == o))
            .map(|r| r.id.clone())
            .collect();
        assert!(!want.is_empty(), "{f:?}");
        let mut got = Vec::new();
        let mut before = None;
        loop {
            let page = logstore::list(&app.db, &t.id, &f, before.clone(), 3, false)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            before = Some((last.at, last.id.clone()));
            got.extend(page.iter().map(|r| r.id.clone()));
        }
        assert_eq!(got, want, "{f:?}");
        let newest = logstore::get(&app.db, &t.id, &want[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(newest.id, want[0]);
    }
    assert!(
        logstore::get(&app.db, &t.id, "not-an-entry")
            .await
            .unwrap()
            .is_none()
    );
}

/// On SQLite the log is keyed by (organisation, time, id): listings read the key or a partial
/// index in order (no sort), and an entry is found through the time its id starts with.
#[tokio::test]
async fn log_queries_read_the_time_key_or_a_partial_index_on_sqlite() {
    let (db, _dir) = fresh_db().await;
    let db = db.log();
    let Some(pool) = db.sqlite_pool() else {
        return;
    };
    let plan = |sql: String, binds: usize| {
        let pool = pool.clone();
        async move {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q =
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain.as_str()));
            for _ in 0..binds {
                q = q.bind("x");
            }
            let rows = q.fetch_all(&pool).await.unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
        }
    };
    let f = |outcome: Option<&str>, operation: Option<&str>, target: Option<&str>| LogFilter {
        outcome: outcome.map(str::to_string),
        operation: operation.map(str::to_string),
        target_id: target.map(str::to_string),
        ..LogFilter::default()
    };
    let cases = [
        (f(None, None, None), "USING PRIMARY KEY (tenant_id=?"),
        (
            f(Some("success"), None, None),
            "USING PRIMARY KEY (tenant_id=?",
        ),
        (f(Some("failure"), None, None), "provisioning_log_outcome"),
        (
            f(None, Some("user_read"), None),
            "USING PRIMARY KEY (tenant_id=?",
        ),
        (
            f(None, Some("user_update"), None),
            "provisioning_log_operation",
        ),
        (f(None, None, Some("u1")), "provisioning_log_target"),
    ];
    for (filter, want) in cases {
        let sql = logstore::list_sql(&filter, true, false, true);
        let binds = sql.matches('$').count();
        let p = plan(sql, binds).await;
        assert!(p.contains(want), "{filter:?}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{filter:?} sorts: {p}");
    }
    let p = plan(logstore::creation_sql(true), 4).await;
    assert!(p.contains("provisioning_log_operation"), "{p}");
    assert!(!p.contains("TEMP B-TREE"), "the creation lookup sorts: {p}");
    let p = plan(
        "SELECT id FROM provisioning_log WHERE tenant_id = $1 AND at = $2 AND id = $3".into(),
        3,
    )
    .await;
    assert!(
        p.contains("PRIMARY KEY (tenant_id=? AND at=? AND id=?)"),
        "{p}"
    );
}

/// On SQLite the log is written through its own connection that does not wait for the disk on
/// each commit (SCIM's writes keep `synchronous=FULL`), and what it writes is read by the rest.
#[tokio::test]
async fn the_log_writes_through_its_own_connection_on_sqlite() {
    use server::store::Db;
    let (db, _dir) = fresh_db().await;
    let log_db = db.for_log_writes();
    let (Db::Sqlite(main), Db::Sqlite(log)) = (&db, &log_db) else {
        return;
    };
    let sync = |p: sqlx::SqlitePool| async move {
        sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(&p)
            .await
            .unwrap()
    };
    assert_eq!(sync(main.pool().clone()).await, 2, "FULL for the directory");
    assert_eq!(sync(log.pool().clone()).await, 1, "NORMAL for the log");
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    app.create_user(&t, "ada@contoso.com").await;
    assert_eq!(
        actions(&entries(&app, &t.id).await),
        ["Created user ada@contoso.com"]
    );
}

/// A user's successful changes are not in the target index: each entry points to the entry of
/// the change before it, and the user row to the newest. Parallel PATCHes (Entra sends them)
/// must give one unbroken chain in the order they were applied, Bulk operations included.
#[tokio::test]
async fn a_users_parallel_changes_form_one_chain_in_the_order_applied() {
    const N: usize = 16;
    let app = Arc::new(TestApp::new().await);
    let t = Arc::new(app.scim_tenant("Contoso").await);
    let user = app.create_user(&t, "chain@contoso.com").await;
    let id = id_of(&user);
    let mut tasks = Vec::new();
    for i in 0..N {
        let (app, t, id) = (app.clone(), t.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let p =
                patch_ops(json!([{"op": "Replace", "path": "title", "value": format!("t{i}")}]));
            let r = app
                .scim("PATCH", &t, &format!("/Users/{id}"), Some(p))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // One more through Bulk, and one that fails (not in the chain, in the target index).
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "PATCH", "path": format!("/Users/{id}"),
            "data": patch_ops(json!([{"op": "Replace", "path": "title", "value": "bulk"}]))}]
    });
    let r = app.scim("POST", &t, "/Bulk", Some(bulk)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bad = patch_ops(json!([{"op": "Replace", "path": "active", "value": "maybe"}]));
    let r = app
        .scim("PATCH", &t, &format!("/Users/{id}"), Some(bad))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    app.state.provlog.flush().await;

    let (chain, end) = logstore::user_chain(&app.db, &t.id, &id, 100)
        .await
        .unwrap();
    assert_eq!(end, logstore::ChainEnd::Start);
    assert_eq!(
        chain.len(),
        N + 1,
        "every change once: {:?}",
        actions(&chain)
    );
    assert!(
        chain[0].parent_id.is_some(),
        "the Bulk operation is the newest"
    );
    // Newest first, in the order applied: each answer's version is one below the one before.
    let versions: Vec<String> = chain
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(r.response_body.as_deref().unwrap()).unwrap();
            body["meta"]["version"].as_str().unwrap().to_string()
        })
        .collect();
    let expected: Vec<String> = (0..=N).rev().map(|v| format!("W/\"{}\"", v + 2)).collect();
    assert_eq!(versions, expected);
    assert!(chain.iter().all(|r| r.outcome == "success"));
    // A shorter walk stops at its limit.
    let (short, end) = logstore::user_chain(&app.db, &t.id, &id, 3).await.unwrap();
    assert_eq!((short.len(), end), (3, logstore::ChainEnd::Limit));
    assert_eq!(short, chain[..3].to_vec());
    // The target index holds only the failure.
    let target = in_target_index(&app, &t.id, &id).await;
    assert_eq!(target.len(), 1, "{:?}", actions(&target));
    assert_eq!(target[0].outcome, "failure");
}

/// An entry gone from the chain (pruned, or lost when the queue was full) ends the walk there,
/// and says so.
#[tokio::test]
async fn a_chain_with_a_missing_entry_ends_at_the_gap() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let id = id_of(&app.create_user(&t, "gap@contoso.com").await);
    retitle(&app, &t, &id, &["one", "two", "three"]).await;
    app.state.provlog.flush().await;
    let (chain, _) = logstore::user_chain(&app.db, &t.id, &id, 10).await.unwrap();
    assert_eq!(chain.len(), 3);
    let middle = &chain[1];
    app.forget_log_entry(&middle.id).await;
    let (after, end) = logstore::user_chain(&app.db, &t.id, &id, 10).await.unwrap();
    assert_eq!(end, logstore::ChainEnd::Gap);
    assert_eq!(after, chain[..1].to_vec());
}

/// An entry of the log as its writer stores it, made up for the store's own tests.
fn made_up_entry(tenant_id: &str, i: i64, at: i64) -> LogRow {
    LogRow {
        id: format!("entry-{i:05}"),
        tenant_id: tenant_id.to_string(),
        at,
        duration_us: 250,
        method: "GET".into(),
        path: "/Users".into(),
        operation: "user_read".into(),
        action: format!("Looked up user{i}@contoso.com"),
        target_type: Some("user".into()),
        target_id: None,
        target_name: None,
        outcome: "success".into(),
        status: 200,
        scim_type: None,
        error_detail: None,
        client_addr: "192.0.2.1".into(),
        request_body: None,
        response_body: None,
        parent_id: None,
        prev_entry: None,
    }
}

async fn stored_entries(db: &server::store::Db, tenant_id: &str) -> i64 {
    let f = LogFilter::default();
    logstore::list(db, tenant_id, &f, None, 10_000, false)
        .await
        .unwrap()
        .len() as i64
}

/// On SQLite the log has a file of its own beside the directory's, so a log batch being written
/// (a few thousand of Entra's lookups) does not hold the write lock that SCIM's writes need:
/// a user is created while a log transaction is open, and the log's rows are in the log's file
/// (in pages large enough for an entry with its bodies) and nowhere in the directory's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_a_file_and_a_write_lock_of_its_own_on_sqlite() {
    use server::store::{Db, log_file_of};
    use sqlx::ConnectOptions;
    let app = TestApp::new().await;
    let Db::Sqlite(directory) = &app.db else {
        return;
    };
    let t = app.scim_tenant("Contoso").await;
    let at = app.clock.now_ms();
    let rows: Vec<LogRow> = (0..2000).map(|i| made_up_entry(&t.id, i, at)).collect();
    let Db::Sqlite(log) = app.db.for_log_writes() else {
        unreachable!("the log of SQLite is on SQLite");
    };
    // A log batch in the middle of its transaction: it holds the log's write lock.
    let mut open = log.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO provisioning_log (tenant_id, at, id, duration_us, method, path, \
         operation, action, outcome, status) VALUES ($1, $2, 'open', 0, 'GET', '/Users', \
         'user_read', 'x', 'success', 200)",
    )
    .bind(&t.id)
    .bind(at)
    .execute(&mut *open)
    .await
    .unwrap();
    // SQLite's busy timeout is 10 s: a write that needed the same lock would still wait.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.create_user(&t, "during@contoso.com"),
    )
    .await
    .expect("the SCIM write waited for the log's transaction");
    open.commit().await.unwrap();
    logstore::write_batch(&app.db.for_log_writes(), &rows, &Default::default())
        .await
        .unwrap();
    app.state.provlog.drain().await;

    let file = log_file_of(directory.connect_options().get_filename());
    assert_eq!(file.file_name().unwrap(), "test-log.db");
    let mut alone = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .connect()
        .await
        .unwrap();
    let in_log_file: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM provisioning_log WHERE tenant_id = $1")
            .bind(&t.id)
            .fetch_one(&mut alone)
            .await
            .unwrap();
    assert_eq!(
        in_log_file,
        2000 + 1 + 1,
        "the batch, the open one and the POST's entry"
    );
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut alone)
        .await
        .unwrap();
    assert_eq!(
        page,
        i64::from(server::store::LOG_PAGE_SIZE),
        "an entry fits in a page"
    );
    let in_directory: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM main.sqlite_master \
         WHERE tbl_name IN ('provisioning_log', 'provisioning_hourly')",
    )
    .fetch_one(directory.pool())
    .await
    .unwrap();
    assert_eq!(
        in_directory, 0,
        "no table or index of the log in the directory's file"
    );
    assert_eq!(stored_entries(&app.db, &t.id).await, 2002);
}

/// On SQLite the log is written on a thread of its own (`provlog-writer`), off the runtime
/// that answers requests, and still gets every entry and drains at shutdown.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn on_sqlite_the_log_is_written_on_a_thread_of_its_own() {
    let app = TestApp::new().await;
    if app.db.sqlite_pool().is_none() {
        return;
    }
    let t = app.scim_tenant("Contoso").await;
    let q = filter_q(r#"userName eq "alice@contoso.com""#);
    app.scim("GET", &t, &format!("/Users{q}"), None).await;
    assert_eq!(entries(&app, &t.id).await.len(), 1);
    let writers = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "provlog-writer")
        .count();
    assert!(writers >= 1, "no thread named provlog-writer");
    app.scim("GET", &t, &format!("/Users{q}"), None).await;
    app.state.provlog.drain().await;
    assert_eq!(entries(&app, &t.id).await.len(), 2);
}
