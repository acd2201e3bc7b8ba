//! The replaced system's uploads (its later data-management pages):
//! `POST /api/upload/deltas`, `/api/upload/exps`, `/api/upload/makers`,
//! `multipart/form-data` with a `password` field and a `file` field (a CSV:
//! `deltas.csv`, `exps.csv`, `ref_main_maker.csv`).
//!
//! The file is imported by the very code of `worldpool import`
//! ([`crate::import::run_file`]): one transaction, nothing written twice
//! (uploading a file again writes nothing), a bad line fails the whole
//! upload naming the file, line and column, and nothing is written. Unlike
//! the replaced app, an upload adds to the history instead of replacing the
//! file wholesale.
//!
//! **Password.** With a control token configured (`WORLDPOOL_API_TOKEN`),
//! `password` must be the token (or the request carries
//! `Authorization: Bearer <token>`), else 401. Without a token the API only
//! listens on loopback ([`crate::api::check_bind`]), and uploads there are
//! accepted whatever the password, as the control endpoints are.
//!
//! **Defaults.** Old files without `world`/`guild` columns take the form
//! fields `world` and `guild`; without them, the configured world when
//! there is only one (and its guild when it has only one).
//!
//! **Size.** A request body above [`UPLOAD_MAX_BYTES`] is refused with 413.

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::Body as ErrorBody;
use crate::api::{ApiError, ApiState, authorize, json, same_secret};
use crate::import::{CsvFile, ImportError, ImportOptions, run_file};

/// Largest upload request body (64 MiB); larger ones get 413.
pub const UPLOAD_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The upload routes (merged into the compatibility routes), bodies up to
/// [`UPLOAD_MAX_BYTES`].
pub(super) fn routes() -> OpenApiRouter<ApiState> {
    routes_limited(UPLOAD_MAX_BYTES)
}

fn routes_limited(max_bytes: usize) -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(deltas))
        .routes(routes!(exps))
        .routes(routes!(makers))
        .layer(DefaultBodyLimit::max(max_bytes))
}

type MultipartForm = Result<Multipart, MultipartRejection>;

/// The multipart form of an upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The CSV file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The token (`WORLDPOOL_API_TOKEN`).
    password: Option<String>,
    /// World of rows without one (old files).
    world: Option<String>,
    /// Guild of rows without one (old files).
    guild: Option<String>,
}

/// The failures of an upload.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum UploadErrors<'a> {
    /// Not a multipart form, no `file`, not a `.csv`, or a bad line (file,
    /// line and column named); nothing written.
    #[response(status = 400)]
    Bad(ErrorBody<'a>),
    /// A token is configured and `password` (or the bearer header) is not it.
    #[response(status = 401)]
    Unauthorized(ErrorBody<'a>),
    /// The body is larger than 64 MiB.
    #[response(status = 413)]
    TooLarge(ErrorBody<'a>),
    /// No store configured, or the store is unreachable.
    #[response(status = 503)]
    Unavailable(ErrorBody<'a>),
}

/// Import a `deltas.csv` through the code of `worldpool import`.
#[utoipa::path(post, path = "/api/upload/deltas", operation_id = "uploadDeltas", tags = ["compatibility", "uploads"],
    description = UPLOAD_HOW,
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Imported.", body = Uploaded), UploadErrors))]
async fn deltas(s: State<ApiState>, h: HeaderMap, m: MultipartForm) -> Result<Response, ApiError> {
    upload(CsvFile::Deltas, s, h, m).await
}

/// Import an `exps.csv` through the code of `worldpool import`.
#[utoipa::path(post, path = "/api/upload/exps", operation_id = "uploadExps", tags = ["compatibility", "uploads"],
    description = UPLOAD_HOW,
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Imported.", body = Uploaded), UploadErrors))]
async fn exps(s: State<ApiState>, h: HeaderMap, m: MultipartForm) -> Result<Response, ApiError> {
    upload(CsvFile::Exps, s, h, m).await
}

/// Import a `ref_main_maker.csv` through the code of `worldpool import`.
#[utoipa::path(post, path = "/api/upload/makers", operation_id = "uploadMakers", tags = ["compatibility", "uploads"],
    description = UPLOAD_HOW,
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Imported.", body = Uploaded), UploadErrors))]
async fn makers(s: State<ApiState>, h: HeaderMap, m: MultipartForm) -> Result<Response, ApiError> {
    upload(CsvFile::MainMakers, s, h, m).await
}

/// The form's fields.
#[derive(Debug, Default)]
struct Form {
    password: Option<String>,
    file: Option<(Option<String>, Bytes)>,
    world: Option<String>,
    guild: Option<String>,
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!(
            "the upload is larger than {} MiB: split the file",
            UPLOAD_MAX_BYTES / (1024 * 1024)
        ))
    } else {
        ApiError::BadBody(format!(
            "the body is not a readable multipart form ({})",
            e.body_text()
        ))
    }
}

async fn read_form(mut multipart: Multipart) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().map(String::from);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                form.file = Some((file_name, bytes));
            }
            "password" | "world" | "guild" => {
                let text = field.text().await.map_err(multipart_error)?;
                let value = Some(text.trim().to_string()).filter(|t| !t.is_empty());
                match name.as_str() {
                    "password" => form.password = value,
                    "world" => form.world = value,
                    _ => form.guild = value,
                }
            }
            // Unknown fields are read and ignored, as the other
            // compatibility endpoints ignore unknown parameters.
            _ => {
                field.bytes().await.map_err(multipart_error)?;
            }
        }
    }
    Ok(form)
}

/// With a token: the bearer header or the `password` field must be it.
/// Without one the API listens on loopback only: accepted.
fn check_password(
    state: &ApiState,
    headers: &HeaderMap,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let Some(expected) = state.inner.token.as_deref() else {
        return Ok(());
    };
    if authorize(state, headers).is_ok() {
        return Ok(());
    }
    match password {
        Some(p) if same_secret(p.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// How an upload goes, in /api/openapi.json.
const UPLOAD_HOW: &str = "One transaction, rows already stored are not written again, a bad line fails the whole upload. With a token configured `password` must be it; without one (loopback only) any password is accepted.";

/// What an upload answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Uploaded {
    success: bool,
    /// Rows read from the file.
    records: usize,
    /// Rows written (the rest were stored already).
    written: usize,
    message: String,
}

async fn upload(
    file: CsvFile,
    State(state): State<ApiState>,
    headers: HeaderMap,
    multipart: MultipartForm,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|e| {
        ApiError::BadBody(format!(
            "send multipart/form-data with a `password` and a `file` field ({})",
            e.body_text()
        ))
    })?;
    let form = read_form(multipart).await?;
    check_password(&state, &headers, form.password.as_deref())?;
    let Some((file_name, bytes)) = form.file else {
        return Err(ApiError::BadBody(format!(
            "no `file` field: send {} as the form's `file`",
            file.file_name()
        )));
    };
    if let Some(n) = &file_name
        && !n.to_lowercase().ends_with(".csv")
    {
        return Err(ApiError::BadBody(format!(
            "Only CSV files are allowed (got `{n}`)"
        )));
    }
    let store = state.store().ok_or(ApiError::NoStore)?;
    let compat = state.compat();
    let only_world = match compat.worlds.as_slice() {
        [w] => Some(w),
        _ => None,
    };
    let options = ImportOptions {
        from: file.file_name().into(),
        default_world: form.world.or_else(|| only_world.map(|w| w.world.clone())),
        default_guild: form.guild.or_else(|| match only_world {
            Some(w) if w.guilds.len() == 1 => w.guilds.first().cloned(),
            _ => None,
        }),
        site_offset: compat.site_offset,
        // A single CSV file never carries the daily reset state.
        reset_minutes: 0,
    };
    let label = file_name.unwrap_or_else(|| file.file_name().to_string());
    let summary = match run_file(&store, file, &label, bytes, &options, false).await {
        Ok(s) => s,
        Err(ImportError::Store(e)) => return Err(ApiError::store(&format!("upload: {e}"))),
        Err(e) => {
            tracing::warn!(file = %label, error = %e, "upload refused, nothing written");
            return Err(ApiError::BadBody(format!("nothing was imported: {e}")));
        }
    };
    let records = summary.read.get(file.table()).copied().unwrap_or(0);
    let w = &summary.written;
    let written = match file {
        CsvFile::Exps => w.players.values().sum(),
        CsvFile::Deltas => w.deltas.values().sum(),
        CsvFile::VipsData => w.vip_daily,
        CsvFile::DeltaVip => w.vip_deltas,
        CsvFile::MainMakers => w.makers,
    };
    tracing::info!(file = %label, records, written, "upload imported");
    if matches!(file, CsvFile::Deltas) && written > 0 {
        state.deltas_imported();
    }
    let answer = Uploaded {
        success: true,
        records,
        written,
        message: format!(
            "{label}: {records} records read, {written} written ({} already stored)",
            records.saturating_sub(written)
        ),
    };
    Ok(json(StatusCode::OK, &answer, 256))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    use super::*;
    use crate::api::fake::FakeControl;

    fn form(password: &str, body: &[u8]) -> (String, Vec<u8>) {
        let boundary = "XbOuNdArYx";
        let mut out = Vec::new();
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deltas.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        (format!("multipart/form-data; boundary={boundary}"), out)
    }

    async fn post(
        app: OpenApiRouter<ApiState>,
        state: ApiState,
        ctype: &str,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let r = axum::Router::from(app)
            .with_state(state)
            .oneshot(
                Request::post("/api/upload/deltas")
                    .header(header::CONTENT_TYPE, ctype)
                    .body(Body::from(body))
                    .expect("request"),
            )
            .await
            .expect("answer");
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn state(token: Option<&str>) -> ApiState {
        ApiState::new(
            Arc::new(FakeControl::new(&["Aurera"])),
            None,
            token.map(String::from),
        )
    }

    #[tokio::test]
    async fn too_large_wrong_password_not_multipart() {
        let (ctype, body) = form("s3cret", &[b'x'; 4096]);
        let (status, v) = post(routes_limited(1024), state(Some("s3cret")), &ctype, body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
        assert_eq!(v["error"], "payload_too_large", "{v}");

        let (ctype, body) = form("wrong", b"name,deltaexp,update time\n");
        let (status, v) = post(routes(), state(Some("s3cret")), &ctype, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");

        // The right password (or no token at all) gets past the check: no
        // store here, so 503.
        let (ctype, body) = form("s3cret", b"name,deltaexp,update time\n");
        let (status, v) = post(routes(), state(Some("s3cret")), &ctype, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        let (ctype, body) = form("anything", b"name,deltaexp,update time\n");
        let (status, v) = post(routes(), state(None), &ctype, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");

        let (status, v) = post(
            routes(),
            state(None),
            "application/json",
            b"{\"password\": \"x\"}".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("multipart")),
            "{v}"
        );
    }
}
