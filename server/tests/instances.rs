//! Two `bitabiz` processes on one PostgreSQL database, as behind a load balancer: they start
//! together (migrations run once), a session made on one works on the other, token rotation and
//! revocation on one are seen by the other at once, and concurrent SCIM creates through both
//! never duplicate a user. Runs when TEST_DATABASE_URL points at PostgreSQL (as in .ci/test);
//! on SQLite alone there is nothing to share, and the test says so.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PUBLIC: &str = "http://bitabiz.test";

struct Proc(Child, SocketAddr);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn cookie(&self) -> Option<String> {
        self.head
            .lines()
            .filter(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie: bbz_session=")
            })
            .map(|l| {
                l["set-cookie: bbz_session=".len()..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .find(|v| !v.is_empty())
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nhost: bitabiz.test\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, raw_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_string()
    };
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// A console server function call as the page makes it.
async fn server_fn(
    addr: SocketAddr,
    name: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut h = vec![
        ("origin", PUBLIC.to_string()),
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept", "application/json".to_string()),
    ];
    if let Some(c) = cookie {
        h.push(("cookie", format!("bbz_session={c}")));
    }
    http(addr, "POST", &format!("/api/{name}"), &h, &body).await
}

async fn scim(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let h = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/scim+json".to_string()),
    ];
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http(addr, method, &format!("/scim/v2/contoso{path}"), &h, &body).await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(url: &str) -> Proc {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args(["serve", "--addr", &addr.to_string(), "--public-url", PUBLIC])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child, addr)
}

async fn healthy(p: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            panic!("an instance exited at start: {status:?}");
        }
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(p.1)).await
        {
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
            if buf.starts_with(b"HTTP/1.1 200") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "an instance did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn user(name: &str) -> serde_json::Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "externalId": name, "active": true, "displayName": name,
        "name": {"givenName": "G", "familyName": "F"},
        "emails": [{"primary": true, "type": "work", "value": name}],
    })
}

#[tokio::test]
async fn two_instances_share_one_postgresql() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: the two-instance test needs PostgreSQL; skipped");
        return;
    };
    if !admin_url.starts_with("postgres") {
        eprintln!("TEST_DATABASE_URL is not PostgreSQL; skipped");
        return;
    }
    // A fresh, empty database for the pair.
    let name = format!("two_{}", uuid::Uuid::new_v4().simple());
    let admin = server::store::Db::open(&admin_url).await.unwrap();
    if let server::store::Db::Postgres(p) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(p)
            .await
            .unwrap();
    }
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    let url = format!("{base}/{name}");

    // Both start at once on the empty database: the migrations must run exactly once.
    let (mut a, mut b) = (spawn(&url), spawn(&url));
    healthy(&mut a).await;
    healthy(&mut b).await;
    let db = server::store::Db::open(&url).await.unwrap();
    let server::store::Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let (applied, distinct): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(applied, distinct, "no migration recorded twice");
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../migrations/postgres"
    ))
    .unwrap()
    .count() as i64;
    assert_eq!(applied, files);

    let out = Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args([
            "tenant",
            "create",
            "--name",
            "Contoso",
            "--admin-email",
            "ada@contoso.example",
        ])
        .env("DATABASE_URL", &url)
        .env("BITABIZ_ADMIN_PASSWORD", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Sign in on A, use the session on B.
    let r = server_fn(
        a.1,
        "sign_in",
        &[
            ("email", "ada@contoso.example"),
            ("password", "correct horse battery staple"),
        ],
        None,
    )
    .await;
    let cookie = r
        .cookie()
        .unwrap_or_else(|| panic!("{} {}", r.status, r.body));
    let home = server_fn(b.1, "load_home", &[], Some(&cookie)).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert_eq!(home.json()["tenant_name"], "Contoso");

    // Provisioning enabled and a token issued on A work on B.
    assert_eq!(
        server_fn(
            a.1,
            "set_provisioning",
            &[("enabled", "true")],
            Some(&cookie)
        )
        .await
        .status,
        200
    );
    let t1 = server_fn(a.1, "issue_token", &[], Some(&cookie))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scim(b.1, "GET", "/Users", &t1, None).await.status, 200);
    // Rotated on B: the new token works on A; revoking the old one on A ends it on B.
    let t2 = server_fn(b.1, "issue_token", &[], Some(&cookie))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scim(a.1, "GET", "/Users", &t2, None).await.status, 200);
    let view = server_fn(a.1, "load_integration", &[], Some(&cookie))
        .await
        .json();
    let old = view["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["state"] != "Active")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(
        server_fn(a.1, "revoke_token", &[("token_id", &old)], Some(&cookie))
            .await
            .status,
        200
    );
    // B keeps a gate answer for at most half a second (`store::gate_cache`): the revocation
    // must reach it within 1 s.
    let revoked = Instant::now();
    loop {
        let status = scim(b.1, "GET", "/Users", &t1, None).await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "B still accepts the revoked token 1 s after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(scim(b.1, "GET", "/Users", &t2, None).await.status, 200);

    // The same ten users created twice each, concurrently, alternating instances.
    let mut tasks = Vec::new();
    for round in 0..2 {
        for i in 0..10 {
            let target = if (i + round) % 2 == 0 { a.1 } else { b.1 };
            let token = t2.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("user{i}@contoso.example");
                (
                    i,
                    scim(target, "POST", "/Users", &token, Some(user(&name)))
                        .await
                        .status,
                )
            }));
        }
    }
    let mut by_user = vec![Vec::new(); 10];
    for t in tasks {
        let (i, status) = t.await.unwrap();
        by_user[i].push(status);
    }
    for (i, mut statuses) in by_user.into_iter().enumerate() {
        statuses.sort();
        assert_eq!(
            statuses,
            vec![201, 409],
            "user{i}: one create, one uniqueness conflict"
        );
    }
    // (The list also holds the organisation's local admin, whom SCIM sees too.)
    let list = scim(a.1, "GET", "/Users?count=100", &t2, None).await.json();
    let created = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["userName"]
                .as_str()
                .is_some_and(|n| n.starts_with("user"))
        })
        .count();
    assert_eq!(created, 10, "no duplicate, no loss");

    drop((a, b));
    pool.close().await;
    if let server::store::Db::Postgres(p) = &admin {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(p)
        .await;
    }
}
