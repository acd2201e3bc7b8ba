//! `worldpool bench`: pool against single mode end to end, under chaos.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::bench::BenchOptions;
use crate::config::Mode;

/// `worldpool bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Worlds on the demo site.
    #[arg(long)]
    pub worlds: Option<usize>,
    /// Guilds per world.
    #[arg(long)]
    pub guilds: Option<usize>,
    /// Players per guild.
    #[arg(long)]
    pub players: Option<usize>,
    /// Site latency per request, in milliseconds.
    #[arg(long)]
    pub latency: Option<u64>,
    /// Site updates to measure per mode.
    #[arg(long)]
    pub updates: Option<usize>,
    /// Modes to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "single,pool")]
    pub modes: Vec<Mode>,
    /// `sqlite` (a fresh file per mode) or a `postgres://…` URL (a fresh
    /// database per mode is created on that server).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Kill a random worker with SIGKILL at this interval (e.g. `500ms`).
    #[arg(long, value_parser = parse_duration_arg)]
    pub chaos_kill_every: Option<Duration>,
    /// Output folder for results.json, results.csv and latency.svg.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Small sizes that finish in well under a minute (CI smoke run).
    #[arg(long)]
    pub quick: bool,
    /// An earlier results.json: flag regressions over 10 %.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Advance the site at this cadence (e.g. `3s`) instead of right after
    /// the previous update was stored; `--updates` × this is the run time.
    #[arg(long, value_parser = parse_duration_arg)]
    pub update_every: Option<Duration>,
    /// Longest wait for one update to be stored before it counts as lost.
    #[arg(long, value_parser = parse_duration_arg, default_value = "60s")]
    pub update_timeout: Duration,
    /// Measure politeness instead (before/now side by side): status
    /// requests when idle, peaks when every world updates, update latency,
    /// a 429 with Retry-After. Writes polite.json into --out.
    #[arg(long)]
    pub polite: bool,
    /// `--polite`: the idle case's poll interval (default 60s, the
    /// config's default; 1s with --quick).
    #[arg(long, value_parser = parse_duration_arg)]
    pub idle_interval: Option<Duration>,
    /// `--polite`: how long the idle case watches (default 5m; 5s with
    /// --quick).
    #[arg(long, value_parser = parse_duration_arg)]
    pub idle_for: Option<Duration>,
    /// Measure the pool idle and under attack instead, side by side: a
    /// `worldpool run` of `--worlds` workers (default 100) with its API on
    /// 127.0.0.1 and a store of `--deltas` deltas; restart latency, API
    /// latency, scraper-status throughput (wrk when installed), descriptors
    /// and SIGTERM → exit, before and during 500 idle sockets, 50 half-sent
    /// heads, 20 stalled downloads and 40 abandoned heavy queries. Writes
    /// hostile.json into --out.
    #[arg(long)]
    pub hostile: bool,
    /// `--hostile`: deltas seeded into the store (default 400000; 20000
    /// with --quick).
    #[arg(long)]
    pub deltas: Option<usize>,
    /// (internal) `--hostile`'s attacker process: attack this address.
    #[arg(long, hide = true)]
    pub hostile_attack: Option<std::net::SocketAddr>,
    /// (internal) with `--hostile-attack`: idle,half-heads,downloads,queries.
    #[arg(long, hide = true, value_parser = crate::bench::attack::parse_sizes)]
    pub attack_sizes: Option<crate::bench::hostile::Attack>,
    /// The supervisor serves the API on 127.0.0.1, kept busy with
    /// `--api-rate` requests per second and an event-stream client.
    #[arg(long)]
    pub api: bool,
    /// API requests per second with `--api`.
    #[arg(long, default_value_t = 20.0)]
    pub api_rate: f64,
    /// Soak test (e.g. `30m`): pool mode for this long, a SIGKILL every 2 s,
    /// the API under load, an update every 3 s (flags given win); fails when
    /// the supervisor's RSS or open descriptors at the end are over 5 % off
    /// those after the first minute. Writes soak.svg.
    #[arg(long, value_parser = parse_duration_arg)]
    pub soak: Option<Duration>,
    /// Measure scale-out instead: a PostgreSQL of the bench's own, the
    /// demo site and `--nodes` `worldpool run` nodes with `[cluster]` on;
    /// takeover after `kill -9` (`--rounds`), `SIGSTOP` (`--stop-rounds`)
    /// and a database restart, duplicate runs, missed updates, the site's
    /// status requests with one node and every node, the lease load.
    /// Writes cluster.json into --out.
    #[arg(long)]
    pub cluster: bool,
    /// `--cluster`: nodes (default 3; 2 with --quick).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// `--cluster`: `kill -9` rounds (default 10; 1 with --quick).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// `--cluster`: `SIGSTOP` rounds (default 3; 1 with --quick).
    #[arg(long)]
    pub stop_rounds: Option<usize>,
    /// `--cluster`: the nodes' `[cluster] lease_ttl`.
    #[arg(long, value_parser = parse_duration_arg, default_value = "3s")]
    pub lease_ttl: Duration,
    /// `--cluster`: the nodes' `[cluster] renew_every`.
    #[arg(long, value_parser = parse_duration_arg, default_value = "1s")]
    pub renew_every: Duration,
    /// Another `worldpool` binary to run as the supervisor (compare builds
    /// side by side: each mode starts that binary's `run`).
    #[arg(long, hide = true)]
    pub supervisor: Option<PathBuf>,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    pool::units::parse_duration(text)
}

impl From<BenchArgs> for BenchOptions {
    fn from(a: BenchArgs) -> Self {
        BenchOptions {
            worlds: a.worlds,
            guilds: a.guilds,
            players: a.players,
            latency: a.latency,
            updates: a.updates,
            modes: a.modes,
            store: a.store,
            chaos_kill_every: a.chaos_kill_every,
            out: a.out,
            quick: a.quick,
            baseline: a.baseline,
            update_every: a.update_every,
            update_timeout: a.update_timeout,
            api: a.api,
            api_rate: a.api_rate,
            soak: a.soak,
            supervisor_exe: a.supervisor,
        }
    }
}

/// Run the benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.cluster {
        return crate::bench::cluster::run(crate::bench::cluster::ClusterOptions {
            out: args.out,
            nodes: args.nodes,
            worlds: args.worlds,
            rounds: args.rounds,
            stop_rounds: args.stop_rounds,
            lease_ttl: args.lease_ttl,
            renew_every: args.renew_every,
            update_every: args.update_every,
            quick: args.quick,
        })
        .await;
    }
    if let Some(addr) = args.hostile_attack {
        let sizes = args
            .attack_sizes
            .unwrap_or(crate::bench::hostile::Attack::QUICK);
        return crate::bench::attack::run(addr, sizes).await;
    }
    if args.hostile {
        return crate::bench::hostile::run(crate::bench::hostile::HostileOptions {
            out: args.out,
            quick: args.quick,
            workers: args.worlds,
            deltas: args.deltas,
        })
        .await;
    }
    if args.polite {
        let quick = args.quick;
        return crate::bench::polite::run(crate::bench::polite::PoliteOptions {
            out: args.out,
            quick,
            idle_interval: args.idle_interval.unwrap_or(if quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(60)
            }),
            idle_for: args.idle_for.unwrap_or(if quick {
                Duration::from_secs(5)
            } else {
                Duration::from_secs(300)
            }),
            updates: args.updates.unwrap_or(if quick { 3 } else { 10 }),
        })
        .await;
    }
    crate::bench::run(args.into()).await
}
