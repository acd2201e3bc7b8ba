//! SQLite backend: one connection per process (WAL, busy timeout; several
//! worker processes write the same file), blocking calls on the blocking pool.
//! The API's store also has read-only connections on threads of their own
//! ([`readers`]): its reads never wait behind a write or an export, and
//! never hold the API runtime's blocking threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::dialect::Dialect;
use super::logic::{PassKind, compute_deltas, dedupe_players, pass_kind};
use super::{NewRun, StoreError, WorldState, WriteOutcome, parse_time, query, row};

mod exec;
mod migrations;
mod readers;

/// Versioned migrations, applied in order, each once. Never edit one that
/// shipped: append.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    world TEXT NOT NULL,
    update_time TEXT NOT NULL,            -- RFC 3339, site offset explicit
    started_at TEXT NOT NULL,             -- RFC 3339 UTC
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    rows INTEGER NOT NULL DEFAULT 0,
    deltas INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE UNIQUE INDEX runs_ok_once ON runs (world, update_time) WHERE status = 'ok';
CREATE INDEX runs_by_world ON runs (world, id);
CREATE TABLE players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    guild TEXT NOT NULL,
    vocation TEXT NOT NULL,
    level INTEGER NOT NULL,
    experience INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (world, name)
);
CREATE TABLE deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    guild TEXT NOT NULL,
    delta INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    previous_update_time TEXT
);
CREATE INDEX deltas_by_world ON deltas (world, id);
CREATE INDEX deltas_by_guild ON deltas (guild, id);
CREATE TABLE world_state (
    world TEXT PRIMARY KEY,
    last_update_time TEXT,
    last_rebase TEXT,
    updated_at TEXT NOT NULL
);
"#,
    ),
    (2, migrations::MIGRATION_2),
    (3, migrations::MIGRATION_3),
    (4, migrations::MIGRATION_4),
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Read-only connections (the API's store; none elsewhere).
    readers: Option<Arc<readers::Readers>>,
    /// Places of heavy reads among the readers (with the readers).
    lane: Option<Arc<super::lane::HeavyLane>>,
    /// Nice value of the read threads (readers, exports).
    read_nice: i32,
    /// Heavy read threads under `SCHED_IDLE` ([`super::ReadSettings::background`]).
    read_background: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// SQLite errors: busy, locked, I/O and open failures and a full disk
/// (`SQLITE_FULL`: the write is retried once space is back, the scrape kept
/// meanwhile) are transient; everything else (constraints, corruption,
/// schema or type mismatches) is permanent.
fn db(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let transient = matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::CannotOpen | C::DiskFull
        )
    );
    let message = format!("sqlite: {e}");
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Rejected(message)
    }
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn site_text(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn utc_parse(text: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(text).map(|t| t.with_timezone(&Utc))
}

/// Longest wait for a lock another connection holds.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// SQLite's busy handler: sleep 1 ms and try again, until [`BUSY_WAIT`].
fn busy_retry(attempts: i32) -> bool {
    if Duration::from_millis(u64::try_from(attempts).unwrap_or(0)) >= BUSY_WAIT {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

impl SqliteStore {
    /// Open (creating the parent directory) and migrate.
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(path);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let memory = p.as_os_str() == ":memory:";
            if !memory && let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let mut conn = Connection::open(&p)
                .map_err(|e| StoreError::Unavailable(format!("sqlite {}: {e}", p.display())))?;
            // Wait up to 10 s for another process's write, trying again
            // every millisecond: SQLite's own busy timeout sleeps 1, 2, 5,
            // 10 … 100 ms between tries, which costs tens of milliseconds
            // when the pool's workers, told of an update together, commit
            // together.
            conn.busy_handler(Some(busy_retry)).map_err(db)?;
            if !memory {
                let mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .map_err(db)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(path = %p.display(), %mode, "SQLite did not switch to WAL");
                }
            }
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(db)?;
            conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Rejected(format!("sqlite open task: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            readers: None,
            lane: None,
            read_nice: 0,
            read_background: false,
        })
    }

    /// [`SqliteStore::open`], with `reads.readers` read-only connections
    /// on threads of their own serving the reads, each within
    /// `reads.query_timeout` (an in-memory database has none: it cannot be
    /// shared).
    pub async fn open_reading(
        path: &str,
        reads: super::ReadSettings,
    ) -> Result<SqliteStore, StoreError> {
        let mut store = SqliteStore::open(path).await?;
        if store.path.as_os_str() != ":memory:" && reads.readers > 0 {
            let p = store.path.clone();
            let readers = tokio::task::spawn_blocking(move || {
                readers::Readers::open(
                    &p,
                    reads.readers,
                    reads.query_timeout,
                    reads.nice,
                    reads.background,
                    reads.cheap_nice,
                )
            })
            .await
            .map_err(|e| StoreError::Rejected(format!("sqlite open task: {e}")))??;
            store.readers = Some(Arc::new(readers));
            store.lane = Some(Arc::new(super::lane::HeavyLane::new(
                reads.readers,
                reads.query_timeout,
            )));
            store.read_nice = reads.nice;
            store.read_background = reads.background;
        }
        Ok(store)
    }

    /// The heavy lane of the readers (none without readers).
    pub(super) fn heavy_lane(&self) -> Option<&super::lane::HeavyLane> {
        self.lane.as_deref()
    }

    /// A read: on a read-only connection when the store has them,
    /// otherwise like [`SqliteStore::with`].
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(r) => r.run(super::lane::current(), f).await,
            None => self.with(f).await,
        }
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Rejected(format!("sqlite task: {e}")))?
    }

    /// Test hook: cap the database at the pages it has now (`PRAGMA
    /// max_page_count`), so a write that needs one more page fails with
    /// `SQLITE_FULL` as on a full disk; `false` lifts the cap.
    #[cfg(feature = "test-support")]
    pub(crate) async fn cap_pages(&self, cap: bool) -> Result<(), StoreError> {
        self.with(move |c| {
            let pages: i64 = if cap {
                c.query_row("PRAGMA page_count", [], |r| r.get(0))
                    .map_err(db)?
            } else {
                i64::from(u32::MAX - 1)
            };
            c.pragma_update(None, "max_page_count", pages).map_err(db)
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(db)
        })
        .await
    }

    pub async fn write_run(&self, run: &NewRun) -> Result<WriteOutcome, StoreError> {
        let run = run.clone();
        self.with(move |c| write_run(c, &run)).await
    }

    pub async fn record_failed_run(
        &self,
        world: &str,
        update_time: DateTime<FixedOffset>,
        started_at: DateTime<Utc>,
        error: &str,
    ) -> Result<i64, StoreError> {
        let (world, error) = (world.to_string(), error.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO runs (world, update_time, started_at, finished_at, status, rows, deltas, error)
                 VALUES (?1, ?2, ?3, ?4, 'failed', 0, 0, ?5)",
                params![
                    world,
                    site_text(update_time),
                    utc_text(started_at),
                    utc_text(Utc::now()),
                    error
                ],
            )
            .map_err(db)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Up to date already: read-only check, so opening never waits for a
    // writer (another worker may hold a write transaction).
    let latest = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    let current: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap_or(None);
    if current.is_some_and(|v| v >= latest) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(db)?;
    for (version, sql) in MIGRATIONS {
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                params![version],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if done.is_none() {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Rejected(format!("sqlite migration {version}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, utc_text(Utc::now())],
            )
            .map_err(db)?;
        }
    }
    tx.commit().map_err(db)
}

/// A world's state ([`query::runs::world_state`]).
fn read_state(c: &Connection, world: &str) -> Result<WorldState, StoreError> {
    let q = query::runs::world_state(Dialect::Sqlite, world);
    let rows = exec::fetch(c, &q, row::world_state_of)?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

fn write_run(c: &mut Connection, run: &NewRun) -> Result<WriteOutcome, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let ut = site_text(run.update_time);
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM runs WHERE world = ?1 AND update_time = ?2 AND status = 'ok'",
            params![run.world, ut],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if exists.is_some() {
        return Ok(WriteOutcome::AlreadyStored);
    }
    let state = read_state(&tx, &run.world)?;
    let kind = pass_kind(
        state.last_update_time,
        state.last_rebase,
        run.update_time,
        run.reset_minutes,
    );
    let players = dedupe_players(&run.players);
    let mut previous = HashMap::new();
    {
        let mut stmt = tx
            .prepare_cached("SELECT name, experience FROM players WHERE world = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map(params![run.world], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db)?;
        for row in rows {
            let (name, xp) = row.map_err(db)?;
            previous.insert(name, xp);
        }
    }
    let deltas = compute_deltas(&previous, &players, kind);
    tx.execute(
        "INSERT INTO runs (world, update_time, started_at, finished_at, status, rows, deltas, error)
         VALUES (?1, ?2, ?3, ?4, 'ok', ?5, ?6, NULL)",
        params![
            run.world,
            ut,
            utc_text(run.started_at),
            utc_text(Utc::now()),
            players.len() as i64,
            deltas.len() as i64
        ],
    )
    .map_err(db)?;
    let run_id = tx.last_insert_rowid();
    {
        let mut up = tx
            .prepare_cached(
                "INSERT INTO players (world, name, guild, vocation, level, experience, update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (world, name) DO UPDATE SET guild = excluded.guild,
                   vocation = excluded.vocation, level = excluded.level,
                   experience = excluded.experience, update_time = excluded.update_time",
            )
            .map_err(db)?;
        for p in &players {
            up.execute(params![
                run.world,
                p.name,
                p.guild,
                p.vocation,
                i64::from(p.level),
                p.experience,
                ut
            ])
            .map_err(db)?;
        }
        let prev_text = state.last_update_time.map(site_text);
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO deltas (run_id, world, name, guild, delta, update_time, previous_update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db)?;
        for d in &deltas {
            ins.execute(params![
                run_id, run.world, d.name, d.guild, d.delta, ut, prev_text
            ])
            .map_err(db)?;
        }
    }
    let rebase = match kind {
        PassKind::Rebase { boundary } => Some(boundary),
        _ => state.last_rebase,
    };
    tx.execute(
        "INSERT INTO world_state (world, last_update_time, last_rebase, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (world) DO UPDATE SET last_update_time = excluded.last_update_time,
           last_rebase = excluded.last_rebase, updated_at = excluded.updated_at",
        params![run.world, ut, rebase.map(site_text), utc_text(Utc::now())],
    )
    .map_err(db)?;
    #[cfg(feature = "test-support")]
    super::testing::stall_before_commit_blocking();
    tx.commit().map_err(db)?;
    Ok(WriteOutcome::Stored {
        run_id,
        rows: players.len(),
        deltas,
        kind,
    })
}

#[cfg(test)]
mod classification {
    use super::db;

    #[test]
    fn busy_and_full_are_transient_constraints_are_not() {
        let failure = |code: i32| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("x".into()))
        };
        assert!(db(failure(rusqlite::ffi::SQLITE_BUSY)).is_transient());
        assert!(db(failure(rusqlite::ffi::SQLITE_LOCKED)).is_transient());
        assert!(!db(failure(rusqlite::ffi::SQLITE_CONSTRAINT)).is_transient());
        assert!(db(failure(rusqlite::ffi::SQLITE_FULL)).is_transient());
        assert!(!db(rusqlite::Error::QueryReturnedNoRows).is_transient());
    }
}
