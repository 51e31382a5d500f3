//! Two `bitabiz` processes on one PostgreSQL database, as behind a load balancer: they start
//! together (migrations run once, exactly one of them issues the first-run setup code, which
//! works on the other), a session made on one works on the other, token rotation and
//! revocation on one are seen by the other at once, concurrent SCIM creates through both
//! never duplicate a user, and each background job's lease has one holder, taken over by the
//! other instance when the holder is killed. Runs when TEST_DATABASE_URL points at PostgreSQL
//! (as in .ci/test); on SQLite alone there is nothing to share, and the test says so.
//!
//! The instances listen on loopback, so `--require-setup-code` asks for the setup code as a
//! public address would.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PUBLIC: &str = "http://bitabiz.test";

struct Proc(Child, SocketAddr, std::path::PathBuf);

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

/// The setup page's form, with the given setup code.
async fn create_organisation(addr: SocketAddr, code: &str) -> Reply {
    server_fn(
        addr,
        "create_organisation",
        &[
            ("org_name", "Contoso"),
            ("admin_name", "Ada"),
            ("email", "ada@contoso.example"),
            ("password", "correct horse battery staple"),
            ("confirm", "correct horse battery staple"),
            ("setup_code", code),
        ],
        None,
    )
    .await
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

/// Background-job lease of the test's instances: short, so a takeover is quick.
const LEASE: Duration = Duration::from_secs(3);
const JOBS: [&str; 2] = ["provisioning_log_prune", "sessions_prune"];

/// An instance whose log (warnings and errors) goes to a file in `logs`.
fn spawn(url: &str, logs: &std::path::Path, name: &str) -> Proc {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = logs.join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args(["serve", "--addr", &addr.to_string(), "--public-url", PUBLIC])
        .args(["--require-setup-code", "--job-lease", "3s"])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc(child, addr, log)
}

fn log_of(p: &Proc) -> String {
    std::fs::read_to_string(&p.2).unwrap()
}

/// The setup code an instance printed, if it issued one.
fn setup_code_in(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("first-run setup code (needed on the setup page"))?;
    line.rsplit(' ').next().map(|c| c.trim().to_string())
}

/// `bitabiz_job_lease_held` per job, from the instance's /metrics.
async fn leases_held(addr: SocketAddr) -> Vec<(String, u8)> {
    let r = http(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .filter_map(|l| l.strip_prefix("bitabiz_job_lease_held{job=\""))
        .filter_map(|l| {
            let (job, value) = l.split_once("\"} ")?;
            Some((job.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// For each job, which of the instances hold its lease now.
async fn holders(instances: &[&Proc]) -> Vec<(&'static str, Vec<usize>)> {
    let mut seen = Vec::new();
    for p in instances {
        seen.push(leases_held(p.1).await);
    }
    JOBS.iter()
        .map(|job| {
            let who = seen
                .iter()
                .enumerate()
                .filter(|(_, held)| held.iter().any(|(j, v)| j == job && *v == 1))
                .map(|(i, _)| i)
                .collect();
            (*job, who)
        })
        .collect()
}

/// Polls until every job has exactly one holder among `instances`; never two at once.
async fn one_holder_each(instances: &[&Proc], within: Duration) -> Vec<(&'static str, usize)> {
    let deadline = Instant::now() + within;
    loop {
        let now = holders(instances).await;
        for (job, who) in &now {
            assert!(
                who.len() <= 1,
                "{job} held by several instances at once: {who:?}"
            );
        }
        if now.iter().all(|(_, who)| who.len() == 1) {
            return now.into_iter().map(|(job, who)| (job, who[0])).collect();
        }
        assert!(
            Instant::now() < deadline,
            "not every job found a holder within {within:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let logs = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (spawn(&url, logs.path(), "a"), spawn(&url, logs.path(), "b"));
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

    // Exactly one of them issued a setup code; the other says one was issued already.
    let (log_a, log_b) = (log_of(&a), log_of(&b));
    let (code_a, code_b) = (setup_code_in(&log_a), setup_code_in(&log_b));
    let (code, other) = match (code_a, code_b) {
        (Some(c), None) => (c, &b),
        (None, Some(c)) => (c, &a),
        (x, y) => panic!("not exactly one setup code: {x:?} / {y:?}\n{log_a}\n{log_b}"),
    };
    assert!(
        log_of(other).contains("already issued by another instance or an earlier start"),
        "{}",
        log_of(other)
    );
    // The code works on the other instance's setup page.
    let r = create_organisation(other.1, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Each background job has one holder.
    let first = one_holder_each(&[&a, &b], LEASE * 3).await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT job, holder FROM job_leases")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), JOBS.len(), "{rows:?}");

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

    // Still one holder per job (renewed all along, never shared).
    let now = one_holder_each(&[&a, &b], LEASE * 3).await;
    if now != first {
        eprintln!("a job changed hands while both ran (a renewal stalled): {first:?} → {now:?}");
    }
    // Kill (no clean release) the holder of the sessions job: the survivor takes every job
    // within the lease expiry (plus one renewal round of the survivor).
    let (victim, survivor) = if now.iter().any(|(j, i)| *j == "sessions_prune" && *i == 0) {
        (a, b)
    } else {
        (b, a)
    };
    drop(victim);
    let killed = Instant::now();
    let took = loop {
        let held = leases_held(survivor.1).await;
        if JOBS
            .iter()
            .all(|job| held.iter().any(|(j, v)| j == job && *v == 1))
        {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < LEASE * 4,
            "the survivor did not take over: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("the surviving instance took every job lease {took:?} after the holder was killed");
    assert!(
        took <= LEASE + LEASE / 3 + Duration::from_secs(2),
        "takeover took {took:?} (lease {LEASE:?})"
    );

    drop(survivor);
    pool.close().await;
    if let server::store::Db::Postgres(p) = &admin {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(p)
        .await;
    }
}

/// Runs `bitabiz ARGS` on `url`; (success, stdout, stderr).
fn cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bitabiz"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// On one SQLite database (no PostgreSQL needed): a restart does not issue a second code while
/// the first is live, and `bitabiz setup-code` replaces the live code with a new one.
#[tokio::test]
async fn a_restart_keeps_the_live_setup_code_and_the_cli_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/setup.db", dir.path().display());
    let mut first = spawn(&url, dir.path(), "first");
    healthy(&mut first).await;
    let issued = setup_code_in(&log_of(&first)).expect("the first start issues a code");
    drop(first);

    let mut second = spawn(&url, dir.path(), "second");
    healthy(&mut second).await;
    let log = log_of(&second);
    assert_eq!(setup_code_in(&log), None, "no second live code: {log}");
    assert!(log.contains("run `bitabiz setup-code`"), "{log}");

    let (ok, stdout, stderr) = cli(&url, &["setup-code"]);
    assert!(ok, "{stderr}");
    let fresh = stdout.trim().to_string();
    assert_eq!(fresh.len(), 16, "{stdout}");
    assert_ne!(fresh, issued);
    assert!(stderr.contains("valid until"), "{stderr}");

    let setup = |code: String| {
        let addr = second.1;
        async move { create_organisation(addr, &code).await }
    };
    let r = setup(issued).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("replaced by a newer one"), "{}", r.body);
    let r = setup(fresh).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (ok, _, stderr) = cli(&url, &["setup-code"]);
    assert!(!ok, "no setup code once set up");
    assert!(stderr.contains("already set up"), "{stderr}");
}
