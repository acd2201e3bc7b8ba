//! Pool benchmarks (plain `harness = false` main that prints a table):
//!
//! - restart latency: `kill -9` of a worker → replacement exec'd (the
//!   pool's `started` event; `spawn()` returns after the exec), median and
//!   max over 30 kills, plus kill → replacement `ready`;
//! - time from `Pool::start` until 50 workers are `running`;
//! - RSS of a real `worldpool run` supervisor with 1 and 50 workers.
//!
//! Run: `cargo bench --bench pool`. Workers are the `worldpool` binary in
//! its `idle` test mode.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pool::{Pool, PoolEvent, PoolOptions, StateName, WorkerSpec};

const KILLS: usize = 30;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worldpool"))
}

fn test_worker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worldpool-test-worker"))
}

fn spec(name: &str) -> WorkerSpec {
    let mut s = WorkerSpec::new(name, test_worker());
    s.args = ["worker", "--world", name, "--test-mode", "idle"]
        .map(String::from)
        .to_vec();
    s.env.push(("WORLDPOOL_HEARTBEAT_MS".into(), "1000".into()));
    s.restart.min_uptime = Duration::ZERO;
    s.restart.max_restarts = 10_000;
    s.stop_grace = Duration::from_secs(2);
    s
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn restart_latency() -> (Vec<Duration>, Vec<Duration>) {
    let pool = Pool::start(vec![spec("w")], PoolOptions::default()).expect("pool starts");
    let h = pool.handle();
    let mut events = h.subscribe();
    let mut to_exec = Vec::new();
    let mut to_ready = Vec::new();
    // Wait for the first ready.
    loop {
        if let Ok(PoolEvent::Ready { .. }) = events.recv().await {
            break;
        }
    }
    for _ in 0..KILLS {
        let pid = h.worker("w").and_then(|w| w.pid).expect("running");
        let t0 = Instant::now();
        // SAFETY: kill(2) on a pid we own.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let mut exec = None;
        loop {
            match events.recv().await.expect("events") {
                PoolEvent::Started { pid: new, .. } if new != pid => exec = Some(t0.elapsed()),
                PoolEvent::Ready { pid: new, .. } if new != pid => {
                    to_ready.push(t0.elapsed());
                    break;
                }
                _ => {}
            }
        }
        to_exec.push(exec.expect("started before ready"));
    }
    pool.shutdown().await;
    to_exec.sort();
    to_ready.sort();
    (to_exec, to_ready)
}

async fn start_50() -> Duration {
    let specs: Vec<_> = (0..50).map(|i| spec(&format!("w{i}"))).collect();
    let t0 = Instant::now();
    let pool = Pool::start(specs, PoolOptions::default()).expect("pool starts");
    let h = pool.handle();
    loop {
        if h.workers().iter().all(|w| w.state == StateName::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let took = t0.elapsed();
    pool.shutdown().await;
    took
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn children(ppid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok())
                })
                == Some(ppid)
        })
        .count()
}

/// RSS of `worldpool run` with `n` idle workers, after they all run.
fn supervisor_rss(n: usize) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worlds.toml");
    let mut text = String::from("[api]\nenabled = false\n");
    for i in 0..n {
        text.push_str(&format!("[[worlds]]\nname = \"w{i}\"\nguilds = [\"G\"]\n"));
    }
    std::fs::write(&config, text).expect("config");
    let mut child = Command::new(bin())
        .args(["run", "--no-api", "--config"])
        .arg(&config)
        .env("WORLDPOOL_WORKER_PROGRAM", test_worker())
        .env("WORLDPOOL_TEST_WORKER_MODE", "idle")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worldpool run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while children(child.id()) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let a few samples and heartbeats go by.
    std::thread::sleep(Duration::from_millis(2500));
    let rss = vm_rss_kib(child.id()).unwrap_or(0);
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    rss
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (exec, ready) = rt.block_on(restart_latency());
    let t50 = rt.block_on(start_50());
    drop(rt);
    let rss1 = supervisor_rss(1);
    let rss50 = supervisor_rss(50);

    println!();
    println!("pool benchmark ({KILLS} kills; workers: worldpool-test-worker --test-mode idle)");
    println!("{:<48} {:>12} {:>12}", "measure", "median", "max");
    println!(
        "{:<48} {:>12} {:>12}",
        "restart: kill -9 -> replacement exec'd",
        ms(percentile(&exec, 0.5)),
        ms(*exec.last().expect("samples"))
    );
    println!(
        "{:<48} {:>12} {:>12}",
        "restart: kill -9 -> replacement ready",
        ms(percentile(&ready, 0.5)),
        ms(*ready.last().expect("samples"))
    );
    println!(
        "{:<48} {:>12}",
        "start 50 workers until all running",
        ms(t50)
    );
    println!(
        "{:<48} {:>9} KiB",
        "supervisor RSS (worldpool run), 1 worker", rss1
    );
    println!(
        "{:<48} {:>9} KiB",
        "supervisor RSS (worldpool run), 50 workers", rss50
    );
}
