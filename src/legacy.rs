//! The replaced system's formats: how it wrote times, and the columns of its
//! CSV files. Shared by its API (`crate::api`) and the importer
//! (`crate::import`).
//!
//! **Times.** The replaced system kept naive site-local times (pandas
//! `datetime64` with no zone): its JSON carried Python's `isoformat()` of
//! them (`2026-01-04T19:43:00`) and its CSV files pandas' default
//! (`2026-01-04 19:43:00`). worldpool stores every time with its offset and
//! writes them back the same way: the site's local wall time, no offset
//! ([`iso`], [`csv_time`]). On input ([`parse_time`]) it accepts what its
//! frontend and files hold — `2026-01-04T19:43`, `2026-01-04 19:43:00`,
//! `2026-01-04T19:43:00.000000` (SQLAlchemy), a date alone — and the same
//! with an offset (`Z`, `-03:00`, `-0300`, `-03`); a time without an offset
//! is the site's local time (`[site] utc_offset`).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Columns of `deltas.csv`, in order.
pub const DELTAS_CSV_HEADER: [&str; 5] = ["name", "deltaexp", "update time", "world", "guild"];
/// Columns of `exps.csv`, in order.
pub const EXPS_CSV_HEADER: [&str; 5] = ["name", "exp", "last update", "world", "guild"];

/// `2026-01-04T19:43:00`: the site's wall time as Python's `isoformat()`
/// wrote it (microseconds only when there are some).
pub fn iso(t: DateTime<FixedOffset>) -> String {
    let local = t.naive_local();
    if local.and_utc().timestamp_subsec_micros() == 0 {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// `2026-01-04 19:43:00`: the site's wall time as pandas wrote it to CSV.
pub fn csv_time(t: DateTime<FixedOffset>) -> String {
    t.naive_local().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP, "CSV Injection"): `=`, `+`, `-`, `@`, tab, carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` is a formula start behind zero or more `'`.
fn formula_like(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// A text cell of an exported CSV file, defused as OWASP recommends: one
/// `'` before a cell starting with `=`, `+`, `-`, `@`, tab or CR (and
/// before such a cell already behind quotes, so [`csv_cell_read`] gives
/// back exactly what was written). Numbers and times are written as is.
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(text) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A cell as [`csv_cell`] wrote it, read back: the one `'` it added is
/// removed; any other cell is unchanged.
pub fn csv_cell_read(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(rest) => rest,
        _ => cell,
    }
}

/// Now, in the site's time zone.
pub fn now_at(site: FixedOffset) -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&site)
}

/// Split a trailing UTC offset (`Z`, `±HH:MM`, `±HHMM`, `±HH`) off a time.
fn split_offset(text: &str) -> (&str, Option<FixedOffset>) {
    if let Some(rest) = text.strip_suffix(['Z', 'z']) {
        return (rest, FixedOffset::east_opt(0));
    }
    // The offset sign comes after the time part (past `YYYY-MM-DDTHH`).
    let Some(pos) = text.rfind(['+', '-']).filter(|&p| p > 10) else {
        return (text, None);
    };
    let (head, tail) = text.split_at(pos);
    let sign = if tail.starts_with('-') { -1 } else { 1 };
    let digits: String = tail[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return (text, None);
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok(), Some(0)),
        4 => (
            digits[..2].parse::<i32>().ok(),
            digits[2..].parse::<i32>().ok(),
        ),
        _ => (None, None),
    };
    match (h, m) {
        (Some(h), Some(m)) if h <= 23 && m <= 59 => (
            head.trim_end(),
            FixedOffset::east_opt(sign * (h * 3600 + m * 60)),
        ),
        _ => (text, None),
    }
}

/// A naive date-time in one of the accepted shapes.
fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
}

/// Parse a time as the replaced system's frontend, files and database held
/// it; without an offset it is the site's local time. `None` when it is
/// none of the accepted shapes.
pub fn parse_time(text: &str, site: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t);
    }
    let (naive_text, offset) = split_offset(text);
    let naive = parse_naive(naive_text.trim())?;
    naive.and_local_timezone(offset.unwrap_or(site)).single()
}

/// What [`parse_time`] accepts, for error messages.
pub const ACCEPTED_TIMES: &str = "an ISO 8601 time such as 2026-01-04T19:43, 2026-01-04 19:43:00 \
     or 2026-01-04T19:43:00-03:00 (site-local when it has no offset)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_defused_and_read_back_unchanged() {
        let table = [
            ("Zé Pequeno", "Zé Pequeno"),
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'plain", "'plain"),
            ("a=b", "a=b"),
            ("", ""),
        ];
        for (text, written) in table {
            assert_eq!(csv_cell(text), written, "{text:?}");
            assert_eq!(csv_cell_read(written), text, "{written:?}");
        }
    }

    fn site() -> FixedOffset {
        FixedOffset::west_opt(3 * 3600).expect("offset")
    }

    #[test]
    fn accepted_shapes() {
        let want = DateTime::parse_from_rfc3339("2026-01-04T19:43:00-03:00").expect("time");
        for text in [
            "2026-01-04T19:43",
            "2026-01-04 19:43",
            "2026-01-04T19:43:00",
            "2026-01-04 19:43:00",
            " 2026-01-04 19:43:00.000000 ",
            "2026-01-04T19:43:00-03:00",
            "2026-01-04T19:43-03:00",
            "2026-01-04 19:43:00-0300",
            "2026-01-04T19:43:00-03",
            "2026-01-04T22:43:00Z",
            "2026-01-04T22:43:00+00:00",
            "2026-01-05T00:43:00+0200",
        ] {
            let got = parse_time(text, site()).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(got, want, "{text}");
        }
        assert_eq!(
            parse_time("2026-01-04", site()),
            DateTime::parse_from_rfc3339("2026-01-04T00:00:00-03:00").ok()
        );
        for bad in [
            "",
            "yesterday",
            "04/01/2026 19:43",
            "2026-13-01T00:00",
            "2026-01-04T19:43+99:00",
        ] {
            assert_eq!(parse_time(bad, site()), None, "{bad}");
        }
    }

    #[test]
    fn written_as_naive_site_time() {
        let t = DateTime::parse_from_rfc3339("2026-01-04T19:43:00-03:00").expect("time");
        assert_eq!(iso(t), "2026-01-04T19:43:00");
        assert_eq!(csv_time(t), "2026-01-04 19:43:00");
        let frac = DateTime::parse_from_rfc3339("2026-01-04T19:43:00.25-03:00").expect("time");
        assert_eq!(iso(frac), "2026-01-04T19:43:00.250000");
    }
}
