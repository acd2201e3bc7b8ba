//! The scrape loop: check the status page, scrape due worlds, store runs. (Stub.)

use std::process::ExitCode;

use crate::cli::ScrapeOnceArgs;

/// `worldpool scrape-once`.
pub async fn scrape_once_cmd(args: ScrapeOnceArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
