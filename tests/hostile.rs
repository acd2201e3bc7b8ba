//! Hostile clients cannot stop the pool from supervising (loopback only,
//! bounded in count and time).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helper::supervisor::{Options, Supervisor};
use crate::helper::wait_for;

const LONG: Duration = Duration::from_secs(30);

/// The JSON log's `fields` of `message` for `worker`.
fn logged(sup: &Supervisor, message: &str, worker: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&sup.process.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("fields").cloned())
        .filter(|f| f["message"] == message && f["worker"] == worker)
        .collect()
}

fn running_pids(sup: &Supervisor, worker: &str) -> Vec<u64> {
    logged(sup, "running", worker)
        .iter()
        .filter_map(|f| f["pid"].as_u64())
        .collect()
}

/// Whether the server closed `s` (EOF) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before the close is fine: keep reading.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_sockets_and_half_sent_heads_do_not_keep_a_killed_worker_down() {
    // The hard limit too, so raising the soft one cannot help: only the
    // API's descriptor reserve keeps room for the spawn.
    let sup = Supervisor::start(Options {
        nofile: Some((256, 256)),
        api_toml: "header_timeout = \"60s\"\n".into(),
        extra_toml: "[limits]\nopen_files = 128\n".into(),
        ..Options::default()
    });
    let first = wait_for("A running", LONG, || {
        running_pids(&sup, "A").first().copied()
    });
    // 300 connections: more than the descriptors the API may take.
    let mut held = Vec::new();
    for i in 0..300 {
        let Ok(mut s) = TcpStream::connect_timeout(&sup.api, Duration::from_secs(2)) else {
            break;
        };
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        }
        held.push(s);
    }
    assert!(held.len() >= 200, "only {} connections opened", held.len());
    wait_for("the API stops accepting at the reserve", LONG, || {
        std::fs::read_to_string(&sup.process.log)
            .unwrap_or_default()
            .contains("open-files reserve for spawning workers is reached")
            .then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the worker");
    let next = wait_for("A running again, with a new pid", LONG, || {
        running_pids(&sup, "A").into_iter().find(|p| *p != first)
    });
    assert_ne!(next, first);
    let log = std::fs::read_to_string(&sup.process.log).unwrap_or_default();
    assert!(!log.contains("spawn_failed"), "a spawn failed:\n{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    // The clients go away: the API serves again.
    drop(held);
    wait_for("the API answers again", LONG, || {
        sup.get("/api/workers").filter(|(s, _)| *s == 200)
    });
}

/// Bytes waiting in a pipe (`FIONREAD`).
fn pipe_bytes(fd: std::os::fd::RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

#[test]
fn a_stderr_nobody_reads_holds_neither_restarts_nor_the_exit() {
    use std::os::fd::AsRawFd as _;
    use std::time::Instant;

    // Two workers that write a line every 2 ms, re-logged by the
    // supervisor (100 lines/s each) into a pipe the test never reads.
    let mut sup = Supervisor::start(Options {
        test_mode: Some("*=chatty".into()),
        stderr_piped: true,
        ..Options::default()
    });
    let stderr = sup.process.child.stderr.take().expect("stderr piped");
    let fd = stderr.as_raw_fd();
    // SAFETY: F_GETPIPE_SZ on our own pipe end.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    assert!(
        size > 0,
        "F_GETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let first = sup.running_pid("A", LONG);
    // The pipe is full and stays so: whoever writes the log is blocked.
    let mut last = (0, Instant::now());
    wait_for("stderr full and not moving", LONG, || {
        let n = pipe_bytes(fd);
        if n != last.0 {
            last = (n, Instant::now());
        }
        // A pipe fills by pages: its last page may stay partly empty.
        (n + 4096 >= size as usize && last.1.elapsed() >= Duration::from_millis(300)).then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the worker");
    let next = wait_for("A running again, with a new pid", LONG, || {
        let w = sup.worker("A")?;
        let pid = w["pid"].as_u64()? as u32;
        (w["state"] == "running" && pid != first).then_some(pid)
    });
    assert_ne!(next, first);
    assert_eq!(pipe_bytes(fd), last.0, "nobody read the pipe meanwhile");
    // SIGTERM: the exit does not wait for stderr either.
    let t0 = Instant::now();
    let status = sup.process.sigterm_and_wait(LONG);
    let took = t0.elapsed();
    assert!(status.success(), "exit: {status:?}");
    assert!(
        took < Duration::from_secs(2 + 5),
        "SIGTERM → exit took {took:?} with stderr unread (stop_grace 2 s)"
    );
    wait_for("no worker outlives the supervisor", LONG, || {
        (!crate::helper::pid_alive(next)).then_some(())
    });
    // What did get through is the log, whole lines of it.
    let mut text = String::new();
    let mut stderr = stderr;
    let _ = stderr.read_to_string(&mut text);
    let first_line = text.lines().next().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(first_line).unwrap_or_else(|e| panic!("{e}: {first_line:?}"));
    assert!(v.get("level").is_some(), "{first_line}");
}

#[test]
fn a_half_sent_head_and_an_idle_connection_are_closed_after_header_timeout() {
    let sup = Supervisor::start(Options {
        api_toml: "header_timeout = \"300ms\"\n".into(),
        ..Options::default()
    });
    let mut idle = TcpStream::connect(sup.api).expect("connect");
    let mut half = TcpStream::connect(sup.api).expect("connect");
    half.write_all(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("half a head");
    // Read deadlines far above the timeout: the server closes first.
    assert!(
        closed_within(&mut idle, Duration::from_secs(15)),
        "idle connection left open"
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(15)),
        "half-sent head left open"
    );
    // A keep-alive connection that answered once and then fell silent.
    let mut kept = TcpStream::connect(sup.api).expect("connect");
    kept.write_all(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    assert!(
        closed_within(&mut kept, Duration::from_secs(15)),
        "idle keep-alive left open"
    );
    assert_eq!(sup.get("/api/workers").map(|(s, _)| s), Some(200));
}

#[test]
fn at_max_connections_idle_connections_make_room_for_a_new_client() {
    let sup = Supervisor::start(Options {
        api_toml: "max_connections = 3\nheader_timeout = \"60s\"\n".into(),
        ..Options::default()
    });
    // Three connections that never send a byte fill the cap…
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(sup.api).expect("connect"))
        .collect();
    // …and a fourth client still gets its answer, long before the 60 s
    // header timeout would free a place: an idle one is closed for it.
    let mut waiting = TcpStream::connect(sup.api).expect("connect");
    waiting
        .write_all(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut answer = Vec::new();
    waiting
        .read_to_end(&mut answer)
        .expect("an answer while three idle sockets held the cap");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Only as many as waited: one closed (before the fourth was let in),
    // the other two still open (nothing else waits; their header timeout
    // is a minute away).
    let closed = held
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(500)))
        .filter(|closed| *closed)
        .count();
    assert_eq!(closed, 1, "idle connections closed for one waiting client");
}

#[test]
fn workers_hold_no_api_token_and_only_an_allow_listed_environment() {
    let sup = Supervisor::start(Options {
        env: vec![
            (worldpool::api::TOKEN_ENV.into(), "secret-token-xyz".into()),
            ("SOME_PRIVATE_VAR".into(), "private-value".into()),
        ],
        pool_toml: "env = { EXTRA_FOR_WORKERS = \"yes\" }\n".into(),
        ..Options::default()
    });
    let pid = sup.running_pid("A", LONG);
    let read_env = |pid: u32| {
        let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        raw.split(|b| *b == 0)
            .map(|kv| String::from_utf8_lossy(kv).into_owned())
            .collect::<Vec<_>>()
    };
    let own = read_env(sup.process.child.id());
    assert!(
        own.iter().any(|kv| kv.contains("secret-token-xyz")),
        "the supervisor has it"
    );
    let env = read_env(pid);
    assert!(
        !env.iter().any(|kv| kv.contains("secret-token-xyz")),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|kv| kv.starts_with("SOME_PRIVATE_VAR=")),
        "{env:?}"
    );
    assert!(
        env.iter().any(|kv| kv == "EXTRA_FOR_WORKERS=yes"),
        "{env:?}"
    );
    assert!(env.iter().any(|kv| kv.starts_with("PATH=")), "{env:?}");
    assert!(
        env.iter()
            .any(|kv| kv.starts_with("WORLDPOOL_HEARTBEAT_MS=")),
        "{env:?}"
    );
}

/// A hostile site on 127.0.0.1: a page over the size cap (sent plain, and
/// as a small gzip that decodes past it), a redirect and a next-page link
/// to another origin (127.0.0.2 is loopback too, but another site).
async fn hostile_site() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use std::io::Write as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 4 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 64 << 10, "the bomb is small on the wire");
    let app = axum::Router::new()
        .route("/big", get(|| async { "x".repeat(2 << 20) }))
        .route(
            "/bomb",
            get(move || {
                let bomb = bomb.clone();
                async move {
                    (
                        [
                            (header::CONTENT_ENCODING, "gzip"),
                            (header::CONTENT_TYPE, "text/html"),
                        ],
                        bomb,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/away",
            get(move || async move {
                axum::response::Redirect::temporary(&format!("http://127.0.0.2:{port}/ok"))
            }),
        )
        .route(
            "/here",
            get(|| async { axum::response::Redirect::temporary("/ok") }),
        )
        .route("/ok", get(|| async { "<html><body>ok</body></html>" }))
        .route(
            "/latin1",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")],
                    vec![b'C', 0xe8, b'l'],
                )
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{port}"), task)
}

#[tokio::test]
async fn a_hostile_site_cannot_send_the_worker_elsewhere_or_flood_its_memory() {
    let (base, server) = hostile_site().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.toml");
    let text = format!(
        "[site]\nbase_url = \"{base}\"\nmax_page_size = \"1MiB\"\nretries = 0\nbudget = \"worker\"\n\
         [[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n"
    );
    let config = worldpool::config::Config::parse(&path, &text).expect("config");
    let client = worldpool::site::SiteClient::new(&config.site).expect("client");
    for page in ["/big", "/bomb"] {
        let err = client
            .get_text(&format!("{base}{page}"))
            .await
            .expect_err(page)
            .to_string();
        assert!(err.contains("max_page_size"), "{page}: {err}");
    }
    let err = client
        .get_text(&format!("{base}/away"))
        .await
        .expect_err("redirect elsewhere")
        .to_string();
    assert!(err.contains("another site"), "{err}");
    let ok = client
        .get_text(&format!("{base}/here"))
        .await
        .expect("same-site redirect");
    assert!(ok.body.contains("ok"), "{}", ok.body);
    let latin = client
        .get_text(&format!("{base}/latin1"))
        .await
        .expect("latin-1 page");
    assert_eq!(latin.body, "Cèl");
    server.abort();
}

/// One request over a connection of its own, written as given (so the
/// `Host` header is what a browser under DNS rebinding would send):
/// status and body.
fn raw_request(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("request written");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    (status, body.to_string())
}

/// The error code of an API error body (the one shape, chunked or not).
fn error_code(body: &str) -> String {
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map(|e| e + 1).unwrap_or(body.len());
    let v: serde_json::Value = serde_json::from_str(&body[start..end])
        .unwrap_or_else(|e| panic!("not the error shape ({e}): {body}"));
    assert!(v["message"].is_string() && v["status"].is_u64(), "{v}");
    v["error"].as_str().unwrap_or_default().to_string()
}

/// What a web page can make a browser send: a `Host` of another name (DNS
/// rebinding) is 421 whatever the path; loopback names with or without the
/// port are answered; a body that is not JSON is 415 before any query runs
/// (a cross-site `text/plain` or form POST), a request from another site
/// (`Sec-Fetch-Site`) is 403; JSON, and the multipart uploads, go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_side_attacks_are_refused() {
    const TOKEN: &str = "hostile-token";
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        worldpool::store::Store::open(&format!("sqlite://{}/wp.db", dir.path().display()), 1)
            .await
            .expect("store");
    let fake = std::sync::Arc::new(worldpool::api::fake::FakeControl::new(&["Aurera"]));
    let state = worldpool::api::ApiState::new(fake, Some(store), Some(TOKEN.into()));
    let api = crate::helper::api::Api::serve(state).await;
    let addr: std::net::SocketAddr = api
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let port = addr.port();
    let ask = move |head: String, body: &'static str| {
        tokio::task::spawn_blocking(move || raw_request(addr, &head, body))
    };

    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        for path in ["/api/workers", "/", "/api/delta"] {
            let (status, body) = ask(format!("GET {path} HTTP/1.1\r\nHost: {host}"), "")
                .await
                .expect("join");
            assert_eq!(status, 421, "{host} {path}: {body}");
            assert_eq!(error_code(&body), "host_not_allowed", "{body}");
        }
    }
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = ask(format!("GET /api/workers HTTP/1.1\r\nHost: {host}"), "")
            .await
            .expect("join");
        assert_eq!(status, 200, "{host}: {body}");
    }

    // A simple cross-site POST: text/plain, a form, or no type at all.
    let host = format!("Host: localhost:{port}");
    for content_type in [
        "Content-Type: text/plain;charset=UTF-8\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
        "",
    ] {
        let (status, body) = ask(
            format!("POST /api/rankings-table HTTP/1.1\r\n{content_type}{host}"),
            "{\"datetime1\": \"2026-01-01 00:00:00\"}",
        )
        .await
        .expect("join");
        assert_eq!(status, 415, "{content_type}: {body}");
        assert_eq!(error_code(&body), "unsupported_media_type", "{body}");
    }
    let (status, body) = ask(
        format!("POST /api/rankings-table HTTP/1.1\r\nContent-Type: application/json\r\n{host}"),
        "{}",
    )
    .await
    .expect("join");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("rankings"), "{body}");
    // JSON from another site's page (it would need CORS to read the answer,
    // but the query would run): refused by the browser's own word.
    let (status, body) = ask(
        format!(
            "POST /api/rankings-table HTTP/1.1\r\nContent-Type: application/json\r\n\
             Sec-Fetch-Site: cross-site\r\n{host}"
        ),
        "{}",
    )
    .await
    .expect("join");
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "cross_site", "{body}");
    // The page's own requests pass.
    let (status, body) = ask(
        format!(
            "POST /api/rankings-table HTTP/1.1\r\nContent-Type: application/json\r\n\
             Sec-Fetch-Site: same-origin\r\n{host}"
        ),
        "{}",
    )
    .await
    .expect("join");
    assert_eq!(status, 200, "{body}");
    // A bodiless POST without a type (curl -X POST) is not a JSON body.
    let (status, body) = ask(
        format!(
            "POST /api/workers/Aurera/restart HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n{host}"
        ),
        "",
    )
    .await
    .expect("join");
    assert_eq!(status, 202, "{body}");

    // Uploads are multipart, as the old pages send them.
    let deltas = "name,deltaexp,update time,world,guild\n\
                  Zé Pequeno,1500,2026-11-28 20:00:00,Aurera,Red Rose\n";
    let (status, v) = api
        .post_form(
            "/api/upload/deltas",
            "deltas.csv",
            deltas.as_bytes(),
            &[("password", TOKEN)],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["records"], 1, "{v}");
    api.stop().await;
}

/// `[api] allowed_hosts` of a real `worldpool run`: a listed name is
/// answered, any other is 421.
#[test]
fn a_name_in_allowed_hosts_is_answered_and_others_are_not() {
    let sup = Supervisor::start(Options {
        api_toml: "allowed_hosts = [\"pool.test\"]\n".into(),
        ..Options::default()
    });
    sup.running_pid("A", LONG);
    let port = sup.api.port();
    let (status, body) = raw_request(
        sup.api,
        &format!("GET /api/workers HTTP/1.1\r\nHost: pool.test:{port}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw_request(
        sup.api,
        &format!("GET /api/workers HTTP/1.1\r\nHost: other.test:{port}"),
        "",
    );
    assert_eq!(status, 421, "{body}");
    assert_eq!(error_code(&body), "host_not_allowed");
}

// ----- the API's data path: stalled downloads, abandoned queries, caps ----

/// Seeded deltas: players × updates, names and guilds long enough that an
/// export (~20 MB) is far larger than any socket buffer.
const SEED_PLAYERS: usize = 1_000;
const SEED_UPDATES: usize = 100;

fn site_zone() -> chrono::FixedOffset {
    chrono::FixedOffset::west_opt(3 * 3600).expect("UTC-3")
}

/// 100k deltas of world `A`, every 30 minutes up to an hour ago, written
/// through the store's import (one transaction).
fn seed_deltas(url: &str) {
    use worldpool::store::{ImportBatch, ImportDelta, Store};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(url, 2).await.expect("store opens");
        let now = chrono::Utc::now().timestamp() / 60 * 60;
        let step = chrono::Duration::minutes(30);
        let first = chrono::DateTime::from_timestamp(now, 0)
            .expect("now")
            .with_timezone(&site_zone())
            - step * (SEED_UPDATES as i32 + 2);
        let mut batch = ImportBatch::default();
        for u in 0..SEED_UPDATES {
            let t = first + step * u as i32;
            for p in 0..SEED_PLAYERS {
                batch.deltas.push(ImportDelta {
                    world: "A".into(),
                    name: format!("Player {p:04} {}", "n".repeat(80)),
                    guild: format!("Guild {}", "g".repeat(80)),
                    delta: (p * 7 + u) as i64 + 1,
                    update_time: t,
                    previous_update_time: (u > 0).then(|| t - step),
                });
            }
        }
        store.import(&batch, false).await.expect("deltas seeded");
    });
}

/// A download that reads its response head and nothing after, on a socket
/// with a small receive buffer: its status, its head and the socket.
fn stalled_download(sup: &Supervisor, path: &str) -> (u16, String, TcpStream) {
    use std::os::fd::AsRawFd as _;
    let mut s = TcpStream::connect_timeout(&sup.api, Duration::from_secs(5)).expect("connect");
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket, an int option of the right size.
    let set = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("request");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "no response head for {path}: {other:?} after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, s)
}

/// `/api/delta` answers 200, `times` times, each within `within`.
fn feed_answers_quickly(sup: &Supervisor, within: Duration, times: usize) {
    for _ in 0..times {
        let started = std::time::Instant::now();
        let answer = sup.get("/api/delta?limit=10");
        let took = started.elapsed();
        assert!(
            matches!(&answer, Some((200, body)) if body["deltas"].as_array().is_some_and(|d| d.len() == 10)),
            "{answer:?}"
        );
        assert!(
            took < within,
            "/api/delta took {took:?}; log:\n{}",
            std::fs::read_to_string(&sup.process.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("\"running\"") && !l.contains("spawned"))
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        eprintln!("/api/delta {took:?}");
    }
}

#[test]
fn stalled_downloads_neither_slow_the_feed_nor_pass_the_export_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("seeded.db").display());
    seed_deltas(&url);
    let sup = Supervisor::start(Options {
        storage_url: Some(url),
        api_toml: "send_timeout = \"5s\"\nmax_exports = 2\n".into(),
        ..Options::default()
    });
    let stalled: Vec<_> = (0..2)
        .map(|_| stalled_download(&sup, "/api/download/deltas"))
        .collect();
    for (status, head, _) in &stalled {
        assert_eq!(*status, 200, "{head}");
    }
    // Both still in flight: a third is refused, and told when to retry.
    let (status, head, _third) = stalled_download(&sup, "/api/download/deltas");
    assert_eq!(status, 429, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    feed_answers_quickly(&sup, Duration::from_secs(2), 10);
    // A client that reads nothing for send_timeout is cut: downloads are
    // served again (each try here reads the head and goes away).
    wait_for("the stalled downloads cut after send_timeout", LONG, || {
        let (status, _, s) = stalled_download(&sup, "/api/download/deltas");
        drop(s);
        (status == 200).then_some(())
    });
    drop(stalled);
}

#[test]
fn sigterm_with_a_stalled_download_exits_0_within_the_graces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("seeded.db").display());
    seed_deltas(&url);
    // stop_grace is 2 s (the fixture); the send deadline is not what ends
    // the download here.
    let mut sup = Supervisor::start(Options {
        storage_url: Some(url),
        api_toml: "send_timeout = \"120s\"\nshutdown_grace = \"2s\"\n".into(),
        ..Options::default()
    });
    let workers = [sup.running_pid("A", LONG), sup.running_pid("B", LONG)];
    let (status, head, _stalled) = stalled_download(&sup, "/api/download/deltas");
    assert_eq!(status, 200, "{head}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.process.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let started = std::time::Instant::now();
    let exit = wait_for("the supervisor exits", LONG, || {
        sup.process.child.try_wait().ok().flatten()
    });
    let took = started.elapsed();
    assert!(exit.success(), "{exit:?}");
    // stop_grace + shutdown_grace + a margin.
    assert!(took < Duration::from_secs(2 + 2 + 4), "exit took {took:?}");
    for pid in workers {
        assert!(
            !crate::helper::pid_alive(pid),
            "worker {pid} outlived the supervisor"
        );
    }
}

/// `test` on a fresh SQLite file.
fn on_sqlite(test: fn(String)) {
    let dir = tempfile::tempdir().expect("tempdir");
    test(format!(
        "sqlite://{}",
        dir.path().join("seeded.db").display()
    ));
}

/// `test` on a fresh database of the test PostgreSQL.
fn on_postgres(test: fn(String)) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    test(rt.block_on(crate::helper::pg::fresh_database_url()));
}

#[test]
fn abandoned_heavy_queries_do_not_delay_the_feed_and_long_periods_are_refused() {
    on_sqlite(abandoned_heavy_queries);
}

#[test]
fn pg_abandoned_heavy_queries_do_not_delay_the_feed_and_long_periods_are_refused() {
    on_postgres(abandoned_heavy_queries);
}

fn abandoned_heavy_queries(url: String) {
    seed_deltas(&url);
    let sup = Supervisor::start(Options {
        storage_url: Some(url),
        ..Options::default()
    });
    // 40 clients ask for the whole rankings table and give up after 0.5 s.
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let api = sup.api;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5))?;
                write!(
                    s,
                    "POST /api/rankings-table HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                )?;
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                let _ = s.read(&mut [0u8; 64]);
                Ok::<(), std::io::Error>(())
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread").expect("client");
    }
    feed_answers_quickly(&sup, Duration::from_secs(2), 10);
    // A period longer than the cap: 422 naming it.
    let (status, body) = sup
        .post_json(
            "/api/rankings-table",
            &serde_json::json!({"datetime1": "2020-01-01T00:00", "datetime2": "2026-01-01T00:00"}),
        )
        .expect("an answer");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "over_cap", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("366 days")),
        "{body}"
    );
    // The whole table of the seeded period is within the caps.
    let (status, body) = sup
        .post_json("/api/rankings-table", &serde_json::json!({}))
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rankings"].as_array().map(Vec::len),
        Some(SEED_PLAYERS),
        "{body}"
    );
}

#[test]
fn pg_stalled_downloads_share_the_pool_and_leave_the_server_to_others() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let admin = rt.block_on(crate::helper::pg::fresh_database_url());
    let db = url::Url::parse(&admin).expect("url").path()[1..].to_string();
    // The database takes 20 connections at most, like a server with
    // max_connections = 20, for a role that is not a superuser (the limit
    // does not hold for superusers): the store and the supervisor use it.
    let role = format!("{db}_user");
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("connect");
        let task = tokio::spawn(conn);
        c.batch_execute(&format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER;
             ALTER DATABASE {db} OWNER TO {role};
             ALTER SCHEMA public OWNER TO {role};
             ALTER DATABASE {db} CONNECTION LIMIT 20"
        ))
        .await
        .expect("a limited role");
        drop(c);
        let _ = task.await;
    });
    let mut limited = url::Url::parse(&admin).expect("url");
    limited.set_username(&role).expect("user");
    let url = limited.to_string();
    // The limit holds: a 21st connection is refused.
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..20 {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("one of 20");
            held.push((c, tokio::spawn(conn)));
        }
        let refused = tokio_postgres::connect(&url, tokio_postgres::NoTls).await;
        assert!(
            refused
                .as_ref()
                .err()
                .and_then(tokio_postgres::Error::code)
                .is_some_and(|c| *c == tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS),
            "{:?}",
            refused.err()
        );
        for (c, task) in held {
            drop(c);
            let _ = task.await;
        }
    });
    seed_deltas(&url);
    let sup = Supervisor::start(Options {
        storage_url: Some(url.clone()),
        api_toml: "send_timeout = \"120s\"\n".into(),
        ..Options::default()
    });
    let downloads: Vec<_> = (0..25)
        .map(|_| stalled_download(&sup, "/api/download/deltas"))
        .collect();
    let served = downloads.iter().filter(|(s, _, _)| *s == 200).count();
    let refused = downloads.iter().filter(|(s, _, _)| *s == 429).count();
    assert_eq!(
        (served, refused),
        (2, 23),
        "{:?}",
        downloads.iter().map(|d| d.0).collect::<Vec<_>>()
    );
    feed_answers_quickly(&sup, Duration::from_secs(2), 10);
    // Another client of the database is served beside them.
    let n = rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("another client connects");
        let task = tokio::spawn(conn);
        let n: i64 = c
            .query_one("SELECT COUNT(*) FROM deltas", &[])
            .await
            .expect("count")
            .get(0);
        drop(c);
        let _ = task.await;
        n
    });
    assert_eq!(n, (SEED_PLAYERS * SEED_UPDATES) as i64);
    drop(downloads);
}

/// A delta whose cells start like formulas, exported and imported again.
async fn csv_export_import_round_trip(url: String, again: String) {
    use worldpool::import::{CsvFile, ImportOptions, run_file};
    use worldpool::store::{ImportBatch, ImportDelta, Store};
    let store = Store::open(&url, 2).await.expect("store");
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00-03:00").expect("time");
    let names = [
        "=HYPERLINK(\"http://x\",\"y\")",
        "+plus",
        "-minus",
        "@at",
        "'=quoted",
        "Plain",
    ];
    let batch = ImportBatch {
        deltas: names
            .iter()
            .map(|n| ImportDelta {
                world: "Aurera".into(),
                name: (*n).into(),
                guild: "=Guild".into(),
                delta: 1234,
                update_time: t,
                previous_update_time: None,
            })
            .collect(),
        ..ImportBatch::default()
    };
    store.import(&batch, false).await.expect("seeded");
    let fake = std::sync::Arc::new(worldpool::api::fake::FakeControl::new(&["Aurera"]));
    let api =
        crate::helper::api::Api::serve(worldpool::api::ApiState::new(fake, Some(store), None))
            .await;
    let (status, ctype, csv) = api.text("/api/download/deltas").await;
    assert_eq!(status, 200, "{csv}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert!(csv.contains("'=HYPERLINK("), "{csv}");
    assert!(csv.contains(",'=Guild\n"), "{csv}");
    assert!(csv.contains("\n'+plus,1234,"), "{csv}");
    assert!(csv.contains("\n''=quoted,1234,"), "{csv}");
    assert!(csv.contains("\nPlain,1234,"), "{csv}");
    let target = Store::open(&again, 2).await.expect("second store");
    let options = ImportOptions {
        from: "deltas.csv".into(),
        default_world: None,
        default_guild: None,
        site_offset: site_zone(),
        reset_minutes: 0,
    };
    run_file(
        &target,
        CsvFile::Deltas,
        "deltas.csv",
        csv.into_bytes(),
        &options,
        false,
    )
    .await
    .expect("imported");
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    let mut got = target.player_names(None, None).await.expect("names");
    got.sort();
    assert_eq!(got, expected);
    let rows = target
        .player_deltas(&expected, worldpool::store::TimeRange::all())
        .await
        .expect("deltas");
    assert!(
        rows.iter().all(|d| d.guild == "=Guild" && d.delta == 1234),
        "{rows:?}"
    );
}

#[tokio::test]
async fn csv_cells_are_defused_and_import_reads_them_back_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    csv_export_import_round_trip(
        format!("sqlite://{}", dir.path().join("a.db").display()),
        format!("sqlite://{}", dir.path().join("b.db").display()),
    )
    .await;
}

#[tokio::test]
async fn csv_cells_are_defused_and_import_reads_them_back_postgres() {
    csv_export_import_round_trip(
        crate::helper::pg::fresh_database_url().await,
        crate::helper::pg::fresh_database_url().await,
    )
    .await;
}

#[tokio::test]
async fn scraper_status_follows_run_events_without_a_query_per_request() {
    use worldpool::protocol::{RunFinished, WorkerEvent};
    use worldpool::store::{ImportBatch, ImportDelta, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("s.db").display()),
        2,
    )
    .await
    .expect("store");
    let t1 = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:00-03:00").expect("time");
    let batch = ImportBatch {
        deltas: vec![ImportDelta {
            world: "Aurera".into(),
            name: "Ana".into(),
            guild: "G".into(),
            delta: 10,
            update_time: t1,
            previous_update_time: None,
        }],
        ..ImportBatch::default()
    };
    store.import(&batch, false).await.expect("seeded");
    let fake = std::sync::Arc::new(worldpool::api::fake::FakeControl::new(&["Aurera"]));
    let api = crate::helper::api::Api::serve(worldpool::api::ApiState::new(
        fake.clone(),
        Some(store),
        None,
    ))
    .await;
    // Seeded by one store read.
    let (status, body) = api.get("/api/scraper-status").await;
    assert_eq!(status, 200);
    assert_eq!(body["last_update"], "2026-11-28T10:00:00", "{body}");
    // A run the store never saw (the event alone): the status follows it.
    let t2 = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:30:00-03:00").expect("time");
    let finished = |deltas, update_time| {
        let event = WorkerEvent::RunFinished(RunFinished {
            world: "Aurera".into(),
            rows: 1,
            deltas,
            update_time,
            rebased: false,
            unknown_guilds: Vec::new(),
        });
        let pool::WorkerMessage::Event { kind, data } = event.to_message() else {
            panic!("an event message");
        };
        pool::PoolEvent::Custom {
            worker: "Aurera".into(),
            kind,
            data,
        }
    };
    // A rebase (no deltas) is not a new last update.
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-29T00:00:00-03:00").expect("time");
    fake.emit(finished(0, t0));
    fake.emit(finished(3, t2));
    crate::helper::wait_for_async("the last update from the run event", LONG, || {
        let api = &api;
        async move {
            let (_, body) = api.get("/api/scraper-status").await;
            (body["last_update"] == "2026-11-28T10:30:00").then_some(())
        }
    })
    .await;
}

/// A read past the API's query deadline is stopped and reported as
/// unavailable; an export, as long as its client reads, is not.
fn reads_stop_at_their_deadline_and_exports_do_not(url: String) {
    use worldpool::store::{ReadSettings, Store, TimeRange};
    seed_deltas(&url);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open_reading(
            &url,
            ReadSettings {
                readers: 2,
                query_timeout: Duration::from_millis(5),
                nice: 0,
                background: false,
                cheap_nice: 0,
            },
        )
        .await
        .expect("store opens");
        let err = store
            .player_totals(TimeRange::all(), None, None)
            .await
            .expect_err("a whole-history ranking takes longer than 5 ms");
        // SQLite: interrupted by its reader; PostgreSQL: statement_timeout.
        let stopped = err.to_string();
        assert!(
            err.is_transient()
                && (stopped.contains("longer than 5 ms") || stopped.contains("57014")),
            "{err}"
        );
        let mut rx = store.export_deltas();
        let mut rows = 0;
        while let Some(chunk) = rx.recv().await {
            rows += chunk.expect("an export chunk").len();
        }
        assert_eq!(rows, SEED_PLAYERS * SEED_UPDATES);
    });
}

#[test]
fn sqlite_reads_stop_at_their_deadline_and_exports_do_not() {
    on_sqlite(reads_stop_at_their_deadline_and_exports_do_not);
}

#[test]
fn pg_reads_stop_at_their_deadline_and_exports_do_not() {
    on_postgres(reads_stop_at_their_deadline_and_exports_do_not);
}

/// With every place of the heavy lane taken (as heavy queries that never
/// end would take them), a heavy read waits at most the read deadline and
/// is refused — the store says busy, the API 429 with `Retry-After` in its
/// one error shape — while cheap reads are answered; a place given back
/// is used at once.
fn a_full_heavy_lane_refuses_heavy_reads_and_answers_cheap_ones(url: String) {
    use std::sync::Arc;
    use worldpool::api::fake::FakeControl;
    use worldpool::api::{ApiState, CompatSettings};
    use worldpool::store::{ReadSettings, Store, StoreError, TimeRange};
    seed_deltas(&url);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open_reading(
            &url,
            ReadSettings {
                readers: 2,
                query_timeout: Duration::from_secs(2),
                ..ReadSettings::default()
            },
        )
        .await
        .expect("store opens");
        let full = store.fill_heavy_lane().await;
        let err = store
            .player_totals(TimeRange::all(), None, None)
            .await
            .expect_err("no place for a heavy read");
        assert!(
            matches!(&err, StoreError::Busy(m) if m.contains("heavy")) && err.is_transient(),
            "{err}"
        );
        let feed = store
            .delta_feed(None, None, 10)
            .await
            .expect("a cheap read is answered beside a full heavy lane");
        assert_eq!(feed.len(), 10);

        let fake = Arc::new(FakeControl::new(&["A"]));
        let state = ApiState::new(fake, Some(store.clone()), None).with_compat(CompatSettings {
            site_offset: site_zone(),
            ..CompatSettings::default()
        });
        let api = crate::helper::api::Api::serve(state).await;
        let refused = api
            .http
            .post(format!("{}/api/rankings-table", api.base))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(
            refused
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let body: serde_json::Value = refused.json().await.expect("JSON");
        assert_eq!(body["error"], "too_many_requests", "{body}");
        assert_eq!(body["status"], 429, "{body}");
        for path in [
            "/api/delta?limit=10",
            "/api/date-range",
            "/api/recent-updates",
        ] {
            let (status, body) = api.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
        drop(full);
        let (status, body) = api
            .post("/api/rankings-table", serde_json::json!({}), None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["rankings"].as_array().map(Vec::len),
            Some(SEED_PLAYERS),
            "{body}"
        );
    });
}

#[test]
fn sqlite_a_full_heavy_lane_refuses_heavy_reads_and_answers_cheap_ones() {
    on_sqlite(a_full_heavy_lane_refuses_heavy_reads_and_answers_cheap_ones);
}

#[test]
fn pg_a_full_heavy_lane_refuses_heavy_reads_and_answers_cheap_ones() {
    on_postgres(a_full_heavy_lane_refuses_heavy_reads_and_answers_cheap_ones);
}
