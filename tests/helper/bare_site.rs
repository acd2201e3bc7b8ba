//! A third layout of the ranking site, served only by tests: the demo
//! site's data (worlds, guilds, players, update times, updated with it) in
//! a markup of its own, in which a guild the site does not know is a bare
//! page with the guild's heading and no member list at all (no container,
//! not an empty one). It is read with [`SELECTORS`], written from
//! config/worlds.toml's documentation alone.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use worldpool::demo_site::DemoSite;

/// `[site.selectors]` for this layout, as TOML. `ranking_index = 0`: the
/// member list is the only ranking container, and an unknown guild's page
/// has none.
pub const SELECTORS: &str = r#"[site.selectors]
world_title = "article.world > h2"
routine_entry = "article.world li.routine"
routine_name = "b.what"
routine_time = "time::attr(datetime)"
routine_lag = "em.lag"
routine_state = "em.state"
ranking = "ol.members"
ranking_index = 0
ranking_row = "li.member"
rank = "span.n"
name = "a.who"
vocation = "span.voc"
level = "span.lv"
experience = "span.xp"
"#;

/// What the unknown guild's bare page says (for an `unknown_guild` marker).
pub const NOT_FOUND_TEXT: &str = "Guilda não encontrada";

/// The server.
pub struct BareSite {
    addr: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl BareSite {
    /// Serve `site`'s data on 127.0.0.1:0.
    pub async fn start(site: Arc<DemoSite>) -> BareSite {
        let app = Router::new()
            .route("/status", get(status))
            .route("/guild.php", get(guild))
            .with_state(site);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
                .expect("the bare site serves");
        });
        BareSite { addr, stop, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving (and let go of the demo site).
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.expect("the bare site's task");
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"pt\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

async fn status(State(site): State<Arc<DemoSite>>) -> Html<String> {
    let mut body = String::new();
    for w in site.world_names() {
        let Some(t) = site.update_time(&w) else {
            continue;
        };
        body.push_str(&format!(
            "<article class=\"world\">\n  <h2>{} Status</h2>\n  <ul>\n    <li class=\"routine\"><b class=\"what\">Online</b> <time datetime=\"{}\">{}</time></li>\n    <li class=\"routine\"><b class=\"what\">Daily Raw Ranking</b> <time datetime=\"{}\">{}</time> <em class=\"lag\">1 min</em> <em class=\"state\">Atualizado</em></li>\n  </ul>\n</article>\n",
            esc(&w),
            t.to_rfc3339(),
            t.format("%H:%M"),
            t.to_rfc3339(),
            t.format("%d/%m/%Y %H:%M"),
        ));
    }
    Html(page("Status", &body))
}

async fn guild(
    State(site): State<Arc<DemoSite>>,
    Query(q): Query<HashMap<String, String>>,
) -> Html<String> {
    let world = q.get("world").cloned().unwrap_or_default();
    let guild = q.get("guild").cloned().unwrap_or_default();
    let members: Vec<_> = site
        .players(&world)
        .into_iter()
        .filter(|p| p.guild.eq_ignore_ascii_case(&guild))
        .collect();
    let mut body = format!("<h1>Guilda {}</h1>\n", esc(&guild));
    if members.is_empty() {
        // The site does not know the guild: its heading, and no list.
        body.push_str(&format!("<p class=\"notice\">{NOT_FOUND_TEXT}.</p>\n"));
        return Html(page(&guild, &body));
    }
    body.push_str("<ol class=\"members\">\n");
    for (i, p) in members.iter().enumerate() {
        // Space-grouped thousands: "74 287 224".
        let digits = p.experience.to_string();
        let mut xp = String::new();
        for (k, c) in digits.chars().enumerate() {
            if k > 0 && (digits.len() - k) % 3 == 0 {
                xp.push(' ');
            }
            xp.push(c);
        }
        body.push_str(&format!(
            "  <li class=\"member\"><span class=\"n\">{}</span> <a class=\"who\" href=\"/player?name={}\">{}</a> <span class=\"voc\">Knight</span> <span class=\"lv\">{}</span> <span class=\"xp\">{xp}</span></li>\n",
            i + 1,
            esc(&p.name),
            esc(&p.name),
            100 + i,
        ));
    }
    body.push_str("</ol>\n");
    Html(page(&guild, &body))
}
