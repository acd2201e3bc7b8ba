//! The pool's shape for a config: which workers it runs, under which
//! names, with which command lines. `worldpool run` starts these specs,
//! a reload compares the names and replaces the specs, the API tells the
//! watcher from the worlds by name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, Mode};
pub use crate::config::{SINGLE_WORKER, WATCHER_NAME};

/// The supervisor's environment variables a worker inherits (a trailing
/// `*` is a prefix); `[pool] env` adds its own on top. Everything else,
/// the API token first, stays in the supervisor: a worker parses what
/// the site sends and need not hold the control secret.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    // The store's URL may come from the environment (`[storage] url`).
    "DATABASE_URL",
    // TLS roots and proxies, as reqwest reads them.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "WORLDPOOL_LOG_*",
    "WORLDPOOL_MEMORY_OFF",
];

/// [`INHERITED_ENV`], plus the test suite's fault hooks and worker modes
/// in a build with the `test-support` feature.
fn inherited_env() -> Vec<String> {
    let mut names: Vec<String> = INHERITED_ENV.iter().map(|n| n.to_string()).collect();
    if cfg!(feature = "test-support") {
        names.push("WORLDPOOL_TEST_*".to_string());
    }
    names
}

/// Which extra roles and flags a config gives the pool's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// A watcher process reads the status page for every world.
    pub watcher: bool,
    /// Workers ask the supervisor's budget.
    pub pool_budget: bool,
}

/// The roles of a config: a watcher in pool mode with `[pool] watcher`
/// (the default), the pool's budget with `[site] budget = "pool"` (the
/// default, in both modes).
pub fn roles(config: &Config) -> Roles {
    Roles {
        watcher: config.pool.mode == Mode::Pool && config.pool.watcher,
        pool_budget: config.site.budget == crate::site::BudgetScope::Pool,
    }
}

impl Roles {
    /// Flags of a world (or the single) worker.
    pub fn world_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.watcher {
            out.push("--watched".to_string());
        }
        if self.pool_budget {
            out.push("--pool-budget".to_string());
        }
        out
    }

    /// The watcher's selection and flags.
    pub fn watcher_flags(&self) -> Vec<String> {
        let mut out = vec!["--watcher".to_string()];
        if self.pool_budget {
            out.push("--pool-budget".to_string());
        }
        out
    }
}

/// The worker names of a config, in order, as `mode` runs them (the
/// status watcher last, when there is one). In cluster mode none: the
/// node starts each world's worker, and the watcher's, when it holds the
/// lease ([`cluster_spec`]).
pub fn worker_names(config: &Config, mode: Mode) -> Vec<String> {
    if config.cluster.enabled {
        return Vec::new();
    }
    match mode {
        Mode::Pool => {
            let mut names: Vec<String> = config.worlds.iter().map(|w| w.name.clone()).collect();
            if config.pool.watcher {
                names.push(WATCHER_NAME.to_string());
            }
            names
        }
        Mode::Single => vec![SINGLE_WORKER.to_string()],
    }
}

/// The worker specs for a config: one per world in pool mode
/// (`worldpool worker --world NAME --config PATH`), a single one named
/// `single` (`worldpool worker --all --config PATH`) in single mode.
/// In cluster mode none (see [`worker_names`]).
pub fn worker_specs(config: &Config, exe: &Path) -> Vec<pool::WorkerSpec> {
    if config.cluster.enabled {
        return Vec::new();
    }
    worker_specs_with(config, exe, &|_| Vec::new())
}

/// The config as a lone node would run it: `[cluster]` off.
pub fn as_pool(config: &Config) -> Config {
    let mut c = config.clone();
    c.cluster.enabled = false;
    c
}

/// In cluster mode, the spec of one leased worker — a world's, or the
/// watcher's — as the pool mode of the same config would run it (`None`
/// for a name the config does not run).
pub fn cluster_spec(config: &Config, exe: &Path, name: &str) -> Option<pool::WorkerSpec> {
    let roles = roles(config);
    let config = as_pool(config);
    if config.pool.mode != Mode::Pool {
        return None;
    }
    let common = Common::of(&config);
    if name == WATCHER_NAME {
        return roles
            .watcher
            .then(|| common.spec(name, exe, roles.watcher_flags(), config.limits.clone(), &[]));
    }
    let world = config.world(name)?;
    let mut selection = vec!["--world".to_string(), world.name.clone()];
    selection.extend(roles.world_flags());
    Some(common.spec(name, exe, selection, world.limits.clone(), &[]))
}

/// What every worker spec of a config shares.
struct Common<'a> {
    config: &'a Config,
    config_path: PathBuf,
}

impl<'a> Common<'a> {
    fn of(config: &'a Config) -> Common<'a> {
        Common {
            config,
            config_path: absolute(&config.path),
        }
    }

    fn spec(
        &self,
        name: &str,
        exe: &Path,
        selection: Vec<String>,
        limits: pool::Limits,
        extra: &[String],
    ) -> pool::WorkerSpec {
        let config = self.config;
        let mut s = pool::WorkerSpec::new(name, exe);
        s.args = vec!["worker".to_string()];
        s.args.extend(selection);
        s.args.push("--config".to_string());
        s.args.push(self.config_path.display().to_string());
        s.args.extend(extra.iter().cloned());
        s.limits = limits;
        s.restart = config.pool.restart.clone();
        s.stop_grace = config.pool.stop_grace;
        s.start_timeout = Some(config.pool.start_timeout);
        s.heartbeat_timeout = Some(config.pool.heartbeat_timeout);
        let beat = (config.pool.heartbeat_timeout / 3).max(Duration::from_millis(10));
        s.env.push((
            crate::protocol::HEARTBEAT_ENV.to_string(),
            beat.as_millis().to_string(),
        ));
        s.env.extend(config.pool.env.iter().cloned());
        s.inherit_env = Some(inherited_env());
        s
    }
}

/// Like [`worker_specs`], with `extra_args(worker name)` appended to each
/// worker's command line.
pub fn worker_specs_with(
    config: &Config,
    exe: &Path,
    extra_args: &dyn Fn(&str) -> Vec<String>,
) -> Vec<pool::WorkerSpec> {
    let common = Common::of(config);
    let spec = |name: &str, selection: Vec<String>, limits: pool::Limits| {
        common.spec(name, exe, selection, limits, &extra_args(name))
    };
    let roles = roles(config);
    match config.pool.mode {
        Mode::Pool => {
            let mut specs: Vec<pool::WorkerSpec> = config
                .worlds
                .iter()
                .map(|w| {
                    let mut selection = vec!["--world".to_string(), w.name.clone()];
                    selection.extend(roles.world_flags());
                    spec(&w.name, selection, w.limits.clone())
                })
                .collect();
            if roles.watcher {
                specs.push(spec(
                    WATCHER_NAME,
                    roles.watcher_flags(),
                    config.limits.clone(),
                ));
            }
            specs
        }
        Mode::Single => {
            let mut selection = vec!["--all".to_string()];
            selection.extend(roles.world_flags());
            vec![spec(SINGLE_WORKER, selection, config.limits.clone())]
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
