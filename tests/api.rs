//! API: router tests without a socket (`oneshot`, fake pool), SSE and
//! `worldpool status` over real HTTP on 127.0.0.1, and an end-to-end test
//! against a real pool of `worldpool worker` processes.

use std::sync::Arc;
use std::time::Duration;

use crate::helper::exposition::parse_exposition;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use worldpool::api::fake::FakeControl;
use worldpool::api::{self, ApiState, Verb};
use worldpool::protocol::{RunFailed, RunFinished, WorkerEvent};

use crate::helper::cli::{command, output};
use crate::helper::{pid_alive, wait_for_async};

const TOKEN: &str = "s3cret-t0ken";
const WORLDS: [&str; 3] = ["Aurora", "São Paulo", "Zuna Nova"];
const DEADLINE: Duration = Duration::from_secs(10);

fn fake_state(token: Option<&str>) -> (Arc<FakeControl>, ApiState) {
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let state = ApiState::new(fake.clone(), None, token.map(String::from));
    (fake, state)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert the one error shape and return the code.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let v = self.json();
        let obj = v.as_object().expect("error is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["error", "message", "status"], "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{v}");
        v["error"].as_str().expect("code").to_string()
    }
}

async fn call(app: &Router, method: Method, uri: &str, bearer: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: body.to_vec(),
    }
}

async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, None).await
}

const WORKER_FIELDS: [&str; 19] = [
    "world",
    "pid",
    "state",
    "phase",
    "since",
    "started_at",
    "uptime_s",
    "restarts",
    "last_exit",
    "next_restart_at",
    "last_check",
    "last_success",
    "last_error",
    "rows_last_run",
    "cpu_percent",
    "rss_bytes",
    "pss_bytes",
    "limits",
    "exits_by_reason",
];

#[tokio::test]
async fn workers_list_has_every_field_and_no_secrets() {
    let (_fake, state) = fake_state(Some(TOKEN));
    let app = api::app(state);
    let a = get(&app, "/api/workers").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let v = a.json();
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 3);
    for (w, name) in list.iter().zip(WORLDS) {
        assert_eq!(w["world"], name);
        for f in WORKER_FIELDS {
            assert!(w.get(f).is_some(), "field {f} missing in {w}");
        }
        assert_eq!(w["state"], "running");
        assert_eq!(w["phase"], "sleeping");
        assert!(w["pid"].as_u64().is_some());
        let exit = &w["last_exit"];
        for f in ["code", "signal", "reason", "at"] {
            assert!(exit.get(f).is_some(), "last_exit.{f} missing");
        }
        assert_eq!(exit["reason"], "crashed");
        assert!(w.get("recent_exits").is_none(), "list stays compact");
        assert!(w["limits"]["memory"].as_u64().is_some());
    }
    assert!(!a.text().contains(TOKEN));
}

#[tokio::test]
async fn workers_list_cache_follows_events_time_and_control() {
    let (fake, state) = fake_state(Some(TOKEN));
    let app = api::app(state.clone().with_workers_cache(Duration::from_secs(3600)));
    let uncached = api::app(state.with_workers_cache(Duration::ZERO));
    let restarts = |v: Value| v[0]["restarts"].as_u64();
    assert_eq!(restarts(get(&app, "/api/workers").await.json()), Some(1));

    // A change without an event: the uncached list shows it, the cached
    // one until an event arrives.
    fake.update("Aurora", |s| s.restarts = 7);
    assert_eq!(
        restarts(get(&uncached, "/api/workers").await.json()),
        Some(7)
    );
    fake.emit(pool::PoolEvent::Phase {
        worker: "Aurora".into(),
        phase: "checking".into(),
    });
    wait_for_async(
        "an event to invalidate the cached list",
        DEADLINE,
        || async { (restarts(get(&app, "/api/workers").await.json()) == Some(7)).then_some(()) },
    )
    .await;

    // A control action is visible in the very next list.
    let a = call(&app, Method::POST, "/api/workers/Aurora/stop", Some(TOKEN)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let v = get(&app, "/api/workers").await.json();
    assert_eq!(v[0]["state"], "stopped");

    // The default time bound is short.
    let (fake, state) = fake_state(None);
    let app = api::app(state);
    get(&app, "/api/workers").await;
    fake.update("Aurora", |s| s.restarts = 9);
    wait_for_async("the cache to expire", DEADLINE, || async {
        (restarts(get(&app, "/api/workers").await.json()) == Some(9)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_worker_by_encoded_name_and_unknown_is_404() {
    let (_fake, state) = fake_state(None);
    let app = api::app(state);
    let a = get(&app, "/api/workers/S%C3%A3o%20Paulo").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let w = a.json();
    assert_eq!(w["world"], "São Paulo");
    assert_eq!(w["recent_exits"].as_array().map(Vec::len), Some(1));

    let a = get(&app, "/api/workers/Zuna%20Nova").await;
    assert_eq!(a.json()["world"], "Zuna Nova");

    let a = get(&app, "/api/workers/Nowhere%20%C3%89").await;
    assert_eq!(a.error(404), "unknown_worker");
    assert!(
        a.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("Nowhere É"))
    );

    // Not UTF-8 once decoded.
    let a = get(&app, "/api/workers/%FF%FE").await;
    assert_eq!(a.error(400), "bad_parameter");
    assert!(a.text().contains("`world`"));
}

#[tokio::test]
async fn control_without_configured_token_is_403_and_does_nothing() {
    let (fake, state) = fake_state(None);
    let app = api::app(state);
    for verb in ["restart", "stop", "start"] {
        let a = call(
            &app,
            Method::POST,
            &format!("/api/workers/Aurora/{verb}"),
            Some(TOKEN),
        )
        .await;
        assert_eq!(a.error(403), "control_disabled");
        assert!(a.text().contains("WORLDPOOL_API_TOKEN"), "{}", a.text());
    }
    assert!(fake.calls().is_empty());

    // A blank token counts as none; surrounding whitespace is not part of it.
    let blank = api::app(ApiState::new(fake.clone(), None, Some("  \n".into())));
    let a = call(&blank, Method::POST, "/api/workers/Aurora/stop", Some("")).await;
    assert_eq!(a.error(403), "control_disabled");
    let padded = api::app(ApiState::new(
        fake.clone(),
        None,
        Some(format!(" {TOKEN}\n")),
    ));
    let a = call(
        &padded,
        Method::POST,
        "/api/workers/Aurora/stop",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
}

/// One rule for every control verb: served on loopback without a token,
/// this machine's clients need none (pages of another origin are refused);
/// with a token they need it.
#[tokio::test]
async fn control_on_loopback_without_a_token_is_open_to_this_machine() {
    let lo: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("addr");
    let send = |app: Router, uri: &'static str, origin: Option<&'static str>| async move {
        let mut req = Request::builder().method(Method::POST).uri(uri);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let response = app
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, v)
    };
    let (fake, state) = fake_state(None);
    let open = api::app(state.bound_to(lo));
    for origin in [
        None,
        Some("http://127.0.0.1:8080"),
        Some("http://localhost:5000"),
    ] {
        let (status, v) = send(open.clone(), "/api/workers/Aurora/restart", origin).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{origin:?}: {v}");
    }
    assert_eq!(fake.calls().len(), 3);
    let (status, v) = send(
        open.clone(),
        "/api/workers/Aurora/stop",
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["error"], "foreign_origin", "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("evil.example") && m.contains("WORLDPOOL_API_TOKEN")),
        "{v}"
    );
    assert_eq!(fake.calls().len(), 3, "refused before anything ran");

    // Not served on loopback: disabled without a token.
    let (_, state) = fake_state(None);
    let any = api::app(state.bound_to("0.0.0.0:5000".parse().expect("addr")));
    let (status, v) = send(any, "/api/workers/Aurora/restart", None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("control_disabled"))
    );

    // A token configured: needed on loopback too.
    let (fake, state) = fake_state(Some(TOKEN));
    let guarded = api::app(state.bound_to(lo));
    let (status, v) = send(guarded.clone(), "/api/workers/Aurora/restart", None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let a = call(
        &guarded,
        Method::POST,
        "/api/workers/Aurora/restart",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn control_checks_the_token_then_runs_the_verb() {
    let (fake, state) = fake_state(Some(TOKEN));
    let app = api::app(state);

    let a = call(&app, Method::POST, "/api/workers/Aurora/restart", None).await;
    assert_eq!(a.error(401), "unauthorized");
    assert!(a.headers.get(header::WWW_AUTHENTICATE).is_some());
    let a = call(
        &app,
        Method::POST,
        "/api/workers/Aurora/restart",
        Some("nope"),
    )
    .await;
    assert_eq!(a.error(401), "unauthorized");
    // Unknown names are not revealed before authentication.
    let a = call(&app, Method::POST, "/api/workers/Ghost/stop", Some("x")).await;
    assert_eq!(a.error(401), "unauthorized");
    assert!(fake.calls().is_empty());

    let before = get(&app, "/api/workers/S%C3%A3o%20Paulo").await.json();
    let a = call(
        &app,
        Method::POST,
        "/api/workers/S%C3%A3o%20Paulo/restart",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let v = a.json();
    assert_eq!(
        (&v["world"], &v["action"], &v["state"]),
        (&"São Paulo".into(), &"restart".into(), &"running".into())
    );
    let after = get(&app, "/api/workers/S%C3%A3o%20Paulo").await.json();
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(
        after["restarts"].as_u64(),
        before["restarts"].as_u64().map(|r| r + 1)
    );

    let a = call(&app, Method::POST, "/api/workers/Aurora/stop", Some(TOKEN)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json()["state"], "stopped");
    let w = get(&app, "/api/workers/Aurora").await.json();
    assert_eq!(
        (w["state"].as_str(), w["pid"].as_u64()),
        (Some("stopped"), None)
    );
    assert_eq!(w["phase"], Value::Null);

    let a = call(&app, Method::POST, "/api/workers/Aurora/start", Some(TOKEN)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.json()["state"], "running");

    let a = call(&app, Method::POST, "/api/workers/Ghost/start", Some(TOKEN)).await;
    assert_eq!(a.error(404), "unknown_worker");

    // A lower-case scheme is accepted too.
    let response = app
        .clone()
        .oneshot(
            Request::post("/api/workers/Aurora/restart")
                .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    assert_eq!(
        fake.calls(),
        vec![
            (Verb::Restart, "São Paulo".to_string()),
            (Verb::Stop, "Aurora".to_string()),
            (Verb::Start, "Aurora".to_string()),
            (Verb::Start, "Ghost".to_string()),
            (Verb::Restart, "Aurora".to_string()),
        ]
    );

    // An internal failure is a 500 whose message reveals nothing of it.
    fake.set_failure(Some("cannot spawn /secret/path: EACCES"));
    let a = call(
        &app,
        Method::POST,
        "/api/workers/Aurora/restart",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.error(500), "internal");
    assert!(
        !a.text().contains("secret") && !a.text().contains("EACCES"),
        "{}",
        a.text()
    );
    fake.set_failure(None);

    fake.set_shutting_down();
    let a = call(&app, Method::POST, "/api/workers/Aurora/stop", Some(TOKEN)).await;
    assert_eq!(a.error(503), "shutting_down");
}

#[tokio::test]
async fn wrong_method_and_unknown_route_use_the_error_shape() {
    let (_fake, state) = fake_state(Some(TOKEN));
    let app = api::app(state);
    let a = get(&app, "/api/workers/Aurora/restart").await;
    assert_eq!(a.error(405), "method_not_allowed");
    let a = call(&app, Method::DELETE, "/api/workers", Some(TOKEN)).await;
    assert_eq!(a.error(405), "method_not_allowed");
    let a = get(&app, "/api/nothing-here").await;
    assert_eq!(a.error(404), "not_found");
    let a = call(
        &app,
        Method::POST,
        "/api/workers/Aurora/explode",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.error(404), "not_found");
}

#[tokio::test]
async fn scraper_status_is_compatible_and_uses_reported_check_time() {
    let (fake, state) = fake_state(None);
    // The fake changes its workers without pool events: no reuse of the
    // serialized answer (a real pool's events invalidate it at once).
    let app = api::app(state.with_workers_cache(Duration::ZERO));
    let check = chrono::Utc::now() - chrono::Duration::minutes(7);
    for w in WORLDS {
        fake.update(w, |s| {
            s.report.last_check = Some(check - chrono::Duration::minutes(1));
            s.report.phase = Some("idle".into());
        });
    }
    fake.update("Zuna Nova", |s| {
        s.report.last_check = Some(check);
        s.report.phase = Some("scraping".into());
    });
    fake.update("Aurora", |s| {
        s.report.phase = Some("checking".into());
    });
    let v = get(&app, "/api/scraper-status").await.json();
    assert_eq!(v["running"], true);
    assert_eq!(v["process_alive"], true);
    assert_eq!(v["state"], "scraping");
    assert_eq!(v["pid"].as_u64(), Some(u64::from(std::process::id())));
    // The replaced system's form: the site's wall time (UTC-3 by default),
    // no offset.
    let reported = chrono::NaiveDateTime::parse_from_str(
        v["last_check"].as_str().expect("a time"),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .expect("a naive time");
    assert_eq!(
        reported.and_utc().timestamp_millis() + 3 * 3600 * 1000,
        check.timestamp_millis(),
        "last_check is the workers' check, in site time, not now"
    );
    assert_eq!(v["workers"]["total"], 3);
    assert_eq!(v["workers"]["running"], 3);

    for w in WORLDS {
        fake.update(w, |s| {
            s.pid = None;
            s.state = pool::StateName::Stopped;
        });
    }
    let v = get(&app, "/api/scraper-status").await.json();
    assert_eq!(
        (&v["running"], &v["process_alive"], &v["state"]),
        (&false.into(), &false.into(), &"stopped".into())
    );
}

fn sample_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let samples = parse_exposition(text).unwrap_or_else(|e| panic!("invalid exposition: {e}"));
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_parse_and_count_runs_from_worker_events() {
    let (fake, state) = fake_state(None);
    let app = api::app(state);
    fake.update("Aurora", |s| {
        s.restarts = 4;
        s.exits_by_reason.insert("memory_limit".into(), 2);
    });
    let a = get(&app, "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4"))
    );
    let text = a.text();
    assert_eq!(
        sample_value(&text, "worldpool_worker_up", &[("world", "São Paulo")]),
        Some(1.0)
    );
    assert_eq!(
        sample_value(
            &text,
            "worldpool_worker_restarts_total",
            &[("world", "Aurora")]
        ),
        Some(4.0)
    );
    assert_eq!(
        sample_value(
            &text,
            "worldpool_worker_exits_total",
            &[("world", "Aurora"), ("reason", "memory_limit")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample_value(&text, "worldpool_pool_restarts_total", &[]),
        Some(6.0)
    );
    assert!(sample_value(&text, "worldpool_worker_rss_bytes", &[("world", "Aurora")]).is_some());
    assert!(sample_value(&text, "worldpool_worker_pss_bytes", &[("world", "Aurora")]).is_some());
    assert!(sample_value(&text, "worldpool_pool_pss_bytes", &[]).is_some());
    assert!(
        sample_value(
            &text,
            "worldpool_worker_cpu_percent",
            &[("world", "Aurora")]
        )
        .is_some()
    );
    assert!(
        sample_value(
            &text,
            "worldpool_worker_last_success_timestamp_seconds",
            &[("world", "Aurora")]
        )
        .is_some()
    );

    // Run counters come from the workers' run_finished events.
    wait_for_async("the run counter to subscribe", DEADLINE, || async {
        (fake.subscribers() >= 1).then_some(())
    })
    .await;
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-29T09:23:00-03:00").expect("time");
    let finished = |rows| {
        WorkerEvent::RunFinished(RunFinished {
            world: "Zuna Nova".into(),
            rows,
            deltas: 5,
            update_time: t,
            rebased: false,
            unknown_guilds: Vec::new(),
        })
    };
    let failed = WorkerEvent::RunFailed(RunFailed {
        world: "Zuna Nova".into(),
        update_time: t,
        error: "HTTP 503".into(),
    });
    for event in [finished(120), finished(80), failed] {
        let pool::WorkerMessage::Event { kind, data } = event.to_message() else {
            panic!("an event message");
        };
        fake.emit(pool::PoolEvent::Custom {
            worker: "Zuna Nova".into(),
            kind,
            data,
        });
    }
    let text = wait_for_async("three runs counted", DEADLINE, || {
        let app = app.clone();
        async move {
            let text = get(&app, "/metrics").await.text();
            let ok = sample_value(
                &text,
                "worldpool_runs_total",
                &[("world", "Zuna Nova"), ("status", "ok")],
            );
            let failed = sample_value(
                &text,
                "worldpool_runs_total",
                &[("world", "Zuna Nova"), ("status", "failed")],
            );
            (ok == Some(2.0) && failed == Some(1.0)).then_some(text)
        }
    })
    .await;
    assert_eq!(
        sample_value(&text, "worldpool_rows_total", &[("world", "Zuna Nova")]),
        Some(200.0)
    );
    assert_eq!(
        sample_value(&text, "worldpool_deltas_total", &[("world", "Zuna Nova")]),
        Some(10.0)
    );
    assert_eq!(
        sample_value(&text, "worldpool_pool_rows_total", &[]),
        Some(200.0)
    );
    assert_eq!(
        sample_value(&text, "worldpool_pool_runs_total", &[("status", "ok")]),
        Some(2.0)
    );
}

#[tokio::test]
async fn healthz_and_readyz_report_fatal_workers() {
    let (fake, state) = fake_state(None);
    let app = api::app(state);
    let a = get(&app, "/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["status"], "healthy", "{v}");
    assert!(v.get("reason").is_none(), "{v}");
    assert_eq!(v["checks"]["workers_running"], 3, "{v}");
    assert_eq!(v["checks"]["store"], "not_configured", "{v}");
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["store"], "not_configured");

    fake.update("Zuna Nova", |s| {
        s.state = pool::StateName::Fatal;
        s.pid = None;
        s.fatal_reason = Some("11 restarts within 60s".into());
    });
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    let v = a.json();
    assert_eq!(v["error"], "not_ready");
    let reasons = v["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0]
            .as_str()
            .is_some_and(|r| r.contains("Zuna Nova") && r.contains("11 restarts")),
        "{v}"
    );
    // Health says degraded, naming the worker; still 200 (liveness).
    let a = get(&app, "/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Zuna Nova") && r.contains("11 restarts")),
        "{v}"
    );
    assert_eq!(v["checks"]["workers_fatal"], 1, "{v}");
    fake.update("Aurora", |s| {
        s.state = pool::StateName::Backoff;
        s.pid = None;
    });
    let v = get(&app, "/healthz").await.json();
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`Aurora` is backing off")),
        "{v}"
    );
    // No process left and failures: unhealthy, 503.
    fake.update("São Paulo", |s| {
        s.state = pool::StateName::Fatal;
        s.pid = None;
    });
    let a = get(&app, "/healthz").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["status"], "unhealthy");
}

#[tokio::test]
async fn memusage_adds_up_the_pool_and_reads_the_machine() {
    let (fake, state) = fake_state(None);
    let app = api::app(state);
    let v = get(&app, "/memusage").await.json();
    let p = &v["process"];
    // This test process is the "supervisor"; the fake's three workers have
    // 12 MiB RSS and 3 MiB PSS each.
    assert_eq!(p["processes"], 4, "{v}");
    let sup_rss = p["supervisor_rss_bytes"].as_u64().expect("supervisor rss");
    let sup_pss = p["supervisor_pss_bytes"].as_u64().expect("supervisor pss");
    assert!(sup_rss > 0 && sup_pss > 0 && sup_pss <= sup_rss, "{v}");
    assert_eq!(
        p["rss_bytes"].as_u64(),
        Some(sup_rss + 3 * 12 * 1024 * 1024)
    );
    assert_eq!(p["pss_bytes"].as_u64(), Some(sup_pss + 3 * 3 * 1024 * 1024));
    for k in ["rss_mb", "percent", "pss_mb", "pss_percent"] {
        assert!(p[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    let sys = &v["system"];
    let total = sys["total_bytes"].as_u64().expect("total");
    let available = sys["available_bytes"].as_u64().expect("available");
    assert!(total > available && available > 0, "{v}");
    assert_eq!(sys["used_bytes"].as_u64(), Some(total - available));
    for k in ["total_mb", "used_mb", "available_mb", "percent", "total_gb"] {
        assert!(sys[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    // A worker without a process is not counted.
    fake.update("Aurora", |s| {
        s.pid = None;
        s.state = pool::StateName::Stopped;
    });
    let v = get(&app, "/memusage").await.json();
    assert_eq!(v["process"]["processes"], 3, "{v}");
}

#[tokio::test]
async fn runs_and_deltas_validate_parameters_and_need_a_store() {
    let (_fake, state) = fake_state(None);
    let app = api::app(state);
    for uri in [
        "/api/runs",
        "/api/runs?world=Aurora&limit=10&before=99",
        "/api/deltas?world=S%C3%A3o+Paulo&guild=Red+Rose&limit=100000",
    ] {
        let a = get(&app, uri).await;
        assert_eq!(a.error(503), "no_store", "{uri}");
    }
    for (uri, param) in [
        ("/api/runs?limit=0", "limit"),
        ("/api/runs?limit=ten", "limit"),
        ("/api/runs?limit=-3", "limit"),
        ("/api/runs?before=abc", "before"),
        ("/api/runs?guild=x", "guild"),
        ("/api/runs?world=", "world"),
        ("/api/runs?world=a&world=b", "world"),
        ("/api/deltas?guild=", "guild"),
        ("/api/deltas?limit=1.5", "limit"),
        ("/api/deltas?before=0", "before"),
        ("/api/deltas?page=2", "page"),
        ("/api/events?wrld=Aurora", "wrld"),
    ] {
        let a = get(&app, uri).await;
        assert_eq!(a.error(400), "bad_parameter", "{uri}");
        assert!(
            a.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("`{param}`"))),
            "{uri}: {}",
            a.text()
        );
    }
}

#[tokio::test]
async fn openapi_describes_every_endpoint() {
    let (_fake, state) = fake_state(None);
    let app = api::app(state);
    let a = get(&app, "/api/openapi.json").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert!(v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")));
    let paths = v["paths"].as_object().expect("paths");
    // The router and the document are made from one list (api::routes):
    // every operation described is served, none answered by the router's
    // fallbacks (404 "no such endpoint", 405 "method not allowed").
    let mut operations = 0;
    for (path, item) in paths {
        let uri = path
            .replace("{world}", "Aurora")
            .replace("{name}", "Someone");
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let answer = app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.clone())
                        .uri(&uri)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            let status = answer.status();
            // Streams (events, console) never end: the status is enough.
            let fallback = match status {
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                        .await
                        .expect("body");
                    let text = String::from_utf8_lossy(&body).into_owned();
                    text.contains("no such endpoint") || text.contains("method not allowed on")
                }
                _ => false,
            };
            assert!(
                !fallback,
                "{method} {path} is described but not routed ({status})"
            );
            operations += 1;
        }
    }
    // 45 when this was written: a floor, so that an empty document fails.
    assert!(operations >= 45, "only {operations} operations described");
    let worker = &v["components"]["schemas"]["Worker"]["properties"];
    for f in WORKER_FIELDS {
        assert!(worker.get(f).is_some(), "schema lacks {f}");
    }
}

/// Runs openapi-spec-validator (scripts/test installs it when missing) on
/// `doc`: Ok when valid, the validator's output when not.
fn openapi_spec_validator(doc: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc).expect("write the document");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("python3 not runnable ({e}): scripts/test installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "openapi-spec-validator is not installed (scripts/test installs it): {text}"
    );
    if out.status.success() {
        Ok(())
    } else {
        // The validator quotes the whole document after the error.
        Err(text.chars().take(2000).collect())
    }
}

#[tokio::test]
async fn openapi_document_passes_openapi_spec_validator() {
    let (_fake, state) = fake_state(None);
    let a = get(&api::app(state), "/api/openapi.json").await;
    assert_eq!(a.status, StatusCode::OK);
    if let Err(e) = openapi_spec_validator(&a.body) {
        panic!("/api/openapi.json is not a valid OpenAPI document:\n{e}");
    }
    // The check is live: a document with a broken reference and a path
    // parameter that is not declared is refused.
    let mut broken = a.json();
    broken["paths"]["/api/workers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        serde_json::json!({"$ref": "#/components/schemas/NoSuchSchema"});
    broken["paths"]["/api/nowhere/{id}"] =
        serde_json::json!({"get": {"responses": {"200": {"description": "x"}}}});
    let broken = serde_json::to_vec(&broken).expect("serialize");
    assert!(
        openapi_spec_validator(&broken).is_err(),
        "the validator accepted a broken document"
    );
}

/// Read SSE events (name, JSON data) from a body stream until `pred`
/// matches one; returns every event seen.
async fn read_events<S, B, E>(
    stream: &mut S,
    buf: &mut String,
    mut pred: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)>
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    let mut seen = Vec::new();
    let result = tokio::time::timeout(DEADLINE, async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                let value: Value = serde_json::from_str(&data).expect("event data is JSON");
                let hit = pred(&name, &value);
                seen.push((name, value));
                if hit {
                    return true;
                }
            }
            match stream.next().await {
                Some(Ok(chunk)) => buf.push_str(&String::from_utf8_lossy(chunk.as_ref())),
                Some(Err(e)) => panic!("stream error: {e:?}"),
                None => return false,
            }
        }
    })
    .await;
    match result {
        Ok(true) => seen,
        Ok(false) => panic!("stream ended first; saw {seen:?}"),
        Err(_) => panic!("no matching event within {DEADLINE:?}; saw {seen:?}"),
    }
}

#[tokio::test]
async fn events_stream_delivers_filters_and_drops_laggards() {
    let (fake, state) = fake_state(Some(TOKEN));
    let app = api::app(state.clone());

    let response = app
        .clone()
        .oneshot(
            Request::get("/api/events")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let mut all = response.into_body().into_data_stream();
    let filtered = app
        .clone()
        .oneshot(
            Request::get("/api/events?world=Zuna%20Nova")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    let mut zuna = filtered.into_body().into_data_stream();

    // Real events, produced by control verbs.
    let a = call(
        &app,
        Method::POST,
        "/api/workers/Aurora/restart",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let a = call(
        &app,
        Method::POST,
        "/api/workers/Zuna%20Nova/stop",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let mut buf = String::new();
    let seen = read_events(&mut all, &mut buf, |name, v| {
        name == "stopped" && v["worker"] == "Zuna Nova"
    })
    .await;
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["exited", "started", "exited", "stopped"],
        "{seen:?}"
    );
    assert_eq!(seen[0].1["worker"], "Aurora");
    assert_eq!(seen[0].1["exit"]["reason"], "stopped");
    assert_eq!(seen[1].1["event"], "started");

    let mut zbuf = String::new();
    let seen = read_events(&mut zuna, &mut zbuf, |name, _| name == "stopped").await;
    assert!(
        seen.iter().all(|(_, v)| v["worker"] == "Zuna Nova"),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2);

    // Worker events pass through under their own kind.
    fake.emit(pool::PoolEvent::Custom {
        worker: "Aurora".into(),
        kind: "run_finished".into(),
        data: serde_json::json!({"world": "Aurora", "rows": 3, "deltas": 1}),
    });
    let seen = read_events(&mut all, &mut buf, |name, _| name == "run_finished").await;
    assert_eq!(
        seen.last().map(|(_, v)| v["data"]["rows"].clone()),
        Some(3.into())
    );

    // A consumer that does not read falls behind and is dropped, while the
    // producer never waits.
    let start = std::time::Instant::now();
    for i in 0..3_000u32 {
        fake.emit(pool::PoolEvent::Phase {
            worker: "Aurora".into(),
            phase: format!("p{i}"),
        });
    }
    assert!(start.elapsed() < Duration::from_secs(2), "emitting blocked");
    let seen = read_events(&mut all, &mut buf, |name, _| name == "lagged").await;
    assert!(
        seen.last()
            .is_some_and(|(_, v)| v["missed"].as_u64() > Some(0))
    );
    let end = tokio::time::timeout(DEADLINE, all.next()).await;
    assert!(matches!(end, Ok(None)), "the lagging stream must end");

    // Shutdown ends the remaining streams.
    state.shutdown_token().cancel();
    let end = tokio::time::timeout(DEADLINE, async {
        while let Some(chunk) = zuna.next().await {
            chunk.expect("chunk");
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end on shutdown");

    let a = get(&app, "/api/events?world=Ghost").await;
    assert_eq!(a.error(404), "unknown_worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_port_zero_streams_events_and_shuts_down_with_open_streams() {
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let state = ApiState::new(fake.clone(), None, None);
    let shutdown = CancellationToken::new();
    let (addr, task) = api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        state,
        shutdown.clone(),
    )
    .await
    .expect("serves");
    assert_ne!(addr.port(), 0);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let workers: Value = client
        .get(format!("{base}/api/workers"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(workers.as_array().map(Vec::len), Some(3));

    let response = client
        .get(format!("{base}/api/events"))
        .send()
        .await
        .expect("SSE GET");
    assert_eq!(response.status(), 200);
    // The handler subscribed before answering: counter task + this stream.
    assert!(fake.subscribers() >= 2);
    let mut stream = Box::pin(futures_util::stream::unfold(response, |mut r| async move {
        match r.chunk().await {
            Ok(Some(c)) => Some((Ok::<_, reqwest::Error>(c), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    }));
    fake.emit(pool::PoolEvent::Exited {
        worker: "São Paulo".into(),
        pid: Some(10_001),
        exit: pool::ExitRecord {
            code: None,
            signal: Some(9),
            reason: pool::ExitReason::Crashed,
            at: chrono::Utc::now(),
            uptime_s: 12.0,
            error: None,
        },
    });
    let mut buf = String::new();
    let seen = read_events(&mut stream, &mut buf, |name, _| name == "exited").await;
    let exit = &seen.last().expect("an event").1;
    assert_eq!(exit["worker"], "São Paulo");
    assert_eq!(exit["exit"]["reason"], "crashed");
    assert_eq!(exit["exit"]["signal"], 9);

    // Graceful shutdown completes although the SSE client is still connected.
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("server stopped in time")
        .expect("server task");
    let rest =
        tokio::time::timeout(DEADLINE, async { while stream.next().await.is_some() {} }).await;
    assert!(rest.is_ok(), "client stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_dedicated_runs_on_its_own_threads_and_stops() {
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let shutdown = CancellationToken::new();
    let (addr, task) = api::serve_dedicated(
        "127.0.0.1:0".parse().expect("addr"),
        ApiState::new(fake.clone(), None, None),
        shutdown.clone(),
        api::DedicatedOptions::default(),
    )
    .await
    .expect("serves");
    let v: Value = reqwest::get(format!("http://{addr}/api/workers"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect();
    assert!(
        threads.iter().any(|t| t.starts_with("worldpool-api")),
        "{threads:?}"
    );
    // An open event stream does not keep it from stopping.
    let sse = reqwest::get(format!("http://{addr}/api/events"))
        .await
        .expect("SSE");
    assert_eq!(sse.status(), 200);
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("stopped in time")
        .expect("task");
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err()
    );
    drop(sse);

    let err = api::serve_dedicated(
        "0.0.0.0:0".parse().expect("addr"),
        ApiState::new(fake, None, None),
        CancellationToken::new(),
        api::DedicatedOptions::default(),
    )
    .await
    .expect_err("non-loopback without token");
    assert!(format!("{err:#}").contains("WORLDPOOL_API_TOKEN"));
}

#[tokio::test]
async fn serve_refuses_non_loopback_without_token() {
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let state = ApiState::new(fake, None, None);
    let err = api::serve(
        "0.0.0.0:0".parse().expect("addr"),
        state,
        CancellationToken::new(),
    )
    .await
    .expect_err("must refuse");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("WORLDPOOL_API_TOKEN") && msg.contains("0.0.0.0"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_command_prints_a_table_and_explains_unreachable_api() {
    let fake = Arc::new(FakeControl::new(&WORLDS));
    fake.update("Zuna Nova", |s| {
        s.pid = None;
        s.state = pool::StateName::Fatal;
    });
    let state = ApiState::new(fake, None, None);
    let shutdown = CancellationToken::new();
    let (addr, task) = api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        state,
        shutdown.clone(),
    )
    .await
    .expect("serves");
    let out = output(command(["status", "--api", &format!("http://{addr}")])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for needle in [
        "world",
        "pid",
        "state",
        "phase",
        "restarts",
        "uptime",
        "cpu",
        "rss",
        "pss",
        "requests",
        "last success",
    ] {
        assert!(
            stdout.lines().nth(1).is_some_and(|l| l.contains(needle)),
            "{needle}\n{stdout}"
        );
    }
    for w in WORLDS {
        assert!(stdout.contains(w), "{w} missing:\n{stdout}");
    }
    assert!(
        stdout.contains("fatal") && stdout.contains("12.0 MiB"),
        "{stdout}"
    );
    shutdown.cancel();
    task.await.expect("server task");

    // Nothing listens there any more.
    let out = output(command(["status", "--api", &format!("http://{addr}")])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the worldpool API"),
        "{stderr}"
    );
}

/// Runs and deltas from a real (empty) SQLite store, and readiness with it.
#[tokio::test]
async fn runs_and_deltas_from_a_real_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = worldpool::store::Store::open(&url, 2)
        .await
        .expect("sqlite store opens");
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let app = api::app(ApiState::new(fake, Some(store), None));
    for uri in [
        "/api/runs?world=Aurora&limit=5",
        "/api/deltas?world=Aurora&guild=Red%20Rose&limit=5",
        "/api/runs?before=10",
    ] {
        let a = get(&app, uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.text());
        let v = a.json();
        assert_eq!(v["items"], serde_json::json!([]), "{uri}");
        assert_eq!(v["next_before"], Value::Null);
    }
    let a = get(&app, "/readyz").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["store"], "ok");
}

/// Against a real pool of `worldpool worker --test-mode idle` processes:
/// kill -9, restart visible in the API and in the event stream, control
/// with and without a token, metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_with_a_real_pool() {
    use pool::{Pool, PoolOptions, WorkerSpec};

    let names = ["Alpha", "Béta Ñu"];
    let specs: Vec<WorkerSpec> = names
        .iter()
        .map(|n| {
            let mut spec = WorkerSpec::new(*n, crate::helper::test_worker());
            spec.args = ["worker", "--test-mode", "idle", "--world", n]
                .map(String::from)
                .to_vec();
            spec.env = vec![("WORLDPOOL_TEST_SECRET".into(), "hunter2-secret".into())];
            spec.stop_grace = Duration::from_secs(3);
            spec
        })
        .collect();
    let pool = Pool::start(specs, PoolOptions::default()).expect("pool starts");
    let handle = pool.handle();
    let state = ApiState::new(Arc::new(handle.clone()), None, Some(TOKEN.into()));
    let shutdown = CancellationToken::new();
    let (addr, task) = api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        state,
        shutdown.clone(),
    )
    .await
    .expect("serves");
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let fetch = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let r = client.get(&url).send().await.expect("GET");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("JSON");
            (status, v)
        }
    };
    let alpha = "/api/workers/Alpha".to_string();
    let beta = "/api/workers/B%C3%A9ta%20%C3%91u".to_string();

    let first = wait_for_async("both workers running", DEADLINE, || async move {
        let (_, v) = fetch("/api/workers".into()).await;
        let list = v.as_array()?.clone();
        (list.len() == 2
            && list
                .iter()
                .all(|w| w["state"] == "running" && w["pid"].is_u64()))
        .then_some(list)
    })
    .await;
    assert_eq!(first[1]["world"], "Béta Ñu");
    let raw = client
        .get(format!("{base}/api/workers"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(
        !raw.contains("hunter2") && !raw.contains("WORLDPOOL_TEST_SECRET"),
        "env leaked"
    );

    let (status, w) = fetch(alpha.clone()).await;
    assert_eq!(status, 200);
    let old_pid = w["pid"].as_u64().expect("pid") as u32;
    let old_restarts = w["restarts"].as_u64().expect("restarts");

    // Subscribe before the kill.
    let response = client
        .get(format!("{base}/api/events?world=Alpha"))
        .send()
        .await
        .expect("SSE");
    assert_eq!(response.status(), 200);
    let mut events = Box::pin(futures_util::stream::unfold(response, |mut r| async move {
        match r.chunk().await {
            Ok(Some(c)) => Some((Ok::<_, reqwest::Error>(c), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    }));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");

    let w = wait_for_async("Alpha restarted with a new pid", DEADLINE, || {
        let alpha = alpha.clone();
        async move {
            let (_, w) = fetch(alpha).await;
            let pid = w["pid"].as_u64()? as u32;
            (pid != old_pid && w["state"] == "running").then_some(w)
        }
    })
    .await;
    assert_eq!(w["restarts"].as_u64(), Some(old_restarts + 1), "{w}");
    assert_eq!(w["last_exit"]["reason"], "crashed", "{w}");
    assert_eq!(w["last_exit"]["signal"], 9, "{w}");
    assert!(pid_alive(w["pid"].as_u64().expect("pid") as u32));

    let mut buf = String::new();
    let seen = read_events(&mut events, &mut buf, |name, v| {
        name == "exited" && v["pid"].as_u64() == Some(u64::from(old_pid))
    })
    .await;
    let exited = &seen.last().expect("event").1;
    assert_eq!(exited["worker"], "Alpha");
    assert_eq!(exited["exit"]["reason"], "crashed");
    assert!(seen.iter().all(|(_, v)| v["worker"] == "Alpha"), "{seen:?}");

    // Control: no token → 401; token → restart / stop / start.
    let post = |path: String, token: Option<&'static str>| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut req = client.post(&url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.expect("POST");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("JSON");
            (status, v)
        }
    };
    let (status, v) = post(format!("{beta}/restart"), None).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("unauthorized")));
    let (status, v) = post(format!("{beta}/stop"), Some("wrong")).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("unauthorized")));

    let (_, b) = fetch(beta.clone()).await;
    let beta_pid = b["pid"].as_u64().expect("pid") as u32;
    let (status, v) = post(format!("{beta}/restart"), Some(TOKEN)).await;
    assert_eq!(status, 202, "{v}");
    assert!(
        matches!(v["state"].as_str(), Some("running" | "starting")),
        "{v}"
    );
    let b = wait_for_async("Béta restarted", DEADLINE, || {
        let beta = beta.clone();
        async move {
            let (_, b) = fetch(beta).await;
            (b["pid"].as_u64().is_some_and(|p| p as u32 != beta_pid) && b["state"] == "running")
                .then_some(b)
        }
    })
    .await;
    assert!(!pid_alive(beta_pid), "old process gone");
    let beta_pid = b["pid"].as_u64().expect("pid") as u32;

    let (status, v) = post(format!("{beta}/stop"), Some(TOKEN)).await;
    assert_eq!((status, v["state"].as_str()), (202, Some("stopped")), "{v}");
    let (_, b) = fetch(beta.clone()).await;
    assert_eq!(
        (b["state"].as_str(), b["pid"].as_u64()),
        (Some("stopped"), None),
        "{b}"
    );
    assert!(!pid_alive(beta_pid));

    let (status, v) = post(format!("{beta}/start"), Some(TOKEN)).await;
    assert_eq!(status, 202, "{v}");
    wait_for_async("Béta running again", DEADLINE, || {
        let beta = beta.clone();
        async move {
            let (_, b) = fetch(beta).await;
            let pid = b["pid"].as_u64()? as u32;
            (b["state"] == "running" && pid_alive(pid)).then_some(())
        }
    })
    .await;

    let (status, v) = post("/api/workers/Nobody/restart".into(), Some(TOKEN)).await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_worker")));
    let (status, v) = fetch("/api/workers/Nobody".into()).await;
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_worker")));

    // Control over the same pool without a configured token → 403.
    let no_token = api::app(ApiState::new(Arc::new(handle.clone()), None, None));
    let a = call(
        &no_token,
        Method::POST,
        "/api/workers/Alpha/restart",
        Some(TOKEN),
    )
    .await;
    assert_eq!(a.error(403), "control_disabled");

    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample_value(
            &text,
            "worldpool_worker_exits_total",
            &[("world", "Alpha"), ("reason", "crashed")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample_value(
            &text,
            "worldpool_worker_restarts_total",
            &[("world", "Alpha")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert_eq!(
        sample_value(&text, "worldpool_workers", &[("state", "running")]),
        Some(2.0)
    );

    let (status, v) = fetch("/api/scraper-status".into()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["running"].as_bool(), v["process_alive"].as_bool()),
        (Some(true), Some(true))
    );

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("API stopped with an SSE client connected")
        .expect("server task");
    let pids: Vec<u32> = handle.workers().iter().filter_map(|w| w.pid).collect();
    tokio::time::timeout(Duration::from_secs(20), pool.shutdown())
        .await
        .expect("pool shut down");
    for pid in pids {
        assert!(!pid_alive(pid), "worker {pid} survived shutdown");
    }
}

/// The store goes away under a running API: /readyz and the store-backed
/// endpoints answer 503 with the error shape (nothing internal), and
/// recover once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_unreachable_is_503_and_recovers() {
    let cluster = tokio::task::spawn_blocking(crate::helper::pg::PgCluster::start)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("PostgreSQL is needed for this test: {e}"));
    let store = worldpool::store::Store::open(&cluster.url(), 1)
        .await
        .expect("postgres store opens");
    let fake = Arc::new(FakeControl::new(&WORLDS));
    let app = api::app(ApiState::new(fake, Some(store), None));
    assert_eq!(get(&app, "/readyz").await.status, StatusCode::OK);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_server();
        cluster
    })
    .await
    .expect("join");
    for uri in ["/readyz", "/api/runs", "/api/deltas?world=Aurora"] {
        let a = get(&app, uri).await;
        assert_eq!(
            a.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {}",
            a.text()
        );
        let v = a.json();
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{uri}: {v}"
        );
        let text = a.text();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("postgres://"),
            "{uri} leaks: {text}"
        );
    }

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_server().expect("restart PostgreSQL");
        cluster
    })
    .await
    .expect("join");
    wait_for_async(
        "the API sees the store again",
        Duration::from_secs(30),
        || {
            let app = app.clone();
            async move { (get(&app, "/api/runs").await.status == StatusCode::OK).then_some(()) }
        },
    )
    .await;
    assert_eq!(get(&app, "/readyz").await.status, StatusCode::OK);
    drop(cluster);
}

#[tokio::test]
async fn a_node_not_in_a_cluster_says_so_on_api_cluster() {
    let (_fake, state) = fake_state(None);
    let app = api::app(state);
    let a = get(&app, "/api/cluster").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["state"], "off", "{v}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["leases"].as_array().map(Vec::len), Some(0), "{v}");
}
