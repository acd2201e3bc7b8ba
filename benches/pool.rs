//! Pool benchmarks (plain `harness = false` main that prints tables):
//!
//! 1. Restart latency at the kernel's clock: `worldpool run` with idle
//!    workers and a bash respawn loop (`while :; do W & wait $!; done`,
//!    the floor: fork + exec and nothing else) run side by side with the
//!    same worker program; their workers are SIGKILLed in turn and the
//!    netlink process connector times the old worker's exit → the
//!    replacement's exec (and the fork in between). Needs root; without it
//!    the bench says so and keeps the supervisor-side measures below.
//! 2. Restart latency from the supervisor's side (an in-process pool:
//!    kill → `started` event, kill → `ready`), and the time for 50
//!    workers to be running.
//! 3. Memory of a real `worldpool run` with 50 scraping workers against
//!    the demo site while the API serves requests: RSS and PSS of the
//!    supervisor and the workers (`worldpool bench --api` underneath).
//!
//! Run: `cargo bench --bench pool`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pool::{Pool, PoolEvent, PoolOptions, StateName, WorkerSpec};
use worldpool::bench::cnproc;
use worldpool::bench::report::mib;
use worldpool::bench::{BenchOptions, report::Results};
use worldpool::config::Mode;

/// Kills per side for the kernel-timed restarts.
const KERNEL_KILLS: usize = 30;
/// Kills for the supervisor-side measure.
const KILLS: usize = 30;
/// Workers of the supervisor in the kernel-timed measure.
const WORKERS: usize = 4;

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
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Live children of `ppid` (from /proc).
fn children(ppid: u32) -> Vec<u32> {
    pool::procfs::children(ppid)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

fn wait_children(ppid: u32, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let kids = children(ppid);
        if kids.len() >= n || Instant::now() > deadline {
            return kids;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kill and reap a child we started (and, for bash, its own child).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = self.0.id();
        let kids = children(pid);
        // SAFETY: kill(2) on our child; SIGTERM lets `worldpool run` stop
        // its workers.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        for k in kids {
            // SAFETY: kill(2) on the bash loop's worker.
            unsafe { libc::kill(k as i32, libc::SIGKILL) };
        }
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path, worlds: usize) -> PathBuf {
    let config = dir.join("worlds.toml");
    // Kills are deliberate: restart at once, never fatal.
    let mut text = String::from(
        "[pool]\nmin_uptime = \"50ms\"\nbackoff_initial = \"10ms\"\nbackoff_max = \"200ms\"\n\
         max_restarts = 1000000\nwindow = \"1s\"\nheartbeat_timeout = \"30s\"\n\
         [api]\nenabled = false\n",
    );
    for i in 0..worlds {
        text.push_str(&format!("[[worlds]]\nname = \"w{i}\"\nguilds = [\"G\"]\n"));
    }
    std::fs::write(&config, text).expect("config");
    config
}

/// Restarts timed by the kernel: `worldpool run` and the bash floor.
fn kernel_restarts() -> Option<(Vec<cnproc::Restart>, Vec<cnproc::Restart>)> {
    let mut conn = match cnproc::Connector::open() {
        Ok(c) => c,
        Err(e) => {
            println!(
                "\nrestart latency at the kernel's clock: not measured ({e}: the netlink process \
                 connector needs root); the supervisor-side measure below stands in for it"
            );
            return None;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), WORKERS);
    let supervisor = Reaped(
        Command::new(bin())
            .args(["run", "--no-api", "--config"])
            .arg(&config)
            .env("WORLDPOOL_WORKER_PROGRAM", test_worker())
            .env("WORLDPOOL_TEST_WORKER_MODE", "idle")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worldpool run"),
    );
    let floor = Reaped(
        Command::new("bash")
            .arg("-c")
            .arg("while :; do \"$@\" & wait $!; done")
            .arg("floor")
            .arg(test_worker())
            .args(["worker", "--world", "w0", "--config"])
            .arg(&config)
            .env("WORLDPOOL_TEST_WORKER_MODE", "idle")
            .env_remove("WORLDPOOL_CHANNEL_FD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash"),
    );
    let (sup, bash) = (supervisor.0.id(), floor.0.id());
    wait_children(sup, WORKERS);
    wait_children(bash, 1);
    // Let the workers reach `running` (min_uptime) before the first kill.
    std::thread::sleep(Duration::from_millis(500));
    let limit = Duration::from_secs(5);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..KERNEL_KILLS {
        // Alternate who goes first, so neither always follows the other.
        for side in [round % 2, 1 - round % 2] {
            let (parent, out) = if side == 0 {
                (sup, &mut ours)
            } else {
                (bash, &mut theirs)
            };
            let kids = wait_children(parent, 1);
            let Some(&victim) = kids.get(round % kids.len().max(1)) else {
                continue;
            };
            match cnproc::kill_and_measure(&mut conn, parent, victim, limit) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => eprintln!("no replacement seen within {limit:?}"),
                Err(e) => eprintln!("process connector: {e}"),
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    drop(floor);
    drop(supervisor);
    Some((ours, theirs))
}

fn restart_row(name: &str, r: &[cnproc::Restart]) {
    let mut total: Vec<Duration> = r.iter().map(|x| x.exit_to_exec).collect();
    let mut fork: Vec<Duration> = r.iter().map(|x| x.exit_to_fork).collect();
    let mut exec: Vec<Duration> = r.iter().map(|x| x.fork_to_exec).collect();
    total.sort();
    fork.sort();
    exec.sort();
    println!(
        "{:<34} {:>5} {:>11} {:>11} {:>11} {:>13} {:>13}",
        name,
        r.len(),
        ms(percentile(&total, 0.5)),
        ms(percentile(&total, 0.9)),
        ms(*total.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&fork, 0.5)),
        ms(percentile(&exec, 0.5)),
    );
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

/// `worldpool bench --modes pool --worlds N --api`, this build's binaries.
async fn memory(worlds: usize) -> Results {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = BenchOptions {
        worlds: Some(worlds),
        guilds: Some(3),
        players: Some(20),
        latency: Some(50),
        updates: Some(8),
        update_every: Some(Duration::from_secs(3)),
        modes: vec![Mode::Pool],
        api: true,
        supervisor_exe: Some(bin()),
        out: dir.path().to_path_buf(),
        ..BenchOptions::default()
    };
    worldpool::bench::run(options)
        .await
        .expect("worldpool bench runs");
    let text = std::fs::read_to_string(dir.path().join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results")
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let kernel = kernel_restarts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (exec, ready) = rt.block_on(restart_latency());
    let t50 = rt.block_on(start_50());
    let mem50 = rt.block_on(memory(50));
    let mem20 = rt.block_on(memory(20));
    drop(rt);

    if let Some((ours, floor)) = &kernel {
        println!();
        println!(
            "restart latency at the kernel's clock (netlink process connector; {KERNEL_KILLS} kill -9 \
             each, in turn; worker: worldpool-test-worker --test-mode idle)"
        );
        println!(
            "{:<34} {:>5} {:>11} {:>11} {:>11} {:>13} {:>13}",
            "exit -> replacement exec", "n", "median", "p90", "max", "exit->fork", "fork->exec"
        );
        restart_row(&format!("worldpool run ({WORKERS} workers)"), ours);
        restart_row("bash respawn loop (the floor)", floor);
        let med = |r: &[cnproc::Restart]| {
            let mut v: Vec<Duration> = r.iter().map(|x| x.exit_to_exec).collect();
            v.sort();
            percentile(&v, 0.5).as_secs_f64()
        };
        if med(floor) > 0.0 {
            println!("worldpool / floor (median): {:.2}x", med(ours) / med(floor));
        }
    }

    println!();
    println!(
        "pool benchmark, supervisor side ({KILLS} kills; an in-process pool, idle test workers)"
    );
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

    println!();
    println!(
        "memory of `worldpool run` with scraping workers and the API serving (worldpool bench \
         --modes pool --api, 3 guilds x 20 players, 50 ms latency, an update every 3 s)"
    );
    println!(
        "{:<8} {:>9} {:>9} {:>10} {:>11} {:>11} {:>9} {:>12} {:>12} {:>10}",
        "workers",
        "sup RSS",
        "sup PSS",
        "sup peak",
        "wrk RSS max",
        "wrk RSS avg",
        "wrk PSS",
        "all wrk RSS",
        "all wrk PSS",
        "rollup/pid"
    );
    for results in [&mem20, &mem50] {
        for m in &results.modes {
            let x = &m.memory;
            println!(
                "{:<8} {:>9} {:>9} {:>10} {:>11} {:>11} {:>9} {:>12} {:>12} {:>8.0}us",
                m.workers,
                mib(x.supervisor_rss_max_bytes),
                mib(x.supervisor_pss_max_bytes),
                mib(m.supervisor_peak_rss_bytes),
                mib(x.worker_rss_max_bytes),
                mib(x.worker_rss_mean_bytes),
                mib(x.worker_pss_mean_bytes),
                mib(x.workers_total_rss_mean_bytes),
                mib(x.workers_total_pss_mean_bytes),
                x.rollup_us_per_process
            );
        }
    }
}
