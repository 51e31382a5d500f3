//! RFC 7644 behaviour of the SCIM endpoint beyond Entra's own flows: list parameters, filters,
//! errors, transport, ETags, discovery, /Bulk and the token gate's SCIM answers.

mod common;
mod scim_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use scim_support::*;
use serde_json::{Value, json};

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

impl TestApp {
    /// A SCIM request with extra headers.
    async fn scim_with(
        &self,
        method: &str,
        t: &ScimTenant,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/scim/v2/{}{path}", t.slug))
            .header("authorization", format!("Bearer {}", t.token));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/scim+json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }
}

/// Five users a second apart (userName a..e), plus the organisation's console admin.
async fn five_users(app: &TestApp, t: &ScimTenant) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (n, title)) in [
        ("erin.eve", Some("Engineer")),
        ("alan.abe", None),
        ("dora.dee", Some("Designer")),
        ("bert.bo", None),
        ("cleo.cy", Some("Engineering Manager")),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            app.clock.advance_ms(1000);
        }
        let (given, family) = n.split_once('.').unwrap();
        let mut body = user_json(&format!("{n}@contoso.com"), given, family);
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        let r = app.scim("POST", t, "/Users", Some(body)).await;
        out.push(ok_json(&r, StatusCode::CREATED));
    }
    out
}

fn user_names(resources: &[Value]) -> Vec<String> {
    resources
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_page_and_sort() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let users = five_users(&app, &t).await;
    let scim_ids: Vec<String> = users.iter().map(id_of).collect();

    let (total, all) = list_of(&app.scim("GET", &t, "/Users", None).await);
    assert_eq!(total, 6, "five SCIM users and the console admin");
    assert_eq!(all.len(), 6);
    let all_ids = ids(&all);
    for id in &scim_ids {
        assert!(all_ids.contains(id));
    }

    let r = app
        .scim("GET", &t, "/Users?startIndex=2&count=2", None)
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v["totalResults"], 6);
    assert_eq!(v["startIndex"], 2);
    assert_eq!(v["itemsPerPage"], 2);
    assert_eq!(
        ids(v["Resources"].as_array().unwrap()),
        all_ids[1..3].to_vec()
    );

    let r = app
        .scim("GET", &t, "/Users?startIndex=6&count=10", None)
        .await;
    let (total, page) = list_of(&r);
    assert_eq!((total, ids(&page)), (6, all_ids[5..].to_vec()));
    let r = app.scim("GET", &t, "/Users?startIndex=40", None).await;
    assert_eq!(list_of(&r), (6, vec![]));
    let r = app.scim("GET", &t, "/Users?count=0", None).await;
    assert_eq!(list_of(&r), (6, vec![]));
    // startIndex below 1 is read as 1 (RFC 7644 §3.4.2.4).
    let r = app
        .scim("GET", &t, "/Users?startIndex=0&count=1", None)
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v["startIndex"], 1);
    assert_eq!(
        ids(v["Resources"].as_array().unwrap()),
        all_ids[..1].to_vec()
    );

    let scim_only = enc(r#"userName ew "@contoso.com""#);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users?filter={scim_only}&sortBy=userName&sortOrder=descending"),
            None,
        )
        .await;
    let (total, sorted) = list_of(&r);
    assert_eq!(total, 5);
    assert_eq!(
        user_names(&sorted),
        [
            "erin.eve@contoso.com",
            "dora.dee@contoso.com",
            "cleo.cy@contoso.com",
            "bert.bo@contoso.com",
            "alan.abe@contoso.com"
        ]
    );
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users?filter={scim_only}&sortBy=name.familyName&startIndex=2&count=2"),
            None,
        )
        .await;
    let (total, sorted) = list_of(&r);
    assert_eq!(total, 5);
    assert_eq!(
        user_names(&sorted),
        ["bert.bo@contoso.com", "cleo.cy@contoso.com"],
        "ascending by family name: abe, bo, cy, dee, eve"
    );
    // Resources without the sort attribute are ordered last if ascending and first if
    // descending (RFC 7644 §3.4.2.3), in creation order among themselves.
    let titles = |order: &'static str| {
        let app = &app;
        let t = &t;
        let scim_only = scim_only.clone();
        async move {
            let r = app
                .scim(
                    "GET",
                    t,
                    &format!("/Users?filter={scim_only}&sortBy=title&sortOrder={order}"),
                    None,
                )
                .await;
            list_of(&r)
                .1
                .iter()
                .map(|u| {
                    (
                        u["title"].clone(),
                        u["userName"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let up = titles("ascending").await;
    let up_titles: Vec<Value> = up.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        up_titles,
        [
            json!("Designer"),
            json!("Engineer"),
            json!("Engineering Manager"),
            Value::Null,
            Value::Null
        ]
    );
    let down = titles("descending").await;
    let down_titles: Vec<Value> = down.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        down_titles,
        [
            Value::Null,
            Value::Null,
            json!("Engineering Manager"),
            json!("Engineer"),
            json!("Designer")
        ]
    );
    // The two without a title keep creation order in both directions.
    assert_eq!(up[3..], down[..2]);
}

#[tokio::test]
async fn page_size_is_clamped_to_the_advertised_maximum() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let r = app.scim("GET", &t, "/ServiceProviderConfig", None).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["filter"]["maxResults"], 1000);
    server::on_db!(&app.db, |p| {
        let mut tx = p.begin().await.unwrap();
        for i in 0..1005 {
            let name = format!("bulk{i}@contoso.com");
            sqlx::query(
                "INSERT INTO users (id, tenant_id, user_name, user_name_lc, given_name, family_name, \
                 email, email_lc, source, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3, 'Bulk', 'User', $3, $3, 'scim', $4, $4)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&t.id)
            .bind(name)
            .bind(START_MS + i)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
    let r = app.scim("GET", &t, "/Users?count=5000", None).await;
    let (total, page) = list_of(&r);
    assert_eq!((total, page.len()), (1006, 1000));
    let r = app
        .scim("GET", &t, "/Users?count=5000&startIndex=1001", None)
        .await;
    assert_eq!(list_of(&r).1.len(), 6);
    // The same clamp when the filter is evaluated in memory.
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users?count=5000&filter={}", enc(r#"userName sw "bulk""#)),
            None,
        )
        .await;
    let (total, page) = list_of(&r);
    assert_eq!((total, page.len()), (1005, 1000));
}

#[tokio::test]
async fn attributes_and_excluded_attributes_shape_every_read() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "ann.one@contoso.com").await;
    let uid = id_of(&u);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users/{uid}?attributes=userName,name.givenName"),
            None,
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(keys(&v), ["id", "name", "schemas", "userName"], "{v}");
    assert_eq!(v["name"], json!({ "givenName": "ann" }));

    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users/{uid}?excludedAttributes=emails,name"),
            None,
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert!(v.get("emails").is_none() && v.get("name").is_none(), "{v}");
    assert_eq!(v["userName"], "ann.one@contoso.com");
    assert_eq!(v["id"], uid, "id is always returned");

    let f = enc(r#"userName eq "ann.one@contoso.com""#);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users?filter={f}&attributes=externalId"),
            None,
        )
        .await;
    let (_, found) = list_of(&r);
    assert_eq!(keys(&found[0]), ["externalId", "id", "schemas"]);

    let r = app
        .scim(
            "POST",
            &t,
            "/Users?attributes=userName",
            Some(user_json("b.two@contoso.com", "b", "two")),
        )
        .await;
    let v = ok_json(&r, StatusCode::CREATED);
    assert_eq!(keys(&v), ["id", "schemas", "userName"]);

    let g = app.create_group(&t, "Sales", &[&uid]).await;
    let gid = id_of(&g);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Groups/{gid}?attributes=displayName"),
            None,
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(keys(&v), ["displayName", "id", "schemas"]);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Groups/{gid}?attributes=members"),
            None,
        )
        .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v["members"][0]["value"], uid);
    assert!(v.get("displayName").is_none());
}

#[tokio::test]
async fn search_by_post_on_users_groups_and_the_root() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let users = five_users(&app, &t).await;
    let sales = app.create_group(&t, "Sales", &[&id_of(&users[0])]).await;
    app.create_group(&t, "Support", &[]).await;
    app.create_group(&t, "Ops", &[]).await;
    let search = |body: Value| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        })
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .chain(body.as_object().unwrap().clone())
        .collect::<serde_json::Map<_, _>>()
    };

    let r = app
        .scim(
            "POST",
            &t,
            "/Users/.search",
            Some(Value::Object(search(json!({
                "filter": "title sw \"Engineer\"",
                "attributes": ["userName", "title"],
                "sortBy": "userName",
                "startIndex": 1,
                "count": 10,
            })))),
        )
        .await;
    let (total, found) = list_of(&r);
    assert_eq!(total, 2);
    assert_eq!(
        user_names(&found),
        ["cleo.cy@contoso.com", "erin.eve@contoso.com"]
    );
    assert!(found[0].get("emails").is_none());

    let r = app
        .scim(
            "POST",
            &t,
            "/Groups/.search",
            Some(Value::Object(search(json!({
                "filter": "displayName sw \"S\"",
                "excludedAttributes": ["members"],
                "sortBy": "displayName",
            })))),
        )
        .await;
    let (total, found) = list_of(&r);
    assert_eq!(total, 2);
    assert_eq!(found[0]["id"], sales["id"]);
    assert_eq!(found[1]["displayName"], "Support");
    assert!(found[0].get("members").is_none());

    // The root searches both resource types.
    let r = app
        .scim(
            "POST",
            &t,
            "/.search",
            Some(Value::Object(search(json!({
                "filter": "displayName sw \"S\" or userName sw \"alan\"",
            })))),
        )
        .await;
    let (total, found) = list_of(&r);
    assert_eq!(total, 3);
    let mut types: Vec<&str> = found
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["Group", "Group", "User"]);
    // ... and sorts them together.
    let r = app
        .scim(
            "POST",
            &t,
            "/.search",
            Some(Value::Object(search(json!({
                "filter": "displayName sw \"S\" or userName sw \"alan\"",
                "sortBy": "displayName",
                "sortOrder": "descending",
                "attributes": ["displayName"],
            })))),
        )
        .await;
    let names: Vec<Value> = list_of(&r)
        .1
        .iter()
        .map(|r| r["displayName"].clone())
        .collect();
    assert_eq!(names, [json!("Support"), json!("Sales"), json!("alan abe")]);

    let r = app
        .scim(
            "POST",
            &t,
            "/Users/.search",
            Some(json!({ "filter": "userName eq" })),
        )
        .await;
    assert_error(&r, 400, Some("invalidFilter"));
}

#[tokio::test]
async fn filters_use_the_whole_grammar() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let users = five_users(&app, &t).await;
    let name_of = |i: usize| users[i]["userName"].as_str().unwrap().to_string();
    let check = |f: &'static str, expected: Vec<usize>| {
        let app = &app;
        let t = &t;
        let mut want: Vec<String> = expected.iter().map(|i| name_of(*i)).collect();
        want.sort();
        async move {
            let (total, found) = app.scim_filter(t, "/Users", f).await;
            let mut got = user_names(&found);
            got.sort();
            assert_eq!(got, want, "{f}");
            assert_eq!(total as usize, want.len(), "{f}");
        }
    };
    // users: 0 erin (Engineer), 1 alan, 2 dora (Designer), 3 bert, 4 cleo (Engineering Manager);
    // created one second apart from T0.
    check(
        r#"userName eq "alan.abe@contoso.com" or userName eq "BERT.BO@contoso.com""#,
        vec![1, 3],
    )
    .await;
    check(r#"userName co "ERT""#, vec![3]).await;
    check(r#"userName sw "d" and userName ew "contoso.com""#, vec![2]).await;
    check(r#"title pr"#, vec![0, 2, 4]).await;
    check(r#"title pr and not (title co "Manager")"#, vec![0, 2]).await;
    check(r#"not (userName ew "@example.com")"#, vec![0, 1, 2, 3, 4]).await;
    check(
        r#"meta.lastModified gt "2026-09-21T14:13:22.000Z""#,
        vec![3, 4],
    )
    .await;
    check(r#"meta.lastModified ge "2026-09-21T14:13:22Z" and meta.lastModified lt "2026-09-21T14:13:24Z""#, vec![2, 3]).await;
    check(
        r#"meta.created le "2026-09-21T14:13:20.000Z" and userName ew "contoso.com""#,
        vec![0],
    )
    .await;
    check(
        r#"(title eq "Engineer" or title eq "Designer") and active eq true"#,
        vec![0, 2],
    )
    .await;
    check(r#"emails[type eq "work" and value co "cleo"]"#, vec![4]).await;
    check(r#"name.familyName eq "dee""#, vec![2]).await;
    check(r#"USERNAME Eq "erin.eve@contoso.com""#, vec![0]).await;
    check(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "erin.eve@contoso.com""#,
        vec![0],
    )
    .await;

    for bad in [
        "userName eq",
        r#"userName zz "x""#,
        r#"(userName eq "x""#,
        r#"userName eq "x" and"#,
        r#"emails[type eq "work""#,
        "",
    ]
    .into_iter()
    .filter(|f| !f.is_empty())
    {
        let r = app
            .scim("GET", &t, &format!("/Users{}", filter_q(bad)), None)
            .await;
        assert_error(&r, 400, Some("invalidFilter"));
        let r = app
            .scim("GET", &t, &format!("/Groups{}", filter_q(bad)), None)
            .await;
        assert_error(&r, 400, Some("invalidFilter"));
    }
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    let r = app
        .scim("GET", &t, &format!("/Users{}", filter_q(&deep)), None)
        .await;
    assert_error(&r, 400, Some("invalidFilter"));
}

#[tokio::test]
async fn bad_requests_get_the_right_scim_error() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "ann.one@contoso.com").await;
    let uid = id_of(&u);
    let g = app.create_group(&t, "Sales", &[]).await;
    let gid = id_of(&g);

    // Malformed JSON, and JSON that is not an object.
    for (method, path) in [
        ("POST", "/Users".to_string()),
        ("PUT", format!("/Users/{uid}")),
        ("PATCH", format!("/Users/{uid}")),
        ("POST", "/Groups".to_string()),
        ("PATCH", format!("/Groups/{gid}")),
        ("POST", "/Bulk".to_string()),
        ("POST", "/Users/.search".to_string()),
    ] {
        for body in ["{\"userName\": ", "[1, 2]", "not json"] {
            let r = app
                .scim_with(method, &t, &path, &[], Some(body.into()))
                .await;
            assert_error(&r, 400, Some("invalidSyntax"));
        }
    }
    // A PATCH without the PatchOp schema or operations.
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{uid}"),
            Some(json!({ "Operations": [] })),
        )
        .await;
    assert_error(&r, 400, Some("invalidSyntax"));

    async fn patch_at(app: &TestApp, t: &ScimTenant, path: String, ops: Value) -> Reply {
        app.scim("PATCH", t, &path, Some(patch_ops(ops))).await
    }
    let patch = |path: String, ops: Value| patch_at(&app, &t, path, ops);
    let user_path = format!("/Users/{uid}");
    for ops in [
        json!([{ "op": "replace", "path": "nosuchattribute", "value": "x" }]),
        json!([{ "op": "replace", "path": "emails[type eq \"work\"", "value": "x" }]),
        json!([{ "op": "add", "path": "name.nosuchsub", "value": "x" }]),
        json!([{ "op": "replace", "path": "userName[value eq \"x\"]", "value": "x" }]),
    ] {
        let r = patch(user_path.clone(), ops.clone()).await;
        assert_error(&r, 400, Some("invalidPath"));
    }
    for ops in [
        json!([{ "op": "replace", "path": "id", "value": "other" }]),
        json!([{ "op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z" }]),
        json!([{ "op": "replace", "value": { "id": "other" } }]),
        json!([{ "op": "add", "path": "groups", "value": [{ "value": gid }] }]),
    ] {
        let r = patch(user_path.clone(), ops.clone()).await;
        let e = assert_error(&r, 400, Some("mutability"));
        assert!(!e["detail"].as_str().unwrap().is_empty(), "{ops}");
    }
    let r = patch(
        format!("/Groups/{gid}"),
        json!([{ "op": "replace", "path": "id", "value": "other" }]),
    )
    .await;
    assert_error(&r, 400, Some("mutability"));
    // A remove without a path has no target.
    let r = patch(user_path.clone(), json!([{ "op": "remove" }])).await;
    assert_error(&r, 400, Some("noTarget"));
    let r = patch(
        user_path.clone(),
        json!([{ "op": "move", "path": "title" }]),
    )
    .await;
    assert_error(&r, 400, Some("invalidSyntax"));
    // Nothing of that changed the user.
    let r = app.scim("GET", &t, &user_path, None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), u);

    // Unknown ids.
    let nobody = uuid::Uuid::new_v4();
    for plural in ["Users", "Groups"] {
        let path = format!("/{plural}/{nobody}");
        assert_error(&app.scim("GET", &t, &path, None).await, 404, None);
        assert_error(&app.scim("DELETE", &t, &path, None).await, 404, None);
        let r = patch(
            path.clone(),
            json!([{ "op": "replace", "path": "displayName", "value": "x" }]),
        )
        .await;
        assert_error(&r, 404, None);
        let r = app
            .scim(
                "PUT",
                &t,
                &path,
                Some(user_json("x.y@contoso.com", "x", "y")),
            )
            .await;
        assert_error(&r, 404, None);
    }
    // A user id is not a group id, and another organisation's ids do not exist here.
    assert_error(
        &app.scim("GET", &t, &format!("/Groups/{uid}"), None).await,
        404,
        None,
    );
    let other = app.scim_tenant("Fabrikam").await;
    assert_error(&app.scim("GET", &other, &user_path, None).await, 404, None);
    assert_error(
        &app.scim("DELETE", &other, &format!("/Groups/{gid}"), None)
            .await,
        404,
        None,
    );
    let r = app.scim("GET", &t, &user_path, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn transport_methods_routes_sizes_and_trailing_slashes() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "ann.one@contoso.com").await;
    let uid = id_of(&u);

    // Wrong methods.
    for (method, path) in [
        ("DELETE", "/Users".to_string()),
        ("PUT", "/Users".to_string()),
        ("PATCH", "/Groups".to_string()),
        ("POST", format!("/Users/{uid}")),
        ("GET", "/Bulk".to_string()),
        ("GET", "/Users/.search".to_string()),
        ("DELETE", "/.search".to_string()),
    ] {
        let r = app.scim(method, &t, &path, None).await;
        assert_error(&r, 405, None);
    }
    // Unknown routes under the base.
    for path in [
        "/Foo",
        "/Users/x/y",
        "/Groups/x/members",
        "/v2/Users",
        "/Schemas/x/y",
    ] {
        let r = app.scim("GET", &t, path, None).await;
        assert_error(&r, 404, None);
    }
    // /Me is not implemented.
    for path in ["/Me", "/Me/", "/Me/groups"] {
        let r = app.scim("GET", &t, path, None).await;
        assert_error(&r, 501, None);
    }
    let r = app
        .scim("PATCH", &t, "/Me", Some(patch_ops(json!([]))))
        .await;
    assert_error(&r, 501, None);

    // Bodies over 1 MiB.
    let mut big = user_json("big.body@contoso.com", "big", "body");
    big["nickName"] = json!("x".repeat(1024 * 1024 + 1));
    let r = app.scim("POST", &t, "/Users", Some(big.clone())).await;
    assert_error(&r, 413, None);
    let r = app
        .scim("PUT", &t, &format!("/Users/{uid}"), Some(big))
        .await;
    assert_error(&r, 413, None);
    let r = app
        .scim(
            "PATCH",
            &t,
            &format!("/Users/{uid}"),
            Some(patch_ops(json!([
                { "op": "replace", "path": "nickName", "value": "x".repeat(1024 * 1024 + 1) }
            ]))),
        )
        .await;
    assert_error(&r, 413, None);

    // Trailing slashes and unknown query parameters are tolerated.
    let r = app.scim("GET", &t, "/Users/", None).await;
    assert_eq!(list_of(&r).0, 2);
    let r = app.scim("GET", &t, &format!("/Users/{uid}/"), None).await;
    assert_eq!(ok_json(&r, StatusCode::OK), u);
    let r = app
        .scim(
            "POST",
            &t,
            "/Groups/",
            Some(json!({ "displayName": "Slash" })),
        )
        .await;
    ok_json(&r, StatusCode::CREATED);
    let r = app.scim("GET", &t, "/ServiceProviderConfig/", None).await;
    ok_json(&r, StatusCode::OK);
    let f = enc(r#"userName eq "ann.one@contoso.com""#);
    let r = app
        .scim(
            "GET",
            &t,
            &format!("/Users?aadOptscim062020=true&filter={f}&foo=bar&foo=baz"),
            None,
        )
        .await;
    assert_eq!(ids(&list_of(&r).1), vec![uid.clone()]);

    // Requests declaring application/json (with a charset) are accepted like scim+json.
    let req = Request::post(format!("/scim/v2/{}/Users", t.slug))
        .header("authorization", format!("Bearer {}", t.token))
        .header("content-type", "application/json; charset=utf-8")
        .header("accept", "application/json")
        .body(Body::from(
            user_json("json.client@contoso.com", "json", "client").to_string(),
        ))
        .unwrap();
    let r = app.send(req).await;
    ok_json(&r, StatusCode::CREATED);
}

#[tokio::test]
async fn etags_make_writes_conditional_and_reads_cheap() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let u = app.create_user(&t, "ann.one@contoso.com").await;
    let path = format!("/Users/{}", id_of(&u));
    let v1 = "W/\"1\"";
    let title = |v: &str| patch_ops(json!([{ "op": "replace", "path": "title", "value": v }]));

    let r = app
        .scim_with("GET", &t, &path, &[("if-none-match", v1)], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    let r = app
        .scim_with(
            "PATCH",
            &t,
            &path,
            &[("if-match", v1)],
            Some(title("A").to_string()),
        )
        .await;
    assert_eq!(ok_json(&r, StatusCode::OK)["meta"]["version"], "W/\"2\"");
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    // Now v1 is stale.
    let r = app
        .scim_with("GET", &t, &path, &[("if-none-match", v1)], None)
        .await;
    assert_eq!(ok_json(&r, StatusCode::OK)["title"], "A");
    let r = app
        .scim_with(
            "PATCH",
            &t,
            &path,
            &[("if-match", v1)],
            Some(title("B").to_string()),
        )
        .await;
    assert_error(&r, 412, None);
    let r = app
        .scim_with(
            "PUT",
            &t,
            &path,
            &[("if-match", v1)],
            Some(user_json("ann.one@contoso.com", "ann", "one").to_string()),
        )
        .await;
    assert_error(&r, 412, None);
    let r = app
        .scim_with("DELETE", &t, &path, &[("if-match", v1)], None)
        .await;
    assert_error(&r, 412, None);
    let r = app.scim("GET", &t, &path, None).await;
    assert_eq!(ok_json(&r, StatusCode::OK)["title"], "A", "nothing changed");

    let r = app
        .scim_with(
            "PATCH",
            &t,
            &path,
            &[("if-match", "*")],
            Some(title("C").to_string()),
        )
        .await;
    assert_eq!(ok_json(&r, StatusCode::OK)["title"], "C");
    let r = app
        .scim_with("DELETE", &t, &path, &[("if-match", "W/\"3\"")], None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Groups too.
    let g = app.create_group(&t, "Sales", &[]).await;
    let gpath = format!("/Groups/{}", id_of(&g));
    let r = app
        .scim_with("GET", &t, &gpath, &[("if-none-match", v1)], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let rename = patch_ops(json!([{ "op": "replace", "path": "displayName", "value": "S2" }]));
    let r = app
        .scim_with(
            "PATCH",
            &t,
            &gpath,
            &[("if-match", "W/\"7\"")],
            Some(rename.to_string()),
        )
        .await;
    assert_error(&r, 412, None);
    let r = app
        .scim_with(
            "PATCH",
            &t,
            &gpath,
            &[("if-match", v1)],
            Some(rename.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
}

#[tokio::test]
async fn discovery_describes_the_server_without_nulls() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let base = format!("{PUBLIC_URL}/scim/v2/{}", t.slug);

    let r = app.scim("GET", &t, "/ServiceProviderConfig", None).await;
    let spc = ok_json(&r, StatusCode::OK);
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    for feature in ["patch", "bulk", "filter", "sort", "etag"] {
        assert_eq!(spc[feature]["supported"], true, "{feature}");
    }
    assert_eq!(spc["changePassword"]["supported"], false);
    assert_eq!(spc["bulk"]["maxPayloadSize"], 1024 * 1024);
    assert!(spc["bulk"]["maxOperations"].as_u64().unwrap() > 0);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(spc["authenticationSchemes"][1]["type"], "oauth2");

    let r = app.scim("GET", &t, "/ResourceTypes", None).await;
    let (total, types) = list_of(&r);
    assert_eq!(total, 2);
    let names: Vec<&str> = types.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["User", "Group"]);
    assert_eq!(types[0]["endpoint"], "/Users");
    assert_eq!(types[0]["schema"], USER_SCHEMA);
    assert_eq!(
        types[0]["schemaExtensions"],
        json!([{ "schema": ENTERPRISE, "required": false }])
    );
    assert_eq!(types[1]["schema"], GROUP_SCHEMA);
    for (id, ty) in [("User", &types[0]), ("Group", &types[1])] {
        let r = app
            .scim("GET", &t, &format!("/ResourceTypes/{id}"), None)
            .await;
        assert_eq!(&ok_json(&r, StatusCode::OK), ty);
        assert_eq!(ty["meta"]["location"], format!("{base}/ResourceTypes/{id}"));
    }
    assert_error(
        &app.scim("GET", &t, "/ResourceTypes/Printer", None).await,
        404,
        None,
    );

    let r = app.scim("GET", &t, "/Schemas", None).await;
    let (total, schemas) = list_of(&r);
    assert_eq!(total as usize, schemas.len());
    let ids = ids(&schemas);
    for urn in [USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA] {
        assert!(ids.contains(&urn.to_string()), "{urn} in {ids:?}");
    }
    for s in &schemas {
        let urn = s["id"].as_str().unwrap();
        let r = app.scim("GET", &t, &format!("/Schemas/{urn}"), None).await;
        assert_eq!(&ok_json(&r, StatusCode::OK), s);
        assert_eq!(s["meta"]["location"], format!("{base}/Schemas/{urn}"));
        for a in s["attributes"].as_array().unwrap() {
            for k in [
                "name",
                "type",
                "multiValued",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(a.get(k).is_some(), "{urn}: attribute without {k}: {a}");
            }
        }
    }
    let user = schemas.iter().find(|s| s["id"] == USER_SCHEMA).unwrap();
    let user_name = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["caseExact"], false);
    assert_error(
        &app.scim("GET", &t, "/Schemas/urn:example:nothing", None)
            .await,
        404,
        None,
    );

    // Discovery is read-only.
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/User",
        "/Schemas",
        &format!("/Schemas/{USER_SCHEMA}"),
    ] {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let r = app.scim(method, &t, path, Some(json!({}))).await;
            assert_error(&r, 405, None);
        }
    }
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_and_honours_fail_on_errors() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let bulk = |ops: Value, fail_on_errors: Option<u64>| {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": ops,
        });
        if let Some(n) = fail_on_errors {
            body["failOnErrors"] = json!(n);
        }
        app.scim("POST", &t, "/Bulk", Some(body))
    };

    let r = bulk(
        json!([
            { "method": "POST", "path": "/Users", "bulkId": "u1",
              "data": user_json("ann.one@contoso.com", "ann", "one") },
            { "method": "POST", "path": "/Groups", "bulkId": "g1",
              "data": { "schemas": [GROUP_SCHEMA], "displayName": "Sales",
                        "members": [{ "type": "User", "value": "bulkId:u1" }] } },
            { "method": "PATCH", "path": "/Users/bulkId:u1",
              "data": patch_ops(json!([{ "op": "replace", "path": "title", "value": "Boss" }])) },
        ]),
        None,
    )
    .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let results = v["Operations"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{v}");
    assert_eq!(results[0]["status"], "201");
    assert_eq!(results[0]["bulkId"], "u1");
    assert_eq!(results[0]["method"], "POST");
    assert_eq!(results[1]["status"], "201");
    assert_eq!(results[2]["status"], "200");
    let user_loc = results[0]["location"].as_str().unwrap();
    let uid = user_loc.rsplit('/').next().unwrap();
    assert_eq!(
        user_loc,
        format!("{PUBLIC_URL}/scim/v2/{}/Users/{uid}", t.slug)
    );
    assert_eq!(results[0]["version"], "W/\"1\"");
    let gid = results[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();

    let r = app.scim("GET", &t, &format!("/Groups/{gid}"), None).await;
    let g = ok_json(&r, StatusCode::OK);
    assert_eq!(g["members"][0]["value"], uid);
    let r = app.scim("GET", &t, &format!("/Users/{uid}"), None).await;
    let u = ok_json(&r, StatusCode::OK);
    assert_eq!(u["title"], "Boss");
    assert_eq!(u["groups"][0]["value"], gid);

    // Errors are reported per operation; failOnErrors stops after that many.
    let dup = json!({ "method": "POST", "path": "/Users", "bulkId": "d",
                      "data": user_json("ann.one@contoso.com", "ann", "one") });
    let new = |n: &str| {
        json!({ "method": "POST", "path": "/Users", "bulkId": n,
                                "data": user_json(&format!("{n}.x@contoso.com"), n, "x") })
    };
    let r = bulk(json!([dup, new("bea"), new("cy")]), Some(1)).await;
    let v = ok_json(&r, StatusCode::OK);
    let results = v["Operations"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(results[0]["status"], "409");
    assert_eq!(results[0]["response"]["scimType"], "uniqueness");
    assert_eq!(results[0]["response"]["schemas"], json!([ERROR_SCHEMA]));
    assert_eq!(
        app.scim_filter(&t, "/Users", r#"userName eq "bea.x@contoso.com""#)
            .await
            .0,
        0,
        "nothing after the failure ran"
    );
    let r = bulk(json!([dup, new("bea"), new("cy")]), None).await;
    let v = ok_json(&r, StatusCode::OK);
    let statuses: Vec<&str> = v["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["409", "201", "201"]);

    // A reference to a bulkId that was never created fails that operation only.
    let r = bulk(
        json!([{ "method": "POST", "path": "/Groups", "bulkId": "g2",
                 "data": { "displayName": "Ghosts", "members": [{ "value": "bulkId:nope" }] } }]),
        None,
    )
    .await;
    let v = ok_json(&r, StatusCode::OK);
    assert_eq!(v["Operations"][0]["status"], "409");
    assert_eq!(v["Operations"][0]["response"]["scimType"], "invalidValue");

    // Requests that are not bulk requests at all.
    let r = app
        .scim("POST", &t, "/Bulk", Some(json!({ "Operations": [] })))
        .await;
    assert_error(&r, 400, Some("invalidSyntax"));
}

#[tokio::test]
async fn bulk_passes_the_gate_once_and_runs_each_operation_like_its_single_request() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let gate_ok = || app.state.metrics.outcome(server::metrics::SCIM_AUTH, "ok");
    let before = gate_ok();
    let mut renamed = user_json("kim.lee@contoso.com", "Kim", "Lee");
    renamed["title"] = json!("Lead");
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            { "method": "POST", "path": "/Users", "bulkId": "u1",
              "data": user_json("kim.lee@contoso.com", "Kim", "Lee") },
            // PUT pinned to the version just created: applies, and moves the version on.
            { "method": "PUT", "path": "/Users/bulkId:u1", "version": "W/\"1\"", "data": renamed },
            // Pinned to the old version now: 412, as the single request would answer.
            { "method": "PATCH", "path": "/Users/bulkId:u1", "version": "W/\"1\"",
              "data": patch_ops(json!([{ "op": "replace", "path": "title", "value": "Late" }])) },
            { "method": "DELETE", "path": "/Groups/no-such-group" },
            { "method": "PATCH", "path": "/Users/bulkId:u1/extra",
              "data": patch_ops(json!([])) },
            { "method": "PUT", "path": "/Groups", "data": { "displayName": "X" } },
            { "method": "POST", "path": "/Users", "bulkId": "u2" },
            { "method": "POST", "path": "/Groups", "bulkId": "g1",
              "data": { "displayName": "Self", "members": [{ "value": "bulkId:u1" }] } },
            // A group cannot contain itself, by PUT either.
            { "method": "PUT", "path": "/Groups/bulkId:g1",
              "data": { "displayName": "Self", "members": [{ "value": "bulkId:g1" }] } },
        ]
    });
    let r = app.scim("POST", &t, "/Bulk", Some(body)).await;
    let v = ok_json(&r, StatusCode::OK);
    let results = v["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201", "200", "412", "404", "400", "405", "400", "201", "400"
        ],
        "{v}"
    );
    assert_eq!(results[1]["version"], "W/\"2\"");
    assert_eq!(results[4]["response"]["scimType"], "invalidValue");
    assert_eq!(results[6]["response"]["scimType"], "invalidSyntax");
    assert_eq!(results[8]["response"]["scimType"], "invalidValue");
    assert!(
        results[8]["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("member of itself"),
        "{v}"
    );
    // One request, one token check, whatever the number of operations.
    assert_eq!(gate_ok(), before + 1);
    let uid = results[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let u = ok_json(
        &app.scim("GET", &t, &format!("/Users/{uid}"), None).await,
        StatusCode::OK,
    );
    assert_eq!(u["title"], "Lead", "the stale PATCH changed nothing");
}

#[tokio::test]
async fn the_gate_answers_in_scim() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let other = app.scim_tenant("Fabrikam").await;
    let users = format!("/scim/v2/{}/Users", t.slug);
    let check_401 = |r: &Reply| {
        assert_error(r, 401, None);
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{:?}",
            r.headers
        );
    };

    check_401(&app.scim_raw("GET", &users, None, None).await);
    check_401(&app.scim_raw("GET", &users, Some(&other.token), None).await);
    check_401(&app.scim_raw("GET", &users, Some("not-a-token"), None).await);
    check_401(
        &app.scim_raw("GET", "/scim/v2/nowhere/Users", Some(&t.token), None)
            .await,
    );
    check_401(
        &app.scim_raw(
            "POST",
            &users,
            None,
            Some(user_json("a.b@contoso.com", "a", "b").to_string()),
        )
        .await,
    );
    let req = Request::get(&users)
        .header("authorization", format!("Basic {}", t.token))
        .body(Body::empty())
        .unwrap();
    check_401(&app.send(req).await);
    // Even discovery and unknown routes need the token.
    check_401(
        &app.scim_raw(
            "GET",
            &format!("/scim/v2/{}/ServiceProviderConfig", t.slug),
            None,
            None,
        )
        .await,
    );
    check_401(
        &app.scim_raw("GET", &format!("/scim/v2/{}/Nothing", t.slug), None, None)
            .await,
    );
    // The right token works.
    let r = app.scim_raw("GET", &users, Some(&t.token), None).await;
    assert_eq!(list_of(&r).0, 1);
}

/// A schema-driven client builds users from what /Schemas marks required. Exactly those are
/// what the connector needs: a user with only them is created, a user without any one of them
/// is refused, naming it.
#[tokio::test]
async fn schemas_mark_exactly_what_the_connector_requires() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Contoso").await;
    let r = app
        .scim("GET", &t, &format!("/Schemas/{USER_SCHEMA}"), None)
        .await;
    let schema = ok_json(&r, StatusCode::OK);
    let mut required = Vec::new();
    for a in schema["attributes"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        if a["required"] == true {
            required.push(name.to_string());
        }
        for s in a["subAttributes"].as_array().into_iter().flatten() {
            if s["required"] == true && a["required"] == true {
                required.push(format!("{name}.{}", s["name"].as_str().unwrap()));
            }
        }
    }
    required.sort();
    assert_eq!(
        required,
        [
            "emails",
            "emails.value",
            "name",
            "name.familyName",
            "name.givenName",
            "userName"
        ]
    );

    // Built from the required attributes alone: accepted.
    let minimal = json!({
        "schemas": [USER_SCHEMA],
        "userName": "min@contoso.com",
        "name": { "givenName": "Min", "familyName": "Imal" },
        "emails": [{ "value": "min@contoso.com" }],
    });
    let r = app.scim("POST", &t, "/Users", Some(minimal.clone())).await;
    ok_json(&r, StatusCode::CREATED);

    // Each one left out: 400 invalidValue naming it.
    for (drop, named) in [
        ("/userName", "userName"),
        ("/name/givenName", "name.givenName"),
        ("/name/familyName", "name.familyName"),
        ("/emails/0/value", "email"),
    ] {
        let mut u = minimal.clone();
        u["userName"] = json!(format!("other-{named}@contoso.com"));
        let (parent, key) = drop.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut u
        } else {
            u.pointer_mut(parent).unwrap()
        };
        match target {
            Value::Object(o) => {
                o.remove(key);
            }
            other => panic!("{other}"),
        }
        let r = app.scim("POST", &t, "/Users", Some(u)).await;
        let e = assert_error(&r, 400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains(named), "{e}");
    }
}
