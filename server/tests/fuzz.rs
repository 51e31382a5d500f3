//! Property and corpus tests: generated SCIM filters, PATCH bodies and JSON documents never
//! panic the pure core and never get a 5xx from the real router on a real database; plus a fixed
//! corpus of adversarial inputs (deep nesting, huge strings, NUL, many operations).

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use server::scim::filter::parse_filter;
use server::scim::patch::{PatchRequest, apply_group_patch, apply_patch};
use server::scim::schema::ResourceKind;

const ATTRS: &[&str] = &[
    "userName",
    "UserName",
    "emails",
    "emails.value",
    "emails.type",
    "name.givenName",
    "name",
    "active",
    "displayName",
    "externalId",
    "id",
    "meta.lastModified",
    "members",
    "members.value",
    "phoneNumbers",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "x",
    "",
];
const OPS: &[&str] = &[
    "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "pr", "xx",
];

fn attr() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(ATTRS).prop_map(str::to_string),
        "[a-zA-Z][a-zA-Z0-9.:]{0,10}",
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}".prop_map(|s| format!("{:?}", s)),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        Just("\"2026-01-01T00:00:00Z\"".to_string()),
        "[ -~]{0,6}",
    ]
}

fn filter() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (attr(), proptest::sample::select(OPS), literal())
            .prop_map(|(a, o, v)| format!("{a} {o} {v}")),
        attr().prop_map(|a| format!("{a} pr")),
        "[ -~]{0,20}",
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.clone().prop_map(|a| format!("({a})")),
            (attr(), inner).prop_map(|(p, a)| format!("{p}[{a}]")),
        ]
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[ -~]{0,10}".prop_map(Value::String),
        Just(json!("True")),
        Just(json!("work")),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((attr(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn patch_path() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        attr().prop_map(Some),
        (attr(), filter()).prop_map(|(a, f)| Some(format!("{a}[{f}]"))),
        (attr(), filter(), attr()).prop_map(|(a, f, s)| Some(format!("{a}[{f}].{s}"))),
    ]
}

fn patch_body() -> impl Strategy<Value = Value> {
    let op = (
        proptest::sample::select(&["add", "replace", "remove", "Add", "REPLACE", "bogus"][..]),
        patch_path(),
        proptest::option::of(json_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut o = json!({ "op": op });
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            if let Some(v) = value {
                o["value"] = v;
            }
            o
        });
    prop_oneof![
        proptest::collection::vec(op, 0..4).prop_map(|ops| json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops,
        })),
        json_value(),
    ]
}

fn base_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@contoso.example",
        "active": true,
        "name": {"givenName": "Ada", "familyName": "L"},
        "emails": [{"value": "ada@contoso.example", "type": "work", "primary": true}],
    })
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn the_filter_parser_never_panics(f in filter()) {
        let _ = parse_filter(&f);
    }

    #[test]
    fn the_filter_parser_never_panics_on_noise(s in "[ -~\u{80}-\u{10ffff}]{0,60}") {
        let _ = parse_filter(&s);
    }

    #[test]
    fn patching_never_panics(body in patch_body()) {
        if let Ok(req) = PatchRequest::from_value(body) {
            let mut user = base_user();
            let _ = apply_patch(&mut user, &req.operations, ResourceKind::User);
            let mut group = json!({"displayName": "G"});
            let _ = apply_group_patch(&mut group, &req.operations);
        }
    }
}

struct Target {
    app: TestApp,
    tenant: ScimTenant,
    user_id: String,
    rt: tokio::runtime::Runtime,
}

fn target() -> Target {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (app, tenant, user_id) = rt.block_on(async {
        let app = TestApp::new().await;
        let tenant = app.scim_tenant("Fuzz").await;
        let mut doc = base_user();
        doc["externalId"] = json!("ada");
        doc["name"]["familyName"] = json!("Lovelace");
        let r = app.scim("POST", &tenant, "/Users", Some(doc)).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_string();
        (app, tenant, id)
    });
    Target {
        app,
        tenant,
        user_id,
        rt,
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn generated_filters_and_patches_never_get_a_5xx() {
    let t = target();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&filter(), |f| {
            for resource in ["/Users", "/Groups"] {
                let r = t.rt.block_on(t.app.scim(
                    "GET",
                    &t.tenant,
                    &format!("{resource}?filter={}", enc(&f)),
                    None,
                ));
                prop_assert!(r.status.as_u16() < 500, "{f}: {} {}", r.status, r.body);
            }
            Ok(())
        })
        .unwrap();
    runner
        .run(&patch_body(), |body| {
            let path = format!("/Users/{}", t.user_id);
            let r =
                t.rt.block_on(t.app.scim("PATCH", &t.tenant, &path, Some(body.clone())));
            prop_assert!(r.status.as_u16() < 500, "{body}: {} {}", r.status, r.body);
            Ok(())
        })
        .unwrap();
    runner
        .run(&json_value(), |doc| {
            let r =
                t.rt.block_on(t.app.scim("POST", &t.tenant, "/Users", Some(doc.clone())));
            prop_assert!(r.status.as_u16() < 500, "{doc}: {} {}", r.status, r.body);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_corpus_of_adversarial_inputs_never_gets_a_5xx() {
    let t = target();
    let long = "a".repeat(100_000);
    let filters = [
        "(".repeat(10_000),
        "not (".repeat(2_000),
        format!("userName eq \"{long}\""),
        "userName eq \"a\u{0}b\"".to_string(),
        "emails[type eq \"work\" and value co \"@\"]".repeat(200),
        format!("{} userName pr", "userName pr and ".repeat(5_000)),
        "userName eq \"\\".to_string(),
        "meta.lastModified gt \"not a date\"".to_string(),
        "members[value eq \"x\"]".to_string(),
        "\u{202e}\u{feff} eq \"x\"".to_string(),
    ];
    for f in &filters {
        for resource in ["/Users", "/Groups"] {
            // Long filters go in a search body (URIs are capped well below them).
            let search = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": f,
            });
            let r = t.rt.block_on(t.app.scim(
                "POST",
                &t.tenant,
                &format!("{resource}/.search"),
                Some(search),
            ));
            let shown: String = f.chars().take(60).collect();
            assert!(r.status.as_u16() < 500, "{shown}: {}", r.body);
            if f.len() < 8_000 {
                let r = t.rt.block_on(t.app.scim(
                    "GET",
                    &t.tenant,
                    &format!("{resource}?filter={}", enc(f)),
                    None,
                ));
                assert!(r.status.as_u16() < 500, "{shown}: {}", r.body);
            }
        }
    }
    let mut deep = json!("x");
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    let many_ops: Vec<Value> = (0..10_000)
        .map(|i| json!({"op": "replace", "path": "displayName", "value": format!("n{i}")}))
        .collect();
    let bodies = [
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "add", "value": deep.clone()}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": many_ops}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value",
                               "value": long.clone()}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "add", "path": "phoneNumbers",
                               "value": (0..40_000).map(|i| json!({"value": i.to_string()})).collect::<Vec<_>>()}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "remove", "path": "emails[value eq \"\u{0}\"]"}]}),
    ];
    let path = format!("/Users/{}", t.user_id);
    for b in &bodies {
        let r =
            t.rt.block_on(t.app.scim("PATCH", &t.tenant, &path, Some(b.clone())));
        assert!(r.status.as_u16() < 500, "{}", r.body);
    }
    let r =
        t.rt.block_on(t.app.scim("POST", &t.tenant, "/Users", Some(deep)));
    assert!(r.status.as_u16() < 500, "{}", r.body);
    let raw_bodies = ["{", "[]", "null", "\"x\"", "{\"userName\": 1e999}", "\u{0}"];
    for b in raw_bodies {
        let r = t.rt.block_on(t.app.scim_raw(
            "POST",
            &format!("/scim/v2/{}/Users", t.tenant.slug),
            Some(&t.tenant.token),
            Some(b.to_string()),
        ));
        assert!(r.status.as_u16() < 500, "{b}: {}", r.body);
    }
    // The user is intact after all of it.
    let r = t.rt.block_on(t.app.scim("GET", &t.tenant, &path, None));
    assert_eq!(r.status.as_u16(), 200);
}
