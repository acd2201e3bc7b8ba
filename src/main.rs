//! The `worldpool` binary: parse, install tracing, dispatch.

use std::process::ExitCode;

use clap::Parser;
use worldpool::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_worker = matches!(cli.command, Command::Worker(_));
    worldpool::logging::init(cli.log_json, is_worker);
    match worldpool::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
