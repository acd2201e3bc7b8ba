//! The node's task: one tick per `renew_every`, the self-fence on its own
//! clock, the workers of the leases it holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool::PoolHandle;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::balance::{self, Move};
use super::clock::BootInstant;
use super::view::{Balance, ClusterView, Counters, Held, LeaseView, NodeView, Shared, ThisNode};
use super::{Cluster, ClusterEvent, margin, renew_timeout};
use crate::config::Config;
use crate::protocol::Phase;
use crate::store::cluster::{LeaseSnapshot, NodeInfo, TickAnswer, TickRequest};
use crate::store::{Fence, Store};

/// What a node needs.
pub struct NodeSetup {
    /// The config the workers read (their private copy).
    pub workers: Config,
    /// The worker program.
    pub exe: PathBuf,
    /// The pool the workers run in.
    pub pool: PoolHandle,
    /// The tick's store ([`Store::open_leases`]).
    pub store: Store,
    /// Who this node is.
    pub info: NodeInfo,
    /// Told the number of live nodes whenever it changes (the pool's
    /// budget takes its share of the site's limits).
    pub on_nodes: Box<dyn Fn(usize) + Send + Sync>,
}

/// What the node task hears besides its timers.
enum Note {
    /// A shed or removed world's worker is gone: release its lease.
    Stopped { world: String, epoch: i64 },
    /// The worker of an acquired lease was started (or failed to).
    Started { world: String },
}

/// Start the node's task (inside the supervisor's runtime). It ends when
/// `stop` is cancelled; the returned handle's [`NodeTask::leave`] then
/// releases the leases once the workers are stopped.
pub fn start(
    setup: NodeSetup,
    mut configs: watch::Receiver<Config>,
    stop: CancellationToken,
) -> (Cluster, tokio::task::JoinHandle<()>) {
    let settings = setup.workers.cluster.clone();
    let shared = Arc::new(Shared::new(ClusterView {
        state: "joining".into(),
        lease_ttl_ms: millis(settings.lease_ttl),
        renew_every_ms: millis(settings.renew_every),
        this_node: ThisNode {
            node_id: setup.info.node_id.clone(),
            node_name: setup.info.node_name.clone(),
            ..ThisNode::default()
        },
        ..ClusterView::default()
    }));
    let cluster = Cluster {
        shared: shared.clone(),
    };
    let (notes, notes_rx) = mpsc::unbounded_channel();
    let mut node = Node {
        worlds: world_names(&setup.workers),
        setup,
        shared,
        held: BTreeMap::new(),
        shedding: BTreeSet::new(),
        release: Vec::new(),
        last_ok: None,
        joined: false,
        registered: false,
        live_nodes: BTreeSet::new(),
        unowned_since: HashMap::new(),
        notes,
    };
    let task = tokio::spawn(async move {
        node.run(&mut configs, notes_rx, stop).await;
    });
    (cluster, task)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The leases a config's node competes for: every world, and the status
/// watcher's when the config runs one.
fn world_names(config: &Config) -> Vec<String> {
    config.worlds.iter().map(|w| w.name.clone()).collect()
}

fn watcher_lease(config: &Config) -> Option<String> {
    crate::topology::roles(config)
        .watcher
        .then(|| crate::topology::WATCHER_NAME.to_string())
}

struct Node {
    setup: NodeSetup,
    shared: Arc<Shared>,
    /// The config's worlds.
    worlds: Vec<String>,
    /// world → epoch of the leases held (the watcher's included).
    held: BTreeMap<String, i64>,
    /// Held worlds whose worker is being stopped to give them up.
    shedding: BTreeSet<String>,
    /// Leases to release at the next tick (a release that failed).
    release: Vec<(String, i64)>,
    /// The start of the last committed tick.
    last_ok: Option<BootInstant>,
    joined: bool,
    /// The last tick committed: this one may take leases. After a failed
    /// tick (the database was away) a node first registers again, so that
    /// the node back first does not take every world before the others
    /// are counted.
    registered: bool,
    live_nodes: BTreeSet<String>,
    /// When this node first saw each world without a live owner.
    unowned_since: HashMap<String, Instant>,
    notes: mpsc::UnboundedSender<Note>,
}

impl Node {
    fn ttl(&self) -> Duration {
        self.setup.workers.cluster.lease_ttl
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    async fn run(
        &mut self,
        configs: &mut watch::Receiver<Config>,
        mut notes: mpsc::UnboundedReceiver<Note>,
        stop: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(self.setup.workers.cluster.renew_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fence_check = tokio::time::interval(Duration::from_millis(100));
        fence_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut exits = self.setup.pool.subscribe();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                event = exits.recv() => {
                    if let Ok(pool::PoolEvent::Exited { worker, exit, .. }) = event
                        && exit.reason == pool::ExitReason::Fenced
                    {
                        tracing::warn!(world = %worker, "cluster: a worker's write was refused by its fence (another node owns the world)");
                        Counters::add(&self.counters().fenced, 1);
                    }
                }
                _ = ticks.tick() => self.tick().await,
                _ = fence_check.tick() => self.self_fence(),
                Some(note) = notes.recv() => self.on_note(note).await,
                Ok(()) = configs.changed() => {
                    let config = configs.borrow_and_update().clone();
                    self.follow(config).await;
                }
            }
        }
        self.leave().await;
    }

    /// The node leaves: once the pool has stopped the workers (the
    /// supervisor stops them before it waits for this task), the leases
    /// are released and the node's row expires now.
    async fn leave(&mut self) {
        // Wait for the pool's stop of every worker, bounded.
        let deadline = Instant::now() + self.setup.workers.pool.stop_grace + Duration::from_secs(2);
        while Instant::now() < deadline
            && self
                .held
                .keys()
                .any(|w| self.setup.pool.worker(w).is_some_and(|s| s.pid.is_some()))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let held: Vec<(String, i64)> = std::mem::take(&mut self.held).into_iter().collect();
        let node = self.setup.info.node_id.clone();
        if let Err(e) = self.setup.store.lease_release(&node, &held).await {
            tracing::warn!(error = %e, "cluster: cannot release the leases on the way out; they expire in lease_ttl");
        }
        if let Err(e) = self.setup.store.node_leave(&node).await {
            tracing::warn!(error = %e, "cluster: cannot mark this node gone; it expires in lease_ttl");
        }
        tracing::info!(node = %node, released = held.len(), "cluster: left");
    }

    /// One tick: renew, learn who is alive, take or shed.
    async fn tick(&mut self) {
        let began = BootInstant::now();
        let started = Instant::now();
        let held: Vec<(String, i64)> = self.held.iter().map(|(w, e)| (w.clone(), *e)).collect();
        let release = std::mem::take(&mut self.release);
        // The watcher's lease rides with the worlds' but outside the
        // balance.
        let watcher = watcher_lease(&self.setup.workers);
        let me = self.setup.info.node_id.clone();
        let worlds = self.worlds.clone();
        let my_worlds = self.held.keys().filter(|w| worlds.contains(w)).count();
        let plan = move |s: &LeaseSnapshot| -> usize {
            let world_move = balance::next_move(&s.holdings, &me, worlds.len(), my_worlds);
            match world_move {
                Move::Acquire(n) => n.min(s.free(&worlds)),
                _ => 0,
            }
        };
        let req = TickRequest {
            node: &self.setup.info,
            worlds: &self.worlds,
            extra: watcher.as_deref().filter(|w| !self.held.contains_key(*w)),
            held: &held,
            release: &release,
            acquire: self.registered,
        };
        let timeout = renew_timeout(self.ttl(), self.setup.workers.cluster.renew_every);
        let answer = tokio::time::timeout(timeout, self.setup.store.lease_tick(&req, &plan)).await;
        let answer = match answer {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return self.tick_failed(e.to_string(), release),
            Err(_) => {
                return self.tick_failed(
                    format!("the tick took longer than {} ms", timeout.as_millis()),
                    release,
                );
            }
        };
        let took = started.elapsed();
        Counters::add(&self.counters().ticks_ok, 1);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        Counters::add(&self.counters().renew_micros_sum, micros);
        self.counters()
            .renew_micros_last
            .store(micros, std::sync::atomic::Ordering::Relaxed);
        self.last_ok = Some(began);
        self.registered = true;
        if !self.joined {
            self.joined = true;
            tracing::info!(node = %self.setup.info.node_id, "cluster: joined");
        }
        self.after_tick(answer, &held).await;
    }

    fn tick_failed(&mut self, error: String, release: Vec<(String, i64)>) {
        Counters::add(&self.counters().ticks_failed, 1);
        self.registered = false;
        tracing::warn!(%error, "cluster: tick failed; the leases are trusted until lease_ttl − margin after the last renewal");
        // Try the releases again next time.
        self.release.extend(release);
        self.shared.update(|v| {
            v.state = if self.joined { "isolated" } else { "joining" }.into();
            v.this_node.last_error = Some(error);
            v.this_node.trusted_for_ms = self.trusted_for().map_or(0, millis);
        });
    }

    /// How much longer the leases are trusted, if any were renewed.
    fn trusted_for(&self) -> Option<Duration> {
        let ttl = self.ttl();
        self.last_ok
            .map(|t| t.plus(ttl.saturating_sub(margin(ttl))).remaining())
    }

    async fn after_tick(&mut self, answer: TickAnswer, asked: &[(String, i64)]) {
        // Lost: held and asked for, not renewed.
        let renewed: BTreeMap<String, i64> = answer.renewed.iter().cloned().collect();
        for (world, epoch) in asked {
            if renewed.get(world) != Some(epoch) && self.held.get(world) == Some(epoch) {
                tracing::warn!(%world, epoch, "cluster: lease lost (another node holds it now); killing its worker");
                self.held.remove(world);
                self.shedding.remove(world);
                Counters::add(&self.counters().losses, 1);
                self.kill(world);
                self.shared.emit(ClusterEvent::LeaseLost {
                    world: world.clone(),
                    epoch: *epoch,
                    reason: "taken".into(),
                });
            }
        }
        for (world, epoch) in &answer.acquired {
            self.acquired(world, *epoch).await;
        }
        self.nodes_changed(&answer.snapshot);
        // Shed one world if above the share, at a scrape boundary.
        let my_worlds =
            self.held.keys().filter(|w| self.worlds.contains(w)).count() - self.shedding.len();
        let want = balance::target(
            &answer.snapshot.holdings,
            &self.setup.info.node_id,
            self.worlds.len(),
        );
        if my_worlds > want {
            self.shed_one();
        }
        self.publish(&answer.snapshot, want);
    }

    async fn acquired(&mut self, world: &str, epoch: i64) {
        Counters::add(&self.counters().acquisitions, 1);
        self.held.insert(world.to_string(), epoch);
        self.shedding.remove(world);
        let Some(spec) = self.spec(world, epoch) else {
            tracing::warn!(%world, "cluster: acquired a lease for a world this config does not run; releasing it");
            self.held.remove(world);
            self.release.push((world.to_string(), epoch));
            return;
        };
        tracing::info!(%world, epoch, "cluster: lease acquired; starting its worker");
        // In the background: the node's loop keeps ticking (and fencing)
        // while workers start. A worker of that name may still be listed
        // (killed, not yet unlisted): it is replaced.
        let pool = self.setup.pool.clone();
        let notes = self.notes.clone();
        let name = world.to_string();
        tokio::spawn(async move {
            let result = if pool.worker(&name).is_some() {
                pool.replace(spec).await
            } else {
                pool.add(spec).await
            };
            if let Err(e) = result {
                tracing::warn!(world = %name, error = %e, "cluster: cannot start the worker of an acquired lease");
            }
            let _ = notes.send(Note::Started { world: name });
        });
        self.shared.emit(ClusterEvent::LeaseAcquired {
            world: world.to_string(),
            epoch,
        });
    }

    /// The worker spec of a leased world (or of the watcher), fenced.
    fn spec(&self, world: &str, epoch: i64) -> Option<pool::WorkerSpec> {
        let mut spec = crate::topology::cluster_spec(&self.setup.workers, &self.setup.exe, world)?;
        spec.env.extend(crate::protocol::fence_env(&Fence {
            node: self.setup.info.node_id.clone(),
            epoch,
        }));
        Some(spec)
    }

    /// Kill a worker at once (its lease is gone), in the background.
    fn kill(&self, world: &str) {
        let pool = self.setup.pool.clone();
        let world = world.to_string();
        tokio::spawn(async move {
            if let Some(status) = pool.worker(&world) {
                let mut policy = status.policy.clone();
                policy.stop_grace = Duration::ZERO;
                let _ = pool.update(&world, policy).await;
            }
            if let Err(e) = pool.remove(&world).await {
                tracing::debug!(%world, error = %e, "cluster: worker already gone");
            }
        });
    }

    /// Stop one surplus world's worker between two runs, then release.
    fn shed_one(&mut self) {
        let sleeping = |w: &String| {
            self.setup.pool.worker(w).is_none_or(|s| {
                s.pid.is_none()
                    || s.report
                        .phase
                        .as_deref()
                        .is_none_or(|p| p == Phase::Sleeping.as_str() || p == Phase::Idle.as_str())
            })
        };
        let candidate = self
            .held
            .keys()
            .filter(|w| self.worlds.contains(w) && !self.shedding.contains(*w))
            .rev()
            .find(|w| sleeping(w))
            .cloned();
        let Some(world) = candidate else { return };
        let Some(epoch) = self.held.get(&world).copied() else {
            return;
        };
        tracing::info!(%world, epoch, "cluster: shedding a world for balance");
        self.stop_then_release(world, epoch);
    }

    fn stop_then_release(&mut self, world: String, epoch: i64) {
        self.shedding.insert(world.clone());
        let pool = self.setup.pool.clone();
        let notes = self.notes.clone();
        tokio::spawn(async move {
            if let Err(e) = pool.remove(&world).await {
                tracing::debug!(%world, error = %e, "cluster: worker already gone");
            }
            let _ = notes.send(Note::Stopped { world, epoch });
        });
    }

    async fn on_note(&mut self, note: Note) {
        let (world, epoch) = match note {
            Note::Started { world } => {
                // Lost (or given up) while it was starting: no worker may
                // outlive its lease.
                if !self.held.contains_key(&world) {
                    self.kill(&world);
                }
                return;
            }
            Note::Stopped { world, epoch } => (world, epoch),
        };
        if self.held.get(&world) != Some(&epoch) {
            return;
        }
        self.held.remove(&world);
        self.shedding.remove(&world);
        let reason = if self.worlds.contains(&world)
            || watcher_lease(&self.setup.workers).as_deref() == Some(world.as_str())
        {
            "shed"
        } else {
            "removed"
        };
        Counters::add(&self.counters().released, 1);
        let lease = vec![(world.clone(), epoch)];
        if let Err(e) = self
            .setup
            .store
            .lease_release(&self.setup.info.node_id, &lease)
            .await
        {
            tracing::warn!(%world, error = %e, "cluster: cannot release now; retrying at the next tick");
            self.release.extend(lease);
        }
        self.shared.emit(ClusterEvent::LeaseLost {
            world,
            epoch,
            reason: reason.into(),
        });
    }

    /// Past the trusted time without a renewal: kill every leased worker.
    fn self_fence(&mut self) {
        if self.held.is_empty() {
            return;
        }
        if self.trusted_for().is_some_and(|d| !d.is_zero()) {
            return;
        }
        tracing::error!(
            held = self.held.len(),
            "cluster: no renewal for lease_ttl − margin; killing this node's leased workers (self-fence)"
        );
        Counters::add(&self.counters().self_fenced, 1);
        for (world, epoch) in std::mem::take(&mut self.held) {
            Counters::add(&self.counters().losses, 1);
            self.kill(&world);
            self.shared.emit(ClusterEvent::LeaseLost {
                world,
                epoch,
                reason: "expired".into(),
            });
        }
        self.shedding.clear();
        self.shared.update(|v| {
            v.this_node.held.clear();
            v.this_node.trusted_for_ms = 0;
        });
    }

    fn nodes_changed(&mut self, snapshot: &LeaseSnapshot) {
        let now: BTreeSet<String> = snapshot.nodes.iter().map(|n| n.node_id.clone()).collect();
        if now == self.live_nodes {
            return;
        }
        for n in &snapshot.nodes {
            if !self.live_nodes.contains(&n.node_id) {
                if n.node_id != self.setup.info.node_id {
                    tracing::info!(node = %n.node_id, name = %n.node_name, "cluster: node joined");
                }
                self.shared.emit(ClusterEvent::NodeJoined {
                    node_id: n.node_id.clone(),
                    node_name: n.node_name.clone(),
                });
            }
        }
        for gone in self.live_nodes.difference(&now) {
            tracing::info!(node = %gone, "cluster: node gone");
            self.shared.emit(ClusterEvent::NodeGone {
                node_id: gone.clone(),
            });
        }
        (self.setup.on_nodes)(now.len().max(1));
        self.live_nodes = now;
    }

    fn publish(&mut self, snapshot: &LeaseSnapshot, target: usize) {
        let ttl = self.ttl();
        let names: HashMap<&str, &str> = snapshot
            .nodes
            .iter()
            .map(|n| (n.node_id.as_str(), n.node_name.as_str()))
            .collect();
        let mut wanted: Vec<&str> = self.worlds.iter().map(String::as_str).collect();
        let watcher = watcher_lease(&self.setup.workers);
        wanted.extend(watcher.as_deref());
        let (leases, alarms) = lease_views(
            snapshot,
            &names,
            &wanted,
            &mut self.unowned_since,
            Instant::now(),
            ttl,
        );
        let nodes = snapshot
            .nodes
            .iter()
            .map(|n| NodeView {
                row: n.clone(),
                worlds_held: snapshot.holdings.get(&n.node_id).copied().unwrap_or(0),
            })
            .collect();
        let held = self
            .held
            .iter()
            .map(|(w, e)| Held {
                world: w.clone(),
                epoch: *e,
                shedding: self.shedding.contains(w),
            })
            .collect();
        let trusted = self.trusted_for().map_or(0, millis);
        let counters = self.counters().view();
        self.shared.update(|v| {
            v.counters = counters;
            v.state = if alarms.is_empty() { "ok" } else { "alarm" }.into();
            v.this_node.joined = true;
            v.this_node.held = held;
            v.this_node.target = target;
            v.this_node.trusted_for_ms = trusted;
            v.this_node.last_renew_at = Some(snapshot.db_now);
            v.this_node.last_error = None;
            v.balance = Balance {
                worlds: self.worlds.len(),
                nodes: snapshot.nodes.len(),
                owned: snapshot.holdings.values().sum(),
                spread: balance::spread(&snapshot.holdings),
            };
            v.nodes = nodes;
            v.leases = leases;
            v.alarms = alarms;
            v.db_now = Some(snapshot.db_now);
        });
    }

    /// A reload: the new world list and specs. Worlds gone from the config
    /// are stopped and released; held worlds whose settings changed get
    /// the new spec (same lease, same epoch).
    async fn follow(&mut self, config: Config) {
        let old = std::mem::replace(&mut self.setup.workers, config);
        self.worlds = world_names(&self.setup.workers);
        let plan = crate::reload::plan::plan(
            &crate::topology::as_pool(&old),
            &crate::topology::as_pool(&self.setup.workers),
        );
        let held: Vec<(String, i64)> = self.held.iter().map(|(w, e)| (w.clone(), *e)).collect();
        for (world, epoch) in held {
            if plan.stopped.contains(&world) {
                tracing::info!(%world, "cluster: the world left the config; stopping it and releasing its lease");
                self.stop_then_release(world, epoch);
            } else if plan.restarted.contains(&world)
                && let Some(spec) = self.spec(&world, epoch)
                && let Err(e) = self.setup.pool.replace(spec).await
            {
                tracing::warn!(%world, error = %e, "cluster: cannot restart a worker with the reloaded config");
            }
        }
    }
}

/// The leases as the API lists them, and the worlds in alarm: a lease of
/// `wanted` without a live owner (one of the live nodes `names`) for more
/// than 2 × `ttl`, by this node's own count since it first saw it so
/// (`unowned_since`, updated) or by the database's (released or expired
/// that long ago), whichever is longer.
fn lease_views(
    snapshot: &LeaseSnapshot,
    names: &HashMap<&str, &str>,
    wanted: &[&str],
    unowned_since: &mut HashMap<String, Instant>,
    now: Instant,
    ttl: Duration,
) -> (Vec<LeaseView>, Vec<String>) {
    let mut alarms = Vec::new();
    let mut leases = Vec::new();
    for row in &snapshot.leases {
        let owned = row.live && row.owner.as_deref().is_some_and(|o| names.contains_key(o));
        let unowned_for = if owned {
            unowned_since.remove(&row.world);
            None
        } else {
            let first = *unowned_since.entry(row.world.clone()).or_insert(now);
            let seen = now.saturating_duration_since(first);
            let db = row
                .unowned_since()
                .and_then(|t| (snapshot.db_now - t).to_std().ok())
                .unwrap_or_default();
            Some(seen.max(db))
        };
        let alarm =
            unowned_for.is_some_and(|d| d > ttl * 2) && wanted.contains(&row.world.as_str());
        if alarm {
            alarms.push(row.world.clone());
        }
        leases.push(LeaseView {
            row: row.clone(),
            owner_name: row
                .owner
                .as_deref()
                .and_then(|o| names.get(o))
                .map(|n| n.to_string()),
            unowned_for_s: unowned_for.map(|d| d.as_secs_f64()),
            alarm,
        });
    }
    (leases, alarms)
}

/// This node's identity: `host:pid:random`, and its name.
pub fn node_identity(config: &Config) -> (String, String) {
    let host = hostname();
    let id = format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let name = config.cluster.node_name.clone().unwrap_or(host);
    (id, name)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A digest of a config's world list, which every node must share
/// (FNV-1a of the sorted names: stable across builds and hosts).
pub fn worlds_hash(config: &Config) -> String {
    let mut names = world_names(config);
    names.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in names.join("\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Refuse to join a cluster whose live nodes run another `lease_ttl` or
/// another world list, saying which node and what differs.
pub async fn check_join(store: &Store, info: &NodeInfo, worlds: &[String]) -> anyhow::Result<()> {
    let snapshot = store.lease_view(worlds).await?;
    for n in snapshot.nodes.iter().filter(|n| n.node_id != info.node_id) {
        if n.lease_ttl != info.lease_ttl {
            anyhow::bail!(
                "this node's [cluster] lease_ttl is {} but live node {} ({}) runs {}: every node must use the same lease_ttl",
                pool::units::format_duration(info.lease_ttl),
                n.node_name,
                n.node_id,
                pool::units::format_duration(n.lease_ttl)
            );
        }
        if n.worlds_hash != info.worlds_hash {
            anyhow::bail!(
                "this node's world list differs from live node {} ({}): every node must run the same [[worlds]] (compare the configs, or reload them all)",
                n.node_name,
                n.node_id
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cluster::LeaseRow;

    fn lease(
        world: &str,
        owner: Option<&str>,
        live: bool,
        released_s_ago: Option<i64>,
    ) -> LeaseRow {
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::seconds(1000);
        LeaseRow {
            world: world.into(),
            owner: owner.map(String::from),
            epoch: 1,
            expires_at: None,
            acquired_at: None,
            released_at: released_s_ago.map(|s| now - chrono::Duration::seconds(s)),
            live,
        }
    }

    #[test]
    fn a_world_without_a_live_owner_for_two_ttls_is_in_alarm() {
        let db_now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::seconds(1000);
        let snapshot = LeaseSnapshot {
            db_now,
            nodes: Vec::new(),
            leases: vec![
                lease("held", Some("n1"), true, None),
                lease("gone-owner", Some("n9"), true, None),
                lease("released-long-ago", None, false, Some(10)),
                lease("released-now", None, false, Some(0)),
                lease("not-ours", None, false, Some(60)),
            ],
            holdings: Default::default(),
        };
        let names: HashMap<&str, &str> = [("n1", "one")].into_iter().collect();
        let wanted = ["held", "gone-owner", "released-long-ago", "released-now"];
        let ttl = Duration::from_secs(3);
        let mut since = HashMap::new();
        let t0 = Instant::now();
        let (views, alarms) = lease_views(&snapshot, &names, &wanted, &mut since, t0, ttl);
        // By the database's clock only the one released 10 s ago.
        assert_eq!(alarms, vec!["released-long-ago".to_string()]);
        assert_eq!(views[0].owner_name.as_deref(), Some("one"));
        assert!(views[0].unowned_for_s.is_none());
        // An owner that is not a live node owns nothing.
        assert!(views[1].unowned_for_s.is_some());
        // 7 s later by this node's count, the others too (not a lease of
        // this config's worlds, though).
        let (_, alarms) = lease_views(
            &snapshot,
            &names,
            &wanted,
            &mut since,
            t0 + Duration::from_secs(7),
            ttl,
        );
        assert_eq!(
            alarms,
            vec!["gone-owner", "released-long-ago", "released-now"]
        );
        // Owned again: the count starts over.
        assert!(!since.contains_key("held"));
    }
}
