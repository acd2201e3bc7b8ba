//! The replaced system's makers endpoints (its later `makers_fast.html`):
//! the makers, the main characters they belong to, their deltas of minutes
//! online, and one character's graph.
//!
//! A maker is read like a watched player (the world's worker reads its page
//! at every update: [`crate::scrape::watched_players`]); its reads are the
//! watched players' rows, so these endpoints are the VIP queries restricted
//! to the `makers` table. Makers come from `worldpool import`
//! (`ref_main_maker.csv`) and `POST /api/upload/makers`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::vip::{DeltasQuery, WorldQuery};
use super::vip::{VIP_DELTAS_DEFAULT_LIMIT, VIP_GRAPH_MAX_POINTS};
use super::{StoreErrors, query, store};
use crate::api::query::Lenient;
use crate::api::{ApiError, ApiState, json};

/// The makers routes (merged into the compatibility routes).
pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(main_makers))
        .routes(routes!(deltas))
        .routes(routes!(graph))
}

/// A maker as `/api/makers/list` shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Maker)]
struct Listed<'a> {
    name: &'a str,
    world: &'a str,
    /// Its main character (null: not known).
    #[schema(required = true)]
    main: Option<&'a str>,
    #[schema(required = true)]
    main_world: Option<&'a str>,
}

/// `/api/makers/list`.
#[derive(Serialize, utoipa::ToSchema)]
struct MakerList<'a> {
    makers: Vec<Listed<'a>>,
}

/// A row of `ref_main_maker.csv`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MainMaker)]
struct Relation<'a> {
    main: &'a str,
    main_world: &'a str,
    maker: &'a str,
    maker_world: &'a str,
}

/// `/api/makers/main`.
#[derive(Serialize, utoipa::ToSchema)]
struct MainMakers<'a> {
    main_makers: Vec<Relation<'a>>,
}

/// `/api/makers/graph`.
#[derive(Serialize, utoipa::ToSchema)]
struct MakerGraph<'a> {
    success: bool,
    name: &'a str,
    world: &'a str,
    /// A Plotly figure `{data, layout}` serialized as JSON.
    graph_data: String,
    stats: super::vip::Stats,
}

/// `GET /api/makers/list?world=` → `{makers: [{name, world, main,
/// main_world}]}`, by world then name.
/// The makers (characters read like watched players, tied to a main
/// character), by world then name.
#[utoipa::path(get, path = "/api/makers/list", operation_id = "makersList", tags = ["compatibility", "makers"],
    params(WorldQuery),
    responses((status = 200, description = "Makers.", body = MakerList), StoreErrors))]
async fn list(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldQuery>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let makers = query("makers", store.makers(p.world.as_deref())).await?;
    let listed: Vec<Listed<'_>> = makers
        .iter()
        .map(|m| Listed {
            name: &m.name,
            world: &m.world,
            main: m.main.as_deref(),
            main_world: m.main_world.as_deref(),
        })
        .collect();
    let n = listed.len();
    Ok(json(
        StatusCode::OK,
        &MakerList { makers: listed },
        64 + n * 96,
    ))
}

/// `GET /api/makers/main` → `{main_makers: [{main, main_world, maker,
/// maker_world}]}`: the rows of `ref_main_maker.csv` as stored (makers
/// whose main is known), by main's world, main, maker's world, maker.
#[utoipa::path(get, path = "/api/makers/main", operation_id = "makersMain", tags = ["compatibility", "makers"],
    summary = "The rows of `ref_main_maker.csv` as stored: each maker whose main character is known.",
    responses((status = 200, description = "Main characters and their makers.", body = MainMakers), StoreErrors))]
async fn main_makers(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let makers = query("makers", store.makers(None)).await?;
    let mut rows: Vec<Relation<'_>> = makers
        .iter()
        .filter_map(|m| {
            Some(Relation {
                main: m.main.as_deref()?,
                main_world: m.main_world.as_deref()?,
                maker: &m.name,
                maker_world: &m.world,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.main_world, a.main, a.maker_world, a.maker).cmp(&(
            b.main_world,
            b.main,
            b.maker_world,
            b.maker,
        ))
    });
    let n = rows.len();
    Ok(json(
        StatusCode::OK,
        &MainMakers { main_makers: rows },
        64 + n * 128,
    ))
}

/// `GET /api/makers/deltas?name=&world=&limit=` → `{deltas}`: the makers'
/// deltas with minutes online (the page's feed counts minutes), newest
/// first, in the shape of `/api/vip/deltas`.
#[utoipa::path(get, path = "/api/makers/deltas", operation_id = "makersDeltas", tags = ["compatibility", "makers"],
    summary = "The makers' deltas with minutes online (`delta_online` ≠ 0), newest first.",
    params(DeltasQuery),
    responses((status = 200, description = "Deltas.", body = super::vip::VipDeltas), StoreErrors))]
async fn deltas(
    State(state): State<ApiState>,
    Lenient(p): Lenient<DeltasQuery>,
) -> Result<Response, ApiError> {
    let limit = super::limit_value(p.limit.as_deref(), VIP_DELTAS_DEFAULT_LIMIT)?;
    let store = store(&state)?;
    let rows = query(
        "maker deltas",
        store.maker_deltas(p.world.as_deref(), p.name.as_deref(), limit),
    )
    .await?;
    Ok(super::vip::deltas_answer(&rows))
}

/// `POST /api/makers/graph {name, world}` → `{success, name, world,
/// graph_data, stats}`: `graph_data` is a Plotly figure serialized as a
/// string (the page parses it), the character's experience and minutes
/// online per read; a character without reads (a main that is not read,
/// say) gets an empty figure, as before. Both `name` and `world` are
/// required (400); any world is accepted: a main may live in a world that
/// is not scraped.
#[utoipa::path(post, path = "/api/makers/graph", operation_id = "makersGraph", tags = ["compatibility", "makers"],
    summary = "A character's reads as a Plotly figure serialized as a string (`JSON.parse(graph_data)` gives `{data, layout}`: experience bars, minutes online line), with statistics. A character without reads gets an empty figure.",
    request_body = super::vip::PlayerBody,
    responses((status = 200, description = "Figure and statistics.", body = MakerGraph), StoreErrors))]
async fn graph(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b = super::vip::player_body(&headers, &body)?;
    let name = super::vip::name_of(&b)?;
    let world = b.world.as_deref().map(str::trim).unwrap_or("").to_string();
    if world.is_empty() {
        return Err(ApiError::BadBody(
            "Name and world are required: send {\"name\": \"Player\", \"world\": \"World\"}"
                .to_string(),
        ));
    }
    let store = store(&state)?;
    let mut rows = query(
        "maker graph",
        store.vip_deltas(Some(&world), Some(&name), VIP_GRAPH_MAX_POINTS),
    )
    .await?;
    rows.reverse();
    let figure = super::vip::watched_figure(&format!("🔧 {name} - Maker Stats ({world})"), &rows);
    let graph_data = serde_json::to_string(&figure)
        .map_err(|e| ApiError::internal("maker graph: serializing the figure", &e))?;
    let n = graph_data.len();
    Ok(json(
        StatusCode::OK,
        &MakerGraph {
            success: true,
            name: &name,
            world: &world,
            graph_data,
            stats: super::vip::stats_of(&rows),
        },
        256 + n,
    ))
}
