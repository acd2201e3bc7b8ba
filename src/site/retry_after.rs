//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.

use std::time::{Duration, SystemTime};

/// How long a `Retry-After` value asks to wait, counted from `now`: a
/// whole number of seconds, or an HTTP date (IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms). A date in the past means no wait; anything
/// else (negative, fractional, garbage) is `None`.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds is as good as forever; the budget caps it.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_dates() {
        // 2015-10-21T07:28:00Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let table: &[(&str, Option<u64>)] = &[
            ("2", Some(2)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("Wed, 21 Oct 2015 07:28:05 GMT", Some(5)),
            ("Wednesday, 21-Oct-15 07:29:00 GMT", Some(60)),
            ("Wed Oct 21 07:28:10 2015", Some(10)),
            // In the past: no wait.
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
            ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ];
        for (value, want) in table {
            assert_eq!(
                parse(value, now).map(|d| d.as_secs()),
                *want,
                "Retry-After: {value:?}"
            );
        }
    }
}
