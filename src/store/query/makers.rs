//! Makers: who is one and whose, and their deltas with minutes online.

use super::super::dialect::{Col, Dialect, Insert, Query, Sql, Value};
use super::super::import::ImportMaker;
use super::vip::deltas_where;

/// Who is a maker, for a query on `vip_deltas`.
const IS_MAKER: &str = "(world, name) IN (SELECT world, name FROM makers)";

/// Makers, by world then name: read by `row::maker_of`.
pub(crate) fn makers(d: Dialect, world: Option<&str>) -> Query {
    let w = Sql::new(d).eq("world", world);
    let sql = format!(
        "SELECT world, name, main, main_world, added_at FROM makers {} ORDER BY {}, {}",
        w.filter(),
        d.bytes("world"),
        d.bytes("name"),
    );
    w.query(sql)
}

/// The makers' deltas with minutes online, newest first.
pub(crate) fn maker_deltas(
    d: Dialect,
    world: Option<&str>,
    name: Option<&str>,
    limit: u32,
) -> Query {
    let w = Sql::new(d)
        .eq("world", world)
        .eq("name", name)
        .also(IS_MAKER)
        .also("delta_online <> 0");
    deltas_where(w, d, limit)
}

const MAKER: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("name", Col::Text),
    ("main", Col::Text),
    ("main_world", Col::Text),
    ("added_at", Col::Now),
];

/// Store makers: a known main replaces another; an unknown one keeps what
/// is stored. Returns the world of each row that changed.
pub(crate) fn upsert() -> Insert {
    Insert {
        table: "makers",
        columns: MAKER,
        tail: "ON CONFLICT (world, name) DO UPDATE SET main = excluded.main,
                 main_world = excluded.main_world
               WHERE excluded.main IS NOT NULL AND (makers.main IS DISTINCT FROM excluded.main
                 OR makers.main_world IS DISTINCT FROM excluded.main_world)
               RETURNING world"
            .into(),
    }
}

/// The row of [`upsert`] for a maker.
pub(crate) fn row(m: &ImportMaker) -> Vec<Value> {
    let (main_world, main) = m.main.clone().unzip();
    vec![
        Value::text(&m.world),
        Value::text(&m.name),
        Value::OptText(main),
        Value::OptText(main_world),
    ]
}
