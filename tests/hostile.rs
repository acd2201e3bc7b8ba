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
    std::fs::read_to_string(&sup.log)
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
        std::fs::read_to_string(&sup.log)
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
    let log = std::fs::read_to_string(&sup.log).unwrap_or_default();
    assert!(!log.contains("spawn_failed"), "a spawn failed:\n{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    // The clients go away: the API serves again.
    drop(held);
    wait_for("the API answers again", LONG, || {
        sup.get("/api/workers").filter(|(s, _)| *s == 200)
    });
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
fn connections_beyond_max_connections_wait_until_one_closes() {
    let sup = Supervisor::start(Options {
        api_toml: "max_connections = 3\nheader_timeout = \"60s\"\n".into(),
        ..Options::default()
    });
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(sup.api).expect("connect"))
        .collect();
    // Accepted by the server (each is held open, waiting for a head)…
    let mut waiting = TcpStream::connect(sup.api).expect("connect");
    waiting
        .write_all(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    waiting
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let early = waiting.read(&mut buf);
    assert!(
        early.is_err(),
        "a fourth connection was served beside three held ones: {early:?}"
    );
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut answer = Vec::new();
    waiting
        .read_to_end(&mut answer)
        .expect("answer once one closed");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
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
    let own = read_env(sup.child.id());
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
