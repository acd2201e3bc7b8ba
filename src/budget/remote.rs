//! The worker's end of the pool's budget: asks and releases go to the
//! supervisor as channel events ([`WorkerEvent::BudgetAcquire`],
//! [`WorkerEvent::BudgetRelease`]); grants come back as
//! [`SupervisorMessage::BudgetGrant`](crate::protocol::SupervisorMessage::BudgetGrant),
//! which the worker's message reader hands to [`Requester::granted`].

use std::sync::Arc;

use pool::WorkerChannel;

use super::lease::{Backend, Requester};
use super::{BudgetError, Feedback};
use crate::protocol::{BudgetAcquire, BudgetRelease, BudgetSync, WorkerEvent};

#[derive(Debug)]
struct ChannelBackend {
    channel: Arc<WorkerChannel>,
}

impl ChannelBackend {
    fn send(&self, event: &WorkerEvent) -> std::io::Result<()> {
        self.channel.send(&event.to_message())
    }
}

impl Backend for ChannelBackend {
    fn acquire(&self, host: &str, id: u64, priority: i32) -> Result<(), BudgetError> {
        self.send(&WorkerEvent::BudgetAcquire(BudgetAcquire {
            host: host.to_string(),
            id,
            priority,
        }))
        .map_err(|e| BudgetError::Gone(format!("the supervisor is gone: {e}")))
    }

    fn release(&self, host: &str, id: u64, feedback: Option<Feedback>) {
        let _ = self.send(&WorkerEvent::BudgetRelease(BudgetRelease {
            host: host.to_string(),
            id,
            feedback,
        }));
    }

    fn sync(&self, state: BudgetSync) {
        let _ = self.send(&WorkerEvent::BudgetSync(state));
    }
}

/// A requester whose budget is the supervisor's.
pub fn requester(channel: Arc<WorkerChannel>) -> Requester {
    Requester::new(Box::new(ChannelBackend { channel }))
}
