//! Starting, restarting, backing off, going fatal, stopping.

use std::time::{Duration, Instant};

use pool::{ExitReason, Pool, PoolEvent, StateName};

use crate::helper::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_is_replaced_at_once_and_classified_crashed() {
    let mut s = spec("w", "idle");
    s.restart.min_uptime = Duration::ZERO; // every run is healthy: no backoff
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let old = wait_running(&h, "w").await;
    kill_9(old);
    let new = wait_for("a new pid running", LONG, || async {
        let w = h.worker("w")?;
        (w.state == StateName::Running && w.pid != Some(old)).then_some(w.pid?)
    })
    .await;
    assert!(pid_alive(new));
    assert!(!pid_exists(old), "the old worker was reaped");
    let w = h.worker("w").expect("worker exists");
    assert_eq!(w.restarts, 1);
    let exit = w.last_exit.expect("an exit was recorded");
    assert_eq!(exit.reason, ExitReason::Crashed);
    assert_eq!(exit.signal, Some(9));
    assert_eq!(w.exits_by_reason.get("crashed"), Some(&1));
    shutdown_clean(pool, &[new]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_worker_is_killed_as_hung_and_restarted() {
    let mut s = spec("mute", "no-heartbeat");
    s.heartbeat_timeout = Some(Duration::from_millis(500));
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let first = wait_running(&h, "mute").await;
    let exit = wait_for("mute exits", LONG, || async { h.worker("mute")?.last_exit }).await;
    assert_eq!(exit.reason, ExitReason::Hung, "exit {exit:?}");
    assert_eq!(exit.signal, Some(9));
    assert!(!pid_alive(first));
    wait_for("mute restarted", LONG, || async {
        let w = h.worker("mute")?;
        (w.restarts >= 1 && w.pid.is_some_and(|p| p != first)).then_some(())
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ready_within_start_timeout_is_hung() {
    // `fail-start` never gets to ready; `stubborn` with a start timeout
    // shorter than its start would do, but a shell that never says ready
    // is the plainest.
    let mut s = sh_spec("slow", "exec sleep 1000");
    s.start_timeout = Some(Duration::from_millis(300));
    s.restart.mode = pool::RestartMode::Never;
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let exit = wait_for("slow killed", LONG, || async {
        h.worker("slow")?.last_exit
    })
    .await;
    assert_eq!(exit.reason, ExitReason::Hung, "exit {exit:?}");
    let w = h.worker("slow").expect("exists");
    assert_eq!(w.state, StateName::Stopped, "restart mode never");
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
    let (pool, h, mut events) = start_subscribed(vec![s], options()).await;
    let mut delays = Vec::new();
    let mut last_exit_at = None;
    let deadline = Instant::now() + LONG;
    let (fatal_next, reason) = loop {
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
            } => break (next_restart_at, reason),
            _ => {}
        }
    };
    assert!(reason.contains("crash loop"), "{reason}");
    assert!(reason.contains("exited with status 1"), "{reason}");
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
    assert_eq!(w.fatal_reason.as_deref(), Some(reason.as_str()));
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
    let pids = wait_for("50 workers running", Duration::from_secs(60), || async {
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
    assert!(!pid_exists(first));
    let w = h.worker("c").expect("exists");
    let exit = w.last_exit.expect("exit");
    assert_eq!(exit.reason, ExitReason::Stopped, "a stop is not a crash");
    assert_eq!(exit.code, Some(0), "the worker exits 0 on SIGTERM");
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
async fn commands_are_queued_and_run_one_at_a_time() {
    // A stop that takes its whole grace (the worker ignores SIGTERM), with
    // a start queued behind it: the stop answers `stopped`, then the start
    // runs and answers `starting`.
    let mut s = spec("q", "ignore-term");
    s.stop_grace = Duration::from_millis(300);
    let pool = Pool::start(vec![s], options()).expect("pool starts");
    let h = pool.handle();
    let first = wait_running(&h, "q").await;
    let (stop, start) = tokio::join!(h.stop("q"), async {
        // Queued after the stop (the stop is sent first by join's order).
        tokio::task::yield_now().await;
        h.start("q").await
    });
    assert_eq!(stop.expect("stop"), StateName::Stopped);
    assert_eq!(start.expect("start"), StateName::Starting);
    let w = h.worker("q").expect("exists");
    let exit = w.last_exit.expect("exit");
    assert_eq!(exit.reason, ExitReason::Stopped);
    assert_eq!(exit.signal, Some(9), "SIGKILL after the grace");
    let second = wait_running(&h, "q").await;
    assert_ne!(first, second);
    pool.shutdown().await;
}

/// A backoff no test would wait for.
const BACKOFF: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backoff_never_delays_stop_or_shutdown() {
    let mut s = spec("slow", "fail-start");
    s.restart.min_uptime = Duration::from_secs(5);
    s.restart.backoff.initial = BACKOFF;
    s.restart.backoff.max = BACKOFF;
    let mut t = s.clone();
    t.name = "slow2".into();
    let pool = Pool::start(vec![s, t], options()).expect("pool starts");
    let h = pool.handle();
    for name in ["slow", "slow2"] {
        wait_for(&format!("{name} in backoff"), LONG, || async {
            (h.worker(name)?.state == StateName::Backoff).then_some(())
        })
        .await;
    }
    let t0 = Instant::now();
    assert_eq!(h.stop("slow").await.expect("stop"), StateName::Stopped);
    let t1 = Instant::now();
    pool.shutdown().await;
    // Neither waited for the hour-long backoff to end.
    assert!(t1 - t0 < BACKOFF / 60, "stop took {:?}", t1 - t0);
    assert!(
        t1.elapsed() < BACKOFF / 60,
        "shutdown took {:?}",
        t1.elapsed()
    );
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
    let (pool, h, mut events) = start_subscribed(vec![sh_spec("group", script)], options()).await;
    let grandchild = next_event(&mut events, "the child's pid", LONG, |ev| match ev {
        PoolEvent::Custom { kind, data, .. } if kind == "child" => {
            data["pid"].as_u64().map(|p| p as u32)
        }
        _ => None,
    })
    .await;
    let leader = wait_running(&h, "group").await;
    assert!(pid_alive(grandchild));
    assert_eq!(h.stop("group").await.expect("stop"), StateName::Stopped);
    assert!(!pid_exists(leader));
    wait_gone(
        "the worker's own child gone",
        grandchild,
        Duration::from_secs(2),
    )
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_exits_takes_its_group_with_it() {
    // The leader exits on its own and leaves a child behind that ignores
    // SIGTERM: the pool SIGKILLs the group while the leader is a zombie
    // (its pid still pins the group id), then reaps it.
    let script = r#"
sh -c 'trap "" TERM; exec sleep 1000' &
printf '{"type":"event","kind":"child","data":{"pid":%d}}\n' $! >&3
printf '{"type":"ready"}\n' >&3
exit 3
"#;
    let mut s = sh_spec("leaver", script);
    s.restart.mode = pool::RestartMode::Never;
    let (pool, h, mut events) = start_subscribed(vec![s], options()).await;
    let orphan = next_event(&mut events, "the child's pid", LONG, |ev| match ev {
        PoolEvent::Custom { kind, data, .. } if kind == "child" => {
            data["pid"].as_u64().map(|p| p as u32)
        }
        _ => None,
    })
    .await;
    let exit = wait_for("the leader's exit", LONG, || async {
        h.worker("leaver")?.last_exit
    })
    .await;
    assert_eq!((exit.reason, exit.code), (ExitReason::Exited, Some(3)));
    wait_gone(
        "the left-behind child killed",
        orphan,
        Duration::from_secs(2),
    )
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_takes_over_a_restart_in_progress() {
    // The restart waits out the grace (SIGTERM ignored); a shutdown that
    // arrives meanwhile must not let it spawn a new process.
    let mut s = spec("r", "ignore-term");
    s.stop_grace = Duration::from_secs(5);
    let (pool, h, mut events) = start_subscribed(vec![s], options()).await;
    let pid = wait_running(&h, "r").await;
    let restart = tokio::spawn({
        let h = h.clone();
        async move { h.restart("r").await }
    });
    wait_for("r stopping", LONG, || async {
        (h.worker("r")?.state == StateName::Stopping).then_some(())
    })
    .await;
    let t0 = Instant::now();
    pool.shutdown().await;
    let took = t0.elapsed();
    // It waits out the one grace in progress, not a second one.
    assert!(took < 2 * Duration::from_secs(5), "shutdown took {took:?}");
    assert_eq!(
        restart.await.expect("joined").expect("answered"),
        StateName::Stopped
    );
    assert!(!pid_exists(pid));
    let w = h.worker("r").expect("listed");
    assert_eq!((w.state, w.pid), (StateName::Stopped, None));
    loop {
        match events.try_recv() {
            Ok(ev) => assert!(
                !matches!(ev, PoolEvent::Started { pid: p, .. } if p != pid),
                "a new process was spawned during the shutdown"
            ),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
            Err(e) => panic!("events not all seen: {e}"),
        }
    }
}
