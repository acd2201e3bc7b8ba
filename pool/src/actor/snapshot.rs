//! The actor's bookkeeping: its view of the worker (the snapshot other
//! threads read), lifecycle events, and what the worker reports.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::Actor;
use crate::channel::WorkerReport;
use crate::decide::{State, StopCause};
use crate::events::PoolEvent;
use crate::exit::{ExitReason, ExitRecord};
use crate::status::StateName;

impl Actor {
    /// Bookkeeping after a transition: snapshot fields and lifecycle events.
    pub(super) fn entered(&mut self, from: &State) {
        let to = self.machine.state.clone();
        if from.pid().is_some() && from.pid() == to.pid() && from.name() == to.name() {
            return; // the same run with new deadlines
        }
        if from.name() != to.name() {
            self.status.since = Utc::now();
        }
        self.status.state = to.name();
        self.status.next_restart_at = None;
        self.status.fatal_reason = None;
        let worker = self.spec.name.clone();
        match to {
            State::Running { pid, .. } => {
                tracing::info!(worker = %worker, pid, "running");
                self.emit(PoolEvent::Ready { worker, pid });
            }
            State::Backoff { until } => {
                let at = wall_time(until);
                self.status.next_restart_at = Some(at);
                tracing::info!(worker = %worker, next_restart_at = %at, failures = self.machine.consecutive_failures, "backoff");
                self.emit(PoolEvent::Backoff {
                    worker,
                    next_restart_at: at,
                });
            }
            State::Fatal { reason, retry_at } => {
                let at = retry_at.map(wall_time);
                self.status.next_restart_at = at;
                self.status.fatal_reason = Some(reason.clone());
                tracing::error!(worker = %worker, reason = %reason, next_restart_at = ?at, "fatal");
                self.emit(PoolEvent::Fatal {
                    worker,
                    reason,
                    next_restart_at: at,
                });
            }
            State::Stopped => {
                tracing::info!(worker = %worker, "stopped");
                self.emit(PoolEvent::Stopped { worker });
            }
            State::Stopping {
                pid,
                why: StopCause::Hung,
                ..
            } if from.name() != StateName::Stopping => {
                tracing::warn!(worker = %worker, pid, state = from.name().as_str(), "watchdog: no ready/heartbeat in time, killing the worker");
            }
            State::Starting { .. } | State::Stopping { .. } => {}
        }
    }

    /// Log an exit (or failed spawn), keep it in the snapshot, announce it.
    pub(super) fn record_exit(&mut self, pid: Option<u32>, exit: &ExitRecord) {
        let clean = exit.reason == ExitReason::Stopped
            || (exit.reason == ExitReason::Exited && exit.code == Some(0));
        let (code, signal, reason) = (exit.code, exit.signal, exit.reason.as_str());
        if clean {
            tracing::info!(worker = %self.spec.name, ?pid, ?code, ?signal, reason, uptime_s = exit.uptime_s, "worker exited");
        } else {
            tracing::warn!(worker = %self.spec.name, ?pid, ?code, ?signal, reason, uptime_s = exit.uptime_s, error = ?exit.error, "worker exited");
        }
        let s = &mut self.status;
        s.pid = None;
        s.cpu_percent = None;
        s.rss_bytes = None;
        s.pss_bytes = None;
        s.last_exit = Some(exit.clone());
        s.recent_exits.push(exit.clone());
        let keep = self.shared.options.exit_history.max(1);
        let excess = s.recent_exits.len().saturating_sub(keep);
        s.recent_exits.drain(..excess);
        *s.exits_by_reason.entry(reason.to_string()).or_insert(0) += 1;
        self.emit(PoolEvent::Exited {
            worker: self.spec.name.clone(),
            pid,
            exit: exit.clone(),
        });
    }

    pub(super) fn merge_report(&mut self, r: WorkerReport) {
        if let Some(phase) = r.phase
            && self.status.report.phase.as_deref() != Some(phase.as_str())
        {
            self.status.report.phase = Some(phase.clone());
            self.emit(PoolEvent::Phase {
                worker: self.spec.name.clone(),
                phase,
            });
        }
        let report = &mut self.status.report;
        if r.last_check.is_some() {
            report.last_check = r.last_check;
        }
        if r.last_success.is_some() {
            report.last_success = r.last_success;
        }
        if let Some(e) = r.last_error {
            report.last_error = if e.is_empty() { None } else { Some(e) };
        }
        if r.rows_last_run.is_some() {
            report.rows_last_run = r.rows_last_run;
        }
    }

    /// Queue an event; [`publish`](Self::publish) sends it after the
    /// snapshot is updated, so a subscriber never sees an event before the
    /// state it announces.
    pub(super) fn emit(&mut self, event: PoolEvent) {
        self.outbox.push(event);
    }

    /// Write the actor's view into the shared table, keeping the sampler's
    /// fields, then send the queued events.
    pub(super) fn publish(&mut self) {
        self.status.consecutive_failures = self.machine.consecutive_failures;
        self.status.state = self.machine.state.name();
        let mut guard = self.slot.status.write().unwrap_or_else(|p| p.into_inner());
        let (cpu, rss, pss) = if guard.pid == self.status.pid {
            (guard.cpu_percent, guard.rss_bytes, guard.pss_bytes)
        } else {
            (None, None, None)
        };
        *guard = self.status.clone();
        guard.cpu_percent = cpu;
        guard.rss_bytes = rss;
        guard.pss_bytes = pss;
        drop(guard);
        for event in self.outbox.drain(..) {
            // No subscriber is fine.
            let _ = self.shared.events.send(event);
        }
    }
}

fn wall_time(t: Instant) -> DateTime<Utc> {
    let now = Instant::now();
    let wall = Utc::now();
    if t >= now {
        wall + chrono::Duration::from_std(t - now).unwrap_or_default()
    } else {
        wall - chrono::Duration::from_std(now - t).unwrap_or_default()
    }
}
