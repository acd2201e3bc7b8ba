//! The dashboard (`GET /`) in a real headless Chromium, driven over
//! WebDriver (`helper::browser`), against real `worldpool run` pools: the
//! idle test worker for control and crashes, real scraping workers against
//! the demo site for the deltas; and against an in-process API with stub
//! rankings endpoints for the documented shapes and the 404 fallbacks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helper::browser::{Browser, png_size};
use crate::helper::supervisor::RunningPool;
use crate::helper::{free_port, wait_for_async};

const DEADLINE: Duration = Duration::from_secs(30);
const TOKEN: &str = "dash-s3cret";

/// The rows of the workers table as the page shows them.
const ROWS_JS: &str = r#"
return [...document.querySelectorAll('#workers-body tr')].map(tr => ({
  world: tr.dataset.world,
  state: tr.dataset.state || '',
  pid: tr.querySelector('.c-pid').textContent,
  restarts: tr.querySelector('.c-restarts').textContent,
  reason: tr.querySelector('.c-exit').dataset.reason || '',
  visible: tr.getBoundingClientRect().height > 0,
}));
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `GET base+path` as JSON, `None` while the API does not answer.
async fn get_json(http: &reqwest::Client, base: &str, path: &str) -> Option<Value> {
    let r = http.get(format!("{base}{path}")).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Wait until the API lists `n` running workers with pids (a pool's
/// worlds and its status watcher); returns them.
async fn running_workers(http: &reqwest::Client, base: &str, n: usize) -> Vec<Value> {
    wait_for_async("every worker running", DEADLINE, || async move {
        let list = get_json(http, base, "/api/workers").await?;
        let list = list.as_array()?.clone();
        (list.len() == n
            && list
                .iter()
                .all(|w| w["state"] == "running" && w["pid"].is_u64()))
        .then_some(list)
    })
    .await
}

/// Console messages that are errors, except the 404s (an API without
/// them) and 503s (an API without a store) of the rankings endpoints (the
/// page shows a message for those instead).
fn console_errors(entries: &[(String, String)]) -> Vec<String> {
    entries
        .iter()
        .filter(|(level, _)| level == "SEVERE" || level == "ERROR")
        .filter(|(_, m)| {
            !((m.contains("/api/top-players") || m.contains("/api/graph"))
                && (m.contains("404") || m.contains("503")))
        })
        .map(|(l, m)| format!("{l}: {m}"))
        .collect()
}

async fn page_rows(browser: &Browser) -> Vec<Value> {
    browser
        .eval(ROWS_JS, json!([]))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], world: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["world"] == world)
        .unwrap_or_else(|| panic!("no row for {world}: {rows:?}"))
}

/// The page was not reloaded since `mark` was set.
async fn assert_not_reloaded(browser: &Browser) {
    let mark = browser
        .eval("return window.__testMark || null", json!([]))
        .await;
    assert_eq!(mark, json!(42), "the page was reloaded");
}

async fn control_message(browser: &Browser, what: &str, needle: &str) -> String {
    browser
        .wait_for(
            what,
            DEADLINE,
            "const t = document.getElementById('control-msg').textContent; \
             return t.includes(arguments[0]) ? t : null;",
            json!([needle]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Load, crash, control with every kind of token, and an API restart,
/// against `worldpool run` over idle test workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_a_real_pool_and_controls_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worlds = ["Alpha", "Béta Ñu", "Gamma"];
    let mut toml = format!(
        "[pool]\nmin_uptime = \"300ms\"\nstop_grace = \"3s\"\n\
         [storage]\nurl = \"sqlite://{}\"\n",
        dir.path().join("dash.db").display()
    );
    for w in worlds {
        toml.push_str(&format!("[[worlds]]\nname = \"{w}\"\nguilds = [\"G\"]\n"));
    }
    let config = dir.path().join("worlds.toml");
    std::fs::write(&config, toml).expect("config");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let mut pool = RunningPool::start(&config, port, Some(TOKEN), true);
    let first = running_workers(&http, &base, worlds.len() + 1).await;

    let browser = Browser::start(1280, 800).await;
    let started = Instant::now();
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for(
            "the page live with every worker",
            DEADLINE,
            "return document.getElementById('conn').dataset.state === 'live' \
             && document.querySelectorAll('#workers-body tr').length === arguments[0];",
            json!(worlds.len() + 1),
        )
        .await;
    eprintln!("page live in {:?}", started.elapsed());
    let expected: Vec<(String, String)> = first
        .iter()
        .map(|w| {
            (
                w["world"].as_str().unwrap_or_default().to_string(),
                w["pid"].to_string(),
            )
        })
        .collect();
    browser
        .wait_for(
            "every row with its pid, running and visible",
            DEADLINE,
            "const rows = [...document.querySelectorAll('#workers-body tr')]; \
             return arguments[0].every(([w, pid]) => rows.some(tr => tr.dataset.world === w \
               && tr.querySelector('.c-pid').textContent === pid && tr.dataset.state === 'running' \
               && tr.getBoundingClientRect().height > 0));",
            json!([expected]),
        )
        .await;
    // Let the page's first requests (deltas, top players) settle.
    browser
        .wait_for(
            "the rankings panels settled",
            DEADLINE,
            "return document.getElementById('top-panel').dataset.state || null;",
            json!([]),
        )
        .await;
    let errors = console_errors(&browser.console().await);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.eval("window.__testMark = 42;", json!([])).await;

    // kill -9: new pid, restarts + 1 and `crashed` within 2 s.
    let alpha = first.iter().find(|w| w["world"] == "Alpha").expect("Alpha");
    let old_pid = alpha["pid"].as_u64().expect("pid");
    let old_restarts = alpha["restarts"].as_u64().expect("restarts");
    // Past min_uptime (300 ms), so the restart is immediate (no backoff).
    let h = &http;
    let b = base.as_str();
    wait_for_async("Alpha past its min_uptime", DEADLINE, || async move {
        let w = get_json(h, b, "/api/workers/Alpha").await?;
        (w["pid"].as_u64() == Some(old_pid) && w["uptime_s"].as_f64()? > 0.5).then_some(())
    })
    .await;
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    // The issue's goal is 2 s: printed, not asserted (a loaded machine
    // must not fail the suite).
    let shown = browser
        .wait_for(
            "Alpha's row with a new pid, one more restart and `crashed`",
            DEADLINE,
            "const tr = document.querySelector('#workers-body tr[data-world=\"Alpha\"]'); \
             const pid = tr.querySelector('.c-pid').textContent; \
             return /^[0-9]+$/.test(pid) && pid !== arguments[0] \
               && tr.querySelector('.c-restarts').textContent === arguments[1] \
               && tr.querySelector('.c-exit').dataset.reason === 'crashed' \
               ? {pid, state: tr.dataset.state} : null;",
            json!([old_pid.to_string(), (old_restarts + 1).to_string()]),
        )
        .await;
    eprintln!("kill -9 shown in {:?}: {shown}", killed.elapsed());
    let api = get_json(&http, &base, "/api/workers/Alpha")
        .await
        .expect("Alpha");
    assert_eq!(shown["pid"], api["pid"].to_string());
    browser
        .wait_for(
            "the crash in the events log",
            DEADLINE,
            "return [...document.querySelectorAll('#event-log li')].some(li => \
               li.textContent.includes('Alpha') && li.textContent.includes('exited: crashed'));",
            json!([]),
        )
        .await;
    assert_not_reloaded(&browser).await;

    // Control. Wrong token: the API's 401 message, nothing restarted.
    let beta_css = "#workers-body tr[data-world=\"Béta Ñu\"] button[data-verb=\"restart\"]";
    let beta_pid = row(&page_rows(&browser).await, "Béta Ñu")["pid"].clone();
    browser.type_into("#token", "not-the-token").await;
    browser.click(beta_css).await;
    let msg = control_message(&browser, "the 401 message", "401").await;
    assert!(
        msg.contains("missing or wrong token") && msg.contains("unauthorized"),
        "{msg}"
    );
    // No token at all: 401 too (a token is configured).
    browser.click("#token-forget").await;
    browser.click(beta_css).await;
    let msg = control_message(&browser, "the 401 message without a token", "401").await;
    assert!(msg.contains("missing or wrong token"), "{msg}");
    assert_eq!(row(&page_rows(&browser).await, "Béta Ñu")["pid"], beta_pid);

    // The right token: restarted, and the token is kept in sessionStorage.
    browser.type_into("#token", TOKEN).await;
    browser.click(beta_css).await;
    let msg = control_message(&browser, "the restart accepted", "done").await;
    assert!(msg.contains("restart Béta Ñu"), "{msg}");
    browser
        .wait_for(
            "Béta's row with a new pid",
            DEADLINE,
            "const tr = document.querySelector('#workers-body tr[data-world=\"Béta Ñu\"]'); \
             const pid = tr.querySelector('.c-pid').textContent; \
             return /^[0-9]+$/.test(pid) && pid !== arguments[0] && tr.dataset.state === 'running';",
            json!([beta_pid]),
        )
        .await;
    let stored = browser
        .eval(
            "return sessionStorage.getItem('worldpool.token');",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!(TOKEN));

    // Stop all, then start all, with the buttons for every worker (the
    // three worlds' and the status watcher).
    browser.click("button[data-all=\"stop\"]").await;
    control_message(&browser, "stop all done", "stop all: 4 done").await;
    browser
        .wait_for(
            "every row stopped",
            DEADLINE,
            "return [...document.querySelectorAll('#workers-body tr')].every(tr => \
               tr.dataset.state === 'stopped' && tr.querySelector('.c-pid').textContent === '—');",
            json!([]),
        )
        .await;
    browser.click("button[data-all=\"start\"]").await;
    control_message(&browser, "start all done", "start all: 4 done").await;
    browser
        .wait_for(
            "every row running again",
            DEADLINE,
            "return [...document.querySelectorAll('#workers-body tr')].every(tr => \
               tr.dataset.state === 'running');",
            json!([]),
        )
        .await;

    // The API goes away (the whole service is restarted): the page says it
    // is reconnecting, then resyncs from the new pool without a reload.
    pool.stop();
    browser
        .wait_for(
            "the page saying it is reconnecting",
            DEADLINE,
            "const c = document.getElementById('conn'); \
             return c.dataset.state === 'reconnecting' && c.textContent.includes('reconnecting');",
            json!([]),
        )
        .await;
    let mut pool = RunningPool::start(&config, port, None, true);
    let second = running_workers(&http, &base, worlds.len() + 1).await;
    let expected: Vec<(String, String)> = second
        .iter()
        .map(|w| {
            (
                w["world"].as_str().unwrap_or_default().to_string(),
                w["pid"].to_string(),
            )
        })
        .collect();
    browser
        .wait_for(
            "the page live again with the new pool's pids",
            DEADLINE,
            "if (document.getElementById('conn').dataset.state !== 'live') return null; \
             const rows = [...document.querySelectorAll('#workers-body tr')]; \
             return rows.length === arguments[0].length && arguments[0].every(([w, pid]) => \
               rows.some(tr => tr.dataset.world === w && tr.querySelector('.c-pid').textContent === pid));",
            json!([expected]),
        )
        .await;
    assert_not_reloaded(&browser).await;

    // This pool has no token configured and listens on loopback: the page,
    // served from it, controls it without a token.
    browser.click("#token-forget").await;
    browser.click(beta_css).await;
    let msg = control_message(&browser, "the restart without a token", "Béta Ñu: done").await;
    assert!(msg.contains("restart"), "{msg}");
    pool.stop();
    let log = pool.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Real scraping workers against the demo site: the deltas panel shows a
/// site update's deltas as the runs finish, without a reload; the
/// screenshot for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_deltas_live_from_the_demo_site() {
    use worldpool::demo_site::{DemoSite, DemoSiteOptions};

    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let config = dir.path().join("demo.toml");
    std::fs::write(
        &config,
        site.config_toml(&db, worldpool::config::Mode::Pool),
    )
    .expect("config");
    let worlds = site.world_names();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let mut pool = RunningPool::start(&config, port, None, false);
    running_workers(&http, &base, worlds.len() + 1).await;
    let (h, b, ws) = (&http, base.as_str(), &worlds);
    // Every world's first run stored.
    wait_for_async("a first run of every world", DEADLINE, || async move {
        let runs = get_json(h, b, "/api/runs?limit=100").await?;
        let runs = runs["items"].as_array()?.clone();
        ws.iter()
            .all(|w| runs.iter().any(|r| r["world"] == w.as_str()))
            .then_some(())
    })
    .await;

    let browser = Browser::start(1280, 800).await;
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for(
            "the page live with every world",
            DEADLINE,
            "return document.getElementById('conn').dataset.state === 'live' \
             && document.querySelectorAll('#workers-body tr').length === arguments[0] \
             && document.querySelectorAll('#deltas-body tr').length > 0;",
            json!(worlds.len() + 1),
        )
        .await;
    browser.eval("window.__testMark = 42;", json!([])).await;

    // A site update: new deltas per world, pushed to the page.
    let before: Vec<_> = worlds.iter().map(|w| site.update_time(w)).collect();
    site.advance();
    let mut expected = Vec::new();
    for (w, old) in worlds.iter().zip(before) {
        let new = site.update_time(w).expect("update time");
        assert_ne!(Some(new), old, "{w} did not advance");
        let rows = wait_for_async(
            &format!("{w}'s new deltas stored"),
            DEADLINE,
            || async move {
                let q = format!(
                    "/api/deltas?world={}&limit=500",
                    url::form_urlencoded::byte_serialize(w.as_bytes()).collect::<String>()
                );
                let page = get_json(h, b, &q).await?;
                let rows: Vec<(String, String, i64)> = page["items"]
                    .as_array()?
                    .iter()
                    .filter(|d| {
                        d["update_time"]
                            .as_str()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            == Some(new)
                    })
                    .map(|d| {
                        (
                            d["name"].as_str().unwrap_or_default().to_string(),
                            d["guild"].as_str().unwrap_or_default().to_string(),
                            d["delta"].as_i64().unwrap_or_default(),
                        )
                    })
                    .collect();
                // The run is stored whole: once one delta is there, all are.
                (!rows.is_empty()).then_some(rows)
            },
        )
        .await;
        expected.push((w.clone(), new, rows));
    }
    for (w, new, mut rows) in expected {
        let shown = browser
            .wait_for(
                &format!("{w}'s new deltas on the page"),
                DEADLINE,
                "const [w, t, n] = arguments; \
                 const rows = [...document.querySelectorAll('#deltas-body tr')].filter(tr => \
                   tr.dataset.world === w && Date.parse(tr.dataset.update) === t); \
                 return rows.length === n ? rows.map(tr => \
                   [tr.dataset.name, tr.dataset.guild, Number(tr.dataset.delta)]) : null;",
                json!([w, new.timestamp_millis(), rows.len()]),
            )
            .await;
        let mut shown: Vec<(String, String, i64)> =
            serde_json::from_value(shown).expect("rows of the deltas panel");
        shown.sort();
        rows.sort();
        assert_eq!(shown, rows, "{w}");
    }
    assert_not_reloaded(&browser).await;
    browser
        .wait_for(
            "a finished run with its deltas in the events log",
            DEADLINE,
            "return [...document.querySelectorAll('#event-log li')].some(li => \
               /run finished: [0-9,.]+ rows, [0-9,.]+ deltas/.test(li.textContent));",
            json!([]),
        )
        .await;

    // The rankings panels either show data or say why not; never nothing.
    let top = browser
        .wait_for(
            "the top players panel settled",
            DEADLINE,
            "const p = document.getElementById('top-panel'); \
             return p.dataset.state ? [p.dataset.state, document.getElementById('top-msg').textContent, \
               document.querySelectorAll('#top-list li').length] : null;",
            json!([]),
        )
        .await;
    match top[0].as_str() {
        Some("unavailable") => assert!(top[1].as_str().is_some_and(|m| m.contains("404")), "{top}"),
        Some("ready") => {}
        _ => panic!("top players: {top}"),
    }
    let errors = console_errors(&browser.console().await);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The screenshot: a worker crash first, so the page shows a restart.
    let first = get_json(&http, &base, "/api/workers")
        .await
        .expect("workers");
    let pid = first[0]["pid"].as_u64().expect("a running worker's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    browser
        .wait_for(
            "the crash on the page",
            DEADLINE,
            "return [...document.querySelectorAll('#event-log li')].some(li => \
               li.textContent.includes('exited: crashed'));",
            json!([]),
        )
        .await;
    site.advance();
    browser
        .wait_for(
            "two updates in the deltas panel and a few samples in every sparkline",
            DEADLINE,
            "return new Set([...document.querySelectorAll('#deltas-body tr')] \
               .map(tr => tr.dataset.update)).size >= 2 \
               && [...document.querySelectorAll('#workers-body tr')].every(tr => \
                 tr.dataset.state === 'running' \
                 && (tr.querySelector('.c-mem path').getAttribute('d') || '').split('L').length >= 3);",
            json!([]),
        )
        .await;
    let png = browser.screenshot().await;
    assert_eq!(png_size(&png), Some((1280, 800)), "screenshot size");
    let out = screenshot_path();
    std::fs::write(&out, &png).expect("write the screenshot");
    eprintln!("screenshot: {}", out.display());

    pool.stop();
    site.shutdown().await;
}

/// `docs/dashboard.png` when it is missing or `WORLDPOOL_UPDATE_SCREENSHOT`
/// is set (so test runs do not rewrite a tracked file), else a file under
/// the target directory.
fn screenshot_path() -> PathBuf {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
    if !docs.exists() || std::env::var_os("WORLDPOOL_UPDATE_SCREENSHOT").is_some() {
        docs
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
    }
}

/// What the stub rankings endpoints received.
#[derive(Default)]
struct Seen {
    top_query: Option<String>,
    graph_body: Option<Value>,
}

/// An in-process API.
struct FakeApi {
    base: String,
    fake: Arc<worldpool::api::fake::FakeControl>,
    seen: Arc<Mutex<Seen>>,
    stop: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An in-process API over a fake pool of `n` workers, with or without an
/// (empty) SQLite store, with or without stub rankings endpoints
/// answering the documented shapes.
async fn fake_api(n: usize, store: bool, stubs: bool) -> FakeApi {
    use axum::Json;
    use axum::extract::RawQuery;
    use axum::routing::{get, post};

    let names: Vec<String> = (0..n).map(|i| format!("World {i:03}")).collect();
    let fake = Arc::new(worldpool::api::fake::FakeControl::new(&names));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = if store {
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        Some(
            worldpool::store::Store::open(&url, 2)
                .await
                .expect("sqlite store"),
        )
    } else {
        None
    };
    let state = worldpool::api::ApiState::new(fake.clone(), store, None);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut router = axum::Router::new();
    if stubs {
        let s1 = seen.clone();
        let s2 = seen.clone();
        router = router
            .route(
                "/api/top-players",
                get(move |RawQuery(q): RawQuery| async move {
                    s1.lock().expect("lock").top_query = q;
                    Json(json!([
                        {"name": "Zé Ninguém", "total_exp": 987_654_321},
                        {"name": "Ana Lúcia", "total_exp": 456_789_012},
                        {"name": "Bob", "total_exp": 12_345}
                    ]))
                }),
            )
            .route(
                "/api/graph",
                post(move |Json(body): Json<Value>| async move {
                    s2.lock().expect("lock").graph_body = Some(body);
                    let trace = |name: &str, base: i64| {
                        json!({
                            "x": ["2026-11-28T10:10:00-03:00", "2026-11-28T10:20:00-03:00", "2026-11-28T10:30:00-03:00"],
                            "y": [base, base + 1_000_000, base + 2_500_000],
                            "name": name, "type": "scatter", "mode": "lines+markers"
                        })
                    };
                    Json(json!({
                        "graph": {
                            "data": [trace("Zé Ninguém", 900_000_000), trace("Bob", 1_000)],
                            "layout": {"title": {"text": "Experience"}}
                        },
                        "stats": {"total_points": 6, "period_days": 1},
                        "comparison": [
                            {"name": "Zé Ninguém", "rank": 1, "total_players": 40, "percentile": 100.0,
                             "total_exp_period": 2_500_000, "current_total_exp": 902_500_000},
                            {"name": "Bob", "rank": 38, "total_players": 40, "percentile": 7.5,
                             "total_exp_period": 2_500_000, "current_total_exp": 2_501_000}
                        ]
                    }))
                }),
            );
    }
    let app = router.fallback_service(worldpool::api::app(state.clone()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = shutdown.clone();
    let events_stop = state.shutdown_token();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop.cancelled().await;
                events_stop.cancel();
            })
            .await;
    });
    FakeApi {
        base: format!("http://{addr}"),
        fake,
        seen,
        stop: shutdown,
        _dir: dir,
    }
}

/// The rankings panels against the documented shapes (stubs of the
/// endpoints), and their message when the endpoints fail (the real ones
/// without a store: 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rankings_panels_render_the_documented_shapes_or_say_they_are_missing() {
    let api = fake_api(3, true, true).await;
    let seen = api.seen.clone();
    let browser = Browser::start(1280, 800).await;
    browser.goto(&format!("{}/", api.base)).await;
    let top = browser
        .wait_for(
            "the top players",
            DEADLINE,
            "const li = [...document.querySelectorAll('#top-list li')]; \
             return li.length === 3 ? li.map(l => l.dataset.name) : null;",
            json!([]),
        )
        .await;
    assert_eq!(top, json!(["Zé Ninguém", "Ana Lúcia", "Bob"]));
    let query = seen.lock().expect("lock").top_query.clone().expect("query");
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params.get("limit").map(String::as_str), Some("10"));
    for p in ["datetime1", "datetime2"] {
        let t = params
            .get(p)
            .unwrap_or_else(|| panic!("{p} missing: {query}"));
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{p}={t}");
    }

    // Clicking a name plots it; a second name is added from the keyboard.
    browser
        .click("#top-list li[data-name=\"Zé Ninguém\"] button")
        .await;
    browser
        .wait_for(
            "a first chart",
            DEADLINE,
            "return document.querySelector('#graph-chart .uplot canvas') !== null;",
            json!([]),
        )
        .await;
    browser
        .type_into("#graph-names", "Zé Ninguém, Bob\u{E007}")
        .await;
    let comparison = browser
        .wait_for(
            "the chart and the comparison of two players",
            DEADLINE,
            "const rows = [...document.querySelectorAll('#graph-comparison tbody tr')]; \
             const legend = [...document.querySelectorAll('#graph-chart .u-legend .u-series .u-label')] \
               .map(l => l.textContent); \
             return rows.length === 2 && legend.includes('Bob') \
               ? rows.map(r => r.textContent) : null;",
            json!([]),
        )
        .await;
    assert!(
        comparison[1]
            .as_str()
            .is_some_and(|t| t.contains("38 / 40")),
        "{comparison}"
    );
    let body = seen
        .lock()
        .expect("lock")
        .graph_body
        .clone()
        .expect("graph body");
    assert_eq!(body["names"], json!(["Zé Ninguém", "Bob"]));
    assert!(
        body["datetime1"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{body}"
    );
    let errors = console_errors(&browser.console().await);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(api);

    // The real endpoints without a store (nor stubs): they answer 503
    // `no_store`, and each panel shows it.
    let api = fake_api(3, false, false).await;
    browser.goto(&format!("{}/", api.base)).await;
    let msg = browser
        .wait_for(
            "the top players panel's error message",
            DEADLINE,
            "const p = document.getElementById('top-panel'); \
             return p.dataset.state === 'error' ? document.getElementById('top-msg').textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        msg.as_str()
            .is_some_and(|m| m.contains("503") && m.contains("no_store")),
        "{msg}"
    );
    browser.type_into("#graph-names", "Bob\u{E007}").await;
    let msg = browser
        .wait_for(
            "the chart panel's error message",
            DEADLINE,
            "const p = document.getElementById('graph-panel'); \
             return p.dataset.state === 'error' ? document.getElementById('graph-msg').textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        msg.as_str()
            .is_some_and(|m| m.contains("503") && m.contains("no_store")),
        "{msg}"
    );
    // No store behind this API: the deltas panel says so.
    let msg = browser
        .wait_for(
            "the deltas panel's message",
            DEADLINE,
            "const t = document.getElementById('deltas-msg').textContent; return t || null;",
            json!([]),
        )
        .await;
    assert!(msg.as_str().is_some_and(|m| m.contains("503")), "{msg}");
}

/// 100 workers and a burst of 2,000 events: the page keeps up (every row
/// ends in the last state sent), with no long frame; at phone width the
/// rows become cards with no sideways scrolling; the controls are
/// reachable from the keyboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_workers_a_burst_of_events_and_a_phone_screen() {
    use pool::PoolEvent;
    const PHASES: [&str; 3] = ["checking", "scraping", "sleeping"];

    let api = fake_api(100, true, false).await;
    let fake = api.fake.clone();
    let browser = Browser::start(1280, 800).await;
    browser.goto(&format!("{}/", api.base)).await;
    browser
        .wait_for(
            "100 rows, live",
            DEADLINE,
            "return document.getElementById('conn').dataset.state === 'live' \
             && document.querySelectorAll('#workers-body tr').length === 100;",
            json!([]),
        )
        .await;
    browser
        .eval(
            "window.__longest = 0; \
             new PerformanceObserver(l => { for (const e of l.getEntries()) \
               window.__longest = Math.max(window.__longest, e.duration); }) \
               .observe({type: 'longtask', buffered: false}); \
             setTimeout(() => { const t = performance.now(); while (performance.now() - t < 120) {} }, 0);",
            json!([]),
        )
        .await;
    // The observer sees a task of 120 ms (so a quiet burst means something).
    browser
        .wait_for(
            "the long-task observer to see a 120 ms task",
            DEADLINE,
            "return window.__longest >= 100;",
            json!([]),
        )
        .await;
    browser.eval("window.__longest = 0;", json!([])).await;
    // 2,000 events, about 4,000 a second (within the broadcast buffer: a
    // consumer that lags is disconnected, which this test must not see).
    let burst = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(5));
    for k in 0..2000usize {
        if k % 20 == 0 {
            pace.tick().await;
        }
        fake.emit(PoolEvent::Phase {
            worker: format!("World {:03}", k % 100),
            phase: PHASES[(k / 100) % 3].to_string(),
        });
    }
    let last = PHASES[19 % 3];
    browser
        .wait_for(
            "every row in the last phase sent",
            DEADLINE,
            "return [...document.querySelectorAll('#workers-body tr .c-phase')] \
               .every(td => td.textContent === arguments[0]);",
            json!([last]),
        )
        .await;
    let longest = browser.eval("return window.__longest;", json!([])).await;
    let reconnects = browser
        .eval(
            "return document.querySelectorAll('#event-log li[data-event=system]').length;",
            json!([]),
        )
        .await;
    assert_eq!(reconnects, json!(0), "the page lost the stream");
    eprintln!(
        "2,000 events over 100 workers shown in {:?}; longest task {longest} ms",
        burst.elapsed()
    );

    // The keyboard reaches the controls: Tab from the token field lands on
    // the buttons in order.
    browser.click("#token").await;
    browser.press("\u{E004}").await;
    let focused = browser
        .eval(
            "return document.activeElement.id || document.activeElement.textContent;",
            json!([]),
        )
        .await;
    assert_eq!(focused, json!("token-forget"));

    // Phone width: cards, no sideways scrolling of the page.
    browser.set_viewport(390, 844).await;
    let layout = browser
        .wait_for(
            "the phone layout",
            DEADLINE,
            "const tr = document.querySelector('#workers-body tr'); \
             const td = tr.querySelector('.c-state'); \
             return getComputedStyle(tr).display === 'block' \
               ? {scroll: document.documentElement.scrollWidth, width: window.innerWidth, \
                  label: getComputedStyle(td, '::before').content} : null;",
            json!([]),
        )
        .await;
    assert!(
        layout["scroll"].as_f64() <= layout["width"].as_f64(),
        "the page scrolls sideways at phone width: {layout}"
    );
    assert_eq!(layout["label"], json!("\"State\""), "{layout}");
    let errors = console_errors(&browser.console().await);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
