//! URL building: guild and world names encoded properly.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::SiteError;

/// Characters left as they are in a query value (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL of a guild page: `template` (e.g. `/guild.php?guild={guild}&world={world}`)
/// with both names percent-encoded as UTF-8, joined to `base`.
pub fn guild_url(
    base: &str,
    template: &str,
    guild: &str,
    world: &str,
) -> Result<String, SiteError> {
    join(
        base,
        &fill(template, &[("{guild}", guild), ("{world}", world)]),
    )
}

/// The URL of a player page: `template` (e.g. `/player?name={name}`) with
/// the name (and `{world}`, when the template has it) percent-encoded as
/// UTF-8, joined to `base`.
pub fn player_url(
    base: &str,
    template: &str,
    name: &str,
    world: &str,
) -> Result<String, SiteError> {
    join(
        base,
        &fill(template, &[("{name}", name), ("{world}", world)]),
    )
}

/// `template` with each placeholder replaced by its value, percent-encoded.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |path, (key, value)| {
            path.replace(key, &utf8_percent_encode(value, QUERY_VALUE).to_string())
        })
}

/// `base` + `path` (path starting with `/`), checked.
pub fn join(base: &str, path: &str) -> Result<String, SiteError> {
    let text = format!("{}{}", base.trim_end_matches('/'), path);
    url::Url::parse(&text)
        .map(|u| u.to_string())
        .map_err(|e| SiteError::Url(format!("{text}: {e}")))
}

/// Resolve a `rel="next"` href against the page it was found on. A link
/// to another origin (scheme, host, port) is refused: a hostile page must
/// not send the worker anywhere else.
pub fn resolve_next(page_url: &str, href: &str) -> Result<String, SiteError> {
    let base = url::Url::parse(page_url).map_err(|e| SiteError::Url(format!("{page_url}: {e}")))?;
    let next = base
        .join(href)
        .map_err(|e| SiteError::Url(format!("{href}: {e}")))?;
    if next.origin() != base.origin() {
        return Err(SiteError::Url(format!(
            "the next-page link of {page_url} leads to another site ({next}): refused"
        )));
    }
    Ok(next.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guild_urls_are_encoded() {
        let t = "/guild.php?guild={guild}&world={world}";
        let table: &[(&str, &str, &str)] = &[
            (
                "Red Rose",
                "Aurera",
                "http://h/guild.php?guild=Red%20Rose&world=Aurera",
            ),
            (
                "Dragões de Éter",
                "Cèlesta",
                "http://h/guild.php?guild=Drag%C3%B5es%20de%20%C3%89ter&world=C%C3%A8lesta",
            ),
            (
                "A&B=C+D/E?",
                "W#1",
                "http://h/guild.php?guild=A%26B%3DC%2BD%2FE%3F&world=W%231",
            ),
        ];
        for (guild, world, want) in table {
            assert_eq!(guild_url("http://h/", t, guild, world).expect("url"), *want);
        }
    }

    #[test]
    fn player_urls_are_encoded() {
        let table: &[(&str, &str, &str)] = &[
            (
                "/player?name={name}",
                "Zé Pequeno",
                "http://h/player?name=Z%C3%A9%20Pequeno",
            ),
            (
                "/player?name={name}",
                "A&B=C+D",
                "http://h/player?name=A%26B%3DC%2BD",
            ),
            (
                "/p/{world}?name={name}",
                "ana",
                "http://h/p/C%C3%A8lesta?name=ana",
            ),
        ];
        for (template, name, want) in table {
            assert_eq!(
                player_url("http://h/", template, name, "Cèlesta").expect("url"),
                *want
            );
        }
    }

    #[test]
    fn next_links_resolve() {
        let page = "http://h/guild.php?guild=A&world=B";
        assert_eq!(
            resolve_next(page, "?guild=A&world=B&page=2").expect("url"),
            "http://h/guild.php?guild=A&world=B&page=2"
        );
        assert_eq!(
            resolve_next(page, "/guild.php?page=3").expect("url"),
            "http://h/guild.php?page=3"
        );
        for elsewhere in [
            "http://other/x",
            "https://h/x",
            "http://h:8080/x",
            "//evil/x",
        ] {
            let err = resolve_next(page, elsewhere)
                .expect_err(elsewhere)
                .to_string();
            assert!(err.contains("another site"), "{err}");
        }
    }
}
