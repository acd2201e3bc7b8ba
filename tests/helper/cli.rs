//! One-shot runs of the `worldpool` command line (`check-config`,
//! `scrape-once`, `import`, `status`, `reload`, `bench`, …): the config
//! they read, the command with nothing of the test's environment leaking
//! in, and its output taken off the async runtime. `worldpool run` is
//! [`super::supervisor`]'s.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use worldpool::config::Config;

use super::bin;

/// `worldpool ARGS…`: stdin closed, `RUST_LOG=warn`, and none of the test's
/// own API token, database URL, worker program or log format leaking in
/// (a test that needs one sets it on the command).
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove(worldpool::api::TOKEN_ENV)
        .env_remove("DATABASE_URL")
        .env_remove(worldpool::supervise::WORKER_PROGRAM_ENV)
        .env_remove("WORLDPOOL_LOG_FORMAT")
        .env_remove("WORLDPOOL_LOG_JSON")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// `worldpool check-config --config CONFIG`.
pub fn check_config(config: &Path) -> Command {
    let mut cmd = command(["check-config", "--config"]);
    cmd.arg(config);
    cmd
}

/// `worldpool scrape-once --world WORLD --config CONFIG EXTRA…`, on
/// `database_url` (`DATABASE_URL`) when given, else the config's store.
pub fn scrape_once(
    config: &Path,
    world: &str,
    database_url: Option<&str>,
    extra: &[&str],
) -> Command {
    let mut cmd = command(["scrape-once", "--world", world, "--config"]);
    cmd.arg(config).args(extra);
    if let Some(db) = database_url {
        cmd.env("DATABASE_URL", db);
    }
    cmd
}

/// Run a command to its end off the runtime (a demo site or API served on
/// the runtime answers meanwhile).
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("join")
}

/// Write `text` as `DIR/worldpool.toml` and load it (it must be valid).
pub fn write_config(dir: &Path, text: &str) -> (PathBuf, Config) {
    let path = dir.join("worldpool.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("generated config is valid: {e}"));
    (path, config)
}
