//! Storage: one interface, two backends (SQLite embedded, PostgreSQL).
//!
//! Contract used by the API (keep these signatures): [`Store::open`],
//! [`Store::ping`], [`Store::runs`], [`Store::deltas`].

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one we support.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    BadUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Backend(String),
}

/// One scrape run as stored.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

/// A store backend.
#[derive(Debug, Clone)]
pub enum Store {}

impl Store {
    /// Open (and migrate) the store named by a URL.
    pub async fn open(url: &str, max_connections: usize) -> Result<Store, StoreError> {
        let _ = max_connections;
        Err(StoreError::BadUrl(url.to_string()))
    }

    /// Check the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match *self {}
    }

    /// Newest runs first; `before_id` pages backwards.
    pub async fn runs(
        &self,
        world: Option<&str>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<RunRow>, StoreError> {
        let _ = (world, limit, before_id);
        match *self {}
    }

    /// Newest deltas first; `before_id` pages backwards.
    pub async fn deltas(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let _ = (world, guild, limit, before_id);
        match *self {}
    }
}
