//! One world's pages fetched and explained.

use super::guild::explain_guild;
use super::player::explain_player;
use super::report::{Explain, PageReport};
use super::status::explain_status;
use crate::site::SiteClient;

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
