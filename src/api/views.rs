//! JSON views over pool snapshots, serialized straight from borrowed data
//! (no intermediate `serde_json::Value`), and their schemas in
//! /api/openapi.json (`ToSchema`; the pool's own types, which know nothing
//! of HTTP, are described by the schema-only mirrors at the end, which a
//! test holds to the pool's serialization).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use pool::{ExitReason, ExitRecord, Limits, StateName, WorkerStatus};
use serde::{Serialize, Serializer};

/// A UTC time serialized as RFC 3339 with milliseconds
/// (`2026-11-29T06:13:34.123Z`), formatted by hand: it is the hottest part
/// of `/api/workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = Timestamp, value_type = String, format = DateTime)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// Format into a fixed buffer; `None` for years outside 0..=9999.
    fn format(&self) -> Option<[u8; 24]> {
        let t = &self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let put = |b: &mut [u8; 24], at: usize, width: usize, mut v: u32| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, 4, year);
        put(&mut b, 5, 2, t.month());
        put(&mut b, 8, 2, t.day());
        put(&mut b, 11, 2, t.hour());
        put(&mut b, 14, 2, t.minute());
        // A leap second shows as :60, like chrono does.
        let nanos = t.nanosecond();
        put(&mut b, 17, 2, t.second() + nanos / 1_000_000_000);
        put(&mut b, 20, 3, (nanos % 1_000_000_000) / 1_000_000);
        Some(b)
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.format() {
            // Only ASCII digits and separators were written.
            Some(buf) => s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
            None => s.serialize_str(&self.0.to_rfc3339()),
        }
    }
}

fn ts(t: &Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

/// One exit as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ExitRecord)]
pub struct ExitView {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// Signal, when it was killed.
    pub signal: Option<i32>,
    /// Classification.
    #[schema(value_type = ExitReasonName)]
    pub reason: ExitReason,
    /// When it was reaped.
    pub at: Ts,
    /// How long it ran, seconds.
    pub uptime_s: f64,
    /// Only for `spawn_failed`: the OS error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&ExitRecord> for ExitView {
    fn from(e: &ExitRecord) -> Self {
        ExitView {
            code: e.code,
            signal: e.signal,
            reason: e.reason,
            at: Ts(e.at),
            uptime_s: e.uptime_s,
            error: e.error.clone(),
        }
    }
}

/// A list of exits, serialized lazily.
#[derive(Debug)]
pub struct ExitList<'a>(pub &'a [ExitRecord]);

impl Serialize for ExitList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ExitView::from))
    }
}

/// One worker as `/api/workers` shows it. Environment variables and the
/// command line are never part of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Worker)]
pub struct WorkerView<'a> {
    /// Worker name (the world).
    pub world: &'a str,
    /// Current pid, `null` when no process runs.
    pub pid: Option<u32>,
    /// Lifecycle state.
    #[schema(value_type = WorkerState)]
    pub state: StateName,
    /// Current phase, `null` when no process runs or none was reported.
    #[schema(value_type = Option<crate::protocol::Phase>)]
    pub phase: Option<&'a str>,
    /// When the current state was entered.
    pub since: Ts,
    /// When the current (or last) process started.
    pub started_at: Option<Ts>,
    /// Seconds the current process has been running.
    pub uptime_s: Option<f64>,
    /// Restarts since the pool started.
    pub restarts: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// The most recent exit.
    pub last_exit: Option<ExitView>,
    /// When the next automatic start is due.
    pub next_restart_at: Option<Ts>,
    /// Why the worker is fatal.
    pub fatal_reason: Option<&'a str>,
    /// When the worker last checked the status page.
    pub last_check: Option<Ts>,
    /// When the worker last completed a run.
    pub last_success: Option<Ts>,
    /// Last error the worker reported.
    pub last_error: Option<&'a str>,
    /// Rows of the last run.
    pub rows_last_run: Option<u64>,
    /// CPU usage, percent of one core.
    pub cpu_percent: Option<f32>,
    /// Resident memory, bytes (shared pages counted in full).
    pub rss_bytes: Option<u64>,
    /// Proportional memory, bytes: shared pages divided among the
    /// processes that map them (sum it to get what the pool costs).
    pub pss_bytes: Option<u64>,
    /// Limits applied to the worker.
    #[schema(value_type = LimitsView)]
    pub limits: &'a Limits,
    /// Last heartbeat or message on the worker channel.
    pub last_heartbeat: Option<Ts>,
    /// Exits counted by reason.
    pub exits_by_reason: &'a BTreeMap<String, u64>,
    /// `watcher`: the pool's status watcher (reads the status page for
    /// every world); `scraper`: a world's (or the single) worker.
    #[schema(value_type = WorkerKind)]
    pub kind: &'static str,
    /// Requests the pool's budget granted it so far (`null` without a
    /// shared budget).
    pub requests: Option<u64>,
    /// Its requests in flight now (`null` without a shared budget).
    pub in_flight: Option<usize>,
    /// The last few exits, oldest first (only on `/api/workers/{world}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ExitView>>)]
    pub recent_exits: Option<ExitList<'a>>,
    /// Only on `/api/workers/{world}`: restart policy and timeouts in
    /// effect (durations in seconds): `{restart: {mode, min_uptime,
    /// backoff: {initial, multiplier, max, jitter}, max_restarts, window,
    /// fatal_retry}, stop_grace, start_timeout, heartbeat_timeout}`. A
    /// reload changes it without restarting the worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<&'a pool::Policy>,
    /// The watched players the worker reported (`null` until its first
    /// pass over them).
    pub watched: Option<WatchedView>,
    /// Configured guilds the site did not know in the last stored run of
    /// the worker's world(s) (stored with zero rows).
    pub unknown_guilds: Vec<String>,
}

/// A worker's watched players, from its `vip_pass` events: how many, when
/// a page was last read, and who the site did not know.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Watched)]
pub struct WatchedView {
    /// Players watched (config and API), over the worker's worlds.
    pub count: u64,
    /// When a watched player's page was last read.
    pub last_fetch: Option<Ts>,
    /// The world update the last pass read for (the latest over its
    /// worlds), RFC 3339 with the site's offset.
    pub update_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Pages read since the pool started.
    pub fetched: u64,
    /// Pages that failed since the pool started.
    pub failed: u64,
    /// Players the site did not know in the last pass.
    pub unknown: Vec<String>,
}

impl WatchedView {
    /// Sum a worker's worlds (`None` when it reported none).
    pub fn of(worlds: &[(String, super::metrics::WorldVips)]) -> Option<WatchedView> {
        if worlds.is_empty() {
            return None;
        }
        Some(WatchedView {
            count: worlds.iter().map(|(_, v)| v.watched).sum(),
            last_fetch: worlds
                .iter()
                .filter_map(|(_, v)| v.last_fetch)
                .max()
                .map(Ts),
            update_time: worlds.iter().filter_map(|(_, v)| v.update_time).max(),
            fetched: worlds.iter().map(|(_, v)| v.fetched).sum(),
            failed: worlds.iter().map(|(_, v)| v.failed).sum(),
            unknown: worlds
                .iter()
                .flat_map(|(_, v)| v.unknown.iter().cloned())
                .collect(),
        })
    }
}

impl<'a> WorkerView<'a> {
    /// The view of a snapshot at time `now`; `detail` adds `recent_exits`.
    pub fn new(w: &'a WorkerStatus, now: DateTime<Utc>, detail: bool) -> WorkerView<'a> {
        let alive = w.pid.is_some();
        let uptime_s = if alive {
            match w.started_at {
                Some(t) => Some(((now - t).num_milliseconds().max(0) as f64) / 1000.0),
                None => w.uptime_s,
            }
        } else {
            None
        };
        WorkerView {
            world: &w.name,
            pid: w.pid,
            state: w.state,
            phase: if alive {
                w.report.phase.as_deref()
            } else {
                None
            },
            since: Ts(w.since),
            started_at: ts(&w.started_at),
            uptime_s,
            restarts: w.restarts,
            consecutive_failures: w.consecutive_failures,
            last_exit: w.last_exit.as_ref().map(ExitView::from),
            next_restart_at: ts(&w.next_restart_at),
            fatal_reason: w.fatal_reason.as_deref(),
            last_check: ts(&w.report.last_check),
            last_success: ts(&w.report.last_success),
            last_error: w.report.last_error.as_deref().filter(|e| !e.is_empty()),
            rows_last_run: w.report.rows_last_run,
            cpu_percent: if alive { w.cpu_percent } else { None },
            rss_bytes: if alive { w.rss_bytes } else { None },
            pss_bytes: if alive { w.pss_bytes } else { None },
            limits: &w.limits,
            last_heartbeat: ts(&w.last_heartbeat),
            exits_by_reason: &w.exits_by_reason,
            kind: if w.name == crate::topology::WATCHER_NAME {
                "watcher"
            } else {
                "scraper"
            },
            requests: None,
            in_flight: None,
            recent_exits: detail.then_some(ExitList(&w.recent_exits)),
            policy: detail.then_some(&w.policy),
            watched: None,
            unknown_guilds: Vec::new(),
        }
    }

    /// The same view with the guilds the site did not know.
    pub fn with_unknown_guilds(mut self, guilds: Vec<String>) -> WorkerView<'a> {
        self.unknown_guilds = guilds;
        self
    }

    /// The same view with the worker's watched players.
    pub fn with_watched(mut self, watched: Option<WatchedView>) -> WorkerView<'a> {
        self.watched = watched;
        self
    }

    /// With the worker's use of the pool's budget: `None` = no shared
    /// budget; `Some(None)` = a budget, nothing asked yet.
    pub fn with_budget(
        mut self,
        use_: Option<Option<&crate::budget::HolderUse>>,
    ) -> WorkerView<'a> {
        if let Some(u) = use_ {
            self.requests = Some(u.map_or(0, |u| u.requests));
            self.in_flight = Some(u.map_or(0, |u| u.in_flight));
        }
        self
    }
}

/// How busy a reported phase is, for the compatible `state` (higher is
/// busier; 0 for a phase this version does not know).
pub fn phase_rank(phase: &str) -> u8 {
    phase
        .parse::<crate::protocol::Phase>()
        .map_or(0, crate::protocol::Phase::busyness)
}

/// Worker counts per state.
#[derive(Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StateCounts {
    /// All workers.
    pub total: usize,
    /// `starting`.
    pub starting: usize,
    /// `running`.
    pub running: usize,
    /// `backoff`.
    pub backoff: usize,
    /// `stopping`.
    pub stopping: usize,
    /// `stopped`.
    pub stopped: usize,
    /// `fatal`.
    pub fatal: usize,
}

impl StateCounts {
    /// Count the workers of a snapshot.
    pub fn of(workers: &[WorkerStatus]) -> StateCounts {
        let mut c = StateCounts {
            total: workers.len(),
            ..Default::default()
        };
        for w in workers {
            match w.state {
                StateName::Starting => c.starting += 1,
                StateName::Running => c.running += 1,
                StateName::Backoff => c.backoff += 1,
                StateName::Stopping => c.stopping += 1,
                StateName::Stopped => c.stopped += 1,
                StateName::Fatal => c.fatal += 1,
            }
        }
        c
    }
}

/// `/api/scraper-status`: the shape of the replaced system's endpoint, for
/// the pool as a whole.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ScraperStatus<'a> {
    /// At least one worker is running.
    pub running: bool,
    /// The busiest phase among running workers (`scraping` > `checking` >
    /// `sleeping` > `idle`); `stopped` when no worker runs.
    pub state: &'a str,
    /// The most recent status-page check of any worker (reported by the
    /// workers, not the time of this request), as the replaced system wrote
    /// it: the site's wall time without offset (`2026-01-04T19:43:05.123000`),
    /// like `last_update`. `/api/workers` has each worker's in UTC.
    pub last_check: Option<String>,
    /// At least one worker process exists.
    pub process_alive: bool,
    /// The supervisor's pid.
    pub pid: u32,
    /// Worker counts per state.
    pub workers: StateCounts,
    /// The newest update time of the stored deltas, site-local ISO 8601
    /// like the replaced system (`null` without a store or deltas).
    pub last_update: Option<String>,
}

impl<'a> ScraperStatus<'a> {
    /// Summarize a snapshot; times are written in the site's time zone
    /// `site` (`[site] utc_offset`).
    pub fn of(workers: &'a [WorkerStatus], site: chrono::FixedOffset) -> ScraperStatus<'a> {
        let alive = workers.iter().filter(|w| w.pid.is_some());
        let busiest = alive
            .clone()
            .filter_map(|w| w.report.phase.as_deref())
            .max_by_key(|p| phase_rank(p));
        let running = workers.iter().any(|w| w.state == StateName::Running);
        let process_alive = alive.clone().next().is_some();
        let state = match busiest {
            Some(p) => p,
            None if process_alive => "starting",
            None => "stopped",
        };
        ScraperStatus {
            running,
            state,
            last_check: workers
                .iter()
                .filter_map(|w| w.report.last_check)
                .max()
                .map(|t| crate::legacy::iso(t.with_timezone(&site))),
            process_alive,
            pid: std::process::id(),
            workers: StateCounts::of(workers),
            last_update: None,
        }
    }
}

// ----- schemas of the pool's types ------------------------------------------
//
// `pool` knows nothing of HTTP: its types get no `ToSchema`. These mirrors
// describe how they serialize; `mirrors_match_the_pool` holds them to it.

/// A worker's lifecycle state (`pool::StateName`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum WorkerState {
    /// Spawned, waiting for `ready`.
    Starting,
    /// Ready and healthy.
    Running,
    /// Waiting before the next start.
    Backoff,
    /// Stop sequence in progress.
    Stopping,
    /// Not running and not going to be restarted automatically.
    Stopped,
    /// Crash loop: waiting for `next_restart_at` (or a manual start).
    Fatal,
}

/// Why a worker's run ended (`pool::ExitReason`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ExitReasonName {
    /// Exited on its own with a status code.
    Exited,
    /// Killed by a signal the pool did not send.
    Crashed,
    /// Hit RLIMIT_CPU.
    CpuLimit,
    /// An allocation failed under the memory limit.
    MemoryLimit,
    /// Killed by the watchdog: no `ready` in time or missed heartbeats.
    Hung,
    /// Stopped by the pool (stop, restart or shutdown).
    Stopped,
    /// No process was started: the spawn failed (`error` says why).
    SpawnFailed,
    /// Exited with status 87: a cluster node's worker whose write the
    /// fence refused (another node owns its world). Not restarted.
    Fenced,
}

/// `kind` of a worker.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum WorkerKind {
    /// A world's (or the single) worker.
    Scraper,
    /// The pool's status watcher.
    Watcher,
}

/// Limits applied to a worker (`pool::Limits`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Limits)]
#[allow(dead_code)]
pub struct LimitsView {
    /// CPU seconds (RLIMIT_CPU).
    cpu_time: Option<f64>,
    /// Bytes (RLIMIT_DATA).
    memory: Option<u64>,
    /// Open file descriptors (RLIMIT_NOFILE).
    open_files: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::FakeControl;

    /// The enum values and property names of a mirror schema.
    fn schema_words<T: utoipa::PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).expect("schema");
        let mut values: Vec<serde_json::Value> = v["enum"].as_array().cloned().unwrap_or_default();
        for one in v["oneOf"].as_array().into_iter().flatten() {
            values.extend(one["enum"].as_array().cloned().unwrap_or_default());
        }
        let mut words: Vec<String> = values
            .iter()
            .filter_map(|w| w.as_str().map(String::from))
            .collect();
        words.extend(
            v["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        );
        words.sort();
        words
    }

    fn json_words<T: Serialize>(values: &[T]) -> Vec<String> {
        let mut words: Vec<String> = values
            .iter()
            .map(|v| serde_json::to_value(v).expect("serializes"))
            .flat_map(|v| match v {
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                serde_json::Value::String(s) => vec![s],
                other => vec![other.to_string()],
            })
            .collect();
        words.sort();
        words.dedup();
        words
    }

    #[test]
    fn mirrors_match_the_pool() {
        // A new state is a compile error here, then a line below.
        let every = |s: StateName| match s {
            StateName::Starting
            | StateName::Running
            | StateName::Backoff
            | StateName::Stopping
            | StateName::Stopped
            | StateName::Fatal => s,
        };
        let states = [
            StateName::Starting,
            StateName::Running,
            StateName::Backoff,
            StateName::Stopping,
            StateName::Stopped,
            StateName::Fatal,
        ]
        .map(every);
        assert_eq!(schema_words::<WorkerState>(), json_words(&states));
        assert_eq!(
            schema_words::<ExitReasonName>(),
            json_words(&ExitReason::ALL)
        );
        assert_eq!(
            schema_words::<LimitsView>(),
            json_words(&[Limits::default()])
        );
        let w = FakeControl::sample_status("Zuna", 7);
        let kinds = [WorkerView::new(&w, Utc::now(), false).kind, "watcher"];
        assert_eq!(schema_words::<WorkerKind>(), json_words(&kinds));
    }

    #[test]
    fn busiest_phase_and_real_last_check() {
        let mut a = FakeControl::sample_status("A", 1);
        let mut b = FakeControl::sample_status("B", 2);
        let mut c = FakeControl::sample_status("C", 3);
        let t = Utc::now() - chrono::Duration::hours(2);
        a.report.phase = Some("idle".into());
        a.report.last_check = Some(t);
        b.report.phase = Some("checking".into());
        b.report.last_check = Some(t + chrono::Duration::seconds(5));
        c.report.phase = Some("scraping".into());
        c.report.last_check = None;
        // A stopped worker's stale phase does not count.
        c.pid = None;
        c.state = StateName::Stopped;
        let all = [a, b, c];
        let site = chrono::FixedOffset::west_opt(3 * 3600).expect("UTC-3");
        let s = ScraperStatus::of(&all, site);
        assert_eq!(s.state, "checking");
        let latest = (t + chrono::Duration::seconds(5)).with_timezone(&site);
        assert_eq!(s.last_check, Some(crate::legacy::iso(latest)));
        assert!(
            s.last_check
                .as_deref()
                .is_some_and(|c| !c.ends_with('Z') && !c.contains('+') && c.len() >= 19),
            "naive: {:?}",
            s.last_check
        );
        assert!(s.running && s.process_alive);
        assert_eq!(s.workers.total, 3);
        assert_eq!(s.workers.running, 2);
        assert_eq!(s.workers.stopped, 1);

        let none = ScraperStatus::of(&[], site);
        assert_eq!(none.state, "stopped");
        assert!(!none.running && !none.process_alive);
        assert_eq!(none.last_check, None);
    }

    #[test]
    fn timestamps_have_milliseconds_and_round_trip() {
        use chrono::TimeZone;
        let t = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid")
            + chrono::Duration::nanoseconds(67_891_234);
        let json = serde_json::to_string(&Ts(t)).expect("serializes");
        assert_eq!(json, "\"2026-01-02T03:04:05.067Z\"");
        let back: DateTime<Utc> = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, t - chrono::Duration::nanoseconds(891_234));
        let now = Utc::now();
        let back: DateTime<Utc> =
            serde_json::from_str(&serde_json::to_string(&Ts(now)).expect("ser")).expect("de");
        assert!((now - back).num_milliseconds().abs() < 1);
        let far = Utc
            .with_ymd_and_hms(12_000, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        assert!(
            serde_json::to_string(&Ts(far))
                .expect("ser")
                .contains("12000")
        );
    }

    #[test]
    fn phase_ranks_are_ordered() {
        let order = ["unknown", "idle", "sleeping", "checking", "scraping"];
        for pair in order.windows(2) {
            assert!(phase_rank(pair[0]) < phase_rank(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn view_hides_process_data_of_dead_workers_and_empty_errors() {
        let mut w = FakeControl::sample_status("Zuna", 7);
        w.report.last_error = Some(String::new());
        let now = Utc::now();
        let v = WorkerView::new(&w, now, false);
        assert_eq!(v.phase, Some("sleeping"));
        assert!(v.uptime_s.is_some_and(|u| u >= 3_599.0));
        assert_eq!(v.last_error, None);
        assert!(v.recent_exits.is_none());
        w.pid = None;
        let v = WorkerView::new(&w, now, true);
        assert_eq!(
            (v.phase, v.uptime_s, v.cpu_percent, v.rss_bytes, v.pss_bytes),
            (None, None, None, None, None)
        );
        assert_eq!(v.recent_exits.map(|r| r.0.len()), Some(1));
    }
}
