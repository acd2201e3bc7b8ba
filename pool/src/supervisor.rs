//! The supervisor: one actor task per worker, a shared snapshot table, an
//! event broadcast.
//!
//! - Each worker has an actor task that owns its child process, its channel
//!   and its timers. It feeds every event (command, exit, message, timer)
//!   to [`decide`](fn@crate::decide::decide) and applies the returned actions.
//! - Commands (`start`, `stop`, `restart`, `shutdown`) are queued per worker
//!   and answered with the resulting state once the worker is no longer
//!   `stopping`.
//! - Status snapshots live in a shared table written by the actors and the
//!   sampler thread; [`PoolHandle::workers`] reads it without talking to the
//!   actors.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;
use tokio::net::UnixStream;
use tokio::process::Child;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::channel::{WorkerMessage, WorkerReport};
use crate::decide::{Action, Event, Machine, State, decide};
use crate::error::Error;
use crate::events::PoolEvent;
use crate::exit::{ExitContext, ExitReason, ExitRecord, classify};
use crate::lines::{LineReader, MAX_LINE};
use crate::spawn::{Plan, Spawner};
use crate::spec::WorkerSpec;
use crate::status::{StateName, WorkerStatus};

/// Pool-wide options.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How often CPU and RSS of the workers are sampled.
    pub sample_interval: Duration,
    /// How many past exits are kept per worker.
    pub exit_history: usize,
    /// Capacity of the event broadcast (slow subscribers lag beyond it).
    pub event_capacity: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            sample_interval: Duration::from_secs(1),
            exit_history: 10,
            event_capacity: 1024,
        }
    }
}

/// A running pool. Dropping it without [`Pool::shutdown`] starts the same
/// graceful stop but does not wait for it; if the runtime ends first, the
/// actors SIGKILL their workers, and PDEATHSIG covers the process ending.
pub struct Pool {
    handle: PoolHandle,
}

/// Cheap, cloneable access to a running pool.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<Shared>,
}

enum CommandKind {
    Start,
    Stop,
    Restart,
    Shutdown,
}

struct Command {
    kind: CommandKind,
    reply: oneshot::Sender<StateName>,
}

struct Slot {
    status: RwLock<WorkerStatus>,
    commands: mpsc::UnboundedSender<Command>,
    /// Last sampled CPU time of the current process, milliseconds.
    cpu_time_ms: AtomicU64,
    /// Why the last spawn failed (cleared by a successful spawn).
    spawn_error: Mutex<Option<String>>,
}

struct Shared {
    names: HashMap<String, usize>,
    slots: Vec<Slot>,
    events: broadcast::Sender<PoolEvent>,
    shutting_down: AtomicBool,
    actors: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    /// Start every worker. Must be called inside a tokio runtime.
    pub fn start(specs: Vec<WorkerSpec>, options: PoolOptions) -> Result<Pool, Error> {
        let mut names = HashMap::new();
        for (i, s) in specs.iter().enumerate() {
            if names.insert(s.name.clone(), i).is_some() {
                return Err(Error::DuplicateName(s.name.clone()));
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| Error::Io {
            context: "Pool::start needs a tokio runtime".into(),
            source: std::io::Error::other(e),
        })?;
        let spawner = Spawner::start(runtime)?;
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let now = Utc::now();
        let mut receivers = Vec::with_capacity(specs.len());
        let mut slots = Vec::with_capacity(specs.len());
        for s in &specs {
            let (tx, rx) = mpsc::unbounded_channel();
            receivers.push(rx);
            slots.push(Slot {
                status: RwLock::new(initial_status(s, now)),
                commands: tx,
                cpu_time_ms: AtomicU64::new(0),
                spawn_error: Mutex::new(None),
            });
        }
        let shared = Arc::new(Shared {
            names,
            slots,
            events,
            shutting_down: AtomicBool::new(false),
            actors: Mutex::new(Vec::new()),
        });
        let mut actors = Vec::with_capacity(specs.len());
        for (idx, (spec, rx)) in specs.into_iter().zip(receivers).enumerate() {
            let actor = Actor::new(idx, spec, shared.clone(), spawner.clone(), &options);
            actors.push(tokio::spawn(actor.run(rx)));
        }
        drop(spawner);
        if let Ok(mut a) = shared.actors.lock() {
            *a = actors;
        }
        start_sampler(Arc::downgrade(&shared), options.sample_interval)?;
        // Queue the first start of every worker.
        for slot in &shared.slots {
            let (reply, _) = oneshot::channel();
            let _ = slot.commands.send(Command {
                kind: CommandKind::Start,
                reply,
            });
        }
        Ok(Pool {
            handle: PoolHandle { shared },
        })
    }

    /// A handle for status and control.
    pub fn handle(&self) -> PoolHandle {
        self.handle.clone()
    }

    /// Stop every worker in parallel (SIGTERM, `stop_grace`, SIGKILL) and wait.
    pub async fn shutdown(self) {
        self.handle.shutdown().await
    }
}

fn initial_status(spec: &WorkerSpec, now: DateTime<Utc>) -> WorkerStatus {
    WorkerStatus {
        name: spec.name.clone(),
        pid: None,
        state: StateName::Stopped,
        since: now,
        started_at: None,
        uptime_s: None,
        restarts: 0,
        consecutive_failures: 0,
        last_exit: None,
        recent_exits: Vec::new(),
        next_restart_at: None,
        fatal_reason: None,
        cpu_percent: None,
        rss_bytes: None,
        limits: spec.limits.clone(),
        report: WorkerReport::default(),
        last_heartbeat: None,
        exits_by_reason: BTreeMap::new(),
    }
}

impl Drop for Pool {
    /// Begin a graceful stop of every worker (without waiting) unless
    /// [`Pool::shutdown`] already ran.
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        if !shared.shutting_down.swap(true, Ordering::SeqCst) {
            for slot in &shared.slots {
                let (reply, _) = oneshot::channel();
                let _ = slot.commands.send(Command {
                    kind: CommandKind::Shutdown,
                    reply,
                });
            }
        }
    }
}

impl PoolHandle {
    /// Snapshot of every worker, in spec order. Reads the shared table: no
    /// round trip to the actors.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        let now = Utc::now();
        self.shared
            .slots
            .iter()
            .map(|slot| read_status(slot, now))
            .collect()
    }

    /// Snapshot of one worker.
    pub fn worker(&self, name: &str) -> Option<WorkerStatus> {
        let idx = *self.shared.names.get(name)?;
        Some(read_status(&self.shared.slots[idx], Utc::now()))
    }

    /// Worker names, in spec order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<(usize, String)> = self
            .shared
            .names
            .iter()
            .map(|(n, i)| (*i, n.clone()))
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }

    /// Why the worker's last spawn failed (e.g. a limit the OS refused), if
    /// it did; cleared by the next successful spawn.
    pub fn spawn_error(&self, name: &str) -> Option<String> {
        let idx = *self.shared.names.get(name)?;
        self.shared.slots[idx]
            .spawn_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
    }

    /// Start a stopped or fatal worker; returns the resulting state.
    pub async fn start(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, CommandKind::Start).await
    }

    /// Stop a worker and keep it stopped; returns the resulting state.
    pub async fn stop(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, CommandKind::Stop).await
    }

    /// Stop then start a worker; returns the resulting state.
    pub async fn restart(&self, name: &str) -> Result<StateName, Error> {
        self.command(name, CommandKind::Restart).await
    }

    /// Subscribe to pool events.
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.shared.events.subscribe()
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// Stop every worker in parallel and wait for all of them.
    pub async fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let mut replies = Vec::with_capacity(self.shared.slots.len());
        for slot in &self.shared.slots {
            let (reply, rx) = oneshot::channel();
            if slot
                .commands
                .send(Command {
                    kind: CommandKind::Shutdown,
                    reply,
                })
                .is_ok()
            {
                replies.push(rx);
            }
        }
        // All stops run in parallel in their actors; collect the answers.
        for rx in replies {
            let _ = rx.await;
        }
        let actors = match self.shared.actors.lock() {
            Ok(mut a) => std::mem::take(&mut *a),
            Err(_) => Vec::new(),
        };
        for a in actors {
            let _ = a.await;
        }
    }

    async fn command(&self, name: &str, kind: CommandKind) -> Result<StateName, Error> {
        let idx = *self
            .shared
            .names
            .get(name)
            .ok_or_else(|| Error::UnknownWorker(name.to_string()))?;
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let (reply, rx) = oneshot::channel();
        self.shared.slots[idx]
            .commands
            .send(Command { kind, reply })
            .map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }
}

fn read_status(slot: &Slot, now: DateTime<Utc>) -> WorkerStatus {
    let mut s = match slot.status.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    s.uptime_s = match (s.pid, s.started_at) {
        (Some(_), Some(at)) => Some((now - at).num_milliseconds().max(0) as f64 / 1000.0),
        _ => None,
    };
    s
}

// ---------------------------------------------------------------------------
// Sampler.

fn start_sampler(shared: Weak<Shared>, interval: Duration) -> Result<(), Error> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let interval = interval.max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("pool-sampler".into())
        .spawn(move || {
            let mut sys = match System::new() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "resource sampling disabled");
                    return;
                }
            };
            let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
            let mut pids: Vec<(usize, Pid)> = Vec::new();
            let mut only: Vec<Pid> = Vec::new();
            loop {
                std::thread::sleep(interval);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                pids.clear();
                for (i, slot) in shared.slots.iter().enumerate() {
                    if let Ok(s) = slot.status.read()
                        && let Some(pid) = s.pid
                    {
                        pids.push((i, Pid::from_u32(pid)));
                    }
                }
                only.clear();
                only.extend(pids.iter().map(|(_, p)| *p));
                sys.refresh_processes_specifics(ProcessesToUpdate::Some(&only), true, kind);
                for (i, pid) in &pids {
                    let Some(p) = sys.process(*pid) else { continue };
                    let slot = &shared.slots[*i];
                    slot.cpu_time_ms
                        .store(p.accumulated_cpu_time(), Ordering::Relaxed);
                    if let Ok(mut s) = slot.status.write()
                        && s.pid == Some(pid.as_u32())
                    {
                        s.cpu_percent = Some(p.cpu_usage());
                        s.rss_bytes = Some(p.memory());
                    }
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "starting the sampler thread".into(),
            source,
        })?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The actor.

type LineStream = LineReader<UnixStream>;

/// The live process of a worker.
struct Proc {
    pid: u32,
    started: Instant,
    last_message: Instant,
    stopping: bool,
    hung: bool,
}

struct Actor {
    idx: usize,
    spec: WorkerSpec,
    shared: Arc<Shared>,
    spawner: Spawner,
    exit_history: usize,
    machine: Machine,
    status: WorkerStatus,
    child: Option<Child>,
    lines: Option<LineStream>,
    proc_: Option<Proc>,
    stop_deadline: Option<Instant>,
    pending: Vec<oneshot::Sender<StateName>>,
    outbox: Vec<PoolEvent>,
    /// Tasks forwarding worker stdout/stderr to the log.
    forwarders: Vec<JoinHandle<()>>,
    shutting_down: bool,
}

impl Actor {
    fn new(
        idx: usize,
        spec: WorkerSpec,
        shared: Arc<Shared>,
        spawner: Spawner,
        options: &PoolOptions,
    ) -> Actor {
        let status = initial_status(&spec, Utc::now());
        Actor {
            idx,
            spec,
            shared,
            spawner,
            exit_history: options.exit_history.max(1),
            machine: Machine::new(),
            status,
            child: None,
            lines: None,
            proc_: None,
            stop_deadline: None,
            pending: Vec::new(),
            outbox: Vec::new(),
            forwarders: Vec::new(),
            shutting_down: false,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => {
                        // Every handle is gone: kill what runs and end.
                        self.kill_now();
                        break;
                    }
                },
                status = wait_child(&mut self.child) => self.exited(status).await,
                line = next_line(&mut self.lines) => self.line(line).await,
                () = sleep_until(deadline) => self.timer().await,
            }
            self.answer_pending();
            if self.shutting_down && self.machine.state == State::Stopped {
                break;
            }
        }
        self.answer_pending();
        // Let the last output lines of the workers reach the log.
        for h in self.forwarders.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), h).await;
        }
    }

    /// The earliest moment something time-based must happen.
    fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        if let Some(t) = self.stop_deadline {
            consider(t);
        }
        match &self.machine.state {
            State::Backoff { until } => consider(*until),
            State::Fatal {
                retry_at: Some(t), ..
            } => consider(*t),
            State::Starting { started, .. } => {
                if let (Some(t), Some(p)) = (self.spec.start_timeout, &self.proc_)
                    && !p.hung
                {
                    consider(*started + t);
                }
            }
            State::Running { started, .. } => {
                if self.machine.consecutive_failures > 0 {
                    consider(*started + self.spec.restart.min_uptime);
                }
                if let (Some(t), Some(p)) = (self.spec.heartbeat_timeout, &self.proc_)
                    && !p.hung
                {
                    consider(p.last_message + t);
                }
            }
            _ => {}
        }
        d
    }

    async fn command(&mut self, cmd: Command) {
        let event = match cmd.kind {
            CommandKind::Start if self.shutting_down => Event::Stop,
            CommandKind::Start => Event::Start,
            CommandKind::Stop => Event::Stop,
            CommandKind::Restart if self.shutting_down => Event::Stop,
            CommandKind::Restart => Event::Restart,
            CommandKind::Shutdown => {
                self.shutting_down = true;
                Event::Stop
            }
        };
        self.pending.push(cmd.reply);
        self.handle(event).await;
    }

    fn answer_pending(&mut self) {
        let state = self.machine.state.name();
        if state != StateName::Stopping {
            for reply in self.pending.drain(..) {
                let _ = reply.send(state);
            }
        }
    }

    async fn timer(&mut self) {
        let now = Instant::now();
        if let Some(t) = self.stop_deadline
            && now >= t
        {
            self.stop_deadline = None;
            self.handle(Event::StopGraceExpired).await;
        }
        let watchdog = match (&self.machine.state, &self.proc_) {
            (State::Starting { started, .. }, Some(p)) if !p.hung => {
                self.spec.start_timeout.is_some_and(|t| now >= *started + t)
            }
            (State::Running { .. }, Some(p)) if !p.hung => self
                .spec
                .heartbeat_timeout
                .is_some_and(|t| now >= p.last_message + t),
            _ => false,
        };
        if watchdog {
            tracing::warn!(
                worker = %self.spec.name,
                state = self.machine.state.name().as_str(),
                "watchdog: no ready/heartbeat in time, killing the worker"
            );
            self.handle(Event::WatchdogExpired).await;
        }
        self.handle(Event::Tick { now }).await;
    }

    /// Feed an event to `decide` and apply the actions (which may produce
    /// further events, e.g. a spawn).
    async fn handle(&mut self, first: Event) {
        let mut queue = std::collections::VecDeque::from([first]);
        while let Some(event) = queue.pop_front() {
            let actions = decide(&self.machine, &event, &self.spec.restart);
            if matches!(event, Event::Spawned { .. }) && self.spec.start_timeout.is_none() {
                // No handshake expected: ready as soon as it runs.
                queue.push_back(Event::Ready);
            }
            for action in actions {
                if let Some(next) = self.apply(action).await {
                    queue.push_back(next);
                }
            }
        }
        self.publish();
    }

    async fn apply(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Spawn { restart } => {
                if self.shutting_down {
                    // Nothing starts during a shutdown: settle as stopped.
                    if self.machine.state != State::Stopped {
                        let from = self.machine.state.name();
                        let name = self.spec.name.clone();
                        if self.machine.transition(&name, State::Stopped) {
                            self.entered(from);
                        }
                    }
                    return None;
                }
                return Some(self.spawn(restart).await);
            }
            Action::Transition(to) => {
                let from = self.machine.state.name();
                let name = self.spec.name.clone();
                if self.machine.transition(&name, to) {
                    self.entered(from);
                }
            }
            Action::Terminate { pid } => {
                signal_group(pid, libc::SIGTERM);
                if let Some(p) = &mut self.proc_ {
                    p.stopping = true;
                }
                self.stop_deadline = Some(Instant::now() + self.spec.stop_grace);
                tracing::info!(worker = %self.spec.name, pid, "stopping (SIGTERM to the group)");
            }
            Action::Kill { pid, hung } => {
                if let Some(p) = &mut self.proc_ {
                    p.hung |= hung;
                }
                tracing::warn!(worker = %self.spec.name, pid, hung, "SIGKILL to the group");
                signal_group(pid, libc::SIGKILL);
            }
            Action::SetFailures(n) => self.machine.consecutive_failures = n,
            Action::RecordRestart(t) => {
                let window = self.spec.restart.window;
                self.machine
                    .recent_restarts
                    .retain(|r| t.saturating_duration_since(*r) < window);
                self.machine.recent_restarts.push_back(t);
            }
            Action::ClearRestarts => self.machine.recent_restarts.clear(),
        }
        None
    }

    /// Bookkeeping after entering a new state.
    fn entered(&mut self, from: StateName) {
        let now_wall = Utc::now();
        let to = self.machine.state.name();
        if from != to {
            self.status.since = now_wall;
        }
        self.status.state = to;
        self.status.next_restart_at = None;
        if to != StateName::Fatal {
            self.status.fatal_reason = None;
        }
        let worker = self.spec.name.clone();
        match &self.machine.state {
            State::Running { pid, .. } => {
                tracing::info!(worker = %worker, pid, "running");
                self.emit(PoolEvent::Ready { worker, pid: *pid });
            }
            State::Backoff { until } => {
                let at = wall_time(*until);
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
                    reason: reason.clone(),
                    next_restart_at: at,
                });
            }
            State::Stopped => {
                tracing::info!(worker = %worker, "stopped");
                self.emit(PoolEvent::Stopped { worker });
            }
            State::Starting { .. } | State::Stopping { .. } => {}
        }
    }

    async fn spawn(&mut self, restart: bool) -> Event {
        let now = Instant::now();
        let (ours, theirs) = match StdUnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(worker = %self.spec.name, error = %e, "cannot create the channel socket pair");
                return Event::SpawnFailed {
                    now,
                    jitter: rand::random(),
                };
            }
        };
        let plan = Plan {
            worker: self.spec.name.clone(),
            program: self.spec.program.clone(),
            args: self.spec.args.clone(),
            env: self.spec.env.clone(),
            limits: self.spec.limits.clone(),
            child_end: OwnedFd::from(theirs),
        };
        let result = self.spawner.spawn(plan).await;
        let mut child = match result {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(worker = %self.spec.name, error = %e, "spawn failed");
                self.set_spawn_error(Some(e.to_string()));
                return Event::SpawnFailed {
                    now: Instant::now(),
                    jitter: rand::random(),
                };
            }
        };
        let Some(pid) = child.id() else {
            tracing::error!(worker = %self.spec.name, "spawned child has no pid");
            return Event::SpawnFailed {
                now: Instant::now(),
                jitter: rand::random(),
            };
        };
        if let Some(out) = child.stdout.take() {
            self.forwarders.retain(|h| !h.is_finished());
            self.forwarders
                .push(forward_lines(self.spec.name.clone(), "stdout", out));
        }
        if let Some(err) = child.stderr.take() {
            self.forwarders
                .push(forward_lines(self.spec.name.clone(), "stderr", err));
        }
        self.lines = match ours
            .set_nonblocking(true)
            .and_then(|()| UnixStream::from_std(ours))
        {
            Ok(s) => Some(LineReader::new(s, MAX_LINE)),
            Err(e) => {
                tracing::warn!(worker = %self.spec.name, error = %e, "channel unusable");
                None
            }
        };
        self.child = Some(child);
        self.set_spawn_error(None);
        let started_wall = Utc::now();
        self.proc_ = Some(Proc {
            pid,
            started: now,
            last_message: now,
            stopping: false,
            hung: false,
        });
        self.shared.slots[self.idx]
            .cpu_time_ms
            .store(0, Ordering::Relaxed);
        if restart {
            self.status.restarts += 1;
        }
        self.status.pid = Some(pid);
        self.status.started_at = Some(started_wall);
        self.status.report = WorkerReport::default();
        self.status.last_heartbeat = None;
        self.status.cpu_percent = None;
        self.status.rss_bytes = None;
        tracing::info!(worker = %self.spec.name, pid, restart, "spawned");
        self.emit(PoolEvent::Started {
            worker: self.spec.name.clone(),
            pid,
        });
        Event::Spawned { pid, now }
    }

    async fn exited(&mut self, status: std::io::Result<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt as _;
        let now = Instant::now();
        self.child = None;
        self.lines = None;
        self.stop_deadline = None;
        let Some(p) = self.proc_.take() else {
            return;
        };
        // Take the rest of the group with it (a worker's own children).
        signal_group(p.pid, libc::SIGKILL);
        let (code, signal) = match &status {
            Ok(s) => (s.code(), s.signal()),
            Err(e) => {
                tracing::error!(worker = %self.spec.name, error = %e, "wait failed");
                (None, None)
            }
        };
        let cpu_used_ms = self.shared.slots[self.idx]
            .cpu_time_ms
            .load(Ordering::Relaxed);
        let ctx = ExitContext {
            stopping: p.stopping,
            hung: p.hung,
            cpu_limit_s: self.spec.limits.cpu_time.map(|d| d.as_secs_f64()),
            cpu_used_s: Some(cpu_used_ms as f64 / 1000.0),
            memory_limited: self.spec.limits.memory.is_some(),
        };
        let reason = classify(code, signal, &ctx);
        let uptime = now.saturating_duration_since(p.started);
        let record = ExitRecord {
            code,
            signal,
            reason,
            at: Utc::now(),
            uptime_s: uptime.as_secs_f64(),
        };
        let clean =
            reason == ExitReason::Stopped || (reason == ExitReason::Exited && code == Some(0));
        if clean {
            tracing::info!(worker = %self.spec.name, pid = p.pid, ?code, ?signal, reason = reason.as_str(), uptime_s = record.uptime_s, "worker exited");
        } else {
            tracing::warn!(worker = %self.spec.name, pid = p.pid, ?code, ?signal, reason = reason.as_str(), uptime_s = record.uptime_s, "worker exited");
        }
        self.status.pid = None;
        self.status.cpu_percent = None;
        self.status.rss_bytes = None;
        self.status.last_exit = Some(record.clone());
        self.status.recent_exits.push(record.clone());
        let excess = self
            .status
            .recent_exits
            .len()
            .saturating_sub(self.exit_history);
        self.status.recent_exits.drain(..excess);
        *self
            .status
            .exits_by_reason
            .entry(reason.as_str().to_string())
            .or_insert(0) += 1;
        self.emit(PoolEvent::Exited {
            worker: self.spec.name.clone(),
            pid: p.pid,
            exit: record.clone(),
        });
        self.handle(Event::Exited {
            exit: record,
            now,
            jitter: rand::random(),
        })
        .await;
    }

    async fn line(&mut self, line: std::io::Result<Option<String>>) {
        let line = match line {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.lines = None;
                return;
            }
            Err(e) => {
                tracing::warn!(worker = %self.spec.name, error = %e, "channel read failed");
                self.lines = None;
                return;
            }
        };
        let msg: WorkerMessage = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(worker = %self.spec.name, error = %e, "bad channel message ignored");
                return;
            }
        };
        if let Some(p) = &mut self.proc_ {
            p.last_message = Instant::now();
        }
        self.status.last_heartbeat = Some(Utc::now());
        match msg {
            WorkerMessage::Ready => {
                self.handle(Event::Ready).await;
                return;
            }
            WorkerMessage::Heartbeat => {}
            WorkerMessage::Report(r) => self.merge_report(r),
            WorkerMessage::Event { kind, data } => self.emit(PoolEvent::Custom {
                worker: self.spec.name.clone(),
                kind,
                data,
            }),
        }
        self.publish();
    }

    fn merge_report(&mut self, r: WorkerReport) {
        let report = &mut self.status.report;
        if let Some(phase) = r.phase
            && report.phase.as_deref() != Some(phase.as_str())
        {
            report.phase = Some(phase.clone());
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

    fn set_spawn_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.shared.slots[self.idx].spawn_error.lock() {
            *e = error;
        }
    }

    /// Queue an event; [`publish`](Self::publish) sends it after the
    /// snapshot is updated, so a subscriber never sees an event before the
    /// state it announces.
    fn emit(&mut self, event: PoolEvent) {
        self.outbox.push(event);
    }

    /// Write the actor's view into the shared table, keeping the sampler's
    /// fields.
    fn publish(&mut self) {
        self.status.consecutive_failures = self.machine.consecutive_failures;
        self.status.state = self.machine.state.name();
        let slot = &self.shared.slots[self.idx];
        let mut guard = match slot.status.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (cpu, rss) = if guard.pid == self.status.pid {
            (guard.cpu_percent, guard.rss_bytes)
        } else {
            (None, None)
        };
        *guard = self.status.clone();
        guard.cpu_percent = cpu;
        guard.rss_bytes = rss;
        drop(guard);
        for event in self.outbox.drain(..) {
            // No subscriber is fine.
            let _ = self.shared.events.send(event);
        }
    }

    fn kill_now(&mut self) {
        if let Some(p) = &self.proc_ {
            signal_group(p.pid, libc::SIGKILL);
        }
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        // An actor dropped with a live process (runtime shut down, pool
        // dropped): do not leave the group behind.
        self.kill_now();
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

fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group.
    let rc = unsafe { libc::kill(-(pid as libc::pid_t), signal) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pid, signal, error = %e, "kill failed");
        }
    }
}

async fn wait_child(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn next_line(lines: &mut Option<LineStream>) -> std::io::Result<Option<String>> {
    match lines {
        Some(l) => l.next_line().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Log one line of a worker's output under the target `pool::worker`. A
/// line that starts with a level word (`ERROR`, `WARN`, `INFO`, `DEBUG`,
/// `TRACE`, as tracing's and most loggers' plain formats do) is logged at
/// that level without the word; anything else at INFO.
fn log_worker_line(worker: &str, stream: &'static str, line: &str) {
    let trimmed = line.trim_start();
    let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let rest = rest.trim_start();
    match word {
        "ERROR" => tracing::error!(target: "pool::worker", worker, stream, "{rest}"),
        "WARN" => tracing::warn!(target: "pool::worker", worker, stream, "{rest}"),
        "INFO" => tracing::info!(target: "pool::worker", worker, stream, "{rest}"),
        "DEBUG" => tracing::debug!(target: "pool::worker", worker, stream, "{rest}"),
        "TRACE" => tracing::trace!(target: "pool::worker", worker, stream, "{rest}"),
        _ => tracing::info!(target: "pool::worker", worker, stream, "{line}"),
    }
}

fn forward_lines<R: AsyncRead + Unpin + Send + 'static>(
    worker: String,
    stream: &'static str,
    reader: R,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = LineReader::new(reader, MAX_LINE);
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => log_worker_line(&worker, stream, &line),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(worker = %worker, stream, error = %e, "output read failed");
                    break;
                }
            }
        }
    })
}
