//! Events of the application itself, not of a pool worker: a config
//! reload applied or refused, and whatever else the supervisor wants
//! clients to hear about. `/api/events` carries them next to the pool's
//! events (`event: <name>`, the JSON with its name in `event`).
//!
//! Like the pool's, the broadcast is bounded and never waits: a subscriber
//! that falls [`APP_EVENT_BUFFER`] events behind loses them (the SSE
//! stream then says `lagged` and ends). A new kind of event is a new
//! variant of [`AppEvent`].

use serde::Serialize;
use tokio::sync::broadcast;

use crate::reload::{Listener, ReloadFailure, ReloadReport};

/// Events a subscriber may fall behind before it loses them.
pub const APP_EVENT_BUFFER: usize = 256;

/// One application event. Serialized with its name in `event`:
/// `{"event": "reloaded", …}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AppEvent {
    /// A config reload was applied: the plan and what came of it.
    Reloaded(ReloadReport),
    /// A config reload was refused: the new config is invalid, the old one
    /// keeps running.
    ReloadFailed(ReloadFailure),
}

impl AppEvent {
    /// The SSE event name (`reloaded`, `reload_failed`).
    pub fn name(&self) -> &'static str {
        match self {
            AppEvent::Reloaded(_) => "reloaded",
            AppEvent::ReloadFailed(_) => "reload_failed",
        }
    }

    /// The worker the event is about; `None` for pool-wide events, which
    /// every stream carries, also one filtered with `?world=`.
    pub fn worker(&self) -> Option<&str> {
        match self {
            AppEvent::Reloaded(_) | AppEvent::ReloadFailed(_) => None,
        }
    }
}

impl Listener for AppEvents {
    fn reloaded(&self, report: &ReloadReport) {
        self.publish(AppEvent::Reloaded(report.clone()));
    }

    fn reload_failed(&self, failure: &ReloadFailure) {
        self.publish(AppEvent::ReloadFailed(failure.clone()));
    }
}

/// The sending side, cheap to clone; publishing never waits.
#[derive(Debug, Clone)]
pub struct AppEvents {
    tx: broadcast::Sender<AppEvent>,
}

impl Default for AppEvents {
    fn default() -> Self {
        AppEvents {
            tx: broadcast::channel(APP_EVENT_BUFFER).0,
        }
    }
}

impl AppEvents {
    /// Send to every subscriber (nothing happens without one).
    pub fn publish(&self, event: AppEvent) {
        let _ = self.tx.send(event);
    }

    /// Follow the events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.tx.subscribe()
    }
}
