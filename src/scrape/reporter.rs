//! What the scrape loop tells the supervisor, over the pool channel.

use std::sync::Arc;

use chrono::Utc;
use pool::{WorkerChannel, WorkerMessage, WorkerReport};

use crate::protocol::{Phase, WorkerEvent};

/// Sends phase, progress and events to the supervisor. Without a channel
/// (e.g. `scrape-once`, or a worker started by hand) every call is a no-op.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    channel: Option<Arc<WorkerChannel>>,
}

impl Reporter {
    /// A reporter over a channel.
    pub fn new(channel: Option<Arc<WorkerChannel>>) -> Reporter {
        Reporter { channel }
    }

    /// A reporter that reports nowhere.
    pub fn none() -> Reporter {
        Reporter { channel: None }
    }

    fn send(&self, msg: WorkerMessage) {
        if let Some(channel) = &self.channel
            && let Err(e) = channel.send(&msg)
        {
            tracing::debug!(error = %e, "channel send failed (supervisor gone?)");
        }
    }

    /// Announce a phase (`checking` also stamps `last_check`).
    pub fn phase(&self, phase: Phase) {
        let mut report = WorkerReport {
            phase: Some(phase.as_str().to_string()),
            ..Default::default()
        };
        if phase == Phase::Checking {
            report.last_check = Some(Utc::now());
        }
        self.send(WorkerMessage::Report(report));
    }

    /// Send a progress report (fields left `None` keep their value).
    pub fn report(&self, report: WorkerReport) {
        self.send(WorkerMessage::Report(report));
    }

    /// Send an application event.
    pub fn event(&self, event: &WorkerEvent) {
        self.send(event.to_message());
    }

    /// Send a heartbeat.
    pub fn heartbeat(&self) {
        self.send(WorkerMessage::Heartbeat);
    }
}
