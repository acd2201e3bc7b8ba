//! `/api/events`: pool events as Server-Sent Events.
//!
//! Each event is `event: <name>` (`started`, `ready`, `exited`, `backoff`,
//! `fatal`, `stopped`, `phase`, or a worker event kind such as
//! `run_finished`) with the event as JSON in `data`. A consumer that falls
//! behind the broadcast buffer gets a last `lagged` event and is
//! disconnected: the pool never waits for it. Streams end when the server
//! shuts down. With `?samples=SECONDS` the stream also carries a `samples`
//! event every SECONDS with every worker as `/api/workers` shows it (what
//! changes without an event: CPU, memory, checks), so a dashboard stays
//! live without polling.
//!
//! The application's own events ([`AppEvent`]: `reloaded`,
//! `reload_failed`, …) are merged into the same stream; those that are
//! not about one worker go to every stream, also one filtered by world.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures_util::{Stream, StreamExt, stream};
use pool::PoolEvent;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::ApiError;
use super::views::Ts;
use crate::app_events::AppEvent;

/// The workers (every one, or only the given world's) as a JSON array, as
/// `/api/workers` shows them.
pub type WorkerList = Arc<dyn Fn(Option<&str>) -> Vec<u8> + Send + Sync>;

/// Periodic worker snapshots on a stream: how to list them and how often.
pub type Sampler = (WorkerList, Duration);

/// Fewest and most seconds between two `samples` events.
pub const SAMPLES_RANGE: (f64, f64) = (0.2, 60.0);

/// Where the stream's items come from.
struct Source {
    rx: broadcast::Receiver<PoolEvent>,
    app: Option<broadcast::Receiver<AppEvent>>,
    ticker: Option<(WorkerList, Interval)>,
    world: Option<String>,
}

/// What arrived first.
enum Got {
    Event(Result<PoolEvent, RecvError>),
    App(Result<AppEvent, RecvError>),
    Tick,
}

/// The next application event; never, without a subscription.
async fn next_app(app: &mut Option<broadcast::Receiver<AppEvent>>) -> Result<AppEvent, RecvError> {
    match app {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next sample time; never, without samples.
async fn next_tick(ticker: &mut Option<(WorkerList, Interval)>) {
    match ticker {
        Some((_, interval)) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The SSE stream over a subscription, with the application's events from
/// `app` merged in; `world` keeps only that worker's events. Pool events
/// waiting go out first, then application events, then a sample: with a
/// [`Sampler`], a `samples` event every period, `{event: "samples", at,
/// workers: [worker…]}` with the workers as `/api/workers` shows them
/// (CPU, memory, checks and uptime change without a pool event), the first
/// one period after connecting. Ends on shutdown, when the pool goes away,
/// or after lagging.
pub fn event_stream(
    rx: broadcast::Receiver<PoolEvent>,
    app: Option<broadcast::Receiver<AppEvent>>,
    world: Option<String>,
    samples: Option<Sampler>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let ticker = samples.map(|(control, every)| {
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        (control, interval)
    });
    let source = Source {
        rx,
        app,
        ticker,
        world,
    };
    let events = stream::unfold(Some(source), |source| async move {
        let mut source = source?;
        loop {
            let Source {
                rx,
                app,
                ticker,
                world,
            } = &mut source;
            let got = tokio::select! {
                biased;
                r = rx.recv() => Got::Event(r),
                r = next_app(app) => Got::App(r),
                () = next_tick(ticker) => Got::Tick,
            };
            match got {
                Got::Event(Ok(ev)) => {
                    if world.as_deref().is_some_and(|w| w != ev.worker()) {
                        continue;
                    }
                    // The request budget's bookkeeping stays in the pool.
                    if let PoolEvent::Custom { kind, .. } = &ev
                        && crate::protocol::WorkerEvent::is_internal_kind(kind)
                    {
                        continue;
                    }
                    return Some((to_sse(&ev), Some(source)));
                }
                Got::App(Ok(ev)) => {
                    if let (Some(w), Some(mine)) = (world.as_deref(), ev.worker())
                        && w != mine
                    {
                        continue;
                    }
                    return Some((app_to_sse(&ev), Some(source)));
                }
                // The application went away: pool events go on.
                Got::App(Err(RecvError::Closed)) => *app = None,
                Got::Event(Err(RecvError::Lagged(missed)))
                | Got::App(Err(RecvError::Lagged(missed))) => {
                    tracing::info!(missed, "SSE consumer too slow; disconnecting it");
                    let ev = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{missed}}}"));
                    return Some((ev, None));
                }
                Got::Event(Err(RecvError::Closed)) => return None,
                Got::Tick => {
                    let Some((list, _)) = ticker else {
                        continue;
                    };
                    let ev = samples_event(list, world.as_deref());
                    return Some((ev, Some(source)));
                }
            }
        }
    });
    events
        .map(Ok::<_, Infallible>)
        .take_until(shutdown.cancelled_owned())
}

/// A `samples` event: every worker (or only `world`) now.
fn samples_event(list: &WorkerList, world: Option<&str>) -> Event {
    let at = serde_json::to_string(&Ts(Utc::now())).unwrap_or_else(|_| "null".into());
    let workers = list(world);
    let data = format!(
        "{{\"event\":\"samples\",\"at\":{at},\"workers\":{}}}",
        String::from_utf8_lossy(&workers)
    );
    Event::default().event("samples").data(data)
}

/// `samples`: seconds between two `samples` events (absent: none).
pub fn samples_param(v: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(text) = v else {
        return Ok(None);
    };
    let (lo, hi) = SAMPLES_RANGE;
    match text.parse::<f64>() {
        Ok(s) if (lo..=hi).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(ApiError::bad_param(
            "samples",
            format!("seconds between worker snapshots, from {lo} to {hi}"),
        )),
    }
}

/// One pool event as an SSE event.
pub fn to_sse(ev: &PoolEvent) -> Event {
    let data = match serde_json::to_string(ev) {
        Ok(json) => json,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize a pool event");
            "{}".to_string()
        }
    };
    // `Event::event` panics on line breaks; a worker-chosen kind could hold one.
    let name = ev.name();
    let name = if name.is_empty() || name.contains(['\r', '\n']) {
        "custom"
    } else {
        name
    };
    Event::default().event(name).data(data)
}

/// One application event as an SSE event.
pub fn app_to_sse(ev: &AppEvent) -> Event {
    let data = match serde_json::to_string(ev) {
        Ok(json) => json,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize an application event");
            "{}".to_string()
        }
    };
    Event::default().event(ev.name()).data(data)
}

/// [`event_stream`] as a response, with keep-alive comments.
pub fn sse_response(
    rx: broadcast::Receiver<PoolEvent>,
    app: Option<broadcast::Receiver<AppEvent>>,
    world: Option<String>,
    samples: Option<Sampler>,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    Sse::new(event_stream(rx, app, world, samples, shutdown)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Control as _;
    use crate::api::fake::FakeControl;
    use crate::api::views::WorkerView;
    use axum::response::IntoResponse as _;

    #[test]
    fn samples_period_is_validated() {
        assert_eq!(samples_param(None), Ok(None));
        assert_eq!(samples_param(Some("2")), Ok(Some(Duration::from_secs(2))));
        assert_eq!(
            samples_param(Some("0.5")),
            Ok(Some(Duration::from_millis(500)))
        );
        for bad in ["0", "0.1", "61", "x", "", "NaN", "inf", "-1"] {
            assert!(
                matches!(samples_param(Some(bad)), Err(ApiError::BadParam { ref param, .. }) if param == "samples"),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn samples_come_after_waiting_events_and_keep_the_world_filter() {
        let fake = Arc::new(FakeControl::new(&["A", "B"]));
        let rx = fake.subscribe();
        let stop = CancellationToken::new();
        let list: WorkerList = {
            let fake = fake.clone();
            Arc::new(move |world| {
                let now = Utc::now();
                let workers = fake.workers();
                let views: Vec<WorkerView<'_>> = workers
                    .iter()
                    .filter(|w| world.is_none_or(|name| name == w.name))
                    .map(|w| WorkerView::new(w, now, false))
                    .collect();
                serde_json::to_vec(&views).expect("views serialize")
            })
        };
        let response = sse_response(
            rx,
            None,
            Some("A".into()),
            Some((list, Duration::from_millis(50))),
            stop.clone(),
        )
        .into_response();
        for (worker, phase) in [("B", "checking"), ("A", "scraping")] {
            fake.emit(PoolEvent::Phase {
                worker: worker.into(),
                phase: phase.into(),
            });
        }
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        let read = async {
            while text.matches("event: samples").count() < 2 {
                match body.next().await {
                    Some(Ok(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => break,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("two samples in time");
        let phase = text.find("event: phase").expect("the phase event");
        let sample = text.find("event: samples").expect("a sample");
        assert!(phase < sample, "{text}");
        assert!(!text.contains("\"worker\":\"B\""), "{text}");
        let data = text[sample..]
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("sample data");
        let v: serde_json::Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(v["event"], "samples");
        assert!(v["at"].is_string());
        let workers = v["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0]["world"], "A");
        assert!(workers[0]["cpu_percent"].is_number());
        stop.cancel();
    }
}
