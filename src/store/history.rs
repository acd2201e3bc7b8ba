//! What the replaced system's data API reads: the delta feed, totals per
//! player over a period, player names, the time range of the history,
//! per-player series for graphs, the last parsed status page of each world,
//! and streamed exports of every delta and every player.
//!
//! Totals, names and series are heavy reads: on an API's store each takes
//! a place in the heavy lane first ([`super::lane`]), so they never hold
//! every read connection.
//!
//! Every query runs on an index added by migration 2 (see the backends):
//! deltas by `(update time DESC, name, delta)`, `(world, update time DESC,
//! name)`, `(guild, update time DESC, name)`, `(name, update time, delta)`
//! and `(world, guild, name)`.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::query::history;
use super::{DeltaRow, PlayerRowStored, Store, StoreError, row};

/// Rows per chunk of an export.
pub const EXPORT_CHUNK: usize = 1_000;

/// Chunks of an export in flight between the database and the client: the
/// reader waits when the client is slow, so an export of any size takes
/// constant memory.
pub const EXPORT_BUFFER: usize = 4;

/// A closed time interval; `None` leaves that side open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Earliest update time included.
    pub from: Option<DateTime<FixedOffset>>,
    /// Latest update time included.
    pub to: Option<DateTime<FixedOffset>>,
}

impl TimeRange {
    /// Everything.
    pub fn all() -> TimeRange {
        TimeRange::default()
    }

    /// `from ..= to`.
    pub fn between(from: DateTime<FixedOffset>, to: DateTime<FixedOffset>) -> TimeRange {
        TimeRange {
            from: Some(from),
            to: Some(to),
        }
    }
}

/// The deltas of one player over a period, aggregated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayerTotal {
    /// Player name.
    pub name: String,
    /// Sum of the deltas.
    pub total: i64,
    /// How many deltas.
    pub updates: i64,
    /// Largest delta.
    pub max: i64,
    /// Smallest delta.
    pub min: i64,
}

/// One routine row of a world's block on the status page, as the replaced
/// system kept it (`rotina`, `last update`, `time_outdated`, `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRoutine {
    /// Routine name (`Daily Raw Ranking`, `Online`, `Deaths/Kills`).
    pub rotina: String,
    /// Its last update, resolved in the site's time zone.
    pub last_update: Option<DateTime<FixedOffset>>,
    /// How far behind the site says it is (`5 min`).
    pub time_outdated: String,
    /// The site's status word (`Atualizado` / `Desatualizado`).
    pub status: String,
}

/// The last parsed status page block of one world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPage {
    /// World.
    pub world: String,
    /// When the page was fetched (site's offset).
    pub fetch_time: DateTime<FixedOffset>,
    /// Its routine rows, in page order.
    pub routines: Vec<StatusRoutine>,
}

/// Chunks of rows of an export, in order; an error ends the stream.
pub type RowChunks<T> = mpsc::Receiver<Result<Vec<T>, StoreError>>;

impl Store {
    /// The delta feed: newest update first, then by name; optional world
    /// and guild filters.
    pub async fn delta_feed(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let q = history::delta_feed(self.dialect(), world, guild, limit);
        self.fetch(q, row::delta_of).await
    }

    /// Deltas summed per player over `range` (optionally one world), the
    /// largest total first, then by name; at most `limit` players.
    pub async fn player_totals(
        &self,
        range: TimeRange,
        world: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<PlayerTotal>, StoreError> {
        self.heavy(async {
            let q = history::player_totals(self.dialect(), range, world, limit);
            self.fetch(q, row::total_of).await
        })
        .await
    }

    /// Names of the players having deltas (optionally in a world and/or a
    /// guild), sorted, each once.
    pub async fn player_names(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        self.player_names_at_most(world, guild, None).await
    }

    /// [`Store::player_names`], the first `limit` only.
    pub async fn player_names_at_most(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, StoreError> {
        self.heavy(async {
            let q = history::player_names(self.dialect(), world, guild, limit);
            self.fetch(q, row::text_of).await
        })
        .await
    }

    /// The first and last update times of the deltas (optionally of a world
    /// and/or a guild); `None` without deltas.
    pub async fn delta_time_range(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
    ) -> Result<Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)>, StoreError> {
        let q = history::delta_time_range(self.dialect(), world, guild);
        Ok(self.fetch(q, row::time_pair_of).await?.pop())
    }

    /// Every delta of these players over `range`, by name then time.
    pub async fn player_deltas(
        &self,
        names: &[String],
        range: TimeRange,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        self.player_deltas_at_most(names, range, None).await
    }

    /// [`Store::player_deltas`], the first `limit` only.
    pub async fn player_deltas_at_most(
        &self,
        names: &[String],
        range: TimeRange,
        limit: Option<u32>,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.heavy(async {
            let q = history::player_deltas(self.dialect(), names, range, limit);
            self.fetch(q, row::delta_of).await
        })
        .await
    }

    /// The latest experience of these players, in every world they have.
    pub async fn players_named(
        &self,
        names: &[String],
    ) -> Result<Vec<PlayerRowStored>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let q = history::players_named(self.dialect(), names);
        self.fetch(q, row::player_of).await
    }

    /// Keep a world's last parsed status page (replacing the previous one).
    pub async fn save_status_page(&self, page: &StatusPage) -> Result<(), StoreError> {
        let q = history::save_status_page(self.dialect(), page)?;
        self.execute(q).await.map(|_| ())
    }

    /// The last parsed status page of every world, by world.
    pub async fn status_pages(&self) -> Result<Vec<StatusPage>, StoreError> {
        let q = history::status_pages(self.dialect());
        self.fetch(q, row::status_page_of).await
    }

    /// Every delta in insertion order, in chunks of [`EXPORT_CHUNK`] rows
    /// with at most [`EXPORT_BUFFER`] chunks buffered (constant memory).
    /// Dropping the receiver stops the reader. Call inside a tokio runtime.
    pub fn export_deltas(&self) -> RowChunks<DeltaRow> {
        self.export(history::export_deltas(self.dialect()), row::delta_of)
    }

    /// Every player's latest experience by world then name, chunked like
    /// [`Store::export_deltas`].
    pub fn export_players(&self) -> RowChunks<PlayerRowStored> {
        self.export(history::export_players(self.dialect()), row::player_of)
    }
}
