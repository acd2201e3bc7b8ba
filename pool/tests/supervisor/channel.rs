//! The channel both ways, and the workers' output.

use std::time::{Duration, Instant};

use pool::{Pool, PoolEvent, PoolOptions, StateName};

use crate::helper::*;

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
    let (pool, h, mut events) = start_subscribed(
        vec![sh_spec("talk", script)],
        PoolOptions {
            sample_interval: Duration::from_millis(100),
            ..PoolOptions::default()
        },
    )
    .await;
    let mut seen = Vec::new();
    next_event(&mut events, "the done event", LONG, |ev| {
        seen.push(ev.clone());
        matches!(ev, PoolEvent::Custom { kind, .. } if kind == "done").then_some(())
    })
    .await;
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
    // The sampler fills in RSS and PSS for the live process.
    let (rss, pss) = wait_for("rss and pss sampled", LONG, || async {
        let w = h.worker("talk")?;
        Some((
            w.rss_bytes.filter(|b| *b > 0)?,
            w.pss_bytes.filter(|b| *b > 0)?,
        ))
    })
    .await;
    assert!(pss <= rss, "PSS {pss} never exceeds RSS {rss}");
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_worker_in_order() {
    let (pool, h, mut events) = start_subscribed(vec![spec("e", "echo")], options()).await;
    let second = next_event(&mut events, "hello", LONG, |ev| match ev {
        PoolEvent::Custom { kind, data, .. } if kind == "hello" => {
            data["second_from_env"].as_bool()
        }
        _ => None,
    })
    .await;
    assert!(!second, "the channel descriptor is taken once per process");
    wait_running(&h, "e").await;
    for i in 0..20 {
        h.send("e", &serde_json::json!({"check": "now", "n": i}))
            .expect("queued");
    }
    for i in 0..20 {
        let data = next_event(&mut events, "an echo", LONG, |ev| match ev {
            PoolEvent::Custom { kind, data, .. } if kind == "echo" => Some(data.clone()),
            _ => None,
        })
        .await;
        assert_eq!(data, serde_json::json!({"check": "now", "n": i}));
    }
    assert!(matches!(
        h.send("nope", &1),
        Err(pool::Error::UnknownWorker(_))
    ));
    assert_eq!(h.stop("e").await.expect("stop"), StateName::Stopped);
    assert!(matches!(h.send("e", &1), Err(pool::Error::NotRunning(_))));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_read_never_blocks_its_actor() {
    let mut s = spec("deaf", "deaf");
    s.stop_grace = Duration::from_secs(5);
    let pool = Pool::start(
        vec![s],
        PoolOptions {
            send_queue: 4,
            ..options()
        },
    )
    .expect("pool starts");
    let h = pool.handle();
    wait_running(&h, "deaf").await;
    // 64 KiB lines: the socket buffer and the queue fill up quickly.
    let big = "x".repeat(64 * 1024);
    let mut dropped = 0;
    for _ in 0..200 {
        match h.send("deaf", &big) {
            Ok(()) => {}
            Err(pool::Error::QueueFull(_)) => dropped += 1,
            Err(e) => panic!("unexpected send error: {e}"),
        }
    }
    assert!(dropped > 0, "the queue filled up");
    let w = h.worker("deaf").expect("exists");
    assert_eq!(w.messages_dropped, dropped);
    // The actor still answers, and the stop is the ordinary one: the
    // worker exits 0 on SIGTERM, no SIGKILL after the grace.
    assert_eq!(h.stop("deaf").await.expect("stop"), StateName::Stopped);
    let exit = h.worker("deaf").and_then(|w| w.last_exit).expect("exit");
    assert_eq!((exit.code, exit.signal), (Some(0), None), "{exit:?}");
    pool.shutdown().await;
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
    wait_for("the worker got all its output out", LONG, || async {
        marker.exists().then_some(())
    })
    .await;
    assert_eq!(h.worker("noisy").expect("status").pid, Some(pid));
    shutdown_clean(pool, &[pid]).await;
}

/// A worker flooding its stderr: the supervisor logs at most its budget
/// (100 lines a second, bursts of 200, by default), drops the rest and says
/// how many once the flood is over (`N lines dropped`), every line
/// accounted for; meanwhile another worker restarts as promptly as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_cut_to_the_budget_and_counted() {
    capture_log();
    const LINES: u64 = 300_000;
    let script = format!(
        "printf '{{\"type\":\"ready\"}}\\n' >&3\n\
         yes 'flood line' | head -n {LINES} >&2\n\
         exec sleep 1000\n"
    );
    let (pool, h, _events) = start_subscribed(
        vec![spec("calm", "idle"), sh_spec("flooder", &script)],
        options(),
    )
    .await;
    wait_running(&h, "flooder").await;
    let began = Instant::now();
    // The pool answers while the flood is read: restarts of another
    // worker, each back to running promptly, no heartbeat missed.
    for _ in 0..3 {
        let old = wait_running(&h, "calm").await;
        let t = Instant::now();
        h.restart("calm").await.expect("restart");
        let new = wait_running(&h, "calm").await;
        assert_ne!(old, new);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a restart took {:?} during the flood",
            t.elapsed()
        );
    }
    let calm = h.worker("calm").expect("calm");
    assert!(
        !calm.exits_by_reason.contains_key("hung"),
        "{:?}",
        calm.exits_by_reason
    );

    // Every line is either logged or counted as dropped.
    let dropped_of = |line: &str| -> Option<u64> {
        line.contains("lines dropped")
            .then(|| {
                line.split("dropped=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .flatten()
    };
    let (logged, dropped, notes) = wait_for("the flood accounted for", LONG, || async {
        let lines = captured_log("flooder");
        let logged = lines.iter().filter(|l| l.contains("flood line")).count() as u64;
        let notes: Vec<u64> = lines.iter().filter_map(|l| dropped_of(l)).collect();
        let dropped: u64 = notes.iter().sum();
        (logged + dropped == LINES).then_some((logged, dropped, notes))
    })
    .await;
    let took = began.elapsed().as_secs_f64();
    assert!(logged >= 200, "the burst is logged: {logged}");
    assert!(
        (logged as f64) <= 200.0 + 100.0 * took + 1.0,
        "{logged} lines logged in {took:.1}s"
    );
    assert!(dropped > 0 && !notes.is_empty(), "{notes:?}");
    let note = captured_log("flooder")
        .into_iter()
        .find(|l| l.contains("lines dropped"))
        .expect("a note");
    assert!(note.contains("WARN"), "{note}");
    assert!(note.contains("more than 100 lines/s"), "{note}");
    pool.shutdown().await;
}
