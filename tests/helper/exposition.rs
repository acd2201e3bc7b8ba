//! What `/metrics` serves, read with `openmetrics-parser` (the Prometheus
//! text format 0.0.4: its grammar, a family's samples together after their
//! `# TYPE`, one label set each, escapes decoded) into flat samples that a
//! test looks up by name and labels. The unit tests of `src/api` read it
//! too (`crate::api::exposition`, included from this file).

/// One sample: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// The labels, values unescaped, sorted by name.
    pub labels: Vec<(String, String)>,
    /// The value.
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

/// Parse and check exposition text; the error says what is wrong.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    use openmetrics_parser::PrometheusValue;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let exposition =
        openmetrics_parser::prometheus::parse_prometheus(text).map_err(|e| format!("{e:?}"))?;
    let mut samples = Vec::new();
    for (name, family) in &exposition.families {
        for sample in family.iter_samples() {
            let labels = sample
                .get_labelset()
                .map_err(|e| format!("{name}: {e:?}"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &sample.value {
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                other => return Err(format!("{name}: not a counter or a gauge: {other:?}")),
            };
            samples.push(Sample {
                name: name.clone(),
                labels,
                value,
            });
        }
    }
    Ok(samples)
}
