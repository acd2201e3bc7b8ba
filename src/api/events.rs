//! `/api/events`: pool events as Server-Sent Events.
//!
//! Each event is `event: <name>` (`started`, `ready`, `exited`, `backoff`,
//! `fatal`, `stopped`, `phase`, or a worker event kind such as
//! `run_finished`) with the event as JSON in `data`. A consumer that falls
//! behind the broadcast buffer gets a last `lagged` event and is
//! disconnected: the pool never waits for it. Streams end when the server
//! shuts down.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use pool::PoolEvent;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// What the stream does next.
enum Next {
    Receive(broadcast::Receiver<PoolEvent>),
    Done,
}

/// The SSE stream over a subscription; `world` keeps only that worker's
/// events. Ends on shutdown, when the pool goes away, or after lagging.
pub fn event_stream(
    rx: broadcast::Receiver<PoolEvent>,
    world: Option<String>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let events = stream::unfold(Next::Receive(rx), move |next| {
        let world = world.clone();
        async move {
            let Next::Receive(mut rx) = next else {
                return None;
            };
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if world.as_deref().is_some_and(|w| w != ev.worker()) {
                            continue;
                        }
                        return Some((to_sse(&ev), Next::Receive(rx)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "SSE consumer too slow; disconnecting it");
                        let ev = Event::default()
                            .event("lagged")
                            .data(format!("{{\"missed\":{missed}}}"));
                        return Some((ev, Next::Done));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    events
        .map(Ok::<_, Infallible>)
        .take_until(shutdown.cancelled_owned())
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

/// The SSE response with keep-alive comments.
pub fn sse_response(
    rx: broadcast::Receiver<PoolEvent>,
    world: Option<String>,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    Sse::new(event_stream(rx, world, shutdown)).keep_alive(KeepAlive::default())
}
