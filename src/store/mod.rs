//! Storage: one interface, two backends (SQLite embedded, PostgreSQL).
//!
//! Contract used by the API (keep these signatures): [`Store::open`],
//! [`Store::ping`], [`Store::runs`], [`Store::deltas`].
//!
//! A run is written in one transaction ([`Store::write_run`]): the run row,
//! every player's latest experience, the deltas and the world's state (last
//! processed update, last daily reset re-based). A failed run is one row
//! with its error and nothing else ([`Store::record_failed_run`]).
//! Update times are the site's local times with their offset explicit.
//!
//! Beyond runs: [`history`] (the replaced system's queries, status pages,
//! streamed exports), [`vip`] (watched players and their daily numbers),
//! [`import`] (a replaced system's history in one transaction). Migration 2
//! of each backend adds their tables and indexes; migration 3 indexes the
//! watched players' deltas by player and by world; migration 4 adds the
//! makers (watched players tied to a main character, [`vip::Maker`]).
//! PostgreSQL's migration 5 adds the cluster's tables and the runs'
//! epochs ([`cluster`]).
//!
//! The queries are written once for both backends (`query/`), the runs'
//! reads included (`query/runs.rs`): the dialects' differences in
//! `dialect.rs`, the row mappings in `row.rs`, the backends' executors in
//! `sqlite/exec.rs` and `pg/exec.rs` (see docs/ARCHITECTURE.md, "Data").
//! What stays per backend: the migrations, the runs' writes
//! ([`Store::write_run`], and [`Store::record_failed_run`], which on
//! PostgreSQL checks the cluster's fence and writes the run's epoch in
//! its transaction) and [`Store::ping`] (the connection each backend
//! writes with, PostgreSQL's simple protocol).

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

pub mod cluster;
mod dialect;
mod exec;
pub mod history;
pub mod import;
pub mod lane;
pub mod logic;
mod pg;
mod query;
mod row;
mod sqlite;
#[cfg(feature = "test-support")]
mod testing;
pub mod vip;

pub use cluster::Fence;
pub use history::{PlayerTotal, RowChunks, StatusPage, StatusRoutine, TimeRange};
pub use import::{ImportBatch, ImportDelta, ImportMaker, ImportPlayer, ImportWritten};
pub use logic::{NewDelta, PassKind, ScrapedPlayer};
pub use vip::{Maker, VipDaily, VipDelta, VipReadOutcome, WatchedPlayer};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one we can use (its scheme, or a parameter such as
    /// `sslmode`): the URL (password hidden) and what is wrong.
    #[error("bad database URL {0}")]
    BadUrl(String),
    /// The database could not be reached, is busy or locked, its disk is
    /// full or it is out of resources, or the connection broke: worth
    /// retrying with backoff.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the operation (a constraint, a schema it does
    /// not know, data it cannot read): retrying cannot help.
    #[error("database error: {0}")]
    Rejected(String),
    /// A fenced write found that this process no longer holds its world's
    /// lease (another node took it, with a higher epoch): nothing was
    /// written, and the writer must stop ([`cluster`]).
    #[error("fenced: {0}")]
    Fenced(String),
    /// Too many heavy reads at once: no place in the heavy lane
    /// ([`lane`]) came free within the wait. Worth retrying shortly.
    #[error("store busy: {0}")]
    Busy(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Busy(_))
    }

    /// Whether a fenced write was refused ([`StoreError::Fenced`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced(_))
    }
}

/// One scrape run as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Run)]
pub struct RunRow {
    /// Row id (for pagination).
    pub id: i64,
    /// World.
    pub world: String,
    /// The site's update time (its local time, offset explicit).
    pub update_time: DateTime<FixedOffset>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// `ok` or `failed`.
    pub status: String,
    /// Player rows stored.
    pub rows: i64,
    /// Delta rows stored.
    pub deltas: i64,
    /// Error of a failed run.
    pub error: Option<String>,
}

/// One experience delta.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Delta)]
pub struct DeltaRow {
    /// Row id (for pagination).
    pub id: i64,
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// Guild the player was counted in.
    pub guild: String,
    /// Experience gained since the previous update.
    pub delta: i64,
    /// The update this delta belongs to.
    pub update_time: DateTime<FixedOffset>,
    /// The previous update of the world, when there was one.
    pub previous_update_time: Option<DateTime<FixedOffset>>,
}

/// A player's latest stored experience.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlayerRowStored {
    /// World.
    pub world: String,
    /// Player name.
    pub name: String,
    /// Guild it was counted in.
    pub guild: String,
    /// Vocation.
    pub vocation: String,
    /// Level.
    pub level: i64,
    /// Experience gained today, as of `update_time`.
    pub experience: i64,
    /// The update it comes from.
    pub update_time: DateTime<FixedOffset>,
}

/// The persisted state of one world.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct WorldState {
    /// The last update processed successfully.
    pub last_update_time: Option<DateTime<FixedOffset>>,
    /// The last daily reset the world was re-based for.
    pub last_rebase: Option<DateTime<FixedOffset>>,
    /// The lease epoch of the last write (PostgreSQL, cluster mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
}

/// A completed scrape, ready to be written.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// World.
    pub world: String,
    /// The site's update time.
    pub update_time: DateTime<FixedOffset>,
    /// When scraping started.
    pub started_at: DateTime<Utc>,
    /// Players in guild config order (duplicates are dropped, first wins).
    pub players: Vec<ScrapedPlayer>,
    /// Local time of the daily reset, minutes after midnight.
    pub reset_minutes: u32,
}

/// What [`Store::write_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The run was written.
    Stored {
        /// The run's id.
        run_id: i64,
        /// Player rows written.
        rows: usize,
        /// The deltas written.
        deltas: Vec<NewDelta>,
        /// The kind of pass.
        kind: PassKind,
    },
    /// This update of this world was already stored (nothing written).
    AlreadyStored,
}

/// How the API's store reads ([`Store::open_reading`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSettings {
    /// Read connections: SQLite read-only connections, each on a thread
    /// of its own; PostgreSQL: the size of the pool, exports included.
    /// Heavy reads take at most `readers − 1` of them ([`lane`]).
    pub readers: usize,
    /// How long one query may run: past it the query is stopped (SQLite's
    /// interrupt; PostgreSQL's `statement_timeout` and a cancel request)
    /// and the read fails as unavailable. A heavy read waits at most as
    /// long for a place in the heavy lane (then it fails as busy).
    pub query_timeout: std::time::Duration,
    /// Nice value of the read threads (SQLite readers and exports, 0..=19):
    /// above the API's own, so the API can always answer and cancel while
    /// they are busy, and the pool's threads come first.
    pub nice: i32,
    /// Heavy reads run as background work besides (the SQLite readers that
    /// take them, and exports): under `SCHED_IDLE`, so any thread of the
    /// pool, the API or a worker that wakes up goes first; off one of the
    /// process's CPUs (when it has two or more), so a flood of heavy
    /// queries never keeps every CPU busy
    /// ([`pool::priority::background_thread`]); and yielding their CPU
    /// every 100 µs of a query, so a thread woken there runs within that.
    pub background: bool,
    /// Nice value of the SQLite reader kept for cheap reads (the first of
    /// `readers`, when there are two or more): the API's own, so a cheap
    /// read runs as soon as the API asks, whatever heavy reads do.
    pub cheap_nice: i32,
}

impl Default for ReadSettings {
    /// 4 readers, 5 s per query, nice 15 and `SCHED_IDLE` (the cheap
    /// reader nice 10, the API's).
    fn default() -> Self {
        ReadSettings {
            readers: 4,
            query_timeout: std::time::Duration::from_secs(5),
            nice: 15,
            background: true,
            cheap_nice: 10,
        }
    }
}

/// A store backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite (WAL, busy timeout).
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL through a small deadpool.
    Postgres(pg::PgStore),
}

impl Store {
    /// Open (and migrate) the store named by a URL.
    pub async fn open(url: &str, max_connections: usize) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(path).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(
                pg::PgStore::open(url, max_connections.max(1)).await?,
            ))
        } else {
            Err(StoreError::BadUrl(format!(
                "`{url}`: unsupported: use sqlite://PATH or postgres://…"
            )))
        }
    }

    /// Open (and migrate) the store for an API: reads go through `reads`
    /// (read-only connections of their own on SQLite; on PostgreSQL a pool
    /// of `reads.readers` connections with `statement_timeout` and
    /// `idle_in_transaction_session_timeout` set), every read is stopped at
    /// its deadline, and a read whose caller went away is cancelled.
    pub async fn open_reading(url: &str, reads: ReadSettings) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Store::Sqlite(
                sqlite::SqliteStore::open_reading(path, reads).await?,
            ))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(
                pg::PgStore::open_reading(url, reads).await?,
            ))
        } else {
            Err(StoreError::BadUrl(url.to_string()))
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Check the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }

    /// Newest runs first; `before_id` pages backwards.
    pub async fn runs(
        &self,
        world: Option<&str>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<RunRow>, StoreError> {
        let q = query::runs::runs(self.dialect(), world, limit, before_id);
        self.fetch(q, row::run_of).await
    }

    /// Newest deltas first; `before_id` pages backwards.
    pub async fn deltas(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let q = query::runs::deltas(self.dialect(), world, guild, limit, before_id);
        self.fetch(q, row::delta_of).await
    }

    /// The persisted state of a world (default when never processed).
    pub async fn world_state(&self, world: &str) -> Result<WorldState, StoreError> {
        let q = query::runs::world_state(self.dialect(), world);
        let mut rows = self.fetch(q, row::world_state_of).await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Every player's latest experience in a world, by name.
    pub async fn players(&self, world: &str) -> Result<Vec<PlayerRowStored>, StoreError> {
        let q = query::runs::players(self.dialect(), world);
        self.fetch(q, row::player_of).await
    }

    /// Write a completed scrape in one transaction: run row, players,
    /// deltas, world state. An update already stored writes nothing.
    pub async fn write_run(&self, run: &NewRun) -> Result<WriteOutcome, StoreError> {
        match self {
            Store::Sqlite(s) => s.write_run(run).await,
            Store::Postgres(s) => s.write_run(run).await,
        }
    }

    /// Record a failed run: one row with its error, nothing else.
    pub async fn record_failed_run(
        &self,
        world: &str,
        update_time: DateTime<FixedOffset>,
        started_at: DateTime<Utc>,
        error: &str,
    ) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.record_failed_run(world, update_time, started_at, error)
                    .await
            }
            Store::Postgres(s) => {
                s.record_failed_run(world, update_time, started_at, error)
                    .await
            }
        }
    }

    /// Schema version applied (number of migrations).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let rows = self
            .fetch(query::runs::schema_version(), row::int_of)
            .await?;
        Ok(rows.first().copied().unwrap_or(0))
    }
}

/// Parse an RFC 3339 time with its offset.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<FixedOffset>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map_err(|e| StoreError::Rejected(format!("bad stored time `{text}`: {e}")))
}
