//! The replaced system's data API, checked the way its frontend uses it:
//! a store filled by a real scrape of the demo site, the real router served
//! on 127.0.0.1, the frontend's calls in its order, every key and type of
//! every answer against the documented shapes; on SQLite and PostgreSQL.
//! Also: manual updates, the console stream, CSV downloads, the worker
//! loop's status pages and "check now".

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use worldpool::api::fake::FakeControl;
use worldpool::api::{self, ApiState, CompatSettings, Control};
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoSite, DemoSiteOptions};
use worldpool::scrape::{Reporter, Scraper, process_world};
use worldpool::site::Clock;
use worldpool::store::Store;

use crate::helper::api::{Api, sse_frames};
use crate::helper::demo::Demo;
use crate::helper::wait_for_async;

use crate::store::TestDb;

const TOKEN: &str = "compat-t0ken";
const DEADLINE: Duration = Duration::from_secs(20);

/// The kinds of JSON values the documented shapes use.
#[derive(Debug, Clone, Copy)]
enum K {
    Str,
    /// A naive site-local time, `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
    Time,
    TimeOrNull,
    Int,
    Num,
    Bool,
    Arr,
    Obj,
}

fn is_time(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        b.len() >= 19
            && chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
            && !s.ends_with('Z')
            && !s[19..].contains(['+', '-'])
    })
}

fn kind_ok(v: &Value, k: K) -> bool {
    match k {
        K::Str => v.is_string(),
        K::Time => is_time(v),
        K::TimeOrNull => v.is_null() || is_time(v),
        K::Int => v.is_i64() || v.is_u64(),
        K::Num => v.is_number(),
        K::Bool => v.is_boolean(),
        K::Arr => v.is_array(),
        K::Obj => v.is_object(),
    }
}

/// `v` is an object with exactly these keys, each of its kind.
#[track_caller]
fn shape(what: &str, v: &Value, want: &[(&str, K)]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected: Vec<&str> = want.iter().map(|(k, _)| *k).collect();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{what}: keys of {v}");
    for (key, kind) in want {
        assert!(
            kind_ok(&v[*key], *kind),
            "{what}: `{key}` is not {kind:?} in {v}"
        );
    }
}

#[track_caller]
fn error_shape(what: &str, status: u16, v: &Value) -> String {
    shape(
        what,
        v,
        &[("error", K::Str), ("message", K::Str), ("status", K::Int)],
    );
    assert_eq!(v["status"], status, "{what}: {v}");
    v["error"].as_str().unwrap_or_default().to_string()
}

struct Scraped {
    site: DemoSite,
    config: Config,
    store: Store,
    _dir: tempfile::TempDir,
}

/// The demo site on a manual clock, scraped for real into `url`: a first
/// pass of every world, then three site updates; the status page kept as
/// the worker loop keeps it.
async fn scraped_store(db: &TestDb) -> Scraped {
    let clock = Clock::manual(
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time"),
    );
    let site = DemoSite::start(DemoSiteOptions {
        now: clock.clone(),
        ..DemoSiteOptions::default()
    })
    .await
    .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worldpool.toml");
    std::fs::write(&path, site.config_toml(&db.url, Mode::Pool)).expect("config");
    let config = Config::load(&path).expect("generated config is valid");
    let scraper = Scraper::new(&config, clock.clone()).expect("scraper");
    let store = db.open().await;
    for round in 0..4 {
        if round > 0 {
            clock.advance(chrono::Duration::minutes(10));
            site.advance();
        }
        let status = scraper.status().await.expect("status page");
        for world in &config.worlds {
            let ws = worldpool::site::find_world(&status, &world.name).expect("world listed");
            process_world(
                &scraper,
                &store,
                &config,
                world,
                ws.update_time,
                &Reporter::none(),
                &CancellationToken::new(),
            )
            .await
            .expect("processed");
            let fetch = scraper
                .client()
                .now()
                .with_timezone(&scraper.client().offset());
            store
                .save_status_page(&worldpool::scrape::status_page(
                    ws,
                    &config.site.selectors.routine,
                    fetch,
                ))
                .await
                .expect("status page kept");
        }
    }
    Scraped {
        site,
        config,
        store,
        _dir: dir,
    }
}

const FEED_DELTA: [(&str, K); 6] = [
    ("name", K::Str),
    ("deltaexp", K::Int),
    ("update_time", K::Time),
    ("prev_update_time", K::Time),
    ("world", K::Str),
    ("guild", K::Str),
];

/// The replaced frontend's calls, in its order, against a scraped store.
async fn replaced_frontend_calls(db: TestDb) {
    let s = scraped_store(&db).await;
    let worlds: Vec<String> = s.config.worlds.iter().map(|w| w.name.clone()).collect();
    let fake = Arc::new(FakeControl::new(&worlds));
    let state = ApiState::new(fake.clone(), Some(s.store.clone()), Some(TOKEN.into()))
        .with_compat(CompatSettings::from_config(&s.config));
    let api = Api::serve(state).await;

    // loadPlayers
    let (status, players) = api.get("/api/players").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = players
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("names are strings"))
        .collect();
    assert!(names.len() > 10, "{names:?}");
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, once each");
    assert!(names.contains(&"Zé Pequeno"));
    let (_, aurera) = api.get("/api/players?world=Aurera&guild=Red%20Rose").await;
    let aurera = aurera.as_array().expect("array");
    assert!(!aurera.is_empty() && aurera.len() < names.len());

    // loadDateRange
    let (status, range) = api.get("/api/date-range").await;
    assert_eq!(status, 200);
    shape("date-range", &range, &[("min", K::Time), ("max", K::Time)]);
    let min = range["min"].as_str().expect("min").to_string();
    let max = range["max"].as_str().expect("max").to_string();
    assert!(min < max, "{range}");
    // The site's own wall time (UTC-3: the clock says 12:00 UTC), no offset.
    assert!(
        min.starts_with("2026-11-29T08:") || min.starts_with("2026-11-29T09:"),
        "{min}"
    );
    let (_, none) = api.get("/api/date-range?world=Nowhere").await;
    assert_eq!(none, json!({"min": null, "max": null}));

    // loadTopPlayers
    let (status, top) = api.get("/api/top-players?limit=10").await;
    assert_eq!(status, 200);
    let top = top.as_array().expect("array");
    assert_eq!(top.len(), 10);
    for t in top {
        shape("top player", t, &[("name", K::Str), ("total_exp", K::Int)]);
    }
    let totals: Vec<i64> = top
        .iter()
        .map(|t| t["total_exp"].as_i64().unwrap_or(0))
        .collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");

    // loadRecentUpdates
    let (status, recent) = api.get("/api/recent-updates?limit=10").await;
    assert_eq!(status, 200);
    let recent = recent.as_array().expect("array");
    assert_eq!(recent.len(), 10);
    for r in recent {
        let mut want = FEED_DELTA.to_vec();
        want.push(("update time", K::Time));
        shape("recent update", r, &want);
    }

    // loadDeltas (polled), with and without filters.
    let (status, feed) = api.get("/api/delta?limit=100").await;
    assert_eq!(status, 200);
    shape("delta feed", &feed, &[("deltas", K::Arr)]);
    let deltas = feed["deltas"].as_array().expect("deltas");
    assert!(deltas.len() > 20 && deltas.len() <= 100, "{}", deltas.len());
    let (_, five) = api.get("/api/delta?limit=5").await;
    assert_eq!(five["deltas"].as_array().map(Vec::len), Some(5));
    for d in deltas {
        shape("delta", d, &FEED_DELTA);
    }
    assert_eq!(deltas[0]["update_time"], max.as_str(), "newest first");
    assert!(deltas[0]["prev_update_time"].as_str() < deltas[0]["update_time"].as_str());
    let (_, same) = api.get("/api/delta?limit=100&world=&guild=").await;
    assert_eq!(same, feed, "empty filters are no filters");
    let (_, filtered) = api
        .get("/api/delta?limit=5&world=Aurera&guild=Red%20Rose")
        .await;
    let filtered = filtered["deltas"].as_array().expect("deltas");
    assert_eq!(filtered.len(), 5);
    assert!(
        filtered
            .iter()
            .all(|d| d["world"] == "Aurera" && d["guild"] == "Red Rose")
    );
    let (_, cel) = api.get("/api/delta?world=C%C3%A8lesta").await;
    assert!(
        cel["deltas"]
            .as_array()
            .expect("deltas")
            .iter()
            .all(|d| d["world"] == "Cèlesta")
    );

    // checkScraperStatus
    let (status, sc) = api.get("/api/scraper-status").await;
    assert_eq!(status, 200);
    shape(
        "scraper status",
        &sc,
        &[
            ("running", K::Bool),
            ("state", K::Str),
            ("last_check", K::Str),
            ("process_alive", K::Bool),
            ("pid", K::Int),
            ("last_update", K::Time),
            ("workers", K::Obj),
        ],
    );
    assert_eq!(sc["last_update"], max.as_str());

    // loadRankingsTable: all time (empty dates), then the period the date
    // inputs send (`min.slice(0, 16)`: no seconds).
    let (status, all) = api
        .post(
            "/api/rankings-table",
            Some(json!({"datetime1": "", "datetime2": ""})),
            None,
        )
        .await;
    assert_eq!(status, 200);
    shape("rankings", &all, &[("rankings", K::Arr)]);
    let rankings = all["rankings"].as_array().expect("rankings");
    assert_eq!(rankings.len(), names.len());
    for r in rankings {
        shape(
            "ranking",
            r,
            &[
                ("name", K::Str),
                ("total_exp", K::Int),
                ("updates", K::Int),
                ("avg_exp", K::Num),
                ("max_exp", K::Int),
                ("min_exp", K::Int),
            ],
        );
        assert!(r["min_exp"].as_i64() <= r["max_exp"].as_i64());
    }
    let last_update_only = json!({"datetime1": &max[..16], "datetime2": &max[..16]});
    let (_, period) = api
        .post("/api/rankings-table", Some(last_update_only), None)
        .await;
    let period = period["rankings"].as_array().expect("rankings");
    assert!(!period.is_empty() && period.len() < rankings.len());
    assert!(period.iter().all(|r| r["updates"] == 1));
    let (_, top_period) = api
        .get(&format!(
            "/api/top-players?limit=3&datetime1={}&datetime2={}",
            &min[..16],
            &max[..16]
        ))
        .await;
    assert_eq!(top_period.as_array().map(Vec::len), Some(3));

    // generateVisualization: two players.
    let two = [names[0], "Zé Pequeno"];
    let (status, g) = api
        .post(
            "/api/graph",
            Some(json!({"names": two, "datetime1": null, "datetime2": null})),
            None,
        )
        .await;
    assert_eq!(status, 200);
    shape(
        "graph answer",
        &g,
        &[
            ("graph", K::Str),
            ("stats", K::Arr),
            ("comparison", K::Arr),
            ("figure", K::Obj),
        ],
    );
    // The replaced pages' figure: JSON text of bars (and trend lines).
    let page = crate::oldpages::page_figure("graph", &g["graph"]);
    let bars = crate::oldpages::bars(&page);
    assert_eq!(bars.len(), 2, "{page}");
    for t in &bars {
        assert!(two.contains(&t["name"].as_str().unwrap_or_default()), "{t}");
    }
    // worldpool's own cumulative figure, times with their offset.
    shape(
        "figure",
        &g["figure"],
        &[("data", K::Arr), ("layout", K::Obj)],
    );
    let traces = g["figure"]["data"].as_array().expect("traces");
    assert_eq!(traces.len(), 2);
    for t in traces {
        assert!(two.contains(&t["name"].as_str().unwrap_or_default()), "{t}");
        assert_eq!(t["type"], "scatter");
        assert!(t["mode"].is_string());
        let x = t["x"].as_array().expect("x");
        let y = t["y"].as_array().expect("y");
        assert!(!x.is_empty() && x.len() == y.len());
        assert!(
            x.iter().all(|v| v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())),
            "{t}"
        );
        let ys: Vec<i64> = y.iter().map(|v| v.as_i64().expect("int")).collect();
        assert!(ys.windows(2).all(|w| w[0] <= w[1]), "cumulative: {ys:?}");
    }
    for st in g["stats"].as_array().expect("stats") {
        shape(
            "stats row",
            st,
            &[
                ("name", K::Str),
                ("Total EXP", K::Int),
                ("Average EXP", K::Num),
                ("Updates", K::Int),
                ("Max EXP", K::Int),
                ("Min EXP", K::Int),
            ],
        );
    }
    let comparison = g["comparison"].as_array().expect("comparison");
    assert_eq!(comparison.len(), 2);
    for c in comparison {
        shape(
            "comparison",
            c,
            &[
                ("name", K::Str),
                ("rank", K::Int),
                ("total_players", K::Int),
                ("percentile", K::Num),
                ("total_exp_period", K::Int),
                ("current_total_exp", K::Int),
            ],
        );
        assert!(c["rank"].as_u64() <= c["total_players"].as_u64());
        assert!(c["current_total_exp"].as_i64() > Some(0));
    }
    let (status, e) = api
        .post("/api/graph", Some(json!({"names": []})), None)
        .await;
    assert_eq!(error_shape("graph without names", 400, &e), "bad_body");
    assert_eq!(status, 400);

    // showPlayerGraph (URL-encoded, with and without the period).
    let (status, pg) = api.get("/api/player-graph/Z%C3%A9%20Pequeno").await;
    assert_eq!(status, 200);
    shape(
        "player graph",
        &pg,
        &[("graph", K::Str), ("player", K::Str), ("figure", K::Obj)],
    );
    assert_eq!(pg["player"], "Zé Pequeno");
    let page = crate::oldpages::page_figure("player graph", &pg["graph"]);
    assert_eq!(crate::oldpages::bars(&page).len(), 1, "{page}");
    assert_eq!(pg["figure"]["data"][0]["type"], "scatter");
    let (_, pg) = api
        .get(&format!(
            "/api/player-graph/Z%C3%A9%20Pequeno?datetime1={}&datetime2={}",
            &max[..16],
            &max[..16]
        ))
        .await;
    let page = crate::oldpages::page_figure("player graph", &pg["graph"]);
    let traces = page["data"].as_array().expect("traces");
    assert!(
        traces
            .iter()
            .all(|t| t["x"].as_array().is_some_and(|x| x.len() <= 1)),
        "one update in the period: {pg}"
    );

    // Status data: every world's last status page.
    let (status, sd) = api.get("/api/status-data").await;
    assert_eq!(status, 200);
    shape(
        "status data",
        &sd,
        &[("fetch_time", K::Time), ("worlds", K::Obj)],
    );
    let sd_worlds = sd["worlds"].as_object().expect("worlds");
    assert_eq!(sd_worlds.len(), worlds.len());
    for (world, rows) in sd_worlds {
        let rows = rows.as_array().expect("rows");
        assert!(!rows.is_empty(), "{world}");
        for r in rows {
            shape(
                "status routine",
                r,
                &[
                    ("rotina", K::Str),
                    ("last update", K::TimeOrNull),
                    ("time_outdated", K::Str),
                    ("status", K::Str),
                ],
            );
        }
    }
    // Every routine row of the world's block, as the demo site shows it.
    let names: Vec<&str> = sd_worlds["Aurera"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["rotina"].as_str())
        .collect();
    assert_eq!(names, ["Online", "Daily Raw Ranking", "Deaths/Kills"]);
    for r in sd_worlds["Aurera"].as_array().expect("rows") {
        let status = r["status"].as_str().unwrap_or_default();
        assert!(status == "Atualizado" || status == "Desatualizado", "{r}");
        assert!(
            r["time_outdated"]
                .as_str()
                .is_some_and(|t| t.ends_with("min")),
            "{r}"
        );
    }

    // Scraping config, from the config file; writing it is refused.
    let (status, cfg) = api.get("/api/scraping-config").await;
    assert_eq!(status, 200);
    let cfg = cfg.as_array().expect("array");
    assert_eq!(cfg.len(), worlds.len());
    for c in cfg {
        shape(
            "scraping config",
            c,
            &[("world", K::Str), ("guilds", K::Arr)],
        );
    }
    let (status, e) = api
        .post("/api/scraping-config", Some(json!({"config": []})), None)
        .await;
    assert_eq!(status, 405);
    error_shape("scraping config POST", 405, &e);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("config file") && m.contains("reload")),
        "{e}"
    );

    // Downloads: the replaced system's columns, every row.
    let (status, ctype, csv) = api.text("/api/download/deltas").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["name", "deltaexp", "update time", "world", "guild"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let total_updates: i64 = rankings
        .iter()
        .map(|r| r["updates"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(rows.len() as i64, total_updates);
    assert!(rows.iter().all(|r| r[1].parse::<i64>().is_ok()
        && chrono::NaiveDateTime::parse_from_str(&r[2], "%Y-%m-%d %H:%M:%S").is_ok()));
    let (status, _, csv) = api.text("/api/download/exps").await;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["name", "exp", "last update", "world", "guild"]
    );
    let exps = reader.records().count();
    let stored_players: usize = {
        let mut n = 0;
        for w in &worlds {
            n += s.store.players(w).await.expect("players").len();
        }
        n
    };
    assert_eq!(exps, stored_players);

    // Health.
    let (status, h) = api.get("/health").await;
    assert_eq!(status, 200);
    shape("health", &h, &[("status", K::Str), ("timestamp", K::Time)]);
    assert_eq!(h["status"], "healthy");

    // Manual update: token, 202, 409 while scraping.
    let (status, e) = api.post("/api/manual-update", None, None).await;
    assert_eq!(status, 401);
    error_shape("manual update without token", 401, &e);
    let (status, ok) = api.post("/api/manual-update", None, Some(TOKEN)).await;
    assert_eq!(status, 202, "{ok}");
    shape(
        "manual update",
        &ok,
        &[
            ("success", K::Bool),
            ("message", K::Str),
            ("worlds", K::Arr),
            ("busy", K::Arr),
        ],
    );
    assert_eq!(fake.checks().len(), worlds.len());
    fake.update("Aurera", |w| w.report.phase = Some("scraping".into()));
    let (status, e) = api
        .post("/api/manual-update?world=Aurera", None, Some(TOKEN))
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        error_shape("manual update while scraping", 409, &e),
        "conflict"
    );
    let (status, _) = api
        .post("/api/manual-update?world=Bellum", None, Some(TOKEN))
        .await;
    assert_eq!(status, 202);
    let (status, ok) = api.post("/api/manual-update", None, Some(TOKEN)).await;
    assert_eq!(status, 202);
    assert_eq!(ok["busy"], json!(["Aurera"]));
    let (status, _) = api
        .post("/api/manual-update?world=Nowhere", None, Some(TOKEN))
        .await;
    assert_eq!(status, 404);

    // Errors keep the shape; the documentation lists every path.
    let (status, e) = api.get("/api/delta?limit=lots").await;
    assert_eq!(status, 400);
    assert!(error_shape("bad limit", 400, &e) == "bad_parameter");
    let (status, e) = api.get("/api/top-players?datetime1=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("datetime1"))
    );
    let (_, doc) = api.get("/api/openapi.json").await;
    for path in [
        "/api/delta",
        "/api/recent-updates",
        "/api/top-players",
        "/api/rankings-table",
        "/api/players",
        "/api/date-range",
        "/api/graph",
        "/api/player-graph/{name}",
        "/api/status-data",
        "/api/scraping-config",
        "/api/manual-update",
        "/api/console-stream",
        "/api/download/deltas",
        "/api/download/exps",
        "/health",
        "/healthz",
        "/memusage",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} not documented");
    }

    api.stop().await;
    s.site.shutdown().await;
}

#[tokio::test]
async fn replaced_frontend_calls_sqlite() {
    replaced_frontend_calls(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn replaced_frontend_calls_postgres() {
    replaced_frontend_calls(TestDb::postgres().await).await;
}

/// A pool that cannot deliver "check now" (the default of the trait).
struct NoChannel(FakeControl);

impl Control for NoChannel {
    fn workers(&self) -> Vec<pool::WorkerStatus> {
        self.0.workers()
    }
    fn worker(&self, name: &str) -> Option<pool::WorkerStatus> {
        self.0.worker(name)
    }
    fn start<'a>(
        &'a self,
        name: &'a str,
    ) -> api::BoxFuture<'a, Result<pool::StateName, api::ControlError>> {
        self.0.start(name)
    }
    fn stop<'a>(
        &'a self,
        name: &'a str,
    ) -> api::BoxFuture<'a, Result<pool::StateName, api::ControlError>> {
        self.0.stop(name)
    }
    fn restart<'a>(
        &'a self,
        name: &'a str,
    ) -> api::BoxFuture<'a, Result<pool::StateName, api::ControlError>> {
        self.0.restart(name)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<pool::PoolEvent> {
        self.0.subscribe()
    }
}

#[tokio::test]
async fn manual_update_without_a_channel_says_so_and_accepts_the_form_password() {
    let control = Arc::new(NoChannel(FakeControl::new(&["Aurera"])));
    let api = Api::serve(ApiState::new(control, None, Some(TOKEN.into()))).await;
    let (status, e) = api.post("/api/manual-update", None, Some(TOKEN)).await;
    assert_eq!(status, 501);
    assert_eq!(error_shape("no channel", 501, &e), "not_supported");
    // The replaced system's write endpoints took a password form field.
    let fake = Arc::new(FakeControl::new(&["Aurera"]));
    let api2 = Api::serve(ApiState::new(fake.clone(), None, Some(TOKEN.into()))).await;
    let r = api2
        .http
        .post(format!("{}/api/manual-update", api2.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password={TOKEN}"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(fake.checks(), ["Aurera"]);
    let (status, _) = api2.get("/api/status-data").await;
    assert_eq!(status, 503, "no store");
    api.stop().await;
    api2.stop().await;
}

fn line(world: &str, level: &str, message: &str) -> worldpool::logging::ConsoleLine {
    worldpool::logging::ConsoleLine {
        time: Utc::now(),
        world: world.into(),
        level: level.into(),
        message: message.into(),
        stream: "stderr".into(),
    }
}

#[tokio::test]
async fn console_stream_carries_worker_lines_and_drops_laggards() {
    let fake = Arc::new(FakeControl::new(&["Aurera"]));
    let api = Api::serve(ApiState::new(fake, None, None)).await;
    // The replaced pages' form: text lines, `[CONNECTED]` first.
    let mut text = api.stream("/api/console-stream").await;
    let mut text_buf = String::new();
    let first = sse_frames(&mut text, &mut text_buf, |f| !f.is_empty()).await;
    assert_eq!(
        first[0],
        (
            "message".to_string(),
            "[CONNECTED] Console stream started".to_string()
        )
    );
    let (status, e) = api.get("/api/console-stream?format=xml").await;
    assert_eq!(error_shape("bad format", 400, &e), "bad_parameter");
    assert_eq!(status, 400);
    // worldpool's structured form.
    let mut resp = api.stream("/api/console-stream?format=json").await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/event-stream"))
    );
    let mut buf = String::new();
    // The handler subscribed before it answered: every line from now on
    // reaches this stream.
    worldpool::logging::publish_console(line("São Paulo", "WARN", "store unavailable; retrying"));
    let frames = sse_frames(&mut resp, &mut buf, |f| {
        f.iter().any(|(_, d)| d.contains("retrying"))
    })
    .await;
    let (name, data) = frames
        .iter()
        .find(|(_, d)| d.contains("retrying"))
        .expect("the line");
    assert_eq!(
        name, "message",
        "unnamed events: the old frontend's onmessage"
    );
    let v: Value = serde_json::from_str(data).expect("JSON data");
    shape(
        "console line",
        &v,
        &[
            ("time", K::Time),
            ("world", K::Str),
            ("level", K::Str),
            ("message", K::Str),
            ("stream", K::Str),
            ("line", K::Str),
        ],
    );
    assert_eq!(
        (v["world"].as_str(), v["level"].as_str()),
        (Some("São Paulo"), Some("WARN"))
    );
    assert!(
        v["line"]
            .as_str()
            .is_some_and(|l| l.contains("[WARN] [São Paulo] store unavailable"))
    );
    let lines = sse_frames(&mut text, &mut text_buf, |f| {
        f.iter().any(|(_, d)| d.contains("retrying"))
    })
    .await;
    let (_, shown) = lines
        .iter()
        .find(|(_, d)| d.contains("retrying"))
        .expect("the text line");
    assert_eq!(Some(shown.as_str()), v["line"].as_str(), "the same line");
    drop(text);

    // A consumer that does not keep up: this test's runtime has one thread,
    // so the stream cannot read while we publish; it is told and dropped,
    // and publishing never waited.
    // (A publish that waited for the reader would never return here.)
    for i in 0..(worldpool::logging::CONSOLE_BUFFER * 3) {
        worldpool::logging::publish_console(line("Aurera", "DEBUG", &format!("flood {i}")));
    }
    let frames = sse_frames(&mut resp, &mut buf, |_| false).await;
    assert_eq!(
        frames.last().map(|(n, _)| n.as_str()),
        Some("lagged"),
        "the stream ends with `lagged`"
    );
    api.stop().await;
}

#[tokio::test]
async fn downloads_stream_many_rows() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T09:00:00-03:00").expect("time");
    let players: Vec<worldpool::store::ScrapedPlayer> = (0..30_000)
        .map(|i| worldpool::store::ScrapedPlayer {
            name: format!("Player, \"{i}\""),
            guild: "G".into(),
            vocation: "Druid".into(),
            level: 1,
            experience: 1 + i,
        })
        .collect();
    store
        .write_run(&worldpool::store::NewRun {
            world: "W".into(),
            update_time: t,
            started_at: Utc::now(),
            players,
            reset_minutes: 602,
        })
        .await
        .expect("run");
    let fake = Arc::new(FakeControl::new(&["W"]));
    let api = Api::serve(ApiState::new(fake, Some(store), None)).await;
    let mut resp = api
        .http
        .get(format!("{}/api/download/deltas", api.base))
        .send()
        .await
        .expect("GET");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .is_ok_and(|d| d.contains("deltas.csv"))
    );
    let mut chunks = 0;
    let mut body = Vec::new();
    while let Some(c) = resp.chunk().await.expect("chunk") {
        chunks += 1;
        body.extend_from_slice(&c);
    }
    assert!(chunks > 3, "streamed in pieces, got {chunks}");
    let mut reader = csv::Reader::from_reader(body.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 30_000);
    assert_eq!(&rows[0][0], "Player, \"0\"", "quoted like pandas");
    assert_eq!(&rows[0][2], "2026-11-29 09:00:00");
    api.stop().await;
}

#[tokio::test]
async fn worker_loop_keeps_status_pages_and_checks_now() {
    let Demo { site, dir, url } = Demo::start(DemoSiteOptions::default()).await;
    // An hour between checks: only "check now" makes a second one soon.
    let toml = site
        .config_toml(&url, Mode::Single)
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    let path = dir.path().join("worldpool.toml");
    std::fs::write(&path, toml).expect("config");
    let config = Config::load(&path).expect("config");
    let worlds = site.world_names();
    let stop = CancellationToken::new();
    let check_now = worldpool::scrape::CheckNow::new();
    let task = tokio::spawn(worldpool::scrape::run_worker_with(
        config,
        worlds.clone(),
        Reporter::none(),
        stop.clone(),
        check_now.clone(),
    ));
    let store = Store::open(&url, 1).await.expect("store");
    let first = wait_for_async("a status page of every world", DEADLINE, || {
        let store = store.clone();
        let n = worlds.len();
        async move {
            let pages = store.status_pages().await.ok()?;
            (pages.len() == n).then_some(pages)
        }
    })
    .await;
    let fetched = first[0].fetch_time;
    // Every routine row of the world's block, as the site shows it.
    let names: Vec<&str> = first[0]
        .routines
        .iter()
        .map(|r| r.rotina.as_str())
        .collect();
    assert_eq!(
        names[..3],
        ["Online", "Daily Raw Ranking", "Deaths/Kills"],
        "{names:?}"
    );
    // Let the loop reach its sleep (every world stored), then ask.
    wait_for_async("a run of every world", DEADLINE, || {
        let store = store.clone();
        let worlds = worlds.clone();
        async move {
            let runs = store.runs(None, 100, None).await.ok()?;
            worlds
                .iter()
                .all(|w| runs.iter().any(|r| &r.world == w))
                .then_some(())
        }
    })
    .await;
    site.advance_world("Bellum");
    check_now.request();
    let want = site.update_time("Bellum");
    wait_for_async("the Bellum update, checked now", DEADLINE, || {
        let store = store.clone();
        async move {
            (store.world_state("Bellum").await.ok()?.last_update_time == want).then_some(())
        }
    })
    .await;
    // The kept page is the one read by that check: it shows the update.
    let pages = store.status_pages().await.expect("pages");
    let bellum = pages
        .iter()
        .find(|p| p.world == "Bellum")
        .expect("Bellum's status page");
    assert!(bellum.fetch_time >= fetched, "{bellum:?}");
    let ranking = bellum
        .routines
        .iter()
        .find(|r| r.rotina == "Daily Raw Ranking")
        .expect("the ranking routine row");
    assert_eq!(ranking.last_update, want, "{bellum:?}");
    stop.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the loop stops")
        .expect("no panic")
        .expect("clean shutdown");
    site.shutdown().await;
}

/// `worldpool run` itself: the console layer installed by `logging::init`
/// streams the real workers' lines, the workers keep status pages, and a
/// manual update says the pool cannot deliver it yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worldpool_run_streams_worker_lines_and_keeps_status_pages() {
    let Demo { site, dir, url } = Demo::start(DemoSiteOptions::default()).await;
    let config = dir.path().join("worldpool.toml");
    std::fs::write(&config, site.config_toml(&url, Mode::Pool)).expect("config");
    let port = crate::helper::free_port();
    let log = dir.path().join("run.log");
    // Killed even when an assertion fails.
    let mut sup = crate::helper::supervisor::Process::spawn(
        &config,
        &log,
        &crate::helper::supervisor::Launch {
            api_port: Some(port),
            token: Some(TOKEN),
            ..Default::default()
        },
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let result = async {
        wait_for_async("the API", DEADLINE, || {
            let http = http.clone();
            let url = format!("{base}/health");
            async move {
                http.get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
        let mut resp = http
            .get(format!("{base}/api/console-stream?format=json"))
            .send()
            .await
            .expect("console stream");
        // A site update makes every worker store a run and say so.
        site.advance();
        let mut buf = String::new();
        let frames = sse_frames(&mut resp, &mut buf, |f| {
            f.iter().any(|(_, d)| d.contains("\"world\":\"Aurera\""))
        })
        .await;
        let (_, data) = frames
            .iter()
            .find(|(_, d)| d.contains("\"world\":\"Aurera\""))
            .expect("an Aurera line");
        let v: Value = serde_json::from_str(data).expect("JSON");
        assert!(v["level"].is_string() && v["message"].is_string(), "{v}");
        let status = wait_for_async("status pages", DEADLINE, || {
            let http = http.clone();
            let url = format!("{base}/api/status-data");
            async move {
                let r = http.get(url).send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                (v["worlds"].as_object()?.len() == 3).then_some(v)
            }
        })
        .await;
        assert!(status["fetch_time"].is_string());
        // 409 while every worker is scraping the update: ask again then.
        let answer: Value = wait_for_async("a manual update accepted", DEADLINE, || {
            let http = http.clone();
            let url = format!("{base}/api/manual-update");
            async move {
                let r = http.post(url).bearer_auth(TOKEN).send().await.ok()?;
                match r.status().as_u16() {
                    202 => r.json().await.ok(),
                    409 => None,
                    other => panic!("manual update answered {other}: {:?}", r.text().await),
                }
            }
        })
        .await;
        // The workers not busy scraping were asked (a busy one is listed
        // in `busy` and checks after its run anyway).
        let asked: std::collections::HashSet<String> = answer["worlds"]
            .as_array()
            .expect("worlds")
            .iter()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect();
        assert!(!asked.is_empty(), "{answer}");
        // The request went down the channel: each asked worker woke up at
        // once (the poll interval is a second; its log says why it checks).
        let mut woke = std::collections::HashSet::new();
        sse_frames(&mut resp, &mut buf, |frames| {
            for (_, d) in frames {
                if let Ok(v) = serde_json::from_str::<Value>(d)
                    && v["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("checking now, as requested"))
                    && let Some(w) = v["world"].as_str()
                {
                    woke.insert(w.to_string());
                }
            }
            asked.is_subset(&woke)
        })
        .await;
        assert!(asked.is_subset(&woke), "asked {asked:?}, woke {woke:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), result)
        .await
        .expect("within a minute");
    let status = sup.sigterm_and_wait(DEADLINE);
    assert!(status.success(), "a clean stop: {status:?}");
    site.shutdown().await;
}
