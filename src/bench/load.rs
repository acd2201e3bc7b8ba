//! API load during a benchmark: keep-alive clients GETting what the
//! dashboard and a Prometheus scraper read (`/api/workers`,
//! `/api/workers/{world}`, `/metrics`, `/`), at a steady total rate, plus
//! one client following the live event stream (`/api/events`, as the
//! dashboard does).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::api::client::HttpClient;

/// What the load did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    /// Requests answered with a success status.
    pub ok: u64,
    /// Requests that failed or were answered with an error status.
    pub errors: u64,
    /// Requests per second over the run.
    pub rate_per_s: f64,
    /// Latency of a request, median, ms.
    pub p50_ms: f64,
    /// Latency of a request, 99th percentile, ms.
    pub p99_ms: f64,
    /// Bytes received on the event stream.
    pub event_stream_bytes: u64,
}

/// Load `base` (`http://127.0.0.1:PORT`) with `rate` requests per second
/// over `clients` connections, and follow the event stream, until `stop`.
pub async fn run(
    base: String,
    worlds: Vec<String>,
    rate: f64,
    clients: usize,
    stop: CancellationToken,
) -> LoadStats {
    let started = Instant::now();
    let clients = clients.max(1);
    let period = Duration::from_secs_f64(clients as f64 / rate.max(0.1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, worlds, stop) = (base.clone(), worlds.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            client_loop(&base, &worlds, c, period, stop).await
        }));
    }
    let events = tokio::spawn(follow_events(base, stop.clone()));
    let mut latencies = Vec::new();
    let mut stats = LoadStats::default();
    for t in tasks {
        if let Ok((ok, errors, lat)) = t.await {
            stats.ok += ok;
            stats.errors += errors;
            latencies.extend(lat);
        }
    }
    stats.event_stream_bytes = events.await.unwrap_or(0);
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round().max(0.0) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    stats.p50_ms = pick(0.5);
    stats.p99_ms = pick(0.99);
    stats.rate_per_s = (stats.ok + stats.errors) as f64 / started.elapsed().as_secs_f64();
    stats
}

async fn client_loop(
    base: &str,
    worlds: &[String],
    offset: usize,
    period: Duration,
    stop: CancellationToken,
) -> (u64, u64, Vec<f64>) {
    let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    let Ok(mut client) = HttpClient::new(base) else {
        return (ok, errors, latencies);
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = offset;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let path = match i % 4 {
            0 => "/api/workers".to_string(),
            1 => "/metrics".to_string(),
            2 if !worlds.is_empty() => {
                let w = &worlds[(i / 4) % worlds.len()];
                let encoded: String =
                    percent_encoding::utf8_percent_encode(w, percent_encoding::NON_ALPHANUMERIC)
                        .collect();
                format!("/api/workers/{encoded}")
            }
            _ => "/".to_string(),
        };
        i += 1;
        let t0 = Instant::now();
        match client.get_within(&path, Duration::from_secs(5)).await {
            Ok((status, _)) if status.is_success() => {
                ok += 1;
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            _ => errors += 1,
        }
    }
    (ok, errors, latencies)
}

/// Follow `/api/events` (server-sent events) until `stop`; bytes read.
async fn follow_events(base: String, stop: CancellationToken) -> u64 {
    let Some(authority) = base
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_string())
    else {
        return 0;
    };
    let mut total = 0u64;
    while !stop.is_cancelled() {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&authority).await else {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => continue,
            }
        };
        let request = format!(
            "GET /api/events HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 8192];
        loop {
            tokio::select! {
                () = stop.cancelled() => return total,
                n = stream.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n as u64,
                },
            }
        }
    }
    total
}
