//! Forwarding a worker's stdout and stderr to the log, within a budget.
//!
//! Each stream is read by its own task with the bounded, lossy
//! [`LineReader`], so a worker can neither stall its pipe (invalid UTF-8,
//! endless lines) nor grow the supervisor's memory. Lines go to `tracing`
//! under the target `pool::worker`.
//!
//! A worker that floods its output cannot flood the log, nor keep the
//! pool's thread busy formatting it: the two streams of a worker share a
//! token bucket ([`OutputRate`], by default 100 lines a second with bursts
//! of 200). Lines beyond it are read (the pipe never fills, so the worker
//! never blocks on a write) and dropped, and counted: one warning, `N lines
//! dropped`, says how many, once the flood is over (a second without a
//! line, or the stream's end) and every 5 seconds while it lasts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncRead;
use tokio::task::JoinHandle;

use crate::lines::{LineReader, MAX_LINE};

/// How many output lines (stdout and stderr together) a worker may have
/// logged: `lines_per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputRate {
    /// Lines a second, on average.
    pub lines_per_second: f64,
    /// Lines at once after a quiet time.
    pub burst: u32,
}

impl Default for OutputRate {
    fn default() -> Self {
        OutputRate {
            lines_per_second: 100.0,
            burst: 200,
        }
    }
}

/// While lines are being dropped, how often the count is logged.
const NOTE_EVERY: Duration = Duration::from_secs(5);

/// A flood is over after this long without a line.
const QUIET: Duration = Duration::from_secs(1);

/// The token bucket of one worker's output and the lines it dropped.
/// Pure: the caller gives the time.
#[derive(Debug)]
pub(crate) struct LineBudget {
    rate: OutputRate,
    tokens: f64,
    refilled: Instant,
    /// Dropped since the last note.
    dropped: u64,
    /// When the last note was logged, or the first line of this count
    /// dropped.
    noted: Instant,
    /// When the last line arrived.
    seen: Instant,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admit {
    /// Log it (else it is dropped).
    pub log: bool,
    /// Log first that this many lines were dropped.
    pub note: Option<u64>,
}

impl LineBudget {
    pub(crate) fn new(rate: OutputRate, now: Instant) -> LineBudget {
        LineBudget {
            rate,
            tokens: f64::from(rate.burst.max(1)),
            refilled: now,
            dropped: 0,
            noted: now,
            seen: now,
        }
    }

    /// A line arrived at `now`.
    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let burst = f64::from(self.rate.burst.max(1));
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.lines_per_second.max(0.0)).min(burst);
        self.refilled = now;
        self.seen = now;
        let log = self.tokens >= 1.0;
        if log {
            self.tokens -= 1.0;
        } else {
            if self.dropped == 0 {
                self.noted = now;
            }
            self.dropped += 1;
        }
        let due = self.dropped > 0 && now.saturating_duration_since(self.noted) >= NOTE_EVERY;
        Admit {
            log,
            note: due.then(|| self.take(now)),
        }
    }

    /// Lines dropped and not yet noted.
    pub(crate) fn pending(&self) -> bool {
        self.dropped > 0
    }

    /// The count to note when the flood is over: no line for [`QUIET`].
    pub(crate) fn quiet(&mut self, now: Instant) -> Option<u64> {
        (self.dropped > 0 && now.saturating_duration_since(self.seen) >= QUIET)
            .then(|| self.take(now))
    }

    /// The count to note at the end of a stream.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<u64> {
        (self.dropped > 0).then(|| self.take(now))
    }

    fn take(&mut self, now: Instant) -> u64 {
        self.noted = now;
        std::mem::take(&mut self.dropped)
    }
}

/// The budget a worker's two output streams share.
pub(crate) type SharedBudget = Arc<Mutex<LineBudget>>;

/// A new shared budget.
pub(crate) fn budget(rate: OutputRate) -> SharedBudget {
    Arc::new(Mutex::new(LineBudget::new(rate, Instant::now())))
}

fn with<T>(budget: &SharedBudget, f: impl FnOnce(&mut LineBudget) -> T) -> T {
    f(&mut budget.lock().unwrap_or_else(|p| p.into_inner()))
}

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

fn note_dropped(worker: &str, rate: OutputRate, dropped: u64) {
    tracing::warn!(
        target: "pool::worker",
        worker,
        dropped,
        "{dropped} lines dropped: the worker wrote more than {} lines/s (bursts of {})",
        rate.lines_per_second,
        rate.burst
    );
}

/// Forward `reader` (a worker's `stream`, `stdout` or `stderr`) line by
/// line until it ends, within the worker's `budget`.
pub(crate) fn forward_lines<R: AsyncRead + Unpin + Send + 'static>(
    worker: String,
    stream: &'static str,
    reader: R,
    budget: SharedBudget,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let rate = with(&budget, |b| b.rate);
        let mut lines = LineReader::new(reader, MAX_LINE);
        loop {
            // While a count waits, wake up to note it once the flood is
            // over (reading lines is cancel safe).
            let next = if with(&budget, |b| b.pending()) {
                match tokio::time::timeout(QUIET, lines.next_line()).await {
                    Ok(next) => next,
                    Err(_) => {
                        if let Some(n) = with(&budget, |b| b.quiet(Instant::now())) {
                            note_dropped(&worker, rate, n);
                        }
                        continue;
                    }
                }
            } else {
                lines.next_line().await
            };
            match next {
                Ok(Some(line)) => {
                    let admit = with(&budget, |b| b.admit(Instant::now()));
                    if let Some(n) = admit.note {
                        note_dropped(&worker, rate, n);
                    }
                    if admit.log {
                        log_worker_line(&worker, stream, &line);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(worker = %worker, stream, error = %e, "output read failed");
                    break;
                }
            }
        }
        if let Some(n) = with(&budget, |b| b.flush(Instant::now())) {
            note_dropped(&worker, rate, n);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: OutputRate = OutputRate {
        lines_per_second: 10.0,
        burst: 5,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = LineBudget::new(RATE, t0);
        let logged: Vec<bool> = (0..8).map(|_| b.admit(t0).log).collect();
        assert_eq!(logged, [true, true, true, true, true, false, false, false]);
        assert!(b.pending());
        // 100 ms later one more token; 1 s later the whole burst again.
        assert!(b.admit(t0 + Duration::from_millis(100)).log);
        assert!(!b.admit(t0 + Duration::from_millis(100)).log);
        let later = t0 + Duration::from_secs(10);
        let logged = (0..6).filter(|_| b.admit(later).log).count();
        assert_eq!(logged, 5, "the bucket holds at most the burst");
    }

    #[test]
    fn notes_when_quiet_every_five_seconds_and_at_the_end() {
        let t0 = Instant::now();
        let mut b = LineBudget::new(RATE, t0);
        for _ in 0..25 {
            assert_eq!(b.admit(t0).note, None);
        }
        // 20 dropped; not quiet yet.
        assert_eq!(b.quiet(t0 + Duration::from_millis(500)), None);
        assert_eq!(b.quiet(t0 + QUIET), Some(20));
        assert!(!b.pending());
        assert_eq!(b.quiet(t0 + QUIET * 2), None, "noted once");

        // A sustained flood: 1,000 lines a second for 12 s. A note every
        // 5 s, and the count of every line not logged.
        let mut b = LineBudget::new(RATE, t0);
        let (mut logged, mut notes) = (0u64, Vec::new());
        for ms in 0..12_000u64 {
            let admit = b.admit(t0 + Duration::from_millis(ms));
            logged += u64::from(admit.log);
            notes.extend(admit.note);
        }
        notes.extend(b.flush(t0 + Duration::from_secs(12)));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert_eq!(logged + notes.iter().sum::<u64>(), 12_000);
        // About the burst plus 10 a second.
        assert!((120..=130).contains(&logged), "{logged}");
    }
}
