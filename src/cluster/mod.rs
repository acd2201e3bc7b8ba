//! Scale-out: several `worldpool run` nodes on one PostgreSQL share the
//! world list by leases (`[cluster]`).
//!
//! Each node runs one short transaction per `renew_every`
//! ([`crate::store::Store::lease_tick`]): it upserts its row in `nodes`,
//! renews exactly the leases it holds (by world, owner and epoch — a lease
//! missing from the answer is lost and its worker is killed at once),
//! and takes free or expired leases up to its share ([`balance`]), each
//! with epoch + 1. Time is the database's clock. A world's worker is
//! spawned with its lease's (node, epoch) ([`crate::store::Fence`]): its
//! writes check the lease inside their transaction and a refused write
//! ends the worker with the exit reason `fenced`.
//!
//! A node that cannot renew trusts its leases only until the start of its
//! last successful renewal + `lease_ttl` − [`margin`], on `CLOCK_BOOTTIME`
//! ([`clock`]); then it kills their workers. Surplus worlds are shed one
//! per tick at a scrape boundary (the worker is asleep between runs), the
//! lease released with its epoch kept, so the next owner takes it on its
//! next tick.
//!
//! The status watcher has a lease of its own (named like its worker):
//! the node holding it runs the watcher, whose news reach the other
//! nodes' workers through PostgreSQL `NOTIFY`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

pub mod balance;
pub mod clock;
pub mod news;
mod node;
pub mod view;

pub use node::{NodeSetup, check_join, node_identity, start, worlds_hash};
pub use view::{ClusterView, Counters};

/// How long before its lease's end (by its own clock) a node that could
/// not renew kills its workers: a quarter of the TTL.
pub fn margin(lease_ttl: Duration) -> Duration {
    lease_ttl / 4
}

/// How long one tick may take: shorter than the [`margin`], so a tick that
/// hangs cannot carry a node past the moment it must fence itself.
pub fn renew_timeout(lease_ttl: Duration, renew_every: Duration) -> Duration {
    (margin(lease_ttl) * 4 / 5).min(renew_every)
}

/// What the cluster tells the API's event stream: serialized with its
/// name in `event` (`{"event": "lease_acquired", …}`), as every
/// [`crate::app_events::AppEvent`].
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// This node took a world's lease (and started its worker).
    LeaseAcquired {
        /// The world (or the watcher's lease).
        world: String,
        /// The new epoch.
        epoch: i64,
    },
    /// This node lost or gave up a lease (and stopped its worker).
    LeaseLost {
        /// The world.
        world: String,
        /// The epoch it held.
        epoch: i64,
        /// `taken` (another node has it), `expired` (this node could not
        /// renew in time), `shed` (given up for balance), `removed` (no
        /// longer in the config).
        reason: String,
    },
    /// A node appeared among the live ones.
    NodeJoined {
        /// Its id.
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

impl ClusterEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            ClusterEvent::LeaseAcquired { .. } => "lease_acquired",
            ClusterEvent::LeaseLost { .. } => "lease_lost",
            ClusterEvent::NodeJoined { .. } => "node_joined",
            ClusterEvent::NodeGone { .. } => "node_gone",
        }
    }
}

/// The API's handle on the node: the latest view, the events, the
/// counters.
#[derive(Debug, Clone)]
pub struct Cluster {
    shared: Arc<view::Shared>,
}

impl Cluster {
    /// The cluster as this node saw it at its last tick.
    pub fn view(&self) -> ClusterView {
        self.shared.view()
    }

    /// Subscribe to [`ClusterEvent`]s.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.shared.events.subscribe()
    }

    /// The counters (for `/metrics`).
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}
