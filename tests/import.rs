//! `worldpool import`: a replaced system's data folder (old CSVs without
//! world/guild, several thousand rows), a bad row, a re-run, a dry run, its
//! SQLite file, and the command itself; on SQLite and PostgreSQL.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone};
use worldpool::import::{ImportError, ImportOptions, run};
use worldpool::store::{Store, TimeRange};

use crate::helper::cli::command;
use crate::store::TestDb;

const WORLD: &str = "Auroria";
const GUILD: &str = "Ascended Auroria";
const PLAYERS: usize = 300;
const UPDATES: usize = 20;

fn site() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("offset")
}

/// Update `u` (0-based): every 10 minutes from 2026-01-04 10:10 site time.
fn update(u: usize) -> DateTime<FixedOffset> {
    site()
        .with_ymd_and_hms(2026, 1, 4, 10, 10, 0)
        .single()
        .expect("time")
        + Duration::minutes(10 * u as i64)
}

fn name(i: usize) -> String {
    match i {
        0 => "Zé Pequeno".to_string(),
        1 => "Cado".to_string(),
        _ => format!("Player {i:03}"),
    }
}

/// Whether player `i` gained experience at update `u`, and how much.
fn gain(i: usize, u: usize) -> Option<i64> {
    ((i * 7 + u * 13) % 5 < 3).then(|| 10_000 + ((i * 31 + u * 17) % 997) as i64 * 1_000)
}

/// What the data folder holds, to compare the store against.
struct History {
    deltas: usize,
    players: usize,
    last_exp: Vec<(String, i64)>,
}

/// Write a replaced system's data folder: its old CSVs (no world, no
/// guild), vips.txt, vipsdata.csv, deltavip.csv, last_reset.txt.
fn write_folder(dir: &Path) -> History {
    let mut deltas = String::from("name,deltaexp,update time\n");
    let mut count = 0;
    let mut total = vec![0i64; PLAYERS];
    let mut seen = vec![false; PLAYERS];
    for u in 0..UPDATES {
        let t = update(u).format("%Y-%m-%d %H:%M:%S");
        for (i, sum) in total.iter_mut().enumerate() {
            if let Some(g) = gain(i, u) {
                *sum += g;
                seen[i] = true;
                let _ = writeln!(deltas, "{},{g},{t}", name(i));
                count += 1;
            }
        }
    }
    let last = update(UPDATES - 1).format("%Y-%m-%d %H:%M:%S");
    let mut exps = String::from("name,exp,last update\n");
    let mut last_exp = Vec::new();
    for i in (0..PLAYERS).filter(|&i| seen[i]) {
        let _ = writeln!(exps, "{},{},{last}", name(i), total[i]);
        last_exp.push((name(i), total[i]));
    }
    std::fs::write(dir.join("deltas.csv"), deltas).expect("deltas.csv");
    std::fs::write(dir.join("exps.csv"), exps).expect("exps.csv");
    std::fs::write(
        dir.join("vips.txt"),
        format!("Zé Pequeno,{WORLD}\nCado,{WORLD}\n\n"),
    )
    .expect("vips.txt");
    std::fs::write(
        dir.join("vipsdata.csv"),
        format!(
            "name,world,today_exp,today_online\nZé Pequeno,{WORLD},1234000,95.0\nCado,{WORLD},10,5\n"
        ),
    )
    .expect("vipsdata.csv");
    let mut vd = String::from("name,world,date,delta_exp,delta_online,update_time\n");
    for k in 0..5 {
        let t = update(k * 2).format("%Y-%m-%d %H:%M:%S");
        let _ = writeln!(
            vd,
            "Zé Pequeno,{WORLD},2026-01-04,{},{},{t}",
            1000 * (k + 1),
            10
        );
    }
    std::fs::write(dir.join("deltavip.csv"), vd).expect("deltavip.csv");
    std::fs::write(dir.join("last_reset.txt"), "2026-01-04\n").expect("last_reset.txt");
    last_exp.sort();
    History {
        deltas: count,
        players: last_exp.len(),
        last_exp,
    }
}

fn options(from: &Path, defaults: bool) -> ImportOptions {
    ImportOptions {
        from: from.to_path_buf(),
        default_world: defaults.then(|| WORLD.to_string()),
        default_guild: defaults.then(|| GUILD.to_string()),
        site_offset: site(),
        reset_minutes: 10 * 60 + 2,
    }
}

async fn total_deltas(store: &Store) -> usize {
    store
        .player_totals(TimeRange::all(), None, None)
        .await
        .expect("totals")
        .iter()
        .map(|t| t.updates as usize)
        .sum()
}

async fn data_folder_imports_once(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let history = write_folder(dir.path());
    assert!(
        history.deltas > 3_000,
        "several thousand rows: {}",
        history.deltas
    );
    let store = db.open().await;

    // Old files lack world and guild: without defaults the import fails,
    // naming the first file and line, and writes nothing.
    let err = run(&store, &options(dir.path(), false), false)
        .await
        .expect_err("no defaults");
    let text = err.to_string();
    assert!(matches!(err, ImportError::NoDefault { .. }), "{text}");
    assert!(
        text.contains("exps.csv line 2") && text.contains("--default-world"),
        "{text}"
    );
    assert!(
        store
            .player_names(None, None)
            .await
            .expect("names")
            .is_empty()
    );

    // A dry run says what it would write and writes nothing.
    let dry = run(&store, &options(dir.path(), true), true)
        .await
        .expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(dry.written.deltas.get(WORLD), Some(&history.deltas));
    assert_eq!(total_deltas(&store).await, 0, "the dry run wrote nothing");
    assert!(store.watched(None).await.expect("watched").is_empty());

    let summary = run(&store, &options(dir.path(), true), false)
        .await
        .expect("import");
    let w = &summary.written;
    assert_eq!(summary.read.get("deltas"), Some(&history.deltas));
    assert_eq!(w.deltas.get(WORLD), Some(&history.deltas));
    assert_eq!(w.players.get(WORLD), Some(&history.players));
    assert_eq!(w.runs.get(WORLD), Some(&UPDATES));
    assert_eq!(
        (w.watched, w.vip_daily, w.vip_deltas, w.world_states),
        (2, 2, 5, 1)
    );
    assert_eq!(w, &dry.written, "the dry run predicted the import");
    let printed = summary.to_string();
    assert!(
        printed.contains("Imported") && printed.contains(WORLD),
        "{printed}"
    );

    // What the store holds now.
    assert_eq!(total_deltas(&store).await, history.deltas);
    let mut stored: Vec<(String, i64)> = store
        .players(WORLD)
        .await
        .expect("players")
        .into_iter()
        .map(|p| (p.name, p.experience))
        .collect();
    stored.sort();
    assert_eq!(stored, history.last_exp);
    let feed = store
        .delta_feed(Some(WORLD), Some(GUILD), 5)
        .await
        .expect("feed");
    assert_eq!(feed[0].update_time, update(UPDATES - 1));
    assert_eq!(feed[0].previous_update_time, Some(update(UPDATES - 2)));
    let (first, last) = store
        .delta_time_range(None, None)
        .await
        .expect("range")
        .expect("deltas");
    assert_eq!((first, last), (update(0), update(UPDATES - 1)));
    let oldest = store
        .player_deltas(&[name(0)], TimeRange::all())
        .await
        .expect("series");
    assert_eq!(
        oldest[0].previous_update_time, None,
        "the first update has none"
    );
    let state = store.world_state(WORLD).await.expect("state");
    assert_eq!(state.last_update_time, Some(update(UPDATES - 1)));
    assert_eq!(
        state.last_rebase,
        site().with_ymd_and_hms(2026, 1, 4, 10, 2, 0).single()
    );
    let watched: Vec<String> = store
        .watched(Some(WORLD))
        .await
        .expect("watched")
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(watched, ["Cado", "Zé Pequeno"]);
    let vip = store
        .vip_daily(Some(WORLD), Some("Zé Pequeno"))
        .await
        .expect("daily");
    assert_eq!((vip[0].raw_xp, vip[0].online_minutes), (1_234_000, 95));
    let vd = store.vip_deltas(None, None, 10).await.expect("vip deltas");
    assert_eq!(vd.len(), 5);
    assert_eq!(
        vd[0].prev_update_time,
        Some(vd[1].update_time),
        "chained per player"
    );

    // A re-run imports nothing twice.
    let again = run(&store, &options(dir.path(), true), false)
        .await
        .expect("re-run");
    assert_eq!(again.written, Default::default(), "{again}");
    assert_eq!(total_deltas(&store).await, history.deltas);
}

async fn a_bad_row_fails_the_whole_import(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_folder(dir.path());
    let store = db.open().await;
    // Line 1234 of deltas.csv gets a non-numeric experience.
    let path = dir.path().join("deltas.csv");
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let cells: Vec<String> = lines[1233].split(',').map(String::from).collect();
    lines[1233] = format!("{},12a,{}", cells[0], cells[2]);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let err = run(&store, &options(dir.path(), true), false)
        .await
        .expect_err("bad row");
    let text = err.to_string();
    assert!(
        text.contains("deltas.csv line 1234")
            && text.contains("`deltaexp`")
            && text.contains("12a"),
        "{text}"
    );
    // Nothing half-imported: exps.csv was fine and was read first.
    assert!(store.players(WORLD).await.expect("players").is_empty());
    assert_eq!(total_deltas(&store).await, 0);
    assert!(store.watched(None).await.expect("watched").is_empty());

    // An unparseable time, in exps.csv.
    lines[1233] = format!("{},12,{}", cells[0], cells[2]);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let exps = dir.path().join("exps.csv");
    let text = std::fs::read_to_string(&exps).expect("read");
    std::fs::write(
        &exps,
        text.replacen("2026-01-04 13:20:00", "ontem às 13:20", 1),
    )
    .expect("write");
    let err = run(&store, &options(dir.path(), true), false)
        .await
        .expect_err("bad time")
        .to_string();
    assert!(
        err.contains("exps.csv line 2") && err.contains("`last update`") && err.contains("ontem"),
        "{err}"
    );
    assert!(
        store
            .player_names(None, None)
            .await
            .expect("names")
            .is_empty()
    );
}

/// The replaced system's SQLite file (its SQLAlchemy schema and formats).
fn write_sqlite(path: &Path) {
    let c = rusqlite::Connection::open(path).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE players (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, exp INTEGER NOT NULL,
            last_update DATETIME NOT NULL, world VARCHAR NOT NULL, guild VARCHAR NOT NULL);
         CREATE TABLE deltas (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, deltaexp INTEGER NOT NULL,
            update_time DATETIME NOT NULL, world VARCHAR NOT NULL, guild VARCHAR NOT NULL);
         CREATE TABLE vips (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, world VARCHAR NOT NULL);
         CREATE TABLE vip_data (id INTEGER PRIMARY KEY, name VARCHAR, world VARCHAR, today_exp INTEGER,
            today_online FLOAT);
         CREATE TABLE vip_deltas (id INTEGER PRIMARY KEY, name VARCHAR, world VARCHAR, date VARCHAR,
            delta_exp INTEGER, delta_online FLOAT, update_time DATETIME);
         CREATE TABLE makers (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, world VARCHAR NOT NULL);
         CREATE TABLE maker_data (id INTEGER PRIMARY KEY, name VARCHAR, world VARCHAR, today_exp INTEGER,
            today_online FLOAT);
         CREATE TABLE maker_deltas (id INTEGER PRIMARY KEY, name VARCHAR, world VARCHAR, date VARCHAR,
            delta_exp INTEGER, delta_online FLOAT, update_time DATETIME);
         CREATE TABLE status_data (id INTEGER PRIMARY KEY, world VARCHAR UNIQUE, last_update DATETIME,
            last_check DATETIME, data JSON);
         CREATE TABLE scraping_config (id INTEGER PRIMARY KEY, config JSON NOT NULL, updated_at DATETIME);",
    )
    .expect("schema");
    let tx = c.unchecked_transaction().expect("tx");
    for u in 0..UPDATES {
        let t = update(u).format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        for i in 0..PLAYERS {
            if let Some(g) = gain(i, u) {
                let world = if i % 2 == 0 { "Auroria" } else { "Spectrum" };
                tx.execute(
                    "INSERT INTO deltas (name, deltaexp, update_time, world, guild) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![name(i), g, t, world, format!("Ascended {world}")],
                )
                .expect("delta");
            }
        }
    }
    tx.execute(
        "INSERT INTO players (name, exp, last_update, world, guild) VALUES ('Cado', 999, '2026-01-04 13:20:00.000000', 'Spectrum', 'Ascended Spectrum')",
        [],
    )
    .expect("player");
    tx.execute(
        "INSERT INTO vips (name, world) VALUES ('Cado', 'Spectrum')",
        [],
    )
    .expect("vip");
    tx.execute(
        "INSERT INTO vip_data (name, world, today_exp, today_online) VALUES ('Cado', 'Spectrum', 5000, 42.0)",
        [],
    )
    .expect("vip data");
    tx.execute(
        "INSERT INTO vip_deltas (name, world, date, delta_exp, delta_online, update_time)
         VALUES ('Cado', 'Spectrum', '2026-01-04', 500, 5.0, '2026-01-04 12:00:00.000000')",
        [],
    )
    .expect("vip delta");
    tx.execute_batch(
        "INSERT INTO makers (name, world) VALUES ('Fazedor', 'Spectrum'), ('Sem Main', 'Auroria');
         INSERT INTO maker_data (name, world, today_exp, today_online) VALUES ('Fazedor', 'Spectrum', 100, 30.0);
         INSERT INTO maker_deltas (name, world, date, delta_exp, delta_online, update_time)
         VALUES ('Fazedor', 'Spectrum', '2026-01-04', 0, 12.0, '2026-01-04 12:10:00.000000');",
    )
    .expect("makers");
    tx.execute(
        "INSERT INTO status_data (world, data) VALUES ('Auroria', '{}')",
        [],
    )
    .expect("status");
    tx.execute(
        "INSERT INTO scraping_config (config) VALUES ('[{\"world\": \"Auroria\", \"guilds\": [\"Ascended Auroria\"]}]')",
        [],
    )
    .expect("config");
    tx.commit().expect("commit");
}

async fn sqlite_file_imports_with_worlds(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ringts.db");
    write_sqlite(&file);
    // The makers' mains were in the CSV beside the database.
    std::fs::write(
        dir.path().join("ref_main_maker.csv"),
        "main,main_world,maker,maker_world\nCado,Spectrum,Fazedor,Spectrum\n",
    )
    .expect("ref_main_maker.csv");
    let store = db.open().await;
    let summary = run(&store, &options(&file, false), false)
        .await
        .expect("import");
    let w = &summary.written;
    let deltas: usize = w.deltas.values().sum();
    assert_eq!(summary.read.get("deltas"), Some(&deltas));
    assert!(deltas > 3_000, "{deltas}");
    assert_eq!(w.deltas.len(), 2, "two worlds: {:?}", w.deltas);
    assert_eq!(w.runs.get("Spectrum"), Some(&UPDATES));
    assert_eq!(
        (w.watched, w.vip_daily, w.vip_deltas, w.makers),
        (1, 2, 2, 2)
    );
    let makers = store.makers(None).await.expect("makers");
    assert_eq!(
        makers
            .iter()
            .map(|m| (m.name.as_str(), m.main.as_deref(), m.main_world.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("Sem Main", None, None),
            ("Fazedor", Some("Cado"), Some("Spectrum"))
        ]
    );
    let online = store
        .maker_deltas(None, None, 10)
        .await
        .expect("maker deltas");
    assert_eq!(
        online
            .iter()
            .map(|d| (d.name.as_str(), d.delta_online))
            .collect::<Vec<_>>(),
        [("Fazedor", 12)]
    );
    assert!(
        summary.notes.iter().any(|n| n.contains("status_data"))
            && summary.notes.iter().any(|n| n.contains("scraping_config")),
        "{:?}",
        summary.notes
    );
    let cado = store.players("Spectrum").await.expect("players");
    assert_eq!(
        cado.iter()
            .map(|p| (p.name.as_str(), p.experience))
            .collect::<Vec<_>>(),
        [("Cado", 999)]
    );
    assert_eq!(
        store
            .player_names(Some("Spectrum"), Some("Ascended Spectrum"))
            .await
            .expect("names")
            .len(),
        PLAYERS / 2
    );
    let day = store.vip_daily(None, None).await.expect("daily");
    assert_eq!((day[0].raw_xp, day[0].online_minutes), (5_000, 42));
    let again = run(&store, &options(&file, false), false)
        .await
        .expect("re-run");
    assert_eq!(again.written, Default::default());
    assert_eq!(
        NaiveDate::from_ymd_opt(2026, 1, 4),
        Some(store.vip_deltas(None, None, 1).await.expect("vd")[0].date)
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::store::TestDb::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::store::TestDb::postgres().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    data_folder_imports_once,
    a_bad_row_fails_the_whole_import,
    sqlite_file_imports_with_worlds,
);

fn import_cmd(config: &Path, from: &Path, extra: &[&str]) -> std::process::Output {
    command(["import", "--config"])
        .arg(config)
        .arg("--from")
        .arg(from)
        .args(extra)
        .output()
        .expect("worldpool import runs")
}

#[test]
fn the_command_prints_a_summary_and_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let history = write_folder(&data);
    let config = dir.path().join("worlds.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://{}/wp.db\"\n\n[[worlds]]\nname = \"{WORLD}\"\nguilds = [\"{GUILD}\"]\n",
            dir.path().display()
        ),
    )
    .expect("config");

    let out = import_cmd(&config, &data, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was written") && err.contains("--default-world"),
        "{err}"
    );

    let defaults = ["--default-world", WORLD, "--default-guild", GUILD];
    let dry: Vec<&str> = defaults.iter().copied().chain(["--dry-run"]).collect();
    let out = import_cmd(&config, &data, &dry);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Dry run") && text.contains("would write"),
        "{text}"
    );
    let line = |text: &str, table: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(table))
            .unwrap_or_else(|| panic!("no `{table}` line in:\n{text}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let n = history.deltas.to_string();
    assert_eq!(line(&text, "deltas"), ["deltas", n.as_str(), n.as_str()]);

    let out = import_cmd(&config, &data, &defaults);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Imported"), "{text}");
    let world_line = line(&text, WORLD);
    assert_eq!(world_line[1], history.players.to_string(), "{text}");
    assert_eq!(world_line[2], n, "{text}");

    let out = import_cmd(&config, &data, &defaults);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line(&text, "deltas"), ["deltas", n.as_str(), "0"], "{text}");

    let out = import_cmd(&config, dir.path().join("missing").as_path(), &defaults);
    assert_eq!(out.status.code(), Some(1));
}
