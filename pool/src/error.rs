//! The pool's error type.

use std::path::PathBuf;

/// Everything the pool can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No worker has this name.
    #[error("unknown worker `{0}`")]
    UnknownWorker(String),
    /// Two specs share a name.
    #[error("duplicate worker name `{0}`")]
    DuplicateName(String),
    /// The OS refused a resource limit.
    #[error("worker `{worker}`: the OS refused {limit} = {value}: {source}")]
    Limit {
        /// Worker name.
        worker: String,
        /// Which limit (`RLIMIT_CPU`, `RLIMIT_DATA`, `RLIMIT_NOFILE`, …).
        limit: &'static str,
        /// Requested value.
        value: u64,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program could not be spawned.
    #[error("worker `{worker}`: cannot spawn `{}`: {source}", program.display())]
    Spawn {
        /// Worker name.
        worker: String,
        /// Program path.
        program: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The worker has no live process to send a message to.
    #[error("worker `{0}` is not running")]
    NotRunning(String),
    /// The worker's send queue is full (it does not read its channel): the
    /// message was dropped.
    #[error("worker `{0}`: send queue full, message dropped")]
    QueueFull(String),
    /// A message could not be serialized.
    #[error("worker `{worker}`: cannot serialize the message: {source}")]
    Message {
        /// Worker name.
        worker: String,
        /// Serialization error.
        #[source]
        source: serde_json::Error,
    },
    /// The pool is shutting down and takes no more commands.
    #[error("the pool is shutting down")]
    ShuttingDown,
    /// Other OS failure (socket pair, signal handling, sampler).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}
