//! How a worker run ended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Exit status a worker uses when an allocation failed under its memory
/// limit (the worker's alloc-error path exits with it instead of aborting).
pub const EXIT_OUT_OF_MEMORY: i32 = 86;

/// Exit status a worker uses when it learnt that it no longer holds the
/// right to run (another holder took its lease: a write was refused by
/// the fence). Such an exit is `fenced` and never restarted: whoever gave
/// the right decides whether the worker runs again.
pub const EXIT_FENCED: i32 = 87;

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
    /// No process was started: the spawn failed (program missing, a limit
    /// the OS refused…). The record's `error` says why.
    SpawnFailed,
    /// Exited with [`EXIT_FENCED`]: it lost the right to run. Not
    /// restarted.
    Fenced,
}

impl ExitReason {
    /// All reasons, for metrics.
    pub const ALL: [ExitReason; 8] = [
        ExitReason::Exited,
        ExitReason::Crashed,
        ExitReason::CpuLimit,
        ExitReason::MemoryLimit,
        ExitReason::Hung,
        ExitReason::Stopped,
        ExitReason::SpawnFailed,
        ExitReason::Fenced,
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
            ExitReason::SpawnFailed => "spawn_failed",
            ExitReason::Fenced => "fenced",
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
    /// What went wrong when there was no process to exit (`spawn_failed`:
    /// the OS error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExitRecord {
    /// The record of a spawn that failed with `error` at `at`.
    pub fn spawn_failed(error: impl Into<String>, at: DateTime<Utc>) -> ExitRecord {
        ExitRecord {
            code: None,
            signal: None,
            reason: ExitReason::SpawnFailed,
            at,
            uptime_s: 0.0,
            error: Some(error.into()),
        }
    }

    /// One line for logs and fatal reasons: `spawn_failed: …`,
    /// `exited with status 1`, `crashed (signal 9)`.
    pub fn summary(&self) -> String {
        let reason = self.reason.as_str();
        match (&self.error, self.code, self.signal) {
            (Some(e), _, _) => format!("{reason}: {e}"),
            (None, _, Some(sig)) => format!("{reason} (signal {sig})"),
            (None, Some(code), None) => format!("{reason} with status {code}"),
            (None, None, None) => reason.to_string(),
        }
    }

    /// Whether this exit counts as a failure for `on-failure` restarts.
    pub fn is_failure(&self) -> bool {
        !(self.reason == ExitReason::Exited && self.code == Some(0))
            && self.reason != ExitReason::Stopped
    }
}

/// What the pool knew about a run when it ended, for [`classify`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExitContext {
    /// The pool was stopping the worker (stop, restart, shutdown).
    pub stopping: bool,
    /// The watchdog killed it.
    pub hung: bool,
    /// RLIMIT_CPU soft limit in seconds, when set.
    pub cpu_limit_s: Option<f64>,
    /// The last sampled CPU time of the process, seconds.
    pub cpu_used_s: Option<f64>,
    /// Whether a memory limit was set.
    pub memory_limited: bool,
}

/// Classify an exit from its status code / signal and the context.
///
/// - `hung` when the watchdog killed it, `stopped` when the pool stopped it;
/// - `cpu_limit` on SIGXCPU, or on SIGKILL with a CPU limit set when the
///   last sampled CPU time reached half the limit or more (the kernel sends
///   SIGKILL at the hard limit when SIGXCPU is ignored; the sample is at
///   most one `sample_interval` old);
/// - `memory_limit` on [`EXIT_OUT_OF_MEMORY`], or SIGABRT with a memory
///   limit set (Rust's default alloc-error path aborts);
/// - `fenced` on [`EXIT_FENCED`] first, even while stopping or after the
///   watchdog fired (the worker said so itself);
/// - `crashed` on any other signal, `exited` otherwise.
pub fn classify(code: Option<i32>, signal: Option<i32>, ctx: &ExitContext) -> ExitReason {
    // Said by the worker itself, whatever the pool was doing meanwhile (a
    // watchdog that fired late, after the supervisor was paused).
    if code == Some(EXIT_FENCED) {
        return ExitReason::Fenced;
    }
    if ctx.hung {
        return ExitReason::Hung;
    }
    match (code, signal) {
        (_, Some(libc::SIGXCPU)) => ExitReason::CpuLimit,
        (_, Some(libc::SIGKILL))
            if !ctx.stopping
                && matches!((ctx.cpu_limit_s, ctx.cpu_used_s),
                    (Some(limit), Some(used)) if used >= limit * 0.5) =>
        {
            ExitReason::CpuLimit
        }
        (Some(EXIT_OUT_OF_MEMORY), _) => ExitReason::MemoryLimit,
        (Some(EXIT_FENCED), _) => ExitReason::Fenced,
        (_, Some(libc::SIGABRT)) if ctx.memory_limited => ExitReason::MemoryLimit,
        _ if ctx.stopping => ExitReason::Stopped,
        (_, Some(_)) => ExitReason::Crashed,
        _ => ExitReason::Exited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let none = ExitContext::default();
        let stopping = ExitContext {
            stopping: true,
            ..none
        };
        let cpu = ExitContext {
            cpu_limit_s: Some(1.0),
            cpu_used_s: Some(0.9),
            ..none
        };
        let cpu_fresh = ExitContext {
            cpu_limit_s: Some(10.0),
            cpu_used_s: Some(0.1),
            ..none
        };
        let mem = ExitContext {
            memory_limited: true,
            ..none
        };
        let hung = ExitContext { hung: true, ..none };
        let table = [
            (Some(0), None, none, ExitReason::Exited),
            (Some(1), None, none, ExitReason::Exited),
            (None, Some(9), none, ExitReason::Crashed),
            (None, Some(11), none, ExitReason::Crashed),
            (None, Some(24), none, ExitReason::CpuLimit),
            (None, Some(9), cpu, ExitReason::CpuLimit),
            (None, Some(9), cpu_fresh, ExitReason::Crashed),
            (Some(86), None, none, ExitReason::MemoryLimit),
            (Some(87), None, none, ExitReason::Fenced),
            (Some(87), None, stopping, ExitReason::Fenced),
            (Some(87), None, hung, ExitReason::Fenced),
            (None, Some(6), mem, ExitReason::MemoryLimit),
            (None, Some(6), none, ExitReason::Crashed),
            (None, Some(9), hung, ExitReason::Hung),
            (None, Some(15), stopping, ExitReason::Stopped),
            (Some(0), None, stopping, ExitReason::Stopped),
            (None, Some(9), stopping, ExitReason::Stopped),
        ];
        for (code, signal, ctx, want) in table {
            assert_eq!(
                classify(code, signal, &ctx),
                want,
                "{code:?} {signal:?} {ctx:?}"
            );
        }
    }
}
