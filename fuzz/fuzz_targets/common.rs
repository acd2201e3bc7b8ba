#![allow(dead_code)]
//! Shared by the fuzz targets: both layouts' selectors, and the contract
//! every parse must keep: no panic, and a failure names a selector key or
//! the value it could not read.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use worldpool::site::parse::{parse_guild, parse_status};
use worldpool::site::{Compiled, Selectors, SiteError};

pub fn selectors() -> [Compiled; 2] {
    let alt: Selectors = toml::from_str::<toml::Table>(worldpool::demo_site::ALT_LAYOUT_PROFILE)
        .ok()
        .and_then(|t| t.get("site")?.get("selectors")?.clone().try_into().ok())
        .expect("the alt profile's selectors");
    [
        Selectors::default().compile().expect("defaults"),
        alt.compile().expect("alt selectors"),
    ]
}

fn now() -> (DateTime<Utc>, FixedOffset) {
    let offset = FixedOffset::west_opt(3 * 3600).expect("offset");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .expect("time");
    (now, offset)
}

fn names_a_key_or_value(e: &SiteError) {
    let msg = e.to_string();
    let ok = match e {
        SiteError::Layout { selector, .. } => {
            msg.contains("site.selectors.") && selector.contains(" = ")
        }
        SiteError::BadValue { field, .. } => {
            msg.contains(&format!("site.selectors.{field}")) && msg.contains("cannot read")
        }
        SiteError::Truncated { .. } => msg.contains("site.selectors.complete_marker"),
        _ => false,
    };
    assert!(ok, "an error that names no selector or value: {msg}");
}

pub fn status(text: &str, sel: &[Compiled]) {
    let (now, offset) = now();
    for s in sel {
        match parse_status(text, s, "http://fuzz/status", now, offset) {
            Ok(worlds) => assert!(!worlds.is_empty() && worlds.iter().all(|w| !w.world.is_empty())),
            Err(e) => names_a_key_or_value(&e),
        }
    }
}

pub fn guild(text: &str, sel: &[Compiled]) {
    for s in sel {
        match parse_guild(text, s, "http://fuzz/guild") {
            Ok(page) => assert!(page.rows.iter().all(|r| !r.name.is_empty())),
            Err(e) => names_a_key_or_value(&e),
        }
    }
}

/// HTML from the pages' own vocabulary, nested as the bytes say.
pub fn html_from(data: &[u8]) -> String {
    const TAGS: [&str; 26] = [
        "table class=\"table-highscores\"",
        "table class=\"table table-highscores\"",
        "tr",
        "td class=\"col-rank\"",
        "td class=\"col-name\"",
        "td class=\"col-voc\"",
        "td class=\"col-level\"",
        "td class=\"col-xp\"",
        "td colspan=\"4\"",
        "th",
        "a rel=\"next\" href=\"?p=2\"",
        "a",
        "span",
        "small",
        "section class=\"box\"",
        "section class=\"world-card\"",
        "h2 class=\"world-title\"",
        "li class=\"routine\"",
        "strong class=\"routine-name\"",
        "time datetime=\"2026-11-29T09:23\"",
        "div class=\"line player\"",
        "span class=\"pos\"",
        "span class=\"who\"",
        "span class=\"lvl\" data-level=\"7\"",
        "span class=\"exp\"",
        "nav class=\"pager\"",
    ];
    const TEXTS: [&str; 16] = [
        "Aurera Status",
        "Status",
        "🔥Daily Raw RankingRotina de coleta",
        "Daily Raw Ranking",
        "Hoje às 09:23",
        "Ontem às 25:99",
        "31/02/2026 às 10:00",
        "74.287.224",
        "-1",
        "99999999999999999999999",
        "1º",
        "Zé",
        " \r\n ",
        "&nbsp;",
        "<",
        "\u{0}",
    ];
    let mut out = String::from("<html><body>");
    let mut open: Vec<&str> = Vec::new();
    for b in data {
        match b % 4 {
            0 | 1 => {
                let tag = TAGS[usize::from(b / 4) % TAGS.len()];
                out.push('<');
                out.push_str(tag);
                out.push('>');
                open.push(tag.split(' ').next().unwrap_or("div"));
            }
            2 => out.push_str(TEXTS[usize::from(b / 4) % TEXTS.len()]),
            _ => {
                if let Some(t) = open.pop() {
                    out.push_str("</");
                    out.push_str(t);
                    out.push('>');
                }
            }
        }
    }
    out.push_str("</body></html>");
    out
}
