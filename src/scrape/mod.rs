//! The scrape loop: check the status page, scrape due worlds, store runs.
//!
//! - [`Scraper`]: fetches the status page and a world's guilds (writes
//!   nothing).
//! - [`classify`]: a world's guild pages decided together, an unknown
//!   guild or a changed layout ([`classify_guild_pages`]).
//! - [`process_world`]: one check-and-scrape of one world against the store:
//!   skip when its update was already processed, otherwise scrape every guild
//!   and write the run in one transaction (or record it failed).
//! - [`run_worker`]: the worker's loop over its worlds until shutdown;
//!   [`run_worker_with`] also takes a [`CheckNow`] that cuts its sleep short.
//! - [`status_page`]: what the loop keeps of each status-page check of its
//!   worlds (`/api/status-data`).
//! - [`scrape_once`]: one check-and-scrape of one world now (`worldpool
//!   scrape-once`).
//! - [`Reporter`]: what the loop tells the supervisor over the channel.
//! - [`vip`]: the watched players' pass, after each world's check.
//! - [`player_details`]: a player's page read on the supervisor's request
//!   (`/api/player-details/{name}`).

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use futures_util::future::try_join_all;
use pool::WorkerReport;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, World};
use crate::protocol::{DeltaBatch, Phase, RunFailed, RunFinished, WorkerEvent};
use crate::site::{Clock, SiteClient, SiteError, WorldStatus, backoff_delay, find_world};
use crate::store::{
    NewDelta, NewRun, PassKind, ScrapedPlayer, StatusPage, StatusRoutine, Store, WriteOutcome,
};

pub mod classify;
pub mod player_details;
mod reporter;
mod trigger;
pub mod vip;

pub use classify::{FetchedWorld, GuildRule, LayoutChanged, classify_guild_pages, history_matters};
pub use player_details::PlayerDetailsService;
pub use reporter::Reporter;
pub use trigger::{CheckNow, Wake};
pub use vip::{VipMemory, VipPassReport, VipResult, VipStatus, vip_pass};

/// Longest wait between attempts to reach the store.
const STORE_RETRY_MAX: Duration = Duration::from_secs(30);

static STORE_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Store operations retried so far in this process (each failed attempt
/// of a write that is kept and retried counts one).
pub fn store_retries() -> u64 {
    STORE_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// A world's guilds, scraped.
#[derive(Debug, Clone)]
pub struct Scraped {
    /// World.
    pub world: String,
    /// The site's update time this scrape belongs to.
    pub update_time: DateTime<FixedOffset>,
    /// When scraping started.
    pub started_at: DateTime<Utc>,
    /// Players in guild config order, each name once (first guild wins).
    pub players: Vec<ScrapedPlayer>,
    /// Configured guilds the site does not know.
    pub unknown_guilds: Vec<String>,
    /// Each configured guild with the rule that classified its page.
    pub guild_rules: Vec<(String, GuildRule)>,
    /// Pages fetched.
    pub pages: usize,
}

/// Fetches and parses; writes nothing (the store is only asked whether a
/// world had rows before, when its guild pages need it).
#[derive(Debug, Clone)]
pub struct Scraper {
    client: SiteClient,
}

impl Scraper {
    /// A scraper for a config's `[site]`, with a clock for relative times.
    pub fn new(config: &Config, clock: Clock) -> Result<Scraper, SiteError> {
        Ok(Scraper {
            client: SiteClient::with_clock(&config.site, clock)?,
        })
    }

    /// The same scraper whose requests have `priority` in the host
    /// budget's queue (the watcher's status checks go first).
    pub fn with_priority(self, priority: i32) -> Scraper {
        Scraper {
            client: self.client.with_priority(priority),
        }
    }

    /// The HTTP client.
    pub fn client(&self) -> &SiteClient {
        &self.client
    }

    /// Fetch and parse the status page.
    pub async fn status(&self) -> Result<Vec<WorldStatus>, SiteError> {
        self.client.status().await
    }

    /// Fetch every guild of a world (concurrently, bounded by the client);
    /// [`FetchedWorld::classify`] then decides the pages together.
    pub async fn fetch_world(
        &self,
        world: &World,
        update_time: DateTime<FixedOffset>,
    ) -> Result<FetchedWorld, SiteError> {
        let started_at = Utc::now();
        let client = self.client.with_priority(world.priority);
        let rankings =
            try_join_all(world.guilds.iter().map(|g| client.guild(&world.name, g))).await?;
        let sel = self.client.selectors();
        Ok(FetchedWorld {
            world: world.name.clone(),
            update_time,
            started_at,
            guilds: world.guilds.iter().cloned().zip(rankings).collect(),
            ranking: sel.ranking.describe(),
            ranking_index: sel.source.ranking_index,
        })
    }

    /// Scrape every guild of a world and decide its pages together, in
    /// config order with each player counted once; `store` says whether
    /// the world had rows before, asked only when that decides (without
    /// one: no rows before).
    pub async fn scrape_world(
        &self,
        world: &World,
        update_time: DateTime<FixedOffset>,
        store: Option<&Store>,
    ) -> Result<Result<Scraped, SiteError>, crate::store::StoreError> {
        let fetched = match self.fetch_world(world, update_time).await {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let had_rows = match store {
            Some(store) if fetched.history_matters() => {
                !store.players(&world.name).await?.is_empty()
            }
            _ => false,
        };
        Ok(fetched.classify(had_rows))
    }
}

/// What [`process_world`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The world's update was already processed: nothing scraped.
    Unchanged {
        /// The update time seen.
        update_time: DateTime<FixedOffset>,
    },
    /// A run was written.
    Stored {
        /// The update time.
        update_time: DateTime<FixedOffset>,
        /// Run id.
        run_id: i64,
        /// Player rows.
        rows: usize,
        /// Deltas written.
        deltas: Vec<NewDelta>,
        /// Kind of pass.
        kind: PassKind,
    },
    /// Another process stored this update first.
    AlreadyStored {
        /// The update time.
        update_time: DateTime<FixedOffset>,
    },
    /// Scraping failed: a failed run was recorded, nothing else written.
    Failed {
        /// The update time.
        update_time: DateTime<FixedOffset>,
        /// The error.
        error: String,
    },
}

/// Errors of [`process_world`] that leave the world to be retried.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Shutdown arrived while the store was down: the scrape is dropped.
    #[error("shutdown while waiting for the store")]
    Shutdown,
}

/// One check-and-scrape of one world whose status-page time is
/// `update_time`: nothing when the store already has it as the world's last
/// processed update; otherwise scrape and write the run in one transaction.
/// A failed scrape is recorded as a failed run. A store that fails on write
/// is retried with backoff (the scrape is kept) until `shutdown`.
pub async fn process_world(
    scraper: &Scraper,
    store: &Store,
    config: &Config,
    world: &World,
    update_time: DateTime<FixedOffset>,
    reporter: &Reporter,
    shutdown: &CancellationToken,
) -> Result<Outcome, ProcessError> {
    let state = store.world_state(&world.name).await?;
    if state.last_update_time == Some(update_time) {
        return Ok(Outcome::Unchanged { update_time });
    }
    reporter.phase(Phase::Scraping);
    let started_at = Utc::now();
    let scraped = tokio::select! {
        biased;
        _ = shutdown.cancelled() => return Err(ProcessError::Shutdown),
        r = scraper.scrape_world(world, update_time, Some(store)) => r?,
    };
    let scraped = match scraped {
        Ok(s) => s,
        Err(e) => {
            let error = e.to_string();
            return failed_run(
                store,
                world,
                update_time,
                started_at,
                error,
                reporter,
                shutdown,
            )
            .await;
        }
    };
    let unknown_guilds = scraped.unknown_guilds;
    let run = NewRun {
        world: world.name.clone(),
        update_time,
        started_at,
        players: scraped.players,
        reset_minutes: config.site.reset_minutes,
    };
    // The write itself is never cancelled: it finishes or rolls back.
    let outcome = match with_store_retry(reporter, shutdown, || store.write_run(&run)).await {
        Ok(o) => o,
        Err(ProcessError::Store(e)) if !e.is_transient() && !e.is_fenced() => {
            // Retrying cannot help: fail the run with the database's word.
            let error = e.to_string();
            return failed_run(
                store,
                world,
                update_time,
                started_at,
                error,
                reporter,
                shutdown,
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    Ok(match outcome {
        WriteOutcome::Stored {
            run_id,
            rows,
            deltas,
            kind,
        } => {
            tracing::info!(world = %world.name, %update_time, rows, deltas = deltas.len(), ?kind, "run stored");
            reporter.report(WorkerReport {
                last_success: Some(Utc::now()),
                last_error: Some(String::new()),
                rows_last_run: Some(rows as u64),
                ..Default::default()
            });
            reporter.event(&WorkerEvent::RunFinished(RunFinished {
                world: world.name.clone(),
                rows: rows as u64,
                deltas: deltas.len() as u64,
                update_time,
                rebased: matches!(kind, PassKind::Rebase { .. }),
                unknown_guilds,
            }));
            if !deltas.is_empty() {
                reporter.event(&WorkerEvent::Deltas(DeltaBatch {
                    world: world.name.clone(),
                    update_time,
                    items: deltas.iter().take(DeltaBatch::MAX_ITEMS).cloned().collect(),
                }));
            }
            Outcome::Stored {
                update_time,
                run_id,
                rows,
                deltas,
                kind,
            }
        }
        WriteOutcome::AlreadyStored => Outcome::AlreadyStored { update_time },
    })
}

/// Record a failed run (its row only), tell the supervisor, and say so.
async fn failed_run(
    store: &Store,
    world: &World,
    update_time: DateTime<FixedOffset>,
    started_at: DateTime<Utc>,
    error: String,
    reporter: &Reporter,
    shutdown: &CancellationToken,
) -> Result<Outcome, ProcessError> {
    tracing::warn!(world = %world.name, %update_time, %error, "run failed; recording a failed run");
    with_store_retry(reporter, shutdown, || {
        store.record_failed_run(&world.name, update_time, started_at, &error)
    })
    .await?;
    reporter.report(WorkerReport {
        last_error: Some(error.clone()),
        ..Default::default()
    });
    reporter.event(&WorkerEvent::RunFailed(RunFailed {
        world: world.name.clone(),
        update_time,
        error: error.clone(),
    }));
    Ok(Outcome::Failed { update_time, error })
}

/// The mark of a worker that stopped because a fenced write was refused:
/// the worker process exits with [`pool::exit::EXIT_FENCED`].
#[derive(Debug, Clone, Copy)]
pub struct Fenced;

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fenced: the world's lease is another node's now")
    }
}

/// Whether `e` (anywhere in its chain) is a refused fenced write.
pub fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_fenced)
    })
}

/// Retry a store operation with backoff while it fails transiently; a
/// permanent error is returned at once. Gives up on shutdown too (between
/// attempts, never during one).
async fn with_store_retry<T, F, Fut>(
    reporter: &Reporter,
    shutdown: &CancellationToken,
    mut op: F,
) -> Result<T, ProcessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() => return Err(ProcessError::Store(e)),
            Err(e) => {
                STORE_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let delay = backoff_delay(Duration::from_millis(200), attempt, rand::random())
                    .min(STORE_RETRY_MAX);
                tracing::warn!(error = %e, attempt, ?delay, "store unavailable; keeping the scrape and retrying");
                reporter.report(WorkerReport {
                    last_error: Some(e.to_string()),
                    ..Default::default()
                });
                attempt += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(ProcessError::Shutdown),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Poll interval plus up to `jitter` × interval at random.
/// The poll interval with its jitter (the workers' and the watcher's).
pub(crate) fn poll_delay(config: &Config) -> Duration {
    let base = config.site.poll_interval;
    base + base.mul_f64(config.site.poll_jitter * rand::random::<f64>())
}

/// Open the store, retrying with backoff until it answers (`Ok(Some)`) or
/// shutdown (`Ok(None)`). A URL we cannot use, or a database that refuses
/// us for good (a schema it cannot migrate), is an error at once.
pub async fn open_store_retrying(
    config: &Config,
    reporter: &Reporter,
    shutdown: &CancellationToken,
) -> Result<Option<Store>, crate::store::StoreError> {
    let url = config.storage_url();
    let fence = crate::protocol::fence_from_env();
    let mut attempt = 0u32;
    loop {
        let opened = match &fence {
            Some(fence) => {
                Store::open_fenced(
                    &url,
                    config.storage.max_connections,
                    fence.clone(),
                    config.cluster.writer_idle_timeout(),
                )
                .await
            }
            None => Store::open(&url, config.storage.max_connections).await,
        };
        match opened {
            Ok(s) => return Ok(Some(s)),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                let delay = backoff_delay(Duration::from_millis(500), attempt, rand::random())
                    .min(STORE_RETRY_MAX);
                tracing::warn!(error = %e, ?delay, "cannot open the store; retrying");
                reporter.report(WorkerReport {
                    last_error: Some(e.to_string()),
                    ..Default::default()
                });
                attempt += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// What `/api/status-data` shows of a world's block of the status page:
/// every routine row as the site showed it (name, last update, how far
/// behind, status word). Where an entry lacks the lag or the word (a
/// layout without them), they are derived from the time: the minutes
/// between the update and `fetch_time`, `Desatualizado` past 15 minutes.
/// `routine` names the ranking routine, kept even if the block had no row
/// list (it always has in practice).
pub fn status_page(
    status: &WorldStatus,
    routine: &str,
    fetch_time: DateTime<FixedOffset>,
) -> StatusPage {
    let derived = |t: Option<DateTime<FixedOffset>>| {
        let behind = t.map(|t| (fetch_time - t).num_minutes().max(0));
        (
            behind.map(|b| format!("{b} min")).unwrap_or_default(),
            match behind {
                Some(b) if b > 15 => "Desatualizado",
                Some(_) => "Atualizado",
                None => "",
            }
            .to_string(),
        )
    };
    let mut routines: Vec<StatusRoutine> = status
        .routines
        .iter()
        .map(|r| {
            let (lag, word) = derived(r.time);
            StatusRoutine {
                rotina: r.name.clone(),
                last_update: r.time,
                time_outdated: r.lag.clone().unwrap_or(lag),
                status: r.state.clone().unwrap_or(word),
            }
        })
        .collect();
    if routines.is_empty() {
        let (lag, word) = derived(Some(status.update_time));
        routines.push(StatusRoutine {
            rotina: routine.to_string(),
            last_update: Some(status.update_time),
            time_outdated: lag,
            status: word,
        });
    }
    StatusPage {
        world: status.world.clone(),
        fetch_time,
        routines,
    }
}

/// Keep the status page of each of `mine` (a failure is only logged: the
/// scrape goes on).
pub(crate) async fn save_status_pages(
    scraper: &Scraper,
    store: &Store,
    config: &Config,
    mine: &[World],
    all: &[WorldStatus],
) {
    let fetch_time = scraper
        .client()
        .now()
        .with_timezone(&scraper.client().offset());
    for world in mine {
        let Some(ws) = find_world(all, &world.name) else {
            continue;
        };
        let page = status_page(ws, &config.site.selectors.routine, fetch_time);
        if let Err(e) = store.save_status_page(&page).await {
            tracing::warn!(world = %world.name, error = %e, "cannot keep the status page");
        }
    }
}

/// The worker's scrape loop over `worlds` (one in pool mode, all in single
/// mode) until `shutdown` is cancelled. Reports phases and runs through
/// `reporter`. Returns Ok on a clean shutdown.
pub async fn run_worker(
    config: crate::config::Config,
    worlds: Vec<String>,
    reporter: Reporter,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    run_worker_with(config, worlds, reporter, shutdown, CheckNow::new()).await
}

/// [`run_worker`] whose sleep between checks ends early on
/// [`CheckNow::request`], and which, with a [`CheckNow::watched`], waits
/// for the pool's status watcher instead of polling (see [`CheckNow`]).
pub async fn run_worker_with(
    config: crate::config::Config,
    worlds: Vec<String>,
    reporter: Reporter,
    shutdown: tokio_util::sync::CancellationToken,
    check_now: CheckNow,
) -> anyhow::Result<()> {
    let mut mine = Vec::new();
    for name in &worlds {
        match config.world(name) {
            Some(w) => mine.push(w.clone()),
            None => anyhow::bail!("world `{name}` is not in {}", config.path.display()),
        }
    }
    let scraper = Scraper::new(&config, Clock::System)?;
    let Some(store) = open_store_retrying(&config, &reporter, &shutdown).await? else {
        return Ok(());
    };
    tracing::info!(worlds = ?worlds, backend = store.backend(), "worker scrape loop started");
    let mut vip_memory = VipMemory::default();
    let mut pages = crate::memory::AfterWork::default();
    // Watched by the pool's status watcher: wait for its news first.
    let mut wake = Wake::Check;
    if check_now.waits_for_watcher() {
        reporter.phase(Phase::Sleeping);
        match check_now.next(poll_delay(&config), &shutdown).await {
            Some(w) => wake = w,
            None => return Ok(()),
        }
    }
    while !shutdown.is_cancelled() {
        let (status, from_watcher) = match std::mem::replace(&mut wake, Wake::Check) {
            Wake::Check => {
                reporter.phase(Phase::Checking);
                let status = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    s = scraper.status() => s,
                };
                (status, false)
            }
            Wake::Due { worlds, checked_at } => {
                reporter.report(WorkerReport {
                    last_check: Some(checked_at),
                    ..Default::default()
                });
                (Ok(worlds), true)
            }
        };
        match status {
            Err(e) => {
                tracing::warn!(error = %e, "status page failed");
                reporter.report(WorkerReport {
                    last_error: Some(e.to_string()),
                    ..Default::default()
                });
            }
            Ok(all) => {
                if !from_watcher {
                    // (The watcher keeps the pages when it read them.)
                    save_status_pages(&scraper, &store, &config, &mine, &all).await;
                }
                for world in &mine {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    let Some(ws) = find_world(&all, &world.name) else {
                        if from_watcher {
                            // Not due: the watcher names due worlds only.
                            continue;
                        }
                        let e = SiteError::UnknownWorld {
                            world: world.name.clone(),
                            url: scraper.client().status_url().unwrap_or_default(),
                        };
                        tracing::warn!(error = %e, "world missing from the status page");
                        reporter.report(WorkerReport {
                            last_error: Some(e.to_string()),
                            ..Default::default()
                        });
                        continue;
                    };
                    match process_world(
                        &scraper,
                        &store,
                        &config,
                        world,
                        ws.update_time,
                        &reporter,
                        &shutdown,
                    )
                    .await
                    {
                        Ok(outcome) => {
                            pages.worked |= matches!(outcome, Outcome::Stored { .. });
                            tracing::debug!(world = %world.name, ?outcome, "world processed")
                        }
                        Err(ProcessError::Shutdown) => break,
                        Err(ProcessError::Store(e)) if e.is_fenced() => {
                            // Another node owns the world now: stop here,
                            // with the exit status that says so.
                            tracing::error!(world = %world.name, error = %e, "fenced: this worker no longer holds its world's lease");
                            return Err(anyhow::Error::new(e).context(Fenced));
                        }
                        Err(e) => {
                            tracing::warn!(world = %world.name, error = %e, "store error");
                            reporter.report(WorkerReport {
                                last_error: Some(e.to_string()),
                                ..Default::default()
                            });
                        }
                    }
                    // The watched players of the world: after a stored run,
                    // and at every check for names added since.
                    match vip_pass(
                        &scraper,
                        &store,
                        &config,
                        world,
                        &reporter,
                        &shutdown,
                        &mut vip_memory,
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(ProcessError::Shutdown) => break,
                        Err(e) => {
                            tracing::warn!(world = %world.name, error = %e, "store error in the watched players' pass");
                            reporter.report(WorkerReport {
                                last_error: Some(e.to_string()),
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        reporter.phase(Phase::Sleeping);
        pages.cycle_done();
        match check_now.next(poll_delay(&config), &shutdown).await {
            Some(w) => wake = w,
            None => break,
        }
    }
    tracing::info!("worker scrape loop stopped");
    Ok(())
}

/// What every `[site.selectors]` key matches on the live pages of one
/// world (`scrape-once --explain`); stores nothing.
pub async fn explain_world(
    config: &Config,
    world: &str,
) -> anyhow::Result<crate::site::explain::Explain> {
    let world = find_config_world(config, world)?;
    let scraper = Scraper::new(config, Clock::System)?;
    let mut report = crate::site::explain::explain_world(
        scraper.client(),
        &world.name,
        &world.guilds,
        &world.watch,
    )
    .await;
    let sel = scraper.client().selectors();
    classify::explain_guild_rules(
        &mut report,
        &sel.ranking.describe(),
        sel.source.ranking_index,
        || async {
            let store = Store::open(&config.storage_url(), 1)
                .await
                .map_err(|e| e.to_string())?;
            let players = store
                .players(&world.name)
                .await
                .map_err(|e| e.to_string())?;
            Ok(!players.is_empty())
        },
    )
    .await;
    Ok(report)
}

fn find_config_world(config: &Config, world: &str) -> anyhow::Result<World> {
    config.world(world).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "world `{world}` is not in {} (worlds: {})",
            config.path.display(),
            config
                .worlds
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// What [`scrape_once`] extracted (printed by `scrape-once --json`).
#[derive(Debug, Serialize)]
pub struct ScrapeOnceOutput {
    /// World.
    pub world: String,
    /// The site's update time.
    pub update_time: DateTime<FixedOffset>,
    /// Players extracted.
    pub players: Vec<ScrapedPlayer>,
    /// Deltas written (empty without the store or when already stored).
    pub deltas: Vec<NewDelta>,
    /// Whether a run was written.
    pub stored: bool,
    /// Configured guilds the site does not know (zero rows each).
    pub unknown_guilds: Vec<String>,
    /// The watched players whose page was read (with the store: those due
    /// at this update; without: every player the config watches).
    pub watched: Vec<VipResult>,
}

/// One check-and-scrape of `world` now, written to the config's store when
/// `store` is true (a failed scrape is recorded as a failed run).
pub async fn scrape_once(
    config: &Config,
    world: &str,
    store: bool,
) -> anyhow::Result<ScrapeOnceOutput> {
    let world = find_config_world(config, world)?;
    let scraper = Scraper::new(config, Clock::System)?;
    let all = scraper.status().await?;
    let ws = find_world(&all, &world.name).ok_or_else(|| SiteError::UnknownWorld {
        world: world.name.clone(),
        url: scraper.client().status_url().unwrap_or_default(),
    })?;
    let update_time = ws.update_time;
    let started_at = Utc::now();
    let store = if store {
        Some(Store::open(&config.storage_url(), config.storage.max_connections).await?)
    } else {
        None
    };
    let scraped = scraper
        .scrape_world(&world, update_time, store.as_ref())
        .await?;
    let scraped = match scraped {
        Ok(s) => s,
        Err(e) => {
            if let Some(store) = &store {
                store
                    .record_failed_run(&world.name, update_time, started_at, &e.to_string())
                    .await?;
            }
            return Err(e.into());
        }
    };
    let (deltas, stored) = match &store {
        None => (Vec::new(), false),
        Some(store) => {
            let run = NewRun {
                world: world.name.clone(),
                update_time,
                started_at,
                players: scraped.players.clone(),
                reset_minutes: config.site.reset_minutes,
            };
            match store.write_run(&run).await? {
                WriteOutcome::Stored { deltas, .. } => (deltas, true),
                WriteOutcome::AlreadyStored => (Vec::new(), false),
            }
        }
    };
    let watched = match &store {
        None => vip::read_players(&scraper, &world, &world.watch).await,
        Some(store) => {
            vip_pass(
                &scraper,
                store,
                config,
                &world,
                &Reporter::none(),
                &CancellationToken::new(),
                &mut VipMemory::default(),
            )
            .await?
            .results
        }
    };
    Ok(ScrapeOnceOutput {
        world: world.name.clone(),
        update_time,
        players: scraped.players,
        deltas,
        stored,
        unknown_guilds: scraped.unknown_guilds,
        watched,
    })
}
