//! Rows read back, once for both backends: [`RowGet`] reads a column into
//! the common types (each backend implements it for its own row), and the
//! mappings below build the store's types from it. Each mapping sits next
//! to the column list it reads.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use super::dialect::Dialect;
use super::history::{PlayerTotal, StatusPage, StatusRoutine};
use super::vip::{Maker, VipDaily, VipDelta, WatchedPlayer};
use super::{DeltaRow, PlayerRowStored, RunRow, StoreError, WorldState};

/// One row of a result, read by column index.
pub(crate) trait RowGet {
    /// Text.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// Text or NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// An integer.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// An integer or NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A day.
    fn date(&self, i: usize) -> Result<NaiveDate, StoreError>;
    /// A UTC time (when something was stored).
    fn utc(&self, i: usize) -> Result<DateTime<Utc>, StoreError>;
    /// A UTC time or NULL.
    fn opt_utc(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// A site time or NULL at `i`; on PostgreSQL shown at the offset in
    /// column `offset` (SQLite keeps it in the text).
    fn opt_site_time(
        &self,
        i: usize,
        offset: usize,
    ) -> Result<Option<DateTime<FixedOffset>>, StoreError>;

    /// A site time ([`RowGet::opt_site_time`]) that is never NULL.
    fn site_time(&self, i: usize, offset: usize) -> Result<DateTime<FixedOffset>, StoreError> {
        self.opt_site_time(i, offset)?
            .ok_or_else(|| StoreError::Rejected(format!("column {i}: a NULL time")))
    }
}

/// A row mapping.
pub(crate) type Map<T> = fn(&dyn RowGet) -> Result<T, StoreError>;

/// The columns [`run_of`] reads.
pub(crate) fn run_columns(d: Dialect) -> String {
    format!(
        "id, world, update_time, started_at, finished_at, status, rows, deltas, error{}",
        d.offset("")
    )
}

pub(crate) fn run_of(r: &dyn RowGet) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: r.int(0)?,
        world: r.text(1)?,
        update_time: r.site_time(2, 9)?,
        started_at: r.utc(3)?,
        finished_at: r.opt_utc(4)?,
        status: r.text(5)?,
        rows: r.int(6)?,
        deltas: r.int(7)?,
        error: r.opt_text(8)?,
    })
}

/// The columns [`world_state_of`] reads.
pub(crate) fn world_state_columns(d: Dialect) -> String {
    format!(
        "last_update_time, last_rebase, {}{}",
        d.epoch(),
        d.offset("")
    )
}

pub(crate) fn world_state_of(r: &dyn RowGet) -> Result<WorldState, StoreError> {
    Ok(WorldState {
        last_update_time: r.opt_site_time(0, 3)?,
        last_rebase: r.opt_site_time(1, 3)?,
        epoch: r.opt_int(2)?,
    })
}

/// The columns [`delta_of`] reads.
pub(crate) fn delta_columns(d: Dialect) -> String {
    format!(
        "id, world, name, guild, delta, update_time, previous_update_time{}",
        d.offset("")
    )
}

pub(crate) fn delta_of(r: &dyn RowGet) -> Result<DeltaRow, StoreError> {
    Ok(DeltaRow {
        id: r.int(0)?,
        world: r.text(1)?,
        name: r.text(2)?,
        guild: r.text(3)?,
        delta: r.int(4)?,
        update_time: r.site_time(5, 7)?,
        previous_update_time: r.opt_site_time(6, 7)?,
    })
}

/// The columns [`player_of`] reads.
pub(crate) fn player_columns(d: Dialect) -> String {
    format!(
        "world, name, guild, vocation, level, experience, update_time{}",
        d.offset("")
    )
}

pub(crate) fn player_of(r: &dyn RowGet) -> Result<PlayerRowStored, StoreError> {
    Ok(PlayerRowStored {
        world: r.text(0)?,
        name: r.text(1)?,
        guild: r.text(2)?,
        vocation: r.text(3)?,
        level: r.int(4)?,
        experience: r.int(5)?,
        update_time: r.site_time(6, 7)?,
    })
}

/// `name, total, count, max, min`.
pub(crate) fn total_of(r: &dyn RowGet) -> Result<PlayerTotal, StoreError> {
    Ok(PlayerTotal {
        name: r.text(0)?,
        total: r.int(1)?,
        updates: r.int(2)?,
        max: r.int(3)?,
        min: r.int(4)?,
    })
}

pub(crate) fn text_of(r: &dyn RowGet) -> Result<String, StoreError> {
    r.text(0)
}

pub(crate) fn int_of(r: &dyn RowGet) -> Result<i64, StoreError> {
    r.int(0)
}

/// Two site times, their offsets after them.
pub(crate) fn time_pair_of(
    r: &dyn RowGet,
) -> Result<(DateTime<FixedOffset>, DateTime<FixedOffset>), StoreError> {
    Ok((r.site_time(0, 2)?, r.site_time(1, 3)?))
}

/// The columns [`status_page_of`] reads.
pub(crate) fn status_page_columns(d: Dialect) -> String {
    format!("world, fetch_time, routines{}", d.offset(""))
}

pub(crate) fn status_page_of(r: &dyn RowGet) -> Result<StatusPage, StoreError> {
    let routines: Vec<StatusRoutine> = serde_json::from_str(&r.text(2)?)
        .map_err(|e| StoreError::Rejected(format!("stored status page: {e}")))?;
    Ok(StatusPage {
        world: r.text(0)?,
        fetch_time: r.site_time(1, 3)?,
        routines,
    })
}

/// `world, name, added_at`.
pub(crate) fn watched_of(r: &dyn RowGet) -> Result<WatchedPlayer, StoreError> {
    Ok(WatchedPlayer {
        world: r.text(0)?,
        name: r.text(1)?,
        added_at: r.utc(2)?,
    })
}

/// The columns [`vip_daily_of`] reads.
pub(crate) fn vip_daily_columns(d: Dialect) -> String {
    format!(
        "world, name, date, raw_xp, online_minutes, update_time{}",
        d.offset("")
    )
}

pub(crate) fn vip_daily_of(r: &dyn RowGet) -> Result<VipDaily, StoreError> {
    Ok(VipDaily {
        world: r.text(0)?,
        name: r.text(1)?,
        date: r.date(2)?,
        raw_xp: r.int(3)?,
        online_minutes: r.int(4)?,
        update_time: r.site_time(5, 6)?,
    })
}

/// The columns [`vip_delta_of`] reads.
pub(crate) fn vip_delta_columns(d: Dialect) -> String {
    format!(
        "world, name, date, delta_exp, delta_online, update_time, prev_update_time{}",
        d.offset("")
    )
}

pub(crate) fn vip_delta_of(r: &dyn RowGet) -> Result<VipDelta, StoreError> {
    Ok(VipDelta {
        world: r.text(0)?,
        name: r.text(1)?,
        date: r.date(2)?,
        delta_exp: r.int(3)?,
        delta_online: r.int(4)?,
        update_time: r.site_time(5, 7)?,
        prev_update_time: r.opt_site_time(6, 7)?,
    })
}

/// `world, name, main, main_world, added_at`.
pub(crate) fn maker_of(r: &dyn RowGet) -> Result<Maker, StoreError> {
    Ok(Maker {
        world: r.text(0)?,
        name: r.text(1)?,
        main: r.opt_text(2)?,
        main_world: r.opt_text(3)?,
        added_at: r.utc(4)?,
    })
}
