//! The exposition text format (Prometheus 0.0.4), written by hand:
//! families and samples.

use std::fmt::Write as _;

/// Escape a label value (`\`, `"`, newline).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes exposition text (families and samples).
pub(super) struct Writer {
    pub(super) out: String,
}

impl Writer {
    /// An empty text with room for `capacity` bytes.
    pub(super) fn with_capacity(capacity: usize) -> Writer {
        Writer {
            out: String::with_capacity(capacity),
        }
    }

    /// A family's `# HELP` and `# TYPE` lines.
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample: name, labels (values escaped), value.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        if value.is_nan() {
            self.out.push_str(" NaN\n");
        } else if value.is_infinite() {
            self.out
                .push_str(if value > 0.0 { " +Inf\n" } else { " -Inf\n" });
        } else {
            let _ = writeln!(self.out, " {value}");
        }
    }
}
