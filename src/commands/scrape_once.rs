//! `worldpool scrape-once`: one check-and-scrape of one world, printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{Config, DEFAULT_PATH};
use crate::scrape::{ScrapeOnceOutput, VipStatus, explain_world, scrape_once};
use crate::store::VipReadOutcome;

/// `worldpool scrape-once`.
#[derive(Debug, Clone, Args)]
pub struct ScrapeOnceArgs {
    /// World to scrape.
    #[arg(long)]
    pub world: String,
    /// Config file.
    #[arg(long, short, default_value = DEFAULT_PATH, env = "WORLDPOOL_CONFIG")]
    pub config: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Do not write to the store.
    #[arg(long)]
    pub no_store: bool,
    /// Print what every `[site.selectors]` key matches on the live pages
    /// (counts, first values, world titles, routine times, nearest elements
    /// when nothing matched) instead of scraping; stores nothing.
    #[arg(long)]
    pub explain: bool,
}

/// Scrape, store (unless `--no-store`), print.
pub async fn run(args: ScrapeOnceArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.explain {
        let report = explain_world(&config, &args.world).await?;
        print!("{report}");
        return Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let out = scrape_once(&config, &args.world, !args.no_store).await?;
    for g in &out.unknown_guilds {
        eprintln!(
            "warning: the site does not know guild `{g}` of {}: zero rows",
            out.world
        );
    }
    for w in &out.watched {
        match &w.status {
            VipStatus::Unknown => eprintln!(
                "warning: the site does not know watched player `{}` of {}",
                w.name, out.world
            ),
            VipStatus::Failed { error } => {
                eprintln!("warning: watched player `{}`: {error}", w.name)
            }
            _ => {}
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print!("{}", table(&out, args.no_store));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(out: &ScrapeOnceOutput, no_store: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — update {} — {} players, {} deltas, {}",
        out.world,
        out.update_time.to_rfc3339(),
        out.players.len(),
        out.deltas.len(),
        if out.stored {
            "stored"
        } else if no_store {
            "not stored (--no-store)"
        } else {
            "already stored"
        }
    );
    let _ = writeln!(
        s,
        "{:<28} {:<20} {:<16} {:>5} {:>14} {:>12}",
        "NAME", "GUILD", "VOCATION", "LEVEL", "EXPERIENCE", "DELTA"
    );
    for p in &out.players {
        let delta = out
            .deltas
            .iter()
            .find(|d| d.name == p.name)
            .map(|d| d.delta.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<28} {:<20} {:<16} {:>5} {:>14} {:>12}",
            p.name, p.guild, p.vocation, p.level, p.experience, delta
        );
    }
    if !out.watched.is_empty() {
        let _ = writeln!(s, "watched players:");
        let _ = writeln!(
            s,
            "{:<28} {:<10} {:>14} {:>8} RECORDED",
            "NAME", "DAY", "RAW XP", "ONLINE"
        );
        for w in &out.watched {
            let (day, recorded) = match &w.status {
                VipStatus::Stored { day, recorded } => (
                    Some(day),
                    match recorded {
                        VipReadOutcome::Baseline => "baseline".to_string(),
                        VipReadOutcome::Rebased => "re-based (daily reset)".to_string(),
                        VipReadOutcome::Unchanged => "unchanged".to_string(),
                        VipReadOutcome::AlreadyStored => "already stored".to_string(),
                        VipReadOutcome::Delta(d) => {
                            format!("delta {:+} xp, {:+} min", d.delta_exp, d.delta_online)
                        }
                    },
                ),
                VipStatus::Read { day } => (Some(day), "not stored".to_string()),
                VipStatus::NoDays => (None, "no days on the page yet".to_string()),
                VipStatus::Unknown => (None, "unknown to the site".to_string()),
                VipStatus::Failed { error } => (None, format!("failed: {error}")),
            };
            let _ = match day {
                Some(d) => writeln!(
                    s,
                    "{:<28} {:<10} {:>14} {:>8} {recorded}",
                    w.name,
                    d.date.format("%d/%m/%Y"),
                    d.raw_xp,
                    d.online_minutes
                ),
                None => writeln!(
                    s,
                    "{:<28} {:<10} {:>14} {:>8} {recorded}",
                    w.name, "-", "-", "-"
                ),
            };
        }
    }
    s
}
