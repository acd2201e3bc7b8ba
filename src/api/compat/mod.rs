//! The replaced system's data API, same paths, same shapes (see
//! `docs/API.md`, "Compatibility endpoints"): the delta feed, rankings,
//! players, graphs, status data, the scraping config, manual updates, the
//! console stream, CSV downloads, `/health`, and the watched players'
//! endpoints (`/api/vip/…`, [`vip`]).
//!
//! Like the replaced app, these paths ignore query parameters they do not
//! know, treat an empty parameter (`?world=`) as absent, and write times as
//! naive site-local ISO 8601 ([`crate::legacy`]). `datetime1`/`datetime2`
//! take what its frontend sends (`2026-01-04T19:43`, with or without
//! seconds and offset). Errors are `{error, message, status}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Offset as _};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::Body as ErrorBody;
use super::query::Lenient;
use super::{ApiError, ApiState, ControlError, STORE_TIMEOUT, authorize, json};
use crate::legacy::{self, iso};
use crate::store::{DeltaRow, Store, StoreError, TimeRange};

mod download;
mod graph;
mod makers;
pub(super) mod player_details;
mod plotly;
mod upload;
mod vip;

/// Default rows of `/api/delta`.
pub const DELTA_DEFAULT_LIMIT: u32 = 100;
/// Default rows of `/api/recent-updates`.
pub const RECENT_DEFAULT_LIMIT: u32 = 20;
/// Default rows of `/api/top-players`.
pub const TOP_DEFAULT_LIMIT: u32 = 10;
/// Largest `limit` of the compatibility endpoints; larger ones are capped.
pub const COMPAT_MAX_LIMIT: u32 = 5_000;
/// Most players in one `/api/graph` request.
pub const GRAPH_MAX_NAMES: usize = 50;
/// Longest period of one request (`datetime1` to `datetime2`), in days: a
/// longer one is refused (422); an open start is read as this long before
/// the end (or before the newest update).
pub const PERIOD_MAX_DAYS: i64 = 366;
/// Most players one `/api/rankings-table` or `/api/players` answer (or a
/// graph's world comparison) may hold; more is refused (422).
pub const PLAYERS_MAX_ROWS: u32 = 20_000;
/// Most deltas one `/api/graph` or `/api/player-graph` answer may hold;
/// more is refused (422).
pub const GRAPH_MAX_ROWS: u32 = 50_000;

/// One configured world as `/api/scraping-config` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConfiguredWorld {
    /// World.
    pub world: String,
    /// Its guilds, in config order.
    pub guilds: Vec<String>,
}

/// What the compatibility endpoints need from the config.
#[derive(Debug, Clone)]
pub struct CompatSettings {
    /// The site's time zone (`[site] utc_offset`): times without an offset
    /// are read in it; `/health` and the console speak it.
    pub site_offset: FixedOffset,
    /// `[[worlds]]`.
    pub worlds: Vec<ConfiguredWorld>,
    /// The config file (named by the 405 of `POST /api/scraping-config`).
    pub config_path: Option<PathBuf>,
    /// In single mode, the one worker that scrapes every world.
    pub single_worker: Option<String>,
    /// The players each world watches by config (`[[worlds]] watch`);
    /// those added at run time are in the store.
    pub watch: BTreeMap<String, Vec<String>>,
    /// How long `/api/player-details/{name}` waits for a worker's answer:
    /// the site client's worst case (every attempt timing out, with its
    /// backoffs) and a margin for the budget's queue.
    pub player_details_timeout: Duration,
}

/// UTC-3, the site's default time zone.
fn default_site_offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or(chrono::Utc.fix())
}

impl Default for CompatSettings {
    /// UTC-3 (the site's default), no worlds.
    fn default() -> Self {
        CompatSettings {
            site_offset: default_site_offset(),
            worlds: Vec::new(),
            config_path: None,
            single_worker: None,
            watch: BTreeMap::new(),
            player_details_timeout: Duration::from_secs(30),
        }
    }
}

impl CompatSettings {
    /// From a loaded config.
    pub fn from_config(config: &crate::config::Config) -> CompatSettings {
        CompatSettings {
            site_offset: FixedOffset::east_opt(config.site.utc_offset_minutes * 60)
                .unwrap_or_else(default_site_offset),
            worlds: config
                .worlds
                .iter()
                .map(|w| ConfiguredWorld {
                    world: w.name.clone(),
                    guilds: w.guilds.clone(),
                })
                .collect(),
            config_path: Some(config.path.clone()),
            single_worker: (config.pool.mode == crate::config::Mode::Single)
                .then(|| crate::topology::SINGLE_WORKER.to_string()),
            watch: config
                .worlds
                .iter()
                .filter(|w| !w.watch.is_empty())
                .map(|w| (w.name.clone(), w.watch.clone()))
                .collect(),
            player_details_timeout: player_details_timeout(&config.site),
        }
    }
}

/// The site client's worst case for one page (every attempt timing out,
/// each followed by its longest backoff) plus 5 s for the budget's queue,
/// at most 2 minutes.
fn player_details_timeout(site: &crate::site::SiteSettings) -> Duration {
    let attempts = site.retries.saturating_add(1);
    let backoff = site
        .retry_backoff
        .saturating_mul(2u32.saturating_pow(site.retries.min(16)))
        .min(Duration::from_secs(30));
    (site.request_timeout + backoff)
        .saturating_mul(attempts)
        .saturating_add(Duration::from_secs(5))
        .min(Duration::from_secs(120))
}

/// The compatibility routes (merged into [`super::routes`]), each with
/// its operation in /api/openapi.json.
pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(delta))
        .routes(routes!(recent_updates))
        .routes(routes!(top_players))
        .routes(routes!(rankings_table))
        .routes(routes!(players))
        .routes(routes!(date_range))
        .routes(routes!(graph_handler))
        .routes(routes!(player_graph))
        .routes(routes!(status_data))
        .routes(routes!(scraping_config, scraping_config_moved))
        .routes(routes!(manual_update))
        .routes(routes!(console_stream))
        .routes(routes!(health))
        .routes(routes!(player_details::player_details))
        .routes(routes!(download::deltas))
        .routes(routes!(download::exps))
        .routes(routes!(vip::list))
        .routes(routes!(vip::add))
        .routes(routes!(vip::remove))
        .routes(routes!(vip::deltas))
        .routes(routes!(vip::graph))
        .merge(makers::routes())
        .merge(upload::routes())
}

// ----- parameters ----------------------------------------------------------

/// The site's local wall time without offset, as the replaced system wrote
/// it ([`legacy::iso`]): `2026-01-04T19:43:00`.
#[derive(ToSchema)]
#[schema(value_type = String, example = "2026-01-04T19:43:00")]
#[allow(dead_code)]
pub(super) struct LegacyTime(String);

/// The answers of a store query: its own 200, and these.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(super) enum StoreErrors<'a> {
    /// A bad parameter or body (named in the message).
    #[response(status = 400)]
    Bad(ErrorBody<'a>),
    /// Over a cap (`over_cap`): a period longer than 366 days, too many
    /// players or deltas; the message names the cap.
    #[response(status = 422)]
    OverCap(ErrorBody<'a>),
    /// No store configured, the store is unreachable, or the query was
    /// stopped at its deadline.
    #[response(status = 503)]
    Unavailable(ErrorBody<'a>),
}

/// `world` and `guild`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WorldGuild {
    /// Only this world.
    world: Option<String>,
    /// Only this guild.
    guild: Option<String>,
}

/// `/api/delta`'s parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeltaQuery {
    /// Rows, default 100, capped at 5000.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
    /// Only this world.
    world: Option<String>,
    /// Only this guild.
    guild: Option<String>,
}

/// `/api/recent-updates`' parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecentQuery {
    /// Rows, default 20, capped at 5000.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
    /// Only this world.
    world: Option<String>,
    /// Only this guild.
    guild: Option<String>,
}

/// `/api/top-players`' parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TopQuery {
    /// Rows, default 10, capped at 5000.
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
    /// From (inclusive): ISO 8601 (`2026-01-04T19:43`, seconds and offset
    /// optional; site-local without an offset).
    datetime1: Option<String>,
    /// To (inclusive), like `datetime1`.
    datetime2: Option<String>,
    /// Only this world.
    world: Option<String>,
}

/// A period in the query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PeriodQuery {
    /// From (inclusive): ISO 8601 (`2026-01-04T19:43`, seconds and offset
    /// optional; site-local without an offset).
    datetime1: Option<String>,
    /// To (inclusive), like `datetime1`.
    datetime2: Option<String>,
}

/// `world` alone.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WorldQuery {
    /// Only this world.
    world: Option<String>,
}

/// `/api/console-stream`'s parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FormatQuery {
    /// `text` (default) or `json`.
    format: Option<String>,
}

/// A player name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct NamePath {
    /// Player name, URL-encoded.
    name: String,
}

fn limit_value(v: Option<&str>, default: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.min(u64::from(COMPAT_MAX_LIMIT)) as u32),
            _ => Err(ApiError::bad_param(
                "limit",
                format!(
                    "must be a whole number of at least 1 (values above {COMPAT_MAX_LIMIT} are capped)"
                ),
            )),
        },
    }
}

fn time_value(
    name: &str,
    v: Option<&str>,
    site: FixedOffset,
) -> Result<Option<DateTime<FixedOffset>>, ApiError> {
    match v.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => legacy::parse_time(text, site).map(Some).ok_or_else(|| {
            ApiError::bad_param(name, format!("`{text}` is not {}", legacy::ACCEPTED_TIMES))
        }),
    }
}

fn period(d1: Option<&str>, d2: Option<&str>, site: FixedOffset) -> Result<TimeRange, ApiError> {
    let range = TimeRange {
        from: time_value("datetime1", d1, site)?,
        to: time_value("datetime2", d2, site)?,
    };
    if let (Some(a), Some(b)) = (range.from, range.to)
        && a > b
    {
        return Err(ApiError::bad_param(
            "datetime2",
            "must not be before datetime1",
        ));
    }
    Ok(range)
}

/// `range` within [`PERIOD_MAX_DAYS`]: a closed period longer than that,
/// or an open end further than that from its start, is refused; an open
/// start becomes the cap's length before the end (`to`, else the newest
/// update, else now).
fn capped(
    range: TimeRange,
    newest: Option<DateTime<FixedOffset>>,
    now: DateTime<FixedOffset>,
) -> Result<TimeRange, ApiError> {
    let cap = chrono::Duration::days(PERIOD_MAX_DAYS);
    let over = |from: DateTime<FixedOffset>, to: DateTime<FixedOffset>| {
        ApiError::OverCap(format!(
            "the period spans {} days, over the cap of {PERIOD_MAX_DAYS} days per request: \
             ask for a shorter period (datetime1, datetime2)",
            (to - from).num_days()
        ))
    };
    match (range.from, range.to) {
        (Some(from), Some(to)) if to - from > cap => Err(over(from, to)),
        (Some(from), None) => {
            let end = newest.unwrap_or(now).max(from);
            if end - from > cap {
                Err(over(from, end))
            } else {
                Ok(range)
            }
        }
        (None, to) => {
            let end = to.or(newest).unwrap_or(now);
            Ok(TimeRange {
                from: Some(end - cap),
                to,
            })
        }
        _ => Ok(range),
    }
}

/// The request's period ([`period`]) within the cap ([`capped`]).
async fn capped_period(
    state: &ApiState,
    d1: Option<&str>,
    d2: Option<&str>,
) -> Result<TimeRange, ApiError> {
    let site = state.compat().site_offset;
    let range = period(d1, d2, site)?;
    let newest = match range.from {
        Some(_) if range.to.is_some() => None,
        _ => state.last_update().await,
    };
    capped(range, newest, legacy::now_at(site))
}

/// Refuse an answer of more than `cap` rows (the query asked for one more).
fn within<T>(rows: Vec<T>, cap: u32, what: &str, narrow: &str) -> Result<Vec<T>, ApiError> {
    if rows.len() > cap as usize {
        Err(ApiError::OverCap(format!(
            "more than {cap} {what} (the cap per request): {narrow}"
        )))
    } else {
        Ok(rows)
    }
}

/// `{datetime1?, datetime2?}` (strings or null; an empty body is `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = Period)]
struct PeriodBody {
    /// From (inclusive); empty or null = no bound.
    #[serde(default)]
    datetime1: Option<String>,
    /// To (inclusive); empty or null = no bound.
    #[serde(default)]
    datetime2: Option<String>,
}

/// `{names[], datetime1?, datetime2?}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = GraphRequest)]
struct GraphBody {
    /// The players (1 to 50).
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    names: Vec<String>,
    #[serde(default)]
    datetime1: Option<String>,
    #[serde(default)]
    datetime2: Option<String>,
}

fn json_body<T: Default + serde::de::DeserializeOwned>(
    body: &Bytes,
    shape: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadBody(format!("the body must be JSON {shape} ({e})")))
}

fn store(state: &ApiState) -> Result<Store, ApiError> {
    state.store().ok_or(ApiError::NoStore)
}

/// Run a store query with the API's deadline.
async fn query<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(STORE_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::from_store(what, &e)),
        Err(_) => Err(ApiError::store(&format!("{what}: timed out"))),
    }
}

// ----- the delta feed ------------------------------------------------------

/// A delta as `/api/delta` shows it.
#[derive(Debug, Serialize, ToSchema)]
struct FeedDelta<'a> {
    name: &'a str,
    deltaexp: i64,
    #[schema(value_type = LegacyTime)]
    update_time: String,
    /// The world's previous update (the update itself for a world's first).
    #[schema(value_type = LegacyTime)]
    prev_update_time: String,
    world: &'a str,
    guild: &'a str,
}

impl<'a> From<&'a DeltaRow> for FeedDelta<'a> {
    fn from(d: &'a DeltaRow) -> Self {
        FeedDelta {
            name: &d.name,
            deltaexp: d.delta,
            update_time: iso(d.update_time),
            prev_update_time: iso(d.previous_update_time.unwrap_or(d.update_time)),
            world: &d.world,
            guild: &d.guild,
        }
    }
}

/// `/api/delta`.
#[derive(Serialize, ToSchema)]
struct DeltaFeed<'a> {
    deltas: Vec<FeedDelta<'a>>,
}

/// The live delta feed: newest update first, then by name.
#[utoipa::path(get, path = "/api/delta", operation_id = "deltaFeed", tag = "compatibility",
    params(DeltaQuery),
    responses((status = 200, description = "Deltas.", body = DeltaFeed), StoreErrors))]
async fn delta(
    State(state): State<ApiState>,
    Lenient(p): Lenient<DeltaQuery>,
) -> Result<Response, ApiError> {
    let limit = limit_value(p.limit.as_deref(), DELTA_DEFAULT_LIMIT)?;
    let store = store(&state)?;
    let rows = query(
        "delta feed",
        store.delta_feed(p.world.as_deref(), p.guild.as_deref(), limit),
    )
    .await?;
    let deltas: Vec<FeedDelta<'_>> = rows.iter().map(FeedDelta::from).collect();
    Ok(json(
        StatusCode::OK,
        &DeltaFeed { deltas },
        64 + rows.len() * 160,
    ))
}

/// A row of `/api/recent-updates`: the replaced system's record (its CSV
/// column `update time`) plus the feed's keys.
#[derive(Debug, Serialize, ToSchema)]
struct RecentUpdate<'a> {
    name: &'a str,
    deltaexp: i64,
    #[serde(rename = "update time")]
    #[schema(value_type = LegacyTime)]
    update_time_column: String,
    #[schema(value_type = LegacyTime)]
    update_time: String,
    #[schema(value_type = LegacyTime)]
    prev_update_time: String,
    world: &'a str,
    guild: &'a str,
}

/// The latest delta rows (the replaced system's records, with its `update
/// time` column).
#[utoipa::path(get, path = "/api/recent-updates", operation_id = "recentUpdates", tag = "compatibility",
    params(RecentQuery),
    responses((status = 200, description = "Delta rows.", body = Vec<RecentUpdate>), StoreErrors))]
async fn recent_updates(
    State(state): State<ApiState>,
    Lenient(p): Lenient<RecentQuery>,
) -> Result<Response, ApiError> {
    let limit = limit_value(p.limit.as_deref(), RECENT_DEFAULT_LIMIT)?;
    let store = store(&state)?;
    let rows = query(
        "recent updates",
        store.delta_feed(p.world.as_deref(), p.guild.as_deref(), limit),
    )
    .await?;
    let items: Vec<RecentUpdate<'_>> = rows
        .iter()
        .map(|d| {
            let f = FeedDelta::from(d);
            RecentUpdate {
                name: f.name,
                deltaexp: f.deltaexp,
                update_time_column: f.update_time.clone(),
                update_time: f.update_time,
                prev_update_time: f.prev_update_time,
                world: f.world,
                guild: f.guild,
            }
        })
        .collect();
    Ok(json(StatusCode::OK, &items, 64 + rows.len() * 200))
}

// ----- rankings ------------------------------------------------------------

/// A row of `/api/top-players`.
#[derive(Serialize, ToSchema)]
struct Top<'a> {
    name: &'a str,
    total_exp: i64,
}

/// Players by experience gained over the period, largest first.
#[utoipa::path(get, path = "/api/top-players", operation_id = "topPlayers", tag = "compatibility",
    params(TopQuery),
    responses((status = 200, description = "Top players.", body = Vec<Top>), StoreErrors))]
async fn top_players(
    State(state): State<ApiState>,
    Lenient(p): Lenient<TopQuery>,
) -> Result<Response, ApiError> {
    let limit = limit_value(p.limit.as_deref(), TOP_DEFAULT_LIMIT)?;
    let range = capped_period(&state, p.datetime1.as_deref(), p.datetime2.as_deref()).await?;
    let store = store(&state)?;
    let totals = query(
        "top players",
        store.player_totals(range, p.world.as_deref(), Some(limit)),
    )
    .await?;
    let items: Vec<Top<'_>> = totals
        .iter()
        .map(|t| Top {
            name: &t.name,
            total_exp: t.total,
        })
        .collect();
    Ok(json(StatusCode::OK, &items, 64 + items.len() * 48))
}

/// Round to 2 decimals, as the replaced system's averages were.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A row of `/api/rankings-table`.
#[derive(Serialize, ToSchema)]
struct Ranking<'a> {
    name: &'a str,
    total_exp: i64,
    updates: i64,
    /// Rounded to 2 decimals.
    avg_exp: f64,
    max_exp: i64,
    min_exp: i64,
}

/// `/api/rankings-table`.
#[derive(Serialize, ToSchema)]
struct Rankings<'a> {
    rankings: Vec<Ranking<'a>>,
}

/// Every player's deltas over the period, aggregated; largest total first.
#[utoipa::path(post, path = "/api/rankings-table", operation_id = "rankingsTable", tag = "compatibility",
    params(WorldQuery),
    request_body(content = Option<PeriodBody>, description = "The period (an empty body: every update)."),
    responses((status = 200, description = "Rankings.", body = Rankings), StoreErrors))]
async fn rankings_table(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: PeriodBody = json_body(&body, "{datetime1?, datetime2?}")?;
    let range = capped_period(&state, b.datetime1.as_deref(), b.datetime2.as_deref()).await?;
    let store = store(&state)?;
    let totals = query(
        "rankings table",
        store.player_totals(range, p.world.as_deref(), Some(PLAYERS_MAX_ROWS + 1)),
    )
    .await?;
    let totals = within(
        totals,
        PLAYERS_MAX_ROWS,
        "players in the period",
        "ask for one world (?world=) or a shorter period",
    )?;
    let rankings: Vec<Ranking<'_>> = totals
        .iter()
        .map(|t| Ranking {
            name: &t.name,
            total_exp: t.total,
            updates: t.updates,
            avg_exp: round2(t.total as f64 / t.updates.max(1) as f64),
            max_exp: t.max,
            min_exp: t.min,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &Rankings { rankings },
        64 + totals.len() * 120,
    ))
}

/// Names of the players with deltas, sorted.
#[utoipa::path(get, path = "/api/players", operation_id = "players", tag = "compatibility",
    params(WorldGuild),
    responses((status = 200, description = "Names.", body = Vec<String>), StoreErrors))]
async fn players(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldGuild>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let names = query(
        "players",
        store.player_names_at_most(
            p.world.as_deref(),
            p.guild.as_deref(),
            Some(PLAYERS_MAX_ROWS + 1),
        ),
    )
    .await?;
    let names = within(
        names,
        PLAYERS_MAX_ROWS,
        "players",
        "ask for one world (?world=) or one guild (?guild=)",
    )?;
    Ok(json(StatusCode::OK, &names, 16 + names.len() * 24))
}

/// `/api/date-range`.
#[derive(Serialize, ToSchema)]
struct DateRange {
    #[schema(value_type = Option<LegacyTime>, required = true)]
    min: Option<String>,
    #[schema(value_type = Option<LegacyTime>, required = true)]
    max: Option<String>,
}

/// First and last update times of the deltas (null without deltas).
#[utoipa::path(get, path = "/api/date-range", operation_id = "dateRange", tag = "compatibility",
    params(WorldGuild),
    responses((status = 200, description = "The range.", body = DateRange), StoreErrors))]
async fn date_range(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldGuild>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let range = query(
        "date range",
        store.delta_time_range(p.world.as_deref(), p.guild.as_deref()),
    )
    .await?;
    let answer = match range {
        Some((a, b)) => DateRange {
            min: Some(iso(a)),
            max: Some(iso(b)),
        },
        None => DateRange {
            min: None,
            max: None,
        },
    };
    Ok(json(StatusCode::OK, &answer, 64))
}

// ----- graphs --------------------------------------------------------------

/// The named players' experience over the period: `graph`, the replaced
/// system's Plotly figure as JSON text (bars per update), `figure`,
/// worldpool's cumulative figure; their statistics, and where each stands
/// among its world's players.
#[utoipa::path(post, path = "/api/graph", operation_id = "graph", tag = "compatibility",
    request_body = GraphBody,
    responses((status = 200, description = "Graph, statistics, comparison.", body = graph::GraphAnswer), StoreErrors))]
async fn graph_handler(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: GraphBody = json_body(&body, "{names: [...], datetime1?, datetime2?}")?;
    let mut names: Vec<String> = Vec::new();
    for n in b.names {
        let n = n.trim().to_string();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err(ApiError::BadBody(
            "No players selected: send {\"names\": [\"Player\", ...]}".to_string(),
        ));
    }
    if names.len() > GRAPH_MAX_NAMES {
        return Err(ApiError::BadBody(format!(
            "at most {GRAPH_MAX_NAMES} names per graph"
        )));
    }
    let range = capped_period(&state, b.datetime1.as_deref(), b.datetime2.as_deref()).await?;
    let store = store(&state)?;
    let answer = graph::graph_answer(&store, &names, range).await?;
    Ok(json(StatusCode::OK, &answer, 4096))
}

/// `/api/player-graph/{name}`.
#[derive(Serialize, ToSchema)]
struct PlayerGraph<'a> {
    /// The replaced system's figure as JSON text.
    #[schema(value_type = graph::PlotlyFigureText)]
    graph: String,
    player: &'a str,
    /// worldpool's cumulative figure.
    figure: plotly::PlotlyFigure,
}

/// One player's experience: `graph`, the replaced system's Plotly figure as
/// JSON text; `figure`, worldpool's cumulative figure.
#[utoipa::path(get, path = "/api/player-graph/{name}", operation_id = "playerGraph", tag = "compatibility",
    params(NamePath, PeriodQuery),
    responses((status = 200, description = "The graph.", body = PlayerGraph), StoreErrors))]
async fn player_graph(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    Lenient(p): Lenient<PeriodQuery>,
) -> Result<Response, ApiError> {
    let name = match path {
        Ok(Path(name)) if !name.trim().is_empty() => name,
        Ok(_) => return Err(ApiError::bad_param("name", "must not be empty")),
        Err(e) => {
            return Err(ApiError::bad_param(
                "name",
                format!("not a valid URL-encoded UTF-8 name ({})", e.body_text()),
            ));
        }
    };
    let range = capped_period(&state, p.datetime1.as_deref(), p.datetime2.as_deref()).await?;
    let store = store(&state)?;
    let rows = query(
        "player graph",
        store.player_deltas_at_most(std::slice::from_ref(&name), range, Some(GRAPH_MAX_ROWS + 1)),
    )
    .await?;
    let rows = within(rows, GRAPH_MAX_ROWS, "deltas", "ask for a shorter period")?;
    let names = std::slice::from_ref(&name);
    Ok(json(
        StatusCode::OK,
        &PlayerGraph {
            graph: graph::legacy_figure(names, &rows).to_json_string(),
            player: &name,
            figure: graph::cumulative_figure(names, &rows),
        },
        1024 + rows.len() * 160,
    ))
}

// ----- status and config ---------------------------------------------------

/// A routine of a world's status page.
#[derive(Serialize, ToSchema)]
struct Routine<'a> {
    rotina: &'a str,
    #[serde(rename = "last update")]
    #[schema(value_type = Option<LegacyTime>, required = true)]
    last_update: Option<String>,
    time_outdated: &'a str,
    status: &'a str,
}

/// `/api/status-data`.
#[derive(Serialize, ToSchema)]
struct StatusData<'a> {
    #[schema(value_type = LegacyTime)]
    fetch_time: String,
    /// Per world, its routines.
    worlds: BTreeMap<&'a str, Vec<Routine<'a>>>,
}

/// The last parsed status page of each world, kept by the workers at each
/// check.
#[utoipa::path(get, path = "/api/status-data", operation_id = "statusData", tag = "compatibility",
    responses(
        (status = 200, description = "Status data.", body = StatusData),
        (status = 404, description = "No worker has checked the status page yet.", body = ErrorBody),
        (status = 503, description = "No store configured, or the store is unreachable.", body = ErrorBody),
    ))]
async fn status_data(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let pages = query("status data", store.status_pages()).await?;
    let Some(fetch_time) = pages.iter().map(|p| p.fetch_time).max() else {
        return Err(ApiError::NotFound(
            "No status data available yet: it is kept from the first status-page check of a worker"
                .to_string(),
        ));
    };
    let worlds = pages
        .iter()
        .map(|p| {
            (
                p.world.as_str(),
                p.routines
                    .iter()
                    .map(|r| Routine {
                        rotina: &r.rotina,
                        last_update: r.last_update.map(iso),
                        time_outdated: &r.time_outdated,
                        status: &r.status,
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &StatusData {
            fetch_time: iso(fetch_time),
            worlds,
        },
        256 + pages.len() * 256,
    ))
}

/// The configured worlds and guilds (from the config file).
#[utoipa::path(get, path = "/api/scraping-config", operation_id = "scrapingConfig", tag = "compatibility",
    responses((status = 200, description = "Worlds.", body = Vec<ConfiguredWorld>)))]
async fn scraping_config(State(state): State<ApiState>) -> Response {
    json(StatusCode::OK, &state.compat().worlds, 256)
}

/// Refused: the world list lives in the config file ([[worlds]]); edit it,
/// then `worldpool reload` or restart.
#[utoipa::path(post, path = "/api/scraping-config", operation_id = "setScrapingConfig", tag = "compatibility",
    responses((status = 405, description = "Always; the message says where the world list lives.", body = ErrorBody)))]
async fn scraping_config_moved(State(state): State<ApiState>) -> ApiError {
    let file = state
        .compat()
        .config_path
        .as_ref()
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    ApiError::Moved(format!(
        "the world list is no longer changed through the API: it lives in the config file{file}. \
         Edit its [[worlds]] entries (name, guilds), then run `worldpool reload` or restart \
         `worldpool run`"
    ))
}

// ----- manual update -------------------------------------------------------

/// The replaced system's write endpoints took its shared password in a form
/// field: accept the token as `password` in a JSON or form body too.
fn body_password(headers: &HeaderMap, body: &Bytes) -> Option<String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        return url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned());
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("password")?
        .as_str()
        .map(String::from)
}

/// The control token as a bearer header, or as `password` in the body.
fn authorize_compat(state: &ApiState, headers: &HeaderMap, body: &Bytes) -> Result<(), ApiError> {
    match authorize(state, headers) {
        Ok(()) => Ok(()),
        Err(ApiError::Unauthorized) => {
            let mut with_password = HeaderMap::new();
            if let Some(pw) = body_password(headers, body)
                && let Ok(v) = format!("Bearer {pw}").parse()
            {
                with_password.insert(header::AUTHORIZATION, v);
            }
            authorize(state, &with_password)
        }
        Err(e) => Err(e),
    }
}

/// Ask `worker` to check the site now, in a task of its own: a client that
/// hangs up does not cancel the request half-way.
pub(crate) async fn check_now(state: &ApiState, worker: &str) -> Result<(), ControlError> {
    let control = state.inner.control.clone();
    let worker = worker.to_string();
    tokio::spawn(async move { control.check_now(&worker).await })
        .await
        .unwrap_or_else(|e| Err(ControlError::Failed(format!("check-now task: {e}"))))
}

/// `/api/manual-update`.
#[derive(Serialize, ToSchema)]
struct ManualUpdate<'a> {
    success: bool,
    message: String,
    /// Workers asked to check now.
    worlds: &'a [&'a str],
    /// Workers skipped: already scraping.
    busy: &'a [&'a str],
}

/// Ask every worker (or `?world=`) to check the site now.
#[utoipa::path(post, path = "/api/manual-update", operation_id = "manualUpdate", tag = "compatibility",
    description = "With a token configured it needs it: `Authorization: Bearer <WORLDPOOL_API_TOKEN>` (or `password` in a JSON or form body, as the replaced system took it); without one, on a loopback bind, clients of this machine need none.",
    security(("bearer" = [])),
    params(WorldQuery),
    responses(
        (status = 202, description = "Requested.", body = ManualUpdate),
        (status = 401, description = "Missing or wrong token.", body = ErrorBody),
        (status = 403, description = "No token configured and not served on loopback (`control_disabled`), or a page of another origin (`foreign_origin`).", body = ErrorBody),
        (status = 404, description = "Unknown world.", body = ErrorBody),
        (status = 409, description = "That worker (or every worker) is already scraping, or none is running.", body = ErrorBody),
        (status = 501, description = "This pool cannot deliver the request to workers yet.", body = ErrorBody),
        (status = 503, description = "The pool is shutting down.", body = ErrorBody),
    ))]
async fn manual_update(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_compat(&state, &headers, &body)?;
    let control = state.control();
    let targets: Vec<pool::WorkerStatus> = match p.world.as_deref() {
        Some(world) => match control.worker(world) {
            Some(w) => vec![w],
            None => {
                let configured = state.compat().worlds.iter().any(|w| w.world == world);
                match (&state.compat().single_worker, configured) {
                    (Some(single), true) => control.worker(single).into_iter().collect(),
                    _ => Vec::new(),
                }
            }
        },
        None => control.workers(),
    };
    if targets.is_empty() {
        return Err(match p.world.as_deref() {
            Some(w) => ApiError::UnknownWorker(w.to_string()),
            None => ApiError::Conflict("no worker is configured".to_string()),
        });
    }
    let scraping = |w: &pool::WorkerStatus| {
        w.report.phase.as_deref() == Some(crate::protocol::Phase::Scraping.as_str())
    };
    let busy: Vec<&str> = targets
        .iter()
        .filter(|w| w.pid.is_some() && scraping(w))
        .map(|w| w.name.as_str())
        .collect();
    let ready: Vec<&str> = targets
        .iter()
        .filter(|w| w.pid.is_some() && !scraping(w))
        .map(|w| w.name.as_str())
        .collect();
    if ready.is_empty() {
        let message = if busy.is_empty() {
            "no worker is running: start it first (POST /api/workers/{world}/start)".to_string()
        } else {
            format!(
                "already scraping: {}; try again when it finishes",
                busy.join(", ")
            )
        };
        return Err(ApiError::Conflict(message));
    }
    for name in &ready {
        match check_now(&state, name).await {
            Ok(()) => tracing::info!(world = %name, "manual update requested"),
            Err(ControlError::UnknownWorker(n)) => return Err(ApiError::UnknownWorker(n)),
            Err(ControlError::ShuttingDown) => return Err(ApiError::ShuttingDown),
            Err(ControlError::Unsupported(what)) => return Err(ApiError::NotSupported(what)),
            Err(ControlError::Failed(cause)) => {
                return Err(ApiError::internal(
                    &format!("manual update of `{name}` failed"),
                    &cause,
                ));
            }
        }
    }
    Ok(json(
        StatusCode::ACCEPTED,
        &ManualUpdate {
            success: true,
            message: format!("check requested: {}", ready.join(", ")),
            worlds: &ready,
            busy: &busy,
        },
        256,
    ))
}

// ----- console -------------------------------------------------------------

/// One console line as SSE data.
#[derive(Serialize, ToSchema)]
#[schema(as = ConsoleLine)]
struct ConsoleData<'a> {
    #[schema(value_type = LegacyTime)]
    time: String,
    world: &'a str,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    level: &'a str,
    message: &'a str,
    stream: &'a str,
    /// `[2026-01-04 19:43:00] [INFO] [Aurera] message`, the replaced
    /// system's console line.
    line: String,
}

/// `[2026-01-04 19:43:00] [INFO] [Aurera] message`: the replaced system's
/// console line (site-local time), with the world in front of the message.
fn console_text(line: &crate::logging::ConsoleLine, site: FixedOffset) -> String {
    format!(
        "[{}] [{}] [{}] {}",
        legacy::csv_time(line.time.with_timezone(&site)),
        line.level,
        line.world,
        line.message
    )
}

/// What `/api/console-stream` sends in each event's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsoleFormat {
    /// The text line, as the replaced system's pages show `event.data`.
    Text,
    /// A JSON object ([`ConsoleData`]), `?format=json`.
    Json,
}

impl ConsoleFormat {
    fn param(v: Option<&str>) -> Result<ConsoleFormat, ApiError> {
        match v.map(str::trim) {
            None | Some("text") => Ok(ConsoleFormat::Text),
            Some("json") => Ok(ConsoleFormat::Json),
            Some(_) => Err(ApiError::bad_param(
                "format",
                "must be `text` (the default: each event's data is the log line) or `json`",
            )),
        }
    }
}

/// The first event of a text stream, as the replaced app sent it.
pub const CONSOLE_CONNECTED: &str = "[CONNECTED] Console stream started";

fn console_event(
    line: &crate::logging::ConsoleLine,
    site: FixedOffset,
    format: ConsoleFormat,
) -> Event {
    // Unnamed events: the replaced frontend listens with `onmessage`.
    match format {
        ConsoleFormat::Text => Event::default().data(console_text(line, site)),
        ConsoleFormat::Json => {
            let data = ConsoleData {
                time: iso(line.time.with_timezone(&site)),
                world: &line.world,
                level: &line.level,
                message: &line.message,
                stream: &line.stream,
                line: console_text(line, site),
            };
            Event::default().data(serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_string()))
        }
    }
}

/// Server-Sent Events of the workers' log lines.
#[utoipa::path(get, path = "/api/console-stream", operation_id = "consoleStream", tag = "compatibility",
    description = "Unnamed events (`onmessage`) whose data is the text line `[YYYY-MM-DD HH:MM:SS] [LEVEL] [world] message`, the first being `[CONNECTED] Console stream started`; with `?format=json`, a ConsoleLine as JSON instead (no CONNECTED line). Keep-alive comments; a client that falls 1024 lines behind gets `event: lagged` and is disconnected.",
    params(FormatQuery),
    responses(
        (status = 200, description = "An event stream: text lines, or ConsoleLine objects as JSON.", content_type = "text/event-stream", body = ConsoleData),
        (status = 400, description = "`format` is neither `text` nor `json`.", body = ErrorBody),
    ))]
async fn console_stream(
    State(state): State<ApiState>,
    Lenient(p): Lenient<FormatQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let format = ConsoleFormat::param(p.format.as_deref())?;
    let rx = crate::logging::subscribe_console();
    let site = state.compat().site_offset;
    let connected = (format == ConsoleFormat::Text)
        .then(|| Ok::<_, Infallible>(Event::default().data(CONSOLE_CONNECTED)));
    let events = stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(line) => Some((console_event(&line, site, format), Some(rx))),
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(missed, "console consumer too slow; disconnecting it");
                let ev = Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed\":{missed}}}"));
                Some((ev, None))
            }
            Err(RecvError::Closed) => None,
        }
    })
    .map(Ok::<_, Infallible>);
    let events = stream::iter(connected)
        .chain(events)
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

// ----- health and scraper status -------------------------------------------

/// `/health`.
#[derive(Serialize, ToSchema)]
struct Healthy {
    /// `healthy`.
    status: &'static str,
    #[schema(value_type = LegacyTime)]
    timestamp: String,
}

/// The replaced system's health check.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "compatibility",
    responses((status = 200, description = "Healthy.", body = Healthy)))]
async fn health(State(state): State<ApiState>) -> Response {
    json(
        StatusCode::OK,
        &Healthy {
            status: "healthy",
            timestamp: iso(legacy::now_at(state.compat().site_offset)),
        },
        64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parameters() {
        let p: DeltaQuery =
            crate::api::query::lenient(Some("world=&guild=Red+Rose&limit=7&_=123&limit=9"))
                .expect("lenient");
        assert_eq!(p.world, None);
        assert_eq!(p.guild.as_deref(), Some("Red Rose"));
        assert_eq!(limit_value(p.limit.as_deref(), 100), Ok(9));
        assert_eq!(limit_value(None, 100), Ok(100));
        assert_eq!(limit_value(Some("999999"), 100), Ok(COMPAT_MAX_LIMIT));
        assert!(limit_value(Some("0"), 100).is_err());
        assert!(limit_value(Some("ten"), 100).is_err());
    }

    #[test]
    fn periods_are_capped() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).expect("time");
        let now = t("2026-12-01T00:00:00-03:00");
        let newest = Some(t("2026-11-30T12:00:00-03:00"));
        let cap = chrono::Duration::days(PERIOD_MAX_DAYS);
        let closed = |a: &str, b: &str| TimeRange::between(t(a), t(b));
        // Within the cap: unchanged.
        let ok = closed("2026-01-01T00:00:00-03:00", "2026-12-01T00:00:00-03:00");
        assert_eq!(capped(ok, newest, now), Ok(ok));
        // Over it: 422 naming the cap.
        let long = closed("2024-01-01T00:00:00-03:00", "2026-01-01T00:00:00-03:00");
        match capped(long, newest, now) {
            Err(ApiError::OverCap(m)) => assert!(m.contains("366 days"), "{m}"),
            other => panic!("{other:?}"),
        }
        // An open end measured to the newest update.
        let open_end = TimeRange {
            from: Some(t("2025-01-01T00:00:00-03:00")),
            to: None,
        };
        assert!(capped(open_end, newest, now).is_err());
        let recent = TimeRange {
            from: Some(t("2026-06-01T00:00:00-03:00")),
            to: None,
        };
        assert_eq!(capped(recent, newest, now), Ok(recent));
        // An open start: the cap's length before the end.
        assert_eq!(
            capped(TimeRange::all(), newest, now),
            Ok(TimeRange {
                from: newest.map(|n| n - cap),
                to: None
            })
        );
        let to = t("2026-03-01T00:00:00-03:00");
        assert_eq!(
            capped(
                TimeRange {
                    from: None,
                    to: Some(to)
                },
                None,
                now
            ),
            Ok(TimeRange::between(to - cap, to))
        );
        assert_eq!(
            capped(TimeRange::all(), None, now),
            Ok(TimeRange {
                from: Some(now - cap),
                to: None
            })
        );
    }

    #[test]
    fn periods() {
        let site = CompatSettings::default().site_offset;
        let r = period(Some("2026-01-04T19:43"), Some(""), site).expect("ok");
        assert_eq!(
            r.from,
            DateTime::parse_from_rfc3339("2026-01-04T19:43:00-03:00").ok()
        );
        assert_eq!(r.to, None);
        assert!(matches!(
            period(Some("soon"), None, site),
            Err(ApiError::BadParam { ref param, .. }) if param == "datetime1"
        ));
        assert!(matches!(
            period(Some("2026-01-05"), Some("2026-01-04"), site),
            Err(ApiError::BadParam { ref param, .. }) if param == "datetime2"
        ));
    }

    #[test]
    fn bodies() {
        let empty: PeriodBody = json_body(&Bytes::from_static(b" "), "x").expect("empty is {}");
        assert!(empty.datetime1.is_none());
        let b: PeriodBody = json_body(
            &Bytes::from_static(
                br#"{"datetime1": null, "datetime2": "2026-01-04T10:00", "extra": 1}"#,
            ),
            "x",
        )
        .expect("parses");
        assert_eq!(b.datetime2.as_deref(), Some("2026-01-04T10:00"));
        assert!(json_body::<PeriodBody>(&Bytes::from_static(b"{"), "x").is_err());
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        assert_eq!(
            body_password(&form, &Bytes::from_static(b"password=s%20t")),
            Some("s t".to_string())
        );
        assert_eq!(
            body_password(
                &HeaderMap::new(),
                &Bytes::from_static(br#"{"password":"x"}"#)
            ),
            Some("x".to_string())
        );
    }
}
