//! `worldpool run`: build worker specs from the config, run the pool, serve
//! the API, stop everything on SIGINT/SIGTERM. (Stub: signatures are the
//! contract other modules use.)

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::config::Config;

/// The worker specs for a config: one per world in pool mode
/// (`worldpool worker --world NAME --config PATH`), a single one named
/// `single` (`worldpool worker --all --config PATH`) in single mode.
pub fn worker_specs(config: &Config, exe: &Path) -> Vec<pool::WorkerSpec> {
    let _ = (config, exe);
    todo!()
}

/// Start the pool for a config (workers are this binary, `exe`).
pub fn start_pool(config: &Config, exe: &Path) -> anyhow::Result<pool::Pool> {
    let _ = (config, exe);
    todo!()
}

/// Run the pool (and the API on `api_bind` when given) until `stop` is
/// cancelled or SIGINT/SIGTERM arrives; then stop every worker and return.
pub async fn run_with(
    config: Config,
    api_bind: Option<SocketAddr>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (config, api_bind, stop);
    todo!()
}

/// `worldpool run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
