//! The replaced system's watched-player ("VIP") endpoints: the list, adding
//! and removing players at run time (token), their deltas, and a player's
//! graph data with statistics.
//!
//! The store is the source of truth for players added here: the world's
//! worker reads config ∪ store before each pass, so a name added here is
//! read without a restart. After storing it, `add` asks the world's worker
//! to check now ([`crate::api::Control::check_now`]); a pool that cannot
//! deliver that yet reads the name at the worker's next check.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::plotly::{
    Axis, Font, Layout, Legend, Line, Marker, PlotlyFigure, Title, Trace, TraceType, slots,
};
use super::{LegacyTime, StoreErrors, authorize_compat, query, round2, store};
use crate::api::error::Body as ErrorBody;
use crate::api::query::Lenient;
use crate::api::{ApiError, ApiState, json};
use crate::legacy::iso;
use crate::site::{check_player_name, player_key};
use crate::store::VipDelta;

/// Default rows of `/api/vip/deltas`.
pub const VIP_DELTAS_DEFAULT_LIMIT: u32 = 100;
/// Most deltas one `/api/vip/graph` reads (the newest).
pub const VIP_GRAPH_MAX_POINTS: u32 = 100_000;

/// `{name, world}` from a JSON or form body (`password` may ride along).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = VipRequest)]
pub(super) struct PlayerBody {
    /// Player name as the site spells it (compared ignoring case).
    #[serde(default)]
    #[schema(required = true)]
    name: Option<String>,
    /// A configured world (compared ignoring case); on `/api/vip/graph`,
    /// empty = every world.
    #[serde(default)]
    pub(super) world: Option<String>,
    /// The token, when not sent as a bearer header (read by
    /// `authorize_compat`, not here).
    #[serde(default)]
    #[allow(dead_code)]
    password: Option<String>,
}

pub(super) fn player_body(headers: &HeaderMap, body: &Bytes) -> Result<PlayerBody, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let mut b = PlayerBody::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "name" => b.name = Some(v.into_owned()),
                "world" => b.world = Some(v.into_owned()),
                _ => {}
            }
        }
        return Ok(b);
    }
    super::json_body(body, "{name, world}")
}

/// The player's name, checked.
pub(super) fn name_of(b: &PlayerBody) -> Result<String, ApiError> {
    let raw = b.name.as_deref().unwrap_or("");
    check_player_name(raw).map_err(|why| {
        ApiError::BadBody(format!(
            "`name` {why}: send {{\"name\": \"Player\", \"world\": \"World\"}}"
        ))
    })
}

/// The world as the config spells it (compared ignoring case); any world
/// when the API knows no config.
fn world_of(state: &ApiState, b: &PlayerBody) -> Result<String, ApiError> {
    let raw = b.world.as_deref().map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Err(ApiError::BadBody(
            "`world` is missing: send {\"name\": \"Player\", \"world\": \"World\"}".to_string(),
        ));
    }
    let compat = state.compat();
    let worlds = &compat.worlds;
    if worlds.is_empty() {
        return Ok(raw.to_string());
    }
    worlds
        .iter()
        .find(|w| w.world == raw)
        .or_else(|| {
            worlds
                .iter()
                .find(|w| w.world.to_lowercase() == raw.to_lowercase())
        })
        .map(|w| w.world.clone())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "world `{raw}` is not configured; the worlds are {}",
                worlds
                    .iter()
                    .map(|w| w.world.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The config's spelling of a player it watches in `world`, if it does.
fn in_config(state: &ApiState, world: &str, name: &str) -> Option<String> {
    let key = player_key(name);
    state
        .compat()
        .watch
        .get(world)?
        .iter()
        .find(|n| player_key(n) == key)
        .cloned()
}

/// One watched player as `/api/vip/list` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Vip)]
struct Listed {
    name: String,
    world: String,
    /// `config` (`[[worlds]] watch`) or `api` (added at run time).
    #[schema(value_type = VipSource)]
    source: &'static str,
    /// When it was added over the API (`null` for the config's).
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    added_at: Option<String>,
}

/// Where a watched player comes from.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum VipSource {
    Config,
    Api,
}

/// `/api/vip/list`.
#[derive(Serialize, utoipa::ToSchema)]
struct VipList {
    vips: Vec<Listed>,
}

/// The answers of `add` and `remove` besides their own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum ChangeErrors<'a> {
    /// A body without a valid `name` or `world`.
    #[response(status = 400)]
    Bad(ErrorBody<'a>),
    /// Missing or wrong token.
    #[response(status = 401)]
    Unauthorized(ErrorBody<'a>),
    /// No token configured and not served on loopback
    /// (`control_disabled`), or a page of another origin
    /// (`foreign_origin`).
    #[response(status = 403)]
    Forbidden(ErrorBody<'a>),
    /// The world is not configured (remove: or the player is not watched).
    #[response(status = 404)]
    NotFound(ErrorBody<'a>),
    /// remove: the player is watched by the config file (edit [[worlds]]
    /// watch).
    #[response(status = 409)]
    Conflict(ErrorBody<'a>),
    /// No store configured, or the store is unreachable.
    #[response(status = 503)]
    Unavailable(ErrorBody<'a>),
}

/// `/api/vip/list`'s and `/api/makers/list`' parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct WorldQuery {
    /// Only this world.
    pub(super) world: Option<String>,
}

/// `/api/vip/deltas`' and `/api/makers/deltas`' parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeltasQuery {
    /// Rows, default 100, capped at 5000.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub(super) limit: Option<String>,
    /// Only this player.
    pub(super) name: Option<String>,
    /// Only this world.
    pub(super) world: Option<String>,
}

/// The watched players: the config's (`[[worlds]] watch`) and those added
/// over the API.
#[utoipa::path(get, path = "/api/vip/list", operation_id = "vipList", tags = ["compatibility", "vip"],
    params(WorldQuery),
    responses((status = 200, description = "Watched players.", body = VipList), StoreErrors))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldQuery>,
) -> Result<Response, ApiError> {
    let world = p.world.as_deref();
    let store = store(&state)?;
    let stored = query("watched players", store.watched(world)).await?;
    let mut vips: Vec<Listed> = Vec::new();
    let compat = state.compat();
    for (w, names) in &compat.watch {
        if world.is_some_and(|x| x != w) {
            continue;
        }
        for n in names {
            vips.push(Listed {
                name: n.clone(),
                world: w.clone(),
                source: "config",
                added_at: None,
            });
        }
    }
    for s in stored {
        if in_config(&state, &s.world, &s.name).is_some() {
            continue;
        }
        vips.push(Listed {
            name: s.name,
            world: s.world,
            source: "api",
            added_at: Some(s.added_at.to_rfc3339()),
        });
    }
    vips.sort_by(|a, b| (&a.world, &a.name).cmp(&(&b.world, &b.name)));
    let n = vips.len();
    Ok(json(StatusCode::OK, &VipList { vips }, 64 + n * 96))
}

/// `add` and `remove` answer this.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = VipChanged)]
struct Changed {
    success: bool,
    message: String,
    /// The name as stored (the existing spelling when it was watched
    /// already).
    name: String,
    world: String,
    /// `add`: whether the player is new to the list; `remove`: whether it
    /// was removed.
    changed: bool,
    /// `add`: whether the world's worker was asked to read it now (false:
    /// it is read at the worker's next check).
    checked_now: bool,
}

/// Watch a player of a world (stored; survives restarts).
#[utoipa::path(post, path = "/api/vip/add", operation_id = "vipAdd", tags = ["compatibility", "vip"],
    description = "The world's worker is asked to read its page at once (`checked_now`); a pool that cannot deliver that reads it at the worker's next check. Needs the token (bearer header, or `password` in the body).",
    security(("bearer" = [])),
    request_body(content(
        (PlayerBody = "application/json"),
        (PlayerBody = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, description = "Watched (`changed` false: it already was).", body = Changed), ChangeErrors))]
pub(super) async fn add(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_compat(&state, &headers, &body)?;
    let b = player_body(&headers, &body)?;
    let name = name_of(&b)?;
    let world = world_of(&state, &b)?;
    let store = store(&state)?;
    let answer = |message: String, name: String, changed: bool, checked_now: bool| Changed {
        success: true,
        message,
        name,
        world: world.clone(),
        changed,
        checked_now,
    };
    if let Some(listed) = in_config(&state, &world, &name) {
        let a = answer(
            format!("`{listed}` of {world} is already watched (config file)"),
            listed.to_string(),
            false,
            false,
        );
        return Ok(json(StatusCode::OK, &a, 256));
    }
    let stored = query("watched players", store.watched(Some(&world))).await?;
    if let Some(s) = stored
        .iter()
        .find(|s| player_key(&s.name) == player_key(&name))
    {
        let a = answer(
            format!("`{}` of {world} is already watched", s.name),
            s.name.clone(),
            false,
            false,
        );
        return Ok(json(StatusCode::OK, &a, 256));
    }
    query("add watched player", store.add_watched(&world, &name)).await?;
    tracing::info!(world = %world, player = %name, "watched player added");
    // Read it now: ask the world's worker (or the single worker) to check.
    let worker = match (
        &state.compat().single_worker,
        state.control().worker(&world),
    ) {
        (_, Some(w)) => Some(w.name),
        (Some(single), None) => Some(single.clone()),
        (None, None) => None,
    };
    let (checked_now, when) = match worker {
        None => (false, "when its worker runs".to_string()),
        Some(worker) => match super::check_now(&state, &worker).await {
            Ok(()) => (true, "now".to_string()),
            Err(e) => {
                tracing::info!(world = %world, %worker, error = %e, "cannot ask the worker to check now; the player is read at its next check");
                (false, "at its worker's next check".to_string())
            }
        },
    };
    let a = answer(
        format!("`{name}` of {world} is watched; its page is read {when}"),
        name,
        true,
        checked_now,
    );
    Ok(json(StatusCode::OK, &a, 256))
}

/// Stop watching a player added over the API (its history is kept). Needs
/// the token.
#[utoipa::path(post, path = "/api/vip/remove", operation_id = "vipRemove", tags = ["compatibility", "vip"],
    security(("bearer" = [])),
    request_body(content(
        (PlayerBody = "application/json"),
        (PlayerBody = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, description = "Removed.", body = Changed), ChangeErrors))]
pub(super) async fn remove(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_compat(&state, &headers, &body)?;
    let b = player_body(&headers, &body)?;
    let name = name_of(&b)?;
    let world = world_of(&state, &b)?;
    let store = store(&state)?;
    if let Some(listed) = in_config(&state, &world, &name) {
        let file = state
            .compat()
            .config_path
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default();
        return Err(ApiError::Conflict(format!(
            "`{listed}` is watched by the config file{file}: remove it from [[worlds]] watch of {world}, then restart"
        )));
    }
    let stored = query("watched players", store.watched(Some(&world))).await?;
    let Some(s) = stored
        .iter()
        .find(|s| player_key(&s.name) == player_key(&name))
    else {
        return Err(ApiError::NotFound(format!(
            "`{name}` of {world} is not watched"
        )));
    };
    let removed = query(
        "remove watched player",
        store.remove_watched(&world, &s.name),
    )
    .await?;
    tracing::info!(world = %world, player = %s.name, "watched player removed");
    let a = Changed {
        success: true,
        message: format!(
            "`{}` of {world} is no longer watched (its history is kept)",
            s.name
        ),
        name: s.name.clone(),
        world,
        changed: removed,
        checked_now: false,
    };
    Ok(json(StatusCode::OK, &a, 256))
}

/// A VIP delta as `/api/vip/deltas` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = VipDelta)]
pub(super) struct DeltaOut<'a> {
    name: &'a str,
    world: &'a str,
    /// Raw experience gained since the player's previous read.
    delta_exp: i64,
    /// Minutes online since the previous read.
    delta_online: i64,
    #[schema(value_type = LegacyTime)]
    update_time: String,
    /// The player's previous read (the read itself when unknown, as the
    /// delta feed does).
    #[schema(value_type = LegacyTime)]
    prev_update_time: String,
    /// The site's day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    date: String,
}

/// `/api/vip/deltas` and `/api/makers/deltas`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct VipDeltas<'a> {
    deltas: Vec<DeltaOut<'a>>,
}

impl<'a> From<&'a VipDelta> for DeltaOut<'a> {
    fn from(d: &'a VipDelta) -> Self {
        DeltaOut {
            name: &d.name,
            world: &d.world,
            delta_exp: d.delta_exp,
            delta_online: d.delta_online,
            update_time: iso(d.update_time),
            prev_update_time: iso(d.prev_update_time.unwrap_or(d.update_time)),
            date: d.date.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The watched players' deltas, newest first.
#[utoipa::path(get, path = "/api/vip/deltas", operation_id = "vipDeltas", tags = ["compatibility", "vip"],
    params(DeltasQuery),
    responses((status = 200, description = "Deltas.", body = VipDeltas), StoreErrors))]
pub(super) async fn deltas(
    State(state): State<ApiState>,
    Lenient(p): Lenient<DeltasQuery>,
) -> Result<Response, ApiError> {
    let limit = super::limit_value(p.limit.as_deref(), VIP_DELTAS_DEFAULT_LIMIT)?;
    let store = store(&state)?;
    let rows = query(
        "VIP deltas",
        store.vip_deltas(p.world.as_deref(), p.name.as_deref(), limit),
    )
    .await?;
    Ok(deltas_answer(&rows))
}

/// `{deltas: [...]}` of watched players' (or makers') delta rows, as the
/// replaced pages' feeds read them.
pub(super) fn deltas_answer(rows: &[VipDelta]) -> Response {
    let deltas: Vec<DeltaOut<'_>> = rows.iter().map(DeltaOut::from).collect();
    json(StatusCode::OK, &VipDeltas { deltas }, 64 + rows.len() * 200)
}

/// One point of `graph_data`: a delta, oldest first, with running totals.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
struct Point {
    #[schema(value_type = LegacyTime)]
    update_time: String,
    #[schema(format = Date)]
    date: String,
    delta_exp: i64,
    delta_online: i64,
    /// Experience gained since the first point.
    total_exp: i64,
    /// Minutes online since the first point.
    total_online: i64,
}

/// `stats` of `/api/vip/graph` and `/api/makers/graph`.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub(super) struct Stats {
    total_exp: i64,
    /// Per update, 2 decimals.
    avg_exp: f64,
    max_exp: i64,
    total_online: i64,
    /// Per update, 2 decimals.
    avg_online: f64,
    updates: i64,
}

fn graph_of(rows: &[VipDelta]) -> (Vec<Point>, Stats) {
    let (mut total_exp, mut total_online) = (0i64, 0i64);
    let points = rows
        .iter()
        .map(|d| {
            total_exp += d.delta_exp;
            total_online += d.delta_online;
            Point {
                update_time: iso(d.update_time),
                date: d.date.format("%Y-%m-%d").to_string(),
                delta_exp: d.delta_exp,
                delta_online: d.delta_online,
                total_exp,
                total_online,
            }
        })
        .collect();
    (points, stats_of(rows))
}

/// The statistics of a watched player's (or maker's) deltas.
pub(super) fn stats_of(rows: &[VipDelta]) -> Stats {
    let total_exp: i64 = rows.iter().map(|d| d.delta_exp).sum();
    let total_online: i64 = rows.iter().map(|d| d.delta_online).sum();
    let updates = rows.len() as i64;
    Stats {
        total_exp,
        avg_exp: round2(total_exp as f64 / updates.max(1) as f64),
        max_exp: rows.iter().map(|d| d.delta_exp).max().unwrap_or(0),
        total_online,
        avg_online: round2(total_online as f64 / updates.max(1) as f64),
        updates,
    }
}

const EXP_COLOUR: &str = "#C21500";
const ONLINE_COLOUR: &str = "#3498db";

/// The replaced system's figure of a watched player (oldest first `rows`):
/// a bar of experience per read with a spline over it, and the minutes
/// online on a second axis, hovered as `online / minutes since the previous
/// read`; a run of reads with neither folded into one bar ([`slots`]).
fn vip_figure(name: &str, world: Option<&str>, rows: &[VipDelta]) -> PlotlyFigure {
    let title = match world {
        Some(w) => format!("🌟 {name} - VIP Stats ({w})"),
        None => format!("🌟 {name} - VIP Stats"),
    };
    watched_figure(&title, rows)
}

/// The figure of a watched player or a maker, under `title` (see
/// [`vip_figure`]).
pub(super) fn watched_figure(title: &str, rows: &[VipDelta]) -> PlotlyFigure {
    let title = title.to_string();
    if rows.is_empty() {
        return PlotlyFigure::empty(&format!("{title}: {}", super::graph::NO_DATA));
    }
    let times: Vec<_> = rows.iter().map(|d| d.update_time.naive_local()).collect();
    let bars = slots(&times, |i| {
        rows[i].delta_exp == 0 && rows[i].delta_online == 0
    });
    let labels: Vec<String> = bars.iter().map(|s| s.label.clone()).collect();
    let exp: Vec<Option<i64>> = bars
        .iter()
        .map(|s| Some(s.at.map_or(0, |i| rows[i].delta_exp)))
        .collect();
    // Online 0 while experience grew means the site had not counted the
    // minutes yet: a gap, not a zero.
    let online: Vec<Option<i64>> = bars
        .iter()
        .map(|s| match s.at {
            None => Some(0),
            Some(i) if rows[i].delta_online == 0 && rows[i].delta_exp > 0 => None,
            Some(i) => Some(rows[i].delta_online),
        })
        .collect();
    let online_text: Vec<String> = bars
        .iter()
        .map(|s| match s.at {
            None => "0 / 0 min".to_string(),
            Some(i) => format!("{} / {} min", rows[i].delta_online, s.minutes),
        })
        .collect();

    let mut bar = Trace::new(TraceType::Bar, "EXP Gain", labels.clone(), exp.clone());
    bar.marker = Some(Marker {
        color: EXP_COLOUR,
        size: None,
    });
    bar.text = Some(
        exp.iter()
            .map(|v| match v {
                Some(v) if *v > 0 => v.to_string(),
                _ => String::new(),
            })
            .collect(),
    );
    bar.textposition = Some("outside");
    bar.hovertemplate = Some("<b>%{x}</b><br>EXP: %{y:,.0f}<extra></extra>");
    bar.yaxis = Some("y");
    let mut trend = Trace::new(TraceType::Scatter, "EXP Trend", labels.clone(), exp);
    trend.mode = Some("lines");
    trend.line = Some(Line {
        color: EXP_COLOUR,
        width: Some(2),
        shape: Some("spline"),
    });
    trend.showlegend = Some(false);
    trend.hoverinfo = Some("skip");
    trend.yaxis = Some("y");
    let mut minutes = Trace::new(TraceType::Scatter, "Online Time (min)", labels, online);
    minutes.mode = Some("lines+markers");
    minutes.line = Some(Line {
        color: ONLINE_COLOUR,
        width: Some(2),
        shape: Some("spline"),
    });
    minutes.marker = Some(Marker {
        color: ONLINE_COLOUR,
        size: Some(8),
    });
    minutes.text = Some(online_text);
    minutes.hovertemplate = Some("<b>%{x}</b><br>%{text}<extra></extra>");
    minutes.connectgaps = Some(true);
    minutes.yaxis = Some("y2");

    let mut layout = Layout::titled(&title);
    layout.xaxis = Some(Axis {
        title: Some(Title::new("Update Time")),
        tickangle: Some(-45),
        ..Axis::default()
    });
    layout.yaxis = Some(Axis {
        title: Some(Title {
            text: "Delta EXP".to_string(),
            font: Some(Font { color: EXP_COLOUR }),
        }),
        tickfont: Some(Font { color: EXP_COLOUR }),
        ..Axis::default()
    });
    layout.yaxis2 = Some(Axis {
        title: Some(Title {
            text: "Online Time (minutes)".to_string(),
            font: Some(Font {
                color: ONLINE_COLOUR,
            }),
        }),
        tickfont: Some(Font {
            color: ONLINE_COLOUR,
        }),
        overlaying: Some("y"),
        side: Some("right"),
        ..Axis::default()
    });
    layout.height = Some(500);
    layout.legend = Some(Legend {
        orientation: "h",
        yanchor: "bottom",
        y: 1.02,
        xanchor: "right",
        x: 1.0,
    });
    layout.hovermode = Some("x unified");
    PlotlyFigure {
        data: vec![bar, trend, minutes],
        layout,
    }
}

/// `/api/vip/graph`.
#[derive(Serialize, utoipa::ToSchema)]
struct VipGraph<'a> {
    success: bool,
    name: &'a str,
    world: Option<&'a str>,
    /// The replaced system's Plotly figure as JSON text ([`vip_figure`]):
    /// `EXP Gain` bars and an `EXP Trend` spline on `y`, `Online Time
    /// (min)` on `y2`; periods labelled as in PlotlyFigureText.
    graph_data: String,
    stats: Stats,
    /// worldpool's form: each read, oldest first, with running totals.
    points: Vec<Point>,
}

/// A watched player's deltas oldest first with running totals, and their
/// statistics.
#[utoipa::path(post, path = "/api/vip/graph", operation_id = "vipGraph", tags = ["compatibility", "vip"],
    request_body = PlayerBody,
    responses((status = 200, description = "Graph data and statistics.", body = VipGraph), StoreErrors))]
pub(super) async fn graph(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b = player_body(&headers, &body)?;
    let name = name_of(&b)?;
    let world = match b.world.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) => Some(world_of(&state, &b)?),
    };
    let store = store(&state)?;
    let mut rows = query(
        "VIP graph",
        store.vip_deltas(world.as_deref(), Some(&name), VIP_GRAPH_MAX_POINTS),
    )
    .await?;
    rows.reverse();
    let (points, stats) = graph_of(&rows);
    let graph_data = vip_figure(&name, world.as_deref(), &rows).to_json_string();
    let n = points.len();
    Ok(json(
        StatusCode::OK,
        &VipGraph {
            success: true,
            name: &name,
            world: world.as_deref(),
            graph_data,
            stats,
            points,
        },
        512 + n * 400,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate};

    #[test]
    fn graph_points_and_stats() {
        let t = |m: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-11-29T11:{m:02}:00-03:00")).expect("time")
        };
        let d = |xp: i64, on: i64, m: u32| VipDelta {
            world: "Aurera".into(),
            name: "Zé".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
            delta_exp: xp,
            delta_online: on,
            update_time: t(m),
            prev_update_time: Some(t(m - 10)),
        };
        let (points, stats) = graph_of(&[d(100, 10, 10), d(0, 5, 20), d(250, 10, 30)]);
        assert_eq!(
            points
                .iter()
                .map(|p| (p.total_exp, p.total_online))
                .collect::<Vec<_>>(),
            [(100, 10), (100, 15), (350, 25)]
        );
        assert_eq!(points[0].update_time, "2026-11-29T11:10:00");
        assert_eq!(points[0].date, "2026-11-29");
        assert_eq!(
            stats,
            Stats {
                total_exp: 350,
                avg_exp: 116.67,
                max_exp: 250,
                total_online: 25,
                avg_online: 8.33,
                updates: 3
            }
        );
        let (points, stats) = graph_of(&[]);
        assert!(points.is_empty());
        assert_eq!((stats.updates, stats.avg_exp, stats.max_exp), (0, 0.0, 0));
    }

    #[test]
    fn the_replaced_figure_has_exp_bars_and_online_minutes() {
        let t = |m: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-11-29T11:{m:02}:00-03:00")).expect("time")
        };
        let d = |xp: i64, on: i64, m: u32| VipDelta {
            world: "Aurera".into(),
            name: "Zé".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
            delta_exp: xp,
            delta_online: on,
            update_time: t(m),
            prev_update_time: None,
        };
        let rows = [
            d(100, 10, 10),
            d(50, 0, 20),
            d(0, 0, 30),
            d(0, 0, 40),
            d(7, 5, 50),
        ];
        let fig: serde_json::Value =
            serde_json::from_str(&vip_figure("Zé", Some("Aurera"), &rows).to_json_string())
                .expect("JSON");
        let data = fig["data"].as_array().expect("traces");
        assert_eq!(data.len(), 3);
        assert_eq!(
            (&data[0]["type"], &data[0]["name"]),
            (&"bar".into(), &"EXP Gain".into())
        );
        assert_eq!(
            data[0]["x"],
            serde_json::json!(["11:10", "11:10-11:20", "11:20-11:40", "11:40-11:50"])
        );
        assert_eq!(data[0]["y"], serde_json::json!([100, 50, 0, 7]));
        assert_eq!(data[2]["y"], serde_json::json!([10, null, 0, 5]), "online");
        assert_eq!(data[2]["yaxis"], "y2");
        assert_eq!(data[2]["text"][3], "5 / 10 min");
        assert_eq!(fig["layout"]["yaxis2"]["overlaying"], "y");
        assert!(
            fig["layout"]["title"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Zé") && t.contains("Aurera"))
        );
        let empty: serde_json::Value =
            serde_json::from_str(&vip_figure("Zé", None, &[]).to_json_string()).expect("JSON");
        assert_eq!(empty["data"], serde_json::json!([]));
    }

    #[test]
    fn bodies_json_or_form() {
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        let b = player_body(
            &form,
            &Bytes::from_static(b"name=Z%C3%A9+P&world=Aurera&password=x"),
        )
        .expect("form");
        assert_eq!(
            (b.name.as_deref(), b.world.as_deref()),
            (Some("Zé P"), Some("Aurera"))
        );
        let b = player_body(
            &HeaderMap::new(),
            &Bytes::from(r#"{"name": " Zé ", "world": "Aurera", "password": "x"}"#.as_bytes()),
        )
        .expect("json");
        assert_eq!(name_of(&b).expect("name"), "Zé");
        assert!(name_of(&PlayerBody::default()).is_err());
        assert!(player_body(&HeaderMap::new(), &Bytes::from_static(b"{")).is_err());
    }
}
