//! PostgreSQL backend: a small deadpool per process whose idle connections
//! are closed, versioned migrations embedded in the binary.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, Utc};
use deadpool_postgres::{Config, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use super::dialect::Dialect;
use super::exec::Exec;
use super::logic::{PassKind, compute_deltas, dedupe_players, pass_kind};
use super::{NewRun, StoreError, WorldState, WriteOutcome, query, row};

/// Connections idle longer than this are closed.
const IDLE_CLOSE: Duration = Duration::from_secs(30);

mod exec;
pub(crate) use exec::{PgExec, begin, finish};
mod lease;
mod migrations;
mod tls;

/// Versioned migrations, applied in order, each once, under an advisory
/// lock (many workers start at once). Never edit one that shipped: append.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    world TEXT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,          -- seconds east of UTC of the site
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    rows BIGINT NOT NULL DEFAULT 0,
    deltas BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
CREATE UNIQUE INDEX runs_ok_once ON runs (world, update_time) WHERE status = 'ok';
CREATE INDEX runs_by_world ON runs (world, id);
CREATE TABLE players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    guild TEXT NOT NULL,
    vocation TEXT NOT NULL,
    level BIGINT NOT NULL,
    experience BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,
    PRIMARY KEY (world, name)
);
CREATE TABLE deltas (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs (id),
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    guild TEXT NOT NULL,
    delta BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    previous_update_time TIMESTAMPTZ,
    site_offset INTEGER NOT NULL
);
CREATE INDEX deltas_by_world ON deltas (world, id);
CREATE INDEX deltas_by_guild ON deltas (guild, id);
CREATE TABLE world_state (
    world TEXT PRIMARY KEY,
    last_update_time TIMESTAMPTZ,
    last_rebase TIMESTAMPTZ,
    site_offset INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);
"#,
    ),
    (2, migrations::MIGRATION_2),
    (3, migrations::MIGRATION_3),
    (4, migrations::MIGRATION_4),
    (5, lease::MIGRATION_5),
];

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// TLS as the URL's `sslmode` says (also for cancel requests).
    tls: tls::MakeRustls,
    /// The lease a fenced writer's run writes check first.
    fence: Option<super::Fence>,
    /// The URL as `tokio-postgres` takes it (a `LISTEN` connection's).
    url: String,
    /// Places of heavy reads and exports in the pool (an API's store).
    lane: Option<std::sync::Arc<super::lane::HeavyLane>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("status", &self.pool.status())
            .finish()
    }
}

/// Pool and connection failures: the server is unreachable or gone. The
/// causes are kept (a TLS handshake's says why).
fn db(e: impl std::error::Error) -> StoreError {
    let mut message = format!("postgres: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    StoreError::Unavailable(message)
}

/// Whether a SQLSTATE says "try again later": connection exceptions
/// (class 08), serialization failures and deadlocks, insufficient
/// resources (53000; 53100 disk full, 53200 out of memory, 53300 too many
/// connections), a server shutting down or starting, a lock or statement
/// timeout.
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "40001"
                | "40P01"
                | "53000"
                | "53100"
                | "53200"
                | "53300"
                | "55P03"
                | "57014"
                | "57P01"
                | "57P02"
                | "57P03"
        )
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => {
            let code = d.code().code();
            let message = format!("postgres: {code}: {}", d.message());
            if transient_sqlstate(code) {
                StoreError::Unavailable(message)
            } else {
                StoreError::Rejected(message)
            }
        }
        // No SQLSTATE: the connection closed or broke.
        None => db(e),
    }
}

fn fixed(t: DateTime<Utc>, offset_secs: i32) -> DateTime<FixedOffset> {
    let off = FixedOffset::east_opt(offset_secs).unwrap_or(Utc.fix());
    t.with_timezone(&off)
}

/// A pooled connection for one read: dropped while its query runs (the
/// caller timed out or its client went away), it sends the server a cancel
/// request and closes, so the query stops and the connection is never
/// handed to another caller with a cancel on its way.
pub(super) struct ReadConn {
    obj: Option<deadpool_postgres::Object>,
    busy: std::sync::atomic::AtomicBool,
    /// For the cancel request of an abandoned query.
    tls: tls::MakeRustls,
}

impl ReadConn {
    fn client(&self) -> &tokio_postgres::Client {
        self.obj
            .as_ref()
            .expect("a ReadConn holds its connection until dropped")
    }

    async fn watch<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        use std::sync::atomic::Ordering;
        self.busy.store(true, Ordering::Release);
        let out = query.await;
        self.busy.store(false, Ordering::Release);
        out
    }

    /// [`tokio_postgres::Client::query`], cancelled when dropped.
    pub(super) async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>
    where
        T: ?Sized + tokio_postgres::ToStatement,
    {
        self.watch(self.client().query(statement, params)).await
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        if !self.busy.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let (Some(obj), Ok(rt)) = (self.obj.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        // Out of the pool for good: it closes once the cancel is sent.
        let client = deadpool_postgres::Object::take(obj);
        let token = client.cancel_token();
        let tls = self.tls.clone();
        rt.spawn(async move {
            if let Err(e) = token.cancel_query(tls).await {
                tracing::debug!(error = %e, "cannot cancel an abandoned query");
            }
            drop(client);
        });
    }
}

/// The options the API's connections start with: statements end at the
/// read deadline, and a transaction left idle is ended by the server.
fn reading_options(url: &str, reads: super::ReadSettings) -> Result<String, StoreError> {
    let parsed: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact(url))))?;
    let timeout = reads.query_timeout.as_millis().max(1);
    let idle = (reads.query_timeout * 4)
        .max(Duration::from_secs(30))
        .as_millis();
    let ours =
        format!("-c statement_timeout={timeout} -c idle_in_transaction_session_timeout={idle}");
    Ok(match parsed.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
        _ => ours,
    })
}

impl PgStore {
    /// Build the pool, connect once, migrate.
    pub async fn open(url: &str, max_connections: usize) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, max_connections, None, None).await
    }

    /// [`PgStore::open`] with session settings (`-c name=value …`) added
    /// after the URL's own `options`.
    pub(super) async fn open_with_options(
        url: &str,
        max_connections: usize,
        options: &str,
    ) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, max_connections, None, Some(options)).await
    }

    /// This store's run writes check `fence` first ([`lease::check_fence`]).
    pub(super) fn with_fence(mut self, fence: super::Fence) -> PgStore {
        self.fence = Some(fence);
        self
    }

    /// [`PgStore::open`] for an API: `reads.readers` connections with
    /// `statement_timeout` at `reads.query_timeout`; waiting for a free
    /// connection is bounded by the same deadline.
    pub async fn open_reading(
        url: &str,
        reads: super::ReadSettings,
    ) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, reads.readers.max(1), Some(reads), None).await
    }

    /// The heavy lane of the API's pool (none elsewhere).
    pub(super) fn heavy_lane(&self) -> Option<&super::lane::HeavyLane> {
        self.lane.as_deref()
    }

    /// A connection for a read ([`ReadConn`]).
    pub(super) async fn reader(&self) -> Result<ReadConn, StoreError> {
        Ok(ReadConn {
            obj: Some(self.client().await?),
            busy: std::sync::atomic::AtomicBool::new(false),
            tls: self.tls.clone(),
        })
    }

    async fn open_with(
        url: &str,
        max_connections: usize,
        reads: Option<super::ReadSettings>,
        options: Option<&str>,
    ) -> Result<PgStore, StoreError> {
        let split = tls::split_url(url)?;
        let connector = tls::connector(&split)?;
        let url = split.url.as_str();
        let mut cfg = Config::new();
        cfg.url = Some(url.to_string());
        cfg.manager = Some(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        let mut pool_cfg = PoolConfig::new(max_connections);
        pool_cfg.timeouts.wait = Some(Duration::from_secs(10));
        if let Some(reads) = reads {
            cfg.options = Some(reading_options(url, reads)?);
            pool_cfg.timeouts.wait = Some(reads.query_timeout);
        }
        if let Some(ours) = options {
            let parsed: tokio_postgres::Config = url
                .parse()
                .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact(url))))?;
            cfg.options = Some(match parsed.get_options() {
                Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
                _ => ours.to_string(),
            });
        }
        pool_cfg.timeouts.create = Some(Duration::from_secs(5));
        pool_cfg.timeouts.recycle = Some(Duration::from_secs(5));
        cfg.pool = Some(pool_cfg);
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), connector.clone())
            .map_err(|e| StoreError::BadUrl(format!("{}: {e}", redact(url))))?;
        let store = PgStore {
            pool,
            tls: connector,
            fence: None,
            url: url.to_string(),
            lane: reads.map(|r| {
                std::sync::Arc::new(super::lane::HeavyLane::new(
                    max_connections,
                    r.query_timeout,
                ))
            }),
        };
        store.migrate().await?;
        // Close idle connections so many workers don't pin many connections.
        let weak = store.pool.weak();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_CLOSE / 3).await;
                let Some(pool) = weak.upgrade() else { break };
                pool.retain(|_, m| m.last_used() < IDLE_CLOSE);
            }
        });
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(db)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7477420501)", &[])
            .await
            .map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg_err)?;
        for (version, sql) in MIGRATIONS {
            let done = tx
                .query_opt(
                    "SELECT version FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(pg_err)?;
            if done.is_none() {
                tx.batch_execute(sql).await.map_err(|e| {
                    StoreError::Rejected(format!("postgres migration {version}: {e}"))
                })?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }

    pub async fn record_failed_run(
        &self,
        world: &str,
        update_time: DateTime<FixedOffset>,
        started_at: DateTime<Utc>,
        error: &str,
    ) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if let Some(fence) = &self.fence {
            lease::check_fence(&tx, world, fence).await?;
        }
        let epoch = self.fence.as_ref().map(|f| f.epoch);
        let row = tx
            .query_one(
                "INSERT INTO runs (world, update_time, site_offset, started_at, finished_at, status, error, epoch)
                 VALUES ($1, $2, $3, $4, now(), 'failed', $5, $6) RETURNING id",
                &[
                    &world,
                    &update_time.with_timezone(&Utc),
                    &update_time.offset().local_minus_utc(),
                    &started_at,
                    &error,
                    &epoch,
                ],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.get(0))
    }

    pub async fn write_run(&self, run: &NewRun) -> Result<WriteOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        match write_run_tx(&tx, run, self.fence.as_ref()).await {
            Ok(WriteOutcome::AlreadyStored) => {
                tx.rollback().await.map_err(pg_err)?;
                Ok(WriteOutcome::AlreadyStored)
            }
            Ok(outcome) => {
                #[cfg(feature = "test-support")]
                super::testing::stall_before_commit().await;
                match tx.commit().await {
                    Ok(()) => Ok(outcome),
                    // Another process stored the same update first.
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                        Ok(WriteOutcome::AlreadyStored)
                    }
                    Err(e) => Err(pg_err(e)),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Hide the password of a URL in messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A world's state ([`query::runs::world_state`]), its row locked until the
/// transaction ends when `for_update`.
async fn read_state(
    client: &impl deadpool_postgres::GenericClient,
    world: &str,
    for_update: bool,
) -> Result<WorldState, StoreError> {
    let mut q = query::runs::world_state(Dialect::Postgres, world);
    if for_update {
        q.sql.push_str(" FOR UPDATE");
    }
    let rows = PgExec::new(client).fetch(&q, row::world_state_of).await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

async fn write_run_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    run: &NewRun,
    fence: Option<&super::Fence>,
) -> Result<WriteOutcome, StoreError> {
    let world = run.world.as_str();
    // A leased world's writer proves its lease first, and holds it until
    // the commit.
    if let Some(fence) = fence {
        lease::check_fence(tx, world, fence).await?;
    }
    let epoch = fence.map(|f| f.epoch);
    let ut = run.update_time.with_timezone(&Utc);
    let off = run.update_time.offset().local_minus_utc();
    // Serialize writers of one world on its state row.
    tx.execute(
        "INSERT INTO world_state (world, site_offset, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (world) DO NOTHING",
        &[&world, &off],
    )
    .await
    .map_err(pg_err)?;
    let state = read_state(tx, world, true).await?;
    if let (Some(mine), Some(stored)) = (epoch, state.epoch)
        && stored > mine
    {
        // The world's state only moves forward in epoch.
        return Err(StoreError::Fenced(format!(
            "world `{world}`: its state was written at epoch {stored}, after this writer's {mine}"
        )));
    }
    let exists = tx
        .query_opt(
            "SELECT id FROM runs WHERE world = $1 AND update_time = $2 AND status = 'ok'",
            &[&world, &ut],
        )
        .await
        .map_err(pg_err)?;
    if exists.is_some() {
        return Ok(WriteOutcome::AlreadyStored);
    }
    let kind = pass_kind(
        state.last_update_time,
        state.last_rebase,
        run.update_time,
        run.reset_minutes,
    );
    let players = dedupe_players(&run.players);
    let previous: HashMap<String, i64> = tx
        .query(
            "SELECT name, experience FROM players WHERE world = $1",
            &[&world],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    let deltas = compute_deltas(&previous, &players, kind);
    let run_id: i64 = tx
        .query_one(
            "INSERT INTO runs (world, update_time, site_offset, started_at, finished_at, status, rows, deltas, epoch)
             VALUES ($1, $2, $3, $4, now(), 'ok', $5, $6, $7) RETURNING id",
            &[
                &world,
                &ut,
                &off,
                &run.started_at,
                &(players.len() as i64),
                &(deltas.len() as i64),
                &epoch,
            ],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
    let guilds: Vec<&str> = players.iter().map(|p| p.guild.as_str()).collect();
    let vocations: Vec<&str> = players.iter().map(|p| p.vocation.as_str()).collect();
    let levels: Vec<i64> = players.iter().map(|p| i64::from(p.level)).collect();
    let xps: Vec<i64> = players.iter().map(|p| p.experience).collect();
    tx.execute(
        "INSERT INTO players (world, name, guild, vocation, level, experience, update_time, site_offset)
         SELECT $1, n, g, v, l, x, $7, $8
         FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[]) AS t(n, g, v, l, x)
         ON CONFLICT (world, name) DO UPDATE SET guild = EXCLUDED.guild,
           vocation = EXCLUDED.vocation, level = EXCLUDED.level,
           experience = EXCLUDED.experience, update_time = EXCLUDED.update_time,
           site_offset = EXCLUDED.site_offset",
        &[&world, &names, &guilds, &vocations, &levels, &xps, &ut, &off],
    )
    .await
    .map_err(pg_err)?;
    let prev = state.last_update_time.map(|t| t.with_timezone(&Utc));
    let d_names: Vec<&str> = deltas.iter().map(|d| d.name.as_str()).collect();
    let d_guilds: Vec<&str> = deltas.iter().map(|d| d.guild.as_str()).collect();
    let d_values: Vec<i64> = deltas.iter().map(|d| d.delta).collect();
    tx.execute(
        "INSERT INTO deltas (run_id, world, name, guild, delta, update_time, previous_update_time, site_offset)
         SELECT $1, $2, n, g, d, $6, $7, $8
         FROM UNNEST($3::TEXT[], $4::TEXT[], $5::BIGINT[]) WITH ORDINALITY AS t(n, g, d, i)
         ORDER BY i",
        &[&run_id, &world, &d_names, &d_guilds, &d_values, &ut, &prev, &off],
    )
    .await
    .map_err(pg_err)?;
    let rebase = match kind {
        PassKind::Rebase { boundary } => Some(boundary),
        _ => state.last_rebase,
    }
    .map(|t| t.with_timezone(&Utc));
    tx.execute(
        "UPDATE world_state SET last_update_time = $2, last_rebase = $3, site_offset = $4,
           updated_at = now(), epoch = COALESCE($5, epoch) WHERE world = $1",
        &[&world, &ut, &rebase, &off, &epoch],
    )
    .await
    .map_err(pg_err)?;
    Ok(WriteOutcome::Stored {
        run_id,
        rows: players.len(),
        deltas,
        kind,
    })
}

#[cfg(test)]
mod classification {
    use super::transient_sqlstate;

    #[test]
    fn sqlstates_split_into_transient_and_permanent() {
        for code in [
            "08006", "08001", "40001", "40P01", "53000", "53100", "53200", "53300", "57P01",
            "55P03",
        ] {
            assert!(transient_sqlstate(code), "{code}");
        }
        // unique violation, undefined table, syntax error, too many columns
        for code in ["23505", "42P01", "42601", "54011", "53400"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    #[test]
    fn the_apis_connections_end_long_statements_and_idle_transactions() {
        let reads = crate::store::ReadSettings {
            query_timeout: Duration::from_millis(2500),
            ..crate::store::ReadSettings::default()
        };
        assert_eq!(
            reading_options("postgres://u@127.0.0.1/db", reads).expect("options"),
            "-c statement_timeout=2500 -c idle_in_transaction_session_timeout=30000"
        );
        // The URL's own options are kept, ours come after (the last wins).
        let theirs = "postgres://u@127.0.0.1/db?options=-c%20search_path%3Dx";
        assert_eq!(
            reading_options(theirs, reads).expect("options"),
            "-c search_path=x -c statement_timeout=2500 -c idle_in_transaction_session_timeout=30000"
        );
        assert!(matches!(
            reading_options("postgres://u@127.0.0.1/db?sslmode=nonsense", reads),
            Err(StoreError::BadUrl(_))
        ));
    }
}
