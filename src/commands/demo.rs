//! `worldpool demo`: demo site + pool + SQLite + API, offline, in one command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use chrono::FixedOffset;

use crate::config::Mode;
use crate::demo_site::{DemoSite, DemoSiteOptions};
use crate::import::{CsvFile, ImportOptions};

/// `worldpool demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// API address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub api_bind: SocketAddr,
    /// SQLite database file.
    #[arg(long, default_value = "data/demo.db")]
    pub db: PathBuf,
}

/// Store the demo site's makers (its `ref_main_maker.csv`, through the
/// import code), so the makers page has characters to show; a second demo
/// on the same database writes nothing new.
async fn import_makers(
    site: &DemoSite,
    storage: &str,
    config: &crate::config::Config,
) -> anyhow::Result<()> {
    let store = crate::store::Store::open(storage, 1).await?;
    let file = CsvFile::MainMakers;
    let options = ImportOptions {
        from: file.file_name().into(),
        default_world: None,
        default_guild: None,
        site_offset: FixedOffset::east_opt(config.site.utc_offset_minutes * 60)
            .ok_or_else(|| anyhow::anyhow!("the demo config's utc_offset is out of range"))?,
        reset_minutes: config.site.reset_minutes,
    };
    let csv = site.main_makers_csv().into_bytes();
    crate::import::run_file(&store, file, file.file_name(), csv, &options, false).await?;
    Ok(())
}

/// Run everything until Ctrl-C (or `--duration`).
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let site = DemoSite::start(DemoSiteOptions {
        tick: Some(Duration::from_secs(5)),
        ..DemoSiteOptions::default()
    })
    .await?;
    let storage = format!("sqlite://{}", args.db.display());
    let config_path = PathBuf::from("data/demo.toml");
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&config_path, site.config_toml(&storage, Mode::Pool))?;
    let config = crate::config::Config::load(&config_path)?;
    import_makers(&site, &storage, &config).await?;
    println!(
        "demo: site {} ({} worlds), store {storage}, config {}, API http://{}, dashboard http://{}/",
        site.base_url(),
        site.world_names().len(),
        config_path.display(),
        args.api_bind,
        args.api_bind
    );
    let stop = CancellationToken::new();
    if let Some(secs) = args.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
            stop.cancel();
        });
    }
    let result = crate::supervise::run_with(config, Some(args.api_bind), stop).await;
    site.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
