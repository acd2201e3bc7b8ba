//! `POST /api/graph` and `GET /api/player-graph/{name}`: the replaced
//! system's figure of each player's experience per update (a Plotly figure
//! sent as a JSON string, which its pages `JSON.parse`), its statistics table
//! and the comparison rows (rank and percentile among the players of the
//! player's world over the same period); beside them, worldpool's own
//! cumulative figure as an object with times carrying their offset
//! (`figure`, which the dashboard draws).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::plotly::{Axis, Layout, Line, Marker, PlotlyFigure, Title, Trace, TraceType, slots};
use super::{ApiError, GRAPH_MAX_ROWS, PLAYERS_MAX_ROWS, query, round2, within};
use crate::store::{DeltaRow, PlayerTotal, Store, TimeRange};

/// Trace colours (the replaced system's palette).
const COLOURS: [&str; 8] = [
    "#C21500", "#FFC500", "#FF6B35", "#FFE156", "#B81400", "#E6A900", "#FF8F66", "#FFD966",
];
/// The replaced graphs' trend line colour.
const TREND: &str = "#3498db";
const HOVER_EXP: &str = "<b>%{x}</b><br>EXP: %{y:,.0f}<extra></extra>";
/// The replaced app's title when no requested player has data.
pub(super) const NO_DATA: &str = "No data available";

/// The requested players that have deltas, in request order, with their
/// colour and their rows (`rows` are sorted by name then time).
fn per_player<'a>(
    names: &'a [String],
    rows: &'a [DeltaRow],
) -> Vec<(usize, &'a str, Vec<&'a DeltaRow>)> {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let mine: Vec<&DeltaRow> = rows.iter().filter(|d| &d.name == name).collect();
            (!mine.is_empty()).then_some((i, name.as_str(), mine))
        })
        .collect()
}

/// The replaced system's figure: for each player with deltas a bar per
/// update of the experience gained (its value written above it) and a
/// spline over the bars; one bar position per update any of them gained at,
/// named by the period it covers, with runs of updates where none of them
/// gained folded into one ([`slots`]).
pub(super) fn legacy_figure(names: &[String], rows: &[DeltaRow]) -> PlotlyFigure {
    let players = per_player(names, rows);
    if players.is_empty() {
        return PlotlyFigure::empty(NO_DATA);
    }
    let times: Vec<DateTime<FixedOffset>> = players
        .iter()
        .flat_map(|(_, _, mine)| mine.iter().map(|d| d.update_time))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let values: Vec<HashMap<DateTime<FixedOffset>, i64>> = players
        .iter()
        .map(|(_, _, mine)| {
            let mut m = HashMap::new();
            for d in mine {
                *m.entry(d.update_time).or_insert(0i64) += d.delta;
            }
            m
        })
        .collect();
    let value = |p: usize, i: usize| values[p].get(&times[i]).copied().unwrap_or(0);
    let naive: Vec<_> = times.iter().map(DateTime::naive_local).collect();
    let bars = slots(&naive, |i| (0..players.len()).all(|p| value(p, i) == 0));
    let labels: Vec<String> = bars.iter().map(|s| s.label.clone()).collect();
    let mut data = Vec::with_capacity(players.len() * 2);
    for (p, (colour, name, _)) in players.iter().enumerate() {
        let y: Vec<Option<i64>> = bars
            .iter()
            .map(|s| Some(s.at.map_or(0, |i| value(p, i))))
            .collect();
        let mut bar = Trace::new(TraceType::Bar, *name, labels.clone(), y.clone());
        bar.marker = Some(Marker {
            color: COLOURS[colour % COLOURS.len()],
            size: None,
        });
        bar.text = Some(
            y.iter()
                .map(|v| match v {
                    Some(v) if *v > 0 => v.to_string(),
                    _ => String::new(),
                })
                .collect(),
        );
        bar.textposition = Some("outside");
        bar.hovertemplate = Some(HOVER_EXP);
        let mut trend = Trace::new(
            TraceType::Scatter,
            format!("{name} (trend)"),
            labels.clone(),
            y,
        );
        trend.mode = Some("lines");
        trend.line = Some(Line {
            color: TREND,
            width: Some(3),
            shape: Some("spline"),
        });
        trend.showlegend = Some(false);
        trend.hoverinfo = Some("skip");
        data.push(bar);
        data.push(trend);
    }
    let mut layout = Layout::titled("EXP Gain Over Time");
    layout.xaxis = Some(Axis {
        title: Some(Title::new("Update Time")),
        kind: Some("category"),
        categoryorder: Some("array"),
        categoryarray: Some(labels),
        tickangle: Some(-45),
        nticks: Some(20),
        ..Axis::default()
    });
    layout.yaxis = Some(Axis {
        title: Some(Title::new("Delta EXP")),
        ..Axis::default()
    });
    layout.hovermode = Some("x unified");
    layout.height = Some(600);
    layout.showlegend = Some(true);
    layout.barmode = Some("group");
    layout.bargap = Some(0.0);
    layout.colorway = Some(&COLOURS);
    PlotlyFigure { data, layout }
}

/// worldpool's figure: one `scatter` trace per player that has deltas, `x`
/// the update times (RFC 3339 with the site's offset), `y` the experience
/// gained since the start of the period up to each update.
pub(super) fn cumulative_figure(names: &[String], rows: &[DeltaRow]) -> PlotlyFigure {
    let players = per_player(names, rows);
    if players.is_empty() {
        return PlotlyFigure::empty(NO_DATA);
    }
    let data = players
        .iter()
        .map(|(colour, name, mine)| {
            let mut total = 0i64;
            let mut per_time: BTreeMap<DateTime<FixedOffset>, i64> = BTreeMap::new();
            for d in mine {
                *per_time.entry(d.update_time).or_insert(0) += d.delta;
            }
            let (x, y) = per_time
                .into_iter()
                .map(|(t, delta)| {
                    total = total.saturating_add(delta);
                    (t.to_rfc3339(), Some(total))
                })
                .unzip();
            let mut trace = Trace::new(TraceType::Scatter, *name, x, y);
            trace.mode = Some("lines+markers");
            trace.line = Some(Line {
                color: COLOURS[colour % COLOURS.len()],
                width: None,
                shape: Some("hv"),
            });
            trace.hovertemplate = Some(HOVER_EXP);
            trace
        })
        .collect();
    let mut layout = Layout::titled("Experience gained over time");
    layout.xaxis = Some(Axis {
        title: Some(Title::new("Update time")),
        kind: Some("date"),
        ..Axis::default()
    });
    layout.yaxis = Some(Axis {
        title: Some(Title::new("Cumulative experience")),
        ..Axis::default()
    });
    layout.hovermode = Some("x unified");
    layout.showlegend = Some(true);
    layout.height = Some(600);
    layout.colorway = Some(&COLOURS);
    PlotlyFigure { data, layout }
}

/// A row of the statistics table, with the replaced system's column names
/// (pandas' `groupby('name')` columns after `reset_index()`: the page reads
/// `stat.name` under its "Player" header).
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Comparison<'a> {
    name: &'a str,
    /// 1 = most experience in the period among the players of its world.
    rank: usize,
    total_players: usize,
    /// (1 - rank / total_players) × 100, one decimal.
    percentile: f64,
    total_exp_period: i64,
    /// Its latest stored experience (0 if none).
    current_total_exp: i64,
}

/// A Plotly figure `{data: [traces], layout}` serialized as JSON text, as
/// the replaced system sent it (`fig.to_json()`; its pages `JSON.parse` it
/// and call `Plotly.newPlot(el, fig.data, fig.layout)`). Traces: per player
/// a `bar` of the experience gained at each update and a `scatter` spline
/// over it (`<name> (trend)`); `x` are category labels naming the period
/// each bar covers (`10:00-10:10`; two or more updates without gain fold
/// into one bar); with no data, no trace and the title `No data available`.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String)]
#[allow(dead_code)]
pub(super) struct PlotlyFigureText(String);

/// The `/api/graph` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct GraphAnswer<'a> {
    /// The replaced system's figure as JSON text ([`legacy_figure`]).
    #[schema(value_type = PlotlyFigureText)]
    graph: String,
    stats: Vec<Stat<'a>>,
    comparison: Vec<Comparison<'a>>,
    /// worldpool's cumulative figure ([`cumulative_figure`]).
    figure: PlotlyFigure,
}

/// The whole `/api/graph` answer: `{graph, stats, comparison, figure}`.
pub(super) async fn graph_answer<'a>(
    store: &Store,
    names: &'a [String],
    range: TimeRange,
) -> Result<GraphAnswer<'a>, ApiError> {
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
    let graph = legacy_figure(names, &rows).to_json_string();
    let figure = cumulative_figure(names, &rows);

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
    Ok(GraphAnswer {
        graph,
        stats,
        comparison,
        figure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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

    fn rows() -> Vec<DeltaRow> {
        vec![
            d("Ana", 10, "2026-01-04T10:00:00-03:00"),
            d("Ana", 5, "2026-01-04T10:10:00-03:00"),
            d("Bob", 7, "2026-01-04T10:10:00-03:00"),
            d("Bob", 4, "2026-01-04T10:20:00-03:00"),
        ]
    }

    fn as_json(f: &PlotlyFigure) -> Value {
        serde_json::from_str(&f.to_json_string()).expect("JSON")
    }

    #[test]
    fn cumulative_traces_per_player() {
        let names = ["Ana".to_string(), "Bob".to_string(), "Zed".to_string()];
        let f = as_json(&cumulative_figure(&names, &rows()));
        let data = f["data"].as_array().expect("traces");
        assert_eq!(data.len(), 2, "no trace for a player without deltas");
        assert_eq!(data[0]["name"], "Ana");
        assert_eq!(data[0]["type"], "scatter");
        assert_eq!(data[0]["y"], json!([10, 15]));
        assert_eq!(
            data[0]["x"],
            json!(["2026-01-04T10:00:00-03:00", "2026-01-04T10:10:00-03:00"])
        );
        assert!(f["layout"]["title"]["text"].is_string());
        let empty = as_json(&cumulative_figure(&names, &[]));
        assert_eq!(empty["data"], json!([]));
    }

    #[test]
    fn the_replaced_figure_is_bars_and_trends_over_periods() {
        let names = ["Ana".to_string(), "Bob".to_string(), "Zed".to_string()];
        let f = as_json(&legacy_figure(&names, &rows()));
        let data = f["data"].as_array().expect("traces");
        // A bar and a trend per player with deltas.
        let kinds: Vec<(&str, &str)> = data
            .iter()
            .map(|t| {
                (
                    t["type"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("bar", "Ana"),
                ("scatter", "Ana (trend)"),
                ("bar", "Bob"),
                ("scatter", "Bob (trend)")
            ]
        );
        let labels = json!(["10:00", "10:00-10:10", "10:10-10:20"]);
        assert_eq!(data[0]["x"], labels);
        assert_eq!(
            data[0]["y"],
            json!([10, 5, 0]),
            "zero where Ana gained nothing"
        );
        assert_eq!(data[0]["text"], json!(["10", "5", ""]));
        assert_eq!(data[2]["y"], json!([0, 7, 4]));
        assert_eq!(f["layout"]["xaxis"]["type"], "category");
        assert_eq!(f["layout"]["xaxis"]["categoryarray"], labels);
        assert_eq!(f["layout"]["title"]["text"], "EXP Gain Over Time");
        let empty = as_json(&legacy_figure(&names[2..], &rows()));
        assert_eq!(empty["data"], json!([]));
        assert_eq!(empty["layout"]["title"]["text"], NO_DATA);
    }
}
