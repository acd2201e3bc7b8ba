//! PostgreSQL: migration 5 and the cluster's leases — nodes, world leases
//! with epochs, one short transaction per tick, and the fence every write
//! of a leased world checks first ([`crate::store::cluster`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::StoreError;
use super::super::cluster::{Fence, LeaseRow, LeaseSnapshot, NodeRow, TickAnswer, TickRequest};
use super::{PgStore, pg_err};

/// Migration 5: the cluster's nodes and world leases (logged rows: the
/// database's clock and durability decide who owns a world), and the epoch
/// under which each run and each world's state was written.
pub(super) const MIGRATION_5: &str = r#"
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,              -- host:pid:random, one per start
    node_name TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    lease_ttl_ms BIGINT NOT NULL,
    worlds_hash TEXT NOT NULL,
    api TEXT
);
CREATE TABLE world_leases (
    world TEXT PRIMARY KEY,
    owner TEXT,                            -- a node_id; NULL: free
    epoch BIGINT NOT NULL DEFAULT 0,       -- only ever grows
    expires_at TIMESTAMPTZ,
    acquired_at TIMESTAMPTZ,
    released_at TIMESTAMPTZ
);
ALTER TABLE runs ADD COLUMN epoch BIGINT;
ALTER TABLE world_state ADD COLUMN epoch BIGINT;
"#;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn pairs(leases: &[(String, i64)]) -> (Vec<&str>, Vec<i64>) {
    (
        leases.iter().map(|(w, _)| w.as_str()).collect(),
        leases.iter().map(|(_, e)| *e).collect(),
    )
}

/// Upsert the node's row; `now() + ttl` is its new expiry.
const UPSERT_NODE: &str = "
INSERT INTO nodes (node_id, node_name, started_at, renewed_at, expires_at, lease_ttl_ms, worlds_hash, api)
VALUES ($1, $2, $3, now(), now() + $4::BIGINT * interval '1 millisecond', $4, $5, $6)
ON CONFLICT (node_id) DO UPDATE SET renewed_at = now(),
    expires_at = EXCLUDED.expires_at, lease_ttl_ms = EXCLUDED.lease_ttl_ms,
    worlds_hash = EXCLUDED.worlds_hash, api = EXCLUDED.api";

/// Free the leases a node gives up, keeping their epochs.
const RELEASE: &str = "
UPDATE world_leases SET owner = NULL, expires_at = NULL, released_at = now()
WHERE owner = $1 AND (world, epoch) IN (SELECT * FROM unnest($2::TEXT[], $3::BIGINT[]))";

/// Renew exactly the leases a node holds, by world, owner and epoch.
const RENEW: &str = "
UPDATE world_leases SET expires_at = now() + $4::BIGINT * interval '1 millisecond'
WHERE owner = $1 AND (world, epoch) IN (SELECT * FROM unnest($2::TEXT[], $3::BIGINT[]))
RETURNING world, epoch";

/// Take up to `$3` free or expired leases, epoch + 1 each. Rows a writer
/// holds (`FOR KEY SHARE` in its fence) are skipped, never waited for.
const ACQUIRE: &str = "
WITH picked AS (
    SELECT world FROM world_leases
    WHERE world = ANY($2::TEXT[]) AND (owner IS NULL OR expires_at <= now())
    ORDER BY world
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE world_leases l SET owner = $1, epoch = l.epoch + 1,
    expires_at = now() + $4::BIGINT * interval '1 millisecond', acquired_at = now(), released_at = NULL
FROM picked WHERE l.world = picked.world
RETURNING l.world, l.epoch";

const LIVE_NODES: &str = "
SELECT node_id, node_name, started_at, renewed_at, expires_at, lease_ttl_ms, worlds_hash, api
FROM nodes WHERE expires_at > now() ORDER BY node_id";

const LEASES: &str = "
SELECT world, owner, epoch, expires_at, acquired_at, released_at, (owner IS NOT NULL AND expires_at > now())
FROM world_leases ORDER BY world";

fn node_of(r: &tokio_postgres::Row) -> NodeRow {
    NodeRow {
        node_id: r.get(0),
        node_name: r.get(1),
        started_at: r.get(2),
        renewed_at: r.get(3),
        expires_at: r.get(4),
        lease_ttl: Duration::from_millis(u64::try_from(r.get::<_, i64>(5)).unwrap_or(0)),
        worlds_hash: r.get(6),
        api: r.get(7),
    }
}

fn lease_of(r: &tokio_postgres::Row) -> LeaseRow {
    LeaseRow {
        world: r.get(0),
        owner: r.get(1),
        epoch: r.get(2),
        expires_at: r.get(3),
        acquired_at: r.get(4),
        released_at: r.get(5),
        live: r.get(6),
    }
}

fn epochs(rows: &[tokio_postgres::Row]) -> Vec<(String, i64)> {
    rows.iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect()
}

impl PgStore {
    /// One tick of a node, in one transaction: upsert the node, release
    /// what it gives up, renew what it holds, make sure every world has a
    /// lease row, then take as many free leases as `plan` says given the
    /// live nodes and who holds what.
    pub async fn lease_tick(
        &self,
        req: &TickRequest<'_>,
        plan: &(dyn Fn(&LeaseSnapshot) -> usize + Send + Sync),
    ) -> Result<TickAnswer, StoreError> {
        let node = req.node;
        let ttl = millis(node.lease_ttl);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let db_now: DateTime<Utc> = tx
            .query_one("SELECT now()", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        tx.execute(
            UPSERT_NODE,
            &[
                &node.node_id,
                &node.node_name,
                &node.started_at,
                &ttl,
                &node.worlds_hash,
                &node.api,
            ],
        )
        .await
        .map_err(pg_err)?;
        if !req.release.is_empty() {
            let (w, e) = pairs(req.release);
            tx.execute(RELEASE, &[&node.node_id, &w, &e])
                .await
                .map_err(pg_err)?;
        }
        let (w, e) = pairs(req.held);
        let renewed = epochs(
            &tx.query(RENEW, &[&node.node_id, &w, &e, &ttl])
                .await
                .map_err(pg_err)?,
        );
        let rows: Vec<&str> = req
            .worlds
            .iter()
            .map(String::as_str)
            .chain(req.extra)
            .collect();
        tx.execute(
            "INSERT INTO world_leases (world) SELECT unnest($1::TEXT[]) ON CONFLICT (world) DO NOTHING",
            &[&rows],
        )
        .await
        .map_err(pg_err)?;
        let nodes: Vec<NodeRow> = tx
            .query(LIVE_NODES, &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(node_of)
            .collect();
        let leases: Vec<LeaseRow> = tx
            .query(LEASES, &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(lease_of)
            .collect();
        let snapshot = LeaseSnapshot::new(db_now, nodes, leases, req.worlds);
        let want = if req.acquire { plan(&snapshot) } else { 0 };
        let mut acquired = if want > 0 {
            let limit = i64::try_from(want).unwrap_or(i64::MAX);
            epochs(
                &tx.query(ACQUIRE, &[&node.node_id, &req.worlds, &limit, &ttl])
                    .await
                    .map_err(pg_err)?,
            )
        } else {
            Vec::new()
        };
        // The extra lease on its own: a node that wants it must not get a
        // world instead.
        if let (Some(extra), true) = (req.extra, req.acquire) {
            acquired.extend(epochs(
                &tx.query(ACQUIRE, &[&node.node_id, &vec![extra], &1i64, &ttl])
                    .await
                    .map_err(pg_err)?,
            ));
        }
        // What the API shows: the leases after this tick's acquisitions.
        let snapshot = if acquired.is_empty() {
            snapshot
        } else {
            let leases: Vec<LeaseRow> = tx
                .query(LEASES, &[])
                .await
                .map_err(pg_err)?
                .iter()
                .map(lease_of)
                .collect();
            LeaseSnapshot::new(db_now, snapshot.nodes, leases, req.worlds)
        };
        tx.commit().await.map_err(pg_err)?;
        Ok(TickAnswer {
            db_now,
            renewed,
            acquired,
            snapshot,
        })
    }

    /// Free leases at once (a node shedding a world after its worker
    /// stopped, or stopping): their epochs stay.
    pub async fn lease_release(
        &self,
        node_id: &str,
        leases: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let (w, e) = pairs(leases);
        client
            .execute(RELEASE, &[&node_id, &w, &e])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    /// A node leaves: its row expires now, so the others count it out on
    /// their next tick.
    pub async fn node_leave(&self, node_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE nodes SET expires_at = now() WHERE node_id = $1",
                &[&node_id],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    /// The live nodes and every lease, read-only.
    pub async fn lease_view(&self, worlds: &[String]) -> Result<LeaseSnapshot, StoreError> {
        let client = self.client().await?;
        let db_now: DateTime<Utc> = client
            .query_one("SELECT now()", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        let nodes = client
            .query(LIVE_NODES, &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(node_of)
            .collect();
        let leases = client
            .query(LEASES, &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(lease_of)
            .collect();
        Ok(LeaseSnapshot::new(db_now, nodes, leases, worlds))
    }
}

impl PgStore {
    /// `NOTIFY channel, payload`.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    /// The payloads of `NOTIFY channel`, on a connection of its own that
    /// reconnects (with backoff) whenever it breaks, until the receiver is
    /// dropped. Notifications sent while it was down are lost: callers
    /// have a fallback.
    pub fn listen(&self, channel: &str) -> tokio::sync::mpsc::Receiver<String> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (url, tls, channel) = (self.url.clone(), self.tls.clone(), channel.to_string());
        tokio::spawn(async move {
            let mut attempt = 0u32;
            while !tx.is_closed() {
                match listen_once(&url, tls.clone(), &channel, &tx).await {
                    Ok(()) => attempt = 0,
                    Err(e) => {
                        tracing::debug!(error = %e, %channel, "LISTEN connection lost; reconnecting");
                        attempt = attempt.saturating_add(1);
                    }
                }
                let delay = Duration::from_millis(200 * u64::from(attempt.min(10)) + 100);
                tokio::time::sleep(delay).await;
            }
        });
        rx
    }
}

/// One `LISTEN` connection: forwards payloads until it breaks or nobody
/// listens.
async fn listen_once(
    url: &str,
    tls: super::tls::MakeRustls,
    channel: &str,
    tx: &tokio::sync::mpsc::Sender<String>,
) -> Result<(), StoreError> {
    use futures_util::StreamExt as _;
    let (client, mut connection) = tokio_postgres::connect(url, tls).await.map_err(pg_err)?;
    let (msgs_tx, mut msgs) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if msgs_tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN connection error");
                    break;
                }
            }
        }
    });
    let quoted = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
    client.batch_execute(&quoted).await.map_err(pg_err)?;
    while let Some(payload) = msgs.recv().await {
        if tx.send(payload).await.is_err() {
            break;
        }
    }
    driver.abort();
    Ok(())
}

/// The fence of a write, first statement of its transaction: the lease of
/// the world must still be this node's at this epoch. `FOR KEY SHARE` holds
/// it until the commit (an acquisition's `FOR UPDATE SKIP LOCKED` passes it
/// by) without blocking the owner's renewals.
pub(super) async fn check_fence(
    tx: &deadpool_postgres::Transaction<'_>,
    world: &str,
    fence: &Fence,
) -> Result<(), StoreError> {
    let row = tx
        .query_opt(
            "SELECT epoch FROM world_leases WHERE world = $1 AND owner = $2 AND epoch = $3 FOR KEY SHARE",
            &[&world, &fence.node, &fence.epoch],
        )
        .await
        .map_err(pg_err)?;
    match row {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced(format!(
            "world `{world}`: the lease of node {} at epoch {} is gone (another node owns the world now)",
            fence.node, fence.epoch
        ))),
    }
}
