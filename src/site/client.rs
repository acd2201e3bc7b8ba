//! The HTTP client: timeout, user agent, per-host rate limit, bounded
//! concurrency, optional proxy, retries with exponential backoff and jitter.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::parse::{self, GuildPage, PlayerPage, PlayerRow, WorldStatus};
use super::selectors::Compiled;
use super::urls;
use super::{Clock, SiteError, SiteSettings};

/// Longest single backoff delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
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
    /// The site does not know the guild.
    pub unknown_guild: bool,
    /// Pages fetched.
    pub pages: usize,
}

/// The site client. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SiteClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: SiteSettings,
    selectors: Compiled,
    offset: FixedOffset,
    clock: Clock,
    permits: Semaphore,
    next_slot: Mutex<HashMap<String, Instant>>,
    requests: AtomicU64,
}

/// Delay before retry number `attempt` (0-based): `base × 2^attempt`, scaled
/// by `0.5 + 0.5 × r` (jitter, `r` in 0..1), at most 30 s.
pub fn backoff_delay(base: Duration, attempt: u32, r: f64) -> Duration {
    let factor = 2f64.powi(attempt.min(20) as i32);
    let full = base.as_secs_f64() * factor;
    let jittered = full * (0.5 + 0.5 * r.clamp(0.0, 1.0));
    Duration::from_secs_f64(jittered.min(MAX_BACKOFF.as_secs_f64()))
}

/// Whether an HTTP status is worth retrying: 5xx and 429.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

impl SiteClient {
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
        let mut builder = reqwest::Client::builder()
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
        Ok(SiteClient {
            inner: Arc::new(Inner {
                http,
                settings: settings.clone(),
                selectors,
                offset,
                clock,
                permits: Semaphore::new(settings.max_concurrent.max(1)),
                next_slot: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
            }),
        })
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

    async fn wait_rate_slot(&self, url: &str) {
        let rate = self.inner.settings.rate_limit;
        if rate <= 0.0 {
            return;
        }
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(|h| format!("{h}:{:?}", u.port())))
            .unwrap_or_default();
        let interval = Duration::from_secs_f64(1.0 / rate);
        let slot = {
            let mut map = self
                .inner
                .next_slot
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let next = map.entry(host).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    async fn attempt(&self, url: &str) -> Result<String, (SiteError, bool)> {
        self.wait_rate_slot(url).await;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| (SiteError::Client(e.to_string()), false))?;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let transport = |e: reqwest::Error| {
            let retry = e.is_timeout() || e.is_connect() || e.is_request() || e.is_body();
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            (
                SiteError::Transport {
                    url: url.to_string(),
                    message,
                },
                retry,
            )
        };
        let response = self.inner.http.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err((
                SiteError::Status {
                    url: url.to_string(),
                    status,
                },
                retryable_status(status),
            ));
        }
        response.text().await.map_err(transport)
    }

    /// GET a page as text, retrying 5xx, 429, timeouts and connection errors
    /// with exponential backoff and jitter.
    pub async fn get_text(&self, url: &str) -> Result<Fetched, SiteError> {
        let retries = self.inner.settings.retries;
        let mut attempt = 0u32;
        loop {
            match self.attempt(url).await {
                Ok(body) => {
                    return Ok(Fetched {
                        url: url.to_string(),
                        body,
                    });
                }
                Err((err, retry)) if retry && attempt < retries => {
                    let delay =
                        backoff_delay(self.inner.settings.retry_backoff, attempt, rand::random());
                    tracing::warn!(%url, attempt = attempt + 1, ?delay, error = %err, "request failed, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err((err, _)) => return Err(err),
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
        let mut out = GuildRanking::default();
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
            let GuildPage {
                rows,
                next,
                unknown_guild,
            } = parse::parse_guild(&page.body, &self.inner.selectors, &url)?;
            out.pages += 1;
            if unknown_guild && out.pages == 1 {
                out.unknown_guild = true;
                return Ok(out);
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
        let table: &[(u32, f64, u64)] = &[
            (0, 1.0, 100),
            (0, 0.0, 50),
            (1, 1.0, 200),
            (3, 1.0, 800),
            (3, 0.5, 600),
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
