//! `GET /healthz` and `GET /memusage` in the replaced system's shapes, from
//! the pool's real state, and the store check `/readyz` shares.
//!
//! - `/healthz` → `{status: healthy|degraded|unhealthy, checks: {...},
//!   reason?}`: [`assess`] decides from the worker snapshot and the store's
//!   answer (pure, table-tested). 200 while healthy or degraded, 503 when
//!   unhealthy (as the replaced app did).
//! - `/memusage` → `{process: {rss_mb, percent, ...}, system: {...}}`:
//!   `process` is the whole pool (the supervisor, read now, plus every live
//!   worker as the sampler last measured it), `system` the machine
//!   (`/proc/meminfo`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use pool::{StateName, WorkerStatus};
use serde::Serialize;

use super::{ApiError, ApiState, PING_TIMEOUT, json, views};

/// What the store said when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCheck {
    /// No store is configured.
    NotConfigured,
    /// It answered.
    Ok,
    /// It failed or did not answer within the timeout.
    Unreachable,
}

impl StoreCheck {
    /// As `/readyz` and `/healthz` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreCheck::NotConfigured => "not_configured",
            StoreCheck::Ok => "ok",
            StoreCheck::Unreachable => "unreachable",
        }
    }
}

/// `store` as `/readyz` and `/healthz` write it ([`StoreCheck::as_str`]),
/// in /api/openapi.json.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(super) enum StoreCheckName {
    Ok,
    NotConfigured,
    Unreachable,
}

/// Ping the store in force (at most [`PING_TIMEOUT`]); failures are logged.
pub(super) async fn check_store(state: &ApiState) -> StoreCheck {
    let Some(store) = state.store() else {
        return StoreCheck::NotConfigured;
    };
    match tokio::time::timeout(PING_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => StoreCheck::Ok,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store ping failed");
            StoreCheck::Unreachable
        }
        Err(_) => {
            tracing::warn!("health: store ping timed out");
            StoreCheck::Unreachable
        }
    }
}

/// The verdict of `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every worker runs (or was stopped on purpose) and the store answers.
    Healthy,
    /// Something needs a look, but workers still scrape.
    Degraded,
    /// Nothing scrapes: no worker process is alive and some have failed.
    Unhealthy,
}

/// Why the pool is not healthy, worker by worker, then the store.
pub fn assess(workers: &[WorkerStatus], store: StoreCheck) -> (HealthStatus, Vec<String>) {
    let mut reasons = Vec::new();
    let mut failing = 0usize;
    for w in workers {
        match w.state {
            StateName::Fatal => {
                failing += 1;
                reasons.push(match &w.fatal_reason {
                    Some(why) => format!("worker `{}` is fatal: {why}", w.name),
                    None => format!("worker `{}` is fatal", w.name),
                });
            }
            StateName::Backoff => {
                failing += 1;
                let after = w
                    .last_exit
                    .as_ref()
                    .map(|e| format!(" after its run ended `{}`", e.reason.as_str()))
                    .unwrap_or_default();
                let next = w
                    .next_restart_at
                    .map(|t| format!(", next start at {}", t.format("%H:%M:%S UTC")))
                    .unwrap_or_default();
                reasons.push(format!("worker `{}` is backing off{after}{next}", w.name));
            }
            _ => {}
        }
    }
    if store == StoreCheck::Unreachable {
        reasons.push("the store does not answer".to_string());
    }
    let alive = workers.iter().any(|w| w.pid.is_some());
    let status = if failing > 0 && !alive {
        HealthStatus::Unhealthy
    } else if reasons.is_empty() {
        HealthStatus::Healthy
    } else {
        HealthStatus::Degraded
    };
    (status, reasons)
}

/// `checks` of `/healthz`: flat values (the replaced page lists each).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Checks<'a> {
    /// Some worker process exists (the replaced app's scraper thread).
    scraper_alive: bool,
    /// The busiest phase, as `/api/scraper-status` says it.
    scraper_state: &'a str,
    workers: usize,
    workers_running: usize,
    workers_backoff: usize,
    workers_fatal: usize,
    /// `ok`, `unreachable` or `not_configured`.
    #[schema(value_type = StoreCheckName)]
    store: &'static str,
    /// The store answered (false when unreachable or not configured).
    database_accessible: bool,
    /// The newest update time of the deltas, site-local like the replaced
    /// app wrote it.
    last_update: Option<String>,
}

/// The whole `/healthz` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Health<'a> {
    status: HealthStatus,
    checks: Checks<'a>,
    /// Why not healthy: each fatal or backing-off worker, the store;
    /// absent when healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// When this was assessed (RFC 3339).
    timestamp: DateTime<Utc>,
}

/// The pool's health in the replaced system's shape: `degraded` when a
/// worker is fatal or backing off or the store does not answer (`reason`
/// says which), `unhealthy` when no worker process is alive and some have
/// failed.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "compatibility",
    responses(
        (status = 200, description = "Healthy or degraded.", body = Health),
        (status = 503, description = "Unhealthy.", body = Health),
    ))]
pub(super) async fn healthz(State(state): State<ApiState>) -> Response {
    let workers = state.control().workers();
    let store = check_store(&state).await;
    let (status, reasons) = assess(&workers, store);
    let count = |s: StateName| workers.iter().filter(|w| w.state == s).count();
    let last_update = match store {
        StoreCheck::Ok => state.last_update().await.map(crate::legacy::iso),
        _ => None,
    };
    let health = Health {
        status,
        checks: Checks {
            scraper_alive: workers.iter().any(|w| w.pid.is_some()),
            scraper_state: views::ScraperStatus::of(&workers, state.compat().site_offset).state,
            workers: workers.len(),
            workers_running: count(StateName::Running),
            workers_backoff: count(StateName::Backoff),
            workers_fatal: count(StateName::Fatal),
            store: store.as_str(),
            database_accessible: store == StoreCheck::Ok,
            last_update,
        },
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        timestamp: Utc::now(),
    };
    let code = match status {
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    json(code, &health, 512)
}

// ----- memory --------------------------------------------------------------

/// The machine's memory from `/proc/meminfo`: (total, available) bytes.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kb * 1024)
        })
    };
    let total = field("MemTotal")?;
    // Kernels before 3.14 lack MemAvailable: free + page cache approximates it.
    let available =
        field("MemAvailable").or_else(|| Some(field("MemFree")? + field("Cached").unwrap_or(0)))?;
    Some((total, available.min(total)))
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = MIB * 1024.0;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round2(part as f64 * 100.0 / whole as f64)
    }
}

/// `process` of `/memusage`: the pool.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PoolMemory {
    /// Sum of the resident sets of the supervisor and its live workers
    /// (pages shared between them, such as the binary's, count once per
    /// process).
    pub rss_bytes: u64,
    /// The same in MiB, 2 decimals.
    pub rss_mb: f64,
    /// `rss_bytes` as a percentage of the machine's memory, 2 decimals.
    pub percent: f64,
    /// Sum of the proportional set sizes: what the pool really costs.
    pub pss_bytes: u64,
    /// The same in MiB.
    pub pss_mb: f64,
    /// `pss_bytes` as a percentage of the machine's memory.
    pub pss_percent: f64,
    /// Processes counted (the supervisor and the live workers measured).
    pub processes: usize,
    /// The supervisor alone.
    pub supervisor_rss_bytes: u64,
    /// The supervisor alone.
    pub supervisor_pss_bytes: u64,
}

/// `system` of `/memusage`.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SystemMemory {
    /// MemTotal.
    pub total_bytes: u64,
    /// In MiB.
    pub total_mb: f64,
    /// In GiB.
    pub total_gb: f64,
    /// MemAvailable.
    pub available_bytes: u64,
    /// In MiB.
    pub available_mb: f64,
    /// In GiB.
    pub available_gb: f64,
    /// Total − available.
    pub used_bytes: u64,
    /// In MiB.
    pub used_mb: f64,
    /// In GiB.
    pub used_gb: f64,
    /// Used as a percentage of total.
    pub percent: f64,
}

/// The whole `/memusage` answer.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MemUsage {
    /// The pool.
    pub process: PoolMemory,
    /// The machine.
    pub system: SystemMemory,
}

/// Add up the supervisor's memory and each live worker's last sample.
pub fn mem_usage(
    supervisor: pool::Memory,
    workers: &[WorkerStatus],
    (total, available): (u64, u64),
) -> MemUsage {
    let measured: Vec<(u64, u64)> = workers
        .iter()
        .filter(|w| w.pid.is_some())
        .filter_map(|w| Some((w.rss_bytes?, w.pss_bytes.or(w.rss_bytes)?)))
        .collect();
    let rss = supervisor.rss + measured.iter().map(|m| m.0).sum::<u64>();
    let pss = supervisor.pss + measured.iter().map(|m| m.1).sum::<u64>();
    let used = total.saturating_sub(available);
    MemUsage {
        process: PoolMemory {
            rss_bytes: rss,
            rss_mb: round2(rss as f64 / MIB),
            percent: percent(rss, total),
            pss_bytes: pss,
            pss_mb: round2(pss as f64 / MIB),
            pss_percent: percent(pss, total),
            processes: 1 + measured.len(),
            supervisor_rss_bytes: supervisor.rss,
            supervisor_pss_bytes: supervisor.pss,
        },
        system: SystemMemory {
            total_bytes: total,
            total_mb: round2(total as f64 / MIB),
            total_gb: round2(total as f64 / GIB),
            available_bytes: available,
            available_mb: round2(available as f64 / MIB),
            available_gb: round2(available as f64 / GIB),
            used_bytes: used,
            used_mb: round2(used as f64 / MIB),
            used_gb: round2(used as f64 / GIB),
            percent: percent(used, total),
        },
    }
}

/// Memory of the pool (supervisor + live workers: RSS and PSS sums) and of
/// the machine (/proc/meminfo), in the replaced system's shape.
#[utoipa::path(get, path = "/memusage", operation_id = "memusage", tag = "compatibility",
    responses(
        (status = 200, description = "Memory.", body = MemUsage),
        (status = 500, description = "/proc could not be read.", body = super::error::Body),
    ))]
pub(super) async fn memusage(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let workers = state.control().workers();
    // Two small /proc reads: off the async threads.
    let read = tokio::task::spawn_blocking(|| {
        let supervisor = pool::procfs::memory(std::process::id());
        let meminfo = std::fs::read_to_string("/proc/meminfo");
        (supervisor, meminfo)
    })
    .await
    .map_err(|e| ApiError::internal("memory usage task failed", &e))?;
    let (supervisor, meminfo) = read;
    let supervisor = supervisor.ok_or_else(|| {
        ApiError::internal(
            "cannot read the supervisor's memory",
            &"/proc/self/smaps_rollup unreadable",
        )
    })?;
    let machine = meminfo
        .map_err(|e| ApiError::internal("cannot read /proc/meminfo", &e))
        .and_then(|text| {
            parse_meminfo(&text)
                .ok_or_else(|| ApiError::internal("cannot read /proc/meminfo", &"no MemTotal"))
        })?;
    Ok(json(
        StatusCode::OK,
        &mem_usage(supervisor, &workers, machine),
        768,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Control as _;
    use crate::api::fake::FakeControl;

    fn pool3() -> Vec<WorkerStatus> {
        let fake = FakeControl::new(&["A", "B", "C"]);
        fake.workers()
    }

    #[test]
    fn health_from_the_pool_and_the_store() {
        let ok = pool3();
        assert_eq!(assess(&ok, StoreCheck::Ok), (HealthStatus::Healthy, vec![]));
        assert_eq!(
            assess(&ok, StoreCheck::NotConfigured).0,
            HealthStatus::Healthy
        );
        let (s, r) = assess(&ok, StoreCheck::Unreachable);
        assert_eq!(s, HealthStatus::Degraded);
        assert_eq!(r, ["the store does not answer"]);

        // One fatal, one backing off, one running: degraded, both named.
        let mut some = pool3();
        some[0].state = StateName::Fatal;
        some[0].pid = None;
        some[0].fatal_reason = Some("11 restarts within 60s".into());
        some[1].state = StateName::Backoff;
        some[1].pid = None;
        let (s, r) = assess(&some, StoreCheck::Ok);
        assert_eq!(s, HealthStatus::Degraded);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("`A` is fatal: 11 restarts"), "{r:?}");
        assert!(r[1].contains("`B` is backing off"), "{r:?}");

        // Nothing alive and failures: unhealthy.
        some[2].state = StateName::Fatal;
        some[2].pid = None;
        assert_eq!(assess(&some, StoreCheck::Ok).0, HealthStatus::Unhealthy);
        // Stopped on purpose is not a failure.
        let mut stopped = pool3();
        for w in &mut stopped {
            w.state = StateName::Stopped;
            w.pid = None;
        }
        assert_eq!(assess(&stopped, StoreCheck::Ok).0, HealthStatus::Healthy);
        assert_eq!(assess(&[], StoreCheck::Ok).0, HealthStatus::Healthy);
    }

    #[test]
    fn meminfo_and_memory_sums() {
        let text = "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    6000000 kB\nCached: 5 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some((8_000_000 * 1024, 6_000_000 * 1024))
        );
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\n";
        assert_eq!(parse_meminfo(old), Some((1000 * 1024, 400 * 1024)));
        assert_eq!(parse_meminfo("nothing"), None);

        let mut workers = pool3();
        workers[2].pid = None; // not alive: not counted
        let sup = pool::Memory {
            rss: 10 * 1024 * 1024,
            pss: 4 * 1024 * 1024,
            ..pool::Memory::default()
        };
        let m = mem_usage(sup, &workers, (1024 * 1024 * 1024, 512 * 1024 * 1024));
        let w = workers[0].rss_bytes.unwrap_or(0);
        let wp = workers[0].pss_bytes.unwrap_or(0);
        assert!(w > 0 && wp > 0);
        assert_eq!(m.process.processes, 3);
        assert_eq!(m.process.rss_bytes, sup.rss + 2 * w);
        assert_eq!(m.process.pss_bytes, sup.pss + 2 * wp);
        assert_eq!(m.system.used_mb, 512.0);
        assert_eq!(m.system.percent, 50.0);
        assert_eq!(m.system.total_gb, 1.0);
        assert_eq!(
            m.process.percent,
            round2(m.process.rss_bytes as f64 * 100.0 / (1024.0 * 1024.0 * 1024.0))
        );
    }
}
