//! Reloading the config of a running pool: touch only what changed, and
//! never trade a good config for a bad one.
//!
//! Triggers (`SIGHUP`, `POST /api/reload`, `worldpool reload`, and the file
//! watcher of `[pool] watch_config`) all queue a request on one
//! [`ReloadHandle`]; one task, the reloader, takes them one at a time, so
//! reloads never interleave and each caller gets the outcome of its own.
//! A reload:
//!
//! 1. reads the file and validates it completely, as `worldpool
//!    check-config` does ([`Config::load`] + [`Config::check_environment`]);
//!    on any problem nothing changes: the problems are logged, returned,
//!    counted and published as a `reload_failed` [`AppEvent`];
//! 2. computes the [`Plan`] with the pure [`plan::plan`];
//! 3. keeps a private copy of the new config for the workers
//!    ([`Snapshots`]), and applies the plan to the pool ([`apply::apply`])
//!    as a rollout that stops at the first started or restarted worker
//!    that does not come back `running`: then every worker it changed is
//!    put back on the config in force ([`plan::undo`]), and the reload is
//!    refused naming that worker and its last exit
//!    ([`ReloadError::RolledBack`], a `reload_failed` event);
//! 4. lets the rest of the supervisor follow ([`Follower`]: the API's
//!    config-derived state and store, the log level), then publishes a
//!    `reloaded` event with the plan.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Environment, Problem};
use futures_util::future::BoxFuture;

pub mod apply;
pub mod plan;
mod snapshot;
pub mod watch;

pub use apply::NotRunning;
pub use plan::{Pending, Plan, plan};
pub use snapshot::Snapshots;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `SIGHUP` to `worldpool run`.
    Sighup,
    /// `POST /api/reload` (and `worldpool reload`).
    Api,
    /// The config file changed (`[pool] watch_config`).
    Watch,
}

/// A reload that was applied.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// What asked for it.
    pub trigger: Trigger,
    /// The config file.
    #[schema(value_type = String)]
    pub file: PathBuf,
    /// What was done.
    pub plan: Plan,
    /// What did not go as planned for some worker (the pool refused a
    /// command for it, e.g. it was removed by hand meanwhile): one line
    /// each. The rest was applied. (A worker that does not come back
    /// `running` rolls the reload back: [`ReloadError::RolledBack`].)
    pub warnings: Vec<String>,
    /// How long the reload took, milliseconds.
    pub took_ms: u64,
}

/// A reload that was refused: the config in force keeps running.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    /// What asked for it.
    pub trigger: Trigger,
    /// The config file.
    pub file: PathBuf,
    /// Every problem, each with its key and how to fix it.
    pub problems: Vec<Problem>,
    /// The worker that did not come back `running`, when the rollout was
    /// rolled back ([`ReloadError::RolledBack`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<NotRunning>,
}

/// A reload whose rollout stopped at a worker that did not come back
/// `running`; every worker it had changed is back on the config in force.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    /// The config file.
    pub file: PathBuf,
    /// The worker, its state and its last exit.
    pub worker: NotRunning,
    /// What the reload was to do.
    pub plan: Plan,
    /// What was put back: the workers it had started (`stopped` again) and
    /// restarted (`restarted` again, with their previous spec).
    pub undone: Plan,
    /// What did not go as planned on the way back, one line each.
    pub warnings: Vec<String>,
    /// The same, as one problem (key: the worker) for clients that print
    /// a refused config's problems.
    pub problems: Vec<Problem>,
}

/// Why a reload was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// The new config is invalid (every problem inside); nothing changed.
    #[error("{0}")]
    Invalid(ConfigError),
    /// The rollout stopped at a worker that did not come back `running`,
    /// and was rolled back: the config in force keeps running.
    #[error("{}", .0.worker.message)]
    RolledBack(Box<RolledBack>),
    /// The pool is shutting down.
    #[error("the pool is shutting down")]
    ShuttingDown,
}

/// Reloads counted by outcome, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    applied: AtomicU64,
    failed: AtomicU64,
}

impl ReloadStats {
    /// `(applied, failed)` so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.applied.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Queues reloads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    tx: mpsc::UnboundedSender<PendingReload>,
    stats: Arc<ReloadStats>,
}

/// The other end of a [`ReloadHandle`]: what the reloader takes requests
/// from (tests answer them by hand).
#[derive(Debug)]
pub struct ReloadQueue {
    rx: mpsc::UnboundedReceiver<PendingReload>,
}

/// One queued request.
#[derive(Debug)]
pub struct PendingReload {
    /// What asked for it.
    pub trigger: Trigger,
    reply: oneshot::Sender<Result<ReloadReport, ReloadError>>,
    stats: Arc<ReloadStats>,
}

impl PendingReload {
    /// Answer the request (counted in the stats by outcome).
    pub fn answer(self, result: Result<ReloadReport, ReloadError>) {
        match &result {
            Ok(_) => self.stats.applied.fetch_add(1, Ordering::Relaxed),
            Err(ReloadError::Invalid(_) | ReloadError::RolledBack(_)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed)
            }
            Err(ReloadError::ShuttingDown) => 0,
        };
        // The caller may have stopped waiting (SIGHUP never waits).
        let _ = self.reply.send(result);
    }
}

impl ReloadQueue {
    /// The next request, in arrival order; `None` once every handle is gone.
    pub async fn next(&mut self) -> Option<PendingReload> {
        self.rx.recv().await
    }
}

impl ReloadHandle {
    /// A handle and the queue it feeds.
    pub fn new() -> (ReloadHandle, ReloadQueue) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ReloadHandle {
                tx,
                stats: Arc::new(ReloadStats::default()),
            },
            ReloadQueue { rx },
        )
    }

    /// Queue a reload and wait until it was applied or refused.
    pub async fn reload(&self, trigger: Trigger) -> Result<ReloadReport, ReloadError> {
        let answer = self.request(trigger)?;
        answer.await.map_err(|_| ReloadError::ShuttingDown)?
    }

    /// Queue a reload; the receiver gets its outcome (drop it not to wait).
    pub fn request(
        &self,
        trigger: Trigger,
    ) -> Result<oneshot::Receiver<Result<ReloadReport, ReloadError>>, ReloadError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(PendingReload {
                trigger,
                reply,
                stats: self.stats.clone(),
            })
            .map_err(|_| ReloadError::ShuttingDown)?;
        Ok(answer)
    }

    /// Reloads counted by outcome.
    pub fn stats(&self) -> &ReloadStats {
        &self.stats
    }
}

/// Hears of every reload, applied or refused (the application's event
/// bus, [`crate::app_events`], in `worldpool run`). Called on the
/// reloader's task: must not wait.
pub trait Listener: Send + Sync + 'static {
    /// A reload was applied.
    fn reloaded(&self, report: &ReloadReport);
    /// A reload was refused; the config in force keeps running.
    fn reload_failed(&self, failure: &ReloadFailure);
}

/// Something in the supervisor that follows the config in force (the API's
/// config-derived state, the log level). Called after each applied reload
/// with the config before and after.
pub trait Follower: Send + Sync + 'static {
    /// Adopt `new` (`old` was in force until now).
    fn follow<'a>(&'a self, old: &'a Config, new: &'a Config) -> BoxFuture<'a, ()>;

    /// The config the workers read from now on (their private copy of
    /// the one in force), after [`follow`](Self::follow).
    fn workers_follow(&self, _workers: &Config) {}
}

/// `[log] level`: applied to the supervisor's subscriber at once (unless
/// `RUST_LOG` is set, which wins); workers take it when they next start.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLevel;

impl Follower for LogLevel {
    fn follow<'a>(&'a self, old: &'a Config, new: &'a Config) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if old.log.level != new.log.level {
                match crate::logging::set_level(new.log.level.as_deref()) {
                    Ok(true) => {
                        tracing::info!(level = ?new.log.level, "log level changed")
                    }
                    Ok(false) => tracing::info!(
                        "[log] level changed, but RUST_LOG is set and keeps the supervisor's filter"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot change the log level"),
                }
            }
        })
    }
}

/// What the reloader needs.
pub struct Setup {
    /// The pool to change.
    pub pool: pool::PoolHandle,
    /// The worker program.
    pub exe: PathBuf,
    /// The config in force (its `path` is the file reloads read).
    pub config: Config,
    /// The same as the running workers read it (its `path` is their
    /// copy): what a failed rollout puts them back on.
    pub workers: Config,
    /// Copies of the validated configs, for the workers.
    pub snapshots: Snapshots,
    /// Who hears of every reload, applied (`reloaded`) or refused
    /// (`reload_failed`).
    pub events: Arc<dyn Listener>,
    /// Who follows each applied reload.
    pub followers: Vec<Arc<dyn Follower>>,
}

/// Start the reloader on `queue`, the `SIGHUP` listener and the file
/// watcher; they end when `stop` is cancelled. The returned task ends
/// after the reloader (and removes the config copies).
pub fn start(
    setup: Setup,
    handle: ReloadHandle,
    queue: ReloadQueue,
    mut sighup: tokio::signal::unix::Signal,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let watching = Arc::new(AtomicBool::new(setup.config.pool.watch_config));
    let seen: watch::Seen = Arc::new(std::sync::Mutex::new(
        std::fs::read(&setup.config.path).ok(),
    ));
    let watcher = watch::spawn(
        setup.config.path.clone(),
        watching.clone(),
        seen.clone(),
        handle.clone(),
        stop.clone(),
    );
    let hup_stop = stop.clone();
    let hup_handle = handle;
    let hup = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = hup_stop.cancelled() => return,
                got = sighup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading the config");
                    // Queued; the reloader logs the outcome.
                    let _ = hup_handle.request(Trigger::Sighup);
                }
            }
        }
    });
    let mut reloader = Reloader {
        setup,
        watching,
        seen,
        stop: stop.clone(),
    };
    tokio::spawn(async move {
        reloader.run(queue).await;
        let _ = hup.await;
        let _ = watcher.await;
    })
}

struct Reloader {
    setup: Setup,
    watching: Arc<AtomicBool>,
    /// What the file said when it was last read, shared with the watcher.
    seen: watch::Seen,
    stop: CancellationToken,
}

impl Reloader {
    async fn run(&mut self, mut queue: ReloadQueue) {
        loop {
            let request = tokio::select! {
                () = self.stop.cancelled() => return,
                r = queue.next() => r,
            };
            let Some(request) = request else {
                return;
            };
            let result = self.reload(request.trigger).await;
            request.answer(result);
        }
    }

    async fn reload(&mut self, trigger: Trigger) -> Result<ReloadReport, ReloadError> {
        let began = Instant::now();
        let path = self.setup.config.path.clone();
        tracing::info!(?trigger, config = %path.display(), "reloading the config");
        // The watcher need not reload what this reload reads.
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = std::fs::read(&path).ok();
        let (new, text) = match load_and_check(&path) {
            Ok(loaded) => loaded,
            Err(e) => return Err(self.refuse(trigger, e)),
        };
        let old = &self.setup.config;
        let plan = plan::plan(old, &new);
        let mut effective = plan::effective(old, &new);
        effective.path = path.clone();
        let mut specs = std::collections::HashMap::new();
        // What the workers read afterwards: when nobody starts, the policy
        // follows and the copy they read stays.
        let mut workers = Config {
            path: self.setup.workers.path.clone(),
            ..effective.clone()
        };
        // A cluster node starts workers as it takes leases: they read
        // the new copy from now on.
        if plan.spawns() || effective.cluster.enabled {
            let for_workers = match self.setup.snapshots.for_workers(&effective, &text) {
                Ok(c) => c,
                Err(e) => {
                    let problem = Problem {
                        key: "(file)".into(),
                        message: format!("cannot keep a copy of the config for the workers: {e}"),
                        fix: format!(
                            "make room in {} (the system's temporary directory)",
                            std::env::temp_dir().display()
                        ),
                    };
                    let error = ConfigError {
                        path: path.clone(),
                        problems: vec![problem],
                    };
                    return Err(self.refuse(trigger, error));
                }
            };
            for spec in crate::topology::worker_specs(&for_workers, &self.setup.exe) {
                specs.insert(spec.name.clone(), spec);
            }
            workers = for_workers;
        }
        let outcome = apply::apply(
            &self.setup.pool,
            &plan,
            &specs,
            &plan::policy(&effective),
            effective.pool.reload_parallel,
            apply::OnFailure::Stop,
            &self.stop,
        )
        .await
        .map_err(|_| ReloadError::ShuttingDown)?;
        if let Some(failure) = outcome.failure {
            return Err(self
                .roll_back(trigger, path, plan, outcome.done, failure, outcome.warnings)
                .await?);
        }
        let warnings = outcome.warnings;
        self.setup.workers = workers;
        let old = std::mem::replace(&mut self.setup.config, effective);
        let new = &self.setup.config;
        self.watching.store(new.pool.watch_config, Ordering::SeqCst);
        for follower in &self.setup.followers {
            follower.follow(&old, new).await;
            follower.workers_follow(&self.setup.workers);
        }
        for p in &plan.needs_restart {
            tracing::warn!(key = %p.key, "{}: takes effect when worldpool run restarts", p.message);
        }
        let report = ReloadReport {
            trigger,
            file: path,
            plan,
            warnings,
            took_ms: began.elapsed().as_millis() as u64,
        };
        tracing::info!(
            ?trigger,
            took_ms = report.took_ms,
            warnings = report.warnings.len(),
            "config reloaded: {}",
            report.plan.summary()
        );
        self.setup.events.reloaded(&report);
        Ok(report)
    }

    /// Put the workers a stopped rollout changed back on the config in
    /// force (best effort: what fails is a warning), then log, publish and
    /// return the refusal naming the worker that did not come back.
    async fn roll_back(
        &self,
        trigger: Trigger,
        file: PathBuf,
        plan: Plan,
        done: Plan,
        failure: NotRunning,
        mut warnings: Vec<String>,
    ) -> Result<ReloadError, ReloadError> {
        let undo = plan::undo(&done);
        tracing::error!(
            worker = %failure.worker,
            state = %failure.state,
            last_exit = failure.last_exit.as_deref().unwrap_or("-"),
            "reload stopped: {}; putting back the config in force: {}",
            failure.message,
            undo.summary()
        );
        let specs: std::collections::HashMap<String, pool::WorkerSpec> =
            crate::topology::worker_specs(&self.setup.workers, &self.setup.exe)
                .into_iter()
                .map(|s| (s.name.clone(), s))
                .collect();
        let back = apply::apply(
            &self.setup.pool,
            &undo,
            &specs,
            &plan::policy(&self.setup.config),
            self.setup.config.pool.reload_parallel,
            apply::OnFailure::Continue,
            &self.stop,
        )
        .await
        .map_err(|_| ReloadError::ShuttingDown)?;
        warnings.extend(back.warnings);
        let changed: Vec<&str> = done
            .started
            .iter()
            .chain(&done.restarted)
            .map(String::as_str)
            .collect();
        let problem = Problem {
            key: format!("worker `{}`", failure.worker),
            message: failure.message.clone(),
            fix: format!(
                "the workers this reload changed ({}) are back on the config in force;                  see the log of worker `{}` for why it exits, fix the file and reload again",
                changed.join(", "),
                failure.worker
            ),
        };
        tracing::warn!("the config in force keeps running");
        self.setup.events.reload_failed(&ReloadFailure {
            trigger,
            file: file.clone(),
            problems: vec![problem.clone()],
            worker: Some(failure.clone()),
        });
        Ok(ReloadError::RolledBack(Box::new(RolledBack {
            file,
            worker: failure,
            plan,
            undone: undo,
            warnings,
            problems: vec![problem],
        })))
    }

    /// Log, publish and return a refused reload.
    fn refuse(&self, trigger: Trigger, error: ConfigError) -> ReloadError {
        for p in &error.problems {
            tracing::error!(
                config = %error.path.display(),
                key = %p.key,
                fix = %p.fix,
                "config reload refused: {}", p.message
            );
        }
        tracing::warn!("the config in force keeps running");
        self.setup.events.reload_failed(&ReloadFailure {
            trigger,
            file: error.path.clone(),
            problems: error.problems.clone(),
            worker: None,
        });
        ReloadError::Invalid(error)
    }
}

/// The checks of `worldpool check-config`: the file, then this machine.
fn load_and_check(path: &std::path::Path) -> Result<(Config, String), ConfigError> {
    let (config, text) = Config::load_text(path)?;
    let bind: Option<SocketAddr> = config.api.enabled.then_some(config.api.bind);
    config.check_environment(&Environment::current(), bind)?;
    Ok((config, text))
}
