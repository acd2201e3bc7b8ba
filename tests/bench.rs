//! `worldpool bench --quick` with chaos: runs both modes end to end and
//! loses nothing.

use crate::helper::cli::command;

#[test]
fn quick_bench_with_chaos_loses_nothing() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = command(["bench", "--quick", "--chaos-kill-every", "300ms", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("runs worldpool bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}\n{stderr}",
        out.status
    );

    let text =
        std::fs::read_to_string(out_dir.path().join("results.json")).expect("results.json written");
    let results: serde_json::Value = serde_json::from_str(&text).expect("results.json is JSON");
    assert_eq!(results["lost_data"], false, "{text}");
    let updates = results["params"]["updates"].as_u64().expect("updates");
    let worlds = results["params"]["worlds"].as_u64().expect("worlds");
    let modes = results["modes"].as_array().expect("modes");
    let names: Vec<&str> = modes.iter().filter_map(|m| m["mode"].as_str()).collect();
    assert_eq!(names, ["single", "pool"]);
    let mut kills = 0;
    for m in modes {
        let i = &m["integrity"];
        assert_eq!(
            i["expected_runs"].as_u64(),
            Some(worlds * (updates + 1)),
            "{m}"
        );
        assert_eq!(
            i["stored_runs"], i["expected_runs"],
            "every update stored once: {m}"
        );
        for k in ["missing", "duplicates", "partial"] {
            assert_eq!(i[k].as_array().map(Vec::len), Some(0), "{k}: {m}");
        }
        let latencies = m["latencies_ms"].as_array().expect("latencies");
        assert_eq!(latencies.len() as u64, updates);
        assert!(
            latencies
                .iter()
                .all(|v| v.as_f64().is_some_and(|v| v > 0.0)),
            "{m}"
        );
        kills += m["kills"].as_u64().expect("kills");
    }
    assert!(kills > 0, "chaos killed nothing: {text}");
    for f in ["results.csv", "latency.svg"] {
        let body = std::fs::read_to_string(out_dir.path().join(f)).expect("written");
        assert!(!body.is_empty(), "{f} is empty");
    }
    assert!(stdout.contains("pool/single"), "{stdout}");
}

/// `--soak` (short): pool mode with a kill every 2 s and the API under
/// load; the supervisor's RSS and descriptors do not grow, and the memory
/// figures (RSS and PSS) are all there.
#[test]
fn short_soak_with_the_api_under_load_does_not_grow() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = command(["bench", "--quick", "--soak", "20s", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("runs worldpool bench --soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "soak failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("soak: supervisor RSS"), "{stdout}");
    let text = std::fs::read_to_string(out_dir.path().join("results.json")).expect("results");
    let results: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(results["lost_data"], false, "{text}");
    let soak = &results["soak"];
    assert_eq!(soak["ok"], true, "{soak}");
    for key in ["supervisor_rss", "supervisor_pss", "supervisor_fds"] {
        assert!(
            soak[key]["start"].as_u64().is_some_and(|v| v > 0),
            "{key}: {soak}"
        );
    }
    let modes = results["modes"].as_array().expect("modes");
    assert_eq!(modes.len(), 1, "pool mode only");
    let m = &modes[0];
    assert!(
        m["kills"].as_u64().is_some_and(|k| k >= 5),
        "a kill every 2 s: {m}"
    );
    let load = &m["api_load"];
    assert!(load["ok"].as_u64().is_some_and(|n| n > 50), "{load}");
    assert_eq!(load["errors"], 0, "{load}");
    let mem = &m["memory"];
    for key in [
        "supervisor_rss_max_bytes",
        "supervisor_pss_max_bytes",
        "worker_rss_mean_bytes",
        "worker_pss_mean_bytes",
        "workers_total_pss_mean_bytes",
    ] {
        assert!(mem[key].as_u64().is_some_and(|v| v > 0), "{key}: {mem}");
    }
    assert!(
        mem["worker_pss_mean_bytes"].as_u64() < mem["worker_rss_mean_bytes"].as_u64(),
        "workers share their binary: PSS below RSS: {mem}"
    );
    let svg = std::fs::read_to_string(out_dir.path().join("soak.svg")).expect("soak.svg");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    let csv = std::fs::read_to_string(out_dir.path().join("memory-pool.csv")).expect("csv");
    assert!(csv.lines().count() > 10, "{csv}");
}

/// `--hostile --quick`: the same pool measured idle and under attack in
/// one run; both phases have every measure, the attack was in place, and
/// both supervisors exited 0 on SIGTERM leaving no worker behind.
#[test]
fn quick_hostile_bench_measures_idle_and_under_attack() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = command(["bench", "--hostile", "--quick", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("runs worldpool bench --hostile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench --hostile failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("| measure | idle | under attack | goal |"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(out_dir.path().join("hostile.json")).expect("hostile.json");
    let r: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(r["workers"], 10, "{text}");
    for phase in ["idle", "under_attack"] {
        let p = &r[phase];
        // Every series was measured (how well the API holds under attack
        // is the bench's finding, not this test's).
        for series in ["restart", "workers", "delta"] {
            let s = &p[series];
            let (count, errors) = (s["count"].as_u64(), s["errors"].as_u64());
            assert!(
                count.zip(errors).is_some_and(|(c, e)| c + e > 0),
                "{phase} {series}: {p}"
            );
            if count > Some(0) {
                let (p50, p99) = (s["p50_ms"].as_f64(), s["p99_ms"].as_f64());
                assert!(
                    p50.zip(p99).is_some_and(|(a, b)| a > 0.0 && b >= a),
                    "{phase} {series}: {p}"
                );
                // An API series times its first request apart, within the max.
                if series != "restart" {
                    let (first, max) = (s["first_ms"].as_f64(), s["max_ms"].as_f64());
                    assert!(
                        first.zip(max).is_some_and(|(f, m)| f > 0.0 && f <= m),
                        "{phase} {series}: {p}"
                    );
                }
            }
        }
        assert!(
            p["restart"]["count"].as_u64().is_some_and(|n| n > 0),
            "{phase}: no restart timed: {p}"
        );
        assert!(
            p["scraper_status_rps"].as_f64().is_some_and(|v| v >= 0.0),
            "{phase}: {p}"
        );
        assert!(
            p["fds_max"].as_u64().is_some_and(|v| v > 10),
            "{phase}: {p}"
        );
        assert_eq!(p["workers_left"], 0, "{phase}: {p}");
        assert_eq!(p["exit"], "exit status: 0", "{phase}: {p}");
        assert!(
            p["exit_s"].as_f64().is_some_and(|v| v > 0.0 && v < 30.0),
            "{phase}: {p}"
        );
    }
    let attack = &r["under_attack"]["attack"];
    let sockets: u64 = [
        "idle_sockets",
        "half_heads",
        "stalled_downloads",
        "abandoned_queries",
    ]
    .iter()
    .map(|k| r["attack"][k].as_u64().expect("attack size"))
    .sum();
    assert!(
        attack["connections"].as_u64().is_some_and(|n| n >= sockets),
        "{attack}"
    );
    assert!(
        attack["queries_abandoned"].as_u64().is_some_and(|n| n > 0),
        "{attack}"
    );
    // The attack came from a process of its own, which reported.
    assert!(
        attack["attacker_alive_s"].as_f64().is_some_and(|s| s > 0.0)
            && attack["attacker_cpu_s"].as_f64().is_some_and(|s| s >= 0.0),
        "{attack}"
    );
    // At the kernel's clock (root), each restart is split in two parts.
    if r["restart_clock"]
        .as_str()
        .is_some_and(|c| c.contains("kernel"))
    {
        for phase in ["idle", "under_attack"] {
            let p = &r[phase];
            for part in ["restart_exit_to_clone", "restart_clone_to_exec"] {
                assert_eq!(
                    p[part]["count"], p["restart"]["count"],
                    "{phase} {part}: {p}"
                );
            }
            let (whole, a, b) = (
                p["restart"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
                p["restart_exit_to_clone"]["p50_ms"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
                p["restart_clone_to_exec"]["p50_ms"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            assert!(
                a <= whole && b <= whole,
                "{phase}: parts above the whole: {p}"
            );
        }
    }
    assert!(r["idle"]["attack"].is_null(), "{text}");
    let idle = &r["idle"];
    for series in ["workers", "delta"] {
        assert_eq!(idle[series]["errors"], 0, "idle {series}: {idle}");
    }
    assert!(
        idle["scraper_status_rps"].as_f64().is_some_and(|v| v > 0.0),
        "{idle}"
    );
}

/// `--cluster --quick` (2 nodes, 4 worlds, one round of each fault): every
/// measure is in cluster.json, no duplicate run, no update missed when a
/// node is killed between updates, and the status page read as often by
/// two nodes as by one.
#[test]
fn quick_cluster_bench_has_every_measure_and_no_duplicate() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = out_dir.path().join("stdout.txt");
    let stderr_path = out_dir.path().join("stderr.txt");
    let mut child = command(["bench", "--cluster", "--quick", "--out"])
        .arg(out_dir.path())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("runs worldpool bench --cluster");
    let deadline = std::time::Duration::from_secs(300);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > deadline {
            // Its nodes are in process groups of their own: end them too.
            for pid in crate::helper::children_of(child.id()) {
                // SAFETY: plain syscall on process groups this test started.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bench --cluster did not finish within {deadline:?}:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "bench --cluster failed: {status}\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("| measure | result | goal |"), "{stdout}");
    let text = std::fs::read_to_string(out_dir.path().join("cluster.json")).expect("cluster.json");
    let r: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(r["nodes"], 2, "{text}");
    assert_eq!(r["worlds"], 4, "{text}");
    let ttl = r["lease_ttl_s"].as_f64().expect("lease_ttl_s");
    for takeover in ["takeover_kill", "takeover_stop"] {
        let t = &r[takeover];
        assert_eq!(t["failed"], 0, "{takeover}: {t}");
        assert_eq!(t["samples_s"].as_array().map(Vec::len), Some(1), "{t}");
        // A lease is only taken once it expired: after at least
        // lease_ttl − renew_every, and within the bench's limit.
        assert!(
            t["max_s"]
                .as_f64()
                .is_some_and(|s| s >= ttl - 1.0 && s < ttl * 10.0),
            "{takeover}: {t}"
        );
    }
    let db = &r["db_restart"];
    assert!(
        db["owned_again_s"].as_f64().is_some_and(|s| s > 0.0),
        "{db}"
    );
    assert_eq!(db["nodes_exited"], 0, "{db}");
    assert_eq!(db["epochs_grew"], true, "{db}");
    assert_eq!(r["duplicate_runs"], 0, "{text}");
    assert_eq!(r["epoch_regressions"], 0, "{text}");
    // (A quick kill round may end before the site's next update.)
    for phase in ["steady", "stop", "db_restart"] {
        let m = &r["missed"][phase];
        assert!(
            m["published"].as_u64().is_some_and(|n| n > 0),
            "{phase}: {m}"
        );
    }
    assert_eq!(r["missed"]["kill"]["missed"], 0, "{text}");
    let s = &r["status_requests"];
    let (one, all) = (
        s["one_node"].as_u64().expect("one_node"),
        s["all_nodes"].as_u64().expect("all_nodes"),
    );
    assert!(one > 0 && one.abs_diff(all) <= 1, "{s}");
    let load = r["lease_load"].as_array().expect("lease_load");
    assert_eq!(load.len(), 2, "{text}");
    for l in load {
        assert!(
            l["ticks_per_s"]
                .as_f64()
                .is_some_and(|t| t > 0.5 && t < 2.0),
            "{l}"
        );
        assert!(l["renew_ms_p50"].as_f64().is_some_and(|ms| ms > 0.0), "{l}");
    }
    assert_eq!(r["goals"].as_array().map(Vec::len), Some(6), "{text}");
}
