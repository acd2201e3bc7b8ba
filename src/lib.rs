//! worldpool: a process-pool scraping orchestrator.
//!
//! The binary is thin (`main.rs`); everything lives here so that tests and
//! benchmarks can reach it. Module map:
//!
//! - [`config`]: the TOML config, validated with every problem reported.
//! - [`supervise`]: `worldpool run`: worker specs from the config, the pool,
//!   signals, the API.
//! - [`worker`]: the worker process entry point (`worldpool worker`).
//! - [`site`], [`scrape`]: fetching and parsing the ranking site, the scrape loop.
//! - [`store`]: runs, players and deltas in SQLite or PostgreSQL.
//! - [`demo_site`]: an offline copy of the site with fault injection.
//! - [`api`]: the REST API (axum) and `worldpool status`.
//! - [`bench`]: `worldpool bench`.

use std::process::ExitCode;

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo_site;
pub mod logging;
pub mod scrape;
pub mod site;
pub mod store;
pub mod supervise;
pub mod worker;

use cli::Command;

/// Run one subcommand; returns the process exit code.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        // The worker builds its own small runtime (few threads, small
        // blocking pool) so it starts under tight memory limits.
        Command::Worker(args) => worker::main(args),
        Command::CheckConfig(args) => Ok(check_config(&args.config)),
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
        Command::Run(args) => supervise::run(args).await,
        Command::ScrapeOnce(args) => scrape::scrape_once_cmd(args).await,
        Command::DemoSite(args) => demo_site::serve_cmd(args).await,
        Command::Demo(args) => demo_site::demo_cmd(args).await,
        Command::Status(args) => api::status_cmd(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Worker(_) | Command::CheckConfig(_) => unreachable!("dispatched synchronously"),
    }
}

/// `worldpool check-config`: 0 when valid, 2 with every problem otherwise.
pub fn check_config(path: &std::path::Path) -> ExitCode {
    match config::Config::load(path) {
        Ok(c) => {
            println!(
                "{}: valid ({} world{}, {} mode)",
                path.display(),
                c.worlds.len(),
                if c.worlds.len() == 1 { "" } else { "s" },
                match c.pool.mode {
                    config::Mode::Pool => "pool",
                    config::Mode::Single => "single",
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(2)
        }
    }
}
