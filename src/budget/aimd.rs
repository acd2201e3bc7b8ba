//! Additive increase, multiplicative decrease of a host's budget, like
//! Scrapy's AutoThrottle: errors from the site halve what the pool may ask
//! of it, and it recovers slowly while the site answers well.
//!
//! One factor in `[MIN_FACTOR, 1]` scales both the request rate and the
//! concurrency of a host. It is a pure value: every method takes `now`.

use std::time::{Duration, Instant};

/// Lowest factor: 1/16 of the configured rate and concurrency.
pub const MIN_FACTOR: f64 = 1.0 / 16.0;
/// What a decrease multiplies the factor by.
pub const DECREASE: f64 = 0.5;
/// At most one decrease per this period (a burst of failures of requests
/// that were in flight together counts once).
pub const COOLDOWN: Duration = Duration::from_secs(1);
/// What the factor regains per [`RECOVER_PERIOD`] without a decrease.
pub const RECOVER_STEP: f64 = 0.05;
/// See [`RECOVER_STEP`]: from half to full in 10 s, from the floor in 19 s.
pub const RECOVER_PERIOD: Duration = Duration::from_secs(1);
/// Server errors (5xx, timeouts, refused connections) in a row that
/// lower the factor; a 429 lowers it at once.
pub const ERRORS_IN_A_ROW: u32 = 2;

/// How a request ended, as far as the budget cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer that is not a server error (2xx, 3xx, 404…).
    Fine,
    /// 5xx, or no answer at all (timeout, connection refused or reset).
    ServerError,
    /// 429 Too Many Requests.
    TooMany,
}

/// The factor and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    /// The factor right after the last decrease (1.0 before any).
    base: f64,
    /// When the last decrease happened.
    decreased_at: Option<Instant>,
    /// Server errors since the last fine answer.
    errors_in_row: u32,
    /// Decreases so far.
    decreases: u64,
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd {
            base: 1.0,
            decreased_at: None,
            errors_in_row: 0,
            decreases: 0,
        }
    }
}

impl Aimd {
    /// The factor at `now`: the value after the last decrease plus
    /// [`RECOVER_STEP`] per whole [`RECOVER_PERIOD`] since, at most 1.
    pub fn factor(&self, now: Instant) -> f64 {
        match self.decreased_at {
            None => self.base,
            Some(at) => {
                let periods = (now.saturating_duration_since(at).as_secs_f64()
                    / RECOVER_PERIOD.as_secs_f64())
                .floor();
                (self.base + RECOVER_STEP * periods).min(1.0)
            }
        }
    }

    /// When the factor next grows (`None` when it is whole).
    pub fn next_step(&self, now: Instant) -> Option<Instant> {
        let at = self.decreased_at?;
        if self.factor(now) >= 1.0 {
            return None;
        }
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let periods = (elapsed / RECOVER_PERIOD.as_secs_f64()).floor() + 1.0;
        Some(at + RECOVER_PERIOD.mul_f64(periods))
    }

    /// Take in how a request ended; returns whether the factor went down.
    pub fn observe(&mut self, signal: Signal, now: Instant) -> bool {
        let lower = match signal {
            Signal::Fine => {
                self.errors_in_row = 0;
                false
            }
            Signal::ServerError => {
                self.errors_in_row += 1;
                self.errors_in_row >= ERRORS_IN_A_ROW
            }
            Signal::TooMany => true,
        };
        if !lower {
            return false;
        }
        if self
            .decreased_at
            .is_some_and(|at| now.saturating_duration_since(at) < COOLDOWN)
        {
            return false;
        }
        self.base = (self.factor(now) * DECREASE).max(MIN_FACTOR);
        self.decreased_at = Some(now);
        self.decreases += 1;
        true
    }

    /// Decreases so far.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn repeated_server_errors_halve_and_time_restores() {
        let t0 = Instant::now();
        let mut a = Aimd::default();
        assert_eq!(a.factor(t0), 1.0);
        assert_eq!(a.next_step(t0), None);
        // One 5xx alone does not lower it; a fine answer resets the streak.
        assert!(!a.observe(Signal::ServerError, t0));
        assert!(!a.observe(Signal::Fine, t0));
        assert!(!a.observe(Signal::ServerError, t0));
        assert_eq!(a.factor(t0), 1.0);
        // The second in a row does.
        assert!(a.observe(Signal::ServerError, t0 + ms(10)));
        assert_eq!(a.factor(t0 + ms(10)), 0.5);
        // More errors within the cooldown count once.
        assert!(!a.observe(Signal::ServerError, t0 + ms(500)));
        assert!(!a.observe(Signal::TooMany, t0 + ms(900)));
        assert_eq!(a.factor(t0 + ms(900)), 0.5);
        assert_eq!(a.next_step(t0 + ms(900)), Some(t0 + ms(1010)));
        // Table: factor over time after the decrease at 10 ms.
        let table: &[(u64, f64)] = &[
            (1_009, 0.5),
            (1_010, 0.55),
            (2_010, 0.6),
            (5_010, 0.75),
            (10_010, 1.0),
            (60_000, 1.0),
        ];
        for (at, want) in table {
            let got = a.factor(t0 + ms(*at));
            assert!((got - want).abs() < 1e-9, "at {at} ms: {got} != {want}");
        }
        assert_eq!(a.next_step(t0 + ms(10_010)), None);
        assert_eq!(a.decreases(), 1);
    }

    #[test]
    fn too_many_lowers_at_once_down_to_the_floor() {
        let t0 = Instant::now();
        let mut a = Aimd::default();
        let mut at = t0;
        let mut seen = Vec::new();
        for _ in 0..8 {
            assert!(a.observe(Signal::TooMany, at));
            seen.push(a.factor(at));
            at += COOLDOWN;
        }
        // Each decrease halves what had recovered meanwhile (one step per
        // second), and never goes under the floor.
        let want = [
            0.5, 0.275, 0.1625, 0.10625, 0.078125, 0.0640625, MIN_FACTOR, MIN_FACTOR,
        ];
        for (got, want) in seen.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{seen:?}");
        }
    }
}
