//! `worldpool bench --polite`: how polite the pool is to the site, before
//! (every worker polls the status page itself and has its own rate limit:
//! `[pool] watcher = false`, `[site] budget = "worker"`) and now (one
//! watcher, one budget per host for the pool), side by side in one run,
//! each against its own demo site whose counters say what it saw:
//!
//! 1. **idle**: no update for a while; status requests per poll interval;
//! 2. **burst**: every world updates at once, `rate_limit = 20`: the most
//!    requests the site saw in any one-second window and at once;
//! 3. **latency**: update → every world stored, `rate_limit = 0`, 100 ms
//!    polling, 50 ms site latency;
//! 4. **429**: a guild page answers `429` with `Retry-After: 2`: requests
//!    the site saw during those 2 s, and whether every run completed.
//!
//! Each case runs a real `worldpool run` (the production path) as a child
//! process with a fresh SQLite store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::stats::{Summary, summarize};
use crate::config::Mode;
use crate::demo_site::{DemoSite, DemoSiteOptions, Fault, Sizing};
use crate::store::Store;

/// What `--polite` measures.
#[derive(Debug, Clone)]
pub struct PoliteOptions {
    /// Output folder (`polite.json`, one folder per case).
    pub out: PathBuf,
    /// Small sizes and short waits (a smoke run).
    pub quick: bool,
    /// The idle case's poll interval (default: the config's default, 60 s).
    pub idle_interval: Duration,
    /// How long the idle case watches (default 5 minutes).
    pub idle_for: Duration,
    /// Updates measured in the latency case.
    pub updates: usize,
}

/// Before or now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Every worker polls and limits itself.
    Before,
    /// One watcher, one budget for the pool.
    Polite,
}

impl Variant {
    const BOTH: [Variant; 2] = [Variant::Before, Variant::Polite];

    fn name(self) -> &'static str {
        match self {
            Variant::Before => "before",
            Variant::Polite => "polite",
        }
    }

    fn pool_keys(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Variant::Before => &[("watcher", "false")],
            Variant::Polite => &[("watcher", "true")],
        }
    }

    fn site_budget(self) -> &'static str {
        match self {
            Variant::Before => "\"worker\"",
            Variant::Polite => "\"pool\"",
        }
    }
}

/// The idle case.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// Before or now.
    pub variant: Variant,
    /// Worlds.
    pub worlds: usize,
    /// Poll interval, seconds.
    pub interval_s: f64,
    /// How long it watched, seconds.
    pub watched_s: f64,
    /// Status requests the site saw.
    pub status_requests: u64,
    /// Per poll interval.
    pub per_interval: f64,
    /// Other requests (none expected: nothing changed).
    pub other_requests: u64,
}

/// The burst case.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    /// Before or now.
    pub variant: Variant,
    /// `[site] rate_limit`.
    pub rate_limit: f64,
    /// `[site] max_concurrent`.
    pub max_concurrent: usize,
    /// Guild pages fetched for the update.
    pub pages: u64,
    /// Most requests within any one second (sliding window).
    pub peak_per_second: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Update → every world stored, ms.
    pub stored_ms: f64,
}

/// The latency case.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Before or now.
    pub variant: Variant,
    /// Update → every world stored, ms.
    pub update_ms: Summary,
    /// Status requests per update (all workers).
    pub status_requests_per_update: f64,
}

/// The 429 case.
#[derive(Debug, Clone, Serialize)]
pub struct TooMany {
    /// Before or now.
    pub variant: Variant,
    /// Requests that reached the site from 100 ms to 2 s after the 429
    /// (the first 100 ms: requests already on their way).
    pub requests_during_pause: u64,
    /// The first request after those 100 ms, ms after the 429.
    pub first_request_after_ms: Option<f64>,
    /// Every world stored the update, and no run failed.
    pub complete: bool,
    /// Update → every world stored, ms.
    pub stored_ms: f64,
}

/// Everything `--polite` measured.
#[derive(Debug, Clone, Serialize)]
pub struct PoliteResults {
    /// When it ran.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Smoke sizes.
    pub quick: bool,
    /// Idle case.
    pub idle: Vec<Idle>,
    /// Burst case.
    pub burst: Vec<Burst>,
    /// Latency case.
    pub latency: Vec<Latency>,
    /// 429 case.
    pub too_many: Vec<TooMany>,
}

/// A demo site, a store and a real `worldpool run` on them.
struct Instance {
    site: DemoSite,
    store: Store,
    child: tokio::process::Child,
    worlds: Vec<String>,
}

/// How to size and configure one instance.
struct Case<'a> {
    dir: &'a Path,
    variant: Variant,
    sizing: Sizing,
    guild_pages: usize,
    latency: Duration,
    site: Vec<(&'static str, String)>,
}

/// Replace (or add) `keys` in `[section]` of a TOML text written by
/// [`DemoSite::config_toml`].
pub(super) fn set_keys(toml: &str, section: &str, keys: &[(&str, String)]) -> String {
    let header = format!("[{section}]");
    let mut out = Vec::new();
    let mut current = String::new();
    let mut pending: Vec<(&str, String)> = keys.to_vec();
    for line in toml.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if current == header {
                for (k, v) in pending.drain(..) {
                    out.push(format!("{k} = {v}"));
                }
            }
            current = trimmed.to_string();
            out.push(line.to_string());
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        if current == header
            && let Some(i) = pending.iter().position(|(k, _)| *k == key)
        {
            let (k, v) = pending.remove(i);
            out.push(format!("{k} = {v}"));
            continue;
        }
        out.push(line.to_string());
    }
    if current == header {
        for (k, v) in pending {
            out.push(format!("{k} = {v}"));
        }
    }
    out.join("\n") + "\n"
}

impl Instance {
    async fn start(case: Case<'_>, exe: &Path) -> anyhow::Result<Instance> {
        let site = DemoSite::start(DemoSiteOptions {
            latency: case.latency,
            sized: Some(case.sizing),
            guild_pages: case.guild_pages,
            ..DemoSiteOptions::default()
        })
        .await
        .context("starting the demo site")?;
        let dir = case.dir.join(case.variant.name());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let db = dir.join("store.db");
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        let url = format!("sqlite://{}", db.display());
        let mut site_keys = case.site.clone();
        site_keys.push(("budget", case.variant.site_budget().to_string()));
        let pool_keys: Vec<(&str, String)> = case
            .variant
            .pool_keys()
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        let text = set_keys(
            &set_keys(&site.config_toml(&url, Mode::Pool), "site", &site_keys),
            "pool",
            &pool_keys,
        );
        let config = dir.join("bench.toml");
        std::fs::write(&config, &text).with_context(|| format!("writing {}", config.display()))?;
        crate::config::Config::load(&config)
            .map_err(|e| anyhow::anyhow!("the generated config is invalid:\n{e}"))?;
        let log = std::fs::File::create(dir.join("supervisor.log")).context("supervisor log")?;
        let child = tokio::process::Command::new(exe)
            .args(["run", "--no-api", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("starting the supervisor")?;
        let store = Store::open(&url, 2).await.context("opening the store")?;
        let worlds = site.world_names();
        Ok(Instance {
            site,
            store,
            child,
            worlds,
        })
    }

    /// Wait until every world has `n` stored updates.
    async fn stored(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.store.runs(None, 10_000, None).await?;
            let mut per: HashMap<&str, usize> = HashMap::new();
            for r in runs.iter().filter(|r| r.status == "ok") {
                *per.entry(r.world.as_str()).or_default() += 1;
            }
            if self
                .worlds
                .iter()
                .all(|w| per.get(w.as_str()).copied().unwrap_or(0) >= n)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("not every world stored {n} updates within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every world exactly `n` ok runs and no failed one.
    async fn complete(&self, n: usize) -> anyhow::Result<bool> {
        let runs = self.store.runs(None, 10_000, None).await?;
        let failed = runs.iter().any(|r| r.status != "ok");
        let exact = self
            .worlds
            .iter()
            .all(|w| runs.iter().filter(|r| &r.world == w).count() == n);
        Ok(exact && !failed)
    }

    fn count(&self, path: &str) -> u64 {
        self.site.requests_by_path().get(path).copied().unwrap_or(0)
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        self.site.shutdown().await;
    }
}

fn ms(d: Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

async fn idle(
    opts: &PoliteOptions,
    dir: &Path,
    exe: &Path,
    variant: Variant,
) -> anyhow::Result<Idle> {
    let worlds = 20;
    let case = Case {
        dir: &dir.join("idle"),
        variant,
        sizing: Sizing {
            worlds,
            guilds_per_world: 1,
            players_per_guild: 5,
        },
        guild_pages: 1,
        latency: Duration::ZERO,
        site: vec![
            ("poll_interval", ms(opts.idle_interval)),
            ("poll_jitter", "0.0".into()),
        ],
    };
    let i = Instance::start(case, exe).await?;
    // The first pass happens at start, whatever the interval.
    i.stored(1, Duration::from_secs(120)).await?;
    i.site.reset_counters();
    let started = Instant::now();
    tokio::time::sleep(opts.idle_for).await;
    let watched = started.elapsed();
    let status = i.count("/status");
    let all: u64 = i.site.requests_by_path().values().sum();
    i.stop().await;
    let intervals = watched.as_secs_f64() / opts.idle_interval.as_secs_f64();
    Ok(Idle {
        variant,
        worlds,
        interval_s: opts.idle_interval.as_secs_f64(),
        watched_s: watched.as_secs_f64(),
        status_requests: status,
        per_interval: status as f64 / intervals.max(1e-9),
        other_requests: all - status,
    })
}

async fn burst(
    opts: &PoliteOptions,
    dir: &Path,
    exe: &Path,
    variant: Variant,
) -> anyhow::Result<Burst> {
    let (worlds, rate, concurrency) = if opts.quick {
        (6, 10.0, 4)
    } else {
        (20, 20.0, 4)
    };
    let case = Case {
        dir: &dir.join("burst"),
        variant,
        sizing: Sizing {
            worlds,
            guilds_per_world: 3,
            players_per_guild: 20,
        },
        guild_pages: 2,
        latency: Duration::from_millis(50),
        site: vec![
            ("rate_limit", format!("{rate:.1}")),
            ("max_concurrent", concurrency.to_string()),
            ("poll_interval", "\"1s\"".into()),
        ],
    };
    let i = Instance::start(case, exe).await?;
    i.stored(1, Duration::from_secs(180)).await?;
    i.site.reset_counters();
    let t0 = Instant::now();
    i.site.advance();
    i.stored(2, Duration::from_secs(180)).await?;
    let stored = t0.elapsed();
    let out = Burst {
        variant,
        rate_limit: rate,
        max_concurrent: concurrency,
        pages: i.count("/guild.php"),
        peak_per_second: i.site.peak_per_second(),
        peak_in_flight: i.site.peak_in_flight(),
        stored_ms: stored.as_secs_f64() * 1000.0,
    };
    i.stop().await;
    Ok(out)
}

/// The latency and 429 cases' site: 20 worlds × 3 guilds × 20 players,
/// 50 ms latency, unlimited rate, 100 ms polling.
fn fast_case(dir: &Path, variant: Variant, quick: bool) -> Case<'_> {
    Case {
        dir,
        variant,
        sizing: Sizing {
            worlds: if quick { 6 } else { 20 },
            guilds_per_world: 3,
            players_per_guild: 20,
        },
        guild_pages: 1,
        latency: Duration::from_millis(50),
        site: vec![
            ("rate_limit", "0.0".into()),
            ("max_concurrent", "64".into()),
            ("poll_interval", "\"100ms\"".into()),
            ("poll_jitter", "0.0".into()),
        ],
    }
}

async fn latency(
    opts: &PoliteOptions,
    dir: &Path,
    exe: &Path,
    variant: Variant,
) -> anyhow::Result<Latency> {
    let case_dir = dir.join("latency");
    let i = Instance::start(fast_case(&case_dir, variant, opts.quick), exe).await?;
    i.stored(1, Duration::from_secs(120)).await?;
    i.site.reset_counters();
    let mut samples = Vec::new();
    for u in 0..opts.updates {
        // Updates land at a random moment of the poll interval, as real
        // ones do.
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..100))).await;
        let t0 = Instant::now();
        i.site.advance();
        i.stored(u + 2, Duration::from_secs(60)).await?;
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let status = i.count("/status");
    i.stop().await;
    Ok(Latency {
        variant,
        update_ms: summarize(&samples),
        status_requests_per_update: status as f64 / opts.updates.max(1) as f64,
    })
}

async fn too_many(
    opts: &PoliteOptions,
    dir: &Path,
    exe: &Path,
    variant: Variant,
) -> anyhow::Result<TooMany> {
    let case_dir = dir.join("too_many");
    let i = Instance::start(fast_case(&case_dir, variant, opts.quick), exe).await?;
    i.stored(1, Duration::from_secs(120)).await?;
    i.site.reset_counters();
    i.site.set_fault(Fault::TooManyRequests {
        times: 1,
        retry_after: "2".into(),
        path: Some("/guild.php".into()),
    });
    let t0 = Instant::now();
    i.site.advance();
    i.stored(2, Duration::from_secs(60)).await?;
    let stored = t0.elapsed();
    let complete = i.complete(2).await?;
    let sent = i.site.too_many_sent();
    let arrivals = i.site.arrivals();
    i.stop().await;
    let Some(t429) = sent.first().copied() else {
        bail!("the site never answered 429");
    };
    let after: Vec<Duration> = arrivals
        .iter()
        .map(|a| a.at.saturating_duration_since(t429))
        .filter(|d| *d >= Duration::from_millis(100))
        .collect();
    Ok(TooMany {
        variant,
        requests_during_pause: after
            .iter()
            .filter(|d| **d < Duration::from_secs(2))
            .count() as u64,
        first_request_after_ms: after.iter().min().map(|d| d.as_secs_f64() * 1000.0),
        complete,
        stored_ms: stored.as_secs_f64() * 1000.0,
    })
}

/// Run every case for both variants; print a table, write `polite.json`.
pub async fn run(opts: PoliteOptions) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the worldpool binary")?;
    let dir = opts.out.join("polite");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut results = PoliteResults {
        started_at: chrono::Utc::now(),
        quick: opts.quick,
        idle: Vec::new(),
        burst: Vec::new(),
        latency: Vec::new(),
        too_many: Vec::new(),
    };
    eprintln!(
        "polite: idle case, 20 worlds, {:?} poll interval, watched for {:?} (both variants at once)",
        opts.idle_interval, opts.idle_for
    );
    let (before, now) = tokio::join!(
        idle(&opts, &dir, &exe, Variant::Before),
        idle(&opts, &dir, &exe, Variant::Polite)
    );
    results.idle = vec![before?, now?];
    for v in Variant::BOTH {
        eprintln!("polite: burst case, {}", v.name());
        results.burst.push(burst(&opts, &dir, &exe, v).await?);
    }
    for v in Variant::BOTH {
        eprintln!("polite: latency case, {}", v.name());
        results.latency.push(latency(&opts, &dir, &exe, v).await?);
    }
    for v in Variant::BOTH {
        eprintln!("polite: 429 case, {}", v.name());
        results.too_many.push(too_many(&opts, &dir, &exe, v).await?);
    }
    let path = opts.out.join("polite.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", table(&results));
    println!("wrote {}", path.display());
    let lost = results.too_many.iter().any(|t| !t.complete);
    Ok(if lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The results as Markdown tables (what the README shows).
pub fn table(r: &PoliteResults) -> String {
    let mut out = String::new();
    out.push_str(
        "| idle | status requests | per poll interval | other requests |\n|---|---|---|---|\n",
    );
    for i in &r.idle {
        out.push_str(&format!(
            "| {} | {} in {:.0} s ({} worlds, {:.1} s interval) | {:.2} | {} |\n",
            i.variant.name(),
            i.status_requests,
            i.watched_s,
            i.worlds,
            i.interval_s,
            i.per_interval,
            i.other_requests
        ));
    }
    out.push_str("\n| burst | rate_limit / max_concurrent | guild pages | peak per 1 s window | peak in flight | stored in |\n|---|---|---|---|---|---|\n");
    for b in &r.burst {
        out.push_str(&format!(
            "| {} | {} / {} | {} | {} | {} | {:.0} ms |\n",
            b.variant.name(),
            b.rate_limit,
            b.max_concurrent,
            b.pages,
            b.peak_per_second,
            b.peak_in_flight,
            b.stored_ms
        ));
    }
    out.push_str("\n| latency | update → all stored p50 / p95 / max | status requests per update |\n|---|---|---|\n");
    for l in &r.latency {
        out.push_str(&format!(
            "| {} | {:.0} / {:.0} / {:.0} ms | {:.1} |\n",
            l.variant.name(),
            l.update_ms.p50,
            l.update_ms.p95,
            l.update_ms.max,
            l.status_requests_per_update
        ));
    }
    out.push_str("\n| 429 + Retry-After: 2 | requests 0.1–2 s after | first request after | every run complete | stored in |\n|---|---|---|---|---|\n");
    for t in &r.too_many {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} ms |\n",
            t.variant.name(),
            t.requests_during_pause,
            t.first_request_after_ms
                .map_or_else(|| "-".to_string(), |m| format!("{m:.0} ms")),
            if t.complete { "yes" } else { "NO" },
            t.stored_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_replaced_or_added_in_their_section() {
        let toml = "[pool]\nmode = \"pool\"\n\n[site]\nrate_limit = 0.0\nmax_concurrent = 4\n\n[[worlds]]\nname = \"A\"\n";
        let t = set_keys(
            toml,
            "site",
            &[("rate_limit", "20.0".into()), ("budget", "\"pool\"".into())],
        );
        let t = set_keys(&t, "pool", &[("watcher", "false".into())]);
        let parsed: toml::Table = toml::from_str(&t).expect("valid TOML");
        assert_eq!(parsed["site"]["rate_limit"].as_float(), Some(20.0));
        assert_eq!(parsed["site"]["budget"].as_str(), Some("pool"));
        assert_eq!(parsed["site"]["max_concurrent"].as_integer(), Some(4));
        assert_eq!(parsed["pool"]["watcher"].as_bool(), Some(false));
        assert_eq!(parsed["worlds"][0]["name"].as_str(), Some("A"));
    }
}
