//! SQLite's side of the query layer: parameters and rows converted, and a
//! query run on a connection — a reader's for reads, the store's own for
//! writes and transactions, one of its own for an export. Every call
//! blocks its thread; none runs on the async runtime.

use chrono::NaiveDate;
use rusqlite::types::{ToSqlOutput, Value as Sql};
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior, params_from_iter};
use tokio::sync::mpsc;

use super::super::dialect::{Dialect, Insert, Query, Value, date_text};
use super::super::exec::{Done, Exec};
use super::super::history::{EXPORT_BUFFER, EXPORT_CHUNK, RowChunks};
use super::super::row::{Map, RowGet};
use super::super::{StoreError, WorldState, parse_time};
use super::{SqliteStore, db, read_state, site_text, utc_parse};

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(match self {
            Value::Text(s) => Sql::Text(s.clone()),
            Value::OptText(s) => s.clone().map_or(Sql::Null, Sql::Text),
            Value::Int(n) => Sql::Integer(*n),
            Value::Offset(n) => Sql::Integer(i64::from(*n)),
            Value::Time(t) => Sql::Text(site_text(*t)),
            Value::OptTime(t) => t.map_or(Sql::Null, |t| Sql::Text(site_text(t))),
            Value::Instant(t) => Sql::Integer(t.timestamp()),
            Value::Date(d) => Sql::Text(date_text(*d)),
            Value::List(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "a list parameter: SQLite takes one placeholder per item".into(),
                ));
            }
        }))
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| StoreError::Rejected(format!("bad stored date `{text}`: {e}")))
}

impl RowGet for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(db)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(db)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(db)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(db)
    }

    fn date(&self, i: usize) -> Result<NaiveDate, StoreError> {
        parse_date(&self.text(i)?)
    }

    fn utc(&self, i: usize) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        utc_parse(&self.text(i)?)
    }

    fn opt_utc(&self, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.opt_text(i)?.as_deref().map(utc_parse).transpose()
    }

    fn opt_site_time(
        &self,
        i: usize,
        _offset: usize,
    ) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>, StoreError> {
        self.opt_text(i)?.as_deref().map(parse_time).transpose()
    }
}

pub(super) fn fetch<T>(c: &Connection, q: &Query, map: Map<T>) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare_cached(&q.sql).map_err(db)?;
    let mut rows = stmt.query(params_from_iter(&q.params)).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Run a statement; the rows it changed (those it returns, with
/// `RETURNING`).
fn execute(c: &Connection, q: &Query) -> Result<u64, StoreError> {
    let mut stmt = c.prepare_cached(&q.sql).map_err(db)?;
    if stmt.column_count() == 0 {
        return stmt
            .execute(params_from_iter(&q.params))
            .map(|n| n as u64)
            .map_err(db);
    }
    let mut rows = stmt.query(params_from_iter(&q.params)).map_err(db)?;
    let mut n = 0;
    while rows.next().map_err(db)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// One statement per row.
fn insert<T>(
    c: &Connection,
    ins: &Insert,
    rows: &[Vec<Value>],
    map: Map<T>,
) -> Result<Vec<T>, StoreError> {
    ins.check(rows)?;
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let sql = ins.one_row(Dialect::Sqlite, first).sql;
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let mut returned = stmt.query(params_from_iter(row)).map_err(db)?;
        while let Some(r) = returned.next().map_err(db)? {
            out.push(map(r)?);
        }
    }
    Ok(out)
}

/// A write transaction on SQLite: its steps never wait (see
/// [`super::super::exec::ready`]).
pub(crate) struct SqliteExec<'c> {
    c: &'c Connection,
}

impl Exec for SqliteExec<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn fetch<T>(&self, q: &Query, map: Map<T>) -> Result<Vec<T>, StoreError> {
        fetch(self.c, q, map)
    }

    async fn execute(&self, q: &Query) -> Result<u64, StoreError> {
        execute(self.c, q)
    }

    async fn insert<T>(
        &self,
        ins: &Insert,
        rows: &[Vec<Value>],
        map: Map<T>,
    ) -> Result<Vec<T>, StoreError> {
        insert(self.c, ins, rows, map)
    }

    async fn world_state_locked(
        &self,
        world: &str,
        _offset: i32,
    ) -> Result<WorldState, StoreError> {
        read_state(self.c, world)
    }

    #[cfg(feature = "test-support")]
    async fn stall_vip(&self, name: &str) {
        super::super::testing::stall_vip_before_commit_blocking(name);
    }
}

impl SqliteStore {
    /// The rows of a read.
    pub(crate) async fn fetch<T: Send + 'static>(
        &self,
        q: Query,
        map: Map<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |c| fetch(c, &q, map)).await
    }

    /// Run one statement on the store's connection.
    pub(crate) async fn execute(&self, q: Query) -> Result<u64, StoreError> {
        self.with(move |c| execute(c, &q)).await
    }

    /// Run `body` in one write transaction (`BEGIN IMMEDIATE`), committed
    /// when it says so and rolled back otherwise.
    pub(crate) async fn transact<T: Send + 'static>(
        &self,
        body: impl FnOnce(&SqliteExec<'_>) -> Result<Done<T>, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let done = body(&SqliteExec { c: &tx })?;
            if done.commit {
                tx.commit().map_err(db)?;
            } else {
                tx.rollback().map_err(db)?;
            }
            Ok(done.value)
        })
        .await
    }

    /// Stream a query's rows in chunks from a thread of its own. A file
    /// database is read through a connection of its own (a WAL snapshot:
    /// writers and other queries go on meanwhile); an in-memory one through
    /// the shared connection.
    pub(crate) fn export<T: Send + 'static>(&self, q: Query, map: Map<T>) -> RowChunks<T> {
        let (tx, rx) = mpsc::channel(EXPORT_BUFFER);
        let path = self.path.clone();
        let shared = self.conn.clone();
        let (nice, idle) = (self.read_nice, self.read_background);
        let work = move || {
            super::readers::read_thread_priority(nice, idle);
            let run = |c: &Connection| -> Result<(), StoreError> {
                let mut stmt = c.prepare(&q.sql).map_err(db)?;
                let mut rows = stmt.query(params_from_iter(&q.params)).map_err(db)?;
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
                .and_then(|mut c| {
                    c.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(db)?;
                    if idle {
                        super::readers::give_way(&mut c)?;
                    }
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
}
