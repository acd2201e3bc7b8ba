//! `worldpool bench --quick` with chaos: runs both modes end to end and
//! loses nothing.

use std::process::Command;

use crate::helper::bin;

#[test]
fn quick_bench_with_chaos_loses_nothing() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["bench", "--quick", "--chaos-kill-every", "300ms", "--out"])
        .arg(out_dir.path())
        .env("RUST_LOG", "warn")
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
