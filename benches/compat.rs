//! The replaced system's data API over a big history, on both backends.
//!
//! Fills a store with `COMPAT_BENCH_DELTAS` deltas (default 1,000,000: 5
//! worlds × 200 players, an update every 10 minutes, about half the players
//! gaining at each update, so about 72,000 deltas a day over two weeks)
//! through `worldpool import` (one transaction), then serves the real
//! router on 127.0.0.1 and times, over keep-alive HTTP/1.1, one request at
//! a time:
//!
//! - `GET /api/delta?limit=100&world=…` (target: under 5 ms),
//! - `POST /api/rankings-table` over one day (target: under 100 ms),
//! - and, for reference, top players over a day, players of a world, the
//!   date range, and a full `GET /api/download/deltas` (rows per second and
//!   the process's resident memory while it streams).
//!
//!     cargo bench --bench compat
//!
//! PostgreSQL: an ephemeral cluster from the local binaries (as the tests
//! do), or `COMPAT_BENCH_DATABASE_URL`; `COMPAT_BENCH_BACKENDS=sqlite`
//! skips it. `COMPAT_BENCH_REQUESTS` (200) requests per endpoint.

#[path = "../tests/helper/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use worldpool::api::fake::FakeControl;
use worldpool::api::{self, ApiState, CompatSettings};
use worldpool::bench::history::start;
use worldpool::store::{ImportBatch, Store};

const WORLDS: usize = 5;
const PLAYERS: usize = 200;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// About `target` deltas over 5 worlds × 200 players.
fn history(target: usize) -> ImportBatch {
    worldpool::bench::history::synthetic(target, WORLDS, PLAYERS)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Timing {
    what: String,
    ms: Vec<f64>,
    bytes: usize,
}

impl Timing {
    fn print(&mut self) {
        self.ms.sort_by(f64::total_cmp);
        let pick = |p: f64| self.ms[((self.ms.len() as f64 - 1.0) * p).round() as usize];
        let mean = self.ms.iter().sum::<f64>() / self.ms.len() as f64;
        println!(
            "  {:<52} n={:<4} mean {:>8.2} ms  p50 {:>8.2}  p99 {:>8.2}  max {:>8.2}  ({} B)",
            self.what,
            self.ms.len(),
            mean,
            pick(0.5),
            pick(0.99),
            pick(1.0),
            self.bytes
        );
    }
}

async fn time_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<Timing> {
    let mut t = Timing {
        what: format!("GET {path}"),
        ms: Vec::with_capacity(n),
        bytes: 0,
    };
    for _ in 0..n {
        let t0 = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
        t.bytes = r.bytes().await?.len();
        t.ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(t)
}

async fn time_post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: serde_json::Value,
    n: usize,
) -> anyhow::Result<Timing> {
    let mut t = Timing {
        what: format!("POST {path} {body}"),
        ms: Vec::with_capacity(n),
        bytes: 0,
    };
    for _ in 0..n {
        let t0 = Instant::now();
        let r = http
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
        t.bytes = r.bytes().await?.len();
        t.ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(t)
}

async fn bench_backend(label: &str, url: &str, target: usize, n: usize) -> anyhow::Result<()> {
    println!("== {label}: {url}");
    let store = Store::open(url, 4).await.context("store")?;
    let t0 = Instant::now();
    let batch = history(target);
    let written = store.import(&batch, false).await.context("import")?;
    let deltas: usize = written.deltas.values().sum();
    println!(
        "  filled {deltas} deltas, {} runs through `import` (one transaction) in {:.1} s",
        written.runs.values().sum::<usize>(),
        t0.elapsed().as_secs_f64()
    );
    drop(batch);
    if let Store::Postgres(_) = store {
        // What autovacuum would do after a bulk load: visibility map and
        // statistics for index-only scans.
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        client.batch_execute("VACUUM ANALYZE deltas").await?;
        drop(client);
        let _ = task.await;
    }

    let fake = Arc::new(FakeControl::new(&["World 0"]));
    let state =
        ApiState::new(fake, Some(store.clone()), None).with_compat(CompatSettings::default());
    let stop = CancellationToken::new();
    let (addr, task) = api::serve("127.0.0.1:0".parse()?, state, stop.clone()).await?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    // One day in the middle of the history.
    let day = start().date_naive() + chrono::Duration::days(5);
    let d1 = format!("{day}T00:00");
    let d2 = format!("{day}T23:59");
    // Warm up the caches and the connection.
    time_get(&http, &base, "/api/delta?limit=100&world=World%202", 5).await?;

    let mut timings = vec![
        time_get(&http, &base, "/api/delta?limit=100&world=World%202", n).await?,
        time_get(&http, &base, "/api/delta?limit=100", n).await?,
        time_post(
            &http,
            &base,
            "/api/rankings-table",
            serde_json::json!({"datetime1": d1, "datetime2": d2}),
            (n / 5).max(10),
        )
        .await?,
        time_get(
            &http,
            &base,
            &format!("/api/top-players?limit=10&datetime1={d1}&datetime2={d2}"),
            (n / 5).max(10),
        )
        .await?,
        time_get(
            &http,
            &base,
            "/api/players?world=World%202",
            (n / 10).max(5),
        )
        .await?,
        time_get(&http, &base, "/api/date-range?world=World%202", n).await?,
    ];
    for t in &mut timings {
        t.print();
    }

    // A full CSV download: rows per second and resident memory meanwhile.
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let t0 = Instant::now();
    let mut resp = http
        .get(format!("{base}/api/download/deltas"))
        .send()
        .await?;
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let secs = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    println!(
        "  GET /api/download/deltas: {} rows, {:.1} MB in {:.2} s ({:.0} rows/s); RSS {} → peak {} KiB (+{} KiB)",
        lines.saturating_sub(1),
        bytes as f64 / 1e6,
        secs,
        lines as f64 / secs,
        before,
        peak.load(Ordering::Relaxed),
        peak.load(Ordering::Relaxed).saturating_sub(before)
    );
    stop.cancel();
    let _ = task.await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let target: usize = env_or("COMPAT_BENCH_DELTAS", 1_000_000);
    let n: usize = env_or("COMPAT_BENCH_REQUESTS", 200);
    let backends =
        std::env::var("COMPAT_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if backends.contains("sqlite") {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}/compat-bench.db", dir.path().display());
            bench_backend("SQLite", &url, target, n).await?;
        }
        if backends.contains("postgres") {
            let url = match std::env::var("COMPAT_BENCH_DATABASE_URL") {
                Ok(u) if !u.trim().is_empty() => u,
                _ => pg::fresh_database_url().await,
            };
            bench_backend("PostgreSQL", &url, target, n).await?;
        }
        Ok::<(), anyhow::Error>(())
    })
}
