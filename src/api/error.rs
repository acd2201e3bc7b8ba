//! The one error shape of the API: `{"error": code, "message": text,
//! "status": http status}` (the replaced system's shape, on every path).
//! Clients get a sanitized message; causes go to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error the API answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No worker with this name (404).
    UnknownWorker(String),
    /// No such route (404).
    NoRoute,
    /// The route exists but not for this method (405).
    MethodNotAllowed,
    /// A bad query or path parameter (400), naming the parameter.
    BadParam {
        /// The parameter name.
        param: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// Control requested, no token is configured, and the API is not known
    /// to listen on loopback only (403).
    ControlDisabled,
    /// Control without a token from a page of another origin (403): a
    /// site on the internet must not drive a pool on this machine.
    ForeignOrigin(String),
    /// Missing or wrong bearer token (401).
    Unauthorized,
    /// `/api/runs` or `/api/deltas` without a configured store (503).
    NoStore,
    /// The store did not answer (503); the cause was logged.
    StoreUnreachable,
    /// The pool is shutting down (503).
    ShuttingDown,
    /// Something failed inside; the cause was logged (500).
    Internal,
    /// A request body that cannot be read (400), saying what is expected.
    BadBody(String),
    /// Nothing to answer yet (404), saying what is missing.
    NotFound(String),
    /// The operation is refused here for good (405), saying where it went.
    Moved(String),
    /// The request conflicts with what is going on (409), saying what.
    Conflict(String),
    /// The pool cannot do this yet (501), saying what is missing.
    NotSupported(String),
    /// A request body over its limit (413), saying the limit.
    PayloadTooLarge(String),
    /// A request over one of the API's caps (422), naming the cap and how
    /// to stay within it.
    OverCap(String),
    /// Too many of these requests at once (429, with `Retry-After`).
    TooBusy {
        /// What is busy, and the limit.
        message: String,
        /// Seconds after which to try again.
        retry_after: u32,
    },
    /// A `Host` header naming another server (421): DNS rebinding, or a
    /// name missing from `[api] allowed_hosts`.
    HostNotAllowed(String),
    /// A request other than GET from another site's page (403).
    CrossSite,
    /// A request body that is not JSON (415), with the type it said.
    UnsupportedMediaType(String),
    /// A config reload rolled back (422): a started or restarted worker did
    /// not come back `running`; its name, state and last exit, the file,
    /// and the same as one problem.
    ReloadRolledBack {
        /// The config file.
        file: String,
        /// The worker, its state and last exit (boxed: the error stays
        /// small for every handler that returns it).
        worker: Box<crate::reload::NotRunning>,
        /// One problem naming the worker (key) and what was put back (fix).
        problems: Vec<crate::config::Problem>,
    },
    /// A config reload refused (422): the file and every problem.
    InvalidConfig {
        /// The config file.
        file: String,
        /// Every problem, with key and fix.
        problems: Vec<crate::config::Problem>,
    },
}

/// The body of every error answer (`Error` in /api/openapi.json).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(super) struct Body<'a> {
    /// Machine-readable code, e.g. `unknown_worker`, `bad_parameter`,
    /// `unauthorized`, `invalid_config`, `reload_rolled_back`.
    error: &'a str,
    /// What went wrong, for people.
    message: String,
    /// The HTTP status.
    status: u16,
    /// `invalid_config`, `reload_rolled_back`: the config file.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    /// `invalid_config`, `reload_rolled_back`: every problem, with its key
    /// and fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<&'a [crate::config::Problem]>,
    /// `reload_rolled_back`: the worker that did not come back running.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a crate::reload::NotRunning>,
}

impl ApiError {
    /// A bad parameter.
    pub fn bad_param(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param: param.to_string(),
            message: message.into(),
        }
    }

    /// Log an internal failure and return the sanitized error.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "{context}");
        ApiError::Internal
    }

    /// Log a store failure and return the sanitized error.
    pub fn store(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(error = %cause, "store query failed");
        ApiError::StoreUnreachable
    }

    /// A failed store read of `what`: a full heavy-read lane is 429 with
    /// `Retry-After` (the client may retry; nothing is wrong with the
    /// store), anything else [`ApiError::store`].
    pub fn from_store(what: &str, e: &crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::Busy(message) => {
                tracing::debug!(what, %message, "heavy read refused: the lane is full");
                ApiError::TooBusy {
                    message: format!("{what}: {message}"),
                    retry_after: 1,
                }
            }
            other => ApiError::store(&format!("{what}: {other}")),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownWorker(_) | ApiError::NoRoute | ApiError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed | ApiError::Moved(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadParam { .. } | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::HostNotAllowed(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidConfig { .. }
            | ApiError::ReloadRolledBack { .. }
            | ApiError::OverCap(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ControlDisabled | ApiError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NoStore | ApiError::StoreUnreachable | ApiError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code (`error` field).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownWorker(_) => "unknown_worker",
            ApiError::NoRoute => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BadParam { .. } => "bad_parameter",
            ApiError::ControlDisabled => "control_disabled",
            ApiError::ForeignOrigin(_) => "foreign_origin",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NoStore => "no_store",
            ApiError::StoreUnreachable => "store_unreachable",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal => "internal",
            ApiError::BadBody(_) => "bad_body",
            ApiError::NotFound(_) => "not_found",
            ApiError::Moved(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotSupported(_) => "not_supported",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::InvalidConfig { .. } => "invalid_config",
            ApiError::OverCap(_) => "over_cap",
            ApiError::TooBusy { .. } => "too_many_requests",
            ApiError::ReloadRolledBack { .. } => "reload_rolled_back",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
            ApiError::CrossSite => "cross_site",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }

    /// The human-readable message (`message` field).
    pub fn message(&self) -> String {
        match self {
            ApiError::UnknownWorker(name) => format!("no worker named `{name}`"),
            ApiError::NoRoute => "no such endpoint; see /api/openapi.json".to_string(),
            ApiError::MethodNotAllowed => {
                "method not allowed on this endpoint; see /api/openapi.json".to_string()
            }
            ApiError::BadParam { param, message } => {
                format!("bad parameter `{param}`: {message}")
            }
            ApiError::ControlDisabled => "control endpoints are disabled: no token is configured \
                 and this API does not listen on a loopback address only. \
                 Start worldpool with the environment variable WORLDPOOL_API_TOKEN set, \
                 then send `Authorization: Bearer <token>`"
                .to_string(),
            ApiError::ForeignOrigin(origin) => format!(
                "without a token, control is open only to clients on this machine, and this \
                 request comes from a page of `{origin}`. Start worldpool with \
                 WORLDPOOL_API_TOKEN set and send `Authorization: Bearer <token>` (a reverse \
                 proxy can add it; see the README)"
            ),
            ApiError::Unauthorized => {
                "missing or wrong token: send `Authorization: Bearer <token>`".to_string()
            }
            ApiError::NoStore => {
                "no store is configured for this API, so runs and deltas are unavailable"
                    .to_string()
            }
            ApiError::StoreUnreachable => "the store did not answer; try again later".to_string(),
            ApiError::ShuttingDown => "the pool is shutting down".to_string(),
            ApiError::Internal => "internal error; see the server log".to_string(),
            ApiError::BadBody(m)
            | ApiError::NotFound(m)
            | ApiError::Moved(m)
            | ApiError::Conflict(m)
            | ApiError::NotSupported(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::OverCap(m)
            | ApiError::TooBusy { message: m, .. } => m.clone(),
            ApiError::InvalidConfig { file, problems } => {
                let n = problems.len();
                let first = problems
                    .first()
                    .map(|p| format!(": {}: {}", p.key, p.message))
                    .unwrap_or_default();
                format!(
                    "{file}: {n} problem{} in the config, nothing changed{first}",
                    if n == 1 { "" } else { "s" }
                )
            }
            ApiError::HostNotAllowed(host) => format!(
                "this API does not answer to Host `{host}`: use localhost or the address it \
                 listens on, or add the name to [api] allowed_hosts"
            ),
            ApiError::CrossSite => "refused: a request from another site's page \
                 (Sec-Fetch-Site); use this API's own pages or a non-browser client"
                .to_string(),
            ApiError::UnsupportedMediaType(ct) if ct.is_empty() => {
                "a request body must be JSON: send `Content-Type: application/json`".to_string()
            }
            ApiError::UnsupportedMediaType(ct) => format!(
                "a request body must be JSON, not `{ct}`: send `Content-Type: application/json`"
            ),
            ApiError::ReloadRolledBack { file, worker, .. } => format!(
                "{file}: reload rolled back, the config in force keeps running: {}",
                worker.message
            ),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (file, problems, worker) = match &self {
            ApiError::InvalidConfig { file, problems } => {
                (Some(file.as_str()), Some(problems.as_slice()), None)
            }
            ApiError::ReloadRolledBack {
                file,
                worker,
                problems,
            } => (
                Some(file.as_str()),
                Some(problems.as_slice()),
                Some(worker.as_ref()),
            ),
            _ => (None, None, None),
        };
        let body = Body {
            error: self.code(),
            message: self.message(),
            status: status.as_u16(),
            file,
            problems,
            worker,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooBusy { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if self == ApiError::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"worldpool\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_status_code_and_message() {
        let table = [
            (ApiError::UnknownWorker("x".into()), 404, "unknown_worker"),
            (ApiError::NoRoute, 404, "not_found"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::bad_param("limit", "nope"), 400, "bad_parameter"),
            (ApiError::ControlDisabled, 403, "control_disabled"),
            (
                ApiError::ForeignOrigin("https://x".into()),
                403,
                "foreign_origin",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NoStore, 503, "no_store"),
            (ApiError::StoreUnreachable, 503, "store_unreachable"),
            (ApiError::ShuttingDown, 503, "shutting_down"),
            (ApiError::Internal, 500, "internal"),
            (ApiError::BadBody("x".into()), 400, "bad_body"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (ApiError::Moved("x".into()), 405, "method_not_allowed"),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (ApiError::NotSupported("x".into()), 501, "not_supported"),
            (ApiError::OverCap("x".into()), 422, "over_cap"),
            (
                ApiError::TooBusy {
                    message: "x".into(),
                    retry_after: 5,
                },
                429,
                "too_many_requests",
            ),
            (
                ApiError::InvalidConfig {
                    file: "w.toml".into(),
                    problems: vec![],
                },
                422,
                "invalid_config",
            ),
            (
                ApiError::ReloadRolledBack {
                    file: "w.toml".into(),
                    worker: Box::new(crate::reload::NotRunning {
                        worker: "B".into(),
                        state: "backoff".into(),
                        last_exit: Some("exited with status 1".into()),
                        message: "worker `B` did not come back".into(),
                    }),
                    problems: vec![],
                },
                422,
                "reload_rolled_back",
            ),
            (
                ApiError::HostNotAllowed("evil.example".into()),
                421,
                "host_not_allowed",
            ),
            (ApiError::CrossSite, 403, "cross_site"),
            (
                ApiError::UnsupportedMediaType("text/plain".into()),
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::UnsupportedMediaType(String::new()),
                415,
                "unsupported_media_type",
            ),
        ];
        for (e, status, code) in table {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code);
            assert!(!e.message().is_empty());
        }
        assert!(
            ApiError::bad_param("limit", "x")
                .message()
                .contains("`limit`")
        );
        assert!(
            ApiError::ControlDisabled
                .message()
                .contains("WORLDPOOL_API_TOKEN")
        );
    }
}
