//! Page parsing: status page → per-world update times; guild page → rows.
//!
//! Every function here is synchronous and drops the `scraper::Html` before
//! returning (it is not `Send`), so callers can `.await` freely afterwards.

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveTime, Utc};
use std::collections::HashMap;

use scraper::{ElementRef, Html};
use serde::Serialize;

use super::SiteError;
use super::selectors::{Compiled, FastRanking};

/// One world's line of the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldStatus {
    /// World name as the site writes it.
    pub world: String,
    /// The routine's last update as written (e.g. `Hoje às 09:23`).
    pub raw: String,
    /// That time, resolved in the site's time zone.
    pub update_time: DateTime<FixedOffset>,
}

/// One ranking row of a guild page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayerRow {
    /// Rank within the guild.
    pub rank: u32,
    /// Player name (trimmed).
    pub name: String,
    /// Vocation.
    pub vocation: String,
    /// Level.
    pub level: u32,
    /// Experience gained today.
    pub experience: i64,
}

/// What one guild page holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuildPage {
    /// Ranking rows, in page order.
    pub rows: Vec<PlayerRow>,
    /// The `rel="next"` link, as written (relative or absolute).
    pub next: Option<String>,
    /// The page has only the vocation table: the site does not know the guild.
    pub unknown_guild: bool,
}

/// Collapse runs of whitespace (including non-breaking spaces) and trim.
pub fn clean_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts {
        // `split_whitespace` covers the non-breaking space too.
        for word in part.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

fn text_of(el: ElementRef<'_>) -> String {
    clean_text(el.text())
}

/// Parse `74.287.224`, `74,287,224`, `74 287 224` or `74287224`.
pub fn parse_number(text: &str) -> Option<i64> {
    parse_number_parts(std::iter::once(text))
}

/// [`parse_number`] over the text pieces of a cell, without joining them:
/// whitespace and group separators (`.` `,` `'` `_`) are ignored, a sign
/// may lead, a rank's trailing `º`/`°` is allowed.
pub fn parse_number_parts<'a>(parts: impl Iterator<Item = &'a str>) -> Option<i64> {
    let mut value: i64 = 0;
    let mut seen_digit = false;
    let mut negative = false;
    let mut seen_sign = false;
    let mut ended = false;
    for part in parts {
        for c in part.chars() {
            match c {
                '0'..='9' if !ended => {
                    seen_digit = true;
                    value = value
                        .checked_mul(10)?
                        .checked_add(i64::from(c as u8 - b'0'))?;
                }
                '-' | '+' if !seen_digit && !seen_sign => {
                    seen_sign = true;
                    negative = c == '-';
                }
                '.' | ',' | '\'' | '_' => {}
                'º' | '°' if seen_digit => ended = true,
                c if c.is_whitespace() => {}
                _ => return None,
            }
        }
    }
    if !seen_digit {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// Resolve a status-page time in the site's zone, relative to `now`:
/// `Hoje às 09:23` (today), `Ontem às 23:58` (yesterday), or an explicit
/// `28/11/2026 às 09:23` / `28/11/2026 09:23`.
pub fn parse_site_time(
    text: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Option<DateTime<FixedOffset>> {
    let t = clean_text(std::iter::once(text));
    let lower = t.to_lowercase();
    let today = now.with_timezone(&offset).date_naive();
    let (date, rest): (NaiveDate, &str) = if let Some(rest) = lower.strip_prefix("hoje") {
        (today, rest)
    } else if let Some(rest) = lower.strip_prefix("ontem") {
        (today - ChronoDuration::days(1), rest)
    } else {
        let (date_text, rest) = lower.split_once(' ')?;
        (NaiveDate::parse_from_str(date_text, "%d/%m/%Y").ok()?, rest)
    };
    let rest = rest.trim();
    let rest = rest
        .strip_prefix("às")
        .or_else(|| rest.strip_prefix("as"))
        .or_else(|| rest.strip_prefix("at"))
        .unwrap_or(rest)
        .trim();
    let time = NaiveTime::parse_from_str(rest, "%H:%M").ok()?;
    date.and_time(time).and_local_timezone(offset).single()
}

/// Whether `hay` contains `needle`, ASCII case-insensitively (no allocation;
/// the marker is usually found at the very end, so search from the end).
fn contains_ignore_ascii_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    (0..=h.len() - n.len())
        .rev()
        .any(|i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// `text` without `suffix` (case-insensitive), if it ends with it.
fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    (text.is_char_boundary(cut) && text[cut..].to_lowercase() == suffix.to_lowercase())
        .then(|| &text[..cut])
}

fn complete_check(html_text: &str, sel: &Compiled, url: &str) -> Result<(), SiteError> {
    let marker = &sel.source.complete_marker;
    if !marker.is_empty() && !contains_ignore_ascii_case(html_text, marker) {
        return Err(SiteError::Truncated {
            url: url.to_string(),
            marker: marker.clone(),
        });
    }
    Ok(())
}

fn layout(selector_key: &str, selector: &str, url: &str) -> SiteError {
    SiteError::Layout {
        selector: format!("{selector_key} = {selector:?}"),
        url: url.to_string(),
    }
}

/// Parse the status page into one entry per world block.
pub fn parse_status(
    html_text: &str,
    sel: &Compiled,
    url: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<Vec<WorldStatus>, SiteError> {
    complete_check(html_text, sel, url)?;
    let doc = Html::parse_document(html_text);
    let src = &sel.source;
    let suffix = src.status_title_suffix.trim();
    let routine = src.status_routine.trim().to_lowercase();
    let mut any_row = false;
    let mut any_title = false;
    let mut current: Option<String> = None;
    let mut out: Vec<WorldStatus> = Vec::new();
    for row in doc.select(&sel.status_row) {
        any_row = true;
        let cells: Vec<String> = row.select(&sel.status_cell).map(text_of).collect();
        if cells.is_empty() {
            continue;
        }
        // A title row: "<World> Status" in the first cell, nothing else.
        if cells[1..].iter().all(|c| c.is_empty()) {
            if let Some(world) = strip_suffix_ci(&cells[0], suffix) {
                any_title = true;
                current = Some(world.trim().to_string());
            }
            continue;
        }
        // A routine row: name, last update, delay, status word.
        let Some(world) = &current else { continue };
        if cells[0].to_lowercase() != routine || cells.len() < 2 {
            continue;
        }
        let raw = cells[1].clone();
        let update_time =
            parse_site_time(&raw, now, offset).ok_or_else(|| SiteError::BadValue {
                field: "status time".into(),
                value: raw.clone(),
                url: url.to_string(),
            })?;
        if !out.iter().any(|w| &w.world == world) {
            out.push(WorldStatus {
                world: world.clone(),
                raw,
                update_time,
            });
        }
    }
    if !any_row {
        return Err(layout("status_row", &src.status_row, url));
    }
    if !any_title {
        return Err(layout("status_title_suffix", &src.status_title_suffix, url));
    }
    if out.is_empty() {
        return Err(layout("status_routine", &src.status_routine, url));
    }
    Ok(out)
}

type RowCells<'a> = [Option<ElementRef<'a>>; 5];

/// Pre-order walk of the elements under `root` (not `root` itself);
/// `visit` returns whether to walk into the element's children.
fn walk_elements<'a>(root: ElementRef<'a>, mut visit: impl FnMut(ElementRef<'a>) -> bool) {
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

/// Rows and their cells (name, rank, vocation, level, experience) with
/// simple selectors: one walk of the table, names compared directly.
fn rows_fast<'a>(
    table: ElementRef<'a>,
    fast: &FastRanking,
) -> (Vec<ElementRef<'a>>, Vec<RowCells<'a>>) {
    let mut trs = Vec::new();
    let mut cells: Vec<RowCells<'a>> = Vec::new();
    walk_elements(table, |el| {
        let e = el.value();
        if fast.row.matches(e) {
            trs.push(el);
            cells.push([None; 5]);
            return true;
        }
        let Some(slots) = cells.last_mut() else {
            return true;
        };
        let mut matched = false;
        for (slot, simple) in slots.iter_mut().zip(&fast.cells) {
            if slot.is_none() && simple.matches(e) {
                *slot = Some(el);
                matched = true;
            }
        }
        // A cell holds no other cell: no need to walk inside it.
        !matched
    });
    (trs, cells)
}

/// Rows and their cells with any selectors: one walk of the table per
/// selector (`select` reuses its matching caches over a walk, several times
/// cheaper than `Selector::matches` per element), each cell assigned to the
/// row it sits in (first match in a row wins).
fn rows_generic<'a>(
    table: ElementRef<'a>,
    sel: &Compiled,
) -> (Vec<ElementRef<'a>>, Vec<RowCells<'a>>) {
    let trs: Vec<ElementRef<'a>> = table.select(&sel.ranking_row).collect();
    let index: HashMap<_, usize> = trs.iter().enumerate().map(|(i, tr)| (tr.id(), i)).collect();
    let mut cells: Vec<RowCells<'a>> = vec![[None; 5]; trs.len()];
    let cell_selectors = [
        &sel.name,
        &sel.rank,
        &sel.vocation,
        &sel.level,
        &sel.experience,
    ];
    for (k, selector) in cell_selectors.into_iter().enumerate() {
        for el in table.select(selector) {
            if let Some(&i) = el.ancestors().find_map(|a| index.get(&a.id())) {
                cells[i][k].get_or_insert(el);
            }
        }
    }
    (trs, cells)
}

/// Parse one guild ranking page.
pub fn parse_guild(html_text: &str, sel: &Compiled, url: &str) -> Result<GuildPage, SiteError> {
    complete_check(html_text, sel, url)?;
    let doc = Html::parse_document(html_text);
    extract_guild(&doc, sel, url)
}

/// Extract a guild page from a parsed document (the part of
/// [`parse_guild`] after the HTML parser).
pub fn extract_guild(doc: &Html, sel: &Compiled, url: &str) -> Result<GuildPage, SiteError> {
    let src = &sel.source;
    let index = src.ranking_table_index;
    let (tables, next) = match (&sel.ranking_table_fast, &sel.next_page_fast) {
        (Some(table_sel), Some(next_sel)) => {
            // One walk that does not enter the ranking table (walked later
            // for its rows), direct matching.
            let mut tables: Vec<ElementRef<'_>> = Vec::new();
            let mut next: Option<&str> = None;
            walk_elements(doc.root_element(), |el| {
                let e = el.value();
                if next.is_none() && next_sel.matches(e) {
                    next = e.attr("href");
                }
                if table_sel.matches(e) {
                    tables.push(el);
                    return tables.len() != index + 1;
                }
                true
            });
            (tables, next)
        }
        _ => (
            doc.select(&sel.ranking_table).collect(),
            doc.select(&sel.next_page).find_map(|a| a.attr("href")),
        ),
    };
    if tables.is_empty() {
        return Err(layout("ranking_table", &src.ranking_table, url));
    }
    let next = next.map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
    let Some(table) = tables.get(index) else {
        return Ok(GuildPage {
            rows: Vec::new(),
            next: None,
            unknown_guild: true,
        });
    };
    let (trs, cells) = match &sel.fast {
        Some(fast) => rows_fast(*table, fast),
        None => rows_generic(*table, sel),
    };
    let mut rows = Vec::with_capacity(trs.len());
    let mut data_rows = 0usize;
    for (tr, [name_cell, rank_cell, voc_cell, level_cell, xp_cell]) in trs.iter().zip(cells) {
        let Some(name_cell) = name_cell else {
            // Header rows (th) and spacer rows carry no name cell; a row of
            // td cells without one means the layout changed.
            if tr
                .children()
                .any(|c| ElementRef::wrap(c).is_some_and(|e| e.value().name() == "td"))
            {
                data_rows += 1;
            }
            continue;
        };
        data_rows += 1;
        let cell = |key: &str, found: Option<ElementRef<'_>>, text: &str| {
            found.map(text_of).ok_or_else(|| layout(key, text, url))
        };
        let link = match &sel.name_link_fast {
            Some(simple) => {
                let mut found = None;
                walk_elements(name_cell, |e| {
                    if found.is_none() && simple.matches(e.value()) {
                        found = Some(e);
                    }
                    found.is_none()
                });
                found
            }
            None => name_cell.select(&sel.name_link).next(),
        };
        let name = link
            .map(text_of)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| text_of(name_cell));
        if name.is_empty() {
            return Err(SiteError::BadValue {
                field: "name".into(),
                value: String::new(),
                url: url.to_string(),
            });
        }
        let bad = |field: &str, value: String| SiteError::BadValue {
            field: field.to_string(),
            value,
            url: url.to_string(),
        };
        // Numbers are read straight from the cell's text pieces; the text
        // is only joined for an error message.
        let number = |key: &str, found: Option<ElementRef<'_>>, text: &str| {
            let el = found.ok_or_else(|| layout(key, text, url))?;
            parse_number_parts(el.text()).ok_or_else(|| bad(key, text_of(el)))
        };
        let rank = number("rank", rank_cell, &src.rank)?;
        let rank = u32::try_from(rank).map_err(|_| bad("rank", rank.to_string()))?;
        let vocation = cell("vocation", voc_cell, &src.vocation)?;
        let level = number("level", level_cell, &src.level)?;
        let level = u32::try_from(level).map_err(|_| bad("level", level.to_string()))?;
        let experience = number("experience", xp_cell, &src.experience)?;
        rows.push(PlayerRow {
            rank,
            name,
            vocation,
            level,
            experience,
        });
    }
    if rows.is_empty() && data_rows > 0 {
        return Err(layout("name", &src.name, url));
    }
    Ok(GuildPage {
        rows,
        next,
        unknown_guild: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Selectors;
    use chrono::TimeZone;

    fn sel() -> Compiled {
        Selectors::default().compile().expect("defaults")
    }

    fn brt() -> FixedOffset {
        FixedOffset::west_opt(3 * 3600).expect("offset")
    }

    #[test]
    fn numbers() {
        let table: &[(&str, Option<i64>)] = &[
            ("74.287.224", Some(74_287_224)),
            ("74,287,224", Some(74_287_224)),
            ("  1.000 ", Some(1000)),
            ("0", Some(0)),
            ("-12.345", Some(-12_345)),
            ("74\u{a0}287", Some(74_287)),
            ("", None),
            ("abc", None),
            ("1.2x", None),
            ("12º", Some(12)),
            ("º12", None),
            ("1-2", None),
            (" \n 7 \n", Some(7)),
            (".", None),
            ("99999999999999999999999", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_number(text), *want, "{text:?}");
        }
    }

    #[test]
    fn site_times() {
        let off = brt();
        // 2026-11-29 12:00 UTC = 09:00 in UTC-3.
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time");
        let at = |y, mo, d, h, mi| off.with_ymd_and_hms(y, mo, d, h, mi, 0).single();
        let table: &[(&str, Option<DateTime<FixedOffset>>)] = &[
            ("Hoje às 09:23", at(2026, 11, 29, 9, 23)),
            ("  Hoje   às\n 00:05 ", at(2026, 11, 29, 0, 5)),
            ("Ontem às 23:58", at(2026, 11, 28, 23, 58)),
            ("hoje as 10:02", at(2026, 11, 29, 10, 2)),
            ("27/11/2026 às 08:00", at(2026, 11, 27, 8, 0)),
            ("Amanhã às 10:00", None),
            ("Hoje às 25:00", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_site_time(text, now, off), *want, "{text:?}");
        }
        // Just after midnight UTC it is still the previous day in UTC-3.
        let now = Utc
            .with_ymd_and_hms(2026, 11, 30, 1, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            parse_site_time("Hoje às 21:00", now, off),
            at(2026, 11, 29, 21, 0)
        );
    }

    const STATUS: &str = r#"<html><body>
      <table class="table">
        <tr><th colspan="4">  Aurera Status </th></tr>
        <tr><td> Online </td><td>Hoje às 09:30</td><td>1 min</td><td>Atualizado</td></tr>
        <tr><td>
             Daily Raw Ranking
            </td><td>  Hoje às 09:23 </td><td>5 min</td><td>Atualizado</td></tr>
        <tr><td>Cèlesta STATUS</td><td></td><td> </td><td></td></tr>
        <tr><th colspan="4">İİİ</th></tr>
        <tr><td>Daily Raw Ranking</td><td>Ontem às 23:58</td><td>10 h</td><td>Desatualizado</td></tr>
      </table></body></html>"#;

    #[test]
    fn status_page() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time");
        let got = parse_status(STATUS, &sel(), "http://x/status", now, brt()).expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].world, "Aurera");
        assert_eq!(got[0].raw, "Hoje às 09:23");
        assert_eq!(got[0].update_time.to_rfc3339(), "2026-11-29T09:23:00-03:00");
        assert_eq!(got[1].world, "Cèlesta");
        assert_eq!(got[1].update_time.to_rfc3339(), "2026-11-28T23:58:00-03:00");
    }

    #[test]
    fn status_layout_errors_name_selector_and_url() {
        let now = Utc::now();
        let cases: &[(&str, &str)] = &[
            ("<html><body><p>maintenance</p></body></html>", "status_row"),
            (
                "<html><table><tr><td>a</td><td>b</td></tr></table></html>",
                "status_title_suffix",
            ),
            (
                "<html><table><tr><th>A Status</th></tr><tr><td>Online</td><td>Hoje às 09:00</td></tr></table></html>",
                "status_routine",
            ),
        ];
        for (page, key) in cases {
            let err = parse_status(page, &sel(), "http://x/status", now, brt()).expect_err(page);
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("http://x/status"),
                "{msg}"
            );
            assert!(msg.contains("layout changed?"), "{msg}");
        }
    }

    fn guild_page(rows: &str, next: &str) -> String {
        format!(
            r#"<!DOCTYPE html><html><body>
            <table class="table table-highscores"><tr><th>Vocation</th><th>Players</th></tr>
              <tr><td>Knight</td><td>2</td></tr></table>
            <table class="table table-highscores">
              <tr><th>#</th><th>Name</th><th>Voc</th><th>Level</th><th>XP</th></tr>
              {rows}
            </table>{next}</body></html>"#
        )
    }

    fn row(rank: &str, name: &str, voc: &str, level: &str, xp: &str) -> String {
        format!(
            "<tr>\n <td class=\"col-rank\"> {rank} </td>\n <td class=\"col-name\">\n  <a href=\"/player?name=x\"> {name} </a>\n </td><td class=\"col-voc\"> {voc} </td><td class=\"col-level\">{level}</td><td class=\"col-xp\">\n {xp}\n</td></tr>"
        )
    }

    #[test]
    fn guild_rows() {
        let page = guild_page(
            &[
                row("1", "Zé   Pequeno", "Elite Knight", "512", "74.287.224"),
                row("2.", "ana maria", "Royal Paladin", "1,024", "74,287,224"),
                row("3", "Bob", "Druid", "8", "0"),
            ]
            .concat(),
            "",
        );
        let got = parse_guild(&page, &sel(), "http://x/g").expect("parses");
        assert!(!got.unknown_guild);
        assert_eq!(got.next, None);
        assert_eq!(
            got.rows,
            vec![
                PlayerRow {
                    rank: 1,
                    name: "Zé Pequeno".into(),
                    vocation: "Elite Knight".into(),
                    level: 512,
                    experience: 74_287_224
                },
                PlayerRow {
                    rank: 2,
                    name: "ana maria".into(),
                    vocation: "Royal Paladin".into(),
                    level: 1024,
                    experience: 74_287_224
                },
                PlayerRow {
                    rank: 3,
                    name: "Bob".into(),
                    vocation: "Druid".into(),
                    level: 8,
                    experience: 0
                },
            ]
        );
    }

    #[test]
    fn generic_and_fast_paths_agree() {
        let page = guild_page(
            &[
                row("1", "Zé   Pequeno", "Elite Knight", "512", "74.287.224"),
                row("2", "Ana", "Druid", "8", "0"),
            ]
            .concat(),
            r#"<a rel="next" href="?page=2">next</a>"#,
        );
        let fast = sel();
        let generic = Selectors {
            name: "tr > td.col-name".into(),
            experience: "td[class~=col-xp]".into(),
            ranking_table: "body table.table-highscores".into(),
            next_page: "body a[rel=next]".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        assert!(fast.fast.is_some() && generic.fast.is_none());
        let a = parse_guild(&page, &fast, "u").expect("fast");
        let b = parse_guild(&page, &generic, "u").expect("generic");
        assert_eq!(a, b);
        assert_eq!(a.rows.len(), 2);
        assert_eq!(a.next.as_deref(), Some("?page=2"));
        assert!(generic.ranking_table_fast.is_none() && generic.next_page_fast.is_none());
        // Both report a missing cell the same way.
        let broken = page.replace("col-xp", "col-exp");
        for s in [&fast, &generic] {
            let err = parse_guild(&broken, s, "u").expect_err("no xp cell");
            assert!(err.to_string().contains("experience"), "{err}");
        }
    }

    #[test]
    fn guild_next_link_and_unknown_guild() {
        let page = guild_page(
            &row("1", "A", "Druid", "1", "1"),
            r#"<a class="page" rel="next" href="/guild.php?guild=X&amp;page=2">next</a>"#,
        );
        let got = parse_guild(&page, &sel(), "http://x/g").expect("parses");
        assert_eq!(got.next.as_deref(), Some("/guild.php?guild=X&page=2"));

        let unknown = r#"<html><body><table class="table-highscores"><tr><td>Knight</td><td>0</td></tr></table></body></html>"#;
        let got = parse_guild(unknown, &sel(), "http://x/g").expect("parses");
        assert!(got.unknown_guild);
        assert!(got.rows.is_empty());
    }

    #[test]
    fn guild_errors() {
        let s = sel();
        let cases: Vec<(String, &str)> = vec![
            ("<html><body>nothing</body></html>".into(), "ranking_table"),
            (
                guild_page("<tr><td class=\"nm\">A</td><td>1</td></tr>", ""),
                "td.col-name",
            ),
            (
                guild_page(
                    "<tr><td class=\"col-rank\">1</td><td class=\"col-name\">A</td><td class=\"col-voc\">D</td><td class=\"col-level\">1</td></tr>",
                    "",
                ),
                "td.col-xp",
            ),
            (
                guild_page(&row("1", "A", "D", "1", "lots"), ""),
                "experience",
            ),
            (
                guild_page(&row("1", "A", "D", "1", "1"), "").replace("</html>", ""),
                "truncated",
            ),
        ];
        for (page, want) in cases {
            let err = parse_guild(&page, &s, "http://x/g?guild=A").expect_err(want);
            let msg = err.to_string();
            assert!(msg.contains(want), "{want}: {msg}");
            assert!(msg.contains("http://x/g?guild=A"), "{msg}");
        }
    }

    #[test]
    fn empty_known_guild_is_zero_rows() {
        let got = parse_guild(&guild_page("", ""), &sel(), "u").expect("parses");
        assert!(got.rows.is_empty());
        assert!(!got.unknown_guild);
    }
}
