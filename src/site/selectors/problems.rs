//! Diagnostics: [`SelectorProblem`], and plain words for a selector or a
//! pattern that does not parse (with the position).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

pub(super) fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One problem of `[site.selectors]` (key without the `site.selectors.`
/// prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorProblem {
    /// The key, e.g. `rank`.
    pub key: String,
    /// What is wrong, in plain words, with the position.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for SelectorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "site.selectors.{}: {} (fix: {})",
            self.key, self.message, self.fix
        )
    }
}

impl SelectorProblem {
    /// A key that failed without a problem of its own: a bug.
    pub(super) fn internal() -> SelectorProblem {
        SelectorProblem {
            key: "(internal)".to_string(),
            message: "a selector failed to compile without a reason".to_string(),
            fix: "report this as a bug".to_string(),
        }
    }
}

/// Pseudo-classes the selector engine knows.
const PSEUDO_CLASSES: [&str; 18] = [
    "first-child",
    "last-child",
    "only-child",
    "root",
    "empty",
    "scope",
    "first-of-type",
    "last-of-type",
    "only-of-type",
    "nth-child",
    "nth-last-child",
    "nth-of-type",
    "nth-last-of-type",
    "not",
    "is",
    "where",
    "has",
    "any",
];

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '-' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// The first mistake in a selector that a reader would point at: its byte
/// offset and what is wrong, in plain words.
fn locate_selector_mistake(text: &str) -> Option<(usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut i = 0;
    let mut depth = 0usize; // parentheses
    let mut expect_compound = true; // at the start, after a comma or combinator
    let mut after_combinator: Option<usize> = None;
    while let Some(c) = at(i) {
        match c {
            '[' => {
                let start = i;
                let close = (i + 1..chars.len()).find(|&j| at(j) == Some(']'));
                let Some(close) = close else {
                    return Some((byte(start), "\"[\" is never closed by \"]\"".to_string()));
                };
                let inner: String = chars[i + 1..close].iter().map(|&(_, c)| c).collect();
                static ATTR: LazyLock<Regex> = LazyLock::new(|| {
                    Regex::new(
                        r#"^\s*[A-Za-z_-][A-Za-z0-9_-]*\s*(?:[~|^$*]?=\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:[iIsS]\s*)?)?$"#,
                    )
                    .expect("a constant, valid pattern")
                });
                if !ATTR.is_match(&inner) {
                    let what = if inner.trim().is_empty()
                        || !inner.trim_start().starts_with(is_ident_start)
                    {
                        "an attribute test \"[…]\" needs an attribute name first, e.g. [rel~=next] or [data-value]"
                    } else {
                        "an attribute test must read [name], [name=value], [name~=value] (also |= ^= $= *=), with a quoted value if it holds spaces"
                    };
                    return Some((byte(start), what.to_string()));
                }
                i = close + 1;
                expect_compound = false;
                after_combinator = None;
                continue;
            }
            ']' => return Some((byte(i), "\"]\" closes nothing".to_string())),
            '.' | '#' => {
                if !at(i + 1).is_some_and(is_ident_start) {
                    let what = if c == '.' {
                        "\".\" must be followed by a class name, e.g. td.col-xp"
                    } else {
                        "\"#\" must be followed by an id, e.g. div#ranking"
                    };
                    return Some((byte(i), what.to_string()));
                }
                expect_compound = false;
                after_combinator = None;
            }
            ':' => {
                let double = at(i + 1) == Some(':');
                let name_start = if double { i + 2 } else { i + 1 };
                let mut j = name_start;
                while at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                let name: String = chars[name_start..j].iter().map(|&(_, c)| c).collect();
                if name.is_empty() {
                    return Some((
                        byte(i),
                        "\":\" must be followed by a pseudo-class name, e.g. :nth-child(2)"
                            .to_string(),
                    ));
                }
                if double || !PSEUDO_CLASSES.contains(&name.to_ascii_lowercase().as_str()) {
                    return Some((
                        byte(i),
                        format!(
                            "{}{name} is not supported (use :nth-child(), :first-child, :not(), :has(), …; to read an attribute end the value with ::attr(name))",
                            if double { "::" } else { ":" }
                        ),
                    ));
                }
                expect_compound = false;
                after_combinator = None;
                i = j;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                if depth == 0 {
                    return Some((byte(i), "\")\" closes nothing".to_string()));
                }
                depth -= 1;
            }
            '>' | '+' | '~' => {
                if expect_compound && depth == 0 {
                    let what = if after_combinator.is_some() {
                        format!("two combinators in a row: \"{c}\" follows another")
                    } else {
                        format!("the combinator \"{c}\" has no selector before it")
                    };
                    return Some((byte(i), what));
                }
                expect_compound = true;
                after_combinator = Some(i);
            }
            ',' if depth == 0 => {
                if expect_compound {
                    return Some((
                        byte(i),
                        "a selector is missing before \",\" (two commas in a row, or a combinator before it?)"
                            .to_string(),
                    ));
                }
                expect_compound = true;
                after_combinator = None;
            }
            '{' | '}' | ';' | '@' | '!' | '"' | '\'' | '/' | '\\' | '$' | '%' | '&' | '=' | '^'
            | '?' | '<' => {
                return Some((
                    byte(i),
                    format!("\"{c}\" has no meaning in a CSS selector here"),
                ));
            }
            c if c.is_whitespace() => {}
            '*' => {
                expect_compound = false;
                after_combinator = None;
            }
            c if is_ident_char(c) => {
                expect_compound = false;
                after_combinator = None;
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        let open = (0..chars.len()).rev().find(|&j| at(j) == Some('('));
        return Some((
            byte(open.unwrap_or(0)),
            "\"(\" is never closed by \")\"".to_string(),
        ));
    }
    if expect_compound {
        let what = match after_combinator {
            Some(_) => "the selector ends with a combinator that has nothing after it",
            None => "the selector ends where a selector is expected (a trailing \",\"?)",
        };
        return Some((
            byte(after_combinator.unwrap_or(chars.len())),
            what.to_string(),
        ));
    }
    None
}

/// Plain words for a selector the engine refuses, with the position.
pub(super) fn selector_error_words(text: &str) -> Option<String> {
    use selectors::parser::{ParseRelative, SelectorList};
    let mut parser = cssparser::Parser::new(text);
    let err = match SelectorList::<scraper::selector::Simple>::parse(
        &scraper::selector::Parser,
        &mut parser,
        ParseRelative::No,
    ) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let (offset, what) = locate_selector_mistake(text).unwrap_or_else(|| {
        // Not a mistake the scan knows: where the engine stopped, and its
        // reason in its own terms.
        let stopped = parser.position().byte_index().min(text.len());
        let reason = match err.kind {
            cssparser::ParseErrorKind::Basic(k) => k.to_string(),
            cssparser::ParseErrorKind::Custom(k) => format!("{k:?}"),
        };
        (
            stopped,
            format!("the selector cannot be read from here on ({reason})"),
        )
    });
    let mut cut = offset.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(format!(
        "at character {}, {what}",
        text[..cut].chars().count() + 1
    ))
}

/// Plain words for a regex error, with its position.
pub(super) fn regex_error_words(pattern: &str) -> Option<String> {
    match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(e) => Some(format!(
            "at character {}, {}",
            e.span().start.column,
            e.kind()
        )),
        Ok(_) => match Regex::new(pattern) {
            Ok(_) => None,
            Err(regex::Error::Syntax(s)) => Some(
                s.lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .map(|l| l.trim_start_matches("error:").trim().to_string())
                    .unwrap_or(s),
            ),
            Err(e) => Some(e.to_string()),
        },
    }
}
