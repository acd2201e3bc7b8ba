//! The actor: one task per worker that owns its process group, its channel
//! and its snapshot, and executes what [`decide`] says.
//!
//! It waits on four things at once: the next command (only when none is in
//! progress: commands run one at a time), the leader's exit, the next line
//! on the channel, and the wake-up time of the current state
//! ([`State::wake_at`]). Each becomes an [`Event`] for [`decide`]; the
//! actor applies the actions (spawn, signal, retire) and the bookkeeping
//! (snapshot, events). It decides nothing itself.

use std::collections::VecDeque;
use std::future::Future as _;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::channel::{WorkerMessage, WorkerReport};
use crate::decide::{Action, Event, Machine, State, StopCause, decide};
use crate::events::PoolEvent;
use crate::exit::{ExitContext, ExitRecord, classify};
use crate::link::{self, Lines, Writer};
use crate::output::forward_lines;
use crate::signals::Group;
use crate::spawn::Plan;
use crate::spec::{Policy, WorkerSpec};
use crate::status::{StateName, WorkerStatus};
use crate::table::{Command, Request, Shared, Slot, initial_status};

mod snapshot;

pub(crate) struct Actor {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    spec: WorkerSpec,
    policy: Policy,
    /// A spec from `replace`, installed at the next spawn.
    next_spec: Option<WorkerSpec>,
    machine: Machine,
    status: WorkerStatus,
    /// The live process group (leader unreaped).
    group: Option<Group>,
    /// The worker's messages.
    lines: Option<Lines>,
    /// Messages to the worker.
    writer: Option<Writer>,
    /// Replies of the command in progress (and of a shutdown that
    /// overtook it), answered together.
    waiting: Vec<oneshot::Sender<StateName>>,
    /// Commands that arrived while one was in progress.
    deferred: VecDeque<Command>,
    /// Leave the table when retired (`remove`).
    unlist: bool,
    retired: bool,
    outbox: Vec<PoolEvent>,
    /// Tasks forwarding worker stdout/stderr to the log.
    forwarders: Vec<JoinHandle<()>>,
    /// The output budget of this worker's stdout and stderr, kept across
    /// its restarts.
    output: crate::output::SharedBudget,
}

impl Actor {
    pub fn new(slot: Arc<Slot>, shared: Arc<Shared>, spec: WorkerSpec) -> Actor {
        Actor {
            status: initial_status(&spec, Utc::now()),
            policy: spec.policy(),
            spec,
            slot,
            next_spec: None,
            machine: Machine::new(),
            group: None,
            lines: None,
            writer: None,
            waiting: Vec::new(),
            deferred: VecDeque::new(),
            unlist: false,
            retired: false,
            outbox: Vec::new(),
            forwarders: Vec::new(),
            output: crate::output::budget(shared.options.output_rate),
            shared,
        }
    }

    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            // Commands run one at a time: the next waits until the current
            // one is answered.
            while self.waiting.is_empty()
                && !self.retired
                && let Some(cmd) = self.deferred.pop_front()
            {
                self.command(cmd).await;
                self.answer();
            }
            if self.retired {
                break;
            }
            let wake = self.machine.state.wake_at();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    // A shutdown does not wait: it takes over the command in
                    // progress (a restart then ends stopped).
                    Some(cmd) if self.waiting.is_empty()
                        || matches!(cmd.request, Request::Shutdown) => self.command(cmd).await,
                    Some(cmd) => self.deferred.push_back(cmd),
                    // Every handle is gone: the group is killed on drop.
                    None => break,
                },
                () = leader_exit(&mut self.group) => self.reap().await,
                line = next_line(&mut self.lines) => self.line(line).await,
                () = sleep_until(wake) => self.handle(Event::Tick).await,
            }
            if self.retired {
                break;
            }
            self.answer();
        }
        if self.unlist {
            self.shared.unlist(&self.slot);
        }
        let state = self.machine.state.name();
        for reply in self.waiting.drain(..) {
            let _ = reply.send(state);
        }
        // Commands still queued get no answer: their callers see the pool
        // shutting down (or the worker gone).
        self.deferred.clear();
        // Let the last output lines of the worker reach the log.
        for h in self.forwarders.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), h).await;
        }
    }

    async fn command(&mut self, cmd: Command) {
        self.waiting.push(cmd.reply);
        let event = match cmd.request {
            Request::Start => Event::Start,
            Request::Stop => Event::Stop,
            Request::Restart => Event::Restart,
            Request::Shutdown => Event::Shutdown,
            Request::Remove => {
                self.unlist = true;
                Event::Shutdown
            }
            Request::Update(policy) => {
                let policy = *policy;
                self.spec.set_policy(policy.clone());
                self.status.policy = policy.clone();
                self.policy = policy;
                Event::PolicyChanged
            }
            Request::Replace(spec) if self.machine.state == State::Stopped => {
                self.install(*spec);
                self.publish();
                return;
            }
            Request::Replace(spec) => {
                self.next_spec = Some(*spec);
                Event::Restart
            }
        };
        self.handle(event).await;
    }

    /// Answer the command in progress once the worker is not stopping.
    fn answer(&mut self) {
        let state = self.machine.state.name();
        if state != StateName::Stopping {
            for reply in self.waiting.drain(..) {
                let _ = reply.send(state);
            }
        }
    }

    fn install(&mut self, spec: WorkerSpec) {
        self.policy = spec.policy();
        self.status.policy = self.policy.clone();
        self.status.limits = spec.limits.clone();
        self.spec = spec;
    }

    /// Feed an event to `decide` and apply the actions; the answer to a
    /// spawn is fed back before anything else happens.
    async fn handle(&mut self, first: Event) {
        let mut queue = VecDeque::from([first]);
        while let Some(event) = queue.pop_front() {
            let actions = decide(&self.machine, &event, Instant::now(), &self.policy);
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
            Action::Spawn { restart } => return Some(self.spawn(restart).await),
            Action::Terminate { pid } => {
                tracing::info!(worker = %self.spec.name, pid, "stopping (SIGTERM to the group)");
                self.signal(pid, Signal::SIGTERM);
            }
            Action::Kill { pid } => {
                tracing::warn!(worker = %self.spec.name, pid, "SIGKILL to the group");
                self.signal(pid, Signal::SIGKILL);
            }
            Action::Retire => self.retired = true,
            Action::Transition(_) => {
                let from = self.machine.state.clone();
                self.machine.apply(&action, &self.policy);
                self.entered(&from);
            }
            Action::SetFailures(_) | Action::RecordRestart(_) | Action::ClearRestarts => {
                self.machine.apply(&action, &self.policy)
            }
        }
        None
    }

    fn signal(&self, pid: u32, signal: Signal) {
        match &self.group {
            Some(g) if g.pid() == pid => g.signal(signal),
            _ => tracing::debug!(worker = %self.spec.name, pid, ?signal, "no such live process"),
        }
    }

    async fn spawn(&mut self, restart: bool) -> Event {
        if let Some(spec) = self.next_spec.take() {
            self.install(spec);
        }
        let (ours, theirs) = match StdUnixStream::pair() {
            Ok(p) => p,
            Err(e) => {
                return self.spawn_failed(format!("cannot create the channel socket pair: {e}"));
            }
        };
        let plan = Plan {
            worker: self.spec.name.clone(),
            program: self.spec.program.clone(),
            args: self.spec.args.clone(),
            env: self.spec.env.clone(),
            inherit_env: self.spec.inherit_env.clone(),
            limits: self.spec.limits.clone(),
            child_end: OwnedFd::from(theirs),
        };
        let now = Instant::now();
        let child = match self.shared.spawner.spawn(plan) {
            Ok(c) => c,
            Err(e) => return self.spawn_failed(e.to_string()),
        };
        let pid = child.pid;
        // The group first: whatever happens next, the process is ours to
        // signal and reap.
        self.group = Some(Group::new(pid, now));
        let name = &self.spec.name;
        self.forwarders.retain(|h| !h.is_finished());
        for (stream, fd) in [("stdout", child.stdout), ("stderr", child.stderr)] {
            match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(pipe) => self.forwarders.push(forward_lines(
                    name.clone(),
                    stream,
                    pipe,
                    self.output.clone(),
                )),
                Err(e) => {
                    tracing::warn!(worker = %name, stream, error = %e, "worker output unreadable")
                }
            }
        }
        match link::open(name, ours, self.shared.options.send_queue) {
            Ok((lines, writer, tx)) => {
                self.lines = Some(lines);
                self.writer = Some(writer);
                *self.slot.outgoing.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            }
            Err(e) => tracing::warn!(worker = %name, error = %e, "channel unusable"),
        }
        self.slot.cpu_time_ms.store(0, Ordering::Relaxed);
        if restart {
            self.status.restarts += 1;
        }
        self.status.pid = Some(pid);
        self.status.started_at = Some(Utc::now());
        self.status.report = WorkerReport::default();
        self.status.last_heartbeat = None;
        self.status.cpu_percent = None;
        self.status.rss_bytes = None;
        self.status.pss_bytes = None;
        tracing::info!(worker = %self.spec.name, pid, restart, "spawned");
        self.emit(PoolEvent::Started {
            worker: self.spec.name.clone(),
            pid,
        });
        Event::Spawned { pid }
    }

    fn spawn_failed(&mut self, error: String) -> Event {
        tracing::error!(worker = %self.spec.name, error = %error, "spawn failed");
        let exit = ExitRecord::spawn_failed(error, Utc::now());
        self.record_exit(None, &exit);
        Event::SpawnFailed {
            exit,
            jitter: rand::random(),
        }
    }

    /// The leader exited: take in what it said last, kill the rest of its
    /// group, reap it, classify.
    async fn reap(&mut self) {
        let now = Instant::now();
        // Messages written just before the exit are already in the socket:
        // handle them before the exit, in order.
        for line in self.buffered_lines().await {
            self.line(Ok(Some(line))).await;
        }
        let Some(group) = self.group.take() else {
            return;
        };
        let (pid, started) = (group.pid(), group.started());
        let status = group.reap().await;
        self.lines = None;
        self.writer = None;
        *self.slot.outgoing.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let (code, signal) = match &status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt as _;
                (s.code(), s.signal())
            }
            Err(e) => {
                tracing::error!(worker = %self.spec.name, error = %e, "wait failed");
                (None, None)
            }
        };
        let why = match &self.machine.state {
            State::Stopping { why, .. } => Some(*why),
            _ => None,
        };
        let cpu_used_ms = self.slot.cpu_time_ms.load(Ordering::Relaxed);
        let ctx = ExitContext {
            stopping: why == Some(StopCause::Asked),
            hung: why == Some(StopCause::Hung),
            cpu_limit_s: self.spec.limits.cpu_time.map(|d| d.as_secs_f64()),
            cpu_used_s: Some(cpu_used_ms as f64 / 1000.0),
            memory_limited: self.spec.limits.memory.is_some(),
        };
        let exit = ExitRecord {
            code,
            signal,
            reason: classify(code, signal, &ctx),
            at: Utc::now(),
            uptime_s: now.saturating_duration_since(started).as_secs_f64(),
            error: None,
        };
        self.record_exit(Some(pid), &exit);
        self.handle(Event::Exited {
            exit,
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
        self.status.last_heartbeat = Some(Utc::now());
        let event = match msg {
            WorkerMessage::Ready => Event::Ready,
            WorkerMessage::Heartbeat => Event::Message,
            WorkerMessage::Report(r) => {
                self.merge_report(r);
                Event::Message
            }
            WorkerMessage::Event { kind, data } => {
                self.emit(PoolEvent::Custom {
                    worker: self.spec.name.clone(),
                    kind,
                    data,
                });
                Event::Message
            }
        };
        self.handle(event).await;
    }

    /// The lines the channel holds right now, without waiting for more
    /// (a child of the worker may keep the socket open). Bounded.
    async fn buffered_lines(&mut self) -> Vec<String> {
        const MAX_DRAIN: usize = 1024;
        let mut out = Vec::new();
        let Some(lines) = self.lines.as_mut() else {
            return out;
        };
        while out.len() < MAX_DRAIN {
            // Poll the read once: a line that is there, or nothing (the
            // reader is cancel safe, a partial line stays buffered).
            let mut next = std::pin::pin!(lines.next_line());
            let polled = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await;
            match polled {
                Poll::Ready(Ok(Some(line))) => out.push(line),
                _ => break,
            }
        }
        out
    }
}

async fn leader_exit(group: &mut Option<Group>) {
    match group {
        Some(g) => g.exited().await,
        None => std::future::pending().await,
    }
}

async fn next_line(lines: &mut Option<Lines>) -> std::io::Result<Option<String>> {
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
