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
    /// Requests the pool's budget granted it (`null` without one).
    #[serde(default)]
    pub requests: Option<u64>,
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
    const HEADERS: [&str; 11] = [
        "world",
        "pid",
        "state",
        "phase",
        "restarts",
        "uptime",
        "cpu",
        "rss",
        "pss",
        "requests",
        "last success",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 11]> = rows
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
                r.requests.map_or_else(dash, |n| n.to_string()),
                r.last_success.map_or_else(dash, |t| {
                    let ago = (now - t).num_milliseconds() as f64 / 1000.0;
                    format!("{} ago", human_duration(ago))
                }),
            ]
        })
        .collect();
    let mut widths: [usize; 11] = HEADERS.map(|h| h.chars().count());
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
            if matches!(i, 1 | 4 | 5 | 6 | 7 | 8 | 9) {
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

/// One host of `/api/budget`, as the table shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct HostRow {
    /// `host:port`.
    pub host: String,
    /// Configured requests/s (`null` = unlimited).
    pub rate_limit: Option<f64>,
    /// Current requests/s (`null` = unlimited).
    pub rate: Option<f64>,
    /// Configured concurrency.
    pub max_concurrent: usize,
    /// Current concurrency.
    pub concurrency: usize,
    /// In flight now.
    pub in_flight: usize,
    /// Waiting now.
    pub waiting: usize,
    /// Seconds until a pause ends.
    pub paused_for_s: Option<f64>,
    /// Requests granted.
    pub requests: u64,
}

/// The pool's budget per host, one line each (pure, for tests).
pub fn render_hosts(hosts: &[HostRow]) -> String {
    let rate = |r: Option<f64>| r.map_or_else(|| "unlimited".to_string(), |r| format!("{r:.1}/s"));
    let mut out = String::new();
    for h in hosts {
        out.push_str(&format!(
            "host {}: rate {} (limit {}), in flight {}/{} (limit {}), waiting {}, {}, {} requests\n",
            h.host,
            rate(h.rate),
            rate(h.rate_limit),
            h.in_flight,
            h.concurrency,
            h.max_concurrent,
            h.waiting,
            match h.paused_for_s {
                Some(s) => format!("paused by Retry-After for {s:.1}s more"),
                None => "not paused".to_string(),
            },
            h.requests
        ));
    }
    out
}

/// Fetch the hosts of `/api/budget` (empty when the pool has no shared
/// budget, or an older pool has no such endpoint).
pub async fn fetch_hosts(api: &str) -> anyhow::Result<Vec<HostRow>> {
    #[derive(Deserialize)]
    struct Body {
        hosts: Vec<HostRow>,
    }
    let base = api.trim_end_matches('/');
    let mut client = super::client::HttpClient::new(base)?;
    let (status, body) = client
        .get_within("/api/budget", Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot reach the worldpool API at {base}"))?;
    if !status.is_success() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice::<Body>(&body)
        .map(|b| b.hosts)
        .unwrap_or_default())
}

/// Fetch `/api/workers` from a running pool (plain http).
pub async fn fetch_rows(api: &str) -> anyhow::Result<Vec<Row>> {
    let base = api.trim_end_matches('/');
    let hint = super::client::UNREACHABLE_HINT;
    let mut client = super::client::HttpClient::new(base)?;
    let (status, body) = client
        .get_within("/api/workers", Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot reach the worldpool API at {base} ({hint})"))?;
    if !status.is_success() {
        let message = super::client::error_message(&body);
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
                requests: Some(1234),
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
                requests: None,
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
        assert!(lines[1].contains("requests") && lines[3].contains("1234"));
    }

    #[test]
    fn hosts_show_rate_flight_and_pause() {
        let hosts = [
            HostRow {
                host: "example.org:443".into(),
                rate_limit: Some(20.0),
                rate: Some(10.0),
                max_concurrent: 4,
                concurrency: 2,
                in_flight: 1,
                waiting: 7,
                paused_for_s: Some(1.5),
                requests: 99,
            },
            HostRow {
                host: "127.0.0.1:8080".into(),
                rate_limit: None,
                rate: None,
                max_concurrent: 4,
                concurrency: 4,
                in_flight: 0,
                waiting: 0,
                paused_for_s: None,
                requests: 0,
            },
        ];
        let t = render_hosts(&hosts);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "host example.org:443: rate 10.0/s (limit 20.0/s), in flight 1/2 (limit 4), waiting 7, paused by Retry-After for 1.5s more, 99 requests"
        );
        assert!(
            lines[1].contains("rate unlimited (limit unlimited)")
                && lines[1].contains("not paused")
        );
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
