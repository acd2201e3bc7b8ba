//! Scrape runs: the counters fed by the workers' `run_finished` and
//! `run_failed` events, the newest update time `/api/scraper-status`
//! shows, and the `worldpool_runs_total`, `worldpool_rows_total` and
//! `worldpool_deltas_total` families.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use pool::{PoolEvent, WorkerStatus};

use super::writer::Writer;
use crate::protocol::WorkerEvent;

/// Runs counted per world from `run_finished` events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WorldRuns {
    /// Finished runs by status (`ok`, `failed`, …).
    pub by_status: BTreeMap<String, u64>,
    /// Player rows stored, summed over runs.
    pub rows: u64,
    /// Delta rows stored, summed over runs.
    pub deltas: u64,
    /// The worker that ran the world's last run.
    pub worker: String,
    /// Configured guilds the site did not know in the last stored run.
    pub unknown_guilds: Vec<String>,
}

/// Run counters, updated from pool events.
#[derive(Debug, Default)]
pub struct RunCounters {
    worlds: Mutex<HashMap<String, WorldRuns>>,
}

impl RunCounters {
    /// Count a `run_finished` (status `ok`) or `run_failed` (status
    /// `failed`) event; other events are ignored. Returns whether it
    /// counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        let PoolEvent::Custom { worker, .. } = event else {
            return false;
        };
        let (world, status, rows, deltas, unknown) = match WorkerEvent::from_pool(event) {
            Some(WorkerEvent::RunFinished(r)) => {
                (r.world, "ok", r.rows, r.deltas, Some(r.unknown_guilds))
            }
            Some(WorkerEvent::RunFailed(r)) => (r.world, "failed", 0, 0, None),
            _ => return false,
        };
        let mut worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let entry = worlds.entry(world).or_default();
        if entry.worker != *worker {
            entry.worker = worker.clone();
        }
        if let Some(unknown) = unknown {
            entry.unknown_guilds = unknown;
        }
        *entry.by_status.entry(status.to_string()).or_insert(0) += 1;
        entry.rows += rows;
        entry.deltas += deltas;
        true
    }

    /// The guilds the site did not know in the last stored run of each
    /// world `worker` ran, sorted.
    pub fn unknown_guilds_of(&self, worker: &str) -> Vec<String> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = worlds
            .values()
            .filter(|w| w.worker == worker)
            .flat_map(|w| w.unknown_guilds.iter().cloned())
            .collect();
        out.sort();
        out
    }

    /// A copy of the counters, sorted by world.
    pub fn snapshot(&self) -> BTreeMap<String, WorldRuns> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        worlds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The newest update time of the stored deltas, as `/api/scraper-status`
/// shows it: followed from `run_finished` events (a run that stored
/// deltas), seeded by one store read ([`LastUpdate::seed`]), so the status
/// costs no query per request.
#[derive(Debug, Default)]
pub struct LastUpdate {
    state: Mutex<LastUpdateState>,
}

#[derive(Debug, Default)]
struct LastUpdateState {
    newest: Option<chrono::DateTime<chrono::FixedOffset>>,
    seeded: bool,
    /// When the last seed was tried (tries are spaced).
    tried: Option<std::time::Instant>,
}

impl LastUpdate {
    /// Space between seed tries while the store does not answer.
    pub const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

    fn lock(&self) -> std::sync::MutexGuard<'_, LastUpdateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follow a `run_finished` event that stored deltas; other events are
    /// ignored. Returns whether it counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        match WorkerEvent::from_pool(event) {
            Some(WorkerEvent::RunFinished(r)) if r.deltas > 0 => {
                self.saw(Some(r.update_time));
                true
            }
            _ => false,
        }
    }

    fn saw(&self, t: Option<chrono::DateTime<chrono::FixedOffset>>) {
        let mut s = self.lock();
        if t > s.newest {
            s.newest = t;
        }
    }

    /// The newest update known, and whether a seed is due (never seeded,
    /// and no try in the last [`LastUpdate::RETRY`]); a due seed is marked
    /// tried, so one caller seeds at a time.
    pub fn get(&self) -> (Option<chrono::DateTime<chrono::FixedOffset>>, bool) {
        let mut s = self.lock();
        let due = !s.seeded && s.tried.is_none_or(|t| t.elapsed() >= Self::RETRY);
        if due {
            s.tried = Some(std::time::Instant::now());
        }
        (s.newest, due)
    }

    /// What the store said the newest update is.
    pub fn seed(&self, newest: Option<chrono::DateTime<chrono::FixedOffset>>) {
        self.saw(newest);
        self.lock().seeded = true;
    }

    /// Forget everything (a new store, or deltas imported): the next
    /// [`LastUpdate::get`] asks for a seed.
    pub fn reset(&self, keep: bool) {
        let mut s = self.lock();
        if !keep {
            s.newest = None;
        }
        s.seeded = false;
        s.tried = None;
    }
}

/// Every pool worker with its run counters, zeros until its first run (so
/// rates work from the start), and the worlds counted without a worker.
pub(super) fn per_world<'a>(
    workers: &'a [WorkerStatus],
    runs: &'a BTreeMap<String, WorldRuns>,
) -> BTreeMap<&'a str, WorldRuns> {
    let mut per_world: BTreeMap<&str, WorldRuns> = workers
        .iter()
        .map(|s| (s.name.as_str(), WorldRuns::default()))
        .collect();
    for (world, r) in runs {
        per_world.insert(world.as_str(), r.clone());
    }
    per_world
}

/// A world's finished runs by status: `ok` and `failed` always (0 when
/// none), and any other status counted.
pub(super) fn statuses(r: &WorldRuns) -> BTreeMap<&str, u64> {
    let mut statuses: BTreeMap<&str, u64> = [("ok", 0), ("failed", 0)].into_iter().collect();
    for (st, n) in &r.by_status {
        *statuses.entry(st.as_str()).or_insert(0) += n;
    }
    statuses
}

/// Write the per-world run families.
pub(super) fn write(w: &mut Writer, per_world: &BTreeMap<&str, WorldRuns>) {
    w.family(
        "worldpool_runs_total",
        "counter",
        "Finished scrape runs by world and status (from run_finished events).",
    );
    for (world, r) in per_world {
        for (st, n) in statuses(r) {
            w.sample(
                "worldpool_runs_total",
                &[("world", world), ("status", st)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_rows_total",
        "counter",
        "Player rows stored by finished runs, by world.",
    );
    for (world, r) in per_world {
        w.sample("worldpool_rows_total", &[("world", world)], r.rows as f64);
    }

    w.family(
        "worldpool_deltas_total",
        "counter",
        "Delta rows stored by finished runs, by world.",
    );
    for (world, r) in per_world {
        w.sample(
            "worldpool_deltas_total",
            &[("world", world)],
            r.deltas as f64,
        );
    }
}
