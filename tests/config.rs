//! Config: every shipped example is valid; bad configs name file, key and fix.

use std::path::Path;

use crate::helper::cli::{check_config, command};

/// Every `.toml` under `dir`, subdirectories (config/examples/) included.
fn toml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("directory exists") {
        let path = entry.expect("readable").path();
        if path.is_dir() {
            out.extend(toml_files(&path));
        } else if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_file_in_config_dir_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    let files = toml_files(&dir);
    assert!(
        files
            .iter()
            .any(|p| p.ends_with("examples/alt-layout.toml")),
        "{files:?}"
    );
    for path in files {
        n += 1;
        if let Err(e) = worldpool::config::Config::load(&path) {
            panic!("shipped config does not load:\n{e}");
        }
        let out = check_config(&path).output().expect("runs");
        assert!(
            out.status.success(),
            "check-config {}: {:?}",
            path.display(),
            out
        );
    }
    assert!(n >= 1, "no config files found in {}", dir.display());
}

#[test]
fn check_config_reports_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[pool]\nrestart = \"sometimes\"\n[limits]\nmemory = \"lots\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
    )
    .expect("write");
    let out = check_config(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "bad.toml",
        "pool.restart",
        "limits.memory",
        "worlds[1].name",
        "fix:",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = check_config(Path::new("/nonexistent/worlds.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/worlds.toml") && err.contains("cannot read"),
        "{err}"
    );
}

/// `check-config` of `text`: exit status, stdout, stderr.
fn check_text(text: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worlds.toml");
    std::fs::write(&path, text).expect("write");
    let mut cmd = check_config(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The limit the OS would refuse at every spawn is caught before the run:
/// world, key, value and the hard limit are named.
#[test]
fn check_config_compares_limits_with_the_os_hard_limits() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    assert_ne!(
        hard,
        rlimit::INFINITY,
        "RLIMIT_NOFILE has no hard limit here"
    );
    let too_many = hard + 1;
    let text = format!(
        "[[worlds]]\nname = \"Aurera\"\nguilds = [\"G\"]\n\
         [[worlds]]\nname = \"Bellum\"\nguilds = [\"G\"]\nlimits = {{ open_files = {too_many} }}\n"
    );
    let (code, _, err) = check_text(&text, &[]);
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "worlds[1] (Bellum) limits.open_files",
        &too_many.to_string(),
        &format!("hard limit of {hard}"),
        "fix:",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("Aurera"), "{err}");
}

#[test]
fn check_config_flags_a_public_bind_without_a_token() {
    let text = "[api]\nbind = \"0.0.0.0:5000\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n";
    let (code, _, err) = check_text(text, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("api.bind") && err.contains("WORLDPOOL_API_TOKEN"),
        "{err}"
    );
    let (code, out, err) = check_text(text, &[("WORLDPOOL_API_TOKEN", "s3cret")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("valid"), "{out}");
}

#[test]
fn an_unknown_key_suggests_the_nearest_known_one() {
    let (code, _, err) = check_text(
        "[pool]\nmod = \"single\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pool.mod (line 2)"), "{err}");
    assert!(err.contains("did you mean `mode`?"), "{err}");
}

/// The shipped binary has no test modes: they live in the test worker.
#[test]
fn the_worldpool_binary_rejects_test_modes() {
    let out = command(["worker", "--world", "A", "--test-mode", "idle"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--test-mode"), "{err}");
    let out = command(["--help"]).output().expect("runs");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("test"));
}

#[test]
fn bad_selectors_and_retired_keys_are_reported_in_plain_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[site.selectors]\nrank = \"td[[[\"\nworld_pattern = \"(?P<world>.+\"\nstatus_title_suffix = \" Status\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
    )
    .expect("write");
    let out = check_config(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "bad.toml: site.selectors.rank: \"td[[[\" is not a valid CSS selector: at character 3",
        "bad.toml: site.selectors.world_pattern: \"(?P<world>.+\" is not a valid pattern: at character 1",
        "bad.toml: site.selectors.status_title_suffix: is retired",
        "fix: write world_pattern = ",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("report this"), "{err}");
}

#[test]
fn a_cluster_needs_postgres_pool_mode_and_renewals_that_fit_the_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        "[pool]\nmode = \"single\"\n[storage]\nurl = \"sqlite://x.db\"\n\
         [cluster]\nenabled = true\nlease_ttl = \"4s\"\nrenew_every = \"2s\"\nnode_name = \" \"\n\
         [[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
    )
    .expect("write");
    let out = check_config(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "cluster.enabled",
        "PostgreSQL",
        "single mode",
        "cluster.renew_every",
        "3/8 of lease_ttl",
        "cluster.node_name",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
