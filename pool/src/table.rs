//! What the handles, the actors and the sampler share: the table of
//! workers (one [`Slot`] each, with its status snapshot and command queue),
//! the commands, and the pool-wide options. It imports neither the actors
//! nor the handle: both depend on it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::channel::WorkerReport;
use crate::events::PoolEvent;
use crate::spawn::Spawner;
use crate::spec::{Policy, WorkerSpec};
use crate::status::{StateName, WorkerStatus};
use crate::thread::PoolThread;

/// Pool-wide options.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How often CPU and RSS of the workers are sampled.
    pub sample_interval: Duration,
    /// How many past exits are kept per worker.
    pub exit_history: usize,
    /// Capacity of the event broadcast (slow subscribers lag beyond it).
    pub event_capacity: usize,
    /// Messages waiting to be written to one worker's channel
    /// ([`PoolHandle::send`]); beyond it they are dropped.
    pub send_queue: usize,
    /// Lines of a worker's stdout and stderr logged at most (a token
    /// bucket per worker; beyond it lines are dropped and counted in an
    /// `N lines dropped` warning). Default 100 a second, bursts of 200.
    pub output_rate: crate::output::OutputRate,
    /// The nice value of the pool's own thread, where every exit is seen
    /// and every replacement spawned. Below the process's (e.g. `-5`), a
    /// restart is scheduled ahead of the workers, the API's clients and
    /// anything else at the process's priority, when the process may raise
    /// priorities (`CAP_SYS_NICE`, as root, or `RLIMIT_NICE`); otherwise
    /// the thread stays at the process's nice. A replacement execs at the
    /// thread's priority; then workers, and the pool's
    /// other threads, get the process's nice back. Default 0: unchanged.
    pub thread_nice: i32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            sample_interval: Duration::from_secs(1),
            exit_history: 10,
            event_capacity: 1024,
            send_queue: 64,
            output_rate: crate::output::OutputRate::default(),
            thread_nice: 0,
        }
    }
}

/// What a command asks of a worker's actor.
pub(crate) enum Request {
    Start,
    Stop,
    Restart,
    /// Pool shutdown: stop for good, stay listed.
    Shutdown,
    /// Stop for good and leave the table.
    Remove,
    /// New restart policy and timeouts for the current and later runs
    /// (boxed: the queue's blocks hold 32 commands each, kept for the
    /// worker's life, and this is the one large request).
    Update(Box<Policy>),
    /// Stop, then start with this spec.
    Replace(Box<WorkerSpec>),
}

/// A queued command and where its answer goes.
pub(crate) struct Command {
    pub request: Request,
    pub reply: oneshot::Sender<StateName>,
}

/// One worker's entry in the shared table.
pub(crate) struct Slot {
    pub name: String,
    pub status: RwLock<WorkerStatus>,
    pub commands: mpsc::UnboundedSender<Command>,
    /// Last sampled CPU time of the current process, milliseconds.
    pub cpu_time_ms: AtomicU64,
    /// The live process's channel writer queue.
    pub outgoing: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Messages dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// What the handles, the actors and the sampler share.
pub(crate) struct Shared {
    pub slots: RwLock<Vec<Arc<Slot>>>,
    pub events: broadcast::Sender<PoolEvent>,
    pub spawner: Spawner,
    pub options: PoolOptions,
    pub shutting_down: AtomicBool,
    pub actors: Mutex<Vec<JoinHandle<()>>>,
    /// Declared last: dropped last, it lets the pool thread end.
    pub thread: PoolThread,
}

impl Shared {
    /// The slots, in the order the workers were added.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        match self.slots.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().find(|s| s.name == name).cloned()
    }

    /// Take a retired worker out of the table.
    pub fn unlist(&self, slot: &Arc<Slot>) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.retain(|s| !Arc::ptr_eq(s, slot));
    }
}

/// The snapshot of a worker that has not run yet.
pub(crate) fn initial_status(spec: &WorkerSpec, now: DateTime<Utc>) -> WorkerStatus {
    WorkerStatus {
        name: spec.name.clone(),
        pid: None,
        state: StateName::Stopped,
        since: now,
        started_at: None,
        uptime_s: None,
        restarts: 0,
        consecutive_failures: 0,
        last_exit: None,
        recent_exits: Vec::new(),
        next_restart_at: None,
        fatal_reason: None,
        cpu_percent: None,
        rss_bytes: None,
        pss_bytes: None,
        limits: spec.limits.clone(),
        policy: spec.policy(),
        report: WorkerReport::default(),
        last_heartbeat: None,
        exits_by_reason: BTreeMap::new(),
        messages_dropped: 0,
    }
}
