use chrono::{DateTime, FixedOffset, Utc};

use super::*;
use crate::demo_site::render::{self, Layout};
use crate::demo_site::{ALT_LAYOUT_PROFILE, Data};
use crate::site::{GuildPageKind, Selectors};

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

    let bare = "<html><body><h1>X</h1><p class=\"gone\">Guilda não encontrada</p></body></html>";
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
