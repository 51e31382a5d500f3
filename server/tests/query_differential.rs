//! The database answers filters and sortBy exactly as the pure evaluator would: random users and
//! groups, thousands of random filters, and for each the ids the SQL query returns must equal
//! the ids `filter::matches` selects from the same documents (and `sortBy` the order
//! `resource::sort_docs` gives). Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.

mod common;
mod scim_support;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scim_support::*;
use serde_json::{Value, json};
use server::scim::filter::{matches, parse_attr_path, parse_filter};
use server::scim::resource::sort_docs;
use server::scim::schema::ResourceKind;
use server::store::query::page_ids_by_sample;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User";

const WORDS: &[&str] = &[
    "alice", "Alice", "ALICE", "bob", "Bob", "smith", "Smith", "smithers", "o'neil", "zoë", "Zoë",
    "ab", "abc", "b", "", " x", "sales", "Sales", "R&D", "true", "True", "42", "%", "_",
];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn word(rng: &mut StdRng) -> String {
    pick(rng, WORDS).to_string()
}

fn maybe(rng: &mut StdRng, p: f64) -> bool {
    rng.random_bool(p)
}

fn random_user(rng: &mut StdRng, n: usize) -> Value {
    let mut u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM],
        "userName": format!("{}{n}@Contoso.com", word(rng)),
        "name": {
            "givenName": format!("{}{}", word(rng), if maybe(rng, 0.5) { "g" } else { "x" }),
            "familyName": format!("{}z", word(rng)),
        },
        "active": if maybe(rng, 0.2) { json!("False") } else { json!(maybe(rng, 0.8)) },
    });
    let mut emails = vec![json!({
        "value": format!("{}{n}@Work.test", word(rng)), "type": "work", "primary": maybe(rng, 0.7)
    })];
    if maybe(rng, 0.5) {
        emails.push(json!({"value": format!("{}@home.test", word(rng)), "type": "home"}));
    }
    u["emails"] = json!(emails);
    if maybe(rng, 0.6) {
        u["title"] = json!(word(rng));
    }
    if maybe(rng, 0.5) {
        u["displayName"] = json!(format!("{} {}", word(rng), word(rng)));
    }
    if maybe(rng, 0.5) {
        u["externalId"] = json!(format!("Ext-{n}-{}", pick(rng, &["a", "B"])));
    }
    if maybe(rng, 0.4) {
        u["phoneNumbers"] = json!([{"value": format!("+1 555 {}", rng.random_range(0..9)), "type": pick(rng, &["work", "mobile"])}]);
    }
    let mut ent = serde_json::Map::new();
    if maybe(rng, 0.6) {
        ent.insert("department".into(), json!(word(rng)));
    }
    if maybe(rng, 0.4) {
        ent.insert(
            "employeeNumber".into(),
            json!(format!("{}", rng.random_range(0..20))),
        );
    }
    if maybe(rng, 0.3) {
        ent.insert(
            "manager".into(),
            json!({"value": format!("M{}", rng.random_range(0..5))}),
        );
    }
    u[ENTERPRISE] = Value::Object(ent);
    let mut custom = serde_json::Map::new();
    if maybe(rng, 0.6) {
        custom.insert("badge".into(), json!(word(rng)));
    }
    if maybe(rng, 0.5) {
        custom.insert("level".into(), json!(rng.random_range(0..10)));
    }
    if maybe(rng, 0.4) {
        custom.insert("remote".into(), json!(maybe(rng, 0.5)));
    }
    if maybe(rng, 0.3) {
        custom.insert("tags".into(), json!([word(rng), word(rng)]));
    }
    u[CUSTOM] = Value::Object(custom);
    u
}

/// The query of a page of 7 from `start` sorted by `by`, filtered by `title pr` when `filter`
/// says so, when `by` is a search-index key no index holds (the sorts [`page_ids_by_sample`]
/// serves).
fn sampled_query(
    by: &str,
    descending: bool,
    filter: &str,
    start: usize,
) -> Option<server::domain::query::Query> {
    use server::domain::query::{Cond, Page, Query, SortKey};
    use server::scim::query::Target;
    use server::store::query::sort_key_column;
    let target = Target {
        kind: ResourceKind::User,
        base_url: "https://bitabiz.test/scim/v2/t",
    };
    let sort = target
        .sort(Some(&parse_attr_path(by).unwrap()), descending)
        .unwrap();
    match &sort.key {
        SortKey::Indexed(k) if sort_key_column(k).is_none() => {}
        _ => return None,
    }
    let cond = if filter.is_empty() {
        Cond::Const(true)
    } else {
        target.cond(&parse_filter("title pr").unwrap()).unwrap()
    };
    Some(Query {
        cond,
        sort,
        page: Page {
            offset: start as i64 - 1,
            limit: 7,
        },
    })
}

const USER_PATHS: &[&str] = &[
    "userName",
    "name.givenName",
    "name.familyName",
    "name",
    "displayName",
    "title",
    "active",
    "externalId",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers.type",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:badge",
    "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:level",
    "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:remote",
    "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:tags",
    "groups",
    "groups.display",
    "meta.resourceType",
    "meta.created",
    "nickName",
];

const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

fn literal(rng: &mut StdRng, groups: &[String]) -> String {
    match rng.random_range(0..10) {
        0 => "null".into(),
        1 => pick(rng, &["true", "false"]).into(),
        2 => format!("{}", rng.random_range(0..12)),
        3 if !groups.is_empty() => format!("\"{}\"", groups[rng.random_range(0..groups.len())]),
        4 => "\"2026-09-21T14:13:20Z\"".into(),
        _ => serde_json::to_string(&word(rng)).unwrap(),
    }
}

fn term(rng: &mut StdRng, paths: &[&str], groups: &[String], depth: u32) -> String {
    let r = rng.random_range(0..12);
    if depth < 2 && r < 2 {
        let a = term(rng, paths, groups, depth + 1);
        let b = term(rng, paths, groups, depth + 1);
        return format!("({a} {} {b})", pick(rng, &["and", "or"]));
    }
    if depth < 2 && r == 2 {
        return format!("not ({})", term(rng, paths, groups, depth + 1));
    }
    if r == 3 && paths.contains(&"emails") {
        let sub = pick(rng, &["type", "value", "primary"]);
        let inner = format!("{sub} {} {}", pick(rng, OPS), literal(rng, groups));
        let inner = if maybe(rng, 0.4) {
            format!("{inner} and type eq \"work\"")
        } else {
            inner
        };
        let attr = pick(rng, &["emails", "phoneNumbers", "groups"]);
        return format!("{attr}[{inner}]");
    }
    let path = pick(rng, paths);
    if r == 4 {
        return format!("{path} pr");
    }
    format!("{path} {} {}", pick(rng, OPS), literal(rng, groups))
}

async fn all_docs(app: &TestApp, t: &ScimTenant, plural: &str) -> Vec<Value> {
    let r = app
        .scim("GET", t, &format!("/{plural}?count=1000"), None)
        .await;
    list_of(&r).1
}

/// `users` in the evaluator's order of `by`, and the `sortOrder` that asks for it.
fn evaluator_order(users: &[Value], by: &str, descending: bool) -> (Vec<Value>, &'static str) {
    let mut sorted = users.to_vec();
    let path = parse_attr_path(by).unwrap();
    sort_docs(ResourceKind::User, &mut sorted, &path, descending);
    let order = if descending {
        "descending"
    } else {
        "ascending"
    };
    (sorted, order)
}

/// The ids of the users a GET of `/Users?{query}` lists, in its order.
async fn listed_ids(app: &TestApp, t: &ScimTenant, query: &str) -> Vec<String> {
    let r = app.scim("GET", t, &format!("/Users?{query}"), None).await;
    ids_of(&list_of(&r).1)
}

fn ids_of(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sql_answers_equal_the_evaluator() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Diff").await;
    let mut rng = StdRng::seed_from_u64(7643);
    let mut user_ids = Vec::new();
    for n in 0..120 {
        let r = app
            .scim("POST", &t, "/Users", Some(random_user(&mut rng, n)))
            .await;
        user_ids.push(
            ok_json(&r, axum::http::StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut group_ids = Vec::new();
    for n in 0..8 {
        let members: Vec<&str> = user_ids
            .iter()
            .filter(|_| rng.random_bool(0.2))
            .map(String::as_str)
            .collect();
        let name = format!("{} Team {n}", word(&mut rng));
        let g = app.create_group(&t, &name, &members).await;
        group_ids.push(g["id"].as_str().unwrap().to_string());
    }
    let users = all_docs(&app, &t, "Users").await;
    let groups = all_docs(&app, &t, "Groups").await;
    assert_eq!(users.len(), 121, "120 provisioned users and the admin");

    let mut checked = 0;
    let mut nonempty = 0;
    for _ in 0..1500 {
        let f = term(&mut rng, USER_PATHS, &group_ids, 0);
        let Ok(parsed) = parse_filter(&f) else {
            continue;
        };
        let expected: Vec<String> = users
            .iter()
            .filter(|d| matches(&parsed, d, ResourceKind::User))
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        let r = app
            .scim(
                "GET",
                &t,
                &format!("/Users?count=1000&filter={}", enc(&f)),
                None,
            )
            .await;
        if r.status == axum::http::StatusCode::BAD_REQUEST {
            // A value filter on a simple attribute is refused (RFC 7644: they are for complex
            // attributes); nothing else may be.
            assert!(f.contains('['), "{f}: {}", r.body);
            continue;
        }
        let (total, found) = list_of(&r);
        assert_eq!(ids_of(&found), expected, "filter: {f}");
        assert_eq!(total as usize, expected.len(), "filter: {f}");
        checked += 1;
        nonempty += usize::from(!expected.is_empty() && expected.len() < users.len());
    }
    assert!(checked > 1000, "{checked} filters checked");
    assert!(
        nonempty > 300,
        "only {nonempty} filters selected a proper subset"
    );

    // Groups: names, members and their display names.
    let group_paths = &[
        "displayName",
        "externalId",
        "members",
        "members.value",
        "members.display",
        "members.type",
        "id",
    ];
    let member_filter = |rng: &mut StdRng| -> String {
        if rng.random_bool(0.3) {
            format!(
                "members[value eq \"{}\"]",
                user_ids[rng.random_range(0..user_ids.len())]
            )
        } else {
            term(rng, group_paths, &user_ids[..5], 1)
        }
    };
    for _ in 0..300 {
        let f = member_filter(&mut rng);
        let Ok(parsed) = parse_filter(&f) else {
            continue;
        };
        let expected: Vec<String> = groups
            .iter()
            .filter(|d| matches(&parsed, d, ResourceKind::Group))
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        let r = app
            .scim(
                "GET",
                &t,
                &format!("/Groups?count=1000&filter={}", enc(&f)),
                None,
            )
            .await;
        assert_eq!(ids_of(&list_of(&r).1), expected, "filter: {f}");
    }

    // Root /.search: users and groups together, filtered and sorted as one list (groups without
    // their members, as the root answers them).
    let root_docs: Vec<(ResourceKind, Value)> = users
        .iter()
        .map(|d| (ResourceKind::User, d.clone()))
        .chain(groups.iter().map(|g| {
            let mut g = g.clone();
            g.as_object_mut().unwrap().remove("members");
            (ResourceKind::Group, g)
        }))
        .collect();
    for (f, by) in [
        ("displayName sw \"a\" or userName sw \"b\"", None),
        ("displayName co \"team\" or title pr", Some("displayName")),
        ("not (displayName pr)", Some("userName")),
        (
            "meta.resourceType eq \"Group\" or active eq false",
            Some("meta.created"),
        ),
        ("title pr or displayName co \"a\"", Some("title")),
        ("not (title pr)", Some("meta.lastModified")),
        // Groups hold no userName or active: both terms hold for every group.
        (
            "userName ne \"nobody\" and not (active eq true)",
            Some("userName"),
        ),
    ] {
        let parsed = parse_filter(f).unwrap();
        let mut expected: Vec<(ResourceKind, Value)> = root_docs
            .iter()
            .filter(|(k, d)| matches(&parsed, d, *k))
            .cloned()
            .collect();
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f, "count": 1000,
        });
        if let Some(by) = by {
            body["sortBy"] = json!(by);
            let path = parse_attr_path(by).unwrap();
            expected.sort_by(|(ka, a), (kb, b)| {
                use server::scim::filter::sort_key;
                match (sort_key(a, &path, *ka), sort_key(b, &path, *kb)) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => x.cmp(&y),
                }
            });
        }
        let r = app.scim("POST", &t, "/.search", Some(body.clone())).await;
        let expected: Vec<Value> = expected.into_iter().map(|(_, d)| d).collect();
        assert_eq!(
            ids_of(&list_of(&r).1),
            ids_of(&expected),
            "root: {f} by {by:?}"
        );
        // Every page is its slice of the whole, with the whole's total: pages of users, pages
        // that run from the last users into the first groups, pages of groups, and past the end.
        let all = ids_of(&expected);
        for count in [1_usize, 2, 3] {
            for start in 1..=all.len() + 1 {
                body["startIndex"] = json!(start);
                body["count"] = json!(count);
                let r = app.scim("POST", &t, "/.search", Some(body.clone())).await;
                let (total, found) = list_of(&r);
                assert_eq!(total as usize, all.len(), "root: {f} by {by:?}");
                let from = (start - 1).min(all.len());
                assert_eq!(
                    ids_of(&found),
                    all[from..(from + count).min(all.len())].to_vec(),
                    "root: {f} by {by:?}, startIndex {start}, count {count}"
                );
            }
        }
    }

    // sortBy, both directions, on every kind of attribute.
    for by in [
        "userName",
        "name.familyName",
        "name.givenName",
        "title",
        "displayName",
        "active",
        "emails",
        "emails.type",
        "externalId",
        "meta.created",
        "meta.lastModified",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:level",
        "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:remote",
        "urn:ietf:params:scim:schemas:extension:CustomApp:2.0:User:tags",
    ] {
        for descending in [false, true] {
            let (expected, order) = evaluator_order(&users, by, descending);
            let query = format!("count=1000&sortBy={}&sortOrder={order}", enc(by));
            assert_eq!(
                listed_ids(&app, &t, &query).await,
                ids_of(&expected),
                "sortBy {by} {order}"
            );
            // Every page of the same order is the same slice: among them pages that hold the
            // last users with a value and the first without one, and pages that hold only the
            // latter (on SQLite a sort on a column some users lack reads those two apart).
            // Filtered, the same: the count of the part before is then of matching users only.
            let titled = parse_filter("title pr").unwrap();
            for (filter, expected) in [
                ("", expected.clone()),
                (
                    "&filter=title%20pr",
                    expected
                        .iter()
                        .filter(|d| matches(&titled, d, ResourceKind::User))
                        .cloned()
                        .collect(),
                ),
            ] {
                for start in (1..=expected.len() + 7).step_by(7) {
                    let r = app
                        .scim(
                            "GET",
                            &t,
                            &format!(
                                "/Users?startIndex={start}&count=7&sortBy={}&sortOrder={order}{filter}",
                                enc(by)
                            ),
                            None,
                        )
                        .await;
                    let (total, found) = list_of(&r);
                    let slice =
                        &expected[(start - 1).min(expected.len())..(start + 6).min(expected.len())];
                    assert_eq!(
                        ids_of(&found),
                        ids_of(slice),
                        "page at {start} of {by} {order}{filter}"
                    );
                    assert_eq!(total as usize, expected.len(), "total of {by}{filter}");
                    // The page of a deep sort placed by a sample (SQLite; the listing uses it
                    // past 50,000 deep), at every depth here.
                    if let Some(q) = sampled_query(by, descending, filter, start)
                        && let server::store::Db::Sqlite(_) = &app.db
                    {
                        let (total, found) = page_ids_by_sample(&app.db, &t.id, &q)
                            .await
                            .unwrap()
                            .unwrap_or_else(|| panic!("no sample for {by} at {start}"));
                        assert_eq!(
                            found,
                            ids_of(slice),
                            "sampled page at {start} of {by} {order}{filter}"
                        );
                        assert_eq!(
                            total as usize,
                            expected.len(),
                            "sampled total of {by}{filter}"
                        );
                    }
                }
            }
        }
    }
}

/// sortBy displayName and name.familyName, which SQLite reads in the order of the columns'
/// indexes (`display_name_lc`, `family_name_lc`), give the evaluator's order of the search
/// index's key for the values where the two could part: an empty string, letters whose case
/// folds outside ASCII, values equal once folded (creation order then decides), digits and
/// numbers, a leading space, and users without the attribute; also after a PATCH removes one value
/// and replaces another. Whole lists and pages of two, both directions (both databases).
#[tokio::test]
async fn sorts_on_columns_follow_the_evaluator_on_edge_values() {
    let app = TestApp::new().await;
    let t = app.scim_tenant("Edges").await;
    // The organisation's admin is a user too.
    let before = all_docs(&app, &t, "Users").await.len();
    let values: &[Option<&str>] = &[
        Some("Zoë"),
        Some(""),
        None,
        Some("zoë"),
        Some("ÉCLAIR"),
        Some("eclair"),
        Some("ZOË"),
        Some("Öberg"),
        Some("oberg"),
        Some(" lead"),
        None,
        Some("42"),
        Some("ß"),
        Some("ss"),
        Some("Ärger"),
    ];
    let mut ids = Vec::new();
    for (n, v) in values.iter().enumerate() {
        // BitaBIZ requires a given and a family name that are not empty, and an email: the
        // family names run through the other values in another order.
        let family = match values[(n * 7) % values.len()] {
            Some("") | None => "Ö",
            Some(f) => f,
        };
        let mut u = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("edge{n}@contoso.com"),
            "name": {"givenName": format!("G{n}"), "familyName": family},
            "emails": [{"value": format!("edge{n}@contoso.com"), "type": "work"}],
        });
        if let Some(v) = v {
            u["displayName"] = json!(v);
        }
        let r = app.scim("POST", &t, "/Users", Some(u)).await;
        ids.push(
            ok_json(&r, axum::http::StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // A number is taken as its text.
    let r = app
        .scim(
            "POST",
            &t,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "edge.number@contoso.com",
                "displayName": 7,
                "name": {"givenName": "G", "familyName": 41},
                "emails": [{"value": "edge.number@contoso.com", "type": "work"}],
            })),
        )
        .await;
    ok_json(&r, axum::http::StatusCode::CREATED);
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    for (id, ops) in [
        (&ids[0], json!([{"op": "remove", "path": "displayName"}])),
        (
            &ids[3],
            json!([{"op": "replace", "path": "name.familyName", "value": "Aaron"}]),
        ),
        (
            &ids[2],
            json!([{"op": "add", "path": "displayName", "value": "OBERG"}]),
        ),
    ] {
        let r = app
            .scim("PATCH", &t, &format!("/Users/{id}"), Some(patch(ops)))
            .await;
        assert!(r.status.is_success(), "{}: {}", r.status, r.body);
    }
    let users = all_docs(&app, &t, "Users").await;
    assert_eq!(users.len(), before + values.len() + 1);
    for by in ["displayName", "name.familyName"] {
        for descending in [false, true] {
            let (expected, order) = evaluator_order(&users, by, descending);
            let query = format!("count=100&sortBy={by}&sortOrder={order}");
            assert_eq!(
                listed_ids(&app, &t, &query).await,
                ids_of(&expected),
                "sortBy {by} {order}"
            );
            for start in (1..=expected.len()).step_by(2) {
                let query = format!("startIndex={start}&count=2&sortBy={by}&sortOrder={order}");
                let slice = &expected[start - 1..(start + 1).min(expected.len())];
                assert_eq!(
                    listed_ids(&app, &t, &query).await,
                    ids_of(slice),
                    "page at {start} of {by} {order}"
                );
            }
        }
    }
}
