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

use crate::store::NewDelta;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl WorkerEvent {
    /// The event's kind: its name on the channel and in SSE.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkerEvent::RunFinished(_) => "run_finished",
            WorkerEvent::RunFailed(_) => "run_failed",
            WorkerEvent::Deltas(_) => "deltas",
            WorkerEvent::VipPass(_) => "vip_pass",
        }
    }

    /// The channel message carrying it.
    pub fn to_message(&self) -> WorkerMessage {
        let data = match self {
            WorkerEvent::RunFinished(e) => serde_json::to_value(e),
            WorkerEvent::RunFailed(e) => serde_json::to_value(e),
            WorkerEvent::Deltas(e) => serde_json::to_value(e),
            WorkerEvent::VipPass(e) => serde_json::to_value(e),
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
        let data = data.clone();
        match kind {
            "run_finished" => serde_json::from_value(data)
                .ok()
                .map(WorkerEvent::RunFinished),
            "run_failed" => serde_json::from_value(data)
                .ok()
                .map(WorkerEvent::RunFailed),
            "deltas" => serde_json::from_value(data).ok().map(WorkerEvent::Deltas),
            "vip_pass" => serde_json::from_value(data).ok().map(WorkerEvent::VipPass),
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

/// A message from the supervisor to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SupervisorMessage {
    /// Check the site now (`POST /api/manual-update`, a watched player
    /// added): a sleeping scrape loop wakes at once.
    CheckNow,
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
