//! `[pool] watch_config = true`: reload when the config file changes.
//!
//! The file's metadata (modification time, size, inode, device; symlinks
//! followed) is read every [`POLL`]; once it changed, the watcher waits
//! until it stays the same for [`DEBOUNCE`] (an editor's save, a `cp`, a
//! symlink swap are over), then compares the text with the last text it
//! saw and queues a reload only when the text differs. Polling costs one
//! `stat` per period and needs no dependency; unlike an inotify watch on
//! the file, it follows editors that save by renaming a new file over the
//! old one, deployments that swap a symlink (a Kubernetes ConfigMap), and
//! file systems without change notification. A file that disappears is
//! waited for: nothing is reloaded until it is back.
//!
//! The watcher runs for the life of `worldpool run` and reloads only
//! while the config in force says `watch_config = true`, so a reload can
//! switch it on or off.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{ReloadHandle, Trigger};

/// How often the file's metadata is read.
pub const POLL: Duration = Duration::from_millis(250);
/// How long the metadata must stay the same before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

async fn signature(path: &PathBuf) -> Option<Signature> {
    use std::os::unix::fs::MetadataExt as _;
    let m = tokio::fs::metadata(path).await.ok()?;
    Some(Signature {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
        device: m.dev(),
    })
}

/// The last text of the file that a reload read or the watcher acted on,
/// shared by both: a save that a SIGHUP or API reload already read (or
/// refused) is not reloaded again.
pub type Seen = Arc<Mutex<Option<Vec<u8>>>>;

/// Watch `path` until `stop`; reload through `reload` while `enabled`.
pub fn spawn(
    path: PathBuf,
    enabled: Arc<AtomicBool>,
    text: Seen,
    reload: ReloadHandle,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = signature(&path).await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            let now = signature(&path).await;
            if now == seen {
                continue;
            }
            // Changed: wait until it settles.
            let mut last = now;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
                let again = signature(&path).await;
                if again == last {
                    break;
                }
                last = again;
            }
            seen = last;
            if seen.is_none() {
                tracing::debug!(config = %path.display(), "config file missing; waiting for it");
                continue;
            }
            let Ok(current) = tokio::fs::read(&path).await else {
                continue;
            };
            {
                let mut last = text.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_ref() == Some(&current) {
                    continue;
                }
                *last = Some(current);
            }
            if !enabled.load(Ordering::SeqCst) {
                continue;
            }
            tracing::info!(config = %path.display(), "config file changed: reloading");
            // Waiting for the answer keeps one watch reload in the queue at most.
            let _ = reload.reload(Trigger::Watch).await;
        }
    })
}
