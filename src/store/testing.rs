//! Fault hooks for the test suite (feature `test-support`; never in a
//! release build).
//!
//! `WORLDPOOL_TEST_STALL_IN_TX`: when it names a file that does not exist
//! yet, a run write creates it (holding the writer's pid) after writing its
//! rows and waits before committing, so a test can kill the process in the
//! middle of the transaction. One-shot: once the file exists, writes commit
//! normally (the restarted worker completes the run).
//!
//! On PostgreSQL, `WORLDPOOL_TEST_STALL_RELEASE` names a file whose
//! creation ends the stall (the cluster's tests release a parked write).
//!
//! `WORLDPOOL_TEST_STALL_IN_VIP_TX`: the same for a watched player's read
//! ([`crate::store::Store::record_vip_read`]); with
//! `WORLDPOOL_TEST_STALL_VIP_NAME` set, only that player's read stalls, so
//! a test can kill a worker in the middle of the watched players' pass.
//!
//! [`Store::simulate_disk_full`]: a SQLite store's connection refuses to
//! grow the database (`SQLITE_FULL`, as on a full disk) until lifted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Store, StoreError};

impl Store {
    /// Test hook: with `full`, every write that needs a new page fails with
    /// `SQLITE_FULL` (the database is capped at its current size through
    /// this store's connection); `false` gives the space back. SQLite only.
    pub async fn simulate_disk_full(&self, full: bool) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.cap_pages(full).await,
            Store::Postgres(_) => Err(StoreError::Rejected(
                "simulate_disk_full: SQLite only".into(),
            )),
        }
    }
}

/// How long a stalled write waits (the test kills it long before).
const STALL: Duration = Duration::from_secs(60);

fn stall_marker() -> Option<PathBuf> {
    marker_of("WORLDPOOL_TEST_STALL_IN_TX")
}

fn marker_of(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|marker| !marker.exists())
}

fn vip_stall_marker(name: &str) -> Option<PathBuf> {
    let only = std::env::var("WORLDPOOL_TEST_STALL_VIP_NAME").ok();
    if only.is_some_and(|only| only != name) {
        return None;
    }
    marker_of("WORLDPOOL_TEST_STALL_IN_VIP_TX")
}

/// Write the marker: the pid of this process, atomically (a reader never
/// sees an empty file).
fn write_marker(marker: &Path) {
    let tmp = marker.with_extension("tmp");
    if std::fs::write(&tmp, std::process::id().to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, marker);
    }
}

/// In a blocking write (SQLite), before `COMMIT`.
pub(crate) fn stall_before_commit_blocking() {
    if let Some(marker) = stall_marker() {
        write_marker(&marker);
        std::thread::sleep(STALL);
    }
}

/// In an async write (PostgreSQL), before `COMMIT`. With
/// `WORLDPOOL_TEST_STALL_RELEASE` naming a file, the stall ends as soon as
/// that file exists (the write then tries its commit).
pub(crate) async fn stall_before_commit() {
    if let Some(marker) = stall_marker() {
        write_marker(&marker);
        let release = std::env::var_os("WORLDPOOL_TEST_STALL_RELEASE").map(PathBuf::from);
        let until = tokio::time::Instant::now() + STALL;
        while tokio::time::Instant::now() < until {
            if release.as_deref().is_some_and(Path::exists) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// In a blocking VIP read write (SQLite), before `COMMIT`.
pub(crate) fn stall_vip_before_commit_blocking(name: &str) {
    if let Some(marker) = vip_stall_marker(name) {
        write_marker(&marker);
        std::thread::sleep(STALL);
    }
}

/// In an async VIP read write (PostgreSQL), before `COMMIT`.
pub(crate) async fn stall_vip_before_commit(name: &str) {
    if let Some(marker) = vip_stall_marker(name) {
        write_marker(&marker);
        tokio::time::sleep(STALL).await;
    }
}
