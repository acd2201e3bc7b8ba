//! The supervisor's log lines leave its threads through a bounded queue.
//!
//! Writing to stderr blocks when nobody reads it: a pipe into a paused
//! `less`, a stalled journald, a terminal on hold (Ctrl-S). Written from
//! the pool's thread, one such write would hold every restart. So the
//! subscriber only formats a line and hands it to [`QUEUE_LINES`] places;
//! a thread of its own (`log-writer`) writes them out. When the queue is
//! full the line is dropped and counted, and the writer notes the count
//! (`N log lines dropped`) with the next line it gets out. Nothing that
//! logs ever waits for stderr.
//!
//! [`flush`] waits (with a deadline) for the queue to be written: the
//! binary calls it before it exits.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for stderr before new ones are dropped.
pub const QUEUE_LINES: usize = 8192;

enum Message {
    Line(Vec<u8>),
    /// Answered once everything queued before it is written.
    Flush(SyncSender<()>),
}

struct Queue {
    tx: SyncSender<Message>,
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Option<Queue>> = OnceLock::new();

/// Start the writer thread (once); `json`: the drop note is a JSON line.
/// Without the thread (it could not start), lines go straight to stderr.
fn queue(json: bool) -> Option<&'static Queue> {
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_LINES);
            std::thread::Builder::new()
                .name("log-writer".into())
                .stack_size(128 * 1024)
                .spawn(move || write_out(rx, json))
                .ok()
                .map(|_| Queue {
                    tx,
                    dropped: AtomicU64::new(0),
                })
        })
        .as_ref()
}

fn write_out(rx: Receiver<Message>, json: bool) {
    let mut err = std::io::stderr();
    while let Ok(message) = rx.recv() {
        match message {
            Message::Line(line) => {
                let _ = err.write_all(&line);
                let dropped = QUEUE
                    .get()
                    .and_then(Option::as_ref)
                    .map_or(0, |q| q.dropped.swap(0, Ordering::Relaxed));
                if dropped > 0 {
                    let _ = err.write_all(drop_note(dropped, json).as_bytes());
                }
            }
            Message::Flush(done) => {
                let _ = err.flush();
                let _ = done.try_send(());
            }
        }
    }
}

/// The line that says how many were lost, in the log's format.
fn drop_note(dropped: u64, json: bool) -> String {
    let message = format!(
        "{dropped} log lines dropped: stderr was not read fast enough ({QUEUE_LINES} lines were waiting)"
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    if json {
        let line = serde_json::json!({
            "timestamp": now,
            "level": "WARN",
            "fields": {"message": message, "dropped": dropped},
            "target": "worldpool::logging",
        });
        format!("{line}\n")
    } else {
        format!("{now}  WARN worldpool::logging: {message}\n")
    }
}

/// The subscriber's writer: each event's bytes go to the queue as one line.
#[derive(Debug, Clone, Copy)]
pub struct Queued {
    json: bool,
}

impl Queued {
    /// A writer into the queue, starting its thread.
    pub fn new(json: bool) -> Queued {
        let _ = queue(json);
        Queued { json }
    }
}

impl<'a> MakeWriter<'a> for Queued {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            bytes: Vec::new(),
            json: self.json,
        }
    }
}

/// One event being formatted; queued when dropped.
pub struct Line {
    bytes: Vec<u8>,
    json: bool,
}

impl std::io::Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.bytes);
        match queue(self.json) {
            Some(q) => match q.tx.try_send(Message::Line(bytes)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    q.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(Message::Line(bytes))) => {
                    let _ = std::io::stderr().write_all(&bytes);
                }
                Err(TrySendError::Disconnected(_)) => {}
            },
            None => {
                let _ = std::io::stderr().write_all(&bytes);
            }
        }
    }
}

/// Wait until every line queued so far is written, at most `within`
/// (stderr may never be read again). True when it was.
pub fn flush(within: Duration) -> bool {
    let Some(q) = QUEUE.get().and_then(Option::as_ref) else {
        return true;
    };
    let deadline = Instant::now() + within;
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
    let mut message = Message::Flush(done_tx);
    loop {
        match q.tx.try_send(message) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) => {
                if Instant::now() >= deadline {
                    return false;
                }
                message = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TrySendError::Disconnected(_)) => return true,
        }
    }
    done_rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_note_follows_the_format() {
        let text = drop_note(12, false);
        assert!(text.ends_with(
            "WARN worldpool::logging: 12 log lines dropped: stderr was not read fast enough (8192 lines were waiting)\n"
        ));
        let json: serde_json::Value =
            serde_json::from_str(drop_note(3, true).trim_end()).expect("one JSON line");
        assert_eq!(json["level"], "WARN");
        assert_eq!(json["fields"]["dropped"], 3);
        assert_eq!(json["target"], "worldpool::logging");
    }
}
