//! `worldpool status --cluster`: the cluster as a node's `/api/cluster`
//! shows it, as two tables (nodes, leases).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// Fetch `/api/cluster` from a running node (plain http).
pub async fn fetch_cluster(api: &str) -> anyhow::Result<Value> {
    let base = api.trim_end_matches('/');
    let mut client = super::client::HttpClient::new(base)?;
    let (status, body) = client
        .get_within("/api/cluster", Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot reach the worldpool API at {base}"))?;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = value["message"]
            .as_str()
            .or(value["error"].as_str())
            .unwrap_or("no answer");
        anyhow::bail!("{base}/api/cluster answered {status}: {why}");
    }
    Ok(value)
}

/// The two tables of a `/api/cluster` answer.
pub fn render_cluster(v: &Value) -> String {
    let mut out = String::new();
    let me = v["this_node"]["node_id"].as_str().unwrap_or("");
    let _ = writeln!(
        out,
        "cluster: {}  nodes {}  worlds {} (owned {})  spread {}  lease_ttl {} ms",
        v["state"].as_str().unwrap_or("?"),
        v["balance"]["nodes"],
        v["balance"]["worlds"],
        v["balance"]["owned"],
        v["balance"]["spread"],
        v["lease_ttl_ms"],
    );
    let _ = writeln!(
        out,
        "\n{:<2}{:<24} {:<34} {:>6}",
        "", "NODE", "ID", "WORLDS"
    );
    for n in v["nodes"].as_array().into_iter().flatten() {
        let id = n["node_id"].as_str().unwrap_or("");
        let _ = writeln!(
            out,
            "{:<2}{:<24} {:<34} {:>6}",
            if id == me { "*" } else { "" },
            n["node_name"].as_str().unwrap_or(""),
            id,
            n["worlds_held"],
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<24} {:>6}  STATE",
        "LEASE", "OWNER", "EPOCH"
    );
    for l in v["leases"].as_array().into_iter().flatten() {
        let state = if l["alarm"] == true {
            format!(
                "ALARM: no owner for {:.0} s",
                l["unowned_for_s"].as_f64().unwrap_or(0.0)
            )
        } else if l["live"] == true {
            "held".to_string()
        } else {
            "free".to_string()
        };
        let _ = writeln!(
            out,
            "{:<24} {:<24} {:>6}  {}",
            l["world"].as_str().unwrap_or(""),
            l["owner_name"].as_str().unwrap_or("-"),
            l["epoch"],
            state,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_show_nodes_leases_and_alarms() {
        let v = serde_json::json!({
            "state": "alarm", "lease_ttl_ms": 3000,
            "balance": {"nodes": 2, "worlds": 3, "owned": 2, "spread": 0},
            "this_node": {"node_id": "h:1:a"},
            "nodes": [
                {"node_id": "h:1:a", "node_name": "one", "worlds_held": 1},
                {"node_id": "h:2:b", "node_name": "two", "worlds_held": 1}
            ],
            "leases": [
                {"world": "A", "owner_name": "one", "epoch": 3, "live": true, "alarm": false},
                {"world": "B", "owner_name": "two", "epoch": 1, "live": true, "alarm": false},
                {"world": "C", "owner_name": null, "epoch": 7, "live": false, "alarm": true, "unowned_for_s": 9.2}
            ]
        });
        let text = render_cluster(&v);
        assert!(
            text.starts_with("cluster: alarm  nodes 2  worlds 3 (owned 2)"),
            "{text}"
        );
        assert!(text.contains("* one"), "{text}");
        assert!(text.contains("ALARM: no owner for 9 s"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with('A') && l.contains("one") && l.contains("held")),
            "{text}"
        );
    }
}
