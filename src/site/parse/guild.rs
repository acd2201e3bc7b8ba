//! The guild page: the ranking's rows, the next page, or what the page
//! shows where the ranking should be.

use std::collections::HashMap;

use scraper::{ElementRef, Html};
use serde::Serialize;

use super::common::{
    bad_value, complete_check, contains_ignore_ascii_case, layout, parse_number, parse_number_parts,
};
use crate::site::SiteError;
use crate::site::selectors::{Compiled, Field, attr_of, walk_elements};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Selectors;

    fn sel() -> Compiled {
        Selectors::default().compile().expect("defaults")
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
}
