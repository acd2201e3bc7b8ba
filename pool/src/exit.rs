//! How a worker run ended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Exit status a worker uses when an allocation failed under its memory
/// limit (the worker's alloc-error path exits with it instead of aborting).
pub const EXIT_OUT_OF_MEMORY: i32 = 86;

/// Why a worker run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Exited on its own with a status code.
    Exited,
    /// Killed by a signal the pool did not send.
    Crashed,
    /// Hit RLIMIT_CPU (SIGXCPU, or SIGKILL after the CPU limit).
    CpuLimit,
    /// An allocation failed under the memory limit.
    MemoryLimit,
    /// Killed by the watchdog: no `ready` in time or missed heartbeats.
    Hung,
    /// Stopped by the pool (stop, restart or shutdown).
    Stopped,
}

impl ExitReason {
    /// All reasons, for metrics.
    pub const ALL: [ExitReason; 6] = [
        ExitReason::Exited,
        ExitReason::Crashed,
        ExitReason::CpuLimit,
        ExitReason::MemoryLimit,
        ExitReason::Hung,
        ExitReason::Stopped,
    ];

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exited => "exited",
            ExitReason::Crashed => "crashed",
            ExitReason::CpuLimit => "cpu_limit",
            ExitReason::MemoryLimit => "memory_limit",
            ExitReason::Hung => "hung",
            ExitReason::Stopped => "stopped",
        }
    }
}

/// One finished run of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// Signal number, when it was killed.
    pub signal: Option<i32>,
    /// Classification.
    pub reason: ExitReason,
    /// When it was reaped.
    pub at: DateTime<Utc>,
    /// How long it ran, seconds.
    pub uptime_s: f64,
}

impl ExitRecord {
    /// Whether this exit counts as a failure for `on-failure` restarts.
    pub fn is_failure(&self) -> bool {
        !(self.reason == ExitReason::Exited && self.code == Some(0))
            && self.reason != ExitReason::Stopped
    }
}
