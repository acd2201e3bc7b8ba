//! `worldpool bench`: pool against single mode end to end. (Stub.)

use std::process::ExitCode;

/// `worldpool bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Finish in under a minute (CI smoke run).
    #[arg(long)]
    pub quick: bool,
}

/// `worldpool bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
