//! The listening socket's limits, on a real `bitabiz` process and real sockets: slow headers,
//! idle keep-alive connections, the connection caps, and SIGTERM with a bounded drain.
//! No sleeps to wait for start-up: /healthz is polled. Timing bounds are generous multiples of
//! the configured timeouts.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(args: &[&str]) -> Server {
    start_with_env(args, &[]).await
}

/// [`start`], with `MALLOC_ARENA_MAX` set to `arenas` in the server's environment, or unset.
async fn start_with_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bitabiz"));
    for (var, value) in env {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    let child = cmd
        .arg("serve")
        .args(["--addr", &addr.to_string()])
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/edges.db", dir.path().display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = get_status(addr, "/healthz").await
            && status == 200
        {
            return server;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `GET path` on a fresh connection; the response's status code.
async fn get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    status_of(&buf).ok_or_else(|| std::io::Error::other("no HTTP status"))
}

fn status_of(buf: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Waits until the server closes `s` (read returns 0 or an error); how long that took.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_slowloris_connection_is_dropped_at_the_header_read_timeout() {
    let server = start(&["--header-read-timeout", "1s", "--idle-timeout", "30s"]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms: always busy, never finished.
    let mut closed = false;
    for _ in 0..100 {
        if s.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        // Any answer here (end of stream, an error, or a 408 before the close) means dropped.
        if tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf))
            .await
            .is_ok()
        {
            closed = true;
            break;
        }
    }
    let lived = started.elapsed();
    assert!(closed, "a trickling header was never cut off");
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(4),
        "dropped after {lived:?} (timeout 1 s)"
    );
    assert_eq!(get_status(server.addr, "/healthz").await.unwrap(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let server = start(&["--header-read-timeout", "30s", "--idle-timeout", "1s"]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&buf[..n]), Some(200));
    let closed = until_closed(&mut s, Duration::from_secs(10)).await;
    let closed = closed.expect("the idle connection stayed open");
    assert!(
        closed < Duration::from_secs(4),
        "closed after {closed:?} (idle timeout 1 s)"
    );
    // A connection that never sends anything is idle too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let closed = until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(
        closed.is_some_and(|d| d < Duration::from_secs(4)),
        "{closed:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_caps_are_refused_at_once_and_health_recovers() {
    let server = start(&[
        "--max-connections",
        "6",
        "--max-connections-per-address",
        "4",
        "--idle-timeout",
        "60s",
        "--header-read-timeout",
        "60s",
    ])
    .await;
    // Four kept-alive connections, each proven accepted by a request answered on it (a
    // start-up probe may still be counted for a moment: retry then).
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.len() < 4 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap_or(0);
        if status_of(&buf[..n]) == Some(200) {
            held.push(s);
        } else {
            assert!(Instant::now() < deadline, "could not open four connections");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The fifth from the same address: answered 503 and closed, not left hanging.
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf))
        .await
        .expect("refused connections are closed at once")
        .unwrap();
    assert_eq!(
        status_of(&buf),
        Some(503),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(get_status(server.addr, "/healthz").await.unwrap(), 503);
    // Freeing one slot lets the next request through.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while get_status(server.addr, "/healthz").await.ok() != Some(200) {
        assert!(Instant::now() < deadline, "health never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_exits() {
    let mut server = start(&[
        "--shutdown-grace",
        "10s",
        "--public-url",
        "http://bitabiz.test",
    ])
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let body = "x=1";
    s.write_all(
        format!(
            "POST /api/load_setup_info HTTP/1.1\r\nhost: x\r\norigin: http://bitabiz.test\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The request is in flight (its body half sent) when SIGTERM arrives.
    s.write_all(&body.as_bytes()[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigterm(&server.child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );
    // New connections are no longer accepted.
    assert!(get_status(server.addr, "/healthz").await.is_err());
    s.write_all(&body.as_bytes()[1..]).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status_of(&buf),
        Some(200),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sigterm_drain_is_bounded_by_the_grace_period() {
    let mut server = start(&[
        "--shutdown-grace",
        "1s",
        "--header-read-timeout",
        "60s",
        "--public-url",
        "http://bitabiz.test",
    ])
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // A request whose body never finishes.
    s.write_all(
        b"POST /api/load_setup_info HTTP/1.1\r\nhost: x\r\norigin: http://bitabiz.test\r\n\
          content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nx",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    sigterm(&server.child);
    let status = wait_exit(&mut server.child, Duration::from_secs(10))
        .expect("the stuck request did not hold the process past the grace period");
    assert!(status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The environment the process `pid` runs with now (after any `exec`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test]
async fn the_server_tunes_its_allocators_unless_its_operator_chose() {
    use server::process::{ALLOCATOR_ENV, ARENA_VAR, PURGE_VAR};
    assert_eq!(ALLOCATOR_ENV[0], (ARENA_VAR, "2"), "two glibc arenas");
    let unset = [(ARENA_VAR, None), (PURGE_VAR, None)];
    let server = start_with_env(&[], &unset).await;
    let env = environment_of(server.child.id());
    for (var, value) in ALLOCATOR_ENV {
        assert!(
            env.contains(&format!("{var}={value}")),
            "the process started again, as itself, with {var}: {env:?}"
        );
    }
    assert_eq!(get_status(server.addr, "/healthz").await.unwrap(), 200);
    drop(server);

    // An operator's values are kept, each on its own.
    let server = start_with_env(&[], &[(ARENA_VAR, Some("4")), (PURGE_VAR, None)]).await;
    let env = environment_of(server.child.id());
    assert!(env.contains(&"MALLOC_ARENA_MAX=4".to_string()), "{env:?}");
    assert!(!env.contains(&"MALLOC_ARENA_MAX=2".to_string()), "{env:?}");
    assert!(
        env.contains(&format!("{PURGE_VAR}={}", ALLOCATOR_ENV[1].1)),
        "{env:?}"
    );
    drop(server);
    let server = start_with_env(&[], &[(ARENA_VAR, None), (PURGE_VAR, Some("10"))]).await;
    let env = environment_of(server.child.id());
    assert!(env.contains(&"MALLOC_ARENA_MAX=2".to_string()), "{env:?}");
    assert!(env.contains(&format!("{PURGE_VAR}=10")), "{env:?}");
}
