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

/// Selectors parsed once, ready for matching.
#[derive(Debug, Clone)]
pub struct Compiled {
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
    fn bad_selector_is_named() {
        let s = Selectors {
            level: "td..x".into(),
            ..Selectors::default()
        };
        let err = s.compile().expect_err("invalid");
        assert!(err.contains("site.selectors.level"), "{err}");
    }
}
