//! Property tests of the page parsers, over both layouts:
//!
//! - random whitespace, CRLF, emoji, extra inline elements and labels
//!   around the words never change what is parsed;
//! - arbitrary bytes and arbitrary HTML never panic, and a failure always
//!   names a selector key or a value (the same contract the cargo-fuzz
//!   targets in `fuzz/` check, run here on every `cargo test`).

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use worldpool::site::parse::{GuildPageKind, PlayerRow, parse_guild, parse_status};
use worldpool::site::{Compiled, Selectors, SiteError};

fn offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("offset")
}

/// 2026-11-29 09:00 in the site's zone.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .expect("time")
}

fn table_selectors() -> Compiled {
    Selectors::default().compile().expect("defaults")
}

fn alt_selectors() -> Compiled {
    alt_source().compile().expect("valid")
}

/// Both layouts' selectors with `complete_marker` disabled.
fn unmarked_selectors() -> [Compiled; 2] {
    [Selectors::default(), alt_source()].map(|mut s| {
        s.complete_marker = String::new();
        s.compile().expect("valid")
    })
}

fn alt_source() -> Selectors {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/alt-layout.toml"),
    )
    .expect("the example profile");
    let t: toml::Table = toml::from_str(&text).expect("TOML");
    t["site"]["selectors"]
        .clone()
        .try_into()
        .expect("selectors")
}

/// Decisions drawn from proptest bytes (shrinks well): each call takes the
/// next byte.
struct Choices {
    bytes: Vec<u8>,
    i: usize,
}

impl Choices {
    fn pick(&mut self, n: usize) -> usize {
        if self.bytes.is_empty() || n == 0 {
            return 0;
        }
        let b = self.bytes[self.i % self.bytes.len()];
        self.i += 1;
        usize::from(b) % n
    }

    /// Whitespace between elements: none, spaces, CRLF and indentation,
    /// tabs, a non-breaking space.
    fn ws(&mut self) -> &'static str {
        [
            "",
            " ",
            "\r\n",
            "\r\n        ",
            "\t",
            "  \r\n\t ",
            "\u{a0}",
            "\n",
        ][self.pick(8)]
    }

    /// Whitespace between words: never empty.
    fn gap(&mut self) -> &'static str {
        [" ", "  ", "\r\n", "\r\n            ", "\t", "\u{a0}"][self.pick(6)]
    }

    fn emoji(&mut self) -> &'static str {
        [
            "",
            "",
            "🔥",
            "🌍",
            "⚔️",
            "🟢",
            "💀 ",
            "<img src=\"x.png\" alt=\"\">",
        ][self.pick(8)]
    }

    /// Wrap text in an inline element, or not; maybe an empty icon first.
    fn inline(&mut self, text: &str) -> String {
        let icon = [
            "",
            "",
            "<i class=\"icon\"></i>",
            "<span class=\"sr\"></span>",
        ][self.pick(4)];
        let wrapped = match self.pick(5) {
            0 => format!("<b>{text}</b>"),
            1 => format!("<span class=\"v\">{text}</span>"),
            2 => format!("<em>{text}</em>"),
            _ => text.to_string(),
        };
        format!("{icon}{wrapped}")
    }

    /// Words joined by random (non-empty) whitespace.
    fn words(&mut self, text: &str) -> String {
        let mut out = String::new();
        for (i, w) in text.split(' ').enumerate() {
            if i > 0 {
                out.push_str(self.gap());
            }
            out.push_str(w);
        }
        out
    }

    fn label(&mut self, options: &[&'static str]) -> &'static str {
        options[self.pick(options.len())]
    }
}

const WORLDS: [&str; 5] = ["Aurera", "Cèlesta", "Nova Ordem", "Ñandú", "Bellum"];
const ROUTINES: [&str; 3] = ["Online", "Daily Raw Ranking", "Deaths/Kills"];
const NAMES: [&str; 8] = [
    "Zé Pequeno",
    "Lady Ávila",
    "joão da silva",
    "Ñandú Ärger",
    "Bob",
    "Çelo",
    "Rei Arthur II",
    "Vó Maria",
];
const VOCATIONS: [&str; 5] = [
    "Elite Knight",
    "Royal Paladin",
    "Master Sorcerer",
    "Elder Druid",
    "None",
];

/// A world of the model: name and (hour, minute, yesterday) per routine.
#[derive(Debug, Clone)]
struct WorldModel {
    name: &'static str,
    times: [(u32, u32, bool); 3],
}

impl WorldModel {
    fn time_of(&self, r: usize) -> DateTime<FixedOffset> {
        let (h, m, yesterday) = self.times[r];
        let day = if yesterday { 28 } else { 29 };
        offset()
            .with_ymd_and_hms(2026, 11, day, h, m, 0)
            .single()
            .expect("valid")
    }
}

fn worlds_strategy() -> impl Strategy<Value = Vec<WorldModel>> {
    proptest::sample::subsequence(WORLDS.to_vec(), 1..=3).prop_flat_map(|names| {
        let n = names.len();
        proptest::collection::vec(
            proptest::array::uniform3((0u32..24, 0u32..60, any::<bool>())),
            n,
        )
        .prop_map(move |times| {
            names
                .iter()
                .zip(times)
                .map(|(name, times)| WorldModel { name, times })
                .collect()
        })
    })
}

fn rows_strategy() -> impl Strategy<Value = Vec<PlayerRow>> {
    proptest::collection::vec(
        (
            proptest::sample::select(NAMES.to_vec()),
            proptest::sample::select(VOCATIONS.to_vec()),
            1u32..3000,
            0i64..200_000_000_000,
        ),
        0..8,
    )
    .prop_map(|rows| {
        let mut seen = Vec::new();
        rows.into_iter()
            .filter(|(n, ..)| {
                let new = !seen.contains(n);
                seen.push(*n);
                new
            })
            .enumerate()
            .map(|(i, (name, voc, level, xp))| PlayerRow {
                rank: i as u32 + 1,
                name: name.to_string(),
                vocation: voc.to_string(),
                level,
                experience: xp,
            })
            .collect()
    })
}

fn site_time_text(c: &mut Choices, w: &WorldModel, r: usize) -> String {
    let (h, m, yesterday) = w.times[r];
    let day = if yesterday {
        c.label(&["Ontem", "ontem", "ONTEM", "28/11/2026"])
    } else {
        c.label(&["Hoje", "hoje", "HOJE", "29/11/2026"])
    };
    let at = c.label(&["às", "as", "ÀS"]);
    let hh = if c.pick(2) == 0 {
        format!("{h:02}")
    } else {
        h.to_string()
    };
    let (g1, g2) = (c.gap(), c.gap());
    let before = c.label(&["", "", "Última: ", "<i class=\"clock\"></i>", "🕑"]);
    let after = c.label(&["", "", " <small>(BRT)</small>", " h"]);
    format!("{before}{day}{g1}{at}{g2}{hh}:{m:02}{after}")
}

fn page(c: &mut Choices, body: &str) -> String {
    format!(
        "<!DOCTYPE html>{}<html>{}<head><meta charset=\"utf-8\"><title>x</title></head>{}<body>{}{body}{}</body>{}</html>{}",
        c.ws(),
        c.ws(),
        c.ws(),
        c.ws(),
        c.ws(),
        c.ws(),
        c.ws()
    )
}

fn status_table(c: &mut Choices, worlds: &[WorldModel]) -> String {
    let mut b = String::from("<table class=\"table\">");
    for (i, w) in worlds.iter().enumerate() {
        if i > 0 {
            b.push_str(["<tr><td colspan=\"4\">&nbsp;</td></tr>", "<tr></tr>", ""][c.pick(3)]);
            b.push_str(c.ws());
        }
        let emoji = c.emoji();
        let name = deco(c, w.name);
        let label = c.label(&[
            "",
            "<small>Servidor</small>",
            " <small class=\"text-muted\">Servidor</small>",
            "<span class=\"badge\">online</span>",
            " (BR)",
        ]);
        let (w1, w2, w3) = (c.ws(), c.ws(), c.ws());
        b.push_str(&format!(
            "<tr>{w1}<td colspan=\"4\">{w2}{emoji}<span>{name}</span>{w3}Status{label}{}</td></tr>",
            c.ws()
        ));
        if c.pick(2) == 0 {
            b.push_str(
                "<tr><th>Rotina</th><th>Última atualização</th><th>Atraso</th><th>Status</th></tr>",
            );
        }
        for (r, routine) in ROUTINES.iter().enumerate() {
            let emoji = c.emoji();
            let name = deco(c, routine);
            let phrase = c.label(&[
                "<small>Rotina de coleta</small>",
                "<small>Rotina de coleta</small>",
                " Rotina de coleta",
                "",
            ]);
            let time = site_time_text(c, w, r);
            let (w1, w2, w3) = (c.ws(), c.ws(), c.ws());
            b.push_str(&format!(
                "<tr>{w1}<td><span>{emoji}</span><span>{name}</span>{phrase}</td>{w2}<td>{w3}{time}{}</td><td>5 min</td><td><span class=\"badge\">Atualizado</span></td></tr>",
                c.ws()
            ));
        }
    }
    b.push_str("</table>");
    page(c, &b)
}

/// Words with random whitespace, maybe wrapped in an inline element.
fn deco(c: &mut Choices, text: &str) -> String {
    let words = c.words(text);
    c.inline(&words)
}

fn status_alt(c: &mut Choices, worlds: &[WorldModel]) -> String {
    let mut b = String::from("<main class=\"status-board\">");
    for w in worlds {
        let emoji = c.emoji();
        let name = deco(c, w.name);
        let label = c.label(&[
            "",
            " <em>servidor</em>",
            "<em>servidor</em>",
            " — <b>BR</b>",
        ]);
        let (w1, w2) = (c.ws(), c.ws());
        b.push_str(&format!(
            "<section class=\"world-card\">{w1}<header><h2 class=\"world-title\">{emoji}{w2}{name}{}<span class=\"tag\">Status</span>{label}</h2></header><ul class=\"routines\">",
            c.ws()
        ));
        for (r, routine) in ROUTINES.iter().enumerate() {
            let emoji = c.emoji();
            let name = deco(c, routine);
            let iso = w.time_of(r).format("%Y-%m-%dT%H:%M:%S%:z");
            let text = site_time_text(c, w, r);
            let (w1, w2, w3) = (c.ws(), c.ws(), c.ws());
            b.push_str(&format!(
                "<li class=\"routine\">{w1}<span class=\"icon\">{emoji}</span><strong class=\"routine-name\">{name}</strong>{w2}<time datetime=\"{iso}\">{text}</time>{w3}<span class=\"state\">ok</span></li>"
            ));
        }
        b.push_str("</ul></section>");
        b.push_str(c.ws());
    }
    b.push_str("</main>");
    page(c, &b)
}

fn number(c: &mut Choices, n: i64, sep: char) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(d);
    }
    c.inline(&out)
}

fn guild_table(c: &mut Choices, rows: &[PlayerRow]) -> String {
    let mut b = String::from(
        "<table class=\"table table-highscores\"><tr><th>Vocação</th><th>Jogadores</th></tr><tr><td>Knight</td><td>1</td></tr></table>",
    );
    b.push_str(c.ws());
    b.push_str("<table class=\"table table-highscores\"><thead><tr><th>#</th><th>Nome</th><th>Voc</th><th>Level</th><th>XP</th></tr></thead><tbody>");
    for r in rows {
        let rank = format!(
            "{}{}",
            c.inline(&r.rank.to_string()),
            c.label(&["", "º", "."])
        );
        let name = deco(c, &r.name);
        let label = c.label(&[
            "",
            "<small>Líder</small>",
            " <span class=\"rank\">Membro</span>",
        ]);
        let voc = deco(c, &r.vocation);
        let level = number(c, i64::from(r.level), '.');
        let xp = number(c, r.experience, '.');
        let ws: Vec<&str> = (0..10).map(|_| c.ws()).collect();
        b.push_str(&format!(
            "<tr>{}<td class=\"col-rank\">{}{rank}{}</td>{}<td class=\"col-name\">{}<a href=\"/p\">{}{name}{}</a>{label}</td><td class=\"col-voc\">{}{voc}</td><td class=\"col-level\">{level}{}</td><td class=\"col-xp\">{}{xp}</td></tr>",
            ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6], ws[7], ws[8], ws[9]
        ));
    }
    b.push_str("</tbody></table>");
    page(c, &b)
}

fn guild_alt(c: &mut Choices, rows: &[PlayerRow]) -> String {
    let mut b = String::from(
        "<main><section class=\"box\"><div class=\"stat\"><span class=\"voc\">Knight</span>1</div></section>",
    );
    b.push_str("<section class=\"box\"><div class=\"line head\"><span>#</span></div>");
    for r in rows {
        let name = deco(c, &r.name);
        let label = c.label(&["", "<small>Líder</small>"]);
        let voc = deco(c, &r.vocation);
        let xp = number(c, r.experience, ',');
        let ws: Vec<&str> = (0..4).map(|_| c.ws()).collect();
        b.push_str(&format!(
            "<div class=\"line player\">{}<span class=\"pos\">{}.</span>{}<span class=\"who\"><a href=\"/p\">{name}</a>{label}</span><span class=\"voc\">{voc}</span>{}<span class=\"lvl\" data-level=\"{}\">Nível {}</span><span class=\"exp\">{}{xp}</span></div>",
            ws[0], r.rank, ws[1], ws[2], r.level, r.level, ws[3]
        ));
    }
    b.push_str("</section></main>");
    page(c, &b)
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg(300))]

    #[test]
    fn decorations_never_change_the_status_parse(
        worlds in worlds_strategy(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (table, alt) = (table_selectors(), alt_selectors());
        let want: Vec<(String, DateTime<FixedOffset>)> = worlds
            .iter()
            .map(|w| (w.name.to_string(), w.time_of(1)))
            .collect();
        for (layout, sel) in [("table", &table), ("alt", &alt)] {
            let mut c = Choices { bytes: bytes.clone(), i: 0 };
            let page = if layout == "table" { status_table(&mut c, &worlds) } else { status_alt(&mut c, &worlds) };
            let got = parse_status(&page, sel, "http://x/status", now(), offset())
                .unwrap_or_else(|e| panic!("{layout}: {e}\n{page}"));
            let got: Vec<(String, DateTime<FixedOffset>)> =
                got.into_iter().map(|w| (w.world, w.update_time)).collect();
            prop_assert_eq!(&got, &want, "{} layout:\n{}", layout, page);
        }
    }

    #[test]
    fn decorations_never_change_the_guild_parse(
        rows in rows_strategy(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (table, alt) = (table_selectors(), alt_selectors());
        for (layout, sel) in [("table", &table), ("alt", &alt)] {
            let mut c = Choices { bytes: bytes.clone(), i: 0 };
            let page = if layout == "table" { guild_table(&mut c, &rows) } else { guild_alt(&mut c, &rows) };
            let got = parse_guild(&page, sel, "http://x/g")
                .unwrap_or_else(|e| panic!("{layout}: {e}\n{page}"));
            prop_assert_eq!(got.kind, GuildPageKind::Ranking);
            prop_assert_eq!(&got.rows, &rows, "{} layout:\n{}", layout, page);
        }
    }

    /// An unknown guild's page of either layout, or a bare page with only
    /// the guild's heading, decorated at random: no ranking (the world
    /// decides what that means), never an error.
    #[test]
    fn pages_without_the_ranking_read_as_such(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (table, alt) = (table_selectors(), alt_selectors());
        let mut c = Choices { bytes, i: 0 };
        let vocations_table = page(&mut c, "<table class=\"table table-highscores\"><tr><th>Vocação</th><th>Jogadores</th></tr><tr><td>Knight</td><td>0</td></tr></table>");
        let vocations_alt = page(&mut c, "<main><section class=\"box\"><div class=\"stat\"><span class=\"voc\">Knight</span>0</div></section></main>");
        let heading = deco(&mut c, "Guilda Sem Nome");
        let bare = page(&mut c, &format!("<main><h1>{heading}</h1></main>"));
        for (sel, text, containers) in [
            (&table, &vocations_table, 1),
            (&alt, &vocations_alt, 1),
            (&table, &bare, 0),
            (&alt, &bare, 0),
        ] {
            let got = parse_guild(text, sel, "http://x/g").unwrap_or_else(|e| panic!("{e}\n{text}"));
            prop_assert_eq!(got.kind, GuildPageKind::NoRanking { containers }, "{}", text);
            prop_assert!(got.rows.is_empty());
        }
    }

    /// A guild page cut short anywhere before `</body>` is never read as a
    /// page without the ranking (which a world could take for an unknown
    /// guild): truncated with `complete_marker`; without it, either its
    /// ranking is there or the ranking is missing, an error.
    #[test]
    fn a_cut_page_is_never_a_page_without_the_ranking(
        rows in rows_strategy(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 0.0f64..1.0,
    ) {
        let [table_unmarked, alt_unmarked] = unmarked_selectors();
        let (table, alt) = (table_selectors(), alt_selectors());
        for (layout, marked, unmarked) in [("table", &table, &table_unmarked), ("alt", &alt, &alt_unmarked)] {
            let mut c = Choices { bytes: bytes.clone(), i: 0 };
            let whole = if layout == "table" { guild_table(&mut c, &rows) } else { guild_alt(&mut c, &rows) };
            let end = whole.find("</body>").expect("a body");
            let mut at = (end as f64 * cut) as usize;
            while !whole.is_char_boundary(at) {
                at -= 1;
            }
            let text = &whole[..at];
            match parse_guild(text, marked, "http://x/g") {
                Err(SiteError::Truncated { .. }) => {}
                other => prop_assert!(false, "{layout}: {other:?}\n{text}"),
            }
            match parse_guild(text, unmarked, "http://x/g") {
                Ok(got) => prop_assert_eq!(got.kind, GuildPageKind::Ranking, "{}: {}", layout, text),
                Err(e) => prop_assert!(names_a_key_or_value(&e), "{}", e),
            }
        }
    }
}

/// A failure names a selector key (or the value it could not read).
fn names_a_key_or_value(e: &SiteError) -> bool {
    let msg = e.to_string();
    match e {
        SiteError::Layout { selector, .. } => {
            msg.contains("site.selectors.") && selector.contains(" = ")
        }
        SiteError::BadValue { field, .. } => {
            msg.contains(&format!("site.selectors.{field}")) && msg.contains("cannot read")
        }
        SiteError::Truncated { .. } => msg.contains("site.selectors.complete_marker"),
        _ => false,
    }
}

fn check_page(text: &str) -> Result<(), TestCaseError> {
    for sel in [table_selectors(), alt_selectors()] {
        match parse_status(text, &sel, "http://x/status", now(), offset()) {
            Ok(worlds) => prop_assert!(!worlds.is_empty()),
            Err(e) => prop_assert!(names_a_key_or_value(&e), "{}", e),
        }
        match parse_guild(text, &sel, "http://x/g") {
            Ok(page) => prop_assert!(page.rows.iter().all(|r| !r.name.is_empty())),
            Err(e) => prop_assert!(names_a_key_or_value(&e), "{}", e),
        }
    }
    Ok(())
}

/// Arbitrary HTML built from the pages' own vocabulary, nested at random.
fn html_strategy() -> impl Strategy<Value = String> {
    let text = proptest::sample::select(vec![
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
        "",
        " \r\n ",
        "&nbsp;",
        "<",
        "&",
        "\u{0}",
    ])
    .prop_map(str::to_string);
    let leaf = prop_oneof![text.clone(), Just(String::new())];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        (
            proptest::sample::select(vec![
                "table class=\"table-highscores\"",
                "table class=\"table table-highscores\"",
                "tr",
                "td class=\"col-rank\"",
                "td class=\"col-name\"",
                "td class=\"col-voc\"",
                "td class=\"col-level\"",
                "td class=\"col-xp\"",
                "td",
                "th",
                "a rel=\"next\" href=\"?p=2\"",
                "a",
                "span",
                "section class=\"box\"",
                "section class=\"world-card\"",
                "h2 class=\"world-title\"",
                "li class=\"routine\"",
                "strong class=\"routine-name\"",
                "time datetime=\"2026-11-29T09:23\"",
                "div class=\"line player\"",
                "span class=\"pos\"",
                "span class=\"who\"",
                "span class=\"lvl\" data-level=\"x\"",
                "span class=\"exp\"",
                "nav class=\"pager\"",
                "a class=\"next\"",
            ]),
            proptest::collection::vec(inner, 0..5),
            any::<bool>(),
        )
            .prop_map(|(tag, children, close)| {
                let name = tag.split(' ').next().unwrap_or("div");
                format!(
                    "<{tag}>{}{}",
                    children.concat(),
                    if close {
                        format!("</{name}>")
                    } else {
                        String::new()
                    }
                )
            })
    })
}

proptest! {
    #![proptest_config(cfg(400))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_name_a_key(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        close in any::<bool>(),
    ) {
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if close {
            text.push_str("</html>");
        }
        check_page(&text)?;
    }

    #[test]
    fn arbitrary_html_never_panics_and_errors_name_a_key(
        body in html_strategy(),
        close in any::<bool>(),
    ) {
        let text = format!("<html><body>{body}</body>{}", if close { "</html>" } else { "" });
        check_page(&text)?;
    }
}
