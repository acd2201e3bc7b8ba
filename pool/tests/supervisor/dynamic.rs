//! A worker set that changes while the pool runs: add, remove, update,
//! replace.

use std::time::{Duration, Instant};

use pool::{ExitReason, Pool, PoolEvent, RestartMode, StateName};

use crate::helper::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_starts_a_worker_and_rejects_a_duplicate() {
    let pool = Pool::start(vec![spec("a", "idle")], options()).expect("pool starts");
    let h = pool.handle();
    assert_eq!(
        h.add(spec("b", "idle")).await.expect("added"),
        StateName::Starting
    );
    let b = wait_running(&h, "b").await;
    assert_eq!(h.names(), ["a", "b"]);
    assert!(matches!(
        h.add(spec("b", "idle")).await,
        Err(pool::Error::DuplicateName(_))
    ));
    assert_eq!(
        h.worker("b").expect("b").pid,
        Some(b),
        "the first b untouched"
    );
    let a = wait_running(&h, "a").await;
    shutdown_clean(pool, &[a, b]).await;
    assert!(matches!(
        h.add(spec("c", "idle")).await,
        Err(pool::Error::ShuttingDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_stops_gracefully_then_unlists() {
    let mut s = spec("r", "ignore-term");
    s.stop_grace = Duration::from_millis(300);
    let pool = Pool::start(vec![s, spec("keep", "idle")], options()).expect("pool starts");
    let h = pool.handle();
    let pid = wait_running(&h, "r").await;
    let keep = wait_running(&h, "keep").await;
    let mut events = h.subscribe();
    let t0 = Instant::now();
    h.remove("r").await.expect("removed");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "waited stop_grace"
    );
    assert!(!pid_exists(pid), "stopped and reaped");
    assert!(h.worker("r").is_none());
    assert_eq!(h.names(), ["keep"]);
    let exit = next_event(&mut events, "r's exit", LONG, |ev| match ev {
        PoolEvent::Exited { worker, exit, .. } if worker == "r" => Some(exit.clone()),
        _ => None,
    })
    .await;
    assert_eq!((exit.reason, exit.signal), (ExitReason::Stopped, Some(9)));
    assert!(matches!(
        h.remove("r").await,
        Err(pool::Error::UnknownWorker(_))
    ));
    assert!(matches!(
        h.start("r").await,
        Err(pool::Error::UnknownWorker(_))
    ));
    // The name is free again.
    h.add(spec("r", "idle")).await.expect("re-added");
    let again = wait_running(&h, "r").await;
    assert_eq!(h.worker("keep").expect("keep").pid, Some(keep));
    shutdown_clean(pool, &[again, keep]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_applies_a_new_policy_without_a_restart() {
    let pool = Pool::start(vec![spec("u", "no-heartbeat")], options()).expect("pool starts");
    let h = pool.handle();
    let pid = wait_running(&h, "u").await;
    // Never restart, and a heartbeat watchdog that this silent worker
    // cannot satisfy: the running process is judged by the new timeouts.
    let mut policy = spec("u", "no-heartbeat").policy();
    policy.restart.mode = RestartMode::Never;
    policy.heartbeat_timeout = Some(Duration::from_millis(300));
    assert_eq!(
        h.update("u", policy).await.expect("updated"),
        StateName::Running
    );
    assert_eq!(h.worker("u").expect("u").pid, Some(pid), "not restarted");
    let w = wait_for("u hung and stopped", LONG, || async {
        let w = h.worker("u")?;
        (w.state == StateName::Stopped).then_some(w)
    })
    .await;
    let exit = w.last_exit.expect("exit");
    assert_eq!(exit.reason, ExitReason::Hung);
    assert_eq!(w.restarts, 0, "restart mode never");
    assert!(matches!(
        h.update("nope", spec("x", "idle").policy()).await,
        Err(pool::Error::UnknownWorker(_))
    ));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_restarts_with_the_new_spec() {
    let mut bad = spec("x", "fail-start");
    bad.restart.backoff.initial = Duration::from_secs(60);
    bad.restart.backoff.max = Duration::from_secs(60);
    let pool = Pool::start(vec![bad], options()).expect("pool starts");
    let h = pool.handle();
    wait_for("x in backoff", LONG, || async {
        (h.worker("x")?.state == StateName::Backoff).then_some(())
    })
    .await;
    // A fixed spec ends the 60 s backoff at once.
    let mut good = spec("x", "idle");
    good.limits.open_files = Some(256);
    assert_eq!(
        h.replace(good.clone()).await.expect("replaced"),
        StateName::Starting
    );
    let first = wait_running(&h, "x").await;
    assert_eq!(h.worker("x").expect("x").limits.open_files, Some(256));
    // Replacing a running worker: graceful stop, new process.
    good.limits.open_files = Some(300);
    let state = h.replace(good.clone()).await.expect("replaced");
    assert!(matches!(state, StateName::Starting | StateName::Running));
    let second = wait_running(&h, "x").await;
    assert_ne!(first, second);
    assert!(!pid_exists(first));
    let w = h.worker("x").expect("x");
    assert_eq!(w.limits.open_files, Some(300));
    assert_eq!(w.last_exit.expect("exit").reason, ExitReason::Stopped);
    // A stopped worker takes the spec and stays stopped.
    assert_eq!(h.stop("x").await.expect("stop"), StateName::Stopped);
    good.limits.open_files = Some(400);
    assert_eq!(h.replace(good).await.expect("replaced"), StateName::Stopped);
    assert_eq!(h.worker("x").expect("x").limits.open_files, Some(400));
    assert_eq!(h.start("x").await.expect("start"), StateName::Starting);
    let third = wait_running(&h, "x").await;
    shutdown_clean(pool, &[third]).await;
}
