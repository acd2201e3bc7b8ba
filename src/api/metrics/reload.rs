//! Config reloads: `worldpool_reloads_total{outcome}`.

use super::writer::Writer;
use crate::reload::ReloadStats;

/// `worldpool_reloads_total{outcome}` (zeros without a reloader).
pub fn render(stats: Option<&ReloadStats>) -> String {
    let (applied, failed) = stats.map(ReloadStats::counts).unwrap_or((0, 0));
    let mut w = Writer::with_capacity(256);
    w.family(
        "worldpool_reloads_total",
        "counter",
        "Config reloads since the pool started, by outcome \
         (applied, or failed: the config in force kept running).",
    );
    w.sample(
        "worldpool_reloads_total",
        &[("outcome", "applied")],
        applied as f64,
    );
    w.sample(
        "worldpool_reloads_total",
        &[("outcome", "failed")],
        failed as f64,
    );
    w.out
}
