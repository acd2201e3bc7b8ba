//! Nearest elements: for a selector that matched nothing, the elements of
//! the scope that look closest (by tag and class, or by text).

use std::collections::HashMap;

use scraper::ElementRef;

use super::report::clip;
use crate::site::parse;
use crate::site::selectors::walk_elements;

/// How many nearest elements a line shows.
pub(super) const NEAREST: usize = 5;

/// What a selector asks for, roughly: tag, classes, attribute names of its
/// last compound.
#[derive(Debug, Default)]
struct Wanted {
    tag: Option<String>,
    classes: Vec<String>,
    attrs: Vec<String>,
}

fn wanted(selector: &str) -> Vec<Wanted> {
    selector.split(',').map(wanted_one).collect()
}

fn wanted_one(alternative: &str) -> Wanted {
    let last = alternative
        .split(|c: char| c.is_whitespace() || matches!(c, '>' | '+' | '~'))
        .rfind(|s| !s.is_empty())
        .unwrap_or("");
    let mut w = Wanted::default();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
            .collect()
    };
    let tag = ident(last);
    if !tag.is_empty() {
        w.tag = Some(tag.to_ascii_lowercase());
    }
    let mut rest = last;
    while let Some(i) = rest.find(['.', '[', ':', '#']) {
        let (mark, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        match mark {
            b'.' => w.classes.push(ident(after)),
            b'[' => w.attrs.push(ident(after.trim_start()).to_ascii_lowercase()),
            b'#' => w.attrs.push("id".to_string()),
            _ => {}
        }
        rest = after;
    }
    w.classes.retain(|c| !c.is_empty());
    w.attrs.retain(|a| !a.is_empty());
    w
}

fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a.len() >= 3 && b.len() >= 3 && (a.contains(&b) || b.contains(&a)) {
        return true;
    }
    // The same after a common prefix such as "col-": "col-xp" ~ "col-exp".
    let strip = |s: &str| s.rsplit(['-', '_']).next().unwrap_or(s).to_string();
    let (sa, sb) = (strip(&a), strip(&b));
    sa.len() >= 2 && sb.len() >= 2 && (sa.contains(&sb) || sb.contains(&sa))
}

/// `tag.class1.class2`.
pub(super) fn signature(el: ElementRef<'_>) -> String {
    let mut s = el.value().name().to_string();
    for c in el.value().classes() {
        s.push('.');
        s.push_str(c);
    }
    s
}

const SKIP: [&str; 9] = [
    "html", "head", "meta", "title", "link", "script", "style", "br", "body",
];

struct Group {
    count: usize,
    score: usize,
    sample: String,
    order: usize,
}

fn format_groups(mut list: Vec<(String, Group)>) -> Vec<String> {
    list.sort_by(|a, b| {
        b.1.score
            .cmp(&a.1.score)
            .then(b.1.count.cmp(&a.1.count))
            .then(a.1.order.cmp(&b.1.order))
    });
    list.into_iter()
        .take(NEAREST)
        .map(|(sig, g)| {
            if g.sample.is_empty() {
                format!("{sig} ×{}", g.count)
            } else {
                format!("{sig} ×{} {:?}", g.count, g.sample)
            }
        })
        .collect()
}

fn score(el: ElementRef<'_>, want: &Wanted) -> usize {
    let name = el.value().name();
    let classes: Vec<&str> = el.value().classes().collect();
    let mut score = 0;
    if want.tag.as_deref() == Some(name) {
        score += 2;
    }
    for c in &want.classes {
        if classes.contains(&c.as_str()) {
            score += 3;
        } else if classes.iter().any(|k| similar(k, c)) {
            score += 2;
        }
    }
    for a in &want.attrs {
        if el.value().attr(a).is_some() {
            score += 2;
        }
    }
    score
}

/// The elements under `scope` that look closest to what `selector` asks
/// for: grouped by tag and classes, scored by a shared tag, shared or
/// similar classes and attributes; the most common ones when nothing is
/// alike.
pub(super) fn nearest(scope: ElementRef<'_>, selector: &str) -> (Vec<String>, String) {
    let wants = wanted(selector);
    let mut groups: HashMap<String, Group> = HashMap::new();
    walk_elements(scope, |el| {
        let name = el.value().name();
        if SKIP.contains(&name) {
            return name != "head" && name != "script" && name != "style";
        }
        let order = groups.len();
        let g = groups.entry(signature(el)).or_insert_with(|| Group {
            count: 0,
            score: wants.iter().map(|w| score(el, w)).max().unwrap_or(0),
            sample: clip(&parse::clean_text(el.text()), 30),
            order,
        });
        g.count += 1;
        true
    });
    let mut list: Vec<(String, Group)> = groups.into_iter().collect();
    let alike = list.iter().any(|(_, g)| g.score > 0);
    if alike {
        list.retain(|(_, g)| g.score > 0);
    }
    let why = if alike {
        "alike by tag, class or attribute"
    } else {
        "nothing alike by tag or class; the most common ones"
    };
    (format_groups(list), why.to_string())
}

/// The innermost elements under `scope` whose text satisfies `pred` (an
/// element whose child elements satisfy it too is not listed), grouped by
/// tag and classes.
pub(super) fn nearest_by_text(scope: ElementRef<'_>, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    walk_elements(scope, |el| {
        let name = el.value().name();
        if SKIP.contains(&name) {
            return name != "head" && name != "script" && name != "style";
        }
        let text = parse::clean_text(el.text());
        if !pred(&text) {
            return false;
        }
        let inner = el
            .children()
            .filter_map(ElementRef::wrap)
            .any(|c| pred(&parse::clean_text(c.text())));
        if !inner {
            let order = groups.len();
            let g = groups.entry(signature(el)).or_insert_with(|| Group {
                count: 0,
                score: 0,
                sample: clip(&text, 30),
                order,
            });
            g.count += 1;
        }
        true
    });
    format_groups(groups.into_iter().collect())
}

/// Elements that hold at least two element children of one kind (lists,
/// tables, row containers): `tag.class (N × child.kind)`.
pub(super) fn list_containers(scope: ElementRef<'_>) -> Vec<String> {
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    walk_elements(scope, |el| {
        if SKIP.contains(&el.value().name()) && el.value().name() != "body" {
            return false;
        }
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for c in el.children().filter_map(ElementRef::wrap) {
            *kinds.entry(signature(c)).or_default() += 1;
        }
        if let Some((kind, n)) = kinds.into_iter().max_by_key(|(_, n)| *n)
            && n >= 2
        {
            let order = out.len();
            out.push((n, order, format!("{} ({n} × {kind})", signature(el))));
        }
        true
    });
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.into_iter().take(NEAREST).map(|(_, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    #[test]
    fn nearest_ranks_shared_and_similar_classes_first() {
        let doc = Html::parse_document(
            r#"<html><body><div class="x"><span class="level">1</span><span class="lvl">2</span><b>3</b></div></body></html>"#,
        );
        let (got, _) = nearest(doc.root_element(), "span.lvl-x");
        assert!(got[0].starts_with("span.lvl"), "{got:?}");
        assert_eq!(
            wanted("div.a > td.b.c[data-x]::attr(y)")[0].classes,
            ["b", "c"]
        );
    }
}
