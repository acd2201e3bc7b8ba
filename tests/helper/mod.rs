//! Shared fixtures: the binary, temp dirs, waiting with a deadline.
#![allow(dead_code)]

pub mod api;
pub mod bare_site;
pub mod browser;
pub mod cli;
pub mod exposition;
pub mod pg;
pub mod supervisor;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of the `worldpool` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worldpool"))
}

/// Path of the misbehaving test worker (`tests/bin/test_worker.rs`).
pub fn test_worker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_worldpool-test-worker"))
}

/// Poll `cond` until it returns `Some`, or panic with `what` after `deadline`.
#[track_caller]
pub fn wait_for<T>(what: &str, deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Async version of [`wait_for`].
pub async fn wait_for_async<T, F, Fut>(what: &str, deadline: Duration, mut cond: F) -> T
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

/// Whether a pid exists and is not a zombie (reads /proc).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the ")" that closes the command name
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// Pids whose parent is `ppid` (reads /proc).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some((_, rest)) = stat.rsplit_once(')')
            {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a server that
/// takes its port on the command line; prefer binding port 0 where the
/// server reports the port it got).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
