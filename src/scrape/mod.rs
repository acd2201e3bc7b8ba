//! The scrape loop: check the status page, scrape due worlds, store runs. (Stub.)

use std::process::ExitCode;

use crate::cli::ScrapeOnceArgs;

/// `worldpool scrape-once`.
pub async fn scrape_once_cmd(args: ScrapeOnceArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}

/// The worker's scrape loop over `worlds` (one in pool mode, all in single
/// mode) until `shutdown` is cancelled. Reports phases and runs through
/// `reporter`. Returns Ok on a clean shutdown.
pub async fn run_worker(
    config: crate::config::Config,
    worlds: Vec<String>,
    reporter: crate::worker::Reporter,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let _ = (config, worlds, reporter);
    shutdown.cancelled().await;
    Ok(())
}
