//! One budget per host for the whole pool: `[site] rate_limit` and
//! `max_concurrent` hold across every worker process, a `Retry-After`
//! pauses the whole pool's requests to that host, and repeated server
//! errors lower the rate (AIMD) until the site recovers.
//!
//! - [`host::HostBudget`]: one host's rate spacing, concurrency slots,
//!   pause and queue (priority first, then arrival). Pure.
//! - [`aimd::Aimd`]: the factor that errors halve and time restores.
//! - [`Budget`]: every host, plus what each holder (worker) asked for.
//! - [`service`]: the supervisor's task that owns the pool's [`Budget`]
//!   and leases it to workers over their channels (request → grant; a
//!   release carries the response's status back), and reclaims the leases
//!   of a worker whose process exited.
//! - [`remote`]: the worker's end of that exchange.
//! - [`local`]: the same [`Budget`] inside one process (single runs such
//!   as `scrape-once`, or a worker started by hand).
//!
//! The site client ([`crate::site::SiteClient`]) goes through a
//! [`crate::site::Limiter`], which is one of the last two.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

pub mod aimd;
pub mod host;
pub mod lease;
pub mod local;
pub mod remote;
pub mod service;

pub use host::{Feedback, Grant, HostBudget, HostSnapshot, Limits};

/// Priority of the watcher's status checks: before any world's pages.
pub const WATCHER_PRIORITY: i32 = i32::MAX;

/// Errors of asking for a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The owner of the budget is gone (the supervisor exited, or the
    /// in-process driver stopped with its runtime).
    #[error("the request budget is gone ({0})")]
    Gone(String),
}

/// A grant for one holder on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    /// `host:port`.
    pub host: String,
    /// Who may send.
    pub holder: String,
    /// Which of its requests.
    pub id: u64,
}

/// What one holder (a worker) used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HolderUse {
    /// Requests granted so far (cumulative, across restarts).
    pub requests: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Requests waiting for a grant now.
    pub waiting: usize,
}

/// The whole budget now (`GET /api/budget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    /// Every host asked for so far.
    pub hosts: Vec<HostSnapshot>,
    /// Per worker.
    pub workers: BTreeMap<String, HolderUse>,
    /// Leases taken back from workers whose process exited.
    pub reclaimed: u64,
}

/// Every host's budget, under the same limits.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    hosts: BTreeMap<String, HostBudget>,
    requests: BTreeMap<String, u64>,
    reclaimed: u64,
}

impl Budget {
    /// New limits for every host, known or not (a config reload).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        for host in self.hosts.values_mut() {
            host.set_limits(limits);
        }
    }

    /// An empty budget: hosts appear when first asked for.
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            hosts: BTreeMap::new(),
            requests: BTreeMap::new(),
            reclaimed: 0,
        }
    }

    fn host(&mut self, host: &str) -> &mut HostBudget {
        let limits = self.limits;
        self.hosts
            .entry(host.to_string())
            .or_insert_with(|| HostBudget::new(limits))
    }

    /// `holder` wants to send request `id` to `host`.
    pub fn acquire(&mut self, holder: &str, host: &str, id: u64, priority: i32) {
        self.host(host).enqueue(holder, id, priority);
    }

    /// Request `id` of `holder` ended (or was given up: `None`).
    pub fn release(
        &mut self,
        holder: &str,
        host: &str,
        id: u64,
        feedback: Option<Feedback>,
        now: Instant,
    ) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.release(holder, id, feedback, now);
        }
    }

    /// Replace what `holder` has with what it says it has (after the
    /// supervisor missed messages).
    pub fn sync(
        &mut self,
        holder: &str,
        waiting: &[(String, u64, i32)],
        held: &[(String, u64)],
        now: Instant,
    ) {
        for h in self.hosts.values_mut() {
            h.reclaim(holder);
        }
        for (host, id) in held {
            self.host(host).hold(holder, *id, now);
        }
        for (host, id, priority) in waiting {
            self.acquire(holder, host, *id, *priority);
        }
    }

    /// `holder`'s process is gone: free its slots, drop its requests.
    /// Returns the leases reclaimed.
    pub fn reclaim(&mut self, holder: &str) -> usize {
        let n: usize = self.hosts.values_mut().map(|h| h.reclaim(holder)).sum();
        self.reclaimed += n as u64;
        n
    }

    /// Everything that may go now.
    pub fn poll(&mut self, now: Instant) -> Vec<HostGrant> {
        let mut out = Vec::new();
        for (host, h) in &mut self.hosts {
            for g in h.poll(now) {
                *self.requests.entry(g.holder.clone()).or_default() += 1;
                out.push(HostGrant {
                    host: host.clone(),
                    holder: g.holder,
                    id: g.id,
                });
            }
        }
        out
    }

    /// The earliest time [`poll`](Self::poll) may grant more on its own.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        self.hosts.values().filter_map(|h| h.next_wake(now)).min()
    }

    /// The snapshot at `now`.
    pub fn snapshot(&self, now: Instant) -> BudgetSnapshot {
        let mut workers: BTreeMap<String, HolderUse> = self
            .requests
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    HolderUse {
                        requests: *n,
                        ..HolderUse::default()
                    },
                )
            })
            .collect();
        for h in self.hosts.values() {
            for (name, u) in workers.iter_mut() {
                u.in_flight += h.held_by(name);
                u.waiting += h.waiting_of(name);
            }
        }
        BudgetSnapshot {
            hosts: self
                .hosts
                .iter()
                .map(|(name, h)| h.snapshot(name, now))
                .collect(),
            workers,
            reclaimed: self.reclaimed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_separate_and_holders_are_counted() {
        let t0 = Instant::now();
        let mut b = Budget::new(Limits {
            rate: 0.0,
            max_concurrent: 1,
        });
        b.acquire("A", "a:80", 1, 0);
        b.acquire("B", "a:80", 1, 0);
        b.acquire("B", "b:80", 2, 0);
        let g = b.poll(t0);
        assert_eq!(g.len(), 2, "one per host: {g:?}");
        let s = b.snapshot(t0);
        assert_eq!(s.hosts.len(), 2);
        assert_eq!(s.workers["A"].requests, 1);
        assert_eq!(s.workers["A"].in_flight, 1);
        assert_eq!(s.workers["B"].requests, 1);
        // B waits on a:80 but is only counted in the map once it was granted.
        assert_eq!(b.reclaim("A"), 1);
        let g = b.poll(t0);
        assert_eq!(
            g,
            [HostGrant {
                host: "a:80".into(),
                holder: "B".into(),
                id: 1
            }]
        );
        let s = b.snapshot(t0);
        assert_eq!(s.workers["B"].requests, 2);
        assert_eq!(s.workers["B"].in_flight, 2);
        assert_eq!(s.reclaimed, 1);
    }

    #[test]
    fn sync_replaces_a_holder_s_state() {
        let t0 = Instant::now();
        let mut b = Budget::new(Limits {
            rate: 0.0,
            max_concurrent: 1,
        });
        b.acquire("A", "h", 1, 0);
        assert_eq!(b.poll(t0).len(), 1);
        // A says it only waits for 7 (1 ended, its release was lost).
        b.sync("A", &[("h".into(), 7, 0)], &[], t0);
        let g = b.poll(t0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].id, 7);
        // And that it holds 7 and waits for 8: 8 waits for the slot.
        b.sync("A", &[("h".into(), 8, 0)], &[("h".into(), 7)], t0);
        assert_eq!(b.poll(t0), []);
        b.release("A", "h", 7, None, t0);
        assert_eq!(b.poll(t0).len(), 1);
    }
}
