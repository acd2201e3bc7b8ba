//! `[site]`, typed: what the client, the parsers and the scrape loop need
//! to know about the site. Read and validated by [`crate::config`].

use std::time::Duration;

use super::Selectors;

/// `[site]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSettings {
    /// Base URL, e.g. `https://example.org`.
    pub base_url: String,
    /// Status page path.
    pub status_path: String,
    /// Guild page path template with `{guild}` and `{world}`.
    pub guild_path: String,
    /// Player page path template with `{name}` (and optionally `{world}`).
    pub player_path: String,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Largest page body read, after decompression; a larger one fails
    /// the request (and is not retried).
    pub max_page_size: u64,
    /// Requests per second per host (0 = unlimited), for the whole pool
    /// (or per worker process with [`BudgetScope::Worker`]).
    pub rate_limit: f64,
    /// Requests in flight at once per host, for the whole pool (or per
    /// worker process with [`BudgetScope::Worker`]).
    pub max_concurrent: usize,
    /// User-Agent header.
    pub user_agent: String,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First retry delay (doubles per retry, with jitter).
    pub retry_backoff: Duration,
    /// Optional proxy URL.
    pub proxy: Option<String>,
    /// Time between status checks.
    pub poll_interval: Duration,
    /// Random extra up to this fraction of `poll_interval`.
    pub poll_jitter: f64,
    /// Whether `rate_limit` and `max_concurrent` hold for the pool or for
    /// each worker process.
    pub budget: BudgetScope,
    /// The site's UTC offset in minutes (UTC-3 = -180).
    pub utc_offset_minutes: i32,
    /// Local time of the daily reset, minutes after midnight.
    pub reset_minutes: u32,
    /// CSS selectors.
    pub selectors: Selectors,
}

/// Who shares `[site] rate_limit` and `max_concurrent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    /// The whole pool: the supervisor owns the budget and leases it.
    Pool,
    /// Each worker process on its own (worldpool before the shared budget).
    Worker,
}
