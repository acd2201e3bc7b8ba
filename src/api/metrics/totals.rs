//! The pool's totals: `worldpool_workers` by state and the
//! `worldpool_pool_*` sums over every worker and world.

use std::collections::BTreeMap;

use pool::{ExitReason, WorkerStatus};

use super::runs::{WorldRuns, statuses};
use super::workers::{STATES, exits};
use super::writer::Writer;

/// Write the pool's totals (`per_world` as the run families wrote it).
pub(super) fn write(
    w: &mut Writer,
    workers: &[WorkerStatus],
    per_world: &BTreeMap<&str, WorldRuns>,
) {
    w.family(
        "worldpool_workers",
        "gauge",
        "Workers of the pool by lifecycle state.",
    );
    for st in STATES {
        let n = workers.iter().filter(|s| s.state == st).count();
        w.sample("worldpool_workers", &[("state", st.as_str())], n as f64);
    }

    w.family(
        "worldpool_pool_restarts_total",
        "counter",
        "Restarts of all workers since the pool started.",
    );
    let restarts: u64 = workers.iter().map(|s| s.restarts).sum();
    w.sample("worldpool_pool_restarts_total", &[], restarts as f64);

    w.family(
        "worldpool_pool_exits_total",
        "counter",
        "Exits of all worker processes since the pool started, by reason.",
    );
    let mut pool_exits: BTreeMap<&str, u64> =
        ExitReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for s in workers {
        for (reason, n) in exits(s) {
            *pool_exits.entry(reason).or_insert(0) += n;
        }
    }
    for (reason, n) in pool_exits {
        w.sample(
            "worldpool_pool_exits_total",
            &[("reason", reason)],
            n as f64,
        );
    }

    w.family(
        "worldpool_pool_runs_total",
        "counter",
        "Finished scrape runs of all worlds, by status.",
    );
    let mut pool_runs: BTreeMap<&str, u64> = BTreeMap::new();
    for r in per_world.values() {
        for (st, n) in statuses(r) {
            *pool_runs.entry(st).or_insert(0) += n;
        }
    }
    for (st, n) in &pool_runs {
        w.sample("worldpool_pool_runs_total", &[("status", st)], *n as f64);
    }

    w.family(
        "worldpool_pool_rows_total",
        "counter",
        "Player rows stored by all finished runs.",
    );
    let rows: u64 = per_world.values().map(|r| r.rows).sum();
    w.sample("worldpool_pool_rows_total", &[], rows as f64);

    w.family(
        "worldpool_pool_cpu_percent",
        "gauge",
        "CPU usage of all worker processes, percent of one core.",
    );
    let cpu: f64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.cpu_percent)
        .map(f64::from)
        .sum();
    w.sample("worldpool_pool_cpu_percent", &[], cpu);

    w.family(
        "worldpool_pool_rss_bytes",
        "gauge",
        "Resident memory of all worker processes, bytes (shared pages \
         counted once per process: overstates their cost).",
    );
    let rss: u64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.rss_bytes)
        .sum();
    w.sample("worldpool_pool_rss_bytes", &[], rss as f64);

    w.family(
        "worldpool_pool_pss_bytes",
        "gauge",
        "Proportional memory of all worker processes, bytes: what they cost.",
    );
    let pss: u64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.pss_bytes)
        .sum();
    w.sample("worldpool_pool_pss_bytes", &[], pss as f64);
}
