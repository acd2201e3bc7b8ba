//! `worldpool run`: the supervisor.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEFAULT_PATH};

/// `worldpool run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
    /// Override `[api] bind` (use 127.0.0.1:0 for a free port).
    #[arg(long)]
    pub api_bind: Option<SocketAddr>,
    /// Do not serve the API.
    #[arg(long)]
    pub no_api: bool,
}

/// Exit code 2 on a config error (every problem printed), 0 after a clean
/// stop.
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
    // The same checks as `check-config`, against this machine: a limit the
    // OS refuses or an unsafe bind stops here, before any worker starts.
    let env = crate::config::Environment::current();
    if let Err(e) = config.check_environment(&env, api_bind) {
        eprint!("{e}");
        return Ok(ExitCode::from(2));
    }
    crate::supervise::run_with(config, api_bind, CancellationToken::new()).await?;
    Ok(ExitCode::SUCCESS)
}
