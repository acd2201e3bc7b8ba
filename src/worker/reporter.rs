//! What the scrape loop tells the supervisor, over the pool channel.

use std::sync::Arc;

use chrono::Utc;
use pool::{WorkerChannel, WorkerMessage, WorkerReport};

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

    /// Announce a phase: `idle`, `checking`, `scraping`, `sleeping`.
    pub fn phase(&self, phase: &str) {
        let mut report = WorkerReport {
            phase: Some(phase.to_string()),
            ..Default::default()
        };
        if phase == "checking" {
            report.last_check = Some(Utc::now());
        }
        self.send(WorkerMessage::Report(report));
    }

    /// Send a progress report (fields left `None` keep their value).
    pub fn report(&self, report: WorkerReport) {
        self.send(WorkerMessage::Report(report));
    }

    /// Send an application event (e.g. `run_finished`).
    pub fn event(&self, kind: &str, data: serde_json::Value) {
        self.send(WorkerMessage::Event {
            kind: kind.to_string(),
            data,
        });
    }

    /// Send a heartbeat.
    pub fn heartbeat(&self) {
        self.send(WorkerMessage::Heartbeat);
    }
}
