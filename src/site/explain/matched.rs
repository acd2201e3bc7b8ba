//! What one key matched in its scope or scopes, as a [`SelectorReport`].

use scraper::ElementRef;

use super::nearest::nearest;
use super::report::{FIRST, SelectorReport, clip};
use crate::site::parse;
use crate::site::selectors::{Css, Field};

pub(super) fn css_report<'a>(
    css: &Css,
    scope_name: &str,
    scope: ElementRef<'a>,
    required: bool,
) -> (SelectorReport, Vec<ElementRef<'a>>) {
    let found = css.select_in(scope);
    let report = SelectorReport {
        key: css.describe(),
        scope: scope_name.to_string(),
        count: found.len(),
        of: None,
        first: found
            .iter()
            .take(FIRST)
            .map(|e| clip(&parse::clean_text(e.text()), 60))
            .collect(),
        nearest: Vec::new(),
        why: String::new(),
        note: None,
        ok: !found.is_empty() || !required,
        checked: true,
    };
    let mut report = report;
    if found.is_empty() {
        (report.nearest, report.why) = nearest(scope, &css.text);
    }
    (report, found)
}

/// A value field looked for in each of `scopes`: how many hold it, the
/// first values, and the nearest elements of the first scope when none
/// does.
pub(super) fn field_report(
    field: &Field,
    scope_name: &str,
    scopes: &[ElementRef<'_>],
    fallback_scope: ElementRef<'_>,
) -> SelectorReport {
    let mut count = 0;
    let mut first = Vec::new();
    let mut lacking_attr = 0;
    for s in scopes {
        if let Some(el) = field.css.first_in(*s) {
            count += 1;
            match field.value(el) {
                Some(v) => {
                    if first.len() < FIRST {
                        first.push(v);
                    }
                }
                None => lacking_attr += 1,
            }
        }
    }
    let note = (lacking_attr > 0).then(|| {
        format!(
            "{lacking_attr} of the elements found lack the attribute `{}`",
            field.attr.as_deref().unwrap_or("")
        )
    });
    if scopes.is_empty() {
        return SelectorReport::not_checked(field.describe(), scope_name);
    }
    let (nearest, why) = if count == 0 {
        nearest(
            scopes.first().copied().unwrap_or(fallback_scope),
            &field.css.text,
        )
    } else {
        (Vec::new(), String::new())
    };
    SelectorReport {
        key: field.describe(),
        scope: scope_name.to_string(),
        count,
        of: Some(scopes.len()),
        first,
        nearest,
        why,
        note,
        ok: count == scopes.len() && lacking_attr == 0,
        checked: true,
    }
}
