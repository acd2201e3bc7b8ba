//! Watched ("VIP") players: the list, their daily numbers from the player
//! page (raw experience and online minutes of a day) and the deltas between
//! two reads. The storage the VIP scraping builds on.
//!
//! A read of a player is recorded by [`Store::record_vip_read`] in one
//! transaction: the day's numbers and, when either changed since the
//! previous read, a delta row. What it records is decided by
//! [`super::logic::vip_outcome`] against the player's latest stored read;
//! a read at an update time already stored writes nothing, so a pass that
//! is replayed (a worker killed half-way, restarted) redoes nothing.
//!
//! **Makers** (the replaced system's later "maker" characters) are tracked
//! the same way: a maker is a player the worker's pass reads like a watched
//! one, tied to its main character; its reads and deltas are the same
//! `vip_daily` / `vip_deltas` rows. The `makers` table (migration 4) only
//! says who is a maker and whose: it is filled by `worldpool import`
//! (`ref_main_maker.csv`, the old SQLite file's `makers`) and by
//! `POST /api/upload/makers`.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::exec::ready;
use super::query::{makers, vip};
use super::{Store, StoreError, pg, row};

/// A watched player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchedPlayer {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// A watched player's numbers of one day, as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipDaily {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// The site's day.
    pub date: NaiveDate,
    /// Raw experience of the day.
    pub raw_xp: i64,
    /// Minutes online that day.
    pub online_minutes: i64,
    /// When it was read (site's offset).
    pub update_time: DateTime<FixedOffset>,
}

/// The change of a watched player's numbers between two reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipDelta {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// The site's day.
    pub date: NaiveDate,
    /// Experience gained since the previous read.
    pub delta_exp: i64,
    /// Minutes online since the previous read.
    pub delta_online: i64,
    /// When it was read.
    pub update_time: DateTime<FixedOffset>,
    /// The previous read of this player, when there was one.
    pub prev_update_time: Option<DateTime<FixedOffset>>,
}

/// What [`Store::record_vip_read`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VipReadOutcome {
    /// The player's first read: its numbers, no delta.
    Baseline,
    /// The first read after the daily reset (or of a new day on the page,
    /// or after a counter went down): its numbers, no delta.
    Rebased,
    /// Neither number changed: the read is kept (its time), no delta.
    Unchanged,
    /// A delta was stored with the read.
    Delta(VipDelta),
    /// A read of this player at this update time (or a later one) is stored
    /// already: nothing written.
    AlreadyStored,
}

/// A maker: a character read like a watched player, tied to its main.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maker {
    /// World.
    pub world: String,
    /// The maker's name.
    pub name: String,
    /// Its main character (`None`: not known, e.g. imported from an old
    /// `makers` table without `ref_main_maker.csv`).
    pub main: Option<String>,
    /// The main character's world (set with `main`).
    pub main_world: Option<String>,
    /// When it was first stored.
    pub added_at: DateTime<Utc>,
}

impl Store {
    /// Makers (optionally of one world), by world then name.
    pub async fn makers(&self, world: Option<&str>) -> Result<Vec<Maker>, StoreError> {
        let q = makers::makers(self.dialect(), world);
        self.fetch(q, row::maker_of).await
    }

    /// The makers' deltas with minutes online (optionally of one world
    /// and/or maker), newest first: what `/api/makers/deltas` shows.
    pub async fn maker_deltas(
        &self,
        world: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        let q = makers::maker_deltas(self.dialect(), world, name, limit);
        self.fetch(q, row::vip_delta_of).await
    }

    /// Watch a player; false when it was watched already.
    pub async fn add_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let d = self.dialect();
        let q = vip::add_watched().one_row(d, &vip::watched_row(world, name));
        Ok(self.execute(q).await? == 1)
    }

    /// Stop watching a player (its history stays); false when it was not
    /// watched.
    pub async fn remove_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let q = vip::remove_watched(self.dialect(), world, name);
        Ok(self.execute(q).await? == 1)
    }

    /// Watched players (optionally of one world), by world then name.
    pub async fn watched(&self, world: Option<&str>) -> Result<Vec<WatchedPlayer>, StoreError> {
        let q = vip::watched(self.dialect(), world);
        self.fetch(q, row::watched_of).await
    }

    /// Record a read of a watched player in one transaction: its numbers of
    /// the day (replacing an earlier read of that day) and, when given, the
    /// delta since the previous read (a delta of the same player and time
    /// already stored is not stored twice). Returns whether the delta was
    /// stored.
    pub async fn write_vip_read(
        &self,
        daily: &VipDaily,
        delta: Option<&VipDelta>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let (daily, delta) = (daily.clone(), delta.cloned());
                s.transact(move |e| ready(vip::write_read(e, &daily, delta.as_ref())))
                    .await
            }
            Store::Postgres(s) => {
                let mut conn = s.connection().await?;
                let tx = pg::begin(&mut conn).await?;
                let done = vip::write_read(&pg::PgExec::new(&tx), daily, delta).await?;
                pg::finish(tx, done).await
            }
        }
    }

    /// Record a read of a watched player (`read.update_time` is the world's
    /// update the read belongs to) in one transaction: its numbers of the
    /// day and, when either changed since its previous read, the delta;
    /// re-based after the daily reset at `reset_minutes` (see
    /// [`super::logic::vip_outcome`]). A read at an update time already
    /// stored for the player writes nothing.
    pub async fn record_vip_read(
        &self,
        read: &VipDaily,
        reset_minutes: u32,
    ) -> Result<VipReadOutcome, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let read = read.clone();
                s.transact(move |e| ready(vip::record_read(e, &read, reset_minutes)))
                    .await
            }
            Store::Postgres(s) => {
                let mut conn = s.connection().await?;
                let tx = pg::begin(&mut conn).await?;
                let done = vip::record_read(&pg::PgExec::new(&tx), read, reset_minutes).await?;
                pg::finish(tx, done).await
            }
        }
    }

    /// The latest read of every player with one (optionally of one world),
    /// by world then name.
    pub async fn vip_latest(&self, world: Option<&str>) -> Result<Vec<VipDaily>, StoreError> {
        let q = vip::vip_latest(self.dialect(), world);
        let mut rows = self.fetch(q, row::vip_daily_of).await?;
        rows.sort_by(|a, b| (&a.world, &a.name).cmp(&(&b.world, &b.name)));
        Ok(rows)
    }

    /// Daily numbers (optionally of one world and/or player), newest day
    /// first, then by world and name.
    pub async fn vip_daily(
        &self,
        world: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<VipDaily>, StoreError> {
        let q = vip::vip_daily(self.dialect(), world, name);
        self.fetch(q, row::vip_daily_of).await
    }

    /// VIP deltas (optionally of one world and/or player), newest first.
    pub async fn vip_deltas(
        &self,
        world: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        let q = vip::vip_deltas(self.dialect(), world, name, limit);
        self.fetch(q, row::vip_delta_of).await
    }
}
