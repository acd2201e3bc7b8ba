//! The REST API (axum) and `worldpool status`.
//!
//! [`app`] builds the router over an [`ApiState`] (a [`Control`], an
//! optional [`Store`] and an optional control token); [`serve`] binds it and
//! runs it until a cancellation token fires. Read endpoints need no
//! credentials; the control endpoints (`POST /api/workers/{world}/{restart,stop,start}`,
//! `/api/reload`, `/api/manual-update`, `/api/vip/{add,remove}`) need `Authorization: Bearer
//! $WORLDPOOL_API_TOKEN` when a token is configured, and nothing from this machine's
//! clients on a loopback bind without one (`authorize`). Every error is `{"error": code, "message": text,
//! "status": http status}` ([`ApiError`]). The replaced system's data API
//! lives in [`compat`] (settings from the config: [`CompatSettings`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::trace::TraceLayer;

use crate::store::Store;

pub mod budget;
pub mod client;
mod compat;
pub mod control;
pub mod dashboard;
mod error;
pub mod events;
#[cfg(any(test, feature = "test-support"))]
pub mod exposition;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
mod guard;
pub mod health;
pub mod metrics;
mod openapi;
mod reload;
pub mod server;
mod table;
pub mod views;

pub use compat::{CompatSettings, ConfiguredWorld};
pub use control::{BoxFuture, Control, ControlError, Verb};
pub use error::ApiError;
pub use guard::AllowedHosts;
pub use server::ServerLimits;
pub use table::{HostRow, Row, fetch_hosts, fetch_rows, render_hosts, render_table};

/// Environment variable holding the control token.
pub const TOKEN_ENV: &str = crate::config::API_TOKEN_ENV;

/// Default number of rows of `/api/runs` and `/api/deltas`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page of `/api/runs` and `/api/deltas`; larger `limit`s are capped.
pub const MAX_LIMIT: u32 = 500;

/// Default reuse time of a serialized `/api/workers` body (see
/// [`ApiState::with_workers_cache`]). Pool events invalidate it at once;
/// the time bound covers what changes without an event (CPU and memory
/// samples, heartbeats, check times, uptime).
pub const DEFAULT_WORKERS_CACHE: Duration = Duration::from_millis(100);

/// How long the API waits for any store call, whatever the backend: reads
/// are stopped sooner by the store itself (`[api] query_timeout`, 5 s by
/// default: [`crate::store::ReadSettings`]); this bounds writes and a store
/// that stopped answering altogether.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `/readyz` waits for the store's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The API's store reads from the config (`[api] store_readers`,
/// `query_timeout`).
pub fn read_settings(api: &crate::config::ApiSettings) -> crate::store::ReadSettings {
    crate::store::ReadSettings {
        readers: api.store_readers,
        query_timeout: api.query_timeout,
        ..crate::store::ReadSettings::default()
    }
}

/// Limits of the API's heavy reads (`[api] max_exports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// CSV exports at once; beyond it 429 with `Retry-After`.
    pub max_exports: usize,
}

impl Default for Reads {
    /// 2 exports at once.
    fn default() -> Self {
        Reads { max_exports: 2 }
    }
}

impl Reads {
    /// From `[api]`.
    pub fn from_config(api: &crate::config::ApiSettings) -> Reads {
        Reads {
            max_exports: api.max_exports,
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    workers_ttl: Duration,
    /// Replaced when a reload changes the config.
    compat: Arc<RwLock<Arc<CompatSettings>>>,
    /// The application's own events, merged into `/api/events`.
    app_events: crate::app_events::AppEvents,
    /// Where `POST /api/reload` queues a reload (none: 501).
    reload: Option<crate::reload::ReloadHandle>,
    /// The pool's per-host request budget (pool mode with a watcher).
    budget: Option<crate::budget::service::BudgetService>,
    /// Exports running at once ([`Reads::max_exports`] permits).
    exports: Arc<tokio::sync::Semaphore>,
    /// Served on a loopback address only ([`ApiState::bound_to`]): without
    /// a token, control is then open to this machine's clients.
    loopback: bool,
    /// `/api/player-details/{name}`'s recent answers.
    player_details: Arc<compat::player_details::Cache>,
    /// The `Host` names requests may carry (DNS rebinding: [`guard`]).
    allowed_hosts: Arc<AllowedHosts>,
}

struct Inner {
    control: Arc<dyn Control>,
    /// Replaced when a reload changes `[storage]`.
    store: RwLock<Option<Store>>,
    token: Option<String>,
    shared: Arc<Shared>,
    /// Stops the event task when the last state clone goes away.
    _counting: DropGuard,
}

/// What the event task updates.
#[derive(Default)]
struct Shared {
    runs: metrics::RunCounters,
    vips: metrics::VipCounters,
    last_update: metrics::LastUpdate,
    /// Bumped on every pool event: a cached `/api/workers` body built at an
    /// older generation is stale.
    generation: AtomicU64,
    workers_cache: RwLock<Option<Arc<CachedBody>>>,
}

struct CachedBody {
    generation: u64,
    built: Instant,
    body: Bytes,
}

impl Shared {
    fn cached_workers(&self, generation: u64, ttl: Duration) -> Option<Bytes> {
        let slot = self.workers_cache.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|c| c.generation == generation && c.built.elapsed() < ttl)
            .map(|c| c.body.clone())
    }

    fn store_workers(&self, generation: u64, built: Instant, body: Bytes) {
        let mut slot = self
            .workers_cache
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Never replace a newer body with an older one.
        let newer = |c: &Arc<CachedBody>| {
            c.generation < generation || (c.generation == generation && c.built <= built)
        };
        if slot.as_ref().is_none_or(newer) {
            *slot = Some(Arc::new(CachedBody {
                generation,
                built,
                body,
            }));
        }
    }
}

impl ApiState {
    /// A state over a pool, an optional store and an optional control token
    /// (trimmed; an empty token counts as none). When called inside a tokio runtime
    /// it starts counting `run_finished` events for `/metrics`.
    pub fn new(control: Arc<dyn Control>, store: Option<Store>, token: Option<String>) -> ApiState {
        // Surrounding whitespace (a trailing newline from a secret file) is
        // not part of the token; an empty token means none.
        let token = token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(follow_events(
                    control.subscribe(),
                    Arc::downgrade(&shared),
                    stop.clone(),
                ));
            }
            Err(_) => tracing::warn!(
                "ApiState created outside a runtime: run counters stay at 0 and \
                 /api/workers is cached by time only"
            ),
        }
        ApiState {
            inner: Arc::new(Inner {
                control,
                store: RwLock::new(store),
                token,
                shared,
                _counting: stop.drop_guard(),
            }),
            shutdown: CancellationToken::new(),
            workers_ttl: DEFAULT_WORKERS_CACHE,
            compat: Arc::new(RwLock::new(Arc::new(CompatSettings::default()))),
            app_events: crate::app_events::AppEvents::default(),
            reload: None,
            budget: None,
            loopback: false,
            player_details: Arc::default(),
            allowed_hosts: Arc::new(AllowedHosts::default()),
            exports: Arc::new(tokio::sync::Semaphore::new(Reads::default().max_exports)),
        }
    }

    /// The same state, served on `addr` ([`serve`] and [`serve_dedicated`]
    /// call this). On a loopback address with no token configured, the
    /// control endpoints are open to this machine's clients, as the
    /// replaced system's were (see [`authorize`]); elsewhere a token is
    /// needed ([`check_bind`] refuses to start without one).
    pub fn bound_to(mut self, addr: SocketAddr) -> ApiState {
        self.loopback = addr.ip().is_loopback();
        self
    }

    /// The same state answering to these `Host` names besides loopback
    /// ones (`[api] allowed_hosts`); [`serve`] adds the bound address.
    pub fn with_allowed_hosts(mut self, hosts: AllowedHosts) -> ApiState {
        self.allowed_hosts = Arc::new(hosts);
        self
    }

    /// The same state within these read limits (default [`Reads::default`]).
    pub fn with_reads(mut self, reads: Reads) -> ApiState {
        self.exports = Arc::new(tokio::sync::Semaphore::new(reads.max_exports));
        self
    }

    /// A place for one more export, or `None` when [`Reads::max_exports`]
    /// run already.
    pub(crate) fn export_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.exports.clone().try_acquire_owned().ok()
    }

    /// The same state showing the pool's request budget (`/api/budget`,
    /// requests per worker in `/api/workers`, `worldpool_host_*` metrics).
    pub fn with_budget(mut self, budget: crate::budget::service::BudgetService) -> ApiState {
        self.budget = Some(budget);
        self
    }

    /// The same state with the config the compatibility endpoints need
    /// (site time zone, worlds; default: UTC-3, no worlds).
    pub fn with_compat(mut self, settings: CompatSettings) -> ApiState {
        self.compat = Arc::new(RwLock::new(Arc::new(settings)));
        self
    }

    /// The settings of the compatibility endpoints in force.
    pub fn compat(&self) -> Arc<CompatSettings> {
        self.compat
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the compatibility settings (every clone of this state sees
    /// them; a reload does this).
    pub fn set_compat(&self, settings: CompatSettings) {
        *self.compat.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// The store in force, if any.
    pub fn store(&self) -> Option<Store> {
        self.inner
            .store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the store (every clone of this state sees it).
    pub fn set_store(&self, store: Option<Store>) {
        *self.inner.store.write().unwrap_or_else(|e| e.into_inner()) = store;
        self.inner.shared.last_update.reset(false);
    }

    /// The newest update time of the stored deltas, from the workers' run
    /// events; the first call (and, while the store does not answer, one
    /// call every few seconds) asks the store once to seed it.
    pub(crate) async fn last_update(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        let cached = &self.inner.shared.last_update;
        let (newest, due) = cached.get();
        if !due {
            return newest;
        }
        let store = self.store()?;
        // A status must answer even when the store is slow: give it a second.
        match tokio::time::timeout(Duration::from_secs(1), store.delta_time_range(None, None)).await
        {
            Ok(Ok(range)) => cached.seed(range.map(|(_, last)| last)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "scraper status: no last update from the store");
            }
            Err(_) => tracing::warn!("scraper status: the store did not answer within 1 s"),
        }
        cached.get().0
    }

    /// Deltas were written outside the workers (an upload): the next
    /// [`ApiState::last_update`] asks the store again.
    pub(crate) fn deltas_imported(&self) {
        self.inner.shared.last_update.reset(true);
    }

    /// The same state whose `/api/events` also carries these application
    /// events.
    pub fn with_app_events(mut self, events: crate::app_events::AppEvents) -> ApiState {
        self.app_events = events;
        self
    }

    /// The same state with `POST /api/reload` queueing on `handle`.
    pub fn with_reload(mut self, handle: crate::reload::ReloadHandle) -> ApiState {
        self.reload = Some(handle);
        self
    }

    /// Like [`ApiState::new`], with the token from `WORLDPOOL_API_TOKEN`.
    pub fn from_env(control: Arc<dyn Control>, store: Option<Store>) -> ApiState {
        ApiState::new(control, store, std::env::var(TOKEN_ENV).ok())
    }

    /// Whether control endpoints are enabled.
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// The pool.
    pub fn control(&self) -> &dyn Control {
        self.inner.control.as_ref()
    }

    /// The run counters behind `/metrics`.
    pub fn run_counters(&self) -> &metrics::RunCounters {
        &self.inner.shared.runs
    }

    /// The watched players' numbers behind `/metrics` and the worker view.
    pub fn vip_counters(&self) -> &metrics::VipCounters {
        &self.inner.shared.vips
    }

    /// How long a serialized `/api/workers` body may be reused when no
    /// pool event arrived meanwhile (default [`DEFAULT_WORKERS_CACHE`];
    /// zero serializes every request).
    pub fn with_workers_cache(mut self, ttl: Duration) -> ApiState {
        self.workers_ttl = ttl;
        self
    }

    /// Cancelling this token ends every open `/api/events` stream.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The same state whose event streams end when `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> ApiState {
        self.shutdown = token;
        self
    }
}

/// Count runs and invalidate the `/api/workers` cache on every pool event.
async fn follow_events(
    mut rx: tokio::sync::broadcast::Receiver<pool::PoolEvent>,
    shared: Weak<Shared>,
    stop: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            r = rx.recv() => r,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // The budget's own messages change nothing /api/workers shows
        // (its counts are bounded by the cache's time).
        let internal = matches!(&received, Ok(pool::PoolEvent::Custom { kind, .. })
            if crate::protocol::WorkerEvent::is_internal_kind(kind));
        if !internal {
            shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        match received {
            // The budget's messages are neither runs nor watched players.
            Ok(_) if internal => {}
            Ok(ev) => {
                shared.runs.record(&ev);
                shared.vips.record(&ev);
                shared.last_update.record(&ev);
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "run counter lagged behind pool events");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// The router (no socket: test it with `tower::ServiceExt::oneshot`).
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/api/workers", get(list_workers))
        .route("/api/workers/{world}", get(one_worker))
        .route(
            "/api/workers/{world}/restart",
            post(|s, w, h| control(Verb::Restart, s, w, h)),
        )
        .route(
            "/api/workers/{world}/stop",
            post(|s, w, h| control(Verb::Stop, s, w, h)),
        )
        .route(
            "/api/workers/{world}/start",
            post(|s, w, h| control(Verb::Start, s, w, h)),
        )
        .route("/api/reload", post(reload::reload))
        .route("/api/scraper-status", get(scraper_status))
        .route("/api/events", get(events_handler))
        .route("/api/runs", get(runs_handler))
        .route("/api/deltas", get(deltas_handler))
        .route("/api/openapi.json", get(openapi_handler))
        .route("/metrics", get(metrics_handler))
        .route("/api/budget", get(budget::budget_handler))
        .route("/healthz", get(health::healthz))
        .route("/memusage", get(health::memusage))
        .route("/readyz", get(readyz))
        .merge(compat::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Host, cross-site and Content-Type checks before any handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The route template, never the raw path (names are data).
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("unmatched");
                tracing::debug_span!("http", method = %req.method(), route)
            }),
        )
        .with_state(state)
}

/// Refuse to expose the API beyond loopback without a token.
pub fn check_bind(bind: SocketAddr, has_token: bool) -> anyhow::Result<()> {
    if !bind.ip().is_loopback() && !has_token {
        anyhow::bail!(
            "refusing to serve the API on {bind}: it is not a loopback address and no control \
             token is configured. Set {TOKEN_ENV} to a secret, or bind 127.0.0.1"
        );
    }
    Ok(())
}

/// Bind `bind` (port 0 picks a free port) and serve until `shutdown` is
/// cancelled; open event streams end then too. Returns the bound address
/// and the server task, which finishes after the graceful shutdown.
pub async fn serve(
    bind: SocketAddr,
    state: ApiState,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(bind, state, ServerLimits::default(), shutdown).await
}

/// [`serve`] within `limits` (connections, timeouts, the descriptor
/// reserve, the shutdown grace: [`server`]).
pub async fn serve_with(
    bind: SocketAddr,
    state: ApiState,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    check_bind(bind, state.has_token())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} for the API"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the API's bound address")?;
    let hosts = state.allowed_hosts.as_ref().clone().bound_to(addr);
    let router = app(state
        .bound_to(bind)
        .with_shutdown(shutdown.clone())
        .with_allowed_hosts(hosts));
    let task = tokio::spawn(server::run(listener, router, limits, shutdown));
    tracing::info!(%addr, "API listening");
    Ok((addr, task))
}

/// How [`serve_dedicated`] runs the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedicatedOptions {
    /// Runtime worker threads for the API.
    pub threads: usize,
    /// Nice value added to the API threads (0..=19): under HTTP load the
    /// scheduler then favours the pool's supervisor threads and the
    /// workers, so restart latency does not suffer.
    pub nice: i32,
    /// Connections, timeouts and the descriptor reserve.
    pub limits: ServerLimits,
}

impl Default for DedicatedOptions {
    fn default() -> Self {
        DedicatedOptions {
            threads: 2,
            nice: 10,
            limits: ServerLimits::default(),
        }
    }
}

/// Lower the calling thread's scheduling priority.
fn lower_thread_priority(nice: i32) {
    pool::priority::lower_thread_priority(nice);
}

/// Like [`serve`], but on a runtime of its own, on its own OS threads at a
/// lower priority, so a flood of API requests cannot delay the pool's
/// supervision (exits, restarts, heartbeats) running on the caller's
/// runtime. The returned task (on the caller's runtime) finishes once the
/// server has shut down and its runtime is gone.
pub async fn serve_dedicated(
    bind: SocketAddr,
    state: ApiState,
    shutdown: CancellationToken,
    options: DedicatedOptions,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    check_bind(bind, state.has_token())?;
    // One thread: the API thread itself runs the runtime.
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(2)
            .thread_name("worldpool-api")
            .on_thread_start(move || lower_thread_priority(options.nice))
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .max_blocking_threads(2)
            .thread_name("worldpool-api")
            .on_thread_start(move || lower_thread_priority(options.nice))
            .enable_all()
            .build()
    }
    .context("cannot build the API runtime")?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("worldpool-api-main".into())
        .spawn(move || {
            lower_thread_priority(options.nice);
            runtime.block_on(async move {
                match serve_with(bind, state, options.limits, shutdown).await {
                    Ok((addr, task)) => {
                        let _ = ready_tx.send(Ok(addr));
                        if let Err(e) = task.await {
                            tracing::error!(error = %e, "API server task failed");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Shut the runtime down here (a plain thread may): a blocking
            // query still running gets a moment, not a wait without end.
            runtime.shutdown_timeout(options.limits.shutdown_grace);
            let _ = done_tx.send(());
        })
        .context("cannot start the API thread")?;
    let addr = ready_rx
        .await
        .context("the API thread ended before binding")??;
    let task = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    Ok((addr, task))
}

/// Serialize to a JSON response straight into one buffer.
fn json<T: Serialize>(status: StatusCode, value: &T, capacity: usize) -> Response {
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

fn world_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(world)) => Ok(world),
        Err(e) => Err(ApiError::bad_param(
            "world",
            format!("not a valid URL-encoded UTF-8 name ({})", e.body_text()),
        )),
    }
}

fn json_bytes(body: Bytes) -> Response {
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
fn worker_list(state: &ApiState, world: Option<&str>) -> Result<Vec<u8>, serde_json::Error> {
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

async fn list_workers(State(state): State<ApiState>) -> Response {
    let shared = &state.inner.shared;
    let ttl = state.workers_ttl;
    // Read the generation before the snapshot: an event arriving meanwhile
    // makes this body stale at once.
    let generation = shared.generation.load(Ordering::Acquire);
    if !ttl.is_zero()
        && let Some(body) = shared.cached_workers(generation, ttl)
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
        shared.store_workers(generation, built, body.clone());
    }
    json_bytes(body)
}

async fn one_worker(
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

/// Constant-time comparison (the token must not leak through timing).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may use a control endpoint: the one rule for every control verb
/// (`/api/workers/{world}/…`, `/api/reload`, `/api/manual-update`,
/// `/api/vip/add`, `/api/vip/remove`).
///
/// - A token is configured: the request must carry it as
///   `Authorization: Bearer <token>` (401 otherwise).
/// - No token, API served on loopback only ([`ApiState::bound_to`]): any
///   client of this machine may, as in the replaced system, except a page
///   of another origin (a browser's `Origin` that is not this machine's:
///   403 `foreign_origin`), so a site on the internet cannot drive the pool
///   through a visitor's browser.
/// - No token otherwise: 403 `control_disabled`.
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.inner.token.as_deref() else {
        if !state.loopback {
            return Err(ApiError::ControlDisabled);
        }
        return match headers.get(header::ORIGIN) {
            None => Ok(()),
            Some(origin) => {
                let origin = origin.to_str().unwrap_or("(not text)");
                if local_origin(origin) {
                    Ok(())
                } else {
                    Err(ApiError::ForeignOrigin(origin.chars().take(200).collect()))
                }
            }
        };
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        Some(token) if same_secret(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// A browser `Origin` of this machine: `http(s)://localhost`, a
/// `*.localhost` name, or a loopback address, any port.
fn local_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.trim().split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    if rest.contains(['/', '@', '?', '#']) {
        return false;
    }
    let host = match rest.strip_prefix('[') {
        // [::1]:port
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) if port.is_empty() || port.starts_with(':') => addr,
            _ => return false,
        },
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Serialize)]
struct ControlAnswer<'a> {
    world: &'a str,
    action: &'static str,
    state: pool::StateName,
}

async fn control(
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

async fn scraper_status(State(state): State<ApiState>) -> Response {
    let snapshot = state.control().workers();
    let mut status = views::ScraperStatus::of(&snapshot, state.compat().site_offset);
    status.last_update = state.last_update().await.map(crate::legacy::iso);
    json(StatusCode::OK, &status, 256)
}

async fn events_handler(
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

async fn metrics_handler(State(state): State<ApiState>) -> Response {
    let snapshot = state.control().workers();
    let mut text = metrics::render(
        &snapshot,
        &state.run_counters().snapshot(),
        &state.vip_counters().snapshot(),
    );
    reload::render_metrics(&mut text, state.reload.as_ref().map(|r| r.stats()));
    if let Some(b) = &state.budget {
        text.push_str(&budget::render(&b.snapshot()));
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

async fn readyz(State(state): State<ApiState>) -> Response {
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
fn parse_query(
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
fn limit_param(v: Option<&str>) -> Result<u32, ApiError> {
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
fn before_param(v: Option<&str>) -> Result<Option<i64>, ApiError> {
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
fn name_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
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
struct Page<'a, T> {
    items: &'a [T],
    /// Pass as `before` to get the next (older) page; null on the last page.
    next_before: Option<i64>,
}

/// The `before` of the next page: the last id of a full page, else none.
fn next_before<T>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Option<i64> {
    if items.len() >= limit as usize {
        items.last().map(id)
    } else {
        None
    }
}

fn page<T: Serialize>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Response {
    let next_before = next_before(items, limit, id);
    json(
        StatusCode::OK,
        &Page { items, next_before },
        64 + items.len() * 256,
    )
}

async fn runs_handler(
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

async fn deltas_handler(
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

async fn openapi_handler() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi::document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_before_and_names_are_validated() {
        assert_eq!(limit_param(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit_param(Some("7")), Ok(7));
        assert_eq!(limit_param(Some("100000000000")), Ok(MAX_LIMIT));
        for bad in ["0", "-1", "x", "", "1.5"] {
            assert!(
                matches!(limit_param(Some(bad)), Err(ApiError::BadParam { ref param, .. }) if param == "limit"),
                "{bad}"
            );
        }
        assert_eq!(before_param(Some("12")), Ok(Some(12)));
        assert!(before_param(Some("0")).is_err());
        assert!(name_param("guild", Some(String::new())).is_err());
        assert!(name_param("guild", Some("x".repeat(201))).is_err());
        assert_eq!(
            name_param("guild", Some("Rôle Play".into())),
            Ok(Some("Rôle Play".into()))
        );
    }

    #[test]
    fn next_page_starts_below_the_last_id_of_a_full_page() {
        let ids = [90i64, 75, 74];
        assert_eq!(next_before(&ids, 3, |i| *i), Some(74));
        assert_eq!(next_before(&ids, 4, |i| *i), None);
        assert_eq!(next_before(&ids[..0], 1, |i| *i), None);
    }

    #[test]
    fn query_rejects_unknown_and_repeated_parameters() {
        let ok = parse_query(Some("world=S%C3%A3o+Paulo&limit=3"), &["world", "limit"]);
        assert_eq!(
            ok.as_ref()
                .ok()
                .and_then(|m| m.get("world"))
                .map(String::as_str),
            Some("São Paulo")
        );
        assert!(matches!(
            parse_query(Some("worlds=x"), &["world"]),
            Err(ApiError::BadParam { ref param, .. }) if param == "worlds"
        ));
        assert!(matches!(
            parse_query(Some("world=a&world=b"), &["world"]),
            Err(ApiError::BadParam { ref param, .. }) if param == "world"
        ));
    }

    #[test]
    fn bind_check_and_secret_compare() {
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let lo6: SocketAddr = "[::1]:0".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:5000".parse().expect("addr");
        assert!(check_bind(lo, false).is_ok());
        assert!(check_bind(lo6, false).is_ok());
        assert!(check_bind(any, true).is_ok());
        let e = check_bind(any, false).expect_err("refused").to_string();
        assert!(e.contains(TOKEN_ENV) && e.contains("0.0.0.0:5000"), "{e}");
        for ok in [
            "http://127.0.0.1:5000",
            "http://localhost:8080",
            "https://LOCALHOST",
            "http://[::1]:5000",
            "http://127.1.2.3",
            "http://app.localhost:3000",
        ] {
            assert!(local_origin(ok), "{ok}");
        }
        for foreign in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "http://10.0.0.2:5000",
            "http://[::2]:5000",
            "http://localhost@evil.example",
            "ftp://localhost",
        ] {
            assert!(!local_origin(foreign), "{foreign}");
        }
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
