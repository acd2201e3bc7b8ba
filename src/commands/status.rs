//! `worldpool status`: a `pm2 ls`-like table of a running pool.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;

use crate::api::{
    fetch_cluster, fetch_hosts, fetch_rows, render_cluster, render_hosts, render_table,
};

/// `worldpool status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:5000", env = "WORLDPOOL_API")]
    pub api: String,
    /// Show the cluster as this node sees it (nodes, leases with owner and
    /// epoch, alarms) instead of the workers.
    #[arg(long)]
    pub cluster: bool,
}

/// Fetch `/api/workers` and print the table, then the pool's budget per
/// host (`/api/budget`); with `--cluster`, the cluster's nodes and leases
/// (`/api/cluster`).
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    if args.cluster {
        print!("{}", render_cluster(&fetch_cluster(&args.api).await?));
        return Ok(ExitCode::SUCCESS);
    }
    let rows = fetch_rows(&args.api).await?;
    print!("{}", render_table(&rows, Utc::now()));
    print!("{}", render_hosts(&fetch_hosts(&args.api).await?));
    Ok(ExitCode::SUCCESS)
}
