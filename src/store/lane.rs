//! The API store's two lanes of reads. Heavy reads — those that scan a
//! period or a whole table: totals per player (`rankings-table`,
//! `top-players`, a graph's world comparison), player names
//! (`players`), a player's series (`graph`, `player-graph`) and, on
//! PostgreSQL, exports — need a place in the heavy lane first: one of
//! `readers − 1` places (one when there is a single reader). So at least
//! one read connection always serves the cheap, bounded reads (`delta`,
//! `date-range`, the status, the watched players), however many heavy
//! queries clients send or give up on: a cheap read may wait behind other
//! cheap reads, never behind a heavy one.
//!
//! Waiting for a heavy place is bounded (by the read deadline); past it
//! the read fails as [`StoreError::Busy`] (the API answers 429 with
//! `Retry-After`). A heavy read given up while it waits leaves the queue
//! at once; given up while it runs, it is stopped (SQLite's interrupt,
//! PostgreSQL's cancel request) and its place freed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Store, StoreError};

/// Which lane a read goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A bounded read: any read connection may serve it.
    Cheap,
    /// A read that scans a period or a table: it holds a [`HeavyPlace`].
    Heavy,
}

tokio::task_local! {
    /// Set while a heavy read runs ([`Store::heavy`]): the backend's reads
    /// inside it go in the heavy lane.
    static IN_HEAVY: ();
}

/// The lane of the read about to run in this task.
pub(crate) fn current() -> Lane {
    if IN_HEAVY.try_with(|()| ()).is_ok() {
        Lane::Heavy
    } else {
        Lane::Cheap
    }
}

/// The heavy lane of one store's read connections.
#[derive(Debug)]
pub(crate) struct HeavyLane {
    places: Arc<Semaphore>,
    size: usize,
    wait: Duration,
}

/// A place in the heavy lane, held while the heavy read runs.
#[derive(Debug)]
pub struct HeavyPlace {
    _permit: Option<OwnedSemaphorePermit>,
}

impl HeavyLane {
    /// The lane of `readers` read connections: `readers − 1` places (at
    /// least one), each waited for at most `wait`.
    pub(crate) fn new(readers: usize, wait: Duration) -> HeavyLane {
        let size = readers.saturating_sub(1).max(1);
        HeavyLane {
            places: Arc::new(Semaphore::new(size)),
            size,
            wait,
        }
    }

    /// Places in the lane.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.size
    }

    /// Places free now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.places.available_permits()
    }

    /// A place, waiting in turn (first come, first served) at most the
    /// lane's wait.
    pub(crate) async fn enter(&self) -> Result<HeavyPlace, StoreError> {
        match tokio::time::timeout(self.wait, self.places.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HeavyPlace {
                _permit: Some(permit),
            }),
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the store's heavy-read lane is closed".to_string(),
            )),
            Err(_) => Err(StoreError::Busy(format!(
                "{} heavy queries (rankings, players, graphs, exports) are running and none \
                 ended within {} ms: try again shortly, or ask for one world or a shorter period",
                self.size,
                self.wait.as_millis()
            ))),
        }
    }

    /// Every place at once (a test holds the lane full).
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) async fn fill(&self) -> HeavyPlace {
        let all = u32::try_from(self.size).unwrap_or(u32::MAX);
        HeavyPlace {
            _permit: self.places.clone().acquire_many_owned(all).await.ok(),
        }
    }
}

/// A place in `lane`, if there is a lane.
pub(crate) async fn enter(lane: Option<&HeavyLane>) -> Result<HeavyPlace, StoreError> {
    match lane {
        Some(lane) => lane.enter().await,
        None => Ok(HeavyPlace { _permit: None }),
    }
}

impl Store {
    /// The heavy lane of this store's reads (a store opened for an API;
    /// `None` elsewhere: every read goes straight on).
    fn heavy_lane(&self) -> Option<&HeavyLane> {
        match self {
            Store::Sqlite(s) => s.heavy_lane(),
            Store::Postgres(s) => s.heavy_lane(),
        }
    }

    /// Run `read` as a heavy read: with a place in the heavy lane (none
    /// needed without a lane), held until its answer is in, and with the
    /// backend's reads inside it in the heavy lane.
    pub(crate) async fn heavy<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let _place = enter(self.heavy_lane()).await?;
        IN_HEAVY.scope((), read).await
    }

    /// Test hook: take every place of the heavy lane until the returned
    /// place is dropped (heavy reads then wait, and fail as busy).
    #[cfg(feature = "test-support")]
    pub async fn fill_heavy_lane(&self) -> HeavyPlace {
        match self.heavy_lane() {
            Some(lane) => lane.fill().await,
            None => HeavyPlace { _permit: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_is_kept_for_cheap_reads() {
        let w = Duration::from_secs(1);
        assert_eq!(HeavyLane::new(4, w).size(), 3);
        assert_eq!(HeavyLane::new(2, w).size(), 1);
        // A single reader cannot be split: heavy reads share it.
        assert_eq!(HeavyLane::new(1, w).size(), 1);
        assert_eq!(HeavyLane::new(0, w).size(), 1);
    }

    #[tokio::test]
    async fn reads_inside_a_heavy_read_go_in_the_heavy_lane() {
        assert_eq!(current(), Lane::Cheap);
        let store = Store::open("sqlite://:memory:", 1).await.expect("store");
        let inside = store.heavy(async { Ok(current()) }).await.expect("no lane");
        assert_eq!(inside, Lane::Heavy);
        assert_eq!(current(), Lane::Cheap, "only inside");
    }

    #[tokio::test]
    async fn a_full_lane_answers_busy_after_its_wait_and_a_freed_place_is_taken() {
        let lane = HeavyLane::new(3, Duration::from_millis(50));
        let held = lane.fill().await;
        let err = lane.enter().await.expect_err("the lane is full");
        assert!(
            matches!(&err, StoreError::Busy(m) if m.contains("2 heavy queries")),
            "{err}"
        );
        assert!(err.is_transient(), "busy is worth retrying");
        drop(held);
        let a = lane.enter().await.expect("a freed place");
        let _b = lane.enter().await.expect("a second place");
        assert!(lane.enter().await.is_err(), "two places only");
        drop(a);
        lane.enter().await.expect("the place given back");
    }
}
