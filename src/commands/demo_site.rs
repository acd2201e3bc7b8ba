//! `worldpool demo-site`: the offline copy of the ranking site.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::demo_site::{DemoSite, DemoSiteOptions, Layout};

/// `worldpool demo-site`.
#[derive(Debug, Clone, Args)]
pub struct DemoSiteArgs {
    /// Port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Seconds between site updates.
    #[arg(long, default_value_t = 5.0)]
    pub tick_seconds: f64,
    /// Page layout: `table` (the real site's shape) or `alt` (a table-free
    /// redesign, read by config/examples/alt-layout.toml).
    #[arg(long, default_value = "table")]
    pub layout: Layout,
}

/// Serve until Ctrl-C.
pub async fn run(args: DemoSiteArgs) -> anyhow::Result<ExitCode> {
    let tick = (args.tick_seconds > 0.0).then(|| Duration::from_secs_f64(args.tick_seconds));
    let site = DemoSite::start(DemoSiteOptions {
        port: args.port,
        tick,
        layout: args.layout,
        ..DemoSiteOptions::default()
    })
    .await?;
    println!("demo site on {} (Ctrl-C stops)", site.base_url());
    println!("worlds: {}", site.world_names().join(", "));
    if args.layout == Layout::Alt {
        println!("layout: alt (read it with config/examples/alt-layout.toml)");
    }
    println!(
        "faults: curl -X POST {}/_faults -d '{{\"kind\":\"status503\",\"times\":3}}' -H 'content-type: application/json'",
        site.base_url()
    );
    tokio::signal::ctrl_c().await?;
    site.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
