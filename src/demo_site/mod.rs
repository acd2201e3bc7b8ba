//! An offline copy of the ranking site, and `worldpool demo`. (Stub.)

use std::process::ExitCode;

use crate::cli::{DemoArgs, DemoSiteArgs};

/// `worldpool demo-site`.
pub async fn serve_cmd(args: DemoSiteArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}

/// `worldpool demo`.
pub async fn demo_cmd(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
