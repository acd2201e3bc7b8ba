//! How the queries of [`super::query`] run on either backend.
//!
//! A read or a write of one statement goes through [`Store::fetch`],
//! [`Store::execute`] and [`Store::export`], the one place that picks the
//! backend. A transaction is written once as an `async fn` over [`Exec`]
//! (`query::vip::record_read`, `query::import::import`): PostgreSQL awaits
//! it on its connection; SQLite runs it on its own thread, where every
//! step of its executor is done when called, so the whole transaction is
//! one poll ([`ready`]).

use std::future::Future;

use futures_util::FutureExt;

use super::dialect::{Dialect, Insert, Query, Value};
use super::history::RowChunks;
use super::row::Map;
use super::{Store, StoreError, WorldState};

/// A transaction in progress, on either backend.
pub(crate) trait Exec {
    /// Its SQL dialect.
    fn dialect(&self) -> Dialect;

    /// The rows of `q`, mapped.
    async fn fetch<T>(&self, q: &Query, map: Map<T>) -> Result<Vec<T>, StoreError>;

    /// Run `q`; the rows it changed.
    async fn execute(&self, q: &Query) -> Result<u64, StoreError>;

    /// Insert `rows`; what the insert's `RETURNING` gives, mapped.
    async fn insert<T>(
        &self,
        ins: &Insert,
        rows: &[Vec<Value>],
        map: Map<T>,
    ) -> Result<Vec<T>, StoreError>;

    /// A world's state, read so that no other writer can change it before
    /// this transaction ends (PostgreSQL locks its row, first creating it
    /// with `offset`; a SQLite write transaction is exclusive already).
    async fn world_state_locked(&self, world: &str, offset: i32) -> Result<WorldState, StoreError>;

    /// Test hook: stall before committing the read of a watched player
    /// (see `store/testing.rs`).
    #[cfg(feature = "test-support")]
    async fn stall_vip(&self, name: &str);
}

/// What a transaction gives back, and whether it is to be committed.
#[derive(Debug)]
pub(crate) struct Done<T> {
    pub(crate) value: T,
    pub(crate) commit: bool,
}

impl<T> Done<T> {
    pub(crate) fn commit(value: T) -> Done<T> {
        Done {
            value,
            commit: true,
        }
    }

    pub(crate) fn rollback(value: T) -> Done<T> {
        Done {
            value,
            commit: false,
        }
    }
}

/// The result of a transaction over SQLite's executor, whose steps never
/// wait: it is done at its first poll.
pub(crate) fn ready<T>(
    transaction: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    transaction.now_or_never().unwrap_or_else(|| {
        Err(StoreError::Rejected(
            "sqlite: a transaction waited on something other than its connection".into(),
        ))
    })
}

impl Store {
    /// The dialect of the backend.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The rows of a read, mapped (on the API's read connections when the
    /// store has them).
    pub(crate) async fn fetch<T: Send + 'static>(
        &self,
        q: Query,
        map: Map<T>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Store::Sqlite(s) => s.fetch(q, map).await,
            Store::Postgres(s) => s.fetch(q, map).await,
        }
    }

    /// Run one statement; the rows it changed.
    pub(crate) async fn execute(&self, q: Query) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.execute(q).await,
            Store::Postgres(s) => s.execute(q).await,
        }
    }

    /// Stream a read's rows in chunks (see [`Store::export_deltas`]).
    pub(crate) fn export<T: Send + 'static>(&self, q: Query, map: Map<T>) -> RowChunks<T> {
        match self {
            Store::Sqlite(s) => s.export(q, map),
            Store::Postgres(s) => s.export(q, map),
        }
    }
}
