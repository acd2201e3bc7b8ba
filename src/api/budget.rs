//! The pool's request budget in the API: `GET /api/budget` and the
//! `requests`/`in_flight` of each worker in `/api/workers` (its metrics:
//! `metrics/budget.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

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
