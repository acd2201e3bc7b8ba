//! The keys of `[site.selectors]`, each declared once: its documentation,
//! type, default, how it is compiled and the name it had before. The
//! [`selector_keys!`] table below makes the [`Selectors`] struct, its
//! defaults, [`KEYS`], [`RENAMED_KEYS`], the [`Compiled`] struct and
//! [`Selectors::compile`] from it.

use serde::Deserialize;

use super::compile::{Container, Index, Kind, Link, Marker, Pattern, Text, Value, Words};
use super::problems::SelectorProblem;

/// The default `world_pattern`.
pub const DEFAULT_WORLD_PATTERN: &str = r"(?i)^\s*(?P<world>.+?)\s*status";

/// A default as the table writes it (`"tr"`, `1`), in the key's type.
trait Written<T> {
    fn written(value: T) -> Self;
}

impl Written<&str> for String {
    fn written(value: &str) -> String {
        value.to_string()
    }
}

impl Written<usize> for usize {
    fn written(value: usize) -> usize {
        value
    }
}

/// Each row: `/// docs`, `key: Type = default, read as Kind` and, for a
/// key that had another name, `, formerly "old_name"`. The kind (in
/// [`super::compile`]) checks the value and makes what the parsers read.
macro_rules! selector_keys {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident: $ty:ty = $default:expr, read as $kind:ident $(($arg:expr))? $(, formerly $old:literal)?;
    )*) => {
        /// `[site.selectors]`, as written (defaults filled in).
        #[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
        #[serde(deny_unknown_fields, default)]
        pub struct Selectors {
            $(
                $(#[doc = $doc])*
                $(#[serde(alias = $old)])?
                pub $key: $ty,
            )*
        }

        impl Default for Selectors {
            fn default() -> Self {
                Selectors {
                    $($key: <$ty as Written<_>>::written($default),)*
                }
            }
        }

        /// Every key of `[site.selectors]`.
        pub const KEYS: [&str; [$(stringify!($key)),*].len()] = [$(stringify!($key)),*];

        /// Former names still read: (old, current).
        pub const RENAMED_KEYS: [(&str, &str); [$($(($old, stringify!($key)),)?)*].len()] =
            [$($(($old, stringify!($key)),)?)*];

        /// Selectors parsed once, ready for matching: each key as its kind
        /// reads it.
        #[derive(Debug, Clone)]
        pub struct Compiled {
            $(
                $(#[doc = $doc])*
                pub(crate) $key: <$kind as Kind>::Out,
            )*
            /// The source strings (for messages).
            pub source: Selectors,
        }

        impl Selectors {
            /// Parse every key; each problem names the key, says what is
            /// wrong in plain words with its position, and how to fix it.
            /// The problems come in the order of [`KEYS`].
            pub fn compile(&self) -> Result<Compiled, Vec<SelectorProblem>> {
                let defaults = Selectors::default();
                let mut problems = Vec::new();
                $(
                    let $key = Kind::compile(
                        &$kind $(($arg))?,
                        stringify!($key),
                        &self.$key,
                        &defaults.$key,
                        &mut problems,
                    );
                )*
                if !problems.is_empty() {
                    return Err(problems);
                }
                $(
                    let Some($key) = $key else {
                        return Err(vec![SelectorProblem::internal()]);
                    };
                )*
                Ok(Compiled {
                    $($key,)*
                    source: self.clone(),
                })
            }
        }
    };
}

selector_keys! {
    /// Status page: elements that may be a world's title.
    world_title: String = "th, td", read as Value;
    /// Status page: regex over a title's text; the named group `world` is
    /// the world's name. Titles it does not match are not titles.
    world_pattern: String = DEFAULT_WORLD_PATTERN, read as Pattern;
    /// Status page: one routine of a world (it belongs to the nearest world
    /// title before it in document order).
    routine_entry: String = "tr", read as Container;
    /// Status page, inside an entry: the routine's name.
    routine_name: String = "td:nth-child(1)", read as Value;
    /// Status page, inside an entry: the routine's last update time.
    routine_time: String = "td:nth-child(2)", read as Value;
    /// Status page, inside an entry: how far behind the routine is (`5
    /// min`), kept for `/api/status-data`.
    routine_lag: String = "td:nth-child(3)", read as Value;
    /// Status page, inside an entry: the site's word for the routine's
    /// state (`Atualizado`), kept for `/api/status-data`.
    routine_state: String = "td:nth-child(4)", read as Value;
    /// Status page: the routine whose time tells that the ranking was
    /// refreshed (matched by containment, ignoring case, whitespace, emoji
    /// and punctuation; compiled: normalized by [`super::match_key`]).
    routine: String = "Daily Raw Ranking",
        read as Words("the routine's name as the site shows it"), formerly "status_routine";
    /// Guild page: the ranking container; the ranking is the match number
    /// `ranking_index` (the matches before it are the vocation counts). A
    /// page without it is an unknown guild or a changed layout, told apart
    /// by the world's other guild pages (or by `unknown_guild`).
    ranking: String = "table.table-highscores", read as Container, formerly "ranking_table";
    /// Guild page: index (from 0) of the ranking among `ranking` matches.
    ranking_index: usize = 1, read as Index, formerly "ranking_table_index";
    /// Guild page, inside the ranking: one player's row.
    ranking_row: String = "tr", read as Container;
    /// Guild page: what marks the site's "not found" page, consulted only
    /// on a page without the ranking: a CSS selector (the page has such an
    /// element) or `text:WORDS` (the page's text contains WORDS, compared
    /// like `routine`). Empty (the default): no marker.
    unknown_guild: String = "", read as Marker;
    /// Guild page, inside a row: the rank.
    rank: String = "td.col-rank", read as Value;
    /// Guild page, inside a row: the player's name.
    name: String = "td.col-name a", read as Value;
    /// Guild page, inside a row: the vocation.
    vocation: String = "td.col-voc", read as Value;
    /// Guild page, inside a row: the level.
    level: String = "td.col-level", read as Value;
    /// Guild page, inside a row: the experience gained today.
    experience: String = "td.col-xp", read as Value;
    /// Any page: the link to the next page (its `href` unless `::attr(…)`
    /// names another attribute).
    next_page: String = "a[rel~=next], link[rel~=next]", read as Link;
    /// Any page: text every complete page contains (case-insensitive); a
    /// page without it was cut short. Empty disables the check.
    complete_marker: String = "</html>", read as Text;
    /// Player page: a table of days (the experience and online tables are
    /// told apart by their header words).
    player_table: String = "table", read as Container;
    /// Player page, inside a table: the header cells naming its columns,
    /// in column order.
    player_header: String = "th", read as Value;
    /// Player page, inside a table: one day's row (rows without cells,
    /// such as the header row, are skipped).
    player_row: String = "tr", read as Container;
    /// Player page, inside a row: the cells, in column order.
    player_cell: String = "td", read as Value;
    /// Player page: header words of the experience table's raw XP column.
    xp_column: String = "Raw XP no dia",
        read as Words("the column's header as the player page shows it");
    /// Player page: header words of the experience table's date column.
    xp_date_column: String = "Data",
        read as Words("the column's header as the player page shows it");
    /// Player page: header words of the online table's duration column.
    online_column: String = "Online time",
        read as Words("the column's header as the player page shows it");
    /// Player page: header words of the online table's date column.
    online_date_column: String = "Date",
        read as Words("the column's header as the player page shows it");
}
