//! A guild the site does not know, told from a changed layout by the
//! world's guild pages together, on both layouts of the demo site and on a
//! third served only by tests ([`crate::helper::bare_site`]), where an
//! unknown guild is a bare page with no container at all: exact players
//! and deltas on the first pass and after an update, the rule of each page
//! (`Scraped::guild_rules`, `scrape-once --explain`), and a changed layout
//! still failing loudly with nothing stored.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Fault, Layout};
use worldpool::scrape::{GuildRule, Outcome, Reporter, Scraper, process_world};
use worldpool::site::Clock;
use worldpool::store::{PassKind, Store};

use crate::helper::bare_site::{self, BareSite};
use crate::helper::cli::{output, scrape_once, write_config};
use crate::scrape::{expected_deltas, stored};

const WORLD: &str = "Cèlesta";
const KNOWN: &str = "Dragões de Éter";
const UNKNOWN: &str = "Unknown Guild";
/// A `ranking` no layout has: every guild page is without the ranking.
const RENAMED: (&str, &str) = ("ranking", "\"div.no-such-ranking\"");

/// Which pages, read with which selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The real site's markup, default selectors: an unknown guild's page
    /// has the vocation table only.
    Table,
    /// `--layout alt` with `config/examples/alt-layout.toml`.
    Alt,
    /// `--layout alt` read as a new user would write it from the
    /// documentation: the member section is the only ranking container
    /// (`ranking_index = 0`), so an unknown guild's page has none.
    AltNewUser,
    /// The third layout, served by the test: a bare page.
    Bare,
}

struct Fixture {
    site: Arc<DemoSite>,
    bare: Option<BareSite>,
    clock: Clock,
    dir: tempfile::TempDir,
    /// The generated config's text.
    text: String,
    store: Store,
}

impl Fixture {
    async fn new(variant: Variant) -> Fixture {
        let clock = Clock::manual(
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
                .single()
                .expect("time"),
        );
        let layout = match variant {
            Variant::Alt | Variant::AltNewUser => Layout::Alt,
            Variant::Table | Variant::Bare => Layout::Table,
        };
        let site = Arc::new(
            DemoSite::start(DemoSiteOptions {
                now: clock.clone(),
                layout,
                ..DemoSiteOptions::default()
            })
            .await
            .expect("demo site starts"),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/wp.db", dir.path().display());
        let mut text = site.config_toml(&url, Mode::Single);
        let mut bare = None;
        match variant {
            Variant::Table | Variant::Alt => {}
            Variant::AltNewUser => {
                text = with_selector(&text, "ranking", "\"section.box--members\"");
                text = with_selector(&text, "ranking_index", "0");
            }
            Variant::Bare => {
                let b = BareSite::start(site.clone()).await;
                text = text.replace(&site.base_url(), &b.base_url());
                let at = text.find("[[worlds]]").expect("worlds");
                text.insert_str(at, &format!("{}\n", bare_site::SELECTORS));
                // It serves no player pages: nobody watched.
                text = text
                    .lines()
                    .filter(|l| !l.starts_with("watch = "))
                    .map(|l| format!("{l}\n"))
                    .collect();
                bare = Some(b);
            }
        }
        let store = Store::open(&url, 1).await.expect("store");
        Fixture {
            site,
            bare,
            clock,
            dir,
            text,
            store,
        }
    }

    /// The config, with `edit` applied to its text, and a scraper for it.
    fn config(&self, name: &str, edit: impl FnOnce(String) -> String) -> (Config, Scraper) {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("config dir");
        let (_, config) = write_config(&dir, &edit(self.text.clone()));
        let scraper = Scraper::new(&config, self.clock.clone()).expect("scraper");
        (config, scraper)
    }

    /// A check-and-scrape of `world` with a config, against `store`.
    async fn pass(&self, (config, scraper): &(Config, Scraper), store: &Store) -> Outcome {
        let status = scraper.status().await.expect("status page");
        let ws = worldpool::site::find_world(&status, WORLD).expect("world on status page");
        process_world(
            scraper,
            store,
            config,
            config.world(WORLD).expect("world in config"),
            ws.update_time,
            &Reporter::none(),
            &CancellationToken::new(),
        )
        .await
        .expect("processed")
    }

    /// The rule of each guild page, as a scrape decides them.
    async fn rules(&self, (config, scraper): &(Config, Scraper), store: &Store) -> Vec<GuildRule> {
        let world = config.world(WORLD).expect("world");
        let t = self.site.update_time(WORLD).expect("time");
        let scraped = scraper
            .scrape_world(world, t, Some(store))
            .await
            .expect("store answers")
            .expect("scraped");
        assert_eq!(
            scraped.unknown_guilds,
            scraped
                .guild_rules
                .iter()
                .filter(|(_, r)| r.unknown())
                .map(|(g, _)| g.clone())
                .collect::<Vec<_>>()
        );
        scraped.guild_rules.into_iter().map(|(_, r)| r).collect()
    }

    fn site_xp(&self) -> HashMap<String, (String, i64)> {
        let mut out = HashMap::new();
        for p in self.site.players(WORLD) {
            out.entry(p.name).or_insert((p.guild, p.experience));
        }
        out
    }

    async fn stored_xp(&self, store: &Store) -> HashMap<String, (String, i64)> {
        store
            .players(WORLD)
            .await
            .expect("players")
            .into_iter()
            .map(|p| (p.name, (p.guild, p.experience)))
            .collect()
    }

    /// A new update of the world on the site.
    fn update(&self) {
        self.clock.advance(chrono::Duration::minutes(10));
        assert!(self.site.advance_world(WORLD));
    }

    /// A store of its own (a world with no history).
    async fn fresh_store(&self, name: &str) -> Store {
        let url = format!("sqlite://{}/{name}.db", self.dir.path().display());
        Store::open(&url, 1).await.expect("store")
    }

    async fn shutdown(self) {
        if let Some(b) = self.bare {
            b.shutdown().await;
        }
        match Arc::try_unwrap(self.site) {
            Ok(site) => site.shutdown().await,
            Err(_) => panic!("the demo site is still shared"),
        }
    }
}

/// Set `key = value` in `[site.selectors]` (creating the table).
fn with_selector(text: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {value}\n");
    match text.split_once("[site.selectors]\n") {
        Some((head, rest)) => {
            let rest: String = rest
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} =")))
                .map(|l| format!("{l}\n"))
                .collect();
            format!("{head}[site.selectors]\n{line}{rest}")
        }
        None => {
            let at = text.find("[[worlds]]").expect("worlds");
            format!("{}[site.selectors]\n{line}\n{}", &text[..at], &text[at..])
        }
    }
}

/// The world's guilds set to `guilds`.
fn with_guilds(text: &str, guilds: &[&str]) -> String {
    let name = format!("name = {}", toml::Value::String(WORLD.into()));
    let list: Vec<String> = guilds
        .iter()
        .map(|g| toml::Value::String((*g).into()).to_string())
        .collect();
    let mut out = String::new();
    let mut in_world = false;
    for l in text.lines() {
        if l.starts_with("name = ") {
            in_world = l == name;
        }
        if in_world && l.starts_with("guilds = ") {
            out.push_str(&format!("guilds = [{}]\n", list.join(", ")));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn failed(outcome: Outcome) -> String {
    match outcome {
        Outcome::Failed { error, .. } => error,
        other => panic!("expected a failed run, got {other:?}"),
    }
}

async fn scenario(variant: Variant) {
    let f = Fixture::new(variant).await;
    let as_is = f.config("as-is", |t| t);
    assert_eq!(
        as_is.0.world(WORLD).expect("world").guilds,
        [KNOWN, UNKNOWN],
        "{variant:?}"
    );

    // 1. First pass: the known guild's players, exactly; the unknown guild
    //    is zero rows, by the rule "the ranking is on another page".
    assert_eq!(
        f.rules(&as_is, &f.store).await,
        [GuildRule::Ranking, GuildRule::RankingOnAnotherPage],
        "{variant:?}"
    );
    let site0 = f.site_xp();
    assert!(!site0.is_empty());
    let (rows, deltas, kind) = stored(f.pass(&as_is, &f.store).await);
    assert_eq!(kind, PassKind::First, "{variant:?}");
    assert_eq!(rows, site0.len(), "{variant:?}");
    assert_eq!(
        deltas,
        expected_deltas(&HashMap::new(), &site0),
        "{variant:?}"
    );
    assert_eq!(f.stored_xp(&f.store).await, site0, "{variant:?}");

    // 2. After an update: exactly the changed players' deltas.
    f.update();
    let site1 = f.site_xp();
    let want = expected_deltas(&site0, &site1);
    assert!(!want.is_empty(), "the update changes someone");
    let (rows, deltas, kind) = stored(f.pass(&as_is, &f.store).await);
    assert_eq!(kind, PassKind::Normal, "{variant:?}");
    assert_eq!(rows, site1.len(), "{variant:?}");
    assert_eq!(deltas, want, "{variant:?}");
    assert_eq!(f.stored_xp(&f.store).await, site1, "{variant:?}");

    // 3. The unknown guild alone, in a world with no history: nothing can
    //    show a changed layout; an unknown guild, a run of zero rows.
    let alone = f.config("alone", |t| with_guilds(&t, &[UNKNOWN]));
    let fresh = f.fresh_store("fresh").await;
    assert_eq!(
        f.rules(&alone, &fresh).await,
        [GuildRule::OnlyGuildNoHistory],
        "{variant:?}"
    );
    let (rows, deltas, _) = stored(f.pass(&alone, &fresh).await);
    assert_eq!((rows, deltas.len()), (0, 0), "{variant:?}");

    // 4. The same in a world that had rows: a changed layout, loudly, with
    //    the --explain hint; nothing stored.
    f.update();
    let error = failed(f.pass(&alone, &f.store).await);
    for want in [
        "site.selectors.ranking = ",
        &format!("world `{WORLD}`"),
        "the world had rows before",
        "/guild.php?guild=Unknown",
        "layout changed?",
        "worldpool scrape-once --explain",
    ] {
        assert!(error.contains(want), "{variant:?}: {want:?} not in {error}");
    }
    assert_eq!(f.stored_xp(&f.store).await, site1, "{variant:?}");
    let last = &f.store.runs(Some(WORLD), 1, None).await.expect("runs")[0];
    assert_eq!((last.status.as_str(), last.rows), ("failed", 0));

    // 5. A renamed ranking: no guild page has it. Two guilds, with or
    //    without history (not asked: two guilds decide): a changed layout,
    //    nothing stored.
    let renamed = f.config("renamed", |t| with_selector(&t, RENAMED.0, RENAMED.1));
    let empty = f.fresh_store("empty").await;
    for store in [&f.store, &empty] {
        let error = failed(f.pass(&renamed, store).await);
        assert!(
            error.contains("site.selectors.ranking = \"div.no-such-ranking\"")
                && error.contains("the world has 2 guilds, so they are not read as unknown guilds")
                && error.contains("layout changed?"),
            "{variant:?}: {error}"
        );
    }
    assert!(empty.players(WORLD).await.expect("players").is_empty());
    assert_eq!(f.stored_xp(&f.store).await, site1, "{variant:?}");

    // 6. The pending update, once the config is right again: exact deltas.
    let site2 = f.site_xp();
    let (_, deltas, _) = stored(f.pass(&as_is, &f.store).await);
    assert_eq!(deltas, expected_deltas(&site1, &site2), "{variant:?}");
    assert_eq!(f.stored_xp(&f.store).await, site2, "{variant:?}");

    if variant == Variant::Table {
        // 7. Cut pages fail (and the update is retried), never read as an
        //    unknown guild: with complete_marker, and without it.
        f.update();
        for (name, config, rows) in [
            ("cut-as-is", f.config("cut-as-is", |t| t), f.site_xp().len()),
            (
                "cut-unmarked",
                f.config("cut-unmarked", |t| {
                    with_guilds(&with_selector(&t, "complete_marker", "\"\""), &[UNKNOWN])
                }),
                0,
            ),
        ] {
            let store = f.fresh_store(name).await;
            f.site.set_fault(Fault::TruncatedHtml { times: 1000 });
            let error = failed(f.pass(&config, &store).await);
            f.site.clear_faults();
            assert!(
                error.contains("truncated") || error.contains("matched nothing"),
                "{name}: {error}"
            );
            assert!(store.players(WORLD).await.expect("players").is_empty());
            let (got, _, _) = stored(f.pass(&config, &store).await);
            assert_eq!(got, rows, "{name}");
        }
    }
    if variant == Variant::Bare {
        // 8. The site's own "not found" page, named by unknown_guild: an
        //    unknown guild even in a world that had rows.
        let marked = f.config("marked", |t| {
            with_selector(
                &with_guilds(&t, &[UNKNOWN]),
                "unknown_guild",
                &format!("\"text:{}\"", bare_site::NOT_FOUND_TEXT),
            )
        });
        assert_eq!(
            f.rules(&marked, &f.store).await,
            [GuildRule::NotFoundMarker]
        );
        f.update();
        let (rows, _, _) = stored(f.pass(&marked, &f.store).await);
        assert_eq!(rows, 0);
    }
    f.shutdown().await;
}

#[tokio::test]
async fn unknown_guild_or_changed_layout_table_layout() {
    scenario(Variant::Table).await;
}

#[tokio::test]
async fn unknown_guild_or_changed_layout_alt_layout() {
    scenario(Variant::Alt).await;
}

/// The case: the alt layout read with a ranking only the known
/// guilds' pages have (`ranking_index = 0`).
#[tokio::test]
async fn unknown_guild_or_changed_layout_alt_layout_new_user_selectors() {
    scenario(Variant::AltNewUser).await;
}

#[tokio::test]
async fn unknown_guild_or_changed_layout_bare_page_layout() {
    scenario(Variant::Bare).await;
}

/// `scrape-once --explain` on the bare layout states the rule of each
/// guild page, and fails on a changed layout naming the key;
/// `scrape-once --json` lists the unknown guild.
#[tokio::test]
async fn scrape_once_states_the_rule_of_each_guild_page() {
    let f = Fixture::new(Variant::Bare).await;
    let write = |name: &str, edit: &dyn Fn(String) -> String| {
        let path = f.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, edit(f.text.clone())).expect("write");
        path
    };
    let as_is = write("as-is", &|t| t);
    let out = output(scrape_once(&as_is, WORLD, None, &["--explain"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}\n{text}");
    for want in [
        format!("guild pages of {WORLD}, together:"),
        format!("guild {KNOWN}: the page has the ranking"),
        format!(
            "guild {UNKNOWN}: no ranking on this page, but on another guild page of the world: an unknown guild, zero rows"
        ),
        "no ranking (0 of the ranking_index + 1 = 1 `ranking` matches needed), a complete page"
            .to_string(),
        format!("every page of {WORLD} parses"),
    ] {
        assert!(text.contains(&want), "{want:?} not in\n{text}");
    }

    // The unknown guild alone, no history: unknown, and why.
    let alone = write("alone", &|t| with_guilds(&t, &[UNKNOWN]));
    let out = output(scrape_once(&alone, WORLD, None, &["--explain"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}\n{text}");
    for want in [
        format!("the world's one guild has no ranking: the store has no rows of {WORLD} before"),
        format!(
            "guild {UNKNOWN}: no ranking on this page, the world's only guild, no rows stored before"
        ),
    ] {
        assert!(text.contains(&want), "{want:?} not in\n{text}");
    }

    // A renamed ranking: exit 1, the world's verdict names the key.
    let renamed = write("renamed", &|t| with_selector(&t, RENAMED.0, RENAMED.1));
    let out = output(scrape_once(&renamed, WORLD, None, &["--explain"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}\n{text}");
    for want in [
        "result: FAILS: site.selectors.ranking = \"div.no-such-ranking\"",
        "the world has 2 guilds",
        "layout changed?",
        "keys to look at: ranking",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }

    // The scrape itself: the unknown guild listed, a warning, exact rows.
    let out = output(scrape_once(&as_is, WORLD, None, &["--json"])).await;
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["unknown_guilds"], serde_json::json!([UNKNOWN]));
    assert_eq!(
        v["players"].as_array().expect("players").len(),
        f.site_xp().len()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the site does not know guild `{UNKNOWN}`")),
        "{stderr}"
    );
    f.shutdown().await;
}
