//! `/metrics` in the Prometheus text format (0.0.4), written by hand, plus
//! the run counters fed by the workers' `run_finished` events, the watched
//! players' numbers fed by their `vip_pass` events, and a small parser used
//! by the tests to check the output is valid exposition text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use pool::{ExitReason, PoolEvent, StateName, WorkerStatus};

use crate::protocol::WorkerEvent;

/// Runs counted per world from `run_finished` events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WorldRuns {
    /// Finished runs by status (`ok`, `failed`, …).
    pub by_status: BTreeMap<String, u64>,
    /// Player rows stored, summed over runs.
    pub rows: u64,
    /// Delta rows stored, summed over runs.
    pub deltas: u64,
    /// The worker that ran the world's last run.
    pub worker: String,
    /// Configured guilds the site did not know in the last stored run.
    pub unknown_guilds: Vec<String>,
}

/// Run counters, updated from pool events.
#[derive(Debug, Default)]
pub struct RunCounters {
    worlds: Mutex<HashMap<String, WorldRuns>>,
}

impl RunCounters {
    /// Count a `run_finished` (status `ok`) or `run_failed` (status
    /// `failed`) event; other events are ignored. Returns whether it
    /// counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        let PoolEvent::Custom { worker, .. } = event else {
            return false;
        };
        let (world, status, rows, deltas, unknown) = match WorkerEvent::from_pool(event) {
            Some(WorkerEvent::RunFinished(r)) => {
                (r.world, "ok", r.rows, r.deltas, Some(r.unknown_guilds))
            }
            Some(WorkerEvent::RunFailed(r)) => (r.world, "failed", 0, 0, None),
            _ => return false,
        };
        let mut worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let entry = worlds.entry(world).or_default();
        if entry.worker != *worker {
            entry.worker = worker.clone();
        }
        if let Some(unknown) = unknown {
            entry.unknown_guilds = unknown;
        }
        *entry.by_status.entry(status.to_string()).or_insert(0) += 1;
        entry.rows += rows;
        entry.deltas += deltas;
        true
    }

    /// The guilds the site did not know in the last stored run of each
    /// world `worker` ran, sorted.
    pub fn unknown_guilds_of(&self, worker: &str) -> Vec<String> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = worlds
            .values()
            .filter(|w| w.worker == worker)
            .flat_map(|w| w.unknown_guilds.iter().cloned())
            .collect();
        out.sort();
        out
    }

    /// A copy of the counters, sorted by world.
    pub fn snapshot(&self) -> BTreeMap<String, WorldRuns> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        worlds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The newest update time of the stored deltas, as `/api/scraper-status`
/// shows it: followed from `run_finished` events (a run that stored
/// deltas), seeded by one store read ([`LastUpdate::seed`]), so the status
/// costs no query per request.
#[derive(Debug, Default)]
pub struct LastUpdate {
    state: Mutex<LastUpdateState>,
}

#[derive(Debug, Default)]
struct LastUpdateState {
    newest: Option<chrono::DateTime<chrono::FixedOffset>>,
    seeded: bool,
    /// When the last seed was tried (tries are spaced).
    tried: Option<std::time::Instant>,
}

impl LastUpdate {
    /// Space between seed tries while the store does not answer.
    pub const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

    fn lock(&self) -> std::sync::MutexGuard<'_, LastUpdateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follow a `run_finished` event that stored deltas; other events are
    /// ignored. Returns whether it counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        match WorkerEvent::from_pool(event) {
            Some(WorkerEvent::RunFinished(r)) if r.deltas > 0 => {
                self.saw(Some(r.update_time));
                true
            }
            _ => false,
        }
    }

    fn saw(&self, t: Option<chrono::DateTime<chrono::FixedOffset>>) {
        let mut s = self.lock();
        if t > s.newest {
            s.newest = t;
        }
    }

    /// The newest update known, and whether a seed is due (never seeded,
    /// and no try in the last [`LastUpdate::RETRY`]); a due seed is marked
    /// tried, so one caller seeds at a time.
    pub fn get(&self) -> (Option<chrono::DateTime<chrono::FixedOffset>>, bool) {
        let mut s = self.lock();
        let due = !s.seeded && s.tried.is_none_or(|t| t.elapsed() >= Self::RETRY);
        if due {
            s.tried = Some(std::time::Instant::now());
        }
        (s.newest, due)
    }

    /// What the store said the newest update is.
    pub fn seed(&self, newest: Option<chrono::DateTime<chrono::FixedOffset>>) {
        self.saw(newest);
        self.lock().seeded = true;
    }

    /// Forget everything (a new store, or deltas imported): the next
    /// [`LastUpdate::get`] asks for a seed.
    pub fn reset(&self, keep: bool) {
        let mut s = self.lock();
        if !keep {
            s.newest = None;
        }
        s.seeded = false;
        s.tried = None;
    }
}

/// What the workers told of one world's watched players (`vip_pass`
/// events).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorldVips {
    /// The worker that reported them.
    pub worker: String,
    /// Players watched, as of the last pass.
    pub watched: u64,
    /// When a player page was last read (kept across passes).
    pub last_fetch: Option<chrono::DateTime<chrono::Utc>>,
    /// The world's update the last pass read for.
    pub update_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Players the site did not know in the last pass that read pages.
    pub unknown: Vec<String>,
    /// Player pages read, summed over passes.
    pub fetched: u64,
    /// Player pages that failed, summed over passes.
    pub failed: u64,
    /// Unknown players met, summed over passes.
    pub unknown_total: u64,
    /// VIP delta rows stored, summed over passes.
    pub deltas: u64,
}

/// The watched players' numbers per world, updated from pool events.
#[derive(Debug, Default)]
pub struct VipCounters {
    worlds: Mutex<HashMap<String, WorldVips>>,
}

impl VipCounters {
    /// Count a `vip_pass` event; other events are ignored. Returns whether
    /// it counted.
    pub fn record(&self, event: &PoolEvent) -> bool {
        let (worker, pass) = match (event, WorkerEvent::from_pool(event)) {
            (PoolEvent::Custom { worker, .. }, Some(WorkerEvent::VipPass(p))) => (worker, p),
            _ => return false,
        };
        let mut worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let w = worlds.entry(pass.world).or_default();
        w.worker = worker.clone();
        w.watched = pass.watched;
        w.update_time = Some(pass.update_time);
        if pass.last_fetch.is_some() {
            w.last_fetch = pass.last_fetch;
        }
        if pass.fetched + pass.failed + pass.unknown.len() as u64 > 0 {
            w.unknown_total += pass.unknown.len() as u64;
            w.unknown = pass.unknown;
        }
        w.fetched += pass.fetched;
        w.failed += pass.failed;
        w.deltas += pass.deltas;
        true
    }

    /// A copy, sorted by world.
    pub fn snapshot(&self) -> BTreeMap<String, WorldVips> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        worlds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The worlds a worker reported on (one in pool mode, every world in
    /// single mode), by world.
    pub fn of_worker(&self, worker: &str) -> Vec<(String, WorldVips)> {
        let worlds = self.worlds.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, WorldVips)> = worlds
            .iter()
            .filter(|(_, v)| v.worker == worker)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Escape a label value (`\`, `"`, newline).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes exposition text (families and samples).
pub(crate) struct Writer {
    pub(crate) out: String,
}

impl Writer {
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        if value.is_nan() {
            self.out.push_str(" NaN\n");
        } else if value.is_infinite() {
            self.out
                .push_str(if value > 0.0 { " +Inf\n" } else { " -Inf\n" });
        } else {
            let _ = writeln!(self.out, " {value}");
        }
    }
}

const STATES: [StateName; 6] = [
    StateName::Starting,
    StateName::Running,
    StateName::Backoff,
    StateName::Stopping,
    StateName::Stopped,
    StateName::Fatal,
];

/// Render the exposition text for a snapshot, the run counters and the
/// watched players' numbers.
pub fn render(
    workers: &[WorkerStatus],
    runs: &BTreeMap<String, WorldRuns>,
    vips: &BTreeMap<String, WorldVips>,
) -> String {
    let mut w = Writer {
        out: String::with_capacity(512 + workers.len() * 1024),
    };

    w.family(
        "worldpool_worker_up",
        "gauge",
        "1 when the worker is in state running, else 0.",
    );
    for s in workers {
        let up = if s.state == StateName::Running {
            1.0
        } else {
            0.0
        };
        w.sample("worldpool_worker_up", &[("world", &s.name)], up);
    }

    w.family(
        "worldpool_worker_state",
        "gauge",
        "1 for the worker's current lifecycle state, 0 for the others.",
    );
    for s in workers {
        for st in STATES {
            let v = if s.state == st { 1.0 } else { 0.0 };
            w.sample(
                "worldpool_worker_state",
                &[("world", &s.name), ("state", st.as_str())],
                v,
            );
        }
    }

    w.family(
        "worldpool_worker_restarts_total",
        "counter",
        "Restarts of the worker since the pool started.",
    );
    for s in workers {
        w.sample(
            "worldpool_worker_restarts_total",
            &[("world", &s.name)],
            s.restarts as f64,
        );
    }

    w.family(
        "worldpool_worker_exits_total",
        "counter",
        "Exits of the worker's processes since the pool started, by reason.",
    );
    let mut pool_exits: BTreeMap<&str, u64> =
        ExitReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for s in workers {
        let mut reasons: BTreeMap<&str, u64> =
            ExitReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
        for (reason, n) in &s.exits_by_reason {
            *reasons.entry(reason.as_str()).or_insert(0) += n;
        }
        for (reason, n) in reasons {
            *pool_exits.entry(reason).or_insert(0) += n;
            w.sample(
                "worldpool_worker_exits_total",
                &[("world", &s.name), ("reason", reason)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_cpu_percent",
        "gauge",
        "CPU usage of the worker process, percent of one core (latest sample).",
    );
    for s in workers {
        if let (Some(_), Some(cpu)) = (s.pid, s.cpu_percent) {
            w.sample(
                "worldpool_worker_cpu_percent",
                &[("world", &s.name)],
                f64::from(cpu),
            );
        }
    }

    w.family(
        "worldpool_worker_rss_bytes",
        "gauge",
        "Resident memory of the worker process, bytes (latest sample).",
    );
    for s in workers {
        if let (Some(_), Some(rss)) = (s.pid, s.rss_bytes) {
            w.sample(
                "worldpool_worker_rss_bytes",
                &[("world", &s.name)],
                rss as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_pss_bytes",
        "gauge",
        "Proportional memory of the worker process, bytes (latest sample): \
         shared pages divided among the processes that map them.",
    );
    for s in workers {
        if let (Some(_), Some(pss)) = (s.pid, s.pss_bytes) {
            w.sample(
                "worldpool_worker_pss_bytes",
                &[("world", &s.name)],
                pss as f64,
            );
        }
    }

    w.family(
        "worldpool_worker_uptime_seconds",
        "gauge",
        "Seconds the worker's current process has been running.",
    );
    let now = chrono::Utc::now();
    for s in workers {
        if let (Some(_), Some(t)) = (s.pid, s.started_at) {
            let up = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
            w.sample("worldpool_worker_uptime_seconds", &[("world", &s.name)], up);
        }
    }

    w.family(
        "worldpool_worker_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the worker's last successful run.",
    );
    for s in workers {
        if let Some(t) = s.report.last_success {
            w.sample(
                "worldpool_worker_last_success_timestamp_seconds",
                &[("world", &s.name)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }

    w.family(
        "worldpool_worker_last_check_timestamp_seconds",
        "gauge",
        "Unix time of the worker's last status-page check.",
    );
    for s in workers {
        if let Some(t) = s.report.last_check {
            w.sample(
                "worldpool_worker_last_check_timestamp_seconds",
                &[("world", &s.name)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }

    // Every pool worker appears in the run counters, with zeros until its
    // first run, so rates work from the start.
    let mut per_world: BTreeMap<&str, WorldRuns> = workers
        .iter()
        .map(|s| (s.name.as_str(), WorldRuns::default()))
        .collect();
    for (world, r) in runs {
        per_world.insert(world.as_str(), r.clone());
    }

    w.family(
        "worldpool_runs_total",
        "counter",
        "Finished scrape runs by world and status (from run_finished events).",
    );
    let mut pool_runs: BTreeMap<String, u64> = BTreeMap::new();
    for (world, r) in &per_world {
        let mut statuses: BTreeMap<&str, u64> = [("ok", 0), ("failed", 0)].into_iter().collect();
        for (st, n) in &r.by_status {
            *statuses.entry(st.as_str()).or_insert(0) += n;
        }
        for (st, n) in statuses {
            *pool_runs.entry(st.to_string()).or_insert(0) += n;
            w.sample(
                "worldpool_runs_total",
                &[("world", world), ("status", st)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_rows_total",
        "counter",
        "Player rows stored by finished runs, by world.",
    );
    for (world, r) in &per_world {
        w.sample("worldpool_rows_total", &[("world", world)], r.rows as f64);
    }

    w.family(
        "worldpool_deltas_total",
        "counter",
        "Delta rows stored by finished runs, by world.",
    );
    for (world, r) in &per_world {
        w.sample(
            "worldpool_deltas_total",
            &[("world", world)],
            r.deltas as f64,
        );
    }

    w.family(
        "worldpool_watched_players",
        "gauge",
        "Players watched in the world (config and API), as of its last pass.",
    );
    for (world, v) in vips {
        w.sample(
            "worldpool_watched_players",
            &[("world", world)],
            v.watched as f64,
        );
    }

    w.family(
        "worldpool_player_pages_total",
        "counter",
        "Watched players' pages by world and result: ok (read), failed (not fetched or not readable), unknown (the site does not know the player).",
    );
    for (world, v) in vips {
        for (result, n) in [
            ("ok", v.fetched),
            ("failed", v.failed),
            ("unknown", v.unknown_total),
        ] {
            w.sample(
                "worldpool_player_pages_total",
                &[("world", world), ("result", result)],
                n as f64,
            );
        }
    }

    w.family(
        "worldpool_vip_deltas_total",
        "counter",
        "Watched players' delta rows stored, by world.",
    );
    for (world, v) in vips {
        w.sample(
            "worldpool_vip_deltas_total",
            &[("world", world)],
            v.deltas as f64,
        );
    }

    w.family(
        "worldpool_player_page_last_fetch_timestamp_seconds",
        "gauge",
        "Unix time a watched player's page of the world was last read.",
    );
    for (world, v) in vips {
        if let Some(t) = v.last_fetch {
            w.sample(
                "worldpool_player_page_last_fetch_timestamp_seconds",
                &[("world", world)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }

    // Pool totals.
    w.family(
        "worldpool_workers",
        "gauge",
        "Workers of the pool by lifecycle state.",
    );
    for st in STATES {
        let n = workers.iter().filter(|s| s.state == st).count();
        w.sample("worldpool_workers", &[("state", st.as_str())], n as f64);
    }

    w.family(
        "worldpool_pool_restarts_total",
        "counter",
        "Restarts of all workers since the pool started.",
    );
    let restarts: u64 = workers.iter().map(|s| s.restarts).sum();
    w.sample("worldpool_pool_restarts_total", &[], restarts as f64);

    w.family(
        "worldpool_pool_exits_total",
        "counter",
        "Exits of all worker processes since the pool started, by reason.",
    );
    for (reason, n) in pool_exits {
        w.sample(
            "worldpool_pool_exits_total",
            &[("reason", reason)],
            n as f64,
        );
    }

    w.family(
        "worldpool_pool_runs_total",
        "counter",
        "Finished scrape runs of all worlds, by status.",
    );
    for (st, n) in &pool_runs {
        w.sample("worldpool_pool_runs_total", &[("status", st)], *n as f64);
    }

    w.family(
        "worldpool_pool_rows_total",
        "counter",
        "Player rows stored by all finished runs.",
    );
    let rows: u64 = per_world.values().map(|r| r.rows).sum();
    w.sample("worldpool_pool_rows_total", &[], rows as f64);

    w.family(
        "worldpool_pool_cpu_percent",
        "gauge",
        "CPU usage of all worker processes, percent of one core.",
    );
    let cpu: f64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.cpu_percent)
        .map(f64::from)
        .sum();
    w.sample("worldpool_pool_cpu_percent", &[], cpu);

    w.family(
        "worldpool_pool_rss_bytes",
        "gauge",
        "Resident memory of all worker processes, bytes (shared pages \
         counted once per process: overstates their cost).",
    );
    let rss: u64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.rss_bytes)
        .sum();
    w.sample("worldpool_pool_rss_bytes", &[], rss as f64);

    w.family(
        "worldpool_pool_pss_bytes",
        "gauge",
        "Proportional memory of all worker processes, bytes: what they cost.",
    );
    let pss: u64 = workers
        .iter()
        .filter(|s| s.pid.is_some())
        .filter_map(|s| s.pss_bytes)
        .sum();
    w.sample("worldpool_pool_pss_bytes", &[], pss as f64);

    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::exposition::{Sample, parse_exposition};
    use crate::api::fake::FakeControl;
    use crate::protocol::{RunFailed, RunFinished};

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    #[test]
    fn rendered_metrics_parse_and_carry_the_numbers() {
        let mut a = FakeControl::sample_status("São \"Paulo\"\\x", 1);
        a.restarts = 3;
        a.exits_by_reason.insert("hung".into(), 2);
        let mut b = FakeControl::sample_status("Beta", 2);
        b.state = StateName::Fatal;
        b.pid = None;
        let counters = RunCounters::default();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
        let pool_event = |e: WorkerEvent| {
            let pool::WorkerMessage::Event { kind, data } = e.to_message() else {
                panic!("an event");
            };
            PoolEvent::Custom {
                worker: "Beta".into(),
                kind,
                data,
            }
        };
        let ok = |rows: u64| {
            pool_event(WorkerEvent::RunFinished(RunFinished {
                world: "Beta".into(),
                rows,
                deltas: 4,
                update_time: t,
                rebased: false,
                unknown_guilds: Vec::new(),
            }))
        };
        let failed = pool_event(WorkerEvent::RunFailed(RunFailed {
            world: "Beta".into(),
            update_time: t,
            error: "HTTP 503".into(),
        }));
        assert!(counters.record(&ok(10)));
        assert!(counters.record(&ok(5)));
        assert!(counters.record(&failed));
        assert!(!counters.record(&PoolEvent::Custom {
            worker: "Beta".into(),
            kind: "run_finished".into(),
            data: serde_json::json!({"status": "Weird Status!"}),
        }));
        assert!(!counters.record(&PoolEvent::Stopped {
            worker: "Beta".into()
        }));
        let vips = VipCounters::default();
        let pass = |fetched: u64, failed: u64, unknown: &[&str]| {
            pool_event(WorkerEvent::VipPass(crate::protocol::VipPass {
                world: "Beta".into(),
                update_time: t,
                watched: 3,
                fetched,
                failed,
                unknown: unknown.iter().map(|u| u.to_string()).collect(),
                deltas: fetched,
                last_fetch: (fetched > 0).then(chrono::Utc::now),
            }))
        };
        assert!(vips.record(&pass(2, 1, &["Ninguém"])));
        assert!(vips.record(&pass(0, 0, &[])));
        assert!(!vips.record(&ok(1)));
        let beta = &vips.snapshot()["Beta"];
        assert_eq!(
            (beta.fetched, beta.failed, beta.unknown_total, beta.watched),
            (2, 1, 1, 3)
        );
        assert!(
            beta.last_fetch.is_some(),
            "kept across a pass that read nothing"
        );
        assert_eq!(beta.unknown, ["Ninguém"]);
        assert_eq!(vips.of_worker("Beta").len(), 1);
        let text = render(&[a, b], &counters.snapshot(), &vips.snapshot());
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let world = "São \"Paulo\"\\x";
        assert_eq!(
            find(&samples, "worldpool_worker_up", &[("world", world)]).map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "worldpool_worker_up", &[("world", "Beta")]).map(|s| s.value),
            Some(0.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_restarts_total",
                &[("world", world)]
            )
            .map(|s| s.value),
            Some(3.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_exits_total",
                &[("world", world), ("reason", "hung")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_exits_total",
                &[("world", "Beta"), ("reason", "cpu_limit")]
            )
            .map(|s| s.value),
            Some(0.0)
        );
        assert!(find(&samples, "worldpool_worker_rss_bytes", &[("world", "Beta")]).is_none());
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", "Beta"), ("status", "ok")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", "Beta"), ("status", "failed")]
            )
            .map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", world), ("status", "ok")]
            )
            .map(|s| s.value),
            Some(0.0)
        );
        assert_eq!(
            find(&samples, "worldpool_rows_total", &[("world", "Beta")]).map(|s| s.value),
            Some(15.0)
        );
        assert_eq!(
            find(&samples, "worldpool_deltas_total", &[("world", "Beta")]).map(|s| s.value),
            Some(8.0)
        );
        assert_eq!(
            find(&samples, "worldpool_workers", &[("state", "fatal")]).map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "worldpool_pool_restarts_total", &[]).map(|s| s.value),
            Some(4.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_pool_exits_total",
                &[("reason", "crashed")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert!(
            find(
                &samples,
                "worldpool_worker_last_success_timestamp_seconds",
                &[("world", "Beta")]
            )
            .is_some_and(|s| s.value > 1.7e9)
        );
        for (result, want) in [("ok", 2.0), ("failed", 1.0), ("unknown", 1.0)] {
            assert_eq!(
                find(
                    &samples,
                    "worldpool_player_pages_total",
                    &[("world", "Beta"), ("result", result)]
                )
                .map(|s| s.value),
                Some(want),
                "{result}"
            );
        }
        assert_eq!(
            find(&samples, "worldpool_watched_players", &[("world", "Beta")]).map(|s| s.value),
            Some(3.0)
        );
    }

    #[test]
    fn validator_rejects_broken_text() {
        let bad = [
            ("m 1", "newline"),
            ("m{a=\"x} 1\n", "unterminated"),
            ("m{a=x} 1\n", "not quoted"),
            ("9m 1\n", "bad metric name"),
            ("m one\n", "bad value"),
            ("m{a=\"1\"} 1\nm{a=\"1\"} 2\n", "duplicate series"),
            ("a 1\nb 1\na 2\n", "not contiguous"),
            ("# TYPE a counter\n# TYPE a gauge\n", "second TYPE"),
            ("# TYPE a counter\na -1\n", "negative"),
            ("a 1\n# TYPE a gauge\n", "after its samples"),
            ("m{a=\"\\t\"} 1\n", "bad escape"),
            ("m{1a=\"x\"} 1\n", "bad label name"),
            ("m 1 notatime\n", "bad timestamp"),
            ("# TYPE a wat\n", "unknown type"),
        ];
        for (text, why) in bad {
            match parse_exposition(text) {
                Ok(s) => panic!("accepted {text:?}: {s:?}"),
                Err(e) => assert!(e.contains(why), "{text:?}: expected `{why}` in `{e}`"),
            }
        }
        let good = "# HELP a x\n# TYPE a counter\na{l=\"q\\\"\\\\\\n\",m=\"\"} 1e3 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\nb NaN\nc +Inf\n";
        let s = parse_exposition(good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].label("l"), Some("q\"\\\n"));
        assert_eq!(s[0].value, 1000.0);
    }
}
