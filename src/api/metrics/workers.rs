//! The `worldpool_worker_*` families of the pool's snapshot: state,
//! restarts, exits, CPU, memory, uptime and the last run and check of each
//! worker.

use std::collections::BTreeMap;

use pool::{ExitReason, StateName, WorkerStatus};

use super::writer::Writer;

/// The lifecycle states, in the order their samples are written.
pub(super) const STATES: [StateName; 6] = [
    StateName::Starting,
    StateName::Running,
    StateName::Backoff,
    StateName::Stopping,
    StateName::Stopped,
    StateName::Fatal,
];

/// A worker's exits by reason: every known reason (0 when none), and any
/// other the pool counted.
pub(super) fn exits(s: &WorkerStatus) -> BTreeMap<&str, u64> {
    let mut reasons: BTreeMap<&str, u64> =
        ExitReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for (reason, n) in &s.exits_by_reason {
        *reasons.entry(reason.as_str()).or_insert(0) += n;
    }
    reasons
}

/// Write the per-worker families.
pub(super) fn write(w: &mut Writer, workers: &[WorkerStatus]) {
    w.family(
        "worldpool_worker_up",
        "gauge",
        "1 when the worker is in state running, else 0.",
    );
    for s in workers {
        let up = if s.state == StateName::Running {
            1.0
        } else {
            0.0
        };
        w.sample("worldpool_worker_up", &[("world", &s.name)], up);
    }

    w.family(
        "worldpool_worker_state",
        "gauge",
        "1 for the worker's current lifecycle state, 0 for the others.",
    );
    for s in workers {
        for st in STATES {
            let v = if s.state == st { 1.0 } else { 0.0 };
            w.sample(
                "worldpool_worker_state",
                &[("world", &s.name), ("state", st.as_str())],
                v,
            );
        }
    }

    w.family(
        "worldpool_worker_restarts_total",
        "counter",
        "Restarts of the worker since the pool started.",
    );
    for s in workers {
        w.sample(
            "worldpool_worker_restarts_total",
            &[("world", &s.name)],
            s.restarts as f64,
        );
    }

    w.family(
        "worldpool_worker_exits_total",
        "counter",
        "Exits of the worker's processes since the pool started, by reason.",
    );
    for s in workers {
        for (reason, n) in exits(s) {
            w.sample(
                "worldpool_worker_exits_total",
                &[("world", &s.name), ("reason", reason)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_cpu_percent",
        "gauge",
        "CPU usage of the worker process, percent of one core (latest sample).",
    );
    for s in workers {
        if let (Some(_), Some(cpu)) = (s.pid, s.cpu_percent) {
            w.sample(
                "worldpool_worker_cpu_percent",
                &[("world", &s.name)],
                f64::from(cpu),
            );
        }
    }

    w.family(
        "worldpool_worker_rss_bytes",
        "gauge",
        "Resident memory of the worker process, bytes (latest sample).",
    );
    for s in workers {
        if let (Some(_), Some(rss)) = (s.pid, s.rss_bytes) {
            w.sample(
                "worldpool_worker_rss_bytes",
                &[("world", &s.name)],
                rss as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_pss_bytes",
        "gauge",
        "Proportional memory of the worker process, bytes (latest sample): \
         shared pages divided among the processes that map them.",
    );
    for s in workers {
        if let (Some(_), Some(pss)) = (s.pid, s.pss_bytes) {
            w.sample(
                "worldpool_worker_pss_bytes",
                &[("world", &s.name)],
                pss as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_uptime_seconds",
        "gauge",
        "Seconds the worker's current process has been running.",
    );
    let now = chrono::Utc::now();
    for s in workers {
        if let (Some(_), Some(t)) = (s.pid, s.started_at) {
            let up = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
            w.sample("worldpool_worker_uptime_seconds", &[("world", &s.name)], up);
        }
    }

    w.family(
        "worldpool_worker_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the worker's last successful run.",
    );
    for s in workers {
        if let Some(t) = s.report.last_success {
            w.sample(
                "worldpool_worker_last_success_timestamp_seconds",
                &[("world", &s.name)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }

    w.family(
        "worldpool_worker_last_check_timestamp_seconds",
        "gauge",
        "Unix time of the worker's last status-page check.",
    );
    for s in workers {
        if let Some(t) = s.report.last_check {
            w.sample(
                "worldpool_worker_last_check_timestamp_seconds",
                &[("world", &s.name)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }
}
