//! Shared by the page parsers: numbers as the site writes them, the
//! completeness check, and the errors they report.

use crate::site::SiteError;
use crate::site::selectors::Compiled;

/// Parse `74.287.224`, `74,287,224`, `74 287 224` or `74287224`.
pub fn parse_number(text: &str) -> Option<i64> {
    parse_number_parts(std::iter::once(text))
}

/// [`parse_number`] over the text pieces of a cell, without joining them:
/// whitespace and group separators (`.` `,` `'` `_`) are ignored, a sign
/// may lead, a rank's trailing `º`/`°` is allowed.
pub fn parse_number_parts<'a>(parts: impl Iterator<Item = &'a str>) -> Option<i64> {
    let mut value: i64 = 0;
    let mut seen_digit = false;
    let mut negative = false;
    let mut seen_sign = false;
    let mut ended = false;
    for part in parts {
        for c in part.chars() {
            match c {
                '0'..='9' if !ended => {
                    seen_digit = true;
                    value = value
                        .checked_mul(10)?
                        .checked_add(i64::from(c as u8 - b'0'))?;
                }
                '-' | '+' if !seen_digit && !seen_sign => {
                    seen_sign = true;
                    negative = c == '-';
                }
                '.' | ',' | '\'' | '_' => {}
                'º' | '°' if seen_digit => ended = true,
                c if c.is_whitespace() => {}
                _ => return None,
            }
        }
    }
    if !seen_digit {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// Whether `hay` contains `needle`, ASCII case-insensitively (no allocation;
/// the marker is usually found at the very end, so search from the end).
pub(super) fn contains_ignore_ascii_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    (0..=h.len() - n.len())
        .rev()
        .any(|i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

pub(crate) fn complete_check(html_text: &str, sel: &Compiled, url: &str) -> Result<(), SiteError> {
    let marker = &sel.complete_marker;
    if !marker.is_empty() && !contains_ignore_ascii_case(html_text, marker) {
        return Err(SiteError::Truncated {
            url: url.to_string(),
            marker: marker.clone(),
        });
    }
    Ok(())
}

pub(super) fn layout(selector: String, url: &str) -> SiteError {
    SiteError::Layout {
        selector,
        url: url.to_string(),
    }
}

pub(super) fn bad_value(field: &str, value: String, url: &str) -> SiteError {
    SiteError::BadValue {
        field: field.to_string(),
        value,
        url: url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let table: &[(&str, Option<i64>)] = &[
            ("74.287.224", Some(74_287_224)),
            ("74,287,224", Some(74_287_224)),
            ("  1.000 ", Some(1000)),
            ("0", Some(0)),
            ("-12.345", Some(-12_345)),
            ("74\u{a0}287", Some(74_287)),
            ("", None),
            ("abc", None),
            ("1.2x", None),
            ("12º", Some(12)),
            ("º12", None),
            ("1-2", None),
            (" \n 7 \n", Some(7)),
            (".", None),
            ("99999999999999999999999", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_number(text), *want, "{text:?}");
        }
    }
}
