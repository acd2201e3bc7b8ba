//! `worldpool import`: bring the replaced system's data into the store.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::FixedOffset;
use clap::Args;

use crate::config::{Config, DEFAULT_PATH};
use crate::import::{ImportError, ImportOptions};

/// `worldpool import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The replaced system's data folder (exps.csv, deltas.csv, vips.txt,
    /// vipsdata.csv, deltavip.csv, last_reset.txt) or its SQLite file.
    #[arg(long)]
    pub from: PathBuf,
    /// Report what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// World of rows from old files without a `world` column.
    #[arg(long)]
    pub default_world: Option<String>,
    /// Guild of rows from old files without a `guild` column.
    #[arg(long)]
    pub default_guild: Option<String>,
    /// Config file (its store, site time zone and reset time are used).
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
}

/// Import and print the summary. Exit 2 on a config error, 1 when the
/// import failed (nothing written).
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let options = ImportOptions {
        from: args.from.clone(),
        default_world: args.default_world.clone(),
        default_guild: args.default_guild.clone(),
        site_offset: FixedOffset::east_opt(config.site.utc_offset_minutes * 60)
            .ok_or_else(|| anyhow::anyhow!("[site] utc_offset is out of range"))?,
        reset_minutes: config.site.reset_minutes,
    };
    let store =
        crate::store::Store::open(&config.storage_url(), config.storage.max_connections).await?;
    match crate::import::run(&store, &options, args.dry_run).await {
        Ok(summary) => {
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ImportError::Store(_)) => Err(e.into()),
        Err(e) => {
            eprintln!("import failed, nothing was written: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
