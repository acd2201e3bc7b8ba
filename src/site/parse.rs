//! Page parsing: status page → per-world update times; guild page → rows;
//! player page → a watched player's numbers of the day.
//!
//! Every function here is synchronous and drops the `scraper::Html` before
//! returning (it is not `Send`), so callers can `.await` freely afterwards.
//! What is read where is configured by [`Selectors`](super::Selectors).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{
    DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc,
};
use regex::Regex;
use scraper::{ElementRef, Html};
use serde::Serialize;

use super::SiteError;
use super::selectors::{Compiled, Field, attr_of, walk_elements};
pub use super::text::clean_text;
use super::text::match_key;

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
    /// Whether the page has the ranking, and if not, what it is.
    pub kind: GuildPageKind,
}

/// What a guild page shows where the ranking should be. A page alone
/// cannot tell an unknown guild from a changed layout (a redesign may show
/// an unknown guild as a bare page with no container at all): the world's
/// guild pages together decide ([`crate::scrape::classify_guild_pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuildPageKind {
    /// The ranking is there (with rows, or none: a guild without players).
    #[default]
    Ranking,
    /// No ranking, and the page matches `unknown_guild`: the site's own
    /// "not found" page.
    NotFound,
    /// A complete page (it closes `</body>` or `</html>`, and has the
    /// `complete_marker`) without the ranking.
    NoRanking {
        /// `ranking` matches on the page (all before `ranking_index`).
        containers: usize,
    },
}

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

pub(crate) fn complete_check(html_text: &str, sel: &Compiled, url: &str) -> Result<(), SiteError> {
    let marker = &sel.complete_marker;
    if !marker.is_empty() && !contains_ignore_ascii_case(html_text, marker) {
        return Err(SiteError::Truncated {
            url: url.to_string(),
            marker: marker.clone(),
        });
    }
    Ok(())
}

fn layout(selector: String, url: &str) -> SiteError {
    SiteError::Layout {
        selector,
        url: url.to_string(),
    }
}

fn bad_value(field: &str, value: String, url: &str) -> SiteError {
    SiteError::BadValue {
        field: field.to_string(),
        value,
        url: url.to_string(),
    }
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

type RowCells<'a> = [Option<ElementRef<'a>>; 5];

/// Parse one guild ranking page.
pub fn parse_guild(html_text: &str, sel: &Compiled, url: &str) -> Result<GuildPage, SiteError> {
    complete_check(html_text, sel, url)?;
    let doc = Html::parse_document(html_text);
    let page = extract_guild(&doc, sel, url)?;
    closed_unless_ranking(html_text, page, sel, url)
}

/// Whether a page reads as a whole HTML document: it closes `</body>` or
/// `</html>` (ASCII case ignored).
pub fn closes_document(html_text: &str) -> bool {
    contains_ignore_ascii_case(html_text, "</body>")
        || contains_ignore_ascii_case(html_text, "</html>")
}

/// A page without the ranking counts as a page only when it is a whole
/// HTML document (whatever `complete_marker` says): a cut or foreign body
/// fails as a missing ranking, never reads as an unknown guild.
pub(crate) fn closed_unless_ranking(
    html_text: &str,
    page: GuildPage,
    sel: &Compiled,
    url: &str,
) -> Result<GuildPage, SiteError> {
    if page.kind != GuildPageKind::Ranking && !closes_document(html_text) {
        return Err(layout(sel.ranking.describe(), url));
    }
    Ok(page)
}

/// The ranking containers (up to the ranking) and the first next link
/// outside the ranking.
fn containers<'a>(doc: &'a Html, sel: &Compiled) -> (Vec<ElementRef<'a>>, Option<String>) {
    let index = sel.ranking_index;
    let root = doc.root_element();
    match (&sel.ranking.fast, &sel.next_page.css.fast) {
        (Some(container), Some(next_m)) => {
            // One walk that does not enter the ranking (walked later for
            // its rows), direct matching.
            let mut found: Vec<ElementRef<'a>> = Vec::new();
            let mut next: Option<String> = None;
            walk_elements(root, |el| {
                if next.is_none() && next_m.matches(el) {
                    next = sel.next_page.value(el).filter(|h| !h.is_empty());
                }
                if container.matches(el) {
                    found.push(el);
                    return found.len() != index + 1;
                }
                true
            });
            (found, next)
        }
        _ => {
            let next = root
                .select(&sel.next_page.css.selector)
                .find_map(|e| sel.next_page.value(e).filter(|h| !h.is_empty()));
            (sel.ranking.select_in(root), next)
        }
    }
}

/// Rows of the ranking and their cells (name, rank, vocation, level,
/// experience): the first match of each inside the row. With fast
/// matchers, one walk of the ranking, names compared directly; the next
/// link is looked for on the way when `next` is still empty.
pub(crate) fn ranking_rows<'a>(
    ranking: ElementRef<'a>,
    sel: &Compiled,
    next: &mut Option<String>,
) -> (Vec<ElementRef<'a>>, Vec<RowCells<'a>>) {
    let fast = sel.fast_rows().then(|| {
        (
            sel.ranking_row.fast.as_ref(),
            sel.cells().map(|c| c.css.fast.as_ref()),
            sel.next_page.css.fast.as_ref(),
        )
    });
    if let Some((Some(row_m), [Some(c0), Some(c1), Some(c2), Some(c3), Some(c4)], next_m)) = fast {
        let cells_m = [c0, c1, c2, c3, c4];
        let mut rows = Vec::new();
        let mut cells: Vec<RowCells<'a>> = Vec::new();
        let check_next = |el: ElementRef<'a>, next: &mut Option<String>| {
            if next.is_none() && next_m.is_some_and(|m| m.matches(el)) {
                *next = sel.next_page.value(el).filter(|h| !h.is_empty());
            }
        };
        walk_elements(ranking, |el| {
            check_next(el, next);
            if !row_m.matches(el) {
                return true;
            }
            let mut slots: RowCells<'a> = [None; 5];
            walk_elements(el, |e| {
                check_next(e, next);
                for (slot, m) in slots.iter_mut().zip(cells_m) {
                    if slot.is_none() && m.matches(e) {
                        *slot = Some(e);
                    }
                }
                true
            });
            rows.push(el);
            cells.push(slots);
            false
        });
        if next.is_none() && sel.next_page.css.fast.is_none() {
            *next = ranking
                .select(&sel.next_page.css.selector)
                .find_map(|e| sel.next_page.value(e).filter(|h| !h.is_empty()));
        }
        return (rows, cells);
    }
    // Any selectors: one walk of the ranking per selector (`select` reuses
    // its matching caches over a walk, several times cheaper than
    // `Selector::matches` per element), each cell assigned to the row it
    // sits in (first match in a row wins).
    let rows: Vec<ElementRef<'a>> = sel.ranking_row.select_in(ranking);
    let index: HashMap<_, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, tr)| (tr.id(), i))
        .collect();
    let mut cells: Vec<RowCells<'a>> = vec![[None; 5]; rows.len()];
    for (k, field) in sel.cells().iter().enumerate() {
        for el in field.css.select_in(ranking) {
            if let Some(&i) = el.ancestors().find_map(|a| index.get(&a.id())) {
                cells[i][k].get_or_insert(el);
            }
        }
    }
    if next.is_none() {
        *next = ranking
            .select(&sel.next_page.css.selector)
            .find_map(|e| sel.next_page.value(e).filter(|h| !h.is_empty()));
    }
    (rows, cells)
}

/// Extract a guild page from a parsed document (the part of
/// [`parse_guild`] after the HTML parser, which also checks that a page
/// without the ranking is a whole document).
pub fn extract_guild(doc: &Html, sel: &Compiled, url: &str) -> Result<GuildPage, SiteError> {
    let (found, mut next) = containers(doc, sel);
    let Some(ranking) = found.get(sel.ranking_index) else {
        let not_found = sel
            .unknown_guild
            .as_ref()
            .is_some_and(|m| m.matches(doc.root_element()));
        return Ok(GuildPage {
            rows: Vec::new(),
            next: None,
            kind: if not_found {
                GuildPageKind::NotFound
            } else {
                GuildPageKind::NoRanking {
                    containers: found.len(),
                }
            },
        });
    };
    let (row_els, cells) = ranking_rows(*ranking, sel, &mut next);
    let mut rows = Vec::with_capacity(row_els.len());
    let [name_f, rank_f, voc_f, level_f, xp_f] = sel.cells();
    for slots in &cells {
        // Header and spacer rows hold none of the fields.
        if slots.iter().all(Option::is_none) {
            continue;
        }
        let [name_el, rank_el, voc_el, level_el, xp_el] = *slots;
        fn need<'b>(
            f: &Field,
            el: Option<ElementRef<'b>>,
            url: &str,
        ) -> Result<ElementRef<'b>, SiteError> {
            el.ok_or_else(|| layout(f.describe(), url))
        }
        let (name_el, rank_el, voc_el, level_el, xp_el) = (
            need(name_f, name_el, url)?,
            need(rank_f, rank_el, url)?,
            need(voc_f, voc_el, url)?,
            need(level_f, level_el, url)?,
            need(xp_f, xp_el, url)?,
        );
        let name = name_f.value(name_el).unwrap_or_default();
        if name.is_empty() {
            return Err(bad_value("name", name, url));
        }
        // Numbers are read straight from the text pieces; the text is only
        // joined for an error message.
        let number = |f: &Field, el: ElementRef<'_>| -> Result<i64, SiteError> {
            let parsed = match &f.attr {
                None => parse_number_parts(el.text()),
                Some(a) => attr_of(el.value(), a).and_then(parse_number),
            };
            parsed.ok_or_else(|| bad_value(f.css.key, f.value(el).unwrap_or_default(), url))
        };
        let rank = number(rank_f, rank_el)?;
        let rank = u32::try_from(rank).map_err(|_| bad_value("rank", rank.to_string(), url))?;
        let vocation = voc_f.value(voc_el).unwrap_or_default();
        let level = number(level_f, level_el)?;
        let level = u32::try_from(level).map_err(|_| bad_value("level", level.to_string(), url))?;
        let experience = number(xp_f, xp_el)?;
        rows.push(PlayerRow {
            rank,
            name,
            vocation,
            level,
            experience,
        });
    }
    // Rows that hold none of the fields, beyond a header: the cells were
    // renamed, and an empty ranking would be stored as one.
    if rows.is_empty() && row_els.len() > 1 {
        return Err(layout(name_f.describe(), url));
    }
    Ok(GuildPage {
        rows,
        next,
        kind: GuildPageKind::Ranking,
    })
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

    fn guild_page(rows: &str, next: &str) -> String {
        format!(
            "<!DOCTYPE html>\r\n<html><body>\r\n            <table class=\"table table-highscores\"><tr><th>Vocation</th><th>Players</th></tr>\r\n              <tr><td>Knight</td><td>2</td></tr></table>\r\n            <table class=\"table table-highscores\">\r\n              <tr><th>#</th><th>Name</th><th>Voc</th><th>Level</th><th>XP</th></tr>\r\n              {rows}\r\n            </table>{next}</body></html>"
        )
    }

    fn row(rank: &str, name: &str, voc: &str, level: &str, xp: &str) -> String {
        format!(
            "<tr>\r\n <td class=\"col-rank\"> {rank} </td>\r\n <td class=\"col-name\">\r\n  <a href=\"/player?name=x\"> {name} </a>\r\n </td><td class=\"col-voc\"> {voc} </td><td class=\"col-level\">{level}</td><td class=\"col-xp\">\r\n {xp}\r\n</td></tr>"
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
        assert_eq!(got.kind, GuildPageKind::Ranking);
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
            name: "tr > td.col-name a:first-child".into(),
            experience: "td[class~=col-xp]:not(.x)".into(),
            ranking: "body table.table-highscores:not(.x)".into(),
            next_page: "body a[rel=next]:not(.x)".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        assert!(fast.fast_rows() && !generic.fast_rows());
        assert!(generic.ranking.fast.is_none() && generic.next_page.css.fast.is_none());
        let a = parse_guild(&page, &fast, "u").expect("fast");
        let b = parse_guild(&page, &generic, "u").expect("generic");
        assert_eq!(a, b);
        assert_eq!(a.rows.len(), 2);
        assert_eq!(a.next.as_deref(), Some("?page=2"));
        // Both report a missing cell the same way.
        let broken = page.replace("col-xp", "col-exp");
        for s in [&fast, &generic] {
            let err = parse_guild(&broken, s, "u").expect_err("no xp cell");
            assert!(err.to_string().contains("experience"), "{err}");
        }
        // A next link inside the ranking is found by both.
        let inside = guild_page(
            &[
                row("1", "A", "D", "1", "1"),
                "<tr><td><a rel=\"next\" href=\"?p=2\">»</a></td></tr>".to_string(),
            ]
            .concat(),
            "",
        );
        for s in [&fast, &generic] {
            let got = parse_guild(&inside, s, "u").expect("parses");
            assert_eq!(got.next.as_deref(), Some("?p=2"));
            assert_eq!(got.rows.len(), 1);
        }
    }

    #[test]
    fn fields_may_read_attributes() {
        let s = Selectors {
            ranking: "div.ranking".into(),
            ranking_index: 0,
            ranking_row: "div.row".into(),
            rank: "span.pos".into(),
            name: "span.who a".into(),
            vocation: "span.voc::attr(title)".into(),
            level: "span.lvl::attr(data-level)".into(),
            experience: "span.exp".into(),
            next_page: "a.next::attr(data-href)".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        assert!(s.fast_rows());
        let page = r#"<html><body><div class="ranking">
            <div class="row head"><span>#</span></div>
            <div class="row"><span class="pos">1º</span><span class="who"><a href="/p">Zé</a><small>Líder</small></span>
              <span class="voc" title="Elite Knight">EK</span><span class="lvl" data-level="512">Nível 512</span>
              <span class="exp">74,287,224</span></div>
            </div><a class="next" href="/wrong" data-href="?page=2">next</a></body></html>"#;
        let got = parse_guild(page, &s, "u").expect("parses");
        assert_eq!(
            got.rows,
            vec![PlayerRow {
                rank: 1,
                name: "Zé".into(),
                vocation: "Elite Knight".into(),
                level: 512,
                experience: 74_287_224
            }]
        );
        assert_eq!(got.next.as_deref(), Some("?page=2"));
        let err = parse_guild(&page.replace("data-level", "data-lvl"), &s, "u")
            .expect_err("no attribute");
        assert!(err.to_string().contains("cannot read level"), "{err}");
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
        assert_eq!(got.kind, GuildPageKind::NoRanking { containers: 1 });
        assert!(got.rows.is_empty());
    }

    /// A page without the ranking: what it is, page by page (the world
    /// decides what it means).
    #[test]
    fn pages_without_the_ranking() {
        let with = |f: &dyn Fn(&mut Selectors)| {
            let mut s = Selectors::default();
            f(&mut s);
            s.compile().expect("valid")
        };
        let bare =
            "<!DOCTYPE html><html><body><h1>Guild X</h1><p>Guilda não encontrada</p></body></html>";
        let no_marker = with(&|_| {});
        let css_marker = with(&|s| s.unknown_guild = "h1 + p".into());
        let text_marker = with(&|s| s.unknown_guild = "text: GUILDA não  encontrada!".into());
        let other_text = with(&|s| s.unknown_guild = "text:Not found".into());
        let no_check = with(&|s| s.complete_marker = String::new());
        let table: &[(&str, &Compiled, Result<GuildPageKind, &str>)] = &[
            (
                bare,
                &no_marker,
                Ok(GuildPageKind::NoRanking { containers: 0 }),
            ),
            (bare, &css_marker, Ok(GuildPageKind::NotFound)),
            (bare, &text_marker, Ok(GuildPageKind::NotFound)),
            (
                bare,
                &other_text,
                Ok(GuildPageKind::NoRanking { containers: 0 }),
            ),
            // Only </body>: still a whole document.
            (
                "<html><body><h1>X</h1></body>",
                &no_check,
                Ok(GuildPageKind::NoRanking { containers: 0 }),
            ),
            // Cut short: truncated with the marker, a missing ranking
            // without it; never an unknown guild.
            ("<html><body><h1>X</h1>", &no_marker, Err("truncated")),
            (
                "<html><body><h1>X</h1>",
                &no_check,
                Err("ranking = \"table.table-highscores\" matched nothing"),
            ),
            (
                "{\"error\": \"not found\"}",
                &no_check,
                Err("matched nothing"),
            ),
        ];
        for (page, sel, want) in table {
            match (parse_guild(page, sel, "http://x/g"), want) {
                (Ok(got), Ok(kind)) => {
                    assert_eq!(got.kind, *kind, "{page}");
                    assert!(got.rows.is_empty() && got.next.is_none());
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{page}: {e}"),
                (got, want) => panic!("{page}: got {got:?}, want {want:?}"),
            }
        }
        // A page with the ranking is read, marker or not.
        let page = guild_page(
            &row("1", "A", "Druid", "1", "1"),
            "<p>Guilda não encontrada</p>",
        );
        let got = parse_guild(&page, &text_marker, "u").expect("parses");
        assert_eq!((got.kind, got.rows.len()), (GuildPageKind::Ranking, 1));
    }

    #[test]
    fn guild_errors() {
        let s = sel();
        let cases: Vec<(String, &str)> = vec![
            (
                guild_page("<tr><td class=\"nm\">A</td><td>1</td></tr>", ""),
                "td.col-name",
            ),
            (
                guild_page(
                    "<tr><td class=\"col-rank\">1</td><td class=\"col-name\"><a>A</a></td><td class=\"col-voc\">D</td><td class=\"col-level\">1</td></tr>",
                    "",
                ),
                "td.col-xp",
            ),
            (
                guild_page(&row("1", "A", "D", "1", "lots"), ""),
                "cannot read experience `lots`",
            ),
            (
                guild_page(&row("1", "", "D", "1", "1"), ""),
                "cannot read name",
            ),
            (
                guild_page(&row("-1", "A", "D", "1", "1"), ""),
                "cannot read rank `-1`",
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
        assert_eq!(got.kind, GuildPageKind::Ranking);
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
