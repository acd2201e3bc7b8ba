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
    /// A cluster node took a world's lease (and started its worker).
    LeaseAcquired {
        /// The world (or `watcher`).
        world: String,
        /// The lease's new epoch.
        epoch: i64,
    },
    /// A cluster node lost or gave up a lease (and stopped its worker):
    /// `reason` is `taken`, `expired`, `shed` or `removed`.
    LeaseLost {
        /// The world.
        world: String,
        /// The epoch it held.
        epoch: i64,
        /// Why.
        reason: String,
    },
    /// A node appeared among the cluster's live ones.
    NodeJoined {
        /// Its id (`host:pid:random`).
        node_id: String,
        /// Its name.
        node_name: String,
    },
    /// A node is no longer among the live ones.
    NodeGone {
        /// Its id.
        node_id: String,
    },
}

impl From<ClusterEvent> for AppEvent {
    fn from(e: ClusterEvent) -> AppEvent {
        match e {
            ClusterEvent::LeaseAcquired { world, epoch } => {
                AppEvent::LeaseAcquired { world, epoch }
            }
            ClusterEvent::LeaseLost {
                world,
                epoch,
                reason,
            } => AppEvent::LeaseLost {
                world,
                epoch,
                reason,
            },
            ClusterEvent::NodeJoined { node_id, node_name } => {
                AppEvent::NodeJoined { node_id, node_name }
            }
            ClusterEvent::NodeGone { node_id } => AppEvent::NodeGone { node_id },
        }
    }
}

impl AppEvent {
    /// The SSE event name (`reloaded`, `reload_failed`).
    pub fn name(&self) -> &'static str {
        match self {
            AppEvent::Reloaded(_) => "reloaded",
            AppEvent::ReloadFailed(_) => "reload_failed",
            AppEvent::LeaseAcquired { .. } => "lease_acquired",
            AppEvent::LeaseLost { .. } => "lease_lost",
            AppEvent::NodeJoined { .. } => "node_joined",
            AppEvent::NodeGone { .. } => "node_gone",
        }
    }

    /// The worker the event is about; `None` for pool-wide events, which
    /// every stream carries, also one filtered with `?world=`.
    pub fn worker(&self) -> Option<&str> {
        match self {
            AppEvent::LeaseAcquired { world, .. } | AppEvent::LeaseLost { world, .. } => {
                Some(world)
            }
            AppEvent::Reloaded(_)
            | AppEvent::ReloadFailed(_)
            | AppEvent::NodeJoined { .. }
            | AppEvent::NodeGone { .. } => None,
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
                    Ok(e) => me.publish(e.into()),
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
