//! Watched players: the counters fed by the workers' `vip_pass` events and
//! the `worldpool_watched_players`, `worldpool_player_pages_total`,
//! `worldpool_vip_deltas_total` and
//! `worldpool_player_page_last_fetch_timestamp_seconds` families.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use pool::PoolEvent;

use super::writer::Writer;
use crate::protocol::WorkerEvent;

/// What the workers told of one world's watched players (`vip_pass`
/// events).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorldVips {
    /// The worker that reported them.
    pub worker: String,
    /// Players watched, as of the last pass.
    pub watched: u64,
    /// When a player page was last read (kept across passes).
    pub last_fetch: Option<chrono::DateTime<chrono::Utc>>,
    /// The world's update the last pass read for.
    pub update_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Players the site did not know in the last pass that read pages.
    pub unknown: Vec<String>,
    /// Player pages read, summed over passes.
    pub fetched: u64,
    /// Player pages that failed, summed over passes.
    pub failed: u64,
    /// Unknown players met, summed over passes.
    pub unknown_total: u64,
    /// VIP delta rows stored, summed over passes.
    pub deltas: u64,
}

/// The watched players' numbers per world, updated from pool events.
#[derive(Debug, Default)]
pub struct VipCounters {
    worlds: Mutex<HashMap<String, WorldVips>>,
}

impl VipCounters {
    /// Count a `vip_pass` event; other events are ignored. Returns whether
    /// it counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        let (worker, pass) = match (event, WorkerEvent::from_pool(event)) {
            (PoolEvent::Custom { worker, .. }, Some(WorkerEvent::VipPass(p))) => (worker, p),
            _ => return false,
        };
        let mut worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let w = worlds.entry(pass.world).or_default();
        w.worker = worker.clone();
        w.watched = pass.watched;
        w.update_time = Some(pass.update_time);
        if pass.last_fetch.is_some() {
            w.last_fetch = pass.last_fetch;
        }
        if pass.fetched + pass.failed + pass.unknown.len() as u64 > 0 {
            w.unknown_total += pass.unknown.len() as u64;
            w.unknown = pass.unknown;
        }
        w.fetched += pass.fetched;
        w.failed += pass.failed;
        w.deltas += pass.deltas;
        true
    }

    /// A copy, sorted by world.
    pub fn snapshot(&self) -> BTreeMap<String, WorldVips> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        worlds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The worlds a worker reported on (one in pool mode, every world in
    /// single mode), by world.
    pub fn of_worker(&self, worker: &str) -> Vec<(String, WorldVips)> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, WorldVips)> = worlds
            .iter()
            .filter(|(_, v)| v.worker == worker)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Write the watched players' families.
pub(super) fn write(w: &mut Writer, vips: &BTreeMap<String, WorldVips>) {
    w.family(
        "worldpool_watched_players",
        "gauge",
        "Players watched in the world (config and API), as of its last pass.",
    );
    for (world, v) in vips {
        w.sample(
            "worldpool_watched_players",
            &[("world", world)],
            v.watched as f64,
        );
    }

    w.family(
        "worldpool_player_pages_total",
        "counter",
        "Watched players' pages by world and result: ok (read), failed (not fetched or not readable), unknown (the site does not know the player).",
    );
    for (world, v) in vips {
        for (result, n) in [
            ("ok", v.fetched),
            ("failed", v.failed),
            ("unknown", v.unknown_total),
        ] {
            w.sample(
                "worldpool_player_pages_total",
                &[("world", world), ("result", result)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_vip_deltas_total",
        "counter",
        "Watched players' delta rows stored, by world.",
    );
    for (world, v) in vips {
        w.sample(
            "worldpool_vip_deltas_total",
            &[("world", world)],
            v.deltas as f64,
        );
    }

    w.family(
        "worldpool_player_page_last_fetch_timestamp_seconds",
        "gauge",
        "Unix time a watched player's page of the world was last read.",
    );
    for (world, v) in vips {
        if let Some(t) = v.last_fetch {
            w.sample(
                "worldpool_player_page_last_fetch_timestamp_seconds",
                &[("world", world)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }
}
