//! The pool, its handle and the commands.
//!
//! - [`Pool::start`] starts one actor task per worker
//!   ([`actor`](crate::actor)); the handle talks to them through a command
//!   queue per worker. Commands are queued, never refused because another
//!   one is in progress, and run one at a time: each is answered with the
//!   resulting state once the worker is no longer `stopping`. The pool's
//!   shutdown alone takes over a command in progress.
//! - Status snapshots live in a shared table written by the actors and the
//!   sampler thread; [`PoolHandle::workers`] reads it without talking to
//!   the actors.
//! - The set of workers can change while the pool runs:
//!   [`add`](PoolHandle::add), [`remove`](PoolHandle::remove),
//!   [`replace`](PoolHandle::replace), [`update`](PoolHandle::update).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::actor::Actor;
use crate::error::Error;
use crate::events::PoolEvent;
use crate::spawn::Spawner;
use crate::spec::{Policy, WorkerSpec};
use crate::status::{StateName, WorkerStatus};
pub use crate::table::PoolOptions;
use crate::table::{Command, Request, Shared, Slot, initial_status};
use crate::thread::PoolThread;

/// A running pool. Dropping it without [`Pool::shutdown`] starts the same
/// graceful stop but does not wait for it; if the runtime ends first, the
/// actors SIGKILL their workers, and PDEATHSIG covers the process ending.
pub struct Pool {
    handle: PoolHandle,
}

/// Cheap, cloneable access to a running pool.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<Shared>,
}

impl Shared {
    /// Create the slot and the actor of `spec` and queue its first start.
    fn add(self: &Arc<Self>, spec: WorkerSpec) -> Result<oneshot::Receiver<StateName>, Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = Arc::new(Slot {
            name: spec.name.clone(),
            status: RwLock::new(initial_status(&spec, Utc::now())),
            commands: tx,
            cpu_time_ms: AtomicU64::new(0),
            outgoing: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            // Checked under the lock: `shutdown` sets the flag first, then
            // reads the table, so it sees every worker added before.
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(Error::ShuttingDown);
            }
            if slots.iter().any(|s| s.name == spec.name) {
                return Err(Error::DuplicateName(spec.name));
            }
            slots.push(slot.clone());
        }
        let (reply, answer) = oneshot::channel();
        // The receiver is alive (it moves into the actor below).
        let _ = slot.commands.send(Command {
            request: Request::Start,
            reply,
        });
        let actor = Actor::new(slot, self.clone(), spec);
        let task = self.thread.runtime.spawn(actor.run(rx));
        let mut actors = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        actors.retain(|a| !a.is_finished());
        actors.push(task);
        Ok(answer)
    }
}

impl Pool {
    /// Start every worker. The pool runs on a thread of its own
    /// ([`crate::thread`]); it can be started from anywhere, and its
    /// handles used from any runtime.
    pub fn start(specs: Vec<WorkerSpec>, options: PoolOptions) -> Result<Pool, Error> {
        let mut seen = std::collections::HashSet::new();
        for s in &specs {
            if !seen.insert(s.name.as_str()) {
                return Err(Error::DuplicateName(s.name.clone()));
            }
        }
        let thread = PoolThread::start(options.thread_nice)?;
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let shared = Arc::new(Shared {
            slots: RwLock::new(Vec::with_capacity(specs.len())),
            events,
            spawner: Spawner::new(thread.id, thread.worker_nice)?,
            options: options.clone(),
            shutting_down: AtomicBool::new(false),
            actors: Mutex::new(Vec::with_capacity(specs.len())),
            thread,
        });
        for spec in specs {
            shared.add(spec)?;
        }
        crate::sampler::start(Arc::downgrade(&shared), options.sample_interval)?;
        Ok(Pool {
            handle: PoolHandle { shared },
        })
    }

    /// A handle for status and control.
    pub fn handle(&self) -> PoolHandle {
        self.handle.clone()
    }

    /// Stop every worker in parallel (SIGTERM, `stop_grace`, SIGKILL) and wait.
    pub async fn shutdown(self) {
        self.handle.shutdown().await
    }
}

impl Drop for Pool {
    /// Begin a graceful stop of every worker (without waiting) unless
    /// [`Pool::shutdown`] already ran.
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        if !shared.shutting_down.swap(true, Ordering::SeqCst) {
            for slot in shared.slots() {
                let (reply, _) = oneshot::channel();
                let _ = slot.commands.send(Command {
                    request: Request::Shutdown,
                    reply,
                });
            }
        }
    }
}

impl PoolHandle {
    /// Snapshot of every worker, in the order they were added. Reads the
    /// shared table: no round trip to the actors.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        let now = Utc::now();
        let slots = self.shared.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().map(|slot| read_status(slot, now)).collect()
    }

    /// Snapshot of one worker.
    pub fn worker(&self, name: &str) -> Option<WorkerStatus> {
        let slot = self.shared.slot(name)?;
        Some(read_status(&slot, Utc::now()))
    }

    /// Worker names, in the order they were added.
    pub fn names(&self) -> Vec<String> {
        let slots = self.shared.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().map(|s| s.name.clone()).collect()
    }

    /// Start a stopped, backing-off or fatal worker; returns the resulting state.
    pub async fn start(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, Request::Start).await
    }

    /// Stop a worker and keep it stopped; returns the resulting state.
    pub async fn stop(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, Request::Stop).await
    }

    /// Stop then start a worker; returns the resulting state.
    pub async fn restart(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, Request::Restart).await
    }

    /// Add a worker and start it; returns its state after the first spawn.
    /// Fails with [`Error::DuplicateName`] while a worker of that name is
    /// listed (a removed one is unlisted when [`remove`](Self::remove)
    /// returns).
    pub async fn add(&self, spec: WorkerSpec) -> Result<StateName, Error> {
        let name = spec.name.clone();
        let answer = self.shared.add(spec)?;
        self.answer(&name, answer).await
    }

    /// Stop a worker gracefully (SIGTERM, `stop_grace`, SIGKILL) and take
    /// it out of the pool; returns once it is gone from
    /// [`workers`](Self::workers).
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        self.command(name, Request::Remove).await.map(|_| ())
    }

    /// Apply a new restart policy and new timeouts to a worker without
    /// restarting it. Deadlines of the current run are recomputed (a
    /// heartbeat deadline counts from now); a backoff or fatal wait keeps
    /// its time. Returns the worker's state.
    pub async fn update(&self, name: &str, policy: Policy) -> Result<StateName, Error> {
        self.command(name, Request::Update(Box::new(policy))).await
    }

    /// Stop the worker named `spec.name` gracefully and start it again with
    /// `spec` (a new process). A stopped worker takes the new spec and stays
    /// stopped. Returns the resulting state.
    pub async fn replace(&self, spec: WorkerSpec) -> Result<StateName, Error> {
        let name = spec.name.clone();
        self.command(&name, Request::Replace(Box::new(spec))).await
    }

    /// Send `message` to the worker as one JSON line on its channel; the
    /// worker reads it with [`WorkerChannel::incoming`](crate::WorkerChannel::incoming).
    /// Never waits: the line is queued for the worker's writer task. A
    /// worker that does not read fills its queue, and further messages are
    /// dropped (counted in `messages_dropped`) with [`Error::QueueFull`].
    pub fn send<M: Serialize + ?Sized>(&self, name: &str, message: &M) -> Result<(), Error> {
        let slot = self
            .shared
            .slot(name)
            .ok_or_else(|| Error::UnknownWorker(name.to_string()))?;
        let mut line = serde_json::to_vec(message).map_err(|source| Error::Message {
            worker: name.to_string(),
            source,
        })?;
        line.push(b'\n');
        let outgoing = slot.outgoing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = outgoing.as_ref() else {
            return Err(Error::NotRunning(name.to_string()));
        };
        match tx.try_send(line) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = slot.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    worker = name,
                    dropped = n,
                    "send queue full, message dropped"
                );
                Err(Error::QueueFull(name.to_string()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::NotRunning(name.to_string())),
        }
    }

    /// Subscribe to pool events.
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.shared.events.subscribe()
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// Stop every worker in parallel and wait for all of them.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let mut replies = Vec::new();
        for slot in self.shared.slots() {
            let (reply, rx) = oneshot::channel();
            if slot
                .commands
                .send(Command {
                    request: Request::Shutdown,
                    reply,
                })
                .is_ok()
            {
                replies.push(rx);
            }
        }
        // All stops run in parallel in their actors; collect the answers.
        for rx in replies {
            let _ = rx.await;
        }
        let actors = {
            let mut a = self.shared.actors.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *a)
        };
        for a in actors {
            let _ = a.await;
        }
    }

    async fn command(&self, name: &str, request: Request) -> Result<StateName, Error> {
        let slot = self
            .shared
            .slot(name)
            .ok_or_else(|| Error::UnknownWorker(name.to_string()))?;
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        slot.commands
            .send(Command { request, reply })
            .map_err(|_| self.gone(name))?;
        self.answer(name, answer).await
    }

    async fn answer(
        &self,
        name: &str,
        answer: oneshot::Receiver<StateName>,
    ) -> Result<StateName, Error> {
        answer.await.map_err(|_| self.gone(name))
    }

    /// Why a worker's actor no longer answers: the pool is shutting down,
    /// or the worker was removed.
    fn gone(&self, name: &str) -> Error {
        if self.is_shutting_down() {
            Error::ShuttingDown
        } else {
            Error::UnknownWorker(name.to_string())
        }
    }
}

fn read_status(slot: &Slot, now: DateTime<Utc>) -> WorkerStatus {
    let mut s = match slot.status.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    s.uptime_s = match (s.pid, s.started_at) {
        (Some(_), Some(at)) => Some((now - at).num_milliseconds().max(0) as f64 / 1000.0),
        _ => None,
    };
    s.messages_dropped = slot.dropped.load(Ordering::Relaxed);
    s
}
