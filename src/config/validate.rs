//! Validation: the raw config converted into the typed one, with every
//! problem found on the way (key, what is wrong, how to fix).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pool::units::{parse_bytes, parse_duration};
use pool::{Backoff, Limits, RestartMode, RestartPolicy};
use serde::Deserialize;

use super::raw::{
    RawApi, RawCluster, RawConfig, RawLimits, RawLog, RawPool, RawSite, RawStorage, RawWorld,
};
use super::{
    API_TOKEN_ENV, ApiSettings, ClusterSettings, Config, Mode, PoolSettings, Problem, SiteSettings,
    StorageSettings, WATCHER_NAME, World,
};
use crate::logging::{LogFormat, LogSettings};

/// `[pool] supervisor_nice` by default: the pool's thread, where exits are
/// seen and replacements spawned, runs ahead of the workers and the API
/// when the process may raise a priority (as root).
const DEFAULT_SUPERVISOR_NICE: i32 = -5;
use crate::site::Selectors;

/// Collects every problem of a raw config while converting it.
#[derive(Default)]
pub(super) struct Validator {
    /// Every problem found so far, in the order found.
    pub(super) problems: Vec<Problem>,
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

    /// The whole config, section by section (problems in the order of the
    /// sections: pool, limits, site, storage, api, worlds, log).
    pub(super) fn config(&mut self, path: &Path, raw: RawConfig) -> Config {
        let pool = self.pool(&raw.pool);
        let base_limits = Limits {
            cpu_time: None,
            memory: Some(256 << 20),
            open_files: Some(1024),
        };
        let limits = self.limits("limits", &raw.limits, &base_limits);
        let site = self.site(raw.site);
        let storage = self.storage(raw.storage);
        let api = self.api(raw.api);
        let worlds = self.worlds(raw.worlds, &pool, &limits);
        let log = self.log(raw.log);
        let cluster = self.cluster(&raw.cluster, &pool, &storage);
        Config {
            path: path.to_path_buf(),
            pool,
            limits,
            site,
            storage,
            api,
            log,
            worlds,
            cluster,
        }
    }

    /// `[cluster]`: PostgreSQL and pool mode only; two renewals fit in
    /// the time a node trusts its leases (`lease_ttl` − a quarter).
    fn cluster(
        &mut self,
        raw: &RawCluster,
        pool: &PoolSettings,
        storage: &StorageSettings,
    ) -> ClusterSettings {
        let defaults = ClusterSettings::default();
        let lease_ttl = self.positive_duration(
            "cluster.lease_ttl",
            raw.lease_ttl.as_ref(),
            defaults.lease_ttl,
        );
        let renew_every = self.positive_duration(
            "cluster.renew_every",
            raw.renew_every.as_ref(),
            defaults.renew_every,
        );
        let enabled = raw.enabled.unwrap_or(false);
        if renew_every * 8 > lease_ttl * 3 {
            self.problem(
                "cluster.renew_every",
                format!(
                    "{} is more than 3/8 of lease_ttl ({}): a node trusts its leases for 3/4 of \
                     lease_ttl after a renewal, and two renewals must fit in that time",
                    pool::units::format_duration(renew_every),
                    pool::units::format_duration(lease_ttl)
                ),
                "renew at most every lease_ttl × 3/8 (defaults: lease_ttl = \"15s\", renew_every = \"5s\")",
            );
        }
        if let Some(name) = &raw.node_name
            && name.trim().is_empty()
        {
            self.problem(
                "cluster.node_name",
                "is empty",
                "name the node, or leave the key out for the host name",
            );
        }
        if enabled && storage.url.starts_with("sqlite://") {
            self.problem(
                "cluster.enabled",
                "a cluster shares its leases through PostgreSQL; this config stores in SQLite",
                "set [storage] url = \"postgres://user@host:5432/db\" on every node, or turn [cluster] off",
            );
        }
        if enabled && pool.mode != Mode::Pool {
            self.problem(
                "cluster.enabled",
                "a cluster leases worlds to pool-mode workers; this config runs in single mode",
                "set [pool] mode = \"pool\", or turn [cluster] off",
            );
        }
        ClusterSettings {
            enabled,
            lease_ttl,
            renew_every,
            node_name: raw.node_name.clone().filter(|n| !n.trim().is_empty()),
        }
    }

    /// `[pool]`.
    fn pool(&mut self, p: &RawPool) -> PoolSettings {
        let restart = self.restart(p);
        let heartbeat_timeout = self.positive_duration(
            "pool.heartbeat_timeout",
            p.heartbeat_timeout.as_ref(),
            Duration::from_secs(30),
        );
        PoolSettings {
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
            supervisor_nice: match p.supervisor_nice {
                None => DEFAULT_SUPERVISOR_NICE,
                Some(n) if (-20..=0).contains(&n) => n as i32,
                Some(n) => {
                    self.problem(
                        "pool.supervisor_nice",
                        format!("{n} is not a nice value the pool's thread can take"),
                        "use -20 (first) to 0 (as the process); default -5",
                    );
                    DEFAULT_SUPERVISOR_NICE
                }
            },
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
        }
    }

    /// The restart policy keys of `[pool]`.
    fn restart(&mut self, p: &RawPool) -> RestartPolicy {
        let defaults = RestartPolicy::default();
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
        let backoff = self.backoff(p);
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
        RestartPolicy {
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
        }
    }

    /// The `backoff_*` keys of `[pool]`.
    fn backoff(&mut self, p: &RawPool) -> Backoff {
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
        backoff
    }

    /// `[storage]`.
    fn storage(&mut self, raw: RawStorage) -> StorageSettings {
        let url = raw
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
        let max_connections = raw.max_connections.unwrap_or(2);
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
    }

    /// `[api]`.
    fn api(&mut self, raw: RawApi) -> ApiSettings {
        let text = raw.bind.unwrap_or_else(|| "127.0.0.1:5000".to_string());
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
        let max_connections = raw.max_connections.unwrap_or(512);
        if max_connections == 0 {
            self.problem(
                "api.max_connections",
                "must be at least 1",
                "leave it out for the default, 512",
            );
        }
        let store_readers = raw.store_readers.unwrap_or(4);
        let max_exports = raw.max_exports.unwrap_or(2);
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
                raw.send_timeout.as_ref(),
                Duration::from_secs(10),
            ),
            store_readers: store_readers.max(1),
            query_timeout: self.positive_duration(
                "api.query_timeout",
                raw.query_timeout.as_ref(),
                Duration::from_secs(5),
            ),
            max_exports,
            bind,
            enabled: raw.enabled.unwrap_or(true),
            max_connections: max_connections.max(1),
            header_timeout: self.duration(
                "api.header_timeout",
                raw.header_timeout.as_ref(),
                Duration::from_secs(10),
            ),
            fd_reserve: raw.fd_reserve.unwrap_or(64),
            shutdown_grace: self.duration(
                "api.shutdown_grace",
                raw.shutdown_grace.as_ref(),
                Duration::from_secs(2),
            ),
            allowed_hosts: self.allowed_hosts(raw.allowed_hosts.unwrap_or_default()),
        }
    }

    /// `[[worlds]]`: at least one, each named once, with limits merged over
    /// `limits`.
    fn worlds(&mut self, raw: Vec<RawWorld>, pool: &PoolSettings, limits: &Limits) -> Vec<World> {
        let mut worlds = Vec::new();
        let mut seen = HashSet::new();
        if raw.is_empty() {
            self.problem(
                "worlds",
                "no [[worlds]] entry",
                "add at least one [[worlds]] table with a name and guilds",
            );
        }
        for (i, w) in raw.into_iter().enumerate() {
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
            self.guilds(&key, &name, &w.guilds);
            let watch = self.watch(&key, &w.watch);
            let limits = self.limits(&format!("{key}.limits"), &w.limits, limits);
            worlds.push(World {
                name,
                guilds: w.guilds.iter().map(|g| g.trim().to_string()).collect(),
                watch,
                limits,
                priority: w.priority.unwrap_or(0),
            });
        }
        worlds
    }

    /// A world's `guilds`: at least one, none empty, each once.
    fn guilds(&mut self, key: &str, name: &str, guilds: &[String]) {
        if guilds.is_empty() {
            self.problem(
                &format!("{key}.guilds"),
                format!("world `{name}` has no guilds"),
                "add guilds = [\"Guild Name\", …]",
            );
        }
        let mut guild_seen = HashSet::new();
        for (j, g) in guilds.iter().enumerate() {
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
    }

    /// A world's `watch`: player names as the site spells them, each once
    /// (ignoring case), cleaned.
    fn watch(&mut self, key: &str, names: &[String]) -> Vec<String> {
        let mut watch_seen = HashSet::new();
        let mut watch = Vec::new();
        for (j, n) in names.iter().enumerate() {
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
                            format!(
                                "player `{n}` is listed twice (names are compared ignoring case)"
                            ),
                            "list each player once",
                        );
                    }
                }
            }
        }
        watch
    }

    /// `[log]`.
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

    /// `[site]`.
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

    /// `[site.selectors]`: retired keys name their replacement.
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
    use std::time::Duration;

    use super::{parse_hh_mm, parse_utc_offset};
    use crate::config::{Mode, parse_test as parse};

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
    fn supervisor_nice_is_minus_5_by_default_and_bounded() {
        let worlds = "[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n";
        assert_eq!(parse(worlds).expect("valid").pool.supervisor_nice, -5);
        let c = parse(&format!("[pool]\nsupervisor_nice = 0\n{worlds}")).expect("valid");
        assert_eq!(c.pool.supervisor_nice, 0);
        for bad in ["-21", "3"] {
            let err = parse(&format!("[pool]\nsupervisor_nice = {bad}\n{worlds}")).expect_err(bad);
            assert_eq!(err.problems[0].key, "pool.supervisor_nice");
            assert!(err.problems[0].fix.contains("-20"), "{:?}", err.problems[0]);
        }
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
