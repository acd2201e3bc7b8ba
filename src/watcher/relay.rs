//! The supervisor's side of the status watcher: an application task that
//! follows the pool's events and
//!
//! - on the watcher's `status_checked`, tells each due world's worker
//!   [`SupervisorMessage::WorldDue`] and every other world worker
//!   [`SupervisorMessage::WatcherUp`] (so a message lost on a full queue
//!   is repaired at the next check);
//! - when the watcher's process exits (or is stopped, backs off, goes
//!   fatal), tells every world worker [`SupervisorMessage::WatcherDown`]:
//!   they check at once and poll on their own until the watcher's next
//!   `status_checked` after its restart;
//! - when a world worker (re)starts, tells it the watcher is down if it
//!   is, else re-sends the last `WorldDue` of its world (a worker killed
//!   mid-run redoes it at once instead of at the next check).
//!
//! On a cluster node ([`ClusterNews`]) the watcher may run on another
//! node: its `status_checked` is published to the other nodes and theirs
//! arrive here as if local; with no news for [`ClusterNews::silence`] the
//! world workers are told the watcher is down (they poll on their own)
//! until news comes again.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use pool::{PoolEvent, PoolHandle};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::protocol::{SupervisorMessage, WorkerEvent};
use crate::topology::WATCHER_NAME;

/// What the relay knows.
struct Relay {
    handle: PoolHandle,
    watcher_up: bool,
    last_due: HashMap<String, (DateTime<FixedOffset>, DateTime<Utc>)>,
    /// When the last news came (local or remote).
    last_news: std::time::Instant,
}

/// A cluster node's link to the other nodes' status watcher.
pub struct ClusterNews {
    /// `status_checked` of a watcher on another node.
    pub remote: tokio::sync::mpsc::Receiver<crate::protocol::StatusChecked>,
    /// Publish this node's watcher's `status_checked` to the others.
    pub publish: Box<dyn Fn(&crate::protocol::StatusChecked) + Send + Sync>,
    /// No news this long: the watcher is down, wherever it ran.
    pub silence: std::time::Duration,
}

/// Start the relay. The world workers are every worker of the pool but
/// the watcher, as they are at each event (a config reload adds and
/// removes them). Subscribes at once; ends when `stop` is cancelled or the
/// pool is gone.
pub fn start(handle: PoolHandle, stop: CancellationToken) {
    start_with(handle, stop, None);
}

/// [`start`], on a cluster node with `news`.
pub fn start_with(handle: PoolHandle, stop: CancellationToken, news: Option<ClusterNews>) {
    let mut events = handle.subscribe();
    let mut relay = Relay {
        handle,
        // World workers start watched: the watcher is presumed up.
        watcher_up: true,
        last_due: HashMap::new(),
        last_news: std::time::Instant::now(),
    };
    let (mut remote, publish, silence) = match news {
        Some(n) => (Some(n.remote), Some(n.publish), Some(n.silence)),
        None => (None, None, None),
    };
    let mut quiet = tokio::time::interval(std::time::Duration::from_millis(250));
    quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                e = events.recv() => e,
                Some(c) = async { remote.as_mut()?.recv().await }, if remote.is_some() => {
                    relay.checked(c);
                    continue;
                }
                _ = quiet.tick(), if silence.is_some() => {
                    if silence.is_some_and(|s| relay.last_news.elapsed() > s) {
                        relay.watcher_down();
                    }
                    continue;
                }
            };
            if let (Some(publish), Ok(e)) = (&publish, &event)
                && e.worker() == WATCHER_NAME
                && let Some(WorkerEvent::StatusChecked(c)) = WorkerEvent::from_pool(e)
            {
                publish(&c);
            }
            match event {
                Ok(e) => relay.on_event(&e),
                Err(RecvError::Lagged(missed)) => {
                    // A lost `status_checked` is repaired by the next one;
                    // a lost exit of the watcher is not: look at it.
                    tracing::warn!(missed, "the watcher relay missed pool events");
                    let alive = relay
                        .handle
                        .worker(WATCHER_NAME)
                        .is_some_and(|w| w.pid.is_some());
                    if !alive {
                        relay.watcher_down();
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

impl Relay {
    /// The world workers now.
    fn worlds(&self) -> Vec<String> {
        let mut names = self.handle.names();
        names.retain(|n| n != WATCHER_NAME);
        names
    }

    fn send(&self, world: &str, message: &SupervisorMessage) {
        if let Err(e) = self.handle.send(world, message) {
            tracing::debug!(%world, error = %e, "watcher news not delivered");
        }
    }

    fn on_event(&mut self, event: &PoolEvent) {
        let worker = event.worker();
        if worker == WATCHER_NAME {
            match event {
                PoolEvent::Custom { .. } => {
                    if let Some(WorkerEvent::StatusChecked(c)) = WorkerEvent::from_pool(event) {
                        self.checked(c);
                    }
                }
                PoolEvent::Exited { .. }
                | PoolEvent::Stopped { .. }
                | PoolEvent::Backoff { .. }
                | PoolEvent::Fatal { .. } => self.watcher_down(),
                _ => {}
            }
            return;
        }
        if let PoolEvent::Ready { worker, .. } = event
            && worker != WATCHER_NAME
        {
            if !self.watcher_up {
                self.send(worker, &SupervisorMessage::WatcherDown);
            } else if let Some((update_time, checked_at)) = self.last_due.get(worker.as_str()) {
                self.send(
                    worker,
                    &SupervisorMessage::WorldDue {
                        world: worker.clone(),
                        update_time: *update_time,
                        checked_at: *checked_at,
                    },
                );
            }
        }
    }

    fn checked(&mut self, c: crate::protocol::StatusChecked) {
        self.last_news = std::time::Instant::now();
        if !self.watcher_up {
            tracing::info!("the status watcher is back: world workers stop polling");
            self.watcher_up = true;
        }
        let due: HashMap<&str, DateTime<FixedOffset>> = c
            .due
            .iter()
            .map(|d| (d.world.as_str(), d.update_time))
            .collect();
        for world in &self.worlds() {
            match due.get(world.as_str()) {
                Some(update_time) => {
                    self.last_due
                        .insert(world.clone(), (*update_time, c.checked_at));
                    self.send(
                        world,
                        &SupervisorMessage::WorldDue {
                            world: world.clone(),
                            update_time: *update_time,
                            checked_at: c.checked_at,
                        },
                    );
                }
                None => {
                    self.last_due.remove(world.as_str());
                    self.send(
                        world,
                        &SupervisorMessage::WatcherUp {
                            checked_at: c.checked_at,
                        },
                    );
                }
            }
        }
    }

    fn watcher_down(&mut self) {
        if !self.watcher_up || self.handle.is_shutting_down() {
            return;
        }
        self.watcher_up = false;
        tracing::warn!(
            "the status watcher is down: world workers poll on their own until it is back"
        );
        for world in &self.worlds() {
            self.send(world, &SupervisorMessage::WatcherDown);
        }
    }
}
