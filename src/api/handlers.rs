//! worldpool's own endpoints (workers, control verbs, scraper status,
//! events, metrics, readiness, runs and deltas, OpenAPI) and the helpers
//! they share (JSON bodies, parameters, pages).

use super::*;

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

#[derive(Serialize)]
pub(super) struct ControlAnswer<'a> {
    world: &'a str,
    action: &'static str,
    state: pool::StateName,
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

pub(super) async fn events_handler(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = parse_query(query.as_deref(), &["world", "samples"])?;
    let world = params.remove("world");
    let samples = events::samples_param(params.get("samples").map(String::as_str))?;
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
            &serde_json::json!({"status": "ready", "store": store}),
            64,
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": "not_ready",
                "message": reasons.join("; "),
                "reasons": reasons,
                "store": store,
            }),
            256,
        )
    }
}

/// Parse a query string; unknown or repeated parameters are errors.
pub(super) fn parse_query(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::bad_param(
                &k,
                format!("unknown parameter; accepted: {}", allowed.join(", ")),
            ));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(ApiError::bad_param(&k, "given more than once"));
        }
    }
    Ok(out)
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

#[derive(Serialize)]
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

pub(super) async fn runs_handler(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = parse_query(query.as_deref(), &["world", "limit", "before"])?;
    let world = name_param("world", params.remove("world"))?;
    let limit = limit_param(params.get("limit").map(String::as_str))?;
    let before = before_param(params.get("before").map(String::as_str))?;
    let store = state.store().ok_or(ApiError::NoStore)?;
    let rows = tokio::time::timeout(STORE_TIMEOUT, store.runs(world.as_deref(), limit, before))
        .await
        .map_err(|_| ApiError::store(&"runs query timed out"))?
        .map_err(|e| ApiError::store(&e))?;
    Ok(page(&rows, limit, |r| r.id))
}

pub(super) async fn deltas_handler(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = parse_query(query.as_deref(), &["world", "guild", "limit", "before"])?;
    let world = name_param("world", params.remove("world"))?;
    let guild = name_param("guild", params.remove("guild"))?;
    let limit = limit_param(params.get("limit").map(String::as_str))?;
    let before = before_param(params.get("before").map(String::as_str))?;
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
