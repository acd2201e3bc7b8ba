//! Shared fixtures: the test worker, specs, waiting with a deadline.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pool::{Pool, PoolEvent, PoolHandle, PoolOptions, StateName, WorkerSpec};
use tokio::sync::broadcast;

/// Generous deadline for anything that should happen quickly.
pub const LONG: Duration = Duration::from_secs(30);

/// The `test_worker` example, which cargo builds with the tests
/// (`target/<profile>/examples/`, next to this binary's `deps/`).
pub fn test_worker() -> PathBuf {
    example("test_worker")
}

/// An example of the pool crate, built with the tests.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let program = profile_dir.join("examples").join(name);
    assert!(
        program.exists(),
        "{} is missing: run `cargo test -p pool` (it builds the examples) or \
         `cargo build -p pool --example {name}`",
        program.display()
    );
    program
}

/// A spec running `test_worker MODE`, with short timers.
pub fn spec(name: &str, mode: &str) -> WorkerSpec {
    let mut s = WorkerSpec::new(name, test_worker());
    s.args = vec![mode.to_string()];
    s.env.push(("POOL_TEST_HEARTBEAT_MS".into(), "100".into()));
    s.restart.min_uptime = Duration::from_millis(300);
    s.restart.backoff.initial = Duration::from_millis(20);
    s.restart.backoff.jitter = 0.0;
    s.restart.max_restarts = 100;
    s.stop_grace = Duration::from_secs(2);
    s.start_timeout = Some(Duration::from_secs(10));
    s.heartbeat_timeout = Some(Duration::from_secs(5));
    s
}

/// A worker that is a shell script talking on fd 3.
pub fn sh_spec(name: &str, script: &str) -> WorkerSpec {
    let mut s = WorkerSpec::new(name, "/bin/sh");
    s.args = vec!["-c".into(), script.into()];
    s.heartbeat_timeout = None;
    s.stop_grace = Duration::from_millis(500);
    s
}

pub fn options() -> PoolOptions {
    PoolOptions {
        sample_interval: Duration::from_millis(200),
        ..PoolOptions::default()
    }
}

/// A pool whose event subscription exists before any worker starts, so no
/// event is missed.
pub async fn start_subscribed(
    specs: Vec<WorkerSpec>,
    options: PoolOptions,
) -> (Pool, PoolHandle, broadcast::Receiver<PoolEvent>) {
    let pool = Pool::start(vec![], options).expect("pool starts");
    let h = pool.handle();
    let events = h.subscribe();
    for s in specs {
        h.add(s).await.expect("worker added");
    }
    (pool, h, events)
}

/// Poll `cond` until it returns `Some`, or panic with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The next event for which `pick` returns `Some`, within `deadline`.
pub async fn next_event<T>(
    events: &mut broadcast::Receiver<PoolEvent>,
    what: &str,
    deadline: Duration,
    mut pick: impl FnMut(&PoolEvent) -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(ev)) => {
                if let Some(v) = pick(&ev) {
                    return v;
                }
            }
            Ok(Err(e)) => panic!("event stream failed while waiting for {what}: {e}"),
            Err(_) => panic!("timed out after {deadline:?} waiting for {what}"),
        }
    }
}

/// Wait until `name` is running; its pid.
pub async fn wait_running(h: &PoolHandle, name: &str) -> u32 {
    wait_for(&format!("{name} running"), LONG, || async {
        let w = h.worker(name)?;
        (w.state == StateName::Running).then_some(w.pid?)
    })
    .await
}

/// Whether a pid exists and is not a zombie (reads /proc).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// Wait until `pid` is gone.
pub async fn wait_gone(what: &str, pid: u32, deadline: Duration) {
    wait_for(what, deadline, || async { (!pid_alive(pid)).then_some(()) }).await
}

/// Whether `pid` exists at all, even as a zombie.
pub fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// SIGKILL one process.
pub fn kill_9(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
}

/// Stop the pool and check that none of `pids` is left, not even as a zombie.
pub async fn shutdown_clean(pool: Pool, pids: &[u32]) {
    pool.shutdown().await;
    for pid in pids {
        assert!(!pid_exists(*pid), "worker {pid} survived the shutdown");
    }
}
