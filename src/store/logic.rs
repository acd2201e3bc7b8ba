//! The pure decisions of a run: which kind of pass it is (first, normal,
//! rebase after the daily reset) and which deltas it records; and for a
//! watched player's read, what it records ([`vip_outcome`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, FixedOffset, NaiveTime};
use serde::Serialize;

use super::vip::{VipDaily, VipDelta, VipReadOutcome};

/// One player as scraped, with the guild it was counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrapedPlayer {
    /// Player name.
    pub name: String,
    /// Guild (first in config order when listed in two).
    pub guild: String,
    /// Vocation.
    pub vocation: String,
    /// Level.
    pub level: u32,
    /// Experience gained today, as the site shows it.
    pub experience: i64,
}

/// A delta about to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NewDelta {
    /// Player name.
    pub name: String,
    /// Guild.
    pub guild: String,
    /// Experience gained since the previous update.
    pub delta: i64,
}

/// What kind of pass a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Nothing was processed for this world before: every player is new.
    First,
    /// An ordinary update: deltas against the stored experience.
    Normal,
    /// The first update after the daily reset at `boundary`: every player
    /// is re-based, no deltas.
    Rebase {
        /// The reset instant this pass re-bases for.
        boundary: DateTime<FixedOffset>,
    },
}

/// The latest daily reset at or before `t` (in `t`'s own offset).
pub fn reset_boundary(t: DateTime<FixedOffset>, reset_minutes: u32) -> DateTime<FixedOffset> {
    let reset = NaiveTime::from_hms_opt(reset_minutes / 60 % 24, reset_minutes % 60, 0)
        .unwrap_or(NaiveTime::MIN);
    let local = t.naive_local();
    let mut day = local.date();
    if local.time() < reset {
        day -= Duration::days(1);
    }
    let naive = day.and_time(reset);
    // A fixed offset has no gaps: `single()` always succeeds.
    naive.and_local_timezone(*t.offset()).single().unwrap_or(t)
}

/// Decide the kind of pass for update `t`, given the last processed update
/// of the world and the last reset it re-based for.
pub fn pass_kind(
    last_update: Option<DateTime<FixedOffset>>,
    last_rebase: Option<DateTime<FixedOffset>>,
    t: DateTime<FixedOffset>,
    reset_minutes: u32,
) -> PassKind {
    let Some(prev) = last_update else {
        return PassKind::First;
    };
    let boundary = reset_boundary(t, reset_minutes);
    if prev < boundary && last_rebase != Some(boundary) {
        PassKind::Rebase { boundary }
    } else {
        PassKind::Normal
    }
}

/// Keep the first occurrence of every name (config order of guilds).
pub fn dedupe_players(players: &[ScrapedPlayer]) -> Vec<ScrapedPlayer> {
    let mut seen = HashSet::new();
    players
        .iter()
        .filter(|p| seen.insert(p.name.clone()))
        .cloned()
        .collect()
}

/// The deltas of a pass: a new player's delta is its whole value, a player
/// whose experience grew gets the difference, an unchanged one nothing. A
/// player whose counter went down (a reset we did not see coming) is
/// re-based silently. A re-basing pass records nothing.
pub fn compute_deltas(
    previous: &HashMap<String, i64>,
    players: &[ScrapedPlayer],
    kind: PassKind,
) -> Vec<NewDelta> {
    if matches!(kind, PassKind::Rebase { .. }) {
        return Vec::new();
    }
    players
        .iter()
        .filter_map(|p| {
            let delta = match previous.get(&p.name) {
                None => p.experience,
                Some(&old) if p.experience > old => p.experience - old,
                Some(_) => 0,
            };
            (delta > 0).then(|| NewDelta {
                name: p.name.clone(),
                guild: p.guild.clone(),
                delta,
            })
        })
        .collect()
}

/// What a read of a watched player records, given the previous stored
/// read of that player (its latest daily row), like a run's pass:
///
/// - no previous read: a baseline (the day's numbers, no delta);
/// - a previous read at this update time or later: nothing
///   ([`VipReadOutcome::AlreadyStored`]; a replayed read is not stored
///   twice);
/// - the daily reset (`reset_minutes`) lies between the two reads, or the
///   page's day changed, or a counter went down (a reset not seen
///   coming): re-based, no delta;
/// - neither number changed: the read is kept, no delta;
/// - otherwise a delta row with both differences.
pub fn vip_outcome(prev: Option<&VipDaily>, read: &VipDaily, reset_minutes: u32) -> VipReadOutcome {
    let Some(prev) = prev else {
        return VipReadOutcome::Baseline;
    };
    if prev.update_time >= read.update_time {
        return VipReadOutcome::AlreadyStored;
    }
    let boundary = reset_boundary(read.update_time, reset_minutes);
    let delta_exp = read.raw_xp - prev.raw_xp;
    let delta_online = read.online_minutes - prev.online_minutes;
    if prev.update_time < boundary || prev.date != read.date || delta_exp < 0 || delta_online < 0 {
        return VipReadOutcome::Rebased;
    }
    if delta_exp == 0 && delta_online == 0 {
        return VipReadOutcome::Unchanged;
    }
    VipReadOutcome::Delta(VipDelta {
        world: read.world.clone(),
        name: read.name.clone(),
        date: read.date,
        delta_exp,
        delta_online,
        update_time: read.update_time,
        prev_update_time: Some(prev.update_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<FixedOffset> {
        FixedOffset::west_opt(3 * 3600)
            .expect("offset")
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .expect("time")
    }

    const RESET: u32 = 10 * 60 + 2;

    #[test]
    fn boundaries() {
        let table = [
            (at(29, 10, 2), at(29, 10, 2)),
            (at(29, 10, 1), at(28, 10, 2)),
            (at(29, 23, 59), at(29, 10, 2)),
            (at(29, 0, 0), at(28, 10, 2)),
        ];
        for (t, want) in table {
            assert_eq!(reset_boundary(t, RESET), want, "{t}");
        }
    }

    #[test]
    fn pass_kinds() {
        let b = at(29, 10, 2);
        let table = [
            // (last_update, last_rebase, t, want)
            (None, None, at(29, 9, 0), PassKind::First),
            (None, None, at(29, 11, 0), PassKind::First),
            (Some(at(29, 9, 50)), None, at(29, 10, 0), PassKind::Normal),
            (
                Some(at(29, 10, 0)),
                None,
                at(29, 10, 10),
                PassKind::Rebase { boundary: b },
            ),
            // Already re-based for this boundary (e.g. re-processing).
            (
                Some(at(29, 10, 0)),
                Some(b),
                at(29, 10, 10),
                PassKind::Normal,
            ),
            (
                Some(at(29, 10, 10)),
                Some(b),
                at(29, 10, 20),
                PassKind::Normal,
            ),
            // A day offline: the counters were reset in between.
            (
                Some(at(27, 12, 0)),
                Some(at(27, 10, 2)),
                at(29, 9, 0),
                PassKind::Rebase {
                    boundary: at(28, 10, 2),
                },
            ),
        ];
        for (last, rebase, t, want) in table {
            assert_eq!(pass_kind(last, rebase, t, RESET), want, "{last:?} {t}");
        }
    }

    fn p(name: &str, guild: &str, xp: i64) -> ScrapedPlayer {
        ScrapedPlayer {
            name: name.into(),
            guild: guild.into(),
            vocation: "Druid".into(),
            level: 1,
            experience: xp,
        }
    }

    #[test]
    fn deltas() {
        let prev: HashMap<String, i64> = [
            ("a".to_string(), 100),
            ("b".to_string(), 50),
            ("c".to_string(), 70),
        ]
        .into();
        let now = vec![
            p("a", "G", 150),
            p("b", "G", 50),
            p("c", "G", 10),
            p("n", "H", 30),
            p("z", "H", 0),
        ];
        let got = compute_deltas(&prev, &now, PassKind::Normal);
        assert_eq!(
            got,
            vec![
                NewDelta {
                    name: "a".into(),
                    guild: "G".into(),
                    delta: 50
                },
                NewDelta {
                    name: "n".into(),
                    guild: "H".into(),
                    delta: 30
                },
            ]
        );
        let first = compute_deltas(&HashMap::new(), &now, PassKind::First);
        assert_eq!(first.len(), 4);
        assert_eq!(first[0].delta, 150);
        assert!(
            compute_deltas(
                &prev,
                &now,
                PassKind::Rebase {
                    boundary: at(29, 10, 2)
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn first_guild_wins() {
        let got = dedupe_players(&[p("a", "G1", 1), p("b", "G1", 2), p("a", "G2", 3)]);
        assert_eq!(got, vec![p("a", "G1", 1), p("b", "G1", 2)]);
    }

    fn vip(day: u32, xp: i64, online: i64, t: DateTime<FixedOffset>) -> VipDaily {
        VipDaily {
            world: "Aurera".into(),
            name: "Zé".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, day).expect("date"),
            raw_xp: xp,
            online_minutes: online,
            update_time: t,
        }
    }

    #[test]
    fn vip_outcomes() {
        let base = vip(29, 1_000, 30, at(29, 11, 0));
        let delta = |xp: i64, on: i64, t| {
            VipReadOutcome::Delta(VipDelta {
                world: "Aurera".into(),
                name: "Zé".into(),
                date: base.date,
                delta_exp: xp,
                delta_online: on,
                update_time: t,
                prev_update_time: Some(base.update_time),
            })
        };
        let table = [
            // (previous read, this read, want)
            (
                None,
                vip(29, 1_000, 30, at(29, 11, 0)),
                VipReadOutcome::Baseline,
            ),
            (
                Some(&base),
                vip(29, 1_500, 45, at(29, 11, 10)),
                delta(500, 15, at(29, 11, 10)),
            ),
            (
                Some(&base),
                vip(29, 1_500, 30, at(29, 11, 10)),
                delta(500, 0, at(29, 11, 10)),
            ),
            (
                Some(&base),
                vip(29, 1_000, 31, at(29, 11, 10)),
                delta(0, 1, at(29, 11, 10)),
            ),
            (
                Some(&base),
                vip(29, 1_000, 30, at(29, 11, 10)),
                VipReadOutcome::Unchanged,
            ),
            // Replayed or older: nothing.
            (
                Some(&base),
                vip(29, 9_000, 90, at(29, 11, 0)),
                VipReadOutcome::AlreadyStored,
            ),
            (
                Some(&base),
                vip(29, 9_000, 90, at(29, 10, 50)),
                VipReadOutcome::AlreadyStored,
            ),
            // The daily reset between the two reads.
            (
                Some(&base),
                vip(30, 10, 5, at(30, 10, 10)),
                VipReadOutcome::Rebased,
            ),
            (
                Some(&base),
                vip(29, 2_000, 60, at(30, 10, 10)),
                VipReadOutcome::Rebased,
            ),
            // A new day on the page, or a counter that went down.
            (
                Some(&base),
                vip(30, 1_500, 45, at(29, 11, 10)),
                VipReadOutcome::Rebased,
            ),
            (
                Some(&base),
                vip(29, 900, 45, at(29, 11, 10)),
                VipReadOutcome::Rebased,
            ),
        ];
        for (prev, read, want) in table {
            assert_eq!(vip_outcome(prev, &read, RESET), want, "{prev:?} → {read:?}");
        }
    }
}
