//! What the demo site saw: every request's arrival time and path, the
//! requests in flight, and the `429 Too Many Requests` fault. A middleware
//! over the site's pages (not the `/_…` control routes), so every page,
//! present or future, is counted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Most arrivals kept (older ones are dropped; counts stay exact).
const MAX_ARRIVALS: usize = 1_000_000;

/// One request as the site saw it arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// When it arrived.
    pub at: Instant,
    /// Its path (no query).
    pub path: String,
    /// Path and query.
    pub uri: String,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Counter {
    arrivals: Mutex<Vec<Arrival>>,
    by_path: Mutex<BTreeMap<String, u64>>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    /// `(answers left, Retry-After value, only this path)`.
    too_many: Mutex<Option<(u32, String, Option<String>)>>,
    too_many_sent: Mutex<Vec<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counter {
    /// Answer the next `times` page requests (of `path` only, when given)
    /// with 429 and this `Retry-After` value (seconds or an HTTP date).
    pub fn set_too_many(&self, times: u32, retry_after: String, path: Option<String>) {
        *lock(&self.too_many) = (times > 0).then_some((times, retry_after, path));
    }

    /// Forget every count (the fault stays).
    pub fn reset(&self) {
        lock(&self.arrivals).clear();
        lock(&self.by_path).clear();
        lock(&self.too_many_sent).clear();
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Requests per path since the start (or the last reset).
    pub fn by_path(&self) -> BTreeMap<String, u64> {
        lock(&self.by_path).clone()
    }

    /// Every arrival, oldest first.
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.arrivals).clone()
    }

    /// When each 429 was answered.
    pub fn too_many_sent(&self) -> Vec<Instant> {
        lock(&self.too_many_sent).clone()
    }

    /// Most requests in flight at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// Most requests that arrived within any window of `window` (sliding,
    /// not calendar seconds).
    pub fn peak_in_window(&self, window: Duration) -> u64 {
        let times: Vec<Instant> = lock(&self.arrivals).iter().map(|a| a.at).collect();
        peak_in_window(&times, window)
    }

    fn take_too_many(&self, path: &str) -> Option<String> {
        let mut f = lock(&self.too_many);
        let (left, value, only) = f.as_mut()?;
        if only.as_deref().is_some_and(|p| p != path) {
            return None;
        }
        *left -= 1;
        let value = value.clone();
        if *left == 0 {
            *f = None;
        }
        Some(value)
    }
}

/// Most of `times` (sorted) within any half-open window `[t, t + window)`.
pub fn peak_in_window(times: &[Instant], window: Duration) -> u64 {
    let mut start = 0;
    let mut best = 0;
    for (end, t) in times.iter().enumerate() {
        while t.saturating_duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best as u64
}

struct InFlight<'a>(&'a Counter);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware: count, then answer 429 when asked to, else serve.
pub async fn count(
    State(counter): State<std::sync::Arc<Counter>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_") {
        return next.run(req).await;
    }
    let now = Instant::now();
    {
        let mut arrivals = lock(&counter.arrivals);
        if arrivals.len() >= MAX_ARRIVALS {
            arrivals.drain(..MAX_ARRIVALS / 2);
        }
        arrivals.push(Arrival {
            at: now,
            path: path.clone(),
            uri: req.uri().to_string(),
        });
    }
    let n = counter.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    counter.peak_in_flight.fetch_max(n, Ordering::Relaxed);
    let _guard = InFlight(&counter);
    let too_many = counter.take_too_many(&path);
    *lock(&counter.by_path).entry(path).or_insert(0) += 1;
    if let Some(retry_after) = too_many {
        lock(&counter.too_many_sent).push(Instant::now());
        let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        if let Ok(v) = HeaderValue::from_str(&retry_after) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_peaks() {
        let t0 = Instant::now();
        let at = |ms: &[u64]| -> Vec<Instant> {
            ms.iter().map(|m| t0 + Duration::from_millis(*m)).collect()
        };
        let s = Duration::from_secs(1);
        assert_eq!(peak_in_window(&[], s), 0);
        assert_eq!(peak_in_window(&at(&[0]), s), 1);
        // Calendar seconds would say 2 and 2; a sliding window sees 3.
        assert_eq!(peak_in_window(&at(&[900, 950, 1_100, 1_999]), s), 3);
        // Exactly one second apart: not in the same window.
        assert_eq!(peak_in_window(&at(&[0, 1_000, 2_000]), s), 1);
        let spaced: Vec<u64> = (0..100).map(|i| i * 50).collect();
        assert_eq!(peak_in_window(&at(&spaced), s), 20);
    }
}
