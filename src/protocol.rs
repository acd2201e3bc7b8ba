//! The typed contract between a scrape worker and the rest of worldpool.
//!
//! The `pool` crate carries a worker's phase as an opaque string and its
//! application events as `(kind, JSON)` pairs ([`pool::WorkerMessage`]);
//! this module is the one place that gives them types. The worker sends
//! with [`WorkerEvent::to_message`] and [`Phase::as_str`]; the API views,
//! the metrics and the SSE stream read them back with
//! [`WorkerEvent::from_pool`] and [`Phase::from_str`](std::str::FromStr).
//! A phase or an event name is an enum variant here, never a string
//! compared in three modules. The other direction, supervisor to worker,
//! is [`SupervisorMessage`] (sent with `pool::PoolHandle::send`, read
//! with `pool::WorkerChannel::incoming`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};
use pool::{PoolEvent, WorkerMessage};
use serde::{Deserialize, Serialize};

use crate::store::{NewDelta, VipReadOutcome};

/// Environment variables of a world worker in cluster mode: the node that
/// holds the world's lease and the lease's epoch. The worker's run writes
/// check them first ([`crate::store::Fence`]).
pub const FENCE_NODE_ENV: &str = "WORLDPOOL_FENCE_NODE";
/// See [`FENCE_NODE_ENV`].
pub const FENCE_EPOCH_ENV: &str = "WORLDPOOL_FENCE_EPOCH";

/// The environment that gives a worker its fence.
pub fn fence_env(fence: &crate::store::Fence) -> Vec<(String, String)> {
    vec![
        (FENCE_NODE_ENV.to_string(), fence.node.clone()),
        (FENCE_EPOCH_ENV.to_string(), fence.epoch.to_string()),
    ]
}

/// The fence this worker was started with, if any.
pub fn fence_from_env() -> Option<crate::store::Fence> {
    let node = std::env::var(FENCE_NODE_ENV).ok()?;
    let epoch = std::env::var(FENCE_EPOCH_ENV).ok()?.parse().ok()?;
    Some(crate::store::Fence { node, epoch })
}

/// Environment variable the supervisor sets to the heartbeat period in
/// milliseconds (`heartbeat_timeout / 3`).
pub const HEARTBEAT_ENV: &str = "WORLDPOOL_HEARTBEAT_MS";

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Started, nothing done yet.
    Idle,
    /// Fetching the status page.
    Checking,
    /// Scraping a world's guilds and storing the run.
    Scraping,
    /// Waiting for the next check.
    Sleeping,
}

impl Phase {
    /// Every phase, least busy first.
    pub const ALL: [Phase; 4] = [
        Phase::Idle,
        Phase::Sleeping,
        Phase::Checking,
        Phase::Scraping,
    ];

    /// The snake_case name used on the channel and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Checking => "checking",
            Phase::Scraping => "scraping",
            Phase::Sleeping => "sleeping",
        }
    }

    /// How busy the phase is (higher is busier), for the replaced
    /// system's single `state` of a whole pool.
    pub fn busyness(self) -> u8 {
        match self {
            Phase::Idle => 1,
            Phase::Sleeping => 2,
            Phase::Checking => 3,
            Phase::Scraping => 4,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase name that is not one of [`Phase::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phase `{0}`")]
pub struct UnknownPhase(pub String);

impl FromStr for Phase {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Phase, UnknownPhase> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPhase(s.to_string()))
    }
}

/// A run was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFinished {
    /// World.
    pub world: String,
    /// Player rows stored.
    pub rows: u64,
    /// Delta rows stored.
    pub deltas: u64,
    /// The site's update time of the run.
    pub update_time: DateTime<FixedOffset>,
    /// The run re-based every player after the daily reset (no deltas).
    pub rebased: bool,
    /// Configured guilds the site did not know in this run (zero rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_guilds: Vec<String>,
}

/// A scrape failed; a failed run was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailed {
    /// World.
    pub world: String,
    /// The site's update time the scrape was for.
    pub update_time: DateTime<FixedOffset>,
    /// What failed.
    pub error: String,
}

/// The deltas of a stored run (the first [`DeltaBatch::MAX_ITEMS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBatch {
    /// World.
    pub world: String,
    /// The site's update time of the run.
    pub update_time: DateTime<FixedOffset>,
    /// The deltas.
    pub items: Vec<NewDelta>,
}

impl DeltaBatch {
    /// Most deltas sent in one event; the store has them all.
    pub const MAX_ITEMS: usize = 200;
}

/// A pass over a world's watched players ended (sent when it read at least
/// one page, or when the number of watched players changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipPass {
    /// World.
    pub world: String,
    /// The world's update the reads belong to.
    pub update_time: DateTime<FixedOffset>,
    /// Players watched in that world (config and store).
    pub watched: u64,
    /// Player pages fetched and read.
    pub fetched: u64,
    /// Player pages that could not be fetched or read.
    pub failed: u64,
    /// Players the site does not know (a page without the tables).
    pub unknown: Vec<String>,
    /// Delta rows stored.
    pub deltas: u64,
    /// When the last page of the pass was read (none read: `None`).
    pub last_fetch: Option<DateTime<Utc>>,
}

/// An application event a worker sends to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// `run_finished`.
    RunFinished(RunFinished),
    /// `run_failed`.
    RunFailed(RunFailed),
    /// `deltas`.
    Deltas(DeltaBatch),
    /// `vip_pass`.
    VipPass(VipPass),
    /// `status_checked`: the watcher read the status page.
    StatusChecked(StatusChecked),
    /// `budget_acquire`: a request waits for the pool's grant.
    BudgetAcquire(BudgetAcquire),
    /// `budget_release`: a granted request ended, or a waiting one was
    /// given up.
    BudgetRelease(BudgetRelease),
    /// `budget_sync`: everything the worker waits for and holds (the
    /// answer to [`SupervisorMessage::BudgetResync`]).
    BudgetSync(BudgetSync),
    /// `player_details`: a player's page read on request (the answer to
    /// [`SupervisorMessage::PlayerDetails`]).
    PlayerDetails(PlayerDetailsRead),
}

impl WorkerEvent {
    /// The event's kind: its name on the channel and in SSE.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkerEvent::RunFinished(_) => "run_finished",
            WorkerEvent::RunFailed(_) => "run_failed",
            WorkerEvent::Deltas(_) => "deltas",
            WorkerEvent::VipPass(_) => "vip_pass",
            WorkerEvent::StatusChecked(_) => "status_checked",
            WorkerEvent::BudgetAcquire(_) => "budget_acquire",
            WorkerEvent::BudgetRelease(_) => "budget_release",
            WorkerEvent::BudgetSync(_) => "budget_sync",
            WorkerEvent::PlayerDetails(_) => "player_details",
        }
    }

    /// Whether events of this kind are the pool's own bookkeeping (the
    /// request budget's requests and releases, several per page fetched;
    /// a player's page read for one API request): kept off the SSE stream
    /// and the dashboard.
    pub fn is_internal_kind(kind: &str) -> bool {
        WorkerEvent::is_budget_kind(kind) || kind == "player_details"
    }

    /// Whether events of this kind are the request budget's.
    pub fn is_budget_kind(kind: &str) -> bool {
        kind.starts_with("budget_")
    }

    /// The channel message carrying it.
    pub fn to_message(&self) -> WorkerMessage {
        let data = match self {
            WorkerEvent::RunFinished(e) => serde_json::to_value(e),
            WorkerEvent::RunFailed(e) => serde_json::to_value(e),
            WorkerEvent::Deltas(e) => serde_json::to_value(e),
            WorkerEvent::VipPass(e) => serde_json::to_value(e),
            WorkerEvent::StatusChecked(e) => serde_json::to_value(e),
            WorkerEvent::BudgetAcquire(e) => serde_json::to_value(e),
            WorkerEvent::BudgetRelease(e) => serde_json::to_value(e),
            WorkerEvent::BudgetSync(e) => serde_json::to_value(e),
            WorkerEvent::PlayerDetails(e) => serde_json::to_value(e),
        };
        WorkerMessage::Event {
            kind: self.kind().to_string(),
            // These types always serialize (no maps with non-string keys).
            data: data.unwrap_or_default(),
        }
    }

    /// Read an event back from its kind and payload; `None` for another
    /// kind or a payload that does not fit.
    pub fn parse(kind: &str, data: &serde_json::Value) -> Option<WorkerEvent> {
        // Read from the borrowed value: no copy of the payload.
        fn read<'a, T: Deserialize<'a>>(data: &'a serde_json::Value) -> Option<T> {
            T::deserialize(data).ok()
        }
        match kind {
            "run_finished" => read(data).map(WorkerEvent::RunFinished),
            "run_failed" => read(data).map(WorkerEvent::RunFailed),
            "deltas" => read(data).map(WorkerEvent::Deltas),
            "vip_pass" => read(data).map(WorkerEvent::VipPass),
            "status_checked" => read(data).map(WorkerEvent::StatusChecked),
            "budget_acquire" => read(data).map(WorkerEvent::BudgetAcquire),
            "budget_release" => read(data).map(WorkerEvent::BudgetRelease),
            "budget_sync" => read(data).map(WorkerEvent::BudgetSync),
            "player_details" => read(data).map(WorkerEvent::PlayerDetails),
            _ => None,
        }
    }

    /// The worker event inside a pool event, if it is one.
    pub fn from_pool(event: &PoolEvent) -> Option<WorkerEvent> {
        match event {
            PoolEvent::Custom { kind, data, .. } => WorkerEvent::parse(kind, data),
            _ => None,
        }
    }
}

/// A world whose status-page time differs from the last update stored
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueWorld {
    /// World (as the config names it).
    pub world: String,
    /// The site's `Daily Raw Ranking` time of it.
    pub update_time: DateTime<FixedOffset>,
}

/// The watcher read the status page once for the whole pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChecked {
    /// When the page was fetched.
    pub checked_at: DateTime<Utc>,
    /// The configured worlds that are due, with their new update time.
    #[serde(default)]
    pub due: Vec<DueWorld>,
    /// Why the check failed (the page did not load or parse), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a granted request ended, as its holder reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// HTTP status, when an answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `Retry-After` of a 429 or 503, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// No answer: timeout, refused or broken connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

/// A request waits for a grant of the pool's budget for `host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAcquire {
    /// `host:port`.
    pub host: String,
    /// The worker's id of the request (unique within the process).
    pub id: u64,
    /// Higher goes first (`[[worlds]] priority`).
    #[serde(default)]
    pub priority: i32,
}

/// A granted request ended (with what the site answered), or a waiting
/// one was given up (`feedback` absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRelease {
    /// `host:port`.
    pub host: String,
    /// The request id.
    pub id: u64,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// One request a worker waits for or holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetTicket {
    /// `host:port`.
    pub host: String,
    /// The request id.
    pub id: u64,
    /// Its priority.
    #[serde(default)]
    pub priority: i32,
}

/// Everything a worker waits for and holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSync {
    /// Waiting for a grant.
    #[serde(default)]
    pub waiting: Vec<BudgetTicket>,
    /// Granted and not yet released.
    #[serde(default)]
    pub held: Vec<BudgetTicket>,
}

/// One table of a player page, as `/api/player-details/{name}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlayerTable {
    /// Header texts, in order (`Time`, `World`, `Level`, `Killed by`).
    pub columns: Vec<String>,
    /// Rows, newest first on the real site, each as its cells' texts.
    pub data: Vec<Vec<String>>,
}

/// A player's page read by a worker for one `/api/player-details/{name}`
/// request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerDetailsRead {
    /// The request's id ([`SupervisorMessage::PlayerDetails`]).
    pub id: u64,
    /// Player name, as asked.
    pub name: String,
    /// The world the request named, if any.
    #[serde(default)]
    pub world: Option<String>,
    /// What the page gave.
    pub outcome: PlayerDetailsOutcome,
}

impl PlayerDetailsRead {
    /// Largest payload a worker sends (the channel keeps lines of up to
    /// 64 KiB whole): rows beyond it are left out, oldest first.
    pub const MAX_BYTES: usize = 60 * 1024;
}

/// What a player's page gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlayerDetailsOutcome {
    /// The page was read.
    Read {
        /// Every table of the page, in page order.
        tables: Vec<PlayerTable>,
        /// Rows left out to fit [`PlayerDetailsRead::MAX_BYTES`].
        #[serde(default)]
        truncated_rows: u64,
        /// What was recorded for a watched player (`None`: not watched, or
        /// nothing to record).
        #[serde(default)]
        recorded: Option<VipReadOutcome>,
    },
    /// The site does not know the player (a page without the experience
    /// and online tables, or HTTP 404).
    Unknown {
        /// The site's HTTP status.
        response_status: u16,
    },
    /// The page could not be fetched or read (after the client's retries).
    Failed {
        /// The site's HTTP status, when it answered.
        #[serde(default)]
        response_status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// A message from the supervisor to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SupervisorMessage {
    /// Check the site now (`POST /api/manual-update`, a watched player
    /// added): a sleeping scrape loop wakes at once.
    CheckNow,
    /// The watcher saw a new update of this worker's world: scrape it now.
    WorldDue {
        /// World.
        world: String,
        /// Its new update time on the status page.
        update_time: DateTime<FixedOffset>,
        /// When the watcher read the status page.
        checked_at: DateTime<Utc>,
    },
    /// The watcher checks the status page for the pool (again): stop
    /// polling it yourself.
    WatcherUp {
        /// When the watcher last read the status page.
        checked_at: DateTime<Utc>,
    },
    /// The watcher process is gone: poll the status page yourself until
    /// [`SupervisorMessage::WatcherUp`].
    WatcherDown,
    /// Requests granted by the pool's budget for `host`: send them now.
    BudgetGrant {
        /// `host:port`.
        host: String,
        /// The request ids.
        ids: Vec<u64>,
    },
    /// The supervisor missed messages: answer with a
    /// [`WorkerEvent::BudgetSync`].
    BudgetResync,
    /// Read this player's page now (`GET /api/player-details/{name}`) and
    /// answer with a [`WorkerEvent::PlayerDetails`] carrying `id`.
    PlayerDetails {
        /// The request's id, echoed in the answer.
        id: u64,
        /// Player name.
        name: String,
        /// The player's world, when known (a watched player's read is
        /// recorded in it).
        #[serde(default)]
        world: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_messages_are_tagged_json() {
        let line = serde_json::to_string(&SupervisorMessage::CheckNow).expect("serializes");
        assert_eq!(line, r#"{"type":"check_now"}"#);
        let back: SupervisorMessage = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, SupervisorMessage::CheckNow);
        let t = DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
        let at = t.with_timezone(&Utc);
        let table = [
            (
                SupervisorMessage::WorldDue {
                    world: "Aurera".into(),
                    update_time: t,
                    checked_at: at,
                },
                "world_due",
            ),
            (
                SupervisorMessage::WatcherUp { checked_at: at },
                "watcher_up",
            ),
            (SupervisorMessage::WatcherDown, "watcher_down"),
            (
                SupervisorMessage::BudgetGrant {
                    host: "127.0.0.1:80".into(),
                    ids: vec![1, 2],
                },
                "budget_grant",
            ),
            (SupervisorMessage::BudgetResync, "budget_resync"),
            (
                SupervisorMessage::PlayerDetails {
                    id: 7,
                    name: "Zé Pequeno".into(),
                    world: Some("Aurera".into()),
                },
                "player_details",
            ),
        ];
        for (m, tag) in table {
            let v = serde_json::to_value(&m).expect("serializes");
            assert_eq!(v["type"], tag);
            let back: SupervisorMessage = serde_json::from_value(v).expect("parses");
            assert_eq!(back, m);
        }
    }

    #[test]
    fn budget_and_watcher_events_round_trip_and_budget_ones_are_internal() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
        let events = [
            WorkerEvent::StatusChecked(StatusChecked {
                checked_at: t.with_timezone(&Utc),
                due: vec![DueWorld {
                    world: "Aurera".into(),
                    update_time: t,
                }],
                error: None,
            }),
            WorkerEvent::BudgetAcquire(BudgetAcquire {
                host: "h:1".into(),
                id: 3,
                priority: -2,
            }),
            WorkerEvent::BudgetRelease(BudgetRelease {
                host: "h:1".into(),
                id: 3,
                feedback: Some(Feedback {
                    status: Some(429),
                    retry_after_ms: Some(2_000),
                    failed: false,
                }),
            }),
            WorkerEvent::BudgetSync(BudgetSync {
                waiting: vec![BudgetTicket {
                    host: "h:1".into(),
                    id: 4,
                    priority: 0,
                }],
                held: vec![],
            }),
            WorkerEvent::PlayerDetails(PlayerDetailsRead {
                id: 7,
                name: "Zé".into(),
                world: None,
                outcome: PlayerDetailsOutcome::Read {
                    tables: vec![PlayerTable {
                        columns: vec!["Date".into(), "Online time".into()],
                        data: vec![vec!["29/11/2026".into(), "3h 10m".into()]],
                    }],
                    truncated_rows: 0,
                    recorded: Some(VipReadOutcome::Baseline),
                },
            }),
            WorkerEvent::PlayerDetails(PlayerDetailsRead {
                id: 8,
                name: "Zé".into(),
                world: Some("Aurera".into()),
                outcome: PlayerDetailsOutcome::Failed {
                    response_status: Some(503),
                    error: "GET u: HTTP 503".into(),
                },
            }),
        ];
        for e in events {
            let WorkerMessage::Event { kind, data } = e.to_message() else {
                panic!("not an event message");
            };
            assert_eq!(
                WorkerEvent::is_internal_kind(&kind),
                kind.starts_with("budget_") || kind == "player_details"
            );
            assert_eq!(WorkerEvent::parse(&kind, &data), Some(e));
        }
        assert!(!WorkerEvent::is_internal_kind("run_finished"));
    }

    #[test]
    fn phases_round_trip_and_order() {
        for p in Phase::ALL {
            assert_eq!(p.as_str().parse::<Phase>(), Ok(p));
            assert_eq!(
                serde_json::to_value(p).expect("serializes"),
                serde_json::json!(p.as_str())
            );
        }
        for pair in Phase::ALL.windows(2) {
            assert!(pair[0].busyness() < pair[1].busyness(), "{pair:?}");
        }
        assert!("napping".parse::<Phase>().is_err());
    }

    #[test]
    fn events_round_trip_through_the_pool_message() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
        let events = [
            WorkerEvent::RunFinished(RunFinished {
                world: "Aurera".into(),
                rows: 40,
                deltas: 12,
                update_time: t,
                rebased: false,
                unknown_guilds: vec!["Ninguém Guild".into()],
            }),
            WorkerEvent::RunFailed(RunFailed {
                world: "Aurera".into(),
                update_time: t,
                error: "HTTP 503".into(),
            }),
            WorkerEvent::Deltas(DeltaBatch {
                world: "Aurera".into(),
                update_time: t,
                items: vec![NewDelta {
                    name: "Zé".into(),
                    guild: "Red Rose".into(),
                    delta: 5,
                }],
            }),
            WorkerEvent::VipPass(VipPass {
                world: "Aurera".into(),
                update_time: t,
                watched: 3,
                fetched: 2,
                failed: 0,
                unknown: vec!["Ninguém".into()],
                deltas: 1,
                last_fetch: Some(
                    chrono::DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time"),
                ),
            }),
        ];
        for e in events {
            let WorkerMessage::Event { kind, data } = e.to_message() else {
                panic!("not an event message");
            };
            assert_eq!(kind, e.kind());
            let pool_event = PoolEvent::Custom {
                worker: "Aurera".into(),
                kind,
                data,
            };
            assert_eq!(WorkerEvent::from_pool(&pool_event), Some(e));
        }
        assert_eq!(
            WorkerEvent::parse("run_finished", &serde_json::json!({"rows": "x"})),
            None
        );
        assert_eq!(WorkerEvent::parse("done", &serde_json::json!({})), None);
    }
}
