//! The supervisor's end of a worker's channel: a line reader for what the
//! worker sends, and a writer task for what the pool sends it.
//!
//! Writes go through a bounded queue to a task of their own, so a worker
//! that does not read can fill its socket buffer and the queue, but never
//! block its actor: when the queue is full the message is dropped (and
//! counted by the caller). The writer uses a duplicate of the socket, so
//! the worker sees EOF only when the pool closes both (the process ended,
//! or the supervisor is gone).

use std::os::unix::net::UnixStream as StdUnixStream;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::lines::{LineReader, MAX_LINE};

/// Reads the worker's messages, one JSON line each.
pub(crate) type Lines = LineReader<UnixStream>;

/// Sends lines to the worker; aborted when dropped.
pub(crate) struct Writer {
    task: JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Split the supervisor's end of the socket pair into a line reader and a
/// writer fed by a queue of `capacity` lines.
pub(crate) fn open(
    worker: &str,
    ours: StdUnixStream,
    capacity: usize,
) -> std::io::Result<(Lines, Writer, mpsc::Sender<Vec<u8>>)> {
    ours.set_nonblocking(true)?;
    let write_end = UnixStream::from_std(ours.try_clone()?)?;
    let lines = LineReader::new(UnixStream::from_std(ours)?, MAX_LINE);
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(write_lines(worker.to_string(), write_end, rx));
    Ok((lines, Writer { task }, tx))
}

async fn write_lines(worker: String, mut out: UnixStream, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = rx.recv().await {
        if let Err(e) = out.write_all(&line).await {
            tracing::debug!(worker = %worker, error = %e, "channel write failed");
            return;
        }
    }
}
