//! The `worldpool-worker` binary: the process `worldpool run` spawns for
//! each world (and `scrape-once`). Parse, install tracing, dispatch; it
//! links the scrape path and the store, never the API, the demo site or
//! the benchmark.

use std::process::ExitCode;

use clap::Parser;
use worldpool::commands::{WorkerCli, dispatch_worker};

fn main() -> ExitCode {
    let cli = WorkerCli::parse();
    worldpool::logging::init(&cli.log_settings(), cli.is_worker(), false);
    match dispatch_worker(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
