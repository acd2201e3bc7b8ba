//! Scale-out: several `worldpool run` nodes on one PostgreSQL share the
//! worlds by leases. Real processes, real workers scraping the demo site
//! on 127.0.0.1, the ephemeral PostgreSQL; short leases (3 s, a tick each
//! second). A checker polls the leases every 200 ms, and a trigger on
//! `runs` (installed by the test) refuses a write whose epoch is not its
//! world's lease's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use worldpool::config::Mode;
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Sizing};

use crate::helper::pg::PgCluster;
use crate::helper::supervisor::{Launch, Supervisor, run_command};
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
    let mut cmd = run_command(
        config,
        &log,
        &Launch {
            api_port: Some(port),
            log_json: true,
            env: &env,
            ..Launch::default()
        },
    );
    cmd.process_group(0);
    let child = cmd.spawn().expect("worldpool run starts");
    let sup = Supervisor {
        child,
        api: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        dir,
    };
    wait_for(
        &format!("node {name}'s API"),
        Duration::from_secs(60),
        || {
            sup.get("/api/cluster")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        },
    );
    sup
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
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
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
            let log = std::fs::read_to_string(&n.log).unwrap_or_default();
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
                    let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(6).collect();
                    format!(
                        "{}\n{}",
                        view(n).map(|v| v.to_string()).unwrap_or_default(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_split_twelve_worlds_then_a_fourth_takes_three() {
    let url = crate::helper::pg::fresh_database_url().await;
    prepared(&url).await;
    let s = site(&url).await;
    let checker = Checker::start(url.clone());
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
    checker.finish().await;
    runs_are_clean(&url, &[&a, &b, &c, &d]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_worlds_move_with_a_higher_epoch() {
    let url = crate::helper::pg::fresh_database_url().await;
    prepared(&url).await;
    let s = site(&url).await;
    let checker = Checker::start(url.clone());
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
    c.child.kill().expect("kill -9");
    let _ = c.child.wait();
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
    checker.finish().await;
    runs_are_clean(&url, &[&a, &b]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_is_fenced_and_the_split_returns() {
    let url = crate::helper::pg::fresh_database_url().await;
    prepared(&url).await;
    let s = site(&url).await;
    let checker = Checker::start(url.clone());
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
    let pgid = c.child.id() as i32;
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
    checker.finish().await;
    runs_are_clean(&url, &[&a, &b, &c]).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_empties_every_node_then_every_world_is_owned_again() {
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
        assert!(crate::helper::pid_alive(n.child.id()), "no node exits");
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
