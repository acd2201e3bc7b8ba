//! Load generator for `GET /api/workers` (127.0.0.1 only).
//!
//! Serves the real router on 127.0.0.1:0 and hammers it over N keep-alive
//! HTTP/1.1 connections (hyper client) for a bounded time and request
//! count, while workers are restarted in the background. Prints requests
//! per second and latency percentiles.
//!
//!     cargo bench --bench api
//!
//! Environment knobs: `API_BENCH_WORKERS` (100), `API_BENCH_CONNS` (16),
//! `API_BENCH_SECS` (5), `API_BENCH_MAX_REQUESTS` (5000000),
//! `API_BENCH_CHAOS_MS` (interval between restarts, 10),
//! `API_BENCH_CLIENT_NICE` (nice of the load generator threads, 0).
//!
//! `API_BENCH_REAL=1` runs a real pool of `worldpool-test-worker --test-mode
//! idle` processes instead of the fake one, kills one with SIGKILL every
//! `API_BENCH_CHAOS_MS` (default 200 in that mode) and reports the
//! kill → ready restart latency without and with the HTTP load.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use worldpool::api::fake::FakeControl;
use worldpool::api::{self, ApiState, Control};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct LoadResult {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    bytes: u64,
    latencies_us: Vec<u32>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

/// One keep-alive connection issuing requests back to back.
async fn connection(
    addr: SocketAddr,
    path: &'static str,
    deadline: Instant,
    budget: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<(u64, u64, u64, Vec<u32>)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connect")?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut ok, mut errors, mut bytes) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::with_capacity(1 << 16);
    let host = addr.to_string();
    while Instant::now() < deadline {
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        sender.ready().await.context("connection closed")?;
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())?;
        let t0 = Instant::now();
        let response = sender.send_request(req).await.context("request")?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        latencies.push(us);
        if status.is_success() {
            ok += 1;
            bytes += body.len() as u64;
        } else {
            errors += 1;
        }
    }
    Ok((ok, errors, bytes, latencies))
}

async fn load(addr: SocketAddr, conns: usize, secs: f64, max_requests: u64) -> LoadResult {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(max_requests));
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(connection(addr, "/api/workers", deadline, budget.clone())))
        .collect();
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        bytes: 0,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        match t.await {
            Ok(Ok((ok, errors, bytes, lat))) => {
                result.requests += ok;
                result.errors += errors;
                result.bytes += bytes;
                result.latencies_us.extend(lat);
            }
            Ok(Err(e)) => {
                eprintln!("connection failed: {e:#}");
                result.errors += 1;
            }
            Err(e) => {
                eprintln!("connection task failed: {e}");
                result.errors += 1;
            }
        }
    }
    result.elapsed = start.elapsed();
    result.latencies_us.sort_unstable();
    result
}

fn report(label: &str, r: &LoadResult) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{label}: {} requests in {:.2}s = {:.0} req/s, {:.1} MB/s, errors {}, latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        r.requests,
        secs,
        r.requests as f64 / secs,
        r.bytes as f64 / secs / 1e6,
        r.errors,
        percentile(&r.latencies_us, 0.50),
        percentile(&r.latencies_us, 0.90),
        percentile(&r.latencies_us, 0.99),
        percentile(&r.latencies_us, 0.999),
        percentile(&r.latencies_us, 1.0),
    );
}

fn main() -> anyhow::Result<()> {
    let workers: usize = env_or("API_BENCH_WORKERS", 100);
    let conns: usize = env_or("API_BENCH_CONNS", 16);
    let secs: f64 = env_or("API_BENCH_SECS", 5.0);
    let max_requests: u64 = env_or("API_BENCH_MAX_REQUESTS", 5_000_000);
    let real = std::env::var("API_BENCH_REAL").is_ok_and(|v| v == "1");
    let chaos_ms: u64 = env_or("API_BENCH_CHAOS_MS", if real { 200 } else { 10 });

    // The server and the load generator get their own runtimes (2 threads
    // each), sharing the machine's cores like a separate wrk would.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("api-server")
        .enable_all()
        .build()?;
    // API_BENCH_CLIENT_NICE lowers the load generator's priority, to tell
    // its own CPU use apart from the server's in the restart latencies.
    let client_nice: i32 = env_or("API_BENCH_CLIENT_NICE", 0);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            if client_nice > 0 {
                // SAFETY: no preconditions; 0 = the calling thread on Linux.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, client_nice) };
            }
        })
        .thread_name("load-gen")
        .enable_all()
        .build()?;

    let names: Vec<String> = (0..workers).map(|i| format!("World {i:03} Ñ")).collect();
    println!(
        "GET /api/workers, {workers} {} workers, {conns} connections, {secs}s, restart every {chaos_ms} ms",
        if real { "real" } else { "fake" }
    );

    if real {
        for dedicated in [false, true] {
            let load = Load {
                conns,
                secs,
                max_requests,
                chaos_ms,
            };
            real_pool(&server_rt, &client_rt, names.clone(), load, dedicated)?;
        }
        return Ok(());
    }

    let fake = Arc::new(FakeControl::new(&names));
    for (label, ttl) in [
        ("serialized per request", Duration::ZERO),
        ("default 100 ms body reuse", api::DEFAULT_WORKERS_CACHE),
    ] {
        let shutdown = CancellationToken::new();
        let state = ApiState::new(fake.clone(), None, None).with_workers_cache(ttl);
        let (addr, server) =
            server_rt.block_on(api::serve("127.0.0.1:0".parse()?, state, shutdown.clone()))?;
        let body_len = client_rt.block_on(async {
            reqwest::get(format!("http://{addr}/api/workers"))
                .await?
                .bytes()
                .await
                .map(|b| b.len())
        })?;

        // Warm-up, then the measured run with restarts going on.
        client_rt.block_on(load(addr, conns, 0.5, max_requests));
        let chaos_stop = CancellationToken::new();
        let chaos = {
            let fake = fake.clone();
            let stop = chaos_stop.clone();
            let names = names.clone();
            server_rt.spawn(async move {
                let mut i = 0usize;
                let mut restarts = 0u64;
                let mut tick = tokio::time::interval(Duration::from_millis(chaos_ms.max(1)));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return restarts,
                        _ = tick.tick() => {}
                    }
                    i = (i + 37) % names.len();
                    if fake.restart(&names[i]).await.is_ok() {
                        restarts += 1;
                    }
                }
            })
        };
        let result = client_rt.block_on(load(addr, conns, secs, max_requests));
        chaos_stop.cancel();
        let restarts = server_rt.block_on(chaos)?;
        report(
            &format!("GET /api/workers ({label}, {body_len} B)"),
            &result,
        );
        println!("  restarts during the run: {restarts}");

        shutdown.cancel();
        server_rt.block_on(server)?;
    }
    Ok(())
}

/// Load settings of one run.
#[derive(Clone, Copy)]
struct Load {
    conns: usize,
    secs: f64,
    max_requests: u64,
    chaos_ms: u64,
}

/// Real pool: restart latency (SIGKILL → ready) without and with load.
fn real_pool(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    names: Vec<String>,
    settings: Load,
    dedicated: bool,
) -> anyhow::Result<()> {
    let Load {
        conns,
        secs,
        max_requests,
        chaos_ms,
    } = settings;
    use pool::{Pool, PoolEvent, PoolOptions, WorkerSpec};

    let exe = env!("CARGO_BIN_EXE_worldpool-test-worker");
    let specs: Vec<WorkerSpec> = names
        .iter()
        .map(|n| {
            let mut spec = WorkerSpec::new(n.clone(), exe);
            spec.args = vec![
                "worker".into(),
                "--test-mode".into(),
                "idle".into(),
                "--world".into(),
                n.clone(),
            ];
            spec
        })
        .collect();
    let n = specs.len();
    let pool = server_rt.block_on(async { Pool::start(specs, PoolOptions::default()) })?;
    let handle = pool.handle();
    let shutdown = CancellationToken::new();
    let state = ApiState::new(Arc::new(handle.clone()), None, None);
    let bind: SocketAddr = "127.0.0.1:0".parse()?;
    let (addr, server) = if dedicated {
        println!(
            "-- API on its own runtime at lower priority (serve_dedicated), pool on the main runtime"
        );
        server_rt.block_on(api::serve_dedicated(
            bind,
            state,
            shutdown.clone(),
            api::DedicatedOptions::default(),
        ))?
    } else {
        println!("-- API and pool on the same runtime (serve)");
        server_rt.block_on(api::serve(bind, state, shutdown.clone()))?
    };
    server_rt.block_on(async {
        let start = Instant::now();
        while handle
            .workers()
            .iter()
            .filter(|w| w.state == pool::StateName::Running)
            .count()
            < n
        {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "workers did not all start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    })?;

    // Kill one healthy worker every chaos_ms for `secs`; time kill → ready.
    let chaos = |label: &'static str, with_load: bool| -> anyhow::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = handle.clone();
        let killer = {
            let stop = stop.clone();
            server_rt.spawn(async move {
                let mut events = handle.subscribe();
                let mut pending: HashMap<String, Instant> = HashMap::new();
                let mut latencies: Vec<Duration> = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_millis(chaos_ms.max(10)));
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) || !pending.is_empty() {
                    tokio::select! {
                        _ = tick.tick() => {
                            if stop.load(Ordering::Relaxed) {
                                // Drain: give pending restarts up to 10 s.
                                if pending.values().all(|t| t.elapsed() > Duration::from_secs(10)) {
                                    break;
                                }
                                continue;
                            }
                            let workers = handle.workers();
                            k = (k + 17) % workers.len();
                            let w = &workers[k];
                            let healthy = w.state == pool::StateName::Running
                                && w.uptime_s.is_some_and(|u| u > 2.0);
                            if let (true, Some(pid)) = (healthy && !pending.contains_key(&w.name), w.pid) {
                                pending.insert(w.name.clone(), Instant::now());
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid as i32),
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                            }
                        }
                        ev = events.recv() => match ev {
                            Ok(PoolEvent::Ready { worker, .. }) => {
                                if let Some(t) = pending.remove(&worker) {
                                    latencies.push(t.elapsed());
                                }
                            }
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => break,
                        }
                    }
                }
                latencies
            })
        };
        if with_load {
            let r = client_rt.block_on(load(addr, conns, secs, max_requests));
            report("GET /api/workers (real pool, kills going on)", &r);
        } else {
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        stop.store(true, Ordering::Relaxed);
        let mut lat = server_rt.block_on(killer)?;
        lat.sort_unstable();
        let ms = |p: f64| {
            lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "restart latency {label}: {} kills, kill→ready ms p50 {:.1} p99 {:.1} max {:.1}",
            lat.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0)
        );
        Ok(())
    };
    chaos("without HTTP load", false)?;
    chaos("under HTTP load", true)?;

    shutdown.cancel();
    server_rt.block_on(server)?;
    server_rt.block_on(pool.shutdown());
    Ok(())
}
