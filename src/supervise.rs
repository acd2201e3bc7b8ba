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
    let pool = start_pool(&workers, &exe)?;
    let handle = pool.handle();
    let (reload, reload_queue) = crate::reload::ReloadHandle::new();
    let app_events = crate::app_events::AppEvents::default();
    let mut followers: Vec<std::sync::Arc<dyn crate::reload::Follower>> =
        vec![std::sync::Arc::new(crate::reload::LogLevel)];
    // The pool's budget and the watcher's relay (application tasks over
    // the pool's events and channels; see crate::budget, crate::watcher).
    let services = crate::watcher::start_services(&config, &handle, stop.clone());
    if let Some(budget) = &services.budget {
        followers.push(std::sync::Arc::new(budget.clone()));
    }
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
    let _ = reloader.await;
    if let Some(task) = api_task {
        let _ = task.await;
    }
    Ok(())
}

/// The pool's budget follows `[site] rate_limit` and `max_concurrent`
/// across reloads (wired here, where the services meet).
impl crate::reload::Follower for crate::budget::service::BudgetService {
    fn follow<'a>(
        &'a self,
        old: &'a crate::config::Config,
        new: &'a crate::config::Config,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let limits = |c: &crate::config::Config| crate::budget::Limits {
                rate: c.site.rate_limit,
                max_concurrent: c.site.max_concurrent,
            };
            if limits(old) != limits(new) {
                self.set_limits(limits(new));
                tracing::info!(
                    rate_limit = new.site.rate_limit,
                    max_concurrent = new.site.max_concurrent,
                    "the pool's budget follows the new limits"
                );
            }
        })
    }
}
