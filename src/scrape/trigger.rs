//! What wakes the scrape loop: its own poll timer, "check now", or — in a
//! pool with a status watcher — the watcher's news that a world is due.
//!
//! A world worker of a pool with a watcher starts *watched*: it does not
//! poll the status page, it waits for
//! [`WorldDue`](crate::protocol::SupervisorMessage::WorldDue). When the
//! supervisor says the watcher is down
//! ([`WatcherDown`](crate::protocol::SupervisorMessage::WatcherDown)), it
//! checks at once and polls on its own until the watcher is back
//! ([`WatcherUp`](crate::protocol::SupervisorMessage::WatcherUp), or any
//! `WorldDue`). No timer in the worker decides that the watcher is gone:
//! the supervisor sees the watcher's process exit, and a hung watcher is
//! killed by the heartbeat timeout, which is an exit too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use tokio_util::sync::CancellationToken;

use crate::site::WorldStatus;

/// Why the loop woke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Check the status page (poll timer, "check now", watcher down).
    Check,
    /// The watcher read the status page: these worlds are due.
    Due {
        /// The due worlds with their update times (`raw` is empty).
        worlds: Vec<WorldStatus>,
        /// When the watcher read the page.
        checked_at: DateTime<Utc>,
    },
}

#[derive(Debug, Default)]
struct State {
    /// Started watched (a pool with a watcher).
    watched: bool,
    /// The watcher is believed up (only meaningful when watched).
    watcher_up: bool,
    /// A check was asked for ("check now").
    requested: bool,
    /// A check is due because the watcher went down.
    check: bool,
    /// Due worlds not yet handed to the loop (latest time per world).
    due: BTreeMap<String, DateTime<FixedOffset>>,
    checked_at: Option<DateTime<Utc>>,
}

/// Lets "check the site now" (`POST /api/manual-update`) and the watcher's
/// news wake a worker's scrape loop. The worker process holds one and
/// passes it to [`super::run_worker_with`]; whoever reads the supervisor's
/// messages calls [`request`](CheckNow::request),
/// [`world_due`](CheckNow::world_due) and the watcher state changes.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CheckNow(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    notify: tokio::sync::Notify,
    state: Mutex<State>,
}

impl CheckNow {
    /// A loop that polls on its own (no request pending).
    pub fn new() -> CheckNow {
        CheckNow::default()
    }

    /// A loop that waits for the watcher (believed up until told otherwise).
    pub fn watched() -> CheckNow {
        let c = CheckNow::default();
        {
            let mut s = c.state();
            s.watched = true;
            s.watcher_up = true;
        }
        c
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state());
        self.0.notify.notify_one();
    }

    /// Ask the loop to check now: a sleeping loop wakes at once; a loop
    /// that is checking or scraping checks again right after. Requests made
    /// meanwhile count once.
    pub fn request(&self) {
        self.change(|s| s.requested = true);
    }

    /// The watcher saw `world` at `update_time` (and is up).
    pub fn world_due(
        &self,
        world: &str,
        update_time: DateTime<FixedOffset>,
        checked_at: DateTime<Utc>,
    ) {
        self.change(|s| {
            if s.watched && !s.watcher_up {
                tracing::info!("the status watcher is back: no more polling of my own");
            }
            s.watcher_up = true;
            s.due.insert(world.to_string(), update_time);
            s.checked_at = Some(checked_at);
        });
    }

    /// The watcher checks for the pool (again).
    pub fn watcher_up(&self, checked_at: DateTime<Utc>) {
        self.change(|s| {
            if s.watched && !s.watcher_up {
                tracing::info!("the status watcher is back: no more polling of my own");
            }
            s.watcher_up = true;
            s.checked_at = Some(checked_at);
        });
    }

    /// The watcher is gone: check now, then poll on our own.
    pub fn watcher_down(&self) {
        self.change(|s| {
            if s.watched && s.watcher_up {
                tracing::warn!("the status watcher is down: polling the status page myself");
            }
            s.watcher_up = false;
            s.check = true;
        });
    }

    /// Whether the loop waits for the watcher now (rather than polling).
    pub fn waits_for_watcher(&self) -> bool {
        let s = self.state();
        s.watched && s.watcher_up
    }

    /// Wait for the next reason to work: due worlds first, then a check
    /// asked for, then (when polling) `poll_delay` from now. `None` on
    /// shutdown.
    pub async fn next(&self, poll_delay: Duration, shutdown: &CancellationToken) -> Option<Wake> {
        let deadline = tokio::time::Instant::now() + poll_delay;
        loop {
            let polling = {
                let mut s = self.state();
                if !s.due.is_empty() {
                    let worlds = std::mem::take(&mut s.due)
                        .into_iter()
                        .map(|(world, update_time)| WorldStatus {
                            world,
                            raw: String::new(),
                            update_time,
                            // The watcher keeps the status pages.
                            routines: Vec::new(),
                        })
                        .collect();
                    return Some(Wake::Due {
                        worlds,
                        checked_at: s.checked_at.unwrap_or_else(Utc::now),
                    });
                }
                if std::mem::take(&mut s.requested) {
                    tracing::info!("checking now, as requested");
                    return Some(Wake::Check);
                }
                if std::mem::take(&mut s.check) {
                    return Some(Wake::Check);
                }
                !(s.watched && s.watcher_up)
            };
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = self.0.notify.notified() => {}
                () = tokio::time::sleep_until(deadline), if polling => return Some(Wake::Check),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).expect("time")
    }

    #[tokio::test]
    async fn polling_wakes_on_its_timer_or_on_request() {
        let stop = CancellationToken::new();
        let c = CheckNow::new();
        assert!(!c.waits_for_watcher());
        assert_eq!(
            c.next(Duration::from_millis(5), &stop).await,
            Some(Wake::Check)
        );
        c.request();
        c.request();
        assert_eq!(
            c.next(Duration::from_secs(3600), &stop).await,
            Some(Wake::Check)
        );
        stop.cancel();
        assert_eq!(c.next(Duration::from_secs(3600), &stop).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn watched_waits_for_due_worlds_and_falls_back_when_the_watcher_is_down() {
        let stop = CancellationToken::new();
        let c = CheckNow::watched();
        assert!(c.waits_for_watcher());
        // No timer while the watcher is up.
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), c.next(Duration::ZERO, &stop)).await;
        assert!(waited.is_err(), "a watched loop does not poll");
        let at = Utc::now();
        c.world_due("Aurera", t("2026-01-01T09:00:00-03:00"), at);
        c.world_due("Aurera", t("2026-01-01T09:10:00-03:00"), at);
        match c.next(Duration::ZERO, &stop).await {
            Some(Wake::Due { worlds, checked_at }) => {
                assert_eq!(worlds.len(), 1, "the latest time per world");
                assert_eq!(worlds[0].update_time, t("2026-01-01T09:10:00-03:00"));
                assert_eq!(checked_at, at);
            }
            other => panic!("{other:?}"),
        }
        // Down: check at once, then poll on the timer.
        c.watcher_down();
        assert!(!c.waits_for_watcher());
        assert_eq!(
            c.next(Duration::from_secs(3600), &stop).await,
            Some(Wake::Check)
        );
        assert_eq!(
            c.next(Duration::from_millis(5), &stop).await,
            Some(Wake::Check)
        );
        // Back: no more polling.
        c.watcher_up(Utc::now());
        assert!(c.waits_for_watcher());
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), c.next(Duration::ZERO, &stop)).await;
        assert!(
            waited.is_err(),
            "polling stopped when the watcher came back"
        );
    }
}
