//! PostgreSQL: migration 2 and what it serves — the replaced system's
//! queries, status pages, watched players, imports and streamed exports.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use futures_util::{StreamExt, pin_mut};
use tokio::sync::mpsc;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::super::history::{
    EXPORT_BUFFER, EXPORT_CHUNK, PlayerTotal, RowChunks, StatusPage, StatusRoutine, TimeRange,
};
use super::super::import::{ImportBatch, ImportWritten, latest_per_world};
use super::super::logic::vip_outcome;
use super::super::vip::{Maker, VipDaily, VipDelta, VipReadOutcome, WatchedPlayer};
use super::super::{DeltaRow, PlayerRowStored, StoreError};
use super::{PgStore, fixed, pg_err, read_state};

/// Migration 2: indexes for the replaced system's queries, one delta per
/// (world, player, update), imported runs, status pages, watched players.
pub(super) const MIGRATION_2: &str = r#"
ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'scrape';
CREATE UNIQUE INDEX deltas_once ON deltas (world, name, update_time);
CREATE INDEX deltas_by_time ON deltas (update_time DESC, name COLLATE "C", delta);
CREATE INDEX deltas_by_world_time ON deltas (world, update_time DESC, name COLLATE "C");
CREATE INDEX deltas_by_guild_time ON deltas (guild, update_time DESC, name COLLATE "C");
CREATE INDEX deltas_by_name ON deltas (name, update_time, delta);
CREATE INDEX deltas_by_world_name ON deltas (world, guild, name COLLATE "C");
CREATE INDEX players_by_name ON players (name);
CREATE TABLE status_pages (
    world TEXT PRIMARY KEY,
    fetch_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,
    routines TEXT NOT NULL                 -- JSON array of StatusRoutine
);
CREATE TABLE watched_players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (world, name)
);
CREATE TABLE vip_daily (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date DATE NOT NULL,
    raw_xp BIGINT NOT NULL,
    online_minutes BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,
    PRIMARY KEY (world, name, date)
);
CREATE TABLE vip_deltas (
    id BIGSERIAL PRIMARY KEY,
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date DATE NOT NULL,
    delta_exp BIGINT NOT NULL,
    delta_online BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    prev_update_time TIMESTAMPTZ,
    site_offset INTEGER NOT NULL
);
CREATE UNIQUE INDEX vip_deltas_once ON vip_deltas (world, name, update_time);
CREATE INDEX vip_deltas_by_time ON vip_deltas (update_time DESC);
"#;

/// Migration 3: the watched players' deltas by player and by world (the
/// `name=` and `world=` filters of `/api/vip/deltas`, the VIP graph).
pub(super) const MIGRATION_3: &str = r#"
CREATE INDEX vip_deltas_by_name ON vip_deltas (name, update_time DESC);
CREATE INDEX vip_deltas_by_world_time ON vip_deltas (world, update_time DESC);
"#;

/// Migration 4: makers, the watched players tied to a main character
/// (their reads are `vip_daily` / `vip_deltas` rows like any watched
/// player's).
pub(super) const MIGRATION_4: &str = r#"
CREATE TABLE makers (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    main TEXT,                             -- NULL: not known
    main_world TEXT,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (world, name)
);
"#;

/// Who is a maker, for a query on `vip_deltas`.
const IS_MAKER: &str = "(world, name) IN (SELECT world, name FROM makers)";

const VIP_DAILY_COLUMNS: &str =
    "world, name, date, raw_xp, online_minutes, update_time, site_offset";

fn vip_daily_of(r: &Row) -> VipDaily {
    VipDaily {
        world: r.get(0),
        name: r.get(1),
        date: r.get(2),
        raw_xp: r.get(3),
        online_minutes: r.get(4),
        update_time: fixed(r.get(5), r.get(6)),
    }
}

/// Rows per statement when importing.
const IMPORT_CHUNK: usize = 5_000;

const DELTA_COLUMNS: &str =
    "id, world, name, guild, delta, update_time, previous_update_time, site_offset";
const PLAYER_COLUMNS: &str =
    "world, name, guild, vocation, level, experience, update_time, site_offset";

fn delta_of(r: &Row) -> DeltaRow {
    let off: i32 = r.get(7);
    DeltaRow {
        id: r.get(0),
        world: r.get(1),
        name: r.get(2),
        guild: r.get(3),
        delta: r.get(4),
        update_time: fixed(r.get(5), off),
        previous_update_time: r.get::<_, Option<DateTime<Utc>>>(6).map(|t| fixed(t, off)),
    }
}

fn player_of(r: &Row) -> PlayerRowStored {
    PlayerRowStored {
        world: r.get(0),
        name: r.get(1),
        guild: r.get(2),
        vocation: r.get(3),
        level: r.get(4),
        experience: r.get(5),
        update_time: fixed(r.get(6), r.get(7)),
    }
}

fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

fn offset(t: DateTime<FixedOffset>) -> i32 {
    t.offset().local_minus_utc()
}

type Param = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause built from the filters that are set.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Where {
    fn push(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn eq(mut self, column: &str, value: Option<&str>) -> Where {
        if let Some(v) = value {
            let mark = self.push(Box::new(v.to_string()));
            self.clauses.push(format!("{column} = {mark}"));
        }
        self
    }

    fn range(mut self, range: TimeRange) -> Where {
        if let Some(from) = range.from {
            let mark = self.push(Box::new(utc(from)));
            self.clauses.push(format!("update_time >= {mark}"));
        }
        if let Some(to) = range.to {
            let mark = self.push(Box::new(utc(to)));
            self.clauses.push(format!("update_time <= {mark}"));
        }
        self
    }

    fn any_of(mut self, column: &str, values: &[String]) -> Where {
        let mark = self.push(Box::new(values.to_vec()));
        self.clauses.push(format!("{column} = ANY({mark}::TEXT[])"));
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

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

impl PgStore {
    async fn rows(&self, sql: &str, w: &Where) -> Result<Vec<Row>, StoreError> {
        let client = self.reader().await?;
        client.query(sql, &w.refs()).await.map_err(pg_err)
    }

    pub async fn delta_feed(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let mut w = Where::default().eq("world", world).eq("guild", guild);
        let lim = w.push(Box::new(i64::from(limit)));
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM deltas {} ORDER BY update_time DESC, name COLLATE \"C\" LIMIT {lim}",
            w.sql()
        );
        Ok(self.rows(&sql, &w).await?.iter().map(delta_of).collect())
    }

    pub async fn player_totals(
        &self,
        range: TimeRange,
        world: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<PlayerTotal>, StoreError> {
        let mut w = Where::default().eq("world", world).range(range);
        let lim = match limit {
            Some(n) => format!("LIMIT {}", w.push(Box::new(i64::from(n)))),
            None => String::new(),
        };
        let sql = format!(
            "SELECT name, SUM(delta)::BIGINT, COUNT(*), MAX(delta), MIN(delta) FROM deltas {}
             GROUP BY name ORDER BY 2 DESC, name COLLATE \"C\" {lim}",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(|r| PlayerTotal {
                name: r.get(0),
                total: r.get(1),
                updates: r.get(2),
                max: r.get(3),
                min: r.get(4),
            })
            .collect())
    }

    pub async fn player_names(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>, StoreError> {
        let mut w = Where::default().eq("world", world).eq("guild", guild);
        let lim = match limit {
            Some(n) => format!("LIMIT {}", w.push(Box::new(i64::from(n)))),
            None => String::new(),
        };
        let sql = format!(
            "SELECT DISTINCT name COLLATE \"C\" FROM deltas {} ORDER BY 1 {lim}",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub async fn delta_time_range(
        &self,
        world: Option<&str>,
        guild: Option<&str>,
    ) -> Result<Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)>, StoreError> {
        let w = Where::default().eq("world", world).eq("guild", guild);
        let one = |dir: &str| {
            format!(
                "SELECT update_time, site_offset FROM deltas {} ORDER BY update_time {dir} LIMIT 1",
                w.sql()
            )
        };
        let client = self.reader().await?;
        let first = client
            .query_opt(&one("ASC"), &w.refs())
            .await
            .map_err(pg_err)?;
        let last = client
            .query_opt(&one("DESC"), &w.refs())
            .await
            .map_err(pg_err)?;
        Ok(match (first, last) {
            (Some(a), Some(b)) => Some((fixed(a.get(0), a.get(1)), fixed(b.get(0), b.get(1)))),
            _ => None,
        })
    }

    pub async fn player_deltas(
        &self,
        names: &[String],
        range: TimeRange,
        limit: Option<u32>,
    ) -> Result<Vec<DeltaRow>, StoreError> {
        let mut w = Where::default().any_of("name", names).range(range);
        let lim = match limit {
            Some(n) => format!("LIMIT {}", w.push(Box::new(i64::from(n)))),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM deltas {} ORDER BY name COLLATE \"C\", update_time, id {lim}",
            w.sql()
        );
        Ok(self.rows(&sql, &w).await?.iter().map(delta_of).collect())
    }

    pub async fn players_named(
        &self,
        names: &[String],
    ) -> Result<Vec<PlayerRowStored>, StoreError> {
        let w = Where::default().any_of("name", names);
        let sql = format!(
            "SELECT {PLAYER_COLUMNS} FROM players {} ORDER BY name COLLATE \"C\", world COLLATE \"C\"",
            w.sql()
        );
        Ok(self.rows(&sql, &w).await?.iter().map(player_of).collect())
    }

    pub async fn save_status_page(&self, page: &StatusPage) -> Result<(), StoreError> {
        let routines = serde_json::to_string(&page.routines)
            .map_err(|e| StoreError::Rejected(format!("status page: {e}")))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO status_pages (world, fetch_time, site_offset, routines)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (world) DO UPDATE SET fetch_time = EXCLUDED.fetch_time,
                   site_offset = EXCLUDED.site_offset, routines = EXCLUDED.routines",
                &[
                    &page.world,
                    &utc(page.fetch_time),
                    &offset(page.fetch_time),
                    &routines,
                ],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub async fn status_pages(&self) -> Result<Vec<StatusPage>, StoreError> {
        let client = self.reader().await?;
        let rows = client
            .query(
                "SELECT world, fetch_time, site_offset, routines FROM status_pages
                 ORDER BY world COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let routines: String = r.get(3);
                let routines: Vec<StatusRoutine> = serde_json::from_str(&routines)
                    .map_err(|e| StoreError::Rejected(format!("stored status page: {e}")))?;
                Ok(StatusPage {
                    world: r.get(0),
                    fetch_time: fixed(r.get(1), r.get(2)),
                    routines,
                })
            })
            .collect()
    }

    /// Stream a query's rows in chunks over a connection of its own (a
    /// long download never holds one of the pool's connections).
    fn export<T, F>(&self, sql: &'static str, map: F) -> RowChunks<T>
    where
        T: Send + 'static,
        F: Fn(&Row) -> T + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::channel(EXPORT_BUFFER);
        let store = self.clone();
        tokio::spawn(async move {
            // A heavy read: a place in the heavy lane first, held until the
            // connection is gone, so exports and heavy queries together
            // leave a connection of the pool to the cheap reads.
            let _heavy = match super::super::lane::enter(store.heavy_lane()).await {
                Ok(place) => place,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            // A connection of the pool (exports share it with every other
            // query: they never open connections of their own), used once.
            let obj = match store.client().await {
                Ok(obj) => obj,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let run = async {
                // An export lasts as long as its client reads: the read
                // deadline (`statement_timeout`) is not for it. The
                // connection is closed after, never reused with this.
                obj.batch_execute("SET statement_timeout = 0")
                    .await
                    .map_err(pg_err)?;
                let params: [&(dyn ToSql + Sync); 0] = [];
                let rows = obj
                    .query_raw(sql, params.iter().map(|p| *p as &dyn ToSql))
                    .await
                    .map_err(pg_err)?;
                pin_mut!(rows);
                let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
                while let Some(row) = rows.next().await {
                    chunk.push(map(&row.map_err(pg_err)?));
                    if chunk.len() == EXPORT_CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
                        if tx.send(Ok(full)).await.is_err() {
                            return Ok(false); // the client went away
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.send(Ok(chunk)).await;
                }
                Ok::<bool, StoreError>(true)
            };
            match run.await {
                Ok(true) => {}
                Ok(false) => {
                    // Stop the server's side of the query too.
                    if let Err(e) = obj.cancel_token().cancel_query(store.tls.clone()).await {
                        tracing::debug!(error = %e, "cannot cancel an abandoned export");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
            drop(deadpool_postgres::Object::take(obj));
        });
        rx
    }

    pub fn export_deltas(&self) -> RowChunks<DeltaRow> {
        self.export(
            "SELECT id, world, name, guild, delta, update_time, previous_update_time, site_offset
             FROM deltas ORDER BY id",
            delta_of,
        )
    }

    pub fn export_players(&self) -> RowChunks<PlayerRowStored> {
        self.export(
            "SELECT world, name, guild, vocation, level, experience, update_time, site_offset
             FROM players ORDER BY world COLLATE \"C\", name COLLATE \"C\"",
            player_of,
        )
    }

    // ----- watched players -------------------------------------------------

    pub async fn add_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO watched_players (world, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&world, &name],
            )
            .await
            .map_err(pg_err)?;
        Ok(n == 1)
    }

    pub async fn remove_watched(&self, world: &str, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM watched_players WHERE world = $1 AND name = $2",
                &[&world, &name],
            )
            .await
            .map_err(pg_err)?;
        Ok(n == 1)
    }

    pub async fn watched(&self, world: Option<&str>) -> Result<Vec<WatchedPlayer>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT world, name, added_at FROM watched_players {}
             ORDER BY world COLLATE \"C\", name COLLATE \"C\"",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(|r| WatchedPlayer {
                world: r.get(0),
                name: r.get(1),
                added_at: r.get(2),
            })
            .collect())
    }

    pub async fn write_vip_read(
        &self,
        daily: &VipDaily,
        delta: Option<&VipDelta>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        upsert_vip_daily(&tx, std::slice::from_ref(daily), false).await?;
        let stored = match delta {
            Some(d) => insert_vip_deltas(&tx, std::slice::from_ref(d)).await? == 1,
            None => false,
        };
        tx.commit().await.map_err(pg_err)?;
        Ok(stored)
    }

    pub async fn record_vip_read(
        &self,
        read: &VipDaily,
        reset_minutes: u32,
    ) -> Result<VipReadOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // One writer per player at a time: the previous read cannot change
        // under this one.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::TEXT || chr(31) || $2::TEXT, 0))",
            &[&read.world, &read.name],
        )
        .await
        .map_err(pg_err)?;
        let prev = tx
            .query_opt(
                &format!(
                    "SELECT {VIP_DAILY_COLUMNS} FROM vip_daily WHERE world = $1 AND name = $2
                     ORDER BY update_time DESC, date DESC LIMIT 1"
                ),
                &[&read.world, &read.name],
            )
            .await
            .map_err(pg_err)?
            .map(|r| vip_daily_of(&r));
        let outcome = vip_outcome(prev.as_ref(), read, reset_minutes);
        if outcome == VipReadOutcome::AlreadyStored {
            tx.rollback().await.map_err(pg_err)?;
            return Ok(outcome);
        }
        upsert_vip_daily(&tx, std::slice::from_ref(read), true).await?;
        if let VipReadOutcome::Delta(d) = &outcome
            && insert_vip_deltas(&tx, std::slice::from_ref(d)).await? == 0
        {
            tx.rollback().await.map_err(pg_err)?;
            return Ok(VipReadOutcome::AlreadyStored);
        }
        #[cfg(feature = "test-support")]
        super::super::testing::stall_vip_before_commit(&read.name).await;
        tx.commit().await.map_err(pg_err)?;
        Ok(outcome)
    }

    pub async fn vip_latest(&self, world: Option<&str>) -> Result<Vec<VipDaily>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT DISTINCT ON (world, name) {VIP_DAILY_COLUMNS} FROM vip_daily {}
             ORDER BY world, name, update_time DESC, date DESC",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(vip_daily_of)
            .collect())
    }

    pub async fn vip_daily(
        &self,
        world: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<VipDaily>, StoreError> {
        let w = Where::default().eq("world", world).eq("name", name);
        let sql = format!(
            "SELECT {VIP_DAILY_COLUMNS}
             FROM vip_daily {} ORDER BY date DESC, world COLLATE \"C\", name COLLATE \"C\"",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(vip_daily_of)
            .collect())
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
        let lim = w.push(Box::new(i64::from(limit)));
        let sql = format!(
            "SELECT world, name, date, delta_exp, delta_online, update_time, prev_update_time,
                    site_offset
             FROM vip_deltas {} ORDER BY update_time DESC, world COLLATE \"C\", name COLLATE \"C\"
             LIMIT {lim}",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(|r| {
                let off: i32 = r.get(7);
                VipDelta {
                    world: r.get(0),
                    name: r.get(1),
                    date: r.get(2),
                    delta_exp: r.get(3),
                    delta_online: r.get(4),
                    update_time: fixed(r.get(5), off),
                    prev_update_time: r.get::<_, Option<DateTime<Utc>>>(6).map(|t| fixed(t, off)),
                }
            })
            .collect())
    }

    pub async fn makers(&self, world: Option<&str>) -> Result<Vec<Maker>, StoreError> {
        let w = Where::default().eq("world", world);
        let sql = format!(
            "SELECT world, name, main, main_world, added_at FROM makers {}
             ORDER BY world COLLATE \"C\", name COLLATE \"C\"",
            w.sql()
        );
        Ok(self
            .rows(&sql, &w)
            .await?
            .iter()
            .map(|r| Maker {
                world: r.get(0),
                name: r.get(1),
                main: r.get(2),
                main_world: r.get(3),
                added_at: r.get(4),
            })
            .collect())
    }

    // ----- import ----------------------------------------------------------

    pub async fn import(
        &self,
        batch: &ImportBatch,
        dry_run: bool,
    ) -> Result<ImportWritten, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // An import is as long as its file: the API's read deadline
        // (`statement_timeout`) is not for it.
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(pg_err)?;
        let out = import_tx(&tx, batch).await?;
        if dry_run {
            tx.rollback().await.map_err(pg_err)?;
        } else {
            tx.commit().await.map_err(pg_err)?;
        }
        Ok(out)
    }
}

type Tx<'a> = deadpool_postgres::Transaction<'a>;

async fn upsert_vip_daily(
    tx: &Tx<'_>,
    rows: &[VipDaily],
    only_newer: bool,
) -> Result<usize, StoreError> {
    let guard = if only_newer {
        "WHERE EXCLUDED.update_time > vip_daily.update_time"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO vip_daily (world, name, date, raw_xp, online_minutes, update_time, site_offset)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::DATE[], $4::BIGINT[], $5::BIGINT[],
                              $6::TIMESTAMPTZ[], $7::INT[])
         ON CONFLICT (world, name, date) DO UPDATE SET raw_xp = EXCLUDED.raw_xp,
           online_minutes = EXCLUDED.online_minutes, update_time = EXCLUDED.update_time,
           site_offset = EXCLUDED.site_offset {guard}"
    );
    let mut n = 0;
    for chunk in rows.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|d| d.world.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|d| d.name.as_str()).collect();
        let dates: Vec<NaiveDate> = chunk.iter().map(|d| d.date).collect();
        let xps: Vec<i64> = chunk.iter().map(|d| d.raw_xp).collect();
        let online: Vec<i64> = chunk.iter().map(|d| d.online_minutes).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|d| utc(d.update_time)).collect();
        let offs: Vec<i32> = chunk.iter().map(|d| offset(d.update_time)).collect();
        n += tx
            .execute(
                &sql,
                &[&worlds, &names, &dates, &xps, &online, &times, &offs],
            )
            .await
            .map_err(pg_err)? as usize;
    }
    Ok(n)
}

async fn insert_vip_deltas(tx: &Tx<'_>, rows: &[VipDelta]) -> Result<usize, StoreError> {
    let mut n = 0;
    for chunk in rows.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|d| d.world.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|d| d.name.as_str()).collect();
        let dates: Vec<NaiveDate> = chunk.iter().map(|d| d.date).collect();
        let xps: Vec<i64> = chunk.iter().map(|d| d.delta_exp).collect();
        let online: Vec<i64> = chunk.iter().map(|d| d.delta_online).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|d| utc(d.update_time)).collect();
        let prevs: Vec<Option<DateTime<Utc>>> =
            chunk.iter().map(|d| d.prev_update_time.map(utc)).collect();
        let offs: Vec<i32> = chunk.iter().map(|d| offset(d.update_time)).collect();
        n += tx
            .execute(
                "INSERT INTO vip_deltas (world, name, date, delta_exp, delta_online, update_time,
                                         prev_update_time, site_offset)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::DATE[], $4::BIGINT[], $5::BIGINT[],
                                      $6::TIMESTAMPTZ[], $7::TIMESTAMPTZ[], $8::INT[])
                 ON CONFLICT DO NOTHING",
                &[&worlds, &names, &dates, &xps, &online, &times, &prevs, &offs],
            )
            .await
            .map_err(pg_err)? as usize;
    }
    Ok(n)
}

fn count_worlds(rows: &[Row], into: &mut BTreeMap<String, usize>) {
    for r in rows {
        *into.entry(r.get::<_, String>(0)).or_insert(0) += 1;
    }
}

async fn import_tx(tx: &Tx<'_>, batch: &ImportBatch) -> Result<ImportWritten, StoreError> {
    let mut out = ImportWritten::default();

    // Runs: an existing successful run of the same update is reused.
    let mut run_ids: HashMap<(String, i64), i64> = HashMap::new();
    for r in tx
        .query(
            "SELECT id, world, update_time FROM runs WHERE status = 'ok'",
            &[],
        )
        .await
        .map_err(pg_err)?
    {
        let t: DateTime<Utc> = r.get(2);
        run_ids.insert((r.get(1), t.timestamp()), r.get(0));
    }
    let missing: Vec<_> = super::super::import::delta_updates(batch)
        .into_iter()
        .filter(|(key, _)| !run_ids.contains_key(key))
        .collect();
    for chunk in missing.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|((w, _), _)| w.as_str()).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|(_, (t, _))| utc(*t)).collect();
        let offs: Vec<i32> = chunk.iter().map(|(_, (t, _))| offset(*t)).collect();
        let counts: Vec<i64> = chunk.iter().map(|(_, (_, n))| *n as i64).collect();
        let rows = tx
            .query(
                "INSERT INTO runs (world, update_time, site_offset, started_at, finished_at, status,
                                   rows, deltas, source)
                 SELECT w, t, o, now(), now(), 'ok', n, n, 'import'
                 FROM UNNEST($1::TEXT[], $2::TIMESTAMPTZ[], $3::INT[], $4::BIGINT[]) AS u(w, t, o, n)
                 RETURNING world, id, update_time",
                &[&worlds, &times, &offs, &counts],
            )
            .await
            .map_err(pg_err)?;
        count_worlds(&rows, &mut out.runs);
        for r in rows {
            let t: DateTime<Utc> = r.get(2);
            run_ids.insert((r.get(0), t.timestamp()), r.get(1));
        }
    }

    for chunk in batch.deltas.chunks(IMPORT_CHUNK) {
        let mut run_col = Vec::with_capacity(chunk.len());
        for d in chunk {
            let id = run_ids
                .get(&(d.world.clone(), d.update_time.timestamp()))
                .copied()
                .ok_or_else(|| StoreError::Rejected("import: a delta without its run".into()))?;
            run_col.push(id);
        }
        let worlds: Vec<&str> = chunk.iter().map(|d| d.world.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|d| d.name.as_str()).collect();
        let guilds: Vec<&str> = chunk.iter().map(|d| d.guild.as_str()).collect();
        let values: Vec<i64> = chunk.iter().map(|d| d.delta).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|d| utc(d.update_time)).collect();
        let prevs: Vec<Option<DateTime<Utc>>> = chunk
            .iter()
            .map(|d| d.previous_update_time.map(utc))
            .collect();
        let offs: Vec<i32> = chunk.iter().map(|d| offset(d.update_time)).collect();
        let rows = tx
            .query(
                "INSERT INTO deltas (run_id, world, name, guild, delta, update_time,
                                     previous_update_time, site_offset)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[],
                                      $6::TIMESTAMPTZ[], $7::TIMESTAMPTZ[], $8::INT[])
                 ON CONFLICT DO NOTHING RETURNING world",
                &[&run_col, &worlds, &names, &guilds, &values, &times, &prevs, &offs],
            )
            .await
            .map_err(pg_err)?;
        count_worlds(&rows, &mut out.deltas);
    }

    for chunk in batch.players.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|p| p.world.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        let guilds: Vec<&str> = chunk.iter().map(|p| p.guild.as_str()).collect();
        let xps: Vec<i64> = chunk.iter().map(|p| p.experience).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|p| utc(p.update_time)).collect();
        let offs: Vec<i32> = chunk.iter().map(|p| offset(p.update_time)).collect();
        let rows = tx
            .query(
                "INSERT INTO players (world, name, guild, vocation, level, experience, update_time,
                                      site_offset)
                 SELECT w, n, g, '', 0, x, t, o
                 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TIMESTAMPTZ[],
                             $6::INT[]) AS u(w, n, g, x, t, o)
                 ON CONFLICT (world, name) DO UPDATE SET guild = EXCLUDED.guild,
                   experience = EXCLUDED.experience, update_time = EXCLUDED.update_time,
                   site_offset = EXCLUDED.site_offset
                 WHERE EXCLUDED.update_time > players.update_time
                 RETURNING world",
                &[&worlds, &names, &guilds, &xps, &times, &offs],
            )
            .await
            .map_err(pg_err)?;
        count_worlds(&rows, &mut out.players);
    }

    for chunk in batch.watched.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|(w, _)| w.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|(_, n)| n.as_str()).collect();
        out.watched += tx
            .execute(
                "INSERT INTO watched_players (world, name)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) ON CONFLICT DO NOTHING",
                &[&worlds, &names],
            )
            .await
            .map_err(pg_err)? as usize;
    }
    out.vip_daily = upsert_vip_daily(tx, &batch.vip_daily, true).await?;
    out.vip_deltas = insert_vip_deltas(tx, &batch.vip_deltas).await?;
    for chunk in batch.makers.chunks(IMPORT_CHUNK) {
        let worlds: Vec<&str> = chunk.iter().map(|m| m.world.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|m| m.name.as_str()).collect();
        let mains: Vec<Option<&str>> = chunk
            .iter()
            .map(|m| m.main.as_ref().map(|(_, n)| n.as_str()))
            .collect();
        let main_worlds: Vec<Option<&str>> = chunk
            .iter()
            .map(|m| m.main.as_ref().map(|(w, _)| w.as_str()))
            .collect();
        // A known main replaces another; an unknown one keeps what is
        // stored. A row that would not change is not counted.
        out.makers += tx
            .execute(
                "INSERT INTO makers (world, name, main, main_world)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[])
                 ON CONFLICT (world, name) DO UPDATE SET main = EXCLUDED.main,
                   main_world = EXCLUDED.main_world
                 WHERE EXCLUDED.main IS NOT NULL AND (makers.main IS DISTINCT FROM EXCLUDED.main
                   OR makers.main_world IS DISTINCT FROM EXCLUDED.main_world)",
                &[&worlds, &names, &mains, &main_worlds],
            )
            .await
            .map_err(pg_err)? as usize;
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
        let reset = batch
            .resets
            .iter()
            .filter(|(w, _)| w == world)
            .map(|(_, t)| *t)
            .max();
        let any = latest.get(world).copied().or(reset);
        let off = any.map_or(0, offset);
        tx.execute(
            "INSERT INTO world_state (world, site_offset, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (world) DO NOTHING",
            &[&world, &off],
        )
        .await
        .map_err(pg_err)?;
        let state = read_state(tx, world, true).await?;
        let last = state.last_update_time.max(latest.get(world).copied());
        let rebase = state.last_rebase.max(reset);
        if (last, rebase) == (state.last_update_time, state.last_rebase) {
            continue;
        }
        tx.execute(
            "UPDATE world_state SET last_update_time = $2, last_rebase = $3, site_offset = $4,
               updated_at = now() WHERE world = $1",
            &[
                &world,
                &last.map(utc),
                &rebase.map(utc),
                &last.or(rebase).map_or(off, offset),
            ],
        )
        .await
        .map_err(pg_err)?;
        out.world_states += 1;
    }
    Ok(out)
}
