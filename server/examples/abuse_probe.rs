//! The abuse probe: attacks a real `bitabiz` process the way an unauthenticated stranger can,
//! and prints what happened. It asserts nothing (the limits each have their own tests); it
//! gives the figures for the operations notes, from a run anyone can repeat:
//!
//!     cargo run -p server --release --example abuse_probe -- --bin target/release/bitabiz
//!
//! Options: `--bin PATH` (default `target/release/bitabiz`), `--sign-ins N` (200), `--idle N`
//! (5000), `--server-nofile N` (the server's open-file limit, default 1024, the usual default;
//! 0 keeps the probe's own), `--slowloris-limit SECS` (120).
//!
//! It starts the binary on a temporary SQLite database with its default limits, creates an
//! organisation, enables provisioning and issues a SCIM token through the operator CLI, then:
//!
//! 1. sends N concurrent sign-ins with unknown emails, each from its own client address
//!    (loopback is the server's `--trusted-proxy`, and each request carries its own
//!    `X-Forwarded-For`, so the per-address throttle does not hide the hashing), and samples
//!    the server's RSS (`/proc/PID/status`: VmRSS every 10 ms, and VmHWM, the kernel's peak);
//! 2. trickles one header byte per second on one connection and times until the server drops it;
//! 3. opens N idle connections and polls `/healthz` on fresh connections meanwhile;
//! 4. times SCIM POSTs of about 1 MB: a valid user (3 × 256 values of 1,300 characters), as
//!    many phone numbers as fit in 1 MB, a 1,000,000-character string, and a body over the
//!    1 MiB limit.
//!
//! The probe raises its own open-file limit (with util-linux `prlimit`, up to the hard limit)
//! when N idle sockets need it, and prints the limits that applied.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    bin: PathBuf,
    sign_ins: usize,
    idle: usize,
    server_nofile: u64,
    slowloris_limit: Duration,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        bin: PathBuf::from("target/release/bitabiz"),
        sign_ins: 200,
        idle: 5000,
        server_nofile: 1024,
        slowloris_limit: Duration::from_secs(120),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(value()?),
            "--sign-ins" => o.sign_ins = value()?.parse()?,
            "--idle" => o.idle = value()?.parse()?,
            "--server-nofile" => o.server_nofile = value()?.parse()?,
            "--slowloris-limit" => o.slowloris_limit = Duration::from_secs(value()?.parse()?),
            other => anyhow::bail!("unknown option {other} (see the example's header)"),
        }
    }
    anyhow::ensure!(
        o.bin.exists(),
        "{} does not exist: build it first, or pass --bin",
        o.bin.display()
    );
    Ok(o)
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_cli(bin: &Path, url: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", url)
        .env("BITABIZ_ADMIN_PASSWORD", "correct horse battery staple")
        .env("RUST_LOG", "warn")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "bitabiz {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (soft, hard) "Max open files" of a process.
fn nofile(pid: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line["Max open files".len()..].split_whitespace();
    Some((f.next()?.to_string(), f.next()?.to_string()))
}

fn set_nofile(pid: u32, soft: u64, hard: &str) -> bool {
    Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={soft}:{hard}"),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// (VmRSS, VmHWM) of a process in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One request on a fresh connection: (status, elapsed, body). Status 0 when
/// the connection failed or closed without an answer.
async fn exchange(addr: SocketAddr, raw: &[u8], limit: Duration) -> (u16, Duration, String) {
    let started = Instant::now();
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(raw).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    };
    let (status, body) = tokio::time::timeout(limit, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    (status, started.elapsed(), body)
}

async fn request(addr: SocketAddr, raw: &[u8], limit: Duration) -> (u16, Duration) {
    let (status, took, _) = exchange(addr, raw, limit).await;
    (status, took)
}

fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn counts(statuses: &[u16]) -> String {
    let mut by: std::collections::BTreeMap<u16, usize> = Default::default();
    for s in statuses {
        *by.entry(*s).or_default() += 1;
    }
    by.iter()
        .map(|(s, n)| {
            if *s == 0 {
                format!("{n} × no answer")
            } else {
                format!("{n} × {s}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn start(o: &Options, dir: &Path) -> anyhow::Result<(Server, String, String)> {
    let url = format!("sqlite://{}/probe.db", dir.display());
    let slug = run_cli(
        &o.bin,
        &url,
        &[
            "tenant",
            "create",
            "--name",
            "Probe Org",
            "--admin-email",
            "admin@probe.example",
        ],
    )?
    .trim()
    .to_string();
    run_cli(&o.bin, &url, &["provisioning", "enable", "--tenant", &slug])?;
    let token = run_cli(
        &o.bin,
        &url,
        &["provisioning", "rotate-token", "--tenant", &slug],
    )?
    .lines()
    .find_map(|l| l.strip_prefix("SCIM_TOKEN="))
    .ok_or_else(|| anyhow::anyhow!("rotate-token printed no SCIM_TOKEN"))?
    .to_string();

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new(&o.bin)
        .args(["serve", "--addr", &addr.to_string()])
        .args(["--public-url", &format!("http://{addr}")])
        .args(["--trusted-proxy", "127.0.0.1"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()?;
    let server = Server { child, addr };
    if o.server_nofile > 0 {
        let hard = nofile(&server.child.id().to_string())
            .map(|(_, h)| h)
            .unwrap_or_else(|| o.server_nofile.to_string());
        if !set_nofile(server.child.id(), o.server_nofile, &hard) {
            eprintln!("(could not set the server's open-file limit; it keeps the probe's)");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = request(
            addr,
            b"GET /healthz HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        if status == 200 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((server, slug, token))
}

/// Phase 1: N concurrent sign-ins, each from its own address; the RSS while they run.
async fn sign_ins(server: &Server, n: usize) {
    let pid = server.child.id();
    let (rss0, _) = memory(pid).unwrap_or_default();
    let origin = format!("http://{}", server.addr);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((rss, _)) = memory(pid) {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let body = format!("email=nobody{i}%40probe.example&password=not+the+password+{i}");
        let forwarded = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let raw = post(
            "/api/sign_in",
            &[
                ("origin", &origin),
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
                ("x-forwarded-for", &forwarded),
            ],
            body.as_bytes(),
        );
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            exchange(addr, &raw, Duration::from_secs(120)).await
        }));
    }
    let mut statuses = Vec::new();
    let mut samples: std::collections::BTreeMap<u16, String> = Default::default();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        if let Ok((s, d, body)) = t.await {
            statuses.push(s);
            samples.entry(s).or_insert(body);
            slowest = slowest.max(d);
        }
    }
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak_sampled = sampler.await.unwrap_or(0);
    let (rss1, hwm) = memory(pid).unwrap_or_default();
    println!("1. {n} concurrent sign-ins (unknown emails, {n} client addresses)");
    println!(
        "   answers: {} in {took:.2?} (slowest {slowest:.2?})",
        counts(&statuses)
    );
    for (status, body) in samples {
        let body: String = body.trim().chars().take(160).collect();
        println!("   {status}: {body}");
    }
    println!(
        "   server RSS: {} before, peak {} (sampled every 10 ms), VmHWM {} (the kernel's peak since start), {} after",
        mib(rss0),
        mib(peak_sampled),
        mib(hwm),
        mib(rss1)
    );
}

/// Phase 2: one header byte per second; how long until the server drops the connection.
async fn slowloris(addr: SocketAddr, limit: Duration) {
    let outcome = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: probe\r\nx-slow: ")
            .await?;
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let mut answer = String::new();
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return Ok::<_, std::io::Error>(Some((started.elapsed(), answer))),
                    Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if s.write_all(b"x").await.is_err() {
                        return Ok(Some((started.elapsed(), answer)));
                    }
                    if started.elapsed() > limit {
                        return Ok(None);
                    }
                }
            }
        }
    };
    println!("2. slowloris: one header byte per second on one connection");
    match outcome.await {
        Ok(Some((lived, answer))) => {
            let first = answer.lines().next().unwrap_or("").to_string();
            let said = if first.is_empty() {
                "closed without an answer".to_string()
            } else {
                format!("answered `{first}`, then closed")
            };
            println!("   dropped by the server after {lived:.2?} ({said})");
        }
        Ok(None) => println!("   still open after {limit:?}: not dropped"),
        Err(e) => println!("   could not run: {e}"),
    }
}

/// Phase 3: N idle connections held open; /healthz polled on fresh connections meanwhile.
async fn idle_connections(addr: SocketAddr, n: usize) {
    println!("3. {n} idle connections (opened as fast as possible, then held without a byte sent)");
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        match TcpStream::connect(addr).await {
            Ok(s) => held.push(s),
            Err(_) => failed += 1,
        }
    }
    println!(
        "   {} connected in {:.2?}{}",
        held.len(),
        started.elapsed(),
        if failed > 0 {
            format!(" ({failed} could not connect: the probe's own limit?)")
        } else {
            String::new()
        }
    );
    // /healthz every 250 ms for 15 s (past the default header-read timeout of 10 s).
    let mut polls = Vec::new();
    let poll_start = Instant::now();
    while poll_start.elapsed() < Duration::from_secs(15) {
        let (status, took) = request(
            addr,
            b"GET /healthz HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
        polls.push((poll_start.elapsed(), status, took));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ok: Vec<_> = polls.iter().filter(|p| p.1 == 200).collect();
    let statuses: Vec<u16> = polls.iter().map(|p| p.1).collect();
    println!("   /healthz while they were held: {}", counts(&statuses));
    // The same as runs in time: "503 × 13 at 0.0–3.5 s".
    let mut runs: Vec<(u16, usize, Duration, Duration)> = Vec::new();
    for (at, status, _) in &polls {
        match runs.last_mut() {
            Some(r) if r.0 == *status => {
                r.1 += 1;
                r.3 = *at;
            }
            _ => runs.push((*status, 1, *at, *at)),
        }
    }
    let timeline: Vec<String> = runs
        .iter()
        .map(|(s, n, a, b)| {
            let s = if *s == 0 {
                "none".to_string()
            } else {
                s.to_string()
            };
            format!(
                "{s} × {n} at {:.1}–{:.1} s",
                a.as_secs_f64(),
                b.as_secs_f64()
            )
        })
        .collect();
    println!("   in time order: {}", timeline.join(", "));
    if let Some(first) = ok.first() {
        let slowest = ok.iter().map(|p| p.2).max().unwrap_or_default();
        println!(
            "   first 200 at {:.2?} after the last connection opened; slowest 200 took {slowest:.2?}",
            first.0
        );
    } else {
        println!("   /healthz never answered 200 within 15 s");
    }
    // Which of the held connections the server answered or closed.
    let mut refused = 0;
    let mut closed = 0;
    let mut open = 0;
    for s in &mut held {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 && buf.starts_with(b"HTTP/1.1 503") => refused += 1,
            Ok(_) => closed += 1, // end of stream or reset
            Err(_) => open += 1,
        }
    }
    println!(
        "   after {:.1?}: {refused} answered 503 (connection cap), {closed} closed by the server, {open} still open",
        started.elapsed()
    );
}

/// Phase 4: SCIM POSTs of about 1 MB.
async fn big_bodies(addr: SocketAddr, slug: &str, token: &str) {
    println!("4. SCIM POST /Users with bodies of about 1 MB");
    let path = format!("/scim/v2/{slug}/Users");
    let auth = format!("Bearer {token}");
    let user = |extra: serde_json::Value| {
        let mut u = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "big@probe.example",
            "active": true,
        });
        if let (Some(u), Some(extra)) = (u.as_object_mut(), extra.as_object()) {
            u.extend(extra.clone());
        }
        u.to_string()
    };
    // As many short phone numbers as fit in 1 MB (far over --scim-max-values).
    let phones: Vec<_> = (0..100_000)
        .map(|i| serde_json::json!({"value": format!("+{i}")}))
        .collect();
    let mut many = Vec::new();
    let mut size = 0;
    for p in phones {
        size += p.to_string().len() + 1;
        if size > 1_000_000 {
            break;
        }
        many.push(p);
    }
    let count = many.len();
    // A valid user of about 1 MB: the most values (256) of the longest strings (2,048) allow.
    let long = |c: char| c.to_string().repeat(1_300);
    let valid = |attr: &str, c: char| -> Vec<serde_json::Value> {
        (0..256)
            .map(|i| serde_json::json!({"value": format!("{i}{}", long(c)), "type": attr}))
            .collect()
    };
    let cases = [
        (
            "a valid user with 3 × 256 values of 1,300 characters".to_string(),
            user(serde_json::json!({
                "name": {"givenName": "Big", "familyName": "Body"},
                "emails": [{"value": "big@probe.example", "type": "work", "primary": true}],
                "phoneNumbers": valid("work", 'p'),
                "ims": valid("xmpp", 'i'),
                "entitlements": valid("e", 'e'),
            })),
        ),
        (
            format!("{count} phone numbers"),
            user(serde_json::json!({"phoneNumbers": many})),
        ),
        (
            "a 1,000,000-character displayName".to_string(),
            user(serde_json::json!({"displayName": "x".repeat(1_000_000)})),
        ),
        (
            "over the 1 MiB body limit".to_string(),
            user(serde_json::json!({"displayName": "x".repeat(1_100_000)})),
        ),
    ];
    for (what, body) in cases {
        let raw = post(
            &path,
            &[
                ("authorization", &auth),
                ("content-type", "application/scim+json"),
            ],
            body.as_bytes(),
        );
        let (status, took, answer) = exchange(addr, &raw, Duration::from_secs(120)).await;
        let detail = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["detail"].as_str().map(|d| format!(": {d}")))
            .unwrap_or_default();
        println!(
            "   {what} ({:.2} MB): {} in {took:.2?}{detail}",
            body.len() as f64 / 1e6,
            if status == 0 {
                "no answer".to_string()
            } else {
                status.to_string()
            }
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let me = std::process::id();
    let want = o.idle as u64 + 256;
    if let Some((soft, hard)) = nofile("self")
        && soft.parse::<u64>().is_ok_and(|s| s < want)
    {
        let target = hard.parse::<u64>().map_or(want, |h| h.min(want));
        set_nofile(me, target, &hard);
    }
    let dir = tempfile::tempdir()?;
    let (server, slug, token) = start(&o, dir.path()).await?;
    let limits = |pid: &str| {
        nofile(pid)
            .map(|(s, h)| format!("{s} (hard {h})"))
            .unwrap_or_else(|| "unknown".into())
    };
    println!(
        "bitabiz {} (pid {}) on {} with its default limits; loopback is its trusted proxy",
        o.bin.display(),
        server.child.id(),
        server.addr
    );
    println!(
        "open-file limit: server {}, probe {}",
        limits(&server.child.id().to_string()),
        limits("self")
    );
    sign_ins(&server, o.sign_ins).await;
    slowloris(server.addr, o.slowloris_limit).await;
    idle_connections(server.addr, o.idle).await;
    big_bodies(server.addr, &slug, &token).await;
    let (rss, hwm) = memory(server.child.id()).unwrap_or_default();
    println!(
        "server RSS at the end: {}, VmHWM {} over the whole run",
        mib(rss),
        mib(hwm)
    );
    drop(server);
    Ok(())
}
