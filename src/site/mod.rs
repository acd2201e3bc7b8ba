//! The ranking site: HTTP client, URLs, page parsing.
//!
//! - [`SiteClient`]: HTTP with retries, each request granted by the host's
//!   budget ([`Limiter`], [`crate::budget`]).
//! - [`parse`]: status, guild and player pages (pure functions, table-tested), read
//!   through the configurable [`Selectors`]; [`parse_player_details`]: every
//!   table of a player page (`/api/player-details/{name}`).
//! - [`explain`]: what every selector matched on the live pages
//!   (`scrape-once --explain`).
//! - [`Clock`]: "now", controllable by tests (status times are relative).

mod client;
mod clock;
pub mod explain;
pub mod limiter;
mod names;
pub mod parse;
mod player_tables;
pub mod retry_after;
mod selectors;
mod settings;
mod text;
mod urls;

pub use client::{Fetched, GuildRanking, SiteClient, backoff_delay, find_world, host_key};
pub use clock::Clock;
pub use limiter::Limiter;
pub use names::{MAX_PLAYER_NAME, check_player_name, player_key};
pub use parse::{GuildPage, GuildPageKind, PlayerDay, PlayerPage, PlayerRow, WorldStatus};
pub use player_tables::{PlayerDetails, parse_player_details};
pub use selectors::{
    Compiled, Css, DEFAULT_WORLD_PATTERN, Field, KEYS, RENAMED_KEYS, RETIRED_KEYS, SelectorProblem,
    Selectors, retired_key_problem,
};
pub use settings::{BudgetScope, SiteSettings};
pub use text::match_key;
pub use urls::{guild_url, player_url, resolve_next};

/// Errors of fetching or parsing a page.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// A required selector matched nothing.
    #[error(
        "selector site.selectors.{selector} matched nothing on {url} (layout changed? `worldpool scrape-once --explain` shows what each selector matches)"
    )]
    Layout {
        /// Config key and selector.
        selector: String,
        /// The page.
        url: String,
    },
    /// No guild page of a world has the ranking, and the world cannot be
    /// read as guilds the site does not know (it had rows before, or it
    /// has more than one guild).
    #[error(
        "site.selectors.{selector} (ranking_index = {index}) found the ranking on none of the guild pages of world `{world}` (e.g. {url}); {why}, so they are not read as unknown guilds (layout changed? `worldpool scrape-once --explain` shows what each selector matches)"
    )]
    NoRanking {
        /// The world.
        world: String,
        /// Config key and selector.
        selector: String,
        /// `ranking_index`.
        index: usize,
        /// Why the pages cannot be unknown guilds.
        why: String,
        /// The first guild page without the ranking.
        url: String,
    },
    /// A cell held something we cannot read.
    #[error("cannot read {field} `{value}` on {url} (site.selectors.{field}; layout changed?)")]
    BadValue {
        /// What was being read.
        field: String,
        /// The cell text.
        value: String,
        /// The page.
        url: String,
    },
    /// The page ended before its closing marker.
    #[error("page {url} truncated: it lacks `{marker}` (site.selectors.complete_marker)")]
    Truncated {
        /// The page.
        url: String,
        /// The marker a complete page contains.
        marker: String,
    },
    /// The world is not on the status page.
    #[error("world `{world}` is not on the status page {url}")]
    UnknownWorld {
        /// The world.
        world: String,
        /// The status page.
        url: String,
    },
    /// An HTTP status that is not success (after retries when retryable).
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The page.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Network error, timeout, or a broken body (after retries).
    #[error("GET {url}: {message}")]
    Transport {
        /// The page.
        url: String,
        /// What failed.
        message: String,
    },
    /// A URL that cannot be built.
    #[error("bad URL {0}")]
    Url(String),
    /// Pagination ran in a loop or too long.
    #[error("pagination of {url} stopped: {reason}")]
    Pagination {
        /// First page.
        url: String,
        /// Why.
        reason: String,
    },
    /// The client could not be built (proxy, TLS).
    #[error("HTTP client: {0}")]
    Client(String),
}
