//! Command line: parsing and dispatch. Everything else lives in the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::DEFAULT_PATH;

/// worldpool: one supervised scraper process per game world.
#[derive(Debug, Parser)]
#[command(name = "worldpool", version, about, propagate_version = true)]
pub struct Cli {
    /// Log as JSON lines instead of human text (filter with RUST_LOG).
    #[arg(long, global = true, env = "WORLDPOOL_LOG_JSON")]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pool (or the single scraper) from a config, with the API.
    Run(RunArgs),
    /// Validate a config: print every problem, exit 2 on error.
    CheckConfig(ConfigArg),
    /// One check-and-scrape of one world now, printing what was extracted.
    ScrapeOnce(ScrapeOnceArgs),
    /// Serve an offline copy of the ranking site on 127.0.0.1.
    DemoSite(DemoSiteArgs),
    /// Run everything offline: demo site + pool + SQLite store + API.
    Demo(DemoArgs),
    /// Show the workers of a running pool as a table.
    Status(StatusArgs),
    /// Benchmark pool against single mode end to end, with chaos.
    Bench(crate::bench::BenchArgs),
    /// (internal) The worker process the supervisor re-executes.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// `--config PATH`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
}

/// `worldpool run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
    /// Override `[api] bind` (use 127.0.0.1:0 for a free port).
    #[arg(long)]
    pub api_bind: Option<std::net::SocketAddr>,
    /// Do not serve the API.
    #[arg(long)]
    pub no_api: bool,
}

/// `worldpool scrape-once`.
#[derive(Debug, Clone, Args)]
pub struct ScrapeOnceArgs {
    /// World to scrape.
    #[arg(long)]
    pub world: String,
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Do not write to the store.
    #[arg(long)]
    pub no_store: bool,
    /// Print what every `[site.selectors]` key matches on the live pages
    /// (counts, first values, world titles, routine times, nearest elements
    /// when nothing matched) instead of scraping; stores nothing.
    #[arg(long)]
    pub explain: bool,
}

/// `worldpool demo-site`.
#[derive(Debug, Clone, Args)]
pub struct DemoSiteArgs {
    /// Port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Seconds between site updates.
    #[arg(long, default_value_t = 5.0)]
    pub tick_seconds: f64,
    /// Page layout: `table` (the real site's shape) or `alt` (a table-free
    /// redesign, read by config/examples/alt-layout.toml).
    #[arg(long, value_enum, default_value = "table")]
    pub layout: crate::demo_site::Layout,
}

/// `worldpool demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// API address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub api_bind: std::net::SocketAddr,
    /// SQLite database file.
    #[arg(long, default_value = "data/demo.db")]
    pub db: PathBuf,
}

/// `worldpool status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:5000", env = "WORLDPOOL_API")]
    pub api: String,
}

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
    /// Test-only behaviours, used by the integration tests.
    #[arg(long, hide = true, value_enum)]
    pub test_mode: Option<crate::worker::TestMode>,
}
