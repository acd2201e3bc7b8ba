//! What the router needs from a pool: snapshots, the three control verbs,
//! "check the site now" and the event broadcast. Implemented for [`pool::PoolHandle`] and for
//! [`super::fake::FakeControl`] (tests and benchmarks).

use pool::{PoolEvent, PoolHandle, StateName, WorkerStatus};

use crate::protocol::SupervisorMessage;
use tokio::sync::broadcast;

/// A boxed, sendable future (what the control verbs return).
pub use futures_util::future::BoxFuture;

/// A control verb: `start`, `stop` or `restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Start a stopped or fatal worker.
    Start,
    /// Stop a worker and keep it stopped.
    Stop,
    /// Stop then start a worker.
    Restart,
}

impl Verb {
    /// The verb as it appears in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        }
    }
}

/// Why a control verb failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No worker has this name.
    #[error("unknown worker `{0}`")]
    UnknownWorker(String),
    /// The pool is shutting down and takes no more commands.
    #[error("the pool is shutting down")]
    ShuttingDown,
    /// Anything else (spawn failure, limits refused, OS error). The text is
    /// logged, never sent to clients.
    #[error("{0}")]
    Failed(String),
    /// The pool cannot do this (yet); the text says what is missing and is
    /// sent to clients.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl From<pool::Error> for ControlError {
    fn from(e: pool::Error) -> Self {
        match e {
            pool::Error::UnknownWorker(name) => ControlError::UnknownWorker(name),
            pool::Error::ShuttingDown => ControlError::ShuttingDown,
            other => ControlError::Failed(other.to_string()),
        }
    }
}

/// The pool as the API sees it. Implementations must answer `workers` and
/// `worker` quickly and without awaiting (they are called on every request).
pub trait Control: Send + Sync + 'static {
    /// Snapshot of every worker, in spec order.
    fn workers(&self) -> Vec<WorkerStatus>;
    /// Snapshot of one worker.
    fn worker(&self, name: &str) -> Option<WorkerStatus>;
    /// Start a stopped or fatal worker; resolves to the resulting state.
    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>>;
    /// Stop a worker and keep it stopped; resolves to the resulting state.
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>>;
    /// Restart a worker; resolves to the resulting state.
    fn restart<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>>;
    /// Subscribe to pool events.
    fn subscribe(&self) -> broadcast::Receiver<PoolEvent>;

    /// Ask a worker to check the site now, interrupting its sleep
    /// (`POST /api/manual-update`). Resolves once the request is delivered,
    /// not when the check is done. The default says it is not supported.
    fn check_now<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            Err(ControlError::Unsupported(format!(
                "this pool cannot ask worker `{name}` to check now"
            )))
        })
    }

    /// Send a worker a message down its channel (`GET
    /// /api/player-details/{name}` asks for a page this way). Returns once
    /// it is queued; the worker answers, if at all, with an event. The
    /// default says it is not supported.
    fn send(&self, name: &str, message: &SupervisorMessage) -> Result<(), ControlError> {
        let _ = message;
        Err(ControlError::Unsupported(format!(
            "this pool cannot send worker `{name}` a message"
        )))
    }

    /// Run one verb (dispatches to `start`, `stop` or `restart`).
    fn apply<'a>(
        &'a self,
        verb: Verb,
        name: &'a str,
    ) -> BoxFuture<'a, Result<StateName, ControlError>> {
        match verb {
            Verb::Start => self.start(name),
            Verb::Stop => self.stop(name),
            Verb::Restart => self.restart(name),
        }
    }
}

impl Control for PoolHandle {
    fn workers(&self) -> Vec<WorkerStatus> {
        PoolHandle::workers(self)
    }

    fn worker(&self, name: &str) -> Option<WorkerStatus> {
        PoolHandle::worker(self, name)
    }

    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { PoolHandle::start(self, name).await.map_err(Into::into) })
    }

    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { PoolHandle::stop(self, name).await.map_err(Into::into) })
    }

    fn restart<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { PoolHandle::restart(self, name).await.map_err(Into::into) })
    }

    fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        PoolHandle::subscribe(self)
    }

    fn send(&self, name: &str, message: &SupervisorMessage) -> Result<(), ControlError> {
        PoolHandle::send(self, name, message).map_err(Into::into)
    }

    /// Sends [`SupervisorMessage::CheckNow`] on the worker's channel; the
    /// worker wakes its scrape loop ([`crate::scrape::CheckNow`]).
    fn check_now<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            PoolHandle::send(self, name, &SupervisorMessage::CheckNow).map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_map_to_control_errors() {
        assert_eq!(
            ControlError::from(pool::Error::UnknownWorker("a b".into())),
            ControlError::UnknownWorker("a b".into())
        );
        assert_eq!(
            ControlError::from(pool::Error::ShuttingDown),
            ControlError::ShuttingDown
        );
        let io = pool::Error::Io {
            context: "socketpair".into(),
            source: std::io::Error::other("boom"),
        };
        assert!(matches!(ControlError::from(io), ControlError::Failed(m) if m.contains("boom")));
    }
}
