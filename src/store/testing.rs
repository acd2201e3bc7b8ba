//! Fault hooks for the test suite (feature `test-support`; never in a
//! release build).
//!
//! `WORLDPOOL_TEST_STALL_IN_TX`: when it names a file that does not exist
//! yet, a run write creates it (holding the writer's pid) after writing its
//! rows and waits before committing, so a test can kill the process in the
//! middle of the transaction. One-shot: once the file exists, writes commit
//! normally (the restarted worker completes the run).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a stalled write waits (the test kills it long before).
const STALL: Duration = Duration::from_secs(60);

fn stall_marker() -> Option<PathBuf> {
    std::env::var_os("WORLDPOOL_TEST_STALL_IN_TX")
        .map(PathBuf::from)
        .filter(|marker| !marker.exists())
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

/// In an async write (PostgreSQL), before `COMMIT`.
pub(crate) async fn stall_before_commit() {
    if let Some(marker) = stall_marker() {
        write_marker(&marker);
        tokio::time::sleep(STALL).await;
    }
}
