//! `GET /api/download/deltas` and `/api/download/exps`: the replaced
//! system's CSV files (`name,deltaexp,update time,world,guild` and
//! `name,exp,last update,world,guild`), generated from the store and
//! streamed: rows come from the database in chunks through a bounded
//! channel, so a download of a million rows takes constant memory and a
//! client that stops reading stops the database read. A store error in the
//! middle, or the pool shutting down, aborts the response (the client sees
//! a broken transfer, never a silently short file).
//!
//! At most `[api] max_exports` run at once (beyond it 429 with
//! `Retry-After`); a client that leaves its download unread for `[api]
//! send_timeout` is cut by the server. Cells are written by `csv::Writer`
//! (quoted only when they must be, like pandas) and text cells are defused
//! against spreadsheet formulas ([`crate::legacy::csv_cell`]).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::{StreamExt, stream};
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiError, ApiState, store};
use crate::legacy::{DELTAS_CSV_HEADER, EXPS_CSV_HEADER, csv_cell, csv_time};
use crate::store::{DeltaRow, PlayerRowStored, RowChunks};

/// Seconds a refused download is told to wait (`Retry-After`).
pub const EXPORT_RETRY_AFTER: u32 = 5;

type Csv = csv::Writer<Vec<u8>>;

fn writer() -> Csv {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(64 * 1024))
}

fn delta_line(d: &DeltaRow, out: &mut Csv) -> csv::Result<()> {
    out.write_record([
        csv_cell(&d.name).as_ref(),
        &d.delta.to_string(),
        &csv_time(d.update_time),
        &csv_cell(&d.world),
        &csv_cell(&d.guild),
    ])
}

fn player_line(p: &PlayerRowStored, out: &mut Csv) -> csv::Result<()> {
    out.write_record([
        csv_cell(&p.name).as_ref(),
        &p.experience.to_string(),
        &csv_time(p.update_time),
        &csv_cell(&p.world),
        &csv_cell(&p.guild),
    ])
}

/// CSV text of these rows (the header when `rows` is `None`).
fn chunk<T>(
    columns: &[&str],
    rows: Option<&[T]>,
    line: fn(&T, &mut Csv) -> csv::Result<()>,
) -> Result<Bytes, std::io::Error> {
    let mut out = writer();
    match rows {
        None => out.write_record(columns)?,
        Some(rows) => {
            for r in rows {
                line(r, &mut out)?;
            }
        }
    }
    out.into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn csv_response<T: Send + 'static>(
    state: &ApiState,
    file: &'static str,
    columns: &'static [&'static str],
    rows: impl FnOnce() -> RowChunks<T>,
    line: fn(&T, &mut Csv) -> csv::Result<()>,
) -> Result<Response, ApiError> {
    let Some(permit) = state.export_permit() else {
        return Err(ApiError::TooBusy {
            message: "too many downloads at once ([api] max_exports): try again later".to_string(),
            retry_after: EXPORT_RETRY_AFTER,
        });
    };
    let head = chunk::<T>(columns, None, line)
        .map_err(|e| ApiError::internal("cannot write a CSV header", &e))?;
    let stop = state.shutdown_token();
    let cut = stop.clone();
    let rows = ReceiverStream::new(rows()).map(move |chunk_rows| {
        // The place is held for as long as the body is.
        let _held = &permit;
        match chunk_rows {
            Ok(rows) => chunk(columns, Some(&rows), line),
            Err(e) => {
                tracing::warn!(error = %e, file, "CSV download failed in the middle");
                Err(std::io::Error::other(
                    "the store failed during the download",
                ))
            }
        }
    });
    // Shutdown ends the body with an error: a broken transfer, not a
    // short file that looks complete.
    let tail = stream::once(async move { cut.is_cancelled() }).filter_map(|cut| async move {
        cut.then(|| {
            Err(std::io::Error::other(
                "the pool is shutting down: download cut",
            ))
        })
    });
    let body = stream::once(async move { Ok::<Bytes, std::io::Error>(head) })
        .chain(rows.take_until(stop.cancelled_owned()))
        .chain(tail);
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
                .unwrap_or(HeaderValue::from_static("attachment")),
        )
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal("cannot build a CSV response", &e))
}

/// CSV with the columns `name,deltaexp,update time,world,guild` (times
/// `YYYY-MM-DD HH:MM:SS`, site-local), streamed; text cells starting with
/// `=`, `+`, `-`, `@`, tab or CR get a leading `'`.
#[utoipa::path(get, path = "/api/download/deltas", operation_id = "downloadDeltas", tag = "compatibility",
    responses(
        (status = 200, description = "CSV.", content_type = "text/csv", body = String),
        (status = 429, description = "`[api] max_exports` downloads run already; retry after `Retry-After` seconds.", body = crate::api::error::Body),
        (status = 503, description = "No store configured.", body = crate::api::error::Body),
    ))]
pub(super) async fn deltas(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    csv_response(
        &state,
        "deltas.csv",
        &DELTAS_CSV_HEADER,
        || store.export_deltas(),
        delta_line,
    )
}

/// CSV with the columns `name,exp,last update,world,guild` (times
/// `YYYY-MM-DD HH:MM:SS`, site-local), streamed; text cells starting with
/// `=`, `+`, `-`, `@`, tab or CR get a leading `'`.
#[utoipa::path(get, path = "/api/download/exps", operation_id = "downloadExps", tag = "compatibility",
    responses(
        (status = 200, description = "CSV.", content_type = "text/csv", body = String),
        (status = 429, description = "`[api] max_exports` downloads run already; retry after `Retry-After` seconds.", body = crate::api::error::Body),
        (status = 503, description = "No store configured.", body = crate::api::error::Body),
    ))]
pub(super) async fn exps(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    csv_response(
        &state,
        "exps.csv",
        &EXPS_CSV_HEADER,
        || store.export_players(),
        player_line,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn cells_are_quoted_only_when_needed_and_defused() {
        let t = DateTime::parse_from_rfc3339("2026-01-04T19:43:00-03:00").expect("time");
        let rows: Vec<DeltaRow> = [
            "Zé Pequeno",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "=1+1",
            "-x",
        ]
        .iter()
        .map(|name| DeltaRow {
            id: 1,
            world: "Aurera".into(),
            name: (*name).into(),
            guild: "@home".into(),
            delta: -5,
            update_time: t,
            previous_update_time: None,
        })
        .collect();
        let text = chunk(&DELTAS_CSV_HEADER, Some(&rows), delta_line).expect("csv");
        let text = std::str::from_utf8(&text).expect("utf-8");
        assert_eq!(
            text,
            "Zé Pequeno,-5,2026-01-04 19:43:00,Aurera,'@home\n\
             \"a,b\",-5,2026-01-04 19:43:00,Aurera,'@home\n\
             \"say \"\"hi\"\"\",-5,2026-01-04 19:43:00,Aurera,'@home\n\
             \"two\nlines\",-5,2026-01-04 19:43:00,Aurera,'@home\n\
             '=1+1,-5,2026-01-04 19:43:00,Aurera,'@home\n\
             '-x,-5,2026-01-04 19:43:00,Aurera,'@home\n"
        );
        let head = chunk::<DeltaRow>(&DELTAS_CSV_HEADER, None, delta_line).expect("csv");
        assert_eq!(&head[..], b"name,deltaexp,update time,world,guild\n");
    }
}
