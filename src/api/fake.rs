//! An in-memory [`Control`] for router tests and the API benchmark: a table
//! of worker snapshots, a real event broadcast, and a log of the control
//! calls it received. Verbs change the table the way the pool would.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};

use chrono::Utc;
use pool::{ExitReason, ExitRecord, Limits, PoolEvent, StateName, WorkerReport, WorkerStatus};
use tokio::sync::broadcast;

use super::control::{BoxFuture, Control, ControlError, Verb};

/// A fake pool.
pub struct FakeControl {
    workers: RwLock<Vec<WorkerStatus>>,
    events: broadcast::Sender<PoolEvent>,
    calls: Mutex<Vec<(Verb, String)>>,
    checks: Mutex<Vec<String>>,
    next_pid: AtomicU32,
    shutting_down: std::sync::atomic::AtomicBool,
    failure: Mutex<Option<String>>,
}

impl FakeControl {
    /// Workers with these names, all running (pids from 10000), with
    /// realistic reports, limits and one past crash each.
    pub fn new<S: AsRef<str>>(names: &[S]) -> FakeControl {
        let workers = names
            .iter()
            .enumerate()
            .map(|(i, n)| Self::sample_status(n.as_ref(), 10_000 + i as u32))
            .collect();
        Self::with_workers(workers)
    }

    /// A fake over given snapshots.
    pub fn with_workers(workers: Vec<WorkerStatus>) -> FakeControl {
        let (events, _) = broadcast::channel(1024);
        FakeControl {
            workers: RwLock::new(workers),
            events,
            calls: Mutex::new(Vec::new()),
            checks: Mutex::new(Vec::new()),
            next_pid: AtomicU32::new(50_000),
            shutting_down: false.into(),
            failure: Mutex::new(None),
        }
    }

    /// A plausible snapshot of a running worker.
    pub fn sample_status(name: &str, pid: u32) -> WorkerStatus {
        let now = Utc::now();
        let started = now - chrono::Duration::seconds(3_600);
        let crash = ExitRecord {
            code: None,
            signal: Some(9),
            reason: ExitReason::Crashed,
            at: started,
            uptime_s: 120.5,
            error: None,
        };
        let mut exits_by_reason = std::collections::BTreeMap::new();
        exits_by_reason.insert("crashed".to_string(), 1);
        WorkerStatus {
            name: name.to_string(),
            pid: Some(pid),
            state: StateName::Running,
            since: started,
            started_at: Some(started),
            uptime_s: Some(3_600.0),
            restarts: 1,
            consecutive_failures: 0,
            last_exit: Some(crash.clone()),
            recent_exits: vec![crash],
            next_restart_at: None,
            fatal_reason: None,
            cpu_percent: Some(1.5),
            rss_bytes: Some(12 * 1024 * 1024),
            pss_bytes: Some(3 * 1024 * 1024),
            limits: Limits {
                cpu_time: Some(std::time::Duration::from_secs(3_600)),
                memory: Some(256 * 1024 * 1024),
                open_files: Some(256),
            },
            policy: pool::Policy::default(),
            report: WorkerReport {
                phase: Some("sleeping".into()),
                last_check: Some(now - chrono::Duration::seconds(30)),
                last_success: Some(now - chrono::Duration::seconds(300)),
                last_error: None,
                rows_last_run: Some(240),
            },
            last_heartbeat: Some(now),
            exits_by_reason,
            messages_dropped: 0,
        }
    }

    /// Change one worker's snapshot; false when it does not exist.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut WorkerStatus)) -> bool {
        let mut table = self.workers.write().unwrap_or_else(|e| e.into_inner());
        match table.iter_mut().find(|w| w.name == name) {
            Some(w) => {
                f(w);
                true
            }
            None => false,
        }
    }

    /// Broadcast an event; returns how many subscribers got it.
    pub fn emit(&self, event: PoolEvent) -> usize {
        self.events.send(event).unwrap_or(0)
    }

    /// How many event subscribers exist now.
    pub fn subscribers(&self) -> usize {
        self.events.receiver_count()
    }

    /// The control calls received so far, in order.
    pub fn calls(&self) -> Vec<(Verb, String)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The workers asked to check now ([`Control::check_now`]), in order.
    pub fn checks(&self) -> Vec<String> {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Make every further verb fail with [`ControlError::ShuttingDown`].
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Make every further verb fail with [`ControlError::Failed`] and this
    /// (internal) text; `None` makes them work again.
    pub fn set_failure(&self, failure: Option<&str>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure.map(String::from);
    }

    fn act(&self, verb: Verb, name: &str) -> Result<StateName, ControlError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((verb, name.to_string()));
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        if let Some(text) = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(ControlError::Failed(text));
        }
        let now = Utc::now();
        let mut events = Vec::new();
        let state = {
            let mut table = self.workers.write().unwrap_or_else(|e| e.into_inner());
            let w = table
                .iter_mut()
                .find(|w| w.name == name)
                .ok_or_else(|| ControlError::UnknownWorker(name.to_string()))?;
            let running = w.pid.is_some();
            if running && verb != Verb::Start {
                let exit = ExitRecord {
                    code: None,
                    signal: Some(15),
                    reason: ExitReason::Stopped,
                    at: now,
                    uptime_s: w.uptime_s.unwrap_or(0.0),
                    error: None,
                };
                events.push(PoolEvent::Exited {
                    worker: name.to_string(),
                    pid: w.pid,
                    exit: exit.clone(),
                });
                *w.exits_by_reason.entry("stopped".into()).or_insert(0) += 1;
                w.last_exit = Some(exit);
                w.pid = None;
                w.uptime_s = None;
                w.state = StateName::Stopped;
                w.since = now;
            }
            let spawn = match verb {
                Verb::Stop => false,
                Verb::Start => !running,
                Verb::Restart => true,
            };
            if spawn {
                let pid = self.next_pid.fetch_add(1, Ordering::SeqCst);
                if verb == Verb::Restart {
                    w.restarts += 1;
                }
                w.pid = Some(pid);
                w.state = StateName::Running;
                w.since = now;
                w.started_at = Some(now);
                w.uptime_s = Some(0.0);
                w.next_restart_at = None;
                w.fatal_reason = None;
                events.push(PoolEvent::Started {
                    worker: name.to_string(),
                    pid,
                });
            } else if verb == Verb::Stop {
                events.push(PoolEvent::Stopped {
                    worker: name.to_string(),
                });
            }
            w.state
        };
        for e in events {
            self.emit(e);
        }
        Ok(state)
    }
}

impl Control for FakeControl {
    fn workers(&self) -> Vec<WorkerStatus> {
        self.workers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn worker(&self, name: &str) -> Option<WorkerStatus> {
        self.workers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|w| w.name == name)
            .cloned()
    }

    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { self.act(Verb::Start, name) })
    }

    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { self.act(Verb::Stop, name) })
    }

    fn restart<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StateName, ControlError>> {
        Box::pin(async move { self.act(Verb::Restart, name) })
    }

    fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.events.subscribe()
    }

    fn check_now<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(ControlError::ShuttingDown);
            }
            if let Some(text) = self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return Err(ControlError::Failed(text));
            }
            if self.worker(name).is_none() {
                return Err(ControlError::UnknownWorker(name.to_string()));
            }
            self.checks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name.to_string());
            Ok(())
        })
    }
}
