//! The HTTP client: timeout, user agent, optional proxy, retries with
//! exponential backoff and jitter (the pool's own formula) that honour
//! `Retry-After`. Every request first gets a grant from the host's budget
//! ([`Limiter`]): the rate limit, the concurrency, a `Retry-After` pause
//! and AIMD, shared by the whole pool when the process is a pool worker.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};

use super::limiter::Limiter;
use super::parse::{self, GuildPage, GuildPageKind, PlayerPage, PlayerRow, WorldStatus};
use super::selectors::Compiled;
use super::urls;
use super::{Clock, SiteError, SiteSettings};
use crate::budget::{Feedback, Limits};

/// Longest single backoff delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait a `Retry-After` makes one request do before its retry.
const MAX_RETRY_AFTER: Duration = crate::budget::host::MAX_PAUSE;

/// The budget's key of a URL: `host:port` (the scheme's port when none
/// is written).
pub fn host_key(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port_or_known_default() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .unwrap_or_default()
}
/// Most pages followed through `rel="next"` for one guild.
const MAX_PAGES: usize = 200;

/// A page body and the URL it came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final URL.
    pub url: String,
    /// Body text.
    pub body: String,
}

/// One guild's ranking, all pages followed.
#[derive(Debug, Clone, Default)]
pub struct GuildRanking {
    /// Rows of every page, each name once, in page order.
    pub rows: Vec<PlayerRow>,
    /// What the first page shows (a page after it without the ranking is
    /// an error).
    pub kind: GuildPageKind,
    /// The first page's URL.
    pub url: String,
    /// Pages fetched.
    pub pages: usize,
}

/// The site client. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SiteClient {
    inner: Arc<Inner>,
    /// Priority of this handle's requests in the budget's queue.
    priority: i32,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: SiteSettings,
    selectors: Compiled,
    offset: FixedOffset,
    clock: Clock,
    limiter: Limiter,
    requests: AtomicU64,
}

/// Delay before retry number `attempt` (0-based): `base × 2^attempt`,
/// scaled by `0.5 + r` (jitter, `r` in 0..1), at most 30 s. The pool's
/// restart backoff ([`pool::decide::backoff_delay`]) with multiplier 2 and
/// jitter ±50 %: one formula for both.
pub fn backoff_delay(base: Duration, attempt: u32, r: f64) -> Duration {
    let policy = pool::Backoff {
        initial: base,
        multiplier: 2.0,
        max: MAX_BACKOFF,
        jitter: 0.5,
    };
    pool::decide::backoff_delay(&policy, attempt.saturating_add(1), r)
}

/// Why one attempt failed: the error, whether to retry, and what to tell
/// the budget.
struct AttemptError {
    error: SiteError,
    retry: bool,
    retry_after: Option<Duration>,
    feedback: Feedback,
}

/// Whether an HTTP status is worth retrying: 5xx and 429.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// Why a page's body was not read.
enum BodyError {
    Transport(reqwest::Error),
    /// Larger than this many bytes (`[site] max_page_size`).
    TooLarge(u64),
}

/// The charset a `Content-Type` names (`text/html; charset=iso-8859-1`).
fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    })
}

impl SiteClient {
    /// The body as text, decoded by its charset (UTF-8 by default), read
    /// up to `[site] max_page_size` bytes after decompression: a page, or
    /// a compressed bomb, larger than that is refused, not buffered.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<String, BodyError> {
        let limit = self.inner.settings.max_page_size;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge(limit));
        }
        let encoding = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(charset)
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(BodyError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(encoding.decode(&body).0.into_owned())
    }

    /// Build a client from `[site]`, with the system clock.
    pub fn new(settings: &SiteSettings) -> Result<SiteClient, SiteError> {
        SiteClient::with_clock(settings, Clock::System)
    }

    /// Build a client from `[site]` with a given clock.
    pub fn with_clock(settings: &SiteSettings, clock: Clock) -> Result<SiteClient, SiteError> {
        let selectors = settings.selectors.compile().map_err(|problems| {
            SiteError::Client(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        // Redirects stay on the site's origin: a hostile answer must not
        // send the worker anywhere else (refused ones are logged with the
        // URL by the request's error).
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let origin = attempt.previous().first().map(|u| u.origin());
            if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else if origin.is_some_and(|o| o != attempt.url().origin()) {
                let to = attempt.url().to_string();
                attempt.error(format!("redirect to another site ({to}) refused"))
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(redirects)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .user_agent(settings.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(settings.max_concurrent);
        builder = match &settings.proxy {
            Some(p) => builder.proxy(
                reqwest::Proxy::all(p.as_str())
                    .map_err(|e| SiteError::Client(format!("proxy {p}: {e}")))?,
            ),
            // Only the configured proxy, never one from the environment.
            None => builder.no_proxy(),
        };
        let http = builder
            .build()
            .map_err(|e| SiteError::Client(e.to_string()))?;
        let offset = FixedOffset::east_opt(settings.utc_offset_minutes * 60)
            .ok_or_else(|| SiteError::Client("utc_offset out of range".into()))?;
        let limiter = Limiter::installed().unwrap_or_else(|| {
            Limiter::local(Limits {
                rate: settings.rate_limit,
                max_concurrent: settings.max_concurrent,
            })
        });
        Ok(SiteClient {
            inner: Arc::new(Inner {
                http,
                settings: settings.clone(),
                selectors,
                offset,
                clock,
                limiter,
                requests: AtomicU64::new(0),
            }),
            priority: 0,
        })
    }

    /// The same client whose requests have `priority` in the budget's
    /// queue (higher goes first).
    pub fn with_priority(&self, priority: i32) -> SiteClient {
        SiteClient {
            inner: self.inner.clone(),
            priority,
        }
    }

    /// The compiled `[site.selectors]`.
    pub fn selectors(&self) -> &Compiled {
        &self.inner.selectors
    }

    /// Concurrent requests allowed (`[site] max_concurrent`).
    pub fn max_concurrent(&self) -> usize {
        self.inner.settings.max_concurrent.max(1)
    }

    /// The site's UTC offset.
    pub fn offset(&self) -> FixedOffset {
        self.inner.offset
    }

    /// The clock used for relative times.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// HTTP requests sent so far (attempts, retries included).
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// URL of the status page.
    pub fn status_url(&self) -> Result<String, SiteError> {
        urls::join(
            &self.inner.settings.base_url,
            &self.inner.settings.status_path,
        )
    }

    /// URL of a guild's first page.
    pub fn guild_url(&self, world: &str, guild: &str) -> Result<String, SiteError> {
        urls::guild_url(
            &self.inner.settings.base_url,
            &self.inner.settings.guild_path,
            guild,
            world,
        )
    }

    /// URL of a player's page.
    pub fn player_url(&self, world: &str, name: &str) -> Result<String, SiteError> {
        urls::player_url(
            &self.inner.settings.base_url,
            &self.inner.settings.player_path,
            name,
            world,
        )
    }

    /// Fetch and parse a player's page (same rate limit, retries and
    /// concurrency limit as every other page).
    pub async fn player(&self, world: &str, name: &str) -> Result<PlayerPage, SiteError> {
        let url = self.player_url(world, name)?;
        let page = self.get_text(&url).await?;
        parse::parse_player(&page.body, &self.inner.selectors, &url)
    }

    async fn attempt(&self, url: &str) -> Result<String, AttemptError> {
        let transport = |e: reqwest::Error| {
            let retry = e.is_timeout() || e.is_connect() || e.is_request() || e.is_body();
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            AttemptError {
                error: SiteError::Transport {
                    url: url.to_string(),
                    message,
                },
                retry,
                retry_after: None,
                feedback: Feedback {
                    failed: true,
                    ..Feedback::default()
                },
            }
        };
        let response = self.inner.http.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = if status == 429 || status == 503 {
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| super::retry_after::parse(v, std::time::SystemTime::now()))
            } else {
                None
            };
            return Err(AttemptError {
                error: SiteError::Status {
                    url: url.to_string(),
                    status,
                },
                retry: retryable_status(status),
                retry_after,
                feedback: Feedback {
                    status: Some(status),
                    retry_after_ms: retry_after
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    failed: false,
                },
            });
        }
        self.read_body(response).await.map_err(|e| match e {
            BodyError::Transport(e) => {
                let mut err = transport(e);
                err.feedback.status = Some(status);
                err
            }
            BodyError::TooLarge(limit) => {
                tracing::warn!(url, limit, "page refused: larger than [site] max_page_size");
                AttemptError {
                    error: SiteError::Transport {
                        url: url.to_string(),
                        message: format!(
                            "the page is larger than {limit} bytes ([site] max_page_size)"
                        ),
                    },
                    retry: false,
                    retry_after: None,
                    feedback: Feedback::status(status),
                }
            }
        })
    }

    /// One attempt under a grant of the host's budget.
    async fn granted_attempt(&self, url: &str, host: &str) -> Result<String, AttemptError> {
        let lease = self
            .inner
            .limiter
            .acquire(host, self.priority)
            .await
            .map_err(|e| AttemptError {
                error: SiteError::Client(e.to_string()),
                retry: false,
                retry_after: None,
                feedback: Feedback::default(),
            })?;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let result = self.attempt(url).await;
        lease.finish(match &result {
            Ok(_) => Feedback::status(200),
            Err(e) => e.feedback,
        });
        result
    }

    /// GET a page as text, retrying 5xx, 429, timeouts and connection errors
    /// with exponential backoff and jitter; a 429 or 503 with `Retry-After`
    /// waits that long instead (and pauses the host's whole budget).
    pub async fn get_text(&self, url: &str) -> Result<Fetched, SiteError> {
        let retries = self.inner.settings.retries;
        let host = host_key(url);
        let mut attempt = 0u32;
        loop {
            match self.granted_attempt(url, &host).await {
                Ok(body) => {
                    return Ok(Fetched {
                        url: url.to_string(),
                        body,
                    });
                }
                Err(e) if e.retry && attempt < retries => {
                    let delay = e
                        .retry_after
                        .map(|d| d.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| {
                            backoff_delay(
                                self.inner.settings.retry_backoff,
                                attempt,
                                rand::random(),
                            )
                        });
                    tracing::warn!(%url, attempt = attempt + 1, ?delay, retry_after = ?e.retry_after, error = %e.error, "request failed, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    /// Fetch and parse the status page.
    pub async fn status(&self) -> Result<Vec<WorldStatus>, SiteError> {
        let url = self.status_url()?;
        let page = self.get_text(&url).await?;
        parse::parse_status(
            &page.body,
            &self.inner.selectors,
            &url,
            self.inner.clock.now(),
            self.inner.offset,
        )
    }

    /// The `Daily Raw Ranking` time of one world (names compared
    /// case-insensitively).
    pub async fn world_update_time(&self, world: &str) -> Result<DateTime<FixedOffset>, SiteError> {
        let all = self.status().await?;
        find_world(&all, world)
            .map(|w| w.update_time)
            .ok_or_else(|| SiteError::UnknownWorld {
                world: world.to_string(),
                url: self.status_url().unwrap_or_default(),
            })
    }

    /// One guild's ranking, following `rel="next"` links: a page seen twice
    /// stops the walk (loop), a name seen on an earlier page is not repeated.
    pub async fn guild(&self, world: &str, guild: &str) -> Result<GuildRanking, SiteError> {
        let first = self.guild_url(world, guild)?;
        let mut url = first.clone();
        let mut visited = HashSet::new();
        let mut names = HashSet::new();
        let mut out = GuildRanking {
            url: first.clone(),
            ..GuildRanking::default()
        };
        loop {
            if !visited.insert(url.clone()) {
                tracing::warn!(%first, %url, "pagination loops back to a page already read; stopping");
                break;
            }
            if out.pages >= MAX_PAGES {
                return Err(SiteError::Pagination {
                    url: first,
                    reason: format!("more than {MAX_PAGES} pages"),
                });
            }
            let page = self.get_text(&url).await?;
            let GuildPage { rows, next, kind } =
                parse::parse_guild(&page.body, &self.inner.selectors, &url)?;
            out.pages += 1;
            if kind != GuildPageKind::Ranking {
                if out.pages == 1 {
                    // Unknown guild or changed layout: the world decides.
                    out.kind = kind;
                    return Ok(out);
                }
                // A next link to a page without the ranking.
                return Err(SiteError::Layout {
                    selector: self.inner.selectors.ranking.describe(),
                    url,
                });
            }
            for row in rows {
                if names.insert(row.name.clone()) {
                    out.rows.push(row);
                }
            }
            match next {
                Some(href) => url = urls::resolve_next(&url, &href)?,
                None => break,
            }
        }
        Ok(out)
    }

    /// Current time from the client's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }
}

/// Find a world on the status page: names compared ignoring case,
/// whitespace, emoji and punctuation; equal first, else the first title
/// that contains the name.
pub fn find_world<'a>(all: &'a [WorldStatus], world: &str) -> Option<&'a WorldStatus> {
    let want = super::match_key(world);
    if want.is_empty() {
        return None;
    }
    all.iter()
        .find(|w| super::match_key(&w.world) == want)
        .or_else(|| {
            all.iter()
                .find(|w| super::match_key(&w.world).contains(&want))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let base = Duration::from_millis(100);
        // base × 2^attempt × (0.5 + r), at most 30 s.
        let table: &[(u32, f64, u64)] = &[
            (0, 0.5, 100),
            (0, 0.0, 50),
            (0, 1.0, 150),
            (1, 0.5, 200),
            (3, 0.5, 800),
            (3, 0.75, 1_000),
            (30, 0.5, 30_000),
            (30, 1.0, 30_000),
        ];
        for (attempt, r, want_ms) in table {
            assert_eq!(
                backoff_delay(base, *attempt, *r).as_millis() as u64,
                *want_ms,
                "attempt {attempt} r {r}"
            );
        }
    }

    #[test]
    fn the_site_backoff_is_the_pool_s_formula() {
        let base = Duration::from_millis(70);
        for attempt in 0..8 {
            for r in [0.0, 0.3, 0.99] {
                let pool = pool::decide::backoff_delay(
                    &pool::Backoff {
                        initial: base,
                        multiplier: 2.0,
                        max: MAX_BACKOFF,
                        jitter: 0.5,
                    },
                    attempt + 1,
                    r,
                );
                assert_eq!(backoff_delay(base, attempt, r), pool);
            }
        }
    }

    #[test]
    fn host_keys_carry_the_port() {
        for (url, key) in [
            ("http://127.0.0.1:8080/status", "127.0.0.1:8080"),
            ("https://example.org/guild.php?x=1", "example.org:443"),
            ("http://example.org/", "example.org:80"),
            ("not a url", ""),
        ] {
            assert_eq!(host_key(url), key, "{url}");
        }
    }

    #[test]
    fn which_statuses_retry() {
        for (status, retry) in [
            (500, true),
            (502, true),
            (503, true),
            (429, true),
            (404, false),
            (403, false),
            (400, false),
        ] {
            assert_eq!(retryable_status(status), retry, "{status}");
        }
    }
}
