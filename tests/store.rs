//! Store conformance: the same test functions run against SQLite and an
//! ephemeral PostgreSQL (tests/helper/pg.rs).

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use worldpool::store::{
    ImportBatch, ImportDelta, ImportMaker, ImportPlayer, NewRun, PassKind, ScrapedPlayer,
    StatusPage, StatusRoutine, Store, TimeRange, VipDaily, VipDelta, VipReadOutcome, WorldState,
    WriteOutcome,
};

use crate::helper::pg;

/// A database for one test; the temp dir lives as long as it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/sub/dir/test.db", dir.path().display());
        TestDb {
            url,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        TestDb {
            url: pg::fresh_database_url().await,
            _dir: None,
        }
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.url, 2).await.expect("store opens")
    }
}

const RESET: u32 = 10 * 60 + 2;

fn at(d: u32, h: u32, m: u32) -> DateTime<FixedOffset> {
    FixedOffset::west_opt(3 * 3600)
        .expect("offset")
        .with_ymd_and_hms(2026, 11, d, h, m, 0)
        .single()
        .expect("time")
}

fn p(name: &str, guild: &str, xp: i64) -> ScrapedPlayer {
    ScrapedPlayer {
        name: name.into(),
        guild: guild.into(),
        vocation: "Elite Knight".into(),
        level: 300,
        experience: xp,
    }
}

fn run(world: &str, t: DateTime<FixedOffset>, players: Vec<ScrapedPlayer>) -> NewRun {
    NewRun {
        world: world.into(),
        update_time: t,
        started_at: Utc::now(),
        players,
        reset_minutes: RESET,
    }
}

async fn stored(store: &Store, r: &NewRun) -> (usize, Vec<(String, i64)>, PassKind) {
    match store.write_run(r).await.expect("write") {
        WriteOutcome::Stored {
            rows, deltas, kind, ..
        } => (
            rows,
            deltas.into_iter().map(|d| (d.name, d.delta)).collect(),
            kind,
        ),
        WriteOutcome::AlreadyStored => panic!("expected a stored run"),
    }
}

async fn xp_of(store: &Store, world: &str) -> Vec<(String, i64)> {
    store
        .players(world)
        .await
        .expect("players")
        .into_iter()
        .map(|p| (p.name, p.experience))
        .collect()
}

fn v(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(n, x)| (n.to_string(), *x)).collect()
}

async fn migrations_are_idempotent(db: TestDb) {
    let a = db.open().await;
    a.ping().await.expect("ping");
    let b = db.open().await;
    // PostgreSQL has the cluster's migration 5 too.
    let want = if a.backend() == "postgres" { 5 } else { 4 };
    assert_eq!(a.schema_version().await.expect("version"), want);
    assert_eq!(b.schema_version().await.expect("version"), want);
    assert!(a.runs(None, 10, None).await.expect("runs").is_empty());
}

async fn first_pass_then_deltas_only_for_changes(db: TestDb) {
    let s = db.open().await;
    let first = run(
        "Aurera",
        at(29, 9, 0),
        vec![p("Ana", "G", 100), p("Bob", "G", 0)],
    );
    let (rows, deltas, kind) = stored(&s, &first).await;
    assert_eq!((rows, kind), (2, PassKind::First));
    assert_eq!(
        deltas,
        v(&[("Ana", 100)]),
        "new player: whole value; zero: none"
    );
    assert_eq!(
        s.write_run(&first).await.expect("again"),
        WriteOutcome::AlreadyStored
    );

    let second = run(
        "Aurera",
        at(29, 9, 10),
        vec![p("Ana", "G", 150), p("Bob", "G", 0), p("Cid", "G", 7)],
    );
    let (rows, deltas, kind) = stored(&s, &second).await;
    assert_eq!((rows, kind), (3, PassKind::Normal));
    assert_eq!(deltas, v(&[("Ana", 50), ("Cid", 7)]));
    assert_eq!(
        xp_of(&s, "Aurera").await,
        v(&[("Ana", 150), ("Bob", 0), ("Cid", 7)])
    );

    let runs = s.runs(Some("Aurera"), 10, None).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].update_time, at(29, 9, 10));
    assert_eq!(runs[0].update_time.offset().local_minus_utc(), -3 * 3600);
    assert_eq!(
        (runs[0].status.as_str(), runs[0].rows, runs[0].deltas),
        ("ok", 3, 2)
    );
    assert!(runs[0].finished_at.is_some());
    let d = s
        .deltas(Some("Aurera"), None, 10, None)
        .await
        .expect("deltas");
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].update_time, at(29, 9, 10));
    assert_eq!(d[0].previous_update_time, Some(at(29, 9, 0)));
    assert_eq!(d[2].previous_update_time, None);
    let state = s.world_state("Aurera").await.expect("state");
    assert_eq!(state.last_update_time, Some(at(29, 9, 10)));
}

async fn player_in_two_guilds_counts_once(db: TestDb) {
    let s = db.open().await;
    let r = run(
        "Aurera",
        at(29, 9, 0),
        vec![
            p("Zé", "Red Rose", 10),
            p("Ana", "Red Rose", 5),
            p("Zé", "Nova Ordem", 10),
        ],
    );
    let (rows, deltas, _) = stored(&s, &r).await;
    assert_eq!(rows, 2);
    assert_eq!(deltas.len(), 2);
    let players = s.players("Aurera").await.expect("players");
    let ze = players.iter().find(|p| p.name == "Zé").expect("Zé stored");
    assert_eq!(ze.guild, "Red Rose");
}

async fn daily_reset_rebases_once_and_survives_restart(db: TestDb) {
    let s = db.open().await;
    stored(&s, &run("W", at(29, 9, 50), vec![p("A", "G", 1000)])).await;
    let (_, d, kind) = stored(&s, &run("W", at(29, 10, 0), vec![p("A", "G", 1200)])).await;
    assert_eq!((d, kind), (v(&[("A", 200)]), PassKind::Normal));
    // First update after 10:02: counters were zeroed; re-base, no deltas.
    let (rows, d, kind) = stored(
        &s,
        &run("W", at(29, 10, 10), vec![p("A", "G", 30), p("N", "G", 5)]),
    )
    .await;
    assert_eq!(rows, 2);
    assert!(d.is_empty(), "no deltas on the re-basing pass: {d:?}");
    assert_eq!(
        kind,
        PassKind::Rebase {
            boundary: at(29, 10, 2)
        }
    );
    assert_eq!(xp_of(&s, "W").await, v(&[("A", 30), ("N", 5)]));
    let state = s.world_state("W").await.expect("state");
    assert_eq!(state.last_rebase, Some(at(29, 10, 2)));
    drop(s);
    // A restart (new connection/pool) does not re-base again.
    let s = db.open().await;
    let (_, d, kind) = stored(
        &s,
        &run("W", at(29, 10, 20), vec![p("A", "G", 80), p("N", "G", 5)]),
    )
    .await;
    assert_eq!((d, kind), (v(&[("A", 50)]), PassKind::Normal));
    // Another world has its own reset state.
    let (_, d, kind) = stored(&s, &run("V", at(29, 10, 20), vec![p("A", "G", 80)])).await;
    assert_eq!((d, kind), (v(&[("A", 80)]), PassKind::First));
}

async fn failed_run_writes_only_its_row(db: TestDb) {
    let s = db.open().await;
    let id = s
        .record_failed_run("W", at(29, 9, 0), Utc::now(), "GET x: HTTP 503")
        .await
        .expect("record");
    assert!(id > 0);
    let runs = s.runs(None, 10, None).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "failed");
    assert_eq!(runs[0].error.as_deref(), Some("GET x: HTTP 503"));
    assert!(s.players("W").await.expect("players").is_empty());
    assert_eq!(
        s.world_state("W").await.expect("state").last_update_time,
        None
    );
    // The same update can still be stored once it succeeds.
    let (rows, _, kind) = stored(&s, &run("W", at(29, 9, 0), vec![p("A", "G", 1)])).await;
    assert_eq!((rows, kind), (1, PassKind::First));
}

async fn pagination_and_filters(db: TestDb) {
    let s = db.open().await;
    for i in 0..5u32 {
        stored(
            &s,
            &run(
                "W",
                at(29, 8, i),
                vec![
                    p("a", "G1", 30 + i64::from(i)),
                    p("A", "G1", 10 + i64::from(i)),
                    p("B", "G2", 20 + i64::from(i)),
                ],
            ),
        )
        .await;
        stored(
            &s,
            &run("X", at(29, 8, i), vec![p("C", "G1", 1 + i64::from(i))]),
        )
        .await;
    }
    let page1 = s.runs(Some("W"), 3, None).await.expect("runs");
    assert_eq!(page1.len(), 3);
    assert!(page1.windows(2).all(|w| w[0].id > w[1].id));
    let page2 = s.runs(Some("W"), 3, Some(page1[2].id)).await.expect("runs");
    assert_eq!(page2.len(), 2);
    assert!(page2.iter().all(|r| r.world == "W" && r.id < page1[2].id));
    let g2 = s.deltas(None, Some("G2"), 100, None).await.expect("deltas");
    assert_eq!(g2.len(), 5);
    assert!(g2.iter().all(|d| d.guild == "G2" && d.name == "B"));
    let wx = s.deltas(Some("X"), None, 2, None).await.expect("deltas");
    assert_eq!(wx.len(), 2);
    let rest = s
        .deltas(Some("X"), None, 100, Some(wx[1].id))
        .await
        .expect("deltas");
    assert_eq!(rest.len(), 3);
    let g1 = s
        .deltas(Some("W"), Some("G1"), 100, Some(g2[0].id))
        .await
        .expect("deltas");
    assert!(!g1.is_empty() && g1.windows(2).all(|w| w[0].id > w[1].id));
    assert!(
        g1.iter()
            .all(|d| d.world == "W" && d.guild == "G1" && d.id < g2[0].id)
    );

    // Times come back at the site's offset; names in byte order.
    let site = |t: DateTime<FixedOffset>| t.offset().local_minus_utc() == -3 * 3600;
    assert!(page1.iter().all(|r| site(r.update_time)
        && r.status == "ok"
        && r.finished_at.is_some_and(|f| f >= r.started_at)
        && r.error.is_none()
        && r.rows == 3));
    assert_eq!(page1[0].update_time, at(29, 8, 4));
    assert!(
        g2.iter()
            .all(|d| site(d.update_time) && d.previous_update_time.is_none_or(site))
    );
    assert!(g2[0].previous_update_time.is_some_and(site));
    let players = s.players("W").await.expect("players");
    let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "a"]);
    assert!(players.iter().all(|p| site(p.update_time)));
    let state = s.world_state("W").await.expect("state");
    assert_eq!(state.last_update_time, Some(at(29, 8, 4)));
    assert!(state.last_update_time.is_some_and(site));
    assert_eq!(state.epoch, None);
    assert_eq!(
        s.world_state("nowhere").await.expect("state"),
        WorldState::default()
    );
}

async fn concurrent_writers_store_an_update_once(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    let players: Vec<ScrapedPlayer> = (0..200).map(|i| p(&format!("P{i}"), "G", i)).collect();
    let r = run("W", at(29, 9, 0), players);
    let (x, y) = tokio::join!(a.write_run(&r), b.write_run(&r));
    let outcomes = [x.expect("a writes"), y.expect("b writes")];
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, WriteOutcome::Stored { .. }))
        .count();
    assert_eq!(stored, 1, "{outcomes:?}");
    let runs = a.runs(Some("W"), 10, None).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(a.players("W").await.expect("players").len(), 200);
}

async fn unreachable_database_is_an_error_not_a_panic(_db: TestDb) {
    // A port nothing listens on (bound then released).
    let port = crate::helper::free_port();
    let err = Store::open(&format!("postgres://postgres@127.0.0.1:{port}/x"), 1)
        .await
        .expect_err("nothing listens");
    assert!(err.to_string().contains("database unavailable"), "{err}");
    assert!(
        err.is_transient(),
        "an unreachable server is worth retrying"
    );
    let err = Store::open("mysql://x", 1).await.expect_err("bad url");
    assert!(err.to_string().contains("unsupported"), "{err}");
    assert!(!err.is_transient(), "a bad URL stays bad");
}

/// Three updates of two worlds: the feed, totals, names, ranges, series.
async fn compat_queries_read_the_history(db: TestDb) {
    let s = db.open().await;
    // Aurera: 09:00 first pass, 09:10 and 09:20 normal passes.
    stored(
        &s,
        &run(
            "Aurera",
            at(29, 9, 0),
            vec![p("Ana", "G", 100), p("Bob", "H", 50)],
        ),
    )
    .await;
    stored(
        &s,
        &run(
            "Aurera",
            at(29, 9, 10),
            vec![p("Ana", "G", 160), p("Bob", "H", 50), p("Cy", "G", 5)],
        ),
    )
    .await;
    stored(
        &s,
        &run(
            "Aurera",
            at(29, 9, 20),
            vec![p("Ana", "G", 170), p("Bob", "H", 90), p("Cy", "G", 5)],
        ),
    )
    .await;
    // Bellum: one pass at 09:15, a player named like one of Aurera's.
    stored(
        &s,
        &run(
            "Bellum",
            at(29, 9, 15),
            vec![p("Ana", "K", 7), p("Dee", "K", 3)],
        ),
    )
    .await;

    // The feed: newest update first, then by name.
    let feed = s.delta_feed(None, None, 100).await.expect("feed");
    let got: Vec<(&str, &str, i64)> = feed
        .iter()
        .map(|d| (d.world.as_str(), d.name.as_str(), d.delta))
        .collect();
    assert_eq!(
        got,
        [
            ("Aurera", "Ana", 10),
            ("Aurera", "Bob", 40),
            ("Bellum", "Ana", 7),
            ("Bellum", "Dee", 3),
            ("Aurera", "Ana", 60),
            ("Aurera", "Cy", 5),
            ("Aurera", "Ana", 100),
            ("Aurera", "Bob", 50),
        ]
    );
    assert_eq!(feed[0].previous_update_time, Some(at(29, 9, 10)));
    assert_eq!(feed[7].previous_update_time, None);
    assert_eq!(
        feed[0].update_time.offset(),
        at(29, 9, 0).offset(),
        "site offset kept"
    );
    let bellum = s.delta_feed(Some("Bellum"), None, 100).await.expect("feed");
    assert_eq!(bellum.len(), 2);
    let guild_g = s
        .delta_feed(Some("Aurera"), Some("G"), 2)
        .await
        .expect("feed");
    assert_eq!(
        guild_g.iter().map(|d| d.delta).collect::<Vec<_>>(),
        [10, 60]
    );

    // Totals per name (across worlds), largest first; a period; a world.
    let all = s
        .player_totals(TimeRange::all(), None, None)
        .await
        .expect("totals");
    let got: Vec<(&str, i64, i64, i64, i64)> = all
        .iter()
        .map(|t| (t.name.as_str(), t.total, t.updates, t.max, t.min))
        .collect();
    assert_eq!(
        got,
        [
            ("Ana", 177, 4, 100, 7),
            ("Bob", 90, 2, 50, 40),
            ("Cy", 5, 1, 5, 5),
            ("Dee", 3, 1, 3, 3)
        ]
    );
    let period = TimeRange::between(at(29, 9, 10), at(29, 9, 15));
    let some = s
        .player_totals(period, None, Some(2))
        .await
        .expect("totals");
    assert_eq!(
        some.iter()
            .map(|t| (t.name.as_str(), t.total))
            .collect::<Vec<_>>(),
        [("Ana", 67), ("Cy", 5)]
    );
    let open_end = TimeRange {
        from: Some(at(29, 9, 20)),
        to: None,
    };
    assert_eq!(
        s.player_totals(open_end, Some("Aurera"), None)
            .await
            .expect("totals")
            .len(),
        2
    );
    let empty = TimeRange::between(at(28, 0, 0), at(28, 1, 0));
    assert!(
        s.player_totals(empty, None, None)
            .await
            .expect("totals")
            .is_empty()
    );

    // Names and the time range.
    assert_eq!(
        s.player_names(None, None).await.expect("names"),
        ["Ana", "Bob", "Cy", "Dee"]
    );
    assert_eq!(
        s.player_names(Some("Aurera"), Some("H"))
            .await
            .expect("names"),
        ["Bob"]
    );
    assert!(
        s.player_names(Some("Nowhere"), None)
            .await
            .expect("names")
            .is_empty()
    );
    assert_eq!(
        s.delta_time_range(None, None).await.expect("range"),
        Some((at(29, 9, 0), at(29, 9, 20)))
    );
    assert_eq!(
        s.delta_time_range(Some("Bellum"), None)
            .await
            .expect("range"),
        Some((at(29, 9, 15), at(29, 9, 15)))
    );
    assert_eq!(
        s.delta_time_range(Some("Nowhere"), None)
            .await
            .expect("range"),
        None
    );

    // Series for graphs, and the latest experience by name.
    let series = s
        .player_deltas(&["Bob".into(), "Ana".into()], TimeRange::all())
        .await
        .expect("series");
    let got: Vec<(&str, &str, i64)> = series
        .iter()
        .map(|d| (d.name.as_str(), d.world.as_str(), d.delta))
        .collect();
    assert_eq!(
        got,
        [
            ("Ana", "Aurera", 100),
            ("Ana", "Aurera", 60),
            ("Ana", "Bellum", 7),
            ("Ana", "Aurera", 10),
            ("Bob", "Aurera", 50),
            ("Bob", "Aurera", 40)
        ]
    );
    let named = s.players_named(&["Ana".into()]).await.expect("players");
    assert_eq!(
        named
            .iter()
            .map(|p| (p.world.as_str(), p.experience))
            .collect::<Vec<_>>(),
        [("Aurera", 170), ("Bellum", 7)]
    );
    let named = s
        .players_named(&["Dee".into(), "Ana".into()])
        .await
        .expect("players");
    assert_eq!(
        named
            .iter()
            .map(|p| (p.name.as_str(), p.world.as_str()))
            .collect::<Vec<_>>(),
        [("Ana", "Aurera"), ("Ana", "Bellum"), ("Dee", "Bellum")],
        "by name, then world"
    );
    assert!(s.players_named(&[]).await.expect("players").is_empty());

    // The bounded forms the API uses: at most `limit` names or series
    // rows; a series over a period; a guild's time range.
    assert_eq!(
        s.player_names_at_most(None, Some("G"), Some(1))
            .await
            .expect("names"),
        ["Ana"]
    );
    assert_eq!(
        s.player_names_at_most(Some("Aurera"), None, Some(10))
            .await
            .expect("names"),
        ["Ana", "Bob", "Cy"]
    );
    let period = TimeRange::between(at(29, 9, 10), at(29, 9, 20));
    let some = s
        .player_deltas_at_most(&["Cy".into(), "Ana".into()], period, Some(3))
        .await
        .expect("series");
    assert_eq!(
        some.iter()
            .map(|d| (d.name.as_str(), d.delta, d.update_time))
            .collect::<Vec<_>>(),
        [
            ("Ana", 60, at(29, 9, 10)),
            ("Ana", 7, at(29, 9, 15)),
            ("Ana", 10, at(29, 9, 20))
        ]
    );
    assert!(
        s.player_deltas(&[], TimeRange::all())
            .await
            .expect("series")
            .is_empty()
    );
    assert_eq!(
        s.delta_time_range(None, Some("H")).await.expect("range"),
        Some((at(29, 9, 0), at(29, 9, 20)))
    );

    // Exports: every row, in order, in chunks.
    let mut rx = s.export_deltas();
    let mut exported = Vec::new();
    while let Some(chunk) = rx.recv().await {
        exported.extend(chunk.expect("chunk"));
    }
    assert_eq!(exported.len(), 8);
    assert!(exported.windows(2).all(|w| w[0].id < w[1].id));
    let mut rx = s.export_players();
    let mut players = Vec::new();
    while let Some(chunk) = rx.recv().await {
        players.extend(chunk.expect("chunk"));
    }
    let got: Vec<(&str, &str)> = players
        .iter()
        .map(|p| (p.world.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("Aurera", "Ana"),
            ("Aurera", "Bob"),
            ("Aurera", "Cy"),
            ("Bellum", "Ana"),
            ("Bellum", "Dee")
        ]
    );
}

async fn exports_stream_in_chunks_and_stop_when_dropped(db: TestDb) {
    let s = db.open().await;
    let players: Vec<ScrapedPlayer> = (0..2_500)
        .map(|i| p(&format!("P{i:05}"), "G", 10 + i))
        .collect();
    stored(&s, &run("W", at(29, 9, 0), players)).await;
    let mut rx = s.export_deltas();
    let mut sizes = Vec::new();
    while let Some(chunk) = rx.recv().await {
        sizes.push(chunk.expect("chunk").len());
    }
    assert_eq!(sizes, [1_000, 1_000, 500]);
    // A consumer that goes away stops the reader (no hang, no error).
    let mut rx = s.export_players();
    assert_eq!(
        rx.recv().await.expect("a chunk").expect("rows").len(),
        1_000
    );
    drop(rx);
    s.ping().await.expect("the store still answers");
}

async fn status_pages_are_kept_per_world(db: TestDb) {
    let s = db.open().await;
    assert!(s.status_pages().await.expect("pages").is_empty());
    let page = |world: &str, fetched: DateTime<FixedOffset>, behind: &str| StatusPage {
        world: world.into(),
        fetch_time: fetched,
        routines: vec![StatusRoutine {
            rotina: "Daily Raw Ranking".into(),
            last_update: Some(at(29, 9, 20)),
            time_outdated: behind.into(),
            status: "Atualizado".into(),
        }],
    };
    s.save_status_page(&page("Bellum", at(29, 9, 25), "5 min"))
        .await
        .expect("save");
    s.save_status_page(&page("Aurera", at(29, 9, 25), "5 min"))
        .await
        .expect("save");
    s.save_status_page(&page("Aurera", at(29, 9, 30), "10 min"))
        .await
        .expect("replace");
    let pages = s.status_pages().await.expect("pages");
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0], page("Aurera", at(29, 9, 30), "10 min"));
    assert_eq!(pages[1].world, "Bellum");
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
}

async fn watched_players_and_vip_reads(db: TestDb) {
    let s = db.open().await;
    assert!(s.add_watched("Aurera", "Zé Pequeno").await.expect("add"));
    assert!(!s.add_watched("Aurera", "Zé Pequeno").await.expect("again"));
    assert!(s.add_watched("Bellum", "Ana").await.expect("add"));
    let list = s.watched(None).await.expect("list");
    assert_eq!(
        list.iter()
            .map(|w| (w.world.as_str(), w.name.as_str()))
            .collect::<Vec<_>>(),
        [("Aurera", "Zé Pequeno"), ("Bellum", "Ana")]
    );
    assert!(Utc::now() - list[0].added_at < chrono::Duration::minutes(5));
    assert_eq!(s.watched(Some("Bellum")).await.expect("list").len(), 1);

    let daily = |xp: i64, online: i64, t: DateTime<FixedOffset>| VipDaily {
        world: "Aurera".into(),
        name: "Zé Pequeno".into(),
        date: day(29),
        raw_xp: xp,
        online_minutes: online,
        update_time: t,
    };
    assert!(
        !s.write_vip_read(&daily(1_000, 30, at(29, 11, 0)), None)
            .await
            .expect("first read")
    );
    let delta = VipDelta {
        world: "Aurera".into(),
        name: "Zé Pequeno".into(),
        date: day(29),
        delta_exp: 500,
        delta_online: 15,
        update_time: at(29, 11, 15),
        prev_update_time: Some(at(29, 11, 0)),
    };
    assert!(
        s.write_vip_read(&daily(1_500, 45, at(29, 11, 15)), Some(&delta))
            .await
            .expect("read")
    );
    assert!(
        !s.write_vip_read(&daily(1_500, 45, at(29, 11, 15)), Some(&delta))
            .await
            .expect("same read")
    );
    let rows = s.vip_daily(Some("Aurera"), None).await.expect("daily");
    assert_eq!(
        rows,
        [daily(1_500, 45, at(29, 11, 15))],
        "one row per day, the latest read"
    );
    assert_eq!(
        s.vip_deltas(None, Some("Zé Pequeno"), 10)
            .await
            .expect("deltas"),
        std::slice::from_ref(&delta)
    );
    assert!(
        s.vip_deltas(Some("Bellum"), None, 10)
            .await
            .expect("deltas")
            .is_empty()
    );

    assert!(
        s.remove_watched("Aurera", "Zé Pequeno")
            .await
            .expect("remove")
    );
    assert!(
        !s.remove_watched("Aurera", "Zé Pequeno")
            .await
            .expect("again")
    );
    assert_eq!(
        s.vip_deltas(None, None, 10)
            .await
            .expect("history stays")
            .len(),
        1
    );
}

/// A watched player's reads over a day and the next: baseline, deltas only
/// for changes, a replayed read stored once, re-based after the reset, and
/// the latest read of each player.
async fn vip_reads_record_baselines_deltas_and_replays_once(db: TestDb) {
    let s = db.open().await;
    let read = |name: &str, d: u32, xp: i64, online: i64, t: DateTime<FixedOffset>| VipDaily {
        world: "Aurera".into(),
        name: name.into(),
        date: day(d),
        raw_xp: xp,
        online_minutes: online,
        update_time: t,
    };
    let delta = |d: u32, xp: i64, online: i64, t, prev| VipDelta {
        world: "Aurera".into(),
        name: "Zé".into(),
        date: day(d),
        delta_exp: xp,
        delta_online: online,
        update_time: t,
        prev_update_time: Some(prev),
    };
    let rec = |r: VipDaily| {
        let s = s.clone();
        async move { s.record_vip_read(&r, RESET).await.expect("record") }
    };
    assert_eq!(
        rec(read("Zé", 29, 1_000, 30, at(29, 11, 0))).await,
        VipReadOutcome::Baseline
    );
    let d1 = delta(29, 500, 15, at(29, 11, 10), at(29, 11, 0));
    assert_eq!(
        rec(read("Zé", 29, 1_500, 45, at(29, 11, 10))).await,
        VipReadOutcome::Delta(d1.clone())
    );
    // The same read again (a replayed pass): nothing, even with other numbers.
    assert_eq!(
        rec(read("Zé", 29, 9_999, 99, at(29, 11, 10))).await,
        VipReadOutcome::AlreadyStored
    );
    assert_eq!(
        rec(read("Zé", 29, 1_500, 45, at(29, 11, 20))).await,
        VipReadOutcome::Unchanged
    );
    let d2 = delta(29, 0, 5, at(29, 11, 30), at(29, 11, 20));
    assert_eq!(
        rec(read("Zé", 29, 1_500, 50, at(29, 11, 30))).await,
        VipReadOutcome::Delta(d2.clone())
    );
    assert_eq!(
        rec(read("Bob", 29, 7, 1, at(29, 11, 30))).await,
        VipReadOutcome::Baseline
    );
    // The daily reset: a new day, re-based, no delta; then deltas again.
    assert_eq!(
        rec(read("Zé", 30, 100, 2, at(30, 10, 10))).await,
        VipReadOutcome::Rebased
    );
    let d3 = delta(30, 50, 3, at(30, 10, 20), at(30, 10, 10));
    assert_eq!(
        rec(read("Zé", 30, 150, 5, at(30, 10, 20))).await,
        VipReadOutcome::Delta(d3.clone())
    );
    assert_eq!(
        s.vip_deltas(Some("Aurera"), Some("Zé"), 10)
            .await
            .expect("deltas"),
        [d3, d2, d1],
        "newest first, each once"
    );
    let daily = s
        .vip_daily(Some("Aurera"), Some("Zé"))
        .await
        .expect("daily");
    assert_eq!(
        daily,
        [
            read("Zé", 30, 150, 5, at(30, 10, 20)),
            read("Zé", 29, 1_500, 50, at(29, 11, 30))
        ],
        "one row per day, its latest read"
    );
    assert_eq!(
        s.vip_latest(Some("Aurera")).await.expect("latest"),
        [
            read("Bob", 29, 7, 1, at(29, 11, 30)),
            read("Zé", 30, 150, 5, at(30, 10, 20))
        ]
    );
    assert!(
        s.vip_latest(Some("Bellum"))
            .await
            .expect("latest")
            .is_empty()
    );
    assert_eq!(s.vip_latest(None).await.expect("latest").len(), 2);
    // Concurrent replays of one read: one delta.
    let r = read("Zé", 30, 200, 9, at(30, 10, 30));
    let outcomes = futures_util::future::join_all((0..4).map(|_| {
        let (s, r) = (s.clone(), r.clone());
        async move { s.record_vip_read(&r, RESET).await.expect("record") }
    }))
    .await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, VipReadOutcome::Delta(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        s.vip_deltas(None, Some("Zé"), 10)
            .await
            .expect("deltas")
            .len(),
        4
    );
}

fn import_batch() -> ImportBatch {
    let delta = |name: &str,
                 d: i64,
                 t: DateTime<FixedOffset>,
                 prev: Option<DateTime<FixedOffset>>| ImportDelta {
        world: "Aurera".into(),
        name: name.into(),
        guild: "G".into(),
        delta: d,
        update_time: t,
        previous_update_time: prev,
    };
    ImportBatch {
        players: vec![ImportPlayer {
            world: "Aurera".into(),
            name: "Ana".into(),
            guild: "G".into(),
            experience: 150,
            update_time: at(28, 20, 10),
        }],
        deltas: vec![
            delta("Ana", 100, at(28, 20, 0), None),
            delta("Bob", 7, at(28, 20, 0), None),
            delta("Ana", 50, at(28, 20, 10), Some(at(28, 20, 0))),
        ],
        watched: vec![("Aurera".into(), "Ana".into())],
        vip_daily: vec![],
        vip_deltas: vec![],
        makers: vec![],
        resets: vec![("Aurera".into(), at(28, 10, 2))],
    }
}

fn maker(world: &str, name: &str, main: Option<(&str, &str)>) -> ImportMaker {
    ImportMaker {
        world: world.into(),
        name: name.into(),
        main: main.map(|(w, n)| (w.to_string(), n.to_string())),
    }
}

/// Makers: imported once, a known main replacing another and an unknown
/// one changing nothing; their deltas are the watched players' rows of
/// makers with minutes online.
async fn makers_are_imported_and_their_deltas_read(db: TestDb) {
    let s = db.open().await;
    let batch = ImportBatch {
        makers: vec![
            maker("Aurera", "Fazedor Um", Some(("Aurera", "Zé Pequeno"))),
            maker("Aurera", "Fazedor Dois", None),
            maker("Bellum", "Fazedor Três", Some(("Aurera", "Zé Pequeno"))),
        ],
        ..ImportBatch::default()
    };
    assert_eq!(s.import(&batch, false).await.expect("import").makers, 3);
    assert_eq!(
        s.import(&batch, false).await.expect("again"),
        Default::default()
    );
    let listed = |m: &[worldpool::store::Maker]| {
        m.iter()
            .map(|m| {
                (
                    m.world.clone(),
                    m.name.clone(),
                    m.main_world.clone().zip(m.main.clone()),
                )
            })
            .collect::<Vec<_>>()
    };
    let zé = Some(("Aurera".to_string(), "Zé Pequeno".to_string()));
    assert_eq!(
        listed(&s.makers(None).await.expect("makers")),
        [
            ("Aurera".into(), "Fazedor Dois".into(), None),
            ("Aurera".into(), "Fazedor Um".into(), zé.clone()),
            ("Bellum".into(), "Fazedor Três".into(), zé.clone()),
        ]
    );
    // A known main is stored over an unknown one, an unknown one keeps it.
    let later = ImportBatch {
        makers: vec![
            maker("Aurera", "Fazedor Dois", Some(("Bellum", "Imortal Um"))),
            maker("Aurera", "Fazedor Um", None),
        ],
        ..ImportBatch::default()
    };
    assert_eq!(s.import(&later, false).await.expect("later").makers, 1);
    assert_eq!(
        listed(&s.makers(Some("Aurera")).await.expect("makers")),
        [
            (
                "Aurera".into(),
                "Fazedor Dois".into(),
                Some(("Bellum".into(), "Imortal Um".into()))
            ),
            ("Aurera".into(), "Fazedor Um".into(), zé),
        ]
    );

    let delta = |name: &str, xp: i64, online: i64, m: u32| VipDelta {
        world: "Aurera".into(),
        name: name.into(),
        date: day(29),
        delta_exp: xp,
        delta_online: online,
        update_time: at(29, 11, m),
        prev_update_time: Some(at(29, 11, m - 10)),
    };
    let vip = ImportBatch {
        vip_deltas: vec![
            delta("Fazedor Um", 100, 10, 10),
            delta("Fazedor Um", 500, 0, 20),
            delta("Fazedor Um", 0, 5, 30),
            delta("Zé Pequeno", 700, 10, 30),
        ],
        ..ImportBatch::default()
    };
    assert_eq!(s.import(&vip, false).await.expect("reads").vip_deltas, 4);
    let minutes = |rows: Vec<VipDelta>| {
        rows.iter()
            .map(|d| (d.name.clone(), d.delta_online))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        minutes(s.maker_deltas(None, None, 10).await.expect("maker deltas")),
        [
            ("Fazedor Um".to_string(), 5),
            ("Fazedor Um".to_string(), 10)
        ],
        "makers only, minutes online only, newest first"
    );
    assert_eq!(
        s.maker_deltas(Some("Aurera"), Some("Fazedor Um"), 1)
            .await
            .expect("one")
            .len(),
        1
    );
    assert!(
        s.maker_deltas(Some("Bellum"), None, 10)
            .await
            .expect("none")
            .is_empty()
    );
}

async fn import_writes_once_and_dry_run_writes_nothing(db: TestDb) {
    let s = db.open().await;
    let batch = import_batch();
    let dry = s.import(&batch, true).await.expect("dry run");
    assert_eq!(dry.deltas.get("Aurera"), Some(&3));
    assert!(
        s.delta_feed(None, None, 10).await.expect("feed").is_empty(),
        "dry run wrote nothing"
    );
    assert_eq!(
        s.world_state("Aurera").await.expect("state"),
        Default::default()
    );

    let first = s.import(&batch, false).await.expect("import");
    assert_eq!(first, dry, "the dry run said exactly what the import wrote");
    assert_eq!(
        (
            first.runs.get("Aurera"),
            first.players.get("Aurera"),
            first.watched,
            first.world_states
        ),
        (Some(&2), Some(&1), 1, 1)
    );
    let runs = s.runs(Some("Aurera"), 10, None).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.status == "ok"));
    let state = s.world_state("Aurera").await.expect("state");
    assert_eq!(
        (state.last_update_time, state.last_rebase),
        (Some(at(28, 20, 10)), Some(at(28, 10, 2)))
    );

    let again = s.import(&batch, false).await.expect("re-import");
    assert_eq!(again, Default::default(), "nothing twice: {again:?}");
    assert_eq!(s.delta_feed(None, None, 10).await.expect("feed").len(), 3);

    // The next scrape continues from the imported state: a normal pass
    // with deltas against the imported experience.
    let (_, deltas, kind) =
        stored(&s, &run("Aurera", at(28, 20, 20), vec![p("Ana", "G", 170)])).await;
    assert_eq!((kind, deltas), (PassKind::Normal, v(&[("Ana", 20)])));
    // An older import never rewinds a newer player or world state.
    let mut old = import_batch();
    old.players[0].experience = 1;
    old.players[0].update_time = at(28, 20, 15);
    let w = s.import(&old, false).await.expect("older import");
    assert!(w.players.is_empty() && w.world_states == 0, "{w:?}");
    assert_eq!(xp_of(&s, "Aurera").await, v(&[("Ana", 170)]));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::TestDb::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::TestDb::postgres().await).await
                }
            )*
        }
    };
}

conformance!(
    migrations_are_idempotent,
    first_pass_then_deltas_only_for_changes,
    player_in_two_guilds_counts_once,
    daily_reset_rebases_once_and_survives_restart,
    failed_run_writes_only_its_row,
    pagination_and_filters,
    concurrent_writers_store_an_update_once,
    unreachable_database_is_an_error_not_a_panic,
    compat_queries_read_the_history,
    exports_stream_in_chunks_and_stop_when_dropped,
    status_pages_are_kept_per_world,
    watched_players_and_vip_reads,
    vip_reads_record_baselines_deltas_and_replays_once,
    import_writes_once_and_dry_run_writes_nothing,
    makers_are_imported_and_their_deltas_read,
);
