//! SQLite: migration 2 and what it serves — the replaced system's queries,
//! status pages, watched players, imports and streamed exports.
//!
//! Update times are stored as RFC 3339 text with the site's offset; a
//! virtual generated column `update_ts = unixepoch(update_time)` gives them
//! an order and an index that do not depend on how the offset is written.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::super::history::{
    EXPORT_BUFFER, EXPORT_CHUNK, PlayerTotal, RowChunks, StatusPage, StatusRoutine, TimeRange,
};
use super::super::import::{ImportBatch, ImportWritten, delta_updates, latest_per_world};
use super::super::logic::vip_outcome;
use super::super::vip::{Maker, VipDaily, VipDelta, VipReadOutcome, WatchedPlayer};
use super::super::{DeltaRow, PlayerRowStored, StoreError, parse_time};
use super::{SqliteStore, db, read_state, site_text, utc_parse, utc_text};

/// Migration 2: indexes for the replaced system's queries, one delta per
/// (world, player, update), imported runs, status pages, watched players.
pub(super) const MIGRATION_2: &str = r#"
ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'scrape';
ALTER TABLE deltas ADD COLUMN update_ts INTEGER
    GENERATED ALWAYS AS (unixepoch(update_time)) VIRTUAL;
CREATE UNIQUE INDEX deltas_once ON deltas (world, name, update_ts);
CREATE INDEX deltas_by_time ON deltas (update_ts DESC, name, delta);
CREATE INDEX deltas_by_world_time ON deltas (world, update_ts DESC, name);
CREATE INDEX deltas_by_guild_time ON deltas (guild, update_ts DESC, name);
CREATE INDEX deltas_by_name ON deltas (name, update_ts, delta);
CREATE INDEX deltas_by_world_name ON deltas (world, guild, name);
CREATE INDEX players_by_name ON players (name);
CREATE TABLE status_pages (
    world TEXT PRIMARY KEY,
    fetch_time TEXT NOT NULL,             -- RFC 3339, site offset
    routines TEXT NOT NULL                -- JSON array of StatusRoutine
);
CREATE TABLE watched_players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    added_at TEXT NOT NULL,               -- RFC 3339 UTC
    PRIMARY KEY (world, name)
);
CREATE TABLE vip_daily (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date TEXT NOT NULL,                   -- YYYY-MM-DD, the site's day
    raw_xp INTEGER NOT NULL,
    online_minutes INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (world, name, date)
);
CREATE TABLE vip_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date TEXT NOT NULL,
    delta_exp INTEGER NOT NULL,
    delta_online INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    prev_update_time TEXT,
    update_ts INTEGER GENERATED ALWAYS AS (unixepoch(update_time)) VIRTUAL
);
CREATE UNIQUE INDEX vip_deltas_once ON vip_deltas (world, name, update_ts);
CREATE INDEX vip_deltas_by_time ON vip_deltas (update_ts DESC);
"#;

/// Migration 3: the watched players' deltas by player and by world (the
/// `name=` and `world=` filters of `/api/vip/deltas`, the VIP graph).
pub(super) const MIGRATION_3: &str = r#"
CREATE INDEX vip_deltas_by_name ON vip_deltas (name, update_ts DESC);
CREATE INDEX vip_deltas_by_world_time ON vip_deltas (world, update_ts DESC);
"#;

/// Migration 4: makers, the watched players tied to a main character
/// (their reads are `vip_daily` / `vip_deltas` rows like any watched
/// player's).
pub(super) const MIGRATION_4: &str = r#"
CREATE TABLE makers (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    main TEXT,                            -- NULL: not known
    main_world TEXT,
    added_at TEXT NOT NULL,               -- RFC 3339 UTC
    PRIMARY KEY (world, name)
);
"#;

/// Who is a maker, for a query on `vip_deltas`.
const IS_MAKER: &str = "(world, name) IN (SELECT world, name FROM makers)";

const DELTA_COLUMNS: &str = "id, world, name, guild, delta, update_time, previous_update_time";
const PLAYER_COLUMNS: &str = "world, name, guild, vocation, level, experience, update_time";

type RawDelta = (i64, String, String, String, i64, String, Option<String>);

fn raw_delta(r: &Row<'_>) -> rusqlite::Result<RawDelta> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn delta_of(raw: RawDelta) -> Result<DeltaRow, StoreError> {
    let (id, world, name, guild, delta, ut, prev) = raw;
    Ok(DeltaRow {
        id,
        world,
        name,
        guild,
        delta,
        update_time: parse_time(&ut)?,
        previous_update_time: prev.as_deref().map(parse_time).transpose()?,
    })
}

type RawPlayer = (String, String, String, String, i64, i64, String);

fn raw_player(r: &Row<'_>) -> rusqlite::Result<RawPlayer> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn player_of(raw: RawPlayer) -> Result<PlayerRowStored, StoreError> {
    let (world, name, guild, vocation, level, experience, ut) = raw;
    Ok(PlayerRowStored {
        world,
        name,
        guild,
        vocation,
        level,
        experience,
        update_time: parse_time(&ut)?,
    })
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_date(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StoreError::Rejected(format!("bad stored date `{text}`: {e}")))
}

/// A WHERE clause built from the filters that are set (so each
/// combination gets a plan on its own index).
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    fn eq(mut self, column: &str, value: Option<&str>) -> Where {
        if let Some(v) = value {
            self.params.push(Value::Text(v.to_string()));
            self.clauses
                .push(format!("{column} = ?{}", self.params.len()));
        }
        self
    }

    fn range(mut self, range: TimeRange) -> Where {
        if let Some(from) = range.from {
            self.params.push(Value::Integer(from.timestamp()));
            self.clauses
                .push(format!("update_ts >= ?{}", self.params.len()));
        }
        if let Some(to) = range.to {
            self.params.push(Value::Integer(to.timestamp()));
            self.clauses
                .push(format!("update_ts <= ?{}", self.params.len()));
        }
        self
    }

    fn any_of(mut self, column: &str, values: &[String]) -> Where {
        let mut marks = Vec::with_capacity(values.len());
        for v in values {
            self.params.push(Value::Text(v.clone()));
            marks.push(format!("?{}", self.params.len()));
        }
        self.clauses
            .push(format!("{column} IN ({})", marks.join(", ")));
        self
    }

    /// A condition without parameters.
    fn also(mut self, clause: &str) -> Where {
        self.clauses.push(clause.to_string());
        self
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// Append a parameter; returns its placeholder.
    fn push(&mut self, v: Value) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }
}

fn query_deltas(c: &Connection, sql: &str, params: &[Value]) -> Result<Vec<DeltaRow>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), raw_delta)
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(delta_of(row.map_err(db)?)?);
    }
    Ok(out)
}

impl SqliteStore {
    pub async fn delta_feed(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let mut w = Where::default().eq("world", world).eq("guild", guild);
        let lim = w.push(Value::Integer(i64::from(limit)));
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM deltas {} ORDER BY update_ts DESC, name LIMIT {lim}",
            w.sql()
        );
        self.read(move |c| query_deltas(c, &sql, &w.params)).await
    }

    pub async fn player_totals(
        &self,
        range: TimeRange,
        world: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<PlayerTotal>, StoreError> {
        let mut w = Where::default().eq("world", world).range(range);
        let lim = w.push(Value::Integer(limit.map_or(-1, i64::from)));
        let sql = format!(
            "SELECT name, SUM(delta), COUNT(*), MAX(delta), MIN(delta) FROM deltas {}
             GROUP BY name ORDER BY 2 DESC, name LIMIT {lim}",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), |r| {
                    Ok(PlayerTotal {
                        name: r.get(0)?,
                        total: r.get(1)?,
                        updates: r.get(2)?,
                        max: r.get(3)?,
                        min: r.get(4)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    pub async fn player_names(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, StoreError> {
        let mut w = Where::default().eq("world", world).eq("guild", guild);
        let lim = w.push(Value::Integer(limit.map_or(-1, i64::from)));
        let sql = format!(
            "SELECT DISTINCT name FROM deltas {} ORDER BY name LIMIT {lim}",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), |r| r.get(0))
                .map_err(db)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db)
        })
        .await
    }

    pub async fn delta_time_range(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
    ) -> Result<Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)>, StoreError> {
        let w = Where::default().eq("world", world).eq("guild", guild);
        let first = format!(
            "SELECT update_time FROM deltas {} ORDER BY update_ts ASC LIMIT 1",
            w.sql()
        );
        let last = format!(
            "SELECT update_time FROM deltas {} ORDER BY update_ts DESC LIMIT 1",
            w.sql()
        );
        self.read(move |c| {
            let one = |sql: &str| -> Result<Option<String>, StoreError> {
                c.query_row(sql, rusqlite::params_from_iter(&w.params), |r| r.get(0))
                    .optional()
                    .map_err(db)
            };
            match (one(&first)?, one(&last)?) {
                (Some(a), Some(b)) => Ok(Some((parse_time(&a)?, parse_time(&b)?))),
                _ => Ok(None),
            }
        })
        .await
    }

    pub async fn player_deltas(
        &self,
        names: &[String],
        range: TimeRange,
        limit: Option<u32>,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let mut w = Where::default().any_of("name", names).range(range);
        let lim = w.push(Value::Integer(limit.map_or(-1, i64::from)));
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM deltas {} ORDER BY name, update_ts, id LIMIT {lim}",
            w.sql()
        );
        self.read(move |c| query_deltas(c, &sql, &w.params)).await
    }

    pub async fn players_named(
        &self,
        names: &[String],
    ) -> Result<Vec<PlayerRowStored>, StoreError> {
        let w = Where::default().any_of("name", names);
        let sql = format!(
            "SELECT {PLAYER_COLUMNS} FROM players {} ORDER BY name, world",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), raw_player)
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(player_of(row.map_err(db)?)?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn save_status_page(&self, page: &StatusPage) -> Result<(), StoreError> {
        let routines = serde_json::to_string(&page.routines)
            .map_err(|e| StoreError::Rejected(format!("status page: {e}")))?;
        let (world, fetch) = (page.world.clone(), site_text(page.fetch_time));
        self.with(move |c| {
            c.execute(
                "INSERT INTO status_pages (world, fetch_time, routines) VALUES (?1, ?2, ?3)
                 ON CONFLICT (world) DO UPDATE SET fetch_time = excluded.fetch_time,
                   routines = excluded.routines",
                params![world, fetch, routines],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    pub async fn status_pages(&self) -> Result<Vec<StatusPage>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT world, fetch_time, routines FROM status_pages ORDER BY world",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (world, fetch, routines) = row.map_err(db)?;
                let routines: Vec<StatusRoutine> = serde_json::from_str(&routines)
                    .map_err(|e| StoreError::Rejected(format!("stored status page: {e}")))?;
                out.push(StatusPage {
                    world,
                    fetch_time: parse_time(&fetch)?,
                    routines,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Stream a query's rows in chunks from a blocking task. A file
    /// database is read through a connection of its own (a WAL snapshot:
    /// writers and other queries go on meanwhile); an in-memory one through
    /// the shared connection.
    fn export<T, F>(&self, sql: &'static str, map: F) -> RowChunks<T>
    where
        T: Send + 'static,
        F: Fn(&Row<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(EXPORT_BUFFER);
        let path = self.path.clone();
        let shared = self.conn.clone();
        let nice = self.read_nice;
        let work = move || {
            pool::priority::lower_thread_priority(nice);
            let run = |c: &Connection| -> Result<(), StoreError> {
                let mut stmt = c.prepare(sql).map_err(db)?;
                let mut rows = stmt.query([]).map_err(db)?;
                let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
                while let Some(row) = rows.next().map_err(db)? {
                    chunk.push(map(row)?);
                    if chunk.len() == EXPORT_CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
                        if tx.blocking_send(Ok(full)).is_err() {
                            return Ok(()); // the client went away
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(Ok(chunk));
                }
                Ok(())
            };
            let result = if path.as_os_str() == ":memory:" {
                let guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                run(&guard)
            } else {
                Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(db)
                .and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(db)?;
                    run(&c)
                })
            };
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        };
        // A thread of its own: an export waits on its client for as long
        // as the client reads, and must not hold one of the runtime's
        // blocking threads meanwhile. (The API bounds exports at once.)
        if let Err(e) = std::thread::Builder::new()
            .name("store-export".to_string())
            .spawn(work)
        {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(Err(StoreError::Unavailable(format!(
                "cannot start an export: {e}"
            ))));
            return rx;
        }
        rx
    }

    pub fn export_deltas(&self) -> RowChunks<DeltaRow> {
        self.export(
            "SELECT id, world, name, guild, delta, update_time, previous_update_time
             FROM deltas ORDER BY id",
            |r| delta_of(raw_delta(r).map_err(db)?),
        )
    }

    pub fn export_players(&self) -> RowChunks<PlayerRowStored> {
        self.export(
            "SELECT world, name, guild, vocation, level, experience, update_time
             FROM players ORDER BY world, name",
            |r| player_of(raw_player(r).map_err(db)?),
        )
    }

    // ----- watched players -------------------------------------------------

    pub async fn add_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let (world, name) = (world.to_string(), name.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO watched_players (world, name, added_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![world, name, utc_text(Utc::now())],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    pub async fn remove_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let (world, name) = (world.to_string(), name.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM watched_players WHERE world = ?1 AND name = ?2",
                params![world, name],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    pub async fn watched(&self, world: Option<&str>) -> Result<Vec<WatchedPlayer>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT world, name, added_at FROM watched_players {} ORDER BY world, name",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (world, name, added) = row.map_err(db)?;
                out.push(WatchedPlayer {
                    world,
                    name,
                    added_at: utc_parse(&added)?,
                });
            }
            Ok(out)
        })
        .await
    }

    pub async fn write_vip_read(
        &self,
        daily: &VipDaily,
        delta: Option<&VipDelta>,
    ) -> Result<bool, StoreError> {
        let (daily, delta) = (daily.clone(), delta.cloned());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            upsert_vip_daily(&tx, &daily, false)?;
            let stored = match &delta {
                Some(d) => insert_vip_delta(&tx, d)?,
                None => false,
            };
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    pub async fn record_vip_read(
        &self,
        read: &VipDaily,
        reset_minutes: u32,
    ) -> Result<VipReadOutcome, StoreError> {
        let read = read.clone();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let prev = latest_vip_read(&tx, &read.world, &read.name)?;
            let outcome = vip_outcome(prev.as_ref(), &read, reset_minutes);
            if outcome == VipReadOutcome::AlreadyStored {
                return Ok(outcome); // dropping the transaction rolls it back
            }
            upsert_vip_daily(&tx, &read, true)?;
            if let VipReadOutcome::Delta(d) = &outcome
                && !insert_vip_delta(&tx, d)?
            {
                return Ok(VipReadOutcome::AlreadyStored);
            }
            #[cfg(feature = "test-support")]
            super::super::testing::stall_vip_before_commit_blocking(&read.name);
            tx.commit().map_err(db)?;
            Ok(outcome)
        })
        .await
    }

    pub async fn vip_latest(&self, world: Option<&str>) -> Result<Vec<VipDaily>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT {VIP_DAILY_COLUMNS} FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY world, name
                 ORDER BY unixepoch(update_time) DESC, date DESC) AS newest
               FROM vip_daily {}) WHERE newest = 1",
            w.sql()
        );
        self.read(move |c| query_vip_daily(c, &sql, &w.params))
            .await
    }

    pub async fn vip_daily(
        &self,
        world: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<VipDaily>, StoreError> {
        let w = Where::default().eq("world", world).eq("name", name);
        let sql = format!(
            "SELECT {VIP_DAILY_COLUMNS} FROM vip_daily {} ORDER BY date DESC, world, name",
            w.sql()
        );
        self.read(move |c| query_vip_daily(c, &sql, &w.params))
            .await
    }

    pub async fn vip_deltas(
        &self,
        world: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        let w = Where::default().eq("world", world).eq("name", name);
        self.vip_deltas_where(w, limit).await
    }

    pub async fn maker_deltas(
        &self,
        world: Option<&str>,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        let w = Where::default()
            .eq("world", world)
            .eq("name", name)
            .also(IS_MAKER)
            .also("delta_online <> 0");
        self.vip_deltas_where(w, limit).await
    }

    /// `vip_deltas` rows matching `w`, newest first.
    async fn vip_deltas_where(
        &self,
        mut w: Where,
        limit: u32,
    ) -> Result<Vec<VipDelta>, StoreError> {
        let lim = w.push(Value::Integer(i64::from(limit)));
        let sql = format!(
            "SELECT world, name, date, delta_exp, delta_online, update_time, prev_update_time
             FROM vip_deltas {} ORDER BY update_ts DESC, world, name LIMIT {lim}",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (world, name, date, delta_exp, delta_online, ut, prev) = row.map_err(db)?;
                out.push(VipDelta {
                    world,
                    name,
                    date: parse_date(&date)?,
                    delta_exp,
                    delta_online,
                    update_time: parse_time(&ut)?,
                    prev_update_time: prev.as_deref().map(parse_time).transpose()?,
                });
            }
            Ok(out)
        })
        .await
    }

    pub async fn makers(&self, world: Option<&str>) -> Result<Vec<Maker>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT world, name, main, main_world, added_at FROM makers {} ORDER BY world, name",
            w.sql()
        );
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(db)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&w.params), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (world, name, main, main_world, added) = row.map_err(db)?;
                out.push(Maker {
                    world,
                    name,
                    main,
                    main_world,
                    added_at: utc_parse(&added)?,
                });
            }
            Ok(out)
        })
        .await
    }

    // ----- import ----------------------------------------------------------

    pub async fn import(
        &self,
        batch: &ImportBatch,
        dry_run: bool,
    ) -> Result<ImportWritten, StoreError> {
        let batch = batch.clone();
        self.with(move |c| import(c, &batch, dry_run)).await
    }
}

/// The columns [`raw_vip_daily`] reads, in its order.
const VIP_DAILY_COLUMNS: &str = "world, name, date, raw_xp, online_minutes, update_time";

type RawVipDaily = (String, String, String, i64, i64, String);

/// Every `vip_daily` row a query of [`VIP_DAILY_COLUMNS`] returns.
fn query_vip_daily(
    c: &Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<VipDaily>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), raw_vip_daily)
        .map_err(db)?;
    rows.map(|row| vip_daily_of(row.map_err(db)?)).collect()
}

fn raw_vip_daily(r: &Row<'_>) -> rusqlite::Result<RawVipDaily> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn vip_daily_of(raw: RawVipDaily) -> Result<VipDaily, StoreError> {
    let (world, name, date, raw_xp, online_minutes, ut) = raw;
    Ok(VipDaily {
        world,
        name,
        date: parse_date(&date)?,
        raw_xp,
        online_minutes,
        update_time: parse_time(&ut)?,
    })
}

/// The latest stored read of one player.
fn latest_vip_read(
    c: &Connection,
    world: &str,
    name: &str,
) -> Result<Option<VipDaily>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {VIP_DAILY_COLUMNS} FROM vip_daily
         WHERE world = ?1 AND name = ?2
         ORDER BY unixepoch(update_time) DESC, date DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row(params![world, name], raw_vip_daily).optional())
    .map_err(db)?
    .map(vip_daily_of)
    .transpose()
}

/// Insert or replace a day's numbers; with `only_newer`, a stored read of
/// that day that is as new or newer wins. Returns whether a row changed.
fn upsert_vip_daily(c: &Connection, d: &VipDaily, only_newer: bool) -> Result<bool, StoreError> {
    let guard = if only_newer {
        "WHERE unixepoch(excluded.update_time) > unixepoch(vip_daily.update_time)"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO vip_daily (world, name, date, raw_xp, online_minutes, update_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (world, name, date) DO UPDATE SET raw_xp = excluded.raw_xp,
           online_minutes = excluded.online_minutes, update_time = excluded.update_time {guard}"
    );
    c.prepare_cached(&sql)
        .and_then(|mut s| {
            s.execute(params![
                d.world,
                d.name,
                date_text(d.date),
                d.raw_xp,
                d.online_minutes,
                site_text(d.update_time)
            ])
        })
        .map(|n| n == 1)
        .map_err(db)
}

fn insert_vip_delta(c: &Connection, d: &VipDelta) -> Result<bool, StoreError> {
    c.prepare_cached(
        "INSERT INTO vip_deltas (world, name, date, delta_exp, delta_online, update_time, prev_update_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            d.world,
            d.name,
            date_text(d.date),
            d.delta_exp,
            d.delta_online,
            site_text(d.update_time),
            d.prev_update_time.map(site_text)
        ])
    })
    .map(|n| n == 1)
    .map_err(db)
}

fn bump(map: &mut std::collections::BTreeMap<String, usize>, world: &str, by: usize) {
    if by > 0 {
        *map.entry(world.to_string()).or_insert(0) += by;
    }
}

fn import(
    c: &mut Connection,
    batch: &ImportBatch,
    dry_run: bool,
) -> Result<ImportWritten, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let mut out = ImportWritten::default();
    let now = utc_text(Utc::now());

    // Runs: an existing successful run of the same update is reused.
    let mut run_ids: HashMap<(String, i64), i64> = HashMap::new();
    {
        let mut stmt = tx
            .prepare("SELECT id, world, unixepoch(update_time) FROM runs WHERE status = 'ok'")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (id, world, ts) = row.map_err(db)?;
            run_ids.insert((world, ts), id);
        }
    }
    for ((world, ts), (t, count)) in delta_updates(batch) {
        if run_ids.contains_key(&(world.clone(), ts)) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO runs (world, update_time, started_at, finished_at, status, rows, deltas, error, source)
             VALUES (?1, ?2, ?3, ?3, 'ok', ?4, ?4, NULL, 'import')",
        )
        .and_then(|mut s| s.execute(params![world, site_text(t), now, count as i64]))
        .map_err(db)?;
        bump(&mut out.runs, &world, 1);
        run_ids.insert((world, ts), tx.last_insert_rowid());
    }

    {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO deltas (run_id, world, name, guild, delta, update_time, previous_update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )
            .map_err(db)?;
        for d in &batch.deltas {
            let run_id = run_ids
                .get(&(d.world.clone(), d.update_time.timestamp()))
                .copied()
                .ok_or_else(|| StoreError::Rejected("import: a delta without its run".into()))?;
            let n = ins
                .execute(params![
                    run_id,
                    d.world,
                    d.name,
                    d.guild,
                    d.delta,
                    site_text(d.update_time),
                    d.previous_update_time.map(site_text)
                ])
                .map_err(db)?;
            bump(&mut out.deltas, &d.world, n);
        }

        let mut up = tx
            .prepare_cached(
                "INSERT INTO players (world, name, guild, vocation, level, experience, update_time)
                 VALUES (?1, ?2, ?3, '', 0, ?4, ?5)
                 ON CONFLICT (world, name) DO UPDATE SET guild = excluded.guild,
                   experience = excluded.experience, update_time = excluded.update_time
                 WHERE unixepoch(excluded.update_time) > unixepoch(players.update_time)",
            )
            .map_err(db)?;
        for p in &batch.players {
            let n = up
                .execute(params![
                    p.world,
                    p.name,
                    p.guild,
                    p.experience,
                    site_text(p.update_time)
                ])
                .map_err(db)?;
            bump(&mut out.players, &p.world, n);
        }

        let mut watch = tx
            .prepare_cached(
                "INSERT INTO watched_players (world, name, added_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .map_err(db)?;
        for (world, name) in &batch.watched {
            out.watched += watch.execute(params![world, name, now]).map_err(db)?;
        }
    }
    for d in &batch.vip_daily {
        out.vip_daily += usize::from(upsert_vip_daily(&tx, d, true)?);
    }
    for d in &batch.vip_deltas {
        out.vip_deltas += usize::from(insert_vip_delta(&tx, d)?);
    }
    {
        // A known main replaces another; an unknown one keeps what is
        // stored. A row that would not change is not counted.
        let mut maker = tx
            .prepare_cached(
                "INSERT INTO makers (world, name, main, main_world, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (world, name) DO UPDATE SET main = excluded.main,
                   main_world = excluded.main_world
                 WHERE excluded.main IS NOT NULL AND (makers.main IS NOT excluded.main
                   OR makers.main_world IS NOT excluded.main_world)",
            )
            .map_err(db)?;
        for m in &batch.makers {
            let (main_world, main) = m.main.clone().unzip();
            out.makers += maker
                .execute(params![m.world, m.name, main, main_world, now])
                .map_err(db)?;
        }
    }

    // World state only moves forward: the latest update and reset known.
    let latest = latest_per_world(batch);
    let mut worlds: Vec<&String> = latest
        .keys()
        .chain(batch.resets.iter().map(|(w, _)| w))
        .collect();
    worlds.sort();
    worlds.dedup();
    for world in worlds {
        let state = read_state(&tx, world)?;
        let last = state.last_update_time.max(latest.get(world).copied());
        let reset = batch
            .resets
            .iter()
            .filter(|(w, _)| w == world)
            .map(|(_, t)| *t)
            .max();
        let rebase = state.last_rebase.max(reset);
        if (last, rebase) == (state.last_update_time, state.last_rebase) {
            continue;
        }
        tx.execute(
            "INSERT INTO world_state (world, last_update_time, last_rebase, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (world) DO UPDATE SET last_update_time = excluded.last_update_time,
               last_rebase = excluded.last_rebase, updated_at = excluded.updated_at",
            params![world, last.map(site_text), rebase.map(site_text), now],
        )
        .map_err(db)?;
        out.world_states += 1;
    }

    if dry_run {
        tx.rollback().map_err(db)?;
    } else {
        tx.commit().map_err(db)?;
    }
    Ok(out)
}
