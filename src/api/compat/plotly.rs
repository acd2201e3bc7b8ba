//! Plotly figures as serde types: the graphs the replaced system's pages
//! draw (`Plotly.newPlot(el, fig.data, fig.layout)` after `JSON.parse` of the
//! string it sent, `fig.to_json()`), and worldpool's own cumulative figure.
//!
//! Only the attributes these graphs use are modelled; absent ones are left
//! out of the JSON, so plotly.js applies its defaults.
//!
//! The replaced app's graphs were bar charts over category labels: one bar
//! per update, labelled with the period it covers (`10:00-10:10`), where a
//! run of two or more updates in which nothing was gained is folded into
//! one zero bar (`10:10-11:40`). [`slots`] computes those labels.

use chrono::NaiveDateTime;
use serde::Serialize;

/// A figure: `{data: [traces], layout}`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(
    description = "A Plotly figure `{data, layout}` (worldpool's cumulative figure: per player a scatter of the experience gained since the start of the period, x the update times in RFC 3339 with the site's offset)."
)]
pub struct PlotlyFigure {
    /// The traces, drawn in order.
    pub data: Vec<Trace>,
    /// Titles, axes and the rest.
    pub layout: Layout,
}

impl PlotlyFigure {
    /// A figure with no trace and this title (the replaced app's "No data
    /// available").
    pub fn empty(title: &str) -> PlotlyFigure {
        PlotlyFigure {
            data: Vec::new(),
            layout: Layout::titled(title),
        }
    }

    /// The figure as the JSON text the replaced app sent.
    pub fn to_json_string(&self) -> String {
        // Strings, integers and finite floats only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"data":[],"layout":{}}"#.to_string())
    }
}

/// The kind of a trace.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceType {
    /// Bars.
    Bar,
    /// Lines and/or markers.
    Scatter,
}

/// One trace.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Trace {
    /// `bar` or `scatter`.
    #[serde(rename = "type")]
    pub kind: TraceType,
    /// Legend name.
    pub name: String,
    /// `lines`, `markers`, `lines+markers` (scatter only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// X values: category labels or times.
    pub x: Vec<String>,
    /// Y values; `null` is a gap.
    pub y: Vec<Option<i64>>,
    /// A text per point (bar labels, hover text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Vec<String>>,
    /// Where bar texts go (`outside`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub textposition: Option<&'static str>,
    /// Line style.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<Line>,
    /// Marker style.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<Marker>,
    /// Hover template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hovertemplate: Option<&'static str>,
    /// `skip`: no hover for this trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hoverinfo: Option<&'static str>,
    /// Listed in the legend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub showlegend: Option<bool>,
    /// Draw lines across `null` values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectgaps: Option<bool>,
    /// The y axis (`y`, `y2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaxis: Option<&'static str>,
}

impl Trace {
    /// A trace of `kind` with only name and values set.
    pub fn new(
        kind: TraceType,
        name: impl Into<String>,
        x: Vec<String>,
        y: Vec<Option<i64>>,
    ) -> Trace {
        Trace {
            kind,
            name: name.into(),
            mode: None,
            x,
            y,
            text: None,
            textposition: None,
            line: None,
            marker: None,
            hovertemplate: None,
            hoverinfo: None,
            showlegend: None,
            connectgaps: None,
            yaxis: None,
        }
    }
}

/// A trace's line.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Line {
    /// CSS colour.
    pub color: &'static str,
    /// Width in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// `spline`, `hv`, `linear`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<&'static str>,
}

/// A trace's markers.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Marker {
    /// CSS colour.
    pub color: &'static str,
    /// Size in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

/// `{text}` (plotly's title object).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Title {
    /// The title.
    pub text: String,
    /// Its font.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<Font>,
}

impl Title {
    /// A plain title.
    pub fn new(text: impl Into<String>) -> Title {
        Title {
            text: text.into(),
            font: None,
        }
    }
}

/// A font (colour only).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Font {
    /// CSS colour.
    pub color: &'static str,
}

/// An axis.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Axis {
    /// Axis title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Title>,
    /// `category`, `date`, `linear`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// `array`: categories in `categoryarray` order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categoryorder: Option<&'static str>,
    /// The categories, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categoryarray: Option<Vec<String>>,
    /// Tick label angle in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickangle: Option<i32>,
    /// Most ticks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nticks: Option<u32>,
    /// Tick label font.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickfont: Option<Font>,
    /// `y`: drawn over that axis (a second y axis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlaying: Option<&'static str>,
    /// `right` for a second y axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<&'static str>,
}

/// The legend's placement.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Legend {
    /// `h`: horizontal.
    pub orientation: &'static str,
    /// Anchors and position.
    pub yanchor: &'static str,
    /// Position (paper fraction).
    pub y: f64,
    /// Anchor.
    pub xanchor: &'static str,
    /// Position (paper fraction).
    pub x: f64,
}

/// The layout.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Layout {
    /// Figure title.
    pub title: Title,
    /// X axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xaxis: Option<Axis>,
    /// Y axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaxis: Option<Axis>,
    /// Second y axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaxis2: Option<Axis>,
    /// `x unified`: one hover box per x.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hovermode: Option<&'static str>,
    /// Height in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Show the legend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub showlegend: Option<bool>,
    /// Legend placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legend: Option<Legend>,
    /// `group`: bars of several traces side by side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barmode: Option<&'static str>,
    /// Gap between bars (fraction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bargap: Option<f64>,
    /// Default trace colours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colorway: Option<&'static [&'static str]>,
}

impl Layout {
    /// A layout with only a title.
    pub fn titled(title: &str) -> Layout {
        Layout {
            title: Title::new(title),
            xaxis: None,
            yaxis: None,
            yaxis2: None,
            hovermode: None,
            height: None,
            showlegend: None,
            legend: None,
            barmode: None,
            bargap: None,
            colorway: None,
        }
    }
}

/// One bar position of the replaced app's graphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The period it covers: `10:00-10:10`, or `04/01/2026 23:50-05/01/2026
    /// 00:00` across midnight; the first bar names its own time.
    pub label: String,
    /// The update it shows, or `None` for a folded run of zero updates.
    pub at: Option<usize>,
    /// Minutes since the previous bar's end (0 for the first and for a
    /// folded run).
    pub minutes: i64,
}

/// The bars for updates at `times` (oldest first): a run of two or more
/// consecutive updates where `zero(i)` holds is folded into one bar.
/// Labels that would repeat (the same hours on different days) carry the
/// date.
pub fn slots(times: &[NaiveDateTime], zero: impl Fn(usize) -> bool) -> Vec<Slot> {
    const HM: &str = "%H:%M";
    const DHM: &str = "%d/%m/%Y %H:%M";
    let span = |from: NaiveDateTime, to: NaiveDateTime| -> (String, String) {
        if from.date() == to.date() {
            (
                format!("{}-{}", from.format(HM), to.format(HM)),
                format!("{}-{}", from.format(DHM), to.format(HM)),
            )
        } else {
            let both = format!("{}-{}", from.format(DHM), to.format(DHM));
            (both.clone(), both)
        }
    };
    // (short label, full label, slot)
    let mut out: Vec<(String, String, Slot)> = Vec::with_capacity(times.len());
    let mut prev: Option<NaiveDateTime> = None;
    let mut i = 0;
    while i < times.len() {
        let run_end = (i..times.len())
            .take_while(|&j| zero(j))
            .last()
            .filter(|&end| end > i);
        if let Some(end) = run_end {
            let from = if i > 0 { times[i - 1] } else { times[i] };
            let (short, full) = span(from, times[end]);
            out.push((
                short.clone(),
                full,
                Slot {
                    label: short,
                    at: None,
                    minutes: 0,
                },
            ));
            prev = Some(times[end]);
            i = end + 1;
            continue;
        }
        let t = times[i];
        let (short, full, minutes) = match prev {
            None => (t.format(HM).to_string(), t.format(DHM).to_string(), 0),
            Some(p) => {
                let (s, f) = span(p, t);
                (s, f, (t - p).num_minutes())
            }
        };
        out.push((
            short.clone(),
            full,
            Slot {
                label: short,
                at: Some(i),
                minutes,
            },
        ));
        prev = Some(t);
        i += 1;
    }
    let mut seen = std::collections::HashMap::new();
    for (short, _, _) in &out {
        *seen.entry(short.clone()).or_insert(0usize) += 1;
    }
    out.into_iter()
        .map(|(short, full, mut slot)| {
            if seen.get(&short).copied().unwrap_or(0) > 1 {
                slot.label = full;
            }
            slot
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time")
    }

    #[test]
    fn bars_name_their_period_and_fold_zero_runs() {
        let times = [
            t("2026-01-04 10:00"),
            t("2026-01-04 10:10"),
            t("2026-01-04 10:20"),
            t("2026-01-04 10:30"),
            t("2026-01-04 10:40"),
            t("2026-01-04 23:55"),
            t("2026-01-05 00:05"),
        ];
        // Zero at 10:10, 10:20, 10:30: one folded bar; a lone zero is not folded.
        let values = [5, 0, 0, 0, 7, 0, 3];
        let s = slots(&times, |i| values[i] == 0);
        let got: Vec<(&str, Option<usize>, i64)> = s
            .iter()
            .map(|s| (s.label.as_str(), s.at, s.minutes))
            .collect();
        assert_eq!(
            got,
            [
                ("10:00", Some(0), 0),
                ("10:00-10:30", None, 0),
                ("10:30-10:40", Some(4), 10),
                ("10:40-23:55", Some(5), 795),
                ("04/01/2026 23:55-05/01/2026 00:05", Some(6), 10),
            ]
        );
        assert!(slots(&[], |_| true).is_empty());
        // Only zeros from the start: folded from the first time.
        let s = slots(&times[..3], |_| true);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].label.as_str(), s[0].at), ("10:00-10:20", None));
    }

    #[test]
    fn repeated_labels_carry_the_date() {
        let times = [
            t("2026-01-04 10:00"),
            t("2026-01-04 10:10"),
            t("2026-01-05 09:00"),
            t("2026-01-05 10:00"),
            t("2026-01-05 10:10"),
        ];
        let s = slots(&times, |_| false);
        let labels: Vec<&str> = s.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "10:00",
                "04/01/2026 10:00-10:10",
                "04/01/2026 10:10-05/01/2026 09:00",
                "09:00-10:00",
                "05/01/2026 10:00-10:10",
            ]
        );
    }

    #[test]
    fn figures_serialize_as_plotly_reads_them() {
        let mut bar = Trace::new(
            TraceType::Bar,
            "Zé",
            vec!["10:00".into()],
            vec![Some(5), None],
        );
        bar.yaxis = Some("y2");
        let fig = PlotlyFigure {
            data: vec![bar],
            layout: Layout::titled("EXP"),
        };
        let v: serde_json::Value = serde_json::from_str(&fig.to_json_string()).expect("valid JSON");
        assert_eq!(v["data"][0]["type"], "bar");
        assert_eq!(v["data"][0]["y"], serde_json::json!([5, null]));
        assert_eq!(v["data"][0]["yaxis"], "y2");
        assert!(v["data"][0].get("mode").is_none(), "absent, not null");
        assert_eq!(v["layout"]["title"]["text"], "EXP");
        let empty: serde_json::Value =
            serde_json::from_str(&PlotlyFigure::empty("No data available").to_json_string())
                .expect("JSON");
        assert_eq!(empty["data"], serde_json::json!([]));
    }
}
