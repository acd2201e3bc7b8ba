//! Scale-out: several `worldpool run` nodes on one PostgreSQL share the
//! worlds by leases. Real processes, real workers scraping the demo site
//! on 127.0.0.1, the ephemeral PostgreSQL; short leases (3 s, a tick each
//! second). A checker polls the leases every 200 ms, and a trigger on
//! `runs` (installed by the test) refuses a write whose epoch is not its
//! world's lease's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use worldpool::config::Mode;
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Sizing};

use crate::helper::pg::PgCluster;
use crate::helper::supervisor::{Launch, Process, Supervisor};
use crate::helper::{free_port, wait_for, wait_for_async};

const TTL: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(500);
const WORLDS: usize = 12;

/// The test's refusal of a write made under an epoch that is not its
/// world's lease's (installed once the nodes' migrations ran).
const EPOCH_TRIGGER: &str = r#"
CREATE OR REPLACE FUNCTION test_runs_epoch() RETURNS trigger AS $$
BEGIN
    IF NEW.epoch IS DISTINCT FROM (SELECT epoch FROM world_leases WHERE world = NEW.world) THEN
        RAISE EXCEPTION 'test trigger: run of % written at epoch % is not its lease''s', NEW.world, NEW.epoch;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS runs_epoch ON runs;
CREATE TRIGGER runs_epoch BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION test_runs_epoch();
"#;

/// The demo site (12 worlds, a new update every second) and a config for
/// it with `[cluster]` on.
struct Site {
    _site: DemoSite,
    dir: tempfile::TempDir,
    config: PathBuf,
}

async fn site(url: &str) -> Site {
    let site = DemoSite::start(DemoSiteOptions {
        sized: Some(Sizing {
            worlds: WORLDS,
            guilds_per_world: 1,
            players_per_guild: 5,
        }),
        tick: Some(Duration::from_secs(1)),
        ..DemoSiteOptions::default()
    })
    .await
    .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worlds.toml");
    let text = site
        .config_toml(url, Mode::Pool)
        .replacen(
            "[pool]\n",
            "[pool]\nmin_uptime = \"300ms\"\nheartbeat_timeout = \"5s\"\nstart_timeout = \"10s\"\n",
            1,
        )
        .replacen(
            "poll_interval = \"1s\"",
            &format!("poll_interval = \"{}ms\"", POLL.as_millis()),
            1,
        );
    let text = format!(
        "{text}\n[cluster]\nenabled = true\nlease_ttl = \"{}s\"\nrenew_every = \"{}s\"\n",
        TTL.as_secs(),
        TICK.as_secs()
    );
    std::fs::write(&config, text).expect("config");
    Site {
        _site: site,
        dir,
        config,
    }
}

/// One node: `worldpool run` in a process group of its own, its API on a
/// free port.
fn node(config: &Path, name: &str, env: &[(String, String)]) -> Supervisor {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let log = dir.path().join(format!("{name}.log"));
    let mut env = env.to_vec();
    env.push(("WORLDPOOL_LOG_FORMAT".into(), "json".into()));
    let process = Process::spawn(
        config,
        &log,
        &Launch {
            api_port: Some(port),
            log_json: true,
            env: &env,
            own_group: true,
            ..Launch::default()
        },
    )
    .in_dir(dir);
    let sup = Supervisor {
        process,
        api: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let began = Instant::now();
    while sup.get("/api/cluster").filter(|(s, _)| *s == 200).is_none() {
        if began.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(&sup.process.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "node {name}'s API did not answer in 60 s; its log ends:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sup
}

/// One cluster test at a time: each runs 3 or 4 nodes of 13 processes.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

fn view(node: &Supervisor) -> Option<Value> {
    node.get("/api/cluster")
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
}

/// The world leases a node holds, by its own account.
fn held(node: &Supervisor) -> Option<BTreeMap<String, i64>> {
    let v = view(node)?;
    Some(
        v["this_node"]["held"]
            .as_array()?
            .iter()
            .filter_map(|h| Some((h["world"].as_str()?.to_string(), h["epoch"].as_i64()?)))
            .collect(),
    )
}

/// The world workers a node runs (a pid and state `running`).
fn running(node: &Supervisor) -> BTreeSet<String> {
    let Some((200, v)) = node.get("/api/workers") else {
        return BTreeSet::new();
    };
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["workers"].as_array().cloned());
    list.unwrap_or_default()
        .iter()
        .filter(|w| w["state"] == "running")
        .filter_map(|w| w["world"].as_str().or(w["name"].as_str()).map(String::from))
        .collect()
}

/// What the database says: world → (owner, epoch, live).
async fn leases(url: &str) -> BTreeMap<String, (Option<String>, i64, bool)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT world, owner, epoch, (owner IS NOT NULL AND expires_at > now()) FROM world_leases",
            &[],
        )
        .await
        .expect("leases");
    drop(client);
    let _ = task.await;
    rows.iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

async fn sql(url: &str, text: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    let rows = client.query(text, &[]).await.expect(text);
    drop(client);
    let _ = task.await;
    rows
}

/// Migrate a fresh database and install the epoch trigger.
async fn prepared(url: &str) {
    worldpool::store::Store::open(url, 1)
        .await
        .expect("migrated");
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    client.batch_execute(EPOCH_TRIGGER).await.expect("trigger");
    drop(client);
    let _ = task.await;
}

/// Live holdings per owner, from the database.
fn split(leases: &BTreeMap<String, (Option<String>, i64, bool)>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (world, (owner, _, live)) in leases {
        if world == "watcher" {
            continue;
        }
        if let (Some(o), true) = (owner, live) {
            *out.entry(o.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// A background checker: every 200 ms, the leases; fails on an epoch
/// that went down or an owner change without an epoch change.
struct Checker {
    seen: Arc<Mutex<Vec<String>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Checker {
    fn start(url: String) -> Checker {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let (s, st) = (seen.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut last: BTreeMap<String, (Option<String>, i64)> = BTreeMap::new();
            while !st.is_cancelled() {
                if let Ok(Ok((client, conn))) = tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio_postgres::connect(&url, tokio_postgres::NoTls),
                )
                .await
                {
                    let t = tokio::spawn(conn);
                    if let Ok(rows) = client
                        .query("SELECT world, owner, epoch FROM world_leases", &[])
                        .await
                    {
                        for r in rows {
                            let (world, owner, epoch): (String, Option<String>, i64) =
                                (r.get(0), r.get(1), r.get(2));
                            if let Some((o, e)) = last.get(&world) {
                                if epoch < *e {
                                    s.lock().expect("lock").push(format!(
                                        "{world}: epoch went down from {e} to {epoch}"
                                    ));
                                }
                                if epoch == *e && owner.is_some() && o.is_some() && owner != *o {
                                    s.lock().expect("lock").push(format!(
                                        "{world}: owner changed at the same epoch {e}"
                                    ));
                                }
                            }
                            last.insert(world, (owner, epoch));
                        }
                    }
                    drop(client);
                    t.abort();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Checker { seen, stop, task }
    }

    async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
        let seen = self.seen.lock().expect("lock").clone();
        assert!(seen.is_empty(), "the lease checker saw: {seen:?}");
    }
}

/// No world has two `ok` runs of one update, the trigger never fired, and
/// per world the runs' epochs never go down in id order.
async fn runs_are_clean(url: &str, nodes: &[&Supervisor]) {
    let dup = sql(
        url,
        "SELECT world, update_time, count(*) FROM runs WHERE status = 'ok' GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .await;
    assert!(dup.is_empty(), "duplicate runs: {}", dup.len());
    let down = sql(
        url,
        "SELECT world FROM (SELECT world, epoch, lag(epoch) OVER (PARTITION BY world ORDER BY id) AS prev FROM runs) r
         WHERE epoch < prev",
    )
    .await;
    assert!(
        down.is_empty(),
        "an epoch went down in id order in {} runs",
        down.len()
    );
    for n in nodes {
        let log = std::fs::read_to_string(&n.process.log).unwrap_or_default();
        assert!(
            !log.contains("test trigger: run of"),
            "a write was made under an epoch that was not its lease's:\n{}",
            log.lines()
                .filter(|l| l.contains("test trigger"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The warnings and errors of the nodes' logs (last 12 each), for a
/// failure's message.
fn diag(nodes: &[&Supervisor]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let log = std::fs::read_to_string(&n.process.log).unwrap_or_default();
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("fenced"))
                .collect();
            let tail = &lines[lines.len().saturating_sub(12)..];
            format!("node {i}:\n{}", tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// [`wait_for_async`] that shows the nodes' warnings when it times out.
async fn until<F, Fut>(what: &str, deadline: Duration, nodes: &[&Supervisor], mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let began = Instant::now();
    loop {
        let last = match cond().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if began.elapsed() > deadline {
            panic!(
                "timed out after {deadline:?} waiting for {what}: {last}\n{}",
                diag(nodes)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the database shows `want` (sorted counts) among live owners
/// and each node runs exactly the worlds it holds; returns how long it took.
fn settled(url: &str, nodes: &[&Supervisor], want: &[usize], deadline: Duration) -> Duration {
    let began = Instant::now();
    let rt = tokio::runtime::Handle::current();
    loop {
        let last = match split_now(&rt, url, nodes, want) {
            Ok(()) => return began.elapsed(),
            Err(why) => why,
        };
        if began.elapsed() > deadline {
            let views: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let log = std::fs::read_to_string(&n.process.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(6).collect();
                    let v = view(n).unwrap_or_default();
                    format!(
                        "{} {}\n{}",
                        v["this_node"]["node_name"],
                        v["counters"],
                        tail.join("\n")
                    )
                })
                .collect();
            panic!(
                "the worlds did not split {want:?} within {deadline:?}: {last}\n{}",
                views.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn split_now(
    rt: &tokio::runtime::Handle,
    url: &str,
    nodes: &[&Supervisor],
    want: &[usize],
) -> Result<(), String> {
    let l = tokio::task::block_in_place(|| rt.block_on(leases(url)));
    let mut counts: Vec<usize> = split(&l).values().copied().collect();
    counts.sort_unstable();
    if counts != want {
        return Err(format!("database split {counts:?}"));
    }
    // One worker per world, cluster-wide.
    let mut all = BTreeSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let mine: BTreeSet<String> = held(n)
            .ok_or(format!("node {i}: no view"))?
            .into_keys()
            .filter(|w| w != "watcher")
            .collect();
        let runs: BTreeSet<String> = running(n).into_iter().filter(|w| w != "watcher").collect();
        if mine != runs {
            return Err(format!("node {i} holds {mine:?} but runs {runs:?}"));
        }
        for w in runs {
            if !all.insert(w.clone()) {
                return Err(format!("{w} runs twice"));
            }
        }
    }
    if all.len() != WORLDS {
        return Err(format!("{} worlds run", all.len()));
    }
    Ok(())
}

/// A test's bed: one cluster test at a time, a fresh migrated database
/// with the epoch trigger, the demo site and its config, the lease checker.
async fn bed() -> (tokio::sync::MutexGuard<'static, ()>, String, Site, Checker) {
    let serial = one_at_a_time().await;
    let url = crate::helper::pg::fresh_database_url().await;
    prepared(&url).await;
    let s = site(&url).await;
    let checker = Checker::start(url.clone());
    (serial, url, s, checker)
}

/// The checker saw nothing wrong and the runs are clean.
async fn finish(checker: Checker, url: &str, nodes: &[&Supervisor]) {
    checker.finish().await;
    runs_are_clean(url, nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_split_twelve_worlds_then_a_fourth_takes_three() {
    let (_serial, url, s, checker) = bed().await;
    let a = node(&s.config, "a", &[]);
    let b = node(&s.config, "b", &[]);
    let c = node(&s.config, "c", &[]);
    let took = settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 2 + Duration::from_secs(10),
    );
    eprintln!("3 nodes: 4/4/4 after {took:?}");
    let before = leases(&url).await;
    let d = node(&s.config, "d", &[]);
    let took = settled(
        &url,
        &[&a, &b, &c, &d],
        &[3, 3, 3, 3],
        TTL * 3 + Duration::from_secs(10),
    );
    eprintln!("4th node: 3/3/3/3 after {took:?}");
    let after = leases(&url).await;
    let moved: Vec<&String> = before
        .iter()
        .filter(|(w, (_, e, _))| *w != "watcher" && after.get(*w).is_some_and(|(_, e2, _)| e2 != e))
        .map(|(w, _)| w)
        .collect();
    assert_eq!(moved.len(), 3, "exactly 3 worlds moved: {moved:?}");
    // The API shows the same picture from any node.
    let v = view(&d).expect("cluster view");
    assert_eq!(v["balance"]["nodes"], 4, "{v}");
    assert_eq!(v["balance"]["owned"], WORLDS, "{v}");
    assert_eq!(v["balance"]["spread"], 0, "{v}");
    assert_eq!(v["state"], "ok", "{v}");
    finish(checker, &url, &[&a, &b, &c, &d]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_worlds_move_with_a_higher_epoch() {
    let (_serial, url, s, checker) = bed().await;
    let a = node(&s.config, "a", &[]);
    let b = node(&s.config, "b", &[]);
    let mut c = node(&s.config, "c", &[]);
    settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 2 + Duration::from_secs(10),
    );
    let theirs = held(&c).expect("c's leases");
    // Every world has stored runs before the kill.
    wait_for_async("a run of every world", Duration::from_secs(30), || async {
        let n: i64 = sql(
            &url,
            "SELECT count(DISTINCT world) FROM runs WHERE status = 'ok'",
        )
        .await[0]
            .get(0);
        (n as usize == WORLDS).then_some(())
    })
    .await;
    let killed_at = chrono::Utc::now();
    c.process.child.kill().expect("kill -9");
    let _ = c.process.child.wait();
    let took = settled(&url, &[&a, &b], &[6, 6], TTL * 2 + Duration::from_secs(10));
    eprintln!("kill -9: moved after {took:?}");
    let now = leases(&url).await;
    for (world, epoch) in &theirs {
        let (_, e, _) = &now[world];
        assert!(
            e > epoch,
            "{world}: epoch {e} after the takeover, {epoch} before"
        );
    }
    // Runs went on: no gap longer than 2 TTL + the poll interval (+ the
    // site's 1 s between updates) in the worlds that moved.
    let after = chrono::Utc::now().to_rfc3339();
    until("runs after the takeover", Duration::from_secs(30), &[&a, &b], || async {
        let rows = sql(
            &url,
            &format!(
                "SELECT world, count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'failed'), max(error)
                 FROM runs WHERE finished_at > '{after}' GROUP BY world ORDER BY world"
            ),
        )
        .await;
        let ok = rows.iter().filter(|r| r.get::<_, i64>(1) > 0).count();
        if ok == WORLDS {
            return Ok(());
        }
        Err(format!(
            "{ok} worlds stored a run: {:?}",
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, i64>(2), r.get::<_, Option<String>>(3)))
                .collect::<Vec<_>>()
        ))
    })
    .await;
    let gap_limit = (TTL * 2 + POLL + Duration::from_secs(1)).as_secs_f64();
    for world in theirs.keys() {
        let rows = sql(
            &url,
            &format!(
                "SELECT EXTRACT(EPOCH FROM max(g))::FLOAT8 FROM (
                   SELECT finished_at - lag(finished_at) OVER (ORDER BY finished_at) AS g
                   FROM runs WHERE world = '{world}' AND status = 'ok' AND finished_at > '{}'::timestamptz - interval '5 seconds') x",
                killed_at.to_rfc3339()
            ),
        )
        .await;
        let gap: Option<f64> = rows[0].get(0);
        assert!(
            gap.is_some_and(|g| g <= gap_limit),
            "{world}: longest gap between runs around the kill {gap:?} s (limit {gap_limit} s)"
        );
    }
    finish(checker, &url, &[&a, &b]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_is_fenced_and_the_split_returns() {
    let (_serial, url, s, checker) = bed().await;
    let a = node(&s.config, "a", &[]);
    let b = node(&s.config, "b", &[]);
    settled(&url, &[&a, &b], &[6, 6], TTL * 2 + Duration::from_secs(10));
    // The third node's first run write parks inside its transaction.
    let marker = s.dir.path().join("stalled");
    let release = s.dir.path().join("release");
    let env = [
        (
            "WORLDPOOL_TEST_STALL_IN_TX".to_string(),
            marker.display().to_string(),
        ),
        (
            "WORLDPOOL_TEST_STALL_RELEASE".to_string(),
            release.display().to_string(),
        ),
    ];
    let c = node(&s.config, "c", &env);
    settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 3 + Duration::from_secs(10),
    );
    let writer: u32 = wait_for(
        "a write parked in its transaction",
        Duration::from_secs(30),
        || std::fs::read_to_string(&marker).ok()?.trim().parse().ok(),
    );
    let parked = wait_for("the parked worker's world", Duration::from_secs(10), || {
        let (_, v) = c.get("/api/workers")?;
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["workers"].as_array().cloned())?;
        list.iter()
            .find(|w| w["pid"].as_u64() == Some(u64::from(writer)))
            .and_then(|w| w["world"].as_str().or(w["name"].as_str()).map(String::from))
    });
    let epoch_before = leases(&url).await[&parked].1;
    // Pause the node's supervisor (its process group) for 3 TTL.
    let pgid = c.process.child.id() as i32;
    // SAFETY: plain syscall on a process group this test started.
    unsafe { libc::kill(-pgid, libc::SIGSTOP) };
    let took = settled(&url, &[&a, &b], &[6, 6], TTL * 2 + Duration::from_secs(10));
    eprintln!("SIGSTOP: moved after {took:?}");
    assert!(
        leases(&url).await[&parked].1 > epoch_before,
        "the parked world moved"
    );
    let paused_until = Instant::now() + TTL * 3 - took.min(TTL * 3);
    // Let the parked write try its commit while the node is still paused.
    std::fs::write(&release, "go").expect("release");
    while Instant::now() < paused_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGCONT) };
    // It kills its workers within a tick, its commit was refused (fenced),
    // and the split comes back.
    wait_for("the paused node's workers killed", TICK * 3, || {
        running(&c).is_empty().then_some(())
    });
    until(
        "the fenced exit counted",
        Duration::from_secs(10),
        &[&c],
        || async {
            let v = view(&c).ok_or("no view")?;
            match v["counters"]["fenced"].as_u64() {
                Some(n) if n >= 1 => Ok(()),
                _ => Err(format!("counters {}", v["counters"])),
            }
        },
    )
    .await;
    settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 4 + Duration::from_secs(10),
    );
    finish(checker, &url, &[&a, &b, &c]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_empties_every_node_then_every_world_is_owned_again() {
    let _serial = one_at_a_time().await;
    let pg = PgCluster::start().expect("a PostgreSQL of this test's own");
    let url = pg.url();
    prepared(&url).await;
    let s = site(&url).await;
    let a = node(&s.config, "a", &[]);
    let b = node(&s.config, "b", &[]);
    let c = node(&s.config, "c", &[]);
    settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 2 + Duration::from_secs(10),
    );
    let before = leases(&url).await;
    pg.stop_server();
    let stopped = Instant::now();
    wait_for("every node at 0 workers", TTL * 2, || {
        [&a, &b, &c]
            .iter()
            .all(|n| running(n).is_empty())
            .then_some(())
    });
    while stopped.elapsed() < TTL * 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pg.start_server().expect("PostgreSQL back");
    for n in [&a, &b, &c] {
        assert!(
            crate::helper::pid_alive(n.process.child.id()),
            "no node exits"
        );
    }
    let took = settled(
        &url,
        &[&a, &b, &c],
        &[4, 4, 4],
        TTL * 2 + Duration::from_secs(10),
    );
    eprintln!("database restart: owned again after {took:?}");
    let after = leases(&url).await;
    for (world, (_, e, _)) in &before {
        if world == "watcher" {
            continue;
        }
        assert!(
            after[world].1 > *e,
            "{world}: epoch {} after, {e} before",
            after[world].1
        );
    }
    runs_are_clean(&url, &[&a, &b, &c]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shows_the_cluster_follows_reloads_and_refuses_other_timings() {
    let _serial = one_at_a_time().await;
    let url = crate::helper::pg::fresh_database_url().await;
    prepared(&url).await;
    let s = site(&url).await;
    let a = node(&s.config, "a", &[]);
    settled(&url, &[&a], &[12], TTL * 2 + Duration::from_secs(10));
    // Its events: a second node joins and the split is shared.
    let api = crate::helper::api::Api::at(format!("http://{}", a.api));
    let mut events = api.stream("/api/events").await;
    let b = node(&s.config, "b", &[]);
    settled(&url, &[&a, &b], &[6, 6], TTL * 3 + Duration::from_secs(10));
    let mut buf = String::new();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let names = seen.clone();
    let frames = tokio::time::timeout(
        Duration::from_secs(20),
        crate::helper::api::sse_frames(&mut events, &mut buf, move |f| {
            let mut names = names.lock().expect("lock");
            names.extend(f.iter().map(|(n, _)| n.clone()));
            names.contains("node_joined") && names.contains("lease_lost")
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no cluster events on /api/events; saw {:?}",
            seen.lock().expect("lock")
        )
    });
    let (_, lost) = frames
        .iter()
        .find(|(n, _)| n == "lease_lost")
        .expect("a shed lease");
    let lost: Value = serde_json::from_str(lost).expect("json");
    assert_eq!(lost["reason"], "shed", "{lost}");
    // /metrics, status --cluster.
    let (_, _, metrics) = api.text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("worldpool_cluster_leases_held ")),
        "{metrics}"
    );
    assert!(
        metrics.contains("worldpool_cluster_fenced_writes_total 0"),
        "{metrics}"
    );
    let out =
        crate::helper::cli::command(["status", "--cluster", "--api", &format!("http://{}", a.api)])
            .output()
            .expect("status --cluster");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("cluster: ok  nodes 2  worlds 12 (owned 12)"),
        "{text}"
    );
    assert_eq!(
        text.matches(" held").count(),
        WORLDS + 1,
        "12 worlds and the watcher:\n{text}"
    );
    // The dashboard's cluster panel, in Chromium.
    let browser = crate::helper::browser::Browser::start(1280, 900).await;
    browser.goto(&format!("http://{}/", a.api)).await;
    browser
        .wait_for(
            "the cluster panel with both nodes and every lease",
            Duration::from_secs(20),
            "const p = document.getElementById('cluster-panel'); \
             return !p.hidden \
               && document.querySelectorAll('#cluster-nodes tbody tr').length === 2 \
               && document.querySelectorAll('#cluster-leases tbody tr').length === arguments[0] \
               && document.getElementById('cluster-summary').textContent.includes('12/12 worlds owned');",
            serde_json::json!(WORLDS + 1),
        )
        .await;
    let errors: Vec<(String, String)> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // A node with another lease_ttl is refused, naming what differs.
    let other = s.dir.path().join("other.toml");
    let text = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &other,
        text.replace("lease_ttl = \"3s\"", "lease_ttl = \"8s\""),
    )
    .expect("write");
    let out =
        crate::helper::cli::command(["run", "--no-api", "--config", &other.display().to_string()])
            .env_remove("DATABASE_URL")
            .output()
            .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("lease_ttl is 8s but live node"), "{err}");
    // A reload without World 12 on both nodes: its worker stops, its lease
    // is released; with it again, it is owned again.
    let full = std::fs::read_to_string(&s.config).expect("config");
    let start = full
        .find("[[worlds]]\nname = \"World 12\"")
        .expect("World 12");
    let end = full[start + 10..]
        .find("[[worlds]]")
        .map_or(full.len(), |i| start + 10 + i);
    let without = format!("{}{}", &full[..start], &full[end..]);
    for (text, owned) in [(without, false), (full.clone(), true)] {
        std::fs::write(&s.config, &text).expect("write");
        for n in [&a, &b] {
            let (status, _) = n
                .post_json("/api/reload", &Value::Null)
                .expect("reload answers");
            assert_eq!(status, 200);
        }
        until(
            "World 12 follows the reload",
            Duration::from_secs(20),
            &[&a, &b],
            || async {
                let l = leases(&url).await;
                let live = l.get("World 12").is_some_and(|(_, _, live)| *live);
                let runs = running(&a).contains("World 12") || running(&b).contains("World 12");
                if live == owned && runs == owned {
                    Ok(())
                } else {
                    Err(format!("live {live}, running {runs}"))
                }
            },
        )
        .await;
    }
    drop(s);
}
