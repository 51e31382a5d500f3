//! SCIM and the console's own admins: SCIM finds and updates local admins (so Entra links an
//! admin's Entra account instead of creating a duplicate), but never disables or deprovisions
//! the organisation's last active admin, even when two requests race; a sign-in email changed
//! over SCIM is audited where the admin sees it.

mod common;
mod scim_support;

use axum::http::StatusCode;
use common::*;
use scim_support::*;
use serde_json::json;

const ADMIN: &str = "op@example.com";

async fn admin_id(app: &TestApp, t: &ScimTenant) -> String {
    let (n, found) = app
        .scim_filter(t, "/Users", &format!("userName eq \"{ADMIN}\""))
        .await;
    assert_eq!(n, 1, "SCIM finds the local admin by userName");
    found[0]["id"].as_str().unwrap().to_string()
}

fn set_active(active: bool) -> serde_json::Value {
    patch_ops(
        json!([{ "op": "Replace", "path": "active", "value": if active { "True" } else { "False" } }]),
    )
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_disabled_or_deprovisioned() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let id = admin_id(&app, &t).await;
    let path = format!("/Users/{id}");

    let r = app.scim("PATCH", &t, &path, Some(set_active(false))).await;
    let e = assert_error(&r, 400, Some("mutability"));
    assert!(
        e["detail"].as_str().unwrap().contains("last active admin"),
        "{e}"
    );

    let r = app.scim("DELETE", &t, &path, None).await;
    assert_error(&r, 400, Some("mutability"));

    let mut put = user_json(ADMIN, "Op", "Erator");
    put["active"] = json!(false);
    let r = app.scim("PUT", &t, &path, Some(put)).await;
    assert_error(&r, 400, Some("mutability"));

    // Still there and active; other changes go through.
    let r = app
        .scim(
            "PATCH",
            &t,
            &path,
            Some(patch_ops(
                json!([{ "op": "Replace", "path": "title", "value": "Owner" }]),
            )),
        )
        .await;
    let doc = ok_json(&r, StatusCode::OK);
    assert_eq!(doc["active"], true);
    assert_eq!(doc["title"], "Owner");
}

#[tokio::test]
async fn two_admins_disabled_at_once_leave_one_active() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let first = admin_id(&app, &t).await;
    let other = app.create_user(&t, "second.admin@contoso.com").await;
    let second = other["id"].as_str().unwrap().to_string();
    // An admin made in the console (the console has no page for it yet: set the flag).
    server::store::on_db!(&app.db, |p| sqlx::query(
        "UPDATE users SET is_admin = TRUE WHERE id = $1"
    )
    .bind(&second)
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    for _ in 0..3 {
        let (pa, pb) = (format!("/Users/{first}"), format!("/Users/{second}"));
        let (a, b) = tokio::join!(
            app.scim("PATCH", &t, &pa, Some(set_active(false))),
            app.scim("PATCH", &t, &pb, Some(set_active(false))),
        );
        let ok = [&a, &b]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} / {}", a.body, b.body);
        for r in [&a, &b].into_iter().filter(|r| r.status != StatusCode::OK) {
            assert_error(r, 400, Some("mutability"));
        }
        // Re-enable both for the next round.
        for id in [&first, &second] {
            let r = app
                .scim("PATCH", &t, &format!("/Users/{id}"), Some(set_active(true)))
                .await;
            ok_json(&r, StatusCode::OK);
        }
    }
    // With another active admin, one may be deprovisioned.
    let r = app
        .scim("DELETE", &t, &format!("/Users/{second}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .scim("DELETE", &t, &format!("/Users/{first}"), None)
        .await;
    assert_error(&r, 400, Some("mutability"));
}

#[tokio::test]
async fn a_sign_in_email_changed_over_scim_is_audited() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let id = admin_id(&app, &t).await;
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(json!([{
                "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new.op@example.com"
            }]))),
        )
        .await;
    ok_json(&r, StatusCode::OK);
    let recent = server::store::audit::recent(
        &app.db,
        &t.id,
        &[server::store::audit::AuditAction::AdminEmailChanged],
        10,
    )
    .await
    .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].actor, "scim");
    assert!(
        recent[0]
            .detail
            .contains("op@example.com → new.op@example.com"),
        "{}",
        recent[0].detail
    );
}
