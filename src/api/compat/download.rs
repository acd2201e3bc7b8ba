//! `GET /api/download/deltas` and `/api/download/exps`: the replaced
//! system's CSV files (`name,deltaexp,update time,world,guild` and
//! `name,exp,last update,world,guild`), generated from the store and
//! streamed: rows come from the database in chunks through a bounded
//! channel, so a download of a million rows takes constant memory and a
//! client that stops reading stops the database read. A store error in the
//! middle aborts the response (the client sees a broken transfer, never a
//! silently short file).

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::{StreamExt, stream};
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiError, ApiState, store};
use crate::legacy::{DELTAS_CSV_HEADER, EXPS_CSV_HEADER, csv_time};
use crate::store::{DeltaRow, PlayerRowStored, RowChunks};

/// Append one CSV field, quoted only when it must be (like pandas).
pub(crate) fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn delta_line(d: &DeltaRow, out: &mut String) {
    field(out, &d.name);
    let _ = write!(out, ",{},{},", d.delta, csv_time(d.update_time));
    field(out, &d.world);
    out.push(',');
    field(out, &d.guild);
    out.push('\n');
}

fn player_line(p: &PlayerRowStored, out: &mut String) {
    field(out, &p.name);
    let _ = write!(out, ",{},{},", p.experience, csv_time(p.update_time));
    field(out, &p.world);
    out.push(',');
    field(out, &p.guild);
    out.push('\n');
}

fn csv_response<T: Send + 'static>(
    file: &'static str,
    columns: &[&str],
    rows: RowChunks<T>,
    line: fn(&T, &mut String),
) -> Result<Response, ApiError> {
    let head = Bytes::from(format!("{}\n", columns.join(",")));
    let body = stream::once(async move { Ok::<Bytes, std::io::Error>(head) }).chain(
        ReceiverStream::new(rows).map(move |chunk| match chunk {
            Ok(rows) => {
                let mut out = String::with_capacity(rows.len() * 64);
                for r in &rows {
                    line(r, &mut out);
                }
                Ok(Bytes::from(out))
            }
            Err(e) => {
                tracing::warn!(error = %e, file, "CSV download failed in the middle");
                Err(std::io::Error::other(
                    "the store failed during the download",
                ))
            }
        }),
    );
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

pub(super) async fn deltas(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let rows = store(&state)?.export_deltas();
    csv_response("deltas.csv", &DELTAS_CSV_HEADER, rows, delta_line)
}

pub(super) async fn exps(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let rows = store(&state)?.export_players();
    csv_response("exps.csv", &EXPS_CSV_HEADER, rows, player_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut s = String::new();
        for f in ["Zé Pequeno", "a,b", "say \"hi\"", "two\nlines"] {
            field(&mut s, f);
            s.push('|');
        }
        assert_eq!(s, "Zé Pequeno|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|");
    }
}
