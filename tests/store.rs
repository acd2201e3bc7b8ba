//! Store conformance: the same test functions run against SQLite and an
//! ephemeral PostgreSQL (tests/helper/pg.rs).

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use worldpool::store::{NewRun, PassKind, ScrapedPlayer, Store, WriteOutcome};

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
    assert_eq!(a.schema_version().await.expect("version"), 2);
    assert_eq!(b.schema_version().await.expect("version"), 2);
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
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
);
