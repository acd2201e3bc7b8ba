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
    // The same checks as `check-config`, against this machine. An unsafe
    // bind stops here, before any worker starts. A limit the OS refuses
    // only concerns its world: the others run, and that worker backs off
    // and goes fatal with the OS's refusal as its reason, in the API.
    let env = crate::config::Environment::current();
    if let Some(problem) = crate::config::bind_problem(&env, api_bind) {
        let e = crate::config::ConfigError {
            path: config.path.clone(),
            problems: vec![problem],
        };
        eprint!("{e}");
        return Ok(ExitCode::from(2));
    }
    for p in config.limit_problems(&env) {
        tracing::warn!(key = %p.key, fix = %p.fix, "{}", p.message);
    }
    crate::supervise::run_with(config, api_bind, CancellationToken::new()).await?;
    Ok(ExitCode::SUCCESS)
}
