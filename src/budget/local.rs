//! A [`Budget`] inside one process: a small task owns it, requests ask
//! it over a queue and wait for their grant. Used when no supervisor
//! leases the pool's budget (`scrape-once`, tests, a worker run by hand,
//! `[site] budget = "worker"`). It starts with the first request, on that
//! request's runtime, and ends when the last [`Requester`] using it goes.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use tokio::sync::mpsc;

use super::lease::{Backend, Requester};
use super::{Budget, BudgetError, Feedback, Limits};
use crate::protocol::BudgetSync;

/// The holder name of every request of this process.
const HOLDER: &str = "local";

#[derive(Debug)]
enum Command {
    Acquire {
        host: String,
        id: u64,
        priority: i32,
    },
    Release {
        host: String,
        id: u64,
        feedback: Option<Feedback>,
    },
}

#[derive(Debug)]
struct LocalBackend {
    limits: Limits,
    /// Set once the requester exists (the driver hands grants to it).
    requester: OnceLock<Weak<RequesterCell>>,
    driver: OnceLock<mpsc::UnboundedSender<Command>>,
}

/// Holds the requester the driver grants to.
#[derive(Debug)]
struct RequesterCell(OnceLock<Requester>);

impl LocalBackend {
    fn driver(&self) -> Result<&mpsc::UnboundedSender<Command>, BudgetError> {
        if let Some(tx) = self.driver.get() {
            return Ok(tx);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| BudgetError::Gone(format!("no runtime for the local budget: {e}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cell = self.requester.get().cloned().unwrap_or_default();
        if self.driver.set(tx).is_ok() {
            runtime.spawn(drive(self.limits, rx, cell));
        }
        self.driver
            .get()
            .ok_or_else(|| BudgetError::Gone("local budget driver".into()))
    }
}

impl Backend for LocalBackend {
    fn acquire(&self, host: &str, id: u64, priority: i32) -> Result<(), BudgetError> {
        self.driver()?
            .send(Command::Acquire {
                host: host.to_string(),
                id,
                priority,
            })
            .map_err(|_| BudgetError::Gone("the local budget driver stopped".into()))
    }

    fn release(&self, host: &str, id: u64, feedback: Option<Feedback>) {
        if let Some(tx) = self.driver.get() {
            let _ = tx.send(Command::Release {
                host: host.to_string(),
                id,
                feedback,
            });
        }
    }

    fn sync(&self, _state: BudgetSync) {
        // The driver never misses a command.
    }
}

async fn drive(
    limits: Limits,
    mut rx: mpsc::UnboundedReceiver<Command>,
    requester: Weak<RequesterCell>,
) {
    let mut budget = Budget::new(limits);
    loop {
        let wake = budget.next_wake(Instant::now());
        let command = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => Some(c),
                None => return,
            },
            () = sleep_until(wake) => None,
        };
        let now = Instant::now();
        let mut next = command;
        while let Some(c) = next {
            match c {
                Command::Acquire { host, id, priority } => {
                    budget.acquire(HOLDER, &host, id, priority)
                }
                Command::Release { host, id, feedback } => {
                    budget.release(HOLDER, &host, id, feedback, now)
                }
            }
            next = rx.try_recv().ok();
        }
        let grants = budget.poll(now);
        if grants.is_empty() {
            continue;
        }
        let Some(cell) = requester.upgrade() else {
            return;
        };
        if let Some(r) = cell.0.get() {
            for g in grants {
                r.granted(&g.host, &[g.id]);
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

/// A requester over a budget of its own under `limits`.
pub fn requester(limits: Limits) -> LocalRequester {
    let cell = Arc::new(RequesterCell(OnceLock::new()));
    let backend = LocalBackend {
        limits,
        requester: OnceLock::new(),
        driver: OnceLock::new(),
    };
    let _ = backend.requester.set(Arc::downgrade(&cell));
    let r = Requester::new(Box::new(backend));
    let _ = cell.0.set(r.clone());
    LocalRequester {
        requester: r,
        _cell: cell,
    }
}

/// A [`Requester`] over an in-process budget (keeps the driver's link to
/// it alive).
#[derive(Debug, Clone)]
pub struct LocalRequester {
    requester: Requester,
    /// Only kept alive: the driver reaches the requester through it.
    _cell: Arc<RequesterCell>,
}

impl LocalRequester {
    /// The requester.
    pub fn requester(&self) -> &Requester {
        &self.requester
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn grants_wait_their_turn_and_a_dropped_ask_frees_nothing_it_never_had() {
        let local = requester(Limits {
            rate: 0.0,
            max_concurrent: 1,
        });
        let r = local.requester().clone();
        let first = r.acquire("h:1", 0).await.expect("first grant");
        // The second waits while the first holds the only slot.
        let second = tokio::time::timeout(Duration::from_secs(3600), r.acquire("h:1", 0)).await;
        assert!(second.is_err(), "no grant while the slot is held");
        assert_eq!(r.counts(), (0, 1), "the timed-out ask was withdrawn");
        first.finish(Feedback::status(200));
        let third = tokio::time::timeout(Duration::from_secs(5), r.acquire("h:1", 0))
            .await
            .expect("granted once the slot is free")
            .expect("grant");
        drop(third);
        assert_eq!(r.counts(), (0, 0));
    }

    #[tokio::test]
    async fn the_rate_spaces_requests() {
        let local = requester(Limits {
            rate: 50.0,
            max_concurrent: 8,
        });
        let r = local.requester().clone();
        let t0 = Instant::now();
        for _ in 0..5 {
            r.acquire("h:1", 0)
                .await
                .expect("grant")
                .finish(Feedback::status(200));
        }
        // Four gaps of 22 ms at least (20 ms and the margin).
        assert!(
            t0.elapsed() >= Duration::from_millis(88),
            "{:?}",
            t0.elapsed()
        );
    }
}
