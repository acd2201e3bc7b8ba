//! The status page explained: world titles, routine rows and their times.

use chrono::{DateTime, FixedOffset, Utc};
use scraper::{ElementRef, Html};

use super::matched::{css_report, field_report};
use super::nearest::nearest_by_text;
use super::report::{FIRST, PageReport, SelectorReport, clip, quoted};
use crate::site::find_world;
use crate::site::parse::{self, complete_check, extract_status, scan_status};
use crate::site::selectors::Compiled;
use crate::site::text::match_key;

/// Explain the status page: every status key, the world titles, the
/// routine rows (all of `world`'s, the chosen one of every other world) and
/// their parsed times, and the parser's verdict.
pub fn explain_status(
    html_text: &str,
    sel: &Compiled,
    url: &str,
    now: DateTime<Utc>,
    offset: FixedOffset,
    world: &str,
) -> PageReport {
    let doc = Html::parse_document(html_text);
    let root = doc.root_element();
    let scan = scan_status(&doc, sel);
    let mut selectors = Vec::new();
    let mut findings = Vec::new();

    // Hints from the text: what looks like a title, a routine entry, a
    // routine name, a time, whatever the markup.
    let is_title = |t: &str| parse::world_of_title(&sel.world_pattern, t).is_some();
    let is_routine = |t: &str| match_key(t).contains(&sel.routine);
    let is_time = |t: &str| parse::parse_site_time(t, now, offset).is_some();
    let by_text = |report: &mut SelectorReport,
                   scope: ElementRef<'_>,
                   pred: &dyn Fn(&str) -> bool,
                   why: &str| {
        if report.count == 0 {
            let hints = nearest_by_text(scope, pred);
            if !hints.is_empty() {
                report.nearest = hints;
                report.why = why.to_string();
            }
        }
    };

    let (mut titles, _) = css_report(&sel.world_title.css, "the page", root, true);
    titles.key = sel.world_title.describe();
    titles.first = scan
        .titles
        .iter()
        .take(FIRST)
        .map(|t| clip(&t.text, 60))
        .collect();
    by_text(
        &mut titles,
        root,
        &is_title,
        "their text matches world_pattern",
    );
    selectors.push(titles);

    let worlds: Vec<&str> = scan
        .titles
        .iter()
        .filter_map(|t| t.world.as_deref())
        .collect();
    let pattern_key = format!("world_pattern = {:?}", sel.source.world_pattern);
    if scan.titles.is_empty() {
        selectors.push(SelectorReport::not_checked(pattern_key, "world title"));
    } else {
        selectors.push(SelectorReport {
            key: pattern_key,
            scope: "world titles".to_string(),
            count: worlds.len(),
            of: Some(scan.titles.len()),
            first: Vec::new(),
            nearest: Vec::new(),
            why: String::new(),
            note: Some(if worlds.is_empty() {
                format!(
                    "no title matched; it was tried on: {}",
                    quoted(
                        &scan
                            .titles
                            .iter()
                            .take(FIRST)
                            .map(|t| t.text.clone())
                            .collect::<Vec<_>>()
                    )
                )
            } else {
                format!("world names: {}", worlds.join(", "))
            }),
            ok: !worlds.is_empty(),
            checked: true,
        });
    }

    let (mut entries_report, _) = css_report(&sel.routine_entry, "the page", root, true);
    let entry_els: Vec<ElementRef<'_>> = scan
        .entries
        .iter()
        .filter(|(_, t)| t.is_some_and(|i| scan.titles[i].world.is_some()))
        .map(|(e, _)| *e)
        .collect();
    if !scan.entries.is_empty() {
        entries_report.note = Some(format!("{} of them follow a world title", entry_els.len()));
    }
    let is_entry = |t: &str| is_routine(t) && is_time(t);
    by_text(
        &mut entries_report,
        root,
        &is_entry,
        "their text holds the routine and a time",
    );
    selectors.push(entries_report);

    let mut name_report = field_report(&sel.routine_name, "routine entries", &entry_els, root);
    // Header or title rows may hold no name: only a name in no entry is wrong.
    name_report.ok = name_report.count > 0 || !name_report.checked;
    if let Some(first) = entry_els
        .iter()
        .find(|e| is_routine(&parse::clean_text(e.text())))
    {
        by_text(
            &mut name_report,
            *first,
            &is_routine,
            "inside an entry of the routine, their text holds its name",
        );
    }
    selectors.push(name_report);

    let read: Vec<(ElementRef<'_>, usize, parse::Entry)> = scan
        .entries
        .iter()
        .filter_map(|(e, t)| {
            let t = (*t)?;
            scan.titles[t].world.as_ref()?;
            Some((*e, t, parse::read_entry(*e, sel)))
        })
        .collect();
    let routine_els: Vec<ElementRef<'_>> = read
        .iter()
        .filter(|(_, _, r)| r.name.as_deref().is_some_and(is_routine))
        .map(|(e, _, _)| *e)
        .collect();
    let mut distinct: Vec<String> = Vec::new();
    for n in read.iter().filter_map(|(_, _, r)| r.name.clone()) {
        if !distinct.contains(&n) {
            distinct.push(n);
        }
    }
    let routine_key = format!("routine = {:?}", sel.source.routine);
    if distinct.is_empty() {
        selectors.push(SelectorReport::not_checked(routine_key, "routine name"));
    } else {
        selectors.push(SelectorReport {
            key: routine_key,
            scope: "routine names".to_string(),
            count: routine_els.len(),
            of: Some(read.iter().filter(|(_, _, r)| r.name.is_some()).count()),
            first: Vec::new(),
            nearest: Vec::new(),
            why: String::new(),
            note: Some(format!(
                "names seen (compared ignoring case, spaces, emoji, punctuation): {}",
                quoted(&distinct.into_iter().take(6).collect::<Vec<_>>())
            )),
            ok: !routine_els.is_empty(),
            checked: true,
        });
    }

    let mut time_report = field_report(
        &sel.routine_time,
        "entries of the routine",
        &routine_els,
        root,
    );
    time_report.first = time_report
        .first
        .iter()
        .map(|raw| match parse::parse_site_time(raw, now, offset) {
            Some(t) => format!("{raw} → {}", t.format("%Y-%m-%d %H:%M %:z")),
            None => format!("{raw} → cannot read a time"),
        })
        .collect();
    if time_report
        .first
        .iter()
        .any(|v| v.ends_with("cannot read a time"))
    {
        time_report.ok = false;
    }
    if let Some(first) = routine_els.first() {
        by_text(
            &mut time_report,
            *first,
            &is_time,
            "inside an entry of the routine, their text holds a time",
        );
    }
    selectors.push(time_report);

    // The titles and the routine rows, with parsed times.
    let mut shown_worlds = Vec::new();
    for (i, t) in scan.titles.iter().enumerate() {
        let Some(w) = &t.world else { continue };
        if shown_worlds.contains(&match_key(w)) {
            continue;
        }
        shown_worlds.push(match_key(w));
        let rows: Vec<&parse::Entry> = read
            .iter()
            .filter(|(_, ti, _)| *ti == i)
            .map(|(_, _, r)| r)
            .collect();
        let full = match_key(w) == match_key(world) || match_key(w).contains(&match_key(world));
        findings.push(format!(
            "world title {w:?} (from {:?}): {} routine entries",
            clip(&t.text, 50),
            rows.len()
        ));
        let mut chosen = false;
        for r in rows {
            let (Some(name), time) = (&r.name, &r.time) else {
                continue;
            };
            let is_routine = match_key(name).contains(&sel.routine);
            let parsed =
                time.as_deref()
                    .map(|raw| match parse::parse_site_time(raw, now, offset) {
                        Some(t) => format!("{raw:?} → {}", t.format("%Y-%m-%d %H:%M %:z")),
                        None => format!("{raw:?} → cannot read a time"),
                    });
            let mark = if is_routine && !chosen {
                chosen = true;
                "  ◀ the update time"
            } else if is_routine {
                "  (a later row of the routine: ignored)"
            } else {
                ""
            };
            if full || mark.starts_with("  ◀") {
                findings.push(format!(
                    "    {:<40} {}{mark}",
                    clip(name, 40),
                    parsed.unwrap_or_else(|| "(no routine_time)".to_string())
                ));
            }
        }
    }

    let outcome = complete_check(html_text, sel, url)
        .and_then(|()| extract_status(&doc, sel, url, now, offset))
        .map_err(|e| e.to_string())
        .and_then(|all| {
            let list: Vec<String> = all.iter().map(|w| format!("{} {}", w.world, w.update_time.format("%H:%M"))).collect();
            match find_world(&all, world) {
                Some(w) => Ok(format!(
                    "{} worlds ({}); {world} updated {}",
                    all.len(),
                    list.join(", "),
                    w.update_time.to_rfc3339()
                )),
                None => Err(format!(
                    "{} worlds ({}), but not {world}: check world_title / world_pattern, or the world's name in [[worlds]]",
                    all.len(),
                    list.join(", ")
                )),
            }
        });
    PageReport {
        what: "status page".to_string(),
        url: url.to_string(),
        selectors,
        findings,
        outcome,
        guild_kind: None,
    }
}
