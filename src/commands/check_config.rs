//! `worldpool check-config`: every problem of a config, against this machine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{Config, DEFAULT_PATH, Environment, Mode};

/// `worldpool check-config`.
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
}

/// 0 when valid, 2 with every problem otherwise. Besides the file itself,
/// checks what `worldpool run` would refuse on this machine: limits above
/// the OS hard limits, a non-loopback API bind without a token.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    let path = &args.config;
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    let bind = config.api.enabled.then_some(config.api.bind);
    if let Err(e) = config.check_environment(&Environment::current(), bind) {
        eprint!("{e}");
        return ExitCode::from(2);
    }
    let n = config.worlds.len();
    println!(
        "{}: valid ({n} world{}, {} mode)",
        path.display(),
        if n == 1 { "" } else { "s" },
        match config.pool.mode {
            Mode::Pool => "pool",
            Mode::Single => "single",
        }
    );
    ExitCode::SUCCESS
}
