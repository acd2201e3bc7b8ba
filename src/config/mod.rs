//! The TOML configuration: parsing, validation with every problem reported
//! together (file, key, what is wrong, how to fix), and conversion into the
//! typed settings the rest of the program uses.
//!
//! This file holds the typed config and its public API; `raw` the config as
//! written, `diagnostics` the TOML errors and unknown keys (did you mean),
//! `validate` the conversion with its checks, `environment` the checks
//! against the machine (hard limits, API token).

mod diagnostics;
mod environment;
mod raw;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pool::{Limits, RestartPolicy};
use serde::Deserialize;

use self::diagnostics::{KeyPath, toml_problem, unknown_key_problems};
pub use self::environment::{API_TOKEN_ENV, Environment, bind_problem};
use self::raw::RawConfig;
use self::validate::Validator;
pub use self::validate::{parse_hh_mm, parse_utc_offset};
use crate::logging::LogSettings;
pub use crate::site::SiteSettings;

/// Default config path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/worlds.toml";

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Dotted key, e.g. `worlds[2].limits.memory`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// A config that could not be loaded: every problem, with the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {} problem{} in the config",
            self.path.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {}: {}: {}", self.path.display(), p.key, p.message)?;
            writeln!(f, "      fix: {}", p.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The status watcher's worker name in the pool (`/api/workers/watcher`),
/// so no world of a pool with a watcher can take it.
pub const WATCHER_NAME: &str = "watcher";

/// The one worker's name in single mode.
pub const SINGLE_WORKER: &str = "single";

/// Pool or single mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One worker process per world.
    Pool,
    /// One worker process scraping every world in turn.
    Single,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s.trim() {
            "pool" => Ok(Mode::Pool),
            "single" => Ok(Mode::Single),
            other => Err(format!("unknown mode `{other}`: use pool or single")),
        }
    }
}

/// `[pool]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Pool or single mode.
    pub mode: Mode,
    /// Restart policy of every worker.
    pub restart: RestartPolicy,
    /// SIGTERM → SIGKILL grace.
    pub stop_grace: Duration,
    /// CPU/RSS sampling period.
    pub sample_interval: Duration,
    /// Nice of the pool's own thread (exits seen, replacements spawned),
    /// -20..=0; applied when the process may raise priorities.
    pub supervisor_nice: i32,
    /// Deadline for a worker's `ready`.
    pub start_timeout: Duration,
    /// Silence after which a worker is hung.
    pub heartbeat_timeout: Duration,
    /// Workers restarted at a time when a reload restarts them all.
    pub reload_parallel: usize,
    /// Reload when the config file changes.
    pub watch_config: bool,
    /// Pool mode: one watcher process reads the status page for every
    /// world and tells the due worlds' workers (`false`: every worker
    /// polls the status page on its own).
    pub watcher: bool,
    /// `[pool] env`: variables set for every worker, on top of the few it
    /// inherits ([`crate::topology::INHERITED_ENV`]).
    pub env: Vec<(String, String)>,
}

/// `[cluster]`: several `worldpool run` nodes on one PostgreSQL share the
/// world list by leases ([`crate::cluster`] is above this module; the
/// settings live here with the rest of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Whether this node is one of a cluster.
    pub enabled: bool,
    /// How long a lease (and a node's row) lives without a renewal.
    pub lease_ttl: Duration,
    /// How often a node renews and rebalances.
    pub renew_every: Duration,
    /// The node's name in the API (default: the host name).
    pub node_name: Option<String>,
}

impl Default for ClusterSettings {
    /// Off; 15 s leases renewed every 5 s.
    fn default() -> Self {
        ClusterSettings {
            enabled: false,
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            node_name: None,
        }
    }
}

impl ClusterSettings {
    /// How long a worker's database session may sit idle inside a
    /// transaction: a third of the TTL (at least 500 ms), so a stopped
    /// worker cannot hold its lease's row past its lease.
    pub fn writer_idle_timeout(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(500))
    }
}

/// `[storage]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageSettings {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Max connections per worker (PostgreSQL).
    pub max_connections: usize,
}

/// `[api]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Whether `worldpool run` serves the API.
    pub enabled: bool,
    /// Connections open at once; beyond it the API stops accepting.
    pub max_connections: usize,
    /// Time for a request head, and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Descriptors below the soft open-files limit the API never takes
    /// (kept for spawning workers).
    pub fd_reserve: u64,
    /// How long open responses run on once shutdown begins.
    pub shutdown_grace: Duration,
    /// How long a client may leave a response unread (one write blocked)
    /// before the connection is cut.
    pub send_timeout: Duration,
    /// Read connections of the API's store (SQLite read-only connections
    /// on threads of their own; the PostgreSQL pool, exports included).
    pub store_readers: usize,
    /// How long one store query of the API may run before it is stopped
    /// and answered 503.
    pub query_timeout: Duration,
    /// CSV exports at once; beyond it 429 with `Retry-After`.
    pub max_exports: usize,
    /// `Host` names the API answers to besides loopback ones and its
    /// bound address (`"*"`: any); others get 421 (DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

/// One `[[worlds]]` entry, with limits merged over `[limits]`.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// World name as the site spells it.
    pub name: String,
    /// Guilds to scrape, in order (first guild wins for a player in two).
    pub guilds: Vec<String>,
    /// Watched ("VIP") players of the world, from the config (those added
    /// at run time live in the store; the worker reads both).
    pub watch: Vec<String>,
    /// Effective limits.
    pub limits: Limits,
    /// Who goes first when the host's budget is short (higher first).
    pub priority: i32,
}

/// A loaded, valid config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[pool]`.
    pub pool: PoolSettings,
    /// `[limits]` defaults.
    pub limits: Limits,
    /// `[site]`.
    pub site: SiteSettings,
    /// `[storage]`.
    pub storage: StorageSettings,
    /// `[api]`.
    pub api: ApiSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[[worlds]]`.
    pub worlds: Vec<World>,
    /// `[cluster]`: several nodes on one PostgreSQL share the worlds.
    pub cluster: ClusterSettings,
}

impl Config {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the text that was validated.
    pub fn load_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                key: "(file)".into(),
                message: format!("cannot read the file: {e}"),
                fix: format!("pass an existing file with --config, e.g. {DEFAULT_PATH}"),
            }],
        })?;
        Config::parse(path, &text).map(|config| (config, text))
    }

    /// Parse and validate TOML text (`path` is for messages).
    /// Every unknown key is reported at once, each with its path, line and
    /// the nearest known key.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        let doc = toml::de::DeTable::parse(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;
        let de =
            toml::de::Deserializer::parse(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;
        let mut unknown = Vec::new();
        let raw: Result<RawConfig, _> =
            serde_ignored::deserialize(de, |p| unknown.push(KeyPath::of(&p)));
        // The unknown keys first, and alone: the checks of the known keys
        // would mostly repeat them (a misspelled `guilds` is a world
        // without guilds).
        let mut problems = unknown_key_problems(text, doc.get_ref(), unknown);
        let raw = match raw {
            Ok(raw) if problems.is_empty() => raw,
            Ok(_) => return Err(fail(problems)),
            Err(e) => {
                problems.push(toml_problem(text, &e));
                return Err(fail(problems));
            }
        };
        let mut v = Validator::default();
        let config = v.config(path, raw);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                path: path.to_path_buf(),
                problems: v.problems,
            })
        }
    }

    /// Look a world up by name.
    pub fn world(&self, name: &str) -> Option<&World> {
        self.worlds.iter().find(|w| w.name == name)
    }

    /// The storage URL, with `DATABASE_URL` taking precedence when set.
    pub fn storage_url(&self) -> String {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => self.storage.url.clone(),
        }
    }
}

/// `[log]` of a config file, read leniently before the full load (the
/// subscriber must exist before anything logs). Anything unreadable gives
/// the defaults: the full load reports it.
pub fn peek_log_settings(path: &Path) -> LogSettings {
    let Ok(text) = std::fs::read_to_string(path) else {
        return LogSettings::default();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return LogSettings::default();
    };
    let log = table.get("log").and_then(|v| v.as_table());
    let get = |k: &str| log.and_then(|t| t.get(k)).and_then(|v| v.as_str());
    LogSettings {
        format: get("format")
            .and_then(|f| f.parse().ok())
            .unwrap_or_default(),
        level: get("level")
            .filter(|l| crate::logging::valid_level(l))
            .map(str::to_string),
    }
}

#[cfg(test)]
fn parse_test(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.toml"), text)
}
