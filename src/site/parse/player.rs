//! The player page: a watched player's numbers of the day, from the
//! tables of days told apart by their header words.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use scraper::{ElementRef, Html};
use serde::Serialize;

use super::common::{bad_value, complete_check, layout, parse_number};
use crate::site::SiteError;
use crate::site::selectors::Compiled;
use crate::site::text::match_key;

/// A watched player's numbers of one day, from the player page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlayerDay {
    /// The day (the newest date of the two tables).
    pub date: NaiveDate,
    /// Raw experience of that day (0 when the experience table has no row
    /// for it).
    pub raw_xp: i64,
    /// Minutes online that day (0 when the online table has no row for it).
    pub online_minutes: i64,
}

/// What a player page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PlayerPage {
    /// The newest day of the experience and online tables.
    Day(PlayerDay),
    /// Both tables are there, without a single row (a player with no
    /// history yet).
    NoDays,
    /// Neither table is there: the site does not know the player.
    Unknown,
}

/// Minutes of an online time: `3h 10m`, `50m`, `0m`, `2h`, `1h05m`,
/// `3 h 10 min` (case-insensitive; whitespace anywhere), or `03:10`.
pub fn parse_duration_minutes(text: &str) -> Option<i64> {
    let t = text.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    if let Some((h, m)) = t.split_once(':') {
        let h: i64 = h.trim().parse().ok()?;
        let m: i64 = m.trim().parse().ok()?;
        return (h >= 0 && (0..60).contains(&m)).then(|| h * 60 + m);
    }
    let mut total: i64 = 0;
    let mut seen_unit = false;
    let mut rest = t.as_str();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let (factor, len) = if let Some(r) = rest.strip_prefix("min") {
            (1, rest.len() - r.len())
        } else if rest.starts_with('m') {
            (1, 1)
        } else if rest.starts_with('h') {
            (60, 1)
        } else {
            return None;
        };
        rest = &rest[len..];
        total = total.checked_add(n.checked_mul(factor)?)?;
        seen_unit = true;
    }
    seen_unit.then_some(total)
}

/// A player page date: `dd/mm/yyyy` (also `dd-mm-yyyy`, `dd.mm.yyyy`), or
/// ISO `yyyy-mm-dd` as an attribute would hold it; found anywhere in the
/// text.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    static DAY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:\b([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})\b)|(?:\b([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})\b)")
            .expect("a constant, valid pattern")
    });
    let caps = DAY.captures(text)?;
    let num = |i: usize| caps.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    if let Some(y) = caps.get(1) {
        NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, num(2)?, num(3)?)
    } else {
        let y = caps.get(6)?.as_str().parse().ok()?;
        NaiveDate::from_ymd_opt(y, num(5)?, num(4)?)
    }
}

/// One table of days on a player page: the positions of its date and
/// value columns among its header cells, and its rows.
#[derive(Debug, Clone)]
pub(crate) struct DayTable<'a> {
    pub(crate) table: ElementRef<'a>,
    /// Header texts, in order.
    pub(crate) headers: Vec<String>,
    /// Position of the date column.
    pub(crate) date_col: Option<usize>,
    /// Position of the value column.
    pub(crate) value_col: usize,
    /// Rows holding at least one cell, each as its cells' values.
    pub(crate) rows: Vec<Vec<String>>,
}

/// The position of the header matching `key`: equal first, else the first
/// that contains it.
pub(crate) fn column(headers: &[String], key: &str) -> Option<usize> {
    let keys: Vec<String> = headers.iter().map(|h| match_key(h)).collect();
    keys.iter()
        .position(|h| h == key)
        .or_else(|| keys.iter().position(|h| h.contains(key)))
}

/// Every `player_table` of the page with its header texts.
pub(crate) fn player_tables<'a>(
    doc: &'a Html,
    sel: &Compiled,
) -> Vec<(ElementRef<'a>, Vec<String>)> {
    sel.player_table
        .select_in(doc.root_element())
        .into_iter()
        .map(|t| {
            let headers = sel
                .player_header
                .css
                .select_in(t)
                .into_iter()
                .map(|h| sel.player_header.value(h).unwrap_or_default())
                .collect();
            (t, headers)
        })
        .collect()
}

/// The `player_row`s of a player-page table holding at least one
/// `player_cell`, each as its cells' values.
pub(crate) fn player_rows(table: ElementRef<'_>, sel: &Compiled) -> Vec<Vec<String>> {
    sel.player_row
        .select_in(table)
        .into_iter()
        .map(|r| {
            sel.player_cell
                .css
                .select_in(r)
                .into_iter()
                .map(|c| sel.player_cell.value(c).unwrap_or_default())
                .collect::<Vec<String>>()
        })
        .filter(|cells| !cells.is_empty())
        .collect()
}

/// The table whose headers hold `value_key`, with its rows read.
pub(crate) fn day_table<'a>(
    tables: &[(ElementRef<'a>, Vec<String>)],
    sel: &Compiled,
    value_key: &str,
    date_key: &str,
) -> Option<DayTable<'a>> {
    let (table, headers, value_col) = tables
        .iter()
        .find_map(|(t, h)| column(h, value_key).map(|c| (*t, h.clone(), c)))?;
    let date_col = column(&headers, date_key);
    let rows = player_rows(table, sel);
    Some(DayTable {
        table,
        headers,
        date_col,
        value_col,
        rows,
    })
}

/// The newest row of a table of days: `(date, value)`, values read with
/// `read` (`field` names the key for messages).
fn newest_day(
    t: &DayTable<'_>,
    date_key_name: &str,
    value_key_name: &str,
    read: fn(&str) -> Option<i64>,
    url: &str,
) -> Result<Option<(NaiveDate, i64)>, SiteError> {
    let Some(date_col) = t.date_col else {
        return Err(layout(
            format!(
                "{date_key_name} (no header of that table matches it; headers: {})",
                t.headers.join(" | ")
            ),
            url,
        ));
    };
    let mut best: Option<(NaiveDate, i64)> = None;
    for cells in &t.rows {
        let date_text = cells.get(date_col).cloned().unwrap_or_default();
        let date = parse_day(&date_text).ok_or_else(|| bad_value(date_key_name, date_text, url))?;
        let value_text = cells.get(t.value_col).cloned().unwrap_or_default();
        let value = read(&value_text).ok_or_else(|| bad_value(value_key_name, value_text, url))?;
        // Newest first on the real site; the newest date wins wherever it is.
        if best.is_none_or(|(d, _)| date > d) {
            best = Some((date, value));
        }
    }
    Ok(best)
}

/// Parse a player page: today's raw experience and online minutes (the
/// newest rows of the experience and online tables, told apart by their
/// header words).
pub fn parse_player(html_text: &str, sel: &Compiled, url: &str) -> Result<PlayerPage, SiteError> {
    complete_check(html_text, sel, url)?;
    let doc = Html::parse_document(html_text);
    extract_player(&doc, sel, url)
}

/// The part of [`parse_player`] after the HTML parser.
pub fn extract_player(doc: &Html, sel: &Compiled, url: &str) -> Result<PlayerPage, SiteError> {
    let tables = player_tables(doc, sel);
    let (xp_key, xp_date_key, online_key, online_date_key) = (
        &sel.xp_column,
        &sel.xp_date_column,
        &sel.online_column,
        &sel.online_date_column,
    );
    let xp = day_table(&tables, sel, xp_key, xp_date_key);
    let online = day_table(&tables, sel, online_key, online_date_key);
    let s = &sel.source;
    let (xp, online) = match (xp, online) {
        (None, None) => return Ok(PlayerPage::Unknown),
        (Some(_), None) => {
            return Err(layout(
                format!("online_column = {:?}", s.online_column),
                url,
            ));
        }
        (None, Some(_)) => return Err(layout(format!("xp_column = {:?}", s.xp_column), url)),
        (Some(x), Some(o)) => (x, o),
    };
    let xp_day = newest_day(&xp, "xp_date_column", "xp_column", parse_number, url)?;
    let online_day = newest_day(
        &online,
        "online_date_column",
        "online_column",
        parse_duration_minutes,
        url,
    )?;
    let date = match (xp_day, online_day) {
        (None, None) => return Ok(PlayerPage::NoDays),
        (Some((a, _)), Some((b, _))) => a.max(b),
        (Some((d, _)), None) | (None, Some((d, _))) => d,
    };
    let on = |day: Option<(NaiveDate, i64)>| day.filter(|(d, _)| *d == date).map_or(0, |(_, v)| v);
    Ok(PlayerPage::Day(PlayerDay {
        date,
        raw_xp: on(xp_day),
        online_minutes: on(online_day),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Selectors;

    fn sel() -> Compiled {
        Selectors::default().compile().expect("defaults")
    }

    #[test]
    fn online_durations() {
        let table: &[(&str, Option<i64>)] = &[
            ("3h 10m", Some(190)),
            ("50m", Some(50)),
            ("0m", Some(0)),
            ("2h", Some(120)),
            ("1h05m", Some(65)),
            (" 3 h 10 min ", Some(190)),
            ("12H 1M", Some(721)),
            ("03:10", Some(190)),
            ("0:00", Some(0)),
            ("", None),
            ("10", None),
            ("h", None),
            ("3h x", None),
            ("1:75", None),
            ("-5m", None),
            ("99999999999999999999h", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration_minutes(text), *want, "{text:?}");
        }
    }

    #[test]
    fn player_days() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        let table: &[(&str, Option<NaiveDate>)] = &[
            ("29/11/2026", d(2026, 11, 29)),
            ("  01/02/2026\r\n", d(2026, 2, 1)),
            ("1/2/2026", d(2026, 2, 1)),
            ("29.11.2026", d(2026, 11, 29)),
            ("2026-11-29", d(2026, 11, 29)),
            ("Hoje, 29/11/2026", d(2026, 11, 29)),
            ("31/02/2026", None),
            ("29/11", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_day(text), *want, "{text:?}");
        }
    }

    /// The real shape: four tables newest row first, deaths and kills
    /// before the two that matter, CRLF and indentation in cells.
    fn player_page(xp_rows: &str, online_rows: &str) -> String {
        format!(
            "<!DOCTYPE html>\r\n<html><body>\r\n<h2>Zé Pequeno</h2>\r\n\
             <table class=\"table\"><thead><tr><th>Time</th><th>World</th><th>Level</th><th>Killed by</th></tr></thead>\r\n\
             <tbody><tr><td>28/11/2026 10:00</td><td>Aurera</td><td>511</td><td>a dragon</td></tr></tbody></table>\r\n\
             <table class=\"table\"><thead><tr><th>Time</th><th>World</th><th>Victim</th><th>Victim Level</th></tr></thead><tbody></tbody></table>\r\n\
             <table class=\"table\"><thead><tr><th> Date </th><th>\r\n Online time </th></tr></thead>\r\n<tbody>{online_rows}</tbody></table>\r\n\
             <table class=\"table\"><thead><tr><th>Data</th><th>Level</th><th>Δ Level</th><th>Raw XP no dia</th></tr></thead>\r\n<tbody>{xp_rows}</tbody></table>\r\n\
             </body></html>"
        )
    }

    fn xp_row(date: &str, xp: &str) -> String {
        format!("<tr><td>\r\n {date} </td><td>512</td><td>+1</td><td> {xp} </td></tr>\r\n")
    }

    fn online_row(date: &str, time: &str) -> String {
        format!("<tr><td>{date}</td><td>\r\n   {time}\r\n</td></tr>\r\n")
    }

    #[test]
    fn player_page_newest_rows() {
        let page = player_page(
            &[
                xp_row("29/11/2026", "1.234.567"),
                xp_row("28/11/2026", "9.999.999"),
            ]
            .concat(),
            &[
                online_row("29/11/2026", "3h 10m"),
                online_row("28/11/2026", "50m"),
            ]
            .concat(),
        );
        assert_eq!(
            parse_player(&page, &sel(), "u").expect("parses"),
            PlayerPage::Day(PlayerDay {
                date: NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
                raw_xp: 1_234_567,
                online_minutes: 190,
            })
        );
        // A day without experience yet: the online table is a day ahead.
        let page = player_page(
            &xp_row("28/11/2026", "9.999.999"),
            &[
                online_row("29/11/2026", "0m"),
                online_row("28/11/2026", "50m"),
            ]
            .concat(),
        );
        assert_eq!(
            parse_player(&page, &sel(), "u").expect("parses"),
            PlayerPage::Day(PlayerDay {
                date: NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
                raw_xp: 0,
                online_minutes: 0,
            })
        );
        // Rows in any order: the newest date wins.
        let page = player_page(
            &[xp_row("27/11/2026", "1"), xp_row("29/11/2026", "5")].concat(),
            &online_row("29/11/2026", "1h"),
        );
        assert!(matches!(
            parse_player(&page, &sel(), "u"),
            Ok(PlayerPage::Day(PlayerDay {
                raw_xp: 5,
                online_minutes: 60,
                ..
            }))
        ));
        assert_eq!(
            parse_player(&player_page("", ""), &sel(), "u").expect("parses"),
            PlayerPage::NoDays
        );
    }

    #[test]
    fn player_page_errors_and_unknown_players() {
        let unknown = "<html><body><p>Jogador não encontrado.</p><table><tr><th>Time</th></tr></table></body></html>";
        assert_eq!(
            parse_player(unknown, &sel(), "u").expect("parses"),
            PlayerPage::Unknown
        );
        let cases: Vec<(String, &str)> = vec![
            (
                player_page(
                    &xp_row("29/11/2026", "lots"),
                    &online_row("29/11/2026", "1h"),
                ),
                "cannot read xp_column `lots`",
            ),
            (
                player_page(
                    &xp_row("29/11/2026", "1"),
                    &online_row("29/11/2026", "soon"),
                ),
                "cannot read online_column `soon`",
            ),
            (
                player_page(&xp_row("ontem", "1"), &online_row("29/11/2026", "1h")),
                "cannot read xp_date_column `ontem`",
            ),
            (
                player_page(&xp_row("29/11/2026", "1"), "").replace("Online time", "Tempo"),
                "online_column = \"Online time\"",
            ),
            (
                player_page(&xp_row("29/11/2026", "1"), "").replace("</html>", ""),
                "truncated",
            ),
        ];
        for (page, want) in cases {
            let err = parse_player(&page, &sel(), "http://x/player?name=Z").expect_err(want);
            let msg = err.to_string();
            assert!(
                msg.contains(want) && msg.contains("http://x/player?name=Z"),
                "{want}: {msg}"
            );
        }
    }
}
