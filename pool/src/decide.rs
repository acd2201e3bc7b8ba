//! The "what happens next" decision: a pure function from (state, event,
//! policy) to a list of actions. No process, clock or randomness in here:
//! the caller passes `now` and a jitter sample in the events, and applies the
//! actions (spawning, signalling, timers) elsewhere.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::exit::ExitRecord;
use crate::spec::{Backoff, RestartMode, RestartPolicy};
use crate::status::StateName;

/// What to do once a `Stopping` worker has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped.
    Stay,
    /// Start again (a `restart`, or a `start` queued during the stop).
    Restart,
}

/// Lifecycle state of a worker, carrying its data.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Spawned, waiting for `ready`.
    Starting {
        /// Pid of the process.
        pid: u32,
        /// When it was spawned.
        started: Instant,
    },
    /// Ready and healthy.
    Running {
        /// Pid of the process.
        pid: u32,
        /// When it was spawned.
        started: Instant,
    },
    /// Waiting before the next start.
    Backoff {
        /// When the next start is due.
        until: Instant,
    },
    /// Stop sequence in progress.
    Stopping {
        /// Pid of the process being stopped.
        pid: u32,
        /// When it was spawned.
        started: Instant,
        /// What to do after it exited.
        then: AfterStop,
    },
    /// Not running, not restarted automatically.
    Stopped,
    /// Crash loop.
    Fatal {
        /// Why.
        reason: String,
        /// Next automatic retry, if any.
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

    /// The pid of the live process in this state, if any.
    pub fn pid(&self) -> Option<u32> {
        match self {
            State::Starting { pid, .. }
            | State::Running { pid, .. }
            | State::Stopping { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

/// Every allowed transition, written down once. Anything else is refused.
pub const ALLOWED_TRANSITIONS: &[(StateName, StateName)] = {
    use StateName::*;
    &[
        (Stopped, Starting),
        (Starting, Running),
        (Starting, Starting),
        (Starting, Backoff),
        (Starting, Stopping),
        (Starting, Stopped),
        (Starting, Fatal),
        (Running, Starting),
        (Running, Backoff),
        (Running, Stopping),
        (Running, Stopped),
        (Running, Fatal),
        (Backoff, Starting),
        (Backoff, Backoff),
        (Backoff, Stopped),
        (Backoff, Fatal),
        (Stopping, Stopping),
        (Stopping, Stopped),
        (Stopping, Starting),
        (Stopping, Backoff),
        (Fatal, Starting),
        (Fatal, Backoff),
        (Fatal, Stopped),
    ]
};

/// Whether `from → to` is in [`ALLOWED_TRANSITIONS`].
pub fn transition_allowed(from: StateName, to: StateName) -> bool {
    ALLOWED_TRANSITIONS.contains(&(from, to))
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

    /// Apply a transition when it is allowed; log and refuse it otherwise.
    /// Returns whether it was applied.
    pub fn transition(&mut self, worker: &str, to: State) -> bool {
        let from = self.state.name();
        if transition_allowed(from, to.name()) {
            self.state = to;
            true
        } else {
            tracing::warn!(
                worker,
                from = from.as_str(),
                to = to.name().as_str(),
                "illegal state transition refused"
            );
            false
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
    /// Command: stop and stay stopped (also used at shutdown).
    Stop,
    /// Command: stop then start.
    Restart,
    /// A process was spawned.
    Spawned {
        /// Its pid.
        pid: u32,
        /// Now.
        now: Instant,
    },
    /// Spawning failed (counts as a failed run).
    SpawnFailed {
        /// Now.
        now: Instant,
        /// A uniform sample in [0, 1) for the jitter.
        jitter: f64,
    },
    /// The worker sent `ready`.
    Ready,
    /// The process was reaped.
    Exited {
        /// How it ended (already classified).
        exit: ExitRecord,
        /// Now.
        now: Instant,
        /// A uniform sample in [0, 1) for the jitter.
        jitter: f64,
    },
    /// A timer fired (backoff over, fatal retry due, healthy uptime reached).
    Tick {
        /// Now.
        now: Instant,
    },
    /// No `ready` within `start_timeout` or no message within `heartbeat_timeout`.
    WatchdogExpired,
    /// `stop_grace` passed after SIGTERM.
    StopGraceExpired,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Spawn a new process (`restart`: counts as a restart).
    Spawn {
        /// Whether this start counts as a restart.
        restart: bool,
    },
    /// Move to a new state.
    Transition(State),
    /// SIGTERM the process group and arm the `stop_grace` timer.
    Terminate {
        /// Group leader.
        pid: u32,
    },
    /// SIGKILL the process group.
    Kill {
        /// Group leader.
        pid: u32,
        /// Mark the coming exit as `hung`.
        hung: bool,
    },
    /// Set the failure counter.
    SetFailures(u32),
    /// Record an automatic restart at this time (crash-loop window).
    RecordRestart(Instant),
    /// Forget the crash-loop history (manual start, fatal retry).
    ClearRestarts,
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

/// Decide what to do about `event` in machine `m` under `policy`.
pub fn decide(m: &Machine, event: &Event, policy: &RestartPolicy) -> Vec<Action> {
    use Action as A;
    match (&m.state, event) {
        // ---- commands
        (State::Stopped | State::Backoff { .. } | State::Fatal { .. }, Event::Start) => {
            vec![
                A::SetFailures(0),
                A::ClearRestarts,
                A::Spawn { restart: false },
            ]
        }
        (State::Stopping { pid, started, .. }, Event::Start | Event::Restart) => {
            vec![A::Transition(State::Stopping {
                pid: *pid,
                started: *started,
                then: AfterStop::Restart,
            })]
        }
        (State::Starting { .. } | State::Running { .. }, Event::Start) => vec![],
        (State::Starting { pid, started } | State::Running { pid, started }, Event::Stop) => {
            vec![
                A::Terminate { pid: *pid },
                A::Transition(State::Stopping {
                    pid: *pid,
                    started: *started,
                    then: AfterStop::Stay,
                }),
            ]
        }
        (State::Starting { pid, started } | State::Running { pid, started }, Event::Restart) => {
            vec![
                A::Terminate { pid: *pid },
                A::Transition(State::Stopping {
                    pid: *pid,
                    started: *started,
                    then: AfterStop::Restart,
                }),
            ]
        }
        (State::Backoff { .. } | State::Fatal { .. }, Event::Stop) => {
            vec![A::Transition(State::Stopped)]
        }
        (State::Stopping { pid, started, .. }, Event::Stop) => {
            vec![A::Transition(State::Stopping {
                pid: *pid,
                started: *started,
                then: AfterStop::Stay,
            })]
        }
        (State::Stopped, Event::Stop) => vec![],
        (State::Stopped | State::Backoff { .. } | State::Fatal { .. }, Event::Restart) => {
            vec![
                A::SetFailures(0),
                A::ClearRestarts,
                A::Spawn { restart: false },
            ]
        }

        // ---- process lifecycle
        (_, Event::Spawned { pid, now }) => vec![A::Transition(State::Starting {
            pid: *pid,
            started: *now,
        })],
        (State::Starting { pid, started }, Event::Ready) => vec![A::Transition(State::Running {
            pid: *pid,
            started: *started,
        })],
        (_, Event::Ready) => vec![],
        (State::Starting { pid, .. } | State::Running { pid, .. }, Event::WatchdogExpired) => {
            vec![A::Kill {
                pid: *pid,
                hung: true,
            }]
        }
        (_, Event::WatchdogExpired) => vec![],
        (State::Stopping { pid, .. }, Event::StopGraceExpired) => vec![A::Kill {
            pid: *pid,
            hung: false,
        }],
        (_, Event::StopGraceExpired) => vec![],

        (State::Stopping { then, .. }, Event::Exited { .. }) => match then {
            AfterStop::Stay => vec![A::Transition(State::Stopped)],
            AfterStop::Restart => vec![
                A::SetFailures(0),
                A::ClearRestarts,
                A::Spawn { restart: true },
            ],
        },
        (
            State::Starting { started, .. } | State::Running { started, .. },
            Event::Exited { exit, now, jitter },
        ) => after_run(
            m,
            policy,
            exit,
            now.saturating_duration_since(*started),
            *now,
            *jitter,
        ),
        (_, Event::SpawnFailed { now, jitter }) => failed_run(m, policy, *now, *jitter),

        // ---- timers
        (State::Backoff { until }, Event::Tick { now }) if now >= until => {
            vec![A::Spawn { restart: true }]
        }
        (
            State::Fatal {
                retry_at: Some(at), ..
            },
            Event::Tick { now },
        ) if now >= at => vec![
            A::SetFailures(0),
            A::ClearRestarts,
            A::Spawn { restart: true },
        ],
        (State::Running { started, .. }, Event::Tick { now })
            if m.consecutive_failures > 0
                && now.saturating_duration_since(*started) >= policy.min_uptime =>
        {
            vec![A::SetFailures(0)]
        }
        (_, Event::Tick { .. }) => vec![],

        (state, event) => {
            tracing::warn!(
                state = state.name().as_str(),
                ?event,
                "event ignored in this state"
            );
            vec![]
        }
    }
}

/// A run ended without the pool asking for it.
fn after_run(
    m: &Machine,
    policy: &RestartPolicy,
    exit: &ExitRecord,
    uptime: Duration,
    now: Instant,
    jitter: f64,
) -> Vec<Action> {
    let restart = match policy.mode {
        RestartMode::Always => true,
        RestartMode::OnFailure => exit.is_failure(),
        RestartMode::Never => false,
    };
    if !restart {
        return vec![Action::Transition(State::Stopped)];
    }
    if uptime >= policy.min_uptime {
        // A healthy run: restart at once, failures reset; still counted for
        // the crash-loop window.
        if let Some(fatal) = crash_loop(m, policy, now) {
            return fatal;
        }
        return vec![
            Action::SetFailures(0),
            Action::RecordRestart(now),
            Action::Spawn { restart: true },
        ];
    }
    failed_run(m, policy, now, jitter)
}

/// A run failed quickly (or could not be spawned): back off, or go fatal.
fn failed_run(m: &Machine, policy: &RestartPolicy, now: Instant, jitter: f64) -> Vec<Action> {
    let failures = m.consecutive_failures.saturating_add(1);
    if policy.mode == RestartMode::Never {
        return vec![
            Action::SetFailures(failures),
            Action::Transition(State::Stopped),
        ];
    }
    if let Some(mut fatal) = crash_loop(m, policy, now) {
        fatal.insert(0, Action::SetFailures(failures));
        return fatal;
    }
    let delay = backoff_delay(&policy.backoff, failures, jitter);
    vec![
        Action::SetFailures(failures),
        Action::RecordRestart(now),
        Action::Transition(State::Backoff { until: now + delay }),
    ]
}

/// `Some(actions)` when one more restart would exceed `max_restarts` within
/// `window`.
fn crash_loop(m: &Machine, policy: &RestartPolicy, now: Instant) -> Option<Vec<Action>> {
    let in_window = m
        .recent_restarts
        .iter()
        .filter(|t| now.saturating_duration_since(**t) < policy.window)
        .count();
    if in_window + 1 > policy.max_restarts as usize {
        let reason = format!(
            "crash loop: more than {} restarts within {}",
            policy.max_restarts,
            crate::units::format_duration(policy.window)
        );
        Some(vec![
            Action::ClearRestarts,
            Action::Transition(State::Fatal {
                reason,
                retry_at: policy.fatal_retry.map(|d| now + d),
            }),
        ])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitReason;
    use chrono::Utc;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            mode: RestartMode::Always,
            min_uptime: Duration::from_secs(1),
            backoff: Backoff {
                initial: Duration::from_millis(100),
                multiplier: 2.0,
                max: Duration::from_secs(30),
                jitter: 0.0,
            },
            max_restarts: 3,
            window: Duration::from_secs(60),
            fatal_retry: Some(Duration::from_secs(300)),
        }
    }

    fn exit(reason: ExitReason, code: Option<i32>) -> ExitRecord {
        ExitRecord {
            code,
            signal: None,
            reason,
            at: Utc::now(),
            uptime_s: 0.0,
        }
    }

    fn machine(state: State, failures: u32, restarts: usize, t0: Instant) -> Machine {
        Machine {
            state,
            consecutive_failures: failures,
            recent_restarts: (0..restarts).map(|_| t0).collect(),
        }
    }

    #[test]
    fn decision_table() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let running = State::Running {
            pid: 7,
            started: t0,
        };
        let starting = State::Starting {
            pid: 7,
            started: t0,
        };
        let crashed = |after: Duration| Event::Exited {
            exit: exit(ExitReason::Crashed, None),
            now: t0 + after,
            jitter: 0.5,
        };
        let p = policy();
        let table: Vec<(&str, Machine, Event, RestartPolicy, Vec<Action>)> = vec![
            (
                "healthy run: immediate restart, failures reset",
                machine(running.clone(), 2, 0, t0),
                crashed(ms(1500)),
                p.clone(),
                vec![
                    Action::SetFailures(0),
                    Action::RecordRestart(t0 + ms(1500)),
                    Action::Spawn { restart: true },
                ],
            ),
            (
                "short run: first backoff is `initial`",
                machine(running.clone(), 0, 0, t0),
                crashed(ms(10)),
                p.clone(),
                vec![
                    Action::SetFailures(1),
                    Action::RecordRestart(t0 + ms(10)),
                    Action::Transition(State::Backoff {
                        until: t0 + ms(10) + ms(100),
                    }),
                ],
            ),
            (
                "third short run: backoff doubled twice",
                machine(starting.clone(), 2, 2, t0),
                crashed(ms(10)),
                p.clone(),
                vec![
                    Action::SetFailures(3),
                    Action::RecordRestart(t0 + ms(10)),
                    Action::Transition(State::Backoff {
                        until: t0 + ms(10) + ms(400),
                    }),
                ],
            ),
            (
                "crash loop: fatal with a retry time",
                machine(starting.clone(), 3, 3, t0),
                crashed(ms(10)),
                p.clone(),
                vec![
                    Action::SetFailures(4),
                    Action::ClearRestarts,
                    Action::Transition(State::Fatal {
                        reason: "crash loop: more than 3 restarts within 1m".into(),
                        retry_at: Some(t0 + ms(10) + Duration::from_secs(300)),
                    }),
                ],
            ),
            (
                "restarts outside the window do not count",
                machine(running.clone(), 0, 3, t0),
                crashed(Duration::from_secs(61)),
                p.clone(),
                vec![
                    Action::SetFailures(0),
                    Action::RecordRestart(t0 + Duration::from_secs(61)),
                    Action::Spawn { restart: true },
                ],
            ),
            (
                "never: stays stopped",
                machine(running.clone(), 0, 0, t0),
                crashed(ms(1500)),
                RestartPolicy {
                    mode: RestartMode::Never,
                    ..p.clone()
                },
                vec![Action::Transition(State::Stopped)],
            ),
            (
                "on-failure: a clean exit stays stopped",
                machine(running.clone(), 0, 0, t0),
                Event::Exited {
                    exit: exit(ExitReason::Exited, Some(0)),
                    now: t0 + ms(1500),
                    jitter: 0.5,
                },
                RestartPolicy {
                    mode: RestartMode::OnFailure,
                    ..p.clone()
                },
                vec![Action::Transition(State::Stopped)],
            ),
            (
                "stop while running: SIGTERM, stopping",
                machine(running.clone(), 0, 0, t0),
                Event::Stop,
                p.clone(),
                vec![
                    Action::Terminate { pid: 7 },
                    Action::Transition(State::Stopping {
                        pid: 7,
                        started: t0,
                        then: AfterStop::Stay,
                    }),
                ],
            ),
            (
                "stop during backoff: stopped at once",
                machine(
                    State::Backoff {
                        until: t0 + ms(500),
                    },
                    1,
                    1,
                    t0,
                ),
                Event::Stop,
                p.clone(),
                vec![Action::Transition(State::Stopped)],
            ),
            (
                "exit while stopping: stopped",
                machine(
                    State::Stopping {
                        pid: 7,
                        started: t0,
                        then: AfterStop::Stay,
                    },
                    0,
                    0,
                    t0,
                ),
                crashed(ms(10)),
                p.clone(),
                vec![Action::Transition(State::Stopped)],
            ),
            (
                "exit while restarting: spawn",
                machine(
                    State::Stopping {
                        pid: 7,
                        started: t0,
                        then: AfterStop::Restart,
                    },
                    2,
                    0,
                    t0,
                ),
                crashed(ms(10)),
                p.clone(),
                vec![
                    Action::SetFailures(0),
                    Action::ClearRestarts,
                    Action::Spawn { restart: true },
                ],
            ),
            (
                "grace over: SIGKILL",
                machine(
                    State::Stopping {
                        pid: 7,
                        started: t0,
                        then: AfterStop::Stay,
                    },
                    0,
                    0,
                    t0,
                ),
                Event::StopGraceExpired,
                p.clone(),
                vec![Action::Kill {
                    pid: 7,
                    hung: false,
                }],
            ),
            (
                "watchdog: SIGKILL as hung",
                machine(starting.clone(), 0, 0, t0),
                Event::WatchdogExpired,
                p.clone(),
                vec![Action::Kill { pid: 7, hung: true }],
            ),
            (
                "ready: running",
                machine(starting.clone(), 0, 0, t0),
                Event::Ready,
                p.clone(),
                vec![Action::Transition(running.clone())],
            ),
            (
                "backoff over: spawn",
                machine(
                    State::Backoff {
                        until: t0 + ms(100),
                    },
                    1,
                    1,
                    t0,
                ),
                Event::Tick { now: t0 + ms(100) },
                p.clone(),
                vec![Action::Spawn { restart: true }],
            ),
            (
                "early tick in backoff: nothing",
                machine(
                    State::Backoff {
                        until: t0 + ms(100),
                    },
                    1,
                    1,
                    t0,
                ),
                Event::Tick { now: t0 + ms(50) },
                p.clone(),
                vec![],
            ),
            (
                "fatal retry due: spawn with a clean slate",
                machine(
                    State::Fatal {
                        reason: "x".into(),
                        retry_at: Some(t0),
                    },
                    4,
                    0,
                    t0,
                ),
                Event::Tick { now: t0 },
                p.clone(),
                vec![
                    Action::SetFailures(0),
                    Action::ClearRestarts,
                    Action::Spawn { restart: true },
                ],
            ),
            (
                "healthy uptime reached: failures reset",
                machine(running.clone(), 3, 0, t0),
                Event::Tick {
                    now: t0 + Duration::from_secs(1),
                },
                p.clone(),
                vec![Action::SetFailures(0)],
            ),
            (
                "manual start of a fatal worker",
                machine(
                    State::Fatal {
                        reason: "x".into(),
                        retry_at: None,
                    },
                    4,
                    0,
                    t0,
                ),
                Event::Start,
                p.clone(),
                vec![
                    Action::SetFailures(0),
                    Action::ClearRestarts,
                    Action::Spawn { restart: false },
                ],
            ),
            (
                "start while running: nothing",
                machine(running.clone(), 0, 0, t0),
                Event::Start,
                p.clone(),
                vec![],
            ),
            (
                "spawned: starting",
                machine(State::Stopped, 0, 0, t0),
                Event::Spawned { pid: 9, now: t0 },
                p.clone(),
                vec![Action::Transition(State::Starting {
                    pid: 9,
                    started: t0,
                })],
            ),
            (
                "exit while stopped is ignored",
                machine(State::Stopped, 0, 0, t0),
                crashed(ms(1)),
                p.clone(),
                vec![],
            ),
        ];
        for (what, m, event, policy, want) in table {
            assert_eq!(decide(&m, &event, &policy), want, "{what}");
        }
    }

    #[test]
    fn every_decided_transition_is_allowed() {
        // Every Transition a decision emits from a given state is in the table.
        let t0 = Instant::now();
        let states = [
            State::Starting {
                pid: 1,
                started: t0,
            },
            State::Running {
                pid: 1,
                started: t0,
            },
            State::Backoff { until: t0 },
            State::Stopping {
                pid: 1,
                started: t0,
                then: AfterStop::Stay,
            },
            State::Stopped,
            State::Fatal {
                reason: "x".into(),
                retry_at: Some(t0),
            },
        ];
        let events = [
            Event::Start,
            Event::Stop,
            Event::Restart,
            Event::Spawned { pid: 2, now: t0 },
            Event::Ready,
            Event::Exited {
                exit: exit(ExitReason::Crashed, None),
                now: t0,
                jitter: 0.1,
            },
            Event::Tick {
                now: t0 + Duration::from_secs(3600),
            },
            Event::WatchdogExpired,
            Event::StopGraceExpired,
        ];
        for s in &states {
            for e in &events {
                for failures in [0, 10] {
                    let m = machine(s.clone(), failures, 10, t0);
                    for a in decide(&m, e, &policy()) {
                        if let Action::Transition(to) = a {
                            assert!(
                                transition_allowed(s.name(), to.name()),
                                "{:?} --{e:?}--> {:?} not allowed",
                                s.name(),
                                to.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn illegal_transition_is_refused() {
        let mut m = Machine::new();
        assert!(!m.transition(
            "w",
            State::Running {
                pid: 1,
                started: Instant::now()
            }
        ));
        assert_eq!(m.state, State::Stopped);
    }

    #[test]
    fn backoff_grows_and_caps_with_bounded_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(1),
            jitter: 0.2,
        };
        let table = [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (50, 1000),
        ];
        for (n, want_ms) in table {
            assert_eq!(
                backoff_delay(&b, n, 0.5).as_millis(),
                want_ms,
                "failures={n}"
            );
            let lo = backoff_delay(&b, n, 0.0).as_secs_f64() * 1000.0;
            let hi = backoff_delay(&b, n, 0.999).as_secs_f64() * 1000.0;
            assert!(lo >= want_ms as f64 * 0.8 - 0.01, "low jitter {lo} for {n}");
            assert!(
                hi <= (want_ms as f64 * 1.2).min(1000.0) + 0.01,
                "high jitter {hi}"
            );
        }
    }
}
