//! Polite at scale, with real processes (`worldpool run` against the demo
//! site, whose counters say what it saw): one status check per interval
//! for the whole pool, the workers told by the watcher, the watcher
//! supervised like any worker (killed: restarted; stopped: the workers
//! poll on their own and stop when it is back), one budget per host
//! (rate and concurrency never exceeded, a `429` + `Retry-After` pauses
//! every worker, the leases of a killed worker reclaimed), single mode as
//! before.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use worldpool::config::Mode;
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Fault, Sizing};
use worldpool::store::Store;

use crate::helper::supervisor::{Launch, run_command};
use crate::helper::{free_port, wait_for_async};

const LONG: Duration = Duration::from_secs(60);
const TOKEN: &str = "polite-test-token";

struct Run {
    site: DemoSite,
    store: Store,
    api: String,
    http: reqwest::Client,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// What to change in the demo site's generated config.
struct Setup {
    worlds: usize,
    guilds: usize,
    players: usize,
    guild_pages: usize,
    latency: Duration,
    mode: Mode,
    /// `key = value` lines replacing the generated ones.
    site: &'static [(&'static str, &'static str)],
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            worlds: 4,
            guilds: 2,
            players: 4,
            guild_pages: 1,
            latency: Duration::ZERO,
            mode: Mode::Pool,
            site: &[],
        }
    }
}

impl Run {
    async fn start(setup: Setup) -> Run {
        let site = DemoSite::start(DemoSiteOptions {
            latency: setup.latency,
            sized: Some(Sizing {
                worlds: setup.worlds,
                guilds_per_world: setup.guilds,
                players_per_guild: setup.players,
            }),
            guild_pages: setup.guild_pages,
            ..DemoSiteOptions::default()
        })
        .await
        .expect("demo site");
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/wp.db", dir.path().display());
        let mut text = String::new();
        for line in site.config_toml(&url, setup.mode).lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            match setup.site.iter().find(|(k, _)| *k == key) {
                Some((k, v)) => text.push_str(&format!("{k} = {v}\n")),
                None => text.push_str(&format!("{line}\n")),
            }
        }
        let config = dir.path().join("worlds.toml");
        std::fs::write(&config, text).expect("config");
        let port = free_port();
        let launch = Launch {
            api_port: Some(port),
            token: Some(TOKEN),
            ..Launch::default()
        };
        let log = dir.path().join("supervisor.log");
        let child = tokio::process::Command::from(run_command(&config, &log, &launch))
            .kill_on_drop(true)
            .spawn()
            .expect("worldpool run");
        let store = Store::open(&url, 1).await.expect("store");
        Run {
            site,
            store,
            api: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            child,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    async fn post(&self, path: &str) -> Value {
        self.http
            .post(format!("{}{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON")
    }

    /// `/api/budget`.
    async fn budget(&self) -> Value {
        wait_for_async("/api/budget", LONG, || self.get("/api/budget")).await
    }

    /// Requests granted per worker.
    async fn requests(&self) -> BTreeMap<String, u64> {
        let b = self.budget().await;
        b["workers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["requests"].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One worker of `/api/workers/{name}`.
    async fn worker(&self, name: &str) -> Value {
        let path = format!("/api/workers/{name}");
        wait_for_async(&path, LONG, || self.get(&path)).await
    }

    /// Wait until every world has `n` successful runs (distinct updates).
    async fn stored(&self, n: usize) {
        let worlds = self.site.world_names();
        wait_for_async(&format!("{n} runs stored in every world"), LONG, || {
            let store = self.store.clone();
            let worlds = worlds.clone();
            async move {
                let runs = store.runs(None, 1000, None).await.ok()?;
                worlds
                    .iter()
                    .all(|w| {
                        runs.iter()
                            .filter(|r| &r.world == w && r.status == "ok")
                            .count()
                            >= n
                    })
                    .then_some(())
            }
        })
        .await;
    }

    fn path_count(&self, path: &str) -> u64 {
        self.site.requests_by_path().get(path).copied().unwrap_or(0)
    }

    /// Wait until the site saw `n` more status requests.
    async fn status_checks(&self, n: u64) {
        let start = self.path_count("/status");
        wait_for_async(&format!("{n} more status checks"), LONG, || async {
            (self.path_count("/status") >= start + n).then_some(())
        })
        .await;
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let status = tokio::time::timeout(LONG, self.child.wait())
            .await
            .expect("the supervisor stops")
            .expect("reaped");
        assert!(status.success(), "supervisor exit: {status}");
        self.site.shutdown().await;
    }
}

fn world_requests(r: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    r.iter()
        .filter(|(k, _)| k.as_str() != "watcher")
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// Idle site: the status page is read once per interval for the whole
/// pool, by the watcher only; an update reaches every world's worker,
/// which fetches its guild pages and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_status_check_per_interval_for_the_whole_pool() {
    let run = Run::start(Setup {
        worlds: 6,
        site: &[("poll_interval", "\"200ms\""), ("poll_jitter", "0.0")],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;
    let watcher = run.worker("watcher").await;
    assert_eq!(watcher["kind"], "watcher", "{watcher}");
    assert_eq!(run.worker("World 01").await["kind"], "scraper");

    // Idle: only the watcher asks, one status page per check.
    let before = run.requests().await;
    run.site.reset_counters();
    run.status_checks(8).await;
    let after = run.requests().await;
    assert_eq!(
        world_requests(&after),
        world_requests(&before),
        "world workers sent nothing while the site was idle"
    );
    let seen = run.site.requests_by_path();
    assert_eq!(seen.get("/guild.php"), None, "{seen:?}");
    let status = run.path_count("/status");
    let by_watcher = after["watcher"] - before["watcher"];
    assert!(
        by_watcher.abs_diff(status) <= 2,
        "the watcher made the site's {status} status requests ({by_watcher})"
    );

    // An update: every world's worker is told and fetches its pages only.
    run.site.reset_counters();
    let before = run.requests().await;
    run.site.advance();
    run.stored(2).await;
    let after = run.requests().await;
    for (world, n) in world_requests(&after) {
        assert_eq!(
            n - before.get(&world).copied().unwrap_or(0),
            2,
            "{world}: its two guild pages, no status page"
        );
    }
    assert_eq!(run.path_count("/guild.php"), 12);
    run.stop().await;
}

/// The watcher is a worker like any other: killed, it is restarted; stopped,
/// the world workers poll on their own and keep scraping; started again,
/// they stop polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_is_supervised_and_workers_fall_back_while_it_is_gone() {
    let run = Run::start(Setup {
        worlds: 3,
        site: &[("poll_interval", "\"200ms\""), ("poll_jitter", "0.0")],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;

    // kill -9: restarted like any worker, and the pool goes on.
    let first = run.worker("watcher").await;
    let pid = first["pid"].as_u64().expect("watcher pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the watcher");
    let again = wait_for_async("the watcher restarted", LONG, || async {
        let w = run.get("/api/workers/watcher").await?;
        (w["state"] == "running" && w["pid"].as_u64().is_some_and(|p| p != pid)).then_some(w)
    })
    .await;
    assert!(again["restarts"].as_u64() >= Some(1), "{again}");
    run.site.advance();
    run.stored(2).await;

    // Stopped: the workers check on their own, and scrape the next update.
    let stopped = run.post("/api/workers/watcher/stop").await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let before = run.requests().await;
    // Nothing is due: what each world's worker asks for now is the status
    // page, on its own.
    let polled = wait_for_async("every world polling on its own", LONG, || async {
        let now = run.requests().await;
        world_requests(&now)
            .iter()
            .all(|(w, n)| *n > before.get(w).copied().unwrap_or(0))
            .then_some(now)
    })
    .await;
    run.site.advance();
    run.stored(3).await;
    let after = run.requests().await;
    for (world, n) in world_requests(&after) {
        // Its two guild pages (and its status polls).
        assert!(
            n >= polled[&world] + 2,
            "{world} scraped on its own: {polled:?} -> {after:?}"
        );
    }
    assert_eq!(after.get("watcher"), before.get("watcher"));

    // Back: once it has checked twice, the workers are quiet again.
    let started = run.post("/api/workers/watcher/start").await;
    assert!(
        started["state"] == "running" || started["state"] == "starting",
        "{started}"
    );
    wait_for_async("two checks of the restarted watcher", LONG, || async {
        let r = run.requests().await;
        (r["watcher"] >= after["watcher"] + 2).then_some(())
    })
    .await;
    let quiet = run.requests().await;
    run.status_checks(6).await;
    assert_eq!(
        world_requests(&run.requests().await),
        world_requests(&quiet),
        "the world workers stopped polling"
    );
    run.stop().await;
}

/// Every world updating at once, 3 guilds × 2 pages each: the site never
/// sees more than `rate_limit` requests in any one-second window, nor more
/// than `max_concurrent` at once, although every worker wants to go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_never_exceeds_the_rate_or_the_concurrency() {
    let run = Run::start(Setup {
        worlds: 5,
        guilds: 3,
        players: 6,
        guild_pages: 2,
        latency: Duration::from_millis(20),
        site: &[
            ("rate_limit", "10.0"),
            ("max_concurrent", "2"),
            ("poll_interval", "\"300ms\""),
        ],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;
    run.site.reset_counters();
    run.site.advance();
    run.stored(2).await;
    // Every guild page once (3 guilds × 2 or more pages per world).
    let pages: Vec<String> = run
        .site
        .arrivals()
        .into_iter()
        .filter(|a| a.path == "/guild.php")
        .map(|a| a.uri)
        .collect();
    let distinct: std::collections::BTreeSet<&String> = pages.iter().collect();
    assert_eq!(
        distinct.len(),
        pages.len(),
        "a page fetched twice: {pages:#?}"
    );
    assert!(pages.len() >= 5 * 3 * 2, "{pages:#?}");
    let peak = run.site.peak_per_second();
    assert!(peak <= 10, "{peak} requests within one second");
    let flight = run.site.peak_in_flight();
    assert!(flight <= 2, "{flight} requests in flight at once");
    let host = &run.budget().await["hosts"][0];
    assert_eq!(host["rate_limit"], 10.0, "{host}");
    assert_eq!(host["max_concurrent"], 2, "{host}");
    run.stop().await;
}

/// A `429` with `Retry-After: 2`: no request reaches the site from any
/// worker for two seconds; then every run completes, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_pauses_every_worker() {
    let run = Run::start(Setup {
        worlds: 6,
        latency: Duration::from_millis(20),
        site: &[("poll_interval", "\"300ms\"")],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;
    run.site.reset_counters();
    // The first guild page answers 429 while the other workers' pages are
    // on their way: every worker, and the watcher, must wait.
    run.site.set_fault(Fault::TooManyRequests {
        times: 1,
        retry_after: "2".into(),
        path: Some("/guild.php".into()),
    });
    run.site.advance();
    run.stored(2).await;
    let sent = run.site.too_many_sent();
    assert_eq!(sent.len(), 1, "one 429");
    let t429 = sent[0];
    // Requests granted before the news reached the supervisor may still be
    // on their way: 100 ms for that; then nothing until the pause ends.
    let quiet: Vec<Duration> = run
        .site
        .arrivals()
        .iter()
        .map(|a| a.at.saturating_duration_since(t429))
        .filter(|d| *d >= Duration::from_millis(100) && *d < Duration::from_millis(1_990))
        .collect();
    assert!(quiet.is_empty(), "requests during the pause: {quiet:?}");
    let runs = run.store.runs(None, 1000, None).await.expect("runs");
    assert!(
        runs.iter().all(|r| r.status == "ok"),
        "nothing failed: {runs:?}"
    );
    let host = &run.budget().await["hosts"][0];
    assert_eq!(host["pauses"], 1, "{host}");
    run.stop().await;
}

/// A worker killed while it holds the only concurrency slot: the
/// supervisor takes the slot back when it sees the exit, so the pool goes
/// on (without it, nothing could be sent again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_a_killed_worker_are_reclaimed() {
    let run = Run::start(Setup {
        worlds: 3,
        site: &[("max_concurrent", "1"), ("poll_interval", "\"300ms\"")],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;
    run.site.set_fault(Fault::Slow { millis: 30_000 });
    run.site.advance();
    // Someone holds the slot on a request that will not end soon.
    let holder = wait_for_async("a request in flight", LONG, || async {
        let b = run.get("/api/budget").await?;
        b["workers"]
            .as_object()?
            .iter()
            .find(|(_, u)| u["in_flight"] == 1)
            .map(|(name, _)| name.clone())
    })
    .await;
    let pid = run.worker(&holder).await["pid"]
        .as_u64()
        .expect("holder pid");
    run.site.clear_faults();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the holder");
    wait_for_async("the lease reclaimed", LONG, || async {
        let b = run.get("/api/budget").await?;
        (b["reclaimed"].as_u64()? >= 1).then_some(())
    })
    .await;
    // Without the reclaim, the only slot would be held forever.
    run.stored(2).await;
    run.stop().await;
}

/// Single mode: one process, its own polling, no watcher; its requests
/// still go through the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_mode_has_no_watcher_and_polls_on_its_own() {
    let run = Run::start(Setup {
        worlds: 3,
        mode: Mode::Single,
        site: &[("poll_interval", "\"200ms\"")],
        ..Setup::default()
    })
    .await;
    run.stored(1).await;
    let workers = wait_for_async("/api/workers", LONG, || run.get("/api/workers")).await;
    let names: Vec<&str> = workers
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|w| w["world"].as_str())
        .collect();
    assert_eq!(names, ["single"]);
    run.status_checks(3).await;
    assert!(run.requests().await["single"] >= 3 + 6);
    run.stop().await;
}
