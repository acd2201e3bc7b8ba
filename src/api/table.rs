//! `worldpool status`: the workers of a running pool as a terminal table,
//! like `pm2 ls`.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The fields of `/api/workers` the table shows.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    /// World.
    pub world: String,
    /// Pid.
    pub pid: Option<u32>,
    /// State.
    pub state: String,
    /// Phase.
    pub phase: Option<String>,
    /// Restarts.
    pub restarts: u64,
    /// Uptime.
    pub uptime_s: Option<f64>,
    /// CPU.
    pub cpu_percent: Option<f64>,
    /// RSS.
    pub rss_bytes: Option<u64>,
    /// PSS (absent from older servers).
    #[serde(default)]
    pub pss_bytes: Option<u64>,
    /// Last success.
    pub last_success: Option<DateTime<Utc>>,
}

fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Render the table (pure, for tests). `now` is used for "ago" columns.
pub fn render_table(rows: &[Row], now: DateTime<Utc>) -> String {
    const HEADERS: [&str; 10] = [
        "world",
        "pid",
        "state",
        "phase",
        "restarts",
        "uptime",
        "cpu",
        "rss",
        "pss",
        "last success",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.world.clone(),
                r.pid.map_or_else(dash, |p| p.to_string()),
                r.state.clone(),
                r.phase.clone().unwrap_or_else(dash),
                r.restarts.to_string(),
                r.uptime_s.map_or_else(dash, human_duration),
                r.cpu_percent.map_or_else(dash, |c| format!("{c:.1}%")),
                r.rss_bytes.map_or_else(dash, human_bytes),
                r.pss_bytes.map_or_else(dash, human_bytes),
                r.last_success.map_or_else(dash, |t| {
                    let ago = (now - t).num_milliseconds() as f64 / 1000.0;
                    format!("{} ago", human_duration(ago))
                }),
            ]
        })
        .collect();
    let mut widths: [usize; 10] = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, row: &[String]| {
        out.push('│');
        for (i, c) in row.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            // numbers right-aligned, text left-aligned
            if matches!(i, 1 | 4 | 5 | 6 | 7) {
                out.push_str(&format!(" {}{} │", " ".repeat(pad), c));
            } else {
                out.push_str(&format!(" {}{} │", c, " ".repeat(pad)));
            }
        }
        out.push('\n');
    };
    let rule = |out: &mut String, left: char, mid: char, right: char| {
        out.push(left);
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&"─".repeat(w + 2));
            out.push(if i + 1 == widths.len() { right } else { mid });
        }
        out.push('\n');
    };
    let mut out = String::new();
    rule(&mut out, '┌', '┬', '┐');
    line(&mut out, &HEADERS.map(String::from));
    rule(&mut out, '├', '┼', '┤');
    for row in &cells {
        line(&mut out, row);
    }
    rule(&mut out, '└', '┴', '┘');
    out
}

/// Fetch `/api/workers` from a running pool (plain http).
pub async fn fetch_rows(api: &str) -> anyhow::Result<Vec<Row>> {
    let base = api.trim_end_matches('/');
    let hint = "is `worldpool run` running? Point to it with --api URL or WORLDPOOL_API";
    let mut client = super::client::HttpClient::new(base)?;
    let (status, body) = client
        .get_within("/api/workers", Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot reach the worldpool API at {base} ({hint})"))?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| body.chars().take(200).collect());
        anyhow::bail!("the API at {base} answered {status}: {message}");
    }
    serde_json::from_slice::<Vec<Row>>(&body).with_context(|| {
        format!("{base}/api/workers did not answer with a worker list (is it worldpool?)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_up_with_accents_and_missing_values() {
        let now = Utc::now();
        let rows = vec![
            Row {
                world: "São Paulo".into(),
                pid: Some(4242),
                state: "running".into(),
                phase: Some("scraping".into()),
                restarts: 3,
                uptime_s: Some(3_725.0),
                cpu_percent: Some(12.345),
                rss_bytes: Some(15 * 1024 * 1024 + 300 * 1024),
                pss_bytes: Some(3 * 1024 * 1024),
                last_success: Some(now - chrono::Duration::seconds(95)),
            },
            Row {
                world: "Zuna".into(),
                pid: None,
                state: "fatal".into(),
                phase: None,
                restarts: 11,
                uptime_s: None,
                cpu_percent: None,
                rss_bytes: None,
                pss_bytes: None,
                last_success: None,
            },
        ];
        let t = render_table(&rows, now);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 6, "{t}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{t}");
        assert!(lines[1].contains("world") && lines[1].contains("last success"));
        assert!(lines[3].contains("São Paulo") && lines[3].contains("4242"));
        assert!(lines[3].contains("1h02m") && lines[3].contains("12.3%"));
        assert!(lines[3].contains("15.3 MiB") && lines[3].contains("1m35s ago"));
        assert!(lines[3].contains("3.0 MiB"));
        assert!(lines[4].contains("fatal") && lines[4].contains(" - "));
    }

    #[test]
    fn durations_and_bytes_are_human() {
        assert_eq!(human_duration(5.9), "5s");
        assert_eq!(human_duration(61.0), "1m01s");
        assert_eq!(human_duration(90_000.0), "1d01h");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
    }
}
