//! The pool's request budget in the API: `GET /api/budget`, the
//! `requests`/`in_flight` of each worker in `/api/workers`, the
//! `worldpool_host_*` and `worldpool_worker_requests_*` metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::metrics::Writer;
use super::{ApiError, ApiState};
use crate::budget::{BudgetSnapshot, HostSnapshot};

/// `GET /api/budget`: every host's rate, concurrency, requests in flight
/// and pause, and what each worker used. 501 when the pool does not share
/// a budget (`[site] budget = "worker"`).
#[utoipa::path(get, path = "/api/budget", operation_id = "budget",
    summary = "The pool's request budget per host: configured and current (AIMD) rate and concurrency, requests in flight and waiting, seconds until a Retry-After pause ends; and per worker the requests granted and in flight.",
    responses(
        (status = 200, description = "The budget.", body = View),
        (status = 501, description = "No shared budget ([site] budget = \"worker\").", body = super::error::Body),
    ))]
pub(super) async fn budget_handler(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let budget = state.budget.as_ref().ok_or(ApiError::NotSupported(
        "this pool has no shared request budget ([site] budget = \"worker\")".into(),
    ))?;
    Ok(super::json(
        StatusCode::OK,
        &View::of(&budget.snapshot()),
        1024,
    ))
}

/// The body of `/api/budget`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Budget)]
struct View<'a> {
    /// Every host asked for so far.
    hosts: &'a [HostSnapshot],
    /// Per worker.
    workers: &'a std::collections::BTreeMap<String, crate::budget::HolderUse>,
    /// Leases taken back from workers that exited holding them.
    reclaimed: u64,
}

impl<'a> View<'a> {
    fn of(s: &'a BudgetSnapshot) -> View<'a> {
        View {
            hosts: &s.hosts,
            workers: &s.workers,
            reclaimed: s.reclaimed,
        }
    }
}

/// A metric family of hosts: name, type, help, value.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&HostSnapshot) -> f64,
);

/// The budget's metrics, appended to `/metrics`.
pub fn render(s: &BudgetSnapshot) -> String {
    let mut w = Writer {
        out: String::with_capacity(512 + s.workers.len() * 160),
    };
    let host = |h: &HostSnapshot| h.host.clone();
    let families: [Family; 9] = [
        (
            "worldpool_host_rate_limit",
            "gauge",
            "Configured requests per second to the host for the whole pool (+Inf = unlimited).",
            |h| h.rate_limit.unwrap_or(f64::INFINITY),
        ),
        (
            "worldpool_host_rate",
            "gauge",
            "Requests per second the pool may send the host now, after AIMD (+Inf = unlimited).",
            |h| h.rate.unwrap_or(f64::INFINITY),
        ),
        (
            "worldpool_host_concurrency",
            "gauge",
            "Requests the pool may have in flight to the host now, after AIMD.",
            |h| h.concurrency as f64,
        ),
        (
            "worldpool_host_in_flight",
            "gauge",
            "Requests in flight to the host, all workers together.",
            |h| h.in_flight as f64,
        ),
        (
            "worldpool_host_waiting",
            "gauge",
            "Requests waiting for a grant of the host's budget.",
            |h| h.waiting as f64,
        ),
        (
            "worldpool_host_pause_seconds",
            "gauge",
            "Seconds until a Retry-After pause of the host ends (0 = none).",
            |h| h.paused_for_s.unwrap_or(0.0),
        ),
        (
            "worldpool_host_requests_total",
            "counter",
            "Requests granted to the host, all workers together.",
            |h| h.requests as f64,
        ),
        (
            "worldpool_host_pauses_total",
            "counter",
            "Retry-After pauses of the host.",
            |h| h.pauses as f64,
        ),
        (
            "worldpool_host_decreases_total",
            "counter",
            "AIMD decreases of the host's rate and concurrency (429s, repeated 5xx).",
            |h| h.decreases as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        w.family(name, kind, help);
        for h in &s.hosts {
            w.sample(name, &[("host", &host(h))], value(h));
        }
    }
    w.family(
        "worldpool_worker_requests_total",
        "counter",
        "Requests the worker was granted (its pages and status checks, retries included).",
    );
    for (name, u) in &s.workers {
        w.sample(
            "worldpool_worker_requests_total",
            &[("world", name)],
            u.requests as f64,
        );
    }
    w.family(
        "worldpool_worker_requests_in_flight",
        "gauge",
        "Requests of the worker in flight now.",
    );
    for (name, u) in &s.workers {
        w.sample(
            "worldpool_worker_requests_in_flight",
            &[("world", name)],
            u.in_flight as f64,
        );
    }
    w.family(
        "worldpool_budget_reclaimed_total",
        "counter",
        "Leases taken back from workers whose process exited while holding them.",
    );
    w.sample("worldpool_budget_reclaimed_total", &[], s.reclaimed as f64);
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::exposition::parse_exposition;
    use crate::budget::{Budget, Feedback, Limits};
    use std::time::Instant;

    #[test]
    fn budget_metrics_parse_and_carry_the_numbers() {
        let t0 = Instant::now();
        let mut b = Budget::new(Limits {
            rate: 20.0,
            max_concurrent: 4,
        });
        b.acquire("Aurera", "127.0.0.1:80", 1, 0);
        b.acquire("watcher", "127.0.0.1:80", 1, i32::MAX);
        assert_eq!(b.poll(t0).len(), 1);
        b.release(
            "watcher",
            "127.0.0.1:80",
            1,
            Some(Feedback {
                status: Some(429),
                retry_after_ms: Some(2_000),
                failed: false,
            }),
            t0,
        );
        let text = render(&b.snapshot(t0));
        let samples = parse_exposition(&text).expect("valid exposition text");
        let value = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.value)
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        assert_eq!(value("worldpool_host_rate_limit"), 20.0);
        assert_eq!(value("worldpool_host_rate"), 10.0);
        assert_eq!(value("worldpool_host_pause_seconds"), 2.0);
        assert_eq!(value("worldpool_host_waiting"), 1.0);
        assert_eq!(value("worldpool_host_requests_total"), 1.0);
        assert_eq!(value("worldpool_worker_requests_total"), 1.0);
        let unlimited = render(
            &Budget::new(Limits {
                rate: 0.0,
                max_concurrent: 1,
            })
            .snapshot(t0),
        );
        assert!(parse_exposition(&unlimited).is_ok());
    }
}
