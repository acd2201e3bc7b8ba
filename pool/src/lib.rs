//! `pool`: a reusable process supervisor.
//!
//! One OS process per [`WorkerSpec`], each in its own process group, with
//! `PR_SET_PDEATHSIG(SIGKILL)` and rlimits applied between fork and exec.
//! Exits are detected immediately (a pidfd per worker), classified
//! ([`ExitReason`]) and answered by a pure decision function ([`decide()`]),
//! the only authority over a worker's state, that picks restart, backoff,
//! fatal or stop. Workers talk to the pool over a dedicated channel
//! ([`channel`]): ready, heartbeats, progress reports one way, any JSON
//! message ([`PoolHandle::send`]) the other. Workers can be added, removed,
//! updated and replaced while the pool runs. The pool knows nothing about
//! what its workers do.
#![warn(missing_docs)]

mod actor;
pub mod channel;
pub mod decide;
pub mod error;
pub mod events;
pub mod exit;
mod handle;
mod lines;
mod link;
mod output;
pub mod priority;
pub mod procfs;
mod sampler;
mod signals;
mod spawn;
pub mod spec;
pub mod status;
mod table;
mod thread;
pub mod units;

pub use channel::{Incoming, WorkerChannel, WorkerMessage, WorkerReport};
pub use decide::decide;
pub use error::Error;
pub use events::PoolEvent;
pub use exit::{ExitReason, ExitRecord};
pub use handle::{Pool, PoolHandle, PoolOptions};
pub use procfs::Memory;
pub use spec::{Backoff, Limits, Policy, RestartMode, RestartPolicy, WorkerSpec};
pub use status::{StateName, WorkerStatus};
