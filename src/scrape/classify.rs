//! A world's guild pages, decided together: an unknown guild or a changed
//! layout.
//!
//! A page alone cannot tell them apart: the real site shows an unknown
//! guild as a page with the vocation counts only, but a redesign may show
//! it as a bare page with the guild's heading and no container at all,
//! which is also what every page looks like once the `ranking` selector no
//! longer matches. [`classify_guild_pages`] decides from every guild page
//! of one world's run (and, for a world with one guild, whether it had rows
//! before); [`FetchedWorld::classify`] applies it. Pure, table-tested here.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};

use crate::site::{GuildPageKind, GuildRanking, SiteError};
use crate::store::ScrapedPlayer;

use super::Scraped;

/// Which rule classified a guild page of a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuildRule {
    /// The page has the ranking: its rows are the guild's (none: zero rows).
    Ranking,
    /// No ranking; the page matches `unknown_guild`, the site's own "not
    /// found" page: an unknown guild.
    NotFoundMarker,
    /// No ranking here, but another guild page of the same run has it: the
    /// layout reads, so the site does not know this guild.
    RankingOnAnotherPage,
    /// No guild page has the ranking, but the world has this one guild and
    /// no rows stored before: nothing can show a changed layout, so it is
    /// read as an unknown guild.
    OnlyGuildNoHistory,
}

impl GuildRule {
    /// Whether the guild is read as unknown to the site (zero rows).
    pub fn unknown(self) -> bool {
        self != GuildRule::Ranking
    }

    /// The rule in words (`scrape-once --explain`, the worker's warning).
    pub fn describe(self) -> &'static str {
        match self {
            GuildRule::Ranking => "the page has the ranking: its rows are the guild's",
            GuildRule::NotFoundMarker => {
                "the page matches unknown_guild, the site's \"not found\" page: an unknown guild, zero rows"
            }
            GuildRule::RankingOnAnotherPage => {
                "no ranking on this page, but on another guild page of the world: an unknown guild, zero rows"
            }
            GuildRule::OnlyGuildNoHistory => {
                "no ranking on this page, the world's only guild, no rows stored before: nothing can show a changed layout, so an unknown guild, zero rows (should the layout have changed, the run fails once the world has rows or a second guild)"
            }
        }
    }
}

/// Why a world's guild pages read as a changed layout: none has the
/// ranking, and the world had rows before or has more than one guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutChanged {
    /// The world had players stored before.
    pub had_rows: bool,
    /// Guilds of the world.
    pub guilds: usize,
}

impl fmt::Display for LayoutChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.guilds > 1, self.had_rows) {
            (true, true) => write!(
                f,
                "the world has {} guilds and had rows before",
                self.guilds
            ),
            (true, false) => write!(f, "the world has {} guilds", self.guilds),
            _ => write!(f, "the world had rows before"),
        }
    }
}

/// Whether [`classify_guild_pages`] depends on `had_rows_before` for
/// these pages: only when no page has the ranking, a page has none without
/// the site's "not found" marker, and the world has that one guild.
pub fn history_matters(pages: &[GuildPageKind]) -> bool {
    undecided(pages) && pages.len() <= 1
}

/// No page has the ranking and one has neither the ranking nor the marker.
fn undecided(pages: &[GuildPageKind]) -> bool {
    !pages.contains(&GuildPageKind::Ranking)
        && pages
            .iter()
            .any(|k| matches!(k, GuildPageKind::NoRanking { .. }))
}

/// Classify the guild pages of one world's run (in config order), each
/// page's first page as parsed:
///
/// 1. a page with the ranking is the guild's ranking (zero rows included);
/// 2. a page without it that matches `unknown_guild` is an unknown guild;
/// 3. a complete page without it is an unknown guild when another guild
///    page of the run has the ranking;
/// 4. when none has it: a layout change if the world had rows before or
///    has more than one guild; otherwise (one guild, no history) an
///    unknown guild.
pub fn classify_guild_pages(
    pages: &[GuildPageKind],
    had_rows_before: bool,
) -> Result<Vec<GuildRule>, LayoutChanged> {
    if undecided(pages) && (had_rows_before || pages.len() > 1) {
        return Err(LayoutChanged {
            had_rows: had_rows_before,
            guilds: pages.len(),
        });
    }
    let elsewhere = pages.contains(&GuildPageKind::Ranking);
    Ok(pages
        .iter()
        .map(|k| match k {
            GuildPageKind::Ranking => GuildRule::Ranking,
            GuildPageKind::NotFound => GuildRule::NotFoundMarker,
            GuildPageKind::NoRanking { .. } if elsewhere => GuildRule::RankingOnAnotherPage,
            GuildPageKind::NoRanking { .. } => GuildRule::OnlyGuildNoHistory,
        })
        .collect())
}

/// A world's guild pages, fetched; nothing decided yet.
#[derive(Debug, Clone)]
pub struct FetchedWorld {
    /// World.
    pub world: String,
    /// The site's update time.
    pub update_time: DateTime<FixedOffset>,
    /// When scraping started.
    pub started_at: DateTime<Utc>,
    /// Each configured guild with its ranking, in config order.
    pub guilds: Vec<(String, GuildRanking)>,
    /// `ranking = "…"`, for the error.
    pub(crate) ranking: String,
    /// `ranking_index`, for the error.
    pub(crate) ranking_index: usize,
}

impl FetchedWorld {
    /// What each guild's first page showed.
    pub fn kinds(&self) -> Vec<GuildPageKind> {
        self.guilds.iter().map(|(_, r)| r.kind).collect()
    }

    /// Whether [`classify`](Self::classify) needs to know if the world had
    /// rows before (see [`history_matters`]).
    pub fn history_matters(&self) -> bool {
        history_matters(&self.kinds())
    }

    /// Decide the guild pages together ([`classify_guild_pages`]) and merge
    /// the rows in config order, each player once (first guild wins); an
    /// unknown guild is a warning and zero rows, a changed layout fails.
    pub fn classify(self, had_rows_before: bool) -> Result<Scraped, SiteError> {
        let rules = classify_guild_pages(&self.kinds(), had_rows_before).map_err(|why| {
            SiteError::NoRanking {
                world: self.world.clone(),
                selector: self.ranking.clone(),
                index: self.ranking_index,
                why: why.to_string(),
                url: self
                    .guilds
                    .iter()
                    .find(|(_, r)| matches!(r.kind, GuildPageKind::NoRanking { .. }))
                    .map(|(_, r)| r.url.clone())
                    .unwrap_or_default(),
            }
        })?;
        let mut players = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut unknown_guilds = Vec::new();
        let mut guild_rules = Vec::new();
        let mut pages = 0;
        for ((guild, ranking), rule) in self.guilds.into_iter().zip(rules) {
            pages += ranking.pages;
            guild_rules.push((guild.clone(), rule));
            if rule.unknown() {
                tracing::warn!(world = %self.world, %guild, rule = rule.describe(), "the site does not know this guild: zero rows");
                unknown_guilds.push(guild);
                continue;
            }
            for row in ranking.rows {
                if seen.insert(row.name.clone()) {
                    players.push(ScrapedPlayer {
                        name: row.name,
                        guild: guild.clone(),
                        vocation: row.vocation,
                        level: row.level,
                        experience: row.experience,
                    });
                }
            }
        }
        Ok(Scraped {
            world: self.world,
            update_time: self.update_time,
            started_at: self.started_at,
            players,
            unknown_guilds,
            guild_rules,
            pages,
        })
    }
}

/// Fill in `--explain`'s verdict on the world's guild pages together:
/// which rule classified each, or the layout change the run would fail
/// with. `had_rows_before` is asked only when it matters.
pub(crate) async fn explain_guild_rules<F, Fut>(
    report: &mut crate::site::explain::Explain,
    ranking: &str,
    ranking_index: usize,
    had_rows_before: F,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let failed: Vec<&str> = report
        .guilds
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(g, _)| g.as_str())
        .collect();
    if !failed.is_empty() {
        report.guild_rules.push(format!(
            "not classified together: {} did not parse (above)",
            failed.join(", ")
        ));
        return;
    }
    let kinds: Vec<GuildPageKind> = report.guilds.iter().filter_map(|(_, k)| *k).collect();
    let mut had_rows = false;
    if history_matters(&kinds) {
        match had_rows_before().await {
            Ok(h) => {
                had_rows = h;
                report.guild_rules.push(format!(
                    "the world's one guild has no ranking: the store {} rows of {} before",
                    if h { "has" } else { "has no" },
                    report.world
                ));
            }
            Err(e) => report.guild_rules.push(format!(
                "the world's one guild has no ranking, and the store cannot be read ({e}): taken as no rows before"
            )),
        }
    }
    match classify_guild_pages(&kinds, had_rows) {
        Ok(rules) => {
            for ((guild, _), rule) in report.guilds.iter().zip(rules) {
                report
                    .guild_rules
                    .push(format!("guild {guild}: {}", rule.describe()));
            }
        }
        Err(why) => {
            let url = report
                .pages
                .iter()
                .find(|p| matches!(p.guild_kind, Some(GuildPageKind::NoRanking { .. })))
                .map(|p| p.url.clone())
                .unwrap_or_default();
            report.world_error = Some(
                SiteError::NoRanking {
                    world: report.world.clone(),
                    selector: ranking.to_string(),
                    index: ranking_index,
                    why: why.to_string(),
                    url,
                }
                .to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::explain::Explain;
    use GuildPageKind::{NoRanking, NotFound, Ranking};
    use GuildRule::{NotFoundMarker, OnlyGuildNoHistory, RankingOnAnotherPage};

    const BARE: GuildPageKind = NoRanking { containers: 0 };
    const VOCATIONS_ONLY: GuildPageKind = NoRanking { containers: 1 };

    #[test]
    fn guild_pages_are_decided_by_the_world() {
        let changed = |had_rows, guilds| Err(LayoutChanged { had_rows, guilds });
        #[allow(clippy::type_complexity)]
        let table: &[(
            &[GuildPageKind],
            bool,
            Result<Vec<GuildRule>, LayoutChanged>,
        )] = &[
            // Known guilds, with rows or none.
            (&[Ranking], false, Ok(vec![GuildRule::Ranking])),
            (&[Ranking, Ranking], true, Ok(vec![GuildRule::Ranking; 2])),
            // A bare page or one with the vocation counts only, beside a
            // page with the ranking: an unknown guild, with or without history.
            (
                &[Ranking, BARE],
                false,
                Ok(vec![GuildRule::Ranking, RankingOnAnotherPage]),
            ),
            (
                &[BARE, Ranking],
                true,
                Ok(vec![RankingOnAnotherPage, GuildRule::Ranking]),
            ),
            (
                &[Ranking, VOCATIONS_ONLY],
                true,
                Ok(vec![GuildRule::Ranking, RankingOnAnotherPage]),
            ),
            // The site's "not found" page: unknown, whatever the others.
            (&[NotFound], true, Ok(vec![NotFoundMarker])),
            (&[NotFound, NotFound], true, Ok(vec![NotFoundMarker; 2])),
            (
                &[NotFound, Ranking],
                false,
                Ok(vec![NotFoundMarker, GuildRule::Ranking]),
            ),
            // No ranking anywhere.
            (&[BARE], false, Ok(vec![OnlyGuildNoHistory])),
            (&[VOCATIONS_ONLY], false, Ok(vec![OnlyGuildNoHistory])),
            (&[BARE], true, changed(true, 1)),
            (&[BARE, BARE], false, changed(false, 2)),
            (
                &[VOCATIONS_ONLY, VOCATIONS_ONLY, BARE],
                true,
                changed(true, 3),
            ),
            (&[NotFound, BARE], false, changed(false, 2)),
            // No guild at all: nothing to decide.
            (&[], true, Ok(vec![])),
        ];
        for (pages, had_rows, want) in table {
            assert_eq!(
                &classify_guild_pages(pages, *had_rows),
                want,
                "{pages:?}, had rows: {had_rows}"
            );
        }
    }

    /// Every world of up to three guild pages: `history_matters` is exactly
    /// when the answer depends on the history; a page with the ranking is
    /// always read; an unknown guild never hides a world without a ranking
    /// that had rows, unless the site said "not found".
    #[test]
    fn history_matters_exactly_when_it_changes_the_answer() {
        let kinds = [Ranking, NotFound, BARE, VOCATIONS_ONLY];
        let mut layer: Vec<Vec<GuildPageKind>> = vec![vec![]];
        let mut worlds = layer.clone();
        for _ in 0..3 {
            layer = layer
                .iter()
                .flat_map(|w| {
                    kinds.iter().map(move |k| {
                        let mut w = w.clone();
                        w.push(*k);
                        w
                    })
                })
                .collect();
            worlds.extend(layer.iter().cloned());
        }
        assert_eq!(worlds.len(), 1 + 4 + 16 + 64);
        for pages in &worlds {
            let (with, without) = (
                classify_guild_pages(pages, true),
                classify_guild_pages(pages, false),
            );
            // (A layout change is one answer, whatever it cites.)
            assert_eq!(
                history_matters(pages),
                with.as_ref().ok() != without.as_ref().ok(),
                "{pages:?}"
            );
            for rules in [&with, &without].into_iter().flatten() {
                assert_eq!(rules.len(), pages.len());
                for (k, r) in pages.iter().zip(rules) {
                    assert_eq!(*k == Ranking, !r.unknown(), "{pages:?}");
                }
            }
            if let Ok(rules) = &with {
                let no_ranking = !pages.contains(&Ranking);
                assert!(
                    !no_ranking || rules.iter().all(|r| *r == NotFoundMarker),
                    "{pages:?}: a world with rows and no ranking reads as unknown guilds"
                );
            }
        }
    }

    fn explain(guilds: &[(&str, Option<GuildPageKind>)]) -> Explain {
        Explain {
            world: "W".into(),
            pages: Vec::new(),
            guilds: guilds.iter().map(|(g, k)| (g.to_string(), *k)).collect(),
            guild_rules: Vec::new(),
            world_error: None,
        }
    }

    #[tokio::test]
    async fn explain_states_the_rule_of_each_page_and_asks_history_only_when_it_matters() {
        let asked = std::cell::Cell::new(0);
        let history = |answer: Result<bool, String>| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                async move { answer }
            }
        };
        let mut r = explain(&[("A", Some(Ranking)), ("B", Some(BARE))]);
        explain_guild_rules(&mut r, "ranking = \"x\"", 1, history(Ok(true))).await;
        assert_eq!(asked.get(), 0);
        assert!(r.world_error.is_none() && r.ok());
        assert_eq!(
            r.guild_rules,
            [
                format!("guild A: {}", GuildRule::Ranking.describe()),
                format!("guild B: {}", RankingOnAnotherPage.describe()),
            ]
        );

        let mut r = explain(&[("B", Some(BARE))]);
        explain_guild_rules(&mut r, "ranking = \"x\"", 1, history(Ok(true))).await;
        assert_eq!(asked.get(), 1);
        let e = r.world_error.as_deref().expect("a changed layout");
        assert!(
            e.contains("the world had rows before") && e.contains("ranking = \"x\""),
            "{e}"
        );
        assert!(!r.ok());

        let mut r = explain(&[("B", Some(BARE))]);
        explain_guild_rules(&mut r, "r", 1, history(Err("down".into()))).await;
        assert!(
            r.guild_rules[0].contains("cannot be read (down)"),
            "{:?}",
            r.guild_rules
        );
        assert_eq!(
            r.guild_rules[1],
            format!("guild B: {}", OnlyGuildNoHistory.describe())
        );

        let mut r = explain(&[("A", Some(Ranking)), ("B", None)]);
        explain_guild_rules(&mut r, "r", 1, history(Ok(true))).await;
        assert_eq!(asked.get(), 2);
        assert!(
            r.guild_rules[0].contains("B did not parse"),
            "{:?}",
            r.guild_rules
        );
    }

    #[test]
    fn layout_changed_says_why() {
        let both = LayoutChanged {
            had_rows: true,
            guilds: 3,
        };
        assert_eq!(
            both.to_string(),
            "the world has 3 guilds and had rows before"
        );
        let one = LayoutChanged {
            had_rows: true,
            guilds: 1,
        };
        assert_eq!(one.to_string(), "the world had rows before");
    }
}
