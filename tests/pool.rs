//! Tests: `worldpool run` as a real process, with real signals. The pool
//! itself is tested in `pool/tests/` with its own test worker.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::helper::supervisor::{Launch, Process};
use crate::helper::{children_of, pid_alive, wait_for};

const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// `worldpool run` as a real process.

/// `worldpool run` without an API over `worlds`, the test worker in
/// `test_mode`.
fn run_supervisor(worlds: &[&str], test_mode: &str, stop_grace: &str) -> Process {
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
    Process::spawn(
        &config,
        &log,
        &Launch {
            no_api: true,
            log_json: true,
            test_mode: Some(test_mode),
            ..Launch::default()
        },
    )
    .in_dir(dir)
}

fn field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// Wait until every world logged "running"; returns the workers' pids.
fn wait_workers_running(sup: &Process, worlds: &[&str]) -> Vec<u32> {
    wait_for("every worker running (supervisor log)", LONG, || {
        let fields = sup.log_fields();
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
    // The worlds' workers and the pool's status watcher.
    let pids = wait_workers_running(&sup, &["A", "B", "C", "watcher"]);
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
    let status = sup.sigterm_and_wait(LONG);
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    // B ignores SIGTERM: the supervisor waited stop_grace, then SIGKILLed it.
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let fields = sup.log_fields();
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

/// A world whose limit the OS refuses does not stop the pool: the other
/// worlds run, and that worker backs off, goes fatal with a retry time, and
/// says why (`spawn_failed` with the OS error) in the API, the SSE events
/// and `/metrics`.
#[test]
fn a_refused_limit_is_a_visible_failure_and_never_parks_the_worker() {
    // Above the kernel's nr_open: refused even for root, whose capability
    // could raise the hard limit itself.
    let refused: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("nr_open readable")
        .trim()
        .parse::<u64>()
        .expect("a number")
        + 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worlds.toml");
    std::fs::write(
        &config,
        format!(
            "[pool]\nbackoff_initial = \"20ms\"\nbackoff_jitter = 0.0\nmax_restarts = 3\n\
             fatal_retry = \"10m\"\n\
             [[worlds]]\nname = \"Aurera\"\nguilds = [\"G\"]\n\
             [[worlds]]\nname = \"Bellum\"\nguilds = [\"G\"]\nlimits = {{ open_files = {refused} }}\n"
        ),
    )
    .expect("config written");
    let port = crate::helper::free_port();
    let log = dir.path().join("supervisor.log");
    let _sup = Process::spawn(
        &config,
        &log,
        &Launch {
            api_port: Some(port),
            test_mode: Some("idle"),
            ..Launch::default()
        },
    )
    .in_dir(dir);
    let get = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
    };
    let bellum = wait_for("Bellum fatal in the API", LONG, || {
        let body = get("/api/workers/Bellum")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["state"] == "fatal").then_some(v)
    });
    assert_eq!(bellum["last_exit"]["reason"], "spawn_failed", "{bellum}");
    let error = bellum["last_exit"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("RLIMIT_NOFILE") && error.contains(&refused.to_string()),
        "{bellum}"
    );
    assert!(
        bellum["fatal_reason"]
            .as_str()
            .is_some_and(|r| r.contains("RLIMIT_NOFILE")),
        "{bellum}"
    );
    assert!(bellum["next_restart_at"].is_string(), "{bellum}");
    assert!(bellum["pid"].is_null(), "{bellum}");
    // The other world is unaffected.
    let aurera = wait_for("Aurera running", LONG, || {
        let v: serde_json::Value = serde_json::from_str(&get("/api/workers/Aurera")?).ok()?;
        (v["state"] == "running").then_some(v)
    });
    assert!(aurera["pid"].is_u64(), "{aurera}");
    let metrics = get("/metrics").expect("metrics");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("worldpool_worker_exits_total")
                && l.contains("world=\"Bellum\"")
                && l.contains("reason=\"spawn_failed\"")
        })
        .unwrap_or_else(|| panic!("no spawn_failed exit counter:\n{metrics}"));
    let count: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert!(count >= 3.0, "{line}");
    // The run said which limit is above the hard limit when it started.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("hard limit"), "{text}");
}
