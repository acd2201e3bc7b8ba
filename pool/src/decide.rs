//! The "what happens next" decision: a pure function from (machine, event,
//! now, policy) to a list of actions. No process, clock or randomness in
//! here: the caller passes `now` and a jitter sample, executes the effects
//! (spawning, signalling) and feeds the answers back as events.
//!
//! It is the only authority over a worker's state: commands (including the
//! pool's shutdown), exits, channel messages and timers all come through
//! [`decide`]. Every deadline lives in the [`State`] it belongs to, and
//! [`State::wake_at`] is the one place the actor learns when to wake up
//! next; a [`Event::Tick`] then lets `decide` compare `now` with them.
//!
//! `decide` is total: every (state, event) pair has an answer, and nothing
//! is refused at run time. The transitions it can make are derived from it
//! by an exhaustive test and drawn in `docs/ARCHITECTURE.md`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::exit::ExitRecord;
use crate::spec::{Backoff, Policy, RestartMode};
use crate::status::StateName;

/// After a SIGKILL, how long until it is sent again if the process has not
/// been reaped yet (a process in uninterruptible sleep). Keeps `Stopping`
/// always armed with a timer.
pub const KILL_RETRY: Duration = Duration::from_secs(1);

/// What to do once a `Stopping` worker has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AfterStop {
    /// Stay stopped (`stop`).
    Stay,
    /// Start again with a clean slate (`restart`, or a `start` queued
    /// during the stop).
    Restart,
    /// Treat the exit as a failure and apply the restart policy (the
    /// watchdog killed a hung worker).
    Policy,
    /// Stop for good and end the worker's actor (pool shutdown, removal).
    /// Nothing overrides it.
    Retire,
}

/// Why a worker is being stopped: decides how its exit is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopCause {
    /// A command asked for it (stop, restart, shutdown): the exit is `stopped`.
    Asked,
    /// The watchdog found it hung (no `ready` or heartbeat in time): the
    /// exit is `hung`.
    Hung,
}

/// Lifecycle state of a worker, carrying its data and its deadlines.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Spawned, waiting for `ready`.
    Starting {
        /// Pid of the process.
        pid: u32,
        /// When it was spawned.
        since: Instant,
        /// `ready` is due by then (`start_timeout`), or it is hung.
        deadline: Instant,
    },
    /// Ready.
    Running {
        /// Pid of the process.
        pid: u32,
        /// When it was spawned.
        since: Instant,
        /// The next message is due by then (`heartbeat_timeout`), or it is hung.
        heartbeat_deadline: Option<Instant>,
        /// When the run counts as healthy (`min_uptime` after the spawn) and
        /// the failure count resets; `None` once reached.
        healthy_at: Option<Instant>,
    },
    /// Waiting before the next start.
    Backoff {
        /// When the next start is due.
        until: Instant,
    },
    /// Stop sequence in progress: SIGTERM (or SIGKILL for a hung worker)
    /// was sent to the group.
    Stopping {
        /// Pid of the process being stopped.
        pid: u32,
        /// When it was spawned.
        since: Instant,
        /// When SIGKILL is (re)sent to the group.
        kill_at: Instant,
        /// What to do after it exited.
        then: AfterStop,
        /// Why it is stopped.
        why: StopCause,
    },
    /// Not running, not restarted automatically.
    Stopped,
    /// Crash loop (or too many failed spawns).
    Fatal {
        /// Why, with the last exit.
        reason: String,
        /// Next automatic retry; `None`: only a command starts it again.
        retry_at: Option<Instant>,
    },
}

impl State {
    /// The state's name.
    pub fn name(&self) -> StateName {
        match self {
            State::Starting { .. } => StateName::Starting,
            State::Running { .. } => StateName::Running,
            State::Backoff { .. } => StateName::Backoff,
            State::Stopping { .. } => StateName::Stopping,
            State::Stopped => StateName::Stopped,
            State::Fatal { .. } => StateName::Fatal,
        }
    }

    /// The pid of this state's process, if it has one.
    pub fn pid(&self) -> Option<u32> {
        match self {
            State::Starting { pid, .. }
            | State::Running { pid, .. }
            | State::Stopping { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The earliest deadline of this state: when the actor must wake up and
    /// send an [`Event::Tick`]. `None` only for `Stopped`, `Running` without
    /// heartbeat watchdog once healthy, and `Fatal` without automatic retry.
    pub fn wake_at(&self) -> Option<Instant> {
        match self {
            State::Starting { deadline, .. } => Some(*deadline),
            State::Running {
                heartbeat_deadline,
                healthy_at,
                ..
            } => match (heartbeat_deadline, healthy_at) {
                (Some(a), Some(b)) => Some(*a.min(b)),
                (a, b) => a.or(*b),
            },
            State::Backoff { until } => Some(*until),
            State::Stopping { kill_at, .. } => Some(*kill_at),
            State::Stopped => None,
            State::Fatal { retry_at, .. } => *retry_at,
        }
    }
}

/// The decision state of one worker: its lifecycle state plus the counters
/// the policy needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Lifecycle state.
    pub state: State,
    /// Failed runs in a row (reset after `min_uptime` of healthy running).
    pub consecutive_failures: u32,
    /// Times of the automatic restarts inside the crash-loop window.
    pub recent_restarts: VecDeque<Instant>,
}

impl Machine {
    /// A machine in `Stopped`.
    pub fn new() -> Machine {
        Machine {
            state: State::Stopped,
            consecutive_failures: 0,
            recent_restarts: VecDeque::new(),
        }
    }

    /// Apply the bookkeeping part of an action (state and counters). The
    /// effects ([`Action::Spawn`], [`Action::Terminate`], [`Action::Kill`],
    /// [`Action::Retire`]) are the caller's; they leave the machine as is.
    pub fn apply(&mut self, action: &Action, policy: &Policy) {
        match action {
            Action::Transition(to) => self.state = to.clone(),
            Action::SetFailures(n) => self.consecutive_failures = *n,
            Action::RecordRestart(t) => {
                let window = policy.restart.window;
                self.recent_restarts
                    .retain(|r| t.saturating_duration_since(*r) < window);
                self.recent_restarts.push_back(*t);
            }
            Action::ClearRestarts => self.recent_restarts.clear(),
            Action::Spawn { .. } | Action::Terminate { .. } | Action::Kill { .. } => {}
            Action::Retire => {}
        }
    }
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

/// Something that happened to a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Command: start (from stopped, backoff or fatal).
    Start,
    /// Command: stop and stay stopped.
    Stop,
    /// Command: stop then start.
    Restart,
    /// Command: stop for good and retire the worker (pool shutdown or
    /// removal of the worker). Later commands cannot start it again.
    Shutdown,
    /// Answer to [`Action::Spawn`]: a process was spawned.
    Spawned {
        /// Its pid.
        pid: u32,
    },
    /// Answer to [`Action::Spawn`]: spawning failed (counts as a failed run).
    SpawnFailed {
        /// The `spawn_failed` record, with the OS error.
        exit: ExitRecord,
        /// A uniform sample in [0, 1) for the jitter.
        jitter: f64,
    },
    /// The worker sent `ready`.
    Ready,
    /// The worker sent any other message (heartbeat, report, event).
    Message,
    /// The process was reaped.
    Exited {
        /// How it ended (already classified).
        exit: ExitRecord,
        /// A uniform sample in [0, 1) for the jitter.
        jitter: f64,
    },
    /// [`State::wake_at`] passed: compare `now` with the state's deadlines.
    Tick,
    /// The worker's [`Policy`] was replaced: recompute the deadlines of the
    /// current run. A backoff or fatal wait keeps its time (a fatal worker
    /// only gains or loses its automatic retry).
    PolicyChanged,
}

/// What the actor must do. Actions are applied in order; the answer to a
/// `Spawn` is fed back before any other event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Spawn a new process (`restart`: counts as a restart). Only decided
    /// when the state has no process, or on the `Exited` of its process.
    Spawn {
        /// Whether this start counts as a restart.
        restart: bool,
    },
    /// Move to a new state.
    Transition(State),
    /// SIGTERM the process group.
    Terminate {
        /// Group leader.
        pid: u32,
    },
    /// SIGKILL the process group.
    Kill {
        /// Group leader.
        pid: u32,
    },
    /// Set the failure counter.
    SetFailures(u32),
    /// Record an automatic restart at this time (crash-loop window).
    RecordRestart(Instant),
    /// Forget the crash-loop history (manual start, fatal retry).
    ClearRestarts,
    /// The worker is stopped for good: its actor ends.
    Retire,
}

/// The backoff delay after `failures` consecutive failures (1 = first),
/// with `jitter` a uniform sample in [0, 1).
pub fn backoff_delay(b: &Backoff, failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(64) as i32;
    let base = b.initial.as_secs_f64() * b.multiplier.max(1.0).powi(exp);
    let base = base.min(b.max.as_secs_f64());
    // jitter in [-j, +j] of the base, then capped at max.
    let j = b.jitter.clamp(0.0, 1.0);
    let factor = 1.0 + j * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    let secs = (base * factor).clamp(0.0, b.max.as_secs_f64());
    Duration::from_secs_f64(secs)
}

/// Decide what to do about `event`, happening at `now`, in machine `m`
/// under `policy`.
pub fn decide(m: &Machine, event: &Event, now: Instant, policy: &Policy) -> Vec<Action> {
    use Action as A;
    use State as S;
    match (&m.state, event) {
        // ---- commands
        (S::Stopped | S::Backoff { .. } | S::Fatal { .. }, Event::Start | Event::Restart) => {
            fresh_start(false)
        }
        (S::Starting { .. } | S::Running { .. }, Event::Start) => vec![],
        (
            S::Starting { pid, since, .. } | S::Running { pid, since, .. },
            Event::Stop | Event::Restart | Event::Shutdown,
        ) => {
            let then = match event {
                Event::Stop => AfterStop::Stay,
                Event::Restart => AfterStop::Restart,
                _ => AfterStop::Retire,
            };
            vec![
                A::Terminate { pid: *pid },
                A::Transition(S::Stopping {
                    pid: *pid,
                    since: *since,
                    kill_at: now + policy.stop_grace,
                    then,
                    why: StopCause::Asked,
                }),
            ]
        }
        (
            S::Stopping {
                pid,
                since,
                kill_at,
                then,
                why,
            },
            Event::Start | Event::Stop | Event::Restart | Event::Shutdown,
        ) => {
            // A stop in progress keeps its SIGKILL time: a command never
            // delays it. Only what follows changes.
            let next = match (then, event) {
                (AfterStop::Retire, _) | (_, Event::Shutdown) => AfterStop::Retire,
                (_, Event::Stop) => AfterStop::Stay,
                _ => AfterStop::Restart,
            };
            if next == *then {
                vec![]
            } else {
                vec![A::Transition(S::Stopping {
                    pid: *pid,
                    since: *since,
                    kill_at: *kill_at,
                    then: next,
                    why: *why,
                })]
            }
        }
        (S::Backoff { .. } | S::Fatal { .. }, Event::Stop) => vec![A::Transition(S::Stopped)],
        (S::Stopped, Event::Stop) => vec![],
        (S::Backoff { .. } | S::Fatal { .. }, Event::Shutdown) => {
            vec![A::Transition(S::Stopped), A::Retire]
        }
        (S::Stopped, Event::Shutdown) => vec![A::Retire],

        // ---- answers to Spawn
        (_, Event::Spawned { pid }) => vec![A::Transition(started(*pid, now, policy))],
        (_, Event::SpawnFailed { exit, jitter }) => failed_run(m, policy, exit, now, *jitter),

        // ---- the worker's channel
        (S::Starting { pid, since, .. }, Event::Ready) => {
            vec![A::Transition(running(*pid, *since, now, policy))]
        }
        (
            S::Running {
                pid,
                since,
                healthy_at,
                heartbeat_deadline: Some(_),
            },
            Event::Ready | Event::Message,
        ) => vec![A::Transition(S::Running {
            pid: *pid,
            since: *since,
            heartbeat_deadline: policy.heartbeat_timeout.map(|t| now + t),
            healthy_at: *healthy_at,
        })],
        (_, Event::Ready | Event::Message) => vec![],

        // ---- exits
        (S::Starting { since, .. } | S::Running { since, .. }, Event::Exited { exit, jitter }) => {
            after_run(
                m,
                policy,
                exit,
                now.saturating_duration_since(*since),
                now,
                *jitter,
            )
        }
        (S::Stopping { then, since, .. }, Event::Exited { exit, jitter }) => match then {
            AfterStop::Stay => vec![A::Transition(S::Stopped)],
            AfterStop::Restart => fresh_start(true),
            AfterStop::Retire => vec![A::Transition(S::Stopped), A::Retire],
            AfterStop::Policy => after_run(
                m,
                policy,
                exit,
                now.saturating_duration_since(*since),
                now,
                *jitter,
            ),
        },
        // No process in these states: nothing can exit.
        (S::Backoff { .. } | S::Stopped | S::Fatal { .. }, Event::Exited { .. }) => vec![],

        // ---- timers
        (
            S::Starting {
                pid,
                since,
                deadline,
            },
            Event::Tick,
        ) if now >= *deadline => hung(*pid, *since, now),
        (
            S::Running {
                pid,
                since,
                heartbeat_deadline,
                healthy_at,
            },
            Event::Tick,
        ) => {
            if heartbeat_deadline.is_some_and(|d| now >= d) {
                hung(*pid, *since, now)
            } else if healthy_at.is_some_and(|h| now >= h) {
                let mut actions = Vec::new();
                if m.consecutive_failures > 0 {
                    actions.push(A::SetFailures(0));
                }
                actions.push(A::Transition(S::Running {
                    pid: *pid,
                    since: *since,
                    heartbeat_deadline: *heartbeat_deadline,
                    healthy_at: None,
                }));
                actions
            } else {
                vec![]
            }
        }
        (S::Backoff { until }, Event::Tick) if now >= *until => vec![A::Spawn { restart: true }],
        (
            S::Fatal {
                retry_at: Some(at), ..
            },
            Event::Tick,
        ) if now >= *at => fresh_start(true),
        (
            S::Stopping {
                pid,
                since,
                kill_at,
                then,
                why,
            },
            Event::Tick,
        ) if now >= *kill_at => vec![
            A::Kill { pid: *pid },
            A::Transition(S::Stopping {
                pid: *pid,
                since: *since,
                kill_at: now + KILL_RETRY,
                then: *then,
                why: *why,
            }),
        ],
        (_, Event::Tick) => vec![],

        // ---- a new policy for the current run
        (S::Starting { pid, since, .. }, Event::PolicyChanged) => {
            vec![A::Transition(started_at(*pid, *since, now, policy))]
        }
        (
            S::Running {
                pid,
                since,
                healthy_at,
                ..
            },
            Event::PolicyChanged,
        ) => vec![A::Transition(S::Running {
            pid: *pid,
            since: *since,
            heartbeat_deadline: policy.heartbeat_timeout.map(|t| now + t),
            healthy_at: healthy_at.map(|_| *since + policy.restart.min_uptime),
        })],
        // A fatal wait keeps its time, but follows the switch between
        // automatic retry and none.
        (S::Fatal { reason, retry_at }, Event::PolicyChanged)
            if retry_at.is_some() != policy.restart.fatal_retry.is_some() =>
        {
            vec![A::Transition(S::Fatal {
                reason: reason.clone(),
                retry_at: policy.restart.fatal_retry.map(|d| now + d),
            })]
        }
        (_, Event::PolicyChanged) => vec![],
    }
}

/// A start that forgets the failure history.
fn fresh_start(restart: bool) -> Vec<Action> {
    vec![
        Action::SetFailures(0),
        Action::ClearRestarts,
        Action::Spawn { restart },
    ]
}

/// The state of a process spawned at `now`.
fn started(pid: u32, now: Instant, policy: &Policy) -> State {
    started_at(pid, now, now, policy)
}

/// `Starting` with its `start_timeout` deadline, or `Running` at once when
/// there is no start handshake.
fn started_at(pid: u32, since: Instant, now: Instant, policy: &Policy) -> State {
    match policy.start_timeout {
        Some(t) => State::Starting {
            pid,
            since,
            deadline: since + t,
        },
        None => running(pid, since, now, policy),
    }
}

/// `Running` from `now` on.
fn running(pid: u32, since: Instant, now: Instant, policy: &Policy) -> State {
    State::Running {
        pid,
        since,
        heartbeat_deadline: policy.heartbeat_timeout.map(|t| now + t),
        healthy_at: Some(since + policy.restart.min_uptime),
    }
}

/// The watchdog fired: SIGKILL the group, the exit is `hung`.
fn hung(pid: u32, since: Instant, now: Instant) -> Vec<Action> {
    vec![
        Action::Kill { pid },
        Action::Transition(State::Stopping {
            pid,
            since,
            kill_at: now + KILL_RETRY,
            then: AfterStop::Policy,
            why: StopCause::Hung,
        }),
    ]
}

/// A run ended without the pool asking for it.
fn after_run(
    m: &Machine,
    policy: &Policy,
    exit: &ExitRecord,
    uptime: Duration,
    now: Instant,
    jitter: f64,
) -> Vec<Action> {
    // A fenced worker lost its right to run: never restarted.
    let restart = exit.reason != crate::exit::ExitReason::Fenced
        && match policy.restart.mode {
            RestartMode::Always => true,
            RestartMode::OnFailure => exit.is_failure(),
            RestartMode::Never => false,
        };
    if !restart {
        return vec![Action::Transition(State::Stopped)];
    }
    if uptime >= policy.restart.min_uptime {
        // A healthy run: restart at once, failures reset; still counted for
        // the crash-loop window.
        if let Some(fatal) = crash_loop(m, policy, exit, now) {
            return fatal;
        }
        return vec![
            Action::SetFailures(0),
            Action::RecordRestart(now),
            Action::Spawn { restart: true },
        ];
    }
    failed_run(m, policy, exit, now, jitter)
}

/// A run failed quickly (or could not be spawned): back off, or go fatal.
fn failed_run(
    m: &Machine,
    policy: &Policy,
    exit: &ExitRecord,
    now: Instant,
    jitter: f64,
) -> Vec<Action> {
    let failures = m.consecutive_failures.saturating_add(1);
    if policy.restart.mode == RestartMode::Never {
        return vec![
            Action::SetFailures(failures),
            Action::Transition(State::Stopped),
        ];
    }
    if let Some(mut fatal) = crash_loop(m, policy, exit, now) {
        fatal.insert(0, Action::SetFailures(failures));
        return fatal;
    }
    let delay = backoff_delay(&policy.restart.backoff, failures, jitter);
    vec![
        Action::SetFailures(failures),
        Action::RecordRestart(now),
        Action::Transition(State::Backoff { until: now + delay }),
    ]
}

/// `Some(actions)` when one more restart would exceed `max_restarts` within
/// `window`.
fn crash_loop(
    m: &Machine,
    policy: &Policy,
    exit: &ExitRecord,
    now: Instant,
) -> Option<Vec<Action>> {
    let p = &policy.restart;
    let in_window = m
        .recent_restarts
        .iter()
        .filter(|t| now.saturating_duration_since(**t) < p.window)
        .count();
    if in_window + 1 > p.max_restarts as usize {
        let reason = format!(
            "crash loop: more than {} restarts within {}; last exit: {}",
            p.max_restarts,
            crate::units::format_duration(p.window),
            exit.summary()
        );
        Some(vec![
            Action::ClearRestarts,
            Action::Transition(State::Fatal {
                reason,
                retry_at: p.fatal_retry.map(|d| now + d),
            }),
        ])
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
