//! Events the pool broadcasts to subscribers (slow subscribers lag and lose
//! events; they never block the pool).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::exit::ExitRecord;

/// Something that happened to a worker.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PoolEvent {
    /// A process was spawned.
    Started {
        /// Worker name.
        worker: String,
        /// New pid.
        pid: u32,
    },
    /// A worker sent `ready`.
    Ready {
        /// Worker name.
        worker: String,
        /// Its pid.
        pid: u32,
    },
    /// A process ended, or a spawn failed (`pid` is `None` and the exit's
    /// reason is `spawn_failed`).
    Exited {
        /// Worker name.
        worker: String,
        /// Its pid; `None` when no process was spawned.
        pid: Option<u32>,
        /// How it ended.
        exit: ExitRecord,
    },
    /// Waiting before the next start.
    Backoff {
        /// Worker name.
        worker: String,
        /// When the next start is due.
        next_restart_at: DateTime<Utc>,
    },
    /// Crash loop detected.
    Fatal {
        /// Worker name.
        worker: String,
        /// Why.
        reason: String,
        /// Next automatic retry, if any.
        next_restart_at: Option<DateTime<Utc>>,
    },
    /// The worker stopped and will stay stopped.
    Stopped {
        /// Worker name.
        worker: String,
    },
    /// The worker reported a new phase.
    Phase {
        /// Worker name.
        worker: String,
        /// New phase.
        phase: String,
    },
    /// An application event sent by the worker (`WorkerMessage::Event`).
    Custom {
        /// Worker name.
        worker: String,
        /// Event kind.
        kind: String,
        /// Payload.
        data: serde_json::Value,
    },
}

impl PoolEvent {
    /// The worker the event is about.
    pub fn worker(&self) -> &str {
        match self {
            PoolEvent::Started { worker, .. }
            | PoolEvent::Ready { worker, .. }
            | PoolEvent::Exited { worker, .. }
            | PoolEvent::Backoff { worker, .. }
            | PoolEvent::Fatal { worker, .. }
            | PoolEvent::Stopped { worker }
            | PoolEvent::Phase { worker, .. }
            | PoolEvent::Custom { worker, .. } => worker,
        }
    }

    /// The event name used in SSE (`started`, `exited`, …).
    pub fn name(&self) -> &str {
        match self {
            PoolEvent::Started { .. } => "started",
            PoolEvent::Ready { .. } => "ready",
            PoolEvent::Exited { .. } => "exited",
            PoolEvent::Backoff { .. } => "backoff",
            PoolEvent::Fatal { .. } => "fatal",
            PoolEvent::Stopped { .. } => "stopped",
            PoolEvent::Phase { .. } => "phase",
            PoolEvent::Custom { kind, .. } => kind,
        }
    }
}
