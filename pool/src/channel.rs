//! The worker → supervisor channel: JSON lines over a dedicated socket.
//!
//! The supervisor creates a Unix socket pair per worker and hands one end to
//! the worker as file descriptor [`CHANNEL_FD`], announced in the environment
//! variable [`CHANNEL_ENV`]. The worker writes one [`WorkerMessage`] per line.
//! The worker also reads from the same descriptor: end-of-file there means
//! the supervisor is gone, and the worker should exit (second line of defence
//! after `PR_SET_PDEATHSIG`).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

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

/// The worker side of the channel.
#[derive(Debug)]
pub struct WorkerChannel {
    out: Mutex<UnixStream>,
}

impl WorkerChannel {
    /// Open the channel named by [`CHANNEL_ENV`]; `None` when not run by a pool.
    pub fn from_env() -> Option<WorkerChannel> {
        let fd: i32 = std::env::var(CHANNEL_ENV).ok()?.parse().ok()?;
        // The fd must be open and a socket; fcntl tells us it is open.
        // SAFETY: F_GETFD on an arbitrary integer is harmless.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return None;
        }
        // SAFETY: the supervisor passed us this descriptor and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(WorkerChannel {
            out: Mutex::new(UnixStream::from(owned)),
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

    /// A second handle for reading: `read` returns 0 (EOF) once the
    /// supervisor is gone. Use it from a blocking thread.
    pub fn eof_watcher(&self) -> std::io::Result<UnixStream> {
        let out = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("channel lock poisoned"))?;
        out.try_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
