//! CSS selectors for every field, with defaults that match the real site.
//!
//! A layout change on the site is a config change (`[site.selectors]`), not a
//! rebuild. [`Selectors::compile`] checks every one at start-up.

use scraper::Selector;
use serde::Deserialize;

/// `[site.selectors]`: every selector can be overridden in config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Selectors {
    /// Status page: the rows of every world block (title rows and routine rows).
    pub status_row: String,
    /// Status page: the cells of a row (a title row has one, a routine row four).
    pub status_cell: String,
    /// Status page: a title cell reads `<World>` followed by this text.
    pub status_title_suffix: String,
    /// Status page: the routine whose time tells that the ranking was refreshed.
    pub status_routine: String,
    /// Guild page: the tables; the ranking is the one at `ranking_table_index`.
    pub ranking_table: String,
    /// Guild page: index (from 0) of the ranking among `ranking_table` matches;
    /// the tables before it (the vocation counts) are all an unknown guild has.
    pub ranking_table_index: usize,
    /// Guild page: a row of the ranking table.
    pub ranking_row: String,
    /// Guild page: the rank cell.
    pub rank: String,
    /// Guild page: the name cell.
    pub name: String,
    /// Guild page: inside the name cell, the link holding the name (falls back
    /// to the cell text when it matches nothing).
    pub name_link: String,
    /// Guild page: the vocation cell.
    pub vocation: String,
    /// Guild page: the level cell.
    pub level: String,
    /// Guild page: the experience cell (gained today, dot-grouped).
    pub experience: String,
    /// Any page: the link to the next page of a paginated listing.
    pub next_page: String,
    /// Any page: text every complete page contains (case-insensitive); a page
    /// without it was cut short. Empty disables the check.
    pub complete_marker: String,
}

impl Default for Selectors {
    fn default() -> Self {
        Selectors {
            status_row: "tr".to_string(),
            status_cell: "th, td".to_string(),
            status_title_suffix: " Status".to_string(),
            status_routine: "Daily Raw Ranking".to_string(),
            ranking_table: "table.table-highscores".to_string(),
            ranking_table_index: 1,
            ranking_row: "tr".to_string(),
            rank: "td.col-rank".to_string(),
            name: "td.col-name".to_string(),
            name_link: "a".to_string(),
            vocation: "td.col-voc".to_string(),
            level: "td.col-level".to_string(),
            experience: "td.col-xp".to_string(),
            next_page: "a[rel~=next], link[rel~=next]".to_string(),
            complete_marker: "</html>".to_string(),
        }
    }
}

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

/// `tag.class[attr~=word]…` (each part optional, at least one present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compound {
    tag: Option<String>,
    classes: Vec<String>,
    attrs: Vec<(String, AttrTest)>,
}

/// A selector list of plain compound selectors (no combinators, no
/// pseudo-classes), matched by comparing names and attributes directly:
/// the selector engine costs far more per element. Anything else falls
/// back to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Simple(Vec<Compound>);

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(s.len())
}

fn parse_compound(text: &str) -> Option<Compound> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let n = ident_len(rest);
    let tag = (n > 0).then(|| rest[..n].to_ascii_lowercase());
    rest = &rest[n..];
    let mut classes = Vec::new();
    let mut attrs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_len(r);
            if n == 0 {
                return None;
            }
            classes.push(r[..n].to_string());
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
                (!v.is_empty() && !v.contains(['"', '\'', ' ', '\\'])).then(|| v.to_string())
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
            attrs.push((name, test));
        } else {
            return None;
        }
    }
    if tag.is_none() && classes.is_empty() && attrs.is_empty() {
        return None;
    }
    Some(Compound {
        tag,
        classes,
        attrs,
    })
}

impl Simple {
    /// `Some` when `text` is a list of plain compound selectors.
    pub(crate) fn parse(text: &str) -> Option<Simple> {
        text.split(',')
            .map(parse_compound)
            .collect::<Option<Vec<_>>>()
            .map(Simple)
    }

    /// Whether an element matches.
    pub(crate) fn matches(&self, el: &scraper::node::Element) -> bool {
        self.0.iter().any(|c| {
            c.tag.as_deref().is_none_or(|t| el.name() == t)
                && c.classes
                    .iter()
                    .all(|k| el.has_class(k, scraper::CaseSensitivity::CaseSensitive))
                && c.attrs
                    .iter()
                    .all(|(name, test)| match (el.attr(name), test) {
                        (None, _) => false,
                        (Some(_), AttrTest::Exists) => true,
                        (Some(v), AttrTest::Equals(want)) => v == want,
                        (Some(v), AttrTest::Word(want)) => {
                            v.split_ascii_whitespace().any(|w| w == want)
                        }
                    })
        })
    }
}

/// Row and cell selectors of the ranking when all are simple.
#[derive(Debug, Clone)]
pub(crate) struct FastRanking {
    pub(crate) row: Simple,
    /// name, rank, vocation, level, experience.
    pub(crate) cells: [Simple; 5],
}

/// Selectors parsed once, ready for matching.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub(crate) fast: Option<FastRanking>,
    pub(crate) name_link_fast: Option<Simple>,
    pub(crate) ranking_table_fast: Option<Simple>,
    pub(crate) next_page_fast: Option<Simple>,
    pub(crate) status_row: Selector,
    pub(crate) status_cell: Selector,
    pub(crate) ranking_table: Selector,
    pub(crate) ranking_row: Selector,
    pub(crate) rank: Selector,
    pub(crate) name: Selector,
    pub(crate) name_link: Selector,
    pub(crate) vocation: Selector,
    pub(crate) level: Selector,
    pub(crate) experience: Selector,
    pub(crate) next_page: Selector,
    /// The source strings (for messages).
    pub source: Selectors,
}

impl Selectors {
    /// Parse every selector; the error names the key and the selector.
    pub fn compile(&self) -> Result<Compiled, String> {
        let mut problems = Vec::new();
        let mut parse = |key: &str, text: &str| match Selector::parse(text) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("site.selectors.{key} = {text:?}: {e}"));
                None
            }
        };
        let status_row = parse("status_row", &self.status_row);
        let status_cell = parse("status_cell", &self.status_cell);
        let ranking_table = parse("ranking_table", &self.ranking_table);
        let ranking_row = parse("ranking_row", &self.ranking_row);
        let rank = parse("rank", &self.rank);
        let name = parse("name", &self.name);
        let name_link = parse("name_link", &self.name_link);
        let vocation = parse("vocation", &self.vocation);
        let level = parse("level", &self.level);
        let experience = parse("experience", &self.experience);
        let next_page = parse("next_page", &self.next_page);
        match (
            status_row,
            status_cell,
            ranking_table,
            ranking_row,
            rank,
            name,
            name_link,
            vocation,
            level,
            experience,
            next_page,
        ) {
            (
                Some(status_row),
                Some(status_cell),
                Some(ranking_table),
                Some(ranking_row),
                Some(rank),
                Some(name),
                Some(name_link),
                Some(vocation),
                Some(level),
                Some(experience),
                Some(next_page),
            ) if problems.is_empty() => Ok(Compiled {
                name_link_fast: Simple::parse(&self.name_link),
                ranking_table_fast: Simple::parse(&self.ranking_table),
                next_page_fast: Simple::parse(&self.next_page),
                fast: (|| {
                    Some(FastRanking {
                        row: Simple::parse(&self.ranking_row)?,
                        cells: [
                            Simple::parse(&self.name)?,
                            Simple::parse(&self.rank)?,
                            Simple::parse(&self.vocation)?,
                            Simple::parse(&self.level)?,
                            Simple::parse(&self.experience)?,
                        ],
                    })
                })(),
                status_row,
                status_cell,
                ranking_table,
                ranking_row,
                rank,
                name,
                name_link,
                vocation,
                level,
                experience,
                next_page,
                source: self.clone(),
            }),
            _ => Err(problems.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile() {
        Selectors::default().compile().expect("defaults are valid");
    }

    #[test]
    fn simple_selectors() {
        let c = |tag: Option<&str>, classes: &[&str], attrs: Vec<(&str, AttrTest)>| Compound {
            tag: tag.map(str::to_string),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            attrs: attrs.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
        };
        let one = |x: Compound| Some(Simple(vec![x]));
        let table = [
            ("td.col-rank", one(c(Some("td"), &["col-rank"], vec![]))),
            ("TR", one(c(Some("tr"), &[], vec![]))),
            (".a.b", one(c(None, &["a", "b"], vec![]))),
            (
                "a[rel~=next], link[rel~=\"next\"]",
                Some(Simple(vec![
                    c(Some("a"), &[], vec![("rel", AttrTest::Word("next".into()))]),
                    c(
                        Some("link"),
                        &[],
                        vec![("rel", AttrTest::Word("next".into()))],
                    ),
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
            ("td .x", None),
            ("td > a", None),
            ("td:nth-child(2)", None),
            ("a[rel^=n]", None),
            ("td, ", None),
            ("", None),
            (".", None),
        ];
        for (text, want) in table {
            assert_eq!(Simple::parse(text), want, "{text:?}");
        }
        assert!(Selectors::default().compile().expect("ok").fast.is_some());
        let custom = Selectors {
            name: "td:nth-child(2)".into(),
            ..Selectors::default()
        };
        assert!(custom.compile().expect("ok").fast.is_none());
    }

    #[test]
    fn bad_selector_is_named() {
        let s = Selectors {
            level: "td..x".into(),
            ..Selectors::default()
        };
        let err = s.compile().expect_err("invalid");
        assert!(err.contains("site.selectors.level"), "{err}");
    }
}
