//! The replaced system's reads of the history, status pages and exports.
//!
//! Every read runs on an index of migration 2: deltas by `(update time
//! DESC, name, delta)`, `(world, update time DESC, name)`, `(guild, update
//! time DESC, name)`, `(name, update time, delta)` and `(world, guild,
//! name)`.

use super::super::StoreError;
use super::super::dialect::{Col, Dialect, Insert, Query, Sql, Value};
use super::super::history::{StatusPage, TimeRange};
use super::super::row::{delta_columns, player_columns, status_page_columns};

/// Deltas, newest update first, then by name.
pub(crate) fn delta_feed(
    d: Dialect,
    world: Option<&str>,
    guild: Option<&str>,
    limit: u32,
) -> Query {
    let mut w = Sql::new(d).eq("world", world).eq("guild", guild);
    let lim = w.limit(Some(limit));
    let sql = format!(
        "SELECT {} FROM deltas {} ORDER BY {} DESC, {} {lim}",
        delta_columns(d),
        w.filter(),
        d.update_ts(),
        d.bytes("name"),
    );
    w.query(sql)
}

/// Deltas per player over a period: largest total first, then by name.
pub(crate) fn player_totals(
    d: Dialect,
    range: TimeRange,
    world: Option<&str>,
    limit: Option<u32>,
) -> Query {
    let mut w = Sql::new(d).eq("world", world).range(range);
    let lim = w.limit(limit);
    let sql = format!(
        "SELECT name, CAST(SUM(delta) AS BIGINT), COUNT(*), MAX(delta), MIN(delta)
         FROM deltas {} GROUP BY name ORDER BY 2 DESC, {} {lim}",
        w.filter(),
        d.bytes("name"),
    );
    w.query(sql)
}

/// Names having deltas, sorted, each once.
pub(crate) fn player_names(
    d: Dialect,
    world: Option<&str>,
    guild: Option<&str>,
    limit: Option<u32>,
) -> Query {
    let mut w = Sql::new(d).eq("world", world).eq("guild", guild);
    let lim = w.limit(limit);
    let sql = format!(
        "SELECT DISTINCT {} FROM deltas {} ORDER BY 1 {lim}",
        d.bytes("name"),
        w.filter(),
    );
    w.query(sql)
}

/// The first and last update times of the deltas, one row (none without
/// deltas): read by `row::time_pair_of`.
pub(crate) fn delta_time_range(d: Dialect, world: Option<&str>, guild: Option<&str>) -> Query {
    let w = Sql::new(d).eq("world", world).eq("guild", guild);
    let one = |dir: &str| {
        format!(
            "(SELECT update_time{} FROM deltas {} ORDER BY {} {dir} LIMIT 1)",
            d.offset(""),
            w.filter(),
            d.update_ts(),
        )
    };
    let sql = format!(
        "SELECT earliest.update_time, latest.update_time{}{} FROM {} AS earliest, {} AS latest",
        d.offset("earliest."),
        d.offset("latest."),
        one("ASC"),
        one("DESC"),
    );
    w.query(sql)
}

/// Every delta of these players over a period, by name then time.
pub(crate) fn player_deltas(
    d: Dialect,
    names: &[String],
    range: TimeRange,
    limit: Option<u32>,
) -> Query {
    let mut w = Sql::new(d).any_of("name", names).range(range);
    let lim = w.limit(limit);
    let sql = format!(
        "SELECT {} FROM deltas {} ORDER BY {}, {}, id {lim}",
        delta_columns(d),
        w.filter(),
        d.bytes("name"),
        d.update_ts(),
    );
    w.query(sql)
}

/// The latest experience of these players in every world.
pub(crate) fn players_named(d: Dialect, names: &[String]) -> Query {
    let w = Sql::new(d).any_of("name", names);
    let sql = format!(
        "SELECT {} FROM players {} ORDER BY {}, {}",
        player_columns(d),
        w.filter(),
        d.bytes("name"),
        d.bytes("world"),
    );
    w.query(sql)
}

const STATUS_PAGE: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("fetch_time", Col::Time),
    ("routines", Col::Text),
];

/// Keep a world's last status page (replacing the one before).
pub(crate) fn save_status_page(d: Dialect, page: &StatusPage) -> Result<Query, StoreError> {
    let routines = serde_json::to_string(&page.routines)
        .map_err(|e| StoreError::Rejected(format!("status page: {e}")))?;
    let row = vec![
        Value::text(&page.world),
        Value::Time(page.fetch_time),
        Value::Text(routines),
    ];
    let ins = Insert {
        table: "status_pages",
        columns: STATUS_PAGE,
        tail: format!(
            "ON CONFLICT (world) DO UPDATE SET fetch_time = excluded.fetch_time{},
               routines = excluded.routines",
            d.keep_offset()
        ),
    };
    Ok(ins.one_row(d, &row))
}

/// Every world's last status page, by world.
pub(crate) fn status_pages(d: Dialect) -> Query {
    Query::new(
        format!(
            "SELECT {} FROM status_pages ORDER BY {}",
            status_page_columns(d),
            d.bytes("world")
        ),
        Vec::new(),
    )
}

/// Every delta in insertion order.
pub(crate) fn export_deltas(d: Dialect) -> Query {
    Query::new(
        format!("SELECT {} FROM deltas ORDER BY id", delta_columns(d)),
        Vec::new(),
    )
}

/// Every player's latest experience, by world then name.
pub(crate) fn export_players(d: Dialect) -> Query {
    Query::new(
        format!(
            "SELECT {} FROM players ORDER BY {}, {}",
            player_columns(d),
            d.bytes("world"),
            d.bytes("name"),
        ),
        Vec::new(),
    )
}
