//! Carrying out a [`Plan`] on the running pool, through the pool's own
//! per-worker command queues, as a rollout that stops at the first worker
//! that does not come back:
//!
//! 1. `started`: [`PoolHandle::add`], each waited for until `running`.
//! 2. `restarted`: [`PoolHandle::replace`] — a graceful stop, then a new
//!    process with the new spec — at most `parallel` at a time, each
//!    waiting until its worker is `running` again before the next begins.
//! 3. `updated`: [`PoolHandle::update`] — the new restart policy and
//!    timeouts, same process.
//! 4. `stopped`: [`PoolHandle::remove`] — the stop sequence (SIGTERM,
//!    `stop_grace`, SIGKILL), then the worker leaves the table; its
//!    history stays in the store.
//!
//! With [`OnFailure::Stop`] (a reload), a started or restarted worker that
//! is not `running` within its `start_timeout` plus [`RUNNING_GRACE`] (it
//! crashed and backs off, went fatal, or never reported `ready`) ends the
//! rollout: no further worker is started or restarted, the restarts in
//! flight finish, nothing is updated or removed, and [`Outcome`] names the
//! worker with its last exit and lists what was already changed, so the
//! reloader can put those workers back on the previous config
//! ([`super::plan::undo`]). With [`OnFailure::Continue`] (that rollback)
//! such a worker is a warning and the rest goes on.
//!
//! A graceful stop never cuts a worker's transaction: SIGTERM cancels the
//! scrape loop between steps, the write of a run is never cancelled (it
//! commits or rolls back), and the store keeps the last processed update
//! with each run, so the new process redoes exactly the update the old one
//! had not committed. A command the pool refuses for one worker (it was
//! removed by hand meanwhile) is a warning. Only the pool shutting down
//! ends the rollout early.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use pool::{PoolHandle, StateName, WorkerSpec};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::plan::Plan;

/// Extra time, beyond a worker's `start_timeout`, to wait for `running`
/// after a start or a restart before the worker counts as not back.
pub const RUNNING_GRACE: Duration = Duration::from_secs(5);

/// The pool began shutting down while a plan was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pool is shutting down")]
pub struct ShuttingDown;

/// What a worker that does not come back `running` does to the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop: start and restart nothing more, update and remove nothing.
    Stop,
    /// Note a warning and go on (putting the previous config back).
    Continue,
}

/// A started or restarted worker that did not come back `running`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotRunning {
    /// The worker.
    pub worker: String,
    /// Its state when the rollout gave up on it (`backoff`, `fatal`,
    /// `stopped`, or `starting` when the wait ran out).
    pub state: String,
    /// Its last exit (`exited with status 1`, `crashed (signal 6)`,
    /// `spawn_failed: …`), when it exited.
    pub last_exit: Option<String>,
    /// One line saying all of it.
    pub message: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What did not go as planned but did not stop the rollout, one line
    /// each.
    pub warnings: Vec<String>,
    /// The worker that stopped the rollout ([`OnFailure::Stop`]).
    pub failure: Option<NotRunning>,
    /// What was changed: the workers added (`started`), replaced
    /// (`restarted`, the one that failed included), updated and removed.
    pub done: Plan,
}

/// Apply `plan`. `specs` holds the spec of every started or restarted
/// worker, `policy` is the policy of the updated ones.
pub async fn apply(
    pool: &PoolHandle,
    plan: &Plan,
    specs: &HashMap<String, WorkerSpec>,
    policy: &pool::Policy,
    parallel: usize,
    on_failure: OnFailure,
    stop: &CancellationToken,
) -> Result<Outcome, ShuttingDown> {
    let mut out = Outcome::default();
    let strict = on_failure == OnFailure::Stop;
    // A worker that did not come back: the first one ends a strict rollout.
    let not_back = |out: &mut Outcome, failed: NotRunning| {
        tracing::warn!(worker = %failed.worker, "{}", failed.message);
        if strict && out.failure.is_none() {
            out.failure = Some(failed);
        } else {
            out.warnings.push(failed.message);
        }
    };

    let mut additions = FuturesUnordered::new();
    for name in &plan.started {
        additions.push(start(pool, specs.get(name), name, stop));
    }
    while let Some((name, result)) = additions.next().await {
        match result? {
            Back::Running => out.done.started.push(name.to_string()),
            Back::NotRunning(failed) => {
                out.done.started.push(name.to_string());
                not_back(&mut out, failed);
            }
            Back::Untouched(warning) => warn(&mut out.warnings, name, warning),
        }
    }

    // At most `parallel` restarts at a time; the next begins when one is
    // running again, and none once a worker did not come back.
    let mut waiting = plan.restarted.iter();
    let mut restarts = FuturesUnordered::new();
    if out.failure.is_none() {
        for name in waiting.by_ref().take(parallel.max(1)) {
            restarts.push(restart(pool, specs.get(name), name, stop));
        }
    }
    while let Some((name, result)) = restarts.next().await {
        match result? {
            Back::Running => out.done.restarted.push(name.to_string()),
            Back::NotRunning(failed) => {
                out.done.restarted.push(name.to_string());
                not_back(&mut out, failed);
            }
            Back::Untouched(warning) => warn(&mut out.warnings, name, warning),
        }
        if out.failure.is_none()
            && let Some(name) = waiting.next()
        {
            restarts.push(restart(pool, specs.get(name), name, stop));
        }
    }
    if out.failure.is_some() {
        return Ok(out);
    }

    let mut updates = FuturesUnordered::new();
    for name in &plan.updated {
        updates.push(update(pool, name, policy.clone()));
    }
    while let Some((name, result)) = updates.next().await {
        if note(&mut out.warnings, name, "update", result)? {
            out.done.updated.push(name.to_string());
        }
    }

    let mut removals = FuturesUnordered::new();
    for name in &plan.stopped {
        removals.push(remove(pool, name));
    }
    while let Some((name, result)) = removals.next().await {
        if note(&mut out.warnings, name, "stop", result)? {
            out.done.stopped.push(name.to_string());
        }
    }
    // Keep the plan's order in the record.
    for (done, planned) in [
        (&mut out.done.started, &plan.started),
        (&mut out.done.restarted, &plan.restarted),
        (&mut out.done.updated, &plan.updated),
        (&mut out.done.stopped, &plan.stopped),
    ] {
        done.sort_by_key(|n| planned.iter().position(|p| p == n));
    }
    Ok(out)
}

fn warn(warnings: &mut Vec<String>, name: &str, warning: String) {
    tracing::warn!(worker = %name, "{warning}");
    warnings.push(warning);
}

/// How a started or restarted worker came out.
enum Back {
    /// Running its new process.
    Running,
    /// Given the new spec, not running.
    NotRunning(NotRunning),
    /// Not given the new spec (no spec, or the pool refused the command):
    /// the warning.
    Untouched(String),
}

async fn remove<'a>(pool: &PoolHandle, name: &'a str) -> (&'a str, Result<StateName, pool::Error>) {
    (name, pool.remove(name).await.map(|()| StateName::Stopped))
}

async fn update<'a>(
    pool: &PoolHandle,
    name: &'a str,
    policy: pool::Policy,
) -> (&'a str, Result<StateName, pool::Error>) {
    (name, pool.update(name, policy).await)
}

/// Record the outcome of one command: `true` when done, a warning for
/// anything else, an error when the pool is shutting down.
fn note(
    warnings: &mut Vec<String>,
    name: &str,
    what: &str,
    result: Result<StateName, pool::Error>,
) -> Result<bool, ShuttingDown> {
    match result {
        Ok(_) => Ok(true),
        Err(pool::Error::ShuttingDown) => Err(ShuttingDown),
        Err(e) => {
            warn(
                warnings,
                name,
                format!("{what} of worker `{name}` failed: {e}"),
            );
            Ok(false)
        }
    }
}

/// Add one worker and wait until it runs (or is known not to).
async fn start<'a>(
    pool: &PoolHandle,
    spec: Option<&WorkerSpec>,
    name: &'a str,
    stop: &CancellationToken,
) -> (&'a str, Result<Back, ShuttingDown>) {
    let Some(spec) = spec else {
        return (
            name,
            Ok(Back::Untouched(format!(
                "no spec for worker `{name}`: not started"
            ))),
        );
    };
    // Subscribed before the process exists: its `ready` cannot be missed.
    let events = pool.subscribe();
    let result = match pool.add(spec.clone()).await {
        Ok(_) => wait_running(pool, spec, name, None, events, "start", stop).await,
        Err(pool::Error::ShuttingDown) => Err(ShuttingDown),
        Err(e) => Ok(Back::Untouched(format!(
            "start of worker `{name}` failed: {e}"
        ))),
    };
    (name, result)
}

/// Replace one worker and wait until it runs again (or is known not to).
async fn restart<'a>(
    pool: &PoolHandle,
    spec: Option<&WorkerSpec>,
    name: &'a str,
    stop: &CancellationToken,
) -> (&'a str, Result<Back, ShuttingDown>) {
    let Some(spec) = spec else {
        return (
            name,
            Ok(Back::Untouched(format!(
                "no spec for worker `{name}`: not restarted"
            ))),
        );
    };
    let old_pid = pool.worker(name).and_then(|w| w.pid);
    let events = pool.subscribe();
    let result = match pool.replace(spec.clone()).await {
        // It was stopped by hand: it keeps the new spec and stays stopped.
        Ok(StateName::Stopped) => Ok(Back::Running),
        Ok(_) => wait_running(pool, spec, name, old_pid, events, "restart", stop).await,
        Err(pool::Error::ShuttingDown) => Err(ShuttingDown),
        Err(e) => Ok(Back::Untouched(format!(
            "restart of worker `{name}` failed: {e}"
        ))),
    };
    (name, result)
}

/// Wait until `name` runs a process other than `old_pid`, or is known not
/// to: backing off, fatal, stopped, gone, or still not running after its
/// `start_timeout` plus [`RUNNING_GRACE`].
async fn wait_running(
    pool: &PoolHandle,
    spec: &WorkerSpec,
    name: &str,
    old_pid: Option<u32>,
    mut events: tokio::sync::broadcast::Receiver<pool::PoolEvent>,
    what: &str,
    stop: &CancellationToken,
) -> Result<Back, ShuttingDown> {
    let wait = spec.start_timeout.unwrap_or(Duration::ZERO) + RUNNING_GRACE;
    let deadline = tokio::time::Instant::now() + wait;
    let not_running = |state: &str, last_exit: Option<String>, message: String| {
        Back::NotRunning(NotRunning {
            worker: name.to_string(),
            state: state.to_string(),
            last_exit,
            message,
        })
    };
    loop {
        let Some(w) = pool.worker(name) else {
            return Ok(not_running(
                "gone",
                None,
                format!("worker `{name}` left the pool during its {what}"),
            ));
        };
        let last_exit = w.last_exit.as_ref().map(pool::ExitRecord::summary);
        let why = last_exit
            .as_deref()
            .map(|e| format!(" (last exit: {e})"))
            .unwrap_or_default();
        match w.state {
            StateName::Running if w.pid.is_some() && w.pid != old_pid => return Ok(Back::Running),
            StateName::Backoff | StateName::Fatal | StateName::Stopped => {
                let state = w.state.as_str();
                return Ok(not_running(
                    state,
                    last_exit.clone(),
                    format!(
                        "worker `{name}` did not come back running after its {what}: {state}{why}"
                    ),
                ));
            }
            _ => {}
        }
        tokio::select! {
            () = stop.cancelled() => return Err(ShuttingDown),
            () = tokio::time::sleep_until(deadline) => {
                let state = w.state.as_str();
                return Ok(not_running(
                    state,
                    last_exit.clone(),
                    format!(
                        "worker `{name}` was not running {}s after its {what}: {state}{why}",
                        wait.as_secs()
                    ),
                ));
            }
            r = events.recv() => {
                if matches!(r, Err(RecvError::Closed)) {
                    return Err(ShuttingDown);
                }
            }
            // Every state change is an event; this only bounds a missed one.
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
