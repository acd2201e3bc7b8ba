//! Writing a replaced system's history into the store in one transaction
//! (see `crate::import` for reading its files). Every row has a natural
//! key, so importing the same data twice writes nothing the second time:
//! players by (world, name) (an imported row replaces a stored one only when
//! it is newer), deltas by (world, name, update time), watched players by
//! (world, name), daily VIP numbers by (world, name, day), VIP deltas by
//! (world, name, update time), makers by (world, name) (a known main
//! replaces another; an unknown one changes nothing).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use super::exec::ready;
use super::vip::{VipDaily, VipDelta};
use super::{Store, StoreError, pg, query};

/// A player's latest experience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlayer {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// Guild.
    pub guild: String,
    /// Experience gained that day, as of `update_time`.
    pub experience: i64,
    /// Its update time.
    pub update_time: DateTime<FixedOffset>,
}

/// One delta of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDelta {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// Guild.
    pub guild: String,
    /// Experience gained since the previous update.
    pub delta: i64,
    /// The update it belongs to.
    pub update_time: DateTime<FixedOffset>,
    /// The world's previous update in the history, if any.
    pub previous_update_time: Option<DateTime<FixedOffset>>,
}

/// A maker and, when known, its main character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMaker {
    /// The maker's world.
    pub world: String,
    /// The maker's name.
    pub name: String,
    /// Its main character: (world, name); `None` keeps a stored one.
    pub main: Option<(String, String)>,
}

/// Everything one import writes.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Latest experience per (world, name).
    pub players: Vec<ImportPlayer>,
    /// Deltas; each distinct (world, update time) becomes a run with
    /// `source = 'import'` unless a run of that update exists.
    pub deltas: Vec<ImportDelta>,
    /// Watched players, (world, name).
    pub watched: Vec<(String, String)>,
    /// Daily VIP numbers.
    pub vip_daily: Vec<VipDaily>,
    /// VIP deltas (makers' too).
    pub vip_deltas: Vec<VipDelta>,
    /// Makers.
    pub makers: Vec<ImportMaker>,
    /// Daily reset state: (world, the last reset boundary it was re-based
    /// for). A world's stored state only moves forward.
    pub resets: Vec<(String, DateTime<FixedOffset>)>,
}

/// Rows written, per world.
pub type PerWorld = BTreeMap<String, usize>;

/// What an import wrote (or, in a dry run, would write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportWritten {
    /// Players inserted or replaced by a newer row, per world.
    pub players: PerWorld,
    /// Deltas inserted, per world.
    pub deltas: PerWorld,
    /// Runs created for imported updates, per world.
    pub runs: PerWorld,
    /// Watched players added.
    pub watched: usize,
    /// Daily VIP rows inserted or replaced by a newer read.
    pub vip_daily: usize,
    /// VIP deltas inserted.
    pub vip_deltas: usize,
    /// Makers inserted, or given another main.
    pub makers: usize,
    /// Worlds whose state (last update, last reset) moved forward.
    pub world_states: usize,
}

impl Store {
    /// Write `batch` in one transaction. With `dry_run` the transaction is
    /// rolled back, so the counts say exactly what a real run would write.
    /// Any failure rolls everything back.
    pub async fn import(
        &self,
        batch: &ImportBatch,
        dry_run: bool,
    ) -> Result<ImportWritten, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let batch = batch.clone();
                s.transact(move |e| ready(query::import::import(e, &batch, dry_run)))
                    .await
            }
            Store::Postgres(s) => {
                let mut conn = s.connection().await?;
                let tx = pg::begin(&mut conn).await?;
                let done = query::import::import(&pg::PgExec::new(&tx), batch, dry_run).await?;
                pg::finish(tx, done).await
            }
        }
    }
}

/// The latest update time per world among players and deltas.
pub(crate) fn latest_per_world(batch: &ImportBatch) -> BTreeMap<String, DateTime<FixedOffset>> {
    let mut out: BTreeMap<String, DateTime<FixedOffset>> = BTreeMap::new();
    let times = batch
        .players
        .iter()
        .map(|p| (&p.world, p.update_time))
        .chain(batch.deltas.iter().map(|d| (&d.world, d.update_time)));
    for (world, t) in times {
        let slot = out.entry(world.clone()).or_insert(t);
        if t > *slot {
            *slot = t;
        }
    }
    out
}

/// The distinct (world, update time) of the deltas with their count.
pub(crate) fn delta_updates(
    batch: &ImportBatch,
) -> BTreeMap<(String, i64), (DateTime<FixedOffset>, usize)> {
    let mut out = BTreeMap::new();
    for d in &batch.deltas {
        out.entry((d.world.clone(), d.update_time.timestamp()))
            .or_insert((d.update_time, 0))
            .1 += 1;
    }
    out
}
