//! What a worker process starts with: the spawner's clone (CLONE_VM |
//! CLONE_VFORK) must hand over a clean process: only fds 0–3, its own
//! group, the limits; a program that cannot run is a spawn failure naming
//! the OS error.

use std::time::Duration;

use pool::{ExitReason, PoolEvent, StateName};

use crate::helper::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starts_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seen");
    // The shell reports on itself: descriptors, limits, pid (its signal
    // state is checked by the spawner's unit tests: a shell blocks signals
    // while it waits for a command).
    let script = format!(
        "ls /proc/$$/fd > {out}.fd; cat /proc/$$/limits > {out}.limits; \
         echo $$ > {out}.pid; mv {out}.limits {out}.done; exec sleep 60",
        out = out.display()
    );
    let mut s = sh_spec("clean", &script);
    s.limits.open_files = Some(512);
    let (pool, h, _events) = start_subscribed(vec![s], options()).await;
    let done = out.with_extension("done");
    let limits = wait_for("the worker's report", LONG, || {
        let done = done.clone();
        async move { std::fs::read_to_string(done).ok() }
    })
    .await;
    // Descriptors: stdin, stdout, stderr, the channel, and the one `ls`
    // itself opened to read the directory.
    let fds = std::fs::read_to_string(out.with_extension("fd")).expect("fd list");
    let mut fds: Vec<u32> = fds
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort_unstable();
    assert_eq!(&fds[..4], &[0, 1, 2, 3], "{fds:?}");
    assert!(fds.len() <= 5, "no supervisor descriptor leaked: {fds:?}");
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(line("Max open files").contains("512 512"), "{limits}");
    assert!(line("Max core file size").contains("0 0"), "{limits}");
    let pid: u32 = std::fs::read_to_string(out.with_extension("pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let pgid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .expect("pgrp field");
    assert_eq!(pgid, pid.to_string(), "the worker leads its own group");
    assert_eq!(h.worker("clean").and_then(|w| w.pid), Some(pid));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_spawn_failure_with_the_os_error() {
    let mut s = sh_spec("missing", "");
    s.program = "/nonexistent/worldpool-worker".into();
    s.restart.max_restarts = 0;
    s.restart.backoff.initial = Duration::from_millis(10);
    let (pool, h, mut events) = start_subscribed(vec![s], options()).await;
    let exit = next_event(&mut events, "a spawn_failed exit", LONG, |ev| match ev {
        PoolEvent::Exited {
            pid: None, exit, ..
        } => Some(exit.clone()),
        _ => None,
    })
    .await;
    assert_eq!(exit.reason, ExitReason::SpawnFailed);
    let error = exit.error.expect("the OS error");
    assert!(
        error.contains("/nonexistent/worldpool-worker") && error.contains("No such file"),
        "{error}"
    );
    wait_for("fatal", LONG, || async {
        (h.worker("missing")?.state == StateName::Fatal).then_some(())
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_program_name_is_looked_up_in_path() {
    let mut s = sh_spec("bare", "");
    s.program = "sh".into();
    s.args = vec!["-c".into(), "exec sleep 60".into()];
    let (pool, h, _events) = start_subscribed(vec![s], options()).await;
    let pid = wait_for("running sh from PATH", LONG, || async {
        h.worker("bare")?.pid
    })
    .await;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe link");
    assert!(
        exe.ends_with("sleep") || exe.to_string_lossy().contains("sh"),
        "{}",
        exe.display()
    );
    pool.shutdown().await;
}

/// A supervisor whose stdin, stdout and stderr are closed gets its
/// worker's channel and pipes on 0, 1 and 2 (`examples/closed_stdio.rs`,
/// started with them closed, closes them again after Rust's runtime
/// reopened them on `/dev/null`, before it spawns): the worker still
/// writes to its stdout and stderr and talks on its channel, and all three
/// reach the supervisor.
#[test]
fn a_supervisor_with_closed_stdio_still_gets_its_workers_streams() {
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("supervisor.log");
    let mut cmd = std::process::Command::new(example("closed_stdio"));
    cmd.arg(&log);
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("closed_stdio starts");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > LONG {
            let _ = child.kill();
            panic!(
                "closed_stdio did not finish: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_ne!(status.code(), Some(3), "stdio could not be closed");
    assert!(status.success(), "{status}: {text}");
    for line in ["closed-stdio stdout line", "closed-stdio stderr line"] {
        assert!(
            text.lines()
                .any(|l| l.contains(line) && l.contains("worker=\"closed\"")),
            "{line} in:\n{text}"
        );
    }
}

/// Field 19 of /proc/PATH/stat (the nice value).
fn nice_of(stat_path: &str) -> i32 {
    let stat = std::fs::read_to_string(stat_path).expect("stat");
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(16))
        .and_then(|n| n.parse().ok())
        .expect("a nice value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_thread_runs_above_its_workers_when_it_may() {
    let base = pool::priority::thread_nice();
    // Whether this process may raise a thread's priority (root may).
    let may = std::thread::spawn(move || pool::priority::raise_thread_priority(base - 5))
        .join()
        .expect("probe thread");
    let mut options = options();
    options.thread_nice = base - 5;
    let (pool, h, _events) = start_subscribed(vec![spec("nice", "idle")], options).await;
    let pid = wait_running(&h, "nice").await;
    // Other tests' pools run in this process too, at the default.
    let pool_threads: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(Result::ok)
        .map(|t| t.path())
        .filter(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == "pool"))
        .map(|t| nice_of(&format!("{}/stat", t.display())))
        .collect();
    let raised = pool_threads.iter().filter(|n| **n == base - 5).count();
    assert_eq!(
        raised,
        usize::from(may),
        "may raise: {may}; pool threads' nice: {pool_threads:?}"
    );
    assert_eq!(
        nice_of(&format!("/proc/{pid}/stat")),
        base,
        "the worker runs at the process's nice"
    );
    // A replacement too.
    kill_9(pid);
    let again = wait_for("a replacement", LONG, || {
        let h = h.clone();
        async move {
            let w = h.worker("nice")?;
            (w.pid != Some(pid) && w.state == StateName::Running)
                .then_some(w.pid)
                .flatten()
        }
    })
    .await;
    assert_eq!(nice_of(&format!("/proc/{again}/stat")), base);
    shutdown_clean(pool, &[again]).await;
}
