//! CSS selectors for every field, with defaults that match the real site.

use serde::Deserialize;

/// `[site.selectors]`: every selector can be overridden in config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Selectors {
    /// Ranking table (the second `table.table-highscores`).
    pub ranking_table: String,
}

impl Default for Selectors {
    fn default() -> Self {
        Selectors {
            ranking_table: "table.table-highscores".to_string(),
        }
    }
}
