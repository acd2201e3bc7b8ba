//! `POST /api/reload` and the API following an applied reload (its
//! config-derived state and its store); its metrics: `metrics/reload.rs`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{ApiError, ApiState, BoxFuture, CompatSettings, authorize, json};
use crate::config::Config;
use crate::reload::{Follower, ReloadError, Trigger};

/// Queue a reload and answer once it was applied (200 with the report) or
/// refused (422 with every problem, or naming the worker that did not come
/// back `running` when the rollout was rolled back). Token first, like every control.
#[utoipa::path(post, path = "/api/reload", operation_id = "reload",
    summary = "Reload the config file: validate it completely, then start added worlds, stop removed ones, restart changed ones and apply new restart policies without a restart.",
    description = "Queued: answers once this reload was applied. With a token configured, needs `Authorization: Bearer <WORLDPOOL_API_TOKEN>`; without one, on a loopback bind, clients of this machine need none.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied: the plan.", body = crate::reload::ReloadReport),
        (status = 401, description = "Missing or wrong token.", body = super::error::Body),
        (status = 403, description = "No token configured and the API not served on loopback only (`control_disabled`: set WORLDPOOL_API_TOKEN), or, without a token, a page of another origin (`foreign_origin`).", body = super::error::Body),
        (status = 422, description = "The new config is invalid (`invalid_config`, with `file` and `problems`), or a worker did not come back running and the reload was rolled back (`reload_rolled_back`, with `worker`); nothing changed.", body = super::error::Body),
        (status = 501, description = "This server has no config to reload.", body = super::error::Body),
        (status = 503, description = "The pool is shutting down.", body = super::error::Body),
    ))]
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
    match result {
        Ok(report) => Ok(json(StatusCode::OK, &report, 512)),
        Err(ReloadError::Invalid(e)) => Err(ApiError::InvalidConfig {
            file: e.path.display().to_string(),
            problems: e.problems,
        }),
        Err(ReloadError::RolledBack(r)) => Err(ApiError::ReloadRolledBack {
            file: r.file.display().to_string(),
            worker: Box::new(r.worker),
            problems: r.problems,
        }),
        Err(ReloadError::ShuttingDown) => Err(ApiError::ShuttingDown),
    }
}

/// The API after a reload: `/api/scraping-config`, the site's time zone and
/// single mode come from the new config; a changed `[storage]` opens the
/// new store (none, as at start, when it does not open).
impl Follower for ApiState {
    fn follow<'a>(&'a self, old: &'a Config, new: &'a Config) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.set_compat(CompatSettings::from_config(new));
            if old.storage != new.storage {
                let store = match crate::store::Store::open_reading(
                    &new.storage_url(),
                    super::read_settings(&new.api),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{Method, Request, header};
    use futures_util::StreamExt as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::api::fake::FakeControl;
    use crate::app_events::{AppEvent, AppEvents};
    use crate::config::{ConfigError, Problem};
    use crate::reload::{Plan, ReloadFailure, ReloadHandle, ReloadReport};

    async fn call(
        app: &axum::Router,
        method: Method,
        uri: &str,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let response = app
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn report() -> ReloadReport {
        ReloadReport {
            trigger: Trigger::Api,
            file: "w.toml".into(),
            plan: Plan {
                started: vec!["D".into()],
                unchanged: vec!["A".into()],
                ..Plan::default()
            },
            warnings: vec![],
            took_ms: 3,
        }
    }

    fn problems() -> ConfigError {
        ConfigError {
            path: "w.toml".into(),
            problems: vec![Problem {
                key: "pool.moed (line 2)".into(),
                message: "unknown key `moed`".into(),
                fix: "did you mean `mode`?".into(),
            }],
        }
    }

    #[tokio::test]
    async fn reload_needs_the_token_and_answers_with_the_plan_or_the_problems() {
        let fake = Arc::new(FakeControl::new(&["A"]));
        // Without a reloader: 501 (after the token).
        let bare = crate::api::app(ApiState::new(fake.clone(), None, Some("t".into())));
        assert_eq!(
            call(&bare, Method::POST, "/api/reload", Some("t")).await.0,
            501
        );
        assert_eq!(call(&bare, Method::POST, "/api/reload", None).await.0, 401);
        assert_eq!(
            call(&bare, Method::GET, "/api/reload", Some("t")).await.0,
            405
        );

        let (handle, mut queue) = ReloadHandle::new();
        // A reloader that applies the first request and refuses the second.
        tokio::spawn(async move {
            let first = queue.next().await.expect("first");
            assert_eq!(first.trigger, Trigger::Api);
            first.answer(Ok(report()));
            let second = queue.next().await.expect("second");
            second.answer(Err(ReloadError::Invalid(problems())));
            // Then the reloader is gone: 503.
        });
        let no_token =
            crate::api::app(ApiState::new(fake.clone(), None, None).with_reload(handle.clone()));
        assert_eq!(
            call(&no_token, Method::POST, "/api/reload", None).await.0,
            403
        );
        let app = crate::api::app(
            ApiState::new(fake.clone(), None, Some("t".into())).with_reload(handle),
        );
        assert_eq!(
            call(&app, Method::POST, "/api/reload", Some("x")).await.0,
            401
        );

        let (status, body) = call(&app, Method::POST, "/api/reload", Some("t")).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["trigger"], "api");
        assert_eq!(v["plan"]["started"], serde_json::json!(["D"]));
        assert_eq!(v["plan"]["needs_restart"], serde_json::json!([]));

        let (status, body) = call(&app, Method::POST, "/api/reload", Some("t")).await;
        assert_eq!(status, 422, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["error"], "invalid_config");
        assert_eq!(v["status"], 422);
        assert_eq!(v["file"], "w.toml");
        assert_eq!(v["problems"][0]["key"], "pool.moed (line 2)");
        assert_eq!(v["problems"][0]["fix"], "did you mean `mode`?");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing changed") && m.contains("moed")),
            "{v}"
        );

        let (status, body) = call(&app, Method::POST, "/api/reload", Some("t")).await;
        assert_eq!(status, 503, "{body}");

        let (_, metrics) = call(&app, Method::GET, "/metrics", None).await;
        assert!(
            metrics.contains("worldpool_reloads_total{outcome=\"applied\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("worldpool_reloads_total{outcome=\"failed\"} 1\n"),
            "{metrics}"
        );
        crate::api::exposition::parse_exposition(&metrics).expect("valid exposition");
    }

    #[tokio::test]
    async fn app_events_reach_every_event_stream() {
        let fake = Arc::new(FakeControl::new(&["A", "B"]));
        let events = AppEvents::default();
        let app = crate::api::app(
            ApiState::new(fake.clone(), None, None).with_app_events(events.clone()),
        );
        let response = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/api/events?world=A")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status().as_u16(), 200);
        events.publish(AppEvent::ReloadFailed(ReloadFailure {
            trigger: Trigger::Sighup,
            file: "w.toml".into(),
            problems: problems().problems,
            worker: None,
        }));
        events.publish(AppEvent::Reloaded(report()));
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        let read = async {
            while !text.contains("event: reloaded") {
                match body.next().await {
                    Some(Ok(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => break,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("both events in time");
        let failed = text.find("event: reload_failed").expect("reload_failed");
        let reloaded = text.find("event: reloaded").expect("reloaded");
        assert!(failed < reloaded, "{text}");
        assert!(text.contains("\"event\":\"reload_failed\""), "{text}");
        assert!(text.contains("\"trigger\":\"sighup\""), "{text}");
        assert!(text.contains("\"plan\":{\"started\":[\"D\"]"), "{text}");
    }
}
