//! The TOML configuration: parsing, validation with every problem reported
//! together (file, key, what is wrong, how to fix), and conversion into the
//! typed settings the rest of the program uses.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pool::units::{parse_bytes, parse_duration};
use pool::{Backoff, Limits, RestartMode, RestartPolicy};
use serde::Deserialize;

use crate::logging::{LogFormat, LogSettings};
use crate::site::Selectors;
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

fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let location = line
        .map(|l| format!("line {l}"))
        .unwrap_or_else(|| "(file)".to_string());
    let message = e.message().trim().to_string();
    let fix = if message.contains("missing field") {
        "add the key; config/worlds.toml documents every key".to_string()
    } else {
        "fix the TOML syntax or the value's type at that line".to_string()
    };
    Problem {
        key: location,
        message,
        fix,
    }
}

/// Where a key sits in the config: `worlds`, `[1]`, `guild`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The path of a key, as `serde_ignored` reports the keys no field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath(Vec<Segment>);

impl KeyPath {
    fn of(path: &serde_ignored::Path<'_>) -> KeyPath {
        use serde_ignored::Path;
        match path {
            Path::Root => KeyPath(Vec::new()),
            Path::Seq { parent, index } => {
                let mut p = KeyPath::of(parent);
                p.0.push(Segment::Index(*index));
                p
            }
            Path::Map { parent, key } => {
                let mut p = KeyPath::of(parent);
                p.0.push(Segment::Key(key.clone()));
                p
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => KeyPath::of(parent),
        }
    }

    /// The last key (the unknown one).
    fn last_key(&self) -> String {
        match self.0.last() {
            Some(Segment::Key(k)) => k.clone(),
            Some(Segment::Index(i)) => format!("[{i}]"),
            None => String::new(),
        }
    }

    /// The 1-based line of the key in `doc` (parsed from `text`).
    fn line(&self, text: &str, doc: &toml::de::DeTable<'_>) -> Option<usize> {
        use toml::de::DeValue;
        let mut table = Some(doc);
        let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
        let mut span = None;
        for segment in &self.0 {
            let value = match segment {
                Segment::Key(k) => {
                    let (key, value) =
                        table?.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                    span = Some(key.span());
                    value
                }
                Segment::Index(i) => array?.get(*i)?,
            };
            (table, array) = match value.get_ref() {
                DeValue::Table(t) => (Some(t), None),
                DeValue::Array(a) => (None, Some(&a[..])),
                _ => (None, None),
            };
        }
        let start = span?.start.min(text.len());
        Some(text[..start].matches('\n').count() + 1)
    }

    /// The keys known where this key sits (its parent's fields).
    fn known_keys(&self) -> Option<&'static [&'static str]> {
        use Segment::{Index, Key};
        let parent = &self.0[..self.0.len().saturating_sub(1)];
        Some(match parent {
            [] => fields_of::<RawConfig>(),
            [Key(table)] => match table.as_str() {
                "pool" => fields_of::<RawPool>(),
                "limits" => fields_of::<RawLimits>(),
                "site" => fields_of::<RawSite>(),
                "storage" => fields_of::<RawStorage>(),
                "api" => fields_of::<RawApi>(),
                "log" => fields_of::<RawLog>(),
                _ => return None,
            },
            [Key(worlds), Index(_)] if worlds == "worlds" => fields_of::<RawWorld>(),
            [Key(worlds), Index(_), Key(limits)] if worlds == "worlds" && limits == "limits" => {
                fields_of::<RawLimits>()
            }
            _ => return None,
        })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One problem per unknown key, in the order of the file: its path and
/// line, and the nearest known key.
fn unknown_key_problems(
    text: &str,
    doc: &toml::de::DeTable<'_>,
    unknown: Vec<KeyPath>,
) -> Vec<Problem> {
    let mut found: Vec<(Option<usize>, Problem)> = unknown
        .into_iter()
        .map(|path| {
            let line = path.line(text, doc);
            let name = path.last_key();
            let key = match line {
                Some(l) => format!("{path} (line {l})"),
                None => path.to_string(),
            };
            let known: Vec<String> = path
                .known_keys()
                .unwrap_or_default()
                .iter()
                .map(|k| k.to_string())
                .collect();
            let fix = match nearest(&name, &known) {
                Some(best) => {
                    format!("did you mean `{best}`? (config/worlds.toml documents every key)")
                }
                None if known.is_empty() => {
                    "remove or rename the key; config/worlds.toml documents every key".to_string()
                }
                None => format!(
                    "remove or rename the key; known keys here: {}",
                    known.join(", ")
                ),
            };
            let problem = Problem {
                key,
                message: format!("unknown key `{name}`"),
                fix,
            };
            (line, problem)
        })
        .collect();
    found.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The field names of a derived `Deserialize` struct: serde hands them to
/// `deserialize_struct`, and this deserializer only listens for them.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor, value::Error};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(Error::custom("only the fields were asked for"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// The known key closest to `unknown` (edit distance at most a third of
/// its length, at least 2), if any.
fn nearest<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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

/// Environment variable holding the API's control token.
pub const API_TOKEN_ENV: &str = "WORLDPOOL_API_TOKEN";

/// What a config is checked against on this machine (beyond the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Hard RLIMIT_CPU in seconds (`None` = unlimited).
    pub cpu_hard: Option<u64>,
    /// Hard RLIMIT_DATA in bytes (`None` = unlimited).
    pub data_hard: Option<u64>,
    /// Hard RLIMIT_NOFILE (`None` = unlimited).
    pub nofile_hard: Option<u64>,
    /// Whether [`API_TOKEN_ENV`] holds a non-empty token.
    pub api_token_set: bool,
}

impl Environment {
    /// This process's hard limits (which its workers inherit) and token.
    pub fn current() -> Environment {
        use rlimit::Resource;
        let hard = |r: Resource| match rlimit::getrlimit(r) {
            Ok((_, hard)) if hard != rlimit::INFINITY => Some(hard),
            _ => None,
        };
        Environment {
            cpu_hard: hard(Resource::CPU),
            data_hard: hard(Resource::DATA),
            nofile_hard: hard(Resource::NOFILE),
            api_token_set: std::env::var(API_TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty()),
        }
    }
}

impl Config {
    /// What would go wrong on a machine: a limit above the OS hard limit
    /// (every spawn of that worker would be refused), a non-loopback
    /// `api_bind` without a token (`worldpool run` refuses to serve it).
    /// Every problem, with key and fix.
    pub fn check_environment(
        &self,
        env: &Environment,
        api_bind: Option<SocketAddr>,
    ) -> Result<(), ConfigError> {
        let mut problems = self.limit_problems(env);
        problems.extend(bind_problem(env, api_bind));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                path: self.path.clone(),
                problems,
            })
        }
    }

    /// Limits above the OS hard limits, per world (or `[limits]` in single
    /// mode).
    pub fn limit_problems(&self, env: &Environment) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut check = |key: String, what: &str, value: u64, shown: String, hard: Option<u64>| {
            if let Some(hard) = hard
                && value > hard
            {
                problems.push(Problem {
                    key,
                    message: format!(
                        "{shown} is above this machine's hard limit of {hard} for {what}: \
                         every start of the worker would be refused"
                    ),
                    fix: format!(
                        "use at most {hard}, or raise the hard limit of the user that runs \
                         worldpool (ulimit -H, limits.conf or the service manager)"
                    ),
                });
            }
        };
        let mut sets: Vec<(String, &Limits)> = vec![("limits".to_string(), &self.limits)];
        if self.pool.mode == Mode::Pool {
            sets = self
                .worlds
                .iter()
                .enumerate()
                .map(|(i, w)| (format!("worlds[{i}] ({}) limits", w.name), &w.limits))
                .collect();
        }
        for (prefix, limits) in sets {
            if let Some(cpu) = limits.cpu_time {
                // The pool sets soft = ceil(seconds), hard = soft + 1.
                let hard_needed = cpu.as_secs_f64().ceil().max(1.0) as u64 + 1;
                check(
                    format!("{prefix}.cpu_time"),
                    "RLIMIT_CPU (seconds)",
                    hard_needed,
                    format!("{}s (+1s hard)", hard_needed - 1),
                    env.cpu_hard,
                );
            }
            if let Some(mem) = limits.memory {
                check(
                    format!("{prefix}.memory"),
                    "RLIMIT_DATA (bytes)",
                    mem,
                    format!("{mem} bytes"),
                    env.data_hard,
                );
            }
            if let Some(files) = limits.open_files {
                check(
                    format!("{prefix}.open_files"),
                    "RLIMIT_NOFILE",
                    files,
                    files.to_string(),
                    env.nofile_hard,
                );
            }
        }
        problems
    }
}

/// A non-loopback API address without a control token.
pub fn bind_problem(env: &Environment, api_bind: Option<SocketAddr>) -> Option<Problem> {
    let bind = api_bind?;
    (!bind.ip().is_loopback() && !env.api_token_set).then(|| Problem {
        key: "api.bind".into(),
        message: format!(
            "{bind} is not a loopback address and {API_TOKEN_ENV} is not set: \
             `worldpool run` refuses to serve the API there"
        ),
        fix: format!(
            "set {API_TOKEN_ENV} to a secret, or bind \"127.0.0.1:{}\"",
            bind.port()
        ),
    })
}

// ---------------------------------------------------------------------------
// Raw (as written) structures. Without `deny_unknown_fields`: the keys no
// field takes are collected by `serde_ignored` ([`Config::parse`]), every
// one of them at once, with its path.

#[derive(Debug, Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    pool: RawPool,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    site: RawSite,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    worlds: Vec<RawWorld>,
}

#[derive(Debug, Deserialize, Default)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct RawPool {
    mode: Option<Mode>,
    restart: Option<String>,
    min_uptime: Option<String>,
    backoff_initial: Option<String>,
    backoff_multiplier: Option<f64>,
    backoff_max: Option<String>,
    backoff_jitter: Option<f64>,
    max_restarts: Option<u32>,
    window: Option<String>,
    fatal_retry: Option<String>,
    stop_grace: Option<String>,
    sample_interval: Option<String>,
    start_timeout: Option<String>,
    heartbeat_timeout: Option<String>,
    reload_parallel: Option<usize>,
    watch_config: Option<bool>,
    watcher: Option<bool>,
    env: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
struct RawLimits {
    cpu_time: Option<String>,
    memory: Option<String>,
    open_files: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
struct RawSite {
    base_url: Option<String>,
    status_path: Option<String>,
    guild_path: Option<String>,
    player_path: Option<String>,
    request_timeout: Option<String>,
    max_page_size: Option<String>,
    rate_limit: Option<f64>,
    max_concurrent: Option<usize>,
    user_agent: Option<String>,
    retries: Option<u32>,
    retry_backoff: Option<String>,
    proxy: Option<String>,
    poll_interval: Option<String>,
    poll_jitter: Option<f64>,
    budget: Option<String>,
    utc_offset: Option<String>,
    reset_time: Option<String>,
    /// Read as a table first, so retired keys get a problem naming their
    /// replacement instead of a bare "unknown field".
    #[serde(default)]
    selectors: toml::Table,
}

#[derive(Debug, Deserialize, Default)]
struct RawStorage {
    url: Option<String>,
    max_connections: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
struct RawApi {
    bind: Option<String>,
    enabled: Option<bool>,
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    fd_reserve: Option<u64>,
    shutdown_grace: Option<String>,
    send_timeout: Option<String>,
    store_readers: Option<usize>,
    query_timeout: Option<String>,
    max_exports: Option<usize>,
    allowed_hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct RawWorld {
    name: String,
    #[serde(default)]
    guilds: Vec<String>,
    #[serde(default)]
    watch: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
    priority: Option<i32>,
}

// ---------------------------------------------------------------------------
// Validation.

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn problem(&mut self, key: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// `[api] allowed_hosts`: host names (no scheme, path or port), or `*`.
    fn allowed_hosts(&mut self, raw: Vec<String>) -> Vec<String> {
        let mut out = Vec::with_capacity(raw.len());
        for (i, host) in raw.into_iter().enumerate() {
            let h = host.trim();
            let bad = h.is_empty()
                || h.contains("://")
                || h.contains('/')
                || h.chars().any(char::is_whitespace)
                || (!h.starts_with('[') && h.contains(':') && h.matches(':').count() == 1);
            if bad {
                self.problem(
                    &format!("api.allowed_hosts[{i}]"),
                    format!("`{host}` is not a host name"),
                    "write the name clients put in the URL, without scheme, path or port \
                     (\"pool.example.org\", \"10.0.0.5\", \"[fd00::5]\"), or \"*\" for any",
                );
            } else {
                out.push(h.to_string());
            }
        }
        out
    }

    /// `[pool] env`: names a process environment can hold, and never the
    /// API token (the workers parse what the site sends; the control
    /// secret stays in the supervisor).
    fn worker_env(
        &mut self,
        raw: std::collections::BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let key = format!("pool.env.{name}");
            if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0')
            {
                self.problem(
                    &key,
                    "is not a valid environment variable",
                    "use a name without `=` and values without NUL bytes",
                );
            } else if name == API_TOKEN_ENV {
                self.problem(
                    &key,
                    "the API token is never given to workers",
                    "remove it: workers do not need the control secret",
                );
            } else {
                out.push((name, value));
            }
        }
        out
    }

    fn duration(&mut self, key: &str, raw: Option<&String>, default: Duration) -> Duration {
        match raw {
            None => default,
            Some(text) => match parse_duration(text) {
                Ok(d) => d,
                Err(msg) => {
                    self.problem(
                        key,
                        msg,
                        format!(
                            "write a duration such as \"{}\"",
                            pool::units::format_duration(default)
                        ),
                    );
                    default
                }
            },
        }
    }

    fn positive_duration(
        &mut self,
        key: &str,
        raw: Option<&String>,
        default: Duration,
    ) -> Duration {
        let d = self.duration(key, raw, default);
        if d.is_zero() {
            self.problem(key, "must be greater than zero", "write e.g. \"1s\"");
            return default;
        }
        d
    }

    fn limits(&mut self, prefix: &str, raw: &RawLimits, base: &Limits) -> Limits {
        let mut out = base.clone();
        if let Some(text) = &raw.cpu_time {
            let key = format!("{prefix}.cpu_time");
            if text == "unlimited" {
                out.cpu_time = None;
            } else {
                match parse_duration(text) {
                    Ok(d) if d.as_secs() >= 1 => out.cpu_time = Some(d),
                    Ok(_) => self.problem(
                        &key,
                        "RLIMIT_CPU counts whole seconds; below 1s the worker cannot start",
                        "write at least \"1s\", or \"unlimited\"",
                    ),
                    Err(msg) => self.problem(&key, msg, "write e.g. \"1h\", or \"unlimited\""),
                }
            }
        }
        if let Some(text) = &raw.memory {
            let key = format!("{prefix}.memory");
            if text == "unlimited" {
                out.memory = None;
            } else {
                match parse_bytes(text) {
                    Ok(b) if b >= 8 << 20 => out.memory = Some(b),
                    Ok(_) => self.problem(
                        &key,
                        "below 8MiB of heap a tokio + reqwest worker cannot start",
                        "write at least \"8MiB\" (default \"256MiB\"), or \"unlimited\"",
                    ),
                    Err(msg) => self.problem(&key, msg, "write e.g. \"256MiB\", or \"unlimited\""),
                }
            }
        }
        if let Some(n) = raw.open_files {
            if n < 32 {
                self.problem(
                    &format!("{prefix}.open_files"),
                    format!("{n} is too few: TLS roots, sockets and the database need at least 32"),
                    "write at least 32 (default 1024)",
                );
            } else {
                out.open_files = Some(n);
            }
        }
        out
    }

    fn config(&mut self, path: &Path, raw: RawConfig) -> Config {
        let defaults = RestartPolicy::default();
        let p = &raw.pool;
        let mode = match p.restart.as_deref() {
            None | Some("always") => RestartMode::Always,
            Some("on-failure") => RestartMode::OnFailure,
            Some("never") => RestartMode::Never,
            Some(other) => {
                self.problem(
                    "pool.restart",
                    format!("unknown restart policy `{other}`"),
                    "use \"always\", \"on-failure\" or \"never\"",
                );
                RestartMode::Always
            }
        };
        let backoff_default = Backoff::default();
        let multiplier = p.backoff_multiplier.unwrap_or(backoff_default.multiplier);
        if !(1.0..=10.0).contains(&multiplier) {
            self.problem(
                "pool.backoff_multiplier",
                format!("{multiplier} is out of range"),
                "use a factor between 1.0 and 10.0, e.g. 2.0",
            );
        }
        let jitter = p.backoff_jitter.unwrap_or(backoff_default.jitter);
        if !(0.0..=1.0).contains(&jitter) {
            self.problem(
                "pool.backoff_jitter",
                format!("{jitter} is out of range"),
                "use a fraction between 0.0 and 1.0, e.g. 0.2",
            );
        }
        let backoff = Backoff {
            initial: self.positive_duration(
                "pool.backoff_initial",
                p.backoff_initial.as_ref(),
                backoff_default.initial,
            ),
            multiplier,
            max: self.positive_duration(
                "pool.backoff_max",
                p.backoff_max.as_ref(),
                backoff_default.max,
            ),
            jitter,
        };
        if backoff.max < backoff.initial {
            self.problem(
                "pool.backoff_max",
                "is smaller than pool.backoff_initial",
                "make backoff_max at least backoff_initial",
            );
        }
        let fatal_retry = match p.fatal_retry.as_deref() {
            Some("never") => None,
            other => Some(self.positive_duration(
                "pool.fatal_retry",
                other.map(str::to_string).as_ref(),
                Duration::from_secs(300),
            )),
        };
        let max_restarts = p.max_restarts.unwrap_or(defaults.max_restarts);
        if max_restarts == 0 {
            self.problem(
                "pool.max_restarts",
                "0 would make every first crash fatal",
                "use at least 1 (default 10)",
            );
        }
        let restart = RestartPolicy {
            mode,
            min_uptime: self.duration(
                "pool.min_uptime",
                p.min_uptime.as_ref(),
                defaults.min_uptime,
            ),
            backoff,
            max_restarts,
            window: self.positive_duration("pool.window", p.window.as_ref(), defaults.window),
            fatal_retry,
        };
        let heartbeat_timeout = self.positive_duration(
            "pool.heartbeat_timeout",
            p.heartbeat_timeout.as_ref(),
            Duration::from_secs(30),
        );
        let pool = PoolSettings {
            mode: p.mode.unwrap_or(Mode::Pool),
            restart,
            stop_grace: self.duration(
                "pool.stop_grace",
                p.stop_grace.as_ref(),
                Duration::from_secs(10),
            ),
            sample_interval: self.positive_duration(
                "pool.sample_interval",
                p.sample_interval.as_ref(),
                Duration::from_secs(1),
            ),
            start_timeout: self.positive_duration(
                "pool.start_timeout",
                p.start_timeout.as_ref(),
                Duration::from_secs(10),
            ),
            heartbeat_timeout,
            reload_parallel: match p.reload_parallel {
                Some(0) => {
                    self.problem(
                        "pool.reload_parallel",
                        "0 would never restart anything",
                        "use at least 1 (default 2)",
                    );
                    2
                }
                Some(n) => n,
                None => 2,
            },
            watch_config: p.watch_config.unwrap_or(false),
            watcher: p.watcher.unwrap_or(true),
            env: self.worker_env(p.env.clone().unwrap_or_default()),
        };

        let base_limits = Limits {
            cpu_time: None,
            memory: Some(256 << 20),
            open_files: Some(1024),
        };
        let limits = self.limits("limits", &raw.limits, &base_limits);

        let site = self.site(raw.site);
        if site.poll_interval < Duration::from_secs(1) {
            // Fine for tests; nothing to report.
        }
        let storage = {
            let url = raw
                .storage
                .url
                .unwrap_or_else(|| "sqlite://data/worldpool.db".to_string());
            if !(url.starts_with("sqlite://")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                self.problem(
                    "storage.url",
                    format!("`{url}` is not a supported database URL"),
                    "use \"sqlite://data/worldpool.db\" or \"postgres://user@host:5432/db\"",
                );
            }
            let max_connections = raw.storage.max_connections.unwrap_or(2);
            if max_connections == 0 {
                self.problem(
                    "storage.max_connections",
                    "must be at least 1",
                    "use 1 or 2 per worker",
                );
            }
            StorageSettings {
                url,
                max_connections: max_connections.max(1),
            }
        };
        let api = {
            let text = raw.api.bind.unwrap_or_else(|| "127.0.0.1:5000".to_string());
            let bind = match text.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.problem(
                        "api.bind",
                        format!("`{text}` is not an address:port"),
                        "write e.g. \"127.0.0.1:5000\"",
                    );
                    SocketAddr::from(([127, 0, 0, 1], 5000))
                }
            };
            let max_connections = raw.api.max_connections.unwrap_or(512);
            if max_connections == 0 {
                self.problem(
                    "api.max_connections",
                    "must be at least 1",
                    "leave it out for the default, 512",
                );
            }
            let store_readers = raw.api.store_readers.unwrap_or(4);
            let max_exports = raw.api.max_exports.unwrap_or(2);
            if store_readers == 0 {
                self.problem(
                    "api.store_readers",
                    "must be at least 1",
                    "leave it out for the default, 4",
                );
            } else if max_exports >= store_readers {
                self.problem(
                    "api.max_exports",
                    format!(
                        "{max_exports} exports at once would take every one of the \
                         {store_readers} store readers (api.store_readers)"
                    ),
                    "keep api.max_exports below api.store_readers (defaults: 2 and 4)",
                );
            }
            ApiSettings {
                send_timeout: self.positive_duration(
                    "api.send_timeout",
                    raw.api.send_timeout.as_ref(),
                    Duration::from_secs(10),
                ),
                store_readers: store_readers.max(1),
                query_timeout: self.positive_duration(
                    "api.query_timeout",
                    raw.api.query_timeout.as_ref(),
                    Duration::from_secs(5),
                ),
                max_exports,
                bind,
                enabled: raw.api.enabled.unwrap_or(true),
                max_connections: max_connections.max(1),
                header_timeout: self.duration(
                    "api.header_timeout",
                    raw.api.header_timeout.as_ref(),
                    Duration::from_secs(10),
                ),
                fd_reserve: raw.api.fd_reserve.unwrap_or(64),
                shutdown_grace: self.duration(
                    "api.shutdown_grace",
                    raw.api.shutdown_grace.as_ref(),
                    Duration::from_secs(2),
                ),
                allowed_hosts: self.allowed_hosts(raw.api.allowed_hosts.unwrap_or_default()),
            }
        };

        let mut worlds = Vec::new();
        let mut seen = HashSet::new();
        if raw.worlds.is_empty() {
            self.problem(
                "worlds",
                "no [[worlds]] entry",
                "add at least one [[worlds]] table with a name and guilds",
            );
        }
        for (i, w) in raw.worlds.into_iter().enumerate() {
            let key = format!("worlds[{i}]");
            let name = w.name.trim().to_string();
            if name.is_empty() {
                self.problem(
                    &format!("{key}.name"),
                    "is empty",
                    "give the world's name as the site spells it",
                );
                continue;
            }
            if pool.mode == Mode::Pool && pool.watcher && name.eq_ignore_ascii_case(WATCHER_NAME) {
                self.problem(
                    &format!("{key}.name"),
                    format!("`{name}` is the name of the pool's status watcher process"),
                    "set [pool] watcher = false, or tell us: a world of that name is not supported",
                );
            }
            if !seen.insert(name.to_lowercase()) {
                self.problem(
                    &format!("{key}.name"),
                    format!("duplicate world `{name}`"),
                    "list each world once; merge their guilds",
                );
            }
            if w.guilds.is_empty() {
                self.problem(
                    &format!("{key}.guilds"),
                    format!("world `{name}` has no guilds"),
                    "add guilds = [\"Guild Name\", …]",
                );
            }
            let mut guild_seen = HashSet::new();
            for (j, g) in w.guilds.iter().enumerate() {
                if g.trim().is_empty() {
                    self.problem(
                        &format!("{key}.guilds[{j}]"),
                        "is empty",
                        "remove it or write the guild's name",
                    );
                } else if !guild_seen.insert(g.trim().to_lowercase()) {
                    self.problem(
                        &format!("{key}.guilds[{j}]"),
                        format!("guild `{g}` is listed twice"),
                        "list each guild once",
                    );
                }
            }
            let mut watch_seen = HashSet::new();
            let mut watch = Vec::new();
            for (j, n) in w.watch.iter().enumerate() {
                let key = format!("{key}.watch[{j}]");
                match crate::site::check_player_name(n) {
                    Err(why) => self.problem(
                        &key,
                        why,
                        "write the player's name as the site spells it, or remove it",
                    ),
                    Ok(clean) => {
                        if watch_seen.insert(crate::site::player_key(&clean)) {
                            watch.push(clean);
                        } else {
                            self.problem(
                                &key,
                                format!("player `{n}` is listed twice (names are compared ignoring case)"),
                                "list each player once",
                            );
                        }
                    }
                }
            }
            let limits = self.limits(&format!("{key}.limits"), &w.limits, &limits);
            worlds.push(World {
                name,
                guilds: w.guilds.iter().map(|g| g.trim().to_string()).collect(),
                watch,
                limits,
                priority: w.priority.unwrap_or(0),
            });
        }

        let log = self.log(raw.log);
        Config {
            path: path.to_path_buf(),
            pool,
            limits,
            site,
            storage,
            api,
            log,
            worlds,
        }
    }

    fn log(&mut self, raw: RawLog) -> LogSettings {
        let format = match raw.format.as_deref().map(str::parse::<LogFormat>) {
            None => LogFormat::Text,
            Some(Ok(f)) => f,
            Some(Err(msg)) => {
                self.problem("log.format", msg, "write \"text\" or \"json\"");
                LogFormat::Text
            }
        };
        if let Some(level) = &raw.level
            && !crate::logging::valid_level(level)
        {
            self.problem(
                "log.level",
                format!("`{level}` is not a log filter"),
                "write a level (error, warn, info, debug, trace) or RUST_LOG-style \
                 directives such as \"worldpool=debug,pool=info\"",
            );
        }
        LogSettings {
            format,
            level: raw.level,
        }
    }

    fn site(&mut self, s: RawSite) -> SiteSettings {
        let base_url = s
            .base_url
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
        match url::Url::parse(&base_url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => self.problem(
                "site.base_url",
                format!("`{base_url}` is not an http(s) URL"),
                "write e.g. \"https://example.org\"",
            ),
        }
        let guild_path = s
            .guild_path
            .unwrap_or_else(|| "/guild.php?guild={guild}&world={world}".to_string());
        if !guild_path.contains("{guild}") {
            self.problem(
                "site.guild_path",
                "has no {guild} placeholder",
                "write e.g. \"/guild.php?guild={guild}&world={world}\"",
            );
        }
        let player_path = s
            .player_path
            .unwrap_or_else(|| "/player?name={name}".to_string());
        if !player_path.contains("{name}") {
            self.problem(
                "site.player_path",
                "has no {name} placeholder",
                "write e.g. \"/player?name={name}\"",
            );
        } else if !player_path.starts_with('/') {
            self.problem(
                "site.player_path",
                "must start with /",
                "write e.g. \"/player?name={name}\"",
            );
        }
        let status_path = s.status_path.unwrap_or_else(|| "/status".to_string());
        if !status_path.starts_with('/') {
            self.problem(
                "site.status_path",
                "must start with /",
                "write e.g. \"/status\"",
            );
        }
        let rate_limit = s.rate_limit.unwrap_or(5.0);
        if !(rate_limit >= 0.0 && rate_limit.is_finite()) {
            self.problem(
                "site.rate_limit",
                "must be 0 (unlimited) or a positive number of requests per second",
                "write e.g. 5.0",
            );
        }
        let max_concurrent = s.max_concurrent.unwrap_or(4);
        if max_concurrent == 0 {
            self.problem("site.max_concurrent", "must be at least 1", "write e.g. 4");
        }
        let poll_jitter = s.poll_jitter.unwrap_or(0.1);
        if !(0.0..=1.0).contains(&poll_jitter) {
            self.problem(
                "site.poll_jitter",
                format!("{poll_jitter} is out of range"),
                "use a fraction between 0.0 and 1.0",
            );
        }
        if let Some(proxy) = &s.proxy
            && url::Url::parse(proxy).is_err()
        {
            self.problem(
                "site.proxy",
                format!("`{proxy}` is not a URL"),
                "write e.g. \"http://127.0.0.1:3128\", or remove the key",
            );
        }
        let utc_offset_minutes = match s.utc_offset.as_deref() {
            None => -180,
            Some(text) => match parse_utc_offset(text) {
                Some(m) => m,
                None => {
                    self.problem(
                        "site.utc_offset",
                        format!("`{text}` is not a UTC offset"),
                        "write e.g. \"-03:00\"",
                    );
                    -180
                }
            },
        };
        let reset_minutes = match s.reset_time.as_deref() {
            None => 10 * 60 + 2,
            Some(text) => match parse_hh_mm(text) {
                Some(m) => m,
                None => {
                    self.problem(
                        "site.reset_time",
                        format!("`{text}` is not a time of day"),
                        "write e.g. \"10:02\"",
                    );
                    10 * 60 + 2
                }
            },
        };
        let budget = match s.budget.as_deref() {
            None | Some("pool") => crate::site::BudgetScope::Pool,
            Some("worker") => crate::site::BudgetScope::Worker,
            Some(other) => {
                self.problem(
                    "site.budget",
                    format!("unknown budget scope `{other}`"),
                    "write \"pool\" (rate_limit and max_concurrent shared by every worker) or \"worker\" (each worker process its own)",
                );
                crate::site::BudgetScope::Pool
            }
        };
        let selectors = self.selectors(s.selectors);
        SiteSettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            status_path,
            guild_path,
            player_path,
            request_timeout: self.positive_duration(
                "site.request_timeout",
                s.request_timeout.as_ref(),
                Duration::from_secs(10),
            ),
            max_page_size: match s.max_page_size.as_deref().map(parse_bytes) {
                None => 8 << 20,
                Some(Ok(b)) if b >= 1024 => b,
                Some(Ok(_)) => {
                    self.problem(
                        "site.max_page_size",
                        "below 1KiB no page of the site fits",
                        "write e.g. \"8MiB\" (the default)",
                    );
                    8 << 20
                }
                Some(Err(msg)) => {
                    self.problem("site.max_page_size", msg, "write e.g. \"8MiB\"");
                    8 << 20
                }
            },
            rate_limit,
            max_concurrent: max_concurrent.max(1),
            user_agent: s
                .user_agent
                .unwrap_or_else(|| format!("worldpool/{}", env!("CARGO_PKG_VERSION"))),
            retries: s.retries.unwrap_or(3),
            retry_backoff: self.positive_duration(
                "site.retry_backoff",
                s.retry_backoff.as_ref(),
                Duration::from_millis(500),
            ),
            proxy: s.proxy,
            poll_interval: self.positive_duration(
                "site.poll_interval",
                s.poll_interval.as_ref(),
                Duration::from_secs(60),
            ),
            poll_jitter,
            budget,
            utc_offset_minutes,
            reset_minutes,
            selectors,
        }
    }

    fn selectors(&mut self, mut table: toml::Table) -> Selectors {
        let retired: Vec<(String, String)> = crate::site::RETIRED_KEYS
            .iter()
            .filter_map(|key| {
                table.remove(*key).map(|v| {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (key.to_string(), text)
                })
            })
            .collect();
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| {
                !crate::site::KEYS.contains(&k.as_str())
                    && !crate::site::RENAMED_KEYS.iter().any(|(old, _)| old == k)
            })
            .cloned()
            .collect();
        for key in unknown {
            table.remove(&key);
            self.problem(
                &format!("site.selectors.{key}"),
                "is not a key of [site.selectors]",
                format!("remove it, or use one of: {}", crate::site::KEYS.join(", ")),
            );
        }
        let selectors = match Selectors::deserialize(toml::Value::Table(table)) {
            Ok(s) => s,
            Err(e) => {
                self.problem(
                    "site.selectors",
                    e.message().to_string(),
                    "remove or rename the key, or fix its type; config/worlds.toml documents every key",
                );
                Selectors::default()
            }
        };
        for (key, value) in retired {
            let p = crate::site::retired_key_problem(&key, &value, &selectors);
            self.problem(&format!("site.selectors.{key}"), p.message, p.fix);
        }
        if let Err(problems) = selectors.compile() {
            for p in problems {
                self.problem(&format!("site.selectors.{}", p.key), p.message, p.fix);
            }
        }
        selectors
    }
}

/// Parse `-03:00`, `+05:30`, `-3` into minutes east of UTC.
pub fn parse_utc_offset(text: &str) -> Option<i32> {
    let t = text.trim().trim_start_matches("UTC");
    let (sign, rest) = match t.as_bytes().first()? {
        b'-' => (-1, &t[1..]),
        b'+' => (1, &t[1..]),
        _ => (1, t),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None => (rest.parse::<i32>().ok()?, 0),
    };
    if h > 14 || !(0..60).contains(&m) {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Parse `HH:MM` into minutes after midnight.
pub fn parse_hh_mm(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[[worlds]]\nname = \"Aurera\"\nguilds = [\"Red Rose\"]\n").expect("valid");
        assert_eq!(c.pool.mode, Mode::Pool);
        assert_eq!(c.worlds.len(), 1);
        assert_eq!(c.worlds[0].limits.memory, Some(256 << 20));
        assert_eq!(c.site.utc_offset_minutes, -180);
        assert_eq!(c.site.reset_minutes, 602);
        assert_eq!(c.storage.url, "sqlite://data/worldpool.db");
        assert!(c.worlds[0].watch.is_empty());
        assert_eq!(c.site.player_path, "/player?name={name}");
        let c = parse(
            "[[worlds]]\nname = \"Aurera\"\nguilds = [\"G\"]\nwatch = [\" Zé  Pequeno \", \"Ana\"]\n",
        )
        .expect("valid");
        assert_eq!(c.worlds[0].watch, ["Zé Pequeno", "Ana"]);
        let err = parse(
            "[site]\nplayer_path = \"/player\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
        )
        .expect_err("no {name}");
        assert_eq!(err.problems[0].key, "site.player_path");
    }

    #[test]
    fn every_problem_is_reported_with_key_and_fix() {
        let err = parse(
            r#"
[pool]
restart = "sometimes"
stop_grace = "ten"
[limits]
memory = "1KiB"
[[worlds]]
name = "A"
guilds = []
[[worlds]]
name = "a"
guilds = ["G", "G"]
watch = ["Zé", " ", "zé", "a\tb"]
"#,
        )
        .expect_err("invalid");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "pool.restart",
            "pool.stop_grace",
            "limits.memory",
            "worlds[0].guilds",
            "worlds[1].name",
            "worlds[1].guilds[1]",
            "worlds[1].watch[1]",
            "worlds[1].watch[2]",
            "worlds[1].watch[3]",
        ] {
            assert!(keys.contains(&want), "missing {want} in {keys:?}");
        }
        assert!(err.problems.iter().all(|p| !p.fix.is_empty()));
        let shown = err.to_string();
        assert!(shown.contains("test.toml"), "{shown}");
    }

    #[test]
    fn unknown_keys_name_the_table_the_line_and_the_nearest_key() {
        let table = [
            (
                "[pool]\nmoed = \"pool\"\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "pool.moed (line 2)",
                Some("mode"),
            ),
            (
                "[pool]\nmod = \"pool\"\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "pool.mod (line 2)",
                Some("mode"),
            ),
            (
                "[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n[[worlds]]\nname=\"B\"\nguild=[\"G\"]\n",
                "worlds[1].guild (line 6)",
                Some("guilds"),
            ),
            (
                "[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\nlimits = { open_file = 100 }\n",
                "worlds[0].limits.open_file (line 4)",
                Some("open_files"),
            ),
            (
                "[site]\nzzzzzz = 1\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "site.zzzzzz (line 2)",
                None,
            ),
        ];
        for (text, key, hint) in table {
            let err = parse(text).expect_err("unknown key");
            assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
            let p = &err.problems[0];
            assert_eq!(p.key, key, "{p:?}");
            match hint {
                Some(h) => assert!(p.fix.contains(&format!("did you mean `{h}`")), "{p:?}"),
                None => assert!(p.fix.contains("known keys here"), "{p:?}"),
            }
        }
    }

    #[test]
    fn every_unknown_key_is_reported_at_once() {
        let err = parse(
            "polo = 1\n[pool]\nrestrat = \"always\"\nmoed = \"pool\"\n\
             [api]\nbnd = \"127.0.0.1:1\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n\
             limits = { memroy = \"1GiB\" }\n[[worlds]]\nname = \"B\"\nguilds = [\"G\"]\n\
             zzzzzz = 1\n",
        )
        .expect_err("unknown keys");
        let got: Vec<(&str, &str, &str)> = err
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str(), p.fix.as_str()))
            .collect();
        let unknown = [
            ("polo (line 1)", "polo", Some("pool")),
            ("pool.restrat (line 3)", "restrat", Some("restart")),
            ("pool.moed (line 4)", "moed", Some("mode")),
            ("api.bnd (line 6)", "bnd", Some("bind")),
            (
                "worlds[0].limits.memroy (line 10)",
                "memroy",
                Some("memory"),
            ),
            ("worlds[1].zzzzzz (line 14)", "zzzzzz", None),
        ];
        assert_eq!(got.len(), unknown.len(), "{got:#?}");
        for ((key, message, fix), (want_key, name, hint)) in got.iter().zip(unknown) {
            assert_eq!(*key, want_key, "{got:#?}");
            assert_eq!(*message, format!("unknown key `{name}`"));
            match hint {
                Some(h) => assert!(fix.starts_with(&format!("did you mean `{h}`?")), "{fix}"),
                None => assert!(fix.contains("known keys here: name, guilds"), "{fix}"),
            }
        }
        // A value of the wrong type stops the reading: it is reported with
        // the unknown keys read before it (a table's keys are read in
        // alphabetical order).
        let err = parse("[pool]\nbackof_max = \"1s\"\nmax_restarts = \"many\"\n").expect_err("bad");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["pool.backof_max (line 2)", "line 3"],
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn environment_checks_limits_and_bind() {
        let c = parse(
            "[api]\nbind = \"0.0.0.0:5000\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n\
             [[worlds]]\nname = \"B\"\nguilds = [\"G\"]\nlimits = { open_files = 900000, cpu_time = \"1h\" }\n",
        )
        .expect("valid file");
        let env = Environment {
            cpu_hard: Some(600),
            data_hard: None,
            nofile_hard: Some(20000),
            api_token_set: false,
        };
        let err = c
            .check_environment(&env, Some(c.api.bind))
            .expect_err("over the hard limits");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "worlds[1] (B) limits.cpu_time",
                "worlds[1] (B) limits.open_files",
                "api.bind"
            ]
        );
        let nofile = &err.problems[1];
        assert!(
            nofile.message.contains("900000") && nofile.message.contains("20000"),
            "{nofile:?}"
        );
        let ok_env = Environment {
            nofile_hard: Some(1_000_000),
            cpu_hard: None,
            api_token_set: true,
            ..env
        };
        c.check_environment(&ok_env, Some(c.api.bind))
            .expect("within the limits, token set");
        // A loopback bind needs no token.
        c.check_environment(
            &Environment {
                api_token_set: false,
                ..ok_env
            },
            Some(SocketAddr::from(([127, 0, 0, 1], 5000))),
        )
        .expect("loopback");
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("mod", "mode", 1),
            ("moed", "mode", 2),
            ("", "ab", 2),
            ("São", "Sao", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn world_limits_override_defaults() {
        let c = parse(
            "[limits]\nmemory = \"64MiB\"\ncpu_time = \"1h\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\nlimits = { memory = \"32MiB\" }\n",
        )
        .expect("valid");
        assert_eq!(c.worlds[0].limits.memory, Some(32 << 20));
        assert_eq!(c.worlds[0].limits.cpu_time, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn retired_selector_keys_name_their_replacement() {
        // The [site.selectors] of the previous example config, verbatim.
        let err = parse(
            r#"
[site.selectors]
status_row = "tr"
status_cell = "th, td"
status_title_suffix = " Status"
status_routine = "Daily Raw Ranking"
ranking_table = "table.table-highscores"
ranking_table_index = 1
ranking_row = "tr"
rank = "td.col-rank"
name = "td.col-name"
name_link = "a"
vocation = "td.col-voc"
level = "td.col-level"
experience = "td.col-xp"
next_page = "a[rel~=next], link[rel~=next]"
complete_marker = "</html>"
[[worlds]]
name = "A"
guilds = ["G"]
"#,
        )
        .expect_err("retired keys");
        let got: Vec<(&str, &str)> = err
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.fix.as_str()))
            .collect();
        assert_eq!(got.len(), 4, "{got:#?}");
        for (key, replacement) in [
            ("site.selectors.status_row", "routine_entry = \"tr\""),
            ("site.selectors.status_cell", "routine_name = "),
            ("site.selectors.status_title_suffix", "world_pattern = "),
            ("site.selectors.name_link", "name = \"td.col-name a\""),
        ] {
            assert!(
                got.iter()
                    .any(|(k, fix)| *k == key && fix.contains(replacement)),
                "{key} → {replacement}: {got:#?}"
            );
        }
        // With them removed, the renamed keys still read as before.
        let c = parse(
            "[site.selectors]\nranking_table = \"div.r\"\nranking_table_index = 0\nstatus_routine = \"Online\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
        )
        .expect("aliases are valid");
        assert_eq!(c.site.selectors.ranking, "div.r");
        assert_eq!(c.site.selectors.ranking_index, 0);
        assert_eq!(c.site.selectors.routine, "Online");
    }

    #[test]
    fn bad_selectors_are_reported_in_plain_words_with_a_position() {
        let err = parse(
            "[site.selectors]\nrank = \"td[[[\"\nworld_pattern = \"(?P<world>.+\"\nfoo = \"x\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n",
        )
        .expect_err("invalid");
        let find = |key: &str| {
            err.problems
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no {key} in {:#?}", err.problems))
        };
        let rank = find("site.selectors.rank");
        assert!(
            rank.message
                .contains("\"td[[[\" is not a valid CSS selector: at character 3"),
            "{rank:?}"
        );
        assert!(!rank.message.contains("report this"), "{rank:?}");
        assert!(rank.fix.contains("td.col-rank"), "{rank:?}");
        let pattern = find("site.selectors.world_pattern");
        assert!(pattern.message.contains("at character 1"), "{pattern:?}");
        assert!(pattern.fix.contains("(?P<world>"), "{pattern:?}");
        assert!(find("site.selectors.foo").fix.contains("world_title"));
    }

    #[test]
    fn offsets_and_times() {
        assert_eq!(parse_utc_offset("-03:00"), Some(-180));
        assert_eq!(parse_utc_offset("+05:30"), Some(330));
        assert_eq!(parse_utc_offset("-3"), Some(-180));
        assert_eq!(parse_utc_offset("x"), None);
        assert_eq!(parse_hh_mm("10:02"), Some(602));
        assert_eq!(parse_hh_mm("24:00"), None);
    }
}
