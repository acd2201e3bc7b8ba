//! A synthetic history of deltas, for benchmarks that need a big store
//! fast (`cargo bench --bench compat`, `worldpool bench --hostile`): loaded
//! through [`Store::import`](crate::store::Store::import) in one
//! transaction.

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::store::{ImportBatch, ImportDelta, ImportPlayer};

/// The site's offset of the history (UTC−3, as the real site).
pub fn site_offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or_else(|| unreachable!("a valid offset"))
}

/// The first update of the history.
pub fn start() -> DateTime<FixedOffset> {
    site_offset()
        .with_ymd_and_hms(2026, 1, 1, 10, 10, 0)
        .single()
        .unwrap_or_else(|| unreachable!("a valid time"))
}

/// The name of world `w` in the history.
pub fn world(w: usize) -> String {
    format!("World {w}")
}

/// About `target` deltas over `worlds` × `players`: every 10 minutes about
/// half of the players of every world gain (a deterministic pattern), and
/// every player's latest experience.
pub fn synthetic(target: usize, worlds: usize, players: usize) -> ImportBatch {
    let per_update = (worlds * players / 2).max(1);
    let updates = target.div_ceil(per_update);
    let mut batch = ImportBatch::default();
    batch.deltas.reserve(target);
    let mut totals = vec![0i64; worlds * players];
    for u in 0..updates {
        let t = start() + chrono::Duration::minutes(10 * u as i64);
        let prev = (u > 0).then(|| t - chrono::Duration::minutes(10));
        for w in 0..worlds {
            for p in 0..players {
                if (p * 7 + u * 13 + w) % 2 != 0 || batch.deltas.len() >= target {
                    continue;
                }
                let d = 1_000 + ((p * 31 + u * 17 + w * 5) % 997) as i64 * 1_000;
                totals[w * players + p] += d;
                batch.deltas.push(ImportDelta {
                    world: world(w),
                    name: format!("Player {w}-{p:03}"),
                    guild: format!("Guild {}", p % 4),
                    delta: d,
                    update_time: t,
                    previous_update_time: prev,
                });
            }
        }
    }
    let last = batch.deltas.last().map_or(start(), |d| d.update_time);
    for w in 0..worlds {
        for p in 0..players {
            batch.players.push(ImportPlayer {
                world: world(w),
                name: format!("Player {w}-{p:03}"),
                guild: format!("Guild {}", p % 4),
                experience: totals[w * players + p],
                update_time: last,
            });
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_the_target_and_every_player() {
        let b = synthetic(1_000, 5, 200);
        assert_eq!(b.deltas.len(), 1_000);
        assert_eq!(b.players.len(), 1_000);
        assert!(b.deltas.iter().all(|d| d.delta > 0));
    }
}
