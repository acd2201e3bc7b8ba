//! The pool's request budget in the API: `GET /api/budget` and the
//! `requests`/`in_flight` of each worker in `/api/workers` (its metrics:
//! `metrics/budget.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState};
use crate::budget::{BudgetSnapshot, HostSnapshot};

/// `GET /api/budget`: every host's rate, concurrency, requests in flight
/// and pause, and what each worker used. 404 when the pool does not share
/// a budget (`[site] budget = "worker"`).
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
#[derive(Debug, Serialize)]
struct View<'a> {
    hosts: &'a [HostSnapshot],
    workers: &'a std::collections::BTreeMap<String, crate::budget::HolderUse>,
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

/// `/api/budget` in the OpenAPI document.
pub(super) fn openapi_paths() -> Vec<(String, Value)> {
    vec![(
        "/api/budget".to_string(),
        json!({"get": {
            "operationId": "budget",
            "summary": "The pool's request budget per host: configured and current (AIMD) rate and concurrency, requests in flight and waiting, seconds until a Retry-After pause ends; and per worker the requests granted and in flight.",
            "responses": {
                "200": {"description": "The budget.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Budget"}}}},
                "501": {"description": "No shared budget ([site] budget = \"worker\").", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }}),
    )]
}

/// The fields `/api/workers` gains with the budget and the watcher.
pub(super) fn openapi_worker_fields() -> Vec<(String, Value)> {
    vec![
        (
            "kind".into(),
            json!({"type": "string", "enum": ["scraper", "watcher"], "description": "`watcher`: the pool's status watcher (reads the status page for every world); `scraper`: a world's (or the single) worker."}),
        ),
        (
            "requests".into(),
            json!({"type": "integer", "nullable": true, "description": "Requests the pool's budget granted this worker so far (null without a shared budget)."}),
        ),
        (
            "in_flight".into(),
            json!({"type": "integer", "nullable": true, "description": "Requests of this worker in flight now (null without a shared budget)."}),
        ),
    ]
}

/// The schemas of `/api/budget`.
pub(super) fn openapi_schemas() -> Vec<(String, Value)> {
    vec![(
        "Budget".to_string(),
        json!({"type": "object", "properties": {
            "hosts": {"type": "array", "items": {"type": "object", "properties": {
                "host": {"type": "string", "description": "host:port"},
                "rate_limit": {"type": "number", "nullable": true, "description": "Configured requests/s for the pool; null = unlimited."},
                "rate": {"type": "number", "nullable": true, "description": "Current requests/s after AIMD; null = unlimited."},
                "max_concurrent": {"type": "integer"},
                "concurrency": {"type": "integer", "description": "Current concurrency after AIMD."},
                "factor": {"type": "number", "description": "AIMD factor, 1 = nothing lowered."},
                "in_flight": {"type": "integer"},
                "waiting": {"type": "integer"},
                "paused_for_s": {"type": "number", "nullable": true, "description": "Seconds until a Retry-After pause ends."},
                "requests": {"type": "integer"},
                "pauses": {"type": "integer"},
                "decreases": {"type": "integer"}
            }}},
            "workers": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "requests": {"type": "integer"}, "in_flight": {"type": "integer"}, "waiting": {"type": "integer"}
            }}},
            "reclaimed": {"type": "integer", "description": "Leases taken back from workers that exited holding them."}
        }}),
    )]
}
