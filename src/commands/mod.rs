//! The command line: one file per verb, each owning its arguments and its
//! `run()`. The domain below takes plain parameters and never imports clap:
//! arrows point down, commands → domain → `pool`.
//!
//! Two binaries share the library. `worldpool` ([`Cli`], [`dispatch`]) is
//! the supervisor and the tools; it never links the scrape path (HTML
//! parsing, the HTTP client, TLS). `worldpool-worker` ([`WorkerCli`],
//! [`dispatch_worker`]) is the process the supervisor spawns, and runs
//! `scrape-once`; it never links the API, the demo site or the benchmark.
//! `worldpool worker …` and `worldpool scrape-once …` still work: they
//! exec `worldpool-worker` (found beside `worldpool`) with the same
//! arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::{LogFormat, LogSettings};

pub mod bench;
pub mod check_config;
pub mod demo;
pub mod demo_site;
pub mod import;
pub mod reload;
pub mod run;
pub mod scrape_once;
pub mod status;
pub mod worker;

/// worldpool: one supervised scraper process per game world.
#[derive(Debug, Parser)]
#[command(name = "worldpool", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format: `text` (human, coloured on a terminal) or `json` (one
    /// object per line, for log shippers). Overrides `[log] format`.
    #[arg(long, global = true, env = "WORLDPOOL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Same as `--log-format json` (kept for older scripts).
    #[arg(long, global = true, hide = true, env = "WORLDPOOL_LOG_JSON")]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pool (or the single scraper) from a config, with the API.
    Run(run::RunArgs),
    /// Validate a config: print every problem, exit 2 on error.
    CheckConfig(check_config::CheckConfigArgs),
    /// One check-and-scrape of one world now, printing what was extracted.
    ScrapeOnce(scrape_once::ScrapeOnceArgs),
    /// Serve an offline copy of the ranking site on 127.0.0.1.
    DemoSite(demo_site::DemoSiteArgs),
    /// Run everything offline: demo site + pool + SQLite store + API.
    Demo(demo::DemoArgs),
    /// Show the workers of a running pool as a table.
    Status(status::StatusArgs),
    /// Reload the config of a running pool: exit 0 with the plan, 2 with
    /// every problem of a refused config.
    Reload(reload::ReloadArgs),
    /// Import the replaced system's data folder or SQLite file into the store.
    Import(import::ImportArgs),
    /// Benchmark pool against single mode end to end, with chaos.
    Bench(Box<bench::BenchArgs>),
    /// (internal) The worker process the supervisor re-executes.
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

impl Cli {
    /// The config file the command reads, if it reads one (for `[log]`).
    fn config_path(&self) -> Option<&PathBuf> {
        match &self.command {
            Command::Run(a) => Some(&a.config),
            Command::ScrapeOnce(a) => Some(&a.config),
            Command::Worker(a) => Some(&a.config),
            Command::Import(a) => Some(&a.config),
            _ => None,
        }
    }

    /// Log settings: the flag, else `[log]` of the command's config, else
    /// the defaults (`RUST_LOG` wins over `[log] level` either way).
    pub fn log_settings(&self) -> LogSettings {
        log_settings(self.config_path(), self.log_json, self.log_format)
    }

    /// Whether this process is a pool worker (its log lines are re-emitted
    /// by the supervisor, which adds time and world).
    pub fn is_worker(&self) -> bool {
        matches!(self.command, Command::Worker(_))
    }

    /// Whether this process supervises a pool (`run`, `demo`): its log
    /// goes through a queue so that a stderr nobody reads never holds the
    /// pool (see [`crate::logging::flush`]).
    pub fn supervises(&self) -> bool {
        matches!(self.command, Command::Run(_) | Command::Demo(_))
    }
}

fn log_settings(
    config: Option<&PathBuf>,
    log_json: bool,
    log_format: Option<LogFormat>,
) -> LogSettings {
    let mut settings = config
        .map(|p| crate::config::peek_log_settings(p))
        .unwrap_or_default();
    if log_json {
        settings.format = LogFormat::Json;
    }
    if let Some(format) = log_format {
        settings.format = format;
    }
    settings
}

/// Run one subcommand of `worldpool`; returns the process exit code.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        // Scraping lives in the worker binary: become it, same arguments.
        Command::Worker(_) | Command::ScrapeOnce(_) => exec_worker_binary(),
        Command::CheckConfig(args) => Ok(check_config::run(&args)),
        Command::Run(args) => {
            crate::memory::limit_malloc_arenas(1);
            crate::memory::supervisor_runtime()?.block_on(run::run(args))
        }
        other => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(dispatch_async(other))
        }
    }
}

async fn dispatch_async(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::DemoSite(args) => demo_site::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Reload(args) => reload::run(args).await,
        Command::Bench(args) => bench::run(*args).await,
        Command::Import(args) => import::run(args).await,
        Command::Run(_) | Command::Worker(_) | Command::ScrapeOnce(_) | Command::CheckConfig(_) => {
            anyhow::bail!("internal error: a synchronous command reached the async dispatcher")
        }
    }
}

/// Replace this process with `worldpool-worker` and the same arguments.
fn exec_worker_binary() -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt as _;
    let program = crate::supervise::worker_binary()?;
    let error = std::process::Command::new(&program)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(anyhow::Error::new(error).context(format!("cannot run {}", program.display())))
}

/// `worldpool-worker`: the worker process the supervisor spawns, and
/// `scrape-once`.
#[derive(Debug, Parser)]
#[command(
    name = "worldpool-worker",
    version,
    about = "worldpool's worker process (started by `worldpool run`) and `scrape-once`",
    propagate_version = true
)]
pub struct WorkerCli {
    /// Log format: `text` or `json`. Overrides `[log] format`.
    #[arg(long, global = true, env = "WORLDPOOL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Same as `--log-format json`.
    #[arg(long, global = true, hide = true, env = "WORLDPOOL_LOG_JSON")]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: WorkerCommand,
}

/// Subcommands of `worldpool-worker`.
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// The worker process (`worldpool run` starts it, channel on fd 3).
    Worker(worker::WorkerArgs),
    /// One check-and-scrape of one world now, printing what was extracted.
    ScrapeOnce(scrape_once::ScrapeOnceArgs),
}

impl WorkerCli {
    /// Log settings, as [`Cli::log_settings`].
    pub fn log_settings(&self) -> LogSettings {
        let config = match &self.command {
            WorkerCommand::Worker(a) => &a.config,
            WorkerCommand::ScrapeOnce(a) => &a.config,
        };
        log_settings(Some(config), self.log_json, self.log_format)
    }

    /// Whether this process is a pool worker.
    pub fn is_worker(&self) -> bool {
        matches!(self.command, WorkerCommand::Worker(_))
    }
}

/// Run one subcommand of `worldpool-worker`.
pub fn dispatch_worker(command: WorkerCommand) -> anyhow::Result<ExitCode> {
    match command {
        // The worker builds its own small runtime (few threads, small
        // blocking pool) so it starts under tight memory limits.
        WorkerCommand::Worker(args) => worker::run(args),
        WorkerCommand::ScrapeOnce(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(scrape_once::run(args))
        }
    }
}
