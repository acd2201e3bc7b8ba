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

use crate::cluster::ClusterEvent;
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
    /// A cluster node's lease or membership changed (`lease_acquired`,
    /// `lease_lost`, `node_joined`, `node_gone`: [`ClusterEvent`]).
    #[serde(untagged)]
    Cluster(ClusterEvent),
}

impl AppEvent {
    /// The SSE event name (`reloaded`, `reload_failed`).
    pub fn name(&self) -> &'static str {
        match self {
            AppEvent::Reloaded(_) => "reloaded",
            AppEvent::ReloadFailed(_) => "reload_failed",
            AppEvent::Cluster(e) => e.name(),
        }
    }

    /// The worker the event is about; `None` for pool-wide events, which
    /// every stream carries, also one filtered with `?world=`.
    pub fn worker(&self) -> Option<&str> {
        match self {
            AppEvent::Cluster(
                ClusterEvent::LeaseAcquired { world, .. } | ClusterEvent::LeaseLost { world, .. },
            ) => Some(world),
            AppEvent::Reloaded(_) | AppEvent::ReloadFailed(_) | AppEvent::Cluster(_) => None,
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

    /// Carry a cluster node's events from now on (until it is gone).
    pub fn follow_cluster(&self, cluster: &crate::cluster::Cluster) {
        let mut rx = cluster.subscribe();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => me.publish(AppEvent::Cluster(e)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "cluster events lost on their way to the API");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Follow the events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_events_carry_their_name_in_event_like_the_others() {
        let e = AppEvent::Cluster(ClusterEvent::LeaseLost {
            world: "Aurera".into(),
            epoch: 3,
            reason: "shed".into(),
        });
        assert_eq!(e.name(), "lease_lost");
        assert_eq!(e.worker(), Some("Aurera"));
        assert_eq!(
            serde_json::to_value(&e).expect("JSON"),
            serde_json::json!({"event": "lease_lost", "world": "Aurera", "epoch": 3, "reason": "shed"})
        );
        let gone = AppEvent::Cluster(ClusterEvent::NodeGone {
            node_id: "h:1:x".into(),
        });
        assert_eq!(gone.worker(), None);
        assert_eq!(
            serde_json::to_value(&gone).expect("JSON"),
            serde_json::json!({"event": "node_gone", "node_id": "h:1:x"})
        );
    }
}
