//! The cluster's rows (PostgreSQL only): nodes, world leases with epochs,
//! and the fence a leased world's writes check first.
//!
//! A node ([`crate::cluster`]) runs one short transaction per tick
//! ([`Store::lease_tick`]); a worker it spawns writes with the
//! [`Fence`] (node, epoch) of its world's lease ([`Store::open_fenced`]):
//! every write transaction first reads the lease row `FOR KEY SHARE` and
//! refuses with [`StoreError::Fenced`] when it is no longer that node's at
//! that epoch. Runs and `world_state` record the epoch they were written
//! under; `world_state` never goes back to a lower one.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};

/// The lease a worker writes under: the node that holds its world's lease
/// and the lease's epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The holder's `node_id`.
    pub node: String,
    /// The epoch of the lease when the worker was started.
    pub epoch: i64,
}

/// A node as it announces itself each tick.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `host:pid:random`, new at every start.
    pub node_id: String,
    /// `[cluster] node_name`, or the host name.
    pub node_name: String,
    /// When this node started.
    pub started_at: DateTime<Utc>,
    /// Its `[cluster] lease_ttl` (nodes must agree).
    pub lease_ttl: Duration,
    /// A digest of its world list (nodes must agree).
    pub worlds_hash: String,
    /// Its API address, when it serves one.
    pub api: Option<String>,
}

/// One tick's question.
#[derive(Debug)]
pub struct TickRequest<'a> {
    /// Who asks.
    pub node: &'a NodeInfo,
    /// The config's worlds (lease rows are made for each), balanced
    /// among the nodes.
    pub worlds: &'a [String],
    /// A lease outside the balance (the status watcher's): its row is
    /// made too, and it is taken this tick when free.
    pub extra: Option<&'a str>,
    /// `(world, epoch)` the node holds and renews.
    pub held: &'a [(String, i64)],
    /// `(world, epoch)` it gives up (their epochs stay).
    pub release: &'a [(String, i64)],
    /// Whether it may take leases this tick (not on its first).
    pub acquire: bool,
}

/// A live node's row.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    /// `host:pid:random`.
    pub node_id: String,
    /// Its name.
    pub node_name: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last renewal (database clock).
    pub renewed_at: DateTime<Utc>,
    /// When it counts as gone unless it renews.
    pub expires_at: DateTime<Utc>,
    /// Its lease TTL, ms.
    #[serde(serialize_with = "millis")]
    #[schema(value_type = u64)]
    pub lease_ttl: Duration,
    /// The digest of its world list.
    pub worlds_hash: String,
    /// Its API address.
    pub api: Option<String>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A world's lease row.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeaseRow {
    /// The world (or the status watcher's lease).
    pub world: String,
    /// The holder, when someone holds or held it and did not release it.
    pub owner: Option<String>,
    /// Grows by one at every acquisition; never reset.
    pub epoch: i64,
    /// When the holder's right ends unless renewed.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the holder took it.
    pub acquired_at: Option<DateTime<Utc>>,
    /// When it was last released.
    pub released_at: Option<DateTime<Utc>>,
    /// Held and not expired (database clock).
    pub live: bool,
}

impl LeaseRow {
    /// Since when nobody owns it (released or expired), if nobody does.
    pub fn unowned_since(&self) -> Option<DateTime<Utc>> {
        if self.live {
            return None;
        }
        match (&self.owner, self.expires_at, self.released_at) {
            (Some(_), Some(expired), _) => Some(expired),
            (_, _, Some(released)) => Some(released),
            _ => None,
        }
    }
}

/// Who is alive and who holds what, as one tick saw it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeaseSnapshot {
    /// The database's clock at the tick.
    pub db_now: DateTime<Utc>,
    /// Live nodes, by id.
    pub nodes: Vec<NodeRow>,
    /// Every lease row, by world.
    pub leases: Vec<LeaseRow>,
    /// Live leases among the config's worlds per live owner (owners
    /// holding none are listed with 0).
    pub holdings: BTreeMap<String, usize>,
}

impl LeaseSnapshot {
    /// A snapshot, with the holdings of the live nodes among `worlds`.
    pub fn new(
        db_now: DateTime<Utc>,
        nodes: Vec<NodeRow>,
        leases: Vec<LeaseRow>,
        worlds: &[String],
    ) -> LeaseSnapshot {
        let mut holdings: BTreeMap<String, usize> =
            nodes.iter().map(|n| (n.node_id.clone(), 0)).collect();
        for l in &leases {
            if let (true, Some(owner)) = (l.live, &l.owner)
                && worlds.contains(&l.world)
                && let Some(n) = holdings.get_mut(owner)
            {
                *n += 1;
            }
        }
        LeaseSnapshot {
            db_now,
            nodes,
            leases,
            holdings,
        }
    }

    /// Live leases among the worlds that no live node holds.
    pub fn free(&self, worlds: &[String]) -> usize {
        let held: usize = self.holdings.values().sum();
        worlds.len().saturating_sub(held)
    }
}

/// One tick's answer.
#[derive(Debug, Clone)]
pub struct TickAnswer {
    /// The database's clock at the tick.
    pub db_now: DateTime<Utc>,
    /// The leases renewed (a held lease missing here is lost).
    pub renewed: Vec<(String, i64)>,
    /// The leases taken, with their new epochs.
    pub acquired: Vec<(String, i64)>,
    /// Who was alive and held what, after the acquisitions.
    pub snapshot: LeaseSnapshot,
}

fn postgres_only(what: &str) -> StoreError {
    StoreError::Rejected(format!(
        "{what}: the cluster needs PostgreSQL ([storage] url = \"postgres://…\")"
    ))
}

impl Store {
    /// Open the store for a worker that writes under `fence`: every run
    /// write first checks the lease, and the session ends a transaction
    /// left idle for `idle_in_transaction` (a stopped worker cannot hold
    /// its lease row). PostgreSQL only.
    pub async fn open_fenced(
        url: &str,
        max_connections: usize,
        fence: Fence,
        idle_in_transaction: Duration,
    ) -> Result<Store, StoreError> {
        match Store::open_session(url, max_connections, idle_in_transaction).await? {
            Store::Postgres(pg) => Ok(Store::Postgres(pg.with_fence(fence))),
            Store::Sqlite(_) => Err(postgres_only("a fenced writer")),
        }
    }

    /// Open the store for a node's ticks: a small pool whose statements
    /// and lock waits end at `timeout`. PostgreSQL only.
    pub async fn open_leases(url: &str, timeout: Duration) -> Result<Store, StoreError> {
        match Store::open_statements(url, 2, timeout).await? {
            s @ Store::Postgres(_) => Ok(s),
            Store::Sqlite(_) => Err(postgres_only("the cluster's leases")),
        }
    }

    async fn open_session(
        url: &str,
        max_connections: usize,
        idle_in_transaction: Duration,
    ) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = format!(
                "-c idle_in_transaction_session_timeout={}",
                idle_in_transaction.as_millis().max(1)
            );
            Ok(Store::Postgres(
                super::pg::PgStore::open_with_options(url, max_connections.max(1), &options)
                    .await?,
            ))
        } else {
            Store::open(url, max_connections).await
        }
    }

    async fn open_statements(
        url: &str,
        max_connections: usize,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let ms = timeout.as_millis().max(1);
            let options = format!(
                "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
                ms * 2
            );
            Ok(Store::Postgres(
                super::pg::PgStore::open_with_options(url, max_connections, &options).await?,
            ))
        } else {
            Store::open(url, max_connections).await
        }
    }

    /// One tick of a node ([`TickRequest`]); `plan` says how many free
    /// world leases to take given the snapshot.
    pub async fn lease_tick(
        &self,
        req: &TickRequest<'_>,
        plan: &(dyn Fn(&LeaseSnapshot) -> usize + Send + Sync),
    ) -> Result<TickAnswer, StoreError> {
        match self {
            Store::Postgres(s) => s.lease_tick(req, plan).await,
            Store::Sqlite(_) => Err(postgres_only("lease_tick")),
        }
    }

    /// Free leases now, keeping their epochs.
    pub async fn lease_release(
        &self,
        node_id: &str,
        leases: &[(String, i64)],
    ) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => s.lease_release(node_id, leases).await,
            Store::Sqlite(_) => Err(postgres_only("lease_release")),
        }
    }

    /// The node leaves the cluster now.
    pub async fn node_leave(&self, node_id: &str) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => s.node_leave(node_id).await,
            Store::Sqlite(_) => Err(postgres_only("node_leave")),
        }
    }

    /// `NOTIFY channel, payload` (PostgreSQL only).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => s.notify(channel, payload).await,
            Store::Sqlite(_) => Err(postgres_only("notify")),
        }
    }

    /// The payloads of `NOTIFY channel` on a connection of its own that
    /// reconnects; `None` on SQLite.
    pub fn listen(&self, channel: &str) -> Option<tokio::sync::mpsc::Receiver<String>> {
        match self {
            Store::Postgres(s) => Some(s.listen(channel)),
            Store::Sqlite(_) => None,
        }
    }

    /// Live nodes and every lease, read-only.
    pub async fn lease_view(&self, worlds: &[String]) -> Result<LeaseSnapshot, StoreError> {
        match self {
            Store::Postgres(s) => s.lease_view(worlds).await,
            Store::Sqlite(_) => Err(postgres_only("lease_view")),
        }
    }
}
