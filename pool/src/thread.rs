//! The pool's own thread: a current-thread tokio runtime where every actor
//! (and its output and channel tasks) runs, and from which every worker is
//! spawned.
//!
//! One thread for both means a worker's exit wakes one thread, which
//! decides and clones the replacement itself: no hand-off to a spawner.
//! The thread lives exactly as long as the pool (`PR_SET_PDEATHSIG`
//! follows the thread that forked): it ends once the pool's shared state
//! is dropped, i.e. every handle is gone and every actor retired. The pool
//! does not depend on the caller's runtime, its flavour or its threads.

use std::sync::Mutex;
use std::thread::ThreadId;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::Error;

/// The running pool thread; dropping it lets the thread end.
pub(crate) struct PoolThread {
    /// Where the actors run.
    pub runtime: Handle,
    /// The thread's id (the only one allowed to spawn workers).
    pub id: ThreadId,
    /// The nice a worker gets back before exec when the thread was asked
    /// to run above it (the process's, i.e. the starting thread's).
    pub worker_nice: Option<i32>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl PoolThread {
    /// Start it at `nice` when that is above the caller's priority and
    /// the process may raise it (see [`crate::PoolOptions::thread_nice`]).
    pub fn start(nice: i32) -> Result<PoolThread, Error> {
        let io_error = |context: &str, source| Error::Io {
            context: context.into(),
            source,
        };
        // Threads inherit their creator's nice: this is the process's.
        let base = crate::priority::thread_nice();
        let worker_nice = (nice < base).then_some(base);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(4)
            .thread_name("pool-blocking")
            // Its blocking threads are started from the raised thread.
            .on_thread_start(move || crate::priority::restore_thread_priority(base))
            .build()
            .map_err(|e| io_error("building the pool's runtime", e))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pool".into())
            .spawn(move || {
                if worker_nice.is_some() && crate::priority::raise_thread_priority(nice) {
                    tracing::debug!(nice, "the pool thread runs above the process's priority");
                }
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Tasks still here (actors of a pool dropped mid-stop) are
                // dropped now: each kills its group.
                drop(runtime);
            })
            .map_err(|e| io_error("starting the pool thread", e))?;
        Ok(PoolThread {
            runtime: handle,
            id: thread.thread().id(),
            worker_nice,
            stop: Mutex::new(Some(stop)),
        })
    }
}

impl Drop for PoolThread {
    fn drop(&mut self) {
        let stop = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    }
}
