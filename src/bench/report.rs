//! Benchmark results: the data model, the terminal table, JSON/CSV/SVG
//! output and the comparison with a baseline.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::load::LoadStats;
use super::memory::{MemorySummary, Soak};
use super::stats::Summary;

/// Parameters of a benchmark run (as recorded in results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Worlds on the site.
    pub worlds: usize,
    /// Guilds per world.
    pub guilds: usize,
    /// Players per guild.
    pub players: usize,
    /// Site latency per request, ms.
    pub latency_ms: u64,
    /// Site updates measured per mode.
    pub updates: usize,
    /// Store kind (`sqlite` or `postgres`; never the URL).
    pub store: String,
    /// Chaos kill interval, ms.
    pub chaos_kill_every_ms: Option<u64>,
    /// Whether `--quick` was given.
    pub quick: bool,
}

/// Whether every site update was stored exactly once, whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Integrity {
    /// Runs expected (worlds × updates, plus the initial pass).
    pub expected_runs: usize,
    /// Successful runs found in the store.
    pub stored_runs: usize,
    /// `world@update` never stored.
    pub missing: Vec<String>,
    /// `world@update` stored more than once.
    pub duplicates: Vec<String>,
    /// `world@update` whose stored rows do not match the site.
    pub partial: Vec<String>,
}

impl Integrity {
    /// True when nothing is missing, duplicated or partial.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.duplicates.is_empty() && self.partial.is_empty()
    }
}

/// What one mode measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    /// `single` or `pool`.
    pub mode: String,
    /// Worker processes.
    pub workers: usize,
    /// Time from a site update until every world's run was stored, ms.
    pub update_latency_ms: Summary,
    /// The same, per update, in order.
    pub latencies_ms: Vec<f64>,
    /// Wall time of the measured phase, s.
    pub wall_s: f64,
    /// Pages the site served during the measured phase.
    pub pages_fetched: u64,
    /// Pages per second.
    pub pages_per_s: f64,
    /// Player rows stored during the measured phase.
    pub rows_stored: u64,
    /// Rows per second.
    pub rows_per_s: f64,
    /// CPU seconds used by the supervisor process.
    pub supervisor_cpu_s: f64,
    /// Peak RSS of the supervisor (VmHWM, start-up included), bytes.
    pub supervisor_peak_rss_bytes: u64,
    /// Largest peak RSS of one worker (VmHWM), bytes.
    pub worker_peak_rss_bytes: u64,
    /// Sum of the workers' peak RSS, bytes.
    pub workers_total_peak_rss_bytes: u64,
    /// RSS and PSS sampled about once a second during the measured phase.
    #[serde(default)]
    pub memory: MemorySummary,
    /// The API load, when the supervisor served the API.
    #[serde(default)]
    pub api_load: Option<LoadStats>,
    /// SIGKILLs sent by chaos.
    pub kills: u64,
    /// Worker restarts seen.
    pub restarts: u64,
    /// Exactly-once check.
    pub integrity: Integrity,
}

/// pool / single ratios (above 1 = pool better for speeds, as labelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// single p50 latency / pool p50 latency (how many times sooner pool stores an update).
    pub update_latency_speedup_p50: f64,
    /// single p95 / pool p95.
    pub update_latency_speedup_p95: f64,
    /// pool pages/s / single pages/s.
    pub pages_per_s: f64,
    /// pool total worker RSS / single worker RSS.
    pub worker_rss_total: f64,
}

/// Everything a benchmark run writes to results.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// worldpool version.
    pub version: String,
    /// Parameters.
    pub params: Params,
    /// One entry per mode, in the order run.
    pub modes: Vec<ModeResult>,
    /// pool/single ratios when both ran.
    pub ratios: Option<Ratios>,
    /// True when any mode lost, duplicated or cut a run.
    pub lost_data: bool,
    /// The soak verdict (`--soak`).
    #[serde(default)]
    pub soak: Option<Soak>,
}

impl Results {
    /// Compute ratios and the lost-data flag from the modes.
    pub fn finish(&mut self) {
        let find = |m: &str| self.modes.iter().find(|r| r.mode == m);
        self.ratios = match (find("single"), find("pool")) {
            (Some(s), Some(p)) => Some(Ratios {
                update_latency_speedup_p50: ratio(s.update_latency_ms.p50, p.update_latency_ms.p50),
                update_latency_speedup_p95: ratio(s.update_latency_ms.p95, p.update_latency_ms.p95),
                pages_per_s: ratio(p.pages_per_s, s.pages_per_s),
                worker_rss_total: ratio(
                    p.workers_total_peak_rss_bytes as f64,
                    s.workers_total_peak_rss_bytes as f64,
                ),
            }),
            _ => None,
        };
        self.lost_data = self.modes.iter().any(|m| !m.integrity.ok());
    }

    /// Write results.json, results.csv and latency.svg into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        write_file(&dir.join("results.json"), &json)?;
        write_file(&dir.join("results.csv"), &self.csv())?;
        write_file(&dir.join("latency.svg"), &self.svg())?;
        Ok(())
    }

    /// One CSV row per mode.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "mode,workers,updates,latency_p50_ms,latency_p95_ms,latency_max_ms,pages_per_s,rows_per_s,supervisor_cpu_s,supervisor_peak_rss_bytes,worker_peak_rss_bytes,workers_total_peak_rss_bytes,supervisor_rss_max_bytes,supervisor_pss_max_bytes,worker_rss_max_bytes,worker_rss_mean_bytes,worker_pss_mean_bytes,workers_total_rss_mean_bytes,workers_total_pss_mean_bytes,api_requests,kills,restarts,missing,duplicates,partial\n",
        );
        for m in &self.modes {
            let mem = &m.memory;
            let _ = writeln!(
                out,
                "{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                m.mode,
                m.workers,
                m.update_latency_ms.count,
                m.update_latency_ms.p50,
                m.update_latency_ms.p95,
                m.update_latency_ms.max,
                m.pages_per_s,
                m.rows_per_s,
                m.supervisor_cpu_s,
                m.supervisor_peak_rss_bytes,
                m.worker_peak_rss_bytes,
                m.workers_total_peak_rss_bytes,
                mem.supervisor_rss_max_bytes,
                mem.supervisor_pss_max_bytes,
                mem.worker_rss_max_bytes,
                mem.worker_rss_mean_bytes,
                mem.worker_pss_mean_bytes,
                mem.workers_total_rss_mean_bytes,
                mem.workers_total_pss_mean_bytes,
                m.api_load.as_ref().map_or(0, |l| l.ok + l.errors),
                m.kills,
                m.restarts,
                m.integrity.missing.len(),
                m.integrity.duplicates.len(),
                m.integrity.partial.len()
            );
        }
        out
    }

    /// The terminal table: one row per mode, then the ratios.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<7} {:>7} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10} {:>10} {:>6} {:>8} {:>8}",
            "mode",
            "workers",
            "p50 ms",
            "p95 ms",
            "max ms",
            "pages/s",
            "rows/s",
            "sup cpu",
            "sup rss",
            "wrk rss",
            "wrk total",
            "kills",
            "restarts",
            "lost"
        );
        for m in &self.modes {
            let lost = m.integrity.missing.len()
                + m.integrity.duplicates.len()
                + m.integrity.partial.len();
            let _ = writeln!(
                out,
                "{:<7} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>9.1} {:>9.1} {:>7.2}s {:>9} {:>10} {:>10} {:>6} {:>8} {:>8}",
                m.mode,
                m.workers,
                m.update_latency_ms.p50,
                m.update_latency_ms.p95,
                m.update_latency_ms.max,
                m.pages_per_s,
                m.rows_per_s,
                m.supervisor_cpu_s,
                mib(m.supervisor_peak_rss_bytes),
                mib(m.worker_peak_rss_bytes),
                mib(m.workers_total_peak_rss_bytes),
                m.kills,
                m.restarts,
                lost
            );
        }
        let _ = writeln!(
            out,
            "memory while measuring (sampled each second; RSS counts shared pages in every process, PSS divides them):"
        );
        let _ = writeln!(
            out,
            "{:<7} {:>9} {:>9} {:>11} {:>11} {:>9} {:>11} {:>11} {:>9}",
            "mode",
            "sup rss",
            "sup pss",
            "wrk rss max",
            "wrk rss avg",
            "wrk pss",
            "all wrk rss",
            "all wrk pss",
            "api req"
        );
        for m in &self.modes {
            let mem = &m.memory;
            let _ = writeln!(
                out,
                "{:<7} {:>9} {:>9} {:>11} {:>11} {:>9} {:>11} {:>11} {:>9}",
                m.mode,
                mib(mem.supervisor_rss_max_bytes),
                mib(mem.supervisor_pss_max_bytes),
                mib(mem.worker_rss_max_bytes),
                mib(mem.worker_rss_mean_bytes),
                mib(mem.worker_pss_mean_bytes),
                mib(mem.workers_total_rss_mean_bytes),
                mib(mem.workers_total_pss_mean_bytes),
                m.api_load
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |l| (l.ok + l.errors).to_string())
            );
        }
        if let Some(r) = &self.ratios {
            let _ = writeln!(
                out,
                "pool/single: update stored {:.1}x sooner (p50), {:.1}x (p95); pages/s x{:.1}; total worker RSS x{:.1}",
                r.update_latency_speedup_p50,
                r.update_latency_speedup_p95,
                r.pages_per_s,
                r.worker_rss_total
            );
        }
        out
    }

    /// An SVG line chart of update-to-stored latency per mode.
    pub fn svg(&self) -> String {
        svg_chart(
            "Site update → stored in every world (ms)",
            &self
                .modes
                .iter()
                .map(|m| (m.mode.clone(), m.latencies_ms.clone()))
                .collect::<Vec<_>>(),
        )
    }
}

/// One metric that got worse than the baseline by more than the tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Mode.
    pub mode: String,
    /// Metric name.
    pub metric: &'static str,
    /// Baseline value.
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Relative change, e.g. 0.25 = 25 % worse.
    pub worse_by: f64,
}

/// Compare with a baseline: every metric worse by more than `tolerance`
/// (0.10 = 10 %) is a regression. Modes missing on either side are skipped.
pub fn compare(baseline: &Results, current: &Results, tolerance: f64) -> Vec<Regression> {
    // (name, value, higher_is_better)
    fn metrics(m: &ModeResult) -> [(&'static str, f64, bool); 6] {
        [
            ("update_latency_p50_ms", m.update_latency_ms.p50, false),
            ("update_latency_p95_ms", m.update_latency_ms.p95, false),
            ("pages_per_s", m.pages_per_s, true),
            ("rows_per_s", m.rows_per_s, true),
            (
                "supervisor_peak_rss_bytes",
                m.supervisor_peak_rss_bytes as f64,
                false,
            ),
            (
                "workers_total_peak_rss_bytes",
                m.workers_total_peak_rss_bytes as f64,
                false,
            ),
        ]
    }
    let mut out = Vec::new();
    for cur in &current.modes {
        let Some(base) = baseline.modes.iter().find(|b| b.mode == cur.mode) else {
            continue;
        };
        for ((name, b, higher_better), (_, c, _)) in metrics(base).into_iter().zip(metrics(cur)) {
            if b <= 0.0 || !b.is_finite() || !c.is_finite() {
                continue;
            }
            let worse_by = if higher_better {
                (b - c) / b
            } else {
                (c - b) / b
            };
            if worse_by > tolerance {
                out.push(Regression {
                    mode: cur.mode.clone(),
                    metric: name,
                    baseline: b,
                    current: c,
                    worse_by,
                });
            }
        }
    }
    out
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// Bytes as `12.3M`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}M", bytes as f64 / (1024.0 * 1024.0))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained SVG line chart: one polyline per series, x = sample
/// index, y = value (linear from 0), with axes, ticks and a legend.
pub fn svg_chart(title: &str, series: &[(String, Vec<f64>)]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 400.0;
    const L: f64 = 70.0;
    const R: f64 = 20.0;
    const T: f64 = 40.0;
    const B: f64 = 50.0;
    const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let ymax_raw = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let ymax = nice_ceiling(ymax_raw.max(1.0));
    let x = |i: usize| L + (W - L - R) * i as f64 / (n - 1) as f64;
    let y = |v: f64| T + (H - T - B) * (1.0 - v / ymax);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        xml_escape(title)
    );
    for k in 0..=5 {
        let v = ymax * k as f64 / 5.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            yy + 4.0,
            format_tick(v)
        );
    }
    let label_every = n.div_ceil(10);
    for i in (0..n).filter(|i| i % label_every == 0 || *i == n - 1) {
        let xx = x(i);
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"#,
            H - B + 18.0,
            i + 1
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="black"/>"#,
        H - B,
        W - R,
        H - B,
        H - B
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">site update</text>"#,
        (L + W - R) / 2.0,
        H - 12.0
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for p in &points {
            if let Some((px, py)) = p.split_once(',') {
                let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
            }
        }
        let ly = T + 8.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            W - R - 110.0,
            ly - 10.0,
            W - R - 92.0,
            ly,
            xml_escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn nice_ceiling(v: f64) -> f64 {
    let exp = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * exp >= v {
            return m * exp;
        }
    }
    10.0 * exp
}

fn format_tick(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::summarize;

    fn mode(name: &str, p50: f64, pages: f64) -> ModeResult {
        ModeResult {
            mode: name.into(),
            workers: 1,
            update_latency_ms: Summary {
                count: 3,
                p50,
                p95: p50 * 1.5,
                max: p50 * 2.0,
                mean: p50,
            },
            latencies_ms: vec![p50, p50 * 1.5, p50 * 2.0],
            wall_s: 1.0,
            pages_fetched: 10,
            pages_per_s: pages,
            rows_stored: 100,
            rows_per_s: 100.0,
            supervisor_cpu_s: 0.1,
            supervisor_peak_rss_bytes: 5 << 20,
            worker_peak_rss_bytes: 10 << 20,
            workers_total_peak_rss_bytes: 10 << 20,
            kills: 0,
            restarts: 0,
            integrity: Integrity::default(),
            memory: MemorySummary::default(),
            api_load: None,
        }
    }

    fn results(modes: Vec<ModeResult>) -> Results {
        let mut r = Results {
            started_at: Utc::now(),
            version: "test".into(),
            params: Params {
                worlds: 2,
                guilds: 1,
                players: 1,
                latency_ms: 1,
                updates: 3,
                store: "sqlite".into(),
                chaos_kill_every_ms: None,
                quick: true,
            },
            modes,
            ratios: None,
            lost_data: false,
            soak: None,
        };
        r.finish();
        r
    }

    #[test]
    fn regression_table() {
        let base = results(vec![mode("pool", 100.0, 50.0)]);
        let table = [
            // (p50, pages/s, expected regressed metrics)
            (100.0, 50.0, vec![]),
            (109.0, 46.0, vec![]),
            (
                120.0,
                50.0,
                vec!["update_latency_p50_ms", "update_latency_p95_ms"],
            ),
            (100.0, 40.0, vec!["pages_per_s"]),
            (50.0, 80.0, vec![]),
        ];
        for (p50, pages, want) in table {
            let cur = results(vec![mode("pool", p50, pages)]);
            let got: Vec<&str> = compare(&base, &cur, 0.10)
                .iter()
                .map(|r| r.metric)
                .collect();
            assert_eq!(got, want, "p50={p50} pages={pages}");
        }
        // A mode absent from the baseline is not compared.
        let cur = results(vec![mode("single", 1000.0, 1.0)]);
        assert!(compare(&base, &cur, 0.10).is_empty());
    }

    #[test]
    fn ratios_and_lost_flag() {
        let mut pool = mode("pool", 100.0, 200.0);
        pool.integrity.missing.push("A@1".into());
        let r = results(vec![mode("single", 1000.0, 20.0), pool]);
        let ratios = r.ratios.clone().expect("both modes");
        assert!((ratios.update_latency_speedup_p50 - 10.0).abs() < 1e-9);
        assert!((ratios.pages_per_s - 10.0).abs() < 1e-9);
        assert!(r.lost_data);
    }

    #[test]
    fn outputs_are_well_formed() {
        let r = results(vec![
            mode("single", 1000.0, 20.0),
            mode("pool", 100.0, 200.0),
        ]);
        let csv = r.csv();
        assert_eq!(csv.lines().count(), 3);
        let cols = csv.lines().next().map(|l| l.split(',').count());
        assert!(
            csv.lines().all(|l| Some(l.split(',').count()) == cols),
            "{csv}"
        );
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        let back: Results =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parses");
        assert_eq!(back.modes.len(), 2);
        assert!(r.table().contains("pool/single"));
        let _ = summarize(&r.modes[0].latencies_ms);
    }
}
