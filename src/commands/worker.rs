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
    /// Be the pool's status watcher (reads the status page for every world).
    #[arg(long, conflicts_with_all = ["world", "all"])]
    pub watcher: bool,
    /// Wait for the pool's status watcher instead of polling.
    #[arg(long)]
    pub watched: bool,
    /// Ask the supervisor's request budget before each request.
    #[arg(long)]
    pub pool_budget: bool,
}

/// Run the worker until SIGTERM or until the supervisor is gone.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    crate::worker::main(WorkerOptions {
        watcher: args.watcher,
        watched: args.watched,
        pool_budget: args.pool_budget,
        ..WorkerOptions::new(args.world, args.all, args.config)
    })
}
