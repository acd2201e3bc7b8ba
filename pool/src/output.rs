//! Forwarding a worker's stdout and stderr to the log.
//!
//! Each stream is read by its own task with the bounded, lossy
//! [`LineReader`], so a worker can neither stall its pipe (invalid UTF-8,
//! endless lines) nor grow the supervisor's memory. Lines go to `tracing`
//! under the target `pool::worker`.

use tokio::io::AsyncRead;
use tokio::task::JoinHandle;

use crate::lines::{LineReader, MAX_LINE};

/// Log one line of a worker's output under the target `pool::worker`. A
/// line that starts with a level word (`ERROR`, `WARN`, `INFO`, `DEBUG`,
/// `TRACE`, as tracing's and most loggers' plain formats do) is logged at
/// that level without the word; anything else at INFO.
fn log_worker_line(worker: &str, stream: &'static str, line: &str) {
    let trimmed = line.trim_start();
    let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let rest = rest.trim_start();
    match word {
        "ERROR" => tracing::error!(target: "pool::worker", worker, stream, "{rest}"),
        "WARN" => tracing::warn!(target: "pool::worker", worker, stream, "{rest}"),
        "INFO" => tracing::info!(target: "pool::worker", worker, stream, "{rest}"),
        "DEBUG" => tracing::debug!(target: "pool::worker", worker, stream, "{rest}"),
        "TRACE" => tracing::trace!(target: "pool::worker", worker, stream, "{rest}"),
        _ => tracing::info!(target: "pool::worker", worker, stream, "{line}"),
    }
}

/// Forward `reader` (a worker's `stream`, `stdout` or `stderr`) line by
/// line until it ends.
pub(crate) fn forward_lines<R: AsyncRead + Unpin + Send + 'static>(
    worker: String,
    stream: &'static str,
    reader: R,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = LineReader::new(reader, MAX_LINE);
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => log_worker_line(&worker, stream, &line),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(worker = %worker, stream, error = %e, "output read failed");
                    break;
                }
            }
        }
    })
}
