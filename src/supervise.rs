//! `worldpool run`: build worker specs from the config, run the pool, serve
//! the API, reload the config on SIGHUP, `POST /api/reload` or a change of
//! the file ([`crate::reload`]), stop everything on SIGINT/SIGTERM.
//!
//! Workers are the `worldpool-worker` binary found beside this one
//! ([`worker_binary`]), run as `worldpool-worker worker --world NAME
//! --config PATH` (pool mode, plus one `worldpool-worker worker --watcher`
//! named `watcher` that reads the status page for all of them) or
//! `worldpool-worker worker --all --config PATH` (single mode), with
//! `--watched` and `--pool-budget` as the config asks, unless
//! [`WORKER_PROGRAM_ENV`] names another program taking the same arguments
//! (a wrapper script, or the test suite's misbehaving worker). The
//! heartbeat period is passed in [`crate::protocol::HEARTBEAT_ENV`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Environment variable naming the program to run as the worker instead of
/// this binary; it gets the same arguments (`worker --world NAME --config
/// PATH`) and the channel on fd 3.
pub const WORKER_PROGRAM_ENV: &str = "WORLDPOOL_WORKER_PROGRAM";

/// File name of the worker binary, installed beside `worldpool`.
pub const WORKER_BINARY: &str = "worldpool-worker";

/// The worker program: [`WORKER_PROGRAM_ENV`] when set, else
/// [`worker_binary`].
pub fn worker_program() -> anyhow::Result<PathBuf> {
    match std::env::var_os(WORKER_PROGRAM_ENV) {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => worker_binary(),
    }
}

/// `worldpool-worker` in the directory of the running binary (`cargo
/// install` and `cargo build` put both there).
pub fn worker_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the worldpool binary")?;
    let path = exe.with_file_name(WORKER_BINARY);
    if !path.is_file() {
        anyhow::bail!(
            "the worker binary {} is missing: build or install both binaries \
             (`cargo build --release --bins`, `cargo install --path .`), or name \
             the worker program in {WORKER_PROGRAM_ENV}",
            path.display()
        );
    }
    Ok(path)
}

/// The pool options for a config.
pub fn pool_options(config: &Config) -> pool::PoolOptions {
    pool::PoolOptions {
        sample_interval: config.pool.sample_interval,
        thread_nice: config.pool.supervisor_nice,
        // Events stay in the ring until overwritten: 512 is minutes of
        // events at production polling, and half the memory of 1,024.
        event_capacity: 512,
        ..pool::PoolOptions::default()
    }
}

/// Start the pool for a config (workers run `exe`).
pub fn start_pool(config: &Config, exe: &Path) -> anyhow::Result<pool::Pool> {
    let specs = crate::topology::worker_specs(config, exe);
    pool::Pool::start(specs, pool_options(config)).context("starting the pool")
}

/// Run the pool (and the API on `api_bind` when given) until `stop` is
/// cancelled or SIGINT/SIGTERM arrives; then stop every worker and return.
/// Reloads the config on SIGHUP, `POST /api/reload` and, with `[pool]
/// watch_config`, when the file changes.
pub async fn run_with(
    config: Config,
    api_bind: Option<SocketAddr>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Install the handlers before any worker exists, so a signal never
    // finds the default action (which would orphan nothing, thanks to
    // PDEATHSIG, but would skip the graceful stop).
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // Without a handler, SIGHUP would end the supervisor.
    let sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let exe = worker_program()?;
    let token = std::env::var(crate::api::TOKEN_ENV).ok();
    if let Some(bind) = api_bind {
        // Refuse an unsafe bind before any worker starts.
        let has_token = token.as_deref().is_some_and(|t| !t.trim().is_empty());
        crate::api::check_bind(bind, has_token)?;
    }
    // Workers read a private copy of the validated config, never an edit
    // that was not reloaded.
    // Room for hundreds of workers' pipes and the API's clients: the soft
    // open-files limit goes up to the hard one (the API keeps a reserve
    // of it for spawning, crate::api::server).
    let nofile = crate::api::server::raise_nofile();
    tracing::debug!(nofile, "open-files limit");
    let snapshots = crate::reload::Snapshots::new().context("creating the config copies")?;
    let workers = snapshots.initial(&config);
    // A cluster node checks it may join before any worker starts.
    let joining = match config.cluster.enabled {
        true => Some(Joining::check(&config, api_bind).await?),
        false => None,
    };
    let pool = start_pool(&workers, &exe)?;
    let handle = pool.handle();
    let (reload, reload_queue) = crate::reload::ReloadHandle::new();
    let app_events = crate::app_events::AppEvents::default();
    let mut followers: Vec<std::sync::Arc<dyn crate::reload::Follower>> =
        vec![std::sync::Arc::new(crate::reload::LogLevel)];
    // The pool's budget and the watcher's relay (application tasks over
    // the pool's events and channels; see crate::budget, crate::watcher).
    // A cluster node hears the status watcher wherever it runs.
    let news = joining.as_ref().and_then(|j| {
        let silence = config.site.poll_interval * 3 + config.cluster.lease_ttl;
        crate::cluster::news::link(&j.store, &j.info.node_id, silence)
    });
    let services = crate::watcher::start_services(&config, &handle, stop.clone(), news);
    let share = NodeShare::default();
    if let Some(budget) = &services.budget {
        followers.push(std::sync::Arc::new(BudgetFollower {
            budget: budget.clone(),
            share: share.clone(),
        }));
    }
    let cluster = joining.map(|joining| {
        let (configs, configs_rx) = tokio::sync::watch::channel(workers.clone());
        followers.push(std::sync::Arc::new(ClusterFollower(configs)));
        let budget = services.budget.clone();
        let limits_of = config.site.clone();
        let on_share = share.clone();
        let on_nodes = Box::new(move |nodes: usize| {
            on_share.set(nodes);
            if let Some(budget) = &budget {
                budget.set_limits(on_share.limits(&limits_of));
            }
        });
        crate::cluster::start(
            crate::cluster::NodeSetup {
                workers: workers.clone(),
                exe: exe.clone(),
                pool: handle.clone(),
                store: joining.store,
                info: joining.info,
                on_nodes,
            },
            configs_rx,
            stop.clone(),
        )
    });
    tracing::info!(
        workers = handle.names().len(),
        mode = ?config.pool.mode,
        config = %config.path.display(),
        "pool started"
    );

    let api_task = match api_bind {
        Some(bind) => {
            // Read connections of its own, each query within a deadline.
            let store = match crate::store::Store::open_reading(
                &config.storage_url(),
                crate::api::read_settings(&config.api),
            )
            .await
            {
                Ok(store) => Some(store),
                Err(e) => {
                    tracing::warn!(error = %e, "the API serves no runs or deltas: the store did not open");
                    None
                }
            };
            let control: std::sync::Arc<dyn crate::api::Control> =
                std::sync::Arc::new(handle.clone());
            let mut state = crate::api::ApiState::new(control, store, token)
                .with_reads(crate::api::Reads::from_config(&config.api))
                .with_compat(crate::api::CompatSettings::from_config(&config))
                .with_reload(reload.clone())
                .with_app_events(app_events.clone())
                .with_allowed_hosts(crate::api::AllowedHosts::new(&config.api.allowed_hosts));
            if let Some(budget) = &services.budget {
                state = state.with_budget(budget.clone());
            }
            if let Some((cluster, _)) = &cluster {
                app_events.follow_cluster(cluster);
                state = state.with_cluster(cluster.clone());
            }
            followers.push(std::sync::Arc::new(state.clone()));
            let (addr, task) = crate::api::serve_dedicated(
                bind,
                state,
                stop.clone(),
                crate::api::DedicatedOptions {
                    threads: crate::memory::api_threads(),
                    limits: crate::api::ServerLimits {
                        max_connections: config.api.max_connections,
                        header_timeout: config.api.header_timeout,
                        fd_reserve: config.api.fd_reserve,
                        shutdown_grace: config.api.shutdown_grace,
                        send_timeout: config.api.send_timeout,
                        ..crate::api::ServerLimits::default()
                    },
                    ..crate::api::DedicatedOptions::default()
                },
            )
            .await?;
            tracing::info!(%addr, "API listening on http://{addr}; dashboard at http://{addr}/");
            Some(task)
        }
        None => None,
    };
    let reloader = crate::reload::start(
        crate::reload::Setup {
            pool: handle.clone(),
            exe,
            config,
            workers,
            snapshots,
            events: std::sync::Arc::new(app_events),
            followers,
        },
        reload,
        reload_queue,
        sighup,
        stop.clone(),
    );

    crate::memory::release_startup_pages_once_up(handle.clone(), stop.clone());

    tokio::select! {
        () = stop.cancelled() => tracing::info!("stop requested"),
        _ = sigint.recv() => tracing::info!("SIGINT: stopping every worker"),
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping every worker"),
    }
    stop.cancel();
    pool.shutdown().await;
    tracing::info!("all workers stopped");
    if let Some((_, task)) = cluster {
        // Releases the leases now that their workers are stopped.
        let _ = task.await;
    }
    let _ = reloader.await;
    if let Some(task) = api_task {
        let _ = task.await;
    }
    Ok(())
}

/// A node about to join a cluster: its lease store, who it is.
struct Joining {
    store: crate::store::Store,
    info: crate::store::cluster::NodeInfo,
}

impl Joining {
    /// Open the lease store and refuse to join a cluster whose live nodes
    /// run another `lease_ttl` or world list.
    async fn check(config: &Config, api_bind: Option<SocketAddr>) -> anyhow::Result<Joining> {
        let settings = &config.cluster;
        let store = crate::store::Store::open_leases(
            &config.storage_url(),
            crate::cluster::renew_timeout(settings.lease_ttl, settings.renew_every),
        )
        .await
        .context("opening the cluster's lease store")?;
        let (node_id, node_name) = crate::cluster::node_identity(config);
        let info = crate::store::cluster::NodeInfo {
            node_id,
            node_name,
            started_at: chrono::Utc::now(),
            lease_ttl: settings.lease_ttl,
            worlds_hash: crate::cluster::worlds_hash(config),
            api: api_bind.map(|a| a.to_string()),
        };
        let worlds: Vec<String> = config.worlds.iter().map(|w| w.name.clone()).collect();
        crate::cluster::check_join(&store, &info, &worlds)
            .await
            .with_context(|| format!("{}: [cluster]", config.path.display()))?;
        tracing::info!(node = %info.node_id, name = %info.node_name, "cluster: joining");
        Ok(Joining { store, info })
    }
}

/// This node's share of the site's limits: 1 / the live nodes.
#[derive(Debug, Clone)]
struct NodeShare(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Default for NodeShare {
    fn default() -> Self {
        NodeShare(std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1)))
    }
}

impl NodeShare {
    fn set(&self, nodes: usize) {
        self.0
            .store(nodes.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// `[site] rate_limit` and `max_concurrent` divided among the live
    /// nodes (at least one request at a time each).
    fn limits(&self, site: &crate::site::SiteSettings) -> crate::budget::Limits {
        let nodes = self.0.load(std::sync::atomic::Ordering::Relaxed).max(1);
        crate::budget::Limits {
            rate: site.rate_limit / nodes as f64,
            max_concurrent: (site.max_concurrent / nodes).max(1),
        }
    }
}

/// The cluster node hears the workers' config of each reload.
struct ClusterFollower(tokio::sync::watch::Sender<Config>);

impl crate::reload::Follower for ClusterFollower {
    fn follow<'a>(
        &'a self,
        _old: &'a Config,
        _new: &'a Config,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn workers_follow(&self, workers: &Config) {
        let _ = self.0.send(workers.clone());
    }
}

/// The pool's budget follows `[site] rate_limit` and `max_concurrent`
/// across reloads (wired here, where the services meet), divided among a
/// cluster's live nodes.
struct BudgetFollower {
    budget: crate::budget::service::BudgetService,
    share: NodeShare,
}

impl crate::reload::Follower for BudgetFollower {
    fn follow<'a>(
        &'a self,
        old: &'a crate::config::Config,
        new: &'a crate::config::Config,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let (before, after) = (self.share.limits(&old.site), self.share.limits(&new.site));
            if before != after {
                self.budget.set_limits(after);
                tracing::info!(
                    rate_limit = new.site.rate_limit,
                    max_concurrent = new.site.max_concurrent,
                    "the pool's budget follows the new limits"
                );
            }
        })
    }
}
