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

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Selector};
use serde::Deserialize;

/// `[site.selectors]`, as written (defaults filled in).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Selectors {
    /// Status page: elements that may be a world's title.
    pub world_title: String,
    /// Status page: regex over a title's text; the named group `world` is
    /// the world's name. Titles it does not match are not titles.
    pub world_pattern: String,
    /// Status page: one routine of a world (it belongs to the nearest world
    /// title before it in document order).
    pub routine_entry: String,
    /// Status page, inside an entry: the routine's name.
    pub routine_name: String,
    /// Status page, inside an entry: the routine's last update time.
    pub routine_time: String,
    /// Status page, inside an entry: how far behind the routine is (`5
    /// min`), kept for `/api/status-data`.
    pub routine_lag: String,
    /// Status page, inside an entry: the site's word for the routine's
    /// state (`Atualizado`), kept for `/api/status-data`.
    pub routine_state: String,
    /// Status page: the routine whose time tells that the ranking was
    /// refreshed (matched by containment, ignoring case, whitespace, emoji
    /// and punctuation).
    #[serde(alias = "status_routine")]
    pub routine: String,
    /// Guild page: the ranking container; the ranking is the match number
    /// `ranking_index` (the matches before it are the vocation counts). A
    /// page without it is an unknown guild or a changed layout, told apart
    /// by the world's other guild pages (or by `unknown_guild`).
    #[serde(alias = "ranking_table")]
    pub ranking: String,
    /// Guild page: index (from 0) of the ranking among `ranking` matches.
    #[serde(alias = "ranking_table_index")]
    pub ranking_index: usize,
    /// Guild page, inside the ranking: one player's row.
    pub ranking_row: String,
    /// Guild page: what marks the site's "not found" page, consulted only
    /// on a page without the ranking: a CSS selector (the page has such an
    /// element) or `text:WORDS` (the page's text contains WORDS, compared
    /// like `routine`). Empty (the default): no marker.
    pub unknown_guild: String,
    /// Guild page, inside a row: the rank.
    pub rank: String,
    /// Guild page, inside a row: the player's name.
    pub name: String,
    /// Guild page, inside a row: the vocation.
    pub vocation: String,
    /// Guild page, inside a row: the level.
    pub level: String,
    /// Guild page, inside a row: the experience gained today.
    pub experience: String,
    /// Any page: the link to the next page (its `href` unless `::attr(…)`
    /// names another attribute).
    pub next_page: String,
    /// Any page: text every complete page contains (case-insensitive); a
    /// page without it was cut short. Empty disables the check.
    pub complete_marker: String,
    /// Player page: a table of days (the experience and online tables are
    /// told apart by their header words).
    pub player_table: String,
    /// Player page, inside a table: the header cells naming its columns,
    /// in column order.
    pub player_header: String,
    /// Player page, inside a table: one day's row (rows without cells,
    /// such as the header row, are skipped).
    pub player_row: String,
    /// Player page, inside a row: the cells, in column order.
    pub player_cell: String,
    /// Player page: header words of the experience table's raw XP column.
    pub xp_column: String,
    /// Player page: header words of the experience table's date column.
    pub xp_date_column: String,
    /// Player page: header words of the online table's duration column.
    pub online_column: String,
    /// Player page: header words of the online table's date column.
    pub online_date_column: String,
}

/// The default `world_pattern`.
pub const DEFAULT_WORLD_PATTERN: &str = r"(?i)^\s*(?P<world>.+?)\s*status";

impl Default for Selectors {
    fn default() -> Self {
        Selectors {
            world_title: "th, td".to_string(),
            world_pattern: DEFAULT_WORLD_PATTERN.to_string(),
            routine_entry: "tr".to_string(),
            routine_name: "td:nth-child(1)".to_string(),
            routine_time: "td:nth-child(2)".to_string(),
            routine_lag: "td:nth-child(3)".to_string(),
            routine_state: "td:nth-child(4)".to_string(),
            routine: "Daily Raw Ranking".to_string(),
            ranking: "table.table-highscores".to_string(),
            ranking_index: 1,
            ranking_row: "tr".to_string(),
            unknown_guild: String::new(),
            rank: "td.col-rank".to_string(),
            name: "td.col-name a".to_string(),
            vocation: "td.col-voc".to_string(),
            level: "td.col-level".to_string(),
            experience: "td.col-xp".to_string(),
            next_page: "a[rel~=next], link[rel~=next]".to_string(),
            complete_marker: "</html>".to_string(),
            player_table: "table".to_string(),
            player_header: "th".to_string(),
            player_row: "tr".to_string(),
            player_cell: "td".to_string(),
            xp_column: "Raw XP no dia".to_string(),
            xp_date_column: "Data".to_string(),
            online_column: "Online time".to_string(),
            online_date_column: "Date".to_string(),
        }
    }
}

/// Every key of `[site.selectors]`.
pub const KEYS: [&str; 27] = [
    "world_title",
    "world_pattern",
    "routine_entry",
    "routine_name",
    "routine_time",
    "routine_lag",
    "routine_state",
    "routine",
    "ranking",
    "ranking_index",
    "ranking_row",
    "unknown_guild",
    "rank",
    "name",
    "vocation",
    "level",
    "experience",
    "next_page",
    "complete_marker",
    "player_table",
    "player_header",
    "player_row",
    "player_cell",
    "xp_column",
    "xp_date_column",
    "online_column",
    "online_date_column",
];

/// Former names still read: (old, current).
pub const RENAMED_KEYS: [(&str, &str); 3] = [
    ("status_routine", "routine"),
    ("ranking_table", "ranking"),
    ("ranking_table_index", "ranking_index"),
];

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

fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One problem of `[site.selectors]` (key without the `site.selectors.`
/// prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorProblem {
    /// The key, e.g. `rank`.
    pub key: String,
    /// What is wrong, in plain words, with the position.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for SelectorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "site.selectors.{}: {} (fix: {})",
            self.key, self.message, self.fix
        )
    }
}

// ---------------------------------------------------------------------------
// The fast matcher: plain compound selectors joined by descendant or child
// combinators, matched by comparing names and attributes directly (the
// selector engine costs far more per element). Anything else falls back to
// the engine.

/// An attribute test of a [`Compound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttrTest {
    /// `[attr]`
    Exists,
    /// `[attr=value]`
    Equals(String),
    /// `[attr~=value]`: one of its space-separated words.
    Word(String),
}

/// `tag.class#id[attr~=word]…` (each part optional, at least one present,
/// or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compound {
    tag: Option<String>,
    classes: Vec<String>,
    attrs: Vec<(String, AttrTest, bool)>,
}

/// How two compounds of a chain relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    /// `a b`
    Descendant,
    /// `a > b`
    Child,
}

/// `c0 comb c1 comb c2 …`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    compounds: Vec<Compound>,
    /// `combinators[i]` joins `compounds[i]` and `compounds[i + 1]`.
    combinators: Vec<Combinator>,
}

/// A selector list of [`Chain`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher(Vec<Chain>);

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(s.len())
}

/// Attributes whose values HTML compares ASCII-case-insensitively (the ones a
/// scraper may plausibly test; the engine handles the rest of the list).
fn case_insensitive_attr(name: &str) -> bool {
    matches!(
        name,
        "rel" | "type" | "lang" | "dir" | "target" | "hreflang" | "media" | "method" | "align"
    )
}

fn parse_compound(text: &str) -> Option<Compound> {
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    let universal = rest.starts_with('*');
    let tag = if universal {
        rest = &rest[1..];
        None
    } else {
        let n = ident_len(rest);
        let tag = (n > 0).then(|| rest[..n].to_ascii_lowercase());
        rest = &rest[n..];
        tag
    };
    let mut classes = Vec::new();
    let mut attrs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_len(r);
            if n == 0 || r.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            classes.push(r[..n].to_string());
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('#') {
            let n = ident_len(r);
            if n == 0 || r.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            attrs.push((
                "id".to_string(),
                AttrTest::Equals(r[..n].to_string()),
                false,
            ));
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            let n = ident_len(inner);
            if n == 0 {
                return None;
            }
            let name = inner[..n].to_ascii_lowercase();
            let op = inner[n..].trim_start();
            let unquote = |v: &str| {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                (!v.is_empty() && !v.contains(['"', '\'', ' ', '\\', '[', ']']))
                    .then(|| v.to_string())
            };
            let test = if op.is_empty() {
                AttrTest::Exists
            } else if let Some(v) = op.strip_prefix("~=") {
                AttrTest::Word(unquote(v)?)
            } else if let Some(v) = op.strip_prefix('=') {
                AttrTest::Equals(unquote(v)?)
            } else {
                return None;
            };
            let ci = case_insensitive_attr(&name);
            attrs.push((name, test, ci));
        } else {
            return None;
        }
    }
    if !universal && tag.is_none() && classes.is_empty() && attrs.is_empty() {
        return None;
    }
    Some(Compound {
        tag,
        classes,
        attrs,
    })
}

/// Length of the compound at the start of `s` (up to whitespace or a
/// combinator outside brackets).
fn compound_len(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_whitespace() || matches!(c, '>' | '+' | '~' | ',')) => {
                return i;
            }
            _ => {}
        }
    }
    s.len()
}

fn parse_chain(text: &str) -> Option<Chain> {
    let mut rest = text.trim();
    let mut compounds = Vec::new();
    let mut combinators = Vec::new();
    loop {
        let n = compound_len(rest);
        if n == 0 {
            return None;
        }
        compounds.push(parse_compound(&rest[..n])?);
        rest = &rest[n..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        if let Some(r) = trimmed.strip_prefix('>') {
            combinators.push(Combinator::Child);
            rest = r.trim_start();
        } else if trimmed.len() < rest.len() {
            combinators.push(Combinator::Descendant);
            rest = trimmed;
        } else {
            return None;
        }
    }
    Some(Chain {
        compounds,
        combinators,
    })
}

/// An attribute's value, by comparing names directly: `Element::attr`
/// interns the name and `Element::has_class` interns every class of the
/// element on first use, which costs more than the whole match.
pub(crate) fn attr_of<'a>(el: &'a scraper::node::Element, name: &str) -> Option<&'a str> {
    el.attrs().find(|(n, _)| *n == name).map(|(_, v)| v)
}

impl Compound {
    fn matches(&self, el: &scraper::node::Element) -> bool {
        if self.tag.as_deref().is_some_and(|t| el.name() != t) {
            return false;
        }
        if !self.classes.is_empty() {
            let Some(class) = attr_of(el, "class") else {
                return false;
            };
            if !self
                .classes
                .iter()
                .all(|k| class.split_ascii_whitespace().any(|w| w == k))
            {
                return false;
            }
        }
        self.attrs
            .iter()
            .all(|(name, test, ci)| match (attr_of(el, name), test) {
                (None, _) => false,
                (Some(_), AttrTest::Exists) => true,
                (Some(v), AttrTest::Equals(want)) => {
                    if *ci {
                        v.eq_ignore_ascii_case(want)
                    } else {
                        v == want
                    }
                }
                (Some(v), AttrTest::Word(want)) => v.split_ascii_whitespace().any(|w| {
                    if *ci {
                        w.eq_ignore_ascii_case(want)
                    } else {
                        w == want
                    }
                }),
            })
    }
}

impl Chain {
    /// Whether `el` matches compounds `..=i` (right to left, backtracking
    /// over ancestors for descendant combinators).
    fn matches_upto(&self, i: usize, el: ElementRef<'_>) -> bool {
        if !self.compounds[i].matches(el.value()) {
            return false;
        }
        if i == 0 {
            return true;
        }
        match self.combinators[i - 1] {
            Combinator::Child => el
                .parent()
                .and_then(ElementRef::wrap)
                .is_some_and(|p| self.matches_upto(i - 1, p)),
            Combinator::Descendant => el
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| self.matches_upto(i - 1, a)),
        }
    }
}

impl Matcher {
    /// `Some` when `text` is a list of chains of plain compound selectors.
    pub(crate) fn parse(text: &str) -> Option<Matcher> {
        text.split(',')
            .map(parse_chain)
            .collect::<Option<Vec<_>>>()
            .map(Matcher)
    }

    /// Whether an element matches.
    pub(crate) fn matches(&self, el: ElementRef<'_>) -> bool {
        self.0
            .iter()
            .any(|c| c.matches_upto(c.compounds.len() - 1, el))
    }
}

// ---------------------------------------------------------------------------
// Compiled selectors.

/// A compiled CSS selector: the engine's, plus the fast matcher when the
/// selector is simple enough.
#[derive(Debug, Clone)]
pub struct Css {
    /// Config key.
    pub key: &'static str,
    /// The selector as written (without `::attr(…)`).
    pub text: String,
    pub(crate) selector: Selector,
    pub(crate) fast: Option<Matcher>,
}

impl Css {
    /// Whether an element matches.
    pub fn matches(&self, el: ElementRef<'_>) -> bool {
        match &self.fast {
            Some(m) => m.matches(el),
            None => self.selector.matches(&el),
        }
    }

    /// The elements under `scope` that match, in document order.
    pub fn select_in<'a>(&self, scope: ElementRef<'a>) -> Vec<ElementRef<'a>> {
        match &self.fast {
            Some(m) => {
                let mut out = Vec::new();
                walk_elements(scope, |e| {
                    if m.matches(e) {
                        out.push(e);
                    }
                    true
                });
                out
            }
            None => scope.select(&self.selector).collect(),
        }
    }

    /// The first element under `scope` that matches.
    pub fn first_in<'a>(&self, scope: ElementRef<'a>) -> Option<ElementRef<'a>> {
        match &self.fast {
            Some(m) => {
                let mut found = None;
                walk_elements(scope, |e| {
                    if found.is_none() && m.matches(e) {
                        found = Some(e);
                    }
                    found.is_none()
                });
                found
            }
            None => scope.select(&self.selector).next(),
        }
    }

    /// `key = "selector"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} = {:?}", self.key, self.text)
    }
}

/// A selector whose element gives a value: its text, or an attribute.
#[derive(Debug, Clone)]
pub struct Field {
    /// The element.
    pub css: Css,
    /// The attribute to read instead of the text.
    pub attr: Option<String>,
    /// The key's value as written.
    pub written: String,
}

impl Field {
    /// The value of a matched element: the attribute (trimmed), or the text
    /// with whitespace collapsed.
    pub fn value(&self, el: ElementRef<'_>) -> Option<String> {
        match &self.attr {
            Some(a) => attr_of(el.value(), a).map(|v| super::parse::clean_text(std::iter::once(v))),
            None => Some(super::parse::clean_text(el.text())),
        }
    }

    /// `key = "as written"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} = {:?}", self.css.key, self.written)
    }
}

/// Pre-order walk of the elements under `root` (not `root` itself);
/// `visit` returns whether to walk into the element's children.
pub(crate) fn walk_elements<'a>(
    root: ElementRef<'a>,
    mut visit: impl FnMut(ElementRef<'a>) -> bool,
) {
    let root_id = root.id();
    let mut cursor = root.first_child();
    while let Some(node) = cursor {
        let descend = ElementRef::wrap(node).is_some_and(&mut visit);
        cursor = descend.then(|| node.first_child()).flatten().or_else(|| {
            let mut n = node;
            loop {
                if let Some(sibling) = n.next_sibling() {
                    return Some(sibling);
                }
                match n.parent() {
                    Some(p) if p.id() != root_id => n = p,
                    _ => return None,
                }
            }
        });
    }
}

/// Selectors parsed once, ready for matching.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub(crate) world_title: Field,
    pub(crate) world_pattern: Regex,
    pub(crate) routine_entry: Css,
    pub(crate) routine_name: Field,
    pub(crate) routine_time: Field,
    pub(crate) routine_lag: Field,
    pub(crate) routine_state: Field,
    /// `routine`, normalized for containment.
    pub(crate) routine_key: String,
    pub(crate) ranking: Css,
    pub(crate) ranking_row: Css,
    /// `unknown_guild`, when set.
    pub(crate) unknown_guild: Option<NotFoundMarker>,
    /// name, rank, vocation, level, experience.
    pub(crate) cells: [Field; 5],
    /// All five cells and the row have fast matchers.
    pub(crate) fast_rows: bool,
    pub(crate) next_page: Field,
    /// Player page: tables, header cells, rows, cells.
    pub(crate) player_table: Css,
    pub(crate) player_header: Field,
    pub(crate) player_row: Css,
    pub(crate) player_cell: Field,
    /// Player page header words, normalized for containment: xp, xp date,
    /// online, online date.
    pub(crate) player_columns: [String; 4],
    /// The source strings (for messages).
    pub source: Selectors,
}

/// `unknown_guild`: what marks the site's "not found" page.
#[derive(Debug, Clone)]
pub(crate) enum NotFoundMarker {
    /// The page has an element matching this selector.
    Css(Css),
    /// The page's text contains these words (as [`match_key`] makes them).
    Text(String),
}

/// The prefix of an `unknown_guild` given as words rather than a selector.
pub(crate) const TEXT_MARKER_PREFIX: &str = "text:";

impl NotFoundMarker {
    /// Whether the page under `root` is the site's "not found" page.
    pub(crate) fn matches(&self, root: ElementRef<'_>) -> bool {
        match self {
            NotFoundMarker::Css(css) => css.first_in(root).is_some(),
            NotFoundMarker::Text(key) => {
                match_key(&super::parse::clean_text(root.text())).contains(key.as_str())
            }
        }
    }
}

/// Split `sel::attr(name)` into the selector and the attribute.
fn split_attr(text: &str) -> Result<(&str, Option<&str>), String> {
    let t = text.trim_end();
    let Some(at) = t.rfind("::attr(") else {
        return Ok((text, None));
    };
    let Some(inner) = t[at + 7..].strip_suffix(')') else {
        return Err(format!(
            "at character {}, \"::attr(\" is not closed by \")\" at the end",
            text[..at].chars().count() + 1
        ));
    };
    let name = inner.trim();
    if name.is_empty() || ident_len(name) != name.len() {
        return Err(format!(
            "at character {}, \"::attr({inner})\" needs an attribute name such as data-value",
            text[..at].chars().count() + 1
        ));
    }
    Ok((&t[..at], Some(name)))
}

/// Pseudo-classes the selector engine knows.
const PSEUDO_CLASSES: [&str; 18] = [
    "first-child",
    "last-child",
    "only-child",
    "root",
    "empty",
    "scope",
    "first-of-type",
    "last-of-type",
    "only-of-type",
    "nth-child",
    "nth-last-child",
    "nth-of-type",
    "nth-last-of-type",
    "not",
    "is",
    "where",
    "has",
    "any",
];

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '-' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// The first mistake in a selector that a reader would point at: its byte
/// offset and what is wrong, in plain words.
fn locate_selector_mistake(text: &str) -> Option<(usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut i = 0;
    let mut depth = 0usize; // parentheses
    let mut expect_compound = true; // at the start, after a comma or combinator
    let mut after_combinator: Option<usize> = None;
    while let Some(c) = at(i) {
        match c {
            '[' => {
                let start = i;
                let close = (i + 1..chars.len()).find(|&j| at(j) == Some(']'));
                let Some(close) = close else {
                    return Some((byte(start), "\"[\" is never closed by \"]\"".to_string()));
                };
                let inner: String = chars[i + 1..close].iter().map(|&(_, c)| c).collect();
                static ATTR: LazyLock<Regex> = LazyLock::new(|| {
                    Regex::new(
                        r#"^\s*[A-Za-z_-][A-Za-z0-9_-]*\s*(?:[~|^$*]?=\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:[iIsS]\s*)?)?$"#,
                    )
                    .expect("a constant, valid pattern")
                });
                if !ATTR.is_match(&inner) {
                    let what = if inner.trim().is_empty()
                        || !inner.trim_start().starts_with(is_ident_start)
                    {
                        "an attribute test \"[…]\" needs an attribute name first, e.g. [rel~=next] or [data-value]"
                    } else {
                        "an attribute test must read [name], [name=value], [name~=value] (also |= ^= $= *=), with a quoted value if it holds spaces"
                    };
                    return Some((byte(start), what.to_string()));
                }
                i = close + 1;
                expect_compound = false;
                after_combinator = None;
                continue;
            }
            ']' => return Some((byte(i), "\"]\" closes nothing".to_string())),
            '.' | '#' => {
                if !at(i + 1).is_some_and(is_ident_start) {
                    let what = if c == '.' {
                        "\".\" must be followed by a class name, e.g. td.col-xp"
                    } else {
                        "\"#\" must be followed by an id, e.g. div#ranking"
                    };
                    return Some((byte(i), what.to_string()));
                }
                expect_compound = false;
                after_combinator = None;
            }
            ':' => {
                let double = at(i + 1) == Some(':');
                let name_start = if double { i + 2 } else { i + 1 };
                let mut j = name_start;
                while at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                let name: String = chars[name_start..j].iter().map(|&(_, c)| c).collect();
                if name.is_empty() {
                    return Some((
                        byte(i),
                        "\":\" must be followed by a pseudo-class name, e.g. :nth-child(2)"
                            .to_string(),
                    ));
                }
                if double || !PSEUDO_CLASSES.contains(&name.to_ascii_lowercase().as_str()) {
                    return Some((
                        byte(i),
                        format!(
                            "{}{name} is not supported (use :nth-child(), :first-child, :not(), :has(), …; to read an attribute end the value with ::attr(name))",
                            if double { "::" } else { ":" }
                        ),
                    ));
                }
                expect_compound = false;
                after_combinator = None;
                i = j;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                if depth == 0 {
                    return Some((byte(i), "\")\" closes nothing".to_string()));
                }
                depth -= 1;
            }
            '>' | '+' | '~' => {
                if expect_compound && depth == 0 {
                    let what = if after_combinator.is_some() {
                        format!("two combinators in a row: \"{c}\" follows another")
                    } else {
                        format!("the combinator \"{c}\" has no selector before it")
                    };
                    return Some((byte(i), what));
                }
                expect_compound = true;
                after_combinator = Some(i);
            }
            ',' if depth == 0 => {
                if expect_compound {
                    return Some((
                        byte(i),
                        "a selector is missing before \",\" (two commas in a row, or a combinator before it?)"
                            .to_string(),
                    ));
                }
                expect_compound = true;
                after_combinator = None;
            }
            '{' | '}' | ';' | '@' | '!' | '"' | '\'' | '/' | '\\' | '$' | '%' | '&' | '=' | '^'
            | '?' | '<' => {
                return Some((
                    byte(i),
                    format!("\"{c}\" has no meaning in a CSS selector here"),
                ));
            }
            c if c.is_whitespace() => {}
            '*' => {
                expect_compound = false;
                after_combinator = None;
            }
            c if is_ident_char(c) => {
                expect_compound = false;
                after_combinator = None;
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        let open = (0..chars.len()).rev().find(|&j| at(j) == Some('('));
        return Some((
            byte(open.unwrap_or(0)),
            "\"(\" is never closed by \")\"".to_string(),
        ));
    }
    if expect_compound {
        let what = match after_combinator {
            Some(_) => "the selector ends with a combinator that has nothing after it",
            None => "the selector ends where a selector is expected (a trailing \",\"?)",
        };
        return Some((
            byte(after_combinator.unwrap_or(chars.len())),
            what.to_string(),
        ));
    }
    None
}

/// Plain words for a selector the engine refuses, with the position.
fn selector_error_words(text: &str) -> Option<String> {
    use selectors::parser::{ParseRelative, SelectorList};
    let mut parser = cssparser::Parser::new(text);
    let err = match SelectorList::<scraper::selector::Simple>::parse(
        &scraper::selector::Parser,
        &mut parser,
        ParseRelative::No,
    ) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let (offset, what) = locate_selector_mistake(text).unwrap_or_else(|| {
        // Not a mistake the scan knows: where the engine stopped, and its
        // reason in its own terms.
        let stopped = parser.position().byte_index().min(text.len());
        let reason = match err.kind {
            cssparser::ParseErrorKind::Basic(k) => k.to_string(),
            cssparser::ParseErrorKind::Custom(k) => format!("{k:?}"),
        };
        (
            stopped,
            format!("the selector cannot be read from here on ({reason})"),
        )
    });
    let mut cut = offset.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(format!(
        "at character {}, {what}",
        text[..cut].chars().count() + 1
    ))
}

/// Plain words for a regex error, with its position.
fn regex_error_words(pattern: &str) -> Option<String> {
    match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(e) => Some(format!(
            "at character {}, {}",
            e.span().start.column,
            e.kind()
        )),
        Ok(_) => match Regex::new(pattern) {
            Ok(_) => None,
            Err(regex::Error::Syntax(s)) => Some(
                s.lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .map(|l| l.trim_start_matches("error:").trim().to_string())
                    .unwrap_or(s),
            ),
            Err(e) => Some(e.to_string()),
        },
    }
}

/// Collapse to the comparison key of names: lowercase letters and digits
/// (and `,.:-`), everything else (whitespace, emoji, other punctuation)
/// dropped.
pub fn match_key(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ',' | '.' | ':' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl Selectors {
    /// Parse every key; each problem names the key, says what is wrong in
    /// plain words with its position, and how to fix it.
    pub fn compile(&self) -> Result<Compiled, Vec<SelectorProblem>> {
        let defaults = Selectors::default();
        let mut problems = Vec::new();
        let mut css = |key: &'static str, text: &str, default: &str| -> Option<Css> {
            let fix = format!(
                "write a CSS selector such as the default {}, or remove the key to use it",
                toml_quote(default)
            );
            if text.trim().is_empty() {
                problems.push(SelectorProblem {
                    key: key.to_string(),
                    message: "is empty".to_string(),
                    fix,
                });
                return None;
            }
            match Selector::parse(text) {
                Ok(selector) => Some(Css {
                    key,
                    text: text.to_string(),
                    selector,
                    fast: Matcher::parse(text),
                }),
                Err(e) => {
                    let words = selector_error_words(text)
                        .unwrap_or_else(|| format!("the selector engine refuses it ({e:?})"));
                    problems.push(SelectorProblem {
                        key: key.to_string(),
                        message: format!(
                            "{} is not a valid CSS selector: {words}",
                            toml_quote(text)
                        ),
                        fix,
                    });
                    None
                }
            }
        };
        let mut fields: Vec<Option<Field>> = Vec::new();
        let mut containers: Vec<Option<Css>> = Vec::new();
        let mut attr_problems = Vec::new();
        for (key, text, default, value) in [
            (
                "world_title",
                &self.world_title,
                &defaults.world_title,
                true,
            ),
            (
                "routine_entry",
                &self.routine_entry,
                &defaults.routine_entry,
                false,
            ),
            (
                "routine_name",
                &self.routine_name,
                &defaults.routine_name,
                true,
            ),
            (
                "routine_time",
                &self.routine_time,
                &defaults.routine_time,
                true,
            ),
            (
                "routine_lag",
                &self.routine_lag,
                &defaults.routine_lag,
                true,
            ),
            (
                "routine_state",
                &self.routine_state,
                &defaults.routine_state,
                true,
            ),
            ("ranking", &self.ranking, &defaults.ranking, false),
            (
                "ranking_row",
                &self.ranking_row,
                &defaults.ranking_row,
                false,
            ),
            ("name", &self.name, &defaults.name, true),
            ("rank", &self.rank, &defaults.rank, true),
            ("vocation", &self.vocation, &defaults.vocation, true),
            ("level", &self.level, &defaults.level, true),
            ("experience", &self.experience, &defaults.experience, true),
            ("next_page", &self.next_page, &defaults.next_page, true),
            (
                "player_header",
                &self.player_header,
                &defaults.player_header,
                true,
            ),
            (
                "player_cell",
                &self.player_cell,
                &defaults.player_cell,
                true,
            ),
            (
                "player_table",
                &self.player_table,
                &defaults.player_table,
                false,
            ),
            ("player_row", &self.player_row, &defaults.player_row, false),
        ] {
            let (sel_text, attr) = match split_attr(text) {
                Ok(parts) => parts,
                Err(words) => {
                    attr_problems.push(SelectorProblem {
                        key: key.to_string(),
                        message: format!("{} is not valid: {words}", toml_quote(text)),
                        fix: "end the selector with ::attr(name) to read an attribute, e.g. \"span.xp::attr(data-value)\"".to_string(),
                    });
                    if value {
                        fields.push(None);
                    } else {
                        containers.push(None);
                    }
                    continue;
                }
            };
            if !value && attr.is_some() {
                attr_problems.push(SelectorProblem {
                    key: key.to_string(),
                    message: format!(
                        "{} reads an attribute, but {key} selects a container, not a value",
                        toml_quote(text)
                    ),
                    fix: format!("remove ::attr(…); write e.g. {}", toml_quote(default)),
                });
            }
            let compiled = css(key, sel_text, default);
            if value {
                let attr = attr
                    .map(str::to_string)
                    .or_else(|| (key == "next_page").then(|| "href".to_string()));
                fields.push(compiled.map(|css| Field {
                    css,
                    attr,
                    written: text.to_string(),
                }));
            } else {
                containers.push(compiled);
            }
        }
        problems.extend(attr_problems);
        let world_pattern = match regex_error_words(&self.world_pattern) {
            Some(words) => {
                problems.push(SelectorProblem {
                    key: "world_pattern".to_string(),
                    message: format!(
                        "{} is not a valid pattern: {words}",
                        toml_quote(&self.world_pattern)
                    ),
                    fix: format!(
                        "write a regular expression with a named group (?P<world>…), e.g. the default {}",
                        toml_quote(DEFAULT_WORLD_PATTERN)
                    ),
                });
                None
            }
            None => match Regex::new(&self.world_pattern) {
                Ok(re) if re.capture_names().any(|n| n == Some("world")) => Some(re),
                Ok(_) => {
                    problems.push(SelectorProblem {
                        key: "world_pattern".to_string(),
                        message: format!(
                            "{} has no named group `world`, so it cannot say which part of the title is the world's name",
                            toml_quote(&self.world_pattern)
                        ),
                        fix: format!(
                            "wrap the name part in (?P<world>…), e.g. the default {}",
                            toml_quote(DEFAULT_WORLD_PATTERN)
                        ),
                    });
                    None
                }
                Err(e) => {
                    problems.push(SelectorProblem {
                        key: "world_pattern".to_string(),
                        message: format!("is not a valid pattern: {e}"),
                        fix: format!(
                            "write e.g. the default {}",
                            toml_quote(DEFAULT_WORLD_PATTERN)
                        ),
                    });
                    None
                }
            },
        };
        let unknown_guild = self.compile_unknown_guild(&mut problems);
        let routine_key = match_key(&self.routine);
        if routine_key.is_empty() {
            problems.push(SelectorProblem {
                key: "routine".to_string(),
                message: format!(
                    "{} has no letters or digits to look for",
                    toml_quote(&self.routine)
                ),
                fix: "write the routine's name as the site shows it, e.g. \"Daily Raw Ranking\""
                    .to_string(),
            });
        }
        let mut player_columns: [String; 4] = Default::default();
        for (slot, (key, words, example)) in player_columns.iter_mut().zip([
            ("xp_column", &self.xp_column, "Raw XP no dia"),
            ("xp_date_column", &self.xp_date_column, "Data"),
            ("online_column", &self.online_column, "Online time"),
            ("online_date_column", &self.online_date_column, "Date"),
        ]) {
            *slot = match_key(words);
            if slot.is_empty() {
                problems.push(SelectorProblem {
                    key: key.to_string(),
                    message: format!("{} has no letters or digits to look for", toml_quote(words)),
                    fix: format!(
                        "write the column's header as the player page shows it, e.g. \"{example}\""
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut fields = fields.into_iter();
        let mut containers = containers.into_iter();
        let mut next_field = || fields.next().flatten();
        let (world_title, routine_name, routine_time) = (next_field(), next_field(), next_field());
        let (routine_lag, routine_state) = (next_field(), next_field());
        let cells = [
            next_field(),
            next_field(),
            next_field(),
            next_field(),
            next_field(),
        ];
        let next_page = next_field();
        let (player_header, player_cell) = (next_field(), next_field());
        let mut next_container = || containers.next().flatten();
        let (routine_entry, ranking, ranking_row) =
            (next_container(), next_container(), next_container());
        let (player_table, player_row) = (next_container(), next_container());
        let missing = || {
            vec![SelectorProblem {
                key: "(internal)".to_string(),
                message: "a selector failed to compile without a reason".to_string(),
                fix: "report this as a bug".to_string(),
            }]
        };
        let [Some(c0), Some(c1), Some(c2), Some(c3), Some(c4)] = cells else {
            return Err(missing());
        };
        let (Some(player_table), Some(player_header), Some(player_row), Some(player_cell)) =
            (player_table, player_header, player_row, player_cell)
        else {
            return Err(missing());
        };
        let (Some(routine_lag), Some(routine_state)) = (routine_lag, routine_state) else {
            return Err(missing());
        };
        let (
            Some(world_title),
            Some(routine_name),
            Some(routine_time),
            Some(next_page),
            Some(routine_entry),
            Some(ranking),
            Some(ranking_row),
            Some(world_pattern),
        ) = (
            world_title,
            routine_name,
            routine_time,
            next_page,
            routine_entry,
            ranking,
            ranking_row,
            world_pattern,
        )
        else {
            return Err(missing());
        };
        let cells = [c0, c1, c2, c3, c4];
        let fast_rows = ranking_row.fast.is_some() && cells.iter().all(|c| c.css.fast.is_some());
        Ok(Compiled {
            world_title,
            world_pattern,
            routine_entry,
            routine_name,
            routine_time,
            routine_lag,
            routine_state,
            routine_key,
            ranking,
            ranking_row,
            unknown_guild,
            cells,
            fast_rows,
            next_page,
            player_table,
            player_header,
            player_row,
            player_cell,
            player_columns,
            source: self.clone(),
        })
    }
}

impl Selectors {
    /// `unknown_guild`: nothing when empty, `text:WORDS`, or a selector.
    fn compile_unknown_guild(&self, problems: &mut Vec<SelectorProblem>) -> Option<NotFoundMarker> {
        let text = self.unknown_guild.trim();
        if text.is_empty() {
            return None;
        }
        let fix = "write a CSS selector of an element only the site's \"not found\" page has, e.g. \"p.guild-not-found\", or text:WORDS it shows, e.g. \"text:Guilda não encontrada\"; or remove the key".to_string();
        if let Some(words) = text.strip_prefix(TEXT_MARKER_PREFIX) {
            let key = match_key(words);
            if key.is_empty() {
                problems.push(SelectorProblem {
                    key: "unknown_guild".to_string(),
                    message: format!(
                        "{} has no letters or digits to look for",
                        toml_quote(&self.unknown_guild)
                    ),
                    fix,
                });
                return None;
            }
            return Some(NotFoundMarker::Text(key));
        }
        match Selector::parse(text) {
            Ok(selector) => Some(NotFoundMarker::Css(Css {
                key: "unknown_guild",
                text: text.to_string(),
                selector,
                fast: Matcher::parse(text),
            })),
            Err(e) => {
                let words = selector_error_words(text)
                    .unwrap_or_else(|| format!("the selector engine refuses it ({e:?})"));
                problems.push(SelectorProblem {
                    key: "unknown_guild".to_string(),
                    message: format!(
                        "{} is not a valid CSS selector: {words}",
                        toml_quote(&self.unknown_guild)
                    ),
                    fix,
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile() {
        let c = Selectors::default().compile().expect("defaults are valid");
        assert!(c.fast_rows, "the default layout stays on the fast path");
        assert!(c.ranking.fast.is_some() && c.next_page.css.fast.is_some());
        assert_eq!(c.next_page.attr.as_deref(), Some("href"));
        assert!(
            c.player_table.fast.is_some()
                && c.player_row.fast.is_some()
                && c.player_header.css.fast.is_some()
                && c.player_cell.css.fast.is_some(),
            "the player page stays on the fast path"
        );
        assert_eq!(c.player_columns[0], "rawxpnodia");
    }

    fn compound(tag: Option<&str>, classes: &[&str], attrs: Vec<(&str, AttrTest)>) -> Compound {
        Compound {
            tag: tag.map(str::to_string),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            attrs: attrs
                .into_iter()
                .map(|(n, t)| (n.to_string(), t, case_insensitive_attr(n)))
                .collect(),
        }
    }

    fn one(x: Compound) -> Option<Matcher> {
        Some(Matcher(vec![Chain {
            compounds: vec![x],
            combinators: vec![],
        }]))
    }

    #[test]
    fn fast_matchers_parse() {
        let c = compound;
        let table = [
            ("td.col-rank", one(c(Some("td"), &["col-rank"], vec![]))),
            ("TR", one(c(Some("tr"), &[], vec![]))),
            (".a.b", one(c(None, &["a", "b"], vec![]))),
            (
                "a[rel~=next], link[rel~=\"next\"]",
                Some(Matcher(vec![
                    Chain {
                        compounds: vec![c(
                            Some("a"),
                            &[],
                            vec![("rel", AttrTest::Word("next".into()))],
                        )],
                        combinators: vec![],
                    },
                    Chain {
                        compounds: vec![c(
                            Some("link"),
                            &[],
                            vec![("rel", AttrTest::Word("next".into()))],
                        )],
                        combinators: vec![],
                    },
                ])),
            ),
            (
                "a[href]",
                one(c(Some("a"), &[], vec![("href", AttrTest::Exists)])),
            ),
            (
                "a[x='y']",
                one(c(Some("a"), &[], vec![("x", AttrTest::Equals("y".into()))])),
            ),
            (
                "div#main",
                one(c(
                    Some("div"),
                    &[],
                    vec![("id", AttrTest::Equals("main".into()))],
                )),
            ),
            (
                "td.col-name a",
                Some(Matcher(vec![Chain {
                    compounds: vec![
                        c(Some("td"), &["col-name"], vec![]),
                        c(Some("a"), &[], vec![]),
                    ],
                    combinators: vec![Combinator::Descendant],
                }])),
            ),
            (
                "div.row>span.x",
                Some(Matcher(vec![Chain {
                    compounds: vec![
                        c(Some("div"), &["row"], vec![]),
                        c(Some("span"), &["x"], vec![]),
                    ],
                    combinators: vec![Combinator::Child],
                }])),
            ),
            ("td + td", None),
            ("td ~ td", None),
            ("td:nth-child(2)", None),
            ("a[rel^=n]", None),
            ("a[rel=n i]", None),
            ("td, ", None),
            ("td >", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(Matcher::parse(text), want, "{text}");
        }
    }

    #[test]
    fn fast_and_engine_agree() {
        let html = scraper::Html::parse_document(
            r#"<html><body><div id="main" class="x">
              <table class="t"><tr><td class="a b"><a rel="Next" href="1">1</a></td>
              <td class="b"><span><a href="2">2</a></span></td></tr></table>
              <ul><li class="a"><a>3</a></li></ul></div></body></html>"#,
        );
        let all: Vec<ElementRef<'_>> = html.root_element().descendent_elements().collect();
        for text in [
            "td.a",
            "td a",
            "td > a",
            "tr > td > a",
            "tr a",
            "table.t td.b a",
            "div#main li.a > a",
            "div a, li",
            "a[rel~=next]",
            "a[href=\"2\"]",
            ".b span a",
            "* > a",
            "body > div td",
            "div > td",
        ] {
            let m = Matcher::parse(text).unwrap_or_else(|| panic!("{text} is simple"));
            let s = Selector::parse(text).expect("valid");
            for el in &all {
                assert_eq!(
                    m.matches(*el),
                    s.matches(el),
                    "{text} on <{}>",
                    el.value().name()
                );
            }
        }
    }

    fn problems(s: Selectors) -> Vec<SelectorProblem> {
        s.compile().expect_err("invalid")
    }

    #[test]
    fn unknown_guild_is_a_selector_or_words() {
        let with = |v: &str| Selectors {
            unknown_guild: v.into(),
            ..Selectors::default()
        };
        assert!(with("").compile().expect("valid").unknown_guild.is_none());
        assert!(matches!(
            with("div.not-found")
                .compile()
                .expect("valid")
                .unknown_guild,
            Some(NotFoundMarker::Css(_))
        ));
        match with("text: Guilda não  encontrada!")
            .compile()
            .expect("valid")
            .unknown_guild
        {
            Some(NotFoundMarker::Text(key)) => assert_eq!(key, "guildanãoencontrada"),
            other => panic!("{other:?}"),
        }
        for (value, words) in [
            ("div[[", "is not a valid CSS selector"),
            ("text: !!", "has no letters or digits"),
        ] {
            let got = problems(with(value));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].key, "unknown_guild");
            assert!(got[0].message.contains(words), "{}", got[0].message);
            assert!(got[0].fix.contains("text:"), "{}", got[0].fix);
        }
    }

    #[test]
    fn bad_selectors_are_plain_words_with_a_position() {
        let table: &[(Selectors, &str, &[&str])] = &[
            (
                Selectors {
                    rank: "td[[[".into(),
                    ..Selectors::default()
                },
                "rank",
                &["\"td[[[\"", "character 3", "never closed"],
            ),
            (
                Selectors {
                    name: "td.".into(),
                    ..Selectors::default()
                },
                "name",
                &["character", "class name"],
            ),
            (
                Selectors {
                    ranking_row: "tr >".into(),
                    ..Selectors::default()
                },
                "ranking_row",
                &["character"],
            ),
            (
                Selectors {
                    level: "td:frobnicate".into(),
                    ..Selectors::default()
                },
                "level",
                &["character 3", "not supported"],
            ),
            (
                Selectors {
                    experience: "span::attr(".into(),
                    ..Selectors::default()
                },
                "experience",
                &["character 5", "::attr("],
            ),
            (
                Selectors {
                    ranking: "div::attr(x)".into(),
                    ..Selectors::default()
                },
                "ranking",
                &["container"],
            ),
            (
                Selectors {
                    world_pattern: "(?P<world>.+".into(),
                    ..Selectors::default()
                },
                "world_pattern",
                &["character 1", "unclosed group"],
            ),
            (
                Selectors {
                    world_pattern: "(.+) Status".into(),
                    ..Selectors::default()
                },
                "world_pattern",
                &["named group `world`"],
            ),
            (
                Selectors {
                    routine: " 🔥 ".into(),
                    ..Selectors::default()
                },
                "routine",
                &["letters or digits"],
            ),
            (
                Selectors {
                    vocation: "  ".into(),
                    ..Selectors::default()
                },
                "vocation",
                &["is empty"],
            ),
            (
                Selectors {
                    xp_column: " → ".into(),
                    ..Selectors::default()
                },
                "xp_column",
                &["letters or digits"],
            ),
            (
                Selectors {
                    player_row: "tr >".into(),
                    ..Selectors::default()
                },
                "player_row",
                &["character"],
            ),
            (
                Selectors {
                    player_table: "table::attr(id)".into(),
                    ..Selectors::default()
                },
                "player_table",
                &["container"],
            ),
        ];
        for (s, key, words) in table {
            let p = problems(s.clone());
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].key, *key);
            for w in *words {
                assert!(
                    p[0].message.contains(w),
                    "{key}: {w:?} not in {:?}",
                    p[0].message
                );
            }
            assert!(!p[0].message.contains("report this"), "{:?}", p[0]);
            assert!(!p[0].fix.is_empty());
        }
        // Every bad key is reported, not only the first.
        let p = problems(Selectors {
            rank: "td[[[".into(),
            level: "::".into(),
            ..Selectors::default()
        });
        assert_eq!(p.len(), 2, "{p:?}");
    }

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

    #[test]
    fn match_keys() {
        assert_eq!(
            match_key("🔥Daily Raw RankingRotina de coleta"),
            "dailyrawrankingrotinadecoleta"
        );
        assert_eq!(match_key(" DAILY  raw\r\nranking "), "dailyrawranking");
        assert_eq!(match_key("Deaths/Kills"), "deathskills");
        assert_eq!(match_key("Cèlesta"), "cèlesta");
    }
}
