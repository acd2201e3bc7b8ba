//! Watched players and their reads: the list, the day's numbers, the
//! deltas between reads, and the transactions recording a read.

use super::super::StoreError;
use super::super::dialect::{Col, Dialect, Insert, Query, Sql, Value};
use super::super::exec::{Done, Exec};
use super::super::logic::vip_outcome;
use super::super::row::{vip_daily_columns, vip_daily_of, vip_delta_columns};
use super::super::vip::{VipDaily, VipDelta, VipReadOutcome};

const WATCHED: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("name", Col::Text),
    ("added_at", Col::Now),
];

/// Watch players, those watched already kept as they are; returns the
/// world of each one added.
pub(crate) fn add_watched() -> Insert {
    Insert {
        table: "watched_players",
        columns: WATCHED,
        tail: "ON CONFLICT DO NOTHING RETURNING world".into(),
    }
}

/// The row of [`add_watched`] for a player.
pub(crate) fn watched_row(world: &str, name: &str) -> Vec<Value> {
    vec![Value::text(world), Value::text(name)]
}

/// Stop watching a player.
pub(crate) fn remove_watched(d: Dialect, world: &str, name: &str) -> Query {
    Query::new(
        format!(
            "DELETE FROM watched_players WHERE world = {} AND name = {}",
            d.mark(1),
            d.mark(2)
        ),
        vec![Value::text(world), Value::text(name)],
    )
}

/// Watched players, by world then name: read by `row::watched_of`.
pub(crate) fn watched(d: Dialect, world: Option<&str>) -> Query {
    let w = Sql::new(d).eq("world", world);
    let sql = format!(
        "SELECT world, name, added_at FROM watched_players {} ORDER BY {}, {}",
        w.filter(),
        d.bytes("world"),
        d.bytes("name"),
    );
    w.query(sql)
}

const DAILY: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("name", Col::Text),
    ("date", Col::Date),
    ("raw_xp", Col::Int),
    ("online_minutes", Col::Int),
    ("update_time", Col::Time),
];

/// Insert or replace days' numbers; with `only_newer`, a stored read of
/// that day as new or newer wins. Returns the world of each row changed.
pub(crate) fn upsert_daily(d: Dialect, only_newer: bool) -> Insert {
    let guard = if only_newer {
        format!(
            "WHERE {} > {}",
            d.instant("excluded.update_time"),
            d.instant("vip_daily.update_time")
        )
    } else {
        String::new()
    };
    Insert {
        table: "vip_daily",
        columns: DAILY,
        tail: format!(
            "ON CONFLICT (world, name, date) DO UPDATE SET raw_xp = excluded.raw_xp,
               online_minutes = excluded.online_minutes, update_time = excluded.update_time{}
             {guard} RETURNING world",
            d.keep_offset()
        ),
    }
}

/// The row of [`upsert_daily`] for a read.
pub(crate) fn daily_row(r: &VipDaily) -> Vec<Value> {
    vec![
        Value::text(&r.world),
        Value::text(&r.name),
        Value::Date(r.date),
        Value::Int(r.raw_xp),
        Value::Int(r.online_minutes),
        Value::Time(r.update_time),
    ]
}

const DELTA: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("name", Col::Text),
    ("date", Col::Date),
    ("delta_exp", Col::Int),
    ("delta_online", Col::Int),
    ("update_time", Col::Time),
    ("prev_update_time", Col::Time),
];

/// Insert deltas, one of the same player and time already stored kept;
/// returns the world of each one inserted.
pub(crate) fn insert_delta() -> Insert {
    Insert {
        table: "vip_deltas",
        columns: DELTA,
        tail: "ON CONFLICT DO NOTHING RETURNING world".into(),
    }
}

/// The row of [`insert_delta`] for a delta.
pub(crate) fn delta_row(d: &VipDelta) -> Vec<Value> {
    vec![
        Value::text(&d.world),
        Value::text(&d.name),
        Value::Date(d.date),
        Value::Int(d.delta_exp),
        Value::Int(d.delta_online),
        Value::Time(d.update_time),
        Value::OptTime(d.prev_update_time),
    ]
}

/// A player's latest read.
fn latest_read(d: Dialect, world: &str, name: &str) -> Query {
    let w = Sql::new(d).eq("world", Some(world)).eq("name", Some(name));
    let sql = format!(
        "SELECT {} FROM vip_daily {} ORDER BY {} DESC, date DESC LIMIT 1",
        vip_daily_columns(d),
        w.filter(),
        d.instant("update_time"),
    );
    w.query(sql)
}

/// Record a read with the delta given: the day's numbers (replacing an
/// earlier read of that day) and the delta; whether the delta was stored.
pub(crate) async fn write_read(
    e: &impl Exec,
    daily: &VipDaily,
    delta: Option<&VipDelta>,
) -> Result<Done<bool>, StoreError> {
    let d = e.dialect();
    e.execute(&upsert_daily(d, false).one_row(d, &daily_row(daily)))
        .await?;
    let stored = match delta {
        Some(delta) => {
            e.execute(&insert_delta().one_row(d, &delta_row(delta)))
                .await?
                == 1
        }
        None => false,
    };
    Ok(Done::commit(stored))
}

/// Record a read, deciding what against the player's latest stored read
/// ([`vip_outcome`]); a read at a time already stored writes nothing.
pub(crate) async fn record_read(
    e: &impl Exec,
    read: &VipDaily,
    reset_minutes: u32,
) -> Result<Done<VipReadOutcome>, StoreError> {
    let d = e.dialect();
    if let Some(lock) = d.lock_pair() {
        // One writer per player at a time: the latest read cannot change
        // under this one.
        let key = vec![Value::text(&read.world), Value::text(&read.name)];
        e.execute(&Query::new(lock, key)).await?;
    }
    let prev = e
        .fetch(&latest_read(d, &read.world, &read.name), vip_daily_of)
        .await?
        .pop();
    let outcome = vip_outcome(prev.as_ref(), read, reset_minutes);
    if outcome == VipReadOutcome::AlreadyStored {
        return Ok(Done::rollback(outcome));
    }
    e.execute(&upsert_daily(d, true).one_row(d, &daily_row(read)))
        .await?;
    if let VipReadOutcome::Delta(delta) = &outcome
        && e.execute(&insert_delta().one_row(d, &delta_row(delta)))
            .await?
            == 0
    {
        return Ok(Done::rollback(VipReadOutcome::AlreadyStored));
    }
    #[cfg(feature = "test-support")]
    e.stall_vip(&read.name).await;
    Ok(Done::commit(outcome))
}

/// The latest read of every player with one (in no order).
pub(crate) fn vip_latest(d: Dialect, world: Option<&str>) -> Query {
    let w = Sql::new(d).eq("world", world);
    let sql = format!(
        "SELECT {} FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY world, name
             ORDER BY {} DESC, date DESC) AS newest
           FROM vip_daily {}) AS reads WHERE newest = 1",
        vip_daily_columns(d),
        d.instant("update_time"),
        w.filter(),
    );
    w.query(sql)
}

/// Daily numbers, newest day first, then by world and name.
pub(crate) fn vip_daily(d: Dialect, world: Option<&str>, name: Option<&str>) -> Query {
    let w = Sql::new(d).eq("world", world).eq("name", name);
    let sql = format!(
        "SELECT {} FROM vip_daily {} ORDER BY date DESC, {}, {}",
        vip_daily_columns(d),
        w.filter(),
        d.bytes("world"),
        d.bytes("name"),
    );
    w.query(sql)
}

/// Deltas, newest first.
pub(crate) fn vip_deltas(d: Dialect, world: Option<&str>, name: Option<&str>, limit: u32) -> Query {
    deltas_where(Sql::new(d).eq("world", world).eq("name", name), d, limit)
}

/// The `vip_deltas` rows `w` selects, newest first: read by
/// `row::vip_delta_of`.
pub(crate) fn deltas_where(mut w: Sql, d: Dialect, limit: u32) -> Query {
    let lim = w.limit(Some(limit));
    let sql = format!(
        "SELECT {} FROM vip_deltas {} ORDER BY {} DESC, {}, {} {lim}",
        vip_delta_columns(d),
        w.filter(),
        d.update_ts(),
        d.bytes("world"),
        d.bytes("name"),
    );
    w.query(sql)
}
