//! Player names: what a watched player's name may be, and when two names
//! are the same player.

/// Longest player name accepted (characters).
pub const MAX_PLAYER_NAME: usize = 100;

/// A player name as given (config, API), checked: trimmed, inner runs of
/// whitespace collapsed; not empty, at most [`MAX_PLAYER_NAME`] characters,
/// no control characters. The error says what is wrong in plain words.
pub fn check_player_name(raw: &str) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err("holds a control character (a tab or a line break?)".to_string());
    }
    let clean = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.is_empty() {
        return Err("is empty".to_string());
    }
    let n = clean.chars().count();
    if n > MAX_PLAYER_NAME {
        return Err(format!(
            "is {n} characters long; player names have at most {MAX_PLAYER_NAME}"
        ));
    }
    Ok(clean)
}

/// The key two names of one player share: whitespace collapsed, lowercase
/// (the site's names are case-insensitive; accents count).
pub fn player_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("Zé Pequeno", Ok("Zé Pequeno")),
            ("  Zé   Pequeno ", Ok("Zé Pequeno")),
            ("Ölaf", Ok("Ölaf")),
            ("", Err("empty")),
            ("   ", Err("empty")),
            ("a\tb", Err("control")),
            ("a\nb", Err("control")),
        ];
        for (raw, want) in table {
            match (check_player_name(raw), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{raw:?}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{raw:?}: {got}"),
                (got, _) => panic!("{raw:?}: {got:?}"),
            }
        }
        assert!(check_player_name(&"x".repeat(101)).is_err());
        assert!(check_player_name(&"é".repeat(100)).is_ok());
        assert_eq!(player_key("Zé  PEQUENO"), player_key("zé pequeno"));
        assert_ne!(player_key("Ze Pequeno"), player_key("Zé Pequeno"));
    }
}
