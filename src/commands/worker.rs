//! `worldpool worker` (internal): the process the supervisor re-executes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::DEFAULT_PATH;
use crate::worker::WorkerOptions;

/// `worldpool worker` (internal).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The world this worker scrapes (repeat in single mode, or use --all).
    #[arg(long)]
    pub world: Vec<String>,
    /// Scrape every world of the config in turn (single mode).
    #[arg(long)]
    pub all: bool,
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH)]
    pub config: PathBuf,
}

/// Run the worker until SIGTERM or until the supervisor is gone.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    crate::worker::main(WorkerOptions {
        worlds: args.world,
        all: args.all,
        config: args.config,
    })
}
