//! The runs' reads: the run and delta pages the API shows (newest first,
//! `before_id` paging backwards), a world's players and its state, and
//! the schema's version. The runs' writes stay per backend
//! (`store/{sqlite,pg}.rs`).

use super::super::dialect::{Dialect, Query, Sql};
use super::super::row::{delta_columns, player_columns, run_columns, world_state_columns};

/// Runs (optionally of one world), newest first, below `before_id`.
pub(crate) fn runs(d: Dialect, world: Option<&str>, limit: u32, before_id: Option<i64>) -> Query {
    let mut w = Sql::new(d).eq("world", world).below("id", before_id);
    let lim = w.limit(Some(limit));
    let sql = format!(
        "SELECT {} FROM runs {} ORDER BY id DESC {lim}",
        run_columns(d),
        w.filter(),
    );
    w.query(sql)
}

/// Deltas (optionally of one world and/or guild), newest first, below
/// `before_id`.
pub(crate) fn deltas(
    d: Dialect,
    world: Option<&str>,
    guild: Option<&str>,
    limit: u32,
    before_id: Option<i64>,
) -> Query {
    let mut w = Sql::new(d)
        .eq("world", world)
        .eq("guild", guild)
        .below("id", before_id);
    let lim = w.limit(Some(limit));
    let sql = format!(
        "SELECT {} FROM deltas {} ORDER BY id DESC {lim}",
        delta_columns(d),
        w.filter(),
    );
    w.query(sql)
}

/// Every player's latest experience in a world, by name.
pub(crate) fn players(d: Dialect, world: &str) -> Query {
    let w = Sql::new(d).eq("world", Some(world));
    let sql = format!(
        "SELECT {} FROM players {} ORDER BY {}",
        player_columns(d),
        w.filter(),
        d.bytes("name"),
    );
    w.query(sql)
}

/// A world's state, one row (none when never processed): read by
/// `row::world_state_of`. The runs' writes lock it with ` FOR UPDATE`
/// after it on PostgreSQL.
pub(crate) fn world_state(d: Dialect, world: &str) -> Query {
    let w = Sql::new(d).eq("world", Some(world));
    let sql = format!(
        "SELECT {} FROM world_state {}",
        world_state_columns(d),
        w.filter(),
    );
    w.query(sql)
}

/// The number of migrations applied, one row: read by `row::int_of`.
pub(crate) fn schema_version() -> Query {
    Query::new(
        "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_filters_on_what_is_set_and_pages_below_an_id() {
        let q = runs(Dialect::Sqlite, Some("W"), 10, Some(5));
        assert_eq!(
            q.sql,
            "SELECT id, world, update_time, started_at, finished_at, status, rows, deltas, error \
             FROM runs WHERE world = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        );
        let q = deltas(Dialect::Postgres, None, Some("G"), 10, None);
        assert_eq!(
            q.sql,
            "SELECT id, world, name, guild, delta, update_time, previous_update_time, site_offset \
             FROM deltas WHERE guild = $1 ORDER BY id DESC LIMIT $2"
        );
        let q = world_state(Dialect::Postgres, "W");
        assert_eq!(
            q.sql,
            "SELECT last_update_time, last_rebase, epoch, site_offset FROM world_state \
             WHERE world = $1"
        );
    }
}
