//! A guild page explained: the ranking containers, rows and cells, and
//! what a page without the ranking is.

use scraper::{ElementRef, Html};

use super::matched::{css_report, field_report};
use super::nearest::{list_containers, signature};
use super::report::{FIRST, PageReport, SelectorReport, clip, quoted};
use crate::site::parse::{
    self, GuildPageKind, closed_unless_ranking, complete_check, extract_guild,
};
use crate::site::selectors::Compiled;

/// Explain one guild page: the ranking container and its index, the rows,
/// each field in each row, the next link, and the parser's verdict.
pub fn explain_guild(html_text: &str, sel: &Compiled, url: &str, guild: &str) -> PageReport {
    let doc = Html::parse_document(html_text);
    let root = doc.root_element();
    let mut selectors = Vec::new();
    let mut findings = Vec::new();
    let index = sel.ranking_index;

    let (mut ranking_report, containers) = css_report(&sel.ranking, "the page", root, true);
    ranking_report.first = containers
        .iter()
        .take(FIRST + 1)
        .map(|e| {
            format!(
                "{} {}",
                signature(*e),
                clip(&parse::clean_text(e.text()), 30)
            )
        })
        .collect();
    if !containers.is_empty() {
        ranking_report.note = Some(match containers.get(index) {
            Some(_) => {
                format!("ranking_index = {index}: the ranking is match number {index} (from 0)")
            }
            None => format!(
                "ranking_index = {index}, but only {} match{}: no ranking on this page (an unknown guild or a changed layout: the world's guild pages decide, below)",
                containers.len(),
                if containers.len() == 1 { "" } else { "es" }
            ),
        });
    } else {
        ranking_report.note = Some(
            "no ranking on this page (an unknown guild or a changed layout: the world's guild pages decide, below)"
                .to_string(),
        );
    }
    selectors.push(ranking_report);
    if let Some(marker) = &sel.unknown_guild {
        let matched = marker.matches(root);
        selectors.push(SelectorReport {
            key: format!("unknown_guild = {:?}", sel.source.unknown_guild),
            scope: "the page".to_string(),
            count: usize::from(matched),
            of: None,
            first: Vec::new(),
            nearest: Vec::new(),
            why: String::new(),
            note: Some(
                match (matched, containers.get(index).is_some()) {
                    (true, false) => "the site's \"not found\" page: an unknown guild",
                    (true, true) => "matches, but the page has the ranking: ignored",
                    (false, false) => "not the site's \"not found\" page",
                    (false, true) => "consulted only on a page without the ranking",
                }
                .to_string(),
            ),
            ok: true,
            checked: true,
        });
    }

    if containers.is_empty() {
        let hints = list_containers(root);
        if !hints.is_empty()
            && let Some(r) = selectors.last_mut()
        {
            r.nearest = hints;
            r.why = "elements holding repeated children, like a ranking".to_string();
        }
    }
    match containers.get(index) {
        None => {
            selectors.push(SelectorReport::not_checked(
                sel.ranking_row.describe(),
                "ranking",
            ));
            for k in [1, 0, 2, 3, 4] {
                selectors.push(SelectorReport::not_checked(
                    sel.cells()[k].describe(),
                    "row",
                ));
            }
        }
        Some(ranking) => {
            let (mut rows_report, rows) =
                css_report(&sel.ranking_row, "the ranking", *ranking, true);
            rows_report.first.clear();
            if rows.is_empty() {
                let hints = list_containers(*ranking);
                if !hints.is_empty() {
                    rows_report.nearest = hints;
                    rows_report.why =
                        "repeated elements in the ranking: the row is the repeated child"
                            .to_string();
                }
            }
            selectors.push(rows_report);
            // Rows holding at least one field are data rows.
            let data_rows: Vec<ElementRef<'_>> = rows
                .iter()
                .copied()
                .filter(|r| sel.cells().iter().any(|f| f.css.first_in(*r).is_some()))
                .collect();
            if rows.len() > data_rows.len() {
                findings.push(format!(
                    "{} of {} rows hold none of the fields (headers, spacers): skipped",
                    rows.len() - data_rows.len(),
                    rows.len()
                ));
            }
            let scopes = if data_rows.is_empty() {
                rows.clone()
            } else {
                data_rows
            };
            for k in [1, 0, 2, 3, 4] {
                let mut r = field_report(sel.cells()[k], "rows", &scopes, *ranking);
                if k != 0 && k != 2 {
                    // Numbers: show what they read as.
                    let bad: Vec<&String> = r
                        .first
                        .iter()
                        .filter(|v| parse::parse_number(v).is_none())
                        .collect();
                    if !bad.is_empty() {
                        r.ok = false;
                        r.note = Some(format!(
                            "not a number: {}",
                            quoted(&bad.into_iter().cloned().collect::<Vec<_>>())
                        ));
                    }
                }
                selectors.push(r);
            }
        }
    }

    let next: Vec<String> = sel
        .next_page
        .css
        .select_in(root)
        .into_iter()
        .filter_map(|e| sel.next_page.value(e))
        .collect();
    selectors.push(SelectorReport {
        key: sel.next_page.describe(),
        scope: "the page".to_string(),
        count: next.len(),
        of: None,
        first: next.iter().take(FIRST).cloned().collect(),
        nearest: Vec::new(),
        why: String::new(),
        note: next
            .is_empty()
            .then(|| "no next page: this is the last (or only) page".to_string()),
        ok: true,
        checked: true,
    });

    let page = complete_check(html_text, sel, url)
        .and_then(|()| extract_guild(&doc, sel, url))
        .and_then(|page| closed_unless_ranking(html_text, page, sel, url));
    let guild_kind = page.as_ref().ok().map(|p| p.kind);
    let outcome = page
        .map(|page| {
            if page.kind == GuildPageKind::NotFound {
                "the site's \"not found\" page (unknown_guild): an unknown guild, zero rows"
                    .to_string()
            } else if let GuildPageKind::NoRanking { containers } = page.kind {
                format!(
                    "no ranking ({containers} of the ranking_index + 1 = {} `ranking` matches needed), a complete page: an unknown guild or a changed layout, decided with the world's other guild pages (below)",
                    index + 1
                )
            } else {
                let first = page
                    .rows
                    .first()
                    .map(|r| {
                        format!(
                            "; first: #{} {} ({}, level {}, {} xp)",
                            r.rank, r.name, r.vocation, r.level, r.experience
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{} rows{first}{}",
                    page.rows.len(),
                    page.next
                        .map(|n| format!("; next page {n}"))
                        .unwrap_or_default()
                )
            }
        })
        .map_err(|e| e.to_string());
    PageReport {
        what: format!("guild {guild}"),
        url: url.to_string(),
        selectors,
        findings,
        outcome,
        guild_kind,
    }
}
