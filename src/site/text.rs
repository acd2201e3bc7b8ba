//! Text as the pages show it and as names are compared: shared by the
//! selectors and the parsers.

/// The text of pieces as a browser shows it: pieces joined as they are (no
/// separator between elements), runs of whitespace (non-breaking spaces,
/// CR, LF included) collapsed to one space, trimmed.
pub fn clean_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut space = false;
    for part in parts {
        for c in part.chars() {
            if c.is_whitespace() {
                space = !out.is_empty();
            } else {
                if space {
                    out.push(' ');
                    space = false;
                }
                out.push(c);
            }
        }
    }
    out
}

/// Collapse to the comparison key of names: lowercase letters and digits
/// (and `,.:-`), everything else (whitespace, emoji, other punctuation)
/// dropped.
pub fn match_key(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ',' | '.' | ':' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_joined_as_shown() {
        let table: &[(&[&str], &str)] = &[
            (
                &["🔥", "Daily Raw Ranking", "Rotina de coleta"],
                "🔥Daily Raw RankingRotina de coleta",
            ),
            (
                &["\r\n   Auroria", " Status ", "Servidor\r\n"],
                "Auroria Status Servidor",
            ),
            (&["  Zé \u{a0}  Pequeno "], "Zé Pequeno"),
            (&["", "  ", ""], ""),
        ];
        for (parts, want) in table {
            assert_eq!(clean_text(parts.iter().copied()), *want, "{parts:?}");
        }
    }

    #[test]
    fn match_keys() {
        assert_eq!(
            match_key("🔥Daily Raw RankingRotina de coleta"),
            "dailyrawrankingrotinadecoleta"
        );
        assert_eq!(match_key(" DAILY  raw\r\nranking "), "dailyrawranking");
        assert_eq!(match_key("Deaths/Kills"), "deathskills");
        assert_eq!(match_key("Cèlesta"), "cèlesta");
    }
}
