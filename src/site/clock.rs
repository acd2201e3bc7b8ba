//! "Now", controllable by tests.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The wall clock, or a manual one that tests set and advance. Clones of a
/// manual clock share their time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A manual clock starting at `at`.
    pub fn manual(at: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Set a manual clock (no effect on the system clock).
    pub fn set(&self, at: DateTime<Utc>) {
        if let Clock::Manual(t) = self {
            *t.lock().unwrap_or_else(|e| e.into_inner()) = at;
        }
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: chrono::Duration) {
        if let Clock::Manual(t) = self {
            let mut g = t.lock().unwrap_or_else(|e| e.into_inner());
            *g += by;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let start = DateTime::from_timestamp(1_000_000, 0).expect("ts");
        let c = Clock::manual(start);
        let c2 = c.clone();
        c.advance(chrono::Duration::minutes(10));
        assert_eq!(c2.now(), start + chrono::Duration::minutes(10));
        c2.set(start);
        assert_eq!(c.now(), start);
    }
}
