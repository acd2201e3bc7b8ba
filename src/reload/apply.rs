//! Carrying out a [`Plan`] on the running pool, through the pool's own
//! per-worker command queues:
//!
//! 1. `stopped`: [`PoolHandle::remove`] — the stop sequence (SIGTERM,
//!    `stop_grace`, SIGKILL), then the worker leaves the table; its
//!    history stays in the store.
//! 2. `updated`: [`PoolHandle::update`] — the new restart policy and
//!    timeouts, same process.
//! 3. `started`: [`PoolHandle::add`].
//! 4. `restarted`: [`PoolHandle::replace`] — a graceful stop, then a new
//!    process with the new spec — at most `parallel` at a time, each
//!    waiting until its worker is `running` again before the next begins.
//!
//! A graceful stop never cuts a worker's transaction: SIGTERM cancels the
//! scrape loop between steps, the write of a run is never cancelled (it
//! commits or rolls back), and the store keeps the last processed update
//! with each run, so the new process redoes exactly the update the old one
//! had not committed. Problems with one worker (it does not come back
//! running, the OS refuses it) become warnings; the rest of the plan goes
//! on. Only the pool shutting down ends it early.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use pool::{PoolHandle, StateName, WorkerSpec};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::plan::Plan;

/// Extra time, beyond a worker's `start_timeout`, to wait for `running`
/// after a restart before the reload moves on (with a warning).
pub const RUNNING_GRACE: Duration = Duration::from_secs(5);

/// The pool began shutting down while a plan was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pool is shutting down")]
pub struct ShuttingDown;

/// Apply `plan`. `specs` holds the spec of every started or restarted
/// worker, `policy` is the policy of the updated ones. Returns the
/// warnings (one line each).
pub async fn apply(
    pool: &PoolHandle,
    plan: &Plan,
    specs: &HashMap<String, WorkerSpec>,
    policy: &pool::Policy,
    parallel: usize,
    stop: &CancellationToken,
) -> Result<Vec<String>, ShuttingDown> {
    let mut warnings = Vec::new();

    let mut removals = FuturesUnordered::new();
    for name in &plan.stopped {
        removals.push(remove(pool, name));
    }
    while let Some((name, result)) = removals.next().await {
        note(&mut warnings, name, "stop", result)?;
    }

    let mut updates = FuturesUnordered::new();
    for name in &plan.updated {
        updates.push(update(pool, name, policy.clone()));
    }
    while let Some((name, result)) = updates.next().await {
        note(&mut warnings, name, "update", result)?;
    }

    let mut additions = FuturesUnordered::new();
    for name in &plan.started {
        additions.push(add(pool, name, specs.get(name)));
    }
    while let Some((name, result)) = additions.next().await {
        note(&mut warnings, name, "start", result)?;
    }

    // At most `parallel` restarts at a time; the next begins when one is
    // running again.
    let mut waiting = plan.restarted.iter();
    let mut restarts = FuturesUnordered::new();
    for name in waiting.by_ref().take(parallel.max(1)) {
        restarts.push(restart(pool, specs.get(name), name, stop));
    }
    while let Some(result) = restarts.next().await {
        if let Some(warning) = result? {
            warnings.push(warning);
        }
        if let Some(name) = waiting.next() {
            restarts.push(restart(pool, specs.get(name), name, stop));
        }
    }
    Ok(warnings)
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

async fn add<'a>(
    pool: &PoolHandle,
    name: &'a str,
    spec: Option<&WorkerSpec>,
) -> (&'a str, Result<StateName, pool::Error>) {
    let result = match spec {
        Some(spec) => pool.add(spec.clone()).await,
        None => Err(pool::Error::UnknownWorker(name.to_string())),
    };
    (name, result)
}

/// Record the outcome of one command: a warning for anything but success,
/// an error when the pool is shutting down.
fn note(
    warnings: &mut Vec<String>,
    name: &str,
    what: &str,
    result: Result<StateName, pool::Error>,
) -> Result<(), ShuttingDown> {
    match result {
        Ok(_) => Ok(()),
        Err(pool::Error::ShuttingDown) => Err(ShuttingDown),
        Err(e) => {
            let warning = format!("{what} of worker `{name}` failed: {e}");
            tracing::warn!(worker = %name, "{warning}");
            warnings.push(warning);
            Ok(())
        }
    }
}

/// Replace one worker and wait until it runs again (or is known not to):
/// `Ok(Some(warning))` when it did not come back running.
async fn restart(
    pool: &PoolHandle,
    spec: Option<&WorkerSpec>,
    name: &str,
    stop: &CancellationToken,
) -> Result<Option<String>, ShuttingDown> {
    let warning = restart_and_wait(pool, spec, name, stop).await?;
    if let Some(w) = &warning {
        tracing::warn!(worker = %name, "{w}");
    }
    Ok(warning)
}

async fn restart_and_wait(
    pool: &PoolHandle,
    spec: Option<&WorkerSpec>,
    name: &str,
    stop: &CancellationToken,
) -> Result<Option<String>, ShuttingDown> {
    let Some(spec) = spec else {
        return Ok(Some(format!("no spec for worker `{name}`: not restarted")));
    };
    let old_pid = pool.worker(name).and_then(|w| w.pid);
    // Subscribed before the new process exists: its `ready` cannot be missed.
    let mut events = pool.subscribe();
    let state = match pool.replace(spec.clone()).await {
        Ok(state) => state,
        Err(pool::Error::ShuttingDown) => return Err(ShuttingDown),
        Err(e) => return Ok(Some(format!("restart of worker `{name}` failed: {e}"))),
    };
    if state == StateName::Stopped {
        // It was stopped by hand: it keeps the new spec and stays stopped.
        return Ok(None);
    }
    let deadline =
        tokio::time::Instant::now() + spec.start_timeout.unwrap_or(Duration::ZERO) + RUNNING_GRACE;
    loop {
        let Some(w) = pool.worker(name) else {
            return Ok(Some(format!(
                "worker `{name}` left the pool while restarting"
            )));
        };
        match w.state {
            StateName::Running if w.pid.is_some() && w.pid != old_pid => return Ok(None),
            StateName::Backoff | StateName::Fatal | StateName::Stopped => {
                let why = w
                    .last_exit
                    .map(|e| format!(" (last exit: {})", e.reason.as_str()))
                    .unwrap_or_default();
                return Ok(Some(format!(
                    "worker `{name}` did not come back running after its restart: {}{why}",
                    w.state.as_str()
                )));
            }
            _ => {}
        }
        tokio::select! {
            () = stop.cancelled() => return Err(ShuttingDown),
            () = tokio::time::sleep_until(deadline) => {
                return Ok(Some(format!(
                    "worker `{name}` was not running {}s after its restart; the reload went on",
                    (spec.start_timeout.unwrap_or(Duration::ZERO) + RUNNING_GRACE).as_secs()
                )));
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
