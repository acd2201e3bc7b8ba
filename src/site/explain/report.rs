//! The report: what each key matched on each page ([`SelectorReport`],
//! [`PageReport`]) and on the world's pages together ([`Explain`]), as
//! text.

use std::fmt;

use crate::site::parse::GuildPageKind;

/// How many first values a line shows.
pub(super) const FIRST: usize = 3;

/// What one selector matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorReport {
    /// `key = "as written"`.
    pub key: String,
    /// Where it was looked for ("the page", "each routine entry", …).
    pub scope: String,
    /// Matches (elements, or scopes holding one).
    pub count: usize,
    /// Scopes it was looked for in (for sub-selectors).
    pub of: Option<usize>,
    /// The first values read.
    pub first: Vec<String>,
    /// When nothing matched: elements of the scope that look closest, as
    /// `tag.class ×count "sample text"`.
    pub nearest: Vec<String>,
    /// Why those are nearest ("alike by tag and class", "text matches
    /// world_pattern", …).
    pub why: String,
    /// Anything else worth saying.
    pub note: Option<String>,
    /// Whether the page can be read with this key as it is.
    pub ok: bool,
    /// False when there was nothing to look in (an earlier key failed).
    pub checked: bool,
}

impl SelectorReport {
    pub(super) fn not_checked(key: String, scope: &str) -> SelectorReport {
        SelectorReport {
            key,
            scope: scope.to_string(),
            count: 0,
            of: Some(0),
            first: Vec::new(),
            nearest: Vec::new(),
            why: String::new(),
            note: None,
            ok: true,
            checked: false,
        }
    }
}

/// One page explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageReport {
    /// "status page", "guild Red Rose".
    pub what: String,
    /// The URL.
    pub url: String,
    /// Every key, in reading order.
    pub selectors: Vec<SelectorReport>,
    /// What the page holds: world titles, routine rows and times, rows.
    pub findings: Vec<String>,
    /// The parser's verdict: what it extracted, or its error.
    pub outcome: Result<String, String>,
    /// A guild page that parsed: whether it has the ranking.
    pub guild_kind: Option<GuildPageKind>,
}

/// Every page of one world explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explain {
    /// The world.
    pub world: String,
    /// The status page, then each guild's first page.
    pub pages: Vec<PageReport>,
    /// The configured guilds, in order, each with what its first page
    /// showed (`None`: it could not be fetched or parsed).
    pub guilds: Vec<(String, Option<GuildPageKind>)>,
    /// How the world's guild pages were classified, a line each, with the
    /// rule that decided (filled by `scrape::explain_world`).
    pub guild_rules: Vec<String>,
    /// The world's guild pages, together, read as a changed layout: the
    /// run would fail with this.
    pub world_error: Option<String>,
}

impl Explain {
    /// Whether every page parsed and the world's guild pages read.
    pub fn ok(&self) -> bool {
        self.pages.iter().all(|p| p.outcome.is_ok()) && self.world_error.is_none()
    }
}

pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

pub(super) fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{:?}", clip(v, 60)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for SelectorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.checked {
            return writeln!(
                f,
                "  · {}\n      not checked: no {} to look in",
                self.key, self.scope
            );
        }
        let mark = if self.ok { "✓" } else { "✗" };
        let count = match self.of {
            Some(of) => format!("found in {} of {of} {}", self.count, self.scope),
            None => format!(
                "{} match{} in {}",
                self.count,
                if self.count == 1 { "" } else { "es" },
                self.scope
            ),
        };
        write!(f, "  {mark} {}\n      {count}", self.key)?;
        if !self.first.is_empty() {
            write!(f, ": {}", quoted(&self.first))?;
        }
        writeln!(f)?;
        if let Some(note) = &self.note {
            writeln!(f, "      {note}")?;
        }
        if !self.ok && self.count == 0 {
            if self.nearest.is_empty() {
                writeln!(f, "      nothing matched, and nothing there looks close")?;
            } else {
                writeln!(f, "      nothing matched; nearest elements ({}):", self.why)?;
                for n in &self.nearest {
                    writeln!(f, "        {n}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for PageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} — {}", self.what, self.url)?;
        for s in &self.selectors {
            write!(f, "{s}")?;
        }
        for line in &self.findings {
            writeln!(f, "  {line}")?;
        }
        match &self.outcome {
            Ok(text) => writeln!(f, "  result: {text}"),
            Err(e) => writeln!(f, "  result: FAILS: {e}"),
        }
    }
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.pages.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if !self.guild_rules.is_empty() || self.world_error.is_some() {
            writeln!(f)?;
            writeln!(f, "guild pages of {}, together:", self.world)?;
            for line in &self.guild_rules {
                writeln!(f, "  {line}")?;
            }
            if let Some(e) = &self.world_error {
                writeln!(f, "  result: FAILS: {e}")?;
                writeln!(
                    f,
                    "  (guilds that left the site: remove them from [[worlds]], or name the site's \"not found\" page with unknown_guild)"
                )?;
            }
        }
        writeln!(f)?;
        if self.ok() {
            writeln!(
                f,
                "every page of {} parses with these selectors",
                self.world
            )
        } else {
            let mut broken: Vec<&str> = Vec::new();
            for s in self.pages.iter().flat_map(|p| &p.selectors) {
                let key = s.key.split(" = ").next().unwrap_or(&s.key);
                if !s.ok && !broken.contains(&key) {
                    broken.push(key);
                }
            }
            if self.world_error.is_some() && !broken.contains(&"ranking") {
                broken.push("ranking");
            }
            writeln!(
                f,
                "{} does not parse; keys to look at: {}",
                self.world,
                if broken.is_empty() {
                    "(see the results above)".to_string()
                } else {
                    broken.join(", ")
                }
            )
        }
    }
}
