//! Tests of [`decide`]: a table of decisions, an exhaustive State × Event
//! check that derives the transition table, and a property test over random
//! event sequences with a model of the worker process.

use std::collections::BTreeSet;

use super::*;
use crate::exit::ExitReason;
use crate::spec::RestartPolicy;
use chrono::Utc;

fn policy() -> Policy {
    Policy {
        restart: RestartPolicy {
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
        },
        stop_grace: Duration::from_secs(2),
        start_timeout: Some(Duration::from_secs(10)),
        heartbeat_timeout: Some(Duration::from_secs(5)),
    }
}

fn exit(reason: ExitReason, code: Option<i32>) -> ExitRecord {
    ExitRecord {
        code,
        signal: None,
        reason,
        at: Utc::now(),
        uptime_s: 0.0,
        error: None,
    }
}

fn machine(state: State, failures: u32, restarts: usize, t0: Instant) -> Machine {
    Machine {
        state,
        consecutive_failures: failures,
        recent_restarts: (0..restarts).map(|_| t0).collect(),
    }
}

fn stopping(t0: Instant, then: AfterStop, why: StopCause) -> State {
    State::Stopping {
        pid: 7,
        since: t0,
        kill_at: t0 + Duration::from_secs(2),
        then,
        why,
    }
}

/// What, machine, event, time since t0, policy, expected actions.
type Case<'a> = (&'a str, Machine, Event, Duration, &'a Policy, Vec<Action>);

#[test]
fn decision_table() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let running = State::Running {
        pid: 7,
        since: t0,
        heartbeat_deadline: Some(t0 + secs(5)),
        healthy_at: Some(t0 + secs(1)),
    };
    let starting = State::Starting {
        pid: 7,
        since: t0,
        deadline: t0 + secs(10),
    };
    let crashed = Event::Exited {
        exit: exit(ExitReason::Crashed, None),
        jitter: 0.5,
    };
    let p = policy();
    let never = Policy {
        restart: RestartPolicy {
            mode: RestartMode::Never,
            ..p.restart.clone()
        },
        ..p.clone()
    };
    let on_failure = Policy {
        restart: RestartPolicy {
            mode: RestartMode::OnFailure,
            ..p.restart.clone()
        },
        ..p.clone()
    };
    let no_handshake = Policy {
        start_timeout: None,
        ..p.clone()
    };
    let short_heartbeat = Policy {
        heartbeat_timeout: Some(ms(300)),
        ..p.clone()
    };
    let spawn_failed = Event::SpawnFailed {
        exit: ExitRecord::spawn_failed("the OS refused RLIMIT_NOFILE = 900000", Utc::now()),
        jitter: 0.5,
    };
    #[rustfmt::skip]
    let table: Vec<Case> = vec![
        ("healthy run: immediate restart, failures reset",
            machine(running.clone(), 2, 0, t0), crashed.clone(), ms(1500), &p,
            vec![Action::SetFailures(0), Action::RecordRestart(t0 + ms(1500)), Action::Spawn { restart: true }]),
        ("short run: first backoff is `initial`",
            machine(running.clone(), 0, 0, t0), crashed.clone(), ms(10), &p,
            vec![Action::SetFailures(1), Action::RecordRestart(t0 + ms(10)),
                 Action::Transition(State::Backoff { until: t0 + ms(110) })]),
        ("third short run: backoff doubled twice",
            machine(starting.clone(), 2, 2, t0), crashed.clone(), ms(10), &p,
            vec![Action::SetFailures(3), Action::RecordRestart(t0 + ms(10)),
                 Action::Transition(State::Backoff { until: t0 + ms(410) })]),
        ("crash loop: fatal with a retry time and the last exit",
            machine(starting.clone(), 3, 3, t0), crashed.clone(), ms(10), &p,
            vec![Action::SetFailures(4), Action::ClearRestarts, Action::Transition(State::Fatal {
                reason: "crash loop: more than 3 restarts within 1m; last exit: crashed".into(),
                retry_at: Some(t0 + ms(10) + secs(300)),
            })]),
        ("restarts outside the window do not count",
            machine(running.clone(), 0, 3, t0), crashed.clone(), secs(61), &p,
            vec![Action::SetFailures(0), Action::RecordRestart(t0 + secs(61)), Action::Spawn { restart: true }]),
        ("never: stays stopped",
            machine(running.clone(), 0, 0, t0), crashed.clone(), ms(1500), &never,
            vec![Action::Transition(State::Stopped)]),
        ("on-failure: a clean exit stays stopped",
            machine(running.clone(), 0, 0, t0),
            Event::Exited { exit: exit(ExitReason::Exited, Some(0)), jitter: 0.5 }, ms(1500), &on_failure,
            vec![Action::Transition(State::Stopped)]),
        ("spawn failure: backoff like any failure",
            machine(State::Stopped, 0, 0, t0), spawn_failed.clone(), ms(0), &p,
            vec![Action::SetFailures(1), Action::RecordRestart(t0),
                 Action::Transition(State::Backoff { until: t0 + ms(100) })]),
        ("spawn failure in a crash loop: fatal, and the reason says why",
            machine(State::Backoff { until: t0 }, 3, 3, t0), spawn_failed.clone(), ms(0), &p,
            vec![Action::SetFailures(4), Action::ClearRestarts, Action::Transition(State::Fatal {
                reason: "crash loop: more than 3 restarts within 1m; last exit: spawn_failed: \
                         the OS refused RLIMIT_NOFILE = 900000".into(),
                retry_at: Some(t0 + secs(300)),
            })]),
        ("spawn failure under `never`: stopped, failure counted",
            machine(State::Stopped, 0, 0, t0), spawn_failed.clone(), ms(0), &never,
            vec![Action::SetFailures(1), Action::Transition(State::Stopped)]),
        ("stop while running: SIGTERM, stopping with the grace deadline",
            machine(running.clone(), 0, 0, t0), Event::Stop, ms(20), &p,
            vec![Action::Terminate { pid: 7 },
                 Action::Transition(State::Stopping { pid: 7, since: t0, kill_at: t0 + ms(20) + secs(2),
                     then: AfterStop::Stay, why: StopCause::Asked })]),
        ("stop during backoff: stopped at once",
            machine(State::Backoff { until: t0 + ms(500) }, 1, 1, t0), Event::Stop, ms(0), &p,
            vec![Action::Transition(State::Stopped)]),
        ("shutdown during backoff: stopped and retired at once",
            machine(State::Backoff { until: t0 + ms(500) }, 1, 1, t0), Event::Shutdown, ms(0), &p,
            vec![Action::Transition(State::Stopped), Action::Retire]),
        ("shutdown while stopping keeps the SIGKILL time",
            machine(stopping(t0, AfterStop::Restart, StopCause::Asked), 0, 0, t0), Event::Shutdown, ms(500), &p,
            vec![Action::Transition(stopping(t0, AfterStop::Retire, StopCause::Asked))]),
        ("start during a shutdown: still retires",
            machine(stopping(t0, AfterStop::Retire, StopCause::Asked), 0, 0, t0), Event::Start, ms(1), &p,
            vec![]),
        ("exit while stopping: stopped",
            machine(stopping(t0, AfterStop::Stay, StopCause::Asked), 0, 0, t0), crashed.clone(), ms(10), &p,
            vec![Action::Transition(State::Stopped)]),
        ("exit while restarting: spawn with a clean slate",
            machine(stopping(t0, AfterStop::Restart, StopCause::Asked), 2, 0, t0), crashed.clone(), ms(10), &p,
            vec![Action::SetFailures(0), Action::ClearRestarts, Action::Spawn { restart: true }]),
        ("exit after shutdown: stopped, retired",
            machine(stopping(t0, AfterStop::Retire, StopCause::Asked), 0, 0, t0), crashed.clone(), ms(10), &p,
            vec![Action::Transition(State::Stopped), Action::Retire]),
        ("exit of a hung worker: the policy decides",
            machine(stopping(t0, AfterStop::Policy, StopCause::Hung), 0, 0, t0),
            Event::Exited { exit: exit(ExitReason::Hung, None), jitter: 0.5 }, ms(10), &p,
            vec![Action::SetFailures(1), Action::RecordRestart(t0 + ms(10)),
                 Action::Transition(State::Backoff { until: t0 + ms(110) })]),
        ("grace over: SIGKILL, retried later",
            machine(stopping(t0, AfterStop::Stay, StopCause::Asked), 0, 0, t0), Event::Tick, secs(2), &p,
            vec![Action::Kill { pid: 7 },
                 Action::Transition(State::Stopping { pid: 7, since: t0, kill_at: t0 + secs(2) + KILL_RETRY,
                     then: AfterStop::Stay, why: StopCause::Asked })]),
        ("no ready in time: SIGKILL as hung",
            machine(starting.clone(), 0, 0, t0), Event::Tick, secs(10), &p,
            vec![Action::Kill { pid: 7 },
                 Action::Transition(State::Stopping { pid: 7, since: t0, kill_at: t0 + secs(10) + KILL_RETRY,
                     then: AfterStop::Policy, why: StopCause::Hung })]),
        ("heartbeat missed: SIGKILL as hung",
            machine(running.clone(), 0, 0, t0), Event::Tick, secs(5), &p,
            vec![Action::Kill { pid: 7 },
                 Action::Transition(State::Stopping { pid: 7, since: t0, kill_at: t0 + secs(5) + KILL_RETRY,
                     then: AfterStop::Policy, why: StopCause::Hung })]),
        ("ready: running, with its deadlines",
            machine(starting.clone(), 0, 0, t0), Event::Ready, ms(50), &p,
            vec![Action::Transition(State::Running { pid: 7, since: t0,
                heartbeat_deadline: Some(t0 + ms(50) + secs(5)), healthy_at: Some(t0 + secs(1)) })]),
        ("heartbeat: the deadline moves",
            machine(running.clone(), 0, 0, t0), Event::Message, secs(3), &p,
            vec![Action::Transition(State::Running { pid: 7, since: t0,
                heartbeat_deadline: Some(t0 + secs(8)), healthy_at: Some(t0 + secs(1)) })]),
        ("no handshake: running as soon as spawned",
            machine(State::Stopped, 0, 0, t0), Event::Spawned { pid: 9 }, ms(0), &no_handshake,
            vec![Action::Transition(State::Running { pid: 9, since: t0,
                heartbeat_deadline: Some(t0 + secs(5)), healthy_at: Some(t0 + secs(1)) })]),
        ("spawned: starting with the start deadline",
            machine(State::Stopped, 0, 0, t0), Event::Spawned { pid: 9 }, ms(0), &p,
            vec![Action::Transition(State::Starting { pid: 9, since: t0, deadline: t0 + secs(10) })]),
        ("backoff over: spawn",
            machine(State::Backoff { until: t0 + ms(100) }, 1, 1, t0), Event::Tick, ms(100), &p,
            vec![Action::Spawn { restart: true }]),
        ("early tick in backoff: nothing",
            machine(State::Backoff { until: t0 + ms(100) }, 1, 1, t0), Event::Tick, ms(50), &p,
            vec![]),
        ("fatal retry due: spawn with a clean slate",
            machine(State::Fatal { reason: "x".into(), retry_at: Some(t0) }, 4, 0, t0), Event::Tick, ms(0), &p,
            vec![Action::SetFailures(0), Action::ClearRestarts, Action::Spawn { restart: true }]),
        ("healthy uptime reached: failures reset, timer cleared",
            machine(running.clone(), 3, 0, t0), Event::Tick, secs(1), &p,
            vec![Action::SetFailures(0), Action::Transition(State::Running { pid: 7, since: t0,
                heartbeat_deadline: Some(t0 + secs(5)), healthy_at: None })]),
        ("manual start of a fatal worker",
            machine(State::Fatal { reason: "x".into(), retry_at: None }, 4, 0, t0), Event::Start, ms(0), &p,
            vec![Action::SetFailures(0), Action::ClearRestarts, Action::Spawn { restart: false }]),
        ("start while running: nothing",
            machine(running.clone(), 0, 0, t0), Event::Start, ms(0), &p, vec![]),
        ("a new policy moves the running deadlines",
            machine(running.clone(), 0, 0, t0), Event::PolicyChanged, secs(2),
            &short_heartbeat,
            vec![Action::Transition(State::Running { pid: 7, since: t0,
                heartbeat_deadline: Some(t0 + secs(2) + ms(300)), healthy_at: Some(t0 + secs(1)) })]),
        ("no start handshake any more: running",
            machine(starting.clone(), 0, 0, t0), Event::PolicyChanged, ms(5), &no_handshake,
            vec![Action::Transition(State::Running { pid: 7, since: t0,
                heartbeat_deadline: Some(t0 + ms(5) + secs(5)), healthy_at: Some(t0 + secs(1)) })]),
        ("exit while stopped is ignored",
            machine(State::Stopped, 0, 0, t0), crashed.clone(), ms(1), &p, vec![]),
    ];
    for (what, m, event, after, policy, want) in table {
        assert_eq!(decide(&m, &event, t0 + after, policy), want, "{what}");
    }
}

// ---------------------------------------------------------------------------
// Exhaustive: every state × every event, under several policies and times.

/// Every transition `decide` can make, by state name. Drawn in
/// `docs/ARCHITECTURE.md`; the exhaustive test derives the set from
/// `decide` and fails when the two differ.
const TRANSITIONS: &[(StateName, StateName)] = {
    use StateName::*;
    &[
        (Stopped, Starting),
        (Stopped, Running),
        (Stopped, Backoff),
        (Stopped, Stopped),
        (Stopped, Fatal),
        (Starting, Starting),
        (Starting, Running),
        (Starting, Backoff),
        (Starting, Stopping),
        (Starting, Stopped),
        (Starting, Fatal),
        (Running, Starting),
        (Running, Running),
        (Running, Backoff),
        (Running, Stopping),
        (Running, Stopped),
        (Running, Fatal),
        (Backoff, Starting),
        (Backoff, Running),
        (Backoff, Backoff),
        (Backoff, Stopped),
        (Backoff, Fatal),
        (Stopping, Starting),
        (Stopping, Running),
        (Stopping, Backoff),
        (Stopping, Stopping),
        (Stopping, Stopped),
        (Stopping, Fatal),
        (Fatal, Starting),
        (Fatal, Running),
        (Fatal, Backoff),
        (Fatal, Stopped),
        (Fatal, Fatal),
    ]
};

fn policies() -> Vec<Policy> {
    let mut out = Vec::new();
    for mode in [
        RestartMode::Always,
        RestartMode::OnFailure,
        RestartMode::Never,
    ] {
        for start_timeout in [None, Some(Duration::from_secs(10))] {
            for heartbeat_timeout in [None, Some(Duration::from_secs(5))] {
                for fatal_retry in [None, Some(Duration::from_secs(300))] {
                    let mut p = policy();
                    p.restart.mode = mode;
                    p.restart.fatal_retry = fatal_retry;
                    p.start_timeout = start_timeout;
                    p.heartbeat_timeout = heartbeat_timeout;
                    out.push(p);
                }
            }
        }
    }
    out
}

fn states(t0: Instant) -> Vec<State> {
    let s = Duration::from_secs;
    let mut out = vec![
        State::Starting {
            pid: 1,
            since: t0,
            deadline: t0 + s(10),
        },
        State::Backoff { until: t0 + s(1) },
        State::Stopped,
        State::Fatal {
            reason: "x".into(),
            retry_at: Some(t0 + s(300)),
        },
        State::Fatal {
            reason: "x".into(),
            retry_at: None,
        },
    ];
    for heartbeat_deadline in [None, Some(t0 + s(5))] {
        for healthy_at in [None, Some(t0 + s(1))] {
            out.push(State::Running {
                pid: 1,
                since: t0,
                heartbeat_deadline,
                healthy_at,
            });
        }
    }
    for then in [
        AfterStop::Stay,
        AfterStop::Restart,
        AfterStop::Policy,
        AfterStop::Retire,
    ] {
        for why in [StopCause::Asked, StopCause::Hung] {
            out.push(State::Stopping {
                pid: 1,
                since: t0,
                kill_at: t0 + s(2),
                then,
                why,
            });
        }
    }
    out
}

fn events() -> Vec<Event> {
    vec![
        Event::Start,
        Event::Stop,
        Event::Restart,
        Event::Shutdown,
        Event::Spawned { pid: 2 },
        Event::SpawnFailed {
            exit: ExitRecord::spawn_failed("refused", Utc::now()),
            jitter: 0.3,
        },
        Event::Ready,
        Event::Message,
        Event::Exited {
            exit: exit(ExitReason::Crashed, None),
            jitter: 0.3,
        },
        Event::Exited {
            exit: exit(ExitReason::Exited, Some(0)),
            jitter: 0.3,
        },
        Event::Tick,
        Event::PolicyChanged,
    ]
}

/// Apply the bookkeeping of `actions` to a copy of `m`.
fn after(m: &Machine, actions: &[Action], policy: &Policy) -> Machine {
    let mut m = m.clone();
    for a in actions {
        m.apply(a, policy);
    }
    m
}

#[test]
fn every_state_and_event_has_a_sound_decision() {
    let t0 = Instant::now();
    let mut derived = BTreeSet::new();
    let mut pairs = 0;
    for policy in policies() {
        for state in states(t0) {
            for event in events() {
                for failures in [0, 10] {
                    for restarts in [0, 10] {
                        // Before every deadline, at the wake-up, long after.
                        let mut nows = vec![t0, t0 + Duration::from_secs(3600)];
                        nows.extend(state.wake_at());
                        for now in nows {
                            let m = machine(state.clone(), failures, restarts, t0);
                            let actions = decide(&m, &event, now, &policy);
                            check(&m, &event, now, &policy, &actions, &mut derived);
                            pairs += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(pairs > 10_000, "{pairs} cases");
    let documented: BTreeSet<_> = TRANSITIONS.iter().copied().collect();
    let name = |s: &BTreeSet<(StateName, StateName)>| {
        s.iter()
            .map(|(a, b)| format!("{}→{}", a.as_str(), b.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        name(&derived),
        name(&documented),
        "decide() and the documented transitions differ"
    );
}

/// The rules every single decision keeps.
fn check(
    m: &Machine,
    event: &Event,
    now: Instant,
    policy: &Policy,
    actions: &[Action],
    derived: &mut BTreeSet<(StateName, StateName)>,
) {
    let ctx = || format!("{:?} --{event:?}--> {actions:?}", m.state);
    let from = &m.state;
    let end = after(m, actions, policy);
    let spawns = actions
        .iter()
        .filter(|a| matches!(a, Action::Spawn { .. }))
        .count();
    let exited = matches!(event, Event::Exited { .. });
    let answer = matches!(event, Event::Spawned { .. } | Event::SpawnFailed { .. });

    // A spawn is the last action, at most one, and only when no process
    // lives (none, or the one that just exited).
    assert!(spawns <= 1, "{}", ctx());
    if spawns == 1 {
        assert!(
            matches!(actions.last(), Some(Action::Spawn { .. })),
            "{}",
            ctx()
        );
        assert!(
            from.pid().is_none() || exited,
            "spawn beside a live process: {}",
            ctx()
        );
        assert!(!answer, "{}", ctx());
    }
    // Signals only go to the state's own process.
    for a in actions {
        if let Action::Terminate { pid } | Action::Kill { pid } = a {
            assert_eq!(Some(*pid), from.pid(), "{}", ctx());
        }
    }
    // A live process is never forgotten: only its exit (or the answer to a
    // spawn, which only follows one) changes the state's pid.
    if let Some(pid) = from.pid()
        && !exited
        && !answer
    {
        assert_eq!(end.state.pid(), Some(pid), "process lost: {}", ctx());
    }
    // After its exit, the process is gone from the state (or a spawn is
    // about to replace it).
    if exited && from.pid().is_some() && spawns == 0 {
        assert_eq!(end.state.pid(), None, "{}", ctx());
    }
    // Nothing without a process can exit.
    if exited && from.pid().is_none() {
        assert!(actions.is_empty(), "{}", ctx());
    }
    // Stops: never delayed by a backoff or fatal wait, never extended.
    if matches!(event, Event::Stop | Event::Shutdown) {
        match from {
            State::Backoff { .. } | State::Fatal { .. } | State::Stopped => {
                assert_eq!(end.state, State::Stopped, "{}", ctx())
            }
            State::Starting { .. } | State::Running { .. } => {
                assert!(
                    matches!(end.state, State::Stopping { kill_at, .. } if kill_at == now + policy.stop_grace),
                    "{}",
                    ctx()
                );
                assert!(matches!(actions.first(), Some(Action::Terminate { .. })));
            }
            State::Stopping { kill_at, .. } => assert!(
                matches!(end.state, State::Stopping { kill_at: k, .. } if k == *kill_at),
                "{}",
                ctx()
            ),
        }
    }
    // A shutdown always ends in retirement, and nothing overrides it.
    let retires = actions.contains(&Action::Retire);
    if matches!(event, Event::Shutdown) {
        assert!(
            retires
                || matches!(
                    end.state,
                    State::Stopping {
                        then: AfterStop::Retire,
                        ..
                    }
                ),
            "{}",
            ctx()
        );
    }
    if matches!(
        from,
        State::Stopping {
            then: AfterStop::Retire,
            ..
        }
    ) && !answer
    {
        assert_eq!(spawns, 0, "{}", ctx());
        assert!(
            retires
                || matches!(
                    end.state,
                    State::Stopping {
                        then: AfterStop::Retire,
                        ..
                    }
                ),
            "{}",
            ctx()
        );
    }
    if retires {
        assert_eq!(end.state, State::Stopped, "{}", ctx());
    }
    // A due timer is handled: the next wake-up is later, or a spawn
    // follows. No busy loop.
    if matches!(event, Event::Tick) {
        match from.wake_at() {
            Some(t) if now >= t => assert!(
                spawns == 1 || end.state.wake_at().is_none_or(|w| w > now),
                "timer still due: {}",
                ctx()
            ),
            _ => assert!(actions.is_empty(), "early tick acted: {}", ctx()),
        }
    }
    // Never parked: a state entered here that waits has a timer or an
    // explicit terminal reason.
    for a in actions {
        if let Action::Transition(to) = a {
            derived.insert((from.name(), to.name()));
            match to {
                State::Starting { .. } | State::Backoff { .. } | State::Stopping { .. } => {
                    assert!(to.wake_at().is_some(), "{}", ctx())
                }
                State::Fatal { retry_at, .. } => assert_eq!(
                    retry_at.is_some(),
                    policy.restart.fatal_retry.is_some(),
                    "{}",
                    ctx()
                ),
                State::Running { .. } | State::Stopped => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Property test: random event sequences against a model of the process.

mod model {
    use super::*;
    use proptest::prelude::*;

    /// Something the test does to the worker or the world.
    #[derive(Debug, Clone)]
    pub enum Op {
        Start,
        Stop,
        Restart,
        Shutdown,
        /// The process dies on its own.
        Crash,
        Ready,
        Message,
        /// Let time pass, firing timers and scheduled exits in order.
        Advance(u64),
        /// From now on, spawns fail (or succeed again).
        SpawnFails(bool),
        /// From now on, new processes ignore SIGTERM (or obey it).
        IgnoreTerm(bool),
        /// Replace the policy (index into the generated ones).
        NewPolicy(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Start),
            2 => Just(Op::Stop),
            1 => Just(Op::Restart),
            1 => Just(Op::Shutdown),
            2 => Just(Op::Crash),
            2 => Just(Op::Ready),
            2 => Just(Op::Message),
            6 => (0u64..5_000).prop_map(Op::Advance),
            1 => any::<bool>().prop_map(Op::SpawnFails),
            1 => any::<bool>().prop_map(Op::IgnoreTerm),
            1 => (0usize..4).prop_map(Op::NewPolicy),
        ]
    }

    fn ms(range: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
        range.prop_map(Duration::from_millis)
    }

    pub fn arb_policy() -> impl Strategy<Value = Policy> {
        (
            (
                prop_oneof![
                    Just(RestartMode::Always),
                    Just(RestartMode::OnFailure),
                    Just(RestartMode::Never)
                ],
                ms(0..2_000),
                ms(1..500),
                1.0f64..3.0,
                ms(10..60_000),
                0.0f64..1.0,
            ),
            (
                0u32..6,
                ms(100..60_000),
                proptest::option::of(ms(100..10_000)),
                ms(0..3_000),
                proptest::option::of(ms(10..2_000)),
                proptest::option::of(ms(10..2_000)),
            ),
        )
            .prop_map(
                |(
                    (mode, min_uptime, initial, multiplier, max, jitter),
                    (max_restarts, window, fatal_retry, stop_grace, start_timeout, heartbeat),
                )| Policy {
                    restart: RestartPolicy {
                        mode,
                        min_uptime,
                        backoff: Backoff {
                            initial,
                            multiplier,
                            max,
                            jitter,
                        },
                        max_restarts,
                        window,
                        fatal_retry,
                    },
                    stop_grace,
                    start_timeout,
                    heartbeat_timeout: heartbeat,
                },
            )
    }

    /// The live process of the model.
    #[derive(Debug)]
    struct Proc {
        pid: u32,
        ignores_term: bool,
        /// When it will have exited (after a signal).
        exit_at: Option<Instant>,
    }

    /// How long an obedient process takes to exit after SIGTERM, and any
    /// process after SIGKILL.
    const TERM_EXIT: Duration = Duration::from_millis(50);
    const KILL_EXIT: Duration = Duration::from_millis(1);
    /// A stop ends within `stop_grace` plus this.
    const MARGIN: Duration = Duration::from_millis(10);

    pub struct Sim {
        m: Machine,
        policy: Policy,
        policies: Vec<Policy>,
        t0: Instant,
        now: Instant,
        proc_: Option<Proc>,
        next_pid: u32,
        spawn_fails: bool,
        ignore_term: bool,
        retired: bool,
        /// A stop was asked: it must be `stopped` by then.
        stop_due: Option<Instant>,
        log: Vec<String>,
    }

    impl Sim {
        pub fn new(policies: Vec<Policy>) -> Sim {
            Sim {
                m: Machine::new(),
                policy: policies[0].clone(),
                policies,
                t0: Instant::now(),
                now: Instant::now(),
                proc_: None,
                next_pid: 100,
                spawn_fails: false,
                ignore_term: false,
                retired: false,
                stop_due: None,
                log: Vec::new(),
            }
        }

        fn fail(&self, what: &str) -> TestCaseError {
            TestCaseError::fail(format!(
                "{what}\nstate: {:?}\nlog:\n  {}",
                self.m.state,
                self.log.join("\n  ")
            ))
        }

        /// Run `event` through `decide` and execute the actions, the way
        /// the actor does.
        fn feed(&mut self, first: Event) -> Result<(), TestCaseError> {
            let mut queue = VecDeque::from([first]);
            while let Some(event) = queue.pop_front() {
                let actions = decide(&self.m, &event, self.now, &self.policy);
                self.log.push(format!(
                    "{:?} {:?} --{event:?}--> {actions:?}",
                    self.now.saturating_duration_since(self.t0),
                    self.m.state.name()
                ));
                for a in &actions {
                    self.m.apply(a, &self.policy);
                    match a {
                        Action::Spawn { .. } => {
                            if self.retired {
                                return Err(self.fail("spawn after retirement"));
                            }
                            if self.proc_.is_some() {
                                return Err(self.fail("two live processes"));
                            }
                            if self.spawn_fails {
                                queue.push_back(Event::SpawnFailed {
                                    exit: ExitRecord::spawn_failed("refused", Utc::now()),
                                    jitter: 0.5,
                                });
                            } else {
                                self.next_pid += 1;
                                self.proc_ = Some(Proc {
                                    pid: self.next_pid,
                                    ignores_term: self.ignore_term,
                                    exit_at: None,
                                });
                                queue.push_back(Event::Spawned { pid: self.next_pid });
                            }
                        }
                        Action::Terminate { pid } | Action::Kill { pid } => {
                            let now = self.now;
                            let kill = matches!(a, Action::Kill { .. });
                            let Some(p) = self.proc_.as_mut().filter(|p| p.pid == *pid) else {
                                return Err(self.fail("signal to a process that is not live"));
                            };
                            let delay = match (kill, p.ignores_term) {
                                (true, _) => Some(KILL_EXIT),
                                (false, false) => Some(TERM_EXIT),
                                (false, true) => None,
                            };
                            if let Some(d) = delay {
                                let at = now + d;
                                p.exit_at = Some(p.exit_at.map_or(at, |t| t.min(at)));
                            }
                        }
                        Action::Retire => self.retired = true,
                        _ => {}
                    }
                }
            }
            Ok(())
        }

        /// The process exits now.
        fn exit(&mut self, reason: ExitReason) -> Result<(), TestCaseError> {
            self.proc_ = None;
            let reason = match &self.m.state {
                State::Stopping {
                    why: StopCause::Asked,
                    ..
                } => ExitReason::Stopped,
                State::Stopping {
                    why: StopCause::Hung,
                    ..
                } => ExitReason::Hung,
                _ => reason,
            };
            self.feed(Event::Exited {
                exit: exit(reason, None),
                jitter: 0.5,
            })
        }

        fn advance(&mut self, by: Duration) -> Result<(), TestCaseError> {
            let target = self.now + by;
            for _ in 0..100_000 {
                let exit_at = self.proc_.as_ref().and_then(|p| p.exit_at);
                let wake = self.m.state.wake_at();
                let next = match (exit_at, wake) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                match next {
                    Some(t) if t <= target => {
                        self.now = self.now.max(t);
                        self.check_stop_due()?;
                        if exit_at.is_some_and(|e| e <= self.now) {
                            self.exit(ExitReason::Crashed)?;
                        } else {
                            self.feed(Event::Tick)?;
                        }
                        self.check()?;
                        if self.retired {
                            return Ok(());
                        }
                    }
                    _ => {
                        self.now = target;
                        return self.check_stop_due();
                    }
                }
            }
            Err(self.fail("busy loop: a due timer is never handled"))
        }

        /// Feed a stop (or shutdown) and note when it must be over: the
        /// SIGKILL time of the stop sequence (at most `stop_grace` from a
        /// fresh stop; an ongoing one keeps its own), plus the kill.
        fn stop(&mut self, event: Event) -> Result<(), TestCaseError> {
            let before = self.m.state.clone();
            self.feed(event)?;
            match (&before, &self.m.state) {
                (State::Backoff { .. } | State::Fatal { .. }, s) if *s != State::Stopped => {
                    Err(self.fail("a backoff or fatal wait delayed a stop"))
                }
                (_, State::Stopping { kill_at, .. }) => {
                    if matches!(before, State::Starting { .. } | State::Running { .. })
                        && *kill_at > self.now + self.policy.stop_grace
                    {
                        return Err(self.fail("SIGKILL later than stop_grace"));
                    }
                    let due = *kill_at + KILL_EXIT + MARGIN;
                    self.stop_due = Some(self.stop_due.map_or(due, |d| d.min(due)));
                    Ok(())
                }
                _ => Ok(()),
            }
        }

        fn check_stop_due(&mut self) -> Result<(), TestCaseError> {
            if let Some(due) = self.stop_due {
                if self.m.state == State::Stopped {
                    self.stop_due = None;
                } else if self.now > due {
                    return Err(self.fail("a stop took longer than stop_grace plus a margin"));
                }
            }
            Ok(())
        }

        /// Invariants between two operations.
        fn check(&self) -> Result<(), TestCaseError> {
            let live = self.proc_.as_ref().map(|p| p.pid);
            if self.m.state.pid() != live {
                return Err(self.fail(&format!(
                    "the state's pid {:?} is not the live process {live:?}",
                    self.m.state.pid()
                )));
            }
            let parked = match &self.m.state {
                State::Starting { .. } | State::Backoff { .. } | State::Stopping { .. } => {
                    self.m.state.wake_at().is_none()
                }
                State::Fatal { retry_at, .. } => {
                    retry_at.is_none() && self.policy.restart.fatal_retry.is_some()
                }
                State::Running { .. } | State::Stopped => false,
            };
            if parked {
                return Err(self.fail("parked: waiting without a timer"));
            }
            if self.retired && self.m.state != State::Stopped {
                return Err(self.fail("retired but not stopped"));
            }
            Ok(())
        }

        pub fn run(&mut self, ops: &[Op]) -> Result<(), TestCaseError> {
            for op in ops {
                if self.retired {
                    break; // the actor ended
                }
                let before = self.m.state.clone();
                match op {
                    Op::Start | Op::Restart => {
                        if !matches!(
                            before,
                            State::Stopping {
                                then: AfterStop::Retire,
                                ..
                            }
                        ) {
                            self.stop_due = None;
                        }
                        let e = if matches!(op, Op::Start) {
                            Event::Start
                        } else {
                            Event::Restart
                        };
                        self.feed(e)?;
                    }
                    Op::Stop | Op::Shutdown => {
                        let e = if matches!(op, Op::Stop) {
                            Event::Stop
                        } else {
                            Event::Shutdown
                        };
                        self.stop(e)?;
                    }
                    Op::Crash => {
                        if self.proc_.is_some() {
                            self.exit(ExitReason::Crashed)?;
                        }
                    }
                    Op::Ready | Op::Message => {
                        if self.proc_.is_some() {
                            let e = if matches!(op, Op::Ready) {
                                Event::Ready
                            } else {
                                Event::Message
                            };
                            self.feed(e)?;
                        }
                    }
                    Op::Advance(ms) => self.advance(Duration::from_millis(*ms))?,
                    Op::SpawnFails(f) => self.spawn_fails = *f,
                    Op::IgnoreTerm(i) => self.ignore_term = *i,
                    Op::NewPolicy(i) => {
                        self.policy = self.policies[*i % self.policies.len()].clone();
                        self.feed(Event::PolicyChanged)?;
                    }
                }
                self.check()?;
            }
            // In the end, a stop always gets there in time.
            if !self.retired {
                self.stop(Event::Stop)?;
                if let Some(due) = self.stop_due {
                    self.advance(due.saturating_duration_since(self.now))?;
                }
                if self.m.state != State::Stopped {
                    return Err(self.fail("not stopped in time after the final stop"));
                }
            }
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]
        #[test]
        fn random_event_sequences_keep_the_invariants(
            policies in proptest::collection::vec(arb_policy(), 4),
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            Sim::new(policies).run(&ops)?;
        }
    }
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
