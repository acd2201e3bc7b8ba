//! The `worldpool` binary (the supervisor and the tools): parse, install
//! tracing, dispatch. The worker process is `worldpool-worker`
//! (`src/bin/worldpool-worker.rs`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use worldpool::commands::{Cli, dispatch};

fn main() -> ExitCode {
    let cli = Cli::parse();
    worldpool::logging::init(&cli.log_settings(), cli.is_worker(), cli.supervises());
    let result = dispatch(cli.command);
    // Queued log lines first (a stderr nobody reads must not hold the exit).
    worldpool::logging::flush(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
