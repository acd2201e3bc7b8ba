//! The REST API (axum) and `worldpool status`.
//!
//! [`app`] builds the router over an [`ApiState`] (a [`Control`], an
//! optional [`Store`] and an optional control token); [`serve`] binds it and
//! runs it until a cancellation token fires. Read endpoints need no
//! credentials; the control endpoints (`POST /api/workers/{world}/{restart,stop,start}`,
//! `/api/reload`, `/api/manual-update`, `/api/vip/{add,remove}`) need `Authorization: Bearer
//! $WORLDPOOL_API_TOKEN` when a token is configured, and nothing from this machine's
//! clients on a loopback bind without one (`authorize`). Every error is `{"error": code, "message": text,
//! "status": http status}` ([`ApiError`]). The replaced system's data API
//! lives in [`compat`] (settings from the config: [`CompatSettings`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::trace::TraceLayer;

use crate::store::Store;

mod auth;
pub mod budget;
pub mod client;
mod cluster;
mod cluster_table;
mod compat;
pub mod control;
pub mod dashboard;
mod error;
pub mod events;
/// What `/metrics` serves, read strictly: the test suite's reader
/// (tests/helper/exposition.rs), for the unit tests.
#[cfg(test)]
#[path = "../../tests/helper/exposition.rs"]
pub(crate) mod exposition;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
mod guard;
mod handlers;
pub mod health;
pub mod metrics;
mod openapi;
mod reload;
pub mod server;
mod serving;
mod state;
mod table;
pub mod views;

use auth::*;
use handlers::*;
pub use serving::{DedicatedOptions, check_bind, serve, serve_dedicated, serve_with};
pub use state::{ApiState, Reads, read_settings};

pub use cluster_table::{fetch_cluster, render_cluster};
pub use compat::{CompatSettings, ConfiguredWorld};
pub use control::{BoxFuture, Control, ControlError, Verb};
pub use error::ApiError;
pub use guard::AllowedHosts;
pub use server::ServerLimits;
pub use table::{HostRow, Row, fetch_hosts, fetch_rows, render_hosts, render_table};

/// Environment variable holding the control token.
pub const TOKEN_ENV: &str = crate::config::API_TOKEN_ENV;

/// Default number of rows of `/api/runs` and `/api/deltas`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page of `/api/runs` and `/api/deltas`; larger `limit`s are capped.
pub const MAX_LIMIT: u32 = 500;

/// Default reuse time of a serialized `/api/workers` body (see
/// [`ApiState::with_workers_cache`]). Pool events invalidate it at once;
/// the time bound covers what changes without an event (CPU and memory
/// samples, heartbeats, check times, uptime).
pub const DEFAULT_WORKERS_CACHE: Duration = Duration::from_millis(100);

/// How long the API waits for any store call, whatever the backend: reads
/// are stopped sooner by the store itself (`[api] query_timeout`, 5 s by
/// default: [`crate::store::ReadSettings`]); this bounds writes and a store
/// that stopped answering altogether.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `/readyz` waits for the store's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The router (no socket: test it with `tower::ServiceExt::oneshot`).
pub fn app(state: ApiState) -> Router {
    Router::new()
        .route("/api/workers", get(list_workers))
        .route("/api/workers/{world}", get(one_worker))
        .route(
            "/api/workers/{world}/restart",
            post(|s, w, h| control(Verb::Restart, s, w, h)),
        )
        .route(
            "/api/workers/{world}/stop",
            post(|s, w, h| control(Verb::Stop, s, w, h)),
        )
        .route(
            "/api/workers/{world}/start",
            post(|s, w, h| control(Verb::Start, s, w, h)),
        )
        .route("/api/reload", post(reload::reload))
        .route("/api/scraper-status", get(scraper_status))
        .route("/api/events", get(events_handler))
        .route("/api/runs", get(runs_handler))
        .route("/api/deltas", get(deltas_handler))
        .route("/api/openapi.json", get(openapi_handler))
        .route("/metrics", get(metrics_handler))
        .route("/api/budget", get(budget::budget_handler))
        .route("/api/cluster", get(cluster::cluster_handler))
        .route("/healthz", get(health::healthz))
        .route("/memusage", get(health::memusage))
        .route("/readyz", get(readyz))
        .merge(compat::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Host, cross-site and Content-Type checks before any handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The route template, never the raw path (names are data).
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("unmatched");
                tracing::debug_span!("http", method = %req.method(), route)
            }),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_before_and_names_are_validated() {
        assert_eq!(limit_param(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit_param(Some("7")), Ok(7));
        assert_eq!(limit_param(Some("100000000000")), Ok(MAX_LIMIT));
        for bad in ["0", "-1", "x", "", "1.5"] {
            assert!(
                matches!(limit_param(Some(bad)), Err(ApiError::BadParam { ref param, .. }) if param == "limit"),
                "{bad}"
            );
        }
        assert_eq!(before_param(Some("12")), Ok(Some(12)));
        assert!(before_param(Some("0")).is_err());
        assert!(name_param("guild", Some(String::new())).is_err());
        assert!(name_param("guild", Some("x".repeat(201))).is_err());
        assert_eq!(
            name_param("guild", Some("Rôle Play".into())),
            Ok(Some("Rôle Play".into()))
        );
    }

    #[test]
    fn next_page_starts_below_the_last_id_of_a_full_page() {
        let ids = [90i64, 75, 74];
        assert_eq!(next_before(&ids, 3, |i| *i), Some(74));
        assert_eq!(next_before(&ids, 4, |i| *i), None);
        assert_eq!(next_before(&ids[..0], 1, |i| *i), None);
    }

    #[test]
    fn query_rejects_unknown_and_repeated_parameters() {
        let ok = parse_query(Some("world=S%C3%A3o+Paulo&limit=3"), &["world", "limit"]);
        assert_eq!(
            ok.as_ref()
                .ok()
                .and_then(|m| m.get("world"))
                .map(String::as_str),
            Some("São Paulo")
        );
        assert!(matches!(
            parse_query(Some("worlds=x"), &["world"]),
            Err(ApiError::BadParam { ref param, .. }) if param == "worlds"
        ));
        assert!(matches!(
            parse_query(Some("world=a&world=b"), &["world"]),
            Err(ApiError::BadParam { ref param, .. }) if param == "world"
        ));
    }

    #[test]
    fn bind_check_and_secret_compare() {
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let lo6: SocketAddr = "[::1]:0".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:5000".parse().expect("addr");
        assert!(check_bind(lo, false).is_ok());
        assert!(check_bind(lo6, false).is_ok());
        assert!(check_bind(any, true).is_ok());
        let e = check_bind(any, false).expect_err("refused").to_string();
        assert!(e.contains(TOKEN_ENV) && e.contains("0.0.0.0:5000"), "{e}");
        for ok in [
            "http://127.0.0.1:5000",
            "http://localhost:8080",
            "https://LOCALHOST",
            "http://[::1]:5000",
            "http://127.1.2.3",
            "http://app.localhost:3000",
        ] {
            assert!(local_origin(ok), "{ok}");
        }
        for foreign in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "http://10.0.0.2:5000",
            "http://[::2]:5000",
            "http://localhost@evil.example",
            "ftp://localhost",
        ] {
            assert!(!local_origin(foreign), "{foreign}");
        }
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
