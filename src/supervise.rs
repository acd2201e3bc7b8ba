//! `worldpool run`: build worker specs from the config, run the pool, serve
//! the API, stop everything on SIGINT/SIGTERM.
//!
//! Workers are this very binary (`std::env::current_exe()`) re-executed as
//! `worldpool worker --world NAME --config PATH` (pool mode) or
//! `worldpool worker --all --config PATH` (single mode). The heartbeat
//! period is passed in [`crate::worker::HEARTBEAT_ENV`].
//!
//! Tests that need misbehaving workers either build specs with
//! [`worker_specs_with`] (extra arguments per world, e.g. `--test-mode
//! alloc`), or set [`crate::worker::TEST_MODE_ENV`] on a `worldpool run`
//! process: workers inherit the supervisor's environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::config::{Config, Mode};

/// The worker specs for a config: one per world in pool mode
/// (`worldpool worker --world NAME --config PATH`), a single one named
/// `single` (`worldpool worker --all --config PATH`) in single mode.
pub fn worker_specs(config: &Config, exe: &Path) -> Vec<pool::WorkerSpec> {
    worker_specs_with(config, exe, &|_| Vec::new())
}

/// Like [`worker_specs`], with `extra_args(worker name)` appended to each
/// worker's command line (tests use it for `--test-mode MODE`).
pub fn worker_specs_with(
    config: &Config,
    exe: &Path,
    extra_args: &dyn Fn(&str) -> Vec<String>,
) -> Vec<pool::WorkerSpec> {
    let config_path = absolute(&config.path);
    let spec = |name: &str, selection: Vec<String>, limits: pool::Limits| {
        let mut s = pool::WorkerSpec::new(name, exe);
        s.args = vec!["worker".to_string()];
        s.args.extend(selection);
        s.args.push("--config".to_string());
        s.args.push(config_path.display().to_string());
        s.args.extend(extra_args(name));
        s.limits = limits;
        s.restart = config.pool.restart.clone();
        s.stop_grace = config.pool.stop_grace;
        s.start_timeout = Some(config.pool.start_timeout);
        s.heartbeat_timeout = Some(config.pool.heartbeat_timeout);
        let beat = (config.pool.heartbeat_timeout / 3).max(Duration::from_millis(10));
        s.env.push((
            crate::worker::HEARTBEAT_ENV.to_string(),
            beat.as_millis().to_string(),
        ));
        s
    };
    match config.pool.mode {
        Mode::Pool => config
            .worlds
            .iter()
            .map(|w| {
                spec(
                    &w.name,
                    vec!["--world".to_string(), w.name.clone()],
                    w.limits.clone(),
                )
            })
            .collect(),
        Mode::Single => vec![spec(
            "single",
            vec!["--all".to_string()],
            config.limits.clone(),
        )],
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The pool options for a config.
pub fn pool_options(config: &Config) -> pool::PoolOptions {
    pool::PoolOptions {
        sample_interval: config.pool.sample_interval,
        ..pool::PoolOptions::default()
    }
}

/// Start the pool for a config (workers are this binary, `exe`).
pub fn start_pool(config: &Config, exe: &Path) -> anyhow::Result<pool::Pool> {
    let specs = worker_specs(config, exe);
    pool::Pool::start(specs, pool_options(config)).context("starting the pool")
}

/// Run the pool (and the API on `api_bind` when given) until `stop` is
/// cancelled or SIGINT/SIGTERM arrives; then stop every worker and return.
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
    let exe = std::env::current_exe().context("locating the worldpool binary")?;
    let pool = start_pool(&config, &exe)?;
    let handle = pool.handle();
    tracing::info!(
        workers = handle.names().len(),
        mode = ?config.pool.mode,
        config = %config.path.display(),
        "pool started"
    );

    if let Some(bind) = api_bind {
        // ==== API: the lead wires `crate::api` here: serve it on `bind`
        // with `handle.clone()` (status, control, events) and shut it down
        // when `stop` is cancelled. ====
        tracing::info!(%bind, "API not wired in yet");
    }

    tokio::select! {
        () = stop.cancelled() => tracing::info!("stop requested"),
        _ = sigint.recv() => tracing::info!("SIGINT: stopping every worker"),
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping every worker"),
    }
    stop.cancel();
    pool.shutdown().await;
    tracing::info!("all workers stopped");
    Ok(())
}

/// `worldpool run`: exit code 2 on a config error, 0 after a clean stop.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let api_bind = match (args.no_api, args.api_bind) {
        (true, _) => None,
        (false, Some(bind)) => Some(bind),
        (false, None) => config.api.enabled.then_some(config.api.bind),
    };
    run_with(config, api_bind, CancellationToken::new()).await?;
    Ok(ExitCode::SUCCESS)
}
