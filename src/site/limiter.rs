//! What the site client asks before each request: the process's share of
//! the pool's budget (a worker started by `worldpool run`), or a budget of
//! its own (everything else). See [`crate::budget`].

use std::sync::{Arc, OnceLock};

use pool::WorkerChannel;

use crate::budget::lease::{Lease, Requester};
use crate::budget::local::LocalRequester;
use crate::budget::{BudgetError, Limits};

/// The budget a [`super::SiteClient`] asks. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Limiter {
    /// A budget of this client's own.
    Local(LocalRequester),
    /// The supervisor's budget, over the worker channel.
    Pool(Requester),
}

static PROCESS: OnceLock<Limiter> = OnceLock::new();

impl Limiter {
    /// A budget of its own under `limits`.
    pub fn local(limits: Limits) -> Limiter {
        Limiter::Local(crate::budget::local::requester(limits))
    }

    /// The supervisor's budget, asked over `channel`.
    pub fn pool(channel: Arc<WorkerChannel>) -> Limiter {
        Limiter::Pool(crate::budget::remote::requester(channel))
    }

    /// Make `limiter` the one every site client of this process uses
    /// (a pool worker does this once at start). A second call is ignored.
    pub fn install(limiter: Limiter) {
        let _ = PROCESS.set(limiter);
    }

    /// The installed limiter, if any.
    pub fn installed() -> Option<Limiter> {
        PROCESS.get().cloned()
    }

    /// The requester behind it.
    pub fn requester(&self) -> &Requester {
        match self {
            Limiter::Local(l) => l.requester(),
            Limiter::Pool(r) => r,
        }
    }

    /// Wait for the right to send one request to `host`.
    pub async fn acquire(&self, host: &str, priority: i32) -> Result<Lease, BudgetError> {
        self.requester().acquire(host, priority).await
    }
}
