//! Every table of a player page, as the replaced system's
//! `/api/player-details/{name}` showed them: each `player_table` with its
//! `player_header` texts as columns and each `player_row` holding
//! `player_cell`s as a row of texts, in page order (deaths, kills, online
//! time per day, experience per day on the real site). The same parse also
//! reads the day's numbers a watched player records
//! ([`super::parse::extract_player`]), so one fetch serves both.

use scraper::Html;

use super::SiteError;
use super::parse::{PlayerPage, complete_check, extract_player, player_rows, player_tables};
use super::selectors::Compiled;
use crate::protocol::PlayerTable;

/// A player page read whole.
#[derive(Debug)]
pub struct PlayerDetails {
    /// Every table, in page order (a table without rows is kept, with its
    /// columns).
    pub tables: Vec<PlayerTable>,
    /// The day's numbers, as the watched players' pass reads them
    /// ([`PlayerPage::Unknown`]: the page lacks the experience and online
    /// tables, the site does not know the player).
    pub page: Result<PlayerPage, SiteError>,
}

/// Read every table of a player page, and the day's numbers.
pub fn parse_player_details(
    html_text: &str,
    sel: &Compiled,
    url: &str,
) -> Result<PlayerDetails, SiteError> {
    complete_check(html_text, sel, url)?;
    let doc = Html::parse_document(html_text);
    let tables = player_tables(&doc, sel)
        .into_iter()
        .map(|(table, columns)| PlayerTable {
            columns,
            data: player_rows(table, sel),
        })
        .collect();
    let page = extract_player(&doc, sel, url);
    Ok(PlayerDetails { tables, page })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::{PlayerDay, Selectors};

    fn table(title: &str, headers: &[&str], rows: &[&[&str]]) -> String {
        let mut t = format!("<h4>{title}</h4>\r\n  <table class=\"table\">\r\n    <thead><tr>");
        for h in headers {
            t.push_str(&format!("\r\n      <th>\r\n        {h}\r\n      </th>"));
        }
        t.push_str("</tr></thead>\r\n    <tbody>");
        for r in rows {
            t.push_str("\r\n      <tr>");
            for c in *r {
                t.push_str(&format!("<td>\r\n   {c}  </td>"));
            }
            t.push_str("</tr>");
        }
        t.push_str("\r\n    </tbody>\r\n  </table>");
        t
    }

    fn page() -> String {
        [
            "<!DOCTYPE html>\r\n<html><body><div class=\"container\">".to_string(),
            table(
                "Mortes",
                &["Time", "World", "Level", "Killed by"],
                &[&["28/11/2026 21:14", "Aurera", "97", "a dragon lord"]],
            ),
            table("Kills", &["Time", "World", "Victim", "Victim Level"], &[]),
            table(
                "Tempo online",
                &["Date", "Online time"],
                &[&["29/11/2026", "3h 10m"], &["28/11/2026", "50m"]],
            ),
            table(
                "Experiência",
                &["Data", "Level", "Δ Level", "Raw XP no dia"],
                &[
                    &["29/11/2026", "100", "+3", "74.287.224"],
                    &["28/11/2026", "97", "+0", "1.000"],
                ],
            ),
            "</div></body></html>".to_string(),
        ]
        .concat()
    }

    #[test]
    fn every_table_with_its_columns_and_rows_and_the_day() {
        let sel = Selectors::default().compile().expect("defaults");
        let d = parse_player_details(&page(), &sel, "u").expect("parses");
        let cols: Vec<&[String]> = d.tables.iter().map(|t| t.columns.as_slice()).collect();
        assert_eq!(
            cols,
            [
                &["Time", "World", "Level", "Killed by"][..],
                &["Time", "World", "Victim", "Victim Level"][..],
                &["Date", "Online time"][..],
                &["Data", "Level", "Δ Level", "Raw XP no dia"][..],
            ]
            .map(|c| c.iter().map(ToString::to_string).collect::<Vec<_>>())
            .iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>()
        );
        let rows: Vec<usize> = d.tables.iter().map(|t| t.data.len()).collect();
        assert_eq!(rows, [1, 0, 2, 2]);
        assert_eq!(
            d.tables[3].data[0],
            ["29/11/2026", "100", "+3", "74.287.224"]
        );
        assert_eq!(d.tables[2].data[1], ["28/11/2026", "50m"]);
        assert_eq!(
            d.page.expect("the day"),
            PlayerPage::Day(PlayerDay {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
                raw_xp: 74_287_224,
                online_minutes: 190,
            })
        );
    }

    #[test]
    fn unknown_players_truncated_pages_and_odd_days() {
        let sel = Selectors::default().compile().expect("defaults");
        let unknown = "<html><body><div class=\"alert\">Personagem <b>X</b> não encontrado.</div></body></html>";
        let d = parse_player_details(unknown, &sel, "u").expect("parses");
        assert!(d.tables.is_empty());
        assert_eq!(d.page.expect("no error"), PlayerPage::Unknown);
        // A day that does not read is the recording's problem, not the
        // tables': they are still all there.
        let odd = page().replace("29/11/2026", "ontem");
        let d = parse_player_details(&odd, &sel, "u").expect("parses");
        assert_eq!(d.tables.len(), 4);
        assert!(d.page.is_err());
        let cut = page().replace("</html>", "");
        let err = parse_player_details(&cut, &sel, "http://x/player?name=Z").expect_err("cut");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
