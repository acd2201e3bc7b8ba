//! The worker process: `worldpool worker --world NAME --config PATH`. (Stub.)

use std::process::ExitCode;

use crate::cli::WorkerArgs;

mod reporter;

pub use reporter::Reporter;

/// Test-only behaviours of the worker (hidden flag `--test-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestMode {
    /// Report ready and heartbeats, do nothing else.
    Idle,
    /// Allocate without bound.
    Alloc,
    /// Spin on the CPU.
    Spin,
    /// Report ready, then stop sending heartbeats.
    NoHeartbeat,
    /// Exit with status 1 at start, every time.
    FailStart,
    /// Ignore SIGTERM.
    IgnoreTerm,
}

/// Entry point of the worker process.
pub fn main(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
