//! `worldpool scrape-once --explain`: what every `[site.selectors]` key
//! matches on the live pages, like `scrapy parse`: counts and first values,
//! the world titles found, the routine rows and their parsed times, and for
//! a selector that matched nothing, the nearest elements that do exist (by
//! tag and class), so a user fixing a redesign sees which key broke and
//! what to write instead.
//!
//! [`explain_status`], [`explain_guild`] and [`explain_player`] are pure
//! (page text in, report out); [`explain_world`] fetches the pages of one
//! world (its watched players' too).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use scraper::{ElementRef, Html};

use super::parse::{
    self, GuildPageKind, PlayerPage, closed_unless_ranking, complete_check, day_table,
    extract_guild, extract_player, extract_status, player_tables, scan_status,
};
use super::selectors::{Compiled, Css, Field, walk_elements};
use super::text::match_key;
use super::{SiteClient, find_world};

/// How many first values a line shows.
const FIRST: usize = 3;
/// How many nearest elements a line shows.
const NEAREST: usize = 5;

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
    fn not_checked(key: String, scope: &str) -> SelectorReport {
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

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn quoted(values: &[String]) -> String {
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

// ---------------------------------------------------------------------------
// Nearest elements.

/// What a selector asks for, roughly: tag, classes, attribute names of its
/// last compound.
#[derive(Debug, Default)]
struct Wanted {
    tag: Option<String>,
    classes: Vec<String>,
    attrs: Vec<String>,
}

fn wanted(selector: &str) -> Vec<Wanted> {
    selector.split(',').map(wanted_one).collect()
}

fn wanted_one(alternative: &str) -> Wanted {
    let last = alternative
        .split(|c: char| c.is_whitespace() || matches!(c, '>' | '+' | '~'))
        .rfind(|s| !s.is_empty())
        .unwrap_or("");
    let mut w = Wanted::default();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
            .collect()
    };
    let tag = ident(last);
    if !tag.is_empty() {
        w.tag = Some(tag.to_ascii_lowercase());
    }
    let mut rest = last;
    while let Some(i) = rest.find(['.', '[', ':', '#']) {
        let (mark, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        match mark {
            b'.' => w.classes.push(ident(after)),
            b'[' => w.attrs.push(ident(after.trim_start()).to_ascii_lowercase()),
            b'#' => w.attrs.push("id".to_string()),
            _ => {}
        }
        rest = after;
    }
    w.classes.retain(|c| !c.is_empty());
    w.attrs.retain(|a| !a.is_empty());
    w
}

fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a.len() >= 3 && b.len() >= 3 && (a.contains(&b) || b.contains(&a)) {
        return true;
    }
    // The same after a common prefix such as "col-": "col-xp" ~ "col-exp".
    let strip = |s: &str| s.rsplit(['-', '_']).next().unwrap_or(s).to_string();
    let (sa, sb) = (strip(&a), strip(&b));
    sa.len() >= 2 && sb.len() >= 2 && (sa.contains(&sb) || sb.contains(&sa))
}

/// `tag.class1.class2`.
fn signature(el: ElementRef<'_>) -> String {
    let mut s = el.value().name().to_string();
    for c in el.value().classes() {
        s.push('.');
        s.push_str(c);
    }
    s
}

const SKIP: [&str; 9] = [
    "html", "head", "meta", "title", "link", "script", "style", "br", "body",
];

struct Group {
    count: usize,
    score: usize,
    sample: String,
    order: usize,
}

fn format_groups(mut list: Vec<(String, Group)>) -> Vec<String> {
    list.sort_by(|a, b| {
        b.1.score
            .cmp(&a.1.score)
            .then(b.1.count.cmp(&a.1.count))
            .then(a.1.order.cmp(&b.1.order))
    });
    list.into_iter()
        .take(NEAREST)
        .map(|(sig, g)| {
            if g.sample.is_empty() {
                format!("{sig} ×{}", g.count)
            } else {
                format!("{sig} ×{} {:?}", g.count, g.sample)
            }
        })
        .collect()
}

fn score(el: ElementRef<'_>, want: &Wanted) -> usize {
    let name = el.value().name();
    let classes: Vec<&str> = el.value().classes().collect();
    let mut score = 0;
    if want.tag.as_deref() == Some(name) {
        score += 2;
    }
    for c in &want.classes {
        if classes.contains(&c.as_str()) {
            score += 3;
        } else if classes.iter().any(|k| similar(k, c)) {
            score += 2;
        }
    }
    for a in &want.attrs {
        if el.value().attr(a).is_some() {
            score += 2;
        }
    }
    score
}

/// The elements under `scope` that look closest to what `selector` asks
/// for: grouped by tag and classes, scored by a shared tag, shared or
/// similar classes and attributes; the most common ones when nothing is
/// alike.
fn nearest(scope: ElementRef<'_>, selector: &str) -> (Vec<String>, String) {
    let wants = wanted(selector);
    let mut groups: HashMap<String, Group> = HashMap::new();
    walk_elements(scope, |el| {
        let name = el.value().name();
        if SKIP.contains(&name) {
            return name != "head" && name != "script" && name != "style";
        }
        let order = groups.len();
        let g = groups.entry(signature(el)).or_insert_with(|| Group {
            count: 0,
            score: wants.iter().map(|w| score(el, w)).max().unwrap_or(0),
            sample: clip(&parse::clean_text(el.text()), 30),
            order,
        });
        g.count += 1;
        true
    });
    let mut list: Vec<(String, Group)> = groups.into_iter().collect();
    let alike = list.iter().any(|(_, g)| g.score > 0);
    if alike {
        list.retain(|(_, g)| g.score > 0);
    }
    let why = if alike {
        "alike by tag, class or attribute"
    } else {
        "nothing alike by tag or class; the most common ones"
    };
    (format_groups(list), why.to_string())
}

/// The innermost elements under `scope` whose text satisfies `pred` (an
/// element whose child elements satisfy it too is not listed), grouped by
/// tag and classes.
fn nearest_by_text(scope: ElementRef<'_>, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    walk_elements(scope, |el| {
        let name = el.value().name();
        if SKIP.contains(&name) {
            return name != "head" && name != "script" && name != "style";
        }
        let text = parse::clean_text(el.text());
        if !pred(&text) {
            return false;
        }
        let inner = el
            .children()
            .filter_map(ElementRef::wrap)
            .any(|c| pred(&parse::clean_text(c.text())));
        if !inner {
            let order = groups.len();
            let g = groups.entry(signature(el)).or_insert_with(|| Group {
                count: 0,
                score: 0,
                sample: clip(&text, 30),
                order,
            });
            g.count += 1;
        }
        true
    });
    format_groups(groups.into_iter().collect())
}

/// Elements that hold at least two element children of one kind (lists,
/// tables, row containers): `tag.class (N × child.kind)`.
fn list_containers(scope: ElementRef<'_>) -> Vec<String> {
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    walk_elements(scope, |el| {
        if SKIP.contains(&el.value().name()) && el.value().name() != "body" {
            return false;
        }
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for c in el.children().filter_map(ElementRef::wrap) {
            *kinds.entry(signature(c)).or_default() += 1;
        }
        if let Some((kind, n)) = kinds.into_iter().max_by_key(|(_, n)| *n)
            && n >= 2
        {
            let order = out.len();
            out.push((n, order, format!("{} ({n} × {kind})", signature(el))));
        }
        true
    });
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.into_iter().take(NEAREST).map(|(_, _, s)| s).collect()
}

// ---------------------------------------------------------------------------
// Reports.

fn css_report<'a>(
    css: &Css,
    scope_name: &str,
    scope: ElementRef<'a>,
    required: bool,
) -> (SelectorReport, Vec<ElementRef<'a>>) {
    let found = css.select_in(scope);
    let report = SelectorReport {
        key: css.describe(),
        scope: scope_name.to_string(),
        count: found.len(),
        of: None,
        first: found
            .iter()
            .take(FIRST)
            .map(|e| clip(&parse::clean_text(e.text()), 60))
            .collect(),
        nearest: Vec::new(),
        why: String::new(),
        note: None,
        ok: !found.is_empty() || !required,
        checked: true,
    };
    let mut report = report;
    if found.is_empty() {
        (report.nearest, report.why) = nearest(scope, &css.text);
    }
    (report, found)
}

/// A value field looked for in each of `scopes`: how many hold it, the
/// first values, and the nearest elements of the first scope when none
/// does.
fn field_report(
    field: &Field,
    scope_name: &str,
    scopes: &[ElementRef<'_>],
    fallback_scope: ElementRef<'_>,
) -> SelectorReport {
    let mut count = 0;
    let mut first = Vec::new();
    let mut lacking_attr = 0;
    for s in scopes {
        if let Some(el) = field.css.first_in(*s) {
            count += 1;
            match field.value(el) {
                Some(v) => {
                    if first.len() < FIRST {
                        first.push(v);
                    }
                }
                None => lacking_attr += 1,
            }
        }
    }
    let note = (lacking_attr > 0).then(|| {
        format!(
            "{lacking_attr} of the elements found lack the attribute `{}`",
            field.attr.as_deref().unwrap_or("")
        )
    });
    if scopes.is_empty() {
        return SelectorReport::not_checked(field.describe(), scope_name);
    }
    let (nearest, why) = if count == 0 {
        nearest(
            scopes.first().copied().unwrap_or(fallback_scope),
            &field.css.text,
        )
    } else {
        (Vec::new(), String::new())
    };
    SelectorReport {
        key: field.describe(),
        scope: scope_name.to_string(),
        count,
        of: Some(scopes.len()),
        first,
        nearest,
        why,
        note,
        ok: count == scopes.len() && lacking_attr == 0,
        checked: true,
    }
}

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
                selectors.push(SelectorReport::not_checked(sel.cells()[k].describe(), "row"));
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
                let mut r = field_report(&sel.cells()[k], "rows", &scopes, *ranking);
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

/// Fetch the status page, the first page of each of `guilds` of `world`
/// and the page of each of `players`, and explain them. A page that cannot
/// be fetched is reported as such.
pub async fn explain_world(
    client: &SiteClient,
    world: &str,
    guilds: &[String],
    players: &[String],
) -> Explain {
    let sel = client.selectors();
    let mut pages = Vec::new();
    let failed = |what: String, url: String, e: String| PageReport {
        what,
        url,
        selectors: Vec::new(),
        findings: Vec::new(),
        outcome: Err(e),
        guild_kind: None,
    };
    let mut kinds = Vec::new();
    match client.status_url() {
        Err(e) => pages.push(failed("status page".into(), String::new(), e.to_string())),
        Ok(url) => match client.get_text(&url).await {
            Ok(page) => pages.push(explain_status(
                &page.body,
                sel,
                &url,
                client.now(),
                client.offset(),
                world,
            )),
            Err(e) => pages.push(failed("status page".into(), url, e.to_string())),
        },
    }
    for guild in guilds {
        let what = format!("guild {guild}");
        match client.guild_url(world, guild) {
            Err(e) => pages.push(failed(what, String::new(), e.to_string())),
            Ok(url) => match client.get_text(&url).await {
                Ok(page) => pages.push(explain_guild(&page.body, sel, &url, guild)),
                Err(e) => pages.push(failed(what, url, e.to_string())),
            },
        }
        kinds.push((
            guild.clone(),
            pages.last().and_then(|p: &PageReport| p.guild_kind),
        ));
    }
    for name in players {
        let what = format!("player {name}");
        match client.player_url(world, name) {
            Err(e) => pages.push(failed(what, String::new(), e.to_string())),
            Ok(url) => match client.get_text(&url).await {
                Ok(page) => pages.push(explain_player(&page.body, sel, &url, name)),
                Err(e) => pages.push(failed(what, url, e.to_string())),
            },
        }
    }
    Explain {
        world: world.to_string(),
        pages,
        guilds: kinds,
        guild_rules: Vec::new(),
        world_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_site::render::{self, Layout};
    use crate::demo_site::{ALT_LAYOUT_PROFILE, Data};
    use crate::site::Selectors;

    fn alt_selectors() -> Selectors {
        let t: toml::Table = toml::from_str(ALT_LAYOUT_PROFILE).expect("toml");
        t["site"]["selectors"]
            .clone()
            .try_into()
            .expect("the example's selectors")
    }

    fn pages(layout: Layout) -> (String, String, DateTime<Utc>, FixedOffset) {
        let now = Utc::now();
        let off = FixedOffset::west_opt(3 * 3600).expect("offset");
        let data = Data::realistic(now, off);
        let w = &data.worlds[0];
        (
            render::status_page(&data, now, layout),
            render::guild_page_in(layout, Some(w), Some(&w.guilds[0]), 1),
            now,
            off,
        )
    }

    #[test]
    fn matching_selectors_show_titles_rows_and_times() {
        for (layout, selectors) in [
            (Layout::Table, Selectors::default()),
            (Layout::Alt, alt_selectors()),
        ] {
            let sel = selectors.compile().expect("valid");
            let (status, guild, now, off) = pages(layout);
            let s = explain_status(&status, &sel, "http://x/status", now, off, "Aurera");
            let text = s.to_string();
            assert!(s.outcome.is_ok(), "{text}");
            assert!(s.selectors.iter().all(|r| r.ok), "{text}");
            for want in [
                "world names: Aurera, Bellum, Cèlesta",
                "◀ the update time",
                "Online",
                "Deaths/Kills",
                "(a later row of the routine: ignored)",
            ] {
                assert!(text.contains(want), "{layout:?}: {want:?} not in\n{text}");
            }
            let g = explain_guild(&guild, &sel, "http://x/g", "Red Rose");
            let text = g.to_string();
            assert!(
                g.outcome.is_ok() && g.selectors.iter().all(|r| r.ok),
                "{text}"
            );
            assert!(text.contains("Zé Pequeno"), "{text}");
        }
    }

    #[test]
    fn a_redesign_read_with_old_selectors_names_the_broken_keys_and_what_exists() {
        let sel = Selectors::default().compile().expect("valid");
        let (status, guild, now, off) = pages(Layout::Alt);
        let s = explain_status(&status, &sel, "http://x/status", now, off, "Aurera");
        let text = s.to_string();
        assert!(s.outcome.is_err(), "{text}");
        let title = &s.selectors[0];
        assert!(!title.ok && title.count == 0, "{text}");
        assert!(
            title
                .nearest
                .iter()
                .any(|n| n.starts_with("h2.world-title")),
            "{text}"
        );
        let g = explain_guild(&guild, &sel, "http://x/g", "Red Rose");
        let text = g.to_string();
        assert!(
            text.contains("✗ ranking = \"table.table-highscores\""),
            "{text}"
        );
        assert!(text.contains("section.box"), "{text}");

        // Renamed cells: the nearest elements point at the new name.
        let (_, table_guild, _, _) = pages(Layout::Table);
        let renamed = table_guild.replace("col-xp", "col-exp");
        let g = explain_guild(&renamed, &sel, "http://x/g", "Red Rose");
        let xp = g
            .selectors
            .iter()
            .find(|r| r.key.starts_with("experience"))
            .expect("experience line");
        assert_eq!(xp.count, 0);
        assert!(
            xp.nearest[0].starts_with("td.col-exp ×1"),
            "{:?}",
            xp.nearest
        );
        assert!(g.outcome.is_err());
    }

    #[test]
    fn guild_pages_without_the_ranking_say_what_they_are() {
        let now = Utc::now();
        let data = Data::realistic(now, FixedOffset::west_opt(3 * 3600).expect("offset"));
        let w = &data.worlds[2];
        let sel = Selectors::default().compile().expect("valid");
        let unknown = render::guild_page_in(Layout::Table, Some(w), None, 1);
        let r = explain_guild(&unknown, &sel, "u", "Unknown Guild");
        assert_eq!(
            r.guild_kind,
            Some(GuildPageKind::NoRanking { containers: 1 })
        );
        let text = r.to_string();
        assert!(
            text.contains("but only 1 match: no ranking on this page"),
            "{text}"
        );
        assert!(
            text.contains("result: no ranking (1 of the ranking_index + 1 = 2"),
            "{text}"
        );

        let bare =
            "<html><body><h1>X</h1><p class=\"gone\">Guilda não encontrada</p></body></html>";
        let r = explain_guild(bare, &sel, "u", "X");
        assert_eq!(
            r.guild_kind,
            Some(GuildPageKind::NoRanking { containers: 0 })
        );
        let marked = Selectors {
            unknown_guild: "p.gone".into(),
            ..Selectors::default()
        }
        .compile()
        .expect("valid");
        let r = explain_guild(bare, &marked, "u", "X");
        assert_eq!(r.guild_kind, Some(GuildPageKind::NotFound));
        let text = r.to_string();
        assert!(text.contains("✓ unknown_guild = \"p.gone\""), "{text}");
        assert!(
            text.contains("the site's \"not found\" page: an unknown guild"),
            "{text}"
        );
        // Cut short: a failure, no kind.
        let r = explain_guild("<html><body><h1>X</h1>", &sel, "u", "X");
        assert!(r.outcome.is_err() && r.guild_kind.is_none());
    }

    #[test]
    fn nearest_ranks_shared_and_similar_classes_first() {
        let doc = Html::parse_document(
            r#"<html><body><div class="x"><span class="level">1</span><span class="lvl">2</span><b>3</b></div></body></html>"#,
        );
        let (got, _) = nearest(doc.root_element(), "span.lvl-x");
        assert!(got[0].starts_with("span.lvl"), "{got:?}");
        assert_eq!(
            wanted("div.a > td.b.c[data-x]::attr(y)")[0].classes,
            ["b", "c"]
        );
    }

    #[test]
    fn player_pages_show_which_table_is_which_and_the_day() {
        let now = Utc::now();
        let data = Data::realistic(now, FixedOffset::west_opt(3 * 3600).expect("offset"));
        let (w, m) = data.player("Zé Pequeno").expect("known");
        for (layout, selectors) in [
            (Layout::Table, Selectors::default()),
            (Layout::Alt, alt_selectors()),
        ] {
            let sel = selectors.compile().expect("valid");
            let page = render::player_page(layout, Some((w, m)), "Zé Pequeno");
            let r = explain_player(&page, &sel, "http://x/player", "Zé Pequeno");
            let text = r.to_string();
            assert!(r.outcome.is_ok(), "{layout:?}\n{text}");
            assert!(r.selectors.iter().all(|s| s.ok), "{layout:?}\n{text}");
            for want in [
                "experience table: table 4 of 4",
                "online table: table 3 of 4",
                &format!("{} raw xp", m.experience),
            ] {
                assert!(text.contains(want), "{layout:?}: {want:?} not in\n{text}");
            }
            // The other layout's header words: the key and what exists.
            let unknown = render::player_page(layout, None, "Ninguém");
            let r = explain_player(&unknown, &sel, "u", "Ninguém");
            assert!(
                r.outcome
                    .as_ref()
                    .is_ok_and(|o| o.contains("does not know")),
                "{}",
                r
            );
        }
        let sel = Selectors::default().compile().expect("valid");
        let page = render::player_page(Layout::Table, Some((w, m)), "Zé Pequeno")
            .replace("Online time", "Tempo jogado");
        let r = explain_player(&page, &sel, "u", "Zé Pequeno");
        let text = r.to_string();
        assert!(r.outcome.is_err(), "{text}");
        assert!(text.contains("✗ online_column = \"Online time\""), "{text}");
        assert!(text.contains("\"Tempo jogado\""), "nearest headers: {text}");
    }
}
