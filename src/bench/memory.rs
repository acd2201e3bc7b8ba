//! Memory of the supervisor and its workers over a benchmark run: RSS and
//! PSS (`/proc/PID/smaps_rollup`) and the supervisor's open descriptors,
//! sampled about once a second; summaries for results.json, the time
//! series for memory.csv, and the soak verdict and chart.

use std::fmt::Write as _;
use std::time::Instant;

use pool::Memory;
use serde::{Deserialize, Serialize};

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the series started.
    pub t_s: f64,
    /// The supervisor's memory.
    pub supervisor: Memory,
    /// The supervisor's open file descriptors.
    pub supervisor_fds: u64,
    /// Live workers sampled.
    pub workers: usize,
    /// Sum of the workers' RSS.
    pub workers_rss: u64,
    /// Sum of the workers' PSS.
    pub workers_pss: u64,
    /// Largest RSS of one worker.
    pub worker_rss_max: u64,
    /// Largest PSS of one worker.
    pub worker_pss_max: u64,
    /// CPU time to read one worker's smaps_rollup (what the pool's
    /// sampler reads each tick), µs, averaged over the workers.
    pub rollup_us: f64,
}

/// The samples of one run.
#[derive(Debug, Clone)]
pub struct Series {
    started: Instant,
    /// Samples, oldest first.
    pub points: Vec<Point>,
}

impl Default for Series {
    fn default() -> Self {
        Series::new()
    }
}

impl Series {
    /// An empty series starting now.
    pub fn new() -> Series {
        Series {
            started: Instant::now(),
            points: Vec::new(),
        }
    }

    /// Sample the supervisor and `workers` now. Nothing is recorded when
    /// the supervisor is gone.
    pub fn sample(&mut self, supervisor: u32, workers: impl IntoIterator<Item = u32>) {
        let Some(sup) = pool::procfs::memory(supervisor) else {
            return;
        };
        let mut p = Point {
            t_s: self.started.elapsed().as_secs_f64(),
            supervisor: sup,
            supervisor_fds: open_fds(supervisor).unwrap_or(0),
            workers: 0,
            workers_rss: 0,
            workers_pss: 0,
            worker_rss_max: 0,
            worker_pss_max: 0,
            rollup_us: 0.0,
        };
        let t0 = pool::procfs::thread_cpu_time();
        for pid in workers {
            if let Some(m) = pool::procfs::memory(pid) {
                p.workers += 1;
                p.workers_rss += m.rss;
                p.workers_pss += m.pss;
                p.worker_rss_max = p.worker_rss_max.max(m.rss);
                p.worker_pss_max = p.worker_pss_max.max(m.pss);
            }
        }
        if p.workers > 0 {
            p.rollup_us = pool::procfs::thread_cpu_time()
                .saturating_sub(t0)
                .as_secs_f64()
                * 1e6
                / p.workers as f64;
        }
        self.points.push(p);
    }

    /// Seconds since the series started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Summary of the samples taken at or after `from_s`.
    pub fn summary(&self, from_s: f64) -> MemorySummary {
        let pts: Vec<&Point> = self.points.iter().filter(|p| p.t_s >= from_s).collect();
        let n = pts.len();
        if n == 0 {
            return MemorySummary::default();
        }
        let mean = |f: &dyn Fn(&Point) -> u64| pts.iter().map(|p| f(p)).sum::<u64>() / n as u64;
        let max = |f: &dyn Fn(&Point) -> u64| pts.iter().map(|p| f(p)).max().unwrap_or(0);
        let worker_samples: u64 = pts.iter().map(|p| p.workers as u64).sum();
        let per_worker = |f: &dyn Fn(&Point) -> u64| {
            pts.iter()
                .map(|p| f(p))
                .sum::<u64>()
                .checked_div(worker_samples)
                .unwrap_or(0)
        };
        MemorySummary {
            samples: n,
            supervisor_rss_max_bytes: max(&|p| p.supervisor.rss),
            supervisor_rss_mean_bytes: mean(&|p| p.supervisor.rss),
            supervisor_pss_max_bytes: max(&|p| p.supervisor.pss),
            supervisor_pss_mean_bytes: mean(&|p| p.supervisor.pss),
            supervisor_rss_anon_mean_bytes: mean(&|p| p.supervisor.rss_anon),
            supervisor_rss_file_mean_bytes: mean(&|p| p.supervisor.rss_file),
            supervisor_fds_max: max(&|p| p.supervisor_fds),
            worker_rss_max_bytes: max(&|p| p.worker_rss_max),
            worker_rss_mean_bytes: per_worker(&|p| p.workers_rss),
            worker_pss_max_bytes: max(&|p| p.worker_pss_max),
            worker_pss_mean_bytes: per_worker(&|p| p.workers_pss),
            workers_total_rss_mean_bytes: mean(&|p| p.workers_rss),
            workers_total_pss_mean_bytes: mean(&|p| p.workers_pss),
            rollup_us_per_process: {
                let mut v: Vec<f64> = pts
                    .iter()
                    .filter(|p| p.workers > 0)
                    .map(|p| p.rollup_us)
                    .collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(0.0)
            },
        }
    }

    /// The time series as CSV.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "t_s,supervisor_rss_bytes,supervisor_pss_bytes,supervisor_rss_anon_bytes,supervisor_rss_file_bytes,supervisor_fds,workers,workers_rss_bytes,workers_pss_bytes,worker_rss_max_bytes,worker_pss_max_bytes\n",
        );
        for p in &self.points {
            let _ = writeln!(
                out,
                "{:.1},{},{},{},{},{},{},{},{},{},{}",
                p.t_s,
                p.supervisor.rss,
                p.supervisor.pss,
                p.supervisor.rss_anon,
                p.supervisor.rss_file,
                p.supervisor_fds,
                p.workers,
                p.workers_rss,
                p.workers_pss,
                p.worker_rss_max,
                p.worker_pss_max
            );
        }
        out
    }

    /// The soak verdict: the supervisor's RSS, PSS and open descriptors at
    /// the end (median of the last 10 s) against those after the first
    /// minute (median of the 10 s from `min(60 s, a third of the run)`).
    pub fn soak(&self, tolerance: f64) -> Option<Soak> {
        let end_t = self.points.last()?.t_s;
        let base_t = (end_t / 3.0).min(60.0);
        let window = 10.0_f64.min(end_t / 6.0);
        let median_of = |from: f64, to: f64, f: &dyn Fn(&Point) -> u64| {
            let mut v: Vec<u64> = self
                .points
                .iter()
                .filter(|p| p.t_s >= from && p.t_s <= to)
                .map(f)
                .collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        };
        let pair = |f: &dyn Fn(&Point) -> u64| -> Option<Change> {
            let at_start = median_of(base_t, base_t + window, f)?;
            let at_end = median_of(end_t - window, end_t, f)?;
            Some(Change::new(at_start, at_end))
        };
        let rss = pair(&|p| p.supervisor.rss)?;
        let pss = pair(&|p| p.supervisor.pss)?;
        let fds = pair(&|p| p.supervisor_fds)?;
        let ok = rss.within(tolerance) && fds.within(tolerance);
        Some(Soak {
            duration_s: end_t,
            baseline_at_s: base_t,
            window_s: window,
            tolerance,
            supervisor_rss: rss,
            supervisor_pss: pss,
            supervisor_fds: fds,
            ok,
        })
    }

    /// A chart of the supervisor's RSS and PSS (MiB) and open descriptors
    /// over the run.
    pub fn soak_svg(&self, title: &str) -> String {
        let minutes: Vec<f64> = self.points.iter().map(|p| p.t_s / 60.0).collect();
        let mib = |f: &dyn Fn(&Point) -> u64| -> Vec<f64> {
            self.points
                .iter()
                .map(|p| f(p) as f64 / (1024.0 * 1024.0))
                .collect()
        };
        let memory = [
            ("supervisor RSS".to_string(), mib(&|p| p.supervisor.rss)),
            ("supervisor PSS".to_string(), mib(&|p| p.supervisor.pss)),
        ];
        let fds = [(
            "open descriptors".to_string(),
            self.points
                .iter()
                .map(|p| p.supervisor_fds as f64)
                .collect::<Vec<f64>>(),
        )];
        let mut s = String::new();
        let (w, h) = (760.0, 620.0);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            w / 2.0,
            xml_escape(title)
        );
        panel(&mut s, 40.0, 300.0, w, "MiB", &minutes, &memory);
        panel(&mut s, 350.0, 250.0, w, "descriptors", &minutes, &fds);
        s.push_str("</svg>\n");
        s
    }
}

/// Memory summary of a run (samples after warm-up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySummary {
    /// Samples summarized.
    pub samples: usize,
    /// Largest sampled RSS of the supervisor.
    pub supervisor_rss_max_bytes: u64,
    /// Mean sampled RSS of the supervisor.
    pub supervisor_rss_mean_bytes: u64,
    /// Largest sampled PSS of the supervisor.
    pub supervisor_pss_max_bytes: u64,
    /// Mean sampled PSS of the supervisor.
    pub supervisor_pss_mean_bytes: u64,
    /// Mean anonymous part of the supervisor's RSS.
    pub supervisor_rss_anon_mean_bytes: u64,
    /// Mean file part of the supervisor's RSS.
    pub supervisor_rss_file_mean_bytes: u64,
    /// Most open descriptors of the supervisor.
    pub supervisor_fds_max: u64,
    /// Largest sampled RSS of one worker.
    pub worker_rss_max_bytes: u64,
    /// Mean sampled RSS of a worker.
    pub worker_rss_mean_bytes: u64,
    /// Largest sampled PSS of one worker.
    pub worker_pss_max_bytes: u64,
    /// Mean sampled PSS of a worker.
    pub worker_pss_mean_bytes: u64,
    /// Mean of the workers' summed RSS (shared pages counted per process).
    pub workers_total_rss_mean_bytes: u64,
    /// Mean of the workers' summed PSS: what the pool's workers cost.
    pub workers_total_pss_mean_bytes: u64,
    /// Median CPU time to read one worker's `/proc/PID/smaps_rollup` (the
    /// pool's sampler reads it once per worker and tick), µs.
    #[serde(default)]
    pub rollup_us_per_process: f64,
}

/// A value after the first minute and at the end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// After the first minute.
    pub start: u64,
    /// At the end.
    pub end: u64,
    /// (end - start) / start.
    pub change: f64,
}

impl Change {
    fn new(start: u64, end: u64) -> Change {
        let change = if start > 0 {
            (end as f64 - start as f64) / start as f64
        } else if end == 0 {
            0.0
        } else {
            f64::INFINITY
        };
        Change { start, end, change }
    }

    /// Whether the end is within `tolerance` of the start (either way).
    pub fn within(&self, tolerance: f64) -> bool {
        self.change.abs() <= tolerance
    }
}

/// The soak verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Soak {
    /// Length of the run, s.
    pub duration_s: f64,
    /// Where the "after the first minute" window starts, s.
    pub baseline_at_s: f64,
    /// Width of the windows, s.
    pub window_s: f64,
    /// Allowed change (0.05 = 5 %).
    pub tolerance: f64,
    /// Supervisor RSS.
    pub supervisor_rss: Change,
    /// Supervisor PSS (reported; the verdict is on RSS and descriptors).
    pub supervisor_pss: Change,
    /// Supervisor open descriptors.
    pub supervisor_fds: Change,
    /// RSS and descriptors within the tolerance.
    pub ok: bool,
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One chart panel at `top` of height `height`: x in minutes.
fn panel(
    s: &mut String,
    top: f64,
    height: f64,
    width: f64,
    unit: &str,
    x: &[f64],
    series: &[(String, Vec<f64>)],
) {
    const L: f64 = 70.0;
    const R: f64 = 20.0;
    const B: f64 = 40.0;
    const COLORS: [&str; 3] = ["#d62728", "#1f77b4", "#2ca02c"];
    let xmax = x.iter().copied().fold(0.0_f64, f64::max).max(1e-9);
    let ymax = nice_ceiling(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1,
    );
    let bottom = top + height - B;
    let px = |v: f64| L + (width - L - R) * v / xmax;
    let py = |v: f64| top + (bottom - top) * (1.0 - v / ymax);
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let yy = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - R,
            L - 6.0,
            yy + 4.0,
            if v >= 100.0 || v == v.trunc() {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    for k in 0..=6 {
        let v = xmax * k as f64 / 6.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(v),
            bottom + 16.0,
            if xmax >= 6.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{L}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/><line x1="{L}" y1="{top}" x2="{L}" y2="{bottom}" stroke="black"/>"#,
        width - R
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">minutes</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        (L + width - R) / 2.0,
        bottom + 32.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        xml_escape(unit)
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = x
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| format!("{:.1},{:.1}", px(*t), py(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 14.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            width - R - 150.0,
            ly - 10.0,
            width - R - 132.0,
            ly,
            xml_escape(name)
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, rss_mib: u64, fds: u64) -> Point {
        Point {
            t_s,
            supervisor: Memory {
                rss: rss_mib << 20,
                pss: (rss_mib << 20) / 3,
                rss_anon: 1 << 20,
                rss_file: (rss_mib - 1) << 20,
            },
            supervisor_fds: fds,
            workers: 2,
            workers_rss: 20 << 20,
            workers_pss: 6 << 20,
            worker_rss_max: 11 << 20,
            worker_pss_max: 4 << 20,
            rollup_us: 25.0,
        }
    }

    fn series(points: Vec<Point>) -> Series {
        Series {
            started: Instant::now(),
            points,
        }
    }

    #[test]
    fn soak_compares_the_first_minute_with_the_end() {
        // 30 minutes, one sample a second: flat, then growing at the end.
        let flat = series((0..1800).map(|t| point(t as f64, 8, 160)).collect());
        let soak = flat.soak(0.05).expect("verdict");
        assert!(soak.ok, "{soak:?}");
        assert_eq!(soak.baseline_at_s, 60.0);
        let growing = series(
            (0..1800)
                .map(|t| point(t as f64, if t > 1700 { 9 } else { 8 }, 160))
                .collect(),
        );
        let soak = growing.soak(0.05).expect("verdict");
        assert!(!soak.ok && soak.supervisor_rss.change > 0.1, "{soak:?}");
        let leaking_fds = series(
            (0..1800)
                .map(|t| point(t as f64, 8, 160 + t / 100))
                .collect(),
        );
        assert!(!leaking_fds.soak(0.05).expect("verdict").ok);
        // A short soak (20 s) compares from a third of the run.
        let short = series((0..20).map(|t| point(t as f64, 8, 160)).collect());
        let soak = short.soak(0.05).expect("verdict");
        assert!(soak.ok && (soak.baseline_at_s - 19.0 / 3.0).abs() < 1e-9);
        assert!(series(Vec::new()).soak(0.05).is_none());
    }

    #[test]
    fn summary_and_outputs() {
        let s = series((0..10).map(|t| point(t as f64, 8 + (t % 2), 150)).collect());
        let m = s.summary(5.0);
        assert_eq!(m.samples, 5);
        assert_eq!(m.supervisor_rss_max_bytes, 9 << 20);
        assert_eq!(m.worker_rss_mean_bytes, 10 << 20);
        assert_eq!(m.worker_pss_mean_bytes, 3 << 20);
        assert_eq!(m.workers_total_pss_mean_bytes, 6 << 20);
        assert_eq!(s.csv().lines().count(), 11);
        let svg = s.soak_svg("soak");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
    }

    #[test]
    fn samples_this_process_as_the_supervisor() {
        let mut s = Series::new();
        s.sample(std::process::id(), [std::process::id()]);
        let p = s.points[0];
        assert!(p.supervisor.rss > 0 && p.supervisor.pss > 0 && p.supervisor_fds > 2);
        assert_eq!(p.workers, 1);
        s.sample(u32::MAX, []);
        assert_eq!(s.points.len(), 1, "a gone supervisor records nothing");
    }
}
