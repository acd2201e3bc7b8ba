//! worldpool's own endpoints (workers, control verbs, scraper status,
//! events, metrics, readiness, runs and deltas, OpenAPI) and the helpers
//! they share (JSON bodies, parameters, pages).

use super::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::Body as ErrorBody;
use super::query::Strict;

/// What a control endpoint needs, in /api/openapi.json.
const CONTROL_AUTH: &str = "Queued per worker: never refused because another request for the same worker is in progress. With a token configured, needs `Authorization: Bearer <WORLDPOOL_API_TOKEN>`; without one, on a loopback bind, clients of this machine need none.";

/// Serialize to a JSON response straight into one buffer.
pub(super) fn json<T: Serialize>(status: StatusCode, value: &T, capacity: usize) -> Response {
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(e) => ApiError::internal("cannot serialize a response", &e).into_response(),
    }
}

pub(super) fn world_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(world)) => Ok(world),
        Err(e) => Err(ApiError::bad_param(
            "world",
            format!("not a valid URL-encoded UTF-8 name ({})", e.body_text()),
        )),
    }
}

pub(super) fn json_bytes(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Every worker (or only `world`'s) as `/api/workers` shows them, with
/// their watched players and budget use, as a JSON array.
pub(super) fn worker_list(
    state: &ApiState,
    world: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    let snapshot = state.control().workers();
    let budget = state.budget.as_ref().map(|b| b.snapshot());
    let now = Utc::now();
    let vips = &state.inner.shared.vips;
    let views: Vec<views::WorkerView<'_>> = snapshot
        .iter()
        .filter(|w| world.is_none_or(|name| name == w.name))
        .map(|w| {
            views::WorkerView::new(w, now, false)
                .with_watched(views::WatchedView::of(&vips.of_worker(&w.name)))
                .with_unknown_guilds(state.inner.shared.runs.unknown_guilds_of(&w.name))
                .with_budget(budget.as_ref().map(|b| b.workers.get(&w.name)))
        })
        .collect();
    let mut buf = Vec::with_capacity(64 + snapshot.len() * 768);
    serde_json::to_writer(&mut buf, &views)?;
    Ok(buf)
}

/// Every worker, in config order.
#[utoipa::path(get, path = "/api/workers", operation_id = "listWorkers",
    responses((status = 200, description = "Workers.", body = Vec<views::WorkerView>)))]
pub(super) async fn list_workers(State(state): State<ApiState>) -> Response {
    let shared = &state.inner.shared;
    let ttl = state.workers_ttl;
    // Read the generation before the snapshot: an event arriving meanwhile
    // makes this body stale at once.
    let generation = shared.generation.load(Ordering::Acquire);
    if !ttl.is_zero()
        && let Some(body) = shared.workers_cache.get(generation, ttl)
    {
        return json_bytes(body);
    }
    let built = Instant::now();
    let buf = match worker_list(&state, None) {
        Ok(buf) => buf,
        Err(e) => {
            return ApiError::internal("cannot serialize the worker list", &e).into_response();
        }
    };
    let body = Bytes::from(buf);
    if !ttl.is_zero() {
        shared.workers_cache.put(generation, built, body.clone());
    }
    json_bytes(body)
}

/// One worker, with its recent exits.
#[utoipa::path(get, path = "/api/workers/{world}", operation_id = "getWorker",
    params(WorldPath),
    responses(
        (status = 200, description = "The worker.", body = views::WorkerView),
        (status = 400, description = "The name is not valid URL-encoded UTF-8.", body = ErrorBody),
        (status = 404, description = "Unknown world.", body = ErrorBody),
    ))]
pub(super) async fn one_worker(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let world = world_param(path)?;
    let w = state
        .control()
        .worker(&world)
        .ok_or(ApiError::UnknownWorker(world))?;
    let watched = views::WatchedView::of(&state.inner.shared.vips.of_worker(&w.name));
    let budget = state.budget.as_ref().map(|b| b.snapshot());
    Ok(json(
        StatusCode::OK,
        &views::WorkerView::new(&w, Utc::now(), true)
            .with_watched(watched)
            .with_unknown_guilds(state.inner.shared.runs.unknown_guilds_of(&w.name))
            .with_budget(budget.as_ref().map(|b| b.workers.get(&w.name))),
        2048,
    ))
}

/// The `{world}` of a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct WorldPath {
    /// World (worker) name, URL-encoded (spaces and accents allowed).
    world: String,
}

/// What a control verb did.
#[derive(Serialize, ToSchema)]
#[schema(as = ControlResult)]
pub(super) struct ControlAnswer<'a> {
    world: &'a str,
    #[schema(value_type = ControlAction)]
    action: &'static str,
    #[schema(value_type = views::WorkerState)]
    state: pool::StateName,
}

/// The verb of a control answer (`Verb::as_str`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(super) enum ControlAction {
    Restart,
    Stop,
    Start,
}

/// The failures of a control verb. (An `IntoResponses`' schemas are not
/// collected: its bodies are the `Error` every path names.)
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(super) enum ControlErrors<'a> {
    /// Missing or wrong token.
    #[response(status = 401)]
    Unauthorized(ErrorBody<'a>),
    /// No token configured and the API not served on loopback only
    /// (`control_disabled`: set WORLDPOOL_API_TOKEN), or, without a token,
    /// a page of another origin (`foreign_origin`).
    #[response(status = 403)]
    Forbidden(ErrorBody<'a>),
    /// Unknown world.
    #[response(status = 404)]
    UnknownWorld(ErrorBody<'a>),
    /// The pool is shutting down.
    #[response(status = 503)]
    ShuttingDown(ErrorBody<'a>),
}

/// Restart a worker.
#[utoipa::path(post, path = "/api/workers/{world}/restart", operation_id = "restartWorker",
    description = CONTROL_AUTH, security(("bearer" = [])), params(WorldPath),
    responses((status = 202, description = "The action ran; the resulting state.", body = ControlAnswer), ControlErrors))]
pub(super) async fn restart_worker(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    control(Verb::Restart, state, path, headers).await
}

/// Stop a worker; it stays stopped until started.
#[utoipa::path(post, path = "/api/workers/{world}/stop", operation_id = "stopWorker",
    description = CONTROL_AUTH, security(("bearer" = [])), params(WorldPath),
    responses((status = 202, description = "The action ran; the resulting state.", body = ControlAnswer), ControlErrors))]
pub(super) async fn stop_worker(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    control(Verb::Stop, state, path, headers).await
}

/// Start a stopped or fatal worker.
#[utoipa::path(post, path = "/api/workers/{world}/start", operation_id = "startWorker",
    description = CONTROL_AUTH, security(("bearer" = [])), params(WorldPath),
    responses((status = 202, description = "The action ran; the resulting state.", body = ControlAnswer), ControlErrors))]
pub(super) async fn start_worker(
    state: State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    control(Verb::Start, state, path, headers).await
}

pub(super) async fn control(
    verb: Verb,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Authorization first: without it, the API does not even confirm
    // which worker names exist.
    authorize(&state, &headers)?;
    let world = world_param(path)?;
    tracing::info!(world = %world, action = verb.as_str(), "control request");
    // Run the verb in its own task: a client that hangs up must not
    // cancel a stop or restart half-way.
    let control = state.inner.control.clone();
    let name = world.clone();
    let result = tokio::spawn(async move { control.apply(verb, &name).await })
        .await
        .unwrap_or_else(|e| Err(ControlError::Failed(format!("control task failed: {e}"))));
    // The list must show the outcome right away, even before the pool's
    // events reach the event task.
    state.inner.shared.generation.fetch_add(1, Ordering::AcqRel);
    match result {
        Ok(new_state) => Ok(json(
            StatusCode::ACCEPTED,
            &ControlAnswer {
                world: &world,
                action: verb.as_str(),
                state: new_state,
            },
            128,
        )),
        Err(ControlError::UnknownWorker(name)) => Err(ApiError::UnknownWorker(name)),
        Err(ControlError::ShuttingDown) => Err(ApiError::ShuttingDown),
        Err(ControlError::Failed(cause)) => Err(ApiError::internal(
            &format!("{} of `{world}` failed", verb.as_str()),
            &cause,
        )),
        Err(ControlError::Unsupported(what)) => Err(ApiError::NotSupported(what)),
    }
}

/// `/api/scraper-status`, which the replaced pages poll: built from the
/// pool's snapshot and the last run event, and reused like `/api/workers`'
/// body until a pool event or `workers_ttl`.
#[utoipa::path(get, path = "/api/scraper-status", operation_id = "scraperStatus",
    summary = "Status of the pool as a whole, compatible with the replaced scraper's endpoint.",
    responses((status = 200, description = "Status.", body = views::ScraperStatus)))]
pub(super) async fn scraper_status(State(state): State<ApiState>) -> Response {
    let shared = &state.inner.shared;
    let ttl = state.workers_ttl;
    let generation = shared.generation.load(Ordering::Acquire);
    if !ttl.is_zero()
        && let Some(body) = shared.status_cache.get(generation, ttl)
    {
        return json_bytes(body);
    }
    let built = Instant::now();
    let snapshot = state.control().workers();
    let mut status = views::ScraperStatus::of(&snapshot, state.compat().site_offset);
    status.last_update = state.last_update().await.map(crate::legacy::iso);
    let mut buf = Vec::with_capacity(256);
    if let Err(e) = serde_json::to_writer(&mut buf, &status) {
        return ApiError::internal("cannot serialize the scraper status", &e).into_response();
    }
    let body = Bytes::from(buf);
    if !ttl.is_zero() {
        shared.status_cache.put(generation, built, body.clone());
    }
    json_bytes(body)
}

/// `/api/events`' parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Only this worker's events.
    world: Option<String>,
    /// Also send a `samples` event every this many seconds (0.2 to 60):
    /// `{event, at, workers}` with the workers as /api/workers shows them.
    #[param(value_type = Option<f64>, minimum = 0.2, maximum = 60)]
    samples: Option<String>,
}

/// Server-Sent Events: started, ready, exited, backoff, fatal, stopped,
/// phase, run_finished (and other worker events). A consumer that falls
/// behind gets a `lagged` event and is disconnected.
#[utoipa::path(get, path = "/api/events", operation_id = "events",
    params(EventsQuery),
    responses(
        (status = 200, description = "An event stream; each `data` is the event as JSON with an `event` tag.", content_type = "text/event-stream", body = String),
        (status = 400, description = "Unknown query parameter.", body = ErrorBody),
        (status = 404, description = "Unknown world.", body = ErrorBody),
    ))]
pub(super) async fn events_handler(
    State(state): State<ApiState>,
    Strict(query): Strict<EventsQuery>,
) -> Result<Response, ApiError> {
    let world = query.world;
    let samples = events::samples_param(query.samples.as_deref())?;
    if let Some(w) = &world
        && state.control().worker(w).is_none()
    {
        return Err(ApiError::UnknownWorker(w.clone()));
    }
    let rx = state.control().subscribe();
    let samples = samples.map(|every| {
        let state = state.clone();
        let list: events::WorkerList = Arc::new(move |world| {
            worker_list(&state, world).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot serialize worker samples");
                b"[]".to_vec()
            })
        });
        (list, every)
    });
    let app = Some(state.app_events.subscribe());
    Ok(events::sse_response(rx, app, world, samples, state.shutdown.clone()).into_response())
}

/// Prometheus text: per worker up, state, restarts, exits by reason, CPU,
/// RSS, uptime, last success/check; runs by status, rows and deltas per
/// world; pool totals.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain", body = String)))]
pub(super) async fn metrics_handler(State(state): State<ApiState>) -> Response {
    let snapshot = state.control().workers();
    let mut text = metrics::render(
        &snapshot,
        &state.run_counters().snapshot(),
        &state.vip_counters().snapshot(),
    );
    text.push_str(&metrics::reload::render(
        state.reload.as_ref().map(|r| r.stats()),
    ));
    if let Some(b) = &state.budget {
        text.push_str(&metrics::budget::render(&b.snapshot()));
    }
    if let Some(c) = &state.cluster {
        text.push_str(&metrics::cluster::render(&c.view()));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `/readyz` when ready.
#[derive(Serialize, ToSchema)]
pub(super) struct Ready<'a> {
    /// `ready`.
    status: &'a str,
    #[schema(value_type = health::StoreCheckName)]
    store: &'a str,
}

/// `/readyz` when not ready.
#[derive(Serialize, ToSchema)]
pub(super) struct NotReady<'a> {
    /// `not_ready`.
    error: &'a str,
    /// The reasons, joined.
    message: String,
    /// Why not ready: each fatal worker, the store.
    reasons: &'a [String],
    #[schema(value_type = health::StoreCheckName)]
    store: &'a str,
}

/// Ready: no worker fatal and the store (if any) answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Not ready; `reasons` lists why.", body = NotReady),
    ))]
pub(super) async fn readyz(State(state): State<ApiState>) -> Response {
    let mut reasons = Vec::new();
    for w in state.control().workers() {
        if w.state == pool::StateName::Fatal {
            match &w.fatal_reason {
                Some(why) => reasons.push(format!("worker `{}` is fatal: {why}", w.name)),
                None => reasons.push(format!("worker `{}` is fatal", w.name)),
            }
        }
    }
    let store = health::check_store(&state).await;
    if store == health::StoreCheck::Unreachable {
        reasons.push("the store is unreachable".to_string());
    }
    let store = store.as_str();
    if reasons.is_empty() {
        json(
            StatusCode::OK,
            &Ready {
                status: "ready",
                store,
            },
            64,
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &NotReady {
                error: "not_ready",
                message: reasons.join("; "),
                reasons: &reasons,
                store,
            },
            256,
        )
    }
}

/// `limit`: 1 or more, capped at [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
pub(super) fn limit_param(v: Option<&str>) -> Result<u32, ApiError> {
    match v {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.min(u64::from(MAX_LIMIT)) as u32),
            _ => Err(ApiError::bad_param(
                "limit",
                format!(
                    "must be a whole number of at least 1 (values above {MAX_LIMIT} are capped)"
                ),
            )),
        },
    }
}

/// `before`: a positive row id.
pub(super) fn before_param(v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::bad_param(
                "before",
                "must be a row id (a whole number of at least 1), e.g. the `next_before` of the previous page",
            )),
        },
    }
}

/// A free-text filter: non-empty, at most 200 characters.
pub(super) fn name_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() || s.chars().count() > 200 => Err(ApiError::bad_param(
            name,
            "must be a non-empty name of at most 200 characters",
        )),
        Some(s) => Ok(Some(s)),
    }
}

/// A page of rows, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct Page<'a, T> {
    items: &'a [T],
    /// Pass as `before` to get the next (older) page; null on the last page.
    next_before: Option<i64>,
}

/// The `before` of the next page: the last id of a full page, else none.
pub(super) fn next_before<T>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Option<i64> {
    if items.len() >= limit as usize {
        items.last().map(id)
    } else {
        None
    }
}

pub(super) fn page<T: Serialize>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Response {
    let next_before = next_before(items, limit, id);
    json(
        StatusCode::OK,
        &Page { items, next_before },
        64 + items.len() * 256,
    )
}

/// `/api/runs`' and `/api/deltas`' parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeltasQuery {
    /// Only this world.
    world: Option<String>,
    /// Only this guild (`/api/deltas` only).
    guild: Option<String>,
    /// Rows per page, default 50, capped at 500.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
    /// Only rows with an id below this (use `next_before` of the previous page).
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
}

/// `/api/runs`' parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RunsQuery {
    /// Only this world.
    world: Option<String>,
    /// Rows per page, default 50, capped at 500.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
    /// Only rows with an id below this (use `next_before` of the previous page).
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
}

/// Scrape runs, newest first.
#[utoipa::path(get, path = "/api/runs", operation_id = "listRuns",
    params(RunsQuery),
    responses(
        (status = 200, description = "A page of runs.", body = Page<crate::store::RunRow>),
        (status = 400, description = "A bad parameter (named in the message).", body = ErrorBody),
        (status = 503, description = "No store configured, or the store is unreachable.", body = ErrorBody),
    ))]
pub(super) async fn runs_handler(
    State(state): State<ApiState>,
    Strict(query): Strict<RunsQuery>,
) -> Result<Response, ApiError> {
    let world = name_param("world", query.world)?;
    let limit = limit_param(query.limit.as_deref())?;
    let before = before_param(query.before.as_deref())?;
    let store = state.store().ok_or(ApiError::NoStore)?;
    let rows = tokio::time::timeout(STORE_TIMEOUT, store.runs(world.as_deref(), limit, before))
        .await
        .map_err(|_| ApiError::store(&"runs query timed out"))?
        .map_err(|e| ApiError::store(&e))?;
    Ok(page(&rows, limit, |r| r.id))
}

/// Experience deltas, newest first.
#[utoipa::path(get, path = "/api/deltas", operation_id = "listDeltas",
    params(DeltasQuery),
    responses(
        (status = 200, description = "A page of deltas.", body = Page<crate::store::DeltaRow>),
        (status = 400, description = "A bad parameter (named in the message).", body = ErrorBody),
        (status = 503, description = "No store configured, or the store is unreachable.", body = ErrorBody),
    ))]
pub(super) async fn deltas_handler(
    State(state): State<ApiState>,
    Strict(query): Strict<DeltasQuery>,
) -> Result<Response, ApiError> {
    let world = name_param("world", query.world)?;
    let guild = name_param("guild", query.guild)?;
    let limit = limit_param(query.limit.as_deref())?;
    let before = before_param(query.before.as_deref())?;
    let store = state.store().ok_or(ApiError::NoStore)?;
    let rows = tokio::time::timeout(
        STORE_TIMEOUT,
        store.deltas(world.as_deref(), guild.as_deref(), limit, before),
    )
    .await
    .map_err(|_| ApiError::store(&"deltas query timed out"))?
    .map_err(|e| ApiError::store(&e))?;
    Ok(page(&rows, limit, |r| r.id))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3 JSON.", content_type = "application/json")))]
pub(super) async fn openapi_handler() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi::document(),
    )
        .into_response()
}
