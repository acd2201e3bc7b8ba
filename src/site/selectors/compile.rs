//! Compilation: how each kind of key is checked and what it becomes for
//! the parsers ([`Kind`]); the "not found" marker of `unknown_guild`.

use regex::Regex;
use scraper::{ElementRef, Selector};

use super::css::{Css, Field, Matcher, ident_len};
use super::problems::{SelectorProblem, regex_error_words, selector_error_words, toml_quote};
use crate::site::text::{clean_text, match_key};

/// How a kind of `[site.selectors]` key is read: `Raw` is its type in the
/// config, `Out` what the parsers use.
pub(crate) trait Kind {
    /// The key's type in the config.
    type Raw;
    /// What the parsers read.
    type Out: std::fmt::Debug + Clone;
    /// Check the value of `key`; on a problem, push it (and return `None`
    /// unless the value is still usable).
    fn compile(
        &self,
        key: &'static str,
        raw: &Self::Raw,
        default: &Self::Raw,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Self::Out>;
}

/// A selector whose element gives a value (text, or `::attr(name)`).
pub(crate) struct Value;
/// [`Value`] whose element gives its `href` unless `::attr(…)` says
/// otherwise (`next_page`).
pub(crate) struct Link;
/// A selector of an element that holds others (no `::attr`).
pub(crate) struct Container;
/// A regex with a named group `world` (`world_pattern`).
pub(crate) struct Pattern;
/// Words compared by containment ([`match_key`]); the argument says what
/// they are, for the fix.
pub(crate) struct Words(pub(crate) &'static str);
/// A number used as it is.
pub(crate) struct Index;
/// Text used as it is.
pub(crate) struct Text;
/// `unknown_guild`: nothing, a selector, or `text:WORDS`.
pub(crate) struct Marker;

impl Kind for Value {
    type Raw = String;
    type Out = Field;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Field> {
        field(key, raw, default, None, problems)
    }
}

impl Kind for Link {
    type Raw = String;
    type Out = Field;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Field> {
        field(key, raw, default, Some("href"), problems)
    }
}

impl Kind for Container {
    type Raw = String;
    type Out = Css;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Css> {
        let (text, attr) = split_attr_or_report(key, raw, problems)?;
        let compiled = css(key, text, default, problems);
        if attr.is_some() {
            problems.push(SelectorProblem {
                key: key.to_string(),
                message: format!(
                    "{} reads an attribute, but {key} selects a container, not a value",
                    toml_quote(raw)
                ),
                fix: format!("remove ::attr(…); write e.g. {}", toml_quote(default)),
            });
        }
        compiled
    }
}

impl Kind for Pattern {
    type Raw = String;
    type Out = Regex;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Regex> {
        let problem = |message, fix| SelectorProblem {
            key: key.to_string(),
            message,
            fix,
        };
        match regex_error_words(raw) {
            Some(words) => {
                problems.push(problem(
                    format!("{} is not a valid pattern: {words}", toml_quote(raw)),
                    format!(
                        "write a regular expression with a named group (?P<world>…), e.g. the default {}",
                        toml_quote(default)
                    ),
                ));
                None
            }
            None => match Regex::new(raw) {
                Ok(re) if re.capture_names().any(|n| n == Some("world")) => Some(re),
                Ok(_) => {
                    problems.push(problem(
                        format!(
                            "{} has no named group `world`, so it cannot say which part of the title is the world's name",
                            toml_quote(raw)
                        ),
                        format!(
                            "wrap the name part in (?P<world>…), e.g. the default {}",
                            toml_quote(default)
                        ),
                    ));
                    None
                }
                Err(e) => {
                    problems.push(problem(
                        format!("is not a valid pattern: {e}"),
                        format!("write e.g. the default {}", toml_quote(default)),
                    ));
                    None
                }
            },
        }
    }
}

impl Kind for Words {
    type Raw = String;
    type Out = String;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<String> {
        let words = match_key(raw);
        if words.is_empty() {
            problems.push(SelectorProblem {
                key: key.to_string(),
                message: format!("{} has no letters or digits to look for", toml_quote(raw)),
                fix: format!("write {}, e.g. \"{default}\"", self.0),
            });
            return None;
        }
        Some(words)
    }
}

impl Kind for Index {
    type Raw = usize;
    type Out = usize;
    fn compile(
        &self,
        _key: &'static str,
        raw: &usize,
        _default: &usize,
        _problems: &mut Vec<SelectorProblem>,
    ) -> Option<usize> {
        Some(*raw)
    }
}

impl Kind for Text {
    type Raw = String;
    type Out = String;
    fn compile(
        &self,
        _key: &'static str,
        raw: &String,
        _default: &String,
        _problems: &mut Vec<SelectorProblem>,
    ) -> Option<String> {
        Some(raw.clone())
    }
}

impl Kind for Marker {
    type Raw = String;
    type Out = Option<NotFoundMarker>;
    fn compile(
        &self,
        key: &'static str,
        raw: &String,
        _default: &String,
        problems: &mut Vec<SelectorProblem>,
    ) -> Option<Option<NotFoundMarker>> {
        let text = raw.trim();
        if text.is_empty() {
            return Some(None);
        }
        let fix = "write a CSS selector of an element only the site's \"not found\" page has, e.g. \"p.guild-not-found\", or text:WORDS it shows, e.g. \"text:Guilda não encontrada\"; or remove the key".to_string();
        if let Some(words) = text.strip_prefix(TEXT_MARKER_PREFIX) {
            let words = match_key(words);
            if words.is_empty() {
                problems.push(SelectorProblem {
                    key: key.to_string(),
                    message: format!("{} has no letters or digits to look for", toml_quote(raw)),
                    fix,
                });
                return None;
            }
            return Some(Some(NotFoundMarker::Text(words)));
        }
        match Selector::parse(text) {
            Ok(selector) => Some(Some(NotFoundMarker::Css(Css {
                key,
                text: text.to_string(),
                selector,
                fast: Matcher::parse(text),
            }))),
            Err(e) => {
                let words = selector_error_words(text)
                    .unwrap_or_else(|| format!("the selector engine refuses it ({e:?})"));
                problems.push(SelectorProblem {
                    key: key.to_string(),
                    message: format!("{} is not a valid CSS selector: {words}", toml_quote(raw)),
                    fix,
                });
                None
            }
        }
    }
}

/// A value key: the selector and the attribute to read (`default_attr`
/// unless `::attr(…)` names one).
fn field(
    key: &'static str,
    raw: &str,
    default: &str,
    default_attr: Option<&str>,
    problems: &mut Vec<SelectorProblem>,
) -> Option<Field> {
    let (text, attr) = split_attr_or_report(key, raw, problems)?;
    let css = css(key, text, default, problems)?;
    Some(Field {
        css,
        attr: attr.or(default_attr).map(str::to_string),
        written: raw.to_string(),
    })
}

/// [`split_attr`], its problem reported.
fn split_attr_or_report<'a>(
    key: &str,
    raw: &'a str,
    problems: &mut Vec<SelectorProblem>,
) -> Option<(&'a str, Option<&'a str>)> {
    match split_attr(raw) {
        Ok(parts) => Some(parts),
        Err(words) => {
            problems.push(SelectorProblem {
                key: key.to_string(),
                message: format!("{} is not valid: {words}", toml_quote(raw)),
                fix: "end the selector with ::attr(name) to read an attribute, e.g. \"span.xp::attr(data-value)\"".to_string(),
            });
            None
        }
    }
}

/// A CSS selector (without `::attr`), or its problem.
fn css(
    key: &'static str,
    text: &str,
    default: &str,
    problems: &mut Vec<SelectorProblem>,
) -> Option<Css> {
    let fix = format!(
        "write a CSS selector such as the default {}, or remove the key to use it",
        toml_quote(default)
    );
    if text.trim().is_empty() {
        problems.push(SelectorProblem {
            key: key.to_string(),
            message: "is empty".to_string(),
            fix,
        });
        return None;
    }
    match Selector::parse(text) {
        Ok(selector) => Some(Css {
            key,
            text: text.to_string(),
            selector,
            fast: Matcher::parse(text),
        }),
        Err(e) => {
            let words = selector_error_words(text)
                .unwrap_or_else(|| format!("the selector engine refuses it ({e:?})"));
            problems.push(SelectorProblem {
                key: key.to_string(),
                message: format!("{} is not a valid CSS selector: {words}", toml_quote(text)),
                fix,
            });
            None
        }
    }
}

/// Split `sel::attr(name)` into the selector and the attribute.
fn split_attr(text: &str) -> Result<(&str, Option<&str>), String> {
    let t = text.trim_end();
    let Some(at) = t.rfind("::attr(") else {
        return Ok((text, None));
    };
    let Some(inner) = t[at + 7..].strip_suffix(')') else {
        return Err(format!(
            "at character {}, \"::attr(\" is not closed by \")\" at the end",
            text[..at].chars().count() + 1
        ));
    };
    let name = inner.trim();
    if name.is_empty() || ident_len(name) != name.len() {
        return Err(format!(
            "at character {}, \"::attr({inner})\" needs an attribute name such as data-value",
            text[..at].chars().count() + 1
        ));
    }
    Ok((&t[..at], Some(name)))
}

/// `unknown_guild`: what marks the site's "not found" page.
#[derive(Debug, Clone)]
pub(crate) enum NotFoundMarker {
    /// The page has an element matching this selector.
    Css(Css),
    /// The page's text contains these words (as [`match_key`] makes them).
    Text(String),
}

/// The prefix of an `unknown_guild` given as words rather than a selector.
pub(crate) const TEXT_MARKER_PREFIX: &str = "text:";

impl NotFoundMarker {
    /// Whether the page under `root` is the site's "not found" page.
    pub(crate) fn matches(&self, root: ElementRef<'_>) -> bool {
        match self {
            NotFoundMarker::Css(css) => css.first_in(root).is_some(),
            NotFoundMarker::Text(key) => match_key(&clean_text(root.text())).contains(key.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Selectors;

    #[test]
    fn defaults_compile() {
        let c = Selectors::default().compile().expect("defaults are valid");
        assert!(c.fast_rows(), "the default layout stays on the fast path");
        assert!(c.ranking.fast.is_some() && c.next_page.css.fast.is_some());
        assert_eq!(c.next_page.attr.as_deref(), Some("href"));
        assert!(
            c.player_table.fast.is_some()
                && c.player_row.fast.is_some()
                && c.player_header.css.fast.is_some()
                && c.player_cell.css.fast.is_some(),
            "the player page stays on the fast path"
        );
        assert_eq!(c.xp_column, "rawxpnodia");
    }

    fn problems(s: Selectors) -> Vec<SelectorProblem> {
        s.compile().expect_err("invalid")
    }

    #[test]
    fn unknown_guild_is_a_selector_or_words() {
        let with = |v: &str| Selectors {
            unknown_guild: v.into(),
            ..Selectors::default()
        };
        assert!(with("").compile().expect("valid").unknown_guild.is_none());
        assert!(matches!(
            with("div.not-found")
                .compile()
                .expect("valid")
                .unknown_guild,
            Some(NotFoundMarker::Css(_))
        ));
        match with("text: Guilda não  encontrada!")
            .compile()
            .expect("valid")
            .unknown_guild
        {
            Some(NotFoundMarker::Text(key)) => assert_eq!(key, "guildanãoencontrada"),
            other => panic!("{other:?}"),
        }
        for (value, words) in [
            ("div[[", "is not a valid CSS selector"),
            ("text: !!", "has no letters or digits"),
        ] {
            let got = problems(with(value));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].key, "unknown_guild");
            assert!(got[0].message.contains(words), "{}", got[0].message);
            assert!(got[0].fix.contains("text:"), "{}", got[0].fix);
        }
    }

    #[test]
    fn bad_selectors_are_plain_words_with_a_position() {
        let table: &[(Selectors, &str, &[&str])] = &[
            (
                Selectors {
                    rank: "td[[[".into(),
                    ..Selectors::default()
                },
                "rank",
                &["\"td[[[\"", "character 3", "never closed"],
            ),
            (
                Selectors {
                    name: "td.".into(),
                    ..Selectors::default()
                },
                "name",
                &["character", "class name"],
            ),
            (
                Selectors {
                    ranking_row: "tr >".into(),
                    ..Selectors::default()
                },
                "ranking_row",
                &["character"],
            ),
            (
                Selectors {
                    level: "td:frobnicate".into(),
                    ..Selectors::default()
                },
                "level",
                &["character 3", "not supported"],
            ),
            (
                Selectors {
                    experience: "span::attr(".into(),
                    ..Selectors::default()
                },
                "experience",
                &["character 5", "::attr("],
            ),
            (
                Selectors {
                    ranking: "div::attr(x)".into(),
                    ..Selectors::default()
                },
                "ranking",
                &["container"],
            ),
            (
                Selectors {
                    world_pattern: "(?P<world>.+".into(),
                    ..Selectors::default()
                },
                "world_pattern",
                &["character 1", "unclosed group"],
            ),
            (
                Selectors {
                    world_pattern: "(.+) Status".into(),
                    ..Selectors::default()
                },
                "world_pattern",
                &["named group `world`"],
            ),
            (
                Selectors {
                    routine: " 🔥 ".into(),
                    ..Selectors::default()
                },
                "routine",
                &["letters or digits"],
            ),
            (
                Selectors {
                    vocation: "  ".into(),
                    ..Selectors::default()
                },
                "vocation",
                &["is empty"],
            ),
            (
                Selectors {
                    xp_column: " → ".into(),
                    ..Selectors::default()
                },
                "xp_column",
                &["letters or digits"],
            ),
            (
                Selectors {
                    player_row: "tr >".into(),
                    ..Selectors::default()
                },
                "player_row",
                &["character"],
            ),
            (
                Selectors {
                    player_table: "table::attr(id)".into(),
                    ..Selectors::default()
                },
                "player_table",
                &["container"],
            ),
        ];
        for (s, key, words) in table {
            let p = problems(s.clone());
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].key, *key);
            for w in *words {
                assert!(
                    p[0].message.contains(w),
                    "{key}: {w:?} not in {:?}",
                    p[0].message
                );
            }
            assert!(!p[0].message.contains("report this"), "{:?}", p[0]);
            assert!(!p[0].fix.is_empty());
        }
        // Every bad key is reported, not only the first.
        let p = problems(Selectors {
            rank: "td[[[".into(),
            level: "::".into(),
            ..Selectors::default()
        });
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
