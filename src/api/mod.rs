//! The REST API (axum) and `worldpool status`. (Stub.)

use std::process::ExitCode;

use crate::cli::StatusArgs;

/// `worldpool status`.
pub async fn status_cmd(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
