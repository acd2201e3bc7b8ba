//! The watched players' pass: after a world's ranking is stored (and at
//! every check, so a player added at run time is read at once), read the
//! page of each watched player of the world that has no read at the
//! world's latest stored update, and record it in one transaction per
//! player ([`Store::record_vip_read`]).
//!
//! The watched list is the config's `[[worlds]] watch` plus the store's
//! (`POST /api/vip/add`) plus the world's makers (`worldpool import`,
//! `POST /api/upload/makers`), read before each pass: the store is the source of
//! truth, so names added at run time need no restart. A pass killed
//! half-way is simply resumed by the next one: players already read at that
//! update are not fetched again, and a replayed read writes nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};
use futures_util::StreamExt;
use pool::WorkerReport;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{ProcessError, Reporter, Scraper, with_store_retry};
use crate::config::{Config, World};
use crate::protocol::{VipPass, WorkerEvent};
use crate::site::{PlayerDay, PlayerPage, SiteError, player_key};
use crate::store::{Store, StoreError, VipDaily, VipReadOutcome};

/// What became of one watched player in a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VipStatus {
    /// Read and recorded.
    Stored {
        /// The day's numbers read.
        day: PlayerDay,
        /// What the store recorded.
        recorded: VipReadOutcome,
    },
    /// Read, not stored (`scrape-once --no-store`).
    Read {
        /// The day's numbers read.
        day: PlayerDay,
    },
    /// The site does not know the player (a page without the tables): a
    /// warning, retried at the world's next update.
    Unknown,
    /// The page has both tables but no day yet: nothing to record.
    NoDays,
    /// The page could not be fetched, read or stored: retried at the next
    /// check.
    Failed {
        /// Why.
        error: String,
    },
}

/// One watched player's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipResult {
    /// Player name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub status: VipStatus,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VipPassReport {
    /// The world's update the reads belong to (`None`: no ranking stored
    /// yet, nothing read).
    pub update_time: Option<DateTime<FixedOffset>>,
    /// Every watched player of the world.
    pub watched: Vec<String>,
    /// The players whose page was due, in name order.
    pub results: Vec<VipResult>,
}

impl VipPassReport {
    fn count(&self, f: impl Fn(&VipStatus) -> bool) -> u64 {
        self.results.iter().filter(|r| f(&r.status)).count() as u64
    }
}

/// What a worker remembers between passes: players whose page had nothing
/// to store at an update (unknown to the site, or no day yet: not asked
/// again until the world's next update), and the
/// number of watched players last reported per world.
#[derive(Debug, Default)]
pub struct VipMemory {
    nothing_at: HashMap<(String, String), DateTime<FixedOffset>>,
    reported: HashMap<String, usize>,
}

/// The watched players of a world: the config's `watch`, then the store's,
/// then the world's makers (read the same way), each player once (names
/// compared ignoring case and extra whitespace; the first spelling wins).
pub async fn watched_players(store: &Store, world: &World) -> Result<Vec<String>, StoreError> {
    let stored = store.watched(Some(&world.name)).await?;
    let makers = store.makers(Some(&world.name)).await?;
    let mut seen = HashSet::new();
    Ok(world
        .watch
        .iter()
        .cloned()
        .chain(stored.into_iter().map(|w| w.name))
        .chain(makers.into_iter().map(|m| m.name))
        .filter(|n| seen.insert(player_key(n)))
        .collect())
}

/// The pages of `names`, fetched concurrently (bounded by the client), in
/// order. Owned inputs: the stream holds no borrowed closure, so the
/// worker loop's future stays `Send`.
fn pages(
    scraper: &Scraper,
    world: &str,
    names: Vec<String>,
) -> impl futures_util::Stream<Item = (String, Result<PlayerPage, SiteError>)> + Send + use<> {
    let limit = scraper.client().max_concurrent();
    let (client, world) = (scraper.client().clone(), world.to_string());
    futures_util::stream::iter(names)
        .map(move |name| {
            let (client, world) = (client.clone(), world.clone());
            async move {
                let page = client.player(&world, &name).await;
                (name, page)
            }
        })
        .buffered(limit)
}

/// Read the pages of `names` of `world` (concurrently, bounded by the
/// client), without storing anything.
pub async fn read_players(scraper: &Scraper, world: &World, names: &[String]) -> Vec<VipResult> {
    pages(scraper, &world.name, names.to_vec())
        .map(|(name, page)| {
            let status = match page {
                Ok(PlayerPage::Day(day)) => VipStatus::Read { day },
                Ok(PlayerPage::NoDays) => VipStatus::NoDays,
                Ok(PlayerPage::Unknown) => VipStatus::Unknown,
                Err(e) => VipStatus::Failed {
                    error: e.to_string(),
                },
            };
            VipResult { name, status }
        })
        .collect()
        .await
}

/// One pass over the watched players of `world`: every player without a
/// read at the world's latest stored update is read and recorded, one
/// transaction each. Unknown players and failed pages are warnings
/// (`last_error`), never a failed run. Tells the supervisor with a
/// [`WorkerEvent::VipPass`] when it read something or the number of
/// watched players changed. Stops between players on shutdown.
pub async fn vip_pass(
    scraper: &Scraper,
    store: &Store,
    config: &Config,
    world: &World,
    reporter: &Reporter,
    shutdown: &CancellationToken,
    memory: &mut VipMemory,
) -> Result<VipPassReport, ProcessError> {
    let mut report = VipPassReport::default();
    let Some(update_time) = store.world_state(&world.name).await?.last_update_time else {
        return Ok(report);
    };
    report.update_time = Some(update_time);
    report.watched = watched_players(store, world).await?;
    // Nobody watched: nothing to look up (the count is still reported).
    let latest: HashMap<String, DateTime<FixedOffset>> = if report.watched.is_empty() {
        HashMap::new()
    } else {
        store
            .vip_latest(Some(&world.name))
            .await?
            .into_iter()
            .map(|d| (d.name, d.update_time))
            .collect()
    };
    let mut due: Vec<String> = report
        .watched
        .iter()
        .filter(|n| latest.get(*n).is_none_or(|t| *t < update_time))
        .filter(|n| {
            memory.nothing_at.get(&(world.name.clone(), player_key(n))) != Some(&update_time)
        })
        .cloned()
        .collect();
    due.sort();
    let mut last_fetch = None;
    {
        let mut pages = std::pin::pin!(pages(scraper, &world.name, due));
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(ProcessError::Shutdown),
                n = pages.next() => n,
            };
            let Some((name, page)) = next else { break };
            let name = &name;
            let status = match page {
                Ok(PlayerPage::Day(day)) => {
                    last_fetch = Some(Utc::now());
                    let read = VipDaily {
                        world: world.name.clone(),
                        name: name.clone(),
                        date: day.date,
                        raw_xp: day.raw_xp,
                        online_minutes: day.online_minutes,
                        update_time,
                    };
                    // The write itself is never cancelled: it commits or
                    // rolls back.
                    let reset = config.site.reset_minutes;
                    match with_store_retry(reporter, shutdown, || {
                        store.record_vip_read(&read, reset)
                    })
                    .await
                    {
                        Ok(recorded) => VipStatus::Stored { day, recorded },
                        Err(ProcessError::Store(e)) => VipStatus::Failed {
                            error: e.to_string(),
                        },
                        Err(e) => return Err(e),
                    }
                }
                Ok(PlayerPage::NoDays) => {
                    last_fetch = Some(Utc::now());
                    // Nothing to store: asked again at the next update,
                    // not at every check until then.
                    memory
                        .nothing_at
                        .insert((world.name.clone(), player_key(name)), update_time);
                    VipStatus::NoDays
                }
                Ok(PlayerPage::Unknown) => {
                    memory
                        .nothing_at
                        .insert((world.name.clone(), player_key(name)), update_time);
                    VipStatus::Unknown
                }
                Err(e) => VipStatus::Failed {
                    error: e.to_string(),
                },
            };
            match &status {
                VipStatus::Unknown => {
                    let message = format!(
                        "watched player `{name}` of {}: the site has no such player (its page lacks the experience and online tables); asked again at the next update",
                        world.name
                    );
                    tracing::warn!(world = %world.name, player = %name, "watched player unknown to the site");
                    reporter.report(WorkerReport {
                        last_error: Some(message),
                        ..Default::default()
                    });
                }
                VipStatus::Failed { error } => {
                    tracing::warn!(world = %world.name, player = %name, %error, "watched player's page failed; retried at the next check");
                    reporter.report(WorkerReport {
                        last_error: Some(format!("watched player `{name}`: {error}")),
                        ..Default::default()
                    });
                }
                VipStatus::Stored { recorded, .. } => {
                    tracing::debug!(world = %world.name, player = %name, ?recorded, "watched player read");
                }
                VipStatus::NoDays | VipStatus::Read { .. } => {}
            }
            report.results.push(VipResult {
                name: name.clone(),
                status,
            });
        }
    }
    let deltas = report.count(|s| {
        matches!(
            s,
            VipStatus::Stored {
                recorded: VipReadOutcome::Delta(_),
                ..
            }
        )
    });
    let changed = memory.reported.get(&world.name) != Some(&report.watched.len());
    if !report.results.is_empty() || changed {
        memory
            .reported
            .insert(world.name.clone(), report.watched.len());
        let event = VipPass {
            world: world.name.clone(),
            update_time,
            watched: report.watched.len() as u64,
            fetched: report.count(|s| {
                matches!(
                    s,
                    VipStatus::Stored { .. } | VipStatus::NoDays | VipStatus::Read { .. }
                )
            }),
            failed: report.count(|s| matches!(s, VipStatus::Failed { .. })),
            unknown: report
                .results
                .iter()
                .filter(|r| r.status == VipStatus::Unknown)
                .map(|r| r.name.clone())
                .collect(),
            deltas,
            last_fetch,
        };
        if !report.results.is_empty() {
            tracing::info!(
                world = %world.name, %update_time, watched = event.watched, fetched = event.fetched,
                failed = event.failed, unknown = event.unknown.len(), deltas, "watched players read"
            );
        }
        reporter.event(&WorkerEvent::VipPass(event));
    }
    Ok(report)
}
