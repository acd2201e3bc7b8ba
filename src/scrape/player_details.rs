//! A player's page read on request (`GET /api/player-details/{name}`,
//! [`SupervisorMessage::PlayerDetails`](crate::protocol::SupervisorMessage)):
//! the worker fetches the page through its site client (a grant of the
//! pool's budget, retries, like any other page), reads every table
//! ([`parse_player_details`]), records the day's numbers when the player is
//! watched in the world asked about (through the watched players' pass's own
//! [`Store::record_vip_read`]), and answers with a
//! [`WorkerEvent::PlayerDetails`] carrying the request's id.
//!
//! The site client and the store are made at the first request: a worker
//! that is never asked pays nothing for them.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Timelike as _};
use tokio::sync::OnceCell;

use super::vip::watched_players;
use super::{Reporter, Scraper};
use crate::config::{Config, World};
use crate::protocol::{PlayerDetailsOutcome, PlayerDetailsRead, PlayerTable, WorkerEvent};
use crate::site::{Clock, PlayerPage, SiteError, parse_player_details, player_key};
use crate::store::{Store, VipDaily, VipReadOutcome};

/// Answers the supervisor's player-details requests in one worker process.
pub struct PlayerDetailsService {
    config: Config,
    /// The worker's own worlds: the `{world}` of `player_path` when the
    /// request names none.
    worlds: Vec<String>,
    reporter: Reporter,
    scraper: OnceCell<Scraper>,
    store: OnceCell<Store>,
}

impl PlayerDetailsService {
    /// A service for a worker of `worlds` under `config`, answering through
    /// `reporter`.
    pub fn new(config: Config, worlds: Vec<String>, reporter: Reporter) -> Arc<Self> {
        Arc::new(PlayerDetailsService {
            config,
            worlds,
            reporter,
            scraper: OnceCell::new(),
            store: OnceCell::new(),
        })
    }

    /// Read the page in a task of its own and send the answer.
    pub fn spawn(self: &Arc<Self>, id: u64, name: String, world: Option<String>) {
        let me = self.clone();
        tokio::spawn(async move {
            let read = me.read(id, name, world).await;
            me.reporter.event(&WorkerEvent::PlayerDetails(read));
        });
    }

    /// Read the page of `name` (of `world`, when known) and record a watched
    /// player's numbers.
    pub async fn read(&self, id: u64, name: String, world: Option<String>) -> PlayerDetailsRead {
        let outcome = self.outcome(&name, world.as_deref()).await;
        match &outcome {
            PlayerDetailsOutcome::Read {
                tables,
                truncated_rows,
                recorded,
            } => tracing::info!(
                player = %name, world = ?world, tables = tables.len(), truncated_rows,
                recorded = ?recorded, "player details read"
            ),
            PlayerDetailsOutcome::Unknown { response_status } => {
                tracing::info!(player = %name, world = ?world, response_status, "player details: the site does not know the player")
            }
            PlayerDetailsOutcome::Failed { error, .. } => {
                tracing::warn!(player = %name, world = ?world, %error, "player details: the page could not be read")
            }
        }
        PlayerDetailsRead {
            id,
            name,
            world,
            outcome,
        }
    }

    async fn outcome(&self, name: &str, world: Option<&str>) -> PlayerDetailsOutcome {
        let failed = |response_status: Option<u16>, e: &dyn std::fmt::Display| {
            PlayerDetailsOutcome::Failed {
                response_status,
                error: e.to_string(),
            }
        };
        let scraper = match self
            .scraper
            .get_or_try_init(|| async { Scraper::new(&self.config, Clock::System) })
            .await
        {
            Ok(s) => s,
            Err(e) => return failed(None, &e),
        };
        let world_config = world.and_then(|w| self.config.world(w));
        let client = scraper
            .client()
            .with_priority(world_config.map_or(0, |w| w.priority));
        let url_world = world
            .map(str::to_string)
            .or_else(|| self.worlds.first().cloned())
            .unwrap_or_default();
        let url = match client.player_url(&url_world, name) {
            Ok(u) => u,
            Err(e) => return failed(None, &e),
        };
        let page = match client.get_text(&url).await {
            Ok(p) => p,
            Err(SiteError::Status { status: 404, .. }) => {
                return PlayerDetailsOutcome::Unknown {
                    response_status: 404,
                };
            }
            Err(e @ SiteError::Status { status, .. }) => return failed(Some(status), &e),
            Err(e) => return failed(None, &e),
        };
        let read_at = client.now().with_timezone(&client.offset());
        let details = match parse_player_details(&page.body, client.selectors(), &url) {
            Ok(d) => d,
            Err(e) => return failed(Some(200), &e),
        };
        let day = match details.page {
            Ok(PlayerPage::Unknown) => {
                return PlayerDetailsOutcome::Unknown {
                    response_status: 200,
                };
            }
            Ok(PlayerPage::Day(day)) => Some(day),
            Ok(PlayerPage::NoDays) => None,
            Err(e) => {
                // The tables are still worth showing; only the recording
                // needs the day.
                tracing::warn!(player = %name, error = %e, "player details: the day's numbers do not read; nothing recorded");
                None
            }
        };
        let recorded = match (world_config, day) {
            (Some(world), Some(day)) => {
                let read = |name: String| VipDaily {
                    world: world.name.clone(),
                    name,
                    date: day.date,
                    raw_xp: day.raw_xp,
                    online_minutes: day.online_minutes,
                    update_time: whole_seconds(read_at),
                };
                self.record_if_watched(world, name, read).await
            }
            _ => None,
        };
        let mut tables = details.tables;
        let budget =
            PlayerDetailsRead::MAX_BYTES.saturating_sub(512 + 2 * (name.len() + url_world.len()));
        let truncated_rows = fit(&mut tables, budget);
        PlayerDetailsOutcome::Read {
            tables,
            truncated_rows,
            recorded,
        }
    }

    /// Record the read when `name` is watched in `world` (config or
    /// store), under the watched spelling, as the watched players' pass
    /// does. Failures are logged: the tables are answered anyway.
    async fn record_if_watched(
        &self,
        world: &World,
        name: &str,
        read: impl FnOnce(String) -> VipDaily,
    ) -> Option<VipReadOutcome> {
        let url = self.config.storage_url();
        let store = match self.store.get_or_try_init(|| Store::open(&url, 1)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "player details: the store did not open; nothing recorded");
                return None;
            }
        };
        let watched = match watched_players(store, world).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "player details: cannot read the watched players; nothing recorded");
                return None;
            }
        };
        let key = player_key(name);
        let spelled = watched.into_iter().find(|n| player_key(n) == key)?;
        match store
            .record_vip_read(&read(spelled), self.config.site.reset_minutes)
            .await
        {
            Ok(outcome) => Some(outcome),
            Err(e) => {
                tracing::warn!(world = %world.name, player = %name, error = %e, "player details: the read was not recorded");
                None
            }
        }
    }
}

/// A time without its fraction of a second (the store's times are whole).
fn whole_seconds(t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Leave out rows, oldest first (the last of the longest table), until the
/// tables serialize within `budget` bytes; returns how many were left out.
fn fit(tables: &mut [PlayerTable], budget: usize) -> u64 {
    let mut total: usize = tables.iter().map(json_len).sum::<usize>() + tables.len();
    let mut dropped = 0;
    while total > budget {
        let Some(t) = tables
            .iter_mut()
            .filter(|t| !t.data.is_empty())
            .max_by_key(|t| t.data.len())
        else {
            break;
        };
        if let Some(row) = t.data.pop() {
            total = total.saturating_sub(json_len(&row) + 1);
            dropped += 1;
        }
    }
    dropped
}

/// The length of a value's JSON.
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize, cell: &str) -> PlayerTable {
        PlayerTable {
            columns: vec!["Date".into(), "Online time".into()],
            data: (0..rows)
                .map(|i| vec![format!("{i:02}/11/2026"), cell.to_string()])
                .collect(),
        }
    }

    #[test]
    fn rows_are_left_out_oldest_first_from_the_longest_table_until_it_fits() {
        let json_len = |t: &[PlayerTable]| serde_json::to_vec(t).expect("json").len();
        // Fits already: nothing left out.
        let mut small = vec![table(3, "1h"), table(0, "")];
        assert_eq!(fit(&mut small, 10_000), 0);
        assert_eq!(small[0].data.len(), 3);
        // Too big: the longest table loses its last rows first.
        let mut big = vec![table(10, "1h"), table(400, "3h 10m"), table(50, "2h")];
        let before = json_len(&big);
        let dropped = fit(&mut big, before / 2);
        assert!(dropped > 0);
        assert!(
            json_len(&big) <= before / 2,
            "{} > {}",
            json_len(&big),
            before / 2
        );
        assert_eq!(big[0].data.len(), 10, "the short table keeps its rows");
        assert_eq!(big[1].data[0][0], "00/11/2026", "the newest rows stay");
        assert_eq!(
            dropped as usize,
            (10 + 400 + 50) - big.iter().map(|t| t.data.len()).sum::<usize>()
        );
        // Nothing left to drop: it stops.
        let mut columns_only = vec![table(0, "")];
        assert_eq!(fit(&mut columns_only, 1), 0);
    }

    #[test]
    fn read_times_are_whole_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T09:23:41.734-03:00").expect("time");
        assert_eq!(
            whole_seconds(t),
            DateTime::parse_from_rfc3339("2026-11-29T09:23:41-03:00").expect("time")
        );
    }
}
