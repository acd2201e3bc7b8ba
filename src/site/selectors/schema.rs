//! The keys of `[site.selectors]`, each declared once: its documentation,
//! type, default, how it is compiled and the name it had before. The
//! [`selector_keys!`] table below makes the [`Selectors`] struct, its
//! defaults, [`KEYS`], [`RENAMED_KEYS`], the [`Compiled`] struct and
//! [`Selectors::compile`] from it. The retired keys, no longer read, are
//! here too ([`RETIRED_KEYS`]), each with what replaces it.

use serde::Deserialize;

use super::compile::{Container, Index, Kind, Link, Marker, Pattern, Text, Value, Words};
use super::css::Field;
use super::problems::{SelectorProblem, toml_quote};

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

impl Compiled {
    /// The cells of a ranking row: name, rank, vocation, level, experience.
    pub(crate) fn cells(&self) -> [&Field; 5] {
        [
            &self.name,
            &self.rank,
            &self.vocation,
            &self.level,
            &self.experience,
        ]
    }

    /// Whether the row and all five cells have fast matchers.
    pub(crate) fn fast_rows(&self) -> bool {
        self.ranking_row.fast.is_some() && self.cells().iter().all(|c| c.css.fast.is_some())
    }
}

/// Keys of `[site.selectors]` that existed before the current model, and
/// what replaces each. `ranking_table`, `ranking_table_index` and
/// `status_routine` are still read (as `ranking`, `ranking_index` and
/// `routine`); these are not.
pub const RETIRED_KEYS: [&str; 4] = [
    "status_row",
    "status_cell",
    "status_title_suffix",
    "name_link",
];

/// A retired key found in a config, with the replacement to write.
pub fn retired_key_problem(key: &str, value: &str, current: &Selectors) -> SelectorProblem {
    let q = |s: &str| toml_quote(s);
    let (message, fix) = match key {
        "status_row" => (
            "is retired: a world block is now a title plus the routine entries after it"
                .to_string(),
            format!(
                "write routine_entry = {} (the element of one routine) and world_title = {} (the element holding \"<World> Status\")",
                q(value),
                q(&current.world_title)
            ),
        ),
        "status_cell" => (
            "is retired: the cells are now named one by one".to_string(),
            format!(
                "write world_title = {}, routine_name = {} and routine_time = {} (sub-selectors inside routine_entry)",
                q(value),
                q(&current.routine_name),
                q(&current.routine_time)
            ),
        ),
        "status_title_suffix" => {
            let word = value.trim();
            let pattern = format!(r"(?i)^\s*(?P<world>.+?)\s*{}", regex::escape(word));
            (
                "is retired: the world name is now extracted by a pattern, since the title carries labels and markup around it".to_string(),
                format!("write world_pattern = {}", q(&pattern)),
            )
        }
        _ => {
            // name_link
            let combined = format!("{} {}", current.name.trim(), value.trim());
            (
                "is retired: name reads the element that holds the name directly".to_string(),
                format!(
                    "write name = {} (the link inside the name cell)",
                    q(&combined)
                ),
            )
        }
    };
    SelectorProblem {
        key: key.to_string(),
        message,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn retired_keys_name_their_replacement() {
        let s = Selectors::default();
        for (key, value, want) in [
            ("status_row", "tr", "routine_entry = \"tr\""),
            ("status_cell", "th, td", "world_title = \"th, td\""),
            ("status_title_suffix", " Status", "world_pattern = "),
            ("name_link", "a", "name = "),
        ] {
            let p = retired_key_problem(key, value, &s);
            assert_eq!(p.key, key);
            assert!(p.fix.contains(want), "{key}: {}", p.fix);
        }
        let p = retired_key_problem(
            "name_link",
            "a",
            &Selectors {
                name: "td.col-name".into(),
                ..Selectors::default()
            },
        );
        assert!(p.fix.contains("name = \"td.col-name a\""), "{}", p.fix);
        let p = retired_key_problem("status_title_suffix", " Status", &s);
        let pattern = p.fix.trim_start_matches("write world_pattern = ");
        let pattern: String = toml::from_str::<toml::Table>(&format!("p = {pattern}"))
            .expect("a TOML string")["p"]
            .as_str()
            .expect("str")
            .to_string();
        let re = Regex::new(&pattern).expect("the suggested pattern is valid");
        assert_eq!(
            &re.captures("Aurera Status").expect("matches")["world"],
            "Aurera"
        );
    }
}
