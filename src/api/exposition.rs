//! A strict parser of the Prometheus text exposition format (0.0.4), for
//! tests and benchmarks that check what `/metrics` serves. Test support
//! only: not in a release build.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels in order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

/// Parse `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("bad metric name `{name}`"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut s = after;
        loop {
            if let Some(r) = s.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = s.find('=').ok_or("label without `=`")?;
            let lname = &s[..eq];
            if !valid_label_name(lname) {
                return Err(format!("bad label name `{lname}`"));
            }
            if labels.iter().any(|(k, _): &(String, String)| k == lname) {
                return Err(format!("duplicate label `{lname}`"));
            }
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("label `{lname}` value not quoted"))?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape in label value: {other:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((lname.to_string(), value));
            s = &s[end + 1..];
            if let Some(r) = s.strip_prefix(',') {
                s = r;
            } else if let Some(r) = s.strip_prefix('}') {
                rest = r;
                break;
            } else {
                return Err("expected `,` or `}` after a label".into());
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut parts = rest.split(' ');
    let value_text = parts.next().ok_or("no value")?;
    let value = parse_value(value_text).ok_or_else(|| format!("bad value `{value_text}`"))?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp `{ts}`"))?;
    }
    if parts.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parse and validate Prometheus text exposition (format 0.0.4): every
/// line well-formed, `# TYPE` once per family and before its samples,
/// families contiguous, no duplicate series, text ending in a newline.
/// Returns the samples; the error names the line.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let err = |m: String| format!("line {n}: {m}: {line:?}");
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match words.next() {
                Some("TYPE") => {
                    let name = words
                        .next()
                        .ok_or_else(|| err("TYPE without name".into()))?;
                    let kind = words
                        .next()
                        .ok_or_else(|| err("TYPE without type".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err(format!("bad metric name `{name}`")));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err(format!("unknown type `{kind}`")));
                    }
                    if types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(err(format!("second TYPE for `{name}`")));
                    }
                    if finished.contains(name) || current.as_deref() == Some(name) {
                        return Err(err(format!("TYPE for `{name}` after its samples")));
                    }
                }
                Some("HELP") => {
                    let name = words
                        .next()
                        .ok_or_else(|| err("HELP without name".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err(format!("bad metric name `{name}`")));
                    }
                    if !helped.insert(name.to_string()) {
                        return Err(err(format!("second HELP for `{name}`")));
                    }
                }
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(err)?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = sample.name.strip_suffix(suffix)?;
                matches!(
                    types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                )
                .then(|| base.to_string())
            })
            .unwrap_or_else(|| sample.name.clone());
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(err(format!("samples of `{family}` are not contiguous")));
            }
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            current = Some(family.clone());
        }
        if types.get(&family).is_some_and(|k| k == "counter")
            && (sample.value < 0.0 || sample.value.is_nan())
        {
            return Err(err("negative or NaN counter".into()));
        }
        let mut key = sample.name.clone();
        let mut sorted = sample.labels.clone();
        sorted.sort();
        for (k, v) in &sorted {
            let _ = write!(key, "\u{0}{k}\u{0}{v}");
        }
        if !series.insert(key) {
            return Err(err("duplicate series".into()));
        }
        samples.push(sample);
    }
    Ok(samples)
}
