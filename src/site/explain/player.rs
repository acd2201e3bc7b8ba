//! A player page explained: which table is the experience one and which
//! the online one, their rows and the day read.

use scraper::Html;

use super::matched::{css_report, field_report};
use super::nearest::NEAREST;
use super::report::{FIRST, PageReport, SelectorReport};
use crate::site::parse::{PlayerPage, complete_check, day_table, extract_player, player_tables};
use crate::site::selectors::Compiled;

/// Explain a watched player's page: the tables of days and their headers,
/// which one is the experience table and which the online table (by their
/// header words), their rows and cells, and the parser's verdict.
pub fn explain_player(html_text: &str, sel: &Compiled, url: &str, name: &str) -> PageReport {
    let doc = Html::parse_document(html_text);
    let root = doc.root_element();
    let mut selectors = Vec::new();
    let mut findings = Vec::new();
    let (mut tables_report, found) = css_report(&sel.player_table, "the page", root, false);
    tables_report.first.clear();
    selectors.push(tables_report);
    let tables = player_tables(&doc, sel);
    let mut headers_report = field_report(&sel.player_header, "tables", &found, root);
    headers_report.ok = found.is_empty() || headers_report.count > 0;
    headers_report.first = tables
        .iter()
        .take(FIRST + 1)
        .map(|(_, h)| h.join(" | "))
        .collect();
    selectors.push(headers_report);
    let (xp_key, xp_date_key, online_key, online_date_key) = (
        &sel.xp_column,
        &sel.xp_date_column,
        &sel.online_column,
        &sel.online_date_column,
    );
    let src = &sel.source;
    let all_headers: Vec<String> = tables
        .iter()
        .flat_map(|(_, h)| h.iter().cloned())
        .filter(|h| !h.is_empty())
        .collect();
    // Neither table: an unknown player, not a broken key.
    let any_table = day_table(&tables, sel, xp_key, xp_date_key).is_some()
        || day_table(&tables, sel, online_key, online_date_key).is_some();
    let mut rows_scopes = Vec::new();
    for (label, value_name, value_words, value_key, date_name, date_words, date_key) in [
        (
            "experience",
            "xp_column",
            &src.xp_column,
            xp_key,
            "xp_date_column",
            &src.xp_date_column,
            xp_date_key,
        ),
        (
            "online",
            "online_column",
            &src.online_column,
            online_key,
            "online_date_column",
            &src.online_date_column,
            online_date_key,
        ),
    ] {
        let table = day_table(&tables, sel, value_key, date_key);
        let position = table
            .as_ref()
            .and_then(|t| tables.iter().position(|(e, _)| e.id() == t.table.id()));
        let header_report = |key_name: &str, words: &String, col: Option<usize>| SelectorReport {
            key: format!("{key_name} = {words:?}"),
            scope: "table headers".to_string(),
            count: usize::from(col.is_some()),
            of: None,
            first: match (&table, col) {
                (Some(t), Some(c)) => vec![format!(
                    "column {} ({:?}) of table {}",
                    c + 1,
                    t.headers.get(c).cloned().unwrap_or_default(),
                    position.map_or(0, |p| p + 1)
                )],
                _ => Vec::new(),
            },
            nearest: if col.is_none() && any_table {
                all_headers
                    .iter()
                    .take(NEAREST * 2)
                    .map(|h| format!("{h:?}"))
                    .collect()
            } else {
                Vec::new()
            },
            why: "the header cells found (compared ignoring case, whitespace and punctuation)"
                .to_string(),
            note: None,
            ok: col.is_some() || !any_table,
            checked: true,
        };
        selectors.push(header_report(
            value_name,
            value_words,
            table.as_ref().map(|t| t.value_col),
        ));
        match &table {
            Some(t) => {
                selectors.push(header_report(date_name, date_words, t.date_col));
                rows_scopes.push(t.table);
                let newest = t.rows.first().map(|r| r.join(" | ")).unwrap_or_default();
                findings.push(format!(
                    "{label} table: table {} of {}, {} day row{}; first row: {newest:?}",
                    position.map_or(0, |p| p + 1),
                    tables.len(),
                    t.rows.len(),
                    if t.rows.len() == 1 { "" } else { "s" }
                ));
            }
            None => {
                selectors.push(SelectorReport::not_checked(
                    format!("{date_name} = {date_words:?}"),
                    &format!("{label} table"),
                ));
                findings.push(format!(
                    "{label} table: no table has a header containing {value_words:?}"
                ));
            }
        }
    }
    let (mut row_report, rows) = match rows_scopes.first() {
        Some(scope) => {
            let mut rows = Vec::new();
            for t in &rows_scopes {
                rows.extend(sel.player_row.select_in(*t));
            }
            let (r, _) = css_report(&sel.player_row, "the day tables", *scope, true);
            (r, rows)
        }
        None => (
            SelectorReport::not_checked(sel.player_row.describe(), "day table"),
            Vec::new(),
        ),
    };
    if !rows_scopes.is_empty() {
        row_report.count = rows.len();
        row_report.first.clear();
    }
    selectors.push(row_report);
    if rows.is_empty() {
        selectors.push(SelectorReport::not_checked(
            sel.player_cell.describe(),
            "row",
        ));
    } else {
        let mut r = field_report(&sel.player_cell, "rows", &rows, root);
        // Header rows hold no cells: they are skipped, not a problem.
        r.ok = r.count > 0;
        selectors.push(r);
    }
    let outcome = complete_check(html_text, sel, url)
        .and_then(|()| extract_player(&doc, sel, url))
        .map(|page| match page {
            PlayerPage::Day(d) => format!(
                "{}: {} raw xp, {} min online",
                d.date.format("%d/%m/%Y"),
                d.raw_xp,
                d.online_minutes
            ),
            PlayerPage::NoDays => "both tables, no day yet (nothing to record)".to_string(),
            PlayerPage::Unknown => {
                "neither table: the site does not know this player (a warning, not a failure)"
                    .to_string()
            }
        })
        .map_err(|e| e.to_string());
    PageReport {
        what: format!("player {name}"),
        url: url.to_string(),
        selectors,
        findings,
        outcome,
        guild_kind: None,
    }
}
