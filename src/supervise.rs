//! `worldpool run`: build worker specs from the config, run the pool, serve
//! the API, stop everything on SIGINT/SIGTERM. (Stub.)

use std::process::ExitCode;

use crate::cli::RunArgs;

/// `worldpool run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
