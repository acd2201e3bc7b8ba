//! A clock that keeps counting while the machine is suspended
//! (`CLOCK_BOOTTIME`): a node that slept through its leases' end must not
//! believe it still holds them (`Instant` is `CLOCK_MONOTONIC`, which
//! stops during suspend).

use std::time::Duration;

/// A point on `CLOCK_BOOTTIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// Now.
    pub fn now() -> BootInstant {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists
        // on every Linux this runs on (2.6.39+). On failure `ts` stays 0
        // and the caller sees time stand still, which only makes leases
        // expire early.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if rc != 0 {
            return BootInstant(Duration::ZERO);
        }
        BootInstant(
            Duration::from_secs(u64::try_from(ts.tv_sec).unwrap_or(0))
                + Duration::from_nanos(u64::try_from(ts.tv_nsec).unwrap_or(0)),
        )
    }

    /// `self + d`.
    pub fn plus(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }

    /// How long from now until `self` (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_sub(BootInstant::now().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_moves_forward() {
        let a = BootInstant::now();
        std::thread::yield_now();
        let b = BootInstant::now();
        assert!(b >= a);
        assert!(a > BootInstant(Duration::ZERO), "CLOCK_BOOTTIME reads");
        assert!(a.plus(Duration::from_secs(3600)).remaining() > Duration::from_secs(3500));
    }
}
