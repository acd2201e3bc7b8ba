//! What `GET /api/cluster` shows: the nodes, the leases, this node, the
//! balance, the alarms; and the counters `/metrics` exports.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::ClusterEvent;
use crate::store::cluster::{LeaseRow, NodeRow};

/// Monotonic counters of this node.
#[derive(Debug, Default)]
pub struct Counters {
    /// Leases taken.
    pub acquisitions: AtomicU64,
    /// Leases lost (taken by another, or expired before a renewal).
    pub losses: AtomicU64,
    /// Leases given up for balance or because the world left the config.
    pub released: AtomicU64,
    /// Workers that ended `fenced` (a write refused by the fence).
    pub fenced: AtomicU64,
    /// Ticks that committed.
    pub ticks_ok: AtomicU64,
    /// Ticks that failed or timed out.
    pub ticks_failed: AtomicU64,
    /// Times this node killed its workers because it could not renew.
    pub self_fenced: AtomicU64,
    /// Sum of the committed ticks' durations, microseconds.
    pub renew_micros_sum: AtomicU64,
    /// The last committed tick's duration, microseconds.
    pub renew_micros_last: AtomicU64,
}

impl Counters {
    /// The values now.
    pub fn view(&self) -> CounterView {
        CounterView {
            acquisitions: Counters::get(&self.acquisitions),
            losses: Counters::get(&self.losses),
            released: Counters::get(&self.released),
            fenced: Counters::get(&self.fenced),
            ticks_ok: Counters::get(&self.ticks_ok),
            ticks_failed: Counters::get(&self.ticks_failed),
            self_fenced: Counters::get(&self.self_fenced),
            renew_ms_last: Counters::get(&self.renew_micros_last) as f64 / 1000.0,
        }
    }

    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// [`Counters`] as `/api/cluster` shows them.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct CounterView {
    /// Leases taken.
    pub acquisitions: u64,
    /// Leases lost.
    pub losses: u64,
    /// Leases given up.
    pub released: u64,
    /// Workers ended `fenced`.
    pub fenced: u64,
    /// Ticks committed.
    pub ticks_ok: u64,
    /// Ticks failed.
    pub ticks_failed: u64,
    /// Self-fences.
    pub self_fenced: u64,
    /// The last committed tick's duration, ms.
    pub renew_ms_last: f64,
}

/// A lease this node holds.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Held {
    /// The world (or `watcher`).
    pub world: String,
    /// Its epoch.
    pub epoch: i64,
    /// Being given up at its worker's next scrape boundary.
    pub shedding: bool,
}

/// This node.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct ThisNode {
    /// `host:pid:random`.
    pub node_id: String,
    /// Its name.
    pub node_name: String,
    /// Whether its first tick committed.
    pub joined: bool,
    /// The leases it holds.
    pub held: Vec<Held>,
    /// How many worlds it should hold.
    pub target: usize,
    /// How much longer it trusts its leases without a renewal, ms.
    pub trusted_for_ms: u64,
    /// When its last tick committed (database clock).
    pub last_renew_at: Option<DateTime<Utc>>,
    /// The last tick's error, if the last tick failed.
    pub last_error: Option<String>,
}

/// A live node as listed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct NodeView {
    /// The node's row.
    #[serde(flatten)]
    pub row: NodeRow,
    /// The worlds it holds (live leases).
    pub worlds_held: usize,
}

/// A lease as listed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LeaseView {
    /// The lease's row.
    #[serde(flatten)]
    pub row: LeaseRow,
    /// The owner's name, when it is a live node.
    pub owner_name: Option<String>,
    /// Seconds without a live owner, when it has none.
    pub unowned_for_s: Option<f64>,
    /// Without an owner for more than 2 × `lease_ttl`.
    pub alarm: bool,
}

/// The balance.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct Balance {
    /// Worlds in the config.
    pub worlds: usize,
    /// Live nodes.
    pub nodes: usize,
    /// Worlds held by live nodes.
    pub owned: usize,
    /// Largest minus smallest holding.
    pub spread: usize,
}

/// `GET /api/cluster`.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct ClusterView {
    /// `ok`, `alarm` (a world without an owner for more than 2 TTL),
    /// `joining` (no tick committed yet), `isolated` (the last tick
    /// failed), `off` (not a cluster node).
    pub state: String,
    /// `lease_ttl`, ms.
    pub lease_ttl_ms: u64,
    /// `renew_every`, ms.
    pub renew_every_ms: u64,
    /// This node.
    pub this_node: ThisNode,
    /// The live nodes.
    pub nodes: Vec<NodeView>,
    /// Every lease.
    pub leases: Vec<LeaseView>,
    /// The balance.
    pub balance: Balance,
    /// Worlds in alarm.
    pub alarms: Vec<String>,
    /// The database's clock at the last tick.
    pub db_now: Option<DateTime<Utc>>,
    /// This node's counters.
    pub counters: CounterView,
}

impl ClusterView {
    /// What a node not in a cluster shows.
    pub fn off() -> ClusterView {
        ClusterView {
            state: "off".into(),
            ..ClusterView::default()
        }
    }
}

/// Shared between the node's task and the API.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) view: RwLock<ClusterView>,
    pub(super) events: broadcast::Sender<ClusterEvent>,
    pub(super) counters: Counters,
}

impl Shared {
    pub(super) fn new(view: ClusterView) -> Shared {
        Shared {
            view: RwLock::new(view),
            events: broadcast::channel(256).0,
            counters: Counters::default(),
        }
    }

    pub(super) fn view(&self) -> ClusterView {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut ClusterView)) {
        f(&mut self.view.write().unwrap_or_else(|p| p.into_inner()));
    }

    pub(super) fn emit(&self, event: ClusterEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}
