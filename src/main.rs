//! The `worldpool` binary (the supervisor and the tools): parse, install
//! tracing, dispatch. The worker process is `worldpool-worker`
//! (`src/bin/worldpool-worker.rs`).

use std::process::ExitCode;

use clap::Parser;
use worldpool::commands::{Cli, dispatch};

fn main() -> ExitCode {
    let cli = Cli::parse();
    worldpool::logging::init(&cli.log_settings(), cli.is_worker());
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
