//! SCIM `/Users` as Microsoft Entra ID drives it (see shared/entra-scim.md), through the real
//! router on a real database (SQLite; PostgreSQL too when TEST_DATABASE_URL is set).

mod common;
mod scim_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use scim_support::*;
use serde_json::{Value, json};

const T0: &str = "2026-09-21T14:13:20.000Z";
const T1: &str = "2026-09-21T14:13:21.000Z";

fn location(t: &ScimTenant, plural: &str, id: &str) -> String {
    format!("{PUBLIC_URL}/scim/v2/{}/{plural}/{id}", t.slug)
}

#[tokio::test]
async fn test_connection_gets_an_empty_list_then_finds_a_provisioned_user() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let guid = uuid::Uuid::new_v4();
    let uri = format!("/scim/v2/{}/Users?filter=userName+eq+%22{guid}%22", t.slug);
    let empty = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    });
    // As Test Connection once sent it: neither Accept nor Content-Type.
    let r = app.scim_raw("GET", &uri, Some(&t.token), None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), empty);
    // And with the headers other clients send.
    for (accept, content_type) in [
        ("application/scim+json", "application/scim+json"),
        ("application/json", "application/json; charset=utf-8"),
        ("*/*", "application/scim+json; charset=utf-8"),
    ] {
        let req = Request::get(&uri)
            .header("authorization", format!("Bearer {}", t.token))
            .header("accept", accept)
            .header("content-type", content_type)
            .body(Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(
            ok_json(&r, StatusCode::OK),
            empty,
            "{accept} / {content_type}"
        );
    }

    let u = app.create_user(&t, "alice.smith@contoso.com").await;
    let uri = format!(
        "/scim/v2/{}/Users?filter=userName+eq+%22alice.smith%40contoso.com%22",
        t.slug
    );
    let r = app.scim_raw("GET", &uri, Some(&t.token), None).await;
    let (total, found) = list_of(&r);
    assert_eq!(total, 1);
    assert_eq!(
        found,
        vec![u],
        "a listed user is the same document as the created one"
    );
}

#[tokio::test]
async fn user_lifecycle_create_update_disable_reactivate_delete_recreate() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let user_name = "Alice.Smith@contoso.com";
    let by_name = format!(r#"userName eq "{user_name}""#);

    // Entra looks the user up by its matching attribute first.
    assert_eq!(app.scim_filter(&t, "/Users", &by_name).await.0, 0);

    // Create.
    let r = app
        .scim(
            "POST",
            &t,
            "/Users",
            Some(user_json(user_name, "Alice", "Smith")),
        )
        .await;
    let u = ok_json(&r, StatusCode::CREATED);
    let id = u["id"].as_str().expect("id").to_string();
    assert!(!id.is_empty());
    let loc = location(&t, "Users", &id);
    assert_eq!(
        u["meta"],
        json!({
            "resourceType": "User",
            "created": T0,
            "lastModified": T0,
            "location": loc,
            "version": "W/\"1\"",
        })
    );
    assert_eq!(r.location(), Some(loc.as_str()));
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert!(
        u["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(USER_SCHEMA)),
        "{u}"
    );
    assert_eq!(u["userName"], user_name, "stored as sent");
    assert_eq!(u["externalId"], "Alice.Smith");
    assert_eq!(u["active"], true);
    assert_eq!(u["displayName"], "Alice Smith");
    assert_eq!(u["name"]["givenName"], "Alice");
    assert_eq!(u["name"]["familyName"], "Smith");
    assert_eq!(
        u["emails"],
        json!([{ "primary": true, "type": "work", "value": user_name }])
    );
    assert_eq!(u["locale"], "en-US");

    // Read it back.
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), u);
    assert_eq!(r.header("etag"), Some("W/\"1\""));

    // Lookups: userName ignores case, externalId does not (caseExact in RFC 7643 §3.1).
    for f in [
        by_name.clone(),
        r#"userName eq "alice.smith@CONTOSO.COM""#.to_string(),
        r#"externalId eq "Alice.Smith""#.to_string(),
        format!(r#"externalId eq "Alice.Smith" and userName eq "{user_name}""#),
    ] {
        let (total, found) = app.scim_filter(&t, "/Users", &f).await;
        assert_eq!((total, ids(&found)), (1, vec![id.clone()]), "{f}");
    }
    assert_eq!(
        app.scim_filter(&t, "/Users", r#"externalId eq "alice.smith""#)
            .await
            .0,
        0
    );

    // Update, Entra without the aadOptscim062020 flag: one operation per path, capitalised ops.
    app.clock.advance_ms(1000);
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(json!([
                { "op": "Replace", "path": "displayName", "value": "Alice S." },
                { "op": "Add", "path": "title", "value": "Engineer" },
                { "op": "Replace", "path": "name.familyName", "value": "Smith-Jones" },
                { "op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100" },
                { "op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D" },
            ]))),
        )
        .await;
    let u = ok_json(&r, StatusCode::OK);
    assert_eq!(u["displayName"], "Alice S.");
    assert_eq!(u["title"], "Engineer");
    assert_eq!(u["name"]["familyName"], "Smith-Jones");
    assert_eq!(u["name"]["givenName"], "Alice");
    assert_eq!(
        u["phoneNumbers"],
        json!([{ "type": "mobile", "value": "+1 555 0100" }])
    );
    assert_eq!(u[ENTERPRISE]["department"], "R&D");
    assert!(
        u["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE)),
        "{u}"
    );
    assert_eq!(u["meta"]["created"], T0);
    assert_eq!(u["meta"]["lastModified"], T1);
    assert_eq!(u["meta"]["version"], "W/\"2\"");
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    // With the flag: one pathless replace whose keys are paths (dotted and URN-prefixed).
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(json!([{
                "op": "replace",
                "value": {
                    "name.givenName": "Alicia",
                    "title": "Lead Engineer",
                    format!("{ENTERPRISE}:employeeNumber"): "E-42",
                    format!("{ENTERPRISE}:department"): "Research",
                }
            }]))),
        )
        .await;
    let u = ok_json(&r, StatusCode::OK);
    assert_eq!(u["name"]["givenName"], "Alicia");
    assert_eq!(u["name"]["familyName"], "Smith-Jones");
    assert_eq!(u["title"], "Lead Engineer");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "E-42");
    assert_eq!(u[ENTERPRISE]["department"], "Research");
    assert_eq!(u["meta"]["version"], "W/\"3\"");
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(
        ok_json(&r, StatusCode::OK),
        u,
        "the PATCH answer is what is stored"
    );

    // Disable (a string boolean): still visible to GET and to filters.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(
                json!([{ "op": "Replace", "path": "active", "value": "False" }]),
            )),
        )
        .await;
    assert_eq!(ok_json(&r, StatusCode::OK)["active"], false);
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["active"], false);
    for f in [by_name.as_str(), "active eq false"] {
        let (total, found) = app.scim_filter(&t, "/Users", f).await;
        assert_eq!((total, ids(&found)), (1, vec![id.clone()]), "{f}");
        assert_eq!(found[0]["active"], false);
    }

    // Reactivate, with the flag's JSON boolean.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(
                json!([{ "op": "replace", "path": "active", "value": true }]),
            )),
        )
        .await;
    assert_eq!(ok_json(&r, StatusCode::OK)["active"], true);
    let (_, found) = app.scim_filter(&t, "/Users", "active eq false").await;
    assert!(found.is_empty(), "{found:?}");

    // Delete: 204, then gone from every SCIM read.
    let r = app.scim("DELETE", &t, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.body.is_empty());
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    assert_error(&r, 404, None);
    for f in [
        by_name.clone(),
        format!(r#"id eq "{id}""#),
        r#"externalId eq "Alice.Smith""#.to_string(),
        "active eq false".to_string(),
    ] {
        assert_eq!(app.scim_filter(&t, "/Users", &f).await.0, 0, "{f}");
    }
    let r = app.scim("GET", &t, "/Users?count=1000", None).await;
    let (_, all) = list_of(&r);
    assert!(!ids(&all).contains(&id), "{all:?}");
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(
                json!([{ "op": "replace", "path": "active", "value": true }]),
            )),
        )
        .await;
    assert_error(&r, 404, None);
    let r = app.scim("DELETE", &t, &format!("/Users/{id}"), None).await;
    assert_error(&r, 404, None);

    // The record is kept (deprovisioned, inactive) for the console and the audit trail.
    let kept: (bool, Option<i64>) = server::on_db!(&app.db, |p| sqlx::query_as(
        "SELECT active, deleted_at FROM users WHERE id = $1"
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(kept, (false, Some(START_MS + 1000)));

    // Re-provisioning the same userName (and externalId) makes a fresh user.
    let r = app
        .scim(
            "POST",
            &t,
            "/Users",
            Some(user_json(user_name, "Alice", "Smith")),
        )
        .await;
    let again = ok_json(&r, StatusCode::CREATED);
    let new_id = again["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    assert_eq!(again["meta"]["version"], "W/\"1\"");
    let (total, found) = app.scim_filter(&t, "/Users", &by_name).await;
    assert_eq!((total, ids(&found)), (1, vec![new_id.to_string()]));
}

fn without(mut doc: Value, pointer_parent: &str, key: &str) -> Value {
    let parent = if pointer_parent.is_empty() {
        &mut doc
    } else {
        doc.pointer_mut(pointer_parent).unwrap()
    };
    parent.as_object_mut().unwrap().remove(key);
    doc
}

#[tokio::test]
async fn mandatory_attributes_are_refused_on_create_replace_and_patch() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let full = user_json("dana.lee@contoso.com", "Dana", "Lee");
    let cases = [
        (without(full.clone(), "", "userName"), "userName"),
        (without(full.clone(), "", "emails"), "email"),
        (
            {
                let mut d = full.clone();
                d["emails"] = json!([]);
                d
            },
            "email",
        ),
        (
            without(full.clone(), "/name", "givenName"),
            "name.givenName",
        ),
        (
            without(full.clone(), "/name", "familyName"),
            "name.familyName",
        ),
        (
            {
                let mut d = full.clone();
                d["name"]["givenName"] = json!("  ");
                d
            },
            "name.givenName",
        ),
        (without(full.clone(), "", "name"), "name.givenName"),
    ];
    for (body, named) in &cases {
        let r = app.scim("POST", &t, "/Users", Some(body.clone())).await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(
            e["detail"].as_str().unwrap().contains(named),
            "POST without {named}: {e}"
        );
    }
    assert_eq!(
        app.scim_filter(&t, "/Users", r#"userName eq "dana.lee@contoso.com""#)
            .await
            .0,
        0,
        "nothing was created"
    );

    let u = app.create_user(&t, "dana.lee@contoso.com").await;
    let path = format!("/Users/{}", u["id"].as_str().unwrap());
    for (body, named) in &cases {
        let r = app.scim("PUT", &t, &path, Some(body.clone())).await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(
            e["detail"].as_str().unwrap().contains(named),
            "PUT without {named}: {e}"
        );
    }
    for (op, named) in [
        (json!({ "op": "Remove", "path": "userName" }), "userName"),
        (
            json!({ "op": "Replace", "path": "userName", "value": "" }),
            "userName",
        ),
        (json!({ "op": "Remove", "path": "emails" }), "email"),
        (
            json!({ "op": "Remove", "path": "emails[type eq \"work\"]" }),
            "email",
        ),
        (
            json!({ "op": "Remove", "path": "name.givenName" }),
            "name.givenName",
        ),
        (
            json!({ "op": "Replace", "path": "name.familyName", "value": "" }),
            "name.familyName",
        ),
        (
            json!({ "op": "Remove", "path": "name" }),
            "'name' is required",
        ),
    ] {
        let r = app
            .scim("PATCH", &t, &path, Some(patch_ops(json!([op.clone()]))))
            .await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(
            e["detail"].as_str().unwrap().contains(named),
            "PATCH {op}: {e}"
        );
    }
    let r = app.scim("GET", &t, &path, None).await;
    assert_eq!(
        ok_json(&r, StatusCode::OK),
        u,
        "refused writes changed nothing"
    );

    // A PUT with everything present replaces the user.
    let mut body = user_json("dana.lee@contoso.com", "Dana", "Lee-Park");
    body["title"] = json!("Analyst");
    let r = app.scim("PUT", &t, &path, Some(body)).await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v["name"]["familyName"], "Lee-Park");
    assert_eq!(v["title"], "Analyst");
    assert_eq!(v["id"], u["id"]);
    assert_eq!(v["meta"]["version"], "W/\"2\"");
}

/// A single-valued string attribute takes one string (a number becomes its digits); an array or
/// an object for it is refused with `invalidValue`, on create, replace and PATCH. The columns
/// that stand in for `displayName` and `name.familyName` (`display_name_lc`, `family_name_lc`)
/// rely on it: a user with a value there has exactly one string.
#[tokio::test]
async fn a_single_valued_string_attribute_takes_one_string() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let bad = [json!(["Ann", "Anna"]), json!({"value": "Ann"}), json!(true)];
    for value in &bad {
        let mut body = user_json("ann.single@contoso.com", "Ann", "Single");
        body["displayName"] = value.clone();
        let r = app.scim("POST", &t, "/Users", Some(body)).await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains("displayName"), "{e}");
        let mut body = user_json("ann.single@contoso.com", "Ann", "Single");
        body["name"]["familyName"] = value.clone();
        let r = app.scim("POST", &t, "/Users", Some(body)).await;
        assert_error(&r, 400, Some("invalidValue"));
    }
    let (total, _) = app
        .scim_filter(&t, "/Users", r#"userName eq "ann.single@contoso.com""#)
        .await;
    assert_eq!(total, 0, "nothing refused was stored");

    let mut body = user_json("ann.single@contoso.com", "Ann", "Single");
    body["displayName"] = json!(1234);
    let r = app.scim("POST", &t, "/Users", Some(body)).await;
    let u = ok_json(&r, StatusCode::CREATED);
    assert_eq!(u["displayName"], "1234");
    let id = u["id"].as_str().unwrap().to_string();
    for value in &bad {
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": value}],
        });
        let r = app
            .scim("PATCH", &t, &format!("/Users/{id}"), Some(patch))
            .await;
        assert_error(&r, 400, Some("invalidValue"));
        let mut body = user_json("ann.single@contoso.com", "Ann", "Single");
        body["name"]["familyName"] = value.clone();
        let r = app
            .scim("PUT", &t, &format!("/Users/{id}"), Some(body))
            .await;
        assert_error(&r, 400, Some("invalidValue"));
    }
    let r = app.scim("GET", &t, &format!("/Users/{id}"), None).await;
    let u = ok_json(&r, StatusCode::OK);
    assert_eq!(u["displayName"], "1234");
    assert_eq!(u["name"]["familyName"], "Single");
}

/// A new user's id begins with its creation time (UUID version 7), so the primary key's index
/// grows at its end; ids created one after another sort in that order, over SCIM and Bulk.
#[tokio::test]
async fn new_users_ids_follow_their_creation_order() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let u = app.create_user(&t, &format!("order{i}@contoso.com")).await;
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{
            "method": "POST", "path": "/Users", "bulkId": "b1",
            "data": user_json("order-bulk@contoso.com", "Bulk", "Order"),
        }],
    });
    let r = app.scim("POST", &t, "/Bulk", Some(bulk)).await;
    let done = ok_json(&r, StatusCode::OK);
    let location = done["Operations"][0]["location"].as_str().unwrap();
    ids.push(location.rsplit('/').next().unwrap().to_string());
    for id in &ids {
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 7, "{id}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids in creation order");
}

#[tokio::test]
async fn duplicates_answer_409_uniqueness_and_the_lookup_finds_the_holder() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let bob = app.create_user(&t, "bob.stone@contoso.com").await;
    let bob_id = bob["id"].as_str().unwrap().to_string();

    // userName differs only in case.
    let mut dup = user_json("BOB.STONE@Contoso.com", "Bob", "Stone");
    dup["externalId"] = json!("someone-else");
    let r = app.scim("POST", &t, "/Users", Some(dup)).await;
    let e = assert_error(&r, 409, Some("uniqueness"));
    assert!(e["detail"].as_str().unwrap().contains("userName"), "{e}");
    let (total, found) = app
        .scim_filter(&t, "/Users", r#"userName eq "BOB.STONE@Contoso.com""#)
        .await;
    assert_eq!((total, ids(&found)), (1, vec![bob_id.clone()]));

    // Same externalId, other userName.
    let mut dup = user_json("robert.stone@contoso.com", "Robert", "Stone");
    dup["externalId"] = bob["externalId"].clone();
    let r = app.scim("POST", &t, "/Users", Some(dup)).await;
    let e = assert_error(&r, 409, Some("uniqueness"));
    assert!(e["detail"].as_str().unwrap().contains("externalId"), "{e}");
    let (total, found) = app
        .scim_filter(&t, "/Users", r#"externalId eq "bob.stone""#)
        .await;
    assert_eq!((total, ids(&found)), (1, vec![bob_id.clone()]));

    // Renaming another user onto Bob's userName, by PATCH or PUT, collides too.
    let eve = app.create_user(&t, "eve.stone@contoso.com").await;
    let eve_path = format!("/Users/{}", eve["id"].as_str().unwrap());
    let r = app
        .scim(
            "PATCH",
            &t,
            &eve_path,
            Some(patch_ops(json!([
                { "op": "Replace", "path": "userName", "value": "Bob.Stone@contoso.com" }
            ]))),
        )
        .await;
    assert_error(&r, 409, Some("uniqueness"));
    let mut put = user_json("bob.stone@CONTOSO.com", "Eve", "Stone");
    put["externalId"] = json!("eve.stone");
    let r = app.scim("PUT", &t, &eve_path, Some(put)).await;
    assert_error(&r, 409, Some("uniqueness"));
    let r = app.scim("GET", &t, &eve_path, None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), eve);

    // Uniqueness is per organisation.
    let other = app.scim_tenant("Fabrikam").await;
    let r = app
        .scim(
            "POST",
            &other,
            "/Users",
            Some(user_json("bob.stone@contoso.com", "Bob", "Stone")),
        )
        .await;
    ok_json(&r, StatusCode::CREATED);
}

#[tokio::test]
async fn work_email_replace_creates_it_and_keeps_the_other_emails() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let mut body = user_json("carol.white@contoso.com", "Carol", "White");
    body["emails"] = json!([{ "type": "other", "value": "cw@alias.example" }]);
    let r = app.scim("POST", &t, "/Users", Some(body)).await;
    let u = ok_json(&r, StatusCode::CREATED);
    let id = u["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");

    let set_work = |v: &str| {
        patch_ops(json!([
            { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": v }
        ]))
    };
    let r = app
        .scim(
            "PATCH",
            &t,
            &path,
            Some(set_work("Carol.White@contoso.com")),
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    let emails = v["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{v}");
    assert!(emails.contains(&json!({ "type": "other", "value": "cw@alias.example" })));
    assert!(
        emails
            .iter()
            .any(|e| e["type"] == "work" && e["value"] == "Carol.White@contoso.com"),
        "{v}"
    );

    for f in [
        r#"emails[type eq "work"].value eq "Carol.White@contoso.com""#,
        r#"emails[type eq "work" and value eq "carol.white@contoso.com"]"#,
        r#"emails.value eq "cw@alias.example""#,
    ] {
        let (total, found) = app.scim_filter(&t, "/Users", f).await;
        assert_eq!((total, ids(&found)), (1, vec![id.clone()]), "{f}");
    }
    // The other email is not a work email.
    let f = r#"emails[type eq "work"].value eq "cw@alias.example""#;
    assert_eq!(app.scim_filter(&t, "/Users", f).await.0, 0);

    // Replacing again changes that email only.
    let r = app
        .scim("PATCH", &t, &path, Some(set_work("carol@contoso.com")))
        .await;
    let v = ok_json(&r, StatusCode::OK);
    let emails = v["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{v}");
    assert!(emails.contains(&json!({ "type": "other", "value": "cw@alias.example" })));
    let f = r#"emails[type eq "work"].value eq "carol@contoso.com""#;
    assert_eq!(app.scim_filter(&t, "/Users", f).await.0, 1);
    let f = r#"emails[type eq "work"].value eq "Carol.White@contoso.com""#;
    assert_eq!(app.scim_filter(&t, "/Users", f).await.0, 0);
}

#[tokio::test]
async fn enterprise_manager_and_custom_extension_attributes_round_trip() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let boss = app.create_user(&t, "mary.major@contoso.com").await;
    let boss_id = boss["id"].as_str().unwrap();
    let boss2 = app.create_user(&t, "mark.minor@contoso.com").await;
    let boss2_id = boss2["id"].as_str().unwrap();
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User";

    // A custom extension the client does not list in `schemas`, as Entra sends it.
    let mut body = user_json("dan.brown@contoso.com", "Dan", "Brown");
    body[CUSTOM] = json!({ "costCode": "CC-7" });
    body[ENTERPRISE] = json!({ "department": "Sales", "employeeNumber": "1001" });
    let r = app.scim("POST", &t, "/Users", Some(body)).await;
    let u = ok_json(&r, StatusCode::CREATED);
    let id = u["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    assert_eq!(u[CUSTOM]["costCode"], "CC-7", "{u}");
    assert_eq!(u[ENTERPRISE]["department"], "Sales");
    let schemas = u["schemas"].as_array().unwrap();
    assert!(schemas.contains(&json!(ENTERPRISE)), "{u}");
    assert!(schemas.contains(&json!(CUSTOM)), "{u}");

    let patch = |ops: Value| app.scim("PATCH", &t, &path, Some(patch_ops(ops)));
    let manager = format!("{ENTERPRISE}:manager");

    // Manager set by id string.
    let r = patch(json!([{ "op": "Add", "path": manager, "value": boss_id }])).await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v[ENTERPRISE]["manager"]["value"], boss_id, "{v}");
    assert_eq!(v[ENTERPRISE]["department"], "Sales", "siblings kept");
    // ... and by [{"value": id}].
    let r = patch(json!([{ "op": "Replace", "path": manager, "value": [{ "value": boss2_id }] }]))
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v[ENTERPRISE]["manager"]["value"], boss2_id, "{v}");
    let f = format!(r#"{ENTERPRISE}:manager.value eq "{boss2_id}""#);
    let (total, found) = app.scim_filter(&t, "/Users", &f).await;
    assert_eq!((total, ids(&found)), (1, vec![id.clone()]));
    // Cleared by Remove.
    let r = patch(json!([{ "op": "Remove", "path": manager }])).await;
    let v = ok_json(&r, StatusCode::OK);
    assert!(v[ENTERPRISE].get("manager").is_none(), "{v}");
    assert_eq!(v[ENTERPRISE]["department"], "Sales");
    // ... and by Replace with an empty value.
    let r = patch(json!([{ "op": "Add", "path": manager, "value": boss_id }])).await;
    assert_eq!(
        ok_json(&r, StatusCode::OK)[ENTERPRISE]["manager"]["value"],
        boss_id
    );
    let r = patch(json!([{ "op": "Replace", "path": manager, "value": "" }])).await;
    let v = ok_json(&r, StatusCode::OK);
    assert!(v[ENTERPRISE].get("manager").is_none(), "{v}");

    // Custom attributes by URN path, and filters on extension attributes.
    let r = patch(json!([
        { "op": "Add", "path": format!("{CUSTOM}:costCode"), "value": "CC-9" },
        { "op": "Add", "path": format!("{CUSTOM}:building"), "value": "B2" },
        { "op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "R&D" },
    ]))
    .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v[CUSTOM], json!({ "costCode": "CC-9", "building": "B2" }));
    let r = app.scim("GET", &t, &path, None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), v);
    for f in [
        format!(r#"{ENTERPRISE}:department eq "R&D""#),
        format!(r#"{CUSTOM}:costCode eq "CC-9""#),
    ] {
        let (total, found) = app.scim_filter(&t, "/Users", &f).await;
        assert_eq!((total, ids(&found)), (1, vec![id.clone()]), "{f}");
    }
    let r = patch(json!([{ "op": "Remove", "path": format!("{CUSTOM}:costCode") }])).await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v[CUSTOM], json!({ "building": "B2" }));
}

/// A page of ids is read by primary key. The server collects no planner statistics, and without
/// them SQLite preferred walking a (tenant_id, …) index over the whole organisation (4.2 s for
/// a deep page at 1M users). On PostgreSQL the plan follows its statistics; nothing to check.
#[tokio::test]
async fn rows_by_id_are_read_by_primary_key_on_sqlite() {
    use server::store::query::{Dialect, Table, ids_sql};
    let (db, _dir) = fresh_db().await;
    let Some(pool) = db.sqlite_pool() else {
        return;
    };
    let ids: Vec<String> = (0..100).map(|i| format!("id-{i}")).collect();
    for table in [Table::Users, Table::Groups] {
        let sql = ids_sql(Dialect::Sqlite, table, "tenant", "r.id", &ids);
        let explain = format!("EXPLAIN QUERY PLAN {}", sql.text);
        let mut q =
            sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain.as_str()))
                .bind("tenant");
        for id in &ids {
            q = q.bind(id);
        }
        let plan: Vec<String> = q
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.3)
            .collect();
        let plan = plan.join("; ");
        assert!(
            plan.contains("sqlite_autoindex") && plan.contains("(id=?)"),
            "{table:?}: {plan}"
        );
    }
}

/// The plan SQLite makes for `sql`, its placeholders bound to `args`.
async fn sqlite_plan(
    pool: &sqlx::SqlitePool,
    sql: &str,
    args: &[server::store::query::Arg],
) -> String {
    use server::store::query::Arg;
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain.as_str()));
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(n) => q.bind(*n),
            Arg::Float(x) => q.bind(*x),
        };
    }
    let rows = q.fetch_all(pool).await.unwrap();
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
}

/// Every statement that reads rows of one organisation by a list of ids probes the primary
/// key. Without planner statistics SQLite preferred a `(tenant_id, …)` index and tested every
/// row of the organisation against the list: the provisioning log's writer, naming the users a
/// batch of lookups found, read all million rows per batch (two cores busy during a benchmark
/// scan that needs one), and `groups eq "id"` counted by reading every user.
#[tokio::test]
async fn lists_of_ids_are_read_by_primary_key_on_sqlite() {
    use server::domain::query::{Cond, Link, LinkField, Page, Query, Sort, TextOp};
    use server::store::query::{Arg, Dialect, Table, count_sql, page_sql};
    let (db, _dir) = fresh_db().await;
    let Some(pool) = db.sqlite_pool() else {
        return;
    };
    let by_key = |plan: &str| plan.contains("sqlite_autoindex") && plan.contains("(id=?)");
    let ids: Vec<String> = (0..3).map(|i| format!("id-{i}")).collect();
    let mut args = vec![Arg::Text("tenant".into())];
    args.extend(ids.iter().map(|i| Arg::Text(i.clone())));
    for (what, sql) in [
        (
            "log names of users",
            server::store::provlog::target_names_sql(&db, false, ids.len()),
        ),
        (
            "log names of groups",
            server::store::provlog::target_names_sql(&db, true, ids.len()),
        ),
        (
            "console links to users",
            server::store::directory_view::user_names_sql(&db, ids.len()),
        ),
    ] {
        let plan = sqlite_plan(pool, &sql, &args).await;
        assert!(by_key(&plan), "{what}: {plan}");
    }
    for (table, link) in [
        (Table::Users, Link::GroupsOfUser),
        (Table::Groups, Link::MembersOfGroup),
    ] {
        let cond = Cond::Linked {
            link,
            cond: Box::new(Cond::Field(LinkField::Id, TextOp::Eq, "x".into())),
        };
        let q = Query {
            cond: cond.clone(),
            sort: Sort::default(),
            page: Page {
                offset: 0,
                limit: 100,
            },
        };
        for sql in [
            page_sql(Dialect::Sqlite, table, "tenant", "r.id", &q),
            count_sql(Dialect::Sqlite, table, "tenant", &cond),
        ] {
            let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
            assert!(by_key(&plan), "{table:?} {}: {plan}", sql.text);
        }
    }
}

/// `sortBy` on the attributes people sort users by reads each part of a page (the users with a
/// value, then those without one) from the attribute's column index in its order, so a page
/// reads about its own rows, not the organisation (SQLite; migrations 0017 and 0021). Before,
/// every such page sorted every user: 5.7–6.0 s at a million users.
#[tokio::test]
async fn sorted_pages_are_read_in_index_order_on_sqlite() {
    use server::domain::query::{Column, Cond, Page, Query, Sort, SortKey};
    use server::store::query::{Dialect, INDEXED_SORT_KEYS, Table, split_page_sql};
    let (db, _dir) = fresh_db().await;
    let Some(pool) = db.sqlite_pool() else {
        return;
    };
    let mut keys: Vec<SortKey> = INDEXED_SORT_KEYS
        .iter()
        .map(|(k, _)| SortKey::Indexed(k.to_string()))
        .collect();
    keys.push(SortKey::Column(Column::ExternalId));
    for key in keys {
        let sort_index = match &key {
            SortKey::Indexed(k) if k == "displayname" => Some("users_live_display"),
            SortKey::Indexed(k) if k == "name.familyname" => Some("users_live_family"),
            SortKey::Indexed(k) => panic!("no index named for {k}"),
            _ => None,
        };
        for descending in [false, true] {
            let q = Query {
                cond: Cond::Const(true),
                sort: Sort {
                    key: key.clone(),
                    descending,
                },
                page: Page {
                    offset: 40,
                    limit: 10,
                },
            };
            let (first, second) = split_page_sql(Dialect::Sqlite, Table::Users, "t", "r.id", &q)
                .unwrap_or_else(|| panic!("{key:?} is read in two parts"));
            for sql in [first, second] {
                let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
                // Descending, users with equal values are still in creation order: SQLite
                // sorts each run of equal values (not the whole part) as it reads.
                let whole_sort = plan.contains("TEMP B-TREE FOR ORDER BY");
                assert!(
                    !plan.contains("SCAN") && !whole_sort,
                    "{key:?} descending={descending}: {}: {plan}",
                    sql.text
                );
                // The column's own index gives the order (migration 0021): no index of its
                // own for the sort, written by every create.
                if let Some(index) = sort_index {
                    assert!(
                        plan.contains(&format!("INDEX {index} ")),
                        "{key:?} descending={descending}: {}: {plan}",
                        sql.text
                    );
                    // Ascending, the index's order is the page's, tie-break included: no
                    // sort at all, not even of runs of equal values.
                    assert!(
                        descending || !plan.contains("TEMP B-TREE"),
                        "{key:?}: {}: {plan}",
                        sql.text
                    );
                }
            }
        }
    }
    // Other keys are one statement, as before.
    let q = Query {
        cond: Cond::Const(true),
        sort: Sort {
            key: SortKey::Indexed("title".into()),
            descending: false,
        },
        page: Page {
            offset: 0,
            limit: 10,
        },
    };
    assert!(split_page_sql(Dialect::Sqlite, Table::Users, "t", "r.id", &q).is_none());
}

/// A filter no index answers (`title pr`) is counted right whichever way the store reads it:
/// from the table in parallel parts by rowid for an organisation that holds most of the
/// table's rows, through its own index for a small one. Other organisations' users and
/// deprovisioned ones are never counted (both databases).
#[tokio::test]
async fn filters_no_index_answers_count_only_the_organisations_live_users() {
    let app = TestApp::new().await;
    let big = app.scim_tenant("Contoso").await;
    let small = app.scim_tenant("Fabrikam").await;
    let titled = |name: &str, title: Option<&str>| {
        let mut u = user_json(name, "Ann", "Lee");
        if let Some(t) = title {
            u["title"] = json!(t);
        }
        u
    };
    let mut gone = String::new();
    for i in 0..12 {
        let title = (i % 3 != 0).then_some("Engineer");
        let r = app
            .scim(
                "POST",
                &big,
                "/Users",
                Some(titled(&format!("ann{i}@contoso.com"), title)),
            )
            .await;
        let u = ok_json(&r, StatusCode::CREATED);
        if i == 4 {
            gone = u["id"].as_str().unwrap().to_string();
        }
    }
    for i in 0..2 {
        let r = app
            .scim(
                "POST",
                &small,
                "/Users",
                Some(titled(&format!("bo{i}@fabrikam.com"), Some("Clerk"))),
            )
            .await;
        ok_json(&r, StatusCode::CREATED);
    }
    let r = app
        .scim("DELETE", &big, &format!("/Users/{gone}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for (t, filter, want) in [
        (&big, "title%20pr", 7),
        (&big, "title%20eq%20%22engineer%22", 7),
        (&big, "not%20(title%20pr)", 4 + 1),
        (&small, "title%20pr", 2),
        (&small, "title%20eq%20%22engineer%22", 0),
    ] {
        for count in [0, 2, 100] {
            let r = app
                .scim(
                    "GET",
                    t,
                    &format!("/Users?filter={filter}&count={count}"),
                    None,
                )
                .await;
            let (total, found) = list_of(&r);
            assert_eq!(total, want, "{filter} count={count}");
            assert_eq!(
                found.len() as i64,
                want.min(count),
                "{filter} count={count}"
            );
        }
    }
    // Pages of such a filter: the listing's order (creation), every page its slice.
    let r = app
        .scim("GET", &big, "/Users?filter=title%20pr&count=100", None)
        .await;
    let all = ids(&list_of(&r).1);
    let r = app.scim("GET", &big, "/Users?count=100", None).await;
    let in_order: Vec<String> = ids(&list_of(&r).1)
        .into_iter()
        .filter(|id| all.contains(id))
        .collect();
    assert_eq!(all, in_order);
    for start in 1..=8 {
        let r = app
            .scim(
                "GET",
                &big,
                &format!("/Users?filter=title%20pr&startIndex={start}&count=3"),
                None,
            )
            .await;
        let (total, found) = list_of(&r);
        assert_eq!(total, 7);
        let from = (start - 1).min(7);
        assert_eq!(
            ids(&found),
            all[from..(from + 3).min(7)].to_vec(),
            "start {start}"
        );
    }
    // Each part of such a count reads a range of rows by rowid, not an index; a page of few
    // matches is read by key.
    use server::domain::query::{Cond, Page, Query, Sort};
    use server::store::query::{count_part_sql, listed_page_sql};
    let (db, _dir) = fresh_db().await;
    if let Some(pool) = db.sqlite_pool() {
        let cond = Cond::Present("title".into());
        let sql = count_part_sql("t", &cond, 1, 100);
        let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
        assert!(
            plan.contains("USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
            "{plan}"
        );
        let q = Query {
            cond,
            sort: Sort::default(),
            page: Page {
                offset: 0,
                limit: 10,
            },
        };
        let sql = listed_page_sql("t", "r.id", &q, &["a".into(), "b".into()]);
        let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
        assert!(
            plan.contains("sqlite_autoindex_users_1 (id=?)"),
            "{}: {plan}",
            sql.text
        );
    }
}

/// A scan of every user reads the database file through a memory map larger than SQLite's
/// built-in 2 GB limit (the build raises it), and no connection goes back to the pool with
/// its map: on the connections SCIM's lookups and writes use, every checkpoint that grows the
/// file would remap it (SQLite).
#[tokio::test]
async fn scans_map_the_file_and_leave_no_map_behind_on_sqlite() {
    let app = TestApp::new().await;
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    async fn map_of(c: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("PRAGMA mmap_size")
            .fetch_one(c)
            .await
            .unwrap()
    }
    {
        let mut c = pool.acquire().await.unwrap();
        sqlx::query("PRAGMA mmap_size = 274877906944")
            .execute(&mut *c)
            .await
            .unwrap();
        assert_eq!(
            map_of(&mut c).await,
            274_877_906_944,
            "SQLITE_MAX_MMAP_SIZE of this build (.cargo/config.toml)"
        );
        sqlx::query("PRAGMA mmap_size = 0")
            .execute(&mut *c)
            .await
            .unwrap();
    }
    let t = app.scim_tenant("Contoso").await;
    for i in 0..6 {
        let mut u = user_json(&format!("ann{i}@contoso.com"), "Ann", "Lee");
        if i % 2 == 0 {
            u["title"] = json!("Engineer");
        }
        let r = app.scim("POST", &t, "/Users", Some(u)).await;
        ok_json(&r, StatusCode::CREATED);
    }
    // The organisation's admin has no title either.
    for (filter, want) in [("title%20pr", 3), ("not%20(title%20pr)", 3 + 1)] {
        let r = app
            .scim("GET", &t, &format!("/Users?filter={filter}"), None)
            .await;
        let (total, found) = list_of(&r);
        assert_eq!((total, found.len()), (want, want as usize), "{filter}");
    }
    let r = app
        .scim("GET", &t, "/Users?sortBy=title&count=2", None)
        .await;
    assert_eq!(list_of(&r).0, 6 + 1);
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        held.push(pool.acquire().await.unwrap());
    }
    assert!(held.len() >= 2, "the scan's parts had a connection each");
    for c in &mut held {
        assert_eq!(map_of(c).await, 0, "a connection kept a scan's map");
    }
}

/// Scans of every user take turns (one at a time in the process, SQLite), and so do sorts of
/// every user in one statement: requests that need several of them in a row (a filtered sort
/// counts, then sorts; a deep root page counts, then sorts), sent side by side with lookups,
/// in an organisation that holds most of the users (scanned in parts) and in one that holds
/// few (sorted in one statement), all get their whole answer; none waits forever on another's
/// turn (both databases).
#[tokio::test]
async fn scans_side_by_side_take_turns_and_all_answer() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let big = std::sync::Arc::new(app.scim_tenant("Contoso").await);
    let small = std::sync::Arc::new(app.scim_tenant("Fabrikam").await);
    for (t, n) in [(&big, 10), (&small, 2)] {
        for i in 0..n {
            let mut u = user_json(&format!("ann{i}@{}.com", t.slug), "Ann", "Lee");
            if i % 2 == 0 {
                u["title"] = json!(format!("Engineer {i}"));
            }
            let r = app.scim("POST", t, "/Users", Some(u)).await;
            ok_json(&r, StatusCode::CREATED);
        }
    }
    let mut asks = tokio::task::JoinSet::new();
    for k in 0..15 {
        let (app, big, small) = (app.clone(), big.clone(), small.clone());
        asks.spawn(async move {
            // (organisation, request, total, title of the first found)
            let (t, path, want, first) = match k % 5 {
                0 => (
                    &big,
                    "/Users?filter=title%20pr&sortBy=title&sortOrder=descending&count=2",
                    5,
                    Some("Engineer 8"),
                ),
                1 => (
                    &big,
                    "/Users?filter=not%20(title%20pr)&count=1",
                    5 + 1,
                    None,
                ),
                2 => (
                    &small,
                    "/Users?sortBy=title&count=1",
                    2 + 1,
                    Some("Engineer 0"),
                ),
                3 => (
                    &big,
                    "/Users?filter=userName%20eq%20%22ann3@contoso.com%22",
                    1,
                    None,
                ),
                _ => (&big, "/.search", 10 + 1, None),
            };
            let r = if k % 5 == 4 {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "title pr or not (title pr)",
                    "sortBy": "title",
                    "startIndex": 20_000,
                });
                app.scim("POST", t, path, Some(body)).await
            } else {
                app.scim("GET", t, path, None).await
            };
            let (total, found) = list_of(&r);
            assert_eq!(total, want, "{path}");
            if let Some(title) = first {
                assert_eq!(found[0]["title"], title, "{path}");
            }
        });
    }
    let all = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(done) = asks.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert!(all.is_ok(), "a request waited on another scan's turn");
}

/// A filter that tests an indexed column's text (`co`, `sw`, `ew`, ranges) is counted through
/// the column's own index (SQLite), and its pages hold the right users in
/// creation order, with deprovisioned users and other organisations left out (both databases).
#[tokio::test]
async fn text_tests_on_indexed_columns_count_from_the_column_index() {
    use server::domain::query::{Column, Cond, TextOp};
    use server::store::query::{Dialect, Table, column_index, count_sql};
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let other = app.scim_tenant("Fabrikam").await;
    let mut made = Vec::new();
    for i in 0..7 {
        let u = app
            .create_user(&t, &format!("ann.lee{i}@contoso.com"))
            .await;
        made.push(u["id"].as_str().unwrap().to_string());
    }
    app.create_user(&t, "bob.ray@contoso.com").await;
    app.create_user(&other, "ann.lee9@fabrikam.com").await;
    // The fourth Ann leaves.
    let r = app
        .scim("DELETE", &t, &format!("/Users/{}", made[3]), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    made.remove(3);
    // The listing's own order (creation, then id: the test clock stands still).
    let r = app.scim("GET", &t, "/Users?count=100", None).await;
    let made: Vec<String> = ids(&list_of(&r).1)
        .into_iter()
        .filter(|id| made.contains(id))
        .collect();
    assert_eq!(made.len(), 6);

    for filter in [
        "userName co \"lee\"",
        "userName sw \"ann.\"",
        "name.familyName sw \"LE\"",
        "name.givenName lt \"b\"",
        "displayName co \"ann\"",
        "externalId sw \"ann\"",
    ] {
        let (total, found) = app.scim_filter(&t, "/Users", filter).await;
        assert_eq!((total, ids(&found)), (6, made.clone()), "{filter}");
        // A middle page, and one past the end.
        for (window, want) in [
            ("startIndex=3&count=2", &made[2..4]),
            ("startIndex=7", &[][..]),
        ] {
            let path = format!("/Users?{window}&{}", &filter_q(filter)[1..]);
            let (total, page) = list_of(&app.scim("GET", &t, &path, None).await);
            assert_eq!((total, ids(&page)), (6, want.to_vec()), "{filter} {window}");
        }
    }

    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    for (col, index) in [
        (Column::NameLc, "users_tenant_user_name"),
        (Column::ExternalId, "users_tenant_external_id"),
        (Column::DisplayNameLc, "users_live_display"),
        (Column::GivenNameLc, "users_live_given"),
        (Column::FamilyNameLc, "users_live_family"),
        (Column::EmailLc, "users_live_email"),
    ] {
        let cond = Cond::Column(col, TextOp::Co, "x".into());
        assert_eq!(column_index(Table::Users, &cond), Some(index));
        let sql = count_sql(Dialect::Sqlite, Table::Users, "tenant", &cond);
        let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
        assert!(plan.contains(&format!("INDEX {index} ")), "{col:?}: {plan}");
    }
    // An equality pins its rows through the index already.
    let eq = Cond::Column(Column::NameLc, TextOp::Eq, "x".into());
    assert_eq!(column_index(Table::Users, &eq), None);
}

/// A sort no index holds (`sortBy=title`) over more than [`SORTED_IN_PARTS_UP_TO`] users: each
/// page within the first [`SORTED_IN_PARTS_UP_TO`] is cut from the parts' own first pages
/// (SQLite; the planner's sort on PostgreSQL), a deeper one placed by a sample. Every page is its slice of the one
/// order: titled users by title then creation, the untitled last ascending and first
/// descending, in creation order.
#[tokio::test]
async fn sorts_no_index_holds_give_every_page_of_a_large_organisation() {
    use server::directory::users::NewUserDoc;
    use server::store::query::SORTED_IN_PARTS_UP_TO;
    use server::store::scim_users::{self, NewUser};
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let n = SORTED_IN_PARTS_UP_TO as usize + 100;
    let title_of = |i: usize| (!i.is_multiple_of(7)).then(|| format!("T{:05}", (i * 37) % 3001));
    let mut titled: Vec<(String, String)> = Vec::new();
    let now = START_MS + 1000;
    for start in (0..n).step_by(2000) {
        let mut batch = Vec::new();
        for i in start..(start + 2000).min(n) {
            let mut u = user_json(&format!("u{i}@contoso.com"), "Ann", "Lee");
            if let Some(title) = title_of(i) {
                u["title"] = json!(title);
            }
            let u = NewUserDoc::of(u, now).unwrap();
            if let Some(title) = title_of(i) {
                titled.push((title, u.id.clone()));
            }
            batch.push(u);
        }
        let rows: Vec<NewUser> = batch.iter().map(|u| u.row()).collect();
        scim_users::insert_many(&app.db, &t.id, &rows, now)
            .await
            .unwrap();
    }
    // The untitled (the organisation's admin among them) in creation order, as listed.
    let mut untitled = Vec::new();
    for start in (1..n / 7 + 1000).step_by(1000) {
        let r = app
            .scim(
                "GET",
                &t,
                &format!("/Users?filter=not%20(title%20pr)&count=1000&startIndex={start}"),
                None,
            )
            .await;
        untitled.extend(ids(&list_of(&r).1));
    }
    assert!(
        untitled.len() > n / 7 && untitled.len() < n / 7 + 100,
        "{}",
        untitled.len()
    );
    titled.sort_by(|a, b| {
        a.0.to_lowercase()
            .cmp(&b.0.to_lowercase())
            .then(a.1.cmp(&b.1))
    });
    let ascending: Vec<String> = titled
        .iter()
        .map(|(_, id)| id.clone())
        .chain(untitled.iter().cloned())
        .collect();
    let mut by_title_down = titled.clone();
    by_title_down.sort_by(|a, b| {
        b.0.to_lowercase()
            .cmp(&a.0.to_lowercase())
            .then(a.1.cmp(&b.1))
    });
    let descending: Vec<String> = untitled
        .iter()
        .cloned()
        .chain(by_title_down.into_iter().map(|(_, id)| id))
        .collect();
    let total = ascending.len() as i64;
    // No filter, and a filter no index answers that holds for everyone.
    for filter in ["", "&filter=not%20(title%20eq%20%22nobody%22)"] {
        for (order, want) in [("ascending", &ascending), ("descending", &descending)] {
            let deepest = SORTED_IN_PARTS_UP_TO as usize;
            for start in [1usize, deepest / 2, deepest - 10, deepest - 2, deepest + 90] {
                let r = app
                    .scim(
                        "GET",
                        &t,
                        &format!(
                            "/Users?sortBy=title&sortOrder={order}&startIndex={start}&count=6{filter}"
                        ),
                        None,
                    )
                    .await;
                let (got_total, found) = list_of(&r);
                assert_eq!(got_total, total, "{order} {filter}");
                let end = (start - 1 + 6).min(want.len());
                assert_eq!(
                    ids(&found),
                    want[start - 1..end].to_vec(),
                    "{order} from {start} {filter}"
                );
            }
        }
    }
    // A filter that holds for the titled only: its own total (counted by the sort's own
    // read), and pages of the titled users' order, up to one past the end.
    let titled_up: Vec<String> = titled.iter().map(|(_, id)| id.clone()).collect();
    let titled_down: Vec<String> = descending[untitled.len()..].to_vec();
    for (order, want) in [("ascending", &titled_up), ("descending", &titled_down)] {
        for start in [1usize, want.len() / 2, want.len() - 3, want.len() + 1] {
            let r = app
                .scim(
                    "GET",
                    &t,
                    &format!(
                        "/Users?sortBy=title&sortOrder={order}&startIndex={start}&count=6&filter=title%20pr"
                    ),
                    None,
                )
                .await;
            let (got_total, found) = list_of(&r);
            assert_eq!(got_total, want.len() as i64, "{order} title pr");
            let end = (start - 1 + 6).min(want.len());
            let from = (start - 1).min(end);
            assert_eq!(
                ids(&found),
                want[from..end].to_vec(),
                "{order} from {start} title pr"
            );
        }
    }
}

/// Pages in the second half of every user in creation order are read backwards from its end,
/// with the total from the same snapshot (SQLite; the forward walk on PostgreSQL). Every page,
/// either way, either direction of `meta.created`, is its slice of the one order: creation
/// time, ties by id. The statement walks the organisation's creation index backwards, with no
/// sort of its own.
#[tokio::test]
async fn deep_pages_of_every_user_are_their_slice_of_creation_order() {
    use server::directory::users::NewUserDoc;
    use server::domain::query::{Cond, Page, Query, Sort};
    use server::store::query::{DIRECT_PAGE_DEPTH, from_end_sql};
    use server::store::scim_users::{self, NewUser};
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let n = 3 * DIRECT_PAGE_DEPTH as usize;
    // Batches created a second apart; within a batch the creation time ties, and the id orders.
    let mut batches: Vec<Vec<String>> = Vec::new();
    for (b, start) in (0..n).step_by(700).enumerate() {
        let now = START_MS + 1000 * (b as i64 + 1);
        let docs: Vec<NewUserDoc> = (start..(start + 700).min(n))
            .map(|i| NewUserDoc::of(user_json(&format!("u{i}@contoso.com"), "Ann", "Lee"), now))
            .collect::<Result<_, _>>()
            .unwrap();
        let rows: Vec<NewUser> = docs.iter().map(|u| u.row()).collect();
        scim_users::insert_many(&app.db, &t.id, &rows, now)
            .await
            .unwrap();
        let mut ids: Vec<String> = docs.into_iter().map(|u| u.id).collect();
        ids.sort();
        batches.push(ids);
    }
    // The organisation's admin came first.
    let first = list_of(&app.scim("GET", &t, "/Users?count=1", None).await).1;
    let admin = ids(&first)[0].clone();
    let ascending: Vec<String> = std::iter::once(admin.clone())
        .chain(batches.iter().flatten().cloned())
        .collect();
    let descending: Vec<String> = batches
        .iter()
        .rev()
        .flatten()
        .cloned()
        .chain(std::iter::once(admin))
        .collect();
    let total = ascending.len();
    for (order, want) in [
        ("", &ascending),
        ("&sortBy=meta.created&sortOrder=descending", &descending),
    ] {
        // Shallow pages, the middle, the second half, the last page, past the end.
        for (start, count) in [
            (1, 100),
            (1001, 7),
            (total / 2, 9),
            (total / 2 + 1, 9),
            (total / 2 + 2, 9),
            (2500, 100),
            (total - 99, 100),
            (total - 4, 10),
            (total, 1),
            (total + 1, 5),
            (2990, 0),
        ] {
            let path = format!("/Users?startIndex={start}&count={count}{order}");
            let (got_total, found) = list_of(&app.scim("GET", &t, &path, None).await);
            assert_eq!(got_total as usize, total, "{path}");
            let from = (start - 1).min(total);
            let end = (from + count).min(total);
            assert_eq!(ids(&found), want[from..end].to_vec(), "{path}");
        }
    }

    let q = |offset, limit| Query {
        cond: Cond::Const(true),
        sort: Sort::default(),
        page: Page { offset, limit },
    };
    // A page in the first half is the forward walk's; one in the second steps from the end.
    assert!(from_end_sql("tenant", &q(1000, 100), 2100).is_none());
    let sql = from_end_sql("tenant", &q(1900, 100), 2100).unwrap();
    assert_eq!(
        sql.args.last(),
        Some(&server::store::query::Arg::Int(100)),
        "{}",
        sql.text
    );
    let Some(pool) = app.db.sqlite_pool() else {
        return;
    };
    let plan = sqlite_plan(pool, &sql.text, &sql.args).await;
    assert!(
        plan.contains("users_live_created") && !plan.contains("TEMP B-TREE"),
        "{plan}"
    );
}

/// A page near the end while users are being created, three readers at a time: each answer is
/// the slice of the order as it stood at the total it states. On SQLite the page is counted
/// from the end, total and rows in one snapshot (read as two statements, a creation between
/// them shifted the page by the users it added). On PostgreSQL the forward walk and the count
/// run side by side, and the stated total is made to agree with the page (a page running past
/// its own total failed this before). The new users come last in creation order, so the order
/// as it stood is a prefix of the final one.
#[tokio::test]
async fn a_page_counted_from_the_end_holds_still_while_users_are_created() {
    use server::directory::users::NewUserDoc;
    use server::store::scim_users::{self, NewUser};
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let seed = |from: usize, to: usize, now: i64| {
        let docs: Vec<NewUserDoc> = (from..to)
            .map(|i| NewUserDoc::of(user_json(&format!("u{i}@contoso.com"), "Ann", "Lee"), now))
            .collect::<Result<_, _>>()
            .unwrap();
        docs
    };
    let docs = seed(0, 2400, START_MS + 1000);
    let rows: Vec<NewUser> = docs.iter().map(|u| u.row()).collect();
    scim_users::insert_many(&app.db, &t.id, &rows, START_MS + 1000)
        .await
        .unwrap();
    let db = app.db.clone();
    let tenant = t.id.clone();
    let writer = tokio::spawn(async move {
        for b in 0..150usize {
            let now = START_MS + 10_000 + b as i64 * 1000;
            let docs = seed(10_000 + b * 4, 10_000 + (b + 1) * 4, now);
            let rows: Vec<NewUser> = docs.iter().map(|u| u.row()).collect();
            scim_users::insert_many(&db, &tenant, &rows, now)
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
    });
    // Three readers side by side, each as often as it can while the writer runs.
    let read = || async {
        let mut seen = Vec::new();
        while !writer.is_finished() {
            let r = app
                .scim("GET", &t, "/Users?startIndex=2301&count=200", None)
                .await;
            seen.push(list_of(&r));
        }
        seen
    };
    let (a, b, c) = tokio::join!(read(), read(), read());
    let seen: Vec<_> = a.into_iter().chain(b).chain(c).collect();
    writer.await.unwrap();
    // The final order, read in pages the forward walk answers.
    let mut order = Vec::new();
    for start in (1..=3001).step_by(1000) {
        let r = app
            .scim(
                "GET",
                &t,
                &format!("/Users?startIndex={start}&count=1000"),
                None,
            )
            .await;
        order.extend(ids(&list_of(&r).1));
    }
    assert_eq!(order.len(), 3001);
    assert!(!seen.is_empty());
    for (total, page) in &seen {
        let total = *total as usize;
        assert!((2401..=3001).contains(&total), "{total}");
        let end = (2300 + 200).min(total);
        assert_eq!(
            ids(page),
            order[2300..end].to_vec(),
            "at a total of {total}"
        );
    }
}

/// Columns SQLite is told a change of a user sets: a trigger `AFTER UPDATE OF` a column fires
/// when the statement names the column in `SET`, whatever its value.
const NAMED_COLUMNS: [&str; 14] = [
    "user_name",
    "user_name_lc",
    "external_id",
    "given_name",
    "family_name",
    "display_name",
    "email",
    "email_lc",
    "active",
    "resource",
    "search",
    "display_name_lc",
    "given_name_lc",
    "family_name_lc",
];

/// The columns the changes since the last call named, sorted (and forgets them).
async fn named_columns(pool: &sqlx::SqlitePool) -> Vec<String> {
    let mut named: Vec<String> = sqlx::query_scalar("SELECT DISTINCT col FROM test_named")
        .fetch_all(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM test_named")
        .execute(pool)
        .await
        .unwrap();
    named.sort();
    named
}

/// SQLite rewrites the entries of every index on a column an `UPDATE` names, changed or not: a
/// change of a user's title names only the document and its search index, a change of the
/// family name adds its two columns, and each change is there to read and to find afterwards.
/// A PUT that changes nothing indexed names no indexed column either.
#[tokio::test]
async fn a_change_of_a_user_names_only_the_columns_it_changes() {
    use server::store::Db;
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "alice.smith@contoso.com").await;
    let id = u["id"].as_str().unwrap().to_string();
    let sqlite = match &app.db {
        Db::Sqlite(db) => {
            let pool = db.pool();
            sqlx::query("CREATE TABLE test_named (col TEXT NOT NULL)")
                .execute(pool)
                .await
                .unwrap();
            for col in NAMED_COLUMNS {
                let trigger = format!(
                    "CREATE TRIGGER test_named_{col} AFTER UPDATE OF {col} ON users \
                     BEGIN INSERT INTO test_named VALUES ('{col}'); END"
                );
                sqlx::query(sqlx::AssertSqlSafe(trigger))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Some(pool.clone())
        }
        Db::Postgres(_) => None,
    };
    let path = format!("/Users/{id}");
    let patch = |ops: Value| app.scim("PATCH", &t, &path, Some(patch_ops(ops)));

    let r = patch(json!([{ "op": "replace", "path": "title", "value": "Engineer" }])).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["title"], "Engineer");
    if let Some(pool) = &sqlite {
        assert_eq!(named_columns(pool).await, ["resource", "search"]);
    }

    let r = patch(json!([{ "op": "replace", "path": "name.familyName", "value": "Jones" }])).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["name"]["familyName"], "Jones");
    if let Some(pool) = &sqlite {
        assert_eq!(
            named_columns(pool).await,
            ["family_name", "family_name_lc", "resource", "search"]
        );
    }

    let r = patch(json!([
        { "op": "replace", "path": "userName", "value": "alice.jones@contoso.com" },
        { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "alice.jones@contoso.com" },
        { "op": "replace", "path": "active", "value": false },
    ]))
    .await;
    let changed = ok_json(&r, StatusCode::OK);
    assert_eq!(changed["userName"], "alice.jones@contoso.com");
    assert_eq!(changed["active"], false);
    if let Some(pool) = &sqlite {
        assert_eq!(
            named_columns(pool).await,
            [
                "active",
                "email",
                "email_lc",
                "resource",
                "search",
                "user_name",
                "user_name_lc"
            ]
        );
    }

    // A PUT of the document as it is, bar a locale: nothing indexed changes.
    let mut doc = changed.clone();
    doc["locale"] = json!("en-GB");
    let r = app.scim("PUT", &t, &path, Some(doc)).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["locale"], "en-GB");
    if let Some(pool) = &sqlite {
        assert_eq!(named_columns(pool).await, ["resource", "search"]);
    }

    // Every change is found by what it set, and not by what it replaced.
    for (filter, found) in [
        ("userName eq \"alice.jones@contoso.com\"", 1),
        ("userName eq \"alice.smith@contoso.com\"", 0),
        ("name.familyName eq \"Jones\"", 1),
        ("name.familyName eq \"Smith\"", 0),
        ("name.familyName sw \"Jo\"", 1),
        (
            "emails[type eq \"work\"].value eq \"alice.jones@contoso.com\"",
            1,
        ),
        ("emails.value sw \"alice.smith\"", 0),
        ("title eq \"Engineer\"", 1),
        ("locale eq \"en-GB\"", 1),
        ("active eq false", 1),
    ] {
        assert_eq!(
            app.scim_filter(&t, "/Users", filter).await.0,
            found,
            "{filter}"
        );
    }
}

/// Empties a user's search index, as a change of the index's format does.
async fn clear_search(db: &server::store::Db, id: &str) {
    use server::store::Db;
    let sql = "UPDATE users SET search = NULL WHERE id = $1";
    let n = match db {
        Db::Sqlite(p) => sqlx::query(sql)
            .bind(id)
            .execute(p.pool())
            .await
            .unwrap()
            .rows_affected(),
        Db::Postgres(p) => sqlx::query(sql)
            .bind(id)
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(n, 1);
}

/// The pass that writes missing search indexes reads users, then writes each one's index: a
/// change in between wrote its own, which the pass must not replace with the older one.
#[tokio::test]
async fn the_index_pass_never_replaces_a_newer_changes_index() {
    use server::directory::users::search_index;
    use server::store::scim_users;
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "alice.smith@contoso.com").await;
    let id = u["id"].as_str().unwrap().to_string();
    clear_search(&app.db, &id).await;
    let read = scim_users::get(&app.db, &t.id, &id).await.unwrap();
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{id}"),
            Some(patch_ops(
                json!([{ "op": "replace", "path": "title", "value": "Engineer" }]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    scim_users::set_index(&app.db, &id, read.version, &search_index(&read))
        .await
        .unwrap();
    assert_eq!(
        app.scim_filter(&t, "/Users", "title eq \"Engineer\"")
            .await
            .0,
        1
    );
    // At the version it read, the pass writes the index.
    clear_search(&app.db, &id).await;
    server::directory::reindex_pending(&app.db).await.unwrap();
    assert_eq!(
        app.scim_filter(&t, "/Users", "title eq \"Engineer\"")
            .await
            .0,
        1
    );
}
