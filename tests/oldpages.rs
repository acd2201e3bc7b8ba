//! The replaced system's own pages as the client: a `worldpool run` over the
//! demo site on 127.0.0.1, read the way those pages read it (ringts,
//! `static/app.js`, `vip_fast.html`): `JSON.parse` of the graph strings
//! into Plotly figures, the keys their tables and headers read, the console
//! stream's text lines, control sent with no credentials, and the status
//! times they show side by side; on SQLite and PostgreSQL. Then the same
//! control with a token configured.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoSite, DemoSiteOptions};

use crate::helper::api::{Api, sse_frames};
use crate::helper::supervisor::RunningPool;
use crate::helper::{free_port, wait_for_async};
use crate::store::TestDb;

const DEADLINE: Duration = Duration::from_secs(45);
const TOKEN: &str = "oldpages-t0ken";
const WORLD: &str = "Aurera";
/// In no guild of Aurera; not watched by the generated config.
const GUILDLESS: &str = "Andarilha";

/// `JSON.parse(text)` then `Plotly.newPlot(el, g.data, g.layout)`: the
/// field must be a string holding a figure with a `data` array and a
/// `layout` object.
#[track_caller]
pub fn page_figure(what: &str, field: &Value) -> Value {
    let text = field
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a string (JSON.parse would throw): {field}"));
    let fig: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: not valid JSON ({e}): {text}"));
    assert!(fig["data"].is_array(), "{what}: no data array: {fig}");
    assert!(fig["layout"].is_object(), "{what}: no layout object: {fig}");
    for t in fig["data"].as_array().into_iter().flatten() {
        let (x, y) = (t["x"].as_array(), t["y"].as_array());
        assert!(
            x.zip(y).is_some_and(|(x, y)| x.len() == y.len()),
            "{what}: a trace without matching x and y: {t}"
        );
        assert!(
            matches!(t["type"].as_str(), Some("bar" | "scatter")),
            "{what}: {t}"
        );
    }
    fig
}

/// The bar traces of a page figure.
pub fn bars(fig: &Value) -> Vec<Value> {
    fig["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "bar")
        .cloned()
        .collect()
}

/// A naive time as the replaced app wrote it (`isoformat()`, no offset).
fn naive(v: &Value) -> Option<NaiveDateTime> {
    let s = v.as_str()?;
    if s.ends_with('Z') || s.get(19..).is_some_and(|rest| rest.contains(['+', '-'])) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// `[2026-01-04 19:43:00] [LEVEL] …`: a console line as the page shows it.
fn console_line(data: &str) -> bool {
    let Some(rest) = data.strip_prefix('[') else {
        return false;
    };
    let Some((time, rest)) = rest.split_once("] [") else {
        return false;
    };
    NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").is_ok()
        && rest
            .split_once("] ")
            .is_some_and(|(level, _)| ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level))
}

/// The pool over the demo site, its config and its API client.
struct Pool {
    site: DemoSite,
    config: Config,
    pool: RunningPool,
    api: Api,
    _dir: tempfile::TempDir,
}

async fn start(url: &str, token: Option<&str>) -> Pool {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worldpool.toml");
    std::fs::write(&path, site.config_toml(url, Mode::Pool)).expect("config");
    let config = Config::load(&path).expect("the generated config is valid");
    let port = free_port();
    let pool = RunningPool::start(&path, port, token, false);
    let api = Api::at(format!("http://127.0.0.1:{port}"));
    let client = &api;
    wait_for_async("the API", DEADLINE, || async move {
        let r = client
            .http
            .get(format!("{}/health", client.base))
            .send()
            .await;
        r.ok().filter(|r| r.status().is_success())
    })
    .await;
    Pool {
        site,
        config,
        pool,
        api,
        _dir: dir,
    }
}

/// `fetch(url, {method: 'POST', headers: {'Content-Type':
/// 'application/json'}, body})`: what the pages send, no credentials.
async fn page_post(
    api: &Api,
    path: &str,
    body: Option<Value>,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut req = api
        .http
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json");
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn old_pages(db: TestDb) {
    let p = start(&db.url, None).await;
    let api = &p.api;
    let watched: Vec<String> = p
        .config
        .worlds
        .iter()
        .find(|w| w.name == WORLD)
        .map(|w| w.watch.clone())
        .unwrap_or_default();
    assert!(!watched.is_empty(), "the demo config watches players");
    let workers = p.config.worlds.len() + 1; // and the status watcher

    // The first pass, then a site update: deltas over two updates, and the
    // watched players read twice.
    wait_for_async("the first pass stored", DEADLINE, || async move {
        let (_, r) = api.get("/api/date-range").await;
        r["max"].is_string().then_some(())
    })
    .await;
    // Each player gains at one update in three (the demo's turns): three
    // site updates give every watched player a change.
    for _ in 0..3 {
        let (_, before) = api.get("/api/date-range").await;
        p.site.advance();
        wait_for_async("the site update stored", DEADLINE, || {
            let before = before["max"].clone();
            async move {
                let (_, r) = api.get("/api/date-range").await;
                (r["max"].is_string() && r["max"] != before).then_some(())
            }
        })
        .await;
    }

    // generateVisualization: JSON.parse(data.graph), the stats table and the
    // comparison cards.
    let (_, top) = api.get("/api/top-players?limit=1").await;
    let player = top[0]["name"].as_str().expect("a top player").to_string();
    let (status, g) = page_post(
        api,
        "/api/graph",
        Some(json!({"names": [player], "datetime1": "", "datetime2": ""})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{g}");
    let fig = page_figure("graph", &g["graph"]);
    let b = bars(&fig);
    assert_eq!(b.len(), 1, "{fig}");
    assert_eq!(b[0]["name"], player.as_str());
    assert!(
        b[0]["y"]
            .as_array()
            .is_some_and(|y| y.iter().any(|v| v.as_i64() > Some(0))),
        "experience drawn: {fig}"
    );
    let stats = g["stats"].as_array().expect("stats");
    assert_eq!(stats.len(), 1);
    // renderStatsTable: stat.name, stat['Total EXP'], …, stat.Updates.
    assert_eq!(stats[0]["name"], player.as_str());
    for k in ["Total EXP", "Average EXP", "Updates", "Max EXP", "Min EXP"] {
        assert!(stats[0][k].is_number(), "{k}: {g}");
    }
    assert_eq!(stats[0]["Total EXP"], top[0]["total_exp"]);
    let c = &g["comparison"][0];
    for k in [
        "rank",
        "total_players",
        "percentile",
        "total_exp_period",
        "current_total_exp",
    ] {
        assert!(c[k].is_number(), "{k}: {c}");
    }

    // Clicking a player: the same parse.
    let (status, pg) = api
        .get(&format!("/api/player-graph/{}", urlencode(&player)))
        .await;
    assert_eq!(status, 200, "{pg}");
    assert_eq!(pg["player"], player.as_str());
    assert_eq!(bars(&page_figure("player graph", &pg["graph"])).len(), 1);

    // A watched player's window: JSON.parse(data.graph_data).
    let vip = watched[0].clone();
    let (fig, vg) = wait_for_async("the watched player's graph", DEADLINE, || {
        let vip = vip.clone();
        async move {
            let (status, v) = page_post(
                api,
                "/api/vip/graph",
                Some(json!({"name": vip, "world": WORLD})),
                None,
            )
            .await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["success"], true, "{v}");
            let fig = page_figure("graph_data", &v["graph_data"]);
            (!bars(&fig).is_empty()).then_some((fig, v))
        }
    })
    .await;
    assert!(
        fig["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|t| t["yaxis"] == "y2")),
        "online minutes on the second axis: {fig}"
    );
    for k in ["total_exp", "avg_exp", "max_exp", "updates"] {
        assert!(vg["stats"][k].is_number(), "{k}: {vg}");
    }

    // The header: health and RAM.
    let h = wait_for_async("healthy", DEADLINE, || async move {
        let (status, h) = api.get("/healthz").await;
        (status == 200 && h["status"] == "healthy").then_some(h)
    })
    .await;
    assert!(h["checks"].is_object() && h.get("reason").is_none(), "{h}");
    assert_eq!(h["checks"]["database_accessible"], true, "{h}");
    let m = wait_for_async("every process measured", DEADLINE, || async move {
        let (_, m) = api.get("/memusage").await;
        (m["process"]["processes"] == json!(workers + 1)).then_some(m)
    })
    .await;
    let rss_mb = m["process"]["rss_mb"].as_f64().expect("rss_mb");
    let pss_mb = m["process"]["pss_mb"].as_f64().expect("pss_mb");
    assert!(rss_mb > 1.0 && pss_mb > 0.0 && pss_mb <= rss_mb, "{m}");
    assert!(
        m["process"]["percent"].as_f64().is_some_and(|p| p > 0.0),
        "{m}"
    );
    for k in ["used_mb", "total_mb", "percent"] {
        assert!(m["system"][k].as_f64().is_some_and(|x| x > 0.0), "{k}: {m}");
    }
    if let Some(pid) = p.pool.pid() {
        // The supervisor's own RSS is part of it.
        let own = pool::procfs::memory(pid).expect("the supervisor's memory");
        assert!(
            m["process"]["rss_bytes"].as_u64() > Some(own.rss / 2),
            "{m}"
        );
    }

    // The console tab: text lines, [CONNECTED] first.
    let mut console = api.stream("/api/console-stream").await;
    let mut buf = String::new();
    let first = sse_frames(&mut console, &mut buf, |f| !f.is_empty()).await;
    assert_eq!(first[0].1, "[CONNECTED] Console stream started");
    let mut structured = api.stream("/api/console-stream?format=json").await;

    // "Update Now", no credentials: accepted (409 while a worker scrapes,
    // with the message the page shows).
    let answer = wait_for_async("a manual update accepted", DEADLINE, || async move {
        let (status, v) = page_post(api, "/api/manual-update", None, None).await;
        match status {
            202 => Some(v),
            409 => {
                assert!(v["message"].is_string(), "{v}");
                None
            }
            other => panic!("manual update answered {other}: {v}"),
        }
    })
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    let frames = sse_frames(&mut console, &mut buf, |f| {
        f.iter()
            .any(|(_, d)| d.contains("checking now, as requested"))
    })
    .await;
    for (name, data) in &frames {
        assert_eq!(name, "message");
        assert!(console_line(data), "not a console line: {data}");
    }
    let mut sbuf = String::new();
    let json_frames = sse_frames(&mut structured, &mut sbuf, |f| !f.is_empty()).await;
    let v: Value = serde_json::from_str(&json_frames[0].1).expect("?format=json is JSON");
    assert!(v["line"].as_str().is_some_and(console_line), "{v}");

    // Add and remove a watched player, no credentials; a page of another
    // origin may not.
    let body = json!({"name": GUILDLESS, "world": WORLD});
    let (status, v) = page_post(
        api,
        "/api/vip/add",
        Some(body.clone()),
        Some("https://elsewhere.example"),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("foreign_origin")),
        "{v}"
    );
    let (status, v) = page_post(api, "/api/vip/add", Some(body.clone()), Some(&api.base)).await;
    assert_eq!((status, &v["success"]), (200, &json!(true)), "{v}");
    let (_, list) = api.get("/api/vip/list").await;
    assert!(
        list["vips"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["name"] == GUILDLESS)),
        "{list}"
    );
    let (status, v) = page_post(api, "/api/vip/remove", Some(body), None).await;
    assert_eq!((status, &v["success"]), (200, &json!(true)), "{v}");

    // LAST CHECK beside LAST UPDATE: both the site's wall time, no offset.
    let (_, st) = api.get("/api/scraper-status").await;
    let check = naive(&st["last_check"]).unwrap_or_else(|| panic!("naive last_check: {st}"));
    assert!(
        naive(&st["last_update"]).is_some(),
        "naive last_update: {st}"
    );
    let site_now = (Utc::now()
        + chrono::Duration::minutes(i64::from(p.config.site.utc_offset_minutes)))
    .naive_utc();
    assert!(
        (site_now - check).num_seconds().abs() < 120,
        "last_check {check} is the site's time (now there {site_now})"
    );

    drop(console);
    drop(structured);
    let mut pool = p.pool;
    pool.stop();
    let log = pool.log();
    assert!(!log.contains("panicked"), "{log}");
    p.site.shutdown().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_pages_read_worldpool_sqlite() {
    old_pages(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_pages_read_worldpool_postgres() {
    old_pages(TestDb::postgres().await).await;
}

/// The header's health from a real pool: a world whose worker cannot start
/// makes it degraded (named in `reason`, still 200); no worker able to run
/// makes it unhealthy (503), which the page shows as "✗ Unhealthy".
/// A pool over the test worker in `mode`, once `/healthz` says `want`: the
/// pool, the HTTP status and the answer.
async fn health_when(
    config: &std::path::Path,
    mode: &str,
    want: &'static str,
) -> (RunningPool, u16, Value) {
    let port = free_port();
    let pool = RunningPool::with_test_workers(config, port, mode);
    let api = Api::at(format!("http://127.0.0.1:{port}"));
    let client = &api;
    let (status, h) = wait_for_async(want, DEADLINE, || async move {
        let r = client
            .http
            .get(format!("{}/healthz", client.base))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        let h: Value = r.json().await.ok()?;
        (h["status"] == want).then_some((status, h))
    })
    .await;
    (pool, status, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worlds.toml");
    std::fs::write(
        &config,
        format!(
            "[pool]\nmin_uptime = \"300ms\"\nstop_grace = \"3s\"\n\
             [storage]\nurl = \"sqlite://{}\"\n\
             [[worlds]]\nname = \"Alpha\"\nguilds = [\"G\"]\n\
             [[worlds]]\nname = \"Beta\"\nguilds = [\"G\"]\n",
            dir.path().join("h.db").display()
        ),
    )
    .expect("config");

    let (mut pool, status, h) = health_when(&config, "idle,Beta=fail-start", "degraded").await;
    assert_eq!(status, 200, "{h}");
    let reason = h["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`Beta`") && !reason.contains("`Alpha`"),
        "{h}"
    );
    assert_eq!(h["checks"]["scraper_alive"], true, "{h}");
    pool.stop();

    let (mut pool, status, h) = health_when(&config, "fail-start", "unhealthy").await;
    assert_eq!(status, 503, "{h}");
    assert!(
        h["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`Alpha`") && r.contains("`Beta`")),
        "{h}"
    );
    assert_eq!(h["checks"]["scraper_alive"], false, "{h}");
    pool.stop();
    assert!(!pool.log().contains("panicked"));
}

/// With a token configured, the pages' control calls (no credentials) get
/// 401; the token as a bearer header or as the old `password` field works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_pages_control_needs_the_token_when_one_is_set() {
    let db = TestDb::sqlite().await;
    let p = start(&db.url, Some(TOKEN)).await;
    let api = &p.api;
    let body = json!({"name": GUILDLESS, "world": WORLD});
    for (path, body) in [
        ("/api/manual-update", None),
        ("/api/vip/add", Some(body.clone())),
        ("/api/vip/remove", Some(body.clone())),
    ] {
        let (status, v) = page_post(api, path, body, None).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (401, Some("unauthorized")),
            "{path}: {v}"
        );
    }
    let (status, v) = page_post(
        api,
        "/api/vip/add",
        Some(json!({"name": GUILDLESS, "world": WORLD, "password": TOKEN})),
        None,
    )
    .await;
    assert_eq!((status, &v["success"]), (200, &json!(true)), "{v}");
    let (status, v) = api.post("/api/vip/remove", body, Some(TOKEN)).await;
    assert_eq!((status, &v["success"]), (200, &json!(true)), "{v}");
    wait_for_async("a manual update with the token", DEADLINE, || async move {
        let (status, v) = api.post("/api/manual-update", None, Some(TOKEN)).await;
        match status {
            202 => Some(()),
            409 => None,
            other => panic!("manual update answered {other}: {v}"),
        }
    })
    .await;
    let mut pool = p.pool;
    pool.stop();
    p.site.shutdown().await;
}

/// `/api/workers` lists the guilds the site did not know in a world's last
/// run (the demo's Cèlesta is configured with "Unknown Guild").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_workers_lists_the_guilds_the_site_does_not_know() {
    let db = TestDb::sqlite().await;
    let p = start(&db.url, None).await;
    let api = &p.api;
    let world = p
        .config
        .worlds
        .iter()
        .find(|w| w.guilds.iter().any(|g| g == "Unknown Guild"))
        .expect("the demo configures an unknown guild")
        .name
        .clone();
    let path = format!(
        "/api/workers/{}",
        percent_encoding::utf8_percent_encode(&world, percent_encoding::NON_ALPHANUMERIC)
    );
    let one = wait_for_async("a stored run listing the unknown guild", DEADLINE, || {
        let path = path.clone();
        async move {
            let (status, v) = api.get(&path).await;
            (status == 200 && v["unknown_guilds"] == json!(["Unknown Guild"])).then_some(v)
        }
    })
    .await;
    assert_eq!(one["world"], json!(world), "{one}");
    let (_, all) = api.get("/api/workers").await;
    for w in all.as_array().expect("array") {
        let expected = if w["world"] == json!(world) {
            json!(["Unknown Guild"])
        } else {
            json!([])
        };
        assert_eq!(w["unknown_guilds"], expected, "{w}");
    }
}
