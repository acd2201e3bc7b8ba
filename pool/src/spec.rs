//! What to run and how to treat it: the worker spec and its policies.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Resource limits applied with `setrlimit` between fork and exec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// RLIMIT_CPU: lifetime budget of CPU time (soft limit; hard = soft + 1 s).
    #[serde(with = "opt_secs")]
    pub cpu_time: Option<Duration>,
    /// RLIMIT_DATA: cap on the heap (data segment + anonymous mappings), bytes.
    pub memory: Option<u64>,
    /// RLIMIT_NOFILE: open file descriptors.
    pub open_files: Option<u64>,
}

/// When a worker that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Restart after every exit that the pool did not ask for.
    Always,
    /// Restart only after a non-zero exit, a signal, a limit or a hang.
    OnFailure,
    /// Never restart.
    Never,
}

/// Exponential backoff with jitter between failed starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backoff {
    /// First delay.
    #[serde(with = "secs")]
    pub initial: Duration,
    /// Factor applied per consecutive failure.
    pub multiplier: f64,
    /// Upper bound of the delay.
    #[serde(with = "secs")]
    pub max: Duration,
    /// Fraction of random jitter added or removed (0.0 – 1.0).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

/// Restart policy of a worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartPolicy {
    /// When to restart.
    pub mode: RestartMode,
    /// A run at least this long counts as healthy: the next restart is
    /// immediate and the failure count resets.
    #[serde(with = "secs")]
    pub min_uptime: Duration,
    /// Delays between consecutive failed runs.
    pub backoff: Backoff,
    /// More than this many restarts within `window` makes the worker `fatal`.
    pub max_restarts: u32,
    /// The crash-loop window.
    #[serde(with = "secs")]
    pub window: Duration,
    /// How long a `fatal` worker waits before an automatic retry; `None`
    /// means it stays fatal until started by hand.
    #[serde(with = "opt_secs")]
    pub fatal_retry: Option<Duration>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::Always,
            min_uptime: Duration::from_secs(1),
            backoff: Backoff::default(),
            max_restarts: 10,
            window: Duration::from_secs(60),
            fatal_retry: Some(Duration::from_secs(300)),
        }
    }
}

/// Everything the pool needs to run one worker.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Unique name (the world).
    pub name: String,
    /// Program to execute.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment variables (never shown in status snapshots).
    pub env: Vec<(String, String)>,
    /// Which of the supervisor's environment variables the worker
    /// inherits: `None`, all of them; `Some(names)`, only these (a name
    /// ending in `*` is a prefix: `LC_*`). [`env`](Self::env) comes on top
    /// either way.
    pub inherit_env: Option<Vec<String>>,
    /// Resource limits.
    pub limits: Limits,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// The worker must send `ready` on its channel within this time;
    /// `None` counts it ready as soon as it is spawned.
    pub start_timeout: Option<Duration>,
    /// After `ready`, a worker silent on its channel this long is hung;
    /// `None` disables the heartbeat watchdog.
    pub heartbeat_timeout: Option<Duration>,
}

impl WorkerSpec {
    /// The rules [`decide`](fn@crate::decide::decide) applies to this worker.
    pub fn policy(&self) -> Policy {
        Policy {
            restart: self.restart.clone(),
            stop_grace: self.stop_grace,
            start_timeout: self.start_timeout,
            heartbeat_timeout: self.heartbeat_timeout,
        }
    }

    /// Replace the restart policy and timeouts with `policy`.
    pub fn set_policy(&mut self, policy: Policy) {
        self.restart = policy.restart;
        self.stop_grace = policy.stop_grace;
        self.start_timeout = policy.start_timeout;
        self.heartbeat_timeout = policy.heartbeat_timeout;
    }

    /// A spec with default policies.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        WorkerSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            inherit_env: None,
            limits: Limits::default(),
            restart: RestartPolicy::default(),
            stop_grace: Duration::from_secs(10),
            start_timeout: Some(Duration::from_secs(10)),
            heartbeat_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Everything the decision needs from a spec: the restart policy and the
/// timeouts. Can be changed on a live worker with
/// [`PoolHandle::update`](crate::PoolHandle::update).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Time between SIGTERM and SIGKILL when stopping.
    #[serde(with = "secs")]
    pub stop_grace: Duration,
    /// `ready` must arrive within this time after the spawn; `None` counts
    /// the worker ready as soon as it is spawned.
    #[serde(with = "opt_secs")]
    pub start_timeout: Option<Duration>,
    /// After `ready`, a worker silent on its channel this long is hung;
    /// `None` disables the heartbeat watchdog.
    #[serde(with = "opt_secs")]
    pub heartbeat_timeout: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        WorkerSpec::new("", "").policy()
    }
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}
