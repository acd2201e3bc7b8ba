//! Watched ("VIP") players: the list, their daily numbers from the player
//! page (raw experience and online minutes of a day) and the deltas between
//! two reads. The storage the VIP scraping builds on.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use super::{Store, StoreError};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl Store {
    /// Watch a player; false when it was watched already.
    pub async fn add_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.add_watched(world, name).await,
            Store::Postgres(s) => s.add_watched(world, name).await,
        }
    }

    /// Stop watching a player (its history stays); false when it was not
    /// watched.
    pub async fn remove_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.remove_watched(world, name).await,
            Store::Postgres(s) => s.remove_watched(world, name).await,
        }
    }

    /// Watched players (optionally of one world), by world then name.
    pub async fn watched(&self, world: Option<&str>) -> Result<Vec<WatchedPlayer>, StoreError> {
        match self {
            Store::Sqlite(s) => s.watched(world).await,
            Store::Postgres(s) => s.watched(world).await,
        }
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
            Store::Sqlite(s) => s.write_vip_read(daily, delta).await,
            Store::Postgres(s) => s.write_vip_read(daily, delta).await,
        }
    }

    /// Daily numbers (optionally of one world and/or player), newest day
    /// first, then by world and name.
    pub async fn vip_daily(
        &self,
        world: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<VipDaily>, StoreError> {
        match self {
            Store::Sqlite(s) => s.vip_daily(world, name).await,
            Store::Postgres(s) => s.vip_daily(world, name).await,
        }
    }

    /// VIP deltas (optionally of one world and/or player), newest first.
    pub async fn vip_deltas(
        &self,
        world: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        match self {
            Store::Sqlite(s) => s.vip_deltas(world, name, limit).await,
            Store::Postgres(s) => s.vip_deltas(world, name, limit).await,
        }
    }
}
