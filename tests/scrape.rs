//! The golden scenario over ticks of the demo site, the worker loop, and
//! `scrape-once` as a real process (JSON shape; kill -9 in the middle of
//! writing leaves no partial run).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Fault, Layout};
use worldpool::scrape::Reporter;
use worldpool::scrape::{Outcome, Scraper, process_world};
use worldpool::site::Clock;
use worldpool::store::{PassKind, Store};

use crate::helper::cli::{output, scrape_once, write_config};
use crate::helper::supervisor::{Launch, run_command};
use crate::helper::{wait_for, wait_for_async};

struct Fixture {
    site: DemoSite,
    clock: Clock,
    config: Config,
    scraper: Scraper,
    store: Store,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Demo site on a manual clock at 09:00 site time (UTC-3), SQLite store.
    /// The config differs between layouts only in `[site.selectors]`.
    async fn new(layout: Layout) -> Fixture {
        Fixture::sized(layout, None).await
    }

    /// The same on a generated dataset (`None`: the hand-made one).
    async fn sized(layout: Layout, sized: Option<worldpool::demo_site::Sizing>) -> Fixture {
        let clock = Clock::manual(
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
                .single()
                .expect("time"),
        );
        let site = DemoSite::start(DemoSiteOptions {
            now: clock.clone(),
            layout,
            sized,
            ..DemoSiteOptions::default()
        })
        .await
        .expect("demo site starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/wp.db", dir.path().display());
        let (_, config) = write_config(dir.path(), &site.config_toml(&url, Mode::Single));
        let scraper = Scraper::new(&config, clock.clone()).expect("scraper");
        let store = Store::open(&url, 1).await.expect("store");
        Fixture {
            site,
            clock,
            config,
            scraper,
            store,
            dir,
        }
    }

    async fn pass(&self, world: &str) -> Outcome {
        let status = self.scraper.status().await.expect("status page");
        let ws = worldpool::site::find_world(&status, world).expect("world on status page");
        let w = self.config.world(world).expect("world in config");
        process_world(
            &self.scraper,
            &self.store,
            &self.config,
            w,
            ws.update_time,
            &Reporter::none(),
            &CancellationToken::new(),
        )
        .await
        .expect("processed")
    }

    /// What the site shows for a world, each player once (first guild).
    fn site_xp(&self, world: &str) -> HashMap<String, (String, i64)> {
        let mut out = HashMap::new();
        for p in self.site.players(world) {
            out.entry(p.name).or_insert((p.guild, p.experience));
        }
        out
    }

    async fn stored_xp(&self, world: &str) -> HashMap<String, (String, i64)> {
        self.store
            .players(world)
            .await
            .expect("players")
            .into_iter()
            .map(|p| (p.name, (p.guild, p.experience)))
            .collect()
    }

    fn minutes(&self, m: i64) {
        self.clock.advance(chrono::Duration::minutes(m));
    }
}

pub(crate) fn stored(outcome: Outcome) -> (usize, Vec<(String, String, i64)>, PassKind) {
    match outcome {
        Outcome::Stored {
            rows, deltas, kind, ..
        } => {
            let mut d: Vec<_> = deltas
                .into_iter()
                .map(|d| (d.name, d.guild, d.delta))
                .collect();
            d.sort();
            (rows, d, kind)
        }
        other => panic!("expected a stored run, got {other:?}"),
    }
}

/// Expected deltas between two snapshots of the site.
pub(crate) fn expected_deltas(
    before: &HashMap<String, (String, i64)>,
    after: &HashMap<String, (String, i64)>,
) -> Vec<(String, String, i64)> {
    let mut out: Vec<_> = after
        .iter()
        .filter_map(|(name, (guild, xp))| {
            let d = match before.get(name) {
                None => *xp,
                Some((_, old)) => xp - old,
            };
            (d > 0).then(|| (name.clone(), guild.clone(), d))
        })
        .collect();
    out.sort();
    out
}

/// The real site's shape, read with the default selectors.
#[tokio::test]
async fn golden_scenario_over_ticks() {
    golden_scenario(Layout::Table).await;
}

/// The same scenario over a table-free redesign, read with the selectors of
/// `config/examples/alt-layout.toml`: only the config differs.
#[tokio::test]
async fn golden_scenario_over_ticks_alt_layout() {
    golden_scenario(Layout::Alt).await;
}

async fn golden_scenario(layout: Layout) {
    let f = Fixture::new(layout).await;
    let defaults = worldpool::site::Selectors::default();
    assert_eq!(
        f.config.site.selectors == defaults,
        layout == Layout::Table,
        "the alt layout is read by its own selectors"
    );
    // The status page carries the routine twice in Aurera's block (a stale
    // copy after the current one): the first wins.
    let status = f.scraper.status().await.expect("status page");
    for w in f.site.world_names() {
        let ws = worldpool::site::find_world(&status, &w).expect("world on status page");
        assert_eq!(Some(ws.update_time), f.site.update_time(&w), "{w}");
    }

    // 1. First pass: every player new, deltas are the full values; a player
    //    in two guilds counts once (first guild in config order).
    let site0 = f.site_xp("Aurera");
    let (rows, deltas, kind) = stored(f.pass("Aurera").await);
    assert_eq!(kind, PassKind::First);
    assert_eq!(rows, site0.len());
    assert_eq!(deltas, expected_deltas(&HashMap::new(), &site0));
    assert_eq!(f.stored_xp("Aurera").await, site0);
    assert_eq!(site0["Zé Pequeno"].0, "Red Rose");
    // The unknown guild of Cèlesta: a warning and zero rows, not an error.
    let (rows, _, _) = stored(f.pass("Cèlesta").await);
    assert_eq!(rows, f.site_xp("Cèlesta").len());

    // 2. Unchanged status: no scrape (only the status page is fetched).
    let before = f.site.requests_served();
    assert!(matches!(f.pass("Aurera").await, Outcome::Unchanged { .. }));
    assert_eq!(f.site.requests_served() - before, 1, "only the status page");

    // 3. Increases: deltas only for changed players, and a new player.
    f.minutes(10);
    f.site.advance();
    let site1 = f.site_xp("Aurera");
    assert!(site1.keys().any(|n| !site0.contains_key(n)), "a new player");
    let (rows, deltas, kind) = stored(f.pass("Aurera").await);
    assert_eq!(kind, PassKind::Normal);
    assert_eq!(rows, site1.len());
    let want = expected_deltas(&site0, &site1);
    assert!(!want.is_empty() && want.len() < site1.len(), "{want:?}");
    assert_eq!(deltas, want);
    let newest = f
        .store
        .deltas(Some("Aurera"), None, 1, None)
        .await
        .expect("deltas");
    assert!(newest[0].previous_update_time.is_some());

    // 4. Two worlds with their own update times.
    let (_, _, kind) = stored(f.pass("Bellum").await);
    assert_eq!(kind, PassKind::First);
    f.minutes(10);
    assert!(f.site.advance_world("Bellum"));
    assert!(matches!(f.pass("Aurera").await, Outcome::Unchanged { .. }));
    let (_, _, kind) = stored(f.pass("Bellum").await);
    assert_eq!(kind, PassKind::Normal);
    let a = f.store.world_state("Aurera").await.expect("state");
    let b = f.store.world_state("Bellum").await.expect("state");
    assert_ne!(a.last_update_time, b.last_update_time);
    assert_eq!(b.last_update_time, f.site.update_time("Bellum"));

    // 5. Daily reset: the first update after 10:02 re-bases, no deltas;
    //    the state survives a restart of the worker (a new store handle).
    f.clock.set(
        Utc.with_ymd_and_hms(2026, 11, 29, 13, 0, 0)
            .single()
            .expect("t"),
    ); // 10:00
    f.site.advance();
    stored(f.pass("Aurera").await);
    f.clock.set(
        Utc.with_ymd_and_hms(2026, 11, 29, 13, 10, 0)
            .single()
            .expect("t"),
    ); // 10:10
    f.site.trigger_reset();
    f.site.advance();
    let (_, deltas, kind) = stored(f.pass("Aurera").await);
    assert!(matches!(kind, PassKind::Rebase { .. }), "{kind:?}");
    assert!(
        deltas.is_empty(),
        "no deltas on the re-basing pass: {deltas:?}"
    );
    let rebased = f.site_xp("Aurera");
    assert_eq!(f.stored_xp("Aurera").await, rebased);
    let url = f.config.storage.url.clone();
    let restarted = Store::open(&url, 1).await.expect("reopen");
    let state = restarted.world_state("Aurera").await.expect("state");
    assert!(state.last_rebase.is_some());
    let f = Fixture {
        store: restarted,
        ..f
    };
    assert!(matches!(f.pass("Aurera").await, Outcome::Unchanged { .. }));
    f.minutes(10);
    f.site.advance();
    let after = f.site_xp("Aurera");
    let (_, deltas, kind) = stored(f.pass("Aurera").await);
    assert_eq!(kind, PassKind::Normal);
    assert_eq!(deltas, expected_deltas(&rebased, &after));

    // 6. 503 on the status page: retried; when it persists, no run at all.
    f.site.set_fault(Fault::Status503 { times: 2 });
    f.scraper.status().await.expect("retried past two 503s");
    let runs_before = f.store.runs(None, 1000, None).await.expect("runs").len();
    f.site.set_fault(Fault::Status503 { times: 100 });
    let err = f.scraper.status().await.expect_err("503 persists");
    assert!(err.to_string().contains("503"), "{err}");
    f.site.clear_faults();
    assert_eq!(
        f.store.runs(None, 1000, None).await.expect("runs").len(),
        runs_before
    );

    // 7. Truncated HTML: a failed run with its error, nothing else written;
    //    the next pass completes the same update.
    f.minutes(10);
    f.site.advance();
    let players_before = f.stored_xp("Aurera").await;
    let state_before = f.store.world_state("Aurera").await.expect("state");
    f.site.set_fault(Fault::TruncatedHtml { times: 1000 });
    match f.pass("Aurera").await {
        Outcome::Failed { error, .. } => assert!(error.contains("truncated"), "{error}"),
        other => panic!("expected a failed run, got {other:?}"),
    }
    f.site.clear_faults();
    let last = &f.store.runs(Some("Aurera"), 1, None).await.expect("runs")[0];
    assert_eq!(last.status, "failed");
    assert!(
        last.error
            .as_deref()
            .is_some_and(|e| e.contains("truncated"))
    );
    assert_eq!(f.stored_xp("Aurera").await, players_before);
    assert_eq!(
        f.store.world_state("Aurera").await.expect("state"),
        state_before
    );
    // A guild page that fails once is retried within the run.
    f.site.set_fault(Fault::Guild503 { times: 1 });
    let (_, _, kind) = stored(f.pass("Aurera").await);
    assert_eq!(kind, PassKind::Normal);
    assert_eq!(f.stored_xp("Aurera").await, f.site_xp("Aurera"));

    drop(f.dir);
    f.site.shutdown().await;
}

#[tokio::test]
async fn worker_loop_scrapes_every_world_and_stops_cleanly() {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/wp.db", dir.path().display());
    let (_, config) = write_config(dir.path(), &site.config_toml(&url, Mode::Single));
    let worlds = site.world_names();
    let stop = CancellationToken::new();
    let task = tokio::spawn(worldpool::scrape::run_worker(
        config,
        worlds.clone(),
        Reporter::none(),
        stop.clone(),
    ));
    let store = Store::open(&url, 1).await.expect("store");
    wait_for_async("a run for every world", Duration::from_secs(20), || {
        let store = store.clone();
        let worlds = worlds.clone();
        async move {
            let runs = store.runs(None, 100, None).await.ok()?;
            worlds
                .iter()
                .all(|w| runs.iter().any(|r| &r.world == w && r.status == "ok"))
                .then_some(())
        }
    })
    .await;
    // A site update is picked up by the loop.
    site.advance_world("Bellum");
    let want = site.update_time("Bellum");
    wait_for_async("the Bellum update", Duration::from_secs(20), || {
        let store = store.clone();
        async move {
            (store.world_state("Bellum").await.ok()?.last_update_time == want).then_some(())
        }
    })
    .await;
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the loop stops within 10 s")
        .expect("no panic");
    result.expect("clean shutdown returns Ok");
    site.shutdown().await;
}

async fn site_and_config() -> (DemoSite, tempfile::TempDir, PathBuf, String) {
    site_and_config_in(Layout::Table).await
}

async fn site_and_config_in(layout: Layout) -> (DemoSite, tempfile::TempDir, PathBuf, String) {
    let site = DemoSite::start(DemoSiteOptions {
        layout,
        ..DemoSiteOptions::default()
    })
    .await
    .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/wp.db", dir.path().display());
    let (path, _) = write_config(dir.path(), &site.config_toml(&url, Mode::Pool));
    (site, dir, path, url)
}

#[tokio::test]
async fn scrape_once_prints_the_documented_json() {
    let (site, _dir, config, url) = site_and_config().await;
    let out = output(scrape_once(&config, "Aurera", None, &["--json"])).await;
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in ["world", "update_time", "players", "deltas", "stored"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["world"], "Aurera");
    assert_eq!(v["stored"], true);
    let p = &v["players"][0];
    for key in ["name", "guild", "vocation", "level", "experience"] {
        assert!(p.get(key).is_some(), "player lacks {key}: {p}");
    }
    let d = &v["deltas"][0];
    for key in ["name", "guild", "delta"] {
        assert!(d.get(key).is_some(), "delta lacks {key}: {d}");
    }
    let players = v["players"].as_array().expect("array").len();
    let store = Store::open(&url, 1).await.expect("store");
    assert_eq!(
        store.players("Aurera").await.expect("players").len(),
        players
    );
    site.shutdown().await;
}

#[tokio::test]
async fn kill_9_in_the_middle_of_writing_leaves_no_partial_run_sqlite() {
    kill_9_in_the_middle_of_writing(None).await;
}

#[tokio::test]
async fn kill_9_in_the_middle_of_writing_leaves_no_partial_run_postgres() {
    kill_9_in_the_middle_of_writing(Some(crate::helper::pg::fresh_database_url().await)).await;
}

/// `database_url`: PostgreSQL through DATABASE_URL, or the config's SQLite.
async fn kill_9_in_the_middle_of_writing(database_url: Option<String>) {
    let (site, dir, config, sqlite_url) = site_and_config().await;
    let url = database_url.clone().unwrap_or(sqlite_url);
    let marker = dir.path().join("in-tx");
    let mut child = scrape_once(&config, "Aurera", database_url.as_deref(), &[])
        .env("WORLDPOOL_TEST_STALL_IN_TX", &marker)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn scrape-once");
    let m = marker.clone();
    let waited = tokio::task::spawn_blocking(move || {
        wait_for(
            "the writer inside its transaction",
            Duration::from_secs(30),
            || m.exists().then_some(()),
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped")
    })
    .await
    .expect("join");
    assert!(!waited.success());

    let store = Store::open(&url, 1).await.expect("store");
    assert!(
        store.runs(None, 10, None).await.expect("runs").is_empty(),
        "no partial run"
    );
    assert!(store.players("Aurera").await.expect("players").is_empty());
    assert!(
        store
            .deltas(None, None, 10, None)
            .await
            .expect("deltas")
            .is_empty()
    );
    assert_eq!(
        store
            .world_state("Aurera")
            .await
            .expect("state")
            .last_update_time,
        None
    );

    // The next run completes it.
    let out = output(scrape_once(
        &config,
        "Aurera",
        database_url.as_deref(),
        &["--json"],
    ))
    .await;
    assert!(out.status.success(), "{out:?}");
    let runs = store.runs(None, 10, None).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "ok");
    let distinct: std::collections::HashSet<String> =
        site.players("Aurera").into_iter().map(|p| p.name).collect();
    assert_eq!(runs[0].rows as usize, distinct.len());
    assert_eq!(
        store
            .world_state("Aurera")
            .await
            .expect("state")
            .last_update_time,
        site.update_time("Aurera")
    );
    site.shutdown().await;
}

#[tokio::test]
async fn faults_switch_at_run_time_over_http() {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let status = format!("{}/status", site.base_url());
    let r = http
        .post(format!("{}/_faults", site.base_url()))
        .json(&serde_json::json!({"kind": "status503", "times": 1}))
        .send()
        .await
        .expect("post fault");
    assert!(r.status().is_success(), "{r:?}");
    let r = http.get(&status).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 503);
    let r = http.get(&status).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let before = site.update_time("Aurera");
    let r = http
        .post(format!("{}/_advance", site.base_url()))
        .send()
        .await
        .expect("advance");
    assert!(r.status().is_success());
    assert!(site.update_time("Aurera") > before);
    site.shutdown().await;
}

#[tokio::test]
async fn store_down_mid_run_keeps_the_scrape_and_retries() {
    // A cluster of its own: this test stops and restarts it.
    let cluster = crate::helper::pg::PgCluster::start()
        .unwrap_or_else(|e| panic!("PostgreSQL is required for this test: {e}"));
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, config) = write_config(dir.path(), &site.config_toml(&cluster.url(), Mode::Pool));
    let store = Store::open(&cluster.url(), 1).await.expect("store");
    let scraper = Scraper::new(&config, Clock::System).expect("scraper");
    let status = scraper.status().await.expect("status");
    let t = worldpool::site::find_world(&status, "Aurera")
        .expect("world")
        .update_time;
    // Slow guild pages: the database goes away while the scrape runs.
    site.set_fault(Fault::Slow { millis: 300 });
    let served = site.requests_served();
    let task = {
        let (store, config, scraper) = (store.clone(), config.clone(), scraper.clone());
        tokio::spawn(async move {
            let world = config.world("Aurera").expect("world").clone();
            process_world(
                &scraper,
                &store,
                &config,
                &world,
                t,
                &Reporter::none(),
                &CancellationToken::new(),
            )
            .await
        })
    };
    wait_for_async("the scrape to start", Duration::from_secs(10), || {
        let n = site.requests_served();
        async move { (n > served).then_some(()) }
    })
    .await;
    cluster.stop_server();
    site.clear_faults();
    // The scrape completes while the database is down; the write fails
    // and is retried with the scrape kept.
    let retries = worldpool::scrape::store_retries();
    wait_for_async("a retried write", Duration::from_secs(20), || {
        let n = worldpool::scrape::store_retries();
        async move { (n > retries).then_some(()) }
    })
    .await;
    assert!(
        !task.is_finished(),
        "the worker must wait for the store, not give up"
    );
    cluster.start_server().expect("restart PostgreSQL");
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the write succeeds once the database is back")
        .expect("no panic")
        .expect("processed");
    let (rows, _, kind) = stored(outcome);
    assert_eq!(kind, PassKind::First);
    assert_eq!(
        rows,
        site.players("Aurera")
            .into_iter()
            .map(|p| p.name)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    assert_eq!(
        store
            .runs(Some("Aurera"), 10, None)
            .await
            .expect("runs")
            .len(),
        1
    );
    site.shutdown().await;
}

/// A pool worker (`worldpool run`, real supervisor, real worker processes)
/// killed with SIGKILL inside its write transaction: no partial run is ever
/// visible, the supervisor restarts it, and the new worker stores the same
/// update exactly once, whole.
#[tokio::test]
async fn pool_worker_killed_mid_write_is_restarted_and_completes_the_run() {
    let (site, dir, config, url) = site_and_config().await;
    let marker = dir.path().join("in-tx");
    let stall = [(
        "WORLDPOOL_TEST_STALL_IN_TX".to_string(),
        marker.display().to_string(),
    )];
    let launch = Launch {
        no_api: true,
        env: &stall,
        ..Launch::default()
    };
    let mut supervisor =
        tokio::process::Command::from(run_command(&config, &dir.path().join("run.log"), &launch))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn worldpool run");
    let supervisor_pid = supervisor.id().expect("pid");

    // The first worker to reach its commit writes its pid and stalls.
    let m = marker.clone();
    let victim: u32 = wait_for_async(
        "a worker inside its transaction",
        Duration::from_secs(30),
        || {
            let m = m.clone();
            async move { std::fs::read_to_string(&m).ok()?.trim().parse().ok() }
        },
    )
    .await;
    assert!(
        crate::helper::children_of(supervisor_pid).contains(&victim),
        "the stalled writer {victim} is a worker of the supervisor"
    );
    let store = Store::open(&url, 1).await.expect("store");
    let before = store.runs(None, 100, None).await.expect("runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL the worker");

    // A replacement appears and every world ends with exactly one complete run.
    let worlds = site.world_names();
    let runs = wait_for_async("every world stored once", Duration::from_secs(30), || {
        let store = store.clone();
        let n = worlds.len();
        async move {
            let runs = store.runs(None, 100, None).await.ok()?;
            let ok = runs.iter().filter(|r| r.status == "ok").count();
            (ok >= n).then_some(runs)
        }
    })
    .await;
    let children = crate::helper::children_of(supervisor_pid);
    assert!(!children.contains(&victim), "the killed worker was reaped");
    // One worker per world, plus the status watcher.
    assert_eq!(
        children.len(),
        worlds.len() + 1,
        "a replacement worker runs"
    );
    for w in &worlds {
        let mine: Vec<_> = runs.iter().filter(|r| &r.world == w).collect();
        assert_eq!(mine.len(), 1, "{w}: exactly one run: {mine:?}");
        assert_eq!(mine[0].status, "ok");
        let distinct: std::collections::HashSet<String> =
            site.players(w).into_iter().map(|p| p.name).collect();
        assert_eq!(mine[0].rows as usize, distinct.len(), "{w}: whole run");
        assert_eq!(
            store.players(w).await.expect("players").len(),
            distinct.len(),
            "{w}: players stored once"
        );
    }
    // Runs seen while the victim held its transaction were complete ones only.
    for r in &before {
        let distinct: std::collections::HashSet<String> =
            site.players(&r.world).into_iter().map(|p| p.name).collect();
        assert_eq!(
            r.rows as usize,
            distinct.len(),
            "partial run visible: {r:?}"
        );
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the supervisor");
    let status = tokio::time::timeout(Duration::from_secs(20), supervisor.wait())
        .await
        .expect("supervisor stops within its grace")
        .expect("reaped");
    assert!(status.success(), "supervisor exit: {status}");
    site.shutdown().await;
}

/// A permanent store error (here a trigger that refuses every player row,
/// as a constraint would) fails the run at once with the database's
/// message; it is not retried, and nothing but the failed run row is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_store_error_fails_the_run_without_retrying() {
    let f = Fixture::new(Layout::Table).await;
    let db = f.dir.path().join("wp.db");
    let conn = rusqlite::Connection::open(&db).expect("open the store's file");
    conn.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON players \
         BEGIN SELECT RAISE(ABORT, 'refused by policy'); END;",
    )
    .expect("trigger");
    drop(conn);
    let outcome = tokio::time::timeout(Duration::from_secs(30), f.pass("Aurera"))
        .await
        .expect("a permanent error is not retried until shutdown");
    match outcome {
        Outcome::Failed { error, .. } => {
            assert!(error.contains("refused by policy"), "{error}")
        }
        other => panic!("expected a failed run, got {other:?}"),
    }
    let runs = f.store.runs(Some("Aurera"), 10, None).await.expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, "failed");
    assert!(f.store.players("Aurera").await.expect("players").is_empty());
    assert_eq!(
        f.store
            .world_state("Aurera")
            .await
            .expect("state")
            .last_update_time,
        None
    );
}

/// A full disk (`SQLITE_FULL`, simulated by capping the database at its
/// size) is transient: the write fails as unavailable and is retried with
/// the scrape kept in memory; once space is back the same update is stored
/// exactly once, its players and deltas whole, and no failed run recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_the_scrape_and_stores_it_once_space_is_back() {
    // Enough players that the run's deltas need new pages.
    let f = Fixture::sized(
        Layout::Table,
        Some(worldpool::demo_site::Sizing {
            worlds: 1,
            guilds_per_world: 2,
            players_per_guild: 150,
        }),
    )
    .await;
    let world = f.site.world_names().remove(0);
    let site0 = f.site_xp(&world);
    stored(f.pass(&world).await);
    f.minutes(10);
    f.site.advance();
    let site1 = f.site_xp(&world);
    let want = expected_deltas(&site0, &site1);
    assert!(!want.is_empty());

    f.store
        .simulate_disk_full(true)
        .await
        .expect("cap the database");
    // The store says a full disk is worth retrying.
    let t = f.site.update_time(&world).expect("update time");
    let probe = f
        .store
        .write_run(&worldpool::store::NewRun {
            world: world.clone(),
            update_time: t,
            started_at: Utc::now(),
            players: (0..200)
                .map(|i| worldpool::store::ScrapedPlayer {
                    name: format!("probe {i}"),
                    guild: "g".into(),
                    vocation: "v".into(),
                    level: 1,
                    experience: 1,
                })
                .collect(),
            reset_minutes: f.config.site.reset_minutes,
        })
        .await
        .expect_err("the database cannot grow");
    assert!(probe.is_transient(), "a full disk is transient: {probe}");
    assert!(probe.to_string().contains("full"), "{probe}");

    let served = f.site.requests_served();
    let retries = worldpool::scrape::store_retries();
    let task = {
        let (store, config, scraper) = (f.store.clone(), f.config.clone(), f.scraper.clone());
        let world = config.world(&world).expect("world").clone();
        tokio::spawn(async move {
            process_world(
                &scraper,
                &store,
                &config,
                &world,
                t,
                &Reporter::none(),
                &CancellationToken::new(),
            )
            .await
        })
    };
    wait_for_async("the write retried", Duration::from_secs(20), || {
        let (n, pages) = (worldpool::scrape::store_retries(), f.site.requests_served());
        assert!(!task.is_finished(), "the run ended while the disk was full");
        async move { (n > retries && pages > served).then_some(()) }
    })
    .await;
    // Several attempts, all refused, and the worker still holds the scrape.
    let seen = worldpool::scrape::store_retries();
    wait_for_async("another retry", Duration::from_secs(20), || {
        let n = worldpool::scrape::store_retries();
        async move { (n > seen).then_some(()) }
    })
    .await;
    assert!(
        !task.is_finished(),
        "the worker waits for space, it does not give up"
    );
    let scraped_pages = f.site.requests_served();
    f.store
        .simulate_disk_full(false)
        .await
        .expect("space is back");
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the write succeeds once space is back")
        .expect("no panic")
        .expect("processed");
    assert_eq!(
        f.site.requests_served(),
        scraped_pages,
        "the kept scrape is written, the site is not read again"
    );
    let (rows, deltas, kind) = stored(outcome);
    assert_eq!(kind, PassKind::Normal);
    assert_eq!(rows, site1.len());
    assert_eq!(deltas, want);
    assert_eq!(f.stored_xp(&world).await, site1);
    let runs = f.store.runs(Some(&world), 10, None).await.expect("runs");
    assert_eq!(runs.len(), 2, "no failed run, no second copy: {runs:?}");
    assert!(runs.iter().all(|r| r.status == "ok"), "{runs:?}");
    let stored_deltas = f
        .store
        .deltas(Some(&world), None, 10_000, None)
        .await
        .expect("deltas");
    let of_update: Vec<_> = stored_deltas
        .iter()
        .filter(|d| d.update_time == t)
        .collect();
    assert_eq!(of_update.len(), want.len(), "each delta stored once");
    // Processing the same update again writes nothing.
    assert!(matches!(f.pass(&world).await, Outcome::Unchanged { .. }));
}

/// `scrape-once --explain` on both layouts with their own selectors: every
/// key matched, the world titles, the routine rows with parsed times, the
/// rows of each guild; nothing stored.
#[tokio::test]
async fn scrape_once_explain_shows_what_every_selector_matched() {
    for layout in [Layout::Table, Layout::Alt] {
        let (site, _dir, config, url) = site_and_config_in(layout).await;
        let out = output(scrape_once(&config, "Aurera", None, &["--explain"])).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{layout:?}: {out:?}\n{text}");
        for want in [
            "status page — http://",
            "world names: Aurera, Bellum, Cèlesta",
            "Online",
            "Deaths/Kills",
            "◀ the update time",
            "(a later row of the routine: ignored)",
            "guild Red Rose — http://",
            "guild Nova Ordem — http://",
            "Zé Pequeno",
            "every page of Aurera parses with these selectors",
        ] {
            assert!(text.contains(want), "{layout:?}: {want:?} not in\n{text}");
        }
        assert!(!text.contains('✗'), "{layout:?}: a key failed:\n{text}");
        // The update time shown is the site's.
        let t = site.update_time("Aurera").expect("time");
        assert!(
            text.contains(&t.to_rfc3339()),
            "{layout:?}: {t} not in\n{text}"
        );
        let store = Store::open(&url, 1).await.expect("store");
        assert!(store.runs(None, 10, None).await.expect("runs").is_empty());
        site.shutdown().await;
    }
}

/// A redesign read with the old selectors: `--explain` names each key that
/// broke and shows the elements that exist instead.
#[tokio::test]
async fn scrape_once_explain_names_broken_keys_and_the_nearest_elements() {
    let (site, dir, _alt_config, _) = site_and_config_in(Layout::Alt).await;
    // The table layout's config (default selectors) against the alt site.
    let url = format!("sqlite://{}/wp2.db", dir.path().display());
    let text = site
        .config_toml(&url, Mode::Pool)
        .split("[site.selectors]")
        .next()
        .expect("head")
        .to_string()
        + &site
            .config_toml(&url, Mode::Pool)
            .split("[[worlds]]")
            .skip(1)
            .map(|w| format!("[[worlds]]{w}"))
            .collect::<String>();
    let config = dir.path().join("old-selectors.toml");
    std::fs::write(&config, &text).expect("write");
    let parsed = Config::load(&config).expect("valid config");
    assert_eq!(parsed.site.selectors, worldpool::site::Selectors::default());

    let out = output(scrape_once(&config, "Aurera", None, &["--explain"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for want in [
        "✗ world_title = \"th, td\"",
        "nearest elements (their text matches world_pattern):",
        "h2.world-title ×3 \"🌍 Aurera Status servidor\"",
        "✗ routine_entry = \"tr\"",
        "li.routine",
        "✗ ranking = \"table.table-highscores\"",
        "section.box.box--members (5 × div.line.player)",
        "not checked: no ranking to look in",
        "keys to look at: world_title, routine_entry, ranking",
    ] {
        assert!(stdout.contains(want), "{want:?} not in\n{stdout}");
    }
    site.shutdown().await;
}

/// Bad input: a page matching nothing fails the run with the selector and
/// the URL named, and nothing partial is stored.
#[tokio::test]
async fn a_page_matching_nothing_fails_with_selector_and_url_and_stores_nothing() {
    let (site, dir, _alt_config, _) = site_and_config_in(Layout::Alt).await;
    let url = format!("sqlite://{}/bad.db", dir.path().display());
    let full = site.config_toml(&url, Mode::Single);
    let (head, rest) = full.split_once("[site.selectors]").expect("alt selectors");
    let (selectors, tail) = rest.split_once("[[worlds]]").expect("worlds");

    // 1. The status page of a redesign read with the old selectors.
    let old = format!("{head}[[worlds]]{tail}");
    let config = dir.path().join("old.toml");
    std::fs::write(&config, &old).expect("write");
    let out = output(scrape_once(&config, "Aurera", None, &[])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("site.selectors.world_title = \"th, td\" matched nothing on")
            && err.contains(&format!("{}/status", site.base_url())),
        "{err}"
    );

    // 2. Status selectors right, guild selectors not: the run fails on the
    //    guild page, is recorded failed, and no player is stored.
    let status_only: String = selectors
        .lines()
        .filter(|l| {
            ["world_", "routine", "complete_marker"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let half = format!("{head}[site.selectors]\n{status_only}\n[[worlds]]{tail}");
    let f_dir = tempfile::tempdir().expect("tempdir");
    let (_, config) = write_config(f_dir.path(), &half);
    let scraper = Scraper::new(&config, Clock::System).expect("scraper");
    let store = Store::open(&url, 1).await.expect("store");
    let status = scraper.status().await.expect("status page reads");
    let ws = worldpool::site::find_world(&status, "Aurera").expect("world");
    let world = config.world("Aurera").expect("world");
    let outcome = process_world(
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
    match outcome {
        // No guild page of the world has the ranking: a changed layout,
        // not guilds the site does not know.
        Outcome::Failed { error, .. } => assert!(
            error.contains("site.selectors.ranking = \"table.table-highscores\"")
                && error.contains("found the ranking on none of the guild pages of world `Aurera`")
                && error.contains("/guild.php?guild=")
                && error.contains("layout changed?"),
            "{error}"
        ),
        other => panic!("expected a failed run, got {other:?}"),
    }
    assert!(store.players("Aurera").await.expect("players").is_empty());
    let runs = store.runs(None, 10, None).await.expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, "failed");
    assert_eq!(runs[0].rows, 0);
    site.shutdown().await;
}
