//! `POST /api/reload`, the reload counters of `/metrics`, and the API
//! following an applied reload (its config-derived state and its store).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{ApiError, ApiState, BoxFuture, CompatSettings, authorize, json};
use crate::config::Config;
use crate::reload::{Follower, ReloadError, ReloadStats, Trigger};

/// Connections of the API's store (as `worldpool run` opens it).
const API_STORE_CONNECTIONS: usize = 2;

/// Queue a reload and answer once it was applied (200 with the report) or
/// refused (422 with every problem). Token first, like every control.
pub(super) async fn reload(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Some(handle) = state.reload.clone() else {
        return Err(ApiError::NotSupported(
            "this server has no config to reload (it was not started by worldpool run)".into(),
        ));
    };
    tracing::info!("reload requested through the API");
    // Its own task: a client that hangs up must not cancel the wait, and
    // the reload itself runs in the reloader anyway.
    let result = tokio::spawn(async move { handle.reload(Trigger::Api).await })
        .await
        .unwrap_or(Err(ReloadError::ShuttingDown));
    state.inner.shared.generation.fetch_add(1, Ordering::AcqRel);
    match result {
        Ok(report) => Ok(json(StatusCode::OK, &report, 512)),
        Err(ReloadError::Invalid(e)) => Err(ApiError::InvalidConfig {
            file: e.path.display().to_string(),
            problems: e.problems,
        }),
        Err(ReloadError::ShuttingDown) => Err(ApiError::ShuttingDown),
    }
}

/// Append `worldpool_reloads_total{outcome}` (zeros without a reloader).
pub(super) fn render_metrics(out: &mut String, stats: Option<&ReloadStats>) {
    let (applied, failed) = stats.map(ReloadStats::counts).unwrap_or((0, 0));
    let _ = writeln!(
        out,
        "# HELP worldpool_reloads_total Config reloads since the pool started, by outcome \
         (applied, or failed: the config in force kept running)."
    );
    let _ = writeln!(out, "# TYPE worldpool_reloads_total counter");
    let _ = writeln!(
        out,
        "worldpool_reloads_total{{outcome=\"applied\"}} {applied}"
    );
    let _ = writeln!(
        out,
        "worldpool_reloads_total{{outcome=\"failed\"}} {failed}"
    );
}

/// The API after a reload: `/api/scraping-config`, the site's time zone and
/// single mode come from the new config; a changed `[storage]` opens the
/// new store (none, as at start, when it does not open).
impl Follower for ApiState {
    fn follow<'a>(&'a self, old: &'a Config, new: &'a Config) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.set_compat(CompatSettings::from_config(new));
            if old.storage != new.storage {
                let store = match crate::store::Store::open(
                    &new.storage_url(),
                    API_STORE_CONNECTIONS,
                )
                .await
                {
                    Ok(store) => Some(store),
                    Err(e) => {
                        tracing::warn!(error = %e, "the API serves no runs or deltas: the new store did not open");
                        None
                    }
                };
                self.set_store(store);
            }
            self.inner.shared.generation.fetch_add(1, Ordering::AcqRel);
        })
    }
}
