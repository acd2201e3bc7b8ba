//! `GET /api/player-details/{name}` against a real `worldpool run` and the
//! demo site: the player page's four tables, read through the world's
//! worker the way the replaced system's page reads them (its tabs, its
//! columns, the numbers as the site shows them); the request taking a grant
//! of the pool's budget; the short cache; an unknown player, a site 503, an
//! unknown world, no running worker, a worker that never answers, a pool
//! that cannot send and a bad name answered `success: false` with a
//! message; a watched player's numbers recorded; single mode too.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use worldpool::config::Mode;
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Fault};
use worldpool::site::parse::{parse_duration_minutes, parse_number};
use worldpool::store::{Store, VipDaily};

use crate::helper::api::Api;
use crate::helper::demo::Demo;
use crate::helper::supervisor::RunningPool;
use crate::helper::{free_port, wait_for_async};
use crate::store::TestDb;

const DEADLINE: Duration = Duration::from_secs(30);
const TOKEN: &str = "details-t0ken";
const WORLD: &str = "Aurera";
/// In no guild of Aurera; not watched by the generated config.
const GUILDLESS: &str = "Andarilha";
const NOBODY: &str = "Ninguém Aqui";

/// `GET /api/player-details/{name}{query}`, the name URL-encoded as the
/// old page does (`encodeURIComponent`).
async fn details(api: &Api, name: &str, query: &str) -> (u16, Value) {
    let path = format!(
        "/api/player-details/{}{query}",
        utf8_percent_encode(name, NON_ALPHANUMERIC)
    );
    api.get(&path).await
}

/// Requests the pool's budget granted `worker` so far.
async fn granted(api: &Api, worker: &str) -> u64 {
    let (status, v) = api.get("/api/budget").await;
    assert_eq!(status, 200, "{v}");
    v["workers"][worker]["requests"].as_u64().unwrap_or(0)
}

/// The tabs the replaced system's page shows for an answer
/// (`renderPlayerDetails`: tables with rows and recognized columns, titled
/// by `getTableTitle`), or `None` where it says "No detailed data
/// available" (`data.success && data.tables.length > 0` fails).
fn old_page_tabs(v: &Value) -> Option<Vec<&'static str>> {
    if v["success"] != true || v["tables"].as_array()?.is_empty() {
        return None;
    }
    let has = |t: &Value, c: &str| {
        t["columns"]
            .as_array()
            .is_some_and(|cols| cols.iter().any(|x| x == c))
    };
    Some(
        v["tables"]
            .as_array()?
            .iter()
            .filter(|t| t["data"].as_array().is_some_and(|d| !d.is_empty()))
            .filter_map(|t| {
                if has(t, "Killed by") {
                    Some("💀 Deaths")
                } else if has(t, "Victim") {
                    Some("⚔️ Kills")
                } else if has(t, "Online time") {
                    Some("⏰ Online Time")
                } else if has(t, "Raw XP no dia") {
                    Some("📈 Daily XP")
                } else {
                    None
                }
            })
            .collect(),
    )
}

/// The table holding column `c`, and that column's position.
fn table_with<'a>(v: &'a Value, c: &str) -> (&'a Value, usize) {
    v["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find_map(|t| {
            let i = t["columns"].as_array()?.iter().position(|x| x == c)?;
            Some((t, i))
        })
        .unwrap_or_else(|| panic!("no table with `{c}`: {v}"))
}

/// The newest row's cell of column `c`.
fn newest(v: &Value, c: &str) -> String {
    let (t, i) = table_with(v, c);
    t["data"][0][i].as_str().expect("a text cell").to_string()
}

/// Every cell a string, every row as long as the columns.
fn well_formed(v: &Value) {
    for t in v["tables"].as_array().expect("tables") {
        let n = t["columns"].as_array().expect("columns").len();
        for row in t["data"].as_array().expect("data") {
            let row = row.as_array().expect("a row");
            assert_eq!(row.len(), n, "{t}");
            assert!(row.iter().all(Value::is_string), "{t}");
        }
    }
}

fn failure(what: &str, status: u16, v: &Value, code: &str) {
    assert_eq!(v["success"], false, "{what}: {v}");
    assert_eq!(v["tables"], serde_json::json!([]), "{what}: {v}");
    assert_eq!(v["error"], code, "{what}: {v}");
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{what}: {v}");
    assert!(
        v["message"].as_str().is_some_and(|m| m.len() > 10),
        "{what}: {v}"
    );
    assert_eq!(old_page_tabs(v), None, "{what}: the old page shows no data");
}

/// `worldpool run` over `config` (written into `dir`): the real workers
/// with the token set, or the test worker in `test_mode` (no token); once
/// its API answers.
async fn run(dir: &Path, config: String, test_mode: Option<&str>) -> (RunningPool, Api) {
    let path = dir.join("worldpool.toml");
    std::fs::write(&path, config).expect("config");
    let port = free_port();
    let pool = match test_mode {
        None => RunningPool::start(&path, port, Some(TOKEN), false),
        Some(mode) => RunningPool::with_test_workers(&path, port, mode),
    };
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
    (pool, api)
}

/// SIGTERM, and wait for the exit (off the runtime's threads).
async fn stop(mut pool: RunningPool) {
    tokio::task::spawn_blocking(move || pool.stop())
        .await
        .expect("stopped");
}

/// A pool (or single worker) over the demo site, one check at start and
/// then an hour between checks: only the API's requests reach the site.
async fn start(site: &DemoSite, dir: &Path, url: &str, mode: Mode) -> (RunningPool, Api, Store) {
    let text = site
        .config_toml(url, mode)
        .replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    assert!(text.contains("poll_interval = \"1h\""), "{text}");
    let (supervisor, api) = run(dir, text, None).await;
    let store = Store::open(url, 1).await.expect("store");
    // The first check stored Aurera's ranking and read its watched players.
    wait_for_async("the config's watched players read", DEADLINE, || {
        let store = store.clone();
        async move { (store.vip_latest(Some(WORLD)).await.ok()?.len() == 2).then_some(()) }
    })
    .await;
    (supervisor, api, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_details_through_the_world_s_worker_sqlite() {
    player_details_through_the_world_s_worker(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_details_through_the_world_s_worker_postgres() {
    player_details_through_the_world_s_worker(TestDb::postgres().await).await;
}

async fn player_details_through_the_world_s_worker(db: TestDb) {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let (supervisor, api, store) = start(&site, dir.path(), &db.url, Mode::Pool).await;
    let scenario = async {
        let watched: HashSet<String> = site.watched(WORLD).into_iter().collect();
        let player = site
            .players(WORLD)
            .into_iter()
            .map(|p| p.name)
            .find(|n| !watched.contains(n))
            .expect("an unwatched guild member");
        let day = site.player_day(&player).expect("known to the site");
        let hits = site.player_page_hits(&player);
        let granted_before = granted(&api, WORLD).await;

        // The world comes from the store (the player's ranking row).
        let (status, v) = details(&api, &player, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["success"], true, "{v}");
        assert_eq!(v["name"], player.as_str());
        assert_eq!(v["world"], WORLD);
        assert_eq!(v["response_status"], 200);
        assert_eq!(v["recorded"], Value::Null, "not watched: nothing recorded");
        well_formed(&v);
        let columns: Vec<&Value> = v["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .map(|t| &t["columns"])
            .collect();
        assert_eq!(
            columns,
            [
                &serde_json::json!(["Time", "World", "Level", "Killed by"]),
                &serde_json::json!(["Time", "World", "Victim", "Victim Level"]),
                &serde_json::json!(["Date", "Online time"]),
                &serde_json::json!(["Data", "Level", "Δ Level", "Raw XP no dia"]),
            ]
        );
        assert_eq!(
            old_page_tabs(&v).expect("the old page shows tables"),
            ["💀 Deaths", "⚔️ Kills", "⏰ Online Time", "📈 Daily XP"]
        );
        // The numbers as the site shows them: dotted XP, `3h 10m`, dd/mm/yyyy.
        let today = day.date.format("%d/%m/%Y").to_string();
        assert_eq!(newest(&v, "Data"), today);
        assert_eq!(newest(&v, "Date"), today);
        let xp = newest(&v, "Raw XP no dia");
        assert_eq!(parse_number(&xp), Some(day.raw_xp), "{xp}");
        if day.raw_xp >= 1000 {
            assert!(xp.contains('.'), "dot-grouped as on the site: {xp}");
        }
        let online = newest(&v, "Online time");
        assert_eq!(
            parse_duration_minutes(&online),
            Some(day.online_minutes),
            "{online}"
        );
        assert_eq!(newest(&v, "World"), WORLD);
        // One page fetched, granted by the pool's budget to Aurera's worker.
        assert_eq!(site.player_page_hits(&player), hits + 1);
        assert_eq!(granted(&api, WORLD).await, granted_before + 1);

        // The cache: asked again, nothing reaches the site; same answer.
        let (status, again) = details(&api, &player, "").await;
        assert_eq!((status, &again), (200, &v));
        let (status, _) = details(&api, &player.to_uppercase(), "").await;
        assert_eq!(status, 200, "names compared ignoring case");
        assert_eq!(
            site.player_page_hits(&player),
            hits + 1,
            "served from the cache"
        );

        // Asked twice at once (the old page's player window and its
        // multi-graph tab), with the site slow enough that the first read
        // is still on its way: one read for both.
        let twin = site
            .players(WORLD)
            .into_iter()
            .map(|p| p.name)
            .rfind(|n| !watched.contains(n) && *n != player)
            .expect("a third guild member");
        let before = site.player_page_hits(&twin);
        site.set_fault(Fault::Slow { millis: 300 });
        let (a, b) = tokio::join!(details(&api, &twin, ""), details(&api, &twin, ""));
        site.clear_faults();
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        assert_eq!(a.1, b.1);
        assert_eq!(site.player_page_hits(&twin), before + 1, "one read");

        // A watched player (added straight to the store: no check is
        // asked, so only this request reads it) gets its numbers recorded.
        assert!(store.add_watched(WORLD, GUILDLESS).await.expect("add"));
        let before = site.player_page_hits(GUILDLESS);
        let (status, v) = details(&api, GUILDLESS, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["world"], WORLD, "the world where it is watched");
        assert_eq!(v["recorded"]["outcome"], "baseline", "{v}");
        assert_eq!(site.player_page_hits(GUILDLESS), before + 1);
        let g = site.player_day(GUILDLESS).expect("known");
        let read: VipDaily = store
            .vip_latest(Some(WORLD))
            .await
            .expect("latest")
            .into_iter()
            .find(|d| d.name == GUILDLESS)
            .expect("the read was recorded");
        assert_eq!(
            (read.date, read.raw_xp, read.online_minutes),
            (g.date, g.raw_xp, g.online_minutes)
        );

        // A maker (uploaded as the old data page does) is recorded the same
        // way, in the world the makers' list gives.
        let csv = site.main_makers_csv();
        let (status, v) = api
            .post_form(
                "/api/upload/makers",
                "ref_main_maker.csv",
                csv.as_bytes(),
                &[("password", TOKEN)],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = details(&api, "Gume", "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["world"], "Bellum", "{v}");
        assert!(v["recorded"]["outcome"].is_string(), "{v}");
        let gume = site.player_day("Gume").expect("known");
        let read = wait_for_async("the maker's read", DEADLINE, || {
            let store = store.clone();
            async move {
                store
                    .vip_latest(Some("Bellum"))
                    .await
                    .ok()?
                    .into_iter()
                    .find(|d| d.name == "Gume")
            }
        })
        .await;
        assert_eq!(
            (read.raw_xp, read.online_minutes),
            (gume.raw_xp, gume.online_minutes)
        );

        // An unknown player: 404, the old shape, the site's own status.
        let (status, v) = details(&api, NOBODY, "").await;
        assert_eq!(status, 404, "{v}");
        failure("unknown player", 404, &v, "unknown_player");
        assert_eq!(v["response_status"], 200, "{v}");
        assert_eq!(v["name"], NOBODY);

        // The site failing longer than the client retries: 502 with the
        // site's status, not cached (the next call reads the page).
        let other = site
            .players(WORLD)
            .into_iter()
            .map(|p| p.name)
            .find(|n| !watched.contains(n) && *n != player && *n != twin)
            .expect("another guild member");
        site.set_fault(Fault::Player503 { times: 20 });
        let (status, v) = details(&api, &other, "").await;
        assert_eq!(status, 502, "{v}");
        failure("site 503", 502, &v, "site_error");
        assert_eq!(v["response_status"], 503, "{v}");
        site.clear_faults();
        let (status, v) = details(&api, &other, "").await;
        assert_eq!(status, 200, "a failure is not cached: {v}");
        assert_eq!(old_page_tabs(&v).map(|t| t.len()), Some(4), "{v}");

        // A world asked for by name, spelled in any case.
        let bellum = site.players("Bellum").remove(0).name;
        let (status, v) = details(&api, &bellum, "?world=bellum").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["world"], "Bellum");
        let (status, v) = details(&api, &bellum, "?world=Atlantis").await;
        assert_eq!(status, 404, "{v}");
        failure("unknown world", 404, &v, "unknown_world");

        let (_, doc) = api.get("/api/openapi.json").await;
        assert!(
            doc["paths"].get("/api/player-details/{name}").is_some()
                && doc["components"]["schemas"].get("PlayerDetails").is_some(),
            "documented in the OpenAPI"
        );

        // No world worker running (the watcher does not read players).
        for w in ["Aurera", "Bellum", "Cèlesta"] {
            let path = format!(
                "/api/workers/{}/stop",
                utf8_percent_encode(w, NON_ALPHANUMERIC)
            );
            assert_eq!(api.post(&path, None, Some(TOKEN)).await.0, 202, "{w}");
        }
        let fresh = site.guildless(WORLD).into_iter().find(|n| n != GUILDLESS);
        let fresh = fresh.unwrap_or_else(|| "Solitário Sem Guilda".to_string());
        let (status, v) = details(&api, &fresh, "").await;
        assert_eq!(status, 503, "{v}");
        failure("no worker", 503, &v, "no_worker");
    };
    tokio::time::timeout(Duration::from_secs(120), scenario)
        .await
        .expect("within two minutes");
    stop(supervisor).await;
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_details_in_single_mode() {
    let Demo { site, dir, url } = Demo::start(DemoSiteOptions::default()).await;
    let (supervisor, api, store) = start(&site, dir.path(), &url, Mode::Single).await;
    let scenario = async {
        // The single worker scrapes the worlds in turn: Cèlesta's ranking
        // (where the API finds the player's world) comes after Aurera's.
        wait_for_async("Cèlesta's ranking stored", DEADLINE, || {
            let store = store.clone();
            async move { (!store.players("Cèlesta").await.ok()?.is_empty()).then_some(()) }
        })
        .await;
        // Not watched: the pass of Cèlesta may still be reading those.
        let watched = site.watched("Cèlesta");
        let player = site
            .players("Cèlesta")
            .into_iter()
            .map(|p| p.name)
            .find(|n| !watched.contains(n))
            .expect("an unwatched guild member");
        let day = site.player_day(&player).expect("known");
        let hits = site.player_page_hits(&player);
        let (status, v) = details(&api, &player, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["world"], "Cèlesta");
        assert_eq!(old_page_tabs(&v).map(|t| t.len()), Some(4), "{v}");
        assert_eq!(parse_number(&newest(&v, "Raw XP no dia")), Some(day.raw_xp));
        let (status, _) = details(&api, &player, "").await;
        assert_eq!(status, 200);
        assert_eq!(
            site.player_page_hits(&player),
            hits + 1,
            "read once, then cached"
        );
    };
    tokio::time::timeout(Duration::from_secs(60), scenario)
        .await
        .expect("within a minute");
    stop(supervisor).await;
    site.shutdown().await;
}

/// A world worker that never answers (the test worker, idle): after the
/// deadline derived from the site client's settings (here 1 s, no retry:
/// about 6 s), 504 with the old shape; the other worlds' workers still
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_answer_times_out() {
    let Demo { site, dir, url } = Demo::start(DemoSiteOptions::default()).await;
    let text = site
        .config_toml(&url, Mode::Pool)
        .replace("request_timeout = \"5s\"", "request_timeout = \"1s\"")
        .replace("retries = 3", "retries = 0");
    assert!(
        text.contains("request_timeout = \"1s\"") && text.contains("retries = 0"),
        "{text}"
    );
    let (supervisor, api) = run(dir.path(), text, Some("Aurera=idle")).await;
    let scenario = async {
        wait_for_async("every world worker running", DEADLINE, || {
            let api = &api;
            async move {
                let (_, v) = api.get("/api/workers").await;
                let workers = v.as_array()?;
                (workers.len() == 4 && workers.iter().all(|w| w["state"] == "running"))
                    .then_some(())
            }
        })
        .await;
        let player = site.players(WORLD).remove(0).name;
        let started = std::time::Instant::now();
        let (status, v) = details(&api, &player, "?world=Aurera").await;
        let took = started.elapsed();
        assert_eq!(status, 504, "{v}");
        failure("worker timeout", 504, &v, "worker_timeout");
        assert_eq!(
            v["response_status"],
            Value::Null,
            "the site was not asked: {v}"
        );
        assert!(
            (Duration::from_secs(5)..Duration::from_secs(20)).contains(&took),
            "{took:?}"
        );
        assert_eq!(site.player_page_hits(&player), 0, "{v}");
        // Not cached: a world whose worker answers reads the page.
        let bellum = site.players("Bellum").remove(0).name;
        let (status, v) = details(&api, &bellum, "?world=Bellum").await;
        assert_eq!(status, 200, "{v}");
    };
    tokio::time::timeout(Duration::from_secs(60), scenario)
        .await
        .expect("within a minute");
    stop(supervisor).await;
    site.shutdown().await;
}

/// Without a pool that can send a worker a message (the fake one), and
/// for a name that is no name: the old shape, with a message.
#[tokio::test]
async fn a_pool_without_a_channel_and_bad_names() {
    let fake = std::sync::Arc::new(worldpool::api::fake::FakeControl::new(&[WORLD]));
    let api = Api::serve(worldpool::api::ApiState::new(fake, None, None)).await;
    let (status, v) = details(&api, "Zé Pequeno", "").await;
    assert_eq!(status, 501, "{v}");
    failure("no channel", 501, &v, "not_supported");
    assert_eq!(v["name"], "Zé Pequeno");
    for bad in [" ", "a\tb", &"x".repeat(101)] {
        let (status, v) = details(&api, bad, "").await;
        assert_eq!(status, 400, "{bad:?}: {v}");
        failure("bad name", 400, &v, "bad_parameter");
    }
    api.stop().await;
}
