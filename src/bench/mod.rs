//! `worldpool bench`: pool against single mode end to end, with chaos.
//!
//! For each mode the benchmark starts the demo site in-process (sized by the
//! flags, with a per-request latency), writes a config pointing at it with a
//! fresh store, and starts a real supervisor as a child process —
//! `worldpool run`, the production code path — so that the supervisor's CPU
//! and memory are its own. It then advances the site `--updates` times and
//! measures, for every update, the time until every world's run is stored.
//! Chaos kills a random worker with SIGKILL at an interval. At the end the
//! store is checked: every site update stored exactly once, whole.
//!
//! Memory: the supervisor's and every worker's RSS and PSS are sampled
//! about once a second ([`memory`]); with `--api` the supervisor serves the
//! API and [`load`] keeps it busy. `--soak 30m` runs pool mode that long
//! with a kill every 2 s and the API under load, and checks that the
//! supervisor's RSS and open descriptors at the end are within 5 % of
//! those after the first minute (soak.json, soak.svg).

pub mod attack;
pub mod cluster;
pub mod cnproc;
pub mod history;
pub mod hostile;
pub mod load;
pub mod memory;
pub mod pg;
pub mod polite;
pub mod report;
pub mod stats;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;

use crate::config::Mode;
use crate::demo_site::{DemoSite, DemoSiteOptions, Sizing};
use crate::store::Store;
use report::{Integrity, ModeResult, Params, Results};

/// What to measure (the `worldpool bench` flags, parsed).
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Worlds on the demo site.
    pub worlds: Option<usize>,
    /// Guilds per world.
    pub guilds: Option<usize>,
    /// Players per guild.
    pub players: Option<usize>,
    /// Site latency per request, in milliseconds.
    pub latency: Option<u64>,
    /// Site updates to measure per mode.
    pub updates: Option<usize>,
    /// Modes to run, in order.
    pub modes: Vec<Mode>,
    /// `sqlite` or a `postgres://…` URL.
    pub store: String,
    /// Kill a random worker with SIGKILL at this interval.
    pub chaos_kill_every: Option<Duration>,
    /// Output folder for results.json, results.csv and latency.svg.
    pub out: PathBuf,
    /// Small sizes that finish in well under a minute.
    pub quick: bool,
    /// An earlier results.json: flag regressions over 10 %.
    pub baseline: Option<PathBuf>,
    /// Advance the site at this cadence instead of right after the
    /// previous update was stored.
    pub update_every: Option<Duration>,
    /// Longest wait for one update to be stored before it counts as lost.
    pub update_timeout: Duration,
    /// The supervisor serves the API (on 127.0.0.1) and gets requests.
    pub api: bool,
    /// API requests per second with `api`.
    pub api_rate: f64,
    /// Run pool mode this long (kill every 2 s, API under load, updates
    /// every 3 s unless given) and check the supervisor does not grow.
    pub soak: Option<Duration>,
    /// The `worldpool` binary to run as the supervisor (default: this one).
    pub supervisor_exe: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            worlds: None,
            guilds: None,
            players: None,
            latency: None,
            updates: None,
            modes: vec![Mode::Single, Mode::Pool],
            store: "sqlite".into(),
            chaos_kill_every: None,
            out: PathBuf::from("bench-out"),
            quick: false,
            baseline: None,
            update_every: None,
            update_timeout: Duration::from_secs(60),
            api: false,
            api_rate: 20.0,
            soak: None,
            supervisor_exe: None,
        }
    }
}

/// Allowed growth of the supervisor over a soak (RSS and descriptors).
pub const SOAK_TOLERANCE: f64 = 0.05;

struct Plan {
    params: Params,
    worlds: usize,
    guilds: usize,
    players: usize,
    latency: Duration,
    updates: usize,
}

impl BenchOptions {
    /// `--soak`: pool mode only, a kill every 2 s, the API under load, a
    /// site update every 3 s, for the whole duration (flags given win).
    fn soak_defaults(mut self) -> BenchOptions {
        if let Some(soak) = self.soak {
            let every = *self.update_every.get_or_insert(Duration::from_secs(3));
            self.modes = vec![Mode::Pool];
            self.chaos_kill_every.get_or_insert(Duration::from_secs(2));
            self.api = true;
            self.updates = Some(
                (soak.as_secs_f64() / every.as_secs_f64().max(1e-3))
                    .ceil()
                    .max(1.0) as usize,
            );
        }
        self
    }

    fn plan(&self) -> anyhow::Result<Plan> {
        let (w, g, p, l, u) = if self.quick {
            (6, 2, 10, 20, 4)
        } else {
            (20, 3, 20, 50, 10)
        };
        let plan = Plan {
            worlds: self.worlds.unwrap_or(w),
            guilds: self.guilds.unwrap_or(g),
            players: self.players.unwrap_or(p),
            latency: Duration::from_millis(self.latency.unwrap_or(l)),
            updates: self.updates.unwrap_or(u),
            params: Params {
                worlds: 0,
                guilds: 0,
                players: 0,
                latency_ms: 0,
                updates: 0,
                store: if self.store.starts_with("postgres") {
                    "postgres".into()
                } else {
                    "sqlite".into()
                },
                chaos_kill_every_ms: self.chaos_kill_every.map(|d| d.as_millis() as u64),
                quick: self.quick,
            },
        };
        if plan.worlds == 0 || plan.guilds == 0 || plan.players == 0 || plan.updates == 0 {
            bail!("--worlds, --guilds, --players and --updates must be at least 1");
        }
        if self.modes.is_empty() {
            bail!("--modes needs at least one of single,pool");
        }
        if !(self.store == "sqlite"
            || self.store.starts_with("postgres://")
            || self.store.starts_with("postgresql://"))
        {
            bail!(
                "--store must be `sqlite` or a postgres:// URL, not `{}`",
                self.store
            );
        }
        let mut plan = plan;
        plan.params.worlds = plan.worlds;
        plan.params.guilds = plan.guilds;
        plan.params.players = plan.players;
        plan.params.latency_ms = plan.latency.as_millis() as u64;
        plan.params.updates = plan.updates;
        Ok(plan)
    }
}

/// `worldpool bench`.
pub async fn run(args: BenchOptions) -> anyhow::Result<ExitCode> {
    let args = args.soak_defaults();
    let plan = args.plan()?;
    let exe = match &args.supervisor_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("locating the worldpool binary")?,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let progress = Progress::new();
    progress.line(&format!(
        "bench: {} worlds x {} guilds x {} players, {} ms latency, {} updates, modes {:?}{}",
        plan.worlds,
        plan.guilds,
        plan.players,
        plan.latency.as_millis(),
        plan.updates,
        args.modes,
        args.chaos_kill_every
            .map(|d| format!(", chaos kill every {d:?}"))
            .unwrap_or_default()
    ));
    let mut results = Results {
        started_at: chrono::Utc::now(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        params: plan.params.clone(),
        modes: Vec::new(),
        ratios: None,
        lost_data: false,
        soak: None,
    };
    for mode in &args.modes {
        let (r, series) = run_mode(&args, &plan, *mode, &exe, &progress).await?;
        let csv = args.out.join(format!("memory-{}.csv", r.mode));
        std::fs::write(&csv, series.csv()).with_context(|| format!("writing {}", csv.display()))?;
        if let Some(soak) = args.soak {
            results.soak = series.soak(SOAK_TOLERANCE);
            let svg = args.out.join("soak.svg");
            let title = format!(
                "worldpool run, {} workers, a SIGKILL every {:?}, API at {} req/s: {} min",
                r.workers,
                args.chaos_kill_every.unwrap_or_default(),
                args.api_rate,
                (soak.as_secs_f64() / 60.0).round()
            );
            std::fs::write(&svg, series.soak_svg(&title))
                .with_context(|| format!("writing {}", svg.display()))?;
        }
        results.modes.push(r);
    }
    results.finish();
    results.write(&args.out)?;
    println!("{}", results.table());
    println!(
        "wrote {}/results.json, results.csv, latency.svg, memory-MODE.csv{}",
        args.out.display(),
        if args.soak.is_some() {
            ", soak.svg"
        } else {
            ""
        }
    );

    let mut code = ExitCode::SUCCESS;
    if let Some(soak) = &results.soak {
        let line = format!(
            "soak: supervisor RSS {} -> {} ({:+.1} %), PSS {} -> {} ({:+.1} %), open descriptors {} -> {} ({:+.1} %), from {:.0} s to the end ({:.0} s)",
            report::mib(soak.supervisor_rss.start),
            report::mib(soak.supervisor_rss.end),
            soak.supervisor_rss.change * 100.0,
            report::mib(soak.supervisor_pss.start),
            report::mib(soak.supervisor_pss.end),
            soak.supervisor_pss.change * 100.0,
            soak.supervisor_fds.start,
            soak.supervisor_fds.end,
            soak.supervisor_fds.change * 100.0,
            soak.baseline_at_s,
            soak.duration_s
        );
        if soak.ok {
            println!("{line}: within {:.0} %", soak.tolerance * 100.0);
        } else {
            eprintln!("{}", red(&format!("GROWTH {line}")));
            code = ExitCode::FAILURE;
        }
    } else if args.soak.is_some() {
        eprintln!("{}", red("soak: too few samples for a verdict"));
        code = ExitCode::FAILURE;
    }
    if results.lost_data {
        for m in &results.modes {
            let i = &m.integrity;
            if !i.ok() {
                eprintln!(
                    "{}",
                    red(&format!(
                        "DATA LOST in {} mode: {} missing, {} duplicated, {} partial runs (e.g. {:?})",
                        m.mode,
                        i.missing.len(),
                        i.duplicates.len(),
                        i.partial.len(),
                        i.missing
                            .iter()
                            .chain(&i.duplicates)
                            .chain(&i.partial)
                            .take(5)
                            .collect::<Vec<_>>()
                    ))
                );
            }
        }
        code = ExitCode::FAILURE;
    }
    if let Some(path) = &args.baseline {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading baseline {}", path.display()))?;
        let baseline: Results = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a results.json", path.display()))?;
        let regressions = report::compare(&baseline, &results, 0.10);
        if regressions.is_empty() {
            println!("no regression over 10 % against {}", path.display());
        } else {
            for r in &regressions {
                eprintln!(
                    "{}",
                    red(&format!(
                        "REGRESSION {} {}: {:.1} -> {:.1} ({:+.0} %)",
                        r.mode,
                        r.metric,
                        r.baseline,
                        r.current,
                        r.worse_by * 100.0
                    ))
                );
            }
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn red(text: &str) -> String {
    if std::io::stderr().is_terminal() {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Progress output: a bar on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{text}");
    }

    fn bar(&self, mode: &str, done: usize, total: usize, note: &str) {
        if self.tty {
            let width = 30;
            let filled = (done * width)
                .checked_div(total)
                .unwrap_or(width)
                .min(width);
            eprint!(
                "\r\x1b[2K{mode:<6} [{}{}] {done}/{total} {note}",
                "#".repeat(filled),
                ".".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{mode}: update {done}/{total} {note}");
        }
    }
}

/// A fresh store URL for one mode.
async fn fresh_store(args: &BenchOptions, mode: &str, dir: &Path) -> anyhow::Result<String> {
    if args.store == "sqlite" {
        let path = dir.join(format!("store-{mode}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        return Ok(format!("sqlite://{}", path.display()));
    }
    let name = format!(
        "worldpool_bench_{mode}_{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S%3f")
    );
    let (client, conn) = tokio_postgres::connect(&args.store, tokio_postgres::NoTls)
        .await
        .context("connecting to --store to create a fresh benchmark database")?;
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .context("creating the benchmark database")?;
    drop(client);
    let _ = task.await;
    let mut url = url::Url::parse(&args.store).context("parsing --store")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Figures sampled from /proc while a mode runs.
#[derive(Default)]
struct Samples {
    /// Peak RSS per worker slot (world).
    worker_peak: HashMap<String, u64>,
    /// Every worker pid seen per slot.
    pids: HashMap<String, HashSet<u32>>,
    /// RSS, PSS and descriptors over time, about once a second.
    memory: memory::Series,
    next_memory: Option<Instant>,
}

impl Samples {
    fn sample(&mut self, supervisor: u32) -> HashMap<u32, String> {
        let live = self.workers(supervisor);
        if self.next_memory.is_none_or(|t| Instant::now() >= t) {
            self.next_memory = Some(Instant::now() + Duration::from_secs(1));
            self.memory.sample(supervisor, live.keys().copied());
        }
        live
    }

    fn workers(&mut self, supervisor: u32) -> HashMap<u32, String> {
        let mut live = HashMap::new();
        for (pid, args) in pool::procfs::children(supervisor) {
            let Some(slot) = worker_slot(&args) else {
                continue;
            };
            if let Some(rss) = pool::procfs::peak_rss(pid) {
                let e = self.worker_peak.entry(slot.clone()).or_default();
                *e = (*e).max(rss);
            }
            self.pids.entry(slot.clone()).or_default().insert(pid);
            live.insert(pid, slot);
        }
        live
    }

    fn restarts(&self) -> u64 {
        self.pids
            .values()
            .map(|p| p.len().saturating_sub(1) as u64)
            .sum()
    }
}

async fn run_mode(
    args: &BenchOptions,
    plan: &Plan,
    mode: Mode,
    exe: &Path,
    progress: &Progress,
) -> anyhow::Result<(ModeResult, memory::Series)> {
    let mode_name = match mode {
        Mode::Pool => "pool",
        Mode::Single => "single",
    };
    let dir = args.out.join(format!("run-{mode_name}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let site = DemoSite::start(DemoSiteOptions {
        port: 0,
        latency: plan.latency,
        tick: None,
        sized: Some(Sizing {
            worlds: plan.worlds,
            guilds_per_world: plan.guilds,
            players_per_guild: plan.players,
        }),
        ..Default::default()
    })
    .await
    .context("starting the demo site")?;
    let worlds = site.world_names();
    let store_url = fresh_store(args, mode_name, &dir).await?;
    let config_path = dir.join("bench.toml");
    std::fs::write(
        &config_path,
        bench_config(
            &site.config_toml(&store_url, mode),
            args.chaos_kill_every.is_some(),
        ),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    crate::config::Config::load(&config_path)
        .map_err(|e| anyhow::anyhow!("the generated bench config is invalid:\n{e}"))?;
    let store = Store::open(&store_url, 2)
        .await
        .context("opening the benchmark store")?;

    let log_path = dir.join("supervisor.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let api = if args.api {
        // A free port for the supervisor's API.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        Some(probe.local_addr().context("finding a free port")?)
    } else {
        None
    };
    // The supervisor runs from a copy: this process maps its own binary,
    // and sharing those pages would halve the supervisor's PSS for them.
    let bin_dir = dir.join("bin");
    let exe = stage_binaries(exe, &bin_dir)?;
    let mut command = tokio::process::Command::new(&exe);
    match api {
        Some(addr) => command.args(["run", "--api-bind", &addr.to_string(), "--config"]),
        None => command.args(["run", "--no-api", "--config"]),
    };
    let mut child = command
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .context("starting the supervisor")?;
    let supervisor = child.id().context("supervisor pid")?;
    let expected_workers = match mode {
        Mode::Pool => worlds.len(),
        Mode::Single => 1,
    };

    let result = measure(
        args,
        plan,
        mode_name,
        &site,
        &store,
        &worlds,
        supervisor,
        expected_workers,
        api.map(|a| format!("http://{a}")),
        progress,
    )
    .await;

    // Stop the supervisor the way an operator does: SIGTERM, then wait.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) if !status.success() => {
            progress.line(&format!(
                "{mode_name}: supervisor exited with {status} (log: {})",
                log_path.display()
            ));
        }
        Ok(_) => {}
        Err(_) => {
            let _ = child.kill().await;
            progress.line(&format!(
                "{mode_name}: supervisor did not stop within 30 s; killed"
            ));
        }
    }
    site.shutdown().await;
    let _ = std::fs::remove_dir_all(&bin_dir);
    result
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &BenchOptions,
    plan: &Plan,
    mode_name: &str,
    site: &DemoSite,
    store: &Store,
    worlds: &[String],
    supervisor: u32,
    expected_workers: usize,
    api: Option<String>,
    progress: &Progress,
) -> anyhow::Result<(ModeResult, memory::Series)> {
    let mut samples = Samples::default();
    // Every world's initial pass must be stored before measuring starts.
    let deadline = Instant::now() + args.update_timeout;
    loop {
        samples.sample(supervisor);
        let counts = ok_update_counts(store, worlds).await?;
        if worlds
            .iter()
            .all(|w| counts.get(w).copied().unwrap_or(0) >= 1)
        {
            break;
        }
        if !procfs_alive(supervisor) {
            bail!(
                "the supervisor exited during start-up; see its log under {}",
                args.out.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{mode_name}: the initial pass was not stored within {:?} ({} of {} worlds)",
                args.update_timeout,
                counts.values().filter(|c| **c >= 1).count(),
                worlds.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.line(&format!(
        "{mode_name}: {} worker(s) up, initial pass stored",
        expected_workers
    ));

    let stop_load = tokio_util::sync::CancellationToken::new();
    let load = api.map(|base| {
        tokio::spawn(load::run(
            base,
            worlds.to_vec(),
            args.api_rate,
            2,
            stop_load.clone(),
        ))
    });
    let pages_start = site.requests_served();
    let rows_start = stored_rows(store).await?;
    let cpu_start = cpu_seconds(supervisor).unwrap_or(0.0);
    let started = Instant::now();
    let measured_from = samples.memory.elapsed_s();
    let mut latencies = Vec::new();
    let mut kills = 0u64;
    let mut next_kill = args.chaos_kill_every.map(|d| Instant::now() + d);
    for u in 1..=plan.updates {
        site.advance();
        let t0 = Instant::now();
        let deadline = t0 + args.update_timeout;
        let mut settled = false;
        loop {
            let live = samples.sample(supervisor);
            if let (Some(at), Some(every)) = (next_kill, args.chaos_kill_every)
                && Instant::now() >= at
                && !live.is_empty()
            {
                let pids: Vec<u32> = live.keys().copied().collect();
                let victim = pids[rand::rng().random_range(0..pids.len())];
                if nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(victim as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
                {
                    kills += 1;
                }
                next_kill = Some(Instant::now() + every);
            }
            if !settled {
                let counts = ok_update_counts(store, worlds).await?;
                if worlds
                    .iter()
                    .all(|w| counts.get(w).copied().unwrap_or(0) > u)
                {
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    latencies.push(ms);
                    progress.bar(mode_name, u, plan.updates, &format!("stored in {ms:.0} ms"));
                    settled = true;
                } else if Instant::now() > deadline {
                    latencies.push(f64::NAN);
                    progress.line(&format!(
                        "{mode_name}: update {u} not stored everywhere within {:?}",
                        args.update_timeout
                    ));
                    settled = true;
                }
            }
            // With --update-every the site keeps its own cadence (chaos
            // goes on in between); otherwise the next update follows at once.
            if settled && args.update_every.is_none_or(|every| t0.elapsed() >= every) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    progress.line("");
    let pages = site.requests_served().saturating_sub(pages_start);
    let rows = stored_rows(store).await?.saturating_sub(rows_start);
    let supervisor_cpu_s = cpu_seconds(supervisor).unwrap_or(0.0) - cpu_start;
    let supervisor_peak = pool::procfs::peak_rss(supervisor).unwrap_or(0);
    samples.next_memory = None;
    samples.sample(supervisor);
    stop_load.cancel();
    let api_load = match load {
        Some(task) => task.await.ok(),
        None => None,
    };

    let integrity = check_integrity(store, worlds, plan.updates + 1).await?;
    let finite: Vec<f64> = latencies
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let result = ModeResult {
        mode: mode_name.to_string(),
        workers: expected_workers,
        update_latency_ms: stats::summarize(&finite),
        latencies_ms: latencies,
        wall_s: wall,
        pages_fetched: pages,
        pages_per_s: pages as f64 / wall.max(1e-9),
        rows_stored: rows,
        rows_per_s: rows as f64 / wall.max(1e-9),
        supervisor_cpu_s,
        supervisor_peak_rss_bytes: supervisor_peak,
        worker_peak_rss_bytes: samples.worker_peak.values().copied().max().unwrap_or(0),
        workers_total_peak_rss_bytes: samples.worker_peak.values().sum(),
        kills,
        restarts: samples.restarts(),
        integrity,
        memory: samples.memory.summary(measured_from),
        api_load,
    };
    Ok((result, samples.memory))
}

/// Copy `exe` (and `worldpool-worker` beside it, when there) into `dir`,
/// written to disk as an installed binary is (dirty pages could not leave
/// the page cache); the copy of `exe`.
fn stage_binaries(exe: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = exe
        .file_name()
        .context("the supervisor binary has no file name")?;
    let copy_to = |from: &Path, to: &Path| -> anyhow::Result<()> {
        std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", to.display()))
    };
    let copy = dir.join(name);
    copy_to(exe, &copy)?;
    let worker = exe.with_file_name(crate::supervise::WORKER_BINARY);
    if worker.is_file() {
        copy_to(&worker, &dir.join(crate::supervise::WORKER_BINARY))?;
    }
    Ok(copy)
}

fn procfs_alive(pid: u32) -> bool {
    pool::procfs::cpu_time(pid).is_some()
}

/// User + system CPU seconds of a process (not of its children).
fn cpu_seconds(pid: u32) -> Option<f64> {
    pool::procfs::cpu_time(pid).map(|t| t.as_secs_f64())
}

/// The worker slot a command line belongs to: the value after `--world`,
/// or the single worker for `--all`.
fn worker_slot(args: &[String]) -> Option<String> {
    if args.iter().any(|a| a == "--all") {
        return Some(crate::config::SINGLE_WORKER.to_string());
    }
    let i = args.iter().position(|a| a == "--world")?;
    args.get(i + 1).cloned()
}

/// All runs of the store, newest first, paged.
async fn all_runs(store: &Store, world: Option<&str>) -> anyhow::Result<Vec<crate::store::RunRow>> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .runs(world, 1000, before)
            .await
            .context("reading runs")?;
        let done = page.len() < 1000;
        before = page.last().map(|r| r.id);
        out.extend(page);
        if done || before.is_none() {
            return Ok(out);
        }
    }
}

/// Distinct successfully stored update times per world.
async fn ok_update_counts(
    store: &Store,
    worlds: &[String],
) -> anyhow::Result<HashMap<String, usize>> {
    let mut per: HashMap<String, HashSet<i64>> =
        worlds.iter().map(|w| (w.clone(), HashSet::new())).collect();
    for r in all_runs(store, None).await? {
        if r.status == "ok" {
            per.entry(r.world.clone())
                .or_default()
                .insert(r.update_time.timestamp());
        }
    }
    Ok(per.into_iter().map(|(w, s)| (w, s.len())).collect())
}

async fn stored_rows(store: &Store) -> anyhow::Result<u64> {
    Ok(all_runs(store, None)
        .await?
        .iter()
        .filter(|r| r.status == "ok")
        .map(|r| r.rows.max(0) as u64)
        .sum())
}

/// Every world has exactly `expected_updates` successful runs, one per
/// update, and each run's stored deltas match its own count.
async fn check_integrity(
    store: &Store,
    worlds: &[String],
    expected_updates: usize,
) -> anyhow::Result<Integrity> {
    let runs = all_runs(store, None).await?;
    let mut per: BTreeMap<(String, i64), Vec<&crate::store::RunRow>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.status == "ok") {
        per.entry((r.world.clone(), r.update_time.timestamp()))
            .or_default()
            .push(r);
    }
    let mut integrity = Integrity {
        expected_runs: worlds.len() * expected_updates,
        ..Default::default()
    };
    integrity.stored_runs = per.values().map(Vec::len).sum();
    // Deltas stored per (world, update).
    let mut delta_counts: HashMap<(String, i64), i64> = HashMap::new();
    let mut before = None;
    loop {
        let page = store
            .deltas(None, None, 1000, before)
            .await
            .context("reading deltas")?;
        let done = page.len() < 1000;
        before = page.last().map(|d| d.id);
        for d in &page {
            *delta_counts
                .entry((d.world.clone(), d.update_time.timestamp()))
                .or_default() += 1;
        }
        if done || before.is_none() {
            break;
        }
    }
    for w in worlds {
        let mine: Vec<_> = per.iter().filter(|((world, _), _)| world == w).collect();
        for ((world, t), rs) in &mine {
            let label = format!("{world}@{t}");
            if rs.len() > 1 {
                integrity.duplicates.push(label.clone());
            }
            let stored = delta_counts.get(&(world.clone(), *t)).copied().unwrap_or(0);
            if rs.iter().any(|r| r.deltas != stored) || rs.iter().any(|r| r.rows <= 0) {
                integrity.partial.push(label);
            }
        }
        for k in mine.len()..expected_updates {
            integrity.missing.push(format!("{w}@update{k}"));
        }
    }
    Ok(integrity)
}

/// Tighten the demo config for benchmarking: poll often so the measured
/// latency is the scrape, not the poll interval, and let 64 requests be in
/// flight for the pool. Under chaos, kills are
/// deliberate, so the crash-loop guard is relaxed: a worker killed young is
/// restarted after at most 200 ms and never declared fatal (the restarts are
/// still counted and reported).
fn bench_config(toml: &str, chaos: bool) -> String {
    toml.lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            match key {
                "poll_interval" => "poll_interval = \"25ms\"".to_string(),
                "poll_jitter" => "poll_jitter = 0.0".to_string(),
                // The budget is pool-wide: room for every world's guilds at
                // once, so this compares processes, not politeness
                // (`bench --polite` measures that).
                "max_concurrent" => "max_concurrent = 64".to_string(),
                "[pool]" if chaos => "[pool]\nmin_uptime = \"100ms\"\nbackoff_initial = \"10ms\"\nbackoff_max = \"200ms\"\nmax_restarts = 1000000\nwindow = \"1s\"".to_string(),
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_slots_from_command_lines() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            worker_slot(&s(&["wp", "worker", "--world", "Aurera"])),
            Some("Aurera".into())
        );
        assert_eq!(
            worker_slot(&s(&["wp", "worker", "--all"])),
            Some("single".into())
        );
        assert_eq!(worker_slot(&s(&["wp", "run"])), None);
    }
}
