//! One host's budget: the requests-per-second spacing, the concurrency
//! slots, the pause a `Retry-After` asks for, and who waits, in priority
//! order. Pure: time comes in as `now`, grants go out as values; the
//! supervisor's task ([`super::service`]) and the in-process driver
//! ([`super::local`]) only carry them.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::aimd::{Aimd, Signal};
pub use crate::protocol::Feedback;

/// Margin added to the spacing of requests (5 %): grants `1.05 / rate`
/// apart keep the site under `rate` requests in *any* one-second window
/// even when the time from a grant to the request reaching the site
/// varies by up to `0.05 / rate × rate` = 50 ms across a second.
pub const SPACING_MARGIN: f64 = 0.05;

/// Longest pause a `Retry-After` can impose (a larger value is cut to it).
pub const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

/// The configured limits of a host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per second (0 = unlimited).
    pub rate: f64,
    /// Requests in flight at once (at least 1).
    pub max_concurrent: usize,
}

impl Feedback {
    /// An answer with this status.
    pub fn status(status: u16) -> Feedback {
        Feedback {
            status: Some(status),
            ..Feedback::default()
        }
    }

    /// What it tells the AIMD controller.
    pub fn signal(&self) -> Signal {
        match self.status {
            Some(429) => Signal::TooMany,
            Some(s) if s >= 500 => Signal::ServerError,
            Some(_) => Signal::Fine,
            None if self.failed => Signal::ServerError,
            None => Signal::Fine,
        }
    }

    /// How long the whole pool must leave the host alone.
    pub fn pause(&self) -> Option<Duration> {
        match self.status {
            Some(429 | 503) => self
                .retry_after_ms
                .map(|ms| Duration::from_millis(ms).min(MAX_PAUSE)),
            _ => None,
        }
    }
}

/// A request waiting for its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiter {
    holder: String,
    id: u64,
}

/// A grant: `holder` may send request `id` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who asked (a worker name).
    pub holder: String,
    /// The holder's request id.
    pub id: u64,
}

/// One host's budget.
#[derive(Debug, Clone)]
pub struct HostBudget {
    limits: Limits,
    aimd: Aimd,
    /// No grant before this (the rate's spacing).
    next_at: Option<Instant>,
    /// No grant before this either (`Retry-After`).
    paused_until: Option<Instant>,
    /// Waiting requests, highest priority first, then first come.
    queue: BTreeMap<(std::cmp::Reverse<i32>, u64), Waiter>,
    seq: u64,
    /// Requests in flight: (holder, id) → granted at.
    leases: HashMap<(String, u64), Instant>,
    granted: u64,
    pauses: u64,
}

/// What a host's budget looks like now (for the API and `/metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HostSnapshot {
    /// `host:port`.
    pub host: String,
    /// Configured requests per second (`null` = unlimited).
    pub rate_limit: Option<f64>,
    /// Current requests per second after AIMD (`null` = unlimited).
    pub rate: Option<f64>,
    /// Configured pool-wide concurrency.
    pub max_concurrent: usize,
    /// Current concurrency after AIMD.
    pub concurrency: usize,
    /// The AIMD factor (1 = nothing lowered).
    pub factor: f64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Requests waiting for a grant.
    pub waiting: usize,
    /// Seconds until a `Retry-After` pause ends (`null` when none).
    pub paused_for_s: Option<f64>,
    /// Requests granted so far.
    pub requests: u64,
    /// `Retry-After` pauses so far.
    pub pauses: u64,
    /// AIMD decreases so far.
    pub decreases: u64,
}

impl HostBudget {
    /// A fresh budget under `limits`.
    pub fn new(limits: Limits) -> HostBudget {
        HostBudget {
            limits: Limits {
                rate: if limits.rate.is_finite() && limits.rate > 0.0 {
                    limits.rate
                } else {
                    0.0
                },
                max_concurrent: limits.max_concurrent.max(1),
            },
            aimd: Aimd::default(),
            next_at: None,
            paused_until: None,
            queue: BTreeMap::new(),
            seq: 0,
            leases: HashMap::new(),
            granted: 0,
            pauses: 0,
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// New configured limits (a config reload); what the site taught the
    /// pool (AIMD, a `Retry-After` pause) and the leases stay.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = HostBudget::new(limits).limits;
    }

    /// Requests per second now (`None` = unlimited).
    pub fn rate(&self, now: Instant) -> Option<f64> {
        (self.limits.rate > 0.0).then(|| self.limits.rate * self.aimd.factor(now))
    }

    /// Requests allowed in flight now.
    pub fn concurrency(&self, now: Instant) -> usize {
        ((self.limits.max_concurrent as f64 * self.aimd.factor(now)).floor() as usize).max(1)
    }

    /// Time between two grants now (`None` = unlimited).
    pub fn spacing(&self, now: Instant) -> Option<Duration> {
        self.rate(now)
            .map(|r| Duration::from_secs_f64((1.0 + SPACING_MARGIN) / r))
    }

    /// Queue request `id` of `holder` (a second ask of a queued or held id
    /// is ignored).
    pub fn enqueue(&mut self, holder: &str, id: u64, priority: i32) {
        let key = (holder.to_string(), id);
        if self.leases.contains_key(&key)
            || self
                .queue
                .values()
                .any(|w| w.id == id && w.holder == holder)
        {
            return;
        }
        self.seq += 1;
        self.queue.insert(
            (std::cmp::Reverse(priority), self.seq),
            Waiter { holder: key.0, id },
        );
    }

    /// Request `id` of `holder` ended (with `feedback`) or was given up
    /// (`None`): its slot is free, or it leaves the queue. Unknown ids
    /// are ignored, so a release may safely arrive twice.
    pub fn release(&mut self, holder: &str, id: u64, feedback: Option<Feedback>, now: Instant) {
        let held = self.leases.remove(&(holder.to_string(), id)).is_some();
        if !held {
            self.queue
                .retain(|_, w| !(w.id == id && w.holder == holder));
        }
        if let Some(fb) = feedback.filter(|_| held) {
            self.observe(fb, now);
        }
    }

    /// Take in what a response said: pause on `Retry-After`, AIMD.
    pub fn observe(&mut self, feedback: Feedback, now: Instant) {
        if let Some(pause) = feedback.pause() {
            let until = now + pause;
            if self.paused_until.is_none_or(|p| p < until) {
                self.paused_until = Some(until);
                self.pauses += 1;
            }
        }
        if self.aimd.observe(feedback.signal(), now) {
            tracing::warn!(
                status = ?feedback.status,
                factor = self.aimd.factor(now),
                "the site is struggling: lowering the pool's rate and concurrency"
            );
        }
    }

    /// Count request `id` of `holder` as in flight (what it says it holds
    /// after a resync).
    pub fn hold(&mut self, holder: &str, id: u64, now: Instant) {
        self.leases.insert((holder.to_string(), id), now);
    }

    /// Forget everything of `holder` (its process is gone): its queued
    /// requests and its leases. Returns the leases reclaimed.
    pub fn reclaim(&mut self, holder: &str) -> usize {
        self.queue.retain(|_, w| w.holder != holder);
        let before = self.leases.len();
        self.leases.retain(|(h, _), _| h != holder);
        before - self.leases.len()
    }

    /// Grant what may go now, in priority order.
    pub fn poll(&mut self, now: Instant) -> Vec<Grant> {
        let mut out = Vec::new();
        while !self.queue.is_empty() {
            if let Some(until) = self.paused_until {
                if now < until {
                    break;
                }
                self.paused_until = None;
            }
            if self.leases.len() >= self.concurrency(now) {
                break;
            }
            if let Some(spacing) = self.spacing(now) {
                if self.next_at.is_some_and(|at| now < at) {
                    break;
                }
                self.next_at = Some(now + spacing);
            }
            let Some((_, w)) = self.queue.pop_first() else {
                break;
            };
            self.leases.insert((w.holder.clone(), w.id), now);
            self.granted += 1;
            out.push(Grant {
                holder: w.holder,
                id: w.id,
            });
        }
        out
    }

    /// When [`poll`](Self::poll) may grant more without a release
    /// (`None`: only a release or a new request can change anything).
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        if let Some(until) = self.paused_until.filter(|u| now < *u) {
            return Some(until);
        }
        if self.leases.len() >= self.concurrency(now) {
            return self.aimd.next_step(now);
        }
        match self.next_at {
            Some(at) if self.limits.rate > 0.0 && now < at => Some(at),
            _ => Some(now),
        }
    }

    /// Whether a `Retry-After` pause holds at `now`.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|u| now < *u)
    }

    /// Leases held by `holder`.
    pub fn held_by(&self, holder: &str) -> usize {
        self.leases.keys().filter(|(h, _)| h == holder).count()
    }

    /// Requests of `holder` waiting.
    pub fn waiting_of(&self, holder: &str) -> usize {
        self.queue.values().filter(|w| w.holder == holder).count()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.leases.len()
    }

    /// The snapshot at `now`.
    pub fn snapshot(&self, host: &str, now: Instant) -> HostSnapshot {
        HostSnapshot {
            host: host.to_string(),
            rate_limit: (self.limits.rate > 0.0).then_some(self.limits.rate),
            rate: self.rate(now),
            max_concurrent: self.limits.max_concurrent,
            concurrency: self.concurrency(now),
            factor: self.aimd.factor(now),
            in_flight: self.leases.len(),
            waiting: self.queue.len(),
            paused_for_s: self
                .paused_until(now)
                .map(|u| u.saturating_duration_since(now).as_secs_f64()),
            requests: self.granted,
            pauses: self.pauses,
            decreases: self.aimd.decreases(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ids(grants: &[Grant]) -> Vec<(String, u64)> {
        grants.iter().map(|g| (g.holder.clone(), g.id)).collect()
    }

    #[test]
    fn the_rate_spaces_grants_and_concurrency_caps_them() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 20.0,
            max_concurrent: 2,
        });
        for id in 1..=4 {
            b.enqueue("A", id, 0);
        }
        // One at a time, 52.5 ms apart (20/s with the 5 % margin).
        assert_eq!(ids(&b.poll(t0)), [("A".into(), 1)]);
        assert_eq!(b.poll(t0 + ms(52)), []);
        assert_eq!(
            b.next_wake(t0 + ms(52)),
            Some(t0 + ms(52) + Duration::from_micros(500))
        );
        assert_eq!(ids(&b.poll(t0 + ms(53))), [("A".into(), 2)]);
        // Two in flight: the third waits for a release, not for time.
        assert_eq!(b.poll(t0 + ms(200)), []);
        assert_eq!(b.next_wake(t0 + ms(200)), None);
        b.release("A", 1, Some(Feedback::status(200)), t0 + ms(210));
        assert_eq!(ids(&b.poll(t0 + ms(210))), [("A".into(), 3)]);
        assert_eq!(b.in_flight(), 2);
        assert_eq!(b.snapshot("h", t0 + ms(210)).requests, 3);
    }

    #[test]
    fn an_unlimited_rate_grants_up_to_the_concurrency_at_once() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 0.0,
            max_concurrent: 3,
        });
        for id in 1..=5 {
            b.enqueue("A", id, 0);
        }
        assert_eq!(b.poll(t0).len(), 3);
        assert_eq!(b.next_wake(t0), None);
        assert_eq!(b.snapshot("h", t0).rate, None);
    }

    #[test]
    fn priority_goes_first_then_arrival_order() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 0.0,
            max_concurrent: 1,
        });
        b.enqueue("low", 1, 0);
        b.enqueue("low", 2, 0);
        b.enqueue("high", 1, 5);
        b.enqueue("watcher", 1, i32::MAX);
        let mut order = Vec::new();
        for i in 0..4u64 {
            let g = b.poll(t0 + ms(i));
            assert_eq!(g.len(), 1);
            order.push((g[0].holder.clone(), g[0].id));
            b.release(&g[0].holder, g[0].id, None, t0 + ms(i));
        }
        assert_eq!(
            order,
            [
                ("watcher".into(), 1),
                ("high".into(), 1),
                ("low".into(), 1),
                ("low".into(), 2)
            ]
        );
    }

    #[test]
    fn retry_after_pauses_every_holder_and_aimd_slows_down() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 10.0,
            max_concurrent: 4,
        });
        b.enqueue("A", 1, 0);
        assert_eq!(b.poll(t0).len(), 1);
        b.enqueue("B", 1, 0);
        b.enqueue("A", 2, 0);
        b.release(
            "A",
            1,
            Some(Feedback {
                status: Some(429),
                retry_after_ms: Some(2_000),
                failed: false,
            }),
            t0 + ms(10),
        );
        let s = b.snapshot("h", t0 + ms(10));
        assert_eq!(s.paused_for_s, Some(2.0));
        assert_eq!((s.pauses, s.decreases, s.factor), (1, 1, 0.5));
        assert_eq!(s.rate, Some(5.0));
        assert_eq!(s.concurrency, 2);
        // Nobody gets anything until the pause is over.
        assert_eq!(b.poll(t0 + ms(2_009)), []);
        assert_eq!(b.next_wake(t0 + ms(500)), Some(t0 + ms(2_010)));
        assert_eq!(ids(&b.poll(t0 + ms(2_010))), [("B".into(), 1)]);
        // A 503 without Retry-After does not pause.
        b.release("B", 1, Some(Feedback::status(503)), t0 + ms(2_100));
        assert_eq!(b.paused_until(t0 + ms(2_100)), None);
    }

    #[test]
    fn releases_are_idempotent_and_cancel_queued_requests() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 0.0,
            max_concurrent: 1,
        });
        b.enqueue("A", 1, 0);
        b.enqueue("A", 1, 0);
        b.enqueue("A", 2, 0);
        assert_eq!(b.snapshot("h", t0).waiting, 2);
        assert_eq!(b.poll(t0).len(), 1);
        // Given up while queued: it leaves the queue.
        b.release("A", 2, None, t0);
        assert_eq!(b.snapshot("h", t0).waiting, 0);
        b.release("A", 1, None, t0);
        b.release("A", 1, None, t0);
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn a_dead_holder_s_leases_and_requests_are_reclaimed() {
        let t0 = Instant::now();
        let mut b = HostBudget::new(Limits {
            rate: 0.0,
            max_concurrent: 2,
        });
        b.enqueue("dead", 1, 0);
        b.enqueue("dead", 2, 0);
        b.enqueue("dead", 3, 0);
        b.enqueue("alive", 1, 0);
        assert_eq!(b.poll(t0).len(), 2);
        assert_eq!(b.held_by("dead"), 2);
        assert_eq!(b.reclaim("dead"), 2);
        assert_eq!(b.held_by("dead"), 0);
        assert_eq!(b.waiting_of("dead"), 0);
        assert_eq!(ids(&b.poll(t0)), [("alive".into(), 1)]);
    }

    #[test]
    fn feedback_table() {
        let table: &[(Feedback, Signal, Option<u64>)] = &[
            (Feedback::status(200), Signal::Fine, None),
            (Feedback::status(404), Signal::Fine, None),
            (Feedback::status(500), Signal::ServerError, None),
            (Feedback::status(503), Signal::ServerError, None),
            (Feedback::status(429), Signal::TooMany, None),
            (
                Feedback {
                    status: Some(429),
                    retry_after_ms: Some(2_000),
                    failed: false,
                },
                Signal::TooMany,
                Some(2_000),
            ),
            (
                Feedback {
                    status: Some(503),
                    retry_after_ms: Some(10_000_000),
                    failed: false,
                },
                Signal::ServerError,
                Some(MAX_PAUSE.as_millis() as u64),
            ),
            (
                Feedback {
                    status: Some(500),
                    retry_after_ms: Some(1_000),
                    failed: false,
                },
                Signal::ServerError,
                None,
            ),
            (
                Feedback {
                    failed: true,
                    ..Feedback::default()
                },
                Signal::ServerError,
                None,
            ),
        ];
        for (fb, signal, pause) in table {
            assert_eq!(fb.signal(), *signal, "{fb:?}");
            assert_eq!(fb.pause().map(|d| d.as_millis() as u64), *pause, "{fb:?}");
        }
    }
}
