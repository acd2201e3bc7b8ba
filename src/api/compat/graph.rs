//! `POST /api/graph` and `GET /api/player-graph/{name}`: a Plotly figure of
//! each player's cumulative experience over the period, the replaced
//! system's statistics table and the comparison rows (rank and percentile
//! among the players of the player's world over the same period).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiError, GRAPH_MAX_ROWS, PLAYERS_MAX_ROWS, query, round2, within};
use crate::legacy::iso;
use crate::store::{DeltaRow, PlayerTotal, Store, TimeRange, VipDelta};

/// Trace colours (the replaced system's palette).
const COLOURS: [&str; 8] = [
    "#C21500", "#FFC500", "#FF6B35", "#FFE156", "#B81400", "#E6A900", "#FF8F66", "#FFD966",
];

/// The figure: one `scatter` trace per player that has deltas, `x` the
/// update times (site-local ISO), `y` the experience gained since the start
/// of the period up to each update. `rows` are sorted by name then time.
pub(super) fn figure(names: &[String], rows: &[DeltaRow]) -> Value {
    let mut traces = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mine: Vec<&DeltaRow> = rows.iter().filter(|d| &d.name == name).collect();
        if mine.is_empty() {
            continue;
        }
        let mut total = 0i64;
        let (mut x, mut y) = (
            Vec::with_capacity(mine.len()),
            Vec::with_capacity(mine.len()),
        );
        for d in mine {
            total = total.saturating_add(d.delta);
            x.push(iso(d.update_time));
            y.push(total);
        }
        traces.push(json!({
            "x": x,
            "y": y,
            "name": name,
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"color": COLOURS[i % COLOURS.len()], "shape": "hv"},
            "hovertemplate": "<b>%{x}</b><br>EXP: %{y:,.0f}<extra></extra>",
        }));
    }
    if traces.is_empty() {
        return json!({"data": [], "layout": {"title": {"text": "No data available"}}});
    }
    json!({
        "data": traces,
        "layout": {
            "title": {"text": "Experience gained over time"},
            "xaxis": {"title": {"text": "Update time"}, "type": "date"},
            "yaxis": {"title": {"text": "Cumulative experience"}},
            "hovermode": "x unified",
            "showlegend": true,
            "height": 600,
            "colorway": COLOURS,
        }
    })
}

/// The figure of one watched player's or maker's reads (`rows` oldest
/// first): the experience gained at each read as bars on the left axis,
/// the minutes online as a line on the right one, `x` the reads' update
/// times (site-local ISO).
pub(super) fn watched_figure(title: &str, rows: &[VipDelta]) -> Value {
    let x: Vec<String> = rows.iter().map(|d| iso(d.update_time)).collect();
    let exp: Vec<i64> = rows.iter().map(|d| d.delta_exp).collect();
    let online: Vec<i64> = rows.iter().map(|d| d.delta_online).collect();
    let (red, blue) = (COLOURS[0], "#3498db");
    json!({
        "data": [
            {
                "type": "bar",
                "name": "EXP Gain",
                "x": x,
                "y": exp,
                "yaxis": "y",
                "marker": {"color": red},
                "hovertemplate": "<b>%{x}</b><br>EXP: %{y:,.0f}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Online Time (min)",
                "x": x,
                "y": online,
                "yaxis": "y2",
                "line": {"color": blue, "width": 2},
                "hovertemplate": "<b>%{x}</b><br>%{y} min<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "Update Time"}, "tickangle": -45},
            "yaxis": {
                "title": {"text": "Delta EXP", "font": {"color": red}},
                "tickfont": {"color": red},
            },
            "yaxis2": {
                "title": {"text": "Online Time (minutes)", "font": {"color": blue}},
                "tickfont": {"color": blue},
                "overlaying": "y",
                "side": "right",
            },
            "height": 500,
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
            "hovermode": "x unified",
        }
    })
}

/// A row of the statistics table, with the replaced system's column names.
#[derive(Debug, Serialize)]
struct Stat<'a> {
    name: &'a str,
    #[serde(rename = "Total EXP")]
    total: i64,
    #[serde(rename = "Average EXP")]
    average: f64,
    #[serde(rename = "Updates")]
    updates: i64,
    #[serde(rename = "Max EXP")]
    max: i64,
    #[serde(rename = "Min EXP")]
    min: i64,
}

/// Where a player stands among its world's players over the period.
#[derive(Debug, Serialize)]
struct Comparison<'a> {
    name: &'a str,
    rank: usize,
    total_players: usize,
    percentile: f64,
    total_exp_period: i64,
    current_total_exp: i64,
}

/// The whole `/api/graph` answer: `{graph, stats, comparison}`.
pub(super) async fn graph_answer(
    store: &Store,
    names: &[String],
    range: TimeRange,
) -> Result<Value, ApiError> {
    let rows = query(
        "graph",
        store.player_deltas_at_most(names, range, Some(GRAPH_MAX_ROWS + 1)),
    )
    .await?;
    let rows = within(
        rows,
        GRAPH_MAX_ROWS,
        "deltas",
        "ask for fewer players or a shorter period",
    )?;
    let figure = figure(names, &rows);

    // Statistics of the requested players over the period.
    let mut per_name: Vec<(&str, Vec<&DeltaRow>)> = Vec::new();
    for name in names {
        let mine: Vec<&DeltaRow> = rows.iter().filter(|d| &d.name == name).collect();
        if !mine.is_empty() {
            per_name.push((name, mine));
        }
    }
    let mut stats: Vec<Stat<'_>> = per_name
        .iter()
        .map(|(name, mine)| {
            let total: i64 = mine.iter().map(|d| d.delta).sum();
            let updates = mine.len() as i64;
            Stat {
                name,
                total,
                average: round2(total as f64 / updates as f64),
                updates,
                max: mine.iter().map(|d| d.delta).max().unwrap_or(0),
                min: mine.iter().map(|d| d.delta).min().unwrap_or(0),
            }
        })
        .collect();
    stats.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(b.name)));

    // Comparison within each player's world (the world of its latest delta
    // in the period).
    let current = query("graph", store.players_named(names)).await?;
    let mut world_totals: HashMap<String, Vec<PlayerTotal>> = HashMap::new();
    let mut comparison = Vec::new();
    for (name, mine) in &per_name {
        let Some(world) = mine
            .iter()
            .max_by_key(|d| d.update_time)
            .map(|d| d.world.clone())
        else {
            continue;
        };
        if !world_totals.contains_key(&world) {
            let totals = query(
                "graph",
                store.player_totals(range, Some(&world), Some(PLAYERS_MAX_ROWS + 1)),
            )
            .await?;
            let totals = within(
                totals,
                PLAYERS_MAX_ROWS,
                "players in the world over the period",
                "ask for a shorter period",
            )?;
            world_totals.insert(world.clone(), totals);
        }
        let totals = world_totals.get(&world).map(Vec::as_slice).unwrap_or(&[]);
        let Some(pos) = totals.iter().position(|t| t.name == *name) else {
            continue;
        };
        let rank = pos + 1;
        let total_players = totals.len();
        comparison.push(Comparison {
            name,
            rank,
            total_players,
            percentile: (1000.0 * (1.0 - rank as f64 / total_players as f64)).round() / 10.0,
            total_exp_period: totals[pos].total,
            current_total_exp: current
                .iter()
                .find(|p| p.name == *name && p.world == world)
                .map_or(0, |p| p.experience),
        });
    }
    Ok(json!({"graph": figure, "stats": stats, "comparison": comparison}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn d(name: &str, delta: i64, at: &str) -> DeltaRow {
        DeltaRow {
            id: 0,
            world: "W".into(),
            name: name.into(),
            guild: "G".into(),
            delta,
            update_time: DateTime::parse_from_rfc3339(at).expect("time"),
            previous_update_time: None,
        }
    }

    #[test]
    fn cumulative_traces_per_player() {
        let rows = [
            d("Ana", 10, "2026-01-04T10:00:00-03:00"),
            d("Ana", 5, "2026-01-04T10:10:00-03:00"),
            d("Bob", 7, "2026-01-04T10:10:00-03:00"),
        ];
        let names = ["Ana".to_string(), "Bob".to_string(), "Zed".to_string()];
        let f = figure(&names, &rows);
        let data = f["data"].as_array().expect("traces");
        assert_eq!(data.len(), 2, "no trace for a player without deltas");
        assert_eq!(data[0]["name"], "Ana");
        assert_eq!(data[0]["type"], "scatter");
        assert_eq!(data[0]["y"], json!([10, 15]));
        assert_eq!(
            data[0]["x"],
            json!(["2026-01-04T10:00:00", "2026-01-04T10:10:00"])
        );
        assert!(f["layout"].is_object());
        let empty = figure(&names, &[]);
        assert_eq!(empty["data"], json!([]));
    }
}
