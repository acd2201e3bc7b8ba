//! `/metrics` in the Prometheus text format (0.0.4), written by hand
//! (`writer.rs`), one file per family: the workers (`workers.rs`), their
//! scrape runs (`runs.rs`, with the counters fed by the workers'
//! `run_finished` events), the watched players (`vips.rs`, fed by their
//! `vip_pass` events), the pool's totals (`totals.rs`), config reloads
//! (`reload.rs`), the request budget (`budget.rs`) and a cluster node's
//! leases (`cluster.rs`). The tests read the
//! output back with `openmetrics-parser` (tests/helper/exposition.rs).

pub mod budget;
pub mod cluster;
pub mod reload;
mod runs;
mod totals;
mod vips;
mod workers;
mod writer;

use std::collections::BTreeMap;

use pool::WorkerStatus;

pub use self::runs::{LastUpdate, RunCounters, WorldRuns};
pub use self::vips::{VipCounters, WorldVips};
use self::writer::Writer;

/// Render the exposition text for a snapshot, the run counters and the
/// watched players' numbers (the workers' families, the runs', the watched
/// players', then the pool's totals).
pub fn render(
    workers: &[WorkerStatus],
    runs: &BTreeMap<String, WorldRuns>,
    vips: &BTreeMap<String, WorldVips>,
) -> String {
    let mut w = Writer::with_capacity(512 + workers.len() * 1024);
    workers::write(&mut w, workers);
    let per_world = runs::per_world(workers, runs);
    runs::write(&mut w, &per_world);
    vips::write(&mut w, vips);
    totals::write(&mut w, workers, &per_world);
    w.out
}

#[cfg(test)]
mod tests {
    use pool::{PoolEvent, StateName};

    use super::*;
    use crate::api::exposition::{Sample, parse_exposition};
    use crate::api::fake::FakeControl;
    use crate::protocol::{RunFailed, RunFinished, WorkerEvent};

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    #[test]
    fn rendered_metrics_parse_and_carry_the_numbers() {
        let mut a = FakeControl::sample_status("São \"Paulo\"\\x", 1);
        a.restarts = 3;
        a.exits_by_reason.insert("hung".into(), 2);
        let mut b = FakeControl::sample_status("Beta", 2);
        b.state = StateName::Fatal;
        b.pid = None;
        let counters = RunCounters::default();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
        let pool_event = |e: WorkerEvent| {
            let pool::WorkerMessage::Event { kind, data } = e.to_message() else {
                panic!("an event");
            };
            PoolEvent::Custom {
                worker: "Beta".into(),
                kind,
                data,
            }
        };
        let ok = |rows: u64| {
            pool_event(WorkerEvent::RunFinished(RunFinished {
                world: "Beta".into(),
                rows,
                deltas: 4,
                update_time: t,
                rebased: false,
                unknown_guilds: Vec::new(),
            }))
        };
        let failed = pool_event(WorkerEvent::RunFailed(RunFailed {
            world: "Beta".into(),
            update_time: t,
            error: "HTTP 503".into(),
        }));
        assert!(counters.record(&ok(10)));
        assert!(counters.record(&ok(5)));
        assert!(counters.record(&failed));
        assert!(!counters.record(&PoolEvent::Custom {
            worker: "Beta".into(),
            kind: "run_finished".into(),
            data: serde_json::json!({"status": "Weird Status!"}),
        }));
        assert!(!counters.record(&PoolEvent::Stopped {
            worker: "Beta".into()
        }));
        let vips = VipCounters::default();
        let pass = |fetched: u64, failed: u64, unknown: &[&str]| {
            pool_event(WorkerEvent::VipPass(crate::protocol::VipPass {
                world: "Beta".into(),
                update_time: t,
                watched: 3,
                fetched,
                failed,
                unknown: unknown.iter().map(|u| u.to_string()).collect(),
                deltas: fetched,
                last_fetch: (fetched > 0).then(chrono::Utc::now),
            }))
        };
        assert!(vips.record(&pass(2, 1, &["Ninguém"])));
        assert!(vips.record(&pass(0, 0, &[])));
        assert!(!vips.record(&ok(1)));
        let beta = &vips.snapshot()["Beta"];
        assert_eq!(
            (beta.fetched, beta.failed, beta.unknown_total, beta.watched),
            (2, 1, 1, 3)
        );
        assert!(
            beta.last_fetch.is_some(),
            "kept across a pass that read nothing"
        );
        assert_eq!(beta.unknown, ["Ninguém"]);
        assert_eq!(vips.of_worker("Beta").len(), 1);
        let text = render(&[a, b], &counters.snapshot(), &vips.snapshot());
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let world = "São \"Paulo\"\\x";
        assert_eq!(
            find(&samples, "worldpool_worker_up", &[("world", world)]).map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "worldpool_worker_up", &[("world", "Beta")]).map(|s| s.value),
            Some(0.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_restarts_total",
                &[("world", world)]
            )
            .map(|s| s.value),
            Some(3.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_exits_total",
                &[("world", world), ("reason", "hung")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_worker_exits_total",
                &[("world", "Beta"), ("reason", "cpu_limit")]
            )
            .map(|s| s.value),
            Some(0.0)
        );
        assert!(find(&samples, "worldpool_worker_rss_bytes", &[("world", "Beta")]).is_none());
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", "Beta"), ("status", "ok")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", "Beta"), ("status", "failed")]
            )
            .map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_runs_total",
                &[("world", world), ("status", "ok")]
            )
            .map(|s| s.value),
            Some(0.0)
        );
        assert_eq!(
            find(&samples, "worldpool_rows_total", &[("world", "Beta")]).map(|s| s.value),
            Some(15.0)
        );
        assert_eq!(
            find(&samples, "worldpool_deltas_total", &[("world", "Beta")]).map(|s| s.value),
            Some(8.0)
        );
        assert_eq!(
            find(&samples, "worldpool_workers", &[("state", "fatal")]).map(|s| s.value),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "worldpool_pool_restarts_total", &[]).map(|s| s.value),
            Some(4.0)
        );
        assert_eq!(
            find(
                &samples,
                "worldpool_pool_exits_total",
                &[("reason", "crashed")]
            )
            .map(|s| s.value),
            Some(2.0)
        );
        assert!(
            find(
                &samples,
                "worldpool_worker_last_success_timestamp_seconds",
                &[("world", "Beta")]
            )
            .is_some_and(|s| s.value > 1.7e9)
        );
        for (result, want) in [("ok", 2.0), ("failed", 1.0), ("unknown", 1.0)] {
            assert_eq!(
                find(
                    &samples,
                    "worldpool_player_pages_total",
                    &[("world", "Beta"), ("result", result)]
                )
                .map(|s| s.value),
                Some(want),
                "{result}"
            );
        }
        assert_eq!(
            find(&samples, "worldpool_watched_players", &[("world", "Beta")]).map(|s| s.value),
            Some(3.0)
        );
    }

    /// The reader the tests check `/metrics` with can fail: it refuses
    /// what a broken writer would produce, and reads back escapes.
    #[test]
    fn the_exposition_reader_refuses_broken_text() {
        let bad = [
            ("m 1", "newline"),
            ("m{a=\"x} 1\n", "unterminated"),
            ("m{a=x} 1\n", "not quoted"),
            ("9m 1\n", "bad metric name"),
            ("m one\n", "bad value"),
            ("m{a=\"1\"} 1\nm{a=\"1\"} 2\n", "duplicate series"),
            ("a 1\nb 1\na 2\n", "not contiguous"),
            (
                "# TYPE m gauge\nm{a=\"1\"} 1\nm{a=\"1\"} 2\n",
                "duplicate series of a gauge",
            ),
            (
                "# TYPE c counter\nc{a=\"1\"} 1\nc{a=\"1\"} 2\n",
                "duplicate series of a counter",
            ),
            (
                "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",
                "a typed family not contiguous",
            ),
            ("# TYPE a counter\n# TYPE a gauge\n", "second TYPE"),
            ("# TYPE a counter\na -1\n", "negative"),
            ("a 1\n# TYPE a gauge\n", "after its samples"),
            ("m{a=\"\\t\"} 1\n", "bad escape"),
            ("m{1a=\"x\"} 1\n", "bad label name"),
            ("m 1 notatime\n", "bad timestamp"),
            ("# TYPE a wat\n", "unknown type"),
        ];
        let accepted: Vec<_> = bad
            .iter()
            .filter_map(|(text, why)| {
                let got = parse_exposition(text).ok()?;
                Some(format!("accepted {text:?} ({why}): {got:?}"))
            })
            .collect();
        assert!(accepted.is_empty(), "{accepted:#?}");
        let good = "# HELP a x\n# TYPE a counter\na{l=\"q\\\"\\\\\\n\",m=\"\"} 1e3 1700000000000\n\
                    # TYPE b gauge\nb NaN\n# TYPE c gauge\nc +Inf\n";
        let s = parse_exposition(good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 3, "{s:?}");
        let a = find(&s, "a", &[]).expect("a");
        assert_eq!(a.label("l"), Some("q\"\\\n"));
        assert_eq!(a.label("m"), Some(""));
        assert_eq!(a.value, 1000.0);
        assert!(find(&s, "b", &[]).is_some_and(|b| b.value.is_nan()));
        assert_eq!(find(&s, "c", &[]).map(|c| c.value), Some(f64::INFINITY));
    }
}
