//! Status snapshots: what the pool knows about each worker, serializable.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::channel::WorkerReport;
use crate::exit::ExitRecord;
use crate::spec::{Limits, Policy};

/// Lifecycle state name of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    /// Spawned, waiting for `ready`.
    Starting,
    /// Ready and healthy.
    Running,
    /// Waiting before the next start.
    Backoff,
    /// Stop sequence in progress.
    Stopping,
    /// Not running and not going to be restarted automatically.
    Stopped,
    /// Crash loop: waiting for `next_restart_at` (or for a manual start).
    Fatal,
}

impl StateName {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Starting => "starting",
            StateName::Running => "running",
            StateName::Backoff => "backoff",
            StateName::Stopping => "stopping",
            StateName::Stopped => "stopped",
            StateName::Fatal => "fatal",
        }
    }
}

/// Snapshot of one worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Worker name (the world).
    pub name: String,
    /// Current pid, when a process exists.
    pub pid: Option<u32>,
    /// Lifecycle state.
    pub state: StateName,
    /// When the current state was entered.
    pub since: DateTime<Utc>,
    /// When the current (or last) process was started.
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds since `started_at` while a process runs.
    pub uptime_s: Option<f64>,
    /// Restarts since the pool started.
    pub restarts: u64,
    /// Failures in a row (reset after `min_uptime` of healthy running).
    pub consecutive_failures: u32,
    /// The most recent exit.
    pub last_exit: Option<ExitRecord>,
    /// The last few exits, oldest first.
    pub recent_exits: Vec<ExitRecord>,
    /// When the next automatic start is due (backoff or fatal).
    pub next_restart_at: Option<DateTime<Utc>>,
    /// Reason given when the worker became fatal.
    pub fatal_reason: Option<String>,
    /// CPU usage in percent of one core (latest sample).
    pub cpu_percent: Option<f32>,
    /// Resident set size in bytes (latest sample). Counts every shared
    /// page in full: summed over workers it overstates what they cost.
    pub rss_bytes: Option<u64>,
    /// Proportional set size in bytes (latest sample, from
    /// `/proc/PID/smaps_rollup`): each shared page divided by the number of
    /// processes mapping it. Summed over workers, what the pool costs.
    pub pss_bytes: Option<u64>,
    /// Limits applied to the worker.
    pub limits: Limits,
    /// Restart policy and timeouts in effect (changed live by
    /// [`PoolHandle::update`](crate::PoolHandle::update)).
    pub policy: Policy,
    /// What the worker reported over its channel.
    pub report: WorkerReport,
    /// Last heartbeat or message on the channel.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Exits counted by reason since the pool started (a failed spawn
    /// counts as `spawn_failed`).
    pub exits_by_reason: std::collections::BTreeMap<String, u64>,
    /// Messages to the worker dropped because its send queue was full.
    pub messages_dropped: u64,
}
