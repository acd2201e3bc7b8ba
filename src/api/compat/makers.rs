//! The replaced system's makers endpoints (its later `makers_fast.html`):
//! the makers, the main characters they belong to, their deltas of minutes
//! online, and one character's graph.
//!
//! A maker is read like a watched player (the world's worker reads its page
//! at every update: [`crate::scrape::watched_players`]); its reads are the
//! watched players' rows, so these endpoints are the VIP queries restricted
//! to the `makers` table. Makers come from `worldpool import`
//! (`ref_main_maker.csv`) and `POST /api/upload/makers`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;

use super::vip::{DeltasQuery, WorldQuery};
use super::vip::{VIP_DELTAS_DEFAULT_LIMIT, VIP_GRAPH_MAX_POINTS};
use super::{query, store};
use crate::api::query::Lenient;
use crate::api::{ApiError, ApiState, json};

/// The makers routes (merged into the compatibility routes).
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/makers/list", get(list))
        .route("/api/makers/main", get(main_makers))
        .route("/api/makers/deltas", get(deltas))
        .route("/api/makers/graph", post(graph))
}

/// `GET /api/makers/list?world=` → `{makers: [{name, world, main,
/// main_world}]}`, by world then name.
async fn list(
    State(state): State<ApiState>,
    Lenient(p): Lenient<WorldQuery>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let makers = query("makers", store.makers(p.world.as_deref())).await?;
    #[derive(Serialize)]
    struct Listed<'a> {
        name: &'a str,
        world: &'a str,
        main: Option<&'a str>,
        main_world: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        makers: Vec<Listed<'a>>,
    }
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
        &Answer { makers: listed },
        64 + n * 96,
    ))
}

/// `GET /api/makers/main` → `{main_makers: [{main, main_world, maker,
/// maker_world}]}`: the rows of `ref_main_maker.csv` as stored (makers
/// whose main is known), by main's world, main, maker's world, maker.
async fn main_makers(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let makers = query("makers", store.makers(None)).await?;
    #[derive(Serialize)]
    struct Relation<'a> {
        main: &'a str,
        main_world: &'a str,
        maker: &'a str,
        maker_world: &'a str,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        main_makers: Vec<Relation<'a>>,
    }
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
        &Answer { main_makers: rows },
        64 + n * 128,
    ))
}

/// `GET /api/makers/deltas?name=&world=&limit=` → `{deltas}`: the makers'
/// deltas with minutes online (the page's feed counts minutes), newest
/// first, in the shape of `/api/vip/deltas`.
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
    #[derive(Serialize)]
    struct Answer<'a> {
        success: bool,
        name: &'a str,
        world: &'a str,
        graph_data: String,
        stats: super::vip::Stats,
    }
    let n = graph_data.len();
    Ok(json(
        StatusCode::OK,
        &Answer {
            success: true,
            name: &name,
            world: &world,
            graph_data,
            stats: super::vip::stats_of(&rows),
        },
        256 + n,
    ))
}
