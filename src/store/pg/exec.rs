//! PostgreSQL's side of the query layer: parameters and rows converted, and
//! a query run on a connection of the pool — a read on one cancelled when
//! its caller goes away ([`super::ReadConn`]), a transaction on one it
//! holds, an export on one used once.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use futures_util::{StreamExt, pin_mut};
use tokio::sync::mpsc;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::super::dialect::{Dialect, Insert, Query, Value};
use super::super::exec::{Done, Exec};
use super::super::history::{EXPORT_BUFFER, EXPORT_CHUNK, RowChunks};
use super::super::row::{Map, RowGet};
use super::super::{StoreError, WorldState};
use super::{PgStore, fixed, pg_err, read_state};

/// Rows per statement when inserting many.
const INSERT_CHUNK: usize = 5_000;

fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Each checks that it fits the parameter's type.
        match self {
            Value::Text(s) => s.to_sql_checked(ty, out),
            Value::OptText(s) => s.to_sql_checked(ty, out),
            Value::Int(n) => n.to_sql_checked(ty, out),
            Value::Offset(n) => n.to_sql_checked(ty, out),
            Value::Time(t) | Value::Instant(t) => utc(*t).to_sql_checked(ty, out),
            Value::OptTime(t) => t.map(utc).to_sql_checked(ty, out),
            Value::Date(d) => d.to_sql_checked(ty, out),
            Value::List(items) => items.to_sql_checked(ty, out),
        }
    }

    /// The value's own type decides ([`ToSql::to_sql`]).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column, a type mismatch told as the schema's fault.
fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i)
        .map_err(|e| StoreError::Rejected(format!("postgres: column {i}: {e}")))
}

impl RowGet for Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        get(self, i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        get(self, i)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        get(self, i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        get(self, i)
    }

    fn date(&self, i: usize) -> Result<NaiveDate, StoreError> {
        get(self, i)
    }

    fn utc(&self, i: usize) -> Result<DateTime<Utc>, StoreError> {
        get(self, i)
    }

    fn opt_utc(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        get(self, i)
    }

    fn opt_site_time(
        &self,
        i: usize,
        offset: usize,
    ) -> Result<Option<DateTime<FixedOffset>>, StoreError> {
        let Some(t) = get::<Option<DateTime<Utc>>>(self, i)? else {
            return Ok(None);
        };
        Ok(Some(fixed(t, get(self, offset)?)))
    }
}

fn params(q: &Query) -> Vec<&(dyn ToSql + Sync)> {
    q.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn mapped<T>(rows: &[Row], map: Map<T>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| map(r)).collect()
}

/// A transaction (or a connection) of the pool.
pub(crate) struct PgExec<'a, C> {
    c: &'a C,
}

impl<'a, C: GenericClient> PgExec<'a, C> {
    pub(crate) fn new(c: &'a C) -> PgExec<'a, C> {
        PgExec { c }
    }
}

impl<C: GenericClient> Exec for PgExec<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn fetch<T>(&self, q: &Query, map: Map<T>) -> Result<Vec<T>, StoreError> {
        let rows = self.c.query(&q.sql, &params(q)).await.map_err(pg_err)?;
        mapped(&rows, map)
    }

    async fn execute(&self, q: &Query) -> Result<u64, StoreError> {
        self.c.execute(&q.sql, &params(q)).await.map_err(pg_err)
    }

    /// One statement per chunk of rows, each column an array.
    async fn insert<T>(
        &self,
        ins: &Insert,
        rows: &[Vec<Value>],
        map: Map<T>,
    ) -> Result<Vec<T>, StoreError> {
        ins.check(rows)?;
        let mut out = Vec::new();
        for chunk in rows.chunks(INSERT_CHUNK) {
            out.extend(self.fetch(&ins.unnest(chunk), map).await?);
        }
        Ok(out)
    }

    /// Writers of a world are serialized on its state row: created when
    /// missing, locked until the transaction ends.
    async fn world_state_locked(&self, world: &str, offset: i32) -> Result<WorldState, StoreError> {
        self.c
            .execute(
                "INSERT INTO world_state (world, site_offset, updated_at) VALUES ($1, $2, now())
                 ON CONFLICT (world) DO NOTHING",
                &[&world, &offset],
            )
            .await
            .map_err(pg_err)?;
        read_state(self.c, world, true).await
    }

    #[cfg(feature = "test-support")]
    async fn stall_vip(&self, name: &str) {
        super::super::testing::stall_vip_before_commit(name).await;
    }
}

impl PgStore {
    /// The rows of a read, on a connection cancelled if the caller goes
    /// away.
    pub(crate) async fn fetch<T>(&self, q: Query, map: Map<T>) -> Result<Vec<T>, StoreError> {
        let conn = self.reader().await?;
        let rows = conn.query(&q.sql, &params(&q)).await.map_err(pg_err)?;
        mapped(&rows, map)
    }

    /// Run one statement.
    pub(crate) async fn execute(&self, q: Query) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client.execute(&q.sql, &params(&q)).await.map_err(pg_err)
    }

    /// A connection of the pool for a transaction.
    pub(crate) async fn connection(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.client().await
    }

    /// Stream a query's rows in chunks over a connection of the pool used
    /// once (a long download is not bound by the read deadline).
    pub(crate) fn export<T: Send + 'static>(&self, q: Query, map: Map<T>) -> RowChunks<T> {
        let (tx, rx) = mpsc::channel(EXPORT_BUFFER);
        let store = self.clone();
        tokio::spawn(async move {
            // A heavy read: a place in the heavy lane first, held until the
            // connection is gone, so exports and heavy queries together
            // leave a connection of the pool to the cheap reads.
            let _heavy = match crate::store::lane::enter(store.heavy_lane()).await {
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
                let rows = obj
                    .query_raw(&q.sql, q.params.iter().map(|p| p as &dyn ToSql))
                    .await
                    .map_err(pg_err)?;
                pin_mut!(rows);
                let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
                while let Some(row) = rows.next().await {
                    chunk.push(map(&row.map_err(pg_err)?)?);
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
}

/// Commit or roll back a transaction as its body said.
pub(crate) async fn finish<T>(
    tx: deadpool_postgres::Transaction<'_>,
    done: Done<T>,
) -> Result<T, StoreError> {
    if done.commit {
        tx.commit().await.map_err(pg_err)?;
    } else {
        tx.rollback().await.map_err(pg_err)?;
    }
    Ok(done.value)
}

/// Begin a transaction on a connection of the pool.
pub(crate) async fn begin(
    conn: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    conn.transaction().await.map_err(pg_err)
}
