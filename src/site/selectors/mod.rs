//! `[site.selectors]`: how the pages are read, with defaults that match the
//! real site. A redesign of the site is a config change, not a rebuild.
//!
//! The model (see `config/worlds.toml` for every key):
//!
//! - status page: `world_title` elements whose text matches `world_pattern`
//!   (a regex with a named group `world`) open a world block; every
//!   `routine_entry` element belongs to the nearest world title before it in
//!   document order, and holds a `routine_name` and a `routine_time`. The
//!   entry whose name contains `routine` (compared case-insensitively,
//!   ignoring whitespace, emoji and punctuation) gives the world's update
//!   time; the first such entry of a block wins.
//! - guild page: the `ranking` container number `ranking_index` (from 0)
//!   among its matches holds `ranking_row` rows; each row holds `rank`,
//!   `name`, `vocation`, `level` and `experience`; `next_page` links to the
//!   next page. A complete page without the ranking is the site's "not
//!   found" page when it matches `unknown_guild` (a selector, or
//!   `text:WORDS`); otherwise the world's other guild pages decide
//!   ([`crate::scrape::classify_guild_pages`]).
//! - player page (watched players): every `player_table` is a table of
//!   days; its `player_header` cells name its columns. The experience table
//!   is the one with a header containing `xp_column` (its date column is
//!   the header containing `xp_date_column`), the online table the one with
//!   `online_column` (dates under `online_date_column`); header words are
//!   compared like `routine`. Each `player_row` holding `player_cell`s is a
//!   day; a column's value is the cell at its header's position.
//!
//! A value key may read an attribute instead of the text:
//! `"span.xp::attr(data-value)"`. [`Selectors::compile`] checks every key and
//! reports each problem in plain words with its position.
//!
//! The files: `schema` declares every key once (struct, defaults, key
//! lists, compiled form, retired keys); `compile` says how each kind of key
//! is checked and compiled; `css` is the CSS matcher; `problems` the
//! diagnostics.

mod compile;
mod css;
mod problems;
mod schema;

pub use css::{Css, Field};
pub(crate) use css::{attr_of, walk_elements};
pub use problems::SelectorProblem;
pub use schema::{
    Compiled, DEFAULT_WORLD_PATTERN, KEYS, RENAMED_KEYS, RETIRED_KEYS, Selectors,
    retired_key_problem,
};
