//! Tests: the pool with real worker processes (the `worldpool` binary in
//! its test modes), real signals, and `worldpool run` as a real process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pool::{ExitReason, Pool, PoolEvent, PoolHandle, PoolOptions, StateName, WorkerSpec};

use crate::helper::{bin, children_of, pid_alive, test_worker, wait_for, wait_for_async};

const LONG: Duration = Duration::from_secs(30);

/// A spec running the test worker in `MODE`, with short timers.
fn spec(name: &str, mode: &str) -> WorkerSpec {
    let mut s = WorkerSpec::new(name, test_worker());
    s.args = ["worker", "--world", name, "--test-mode", mode]
        .map(String::from)
        .to_vec();
    s.env
        .push((worldpool::worker::HEARTBEAT_ENV.into(), "100".into()));
    s.restart.min_uptime = Duration::from_millis(300);
    s.restart.backoff.initial = Duration::from_millis(20);
    s.restart.backoff.jitter = 0.0;
    s.restart.max_restarts = 100;
    s.stop_grace = Duration::from_secs(2);
    s.start_timeout = Some(Duration::from_secs(10));
    s.heartbeat_timeout = Some(Duration::from_secs(5));
    s
}

fn options() -> PoolOptions {
    PoolOptions {
        sample_interval: Duration::from_millis(200),
        ..PoolOptions::default()
    }
}

async fn wait_running(h: &PoolHandle, name: &str) -> u32 {
    wait_for_async(&format!("{name} running"), LONG, || async {
        let w = h.worker(name)?;
        (w.state == StateName::Running).then_some(w.pid?)
    })
    .await
}

/// Stop the pool and check that none of `pids` is left, not even as a zombie.
async fn shutdown_clean(pool: Pool, pids: &[u32]) {
    pool.shutdown().await;
    for pid in pids {
        assert!(!pid_alive(*pid), "worker {pid} survived the shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_is_replaced_at_once_and_classified_crashed() {
    let mut s = spec("w", "idle");
    s.restart.min_uptime = Duration::ZERO; // every run is healthy: no backoff
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let old = wait_running(&h, "w").await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let new = wait_for_async("a new pid running", LONG, || async {
        let w = h.worker("w")?;
        (w.state == StateName::Running && w.pid != Some(old)).then_some(w.pid?)
    })
    .await;
    assert!(pid_alive(new));
    assert!(!pid_alive(old));
    let w = h.worker("w").expect("worker exists");
    assert_eq!(w.restarts, 1);
    let exit = w.last_exit.expect("an exit was recorded");
    assert_eq!(exit.reason, ExitReason::Crashed);
    assert_eq!(exit.signal, Some(9));
    assert_eq!(w.exits_by_reason.get("crashed"), Some(&1));
    shutdown_clean(pool, &[new]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_is_memory_limit_and_others_are_untouched() {
    let mut hog = spec("hog", "alloc");
    hog.limits.memory = Some(64 << 20);
    let mut calm = spec("calm", "idle");
    calm.limits.memory = Some(64 << 20);
    let pool = Pool::start(vec![hog, calm], options()).expect("pool starts");
    let h = pool.handle();
    let calm_pid = wait_running(&h, "calm").await;
    let exit = wait_for_async("hog exits with memory_limit", LONG, || async {
        h.worker("hog")?.last_exit
    })
    .await;
    assert_eq!(
        exit.reason,
        ExitReason::MemoryLimit,
        "exit {exit:?} (code 86 expected)"
    );
    assert_eq!(exit.code, Some(pool::exit::EXIT_OUT_OF_MEMORY));
    // Restarted (it keeps hitting the limit, so it may be in backoff).
    wait_for_async("hog restarted", LONG, || async {
        let w = h.worker("hog")?;
        (w.restarts >= 1 && w.pid.is_some()).then_some(())
    })
    .await;
    let calm = h.worker("calm").expect("calm exists");
    assert_eq!(calm.pid, Some(calm_pid), "calm was restarted");
    assert_eq!(calm.restarts, 0);
    assert_eq!(calm.state, StateName::Running);
    assert!(calm.last_exit.is_none());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_spinner_hits_cpu_limit() {
    let mut s = spec("spin", "spin");
    s.limits.cpu_time = Some(Duration::from_secs(1));
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let exit = wait_for_async("spinner exits", LONG, || async {
        h.worker("spin")?.last_exit
    })
    .await;
    assert_eq!(exit.reason, ExitReason::CpuLimit, "exit {exit:?}");
    assert!(
        matches!(exit.signal, Some(24) | Some(9)),
        "SIGXCPU or SIGKILL expected: {exit:?}"
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_worker_is_killed_as_hung_and_restarted() {
    let mut s = spec("mute", "no-heartbeat");
    s.heartbeat_timeout = Some(Duration::from_millis(500));
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let first = wait_running(&h, "mute").await;
    let exit = wait_for_async("mute exits", LONG, || async { h.worker("mute")?.last_exit }).await;
    assert_eq!(exit.reason, ExitReason::Hung, "exit {exit:?}");
    assert_eq!(exit.signal, Some(9));
    assert!(!pid_alive(first));
    wait_for_async("mute restarted", LONG, || async {
        let w = h.worker("mute")?;
        (w.restarts >= 1 && w.pid.is_some_and(|p| p != first)).then_some(())
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_start_backs_off_longer_each_time_then_goes_fatal() {
    let mut s = spec("bad", "fail-start");
    s.restart.min_uptime = Duration::from_secs(5);
    s.restart.backoff.initial = Duration::from_millis(50);
    s.restart.backoff.multiplier = 2.0;
    s.restart.max_restarts = 3;
    s.restart.fatal_retry = Some(Duration::from_secs(300));
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let mut events = h.subscribe();
    let mut delays = Vec::new();
    let mut last_exit_at = None;
    let deadline = Instant::now() + LONG;
    let fatal_next = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .expect("events before the deadline")
            .expect("event stream open");
        match ev {
            PoolEvent::Exited { exit, .. } => {
                assert_eq!(exit.reason, ExitReason::Exited);
                assert_eq!(exit.code, Some(1));
                last_exit_at = Some(exit.at);
            }
            PoolEvent::Backoff {
                next_restart_at, ..
            } => {
                let at = last_exit_at.expect("an exit before each backoff");
                delays.push((next_restart_at - at).num_milliseconds());
            }
            PoolEvent::Fatal {
                next_restart_at,
                reason,
                ..
            } => {
                assert!(reason.contains("crash loop"), "{reason}");
                break next_restart_at;
            }
            _ => {}
        }
    };
    assert_eq!(delays.len(), 3, "backoff delays {delays:?}");
    for pair in delays.windows(2) {
        assert!(pair[1] > pair[0], "delays must grow: {delays:?}");
    }
    assert!(
        (40..=80).contains(&delays[0]),
        "first delay ~50ms: {delays:?}"
    );
    let next = fatal_next.expect("fatal has a next_restart_at");
    let in_s = (next - chrono::Utc::now()).num_seconds();
    assert!((250..=300).contains(&in_s), "retry in {in_s}s");
    let w = h.worker("bad").expect("exists");
    assert_eq!(w.state, StateName::Fatal);
    assert_eq!(w.next_restart_at, Some(next));
    assert!(w.fatal_reason.is_some());
    assert!(w.pid.is_none());
    // A fatal worker can still be stopped at once.
    assert_eq!(h.stop("bad").await.expect("stop"), StateName::Stopped);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_workers_all_reach_running() {
    let specs: Vec<_> = (0..50).map(|i| spec(&format!("w{i}"), "idle")).collect();
    let started = Instant::now();
    let pool = Pool::start(specs, options()).expect("pool starts");
    let h = pool.handle();
    let pids = wait_for_async("50 workers running", Duration::from_secs(60), || async {
        let ws = h.workers();
        ws.iter()
            .all(|w| w.state == StateName::Running)
            .then(|| ws.iter().filter_map(|w| w.pid).collect::<Vec<_>>())
    })
    .await;
    eprintln!("50 workers running after {:?}", started.elapsed());
    assert_eq!(pids.len(), 50);
    for p in &pids {
        assert!(pid_alive(*p));
    }
    shutdown_clean(pool, &pids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_restart_commands() {
    let pool = Pool::start(vec![spec("c", "idle")], options()).expect("pool starts");
    let h = pool.handle();
    let first = wait_running(&h, "c").await;
    assert_eq!(h.stop("c").await.expect("stop"), StateName::Stopped);
    assert!(!pid_alive(first));
    let w = h.worker("c").expect("exists");
    assert_eq!(
        w.last_exit.expect("exit").reason,
        ExitReason::Stopped,
        "a stop is not a crash"
    );
    assert_eq!(h.start("c").await.expect("start"), StateName::Starting);
    let second = wait_running(&h, "c").await;
    assert_ne!(first, second);
    let state = h.restart("c").await.expect("restart");
    assert!(matches!(state, StateName::Starting | StateName::Running));
    let third = wait_running(&h, "c").await;
    assert_ne!(second, third);
    assert!(matches!(
        h.start("nope").await,
        Err(pool::Error::UnknownWorker(_))
    ));
    shutdown_clean(pool, &[third]).await;
    assert!(matches!(h.start("c").await, Err(pool::Error::ShuttingDown)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_limit_is_a_clear_error() {
    // RLIMIT_NOFILE above the kernel's nr_open is refused even for root.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("nr_open readable")
        .trim()
        .parse()
        .expect("a number");
    let mut s = spec("lim", "idle");
    s.limits.open_files = Some(nr_open + 1);
    s.restart.mode = pool::RestartMode::Never;
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    wait_for_async("spawn refused", LONG, || async {
        let w = h.worker("lim")?;
        (w.state == StateName::Stopped && w.consecutive_failures > 0).then_some(())
    })
    .await;
    let error = h.spawn_error("lim").expect("the spawn error is kept");
    assert!(
        error.contains("lim") && error.contains("RLIMIT_NOFILE"),
        "error names worker and limit: {error}"
    );
    pool.shutdown().await;
}

/// A worker that is a shell script talking on fd 3.
fn sh_spec(name: &str, script: &str) -> WorkerSpec {
    let mut s = WorkerSpec::new(name, "/bin/sh");
    s.args = vec!["-c".into(), script.into()];
    s.heartbeat_timeout = None;
    s.stop_grace = Duration::from_millis(500);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_messages_are_merged_into_the_status() {
    let script = r#"
printf 'not json\n' >&3
printf '{"type":"ready"}\n' >&3
printf '{"type":"report","phase":"scraping","rows_last_run":7,"last_error":"boom"}\n' >&3
printf '{"type":"event","kind":"run_finished","data":{"rows":7}}\n' >&3
printf '{"type":"report","last_error":""}\n' >&3
printf '{"type":"heartbeat"}\n' >&3
printf '{"type":"event","kind":"done"}\n' >&3
exec sleep 1000
"#;
    let pool = Pool::start(
        vec![sh_spec("talk", script)],
        PoolOptions {
            sample_interval: Duration::from_millis(100),
            ..PoolOptions::default()
        },
    )
    .expect("pool starts");
    let h = pool.handle();
    let mut events = h.subscribe();
    let mut seen = Vec::new();
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .expect("events in time")
            .expect("stream open");
        let done = matches!(&ev, PoolEvent::Custom { kind, .. } if kind == "done");
        seen.push(ev);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, PoolEvent::Phase { phase, .. } if phase == "scraping")),
        "phase event: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, PoolEvent::Custom { kind, data, .. }
            if kind == "run_finished" && data["rows"] == 7)),
        "custom event: {seen:?}"
    );
    let w = h.worker("talk").expect("exists");
    assert_eq!(w.state, StateName::Running, "ready moved it to running");
    assert_eq!(w.report.phase.as_deref(), Some("scraping"));
    assert_eq!(w.report.rows_last_run, Some(7));
    assert_eq!(w.report.last_error, None, "an empty last_error clears it");
    assert!(w.last_heartbeat.is_some());
    // The sampler fills in RSS for the live process.
    wait_for_async("rss sampled", LONG, || async {
        h.worker("talk")?.rss_bytes.filter(|b| *b > 0)
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_reaches_the_whole_process_group() {
    // The worker's own child ignores SIGTERM: SIGKILL of the group after
    // stop_grace must still take it.
    let script = r#"
sh -c 'trap "" TERM; exec sleep 1000' &
printf '{"type":"event","kind":"child","data":{"pid":%d}}\n' $! >&3
printf '{"type":"ready"}\n' >&3
wait
"#;
    let pool = Pool::start(vec![sh_spec("group", script)], options()).expect("pool starts");
    let h = pool.handle();
    let mut events = h.subscribe();
    let grandchild = loop {
        match tokio::time::timeout(LONG, events.recv()).await {
            Ok(Ok(PoolEvent::Custom { kind, data, .. })) if kind == "child" => {
                break data["pid"].as_u64().expect("pid") as u32;
            }
            Ok(Ok(_)) => {}
            other => panic!("no child event: {other:?}"),
        }
    };
    let leader = wait_running(&h, "group").await;
    assert!(pid_alive(grandchild));
    assert_eq!(h.stop("group").await.expect("stop"), StateName::Stopped);
    assert!(!pid_alive(leader));
    wait_for(
        "the worker's own child gone",
        Duration::from_secs(2),
        || (!pid_alive(grandchild)).then_some(()),
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backoff_never_delays_stop_or_shutdown() {
    let mut s = spec("slow", "fail-start");
    s.restart.min_uptime = Duration::from_secs(5);
    s.restart.backoff.initial = Duration::from_secs(60);
    s.restart.backoff.max = Duration::from_secs(60);
    let mut t = s.clone();
    t.name = "slow2".into();
    t.args[2] = "slow2".into();
    let pool = Pool::start(vec![s, t], options()).expect("pool starts");
    let h = pool.handle();
    for name in ["slow", "slow2"] {
        wait_for_async(&format!("{name} in backoff"), LONG, || async {
            (h.worker(name)?.state == StateName::Backoff).then_some(())
        })
        .await;
    }
    let t0 = Instant::now();
    assert_eq!(h.stop("slow").await.expect("stop"), StateName::Stopped);
    let t1 = Instant::now();
    pool.shutdown().await;
    assert!(t1 - t0 < Duration::from_secs(1), "stop took {:?}", t1 - t0);
    assert!(
        t1.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        t1.elapsed()
    );
}

// ---------------------------------------------------------------------------
// `worldpool run` as a real process.

struct Supervisor {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_supervisor(worlds: &[&str], test_mode: &str, stop_grace: &str) -> Supervisor {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worlds.toml");
    let mut text = format!(
        "[pool]\nmin_uptime = \"300ms\"\nstop_grace = \"{stop_grace}\"\n\
         heartbeat_timeout = \"5s\"\nstart_timeout = \"10s\"\n\
         [api]\nenabled = false\n"
    );
    for w in worlds {
        text.push_str(&format!("[[worlds]]\nname = \"{w}\"\nguilds = [\"G\"]\n"));
    }
    std::fs::write(&config, text).expect("config written");
    let log = dir.path().join("supervisor.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(bin())
        .args(["--log-json", "run", "--no-api", "--config"])
        .arg(&config)
        .env(worldpool::supervise::WORKER_PROGRAM_ENV, test_worker())
        .env("WORLDPOOL_TEST_WORKER_MODE", test_mode)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("worldpool run starts");
    Supervisor {
        child,
        log,
        _dir: dir,
    }
}

/// The JSON log lines' `fields` objects.
fn log_fields(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("fields").cloned())
        .collect()
}

fn field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// Wait until every world logged "running"; returns the workers' pids.
fn wait_workers_running(sup: &Supervisor, worlds: &[&str]) -> Vec<u32> {
    wait_for("every worker running (supervisor log)", LONG, || {
        let fields = log_fields(&sup.log);
        let mut pids = Vec::new();
        for w in worlds {
            let pid = fields
                .iter()
                .filter(|f| field(f, "message") == Some("running") && field(f, "worker") == Some(w))
                .filter_map(|f| f.get("pid").and_then(|p| p.as_u64()))
                .next_back()?;
            pids.push(pid as u32);
        }
        Some(pids)
    })
}

#[test]
fn sigkill_of_the_supervisor_leaves_no_worker_behind() {
    // A ignores SIGTERM and does not watch its channel: only PDEATHSIG
    // can end it. The others also exit on their own at channel EOF.
    let worlds = ["A", "B", "C"];
    let mut sup = run_supervisor(&worlds, "A=stubborn,*=idle", "10s");
    let pids = wait_workers_running(&sup, &worlds);
    let sup_pid = sup.child.id();
    let mut children = children_of(sup_pid);
    children.sort();
    let mut sorted = pids.clone();
    sorted.sort();
    assert_eq!(
        children, sorted,
        "the workers are the supervisor's children"
    );
    sup.child.kill().expect("SIGKILL the supervisor");
    let killed = Instant::now();
    sup.child.wait().expect("reaped");
    wait_for("every worker gone", Duration::from_secs(1), || {
        pids.iter().all(|p| !pid_alive(*p)).then_some(())
    });
    assert!(killed.elapsed() < Duration::from_secs(1));
}

#[test]
fn sigterm_of_the_supervisor_stops_every_worker_and_exits_0() {
    let worlds = ["A", "B"];
    let mut sup = run_supervisor(&worlds, "B=ignore-term,*=idle", "1s");
    let pids = wait_workers_running(&sup, &worlds);
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the supervisor");
    let status = wait_for("the supervisor exits", LONG, || {
        sup.child.try_wait().expect("try_wait")
    });
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    // B ignores SIGTERM: the supervisor waited stop_grace, then SIGKILLed it.
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let fields = log_fields(&sup.log);
    let exit_of = |w: &str| {
        fields
            .iter()
            .find(|f| field(f, "message") == Some("worker exited") && field(f, "worker") == Some(w))
            .cloned()
            .unwrap_or_else(|| panic!("no exit logged for {w}"))
    };
    let a = exit_of("A");
    assert_eq!(field(&a, "code"), Some("Some(0)"), "A: {a}");
    assert_eq!(field(&a, "reason"), Some("stopped"));
    assert!(
        fields.iter().any(|f| field(f, "worker") == Some("A")
            && field(f, "message").is_some_and(|m| m.contains("SIGTERM"))),
        "A logged that it got SIGTERM"
    );
    let b = exit_of("B");
    assert_eq!(field(&b, "signal"), Some("Some(9)"), "B: {b}");
    assert_eq!(field(&b, "reason"), Some("stopped"));
    // Reaped by the supervisor: not even a zombie is left.
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} left behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_with_invalid_utf8_and_endless_lines_is_drained() {
    // 300 KB of invalid UTF-8 with no newline on stdout and on stderr: far
    // more than a pipe holds. If the supervisor stopped reading (as a plain
    // `lines()` does at the first invalid byte), the worker would block on
    // write and never write its marker.
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("drained");
    let script = format!(
        r#"
printf '{{"type":"ready"}}\n' >&3
head -c 300000 /dev/zero | tr '\0' '\377'
head -c 300000 /dev/zero | tr '\0' '\376' >&2
echo
echo "WARN still talking" >&2
head -c 300000 /dev/zero | tr '\0' 'x'
echo
touch '{}'
exec sleep 1000
"#,
        marker.display()
    );
    let pool = Pool::start(vec![sh_spec("noisy", &script)], options()).expect("pool starts");
    let h = pool.handle();
    let pid = wait_running(&h, "noisy").await;
    wait_for("the worker got all its output out", LONG, || {
        marker.exists().then_some(())
    });
    assert_eq!(h.worker("noisy").expect("status").pid, Some(pid));
    shutdown_clean(pool, &[pid]).await;
}
