//! The supervisor's side of the pool's budget: one task that owns the
//! [`Budget`], reads the workers' asks and releases from the pool's
//! events, sends grants over their channels, and reclaims the leases and
//! asks of a worker whose process exited (or was replaced: a new process
//! cannot hold the old one's leases).
//!
//! Asks arrive through the pool's event broadcast. If this task ever
//! falls behind it (it lagged: events were lost), it asks every worker to
//! re-send what it waits for and holds
//! ([`SupervisorMessage::BudgetResync`]), and takes the answers as the
//! truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pool::{PoolEvent, PoolHandle};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use super::{Budget, BudgetSnapshot, Limits};
use crate::protocol::{SupervisorMessage, WorkerEvent};

/// The running service: snapshots for the API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BudgetService {
    budget: Arc<Mutex<Budget>>,
}

impl BudgetService {
    /// Start the service over a running pool (subscribes at once, so no
    /// ask sent after this call is missed). Ends when `stop` is cancelled
    /// or the pool is gone.
    pub fn start(handle: PoolHandle, limits: Limits, stop: CancellationToken) -> BudgetService {
        let budget = Arc::new(Mutex::new(Budget::new(limits)));
        let events = handle.subscribe();
        tokio::spawn(run(handle, budget.clone(), events, stop));
        BudgetService { budget }
    }

    /// The budget now.
    pub fn snapshot(&self) -> BudgetSnapshot {
        lock(&self.budget).snapshot(Instant::now())
    }

    /// New limits (`[site] rate_limit`, `max_concurrent` after a reload).
    pub fn set_limits(&self, limits: Limits) {
        lock(&self.budget).set_limits(limits);
    }
}

fn lock(b: &Mutex<Budget>) -> std::sync::MutexGuard<'_, Budget> {
    b.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run(
    handle: PoolHandle,
    budget: Arc<Mutex<Budget>>,
    mut events: tokio::sync::broadcast::Receiver<PoolEvent>,
    stop: CancellationToken,
) {
    loop {
        let wake = lock(&budget).next_wake(Instant::now());
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = events.recv() => Some(r),
            () = sleep_until(wake) => None,
        };
        // Take in everything that is there, then grant once.
        let mut next = first;
        while let Some(received) = next {
            match received {
                Ok(event) => apply(&handle, &budget, &event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "the budget missed pool events: asking every worker to resync"
                    );
                    for name in handle.names() {
                        let _ = handle.send(&name, &SupervisorMessage::BudgetResync);
                    }
                }
                Err(RecvError::Closed) => return,
            }
            next = match events.try_recv() {
                Ok(e) => Some(Ok(e)),
                Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => None,
            };
        }
        grant(&handle, &budget);
    }
}

fn apply(handle: &PoolHandle, budget: &Mutex<Budget>, event: &PoolEvent) {
    match event {
        PoolEvent::Custom { worker, kind, .. } if WorkerEvent::is_budget_kind(kind) => {
            let now = Instant::now();
            match WorkerEvent::from_pool(event) {
                Some(WorkerEvent::BudgetAcquire(a)) => {
                    lock(budget).acquire(worker, &a.host, a.id, a.priority)
                }
                Some(WorkerEvent::BudgetRelease(r)) => {
                    lock(budget).release(worker, &r.host, r.id, r.feedback, now)
                }
                Some(WorkerEvent::BudgetSync(s)) => {
                    let waiting: Vec<(String, u64, i32)> = s
                        .waiting
                        .into_iter()
                        .map(|t| (t.host, t.id, t.priority))
                        .collect();
                    let held: Vec<(String, u64)> =
                        s.held.into_iter().map(|t| (t.host, t.id)).collect();
                    lock(budget).sync(worker, &waiting, &held, now);
                }
                _ => tracing::warn!(%worker, %kind, "budget message not understood; ignored"),
            }
        }
        PoolEvent::Exited { worker, .. } | PoolEvent::Started { worker, .. } => {
            let n = lock(budget).reclaim(worker);
            if n > 0 {
                tracing::info!(%worker, leases = n, "reclaimed the leases of a worker that exited");
            }
        }
        _ => {}
    }
    let _ = handle;
}

fn grant(handle: &PoolHandle, budget: &Mutex<Budget>) {
    let grants = lock(budget).poll(Instant::now());
    if grants.is_empty() {
        return;
    }
    let mut batches: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for g in grants {
        batches.entry((g.holder, g.host)).or_default().push(g.id);
    }
    for ((holder, host), ids) in batches {
        let message = SupervisorMessage::BudgetGrant {
            host: host.clone(),
            ids: ids.clone(),
        };
        if let Err(e) = handle.send(&holder, &message) {
            // Never delivered: the slots go back at once.
            tracing::debug!(worker = %holder, error = %e, "grant not delivered; released");
            let now = Instant::now();
            let mut b = lock(budget);
            for id in ids {
                b.release(&holder, &host, id, None, now);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
