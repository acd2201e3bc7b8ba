//! The CSS matcher: [`Css`] (a selector compiled by the engine, plus a
//! fast matcher when it is simple enough) and [`Field`] (a selector whose
//! element gives a value).
//!
//! The fast matcher takes plain compound selectors joined by descendant or
//! child combinators and matches them by comparing names and attributes
//! directly (the selector engine costs far more per element). Anything
//! else falls back to the engine.

use scraper::{ElementRef, Selector};

use crate::site::text::clean_text;

/// An attribute test of a [`Compound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttrTest {
    /// `[attr]`
    Exists,
    /// `[attr=value]`
    Equals(String),
    /// `[attr~=value]`: one of its space-separated words.
    Word(String),
}

/// `tag.class#id[attr~=word]…` (each part optional, at least one present,
/// or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compound {
    tag: Option<String>,
    classes: Vec<String>,
    attrs: Vec<(String, AttrTest, bool)>,
}

/// How two compounds of a chain relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    /// `a b`
    Descendant,
    /// `a > b`
    Child,
}

/// `c0 comb c1 comb c2 …`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    compounds: Vec<Compound>,
    /// `combinators[i]` joins `compounds[i]` and `compounds[i + 1]`.
    combinators: Vec<Combinator>,
}

/// A selector list of [`Chain`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher(Vec<Chain>);

pub(super) fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(s.len())
}

/// Attributes whose values HTML compares ASCII-case-insensitively (the ones a
/// scraper may plausibly test; the engine handles the rest of the list).
fn case_insensitive_attr(name: &str) -> bool {
    matches!(
        name,
        "rel" | "type" | "lang" | "dir" | "target" | "hreflang" | "media" | "method" | "align"
    )
}

fn parse_compound(text: &str) -> Option<Compound> {
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    let universal = rest.starts_with('*');
    let tag = if universal {
        rest = &rest[1..];
        None
    } else {
        let n = ident_len(rest);
        let tag = (n > 0).then(|| rest[..n].to_ascii_lowercase());
        rest = &rest[n..];
        tag
    };
    let mut classes = Vec::new();
    let mut attrs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = ident_len(r);
            if n == 0 || r.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            classes.push(r[..n].to_string());
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('#') {
            let n = ident_len(r);
            if n == 0 || r.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            attrs.push((
                "id".to_string(),
                AttrTest::Equals(r[..n].to_string()),
                false,
            ));
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            let n = ident_len(inner);
            if n == 0 {
                return None;
            }
            let name = inner[..n].to_ascii_lowercase();
            let op = inner[n..].trim_start();
            let unquote = |v: &str| {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                (!v.is_empty() && !v.contains(['"', '\'', ' ', '\\', '[', ']']))
                    .then(|| v.to_string())
            };
            let test = if op.is_empty() {
                AttrTest::Exists
            } else if let Some(v) = op.strip_prefix("~=") {
                AttrTest::Word(unquote(v)?)
            } else if let Some(v) = op.strip_prefix('=') {
                AttrTest::Equals(unquote(v)?)
            } else {
                return None;
            };
            let ci = case_insensitive_attr(&name);
            attrs.push((name, test, ci));
        } else {
            return None;
        }
    }
    if !universal && tag.is_none() && classes.is_empty() && attrs.is_empty() {
        return None;
    }
    Some(Compound {
        tag,
        classes,
        attrs,
    })
}

/// Length of the compound at the start of `s` (up to whitespace or a
/// combinator outside brackets).
fn compound_len(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_whitespace() || matches!(c, '>' | '+' | '~' | ',')) => {
                return i;
            }
            _ => {}
        }
    }
    s.len()
}

fn parse_chain(text: &str) -> Option<Chain> {
    let mut rest = text.trim();
    let mut compounds = Vec::new();
    let mut combinators = Vec::new();
    loop {
        let n = compound_len(rest);
        if n == 0 {
            return None;
        }
        compounds.push(parse_compound(&rest[..n])?);
        rest = &rest[n..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        if let Some(r) = trimmed.strip_prefix('>') {
            combinators.push(Combinator::Child);
            rest = r.trim_start();
        } else if trimmed.len() < rest.len() {
            combinators.push(Combinator::Descendant);
            rest = trimmed;
        } else {
            return None;
        }
    }
    Some(Chain {
        compounds,
        combinators,
    })
}

/// An attribute's value, by comparing names directly: `Element::attr`
/// interns the name and `Element::has_class` interns every class of the
/// element on first use, which costs more than the whole match.
pub(crate) fn attr_of<'a>(el: &'a scraper::node::Element, name: &str) -> Option<&'a str> {
    el.attrs().find(|(n, _)| *n == name).map(|(_, v)| v)
}

impl Compound {
    fn matches(&self, el: &scraper::node::Element) -> bool {
        if self.tag.as_deref().is_some_and(|t| el.name() != t) {
            return false;
        }
        if !self.classes.is_empty() {
            let Some(class) = attr_of(el, "class") else {
                return false;
            };
            if !self
                .classes
                .iter()
                .all(|k| class.split_ascii_whitespace().any(|w| w == k))
            {
                return false;
            }
        }
        self.attrs
            .iter()
            .all(|(name, test, ci)| match (attr_of(el, name), test) {
                (None, _) => false,
                (Some(_), AttrTest::Exists) => true,
                (Some(v), AttrTest::Equals(want)) => {
                    if *ci {
                        v.eq_ignore_ascii_case(want)
                    } else {
                        v == want
                    }
                }
                (Some(v), AttrTest::Word(want)) => v.split_ascii_whitespace().any(|w| {
                    if *ci {
                        w.eq_ignore_ascii_case(want)
                    } else {
                        w == want
                    }
                }),
            })
    }
}

impl Chain {
    /// Whether `el` matches compounds `..=i` (right to left, backtracking
    /// over ancestors for descendant combinators).
    fn matches_upto(&self, i: usize, el: ElementRef<'_>) -> bool {
        if !self.compounds[i].matches(el.value()) {
            return false;
        }
        if i == 0 {
            return true;
        }
        match self.combinators[i - 1] {
            Combinator::Child => el
                .parent()
                .and_then(ElementRef::wrap)
                .is_some_and(|p| self.matches_upto(i - 1, p)),
            Combinator::Descendant => el
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| self.matches_upto(i - 1, a)),
        }
    }
}

impl Matcher {
    /// `Some` when `text` is a list of chains of plain compound selectors.
    pub(crate) fn parse(text: &str) -> Option<Matcher> {
        text.split(',')
            .map(parse_chain)
            .collect::<Option<Vec<_>>>()
            .map(Matcher)
    }

    /// Whether an element matches.
    pub(crate) fn matches(&self, el: ElementRef<'_>) -> bool {
        self.0
            .iter()
            .any(|c| c.matches_upto(c.compounds.len() - 1, el))
    }
}

/// A compiled CSS selector: the engine's, plus the fast matcher when the
/// selector is simple enough.
#[derive(Debug, Clone)]
pub struct Css {
    /// Config key.
    pub key: &'static str,
    /// The selector as written (without `::attr(…)`).
    pub text: String,
    pub(crate) selector: Selector,
    pub(crate) fast: Option<Matcher>,
}

impl Css {
    /// Whether an element matches.
    pub fn matches(&self, el: ElementRef<'_>) -> bool {
        match &self.fast {
            Some(m) => m.matches(el),
            None => self.selector.matches(&el),
        }
    }

    /// The elements under `scope` that match, in document order.
    pub fn select_in<'a>(&self, scope: ElementRef<'a>) -> Vec<ElementRef<'a>> {
        match &self.fast {
            Some(m) => {
                let mut out = Vec::new();
                walk_elements(scope, |e| {
                    if m.matches(e) {
                        out.push(e);
                    }
                    true
                });
                out
            }
            None => scope.select(&self.selector).collect(),
        }
    }

    /// The first element under `scope` that matches.
    pub fn first_in<'a>(&self, scope: ElementRef<'a>) -> Option<ElementRef<'a>> {
        match &self.fast {
            Some(m) => {
                let mut found = None;
                walk_elements(scope, |e| {
                    if found.is_none() && m.matches(e) {
                        found = Some(e);
                    }
                    found.is_none()
                });
                found
            }
            None => scope.select(&self.selector).next(),
        }
    }

    /// `key = "selector"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} = {:?}", self.key, self.text)
    }
}

/// A selector whose element gives a value: its text, or an attribute.
#[derive(Debug, Clone)]
pub struct Field {
    /// The element.
    pub css: Css,
    /// The attribute to read instead of the text.
    pub attr: Option<String>,
    /// The key's value as written.
    pub written: String,
}

impl Field {
    /// The value of a matched element: the attribute (trimmed), or the text
    /// with whitespace collapsed.
    pub fn value(&self, el: ElementRef<'_>) -> Option<String> {
        match &self.attr {
            Some(a) => attr_of(el.value(), a).map(|v| clean_text(std::iter::once(v))),
            None => Some(clean_text(el.text())),
        }
    }

    /// `key = "as written"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} = {:?}", self.css.key, self.written)
    }
}

/// Pre-order walk of the elements under `root` (not `root` itself);
/// `visit` returns whether to walk into the element's children.
pub(crate) fn walk_elements<'a>(
    root: ElementRef<'a>,
    mut visit: impl FnMut(ElementRef<'a>) -> bool,
) {
    let root_id = root.id();
    let mut cursor = root.first_child();
    while let Some(node) = cursor {
        let descend = ElementRef::wrap(node).is_some_and(&mut visit);
        cursor = descend.then(|| node.first_child()).flatten().or_else(|| {
            let mut n = node;
            loop {
                if let Some(sibling) = n.next_sibling() {
                    return Some(sibling);
                }
                match n.parent() {
                    Some(p) if p.id() != root_id => n = p,
                    _ => return None,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compound(tag: Option<&str>, classes: &[&str], attrs: Vec<(&str, AttrTest)>) -> Compound {
        Compound {
            tag: tag.map(str::to_string),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            attrs: attrs
                .into_iter()
                .map(|(n, t)| (n.to_string(), t, case_insensitive_attr(n)))
                .collect(),
        }
    }

    fn one(x: Compound) -> Option<Matcher> {
        Some(Matcher(vec![Chain {
            compounds: vec![x],
            combinators: vec![],
        }]))
    }

    #[test]
    fn fast_matchers_parse() {
        let c = compound;
        let table = [
            ("td.col-rank", one(c(Some("td"), &["col-rank"], vec![]))),
            ("TR", one(c(Some("tr"), &[], vec![]))),
            (".a.b", one(c(None, &["a", "b"], vec![]))),
            (
                "a[rel~=next], link[rel~=\"next\"]",
                Some(Matcher(vec![
                    Chain {
                        compounds: vec![c(
                            Some("a"),
                            &[],
                            vec![("rel", AttrTest::Word("next".into()))],
                        )],
                        combinators: vec![],
                    },
                    Chain {
                        compounds: vec![c(
                            Some("link"),
                            &[],
                            vec![("rel", AttrTest::Word("next".into()))],
                        )],
                        combinators: vec![],
                    },
                ])),
            ),
            (
                "a[href]",
                one(c(Some("a"), &[], vec![("href", AttrTest::Exists)])),
            ),
            (
                "a[x='y']",
                one(c(Some("a"), &[], vec![("x", AttrTest::Equals("y".into()))])),
            ),
            (
                "div#main",
                one(c(
                    Some("div"),
                    &[],
                    vec![("id", AttrTest::Equals("main".into()))],
                )),
            ),
            (
                "td.col-name a",
                Some(Matcher(vec![Chain {
                    compounds: vec![
                        c(Some("td"), &["col-name"], vec![]),
                        c(Some("a"), &[], vec![]),
                    ],
                    combinators: vec![Combinator::Descendant],
                }])),
            ),
            (
                "div.row>span.x",
                Some(Matcher(vec![Chain {
                    compounds: vec![
                        c(Some("div"), &["row"], vec![]),
                        c(Some("span"), &["x"], vec![]),
                    ],
                    combinators: vec![Combinator::Child],
                }])),
            ),
            ("td + td", None),
            ("td ~ td", None),
            ("td:nth-child(2)", None),
            ("a[rel^=n]", None),
            ("a[rel=n i]", None),
            ("td, ", None),
            ("td >", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(Matcher::parse(text), want, "{text}");
        }
    }

    #[test]
    fn fast_and_engine_agree() {
        let html = scraper::Html::parse_document(
            r#"<html><body><div id="main" class="x">
              <table class="t"><tr><td class="a b"><a rel="Next" href="1">1</a></td>
              <td class="b"><span><a href="2">2</a></span></td></tr></table>
              <ul><li class="a"><a>3</a></li></ul></div></body></html>"#,
        );
        let all: Vec<ElementRef<'_>> = html.root_element().descendent_elements().collect();
        for text in [
            "td.a",
            "td a",
            "td > a",
            "tr > td > a",
            "tr a",
            "table.t td.b a",
            "div#main li.a > a",
            "div a, li",
            "a[rel~=next]",
            "a[href=\"2\"]",
            ".b span a",
            "* > a",
            "body > div td",
            "div > td",
        ] {
            let m = Matcher::parse(text).unwrap_or_else(|| panic!("{text} is simple"));
            let s = Selector::parse(text).expect("valid");
            for el in &all {
                assert_eq!(
                    m.matches(*el),
                    s.matches(el),
                    "{text} on <{}>",
                    el.value().name()
                );
            }
        }
    }
}
