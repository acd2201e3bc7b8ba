//! `GET /api/player-details/{name}[?world=W]`: the player page's tables,
//! read live from the site, in the replaced system's shape `{success, name,
//! response_status, tables: [{columns, data}]}`.
//!
//! The supervisor has no HTML parser, so the page is read by a worker: the
//! API sends it [`SupervisorMessage::PlayerDetails`] with a request id, the
//! worker fetches the page through its site client (a grant of the pool's
//! budget like any other request), reads every table, records the day's
//! numbers when the player is watched in that world, and answers with a
//! `player_details` event carrying the id, which the API awaits with a
//! deadline ([`CompatSettings::player_details_timeout`]).
//!
//! The world is the `world` parameter, else the world where the player is
//! watched (config, then store) or a maker, else where the store has its
//! experience;
//! the worker is that world's (or the single-mode worker), else any running
//! world worker (every worker reads the whole config). Answers the site
//! gave (the tables, an unknown player) are kept [`CACHE_TTL`] per name
//! (ignoring case) and `world` parameter, at most [`CACHE_MAX`] of them and
//! [`CACHE_MAX_BYTES`], so repeated clicks do not fetch again; requests
//! asking the same at once share one read. Every failure keeps the old shape with `success: false`, plus the
//! API's `{error, message, status}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use pool::{PoolEvent, StateName};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::CompatSettings;
use super::vip::WorldQuery;
use crate::api::query::Lenient;
use crate::api::{ApiError, ApiState, ControlError};
use crate::protocol::{
    PlayerDetailsOutcome, PlayerDetailsRead, PlayerTable, SupervisorMessage, WorkerEvent,
};
use crate::site::{check_player_name, player_key};
use crate::store::VipReadOutcome;

/// How long an answer of the site is reused for the same name and world.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most answers kept.
pub const CACHE_MAX: usize = 256;
/// Most bytes of answers kept (a worker's answer is at most 60 KiB).
pub const CACHE_MAX_BYTES: usize = 1024 * 1024;

/// Request ids, unique within the supervisor.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A cached answer's key: the player key and the `world` asked for.
type Key = (String, Option<String>);

/// An answer on its way, awaited by every request asking the same.
type Pending = Shared<BoxFuture<'static, (StatusCode, Bytes)>>;

/// The answers of the site, per [`Key`]: when, the status and the body as
/// sent; and the reads in progress, so that requests asking the same at
/// once share one read.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<Key, (Instant, StatusCode, Bytes)>>,
    pending: Mutex<HashMap<Key, Pending>>,
}

impl Cache {
    fn get(&self, key: &Key) -> Option<(StatusCode, Bytes)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, status, body)| (*status, body.clone()))
    }

    fn put(&self, key: Key, status: StatusCode, body: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (at, _, _)| at.elapsed() < CACHE_TTL);
        entries.remove(&key);
        let mut bytes: usize = entries.values().map(|(_, _, b)| b.len()).sum();
        while !entries.is_empty()
            && (entries.len() >= CACHE_MAX || bytes + body.len() > CACHE_MAX_BYTES)
        {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _, _))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, _, b)) = entries.remove(&oldest) {
                bytes -= b.len();
            }
        }
        entries.insert(key, (Instant::now(), status, body));
    }
}

/// The answer, in the replaced system's shape; a failure adds the API's
/// `{error, message, status}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PlayerDetails)]
struct Answer<'a> {
    success: bool,
    name: &'a str,
    /// The world the page was read for (none: not known).
    #[schema(required = true)]
    world: Option<&'a str>,
    /// The site's HTTP status (none: the site was not reached).
    #[schema(required = true)]
    response_status: Option<u16>,
    tables: &'a [PlayerTable],
    /// Oldest rows left out to fit 60 KiB (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_rows: Option<u64>,
    /// A watched player's read recorded: `outcome` is baseline, rebased,
    /// unchanged, delta or already_stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    recorded: Option<&'a VipReadOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

/// Why there are no tables.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    response_status: Option<u16>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            response_status: None,
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::new(e.status(), e.code(), e.message())
    }
}

fn respond(status: StatusCode, answer: &Answer<'_>) -> (StatusCode, Bytes) {
    match serde_json::to_vec(answer) {
        Ok(body) => (status, Bytes::from(body)),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a player-details answer");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(b"{\"success\":false,\"tables\":[],\"error\":\"internal\",\"message\":\"internal error\",\"status\":500}"),
            )
        }
    }
}

fn failed(name: &str, world: Option<&str>, f: &Failure) -> (StatusCode, Bytes) {
    respond(
        f.status,
        &Answer {
            success: false,
            name,
            world,
            response_status: f.response_status,
            tables: &[],
            truncated_rows: None,
            recorded: None,
            error: Some(f.code),
            message: Some(f.message.clone()),
            status: Some(f.status.as_u16()),
        },
    )
}

fn into_response((status, body): (StatusCode, Bytes)) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The player page's tables, read live from the site by a worker (a grant
/// of the pool's budget), kept 60 s; a watched player's numbers are
/// recorded. Every answer has `success`; a failure adds `error`, `message`
/// and `status`.
#[utoipa::path(get, path = "/api/player-details/{name}", operation_id = "playerDetails", tag = "compatibility",
    params(super::NamePath, WorldQuery),
    responses(
        (status = 200, description = "The tables.", body = Answer),
        (status = 400, description = "A bad name (`bad_parameter`).", body = Answer),
        (status = 404, description = "The site does not know the player (`unknown_player`), or no such world (`unknown_world`).", body = Answer),
        (status = 502, description = "The site failed after the client's retries (`site_error`; `response_status` is its status).", body = Answer),
        (status = 503, description = "No world worker is running (`no_worker`).", body = Answer),
        (status = 504, description = "No worker answered in time (`worker_timeout`).", body = Answer),
    ))]
pub(super) async fn player_details(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    Lenient(p): Lenient<WorldQuery>,
) -> Response {
    let raw = match path {
        Ok(Path(name)) => name,
        Err(e) => {
            let f = ApiError::bad_param(
                "name",
                format!("not a valid URL-encoded UTF-8 name ({})", e.body_text()),
            );
            return into_response(failed("", None, &f.into()));
        }
    };
    let name = match check_player_name(&raw) {
        Ok(n) => n,
        Err(why) => {
            let f = ApiError::bad_param("name", format!("the player name {why}"));
            return into_response(failed(raw.trim(), None, &f.into()));
        }
    };
    let compat = state.compat();
    let asked = match p.world.as_deref() {
        Some(w) => match configured_world(&compat, w) {
            Some(w) => Some(w),
            None => {
                let f = Failure::new(
                    StatusCode::NOT_FOUND,
                    "unknown_world",
                    format!(
                        "no world `{}` is configured (worlds: {})",
                        w.trim(),
                        world_names(&compat)
                    ),
                );
                return into_response(failed(&name, None, &f));
            }
        },
        None => None,
    };
    // Keyed by what was asked: a hit needs no store query.
    let key = (player_key(&name), asked.clone());
    if let Some(hit) = state.player_details.get(&key) {
        return into_response(hit);
    }
    let pending = {
        let mut pending = state
            .player_details
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match pending.get(&key) {
            Some(p) => p.clone(),
            None => {
                // A task of its own: a client that hangs up neither cancels
                // the read nor leaves the others waiting for nothing.
                let task = tokio::spawn(fetch(state.clone(), compat, name, asked, key.clone()));
                let p: Pending = async move {
                    task.await.unwrap_or_else(|e| {
                        let f: Failure = ApiError::internal("player details task", &e).into();
                        failed("", None, &f)
                    })
                }
                .boxed()
                .shared();
                pending.insert(key, p.clone());
                p
            }
        }
    };
    into_response(pending.await)
}

/// Find the world, read the page, keep the answer; then let the next
/// request read it again.
async fn fetch(
    state: ApiState,
    compat: Arc<CompatSettings>,
    name: String,
    asked: Option<String>,
    key: Key,
) -> (StatusCode, Bytes) {
    let world = match asked {
        Some(w) => Some(w),
        None => world_of_player(&state, &compat, &name).await,
    };
    let (status, body) = match read(&state, &compat, &name, world.as_deref()).await {
        Ok(read) => answer(&name, world.as_deref(), read),
        Err(f) => failed(&name, world.as_deref(), &f),
    };
    // What the site said is kept; a worker or site that failed is asked
    // again next time. Kept before the read stops being pending, so no
    // request in between reads the page again.
    if status == StatusCode::OK || status == StatusCode::NOT_FOUND {
        state.player_details.put(key.clone(), status, body.clone());
    }
    state
        .player_details
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    (status, body)
}

/// The answer of a worker's read.
fn answer(name: &str, world: Option<&str>, read: PlayerDetailsRead) -> (StatusCode, Bytes) {
    match read.outcome {
        PlayerDetailsOutcome::Read {
            tables,
            truncated_rows,
            recorded,
        } => respond(
            StatusCode::OK,
            &Answer {
                success: true,
                name,
                world,
                response_status: Some(200),
                tables: &tables,
                truncated_rows: (truncated_rows > 0).then_some(truncated_rows),
                recorded: recorded.as_ref(),
                error: None,
                message: None,
                status: None,
            },
        ),
        PlayerDetailsOutcome::Unknown { response_status } => {
            let mut f = Failure::new(
                StatusCode::NOT_FOUND,
                "unknown_player",
                format!(
                    "the site does not know the player `{name}` (its page has no experience or online table)"
                ),
            );
            f.response_status = Some(response_status);
            failed(name, world, &f)
        }
        PlayerDetailsOutcome::Failed {
            response_status,
            error,
        } => {
            let mut f = Failure::new(
                StatusCode::BAD_GATEWAY,
                "site_error",
                format!("the site could not serve the player's page: {error}"),
            );
            f.response_status = response_status;
            failed(name, world, &f)
        }
    }
}

/// The world as the config spells it (compared ignoring case); any name
/// when the API knows no config.
fn configured_world(compat: &CompatSettings, world: &str) -> Option<String> {
    let world = world.trim();
    if compat.worlds.is_empty() {
        return Some(world.to_string());
    }
    compat
        .worlds
        .iter()
        .find(|w| w.world.to_lowercase() == world.to_lowercase())
        .map(|w| w.world.clone())
}

fn world_names(compat: &CompatSettings) -> String {
    compat
        .worlds
        .iter()
        .map(|w| w.world.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the player is watched (config, then store) or a maker, else where
/// the store has its experience; `None` when nobody knows (a store that does not
/// answer is skipped: the page does not need it).
async fn world_of_player(state: &ApiState, compat: &CompatSettings, name: &str) -> Option<String> {
    let key = player_key(name);
    if let Some((world, _)) = compat
        .watch
        .iter()
        .find(|(_, names)| names.iter().any(|n| player_key(n) == key))
    {
        return Some(world.clone());
    }
    let store = state.store()?;
    match super::query("watched players", store.watched(None)).await {
        Ok(watched) => {
            if let Some(w) = watched.into_iter().find(|w| player_key(&w.name) == key) {
                return Some(w.world);
            }
        }
        Err(e) => tracing::debug!(error = ?e, "player details: watched players not read"),
    }
    match super::query("makers", store.makers(None)).await {
        Ok(makers) => {
            if let Some(m) = makers.into_iter().find(|m| player_key(&m.name) == key) {
                return Some(m.world);
            }
        }
        Err(e) => tracing::debug!(error = ?e, "player details: makers not read"),
    }
    match super::query("player's world", store.players_named(&[name.to_string()])).await {
        Ok(rows) => rows.into_iter().next().map(|p| p.world),
        Err(_) => None,
    }
}

/// The worker to ask: the world's (or the single-mode one) when running,
/// else any running world worker.
fn pick_worker(
    state: &ApiState,
    compat: &CompatSettings,
    world: Option<&str>,
) -> Result<String, Failure> {
    let control = state.control();
    let running = |name: &str| {
        control
            .worker(name)
            .is_some_and(|w| w.state == StateName::Running && w.pid.is_some())
    };
    let mut candidates: Vec<String> = Vec::new();
    if let Some(single) = &compat.single_worker {
        candidates.push(single.clone());
    }
    if let Some(w) = world {
        candidates.push(w.to_string());
    }
    if compat.worlds.is_empty() {
        candidates.extend(
            control
                .workers()
                .into_iter()
                .map(|w| w.name)
                .filter(|n| n != crate::topology::WATCHER_NAME),
        );
    } else {
        candidates.extend(compat.worlds.iter().map(|w| w.world.clone()));
    }
    candidates.into_iter().find(|n| running(n)).ok_or_else(|| {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_worker",
            "no worker is running to read the player's page: start one (POST /api/workers/{world}/start)",
        )
    })
}

/// Ask a worker to read the page and wait for its answer.
async fn read(
    state: &ApiState,
    compat: &CompatSettings,
    name: &str,
    world: Option<&str>,
) -> Result<PlayerDetailsRead, Failure> {
    let worker = pick_worker(state, compat, world)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let control = state.control();
    // Subscribe first: the answer cannot arrive before we listen.
    let mut events = control.subscribe();
    let message = SupervisorMessage::PlayerDetails {
        id,
        name: name.to_string(),
        world: world.map(str::to_string),
    };
    control.send(&worker, &message).map_err(|e| match e {
        ControlError::Unsupported(what) => Failure::new(StatusCode::NOT_IMPLEMENTED, "not_supported", what),
        ControlError::ShuttingDown => ApiError::ShuttingDown.into(),
        other => {
            tracing::warn!(%worker, error = %other, "player details: the request did not reach the worker");
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_worker",
                format!("the request could not be sent to worker `{worker}`; try again"),
            )
        }
    })?;
    let deadline = compat.player_details_timeout;
    let wait = async {
        loop {
            match events.recv().await {
                Ok(PoolEvent::Custom { kind, data, .. })
                    if kind == "player_details"
                        && data.get("id").and_then(serde_json::Value::as_u64) == Some(id) =>
                {
                    return match WorkerEvent::parse(&kind, &data) {
                        Some(WorkerEvent::PlayerDetails(read)) => Ok(read),
                        _ => Err(ApiError::internal(
                            "player details",
                            &"a worker's answer does not parse",
                        )
                        .into()),
                    };
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "player details: events missed while waiting");
                }
                Err(RecvError::Closed) => return Err(ApiError::ShuttingDown.into()),
            }
        }
    };
    match tokio::time::timeout(deadline, wait).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            StatusCode::GATEWAY_TIMEOUT,
            "worker_timeout",
            format!(
                "worker `{worker}` did not answer within {} s (the site slow, or the pool's request budget saturated); try again",
                deadline.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(b: &Bytes) -> serde_json::Value {
        serde_json::from_slice(b).expect("json")
    }

    #[test]
    fn answers_keep_the_old_shape() {
        let read = |outcome| PlayerDetailsRead {
            id: 1,
            name: "Zé".into(),
            world: Some("Aurera".into()),
            outcome,
        };
        let (status, b) = answer(
            "Zé",
            Some("Aurera"),
            read(PlayerDetailsOutcome::Read {
                tables: vec![PlayerTable {
                    columns: vec!["Date".into(), "Online time".into()],
                    data: vec![vec!["29/11/2026".into(), "50m".into()]],
                }],
                truncated_rows: 0,
                recorded: Some(VipReadOutcome::Baseline),
            }),
        );
        let v = body(&b);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["success"], true);
        assert_eq!(v["name"], "Zé");
        assert_eq!(v["response_status"], 200);
        assert_eq!(v["tables"][0]["columns"][1], "Online time");
        assert_eq!(v["tables"][0]["data"][0][1], "50m");
        assert_eq!(v["recorded"]["outcome"], "baseline");
        assert!(
            v.get("error").is_none() && v.get("truncated_rows").is_none(),
            "{v}"
        );

        let table = [
            (
                PlayerDetailsOutcome::Unknown {
                    response_status: 200,
                },
                404,
                "unknown_player",
                Some(200),
            ),
            (
                PlayerDetailsOutcome::Failed {
                    response_status: Some(503),
                    error: "GET http://site/player?name=Z%C3%A9: HTTP 503".into(),
                },
                502,
                "site_error",
                Some(503),
            ),
            (
                PlayerDetailsOutcome::Failed {
                    response_status: None,
                    error: "GET http://site/player: connection refused".into(),
                },
                502,
                "site_error",
                None,
            ),
        ];
        for (outcome, want_status, code, site) in table {
            let (status, b) = answer("Zé", None, read(outcome));
            let v = body(&b);
            assert_eq!(status.as_u16(), want_status, "{v}");
            assert_eq!(v["success"], false, "{v}");
            assert_eq!(v["tables"], serde_json::json!([]), "{v}");
            assert_eq!(v["error"], code, "{v}");
            assert_eq!(v["status"], want_status, "{v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
            let site: Option<u16> = site;
            assert_eq!(v["response_status"].as_u64(), site.map(u64::from), "{v}");
        }
    }

    #[test]
    fn the_cache_expires_nothing_early_and_stays_bounded() {
        let cache = Cache::default();
        let key = |i: usize| (format!("p{i}"), Some("Aurera".to_string()));
        cache.put(key(0), StatusCode::OK, Bytes::from_static(b"{}"));
        assert_eq!(
            cache.get(&key(0)),
            Some((StatusCode::OK, Bytes::from_static(b"{}")))
        );
        assert_eq!(cache.get(&("p0".into(), None)), None, "per world");
        for i in 1..CACHE_MAX + 10 {
            cache.put(key(i), StatusCode::NOT_FOUND, Bytes::new());
        }
        let n = cache.entries.lock().expect("lock").len();
        assert_eq!(n, CACHE_MAX);
        assert_eq!(cache.get(&key(0)), None, "the oldest went first");
        assert!(cache.get(&key(CACHE_MAX + 9)).is_some());
        // Bounded in bytes too: big answers push the oldest out.
        let big = Bytes::from(vec![b' '; 60 * 1024]);
        for i in 0..40 {
            cache.put(key(1000 + i), StatusCode::OK, big.clone());
        }
        let entries = cache.entries.lock().expect("lock");
        let bytes: usize = entries.values().map(|(_, _, b)| b.len()).sum();
        assert!(bytes <= CACHE_MAX_BYTES, "{bytes}");
        assert!(entries.contains_key(&key(1039)), "the newest stays");
    }
}
