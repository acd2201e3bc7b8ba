//! The status page: each world's block of routines, and the update time
//! of the ranking's routine.

use std::sync::LazyLock;

use chrono::{
    DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc,
};
use regex::Regex;
use scraper::{ElementRef, Html};
use serde::Serialize;

use super::common::{bad_value, complete_check, layout};
use crate::site::SiteError;
use crate::site::selectors::{Compiled, Field, walk_elements};
use crate::site::text::{clean_text, match_key};

/// One world's line of the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldStatus {
    /// World name as the site writes it.
    pub world: String,
    /// The routine's last update as written (e.g. `Hoje às 09:23`).
    pub raw: String,
    /// That time, resolved in the site's time zone.
    pub update_time: DateTime<FixedOffset>,
    /// Every routine of the world's block, in page order (each name once).
    pub routines: Vec<RoutineStatus>,
}

/// One routine row of a world's block, as the site shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutineStatus {
    /// The routine's name (`Daily Raw Ranking`, `Online`, …).
    pub name: String,
    /// Its last update as written (`Hoje às 09:23`).
    pub raw_time: String,
    /// That time, when it reads as one.
    pub time: Option<DateTime<FixedOffset>>,
    /// How far behind (`5 min`), when the entry says.
    pub lag: Option<String>,
    /// The site's word for its state (`Atualizado`), when the entry says.
    pub state: Option<String>,
}

/// `Hoje às 09:23`, `Ontem às 23:58`, `28/11/2026 às 09:23` anywhere in a text.
static SITE_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(hoje|ontem|([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}))\s*,?\s*(?:(?:às|as|at|à)\s*)?([0-9]{1,2}):([0-9]{2})",
    )
    .expect("a constant, valid pattern")
});

/// Resolve a status-page time in the site's zone, relative to `now`:
/// `Hoje às 09:23` (today), `Ontem às 23:58` (yesterday), or an explicit
/// `28/11/2026 às 09:23` / `28/11/2026 09:23`, found anywhere in the text
/// (labels and whitespace around it are ignored); or, as an attribute
/// would hold it, `2026-11-28T09:23:00-03:00` / `2026-11-28T09:23`.
pub fn parse_site_time(
    text: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Option<DateTime<FixedOffset>> {
    let trimmed = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Some(t.with_timezone(&offset));
    }
    for format in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(trimmed, format) {
            return Some(t.with_timezone(&offset));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(trimmed, format) {
            return t.and_local_timezone(offset).single();
        }
    }
    let caps = SITE_TIME.captures(text)?;
    let today = now.with_timezone(&offset).date_naive();
    let word = caps.get(1)?.as_str().to_lowercase();
    let date = match word.as_str() {
        "hoje" => today,
        "ontem" => today - ChronoDuration::days(1),
        _ => {
            let num = |i: usize| caps.get(i)?.as_str().parse::<u32>().ok();
            let year = caps.get(4)?.as_str().parse::<i32>().ok()?;
            NaiveDate::from_ymd_opt(year, num(3)?, num(2)?)?
        }
    };
    let hour = caps.get(5)?.as_str().parse::<u32>().ok()?;
    let minute = caps.get(6)?.as_str().parse::<u32>().ok()?;
    let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
    date.and_time(time).and_local_timezone(offset).single()
}

/// The world name in a title's text: the pattern's `world` group, with
/// whitespace collapsed and emoji or separators at its edges removed.
pub fn world_of_title(pattern: &Regex, text: &str) -> Option<String> {
    let caps = pattern.captures(text)?;
    let raw = caps.name("world")?.as_str();
    let keep = |c: char| c.is_alphanumeric() || matches!(c, '(' | ')' | '[' | ']' | '\'');
    let name = clean_text(std::iter::once(raw));
    let name = name.trim_matches(|c: char| !keep(c));
    (!name.is_empty()).then(|| name.to_string())
}

/// A world title found on the status page.
#[derive(Debug, Clone)]
pub(crate) struct Title {
    /// The text (or attribute) the pattern was tried on.
    pub(crate) text: String,
    /// The world, when the pattern matched.
    pub(crate) world: Option<String>,
}

/// Titles and routine entries of a status page, in document order; each
/// entry with the index (in `titles`) of the nearest world title before it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusScan<'a> {
    pub(crate) titles: Vec<Title>,
    pub(crate) entries: Vec<(ElementRef<'a>, Option<usize>)>,
}

/// One walk of the document: world titles and routine entries.
pub(crate) fn scan_status<'a>(doc: &'a Html, sel: &Compiled) -> StatusScan<'a> {
    let mut scan = StatusScan::default();
    let mut current: Option<usize> = None;
    let root = doc.root_element();
    let mut visit = |el: ElementRef<'a>| {
        if sel.world_title.css.matches(el) {
            let text = sel.world_title.value(el).unwrap_or_default();
            let world = world_of_title(&sel.world_pattern, &text);
            if world.is_some() {
                current = Some(scan.titles.len());
            }
            scan.titles.push(Title { text, world });
        }
        if sel.routine_entry.matches(el) {
            scan.entries.push((el, current));
        }
        true
    };
    visit(root);
    walk_elements(root, visit);
    scan
}

/// A routine entry, read.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// `routine_name`'s value (`None`: it matched nothing in the entry).
    pub(crate) name: Option<String>,
    /// `routine_time`'s value (`None`: it matched nothing in the entry).
    pub(crate) time: Option<String>,
}

pub(crate) fn read_entry(el: ElementRef<'_>, sel: &Compiled) -> Entry {
    let read = |f: &Field| f.css.first_in(el).and_then(|e| f.value(e));
    Entry {
        name: read(&sel.routine_name),
        time: read(&sel.routine_time),
    }
}

/// The phrase the site writes after every routine's name.
const ROUTINE_PHRASE: &str = "rotina de coleta";

/// A routine's name as a person reads it: without the emoji, the symbols
/// and the `Rotina de coleta` phrase the site writes around it
/// (`🔥Daily Raw RankingRotina de coleta` → `Daily Raw Ranking`).
pub fn routine_display_name(text: &str) -> String {
    let lower = text.to_lowercase();
    let cut = match lower.find(ROUTINE_PHRASE) {
        // Lowercasing can change byte lengths; fall back to the whole text.
        Some(at) if lower.len() == text.len() && text.is_char_boundary(at) => {
            format!("{} {}", &text[..at], &text[at + ROUTINE_PHRASE.len()..])
        }
        _ => text.to_string(),
    };
    let kept: String = cut
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || ",.:-/()&'".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    clean_text(std::iter::once(kept.as_str()))
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
    extract_status(&doc, sel, url, now, offset)
}

/// The part of [`parse_status`] after the HTML parser.
pub fn extract_status(
    doc: &Html,
    sel: &Compiled,
    url: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<Vec<WorldStatus>, SiteError> {
    let scan = scan_status(doc, sel);
    if scan.titles.is_empty() {
        return Err(layout(sel.world_title.describe(), url));
    }
    if scan.titles.iter().all(|t| t.world.is_none()) {
        return Err(layout(
            format!("world_pattern = {:?}", sel.source.world_pattern),
            url,
        ));
    }
    if scan.entries.is_empty() {
        return Err(layout(sel.routine_entry.describe(), url));
    }
    let mut out: Vec<WorldStatus> = Vec::new();
    let mut any_name = false;
    // Every routine row per world (by match key), for the status data.
    let mut rows: Vec<(String, Vec<RoutineStatus>)> = Vec::new();
    for (el, title) in &scan.entries {
        let Some(world) = title.and_then(|i| scan.titles[i].world.as_ref()) else {
            continue;
        };
        let read = |f: &Field| f.css.first_in(*el).and_then(|e| f.value(e));
        let (Some(name), Some(raw_time)) = (read(&sel.routine_name), read(&sel.routine_time))
        else {
            continue;
        };
        let key = match_key(world);
        let i = match rows.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                rows.push((key, Vec::new()));
                rows.len() - 1
            }
        };
        let block = &mut rows[i].1;
        let name = routine_display_name(&name);
        if block.iter().any(|r| match_key(&r.name) == match_key(&name)) {
            continue;
        }
        block.push(RoutineStatus {
            time: parse_site_time(&raw_time, now, offset),
            name,
            raw_time,
            lag: read(&sel.routine_lag).filter(|v| !v.is_empty()),
            state: read(&sel.routine_state).filter(|v| !v.is_empty()),
        });
    }
    for (el, title) in &scan.entries {
        let Some(world) = title.and_then(|i| scan.titles[i].world.as_ref()) else {
            continue;
        };
        let Some(name) = sel
            .routine_name
            .css
            .first_in(*el)
            .and_then(|e| sel.routine_name.value(e))
        else {
            continue;
        };
        any_name = true;
        if !match_key(&name).contains(&sel.routine) {
            continue;
        }
        // The first entry of a block wins; a world written twice, too.
        let key = match_key(world);
        if out.iter().any(|w| match_key(&w.world) == key) {
            continue;
        }
        let raw = sel
            .routine_time
            .css
            .first_in(*el)
            .and_then(|e| sel.routine_time.value(e))
            .ok_or_else(|| layout(sel.routine_time.describe(), url))?;
        let update_time = parse_site_time(&raw, now, offset)
            .ok_or_else(|| bad_value("routine_time", raw.clone(), url))?;
        let routines = rows
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        out.push(WorldStatus {
            world: world.clone(),
            raw,
            update_time,
            routines,
        });
    }
    if out.is_empty() {
        return Err(if any_name {
            layout(format!("routine = {:?}", sel.source.routine), url)
        } else {
            layout(sel.routine_name.describe(), url)
        });
    }
    Ok(out)
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

    fn nine_am() -> DateTime<Utc> {
        // 2026-11-29 12:00 UTC = 09:00 in UTC-3.
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn site_times() {
        let off = brt();
        let now = nine_am();
        let at = |y, mo, d, h, mi| off.with_ymd_and_hms(y, mo, d, h, mi, 0).single();
        let table: &[(&str, Option<DateTime<FixedOffset>>)] = &[
            ("Hoje às 09:23", at(2026, 11, 29, 9, 23)),
            ("  Hoje   às\n 00:05 ", at(2026, 11, 29, 0, 5)),
            ("\r\n   Hoje às 09:23\r\n  ", at(2026, 11, 29, 9, 23)),
            ("Ontem às 23:58", at(2026, 11, 28, 23, 58)),
            ("hoje as 10:02", at(2026, 11, 29, 10, 2)),
            ("HOJE ÀS 10:02", at(2026, 11, 29, 10, 2)),
            ("27/11/2026 às 08:00", at(2026, 11, 27, 8, 0)),
            ("27/11/2026 08:00", at(2026, 11, 27, 8, 0)),
            ("🕑 Última: Hoje às 09:23 (BRT)", at(2026, 11, 29, 9, 23)),
            ("Atualizado Ontem às 7:05 h", at(2026, 11, 28, 7, 5)),
            ("2026-11-29T09:23:00-03:00", at(2026, 11, 29, 9, 23)),
            ("2026-11-29T12:23:00Z", at(2026, 11, 29, 9, 23)),
            ("2026-11-29T09:23", at(2026, 11, 29, 9, 23)),
            ("Amanhã às 10:00", None),
            ("Hoje às 25:00", None),
            ("31/02/2026 às 10:00", None),
            ("5 min", None),
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

    #[test]
    fn world_names_from_titles() {
        let re = Regex::new(crate::site::DEFAULT_WORLD_PATTERN).expect("valid");
        let table: &[(&str, Option<&str>)] = &[
            ("Auroria Status Servidor", Some("Auroria")),
            ("AuroriaStatusServidor", Some("Auroria")),
            ("  Cèlesta STATUS ", Some("Cèlesta")),
            ("🌍 Aurera — Status", Some("Aurera")),
            ("Nova Ordem Status", Some("Nova Ordem")),
            ("Status", None),
            ("Rotina", None),
            ("🔥Daily Raw RankingRotina de coleta", None),
        ];
        for (text, want) in table {
            assert_eq!(world_of_title(&re, text).as_deref(), *want, "{text:?}");
        }
    }

    /// The real shape: a world title cell with markup and a label, emoji +
    /// name + phrase in one cell with no whitespace, CRLF, empty rows, a
    /// header with "Status", a stale row, the routine twice in one block.
    const STATUS: &str = "<html><body>\r\n      <table class=\"table\">\r\n        <tr><td colspan=\"4\"><span>Aurera</span> Status <small>Servidor</small></td></tr>\r\n        <tr><th>Rotina</th><th>Última atualização</th><th>Atraso</th><th>Status</th></tr>\r\n        <tr><td><span>🟢</span><span>Online</span><small>Rotina de coleta</small></td><td>Hoje às 09:30</td><td>1 min</td><td>Atualizado</td></tr>\r\n        <tr><td><span>🔥</span><span>Daily Raw Ranking</span><small>Rotina de coleta</small></td><td>\r\n     Hoje às 09:23 </td><td>5 min</td><td>Atualizado</td></tr>\r\n        <tr><td><span>🔥</span><span>Daily Raw Ranking</span><small>Rotina de coleta</small></td><td>Ontem às 10:00</td><td>23 h</td><td>Desatualizado</td></tr>\r\n        <tr><td colspan=\"4\"></td></tr>\r\n        <tr></tr>\r\n        <tr><td colspan=\"4\"><span>Cèlesta</span>Status<small>Servidor</small></td></tr>\r\n        <tr><td><span>💀</span><span>Deaths/Kills</span><small>Rotina de coleta</small></td><td>Ontem às 23:58</td><td>9 h</td><td>Desatualizado</td></tr>\r\n        <tr><td><span>🔥</span><b>DAILY  RAW</b> ranking<small>Rotina de coleta</small></td><td>Ontem às 23:58</td><td>10 h</td><td>Desatualizado</td></tr>\r\n      </table></body></html>";

    #[test]
    fn status_page() {
        let got =
            parse_status(STATUS, &sel(), "http://x/status", nine_am(), brt()).expect("parses");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].world, "Aurera");
        assert_eq!(got[0].raw, "Hoje às 09:23");
        assert_eq!(got[0].update_time.to_rfc3339(), "2026-11-29T09:23:00-03:00");
        assert_eq!(got[1].world, "Cèlesta");
        assert_eq!(got[1].update_time.to_rfc3339(), "2026-11-28T23:58:00-03:00");
        // Every routine row of each block, each name once, as the site
        // shows it (the header row and the repeated routine are skipped).
        let rows = |w: &WorldStatus| -> Vec<(String, String, Option<String>, Option<String>)> {
            w.routines
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        r.raw_time.clone(),
                        r.lag.clone(),
                        r.state.clone(),
                    )
                })
                .collect()
        };
        let row = |n: &str, t: &str, l: &str, st: &str| {
            (
                n.to_string(),
                t.to_string(),
                Some(l.to_string()),
                Some(st.to_string()),
            )
        };
        assert_eq!(
            rows(&got[0]),
            [
                row("Online", "Hoje às 09:30", "1 min", "Atualizado"),
                row("Daily Raw Ranking", "Hoje às 09:23", "5 min", "Atualizado"),
            ]
        );
        assert_eq!(
            rows(&got[1]),
            [
                row("Deaths/Kills", "Ontem às 23:58", "9 h", "Desatualizado"),
                row(
                    "DAILY RAW ranking",
                    "Ontem às 23:58",
                    "10 h",
                    "Desatualizado"
                ),
            ]
        );
        assert!(got[0].routines.iter().all(|r| r.time.is_some()));
    }

    #[test]
    fn routine_names_for_people() {
        for (text, want) in [
            ("🔥Daily Raw RankingRotina de coleta", "Daily Raw Ranking"),
            ("💀Deaths/KillsRotina de coleta", "Deaths/Kills"),
            ("  Online  ", "Online"),
            ("🟢OnlineROTINA DE COLETA", "Online"),
            ("Ação Rotina de coleta", "Ação"),
        ] {
            assert_eq!(routine_display_name(text), want, "{text:?}");
        }
    }

    #[test]
    fn status_layout_errors_name_selector_and_url() {
        let now = Utc::now();
        let cases: &[(&str, &str)] = &[
            (
                "<html><body><p>maintenance</p></body></html>",
                "world_title",
            ),
            (
                "<html><table><tr><td>a</td><td>b</td></tr></table></html>",
                "world_pattern",
            ),
            (
                "<html><table><tr><th>A Status</th></tr><tr><td>Online</td><td>Hoje às 09:00</td></tr></table></html>",
                "routine = \"Daily Raw Ranking\"",
            ),
            (
                "<html><table><tr><th>A Status</th></tr><tr><th>Daily Raw Ranking</th><th>Hoje às 09:00</th></tr></table></html>",
                "routine_name",
            ),
            (
                "<html><table><tr><th>A Status</th></tr><tr><td>Daily Raw Ranking</td></tr></table></html>",
                "routine_time",
            ),
            (
                "<html><table><tr><th>A Status</th></tr><tr><td>Daily Raw Ranking</td><td>soon</td></tr></table></html>",
                "cannot read routine_time `soon`",
            ),
        ];
        let lists = Selectors {
            world_title: "h1".into(),
            routine_entry: "li".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        let err = parse_status(
            "<html><h1>A Status</h1><p>b</p></html>",
            &lists,
            "http://x/status",
            now,
            brt(),
        )
        .expect_err("no entries");
        assert!(err.to_string().contains("routine_entry = \"li\""), "{err}");
        for (page, key) in cases {
            let err = parse_status(page, &sel(), "http://x/status", now, brt()).expect_err(page);
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("http://x/status"),
                "{key}: {msg}"
            );
        }
    }

    #[test]
    fn entries_belong_to_the_nearest_title_before_them() {
        // Table-free: headed sections, list items, times in attributes.
        let s = Selectors {
            world_title: "h2".into(),
            routine_entry: "li".into(),
            routine_name: "b".into(),
            routine_time: "time::attr(datetime)".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        let page = r#"<html><body>
            <ul><li><b>Daily Raw Ranking</b><time datetime="2026-11-29T01:00">x</time></li></ul>
            <h2>🌍 Aurera <i>Status</i></h2>
            <ul><li><b>Online</b><time datetime="2026-11-29T09:01">x</time></li>
                <li><b>🔥 Daily Raw Ranking</b> <time datetime="2026-11-29T09:02-03:00">Hoje às 09:02</time></li></ul>
            <section><h2>Bellum Status</h2></section>
            <div><ul><li><b>Daily Raw Ranking</b><time datetime="2026-11-29T09:03">x</time></li></ul></div>
            </body></html>"#;
        let got = parse_status(page, &s, "u", nine_am(), brt()).expect("parses");
        let seen: Vec<(String, String)> = got
            .iter()
            .map(|w| (w.world.clone(), w.update_time.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            seen,
            [
                ("Aurera".into(), "09:02".into()),
                ("Bellum".into(), "09:03".into())
            ]
        );
    }
}
