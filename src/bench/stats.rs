//! Summary statistics for benchmark samples.

use serde::{Deserialize, Serialize};

/// p50 / p95 / max (and count, mean) of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The `q`-quantile (0.0–1.0) of samples, nearest-rank on sorted data with
/// linear interpolation between neighbours. `None` for no samples.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Summarize samples; all zeros for no samples.
pub fn summarize(samples: &[f64]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    Summary {
        count: samples.len(),
        p50: percentile(samples, 0.5).unwrap_or(0.0),
        p95: percentile(samples, 0.95).unwrap_or(0.0),
        max: samples.iter().copied().fold(f64::MIN, f64::max),
        mean: samples.iter().sum::<f64>() / samples.len() as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_table() {
        let table: &[(&[f64], f64, Option<f64>)] = &[
            (&[], 0.5, None),
            (&[7.0], 0.5, Some(7.0)),
            (&[7.0], 0.95, Some(7.0)),
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5, Some(3.0)),
            (&[5.0, 1.0, 4.0, 2.0, 3.0], 0.5, Some(3.0)),
            (&[1.0, 2.0, 3.0, 4.0], 0.5, Some(2.5)),
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0, Some(1.0)),
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 1.0, Some(5.0)),
            (&[0.0, 10.0], 0.95, Some(9.5)),
        ];
        for (samples, q, want) in table {
            assert_eq!(
                percentile(samples, *q),
                *want,
                "percentile({samples:?}, {q})"
            );
        }
    }

    #[test]
    fn summary_of_samples() {
        let s = summarize(&[10.0, 20.0, 30.0, 40.0, 100.0]);
        assert_eq!(s.count, 5);
        assert_eq!(s.p50, 30.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(s.mean, 40.0);
        assert!((s.p95 - 88.0).abs() < 1e-9, "{}", s.p95);
        assert_eq!(summarize(&[]), Summary::default());
    }
}
