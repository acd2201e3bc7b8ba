//! Makers and uploads, end to end on both stores: `worldpool import` of a
//! `ref_main_maker.csv`, the worker's pass reading the makers' pages on the
//! demo site and recording their numbers, the four makers endpoints read
//! the way the replaced system's `makers_fast.html` reads them (the graph's
//! `graph_data` parsed as a Plotly figure), and the three uploads (good
//! file, the same file again, a bad line, a wrong password).

use std::sync::Arc;

use serde_json::{Value, json};
use worldpool::api::fake::FakeControl;
use worldpool::api::{ApiState, CompatSettings, ConfiguredWorld};
use worldpool::demo_site::Layout;
use worldpool::import::{self, ImportOptions};
use worldpool::store::VipReadOutcome;

use crate::helper::api::Api;
use crate::store::TestDb;
use crate::vip::Fixture;

const TOKEN: &str = "upl0ad-t0ken";
const WORLD: &str = "Aurera";

/// What the page's `new Date(delta.update_time)` reads: a naive local ISO
/// time (the replaced system's form).
fn is_page_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok())
}

/// The replaced graphs' x labels: the period each bar covers (`10:00`,
/// `10:00-10:10`, with dates across midnight).
fn is_period_label(v: &Value) -> bool {
    let re = regex::Regex::new(r"^(\d\d/\d\d/\d{4} )?\d\d:\d\d(-(\d\d/\d\d/\d{4} )?\d\d:\d\d)?$")
        .expect("regex");
    v.as_str().is_some_and(|s| re.is_match(s))
}

/// `JSON.parse(data.graph_data)`, then `Plotly.newPlot(el, g.data,
/// g.layout)`: a figure with an array of traces and a layout object, each
/// trace's `x` and `y` of one length.
fn plotly_figure(answer: &Value, key: &str) -> Value {
    let text = answer[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is a string: {answer}"));
    let figure: Value = serde_json::from_str(text).expect("graph_data parses as JSON");
    let traces = figure["data"].as_array().expect("figure.data is an array");
    assert!(figure["layout"].is_object(), "figure.layout: {figure}");
    for t in traces {
        let (x, y) = (
            t["x"].as_array().expect("trace x"),
            t["y"].as_array().expect("trace y"),
        );
        assert_eq!(x.len(), y.len(), "{t}");
        assert!(x.iter().all(is_period_label), "{t}");
    }
    figure
}

async fn makers_end_to_end(db: TestDb) {
    let mut f = Fixture::new(Layout::Table, &db).await;
    let makers = f.site.makers(WORLD);
    assert_eq!(makers.len(), 2, "the demo's makers of {WORLD}");

    // `worldpool import` of a data folder holding the demo's ref_main_maker.csv.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ref_main_maker.csv"),
        f.site.main_makers_csv(),
    )
    .expect("write csv");
    let options = ImportOptions {
        from: dir.path().to_path_buf(),
        default_world: None,
        default_guild: None,
        site_offset: chrono::FixedOffset::west_opt(3 * 3600).expect("offset"),
        reset_minutes: 10 * 60 + 2,
    };
    let summary = import::run(&f.store, &options, false)
        .await
        .expect("import");
    assert_eq!(summary.read.get("makers"), Some(&4), "{summary}");
    assert_eq!(summary.written.makers, 4, "{summary}");
    let again = import::run(&f.store, &options, false).await.expect("again");
    assert_eq!(again.written.makers, 0, "nothing twice: {again}");

    // The worker's pass reads the makers' pages like the watched players'.
    let (_, report) = f.check().await;
    for m in &makers {
        assert!(report.watched.contains(&m.name), "{report:?}");
        let r = report
            .results
            .iter()
            .find(|r| r.name == m.name)
            .unwrap_or_else(|| panic!("{} read: {report:?}", m.name));
        assert!(
            matches!(
                r.status,
                worldpool::scrape::VipStatus::Stored {
                    recorded: VipReadOutcome::Baseline,
                    ..
                }
            ),
            "{r:?}"
        );
    }
    let mut online_deltas = 0;
    for _ in 0..3 {
        f.update(10);
        let (_, report) = f.check().await;
        for r in &report.results {
            if let worldpool::scrape::VipStatus::Stored {
                recorded: VipReadOutcome::Delta(d),
                ..
            } = &r.status
                && makers.iter().any(|m| m.name == d.name)
                && d.delta_online != 0
            {
                online_deltas += 1;
            }
        }
    }
    assert!(online_deltas > 0, "the makers were online");
    let latest = f.store.vip_latest(Some(WORLD)).await.expect("latest");
    for m in &makers {
        let day = f.site.player_day(&m.name).expect("known");
        let read = latest
            .iter()
            .find(|d| d.name == m.name)
            .expect("a read of the maker");
        assert_eq!(
            (read.raw_xp, read.online_minutes),
            (day.raw_xp, day.online_minutes),
            "{}: the numbers its page shows",
            m.name
        );
    }

    let fake = Arc::new(FakeControl::new(&["Aurera", "Bellum", "Cèlesta"]));
    let state = ApiState::new(fake, Some(f.store.clone()), None)
        .with_compat(CompatSettings::from_config(&f.config));
    let api = Api::serve(state).await;

    // loadMakersList(): data.makers[].name / .world.
    let (status, v) = api.get("/api/makers/list").await;
    assert_eq!(status, 200, "{v}");
    let listed: Vec<(String, String)> = v["makers"]
        .as_array()
        .expect("makers")
        .iter()
        .map(|m| {
            (
                m["world"].as_str().expect("world").to_string(),
                m["name"].as_str().expect("name").to_string(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 4, "{v}");
    for m in &makers {
        assert!(listed.contains(&(WORLD.to_string(), m.name.clone())), "{v}");
    }

    // loadMainMakersList(): data.main_makers[].main / main_world / maker / maker_world.
    let (status, v) = api.get("/api/makers/main").await;
    assert_eq!(status, 200, "{v}");
    let rows = v["main_makers"].as_array().expect("main_makers");
    assert_eq!(rows.len(), 4, "{v}");
    for m in &makers {
        assert!(
            rows.iter().any(|r| r["main"] == json!(m.main)
                && r["main_world"] == json!(m.main_world)
                && r["maker"] == json!(m.name)
                && r["maker_world"] == json!(WORLD)),
            "{} in {v}",
            m.name
        );
    }

    // loadMakersDeltas(): fetch('/api/makers/deltas?limit=50'), each
    // delta's name, update_time (new Date) and delta_online (minutes).
    let (status, v) = api.get("/api/makers/deltas?limit=50").await;
    assert_eq!(status, 200, "{v}");
    let deltas = v["deltas"].as_array().expect("deltas");
    assert_eq!(deltas.len(), online_deltas, "{v}");
    for d in deltas {
        assert!(makers.iter().any(|m| d["name"] == json!(m.name)), "{d}");
        assert!(is_page_time(&d["update_time"]), "{d}");
        assert!(is_page_time(&d["prev_update_time"]), "{d}");
        assert!(d["delta_online"].as_i64().is_some_and(|m| m != 0), "{d}");
        assert!(d["delta_exp"].is_i64() && d["date"].is_string(), "{d}");
    }
    let one = &makers[0].name;
    let (_, v) = api
        .get(&format!(
            "/api/makers/deltas?name={}&world={WORLD}&limit=1",
            urlencode(one)
        ))
        .await;
    let only = v["deltas"].as_array().expect("deltas");
    assert!(
        only.len() <= 1 && only.iter().all(|d| d["name"] == json!(one)),
        "{v}"
    );

    // loadMakersGraph(name, world): success, JSON.parse(graph_data).
    for m in &makers {
        let (status, v) = api
            .post(
                "/api/makers/graph",
                json!({"name": m.name, "world": WORLD}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["success"], json!(true), "{v}");
        let figure = plotly_figure(&v, "graph_data");
        let traces = figure["data"].as_array().expect("traces");
        assert!(!traces.is_empty(), "{figure}");
        // A bar per read, a run of reads with nothing gained folded into one.
        let bars = traces[0]["x"].as_array().expect("x").len() as i64;
        let updates = v["stats"]["updates"].as_i64().expect("updates");
        assert!(
            bars >= 1 && bars <= updates,
            "{bars} bars for {updates} reads: {v}"
        );
        for key in [
            "total_exp",
            "avg_exp",
            "max_exp",
            "total_online",
            "avg_online",
        ] {
            assert!(v["stats"][key].is_number(), "{key}: {v}");
        }
    }
    // "View Main": a main that is not read gets an empty figure, not an error.
    let (status, v) = api
        .post(
            "/api/makers/graph",
            json!({"name": makers[0].main, "world": makers[0].main_world}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    plotly_figure(&v, "graph_data");
    assert_eq!(v["stats"]["updates"], json!(0), "{v}");
    let (status, v) = api
        .post("/api/makers/graph", json!({"name": makers[0].name}), None)
        .await;
    assert_eq!(status, 400, "name and world are required: {v}");
    api.stop().await;
    f.site.shutdown().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn makers_end_to_end_sqlite() {
    makers_end_to_end(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn makers_end_to_end_postgres() {
    makers_end_to_end(TestDb::postgres().await).await;
}

// ----- uploads -------------------------------------------------------------

const DELTAS: &str = "name,deltaexp,update time,world,guild\n\
Zé Pequeno,1500,2026-11-28 20:00:00,Aurera,Red Rose\n\
Lady Ávila,900,2026-11-28 20:00:00,Aurera,Red Rose\n\
Zé Pequeno,700,2026-11-28 20:10:00,Aurera,Red Rose\n";

/// An old file without world and guild: the form's fields give them.
const EXPS: &str = "name,exp,last update\n\
Zé Pequeno,2200,2026-11-28 20:10:00\n\
Lady Ávila,900,2026-11-28 20:00:00\n";

const MAKERS: &str = "main,main_world,maker,maker_world\n\
Rei Arthur,Aurera,Vó Maria,Aurera\n\
Imortal Um,Bellum,Gume,Bellum\n";

async fn uploads(db: TestDb) {
    let store = db.open().await;
    let fake = Arc::new(FakeControl::new(&["Aurera"]));
    let compat = CompatSettings {
        worlds: vec![
            ConfiguredWorld {
                world: "Aurera".into(),
                guilds: vec!["Red Rose".into()],
            },
            ConfiguredWorld {
                world: "Bellum".into(),
                guilds: vec!["Os Imortais".into()],
            },
        ],
        ..CompatSettings::default()
    };
    let state = ApiState::new(fake, Some(store.clone()), Some(TOKEN.into())).with_compat(compat);
    let api = Api::serve(state).await;
    let pw = [("password", TOKEN)];

    // Deltas: a good file, its rows in the feed; again: nothing twice.
    let (status, v) = api
        .post_form("/api/upload/deltas", "deltas.csv", DELTAS.as_bytes(), &pw)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["success"], &v["records"], &v["written"]),
        (&json!(true), &json!(3), &json!(3)),
        "{v}"
    );
    let feed = |v: &Value| {
        v["deltas"]
            .as_array()
            .expect("deltas")
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_string(),
                    d["deltaexp"].as_i64().unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (_, v) = api.get("/api/delta?world=Aurera").await;
    assert_eq!(
        feed(&v),
        [
            ("Zé Pequeno".to_string(), 700),
            ("Lady Ávila".to_string(), 900),
            ("Zé Pequeno".to_string(), 1500),
        ],
        "{v}"
    );
    let (status, v) = api
        .post_form("/api/upload/deltas", "deltas.csv", DELTAS.as_bytes(), &pw)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["records"], &v["written"]),
        (&json!(3), &json!(0)),
        "{v}"
    );
    let (_, v) = api.get("/api/delta?world=Aurera").await;
    assert_eq!(feed(&v).len(), 3, "nothing written twice: {v}");

    // A bad line: the error names it, and nothing of the file is written.
    let bad = "name,deltaexp,update time,world,guild\n\
Novo,10,2026-11-28 20:20:00,Aurera,Red Rose\n\
Outro,dez,2026-11-28 20:20:00,Aurera,Red Rose\n";
    let (status, v) = api
        .post_form("/api/upload/deltas", "deltas.csv", bad.as_bytes(), &pw)
        .await;
    assert_eq!(status, 400, "{v}");
    let message = v["message"].as_str().expect("message");
    assert!(
        message.contains("deltas.csv line 3") && message.contains("deltaexp"),
        "{v}"
    );
    assert!(v["error"].is_string(), "the page shows data.error: {v}");
    let (_, v) = api.get("/api/delta?world=Aurera").await;
    assert_eq!(feed(&v).len(), 3, "nothing written: {v}");

    // A wrong or missing password with a token set: 401, nothing written.
    let (status, v) = api
        .post_form(
            "/api/upload/deltas",
            "deltas.csv",
            bad.replace("dez", "10").as_bytes(),
            &[("password", "wrong")],
        )
        .await;
    assert_eq!(status, 401, "{v}");
    let (status, _) = api
        .post_form(
            "/api/upload/makers",
            "ref_main_maker.csv",
            MAKERS.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, 401);
    let (_, v) = api.get("/api/delta?world=Aurera").await;
    assert_eq!(feed(&v).len(), 3, "{v}");

    // Exps: an old file without world/guild, the defaults from the form.
    let fields = [
        ("password", TOKEN),
        ("world", "Aurera"),
        ("guild", "Red Rose"),
    ];
    let (status, v) = api
        .post_form("/api/upload/exps", "exps.csv", EXPS.as_bytes(), &fields)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["records"], &v["written"]),
        (&json!(2), &json!(2)),
        "{v}"
    );
    let (_, _, csv) = api.text("/api/download/exps").await;
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Zé Pequeno,2200,") && l.contains("Aurera")),
        "{csv}"
    );
    let (_, v) = api
        .post_form("/api/upload/exps", "exps.csv", EXPS.as_bytes(), &fields)
        .await;
    assert_eq!(
        (&v["records"], &v["written"]),
        (&json!(2), &json!(0)),
        "{v}"
    );
    // Two worlds configured and no form field: the file's line is named.
    let (status, v) = api
        .post_form("/api/upload/exps", "exps.csv", EXPS.as_bytes(), &pw)
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("exps.csv line 2") && m.contains("world")),
        "{v}"
    );

    // Makers: listed by the makers endpoints at once; again: nothing twice.
    let (status, v) = api
        .post_form(
            "/api/upload/makers",
            "ref_main_maker.csv",
            MAKERS.as_bytes(),
            &pw,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["records"], &v["written"]),
        (&json!(2), &json!(2)),
        "{v}"
    );
    let (_, v) = api.get("/api/makers/main").await;
    assert_eq!(
        v["main_makers"],
        json!([
            {"main": "Rei Arthur", "main_world": "Aurera", "maker": "Vó Maria", "maker_world": "Aurera"},
            {"main": "Imortal Um", "main_world": "Bellum", "maker": "Gume", "maker_world": "Bellum"},
        ]),
        "{v}"
    );
    let (_, v) = api
        .post_form(
            "/api/upload/makers",
            "ref_main_maker.csv",
            MAKERS.as_bytes(),
            &pw,
        )
        .await;
    assert_eq!(
        (&v["records"], &v["written"]),
        (&json!(2), &json!(0)),
        "{v}"
    );
    // A maker given two mains in one file: the second line is named.
    let twice = format!("{MAKERS}Outro Main,Aurera,Vó Maria,Aurera\n");
    let (status, v) = api
        .post_form(
            "/api/upload/makers",
            "ref_main_maker.csv",
            twice.as_bytes(),
            &pw,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("ref_main_maker.csv line 4")),
        "{v}"
    );
    let (_, v) = api.get("/api/makers/list").await;
    assert_eq!(v["makers"].as_array().map(Vec::len), Some(2), "{v}");
    // Not a CSV.
    let (status, v) = api
        .post_form("/api/upload/makers", "makers.xlsx", MAKERS.as_bytes(), &pw)
        .await;
    assert_eq!(status, 400, "{v}");

    let (_, doc) = api.get("/api/openapi.json").await;
    for path in [
        "/api/makers/list",
        "/api/makers/main",
        "/api/makers/deltas",
        "/api/makers/graph",
        "/api/upload/deltas",
        "/api/upload/exps",
        "/api/upload/makers",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} described");
    }
    api.stop().await;

    // No token configured (the API then listens on loopback only): uploads
    // are accepted whatever the password, as in the replaced system.
    let open = ApiState::new(
        Arc::new(FakeControl::new(&["Aurera"])),
        Some(store.clone()),
        None,
    );
    let api = Api::serve(open).await;
    let (status, v) = api
        .post_form(
            "/api/upload/deltas",
            "deltas.csv",
            DELTAS.as_bytes(),
            &[("password", "anything")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["written"], json!(0), "{v}");
    api.stop().await;
}

#[tokio::test]
async fn uploads_sqlite() {
    uploads(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn uploads_postgres() {
    uploads(TestDb::postgres().await).await;
}
