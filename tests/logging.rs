//! Logs: plain text when stderr is a file, JSON on request, the level from
//! `[log] level` (or `RUST_LOG`).

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::helper::supervisor::{Launch, run_command};
use crate::helper::wait_for;

const DEADLINE: Duration = Duration::from_secs(20);

/// `worldpool run --no-api` over one idle test worker, stderr into `log`.
fn start(dir: &Path, extra_toml: &str, args: &[&str]) -> (Child, std::path::PathBuf) {
    let config = dir.join("worlds.toml");
    std::fs::write(
        &config,
        format!("{extra_toml}\n[[worlds]]\nname = \"Aurera\"\nguilds = [\"G\"]\n"),
    )
    .expect("config");
    let log = dir.join("run.log");
    let launch = Launch {
        no_api: true,
        test_mode: Some("idle"),
        flags: args,
        no_rust_log: true,
        ..Launch::default()
    };
    let child = run_command(&config, &log, &launch)
        .spawn()
        .expect("worldpool run starts");
    (child, log)
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("waits");
    assert!(status.success(), "{status:?}");
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn text_logs_into_a_file_carry_no_escape_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, log) = start(dir.path(), "", &[]);
    wait_for("the worker running", DEADLINE, || {
        read(&log).contains("running").then_some(())
    });
    stop(child);
    let text = read(&log);
    assert!(text.contains("pool started"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a file:\n{text}");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, log) = start(dir.path(), "", &["--log-format", "json"]);
    wait_for("the worker running", DEADLINE, || {
        read(&log).contains("running").then_some(())
    });
    stop(child);
    let text = read(&log);
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
        n += 1;
    }
    assert!(n >= 2, "{text}");
}

#[test]
fn log_level_and_format_come_from_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, log) = start(
        dir.path(),
        "[log]\nformat = \"json\"\nlevel = \"worldpool=info,pool=warn\"\n",
        &[],
    );
    wait_for("the pool started", DEADLINE, || {
        read(&log).contains("pool started").then_some(())
    });
    let pid = child.id();
    wait_for("a worker process", DEADLINE, || {
        crate::helper::children_of(pid).first().copied()
    });
    stop(child);
    let text = read(&log);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty());
    for v in &lines {
        let target = v["target"].as_str().unwrap_or_default();
        let level = v["level"].as_str().unwrap_or_default();
        assert!(
            !(target.starts_with("pool") && level == "INFO"),
            "pool INFO line despite pool=warn: {v}"
        );
    }
}
