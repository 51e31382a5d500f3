//! A change and its audit entry commit together or not at all. Each test makes the database
//! refuse audit entries (a trigger), tries a change, and checks that nothing of it stayed; then
//! lets audit entries through again and checks that the same change now succeeds, so the test
//! would notice a change that skipped its entry as well as one that outlived a failed entry.
//! On SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use scim_support::*;
use serde_json::json;
use server::provisioning::{self, Actor};
use server::store::audit::AuditAction;
use server::store::{Db, tenants, tokens};

const WHO: Actor<'static> = Actor {
    name: "test",
    client_addr: "",
};

async fn refuse_audit(db: &Db, on: bool) {
    let sql = match (db, on) {
        (Db::Sqlite(_), true) => {
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
        }
        (Db::Sqlite(_), false) => "DROP TRIGGER refuse_audit",
        (Db::Postgres(_), true) => {
            "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        }
        (Db::Postgres(_), false) => "DROP TRIGGER refuse_audit ON audit_log",
    };
    server::store::on_db!(db, |p| sqlx::raw_sql(sql).execute(p).await.map(|_| ())).unwrap();
}

async fn audited(app: &TestApp, tenant_id: &str, action: &str) -> usize {
    let action = AuditAction::from_code(action).expect("a known action");
    server::store::audit::recent(&app.db, tenant_id, &[action], 100)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn provisioning_settings_and_credentials_change_only_with_their_audit_entry() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let db = &app.db;
    let live_tokens = || async { tokens::list(db, &t.id).await.unwrap().len() };
    let tokens_before = live_tokens().await;
    let overlap_before = tenants::by_id(db, &t.id).await.unwrap().token_overlap_secs;
    let tokens_now = tokens::list(db, &t.id).await.unwrap();
    let token_id = tokens_now[0].id.clone();

    refuse_audit(db, true).await;
    assert!(
        provisioning::set_enabled(db, &t.id, false, &WHO, START_MS)
            .await
            .is_err()
    );
    assert!(
        tenants::by_id(db, &t.id)
            .await
            .unwrap()
            .provisioning_enabled,
        "the switch stayed on"
    );
    assert!(
        provisioning::issue_token(db, &t.id, &WHO, START_MS)
            .await
            .is_err()
    );
    assert_eq!(live_tokens().await, tokens_before, "no token was added");
    assert!(
        tokens::list(db, &t.id).await.unwrap()[0]
            .expires_at
            .is_none(),
        "the live token was not put on its way out"
    );
    assert!(
        provisioning::revoke_token(db, &t.id, &token_id, &WHO, START_MS)
            .await
            .is_err()
    );
    assert!(
        tokens::list(db, &t.id).await.unwrap()[0]
            .revoked_at
            .is_none(),
        "the token was not revoked"
    );
    assert!(
        provisioning::set_overlap(db, &t.id, overlap_before + 60, &WHO, START_MS)
            .await
            .is_err()
    );
    assert_eq!(
        tenants::by_id(db, &t.id).await.unwrap().token_overlap_secs,
        overlap_before
    );
    assert!(
        server::oauth::issue_client_secret(
            db,
            &t.id,
            server::oauth::SecretYears::default(),
            &WHO,
            START_MS
        )
        .await
        .is_err()
    );
    assert!(
        server::store::oauth::list_secrets(db, &t.id)
            .await
            .unwrap()
            .is_empty(),
        "no client secret was added"
    );
    // SCIM still answers: the token gate reads, it does not audit.
    let r = app.scim("GET", &t, "/Users", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    refuse_audit(db, false).await;
    provisioning::set_overlap(db, &t.id, overlap_before + 60, &WHO, START_MS)
        .await
        .unwrap();
    provisioning::issue_token(db, &t.id, &WHO, START_MS)
        .await
        .unwrap();
    provisioning::revoke_token(db, &t.id, &token_id, &WHO, START_MS)
        .await
        .unwrap();
    server::oauth::issue_client_secret(
        db,
        &t.id,
        server::oauth::SecretYears::default(),
        &WHO,
        START_MS,
    )
    .await
    .unwrap();
    provisioning::set_enabled(db, &t.id, false, &WHO, START_MS)
        .await
        .unwrap();
    for action in [
        "overlap_changed",
        "token_rotated",
        "token_revoked",
        "client_secret_generated",
        "provisioning_disabled",
    ] {
        assert_eq!(audited(&app, &t.id, action).await, 1, "{action}");
    }
    assert_eq!(live_tokens().await, tokens_before + 1);
    assert!(
        !tenants::by_id(db, &t.id)
            .await
            .unwrap()
            .provisioning_enabled
    );
}

#[tokio::test]
async fn an_organisation_is_created_with_its_admin_and_audit_entry_or_not_at_all() {
    let app = TestApp::new().await;
    let db = &app.db;
    let admin = || tenants::NewAdmin {
        name: "Ada",
        email: "ada@fabrikam.example",
        password_hash: "x",
        source: "cli",
    };
    refuse_audit(db, true).await;
    let refused = server::organisations::create(
        db,
        tenants::InstallGate::FirstRun,
        "Fabrikam",
        admin(),
        &WHO,
        START_MS,
    )
    .await;
    assert!(refused.is_err());
    assert!(tenants::by_slug(db, "fabrikam").await.unwrap().is_none());
    assert!(
        !tenants::install_completed(db).await.unwrap(),
        "the first-run page is still open"
    );
    assert!(
        server::store::users::admins_by_email(db, "ada@fabrikam.example")
            .await
            .unwrap()
            .is_empty(),
        "no admin without an organisation"
    );

    refuse_audit(db, false).await;
    let t = server::organisations::create(
        db,
        tenants::InstallGate::FirstRun,
        "Fabrikam",
        admin(),
        &WHO,
        START_MS,
    )
    .await
    .unwrap();
    assert_eq!(t.slug, "fabrikam");
    assert_eq!(audited(&app, &t.id, "organisation_created").await, 1);
    assert!(tenants::install_completed(db).await.unwrap());
}

#[tokio::test]
async fn an_admins_sign_in_email_changes_over_scim_only_with_its_audit_entry() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let (n, found) = app
        .scim_filter(&t, "/Users", "userName eq \"op@example.com\"")
        .await;
    assert_eq!(n, 1);
    let id = found[0]["id"].as_str().unwrap().to_string();
    let change = patch_ops(json!([{
        "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new.op@example.com"
    }]));
    let email = || async {
        let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
        ok_json(&r, StatusCode::OK)["emails"][0]["value"].clone()
    };

    refuse_audit(&app.db, true).await;
    let r = app
        .scim("PATCH", &t, &format!("/Users/{id}"), Some(change.clone()))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(email().await, "op@example.com", "the email was not changed");
    // A change that is not audited is not held back by the audit log.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(
                json!([{"op": "Replace", "path": "title", "value": "Operator"}]),
            )),
        )
        .await;
    ok_json(&r, StatusCode::OK);

    refuse_audit(&app.db, false).await;
    let r = app
        .scim("PATCH", &t, &format!("/Users/{id}"), Some(change))
        .await;
    ok_json(&r, StatusCode::OK);
    assert_eq!(email().await, "new.op@example.com");
    assert_eq!(audited(&app, &t.id, "admin_email_changed").await, 1);
}

/// Changes sent at once each commit with exactly their own audit entry: settings, the first-run
/// organisation (one wins), and an admin's sign-in email changed by parallel SCIM PATCHes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_each_commit_with_exactly_their_own_entry() {
    let app = TestApp::new().await;
    let db = &app.db;

    // First run: of six organisations created at once, one is.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let email = format!("ada{i}@fabrikam.example");
            let admin = tenants::NewAdmin {
                name: "Ada",
                email: &email,
                password_hash: "x",
                source: "cli",
            };
            server::organisations::create(
                &db,
                tenants::InstallGate::FirstRun,
                "Fabrikam",
                admin,
                &WHO,
                START_MS,
            )
            .await
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(t) => created.push(t),
            Err(server::store::StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one first organisation");
    assert_eq!(
        audited(&app, &created[0].id, "organisation_created").await,
        1
    );
    assert!(tenants::by_slug(db, "fabrikam-2").await.unwrap().is_none());

    // Settings: twelve switches and twelve overlaps at once, each with its entry.
    let t = app.scim_tenant("Contoso").await;
    let before = audited(&app, &t.id, "provisioning_enabled").await
        + audited(&app, &t.id, "provisioning_disabled").await;
    let mut tasks = Vec::new();
    for i in 0..12i64 {
        let (db, id) = (db.clone(), t.id.clone());
        tasks.push(tokio::spawn(async move {
            provisioning::set_enabled(&db, &id, i % 2 == 0, &WHO, START_MS).await?;
            provisioning::set_overlap(&db, &id, 60 * (i + 1), &WHO, START_MS).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let switched = audited(&app, &t.id, "provisioning_enabled").await
        + audited(&app, &t.id, "provisioning_disabled").await;
    assert_eq!(switched - before, 12);
    assert_eq!(audited(&app, &t.id, "overlap_changed").await, 12);
    provisioning::set_enabled(db, &t.id, true, &WHO, START_MS)
        .await
        .unwrap();

    // An admin's sign-in email, changed by eight PATCHes at once: each is applied (no lost
    // update) and each change has its one entry.
    let (n, found) = app
        .scim_filter(&t, "/Users", "userName eq \"op@example.com\"")
        .await;
    assert_eq!(n, 1);
    let id = found[0]["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    let patches = (0..8).map(|i| {
        let change = patch_ops(json!([{
            "op": "Replace", "path": "emails[type eq \"work\"].value",
            "value": format!("op{i}@example.com")
        }]));
        app.scim("PATCH", &t, &path, Some(change))
    });
    for r in futures_util::future::join_all(patches).await {
        ok_json(&r, StatusCode::OK);
    }
    assert_eq!(audited(&app, &t.id, "admin_email_changed").await, 8);
}
