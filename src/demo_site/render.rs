//! HTML of the demo pages, shaped like the real site (heavy whitespace,
//! two `table.table-highscores`, `td.col-*` cells, dot-grouped numbers).

use std::fmt::Write as _;

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::data::{Data, Guild, World};

/// Escape text for HTML.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `74287224` → `74.287.224`.
pub fn dotted(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
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

const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"pt-br\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>Ranking</title>\n</head>\n<body>\n  <div class=\"container\">\n";
const TAIL: &str = "  </div>\n</body>\n</html>\n";

/// The status page.
pub fn status_page(data: &Data, now: DateTime<Utc>) -> String {
    let mut out = String::from(HEAD);
    for w in &data.worlds {
        let behind = (now - w.update_time.with_timezone(&Utc))
            .num_minutes()
            .max(0);
        let _ = write!(
            out,
            "    <table class=\"table table-status\">\n      <tr>\n        <th colspan=\"4\">\n          {} Status\n        </th>\n      </tr>\n",
            esc(&w.name)
        );
        for (routine, time, word) in [
            ("Online", site_time(w.update_time, now), "Atualizado"),
            (
                "Daily Raw Ranking",
                site_time(w.update_time, now),
                if behind > 15 {
                    "Desatualizado"
                } else {
                    "Atualizado"
                },
            ),
            ("Deaths/Kills", site_time(w.update_time, now), "Atualizado"),
        ] {
            let _ = write!(
                out,
                "      <tr>\n        <td>\n          {routine}\n        </td>\n        <td> {time} </td>\n        <td> {behind} min </td>\n        <td>\n          {word}\n        </td>\n      </tr>\n"
            );
        }
        out.push_str("    </table>\n");
    }
    out.push_str(TAIL);
    out
}

fn vocation_table(out: &mut String, world: Option<&World>, guild: Option<&Guild>) {
    out.push_str("    <table class=\"table table-highscores\">\n      <tr><th>Vocação</th><th>Jogadores</th></tr>\n");
    for voc in [
        "Elite Knight",
        "Royal Paladin",
        "Master Sorcerer",
        "Elder Druid",
    ] {
        let count = match (world, guild) {
            (Some(w), Some(g)) => g
                .members
                .iter()
                .filter(|n| w.players.get(*n).is_some_and(|m| m.vocation == voc))
                .count(),
            _ => 0,
        };
        let _ = writeln!(
            out,
            "      <tr>\n        <td> {voc} </td>\n        <td> {count} </td>\n      </tr>"
        );
    }
    out.push_str("    </table>\n");
}

/// A guild page (1-based `page`). `None` guild: the unknown-guild page.
pub fn guild_page(world: Option<&World>, guild: Option<&Guild>, page: usize) -> String {
    let mut out = String::from(HEAD);
    vocation_table(&mut out, world, guild);
    if let (Some(w), Some(g)) = (world, guild) {
        let mut rows: Vec<(&String, &super::data::Member)> = g
            .members
            .iter()
            .filter_map(|n| w.players.get(n).map(|m| (n, m)))
            .collect();
        rows.sort_by(|a, b| b.1.experience.cmp(&a.1.experience).then(a.0.cmp(b.0)));
        let size = g.page_size.unwrap_or(usize::MAX).max(1);
        let page = page.max(1);
        let start = (page - 1).saturating_mul(size);
        out.push_str("    <table class=\"table table-highscores\">\n      <tr>\n        <th>#</th><th>Nome</th><th>Vocação</th><th>Level</th><th>Exp. hoje</th>\n      </tr>\n");
        for (i, (name, m)) in rows.iter().enumerate().skip(start).take(size) {
            let _ = write!(
                out,
                "      <tr>\n        <td class=\"col-rank\">\n          {}\n        </td>\n        <td class=\"col-name\">\n          <a href=\"/player?name={}\">\n            {}\n          </a>\n        </td>\n        <td class=\"col-voc\"> {} </td>\n        <td class=\"col-level\"> {} </td>\n        <td class=\"col-xp\">\n          {}\n        </td>\n      </tr>\n",
                i + 1,
                utf8_percent_encode(name, NON_ALPHANUMERIC),
                esc(name),
                esc(&m.vocation),
                m.level,
                dotted(m.experience)
            );
        }
        out.push_str("    </table>\n");
        if start.saturating_add(size) < rows.len() {
            let _ = writeln!(
                out,
                "    <nav><a class=\"page-link\" rel=\"next\" href=\"/guild.php?guild={}&amp;world={}&amp;page={}\">Próxima</a></nav>",
                utf8_percent_encode(&g.name, NON_ALPHANUMERIC),
                utf8_percent_encode(&w.name, NON_ALPHANUMERIC),
                page + 1
            );
        }
    }
    out.push_str(TAIL);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_numbers() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1.000"),
            (74_287_224, "74.287.224"),
            (-1234, "-1.234"),
        ] {
            assert_eq!(dotted(n), want);
        }
    }
}
