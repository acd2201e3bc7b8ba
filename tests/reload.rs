//! Tests: reloading the config of a real `worldpool run` (real supervisor,
//! real worker processes) through `POST /api/reload`, `worldpool reload`,
//! SIGHUP and the file watcher.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use worldpool::config::Mode;
use worldpool::demo_site::{DemoSite, DemoSiteOptions};
use worldpool::store::Store;

use crate::helper::cli::{command, output};
use crate::helper::supervisor::{Launch, run_command};
use crate::helper::{wait_for, wait_for_async};

const LONG: Duration = Duration::from_secs(30);
const TOKEN: &str = "reload-test-token";

/// `worldpool run` on a config file, its API on a free port.
struct Supervisor {
    child: Child,
    base: String,
    config: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Supervisor {
    /// Start it on `text` (written to a new temp dir). `test_worker`: run
    /// the idle test worker instead of the real one.
    fn start(text: &str, test_worker_mode: Option<&str>) -> Supervisor {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("worlds.toml");
        std::fs::write(&config, text).expect("config written");
        let mut sup = Supervisor::start_at(&config, test_worker_mode);
        sup._dir = Some(dir);
        sup
    }

    fn start_at(config: &Path, test_worker_mode: Option<&str>) -> Supervisor {
        let log = config.with_extension("log");
        let child = run_command(
            config,
            &log,
            &Launch {
                api_port: Some(0),
                log_json: true,
                token: Some(TOKEN),
                test_mode: test_worker_mode,
                ..Launch::default()
            },
        )
        .spawn()
        .expect("worldpool run starts");
        let addr = wait_for("the API's address in the log", LONG, || {
            std::fs::read_to_string(&log)
                .ok()?
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find_map(|v| v["fields"]["addr"].as_str().map(str::to_string))
        });
        Supervisor {
            child,
            base: format!("http://{addr}"),
            config: config.to_path_buf(),
            _dir: None,
        }
    }

    fn write_config(&self, text: &str) {
        // Written whole, then renamed over, as editors do.
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, text).expect("config written");
        std::fs::rename(&tmp, &self.config).expect("config replaced");
    }

    fn sighup(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP the supervisor");
    }

    fn sigterm_and_wait(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the supervisor");
        let status = wait_for("the supervisor exits", LONG, || {
            self.child.try_wait().expect("try_wait")
        });
        assert!(status.success(), "supervisor exit: {status}");
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

async fn get(base: &str, path: &str) -> Value {
    let r = client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET");
    r.json().await.expect("JSON")
}

async fn get_text(base: &str, path: &str) -> String {
    client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text")
}

/// `worldpool reload --api BASE` with the token.
async fn reload_cli(base: &str) -> std::process::Output {
    let mut cmd = command(["reload", "--api", base]);
    cmd.env(worldpool::api::TOKEN_ENV, TOKEN);
    output(cmd).await
}

async fn post_reload(base: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/api/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST /api/reload");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON"))
}

/// `{world: pid}` once every listed world is running (and only those),
/// with the pool's status watcher running beside them.
async fn running_pids(base: &str, worlds: &[&str]) -> Vec<(String, u64)> {
    let want: Vec<String> = worlds.iter().map(|s| s.to_string()).collect();
    wait_for_async(&format!("exactly {worlds:?} running"), LONG, || {
        let want = want.clone();
        async move {
            let v = get(base, "/api/workers").await;
            let all = v.as_array()?;
            let (watchers, list): (Vec<&Value>, Vec<&Value>) =
                all.iter().partition(|w| w["kind"] == "watcher");
            if watchers.len() != 1 || watchers[0]["state"] != "running" {
                return None;
            }
            let names: Vec<String> = list
                .iter()
                .filter_map(|w| w["world"].as_str().map(str::to_string))
                .collect();
            if names != want {
                return None;
            }
            list.iter()
                .map(|w| {
                    (w["state"] == "running")
                        .then(|| Some((w["world"].as_str()?.to_string(), w["pid"].as_u64()?)))
                        .flatten()
                })
                .collect::<Option<Vec<_>>>()
        }
    })
    .await
}

fn pid_of(pids: &[(String, u64)], world: &str) -> u64 {
    pids.iter()
        .find(|(w, _)| w == world)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no pid for {world} in {pids:?}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An open `/api/events` stream.
struct Events {
    response: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(base: &str) -> Events {
        let r = reqwest::Client::new()
            .get(format!("{base}/api/events"))
            .send()
            .await
            .expect("GET /api/events");
        assert_eq!(r.status().as_u16(), 200);
        Events {
            response: r,
            buf: String::new(),
        }
    }

    /// The data of the next event named `name` (others are skipped).
    async fn next_named(&mut self, name: &str) -> Value {
        let read = async {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut event = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event: ") {
                            event = Some(e.to_string());
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data.push_str(d);
                        }
                    }
                    if event.as_deref() == Some(name) {
                        return serde_json::from_str::<Value>(&data).expect("event JSON");
                    }
                }
                match self.response.chunk().await {
                    Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    other => panic!("event stream ended before `{name}`: {other:?}"),
                }
            }
        };
        tokio::time::timeout(LONG, read)
            .await
            .unwrap_or_else(|_| panic!("no `{name}` event in time"))
    }
}

fn worlds_toml(worlds: &[(&str, &str)]) -> String {
    worlds
        .iter()
        .map(|(name, guilds)| format!("[[worlds]]\nname = \"{name}\"\nguilds = [{guilds}]\n"))
        .collect()
}

const POOL: &str = "[pool]\nmin_uptime = \"300ms\"\nstop_grace = \"3s\"\nbackoff_max = \"30s\"\n\
                    heartbeat_timeout = \"5s\"\nstart_timeout = \"10s\"\n";

fn metric(text: &str, outcome: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("worldpool_reloads_total{{outcome=\"{outcome}\"}}")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no reload counter for {outcome}:\n{text}"))
}

/// Three worlds; one added, one removed, one with a new guild list, one
/// unchanged: only those change, the API follows, the SSE stream and
/// `/metrics` say so.
#[tokio::test]
async fn a_reload_starts_stops_and_restarts_only_what_changed() {
    let sup = Supervisor::start(
        &format!(
            "{POOL}{}",
            worlds_toml(&[("A", "\"G1\""), ("B", "\"G2\""), ("C", "\"G3\"")])
        ),
        Some("idle"),
    );
    let base = sup.base.clone();
    let before = running_pids(&base, &["A", "B", "C"]).await;
    let mut events = Events::open(&base).await;

    sup.write_config(&format!(
        "{POOL}{}",
        worlds_toml(&[("A", "\"G1\""), ("B", "\"G2\", \"G5\""), ("D", "\"G4\"")])
    ));
    // Two at once: queued, not interleaved. One applies the change, the
    // other (after it) finds nothing left to do.
    let ((s1, r1), (s2, r2)) = tokio::join!(post_reload(&base), post_reload(&base));
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    let (report, other) = if strings(&r1["plan"]["started"]).is_empty() {
        (r2, r1)
    } else {
        (r1, r2)
    };
    assert_eq!(
        strings(&other["plan"]["unchanged"]),
        ["A", "B", "D", "watcher"],
        "{other}"
    );
    let plan = &report["plan"];
    assert_eq!(strings(&plan["started"]), ["D"], "{report}");
    assert_eq!(strings(&plan["stopped"]), ["C"], "{report}");
    // The status watcher restarts to read the new world list.
    assert_eq!(strings(&plan["restarted"]), ["B", "watcher"], "{report}");
    assert_eq!(strings(&plan["unchanged"]), ["A"], "{report}");
    assert!(strings(&plan["updated"]).is_empty(), "{report}");
    assert!(plan["needs_restart"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(report["trigger"], "api");
    assert!(
        report["warnings"].as_array().is_some_and(Vec::is_empty),
        "{report}"
    );

    // Answered once applied: the list is already the new one.
    let v = get(&base, "/api/workers").await;
    let names: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter(|w| w["kind"] == "scraper")
        .filter_map(|w| w["world"].as_str())
        .collect();
    assert_eq!(names, ["A", "B", "D"], "C is gone from /api/workers");
    let after = running_pids(&base, &["A", "B", "D"]).await;
    assert_eq!(
        pid_of(&after, "A"),
        pid_of(&before, "A"),
        "A kept its process"
    );
    assert_ne!(pid_of(&after, "B"), pid_of(&before, "B"), "B was restarted");
    let c_pid = pid_of(&before, "C") as u32;
    wait_for("C's process gone", LONG, || {
        (!crate::helper::pid_alive(c_pid)).then_some(())
    });
    let gone = client()
        .get(format!("{base}/api/workers/C"))
        .send()
        .await
        .expect("GET");
    assert_eq!(gone.status().as_u16(), 404);

    let first = events.next_named("reloaded").await;
    let second = events.next_named("reloaded").await;
    assert_eq!(first["event"], "reloaded");
    assert_eq!(first["plan"], report["plan"], "the change came first");
    assert_eq!(second["plan"], other["plan"]);

    // Config-derived API state followed the reload.
    let scraping = get(&base, "/api/scraping-config").await;
    assert_eq!(
        scraping,
        serde_json::json!([
            {"world": "A", "guilds": ["G1"]},
            {"world": "B", "guilds": ["G2", "G5"]},
            {"world": "D", "guilds": ["G4"]}
        ])
    );
    let metrics = get_text(&base, "/metrics").await;
    assert_eq!(metric(&metrics, "applied"), 2.0);
    assert_eq!(metric(&metrics, "failed"), 0.0);

    // Nothing changed: nothing touched.
    let (status, report) = post_reload(&base).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        strings(&report["plan"]["unchanged"]),
        ["A", "B", "D", "watcher"]
    );
    assert_eq!(running_pids(&base, &["A", "B", "D"]).await, after);
    sup.sigterm_and_wait();
}

/// A config with an unknown key changes nothing: 422 with the problem,
/// `reload_failed` on the stream, every pid the same, `worldpool reload`
/// exits 2 with the problem; fixed with a new `backoff_max`, `worldpool
/// reload` exits 0 with the plan and the new policy is in force in the
/// same processes.
#[tokio::test]
async fn a_bad_config_changes_nothing_and_a_policy_change_restarts_nothing() {
    let good = format!(
        "{POOL}{}",
        worlds_toml(&[("A", "\"G1\""), ("B", "\"G2\""), ("C", "\"G3\"")])
    );
    let sup = Supervisor::start(&good, Some("idle"));
    let base = sup.base.clone();
    let before = running_pids(&base, &["A", "B", "C"]).await;
    let mut events = Events::open(&base).await;

    let broken = good.replace("[pool]\n", "[pool]\nmoed = \"single\"\n")
        + "[[worlds]]\nname = \"D\"\nguilds = [\"G4\"]\n";
    sup.write_config(&broken);
    let (status, body) = post_reload(&base).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_config");
    assert_eq!(body["status"], 422);
    assert!(
        body["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("worlds.toml")),
        "{body}"
    );
    let problem = &body["problems"][0];
    assert_eq!(problem["key"], "pool.moed (line 2)", "{body}");
    assert_eq!(problem["message"], "unknown key `moed`");
    assert!(
        problem["fix"]
            .as_str()
            .is_some_and(|f| f.contains("did you mean `mode`")),
        "{body}"
    );
    let failed = events.next_named("reload_failed").await;
    assert_eq!(failed["problems"], body["problems"]);
    assert_eq!(failed["trigger"], "api");
    assert_eq!(running_pids(&base, &["A", "B", "C"]).await, before);

    // The command line says the same, with exit status 2.
    let out = reload_cli(&base).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pool.moed (line 2): unknown key `moed`"),
        "{stderr}"
    );
    assert!(stderr.contains("fix: did you mean `mode`?"), "{stderr}");
    assert!(stderr.contains("nothing changed"), "{stderr}");
    let metrics = get_text(&base, "/metrics").await;
    assert_eq!(metric(&metrics, "failed"), 2.0);
    assert_eq!(metric(&metrics, "applied"), 0.0);

    // Without the token: refused before anything is read.
    let r = client()
        .post(format!("{base}/api/reload"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 401);

    // Fixed, with a new backoff_max: applied to the same processes.
    sup.write_config(&good.replace("backoff_max = \"30s\"", "backoff_max = \"7s\""));
    let out = reload_cli(&base).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reloaded "), "{stdout}");
    assert!(stdout.contains("  updated    A, B, C"), "{stdout}");
    assert!(stdout.contains("  restarted  -"), "{stdout}");
    assert_eq!(running_pids(&base, &["A", "B", "C"]).await, before);
    for w in ["A", "B", "C"] {
        let v = get(&base, &format!("/api/workers/{w}")).await;
        assert_eq!(v["policy"]["restart"]["backoff"]["max"], 7.0, "{v}");
        assert_eq!(v["restarts"], 0, "{v}");
    }
    sup.sigterm_and_wait();
}

/// SIGHUP reloads like the API; a reload can switch the file watcher on,
/// and then saving the file is enough (a bad save changes nothing).
#[tokio::test]
async fn sighup_and_the_file_watcher_reload_like_the_api() {
    let three = worlds_toml(&[("A", "\"G1\""), ("B", "\"G2\""), ("C", "\"G3\"")]);
    let sup = Supervisor::start(&format!("{POOL}{three}"), Some("idle"));
    let base = sup.base.clone();
    let before = running_pids(&base, &["A", "B", "C"]).await;
    let mut events = Events::open(&base).await;

    // SIGHUP: C's guilds change, D is added, the watcher is switched on.
    let watched = POOL.replace("[pool]\n", "[pool]\nwatch_config = true\n");
    let four = worlds_toml(&[
        ("A", "\"G1\""),
        ("B", "\"G2\""),
        ("C", "\"G3\", \"G9\""),
        ("D", "\"G4\""),
    ]);
    sup.write_config(&format!("{watched}{four}"));
    sup.sighup();
    let event = events.next_named("reloaded").await;
    assert_eq!(event["trigger"], "sighup");
    assert_eq!(strings(&event["plan"]["started"]), ["D"], "{event}");
    assert_eq!(
        strings(&event["plan"]["restarted"]),
        ["C", "watcher"],
        "{event}"
    );
    assert_eq!(strings(&event["plan"]["unchanged"]), ["A", "B"], "{event}");
    let after = running_pids(&base, &["A", "B", "C", "D"]).await;
    assert_eq!(pid_of(&after, "A"), pid_of(&before, "A"));
    assert_eq!(pid_of(&after, "B"), pid_of(&before, "B"));
    assert_ne!(pid_of(&after, "C"), pid_of(&before, "C"));

    // The watcher: a save that removes B and changes A's guilds.
    let edited = worlds_toml(&[("A", "\"G8\""), ("C", "\"G3\", \"G9\""), ("D", "\"G4\"")]);
    sup.write_config(&format!("{watched}{edited}"));
    let event = events.next_named("reloaded").await;
    assert_eq!(event["trigger"], "watch");
    assert_eq!(strings(&event["plan"]["stopped"]), ["B"], "{event}");
    assert_eq!(
        strings(&event["plan"]["restarted"]),
        ["A", "watcher"],
        "{event}"
    );
    assert_eq!(strings(&event["plan"]["unchanged"]), ["C", "D"], "{event}");
    let watched_pids = running_pids(&base, &["A", "C", "D"]).await;
    assert_ne!(pid_of(&watched_pids, "A"), pid_of(&after, "A"));
    assert_eq!(pid_of(&watched_pids, "C"), pid_of(&after, "C"));
    assert_eq!(pid_of(&watched_pids, "D"), pid_of(&after, "D"));

    // A bad save: refused, nothing changes.
    sup.write_config(&format!("{watched}{edited}[[worlds]]\nname = \"E\"\n"));
    let failed = events.next_named("reload_failed").await;
    assert_eq!(failed["trigger"], "watch");
    let keys: Vec<&str> = failed["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert!(keys.contains(&"worlds[3].guilds"), "{failed}");
    assert_eq!(running_pids(&base, &["A", "C", "D"]).await, watched_pids);
    sup.sigterm_and_wait();
}

/// Real scraping workers against the demo site with a store: the site
/// updates while every worker is being restarted by reloads (a `[site]`
/// change restarts them all, two at a time), yet each update of each world
/// is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_run_is_lost_or_duplicated_across_reloads() {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/wp.db", dir.path().display());
    let config = dir.path().join("worlds.toml");
    let text = |timeout: &str| {
        site.config_toml(&url, Mode::Pool)
            .replace("poll_interval = \"1s\"", "poll_interval = \"100ms\"")
            .replace(
                "request_timeout = \"5s\"",
                &format!("request_timeout = \"{timeout}\""),
            )
    };
    assert!(text("6s").contains("request_timeout = \"6s\""));
    assert!(text("6s").contains("poll_interval = \"100ms\""));
    std::fs::write(&config, text("5s")).expect("config written");
    let sup = Supervisor::start_at(&config, None);
    let base = sup.base.clone();
    let worlds = site.world_names();
    let names: Vec<&str> = worlds.iter().map(String::as_str).collect();
    let store = Store::open(&url, 1).await.expect("store");

    // Every world has stored the site's current update.
    let stored_current = || {
        let store = store.clone();
        let want: Vec<(String, _)> = worlds
            .iter()
            .map(|w| (w.clone(), site.update_time(w).expect("world")))
            .collect();
        async move {
            for (w, t) in &want {
                let runs = store.runs(Some(w), 500, None).await.ok()?;
                if !runs.iter().any(|r| &r.update_time == t && r.status == "ok") {
                    return None;
                }
            }
            Some(())
        }
    };
    wait_for_async("the first run of every world", LONG, &stored_current).await;
    let mut pids = running_pids(&base, &names).await;

    for round in 0..4 {
        // The site updates while the reload restarts every worker.
        sup.write_config(&text(if round % 2 == 0 { "6s" } else { "5s" }));
        let reload = tokio::spawn({
            let base = base.clone();
            async move { post_reload(&base).await }
        });
        site.advance();
        let (status, report) = reload.await.expect("reload task");
        assert_eq!(status, 200, "{report}");
        // [site] changed: every world, and the status watcher.
        let mut everyone = worlds.clone();
        everyone.push("watcher".to_string());
        assert_eq!(strings(&report["plan"]["restarted"]), everyone, "{report}");
        assert!(
            report["warnings"].as_array().is_some_and(Vec::is_empty),
            "{report}"
        );
        wait_for_async("every world stored the update", LONG, &stored_current).await;
        let now = running_pids(&base, &names).await;
        for w in &names {
            assert_ne!(
                pid_of(&now, w),
                pid_of(&pids, w),
                "round {round}: {w} restarted"
            );
        }
        pids = now;
        // And once more after the reload.
        site.advance();
        wait_for_async("every world stored the next update", LONG, &stored_current).await;
    }

    for w in &worlds {
        let runs = store.runs(Some(w), 500, None).await.expect("runs");
        assert!(runs.iter().all(|r| r.status == "ok"), "{w}: {runs:?}");
        let mut times: Vec<_> = runs.iter().map(|r| r.update_time).collect();
        let n = times.len();
        times.sort();
        times.dedup();
        assert_eq!(times.len(), n, "{w}: an update stored twice: {runs:?}");
        // The first update, then two per round.
        assert_eq!(n, 1 + 2 * 4, "{w}: every update stored: {runs:?}");
        let distinct: std::collections::HashSet<String> =
            site.players(w).into_iter().map(|p| p.name).collect();
        assert_eq!(
            store.players(w).await.expect("players").len(),
            distinct.len(),
            "{w}: players stored once"
        );
    }
    sup.sigterm_and_wait();
    site.shutdown().await;
}

/// A reload whose new config makes workers crash at start stops at the
/// first one that does not come back `running`: the workers after it keep
/// their process (same pid), those it had restarted go back to the config
/// in force, and the answer (API, `worldpool reload`, the `reload_failed`
/// event) names the worker and its last exit.
#[tokio::test]
async fn a_rollout_stops_at_the_first_worker_that_does_not_come_back() {
    let pool = POOL.replace("[pool]\n", "[pool]\nreload_parallel = 1\n");
    let worlds = worlds_toml(&[("A", "\"G1\""), ("B", "\"G2\""), ("C", "\"G3\"")]);
    let good = format!("{pool}{worlds}");
    let sup = Supervisor::start(&good, Some("idle"));
    let base = sup.base.clone();
    let before = running_pids(&base, &["A", "B", "C"]).await;
    let watcher_pid = || async {
        get(&base, "/api/workers/watcher").await["pid"]
            .as_u64()
            .expect("watcher pid")
    };
    let watcher_before = watcher_pid().await;
    let mut events = Events::open(&base).await;

    // `[pool] env` changes: every worker restarts, one at a time, in
    // config order. A comes back; B exits with status 1 at every start.
    let crashing = pool.replace(
        "[pool]\n",
        "[pool]\nenv = { WORLDPOOL_TEST_WORKER_MODE = \"B=fail-start,*=idle\" }\n",
    );
    sup.write_config(&format!("{crashing}{worlds}"));
    let (status, body) = post_reload(&base).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "reload_rolled_back", "{body}");
    assert_eq!(body["status"], 422);
    assert_eq!(body["worker"]["worker"], "B", "{body}");
    assert_eq!(body["worker"]["state"], "backoff", "{body}");
    let last_exit = body["worker"]["last_exit"].as_str().unwrap_or_default();
    assert!(last_exit.contains("status 1"), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("worker `B`") && message.contains("status 1"),
        "{body}"
    );
    assert_eq!(body["problems"][0]["key"], "worker `B`", "{body}");
    let failed = events.next_named("reload_failed").await;
    assert_eq!(failed["worker"]["worker"], "B", "{failed}");
    assert_eq!(failed["problems"], body["problems"]);

    // C and the status watcher were never touched; A and B run the config
    // in force again (A's new process was replaced once more).
    let after = running_pids(&base, &["A", "B", "C"]).await;
    assert_eq!(
        pid_of(&after, "C"),
        pid_of(&before, "C"),
        "C kept its process"
    );
    assert_eq!(
        watcher_pid().await,
        watcher_before,
        "the watcher kept its process"
    );
    assert_ne!(pid_of(&after, "A"), pid_of(&before, "A"));
    assert_ne!(pid_of(&after, "B"), pid_of(&before, "B"));
    // Every worker's process has the old environment (the old spec).
    for w in ["A", "B", "C"] {
        let pid = pid_of(&after, w);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        let environ = String::from_utf8_lossy(&environ);
        let mode: Vec<&str> = environ
            .split('\0')
            .filter(|v| v.starts_with("WORLDPOOL_TEST_WORKER_MODE="))
            .collect();
        assert_eq!(mode, ["WORLDPOOL_TEST_WORKER_MODE=idle"], "{w}");
    }

    // The command line says the same, exit status 2.
    let out = reload_cli(&base).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("reload rolled back at worker `B`"),
        "{stderr}"
    );
    assert!(stderr.contains("status 1"), "{stderr}");
    assert!(stderr.contains("nothing changed"), "{stderr}");
    let metrics = get_text(&base, "/metrics").await;
    assert_eq!(metric(&metrics, "failed"), 2.0);
    assert_eq!(metric(&metrics, "applied"), 0.0);

    // The config in force is still the old one: reloading it changes
    // nothing.
    let settled = running_pids(&base, &["A", "B", "C"]).await;
    sup.write_config(&good);
    let (status, report) = post_reload(&base).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        strings(&report["plan"]["unchanged"]),
        ["A", "B", "C", "watcher"],
        "{report}"
    );
    assert_eq!(running_pids(&base, &["A", "B", "C"]).await, settled);
    sup.sigterm_and_wait();
}
