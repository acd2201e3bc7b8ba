//! The worker ↔ supervisor channel: JSON lines over a dedicated socket.
//!
//! The supervisor creates a Unix socket pair per worker and hands one end to
//! the worker as file descriptor [`CHANNEL_FD`], announced in the environment
//! variable [`CHANNEL_ENV`]. The worker writes one [`WorkerMessage`] per line.
//!
//! The supervisor writes too: one JSON value per line, sent with
//! [`PoolHandle::send`](crate::PoolHandle::send) (what they mean is up to the
//! application). The worker reads them with [`WorkerChannel::incoming`];
//! end-of-file there means the supervisor is gone, and the worker should
//! exit (second line of defence after `PR_SET_PDEATHSIG`). There is one
//! reader per channel, so no line is lost to a second one.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::lines::MAX_LINE;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// File descriptor number the channel has in the worker.
pub const CHANNEL_FD: i32 = 3;
/// Environment variable naming the channel descriptor in the worker.
pub const CHANNEL_ENV: &str = "POOL_CHANNEL_FD";

/// One line on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// The worker finished starting up.
    Ready,
    /// Still alive (send at least every `heartbeat_timeout / 3`).
    Heartbeat,
    /// Progress report; fields that are `None` leave the previous value.
    Report(WorkerReport),
    /// An application event passed through to pool subscribers as is.
    Event {
        /// Event kind, e.g. `run_finished`.
        kind: String,
        /// Free-form payload.
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// What the worker is doing; merged into its status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Current phase (`idle`, `checking`, `scraping`, `sleeping`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// When the worker last checked for work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DateTime<Utc>>,
    /// When the worker last completed work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    /// Last error message; an empty string clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Rows of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_last_run: Option<u64>,
}

/// Whether [`WorkerChannel::from_env`] already took the descriptor.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The worker side of the channel.
#[derive(Debug)]
pub struct WorkerChannel {
    out: Mutex<UnixStream>,
    /// Whether the one reader ([`incoming`](Self::incoming) or
    /// [`eof_watcher`](Self::eof_watcher)) was handed out.
    reader_taken: AtomicBool,
}

impl WorkerChannel {
    /// Open the channel named by [`CHANNEL_ENV`]; `None` when not run by a
    /// pool. The descriptor is taken once per process: a second call
    /// returns `None`, so two owners of it cannot exist.
    pub fn from_env() -> Option<WorkerChannel> {
        let fd: i32 = std::env::var(CHANNEL_ENV).ok()?.parse().ok()?;
        // The fd must be open; fcntl tells us it is.
        // SAFETY: F_GETFD on an arbitrary integer is harmless.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return None;
        }
        if TAKEN.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the supervisor passed us this descriptor, it is open, and
        // the flag above makes this the only place that ever owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(WorkerChannel {
            out: Mutex::new(UnixStream::from(owned)),
            reader_taken: AtomicBool::new(false),
        })
    }

    /// Send one message. Errors mean the supervisor is gone.
    pub fn send(&self, msg: &WorkerMessage) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("channel lock poisoned"))?;
        out.write_all(&line)
    }

    /// The reader of what the supervisor sends: one line per message, and
    /// the end of the iteration when the supervisor is gone (EOF). Blocking:
    /// use it from a thread of its own. There is one reader per channel:
    /// a second call (or one after [`eof_watcher`](Self::eof_watcher))
    /// fails.
    pub fn incoming(&self) -> std::io::Result<Incoming> {
        Ok(Incoming {
            reader: BufReader::new(self.take_reader()?),
            buf: Vec::new(),
        })
    }

    /// The raw reader of the channel, for a worker that only wants to
    /// notice the supervisor going away: `read` returns 0 (EOF) then.
    /// Whatever the supervisor sends is read and dropped by its user;
    /// prefer [`incoming`](Self::incoming). Same one-reader rule.
    pub fn eof_watcher(&self) -> std::io::Result<UnixStream> {
        self.take_reader()
    }

    fn take_reader(&self) -> std::io::Result<UnixStream> {
        if self.reader_taken.swap(true, Ordering::SeqCst) {
            return Err(std::io::Error::other(
                "the channel's reader was already taken",
            ));
        }
        let out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("channel lock poisoned"))?;
        out.try_clone()
    }
}

/// Messages from the supervisor, one line each (see
/// [`WorkerChannel::incoming`]). Lines longer than 64 KiB arrive in pieces;
/// invalid UTF-8 is replaced.
#[derive(Debug)]
pub struct Incoming {
    reader: BufReader<UnixStream>,
    buf: Vec<u8>,
}

impl Incoming {
    /// The next line without its ending; `None` once the supervisor is gone.
    pub fn next_line(&mut self) -> std::io::Result<Option<String>> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let line = String::from_utf8_lossy(&self.buf);
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
    }

    /// The next message parsed as JSON; `None` once the supervisor is gone.
    /// A line that is not valid JSON for `T` is an `InvalidData` error; the
    /// reader stays usable.
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> std::io::Result<Option<T>> {
        match self.next_line()? {
            None => Ok(None),
            Some(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
}

impl Iterator for Incoming {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (WorkerChannel, UnixStream) {
        let (a, b) = UnixStream::pair().expect("socket pair");
        (
            WorkerChannel {
                out: Mutex::new(a),
                reader_taken: AtomicBool::new(false),
            },
            b,
        )
    }

    #[test]
    fn incoming_lines_then_end_of_file() {
        let (ch, mut sup) = pair();
        let mut incoming = ch.incoming().expect("reader");
        assert!(ch.incoming().is_err(), "one reader only");
        assert!(ch.eof_watcher().is_err(), "one reader only");
        sup.write_all(b"{\"check\":\"now\"}\nnot json\n\xff\r\n")
            .expect("write");
        drop(sup);
        let v: serde_json::Value = incoming.recv().expect("reads").expect("a line");
        assert_eq!(v["check"], "now");
        let bad = incoming.recv::<serde_json::Value>();
        assert_eq!(
            bad.expect_err("not json").kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            incoming.next().transpose().expect("reads"),
            Some("\u{fffd}".into())
        );
        assert!(incoming.next().is_none(), "EOF ends the iteration");
    }

    #[test]
    fn the_worker_still_writes_after_taking_the_reader() {
        let (ch, sup) = pair();
        let _incoming = ch.incoming().expect("reader");
        ch.send(&WorkerMessage::Ready).expect("send");
        let mut line = String::new();
        BufReader::new(sup).read_line(&mut line).expect("read");
        assert_eq!(line, "{\"type\":\"ready\"}\n");
    }

    #[test]
    fn messages_round_trip_as_json_lines() {
        let msgs = [
            WorkerMessage::Ready,
            WorkerMessage::Heartbeat,
            WorkerMessage::Report(WorkerReport {
                phase: Some("scraping".into()),
                rows_last_run: Some(42),
                ..Default::default()
            }),
            WorkerMessage::Event {
                kind: "run_finished".into(),
                data: serde_json::json!({"rows": 3}),
            },
        ];
        for m in msgs {
            let line = serde_json::to_string(&m).expect("serializes");
            assert!(!line.contains('\n'));
            let back: WorkerMessage = serde_json::from_str(&line).expect("parses");
            assert_eq!(back, m);
        }
        let parsed: WorkerMessage =
            serde_json::from_str(r#"{"type":"report","phase":"idle"}"#).expect("parses");
        assert_eq!(
            parsed,
            WorkerMessage::Report(WorkerReport {
                phase: Some("idle".into()),
                ..Default::default()
            })
        );
    }
}
