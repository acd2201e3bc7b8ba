//! Watched ("VIP") players: the golden scenario over site updates (both
//! layouts), a player in no guild, an unknown player, a failed page, the
//! daily reset; "check now" reading an added player at once; the
//! `/api/vip/…` endpoints in the replaced system's shapes (both backends);
//! a real `worldpool run` reading a player added over the API and keeping
//! it across a worker's kill -9; and `scrape-once` killed in the middle of
//! the watched players' pass redoing nothing and losing nothing (both
//! backends).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use worldpool::api::fake::FakeControl;
use worldpool::api::{ApiState, CompatSettings};
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoDay, DemoSite, DemoSiteOptions, Fault, Layout};
use worldpool::scrape::{
    Outcome, Reporter, Scraper, VipMemory, VipPassReport, VipStatus, process_world, vip_pass,
};
use worldpool::site::Clock;
use worldpool::store::{PassKind, Store, VipDaily, VipDelta, VipReadOutcome};

use crate::helper::api::Api;
use crate::helper::cli::{output, scrape_once, write_config};
use crate::helper::{wait_for, wait_for_async};
use crate::store::TestDb;

const DEADLINE: Duration = Duration::from_secs(30);
const TOKEN: &str = "vip-t0ken";
const WORLD: &str = "Aurera";
/// In no guild of Aurera; not watched by the generated config.
const GUILDLESS: &str = "Andarilha";
const NOBODY: &str = "Ninguém Aqui";

/// The library-level worker of one world: demo site on a manual clock at
/// 09:00 site time, a store, the ranking pass then the watched players'
/// pass, as the worker loop does (shared with tests/makers.rs).
pub(crate) struct Fixture {
    pub(crate) site: DemoSite,
    pub(crate) clock: Clock,
    pub(crate) config: Config,
    scraper: Scraper,
    pub(crate) store: Store,
    memory: VipMemory,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub(crate) async fn new(layout: Layout, db: &TestDb) -> Fixture {
        let clock = Clock::manual(
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
                .single()
                .expect("time"),
        );
        let site = DemoSite::start(DemoSiteOptions {
            now: clock.clone(),
            layout,
            ..DemoSiteOptions::default()
        })
        .await
        .expect("demo site starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, config) = write_config(dir.path(), &site.config_toml(&db.url, Mode::Single));
        let scraper = Scraper::new(&config, clock.clone()).expect("scraper");
        let store = db.open().await;
        Fixture {
            site,
            clock,
            config,
            scraper,
            store,
            memory: VipMemory::default(),
            _dir: Some(dir),
        }
    }

    async fn ranking(&self) -> Outcome {
        let status = self.scraper.status().await.expect("status page");
        let ws = worldpool::site::find_world(&status, WORLD).expect("world on the status page");
        process_world(
            &self.scraper,
            &self.store,
            &self.config,
            self.config.world(WORLD).expect("world"),
            ws.update_time,
            &Reporter::none(),
            &CancellationToken::new(),
        )
        .await
        .expect("processed")
    }

    pub(crate) async fn vips(&mut self) -> VipPassReport {
        vip_pass(
            &self.scraper,
            &self.store,
            &self.config,
            self.config.world(WORLD).expect("world"),
            &Reporter::none(),
            &CancellationToken::new(),
            &mut self.memory,
        )
        .await
        .expect("watched players' pass")
    }

    /// One check: the ranking, then the watched players.
    pub(crate) async fn check(&mut self) -> (Outcome, VipPassReport) {
        let outcome = self.ranking().await;
        (outcome, self.vips().await)
    }

    pub(crate) fn update(&self, minutes: i64) -> DateTime<FixedOffset> {
        self.clock.advance(chrono::Duration::minutes(minutes));
        self.site.advance_world(WORLD);
        self.site.update_time(WORLD).expect("update time")
    }

    fn days(&self, names: &[&str]) -> HashMap<String, DemoDay> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    self.site.player_day(n).expect("a known player"),
                )
            })
            .collect()
    }
}

fn recorded(report: &VipPassReport) -> Vec<(String, VipReadOutcome)> {
    report
        .results
        .iter()
        .map(|r| match &r.status {
            VipStatus::Stored { recorded, .. } => (r.name.clone(), recorded.clone()),
            other => panic!("{}: not stored: {other:?}", r.name),
        })
        .collect()
}

/// What a read from `before` to `after` at `t` (previous read at `prev`)
/// must record.
fn expected(
    name: &str,
    before: DemoDay,
    after: DemoDay,
    t: DateTime<FixedOffset>,
    prev: DateTime<FixedOffset>,
) -> VipReadOutcome {
    let (dx, dm) = (
        after.raw_xp - before.raw_xp,
        after.online_minutes - before.online_minutes,
    );
    if (dx, dm) == (0, 0) {
        VipReadOutcome::Unchanged
    } else {
        VipReadOutcome::Delta(VipDelta {
            world: WORLD.into(),
            name: name.into(),
            date: after.date,
            delta_exp: dx,
            delta_online: dm,
            update_time: t,
            prev_update_time: Some(prev),
        })
    }
}

fn daily(name: &str, d: DemoDay, t: DateTime<FixedOffset>) -> VipDaily {
    VipDaily {
        world: WORLD.into(),
        name: name.into(),
        date: d.date,
        raw_xp: d.raw_xp,
        online_minutes: d.online_minutes,
        update_time: t,
    }
}

#[tokio::test]
async fn golden_watched_players_over_three_updates() {
    golden(Layout::Table).await;
}

/// The same over the table-free redesign, read with the selectors of
/// `config/examples/alt-layout.toml`: only the config differs.
#[tokio::test]
async fn golden_watched_players_over_three_updates_alt_layout() {
    golden(Layout::Alt).await;
}

async fn golden(layout: Layout) {
    let db = TestDb::sqlite().await;
    let mut f = Fixture::new(layout, &db).await;
    let watched = f.site.watched(WORLD);
    assert_eq!(
        watched,
        ["Zé Pequeno", "Solitário Sem Guilda"],
        "the generated config watches a guild member and a player of no guild"
    );
    assert!(f.site.guildless(WORLD).contains(&watched[1]));
    // Sorted: the pass reads in name order.
    let names = ["Solitário Sem Guilda", "Zé Pequeno"];
    // A player the site does not know, added at run time.
    assert!(f.store.add_watched(WORLD, NOBODY).await.expect("add"));

    // 1. First sighting: a baseline each, no delta; the unknown player is a
    //    warning, not a failed run.
    let d0 = f.days(&names);
    let t0 = f.site.update_time(WORLD).expect("time");
    let (outcome, report) = f.check().await;
    assert!(
        matches!(
            outcome,
            Outcome::Stored {
                kind: PassKind::First,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(report.update_time, Some(t0));
    assert_eq!(
        report.watched,
        ["Zé Pequeno", "Solitário Sem Guilda", NOBODY]
    );
    let unknown = report
        .results
        .iter()
        .find(|r| r.name == NOBODY)
        .expect("nobody");
    assert_eq!(unknown.status, VipStatus::Unknown);
    let known = VipPassReport {
        results: report
            .results
            .iter()
            .filter(|r| r.name != NOBODY)
            .cloned()
            .collect(),
        ..report.clone()
    };
    assert_eq!(
        recorded(&known),
        names
            .iter()
            .map(|n| (n.to_string(), VipReadOutcome::Baseline))
            .collect::<Vec<_>>()
    );
    assert!(
        f.store
            .runs(Some(WORLD), 10, None)
            .await
            .expect("runs")
            .iter()
            .all(|r| r.status == "ok")
    );
    for n in names {
        assert_eq!(
            f.store
                .vip_daily(Some(WORLD), Some(n))
                .await
                .expect("daily"),
            [daily(n, d0[n], t0)],
            "{n}: the baseline"
        );
    }
    assert!(
        f.store
            .vip_deltas(None, None, 100)
            .await
            .expect("deltas")
            .is_empty()
    );

    // Checked again at the same update: nothing fetched, the unknown
    // player not asked again.
    let hits: Vec<u64> = names.iter().map(|n| f.site.player_page_hits(n)).collect();
    let (outcome, report) = f.check().await;
    assert!(matches!(outcome, Outcome::Unchanged { .. }));
    assert!(report.results.is_empty(), "{report:?}");
    assert_eq!(
        names
            .iter()
            .map(|n| f.site.player_page_hits(n))
            .collect::<Vec<_>>(),
        hits
    );
    assert_eq!(f.site.player_page_hits(NOBODY), 1);

    // 2. Three site updates: a delta exactly when either number changed.
    let mut want_deltas: Vec<VipDelta> = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    let (mut before, mut prev) = (d0, t0);
    for step in 1..=3 {
        let t = f.update(10);
        let after = f.days(&names);
        if step == 2 {
            // Player pages down: failures, retried at the next check with
            // nothing lost.
            f.site.set_fault(Fault::Player503 { times: 1_000 });
            let (_, report) = f.check().await;
            assert!(
                report
                    .results
                    .iter()
                    .all(|r| matches!(r.status, VipStatus::Failed { .. })),
                "{report:?}"
            );
            f.site.clear_faults();
        } else {
            f.ranking().await;
        }
        let report = f.vips().await;
        let unknown_again = report.results.iter().any(|r| r.name == NOBODY);
        assert!(unknown_again, "a new update asks the site again");
        let got: Vec<_> = recorded(&VipPassReport {
            results: report
                .results
                .iter()
                .filter(|r| r.name != NOBODY)
                .cloned()
                .collect(),
            ..report.clone()
        });
        let want: Vec<_> = names
            .iter()
            .map(|n| (n.to_string(), expected(n, before[*n], after[*n], t, prev)))
            .collect();
        assert_eq!(got, want, "update {step}");
        for (_, o) in want {
            match o {
                VipReadOutcome::Delta(d) => {
                    kinds.insert(match (d.delta_exp > 0, d.delta_online > 0) {
                        (true, true) => "both",
                        (false, true) => "online only",
                        _ => "other",
                    });
                    want_deltas.push(d);
                }
                VipReadOutcome::Unchanged => {
                    kinds.insert("unchanged");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (before, prev) = (after, t);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["both", "online only", "unchanged"],
        "the scenario covers every case"
    );
    want_deltas.sort_by(|a, b| (b.update_time, &a.name).cmp(&(a.update_time, &b.name)));
    let mut stored = f
        .store
        .vip_deltas(Some(WORLD), None, 100)
        .await
        .expect("deltas");
    stored.sort_by(|a, b| (b.update_time, &a.name).cmp(&(a.update_time, &b.name)));
    assert_eq!(
        stored, want_deltas,
        "exactly the expected deltas, each once"
    );
    for n in names {
        assert_eq!(
            f.store
                .vip_daily(Some(WORLD), Some(n))
                .await
                .expect("daily"),
            [daily(n, before[n], prev)],
            "{n}: one row for the day, its latest read"
        );
    }

    // 3. The daily reset: the first read after it re-bases (a new day),
    //    then deltas again.
    f.clock.advance(chrono::Duration::minutes(40));
    f.site.trigger_reset();
    let t = f.update(0);
    let reset_days = f.days(&names);
    let (outcome, report) = f.check().await;
    assert!(
        matches!(
            outcome,
            Outcome::Stored {
                kind: PassKind::Rebase { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    let got: Vec<_> = recorded(&VipPassReport {
        results: report
            .results
            .into_iter()
            .filter(|r| r.name != NOBODY)
            .collect(),
        ..VipPassReport::default()
    });
    assert!(
        got.iter().all(|(_, o)| *o == VipReadOutcome::Rebased),
        "{got:?}"
    );
    for n in names {
        let rows = f
            .store
            .vip_daily(Some(WORLD), Some(n))
            .await
            .expect("daily");
        assert_eq!(rows.len(), 2, "{n}: a row per day");
        assert_eq!(rows[0], daily(n, reset_days[n], t));
        assert!(rows[0].date > rows[1].date);
    }
    assert_eq!(
        f.store
            .vip_deltas(Some(WORLD), None, 100)
            .await
            .expect("deltas")
            .len(),
        want_deltas.len(),
        "no delta across the reset"
    );
    f.site.shutdown().await;
}

/// The worker loop reacts to "check now" by reading a player added since,
/// with an hour between checks: only the request can make it happen soon.
#[tokio::test]
async fn check_now_reads_an_added_player_at_once() {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/wp.db", dir.path().display());
    let (_, config) = write_config(
        dir.path(),
        &site
            .config_toml(&url, Mode::Pool)
            .replace("poll_interval = \"1s\"", "poll_interval = \"1h\""),
    );
    let stop = CancellationToken::new();
    let check_now = worldpool::scrape::CheckNow::new();
    let task = tokio::spawn(worldpool::scrape::run_worker_with(
        config,
        vec![WORLD.to_string()],
        Reporter::none(),
        stop.clone(),
        check_now.clone(),
    ));
    let store = Store::open(&url, 1).await.expect("store");
    wait_for_async("the config's players read", DEADLINE, || {
        let store = store.clone();
        async move { (store.vip_latest(Some(WORLD)).await.ok()?.len() == 2).then_some(()) }
    })
    .await;
    assert!(store.add_watched(WORLD, GUILDLESS).await.expect("add"));
    check_now.request();
    let read = wait_for_async("the added player, read at once", DEADLINE, || {
        let store = store.clone();
        async move {
            store
                .vip_latest(Some(WORLD))
                .await
                .ok()?
                .into_iter()
                .find(|d| d.name == GUILDLESS)
        }
    })
    .await;
    let day = site.player_day(GUILDLESS).expect("known");
    assert_eq!(
        (read.raw_xp, read.online_minutes),
        (day.raw_xp, day.online_minutes)
    );
    assert_eq!(Some(read.update_time), site.update_time(WORLD));
    stop.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the loop stops")
        .expect("no panic")
        .expect("clean shutdown");
    site.shutdown().await;
}

// ----- the API -------------------------------------------------------------

/// A naive site-local time, `YYYY-MM-DDTHH:MM:SS`, as the replaced system
/// wrote them.
fn is_legacy_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok())
}

fn error_code(status: u16, v: &Value) -> String {
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{v}");
    assert!(v["message"].is_string(), "{v}");
    v["error"].as_str().unwrap_or_default().to_string()
}

async fn vip_endpoints(db: TestDb) {
    let mut f = Fixture::new(Layout::Table, &db).await;
    f.check().await;
    for _ in 0..3 {
        f.update(10);
        f.check().await;
    }
    let fake = Arc::new(FakeControl::new(&["Aurera", "Bellum", "Cèlesta"]));
    let state = ApiState::new(fake.clone(), Some(f.store.clone()), Some(TOKEN.into()))
        .with_compat(CompatSettings::from_config(&f.config));
    let api = Api::serve(state).await;

    // The list: the config's players.
    let (status, v) = api.get("/api/vip/list?world=Aurera").await;
    assert_eq!(status, 200, "{v}");
    let vips = v["vips"].as_array().expect("vips");
    assert_eq!(vips.len(), 2, "{v}");
    for p in vips {
        assert_eq!(p["world"], WORLD);
        assert_eq!(p["source"], "config");
        assert!(p["added_at"].is_null());
        assert!(p["name"].is_string());
    }

    // Add: the token, then stored, and the world's worker asked to check now.
    let body = json!({"name": GUILDLESS, "world": "aurera"});
    let (status, v) = api.post("/api/vip/add", body.clone(), None).await;
    assert_eq!(error_code(status, &v), "unauthorized");
    let (status, v) = api.post("/api/vip/add", body.clone(), Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            &v["success"],
            &v["name"],
            &v["world"],
            &v["changed"],
            &v["checked_now"]
        ),
        (
            &json!(true),
            &json!(GUILDLESS),
            &json!(WORLD),
            &json!(true),
            &json!(true)
        ),
        "{v}"
    );
    assert_eq!(fake.checks(), [WORLD]);
    let (_, v) = api.post("/api/vip/add", body.clone(), Some(TOKEN)).await;
    assert_eq!(
        (&v["changed"], &v["success"]),
        (&json!(false), &json!(true)),
        "{v}"
    );
    // The replaced system's password field works too.
    let (status, v) = api
        .post(
            "/api/vip/add",
            json!({"name": "zé  PEQUENO", "world": WORLD, "password": TOKEN}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["changed"], &v["name"]),
        (&json!(false), &json!("Zé Pequeno")),
        "config's spelling"
    );
    for (body, code, want) in [
        (json!({"name": "X", "world": "Atlantis"}), 404, "not_found"),
        (json!({"name": "  ", "world": WORLD}), 400, "bad_body"),
        (json!({"world": WORLD}), 400, "bad_body"),
        (json!({"name": "X"}), 400, "bad_body"),
    ] {
        let (status, v) = api.post("/api/vip/add", body.clone(), Some(TOKEN)).await;
        assert_eq!(
            (status, error_code(status, &v).as_str()),
            (code, want),
            "{body}"
        );
    }
    let (_, v) = api.get("/api/vip/list").await;
    let listed: Vec<(String, String)> = v["vips"]
        .as_array()
        .expect("vips")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["source"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        listed.contains(&(GUILDLESS.to_string(), "api".to_string())),
        "{listed:?}"
    );
    assert_eq!(
        listed.len(),
        7,
        "two per world and the added one: {listed:?}"
    );

    // Remove: the config's players stay (409), the added one goes.
    let (status, v) = api
        .post(
            "/api/vip/remove",
            json!({"name": "Zé Pequeno", "world": WORLD}),
            Some(TOKEN),
        )
        .await;
    assert_eq!(error_code(status, &v), "conflict");
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("watch")),
        "{v}"
    );
    let (status, v) = api.post("/api/vip/remove", body.clone(), Some(TOKEN)).await;
    assert_eq!((status, &v["changed"]), (200, &json!(true)), "{v}");
    let (status, v) = api.post("/api/vip/remove", body.clone(), Some(TOKEN)).await;
    assert_eq!(error_code(status, &v), "not_found");

    // Deltas: the replaced shape, newest first, filtered.
    let stored = f
        .store
        .vip_deltas(Some(WORLD), Some("Zé Pequeno"), 100)
        .await
        .expect("deltas");
    assert!(!stored.is_empty());
    let (status, v) = api
        .get("/api/vip/deltas?name=Z%C3%A9+Pequeno&world=Aurera&limit=100&_=1")
        .await;
    assert_eq!(status, 200, "{v}");
    let deltas = v["deltas"].as_array().expect("deltas");
    assert_eq!(deltas.len(), stored.len());
    for (d, s) in deltas.iter().zip(&stored) {
        let keys: std::collections::BTreeSet<&str> = d
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            [
                "date",
                "delta_exp",
                "delta_online",
                "name",
                "prev_update_time",
                "update_time",
                "world"
            ]
        );
        assert!(
            is_legacy_time(&d["update_time"]) && is_legacy_time(&d["prev_update_time"]),
            "{d}"
        );
        assert_eq!(
            d["update_time"],
            json!(
                s.update_time
                    .naive_local()
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            )
        );
        assert_eq!(
            (d["delta_exp"].as_i64(), d["delta_online"].as_i64()),
            (Some(s.delta_exp), Some(s.delta_online))
        );
        assert_eq!(d["date"], json!(s.date.format("%Y-%m-%d").to_string()));
    }
    let (_, v) = api.get("/api/vip/deltas?limit=1").await;
    assert_eq!(v["deltas"].as_array().map(Vec::len), Some(1));
    let (status, v) = api.get("/api/vip/deltas?limit=0").await;
    assert_eq!(error_code(status, &v), "bad_parameter");

    // The graph: oldest first with running totals, and the statistics.
    let (status, v) = api
        .post(
            "/api/vip/graph",
            json!({"name": "Zé Pequeno", "world": WORLD}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["success"], true);
    // The replaced page's figure (JSON text), then worldpool's points.
    let page = crate::oldpages::page_figure("graph_data", &v["graph_data"]);
    let bars = crate::oldpages::bars(&page);
    assert_eq!(bars.len(), 1, "{page}");
    assert!(
        bars[0]["y"].as_array().is_some_and(|y| !y.is_empty()),
        "{page}"
    );
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), stored.len());
    let total: i64 = stored.iter().map(|d| d.delta_exp).sum();
    let online: i64 = stored.iter().map(|d| d.delta_online).sum();
    assert_eq!(
        points.last().and_then(|p| p["total_exp"].as_i64()),
        Some(total)
    );
    let stats = &v["stats"];
    assert_eq!(
        (
            stats["total_exp"].as_i64(),
            stats["total_online"].as_i64(),
            stats["updates"].as_i64()
        ),
        (Some(total), Some(online), Some(stored.len() as i64)),
        "{stats}"
    );
    assert_eq!(
        stats["max_exp"].as_i64(),
        stored.iter().map(|d| d.delta_exp).max()
    );
    for k in ["avg_exp", "avg_online"] {
        assert!(stats[k].is_number(), "{k}: {stats}");
    }
    let (status, v) = api.post("/api/vip/graph", json!({}), None).await;
    assert_eq!(error_code(status, &v), "bad_body");

    // The worker view and the metrics, from the worker's vip_pass event.
    let (_, w) = api.get("/api/workers/Aurera").await;
    assert!(w["watched"].is_null(), "{w}");
    let at = Utc::now();
    let event = worldpool::protocol::WorkerEvent::VipPass(worldpool::protocol::VipPass {
        world: WORLD.into(),
        update_time: f.site.update_time(WORLD).expect("time"),
        watched: 3,
        fetched: 2,
        failed: 1,
        unknown: vec![NOBODY.into()],
        deltas: 1,
        last_fetch: Some(at),
    });
    let pool::WorkerMessage::Event { kind, data } = event.to_message() else {
        panic!("an event");
    };
    fake.emit(pool::PoolEvent::Custom {
        worker: WORLD.into(),
        kind,
        data,
    });
    let w = wait_for_async(
        "the worker view to show the watched players",
        DEADLINE,
        || {
            let api = &api;
            async move {
                let (_, w) = api.get("/api/workers/Aurera").await;
                (!w["watched"].is_null()).then_some(w)
            }
        },
    )
    .await;
    let watched = &w["watched"];
    assert_eq!(watched["count"], 3, "{w}");
    assert_eq!(watched["unknown"], json!([NOBODY]));
    let last: DateTime<Utc> = watched["last_fetch"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("last_fetch");
    assert!((last - at).num_milliseconds().abs() < 2, "{w}");
    let metrics = api.text("/metrics").await.2;
    for want in [
        "worldpool_player_pages_total{world=\"Aurera\",result=\"ok\"} 2",
        "worldpool_player_pages_total{world=\"Aurera\",result=\"failed\"} 1",
        "worldpool_player_pages_total{world=\"Aurera\",result=\"unknown\"} 1",
        "worldpool_watched_players{world=\"Aurera\"} 3",
    ] {
        assert!(metrics.contains(want), "{want} not in\n{metrics}");
    }
    crate::helper::exposition::parse_exposition(&metrics).expect("valid exposition text");
    let (_, doc) = api.get("/api/openapi.json").await;
    for p in [
        "/api/vip/list",
        "/api/vip/add",
        "/api/vip/remove",
        "/api/vip/deltas",
        "/api/vip/graph",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} not described");
    }
    assert!(doc["components"]["schemas"]["Worker"]["properties"]["watched"].is_object());
    api.stop().await;
    f.site.shutdown().await;
}

#[tokio::test]
async fn vip_endpoints_sqlite() {
    vip_endpoints(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn vip_endpoints_postgres() {
    vip_endpoints(TestDb::postgres().await).await;
}

// ----- real processes --------------------------------------------------------

/// Stops the supervisor even when an assertion fails.
struct Supervisor(std::process::Child);

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

/// A real `worldpool run` (real workers, an hour between checks, so only a
/// "check now" down the channel makes them look) against the demo site: a
/// player added over the API is read at once, an unknown one shows as a
/// warning on the worker, and after the world's worker is killed with
/// SIGKILL the replacement keeps reading the added player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worldpool_run_reads_an_added_player_and_keeps_it_across_a_worker_kill() {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/wp.db", dir.path().display());
    let text = site.config_toml(&url, Mode::Pool);
    assert!(text.contains("poll_interval = \"1s\""), "{text}");
    let text = text.replace("poll_interval = \"1s\"", "poll_interval = \"1h\"");
    let (config, _) = write_config(dir.path(), &text);
    let port = crate::helper::free_port();
    let log = dir.path().join("run.log");
    let child = crate::helper::supervisor::run_command(
        &config,
        &log,
        &crate::helper::supervisor::Launch {
            api_port: Some(port),
            token: Some(TOKEN),
            ..Default::default()
        },
    )
    .spawn()
    .expect("worldpool run starts");
    let mut guard = Supervisor(child);
    let api = Api::at(format!("http://127.0.0.1:{port}"));
    let store = Store::open(&url, 1).await.expect("store");
    let scenario = async {
        wait_for_async("the config's players read", DEADLINE, || {
            let store = store.clone();
            async move { (store.vip_latest(Some(WORLD)).await.ok()?.len() == 2).then_some(()) }
        })
        .await;
        let (status, v) = api
            .post(
                "/api/vip/add",
                json!({"name": GUILDLESS, "world": WORLD}),
                Some(TOKEN),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (&v["changed"], &v["checked_now"]),
            (&json!(true), &json!(true)),
            "{v}"
        );
        let (status, _) = api
            .post(
                "/api/vip/add",
                json!({"name": NOBODY, "world": WORLD}),
                Some(TOKEN),
            )
            .await;
        assert_eq!(status, 200);
        // Read at once (the next check is an hour away), without a restart.
        let first = wait_for_async("the added player, read", DEADLINE, || {
            let store = store.clone();
            async move {
                store
                    .vip_latest(Some(WORLD))
                    .await
                    .ok()?
                    .into_iter()
                    .find(|d| d.name == GUILDLESS)
            }
        })
        .await;
        let day = site.player_day(GUILDLESS).expect("known");
        assert_eq!(
            (first.raw_xp, first.online_minutes),
            (day.raw_xp, day.online_minutes)
        );
        // The worker says so: three watched, a fetch time, the unknown one
        // as a warning; the run itself is not failed.
        let w = wait_for_async("the worker view with the unknown player", DEADLINE, || {
            let api = &api;
            async move {
                let (_, w) = api.get("/api/workers/Aurera").await;
                (w["watched"]["count"] == 4 && w["watched"]["unknown"] == json!([NOBODY]))
                    .then_some(w)
            }
        })
        .await;
        assert!(w["watched"]["last_fetch"].is_string(), "{w}");
        assert!(
            w["last_error"].as_str().is_some_and(|e| e.contains(NOBODY)),
            "a warning on the worker: {w}"
        );
        let runs = store.runs(Some(WORLD), 100, None).await.expect("runs");
        assert!(runs.iter().all(|r| r.status == "ok"), "{runs:?}");
        let metrics = api.text("/metrics").await.2;
        assert!(
            metrics.contains("worldpool_player_pages_total{world=\"Aurera\",result=\"unknown\"} 1"),
            "{metrics}"
        );

        // kill -9 the world's worker; the supervisor starts another.
        let victim = w["pid"].as_u64().expect("pid") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL the worker");
        wait_for_async("a replacement worker", DEADLINE, || {
            let api = &api;
            async move {
                let (_, w) = api.get("/api/workers/Aurera").await;
                (w["state"] == "running"
                    && w["pid"].as_i64().is_some_and(|p| p != i64::from(victim)))
                .then_some(())
            }
        })
        .await;
        // Site updates until the added player's numbers change: the new
        // worker records the delta of the player added over the API.
        let mut after = day;
        for _ in 0..3 {
            site.advance();
            after = site.player_day(GUILDLESS).expect("known");
            if after != day {
                break;
            }
        }
        assert_ne!(
            after, day,
            "the demo changes every player within three updates"
        );
        let t = site.update_time(WORLD).expect("time");
        // The new worker's next check is an hour away: ask for it now
        // (409 while it is busy scraping; ask again then).
        wait_for_async("a manual update of Aurera accepted", DEADLINE, || {
            let api = &api;
            async move {
                let (status, _) = api
                    .post("/api/manual-update?world=Aurera", json!({}), Some(TOKEN))
                    .await;
                (status == 202).then_some(())
            }
        })
        .await;
        let v = wait_for_async("the added player's delta", DEADLINE, || {
            let api = &api;
            async move {
                let (_, v) = api.get("/api/vip/deltas?name=Andarilha").await;
                (v["deltas"].as_array()?.len() == 1).then_some(v)
            }
        })
        .await;
        let d = &v["deltas"][0];
        assert_eq!(
            (d["delta_exp"].as_i64(), d["delta_online"].as_i64()),
            (
                Some(after.raw_xp - day.raw_xp),
                Some(after.online_minutes - day.online_minutes)
            ),
            "{v}"
        );
        assert_eq!(
            d["update_time"],
            json!(t.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string())
        );
        let (_, v) = api.get("/api/vip/list?world=Aurera").await;
        assert!(
            v["vips"]
                .as_array()
                .expect("vips")
                .iter()
                .any(|p| p["name"] == GUILDLESS && p["source"] == "api"),
            "{v}"
        );
    };
    tokio::time::timeout(Duration::from_secs(120), scenario)
        .await
        .expect("within two minutes");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guard.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the supervisor");
    let status = tokio::task::spawn_blocking(move || {
        let s = guard.0.wait().expect("waits");
        std::mem::forget(guard);
        s
    })
    .await
    .expect("join");
    assert!(status.success(), "a clean stop: {status:?}");
    site.shutdown().await;
}

#[tokio::test]
async fn killed_in_the_middle_of_the_watched_pass_redoes_nothing_sqlite() {
    killed_in_the_middle_of_the_watched_pass(None).await;
}

#[tokio::test]
async fn killed_in_the_middle_of_the_watched_pass_redoes_nothing_postgres() {
    killed_in_the_middle_of_the_watched_pass(Some(crate::helper::pg::fresh_database_url().await))
        .await;
}

/// `scrape-once` (a real process) killed with SIGKILL inside the second
/// watched player's transaction: the first player's read is stored, the
/// second's is not; the next run reads only the second (the first's page
/// is not fetched again) and stores it once. Nothing twice, nothing lost.
async fn killed_in_the_middle_of_the_watched_pass(database_url: Option<String>) {
    let site = DemoSite::start(DemoSiteOptions::default())
        .await
        .expect("demo site");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite://{}/wp.db", dir.path().display());
    let url = database_url.clone().unwrap_or(sqlite.clone());
    let (config, _) = write_config(dir.path(), &site.config_toml(&sqlite, Mode::Pool));
    let db = database_url.as_deref();
    // Read in name order: the second one stalls.
    let (first, second) = ("Solitário Sem Guilda", "Zé Pequeno");

    let out = output(scrape_once(&config, WORLD, db, &["--json"])).await;
    assert!(out.status.success(), "{out:?}");
    let t1 = site.update_time(WORLD).expect("time");
    let store = Store::open(&url, 1).await.expect("store");
    let base: HashMap<&str, DemoDay> = [first, second]
        .into_iter()
        .map(|n| (n, site.player_day(n).expect("known")))
        .collect();
    assert_eq!(
        store.vip_latest(Some(WORLD)).await.expect("latest").len(),
        2
    );

    // Updates until both players' numbers changed.
    let mut now = base.clone();
    for _ in 0..6 {
        site.advance_world(WORLD);
        now = [first, second]
            .into_iter()
            .map(|n| (n, site.player_day(n).expect("known")))
            .collect();
        if now.iter().all(|(n, d)| *d != base[n]) {
            break;
        }
    }
    assert!(now.iter().all(|(n, d)| *d != base[n]), "{now:?}");
    let t2 = site.update_time(WORLD).expect("time");
    let hits = |n: &str| site.player_page_hits(n);
    assert_eq!((hits(first), hits(second)), (1, 1));

    let marker = dir.path().join("in-vip-tx");
    let mut child = scrape_once(&config, WORLD, db, &[])
        .env("WORLDPOOL_TEST_STALL_IN_VIP_TX", &marker)
        .env("WORLDPOOL_TEST_STALL_VIP_NAME", second)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn scrape-once");
    let m = marker.clone();
    let waited = tokio::task::spawn_blocking(move || {
        wait_for("the second player's transaction", DEADLINE, || {
            m.exists().then_some(())
        });
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped")
    })
    .await
    .expect("join");
    assert!(!waited.success());
    assert_eq!((hits(first), hits(second)), (2, 2));

    let want = |n: &str| VipDelta {
        world: WORLD.into(),
        name: n.into(),
        date: now[n].date,
        delta_exp: now[n].raw_xp - base[n].raw_xp,
        delta_online: now[n].online_minutes - base[n].online_minutes,
        update_time: t2,
        prev_update_time: Some(t1),
    };
    let deltas = |n: &'static str| {
        let store = store.clone();
        async move {
            store
                .vip_deltas(Some(WORLD), Some(n), 100)
                .await
                .expect("deltas")
        }
    };
    assert_eq!(
        deltas(first).await,
        [want(first)],
        "the first player is done"
    );
    assert!(
        deltas(second).await.is_empty(),
        "the second rolled back whole"
    );
    let latest: HashMap<String, DateTime<FixedOffset>> = store
        .vip_latest(Some(WORLD))
        .await
        .expect("latest")
        .into_iter()
        .map(|d| (d.name, d.update_time))
        .collect();
    assert_eq!((latest[first], latest[second]), (t2, t1));

    // The next run: only the second player's page, stored once.
    let out = output(scrape_once(&config, WORLD, db, &["--json"])).await;
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let read: Vec<&str> = v["watched"]
        .as_array()
        .expect("watched")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(read, [second], "{v}");
    assert_eq!(v["watched"][0]["status"], "stored");
    assert_eq!(v["watched"][0]["recorded"]["outcome"], "delta");
    assert_eq!((hits(first), hits(second)), (2, 3), "nothing fetched twice");
    assert_eq!(deltas(first).await, [want(first)]);
    assert_eq!(deltas(second).await, [want(second)]);
    for n in [first, second] {
        assert_eq!(
            store.vip_daily(Some(WORLD), Some(n)).await.expect("daily"),
            [VipDaily {
                world: WORLD.into(),
                name: n.into(),
                date: now[n].date,
                raw_xp: now[n].raw_xp,
                online_minutes: now[n].online_minutes,
                update_time: t2,
            }]
        );
    }
    // And again: nothing to do.
    let out = output(scrape_once(&config, WORLD, db, &["--json"])).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["watched"], json!([]), "{v}");
    site.shutdown().await;
}
