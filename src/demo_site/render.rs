//! HTML of the demo pages, in two layouts.
//!
//! - [`Layout::Table`], the real site's shape (`../shared/DOMAIN.md`): CRLF
//!   line ends and heavy indentation; on the status page one table with a
//!   block per world separated by empty rows, a title cell with markup and
//!   a label after "Status", a header row, and routine cells holding emoji +
//!   name + the phrase "Rotina de coleta" with no whitespace between them;
//!   the `Online`, `Daily Raw Ranking` and `Deaths/Kills` routines, a stale
//!   `Ontem às` row, and in the first block the ranking routine twice (the
//!   first is current). Guild pages: two `table.table-highscores`,
//!   `td.col-*` cells, dot-grouped numbers, the name in a link.
//! - [`Layout::Alt`], a table-free redesign: world blocks as headed
//!   sections with list items holding the routine name and a `<time>`;
//!   guild rankings as `div` rows of `span` fields, comma-grouped numbers,
//!   the level in an attribute, a "next" link. Read by
//!   `config/examples/alt-layout.toml`.
//!
//! Player pages (`/player?name=`): in the table layout four tables, newest
//! row first — deaths (`Time | World | Level | Killed by`), kills (`Time |
//! World | Victim | Victim Level`), online time per day (`Date | Online
//! time`, `dd/mm/yyyy`, `3h 10m` / `50m`) and experience per day (`Data |
//! Level | Δ Level | Raw XP no dia`, dot-grouped); in the alt layout the
//! same four as `section.box` blocks of `div` lines with Portuguese headers
//! (`Dia | Tempo online`, `Dia | Nível | Δ | XP bruta do dia`). A name the
//! site does not know gets a page without any of them.

use std::fmt::Write as _;

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, TimeZone, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use super::data::{Data, Guild, Member, World};
use chrono::NaiveDate;

/// The page layout the demo site serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The real site's shape (tables), read by the default selectors.
    #[default]
    Table,
    /// A table-free redesign, read by `config/examples/alt-layout.toml`.
    Alt,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Layout, String> {
        match s.trim() {
            "table" => Ok(Layout::Table),
            "alt" => Ok(Layout::Alt),
            other => Err(format!("unknown layout `{other}`: use table or alt")),
        }
    }
}

/// Escape text for HTML.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn grouped(n: i64, sep: char) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `74287224` → `74.287.224`.
pub fn dotted(n: i64) -> String {
    grouped(n, '.')
}

/// `74287224` → `74,287,224`.
pub fn commas(n: i64) -> String {
    grouped(n, ',')
}

/// `Hoje às HH:MM`, `Ontem às HH:MM` or `DD/MM/YYYY às HH:MM` relative to `now`.
pub fn site_time(t: DateTime<FixedOffset>, now: DateTime<Utc>) -> String {
    let today = now.with_timezone(t.offset()).date_naive();
    let day = t.date_naive();
    let hm = t.format("%H:%M");
    if day == today {
        format!("Hoje às {hm}")
    } else if day == today - ChronoDuration::days(1) {
        format!("Ontem às {hm}")
    } else {
        format!("{} às {hm}", t.format("%d/%m/%Y"))
    }
}

/// Lines with CRLF ends and two spaces per level, like the real pages.
struct Page(String);

impl Page {
    fn new(title: &str) -> Page {
        let mut p = Page(String::with_capacity(32 * 1024));
        p.line(0, "<!DOCTYPE html>");
        p.line(0, "<html lang=\"pt-br\">");
        p.line(0, "<head>");
        p.line(1, "<meta charset=\"utf-8\">");
        p.line(1, &format!("<title>{title}</title>"));
        p.line(1, "<link rel=\"stylesheet\" href=\"/static/site.css\">");
        p.line(0, "</head>");
        p.line(0, "<body>");
        p
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.0.push_str("  ");
        }
        self.0.push_str(text);
        self.0.push_str("\r\n");
    }

    fn finish(mut self) -> String {
        self.line(
            1,
            "<footer class=\"footer\"><small>Dados atualizados a cada 10 minutos.</small></footer>",
        );
        self.line(0, "</body>");
        self.line(0, "</html>");
        self.0
    }
}

/// A routine as the status page shows it.
struct Routine {
    emoji: &'static str,
    name: &'static str,
    time: DateTime<FixedOffset>,
}

/// The routines of world number `i` of `n`, in page order.
fn routines(w: &World, i: usize, n: usize, now: DateTime<Utc>) -> Vec<Routine> {
    let local_now = now.with_timezone(w.update_time.offset());
    let online = (local_now - ChronoDuration::minutes(1)).max(w.update_time);
    let yesterday = (local_now.date_naive() - ChronoDuration::days(1))
        .and_hms_opt(23, 58, 0)
        .and_then(|t| w.update_time.offset().from_local_datetime(&t).single())
        .unwrap_or(w.update_time - ChronoDuration::days(1));
    let mut out = vec![
        Routine {
            emoji: "🟢",
            name: "Online",
            time: online,
        },
        Routine {
            emoji: "🔥",
            name: "Daily Raw Ranking",
            time: w.update_time,
        },
        Routine {
            emoji: "💀",
            name: "Deaths/Kills",
            // The last world's is stale: yesterday.
            time: if i + 1 == n && n > 1 {
                yesterday
            } else {
                w.update_time - ChronoDuration::minutes(2)
            },
        },
    ];
    if i == 0 {
        // A second, older row of the ranking routine: the first one counts.
        out.push(Routine {
            emoji: "🔥",
            name: "Daily Raw Ranking",
            time: yesterday - ChronoDuration::minutes(30),
        });
    }
    out
}

fn behind_and_word(t: DateTime<FixedOffset>, now: DateTime<Utc>) -> (i64, &'static str) {
    let behind = (now - t.with_timezone(&Utc)).num_minutes().max(0);
    (
        behind,
        if behind > 15 {
            "Desatualizado"
        } else {
            "Atualizado"
        },
    )
}

fn behind_text(minutes: i64) -> String {
    if minutes >= 60 {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}

/// The status page.
pub fn status_page(data: &Data, now: DateTime<Utc>, layout: Layout) -> String {
    match layout {
        Layout::Table => status_table(data, now),
        Layout::Alt => status_alt(data, now),
    }
}

fn status_table(data: &Data, now: DateTime<Utc>) -> String {
    let mut p = Page::new("Status das rotinas");
    p.line(1, "<div class=\"container\">");
    p.line(2, "<div class=\"row\">");
    p.line(3, "<div class=\"col-12\">");
    p.line(4, "<div class=\"card\">");
    p.line(5, "<div class=\"card-body\">");
    p.line(6, "<table class=\"table table-status\">");
    p.line(7, "<tbody>");
    let n = data.worlds.len();
    for (i, w) in data.worlds.iter().enumerate() {
        if i > 0 {
            p.line(8, "<tr>");
            p.line(9, "<td colspan=\"4\">&nbsp;</td>");
            p.line(8, "</tr>");
            p.line(8, "<tr></tr>");
            p.line(0, "");
        }
        p.line(8, "<tr class=\"world-title\">");
        p.line(9, "<td colspan=\"4\">");
        p.line(
            10,
            &format!(
                "<span class=\"world\">{}</span> Status <small class=\"text-muted\">Servidor</small>",
                esc(&w.name)
            ),
        );
        p.line(9, "</td>");
        p.line(8, "</tr>");
        p.line(8, "<tr class=\"head\">");
        p.line(9, "<th>Rotina</th>");
        p.line(9, "<th>Última atualização</th>");
        p.line(9, "<th>Atraso</th>");
        p.line(9, "<th>Status</th>");
        p.line(8, "</tr>");
        for r in routines(w, i, n, now) {
            let (behind, word) = behind_and_word(r.time, now);
            p.line(8, "<tr>");
            p.line(
                9,
                &format!(
                    "<td><span class=\"emoji\">{}</span><span class=\"routine\">{}</span><small class=\"text-muted\">Rotina de coleta</small></td>",
                    r.emoji, r.name
                ),
            );
            p.line(9, "<td>");
            p.line(10, &site_time(r.time, now));
            p.line(9, "</td>");
            p.line(9, &format!("<td> {} </td>", behind_text(behind)));
            p.line(
                9,
                &format!(
                    "<td><span class=\"badge {}\">{word}</span></td>",
                    if word == "Atualizado" {
                        "bg-success"
                    } else {
                        "bg-danger"
                    }
                ),
            );
            p.line(8, "</tr>");
        }
    }
    p.line(7, "</tbody>");
    p.line(6, "</table>");
    p.line(5, "</div>");
    p.line(4, "</div>");
    p.line(3, "</div>");
    p.line(2, "</div>");
    p.line(1, "</div>");
    p.finish()
}

fn status_alt(data: &Data, now: DateTime<Utc>) -> String {
    let mut p = Page::new("Status");
    p.line(1, "<main class=\"status-board\">");
    p.line(2, "<h1>Rotinas de coleta</h1>");
    let n = data.worlds.len();
    for (i, w) in data.worlds.iter().enumerate() {
        p.line(2, "<section class=\"world-card\">");
        p.line(3, "<header class=\"world-card__head\">");
        p.line(
            4,
            &format!(
                "<h2 class=\"world-title\">🌍 {} <span class=\"tag\">Status</span> <em>servidor</em></h2>",
                esc(&w.name)
            ),
        );
        p.line(3, "</header>");
        p.line(3, "<ul class=\"routines\">");
        for r in routines(w, i, n, now) {
            let (behind, word) = behind_and_word(r.time, now);
            p.line(4, "<li class=\"routine\">");
            p.line(
                5,
                &format!(
                    "<span class=\"icon\">{}</span><strong class=\"routine-name\">{}</strong>",
                    r.emoji, r.name
                ),
            );
            p.line(
                5,
                &format!(
                    "<time datetime=\"{}\">{}</time>",
                    r.time.format("%Y-%m-%dT%H:%M:%S%:z"),
                    site_time(r.time, now)
                ),
            );
            p.line(
                5,
                &format!(
                    "<span class=\"lag\">{}</span> <span class=\"state\">{word}</span>",
                    behind_text(behind)
                ),
            );
            p.line(4, "</li>");
        }
        p.line(3, "</ul>");
        p.line(2, "</section>");
    }
    p.line(1, "</main>");
    p.finish()
}

const VOCATIONS: [&str; 4] = [
    "Elite Knight",
    "Royal Paladin",
    "Master Sorcerer",
    "Elder Druid",
];

fn vocation_count(world: Option<&World>, guild: Option<&Guild>, voc: &str) -> usize {
    match (world, guild) {
        (Some(w), Some(g)) => g
            .members
            .iter()
            .filter(|n| w.players.get(*n).is_some_and(|m| m.vocation == voc))
            .count(),
        _ => 0,
    }
}

/// The rows of one page of a guild, ranked, and whether a next page exists.
fn page_rows<'a>(
    w: &'a World,
    g: &'a Guild,
    page: usize,
) -> (Vec<(usize, &'a String, &'a Member)>, bool) {
    let mut rows: Vec<(&String, &Member)> = g
        .members
        .iter()
        .filter_map(|n| w.players.get(n).map(|m| (n, m)))
        .collect();
    rows.sort_by(|a, b| b.1.experience.cmp(&a.1.experience).then(a.0.cmp(b.0)));
    let size = g.page_size.unwrap_or(usize::MAX).max(1);
    let start = (page.max(1) - 1).saturating_mul(size);
    let more = start.saturating_add(size) < rows.len();
    let rows = rows
        .into_iter()
        .enumerate()
        .skip(start)
        .take(size)
        .map(|(i, (n, m))| (i + 1, n, m))
        .collect();
    (rows, more)
}

fn next_href(w: &World, g: &Guild, page: usize) -> String {
    format!(
        "/guild.php?guild={}&amp;world={}&amp;page={}",
        utf8_percent_encode(&g.name, NON_ALPHANUMERIC),
        utf8_percent_encode(&w.name, NON_ALPHANUMERIC),
        page.max(1) + 1
    )
}

/// A guild page (1-based `page`). `None` guild: the unknown-guild page.
pub fn guild_page(world: Option<&World>, guild: Option<&Guild>, page: usize) -> String {
    guild_page_in(Layout::Table, world, guild, page)
}

/// A guild page in a layout.
pub fn guild_page_in(
    layout: Layout,
    world: Option<&World>,
    guild: Option<&Guild>,
    page: usize,
) -> String {
    match layout {
        Layout::Table => guild_table(world, guild, page),
        Layout::Alt => guild_alt(world, guild, page),
    }
}

fn guild_table(world: Option<&World>, guild: Option<&Guild>, page: usize) -> String {
    let mut p = Page::new("Ranking da guilda");
    p.line(1, "<div class=\"container\">");
    p.line(2, "<div class=\"row\">");
    p.line(3, "<div class=\"col-md-4\">");
    p.line(4, "<table class=\"table table-sm table-highscores\">");
    p.line(5, "<thead>");
    p.line(6, "<tr><th>Vocação</th><th>Jogadores</th></tr>");
    p.line(5, "</thead>");
    p.line(5, "<tbody>");
    for voc in VOCATIONS {
        p.line(6, "<tr>");
        p.line(7, &format!("<td> {voc} </td>"));
        p.line(
            7,
            &format!("<td> {} </td>", vocation_count(world, guild, voc)),
        );
        p.line(6, "</tr>");
    }
    p.line(5, "</tbody>");
    p.line(4, "</table>");
    p.line(3, "</div>");
    if let (Some(w), Some(g)) = (world, guild) {
        let (rows, more) = page_rows(w, g, page);
        p.line(3, "<div class=\"col-md-8\">");
        p.line(4, "<table class=\"table table-striped table-highscores\">");
        p.line(5, "<thead>");
        p.line(6, "<tr>");
        p.line(
            7,
            "<th>#</th><th>Nome</th><th>Vocação</th><th>Level</th><th>Exp. hoje</th>",
        );
        p.line(6, "</tr>");
        p.line(5, "</thead>");
        p.line(5, "<tbody>");
        for (rank, name, m) in rows {
            p.line(6, "<tr>");
            p.line(7, "<td class=\"col-rank\">");
            p.line(8, &rank.to_string());
            p.line(7, "</td>");
            p.line(7, "<td class=\"col-name\">");
            p.line(
                8,
                &format!(
                    "<a href=\"/player?name={}\">",
                    utf8_percent_encode(name, NON_ALPHANUMERIC)
                ),
            );
            p.line(9, &esc(name));
            p.line(8, "</a>");
            p.line(7, "</td>");
            p.line(
                7,
                &format!("<td class=\"col-voc\"> {} </td>", esc(&m.vocation)),
            );
            p.line(7, &format!("<td class=\"col-level\"> {} </td>", m.level));
            p.line(7, "<td class=\"col-xp\">");
            p.line(8, &dotted(m.experience));
            p.line(7, "</td>");
            p.line(6, "</tr>");
        }
        p.line(5, "</tbody>");
        p.line(4, "</table>");
        if more {
            p.line(
                4,
                &format!(
                    "<nav><a class=\"page-link\" rel=\"next\" href=\"{}\">Próxima</a></nav>",
                    next_href(w, g, page)
                ),
            );
        }
        p.line(3, "</div>");
    }
    p.line(2, "</div>");
    p.line(1, "</div>");
    p.finish()
}

fn guild_alt(world: Option<&World>, guild: Option<&Guild>, page: usize) -> String {
    let mut p = Page::new("Guilda");
    p.line(1, "<main class=\"guild\">");
    if let (Some(w), Some(g)) = (world, guild) {
        p.line(
            2,
            &format!("<h1>{} <small>{}</small></h1>", esc(&g.name), esc(&w.name)),
        );
    }
    p.line(2, "<section class=\"box box--vocations\">");
    p.line(3, "<h3>Vocações</h3>");
    for voc in VOCATIONS {
        p.line(
            3,
            &format!(
                "<div class=\"stat\"><span class=\"label\">{voc}</span><span class=\"n\">{}</span></div>",
                vocation_count(world, guild, voc)
            ),
        );
    }
    p.line(2, "</section>");
    if let (Some(w), Some(g)) = (world, guild) {
        let (rows, more) = page_rows(w, g, page);
        p.line(2, "<section class=\"box box--members\">");
        p.line(3, "<h3>Membros</h3>");
        p.line(
            3,
            "<div class=\"line line--head\"><span>#</span><span>Jogador</span><span>Vocação</span><span>Nível</span><span>Exp. hoje</span></div>",
        );
        for (rank, name, m) in rows {
            p.line(3, "<div class=\"line player\">");
            p.line(4, &format!("<span class=\"pos\">{rank}.</span>"));
            p.line(
                4,
                &format!(
                    "<span class=\"who\"><a href=\"/player?name={}\">{}</a></span>",
                    utf8_percent_encode(name, NON_ALPHANUMERIC),
                    esc(name)
                ),
            );
            p.line(
                4,
                &format!("<span class=\"voc\">{}</span>", esc(&m.vocation)),
            );
            p.line(
                4,
                &format!(
                    "<span class=\"lvl\" data-level=\"{}\">Nível {}</span>",
                    m.level, m.level
                ),
            );
            p.line(
                4,
                &format!("<span class=\"exp\">{}</span>", commas(m.experience)),
            );
            p.line(3, "</div>");
        }
        p.line(2, "</section>");
        if more {
            let mut nav = String::from("<nav class=\"pager\">");
            let _ = write!(
                nav,
                "<span class=\"current\">Página {}</span> <a class=\"next\" href=\"{}\">próxima »</a>",
                page.max(1),
                next_href(w, g, page)
            );
            nav.push_str("</nav>");
            p.line(2, &nav);
        }
    }
    p.line(1, "</main>");
    p.finish()
}

/// `190` → `3h 10m`, `50` → `50m`, `0` → `0m`.
pub fn duration(minutes: i64) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// The player page's rows, newest first: (date, level, Δ level, raw xp,
/// online minutes).
fn player_days(w: &World, m: &Member) -> Vec<(NaiveDate, u32, i64, i64, i64)> {
    let days: Vec<(NaiveDate, u32, i64, i64)> =
        std::iter::once((w.day, m.level, m.experience, m.online_minutes))
            .chain(
                m.history
                    .iter()
                    .map(|d| (d.date, d.level, d.raw_xp, d.online_minutes)),
            )
            .collect();
    days.iter()
        .enumerate()
        .map(|(i, &(date, level, xp, online))| {
            let older = days.get(i + 1).map_or(level, |d| d.1);
            (date, level, i64::from(level) - i64::from(older), xp, online)
        })
        .collect()
}

/// A player's page (`None`: the site does not know the name).
pub fn player_page(layout: Layout, player: Option<(&World, &Member)>, name: &str) -> String {
    match layout {
        Layout::Table => player_table(player, name),
        Layout::Alt => player_alt(player, name),
    }
}

fn player_table(player: Option<(&World, &Member)>, name: &str) -> String {
    let mut p = Page::new("Personagem");
    p.line(1, "<div class=\"container\">");
    let Some((w, m)) = player else {
        p.line(2, "<div class=\"alert alert-warning\">");
        p.line(
            3,
            &format!("Personagem <b>{}</b> não encontrado.", esc(name)),
        );
        p.line(2, "</div>");
        p.line(1, "</div>");
        return p.finish();
    };
    let days = player_days(w, m);
    p.line(2, &format!("<h2 class=\"player-name\">{}</h2>", esc(name)));
    p.line(
        2,
        &format!(
            "<p class=\"text-muted\">{} — {} — Level {}</p>",
            esc(&w.name),
            esc(&m.vocation),
            m.level
        ),
    );
    let table = |p: &mut Page, title: &str, headers: &[&str], rows: Vec<Vec<String>>| {
        p.line(2, &format!("<h4>{title}</h4>"));
        p.line(2, "<table class=\"table table-sm table-striped\">");
        p.line(3, "<thead>");
        p.line(4, "<tr>");
        for h in headers {
            p.line(5, &format!("<th>{h}</th>"));
        }
        p.line(4, "</tr>");
        p.line(3, "</thead>");
        p.line(3, "<tbody>");
        for row in rows {
            p.line(4, "<tr>");
            for cell in row {
                p.line(5, "<td>");
                p.line(6, &cell);
                p.line(5, "</td>");
            }
            p.line(4, "</tr>");
        }
        p.line(3, "</tbody>");
        p.line(2, "</table>");
    };
    let death_day = days.last().map_or(w.day, |d| d.0);
    table(
        &mut p,
        "Mortes",
        &["Time", "World", "Level", "Killed by"],
        vec![vec![
            format!("{} 21:14", death_day.format("%d/%m/%Y")),
            esc(&w.name),
            m.level.saturating_sub(3).to_string(),
            "a dragon lord".to_string(),
        ]],
    );
    table(
        &mut p,
        "Kills",
        &["Time", "World", "Victim", "Victim Level"],
        vec![vec![
            format!("{} 19:40", death_day.format("%d/%m/%Y")),
            esc(&w.name),
            "Rival Sombrio".to_string(),
            m.level.saturating_sub(5).to_string(),
        ]],
    );
    table(
        &mut p,
        "Tempo online",
        &["Date", "Online time"],
        days.iter()
            .map(|d| vec![d.0.format("%d/%m/%Y").to_string(), duration(d.4)])
            .collect(),
    );
    table(
        &mut p,
        "Experiência",
        &["Data", "Level", "Δ Level", "Raw XP no dia"],
        days.iter()
            .map(|d| {
                vec![
                    d.0.format("%d/%m/%Y").to_string(),
                    d.1.to_string(),
                    format!("{:+}", d.2),
                    dotted(d.3),
                ]
            })
            .collect(),
    );
    p.line(1, "</div>");
    p.finish()
}

fn player_alt(player: Option<(&World, &Member)>, name: &str) -> String {
    let mut p = Page::new("Jogador");
    p.line(1, "<main class=\"player\">");
    let Some((w, m)) = player else {
        p.line(
            2,
            &format!(
                "<p class=\"empty\">Nenhum jogador chamado {}.</p>",
                esc(name)
            ),
        );
        p.line(1, "</main>");
        return p.finish();
    };
    let days = player_days(w, m);
    p.line(
        2,
        &format!("<h1>{} <small>{}</small></h1>", esc(name), esc(&w.name)),
    );
    let block =
        |p: &mut Page, class: &str, title: &str, headers: &[&str], rows: Vec<Vec<String>>| {
            p.line(2, &format!("<section class=\"box box--{class}\">"));
            p.line(3, &format!("<h3>{title}</h3>"));
            let head: String = headers
                .iter()
                .map(|h| format!("<span>{h}</span>"))
                .collect();
            p.line(3, &format!("<div class=\"line line--head\">{head}</div>"));
            for row in rows {
                let cells: String = row.iter().map(|c| format!("<span>{c}</span>")).collect();
                p.line(3, &format!("<div class=\"line day\">{cells}</div>"));
            }
            p.line(2, "</section>");
        };
    block(
        &mut p,
        "deaths",
        "Mortes",
        &["Quando", "Mundo", "Nível", "Morto por"],
        Vec::new(),
    );
    block(
        &mut p,
        "kills",
        "Abates",
        &["Quando", "Mundo", "Vítima", "Nível da vítima"],
        Vec::new(),
    );
    block(
        &mut p,
        "online",
        "Tempo online",
        &["Dia", "Tempo online"],
        days.iter()
            .map(|d| vec![d.0.format("%d/%m/%Y").to_string(), duration(d.4)])
            .collect(),
    );
    block(
        &mut p,
        "xp",
        "Experiência",
        &["Dia", "Nível", "Δ", "XP bruta do dia"],
        days.iter()
            .map(|d| {
                vec![
                    d.0.format("%d/%m/%Y").to_string(),
                    d.1.to_string(),
                    format!("{:+}", d.2),
                    commas(d.3),
                ]
            })
            .collect(),
    );
    p.line(1, "</main>");
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_numbers() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1.000"),
            (74_287_224, "74.287.224"),
            (-1234, "-1.234"),
        ] {
            assert_eq!(dotted(n), want);
        }
        assert_eq!(commas(74_287_224), "74,287,224");
    }

    #[test]
    fn table_status_has_the_real_shape() {
        let now = Utc::now();
        let data = Data::realistic(now, FixedOffset::west_opt(3 * 3600).expect("offset"));
        let page = status_page(&data, now, Layout::Table);
        for want in [
            "<span class=\"emoji\">🔥</span><span class=\"routine\">Daily Raw Ranking</span><small class=\"text-muted\">Rotina de coleta</small>",
            "<span class=\"world\">Aurera</span> Status <small class=\"text-muted\">Servidor</small>",
            "Deaths/Kills",
            "Ontem às 23:58",
            "<tr></tr>",
        ] {
            assert!(page.contains(want), "missing {want:?}");
        }
        assert!(page.contains(&format!("\r\n{}Hoje às ", " ".repeat(20))));
        assert!(!page.replace("\r\n", "").contains('\n'), "CRLF only");
    }

    #[test]
    fn durations() {
        for (m, want) in [(190, "3h 10m"), (50, "50m"), (0, "0m"), (60, "1h 0m")] {
            assert_eq!(duration(m), want);
        }
    }

    #[test]
    fn player_pages_read_back_in_both_layouts() {
        use crate::site::{PlayerPage, Selectors, parse::parse_player};
        let now = Utc::now();
        let data = Data::realistic(now, FixedOffset::west_opt(3 * 3600).expect("offset"));
        let alt: Selectors = toml::from_str::<toml::Table>(crate::demo_site::ALT_LAYOUT_PROFILE)
            .ok()
            .and_then(|t| t.get("site")?.get("selectors").cloned())
            .and_then(|v| v.try_into().ok())
            .expect("alt selectors");
        for (layout, sel) in [(Layout::Table, Selectors::default()), (Layout::Alt, alt)] {
            let sel = sel.compile().expect("valid");
            for name in ["Zé Pequeno", "Solitário Sem Guilda", "Bob"] {
                let (w, m) = data.player(name).expect("known");
                let page = player_page(layout, Some((w, m)), name);
                match parse_player(&page, &sel, "u") {
                    Ok(PlayerPage::Day(d)) => {
                        assert_eq!(
                            (d.date, d.raw_xp, d.online_minutes),
                            (w.day, m.experience, m.online_minutes),
                            "{layout:?} {name}"
                        );
                    }
                    other => panic!("{layout:?} {name}: {other:?}"),
                }
            }
            let page = player_page(layout, None, "Ninguém");
            assert_eq!(
                parse_player(&page, &sel, "u").expect("parses"),
                PlayerPage::Unknown,
                "{layout:?}"
            );
        }
        let page = player_page(Layout::Table, data.player("Zé Pequeno"), "Zé Pequeno");
        for want in [
            "<th>Raw XP no dia</th>",
            "<th>Online time</th>",
            "<th>Killed by</th>",
        ] {
            assert!(page.contains(want), "missing {want}");
        }
    }
}
