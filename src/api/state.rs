//! What the handlers share: [`ApiState`] (the pool's control, the store
//! and its read limits, the token, caches, the event counters) and the task
//! that follows the pool's events.

use super::*;

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
    pub(super) inner: Arc<Inner>,
    pub(super) shutdown: CancellationToken,
    pub(super) workers_ttl: Duration,
    /// Replaced when a reload changes the config.
    pub(super) compat: Arc<RwLock<Arc<CompatSettings>>>,
    /// The application's own events, merged into `/api/events`.
    pub(super) app_events: crate::app_events::AppEvents,
    /// Where `POST /api/reload` queues a reload (none: 501).
    pub(super) reload: Option<crate::reload::ReloadHandle>,
    /// The pool's per-host request budget (pool mode with a watcher).
    pub(super) budget: Option<crate::budget::service::BudgetService>,
    /// The cluster node, in cluster mode (`/api/cluster`).
    pub(super) cluster: Option<crate::cluster::Cluster>,
    /// Exports running at once ([`Reads::max_exports`] permits).
    pub(super) exports: Arc<tokio::sync::Semaphore>,
    /// Served on a loopback address only ([`ApiState::bound_to`]): without
    /// a token, control is then open to this machine's clients.
    pub(super) loopback: bool,
    /// `/api/player-details/{name}`'s recent answers.
    pub(super) player_details: Arc<compat::player_details::Cache>,
    /// The `Host` names requests may carry (DNS rebinding: [`guard`]).
    pub(super) allowed_hosts: Arc<AllowedHosts>,
}

pub(super) struct Inner {
    pub(super) control: Arc<dyn Control>,
    /// Replaced when a reload changes `[storage]`.
    pub(super) store: RwLock<Option<Store>>,
    pub(super) token: Option<String>,
    pub(super) shared: Arc<Shared>,
    /// Stops the event task when the last state clone goes away.
    pub(super) _counting: DropGuard,
}

/// What the event task updates.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) runs: metrics::RunCounters,
    pub(super) vips: metrics::VipCounters,
    pub(super) last_update: metrics::LastUpdate,
    /// Bumped on every pool event: a cached `/api/workers` body built at an
    /// older generation is stale.
    pub(super) generation: AtomicU64,
    /// The serialized `/api/workers` body, reused for `workers_ttl`.
    pub(super) workers_cache: BodyCache,
    /// The serialized `/api/scraper-status` body, likewise: the replaced
    /// pages poll it.
    pub(super) status_cache: BodyCache,
}

/// A serialized answer built at a pool-event generation, reused until an
/// event arrives or its time is up.
#[derive(Default)]
pub(super) struct BodyCache(RwLock<Option<Arc<CachedBody>>>);

pub(super) struct CachedBody {
    pub(super) generation: u64,
    pub(super) built: Instant,
    pub(super) body: Bytes,
}

impl BodyCache {
    /// The body built at `generation`, if younger than `ttl`.
    pub(super) fn get(&self, generation: u64, ttl: Duration) -> Option<Bytes> {
        let slot = self.0.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|c| c.generation == generation && c.built.elapsed() < ttl)
            .map(|c| c.body.clone())
    }

    /// Keep `body`, unless a newer one is kept already.
    pub(super) fn put(&self, generation: u64, built: Instant, body: Bytes) {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
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
            cluster: None,
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

    /// The same state showing a cluster node (`/api/cluster`, the
    /// cluster's metrics and events).
    pub fn with_cluster(mut self, cluster: crate::cluster::Cluster) -> ApiState {
        self.cluster = Some(cluster);
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
pub(super) async fn follow_events(
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
