//! Human units for durations (`"500ms"`, `"1h"`) and sizes (`"256MiB"`).

use std::time::Duration;

/// Parse a human duration: an integer or decimal followed by `ms`, `s`, `m`,
/// `h` or `d` (e.g. `"100ms"`, `"1.5s"`, `"10m"`). A bare `0` is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("`{t}` has no unit: write e.g. \"500ms\", \"10s\", \"5m\" or \"1h\"")
        })?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("`{t}` is not a duration: write e.g. \"500ms\", \"10s\", \"5m\" or \"1h\"")
    })?;
    let secs_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        other => {
            return Err(format!(
                "`{t}` has an unknown unit `{other}`: use ms, s, m, h or d"
            ));
        }
    };
    let secs = value * secs_per_unit;
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(format!("`{t}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a human size in bytes: a number followed by `B`, `KiB`, `MiB`,
/// `GiB`, `KB`, `MB`, `GB` (e.g. `"256MiB"`). A bare integer is bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("`{t}` is not a size: write e.g. \"64MiB\", \"1GiB\" or \"512KiB\"")
    })?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" | "k" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "`{t}` has an unknown unit `{other}`: use B, KiB, MiB, GiB (or KB, MB, GB)"
            ));
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || !(0.0..=1.8e19).contains(&bytes) {
        return Err(format!("`{t}` is out of range"));
    }
    Ok(bytes as u64)
}

/// Format a duration the way [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0".to_string()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let table = [
            ("100ms", Some(100)),
            ("1s", Some(1000)),
            ("1.5s", Some(1500)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("1d", Some(86_400_000)),
            ("0", Some(0)),
            (" 2s ", Some(2000)),
            ("10", None),
            ("abc", None),
            ("5 parsecs", None),
            ("", None),
        ];
        for (input, want) in table {
            let got = parse_duration(input).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "parse_duration({input:?})");
        }
    }

    #[test]
    fn sizes() {
        let table = [
            ("256MiB", Some(256 << 20)),
            ("1GiB", Some(1 << 30)),
            ("512KiB", Some(512 << 10)),
            ("100", Some(100)),
            ("1MB", Some(1_000_000)),
            ("1.5KiB", Some(1536)),
            ("lots", None),
            ("5XB", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_bytes(input).ok(), want, "parse_bytes({input:?})");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["100ms", "1s", "5m", "1h", "0"] {
            let d = parse_duration(text).expect("valid");
            assert_eq!(format_duration(d), text);
        }
    }
}
