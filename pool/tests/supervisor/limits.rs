//! Resource limits: hit at run time, or refused by the OS at spawn time.

use std::time::Duration;

use pool::{ExitReason, Pool, PoolEvent, StateName};

use crate::helper::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_is_memory_limit_and_others_are_untouched() {
    let mut hog = spec("hog", "alloc");
    hog.limits.memory = Some(64 << 20);
    let mut calm = spec("calm", "idle");
    calm.limits.memory = Some(64 << 20);
    let pool = Pool::start(vec![hog, calm], options()).expect("pool starts");
    let h = pool.handle();
    let calm_pid = wait_running(&h, "calm").await;
    let exit = wait_for("hog exits with memory_limit", LONG, || async {
        h.worker("hog")?.last_exit
    })
    .await;
    assert_eq!(exit.reason, ExitReason::MemoryLimit, "exit {exit:?}");
    assert_eq!(exit.code, Some(pool::exit::EXIT_OUT_OF_MEMORY));
    // Restarted (it keeps hitting the limit, so it may be in backoff).
    wait_for("hog restarted", LONG, || async {
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
    let exit = wait_for("spinner exits", LONG, || async {
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

/// RLIMIT_NOFILE above the kernel's nr_open is refused even for root.
fn refused_open_files() -> u64 {
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("nr_open readable")
        .trim()
        .parse()
        .expect("a number");
    nr_open + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_limit_backs_off_then_goes_fatal_with_the_reason_everywhere() {
    let mut s = spec("lim", "idle");
    s.limits.open_files = Some(refused_open_files());
    s.restart.backoff.initial = Duration::from_millis(10);
    s.restart.max_restarts = 2;
    s.restart.fatal_retry = Some(Duration::from_secs(600));
    let (pool, h, mut events) = start_subscribed(vec![s], options()).await;
    let (pid, exit) = next_event(&mut events, "a spawn_failed exit", LONG, |ev| match ev {
        PoolEvent::Exited { pid, exit, .. } => Some((*pid, exit.clone())),
        _ => None,
    })
    .await;
    assert_eq!(pid, None, "no process was spawned");
    assert_eq!(exit.reason, ExitReason::SpawnFailed);
    assert_eq!((exit.code, exit.signal), (None, None));
    let error = exit.error.expect("the OS error is kept");
    assert!(
        error.contains("lim") && error.contains("RLIMIT_NOFILE"),
        "error names worker and limit: {error}"
    );
    // Each failure is announced, and each backoff is due after its failure.
    let mut last_exit_at = exit.at;
    let mut backoffs = 0;
    let (reason, next) = next_event(&mut events, "fatal", LONG, |ev| match ev {
        PoolEvent::Exited { exit, .. } => {
            assert_eq!(exit.reason, ExitReason::SpawnFailed);
            last_exit_at = exit.at;
            None
        }
        PoolEvent::Backoff {
            next_restart_at, ..
        } => {
            assert!(
                *next_restart_at > last_exit_at,
                "backoff due after its failure"
            );
            backoffs += 1;
            None
        }
        PoolEvent::Fatal {
            reason,
            next_restart_at,
            ..
        } => Some((reason.clone(), *next_restart_at)),
        _ => None,
    })
    .await;
    assert_eq!(backoffs, 2, "two backoffs before fatal");
    assert!(
        reason.contains("spawn_failed") && reason.contains("RLIMIT_NOFILE"),
        "fatal reason says why: {reason}"
    );
    let next = next.expect("fatal retries later");
    let w = h.worker("lim").expect("exists");
    assert_eq!(w.state, StateName::Fatal);
    assert_eq!(w.fatal_reason.as_deref(), Some(reason.as_str()));
    assert_eq!(w.next_restart_at, Some(next));
    assert_eq!(w.exits_by_reason.get("spawn_failed"), Some(&3));
    assert_eq!(w.consecutive_failures, 3);
    let last = w.last_exit.expect("last exit");
    assert_eq!(last.reason, ExitReason::SpawnFailed);
    assert!(w.pid.is_none());
    // Stop is immediate; a manual start tries again (and fails again).
    assert_eq!(h.stop("lim").await.expect("stop"), StateName::Stopped);
    assert_eq!(h.start("lim").await.expect("start"), StateName::Backoff);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_limit_with_restart_never_stops_with_the_reason() {
    let mut s = spec("lim", "idle");
    s.limits.open_files = Some(refused_open_files());
    s.restart.mode = pool::RestartMode::Never;
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let w = wait_for("spawn refused", LONG, || async {
        let w = h.worker("lim")?;
        (w.state == StateName::Stopped && w.last_exit.is_some()).then_some(w)
    })
    .await;
    let exit = w.last_exit.expect("exit");
    assert_eq!(exit.reason, ExitReason::SpawnFailed);
    assert!(exit.error.is_some_and(|e| e.contains("RLIMIT_NOFILE")));
    assert_eq!(w.consecutive_failures, 1);
    pool.shutdown().await;
}
