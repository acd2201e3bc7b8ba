//! `worldpool bench --cluster`: scale-out measured end to end, every
//! measure in one run.
//!
//! The bench starts a PostgreSQL of its own ([`super::pg`]), the demo site
//! in-process (`--worlds` worlds, a new update of every world each
//! `--update-every`, 2 × lease_ttl by default) and `--nodes` real
//! `worldpool run` nodes (this binary) with `[cluster]` on, each in a
//! process group of its own with its API on 127.0.0.1. It then measures:
//!
//! 1. the status page's requests per poll interval with one node, then
//!    with every node (the watcher has a cluster lease: they must be
//!    equal), and with every node the lease ticks per second and the
//!    renew latency of each node (`/api/cluster` counters, sampled at
//!    each tick), and the lease tables' row writes per second;
//! 2. takeover after `kill -9` of a node's supervisor, `--rounds` times:
//!    from the kill until every world it held has a live lease of another
//!    node (`world_leases` polled every 50 ms); a new node then takes the
//!    dead one's place and the split is waited for;
//! 3. takeover after `SIGSTOP` of a whole node (its process group and each
//!    worker's), `--stop-rounds` times, kept stopped for 2 × lease_ttl,
//!    then `SIGCONT`;
//! 4. takeover after a database restart (`pg_ctl -m immediate stop`, down
//!    for 2 × lease_ttl): from the start until every world is owned again.
//!
//! Each kill and stop comes between two site updates: once the victim's
//! worlds stored the site's latest. Every update the site published (its
//! update times, recorded every 50 ms) must get an `ok` run: the ones that
//! never do are the missed updates, counted by the phase they were
//! published in; duplicate `ok` runs of one update must be 0.
//!
//! Writes `cluster.json` into `--out` (the nodes' logs under `cluster/`)
//! and prints a Markdown table with the goals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use super::pg::PgCluster;
use super::polite::set_keys;
use super::stats;
use crate::api::client::HttpClient;
use crate::config::{Mode, WATCHER_NAME};
use crate::demo_site::{DemoSite, DemoSiteOptions, Sizing};
use crate::store::Store;

/// What to run (`worldpool bench --cluster` flags).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Output folder (cluster.json, the nodes' logs).
    pub out: PathBuf,
    /// Nodes (3; 2 with `quick`).
    pub nodes: Option<usize>,
    /// Worlds (12; 4 with `quick`).
    pub worlds: Option<usize>,
    /// `kill -9` rounds (10; 1 with `quick`).
    pub rounds: Option<usize>,
    /// `SIGSTOP` rounds (3; 1 with `quick`).
    pub stop_rounds: Option<usize>,
    /// `[cluster] lease_ttl`.
    pub lease_ttl: Duration,
    /// `[cluster] renew_every`.
    pub renew_every: Duration,
    /// The site's update period (2 × lease_ttl by default).
    pub update_every: Option<Duration>,
    /// Small sizes, short windows.
    pub quick: bool,
}

/// Median and largest of a series of takeovers, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Takeovers {
    /// Each round's time, seconds.
    pub samples_s: Vec<f64>,
    /// Rounds whose worlds were not all taken within the bench's limit.
    pub failed: usize,
    /// Median.
    pub median_s: Option<f64>,
    /// Largest.
    pub max_s: Option<f64>,
}

impl Takeovers {
    fn of(samples: Vec<f64>, failed: usize) -> Takeovers {
        Takeovers {
            median_s: stats::percentile(&samples, 0.5),
            max_s: stats::percentile(&samples, 1.0),
            samples_s: samples,
            failed,
        }
    }

    fn cell(&self) -> String {
        match (self.median_s, self.max_s) {
            (Some(m), Some(x)) => {
                let mut s = format!(
                    "median {m:.2} s, max {x:.2} s ({} rounds",
                    self.samples_s.len()
                );
                if self.failed > 0 {
                    s.push_str(&format!(", {} not taken in time", self.failed));
                }
                s.push(')');
                s
            }
            _ => format!("none measured ({} not taken in time)", self.failed),
        }
    }
}

/// Updates the site published in one phase and how many never got an
/// `ok` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Missed {
    /// Updates (world × update time) published.
    pub published: usize,
    /// Of those, never stored by an `ok` run.
    pub missed: usize,
    /// The missed ones, `world@update_time`.
    pub which: Vec<String>,
}

/// One node's lease load with every node up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeLoad {
    /// The node (`n0`, `n1`, …).
    pub node: String,
    /// Committed ticks per second.
    pub ticks_per_s: f64,
    /// Failed ticks in the window.
    pub ticks_failed: u64,
    /// The ticks' durations (renew, rebalance; one transaction), ms.
    pub renew_ms_p50: Option<f64>,
    /// 99th percentile.
    pub renew_ms_p99: Option<f64>,
    /// Largest.
    pub renew_ms_max: Option<f64>,
    /// Ticks sampled.
    pub renew_samples: usize,
}

/// Site status-page requests per poll interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusRequests {
    /// Poll intervals watched in each case.
    pub intervals: usize,
    /// `/status` requests in that time with one node.
    pub one_node: u64,
    /// With every node.
    pub all_nodes: u64,
    /// Per interval, one node.
    pub one_node_per_interval: f64,
    /// Per interval, every node.
    pub all_nodes_per_interval: f64,
}

/// The database restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DbRestart {
    /// How long the server was down, seconds.
    pub down_s: f64,
    /// `pg_ctl start` until it accepted connections, seconds.
    pub start_s: f64,
    /// From the start until every world had a live lease of a live node,
    /// seconds (`None`: not within the bench's limit).
    pub owned_again_s: Option<f64>,
    /// Leased workers still running on the nodes just before the start.
    pub workers_left_during_outage: usize,
    /// Nodes that exited meanwhile.
    pub nodes_exited: usize,
    /// Every world's epoch grew across the restart.
    pub epochs_grew: bool,
}

/// `cluster.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterResults {
    /// When the run began.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `--quick`.
    pub quick: bool,
    /// Nodes.
    pub nodes: usize,
    /// Worlds.
    pub worlds: usize,
    /// `lease_ttl`, seconds.
    pub lease_ttl_s: f64,
    /// `renew_every`, seconds.
    pub renew_every_s: f64,
    /// The watcher's poll interval, seconds.
    pub poll_interval_s: f64,
    /// The site's update period, seconds.
    pub update_every_s: f64,
    /// Every node started to the balanced split, seconds.
    pub first_split_s: f64,
    /// Status-page requests, one node against every node.
    pub status_requests: StatusRequests,
    /// Lease load per node with every node up.
    pub lease_load: Vec<NodeLoad>,
    /// Row writes per second on `world_leases` and `nodes` together
    /// (`pg_stat_user_tables`, inserted + updated; flushed about once a
    /// second, so approximate).
    pub lease_table_writes_per_s: f64,
    /// Takeover after `kill -9` of a node's supervisor.
    pub takeover_kill: Takeovers,
    /// A new node in the dead one's place → the balanced split, seconds.
    pub rebalance_after_rejoin: Takeovers,
    /// Takeover after `SIGSTOP` of a node's process group.
    pub takeover_stop: Takeovers,
    /// Workers that ended `fenced` on the stopped nodes after `SIGCONT`.
    pub fenced_after_stop: u64,
    /// Self-fences of the stopped nodes.
    pub self_fenced_after_stop: u64,
    /// The database restart.
    pub db_restart: DbRestart,
    /// `ok` runs of one (world, update time) stored more than once.
    pub duplicate_runs: u64,
    /// Runs whose epoch is below the previous run's of the same world.
    pub epoch_regressions: u64,
    /// Missed updates by the phase they were published in: `steady`,
    /// `kill`, `stop`, `db_restart`.
    pub missed: BTreeMap<String, Missed>,
    /// The goals and whether each was met.
    pub goals: Vec<Goal>,
}

/// A goal of the issue and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    /// What.
    pub goal: String,
    /// Met.
    pub met: bool,
}

/// The bench's limit for any one wait.
fn limit(ttl: Duration) -> Duration {
    ttl * 10 + Duration::from_secs(30)
}

/// `worldpool bench --cluster`.
pub async fn run(opts: ClusterOptions) -> anyhow::Result<ExitCode> {
    let quick = opts.quick;
    let n = opts.nodes.unwrap_or(if quick { 2 } else { 3 });
    let w = opts.worlds.unwrap_or(if quick { 4 } else { 12 });
    let rounds = opts.rounds.unwrap_or(if quick { 1 } else { 10 });
    let stop_rounds = opts.stop_rounds.unwrap_or(if quick { 1 } else { 3 });
    let ttl = opts.lease_ttl;
    let update_every = opts.update_every.unwrap_or(ttl * 2);
    let poll = Duration::from_secs(1);
    let intervals = if quick { 4 } else { 15 };
    if n < 2 {
        bail!("--nodes must be at least 2 (a node's worlds need another to move to)");
    }
    if w < n {
        bail!("--worlds must be at least --nodes");
    }
    let exe = std::env::current_exe().context("locating the worldpool binary")?;
    let dir = opts.out.join("cluster");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let started_at = chrono::Utc::now();

    eprintln!("cluster: starting PostgreSQL");
    let pg = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .context("join")?
        .context("starting a PostgreSQL of the bench's own")?;
    let url = pg.url();
    Store::open(&url, 1).await.context("migrating the store")?;

    let site = Arc::new(
        DemoSite::start(DemoSiteOptions {
            sized: Some(Sizing {
                worlds: w,
                guilds_per_world: 1,
                players_per_guild: 5,
            }),
            tick: Some(update_every),
            ..DemoSiteOptions::default()
        })
        .await
        .context("starting the demo site")?,
    );
    let worlds = site.world_names();
    let recorder = Recorder::start(site.clone(), worlds.clone());
    let config = dir.join("cluster.toml");
    let text = set_keys(
        &site.config_toml(&url, Mode::Pool),
        "pool",
        &[
            ("min_uptime", "\"300ms\"".into()),
            ("heartbeat_timeout", "\"5s\"".into()),
            ("start_timeout", "\"10s\"".into()),
        ],
    );
    let text = set_keys(
        &text,
        "site",
        &[
            ("poll_interval", format!("\"{}ms\"", poll.as_millis())),
            ("poll_jitter", "0.0".into()),
        ],
    );
    let text = format!(
        "{text}\n[cluster]\nenabled = true\nlease_ttl = \"{}ms\"\nrenew_every = \"{}ms\"\n",
        ttl.as_millis(),
        opts.renew_every.as_millis()
    );
    std::fs::write(&config, &text).with_context(|| format!("writing {}", config.display()))?;
    crate::config::Config::load(&config)
        .map_err(|e| anyhow::anyhow!("the generated config is invalid:\n{e}"))?;

    let bench = Bench {
        exe,
        config,
        dir: dir.clone(),
        url: url.clone(),
        worlds: worlds.clone(),
        ttl,
        site: site.clone(),
    };
    let mut nodes: Vec<Node> = Vec::new();
    let outcome = bench
        .measure(
            &mut nodes,
            &pg,
            &recorder,
            n,
            rounds,
            stop_rounds,
            poll,
            intervals,
        )
        .await;
    for node in nodes {
        node.stop().await;
    }
    recorder.stop();
    drop(pg);
    let mut results = outcome?;
    results.started_at = started_at;
    results.quick = quick;
    results.update_every_s = update_every.as_secs_f64();
    results.renew_every_s = opts.renew_every.as_secs_f64();

    let path = opts.out.join("cluster.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", table(&results));
    println!("wrote {}", path.display());
    Ok(
        if results.duplicate_runs > 0 || results.epoch_regressions > 0 {
            eprintln!("cluster: duplicate runs or an epoch that went down");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

struct Bench {
    exe: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    url: String,
    worlds: Vec<String>,
    ttl: Duration,
    site: Arc<DemoSite>,
}

/// The phases' time windows, for the missed updates.
struct Phases(Vec<(String, Instant)>);

impl Phases {
    fn begin(&mut self, name: &str) {
        self.0.push((name.to_string(), Instant::now()));
    }

    fn of(&self, at: Instant) -> String {
        self.0
            .iter()
            .rev()
            .find(|(_, start)| *start <= at)
            .map_or_else(|| "steady".to_string(), |(n, _)| n.clone())
    }
}

impl Bench {
    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &self,
        nodes: &mut Vec<Node>,
        pg: &PgCluster,
        recorder: &Recorder,
        n: usize,
        rounds: usize,
        stop_rounds: usize,
        poll: Duration,
        intervals: usize,
    ) -> anyhow::Result<ClusterResults> {
        let ttl = self.ttl;
        let db = Db::new(&self.url);
        let mut phases = Phases(vec![("steady".into(), Instant::now())]);

        // One node: every world, and the status page's requests.
        eprintln!("cluster: 1 node");
        nodes.push(self.node("n0").await?);
        self.wait_split(&db, nodes).await?;
        let one_node = self.status_requests(poll, intervals).await;

        // Every node.
        eprintln!("cluster: {n} nodes");
        let t0 = Instant::now();
        for i in 1..n {
            nodes.push(self.node(&format!("n{i}")).await?);
        }
        self.wait_split(&db, nodes).await?;
        let first_split_s = t0.elapsed().as_secs_f64();
        let writes_before = db.lease_table_writes().await;
        let load_started = Instant::now();
        let sampler = LoadSampler::start(nodes).await;
        let all_nodes = self.status_requests(poll, intervals).await;
        let lease_load = sampler.finish(nodes).await;
        let writes_after = db.lease_table_writes().await;
        let lease_table_writes_per_s = match (writes_before, writes_after) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / load_started.elapsed().as_secs_f64(),
            _ => f64::NAN,
        };
        let status_requests = StatusRequests {
            intervals,
            one_node,
            all_nodes,
            one_node_per_interval: one_node as f64 / intervals as f64,
            all_nodes_per_interval: all_nodes as f64 / intervals as f64,
        };

        // kill -9, `rounds` times.
        phases.begin("kill");
        let (mut kills, mut kill_failed) = (Vec::new(), 0);
        let mut rejoin = Vec::new();
        for r in 0..rounds {
            let i = r % nodes.len();
            let theirs = self.between_updates(&db, &nodes[i]).await;
            let pid = nodes[i].pid;
            let t0 = Instant::now();
            signal(pid as i32, nix::sys::signal::Signal::SIGKILL);
            let took = self.taken_from(&db, &nodes[i].node_id, &theirs, t0).await;
            match took {
                Some(d) => kills.push(d.as_secs_f64()),
                None => kill_failed += 1,
            }
            eprintln!(
                "cluster: kill -9 round {}: {} worlds taken after {took:?}",
                r + 1,
                theirs.len()
            );
            let name = nodes[i].name.clone();
            let dead = std::mem::replace(&mut nodes[i], self.node(&name).await?);
            dead.stop().await;
            let t1 = Instant::now();
            self.wait_split(&db, nodes).await?;
            rejoin.push(t1.elapsed().as_secs_f64());
        }

        // SIGSTOP of a whole node, `stop_rounds` times.
        phases.begin("stop");
        let (mut stops, mut stop_failed) = (Vec::new(), 0);
        let (mut fenced, mut self_fenced) = (0, 0);
        for r in 0..stop_rounds {
            let i = (r + 1) % nodes.len();
            let before = counters(&nodes[i]).await;
            let theirs = self.between_updates(&db, &nodes[i]).await;
            // The whole node, as a paused VM: its process group and each
            // worker's (every worker leads a group of its own).
            let groups = nodes[i].groups();
            let t0 = Instant::now();
            for g in &groups {
                signal(-*g, nix::sys::signal::Signal::SIGSTOP);
            }
            let took = self.taken_from(&db, &nodes[i].node_id, &theirs, t0).await;
            match took {
                Some(d) => stops.push(d.as_secs_f64()),
                None => stop_failed += 1,
            }
            eprintln!(
                "cluster: SIGSTOP round {}: {} worlds taken after {took:?}",
                r + 1,
                theirs.len()
            );
            while t0.elapsed() < ttl * 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for g in &groups {
                signal(-*g, nix::sys::signal::Signal::SIGCONT);
            }
            self.wait_split(&db, nodes).await?;
            let after = counters(&nodes[i]).await;
            fenced += after.0.saturating_sub(before.0);
            self_fenced += after.1.saturating_sub(before.1);
        }

        // The database restarts.
        phases.begin("db_restart");
        eprintln!("cluster: database restart");
        self.up_to_date(&db, &self.worlds).await;
        let before = db.leases().await.unwrap_or_default();
        let down = Instant::now();
        tokio::task::block_in_place(|| pg.stop_server());
        while down.elapsed() < ttl * 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut workers_left = 0;
        for node in nodes.iter() {
            workers_left += running(node).await.len();
        }
        let down_s = down.elapsed().as_secs_f64();
        let t0 = Instant::now();
        tokio::task::block_in_place(|| pg.start_server()).context("restarting PostgreSQL")?;
        let start_s = t0.elapsed().as_secs_f64();
        let owned_again = self.all_owned(&db, t0).await;
        eprintln!("cluster: database back; every world owned after {owned_again:?}");
        let mut nodes_exited = 0;
        for node in nodes.iter_mut() {
            if !matches!(node.child.try_wait(), Ok(None)) {
                nodes_exited += 1;
            }
        }
        self.wait_split(&db, nodes).await?;
        let after = db.leases().await.unwrap_or_default();
        let epochs_grew = self
            .worlds
            .iter()
            .all(|w| match (before.get(w), after.get(w)) {
                (Some(b), Some(a)) => a.epoch > b.epoch,
                _ => false,
            });
        let db_restart = DbRestart {
            down_s,
            start_s,
            owned_again_s: owned_again.map(|d| d.as_secs_f64()),
            workers_left_during_outage: workers_left,
            nodes_exited,
            epochs_grew,
        };

        // Every update published so far stored (or missed), duplicates.
        phases.begin("end");
        eprintln!("cluster: waiting for the last updates");
        let missed = self.missed(&db, recorder, &phases).await;
        let duplicate_runs = db
            .count(
                "SELECT count(*) FROM (SELECT world, update_time FROM runs WHERE status = 'ok' \
                 GROUP BY 1, 2 HAVING count(*) > 1) d",
            )
            .await
            .context("counting duplicate runs")?;
        let epoch_regressions = db
            .count(
                "SELECT count(*) FROM (SELECT epoch, lag(epoch) OVER (PARTITION BY world ORDER BY id) \
                 AS prev FROM runs) r WHERE epoch < prev",
            )
            .await
            .context("counting epoch regressions")?;

        let takeover_kill = Takeovers::of(kills, kill_failed);
        let takeover_stop = Takeovers::of(stops, stop_failed);
        let goal_s = ttl.as_secs_f64() * 1.5;
        let kill_missed = missed.get("kill").map_or(0, |m| m.missed);
        let goals = vec![
            Goal {
                goal: format!("takeover after kill -9, median ≤ 1.5 × lease_ttl = {goal_s:.1} s"),
                met: takeover_kill.failed == 0
                    && takeover_kill.median_s.is_some_and(|m| m <= goal_s),
            },
            Goal {
                goal: format!("takeover after SIGSTOP, median ≤ {goal_s:.1} s"),
                met: takeover_stop.failed == 0
                    && takeover_stop.median_s.is_some_and(|m| m <= goal_s),
            },
            Goal {
                goal: format!("every world owned again ≤ {goal_s:.1} s after the database is back"),
                met: db_restart.owned_again_s.is_some_and(|s| s <= goal_s),
            },
            Goal {
                goal: "0 duplicate runs".into(),
                met: duplicate_runs == 0,
            },
            Goal {
                goal: "0 missed updates when a node dies between updates".into(),
                met: kill_missed == 0,
            },
            Goal {
                goal: "status-page requests with every node = with one node (±1 over the window)"
                    .into(),
                met: status_requests.all_nodes.abs_diff(status_requests.one_node) <= 1,
            },
        ];
        Ok(ClusterResults {
            started_at: chrono::Utc::now(),
            quick: false,
            nodes: n,
            worlds: self.worlds.len(),
            lease_ttl_s: ttl.as_secs_f64(),
            renew_every_s: 0.0,
            poll_interval_s: poll.as_secs_f64(),
            update_every_s: 0.0,
            first_split_s,
            status_requests,
            lease_load,
            lease_table_writes_per_s,
            takeover_kill,
            rebalance_after_rejoin: Takeovers::of(rejoin, 0),
            takeover_stop,
            fenced_after_stop: fenced,
            self_fenced_after_stop: self_fenced,
            db_restart,
            duplicate_runs,
            epoch_regressions,
            missed,
            goals,
        })
    }

    async fn node(&self, name: &str) -> anyhow::Result<Node> {
        Node::start(&self.exe, &self.config, &self.dir, name, self.ttl).await
    }

    /// `/status` requests while the site is watched `intervals` poll
    /// intervals.
    async fn status_requests(&self, poll: Duration, intervals: usize) -> u64 {
        self.site.reset_counters();
        tokio::time::sleep(poll * intervals as u32).await;
        self.site
            .requests_by_path()
            .get("/status")
            .copied()
            .unwrap_or(0)
    }

    /// Until the live nodes split the worlds evenly (each holds ⌊W/N⌋ or
    /// ⌈W/N⌉, every world owned) and each node runs exactly the worlds it
    /// holds.
    async fn wait_split(&self, db: &Db, nodes: &[Node]) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let (w, n) = (self.worlds.len(), nodes.len());
        let (lo, hi) = (w / n, w.div_ceil(n));
        loop {
            let why = match self.split_now(db, nodes, lo, hi).await {
                Ok(()) => return Ok(t0.elapsed()),
                Err(why) => why,
            };
            if t0.elapsed() > limit(self.ttl) {
                bail!(
                    "the worlds did not split {lo}..{hi} per node within {:?}: {why}; see the logs in {}",
                    limit(self.ttl),
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn split_now(&self, db: &Db, nodes: &[Node], lo: usize, hi: usize) -> Result<(), String> {
        let leases = db.leases().await.ok_or("database not answering")?;
        let mut counts: BTreeMap<&str, usize> =
            nodes.iter().map(|n| (n.node_id.as_str(), 0)).collect();
        for world in &self.worlds {
            let l = leases.get(world).ok_or(format!("{world}: no lease row"))?;
            let owner = l
                .owner
                .as_deref()
                .filter(|_| l.live)
                .ok_or(format!("{world}: no owner"))?;
            *counts
                .get_mut(owner)
                .ok_or(format!("{world}: owned by {owner}, not a running node"))? += 1;
        }
        if let Some((id, c)) = counts.iter().find(|(_, c)| **c < lo || **c > hi) {
            return Err(format!("{id} holds {c}"));
        }
        for node in nodes {
            let held: BTreeSet<String> = leases
                .iter()
                .filter(|(w, l)| {
                    *w != WATCHER_NAME && l.live && l.owner.as_deref() == Some(&node.node_id)
                })
                .map(|(w, _)| w.clone())
                .collect();
            let runs: BTreeSet<String> = running(node)
                .await
                .into_iter()
                .filter(|w| w != WATCHER_NAME)
                .collect();
            if held != runs {
                return Err(format!("{} holds {held:?} but runs {runs:?}", node.name));
            }
        }
        Ok(())
    }

    /// Until every world of `worlds` stored the site's latest update
    /// (bounded: a kill may then not fall between updates, which the
    /// missed updates show).
    async fn up_to_date(&self, db: &Db, worlds: &[String]) {
        let t0 = Instant::now();
        while t0.elapsed() < limit(self.ttl) {
            if let Some(stored) = db.ok_runs().await
                && worlds.iter().all(|w| {
                    self.site
                        .update_time(w)
                        .is_some_and(|t| stored.contains(&(w.clone(), t.timestamp())))
                })
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("cluster: the worlds did not catch up with the site within the limit");
    }

    /// The worlds `node` holds, once each stored the site's latest update.
    async fn between_updates(&self, db: &Db, node: &Node) -> Vec<String> {
        let held = |leases: &BTreeMap<String, Lease>| -> Vec<String> {
            self.worlds
                .iter()
                .filter(|w| {
                    leases
                        .get(*w)
                        .is_some_and(|l| l.live && l.owner.as_deref() == Some(&node.node_id))
                })
                .cloned()
                .collect()
        };
        let theirs = held(&db.leases().await.unwrap_or_default());
        self.up_to_date(db, &theirs).await;
        held(&db.leases().await.unwrap_or_default())
    }

    /// From `t0` until every world of `theirs` has a live lease of another
    /// node than `victim`, polled every 50 ms.
    async fn taken_from(
        &self,
        db: &Db,
        victim: &str,
        theirs: &[String],
        t0: Instant,
    ) -> Option<Duration> {
        while t0.elapsed() < limit(self.ttl) {
            if let Some(leases) = db.leases().await
                && theirs.iter().all(|w| {
                    leases
                        .get(w)
                        .is_some_and(|l| l.live && l.owner.as_deref().is_some_and(|o| o != victim))
                })
            {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// From `t0` until every world has a live lease of a live node.
    async fn all_owned(&self, db: &Db, t0: Instant) -> Option<Duration> {
        while t0.elapsed() < limit(self.ttl) {
            if let Some(leases) = db.leases().await
                && let Some(live) = db.live_nodes().await
                && self.worlds.iter().all(|w| {
                    leases.get(w).is_some_and(|l| {
                        l.live && l.owner.as_ref().is_some_and(|o| live.contains(o))
                    })
                })
            {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Wait (bounded) until every update published before now has an `ok`
    /// run; the ones that never got one, by phase.
    async fn missed(
        &self,
        db: &Db,
        recorder: &Recorder,
        phases: &Phases,
    ) -> BTreeMap<String, Missed> {
        let cutoff = Instant::now();
        let published: Vec<Published> = recorder
            .published()
            .into_iter()
            .filter(|p| p.at < cutoff)
            .collect();
        let t0 = Instant::now();
        let mut stored = BTreeSet::new();
        while t0.elapsed() < limit(self.ttl) {
            stored = db.ok_runs().await.unwrap_or_default();
            // Only the latest of each world can still come.
            if self.worlds.iter().all(|w| {
                published
                    .iter()
                    .filter(|p| &p.world == w)
                    .map(|p| p.update_time)
                    .max()
                    .is_none_or(|t| stored.contains(&(w.clone(), t)))
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut out: BTreeMap<String, Missed> = ["steady", "kill", "stop", "db_restart"]
            .iter()
            .map(|p| (p.to_string(), Missed::default()))
            .collect();
        for p in &published {
            let phase = out.entry(phases.of(p.at)).or_default();
            phase.published += 1;
            if !stored.contains(&(p.world.clone(), p.update_time)) {
                phase.missed += 1;
                let at = chrono::DateTime::from_timestamp(p.update_time, 0)
                    .map_or_else(|| p.update_time.to_string(), |t| t.to_rfc3339());
                phase.which.push(format!("{}@{at}", p.world));
            }
        }
        out
    }
}

/// A lease as the bench reads it.
#[derive(Debug, Clone)]
struct Lease {
    owner: Option<String>,
    epoch: i64,
    live: bool,
}

/// The bench's own connection to the database, re-made when it breaks.
struct Db {
    url: String,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl Db {
    fn new(url: &str) -> Db {
        Db {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(None),
        }
    }

    async fn query(&self, sql: &str) -> Option<Vec<tokio_postgres::Row>> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = tokio::time::timeout(
                Duration::from_secs(1),
                tokio_postgres::connect(&self.url, tokio_postgres::NoTls),
            )
            .await
            .ok()?
            .ok()?;
            tokio::spawn(conn);
            *guard = Some(client);
        }
        let client = guard.as_ref()?;
        match tokio::time::timeout(Duration::from_secs(2), client.query(sql, &[])).await {
            Ok(Ok(rows)) => Some(rows),
            _ => {
                *guard = None;
                None
            }
        }
    }

    async fn leases(&self) -> Option<BTreeMap<String, Lease>> {
        let rows = self
            .query("SELECT world, owner, epoch, (owner IS NOT NULL AND expires_at > now()) FROM world_leases")
            .await?;
        Some(
            rows.iter()
                .map(|r| {
                    (
                        r.get(0),
                        Lease {
                            owner: r.get(1),
                            epoch: r.get(2),
                            live: r.get(3),
                        },
                    )
                })
                .collect(),
        )
    }

    async fn live_nodes(&self) -> Option<BTreeSet<String>> {
        let rows = self
            .query("SELECT node_id FROM nodes WHERE expires_at > now()")
            .await?;
        Some(rows.iter().map(|r| r.get(0)).collect())
    }

    /// (world, update time in Unix seconds) of every `ok` run.
    async fn ok_runs(&self) -> Option<BTreeSet<(String, i64)>> {
        let rows = self
            .query("SELECT DISTINCT world, extract(epoch FROM update_time)::BIGINT FROM runs WHERE status = 'ok'")
            .await?;
        Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let rows = self
            .query(sql)
            .await
            .context("the database did not answer")?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Rows inserted and updated so far in `world_leases` and `nodes`.
    async fn lease_table_writes(&self) -> Option<u64> {
        let rows = self
            .query(
                "SELECT (coalesce(sum(n_tup_ins + n_tup_upd), 0))::BIGINT FROM pg_stat_user_tables \
                 WHERE relname IN ('world_leases', 'nodes')",
            )
            .await?;
        rows.first()
            .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
    }
}

/// One site update of one world, as seen by the recorder.
#[derive(Debug, Clone)]
struct Published {
    world: String,
    update_time: i64,
    at: Instant,
}

/// Reads every world's update time every 50 ms and keeps each new one.
struct Recorder {
    seen: Arc<Mutex<Vec<Published>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    fn start(site: Arc<DemoSite>, worlds: Vec<String>) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            let mut last: BTreeMap<String, i64> = BTreeMap::new();
            loop {
                for w in &worlds {
                    if let Some(t) = site.update_time(w).map(|t| t.timestamp())
                        && last.get(w) != Some(&t)
                    {
                        last.insert(w.clone(), t);
                        out.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Published {
                                world: w.clone(),
                                update_time: t,
                                at: Instant::now(),
                            });
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Recorder { seen, task }
    }

    fn published(&self) -> Vec<Published> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stop(&self) {
        self.task.abort();
    }
}

/// A `worldpool run` node in a process group of its own.
struct Node {
    name: String,
    child: tokio::process::Child,
    pid: u32,
    base: String,
    node_id: String,
}

impl Node {
    async fn start(
        exe: &Path,
        config: &Path,
        dir: &Path,
        name: &str,
        ttl: Duration,
    ) -> anyhow::Result<Node> {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        let addr = probe.local_addr().context("finding a free port")?;
        drop(probe);
        // Each start of a slot appends to its log.
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = tokio::process::Command::new(exe)
            .args(["run", "--api-bind", &addr.to_string(), "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,worldpool::cluster=info")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting a node")?;
        let pid = child.id().context("node pid")?;
        let base = format!("http://{addr}");
        let t0 = Instant::now();
        loop {
            if let Some(v) = get_json(&base, "/api/cluster").await
                && let Some(id) = v["this_node"]["node_id"].as_str()
            {
                return Ok(Node {
                    name: name.to_string(),
                    child,
                    pid,
                    base,
                    node_id: id.to_string(),
                });
            }
            if !matches!(child.try_wait(), Ok(None)) {
                bail!("node {name} exited during start-up; see {}", log.display());
            }
            if t0.elapsed() > limit(ttl) {
                signal(-(pid as i32), nix::sys::signal::Signal::SIGKILL);
                bail!("node {name}'s API did not answer; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process groups of the node: its own and its workers'.
    fn groups(&self) -> Vec<i32> {
        let mut out = vec![self.pid as i32];
        out.extend(
            pool::procfs::children(self.pid)
                .into_iter()
                .map(|(pid, _)| pid as i32),
        );
        out
    }

    /// SIGTERM (and SIGCONT, in case it is stopped), up to 15 s, then
    /// SIGKILL; the process group last, so that no worker outlives it.
    async fn stop(mut self) {
        signal(self.pid as i32, nix::sys::signal::Signal::SIGTERM);
        signal(-(self.pid as i32), nix::sys::signal::Signal::SIGCONT);
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        signal(-(self.pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

async fn get_json(base: &str, path: &str) -> Option<Value> {
    let mut client = HttpClient::new(base).ok()?;
    match client.get_within(path, Duration::from_secs(2)).await {
        Ok((status, body)) if status.is_success() => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// The worlds a node runs a worker of (state `running`).
async fn running(node: &Node) -> BTreeSet<String> {
    let Some(v) = get_json(&node.base, "/api/workers").await else {
        return BTreeSet::new();
    };
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["workers"].as_array().cloned())
        .unwrap_or_default();
    list.iter()
        .filter(|w| w["state"] == "running")
        .filter_map(|w| w["world"].as_str().or(w["name"].as_str()).map(String::from))
        .collect()
}

/// A node's (fenced, self_fenced) counters.
async fn counters(node: &Node) -> (u64, u64) {
    let v = get_json(&node.base, "/api/cluster")
        .await
        .unwrap_or_default();
    (
        v["counters"]["fenced"].as_u64().unwrap_or(0),
        v["counters"]["self_fenced"].as_u64().unwrap_or(0),
    )
}

/// Samples every node's `/api/cluster` every 100 ms: each new committed
/// tick's duration, and the tick counts at the start and the end.
struct LoadSampler {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Vec<Vec<f64>>>,
    started: Instant,
    first: Vec<(u64, u64)>,
}

/// A node's (ticks_ok, ticks_failed).
async fn ticks(node: &Node) -> (u64, u64) {
    let v = get_json(&node.base, "/api/cluster")
        .await
        .unwrap_or_default();
    (
        v["counters"]["ticks_ok"].as_u64().unwrap_or(0),
        v["counters"]["ticks_failed"].as_u64().unwrap_or(0),
    )
}

impl LoadSampler {
    async fn start(nodes: &[Node]) -> LoadSampler {
        let mut first = Vec::new();
        for node in nodes {
            first.push(ticks(node).await);
        }
        let started = Instant::now();
        let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = vec![Vec::new(); bases.len()];
            let mut last = vec![None; bases.len()];
            while !token.is_cancelled() {
                for (i, base) in bases.iter().enumerate() {
                    if let Some(v) = get_json(base, "/api/cluster").await {
                        let ticks = v["counters"]["ticks_ok"].as_u64();
                        if ticks.is_some()
                            && last[i].is_some()
                            && ticks != last[i]
                            && let Some(ms) = v["counters"]["renew_ms_last"].as_f64()
                        {
                            samples[i].push(ms);
                        }
                        last[i] = ticks;
                    }
                }
                tokio::select! {
                    () = token.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            samples
        });
        LoadSampler {
            stop,
            task,
            started,
            first,
        }
    }

    async fn finish(self, nodes: &[Node]) -> Vec<NodeLoad> {
        self.stop.cancel();
        let samples = self.task.await.unwrap_or_default();
        let mut out = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let (ok, failed) = ticks(node).await;
            let elapsed = self.started.elapsed().as_secs_f64();
            let (ok0, failed0) = self.first.get(i).copied().unwrap_or((0, 0));
            let s = samples.get(i).cloned().unwrap_or_default();
            out.push(NodeLoad {
                node: node.name.clone(),
                ticks_per_s: ok.saturating_sub(ok0) as f64 / elapsed,
                ticks_failed: failed.saturating_sub(failed0),
                renew_ms_p50: stats::percentile(&s, 0.5),
                renew_ms_p99: stats::percentile(&s, 0.99),
                renew_ms_max: stats::percentile(&s, 1.0),
                renew_samples: s.len(),
            });
        }
        out
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"))
}

/// The results as a Markdown table with the goals.
pub fn table(r: &ClusterResults) -> String {
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    let goal = |i: usize| r.goals.get(i).is_some_and(|g| g.met);
    let goal_s = r.lease_ttl_s * 1.5;
    let mut out = format!(
        "{} nodes, {} worlds, lease_ttl {:.0} s, renew_every {:.0} s, the site updates every {:.0} s, status polled every {:.0} s\n\n",
        r.nodes, r.worlds, r.lease_ttl_s, r.renew_every_s, r.update_every_s, r.poll_interval_s
    );
    out.push_str("| measure | result | goal | |\n|---|---|---|---|\n");
    out.push_str(&format!(
        "| takeover after `kill -9` of a node's supervisor | {} | median ≤ 1.5 × lease_ttl = {goal_s:.1} s | {} |\n",
        r.takeover_kill.cell(),
        verdict(goal(0))
    ));
    out.push_str(&format!(
        "| takeover after `SIGSTOP` of a node (stopped {:.0} s) | {} | median ≤ {goal_s:.1} s | {} |\n",
        r.lease_ttl_s * 2.0,
        r.takeover_stop.cell(),
        verdict(goal(1))
    ));
    let d = &r.db_restart;
    out.push_str(&format!(
        "| PostgreSQL down {:.1} s (`-m immediate`), then started ({:.2} s): every world owned again after | {} | ≤ {goal_s:.1} s | {} |\n",
        d.down_s,
        d.start_s,
        d.owned_again_s.map_or_else(|| "not within the limit".to_string(), |s| format!("{s:.2} s")),
        verdict(goal(2))
    ));
    out.push_str(&format!(
        "| duplicate `ok` runs of one update | {} | 0 | {} |\n",
        r.duplicate_runs,
        verdict(goal(3))
    ));
    let m = |p: &str| r.missed.get(p).cloned().unwrap_or_default();
    let kill = m("kill");
    out.push_str(&format!(
        "| missed updates, nodes killed between updates | {} of {} | 0 | {} |\n",
        kill.missed,
        kill.published,
        verdict(goal(4))
    ));
    for (phase, what) in [
        ("stop", "nodes stopped between updates"),
        ("db_restart", "the database restart"),
        ("steady", "no fault (start, steady state)"),
    ] {
        let p = m(phase);
        out.push_str(&format!(
            "| missed updates, {what} | {} of {} | | |\n",
            p.missed, p.published
        ));
    }
    let s = &r.status_requests;
    out.push_str(&format!(
        "| site status-page requests per poll interval ({} intervals) | 1 node {:.2}, {} nodes {:.2} | equal | {} |\n",
        s.intervals,
        s.one_node_per_interval,
        r.nodes,
        s.all_nodes_per_interval,
        verdict(goal(5))
    ));
    let ticks: Vec<String> = r
        .lease_load
        .iter()
        .map(|l| format!("{:.2}", l.ticks_per_s))
        .collect();
    out.push_str(&format!(
        "| lease ticks (one transaction each) per second per node | {} | 1 / renew_every | |\n",
        ticks.join(" / ")
    ));
    let renew: Vec<String> = r
        .lease_load
        .iter()
        .map(|l| {
            format!(
                "{} / {} / {}",
                opt_ms(l.renew_ms_p50),
                opt_ms(l.renew_ms_p99),
                opt_ms(l.renew_ms_max)
            )
        })
        .collect();
    out.push_str(&format!(
        "| renew latency (a tick's transaction), median / p99 / max ms per node | {} | < renew timeout | |\n",
        renew.join("; ")
    ));
    out.push_str(&format!(
        "| lease-table row writes per second, all nodes | {:.1} | | |\n",
        r.lease_table_writes_per_s
    ));
    out.push_str(&format!(
        "| a new node in a dead one's place → balanced split | {} | | |\n",
        r.rebalance_after_rejoin.cell()
    ));
    out.push_str(&format!(
        "\nstopped nodes after `SIGCONT`: {} workers ended `fenced`, {} self-fences; during the database outage {} leased workers still ran, {} nodes exited; epochs grew across the restart: {}\n",
        r.fenced_after_stop,
        r.self_fenced_after_stop,
        d.workers_left_during_outage,
        d.nodes_exited,
        d.epochs_grew
    ));
    out
}
