//! The pool's status watcher: one process that reads the status page
//! once per poll interval for every world, and tells the supervisor which
//! worlds are due ([`WorkerEvent::StatusChecked`]); the supervisor's
//! [`relay`] passes each due world to its worker
//! ([`SupervisorMessage::WorldDue`](crate::protocol::SupervisorMessage::WorldDue)),
//! so a site update reaches every worker together without N pollers.
//!
//! Why a process of its own, run by the pool like any worker
//! (`worldpool worker --watcher`), rather than a task in the supervisor:
//! the supervisor stays free of HTTP, HTML parsing and the store (the
//! `pool` crate and `supervise` know processes and messages only); the
//! watcher gets the pool's supervision for free (limits, heartbeats,
//! restart with backoff, `/api/workers`, logs); a parser bug or a huge
//! page can crash or bloat the watcher, never the supervisor; and it uses
//! the same code path, config and budget as every worker. Its cost is one
//! more small process.
//!
//! "Due" means what it means in a worker: the world's status-page time
//! differs from the last update stored for it, so a failed run is
//! announced again (after a poll interval, at least a second), and a world
//! whose run is still being written may be announced twice (its worker
//! then finds it stored and does nothing). A time that changed since the
//! last check is announced at once, without asking the store first. The status pages are kept after
//! the news went out, at most every [`STATUS_PAGES_EVERY`] (or every poll
//! interval, when longer).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use pool::WorkerReport;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::protocol::{DueWorld, Phase, StatusChecked, WorkerEvent};
use crate::scrape::{
    CheckNow, Reporter, Scraper, open_store_retrying, poll_delay, save_status_pages,
};
use crate::site::{Clock, find_world};
use crate::store::Store;

pub mod relay;

/// Shortest time between two savings of the status pages
/// (`/api/status-data`).
pub const STATUS_PAGES_EVERY: Duration = Duration::from_secs(10);

/// What [`start_services`] started.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// The pool's budget, when the config shares it.
    pub budget: Option<crate::budget::service::BudgetService>,
}

/// Start the supervisor's application tasks a config asks for: the
/// pool's budget ([`crate::budget::service`]) and the watcher's
/// [`relay`]. Call right after the pool started (inside its runtime).
pub fn start_services(
    config: &Config,
    handle: &pool::PoolHandle,
    stop: CancellationToken,
    news: Option<relay::ClusterNews>,
) -> Services {
    let roles = crate::topology::roles(config);
    let budget = roles.pool_budget.then(|| {
        crate::budget::service::BudgetService::start(
            handle.clone(),
            crate::budget::Limits {
                rate: config.site.rate_limit,
                max_concurrent: config.site.max_concurrent,
            },
            stop.clone(),
        )
    });
    if roles.watcher {
        relay::start_with(handle.clone(), stop, news);
    }
    Services { budget }
}

/// What the watcher remembers per world, so that a new update is
/// announced without waiting for the store.
#[derive(Debug, Default)]
struct Memory {
    /// The update time last announced as due, and when.
    announced: HashMap<String, (DateTime<FixedOffset>, std::time::Instant)>,
    /// How long an announced update is left to its worker before the store
    /// is asked whether it is done (and it is announced again if not).
    recheck: Duration,
    /// The update time the store last said was processed.
    stored: HashMap<String, DateTime<FixedOffset>>,
}

impl Memory {
    /// Whether `world` at `update_time` is due: not if the store had it
    /// already; at once (no store read) when the time changed since the
    /// last check; not while its worker has had it for less than
    /// `recheck`; otherwise (first sight, or announced a while ago and
    /// maybe failed) as the store says.
    async fn is_due(
        &mut self,
        store: &Store,
        world: &str,
        update_time: DateTime<FixedOffset>,
    ) -> bool {
        if self.stored.get(world) == Some(&update_time) {
            return false;
        }
        let now = std::time::Instant::now();
        let (changed, recent) = match self.announced.get(world) {
            Some((last, at)) => (
                *last != update_time,
                *last == update_time && now.duration_since(*at) < self.recheck,
            ),
            None => (false, false),
        };
        if recent {
            return false;
        }
        if !changed {
            match store.world_state(world).await {
                Ok(state) if state.last_update_time == Some(update_time) => {
                    self.stored.insert(world.to_string(), update_time);
                    return false;
                }
                Ok(_) => {}
                // Let the worker decide (it reads the store too).
                Err(e) => tracing::warn!(%world, error = %e, "cannot read the world's state"),
            }
        }
        self.announced.insert(world.to_string(), (update_time, now));
        true
    }
}

/// Poll interval plus up to `jitter` × interval at random.
/// The watcher's loop until `shutdown`: read the status page, keep it,
/// announce the due worlds, sleep the poll interval (cut short by
/// [`CheckNow::request`]).
pub async fn run_watcher(
    config: Config,
    reporter: Reporter,
    shutdown: CancellationToken,
    check_now: CheckNow,
) -> anyhow::Result<()> {
    let scraper =
        Scraper::new(&config, Clock::System)?.with_priority(crate::budget::WATCHER_PRIORITY);
    let Some(store) = open_store_retrying(&config, &reporter, &shutdown).await? else {
        return Ok(());
    };
    tracing::info!(
        worlds = config.worlds.len(),
        interval = ?config.site.poll_interval,
        "status watcher started"
    );
    let mut memory = Memory {
        recheck: config.site.poll_interval.max(Duration::from_secs(1)),
        ..Memory::default()
    };
    // The status pages of every world are kept at most this often (one
    // write per world): at the default 60 s interval, after every check;
    // polled faster, the writes would compete with the runs' commits.
    let save_every = config.site.poll_interval.max(STATUS_PAGES_EVERY);
    let mut last_saved: Option<std::time::Instant> = None;
    // Like a world's worker: once the first status pages are kept, the
    // start-up pages go, and the heap is trimmed after each save.
    let mut pages = crate::memory::AfterWork::default();
    loop {
        reporter.phase(Phase::Checking);
        let checked_at = Utc::now();
        let status = tokio::select! {
            () = shutdown.cancelled() => break,
            s = scraper.status() => s,
        };
        let (checked, page) = match status {
            Ok(all) => {
                let mut due = Vec::new();
                let mut missing = Vec::new();
                for world in &config.worlds {
                    let Some(ws) = find_world(&all, &world.name) else {
                        missing.push(world.name.clone());
                        continue;
                    };
                    if memory.is_due(&store, &world.name, ws.update_time).await {
                        due.push(DueWorld {
                            world: world.name.clone(),
                            update_time: ws.update_time,
                        });
                    }
                }
                let error = (!missing.is_empty())
                    .then(|| format!("not on the status page: {}", missing.join(", ")));
                if let Some(e) = &error {
                    tracing::warn!(error = %e, "worlds missing from the status page");
                }
                reporter.report(WorkerReport {
                    last_success: Some(Utc::now()),
                    last_error: Some(error.clone().unwrap_or_default()),
                    ..Default::default()
                });
                (
                    StatusChecked {
                        checked_at,
                        due,
                        error,
                    },
                    Some(all),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "status page failed");
                reporter.report(WorkerReport {
                    last_error: Some(e.to_string()),
                    ..Default::default()
                });
                (
                    StatusChecked {
                        checked_at,
                        due: Vec::new(),
                        error: Some(e.to_string()),
                    },
                    None,
                )
            }
        };
        tracing::debug!(due = checked.due.len(), "status checked");
        // The news first, the bookkeeping after: workers start scraping
        // while the status pages are written.
        reporter.event(&WorkerEvent::StatusChecked(checked));
        if let Some(all) = page
            && last_saved.is_none_or(|t| t.elapsed() >= save_every)
        {
            save_status_pages(&scraper, &store, &config, &config.worlds, &all).await;
            last_saved = Some(std::time::Instant::now());
            pages.worked = true;
        }
        reporter.phase(Phase::Sleeping);
        pages.cycle_done();
        if check_now
            .next(poll_delay(&config), &shutdown)
            .await
            .is_none()
        {
            break;
        }
    }
    tracing::info!("status watcher stopped");
    Ok(())
}
