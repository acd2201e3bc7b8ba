//! What differs between the two SQL dialects, and the pieces a query is
//! built from, so that each query of [`super::query`] is written once.
//!
//! The differences, all here:
//! - placeholders: `?N` (SQLite) against `$N` (PostgreSQL);
//! - text order: byte order on both, which is SQLite's default (`BINARY`)
//!   and PostgreSQL's `COLLATE "C"` (its database collation is not);
//! - time storage: SQLite keeps a site time as RFC 3339 text with its
//!   offset (and `deltas` / `vip_deltas` a generated, indexed `update_ts =
//!   unixepoch(update_time)` to order them); PostgreSQL as `TIMESTAMPTZ`
//!   plus the site's offset in the row's `site_offset` (the offset of the
//!   row's first site time that is set), read after the row's other
//!   columns. A read's columns say where that offset is
//!   ([`super::row::RowGet::site_time`]);
//! - lists: `IN (?1, ?2, …)` against `= ANY($1::TEXT[])`; many rows:
//!   one statement per row on SQLite, `UNNEST` of one array per column on
//!   PostgreSQL ([`Insert`]);
//! - "now" as stored, and the statements only one dialect needs (a lock
//!   SQLite's exclusive write transactions make needless, a deadline to
//!   lift);
//! - the cluster's columns, PostgreSQL's only (a world state's `epoch`).
//!
//! Upserts (`INSERT … ON CONFLICT … DO UPDATE SET x = excluded.x`),
//! `RETURNING`, `IS DISTINCT FROM`, window functions and `CAST` are the
//! same on both.

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::StoreError;
use super::history::TimeRange;

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite (bundled, 3.45 or later).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`-th parameter (from 1).
    pub(crate) fn mark(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// A text column ordered by its bytes.
    pub(crate) fn bytes(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_string(),
            Dialect::Postgres => format!("{column} COLLATE \"C\""),
        }
    }

    /// The column ordering `deltas` and `vip_deltas` by update time (the
    /// one their indexes are on).
    pub(crate) fn update_ts(self) -> &'static str {
        match self {
            Dialect::Sqlite => "update_ts",
            Dialect::Postgres => "update_time",
        }
    }

    /// A stored site time as an instant, to compare or order by (a table
    /// without `update_ts`).
    pub(crate) fn instant(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("unixepoch({column})"),
            Dialect::Postgres => column.to_string(),
        }
    }

    /// The offset column a read of site times ends with, `prefix` naming
    /// its table (`""`, `"a."`): nothing on SQLite.
    pub(crate) fn offset(self, prefix: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!(", {prefix}site_offset"),
        }
    }

    /// The offset kept with the site time an upsert replaces.
    pub(crate) fn keep_offset(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => ", site_offset = excluded.site_offset",
        }
    }

    /// The current time as stored (SQLite: RFC 3339 UTC text with
    /// milliseconds, as the store writes it).
    pub(crate) fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            Dialect::Postgres => "now()",
        }
    }

    /// A lock held until the transaction ends on the key of two texts `$1`,
    /// `$2`: PostgreSQL's advisory lock; none on SQLite, where a write
    /// transaction is exclusive already.
    pub(crate) fn lock_pair(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                "SELECT pg_advisory_xact_lock(hashtextextended($1::TEXT || chr(31) || $2::TEXT, 0))",
            ),
        }
    }

    /// The lease epoch a world's state was last written at (PostgreSQL's
    /// migration 5, for the cluster): NULL on SQLite, which has no column.
    pub(crate) fn epoch(self) -> &'static str {
        match self {
            Dialect::Sqlite => "NULL",
            Dialect::Postgres => "epoch",
        }
    }

    /// The first statement of a transaction as long as its input (an
    /// import): PostgreSQL lifts the API's read deadline
    /// (`statement_timeout`) for it; SQLite has none.
    pub(crate) fn no_deadline(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SET LOCAL statement_timeout = 0"),
        }
    }
}

/// A parameter value, converted by each backend (`ToSql` in
/// `sqlite/exec.rs` and `pg/exec.rs`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// An integer (`BIGINT`).
    Int(i64),
    /// A site's offset in seconds (PostgreSQL's `site_offset INTEGER`).
    Offset(i32),
    /// A site time as stored (SQLite: RFC 3339 text; PostgreSQL:
    /// `TIMESTAMPTZ`).
    Time(DateTime<FixedOffset>),
    /// A site time or NULL.
    OptTime(Option<DateTime<FixedOffset>>),
    /// A time compared with [`Dialect::update_ts`] (SQLite: Unix seconds;
    /// PostgreSQL: `TIMESTAMPTZ`).
    Instant(DateTime<FixedOffset>),
    /// A day (SQLite: `YYYY-MM-DD`; PostgreSQL: `DATE`).
    Date(NaiveDate),
    /// An array (PostgreSQL only: SQLite gets one placeholder per item).
    List(Vec<Value>),
}

impl Value {
    /// Text of a borrowed string.
    pub(crate) fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    /// The site time it holds, if any (what `site_offset` is taken from).
    fn site_time(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            Value::Time(t) | Value::OptTime(Some(t)) => Some(*t),
            _ => None,
        }
    }
}

/// SQLite's text of a day.
pub(crate) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A statement and its parameters, in a dialect.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// The SQL text.
    pub(crate) sql: String,
    /// Its parameters, in placeholder order.
    pub(crate) params: Vec<Value>,
}

impl Query {
    /// A statement with these parameters.
    pub(crate) fn new(sql: impl Into<String>, params: Vec<Value>) -> Query {
        Query {
            sql: sql.into(),
            params,
        }
    }
}

/// A query's parameters and its WHERE clause, built from the filters that
/// are set (so each combination gets a plan on its own index).
#[derive(Debug)]
pub(crate) struct Sql {
    d: Dialect,
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Sql {
    /// No filter yet.
    pub(crate) fn new(d: Dialect) -> Sql {
        Sql {
            d,
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Add a parameter; returns its placeholder.
    pub(crate) fn bind(&mut self, v: Value) -> String {
        self.params.push(v);
        self.d.mark(self.params.len())
    }

    /// `column = value` when a value is given.
    pub(crate) fn eq(mut self, column: &str, value: Option<&str>) -> Sql {
        if let Some(v) = value {
            let mark = self.bind(Value::text(v));
            self.clauses.push(format!("{column} = {mark}"));
        }
        self
    }

    /// `column < value` (an id to page backwards from) when a value is
    /// given.
    pub(crate) fn below(mut self, column: &str, value: Option<i64>) -> Sql {
        if let Some(v) = value {
            let mark = self.bind(Value::Int(v));
            self.clauses.push(format!("{column} < {mark}"));
        }
        self
    }

    /// Update times within `range` ([`Dialect::update_ts`]).
    pub(crate) fn range(mut self, range: TimeRange) -> Sql {
        let column = self.d.update_ts();
        if let Some(from) = range.from {
            let mark = self.bind(Value::Instant(from));
            self.clauses.push(format!("{column} >= {mark}"));
        }
        if let Some(to) = range.to {
            let mark = self.bind(Value::Instant(to));
            self.clauses.push(format!("{column} <= {mark}"));
        }
        self
    }

    /// `column` is one of `values`.
    pub(crate) fn any_of(mut self, column: &str, values: &[String]) -> Sql {
        let clause = match self.d {
            Dialect::Sqlite => {
                let marks: Vec<String> = values.iter().map(|v| self.bind(Value::text(v))).collect();
                format!("{column} IN ({})", marks.join(", "))
            }
            Dialect::Postgres => {
                let list = values.iter().map(|v| Value::text(v)).collect();
                let mark = self.bind(Value::List(list));
                format!("{column} = ANY({mark}::TEXT[])")
            }
        };
        self.clauses.push(clause);
        self
    }

    /// A condition without parameters.
    pub(crate) fn also(mut self, clause: &str) -> Sql {
        self.clauses.push(clause.to_string());
        self
    }

    /// `LIMIT n`, or nothing.
    pub(crate) fn limit(&mut self, limit: Option<u32>) -> String {
        match limit {
            Some(n) => format!("LIMIT {}", self.bind(Value::Int(i64::from(n)))),
            None => String::new(),
        }
    }

    /// `WHERE …` of the filters set, or nothing.
    pub(crate) fn filter(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The statement `sql` with the parameters bound so far.
    pub(crate) fn query(self, sql: String) -> Query {
        Query::new(sql, self.params)
    }
}

/// What a column of an [`Insert`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// [`Value::Text`] / [`Value::OptText`].
    Text,
    /// [`Value::Int`].
    Int,
    /// [`Value::Date`].
    Date,
    /// [`Value::Time`] / [`Value::OptTime`]: on PostgreSQL, the row's
    /// first one set gives `site_offset` too.
    Time,
    /// [`Dialect::now`] (no value).
    Now,
    /// This SQL expression (no value).
    Sql(&'static str),
}

impl Col {
    /// PostgreSQL's type of its arrays.
    fn pg_type(self) -> &'static str {
        match self {
            Col::Text | Col::Now | Col::Sql(_) => "TEXT",
            Col::Int => "BIGINT",
            Col::Date => "DATE",
            Col::Time => "TIMESTAMPTZ",
        }
    }
}

/// An insert into a table: its columns and the rest of the statement
/// (`ON CONFLICT …`, `RETURNING …`). A row gives one value per column that
/// takes one. Many rows run once per row on SQLite ([`Insert::one_row`]),
/// once per chunk of rows on PostgreSQL ([`Insert::unnest`]).
#[derive(Debug, Clone)]
pub(crate) struct Insert {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static [(&'static str, Col)],
    pub(crate) tail: String,
}

impl Insert {
    /// Every row gives one value per column that takes one.
    pub(crate) fn check(&self, rows: &[Vec<Value>]) -> Result<(), StoreError> {
        let width = self
            .columns
            .iter()
            .filter(|(_, c)| !matches!(c, Col::Now | Col::Sql(_)))
            .count();
        match rows.iter().find(|r| r.len() != width) {
            Some(r) => Err(StoreError::Rejected(format!(
                "insert into {}: a row of {} values for {width} columns",
                self.table,
                r.len()
            ))),
            None => Ok(()),
        }
    }

    fn has_time(&self) -> bool {
        self.columns.iter().any(|(_, c)| *c == Col::Time)
    }

    /// The column list, `site_offset` last on PostgreSQL.
    fn names(&self, d: Dialect) -> String {
        let mut names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        if d == Dialect::Postgres && self.has_time() {
            names.push("site_offset");
        }
        names.join(", ")
    }

    /// The `site_offset` of a row (PostgreSQL).
    fn offset_of(&self, row: &[Value]) -> Option<Value> {
        if !self.has_time() {
            return None;
        }
        let first = row.iter().find_map(Value::site_time);
        Some(Value::Offset(
            first.map_or(0, |t| t.offset().local_minus_utc()),
        ))
    }

    /// The statement for one row, and its parameters.
    pub(crate) fn one_row(&self, d: Dialect, row: &[Value]) -> Query {
        let mut n = 0;
        let mut values: Vec<String> = self
            .columns
            .iter()
            .map(|(_, c)| match c {
                Col::Now => d.now().to_string(),
                Col::Sql(s) => s.to_string(),
                _ => {
                    n += 1;
                    d.mark(n)
                }
            })
            .collect();
        let mut params = row.to_vec();
        if d == Dialect::Postgres
            && let Some(offset) = self.offset_of(row)
        {
            params.push(offset);
            values.push(d.mark(n + 1));
        }
        Query::new(
            format!(
                "INSERT INTO {} ({}) VALUES ({}) {}",
                self.table,
                self.names(d),
                values.join(", "),
                self.tail
            ),
            params,
        )
    }

    /// The statement for many rows (PostgreSQL) and the parameters of
    /// `rows`: one array per column. The rows passed [`Insert::check`].
    pub(crate) fn unnest(&self, rows: &[Vec<Value>]) -> Query {
        let d = Dialect::Postgres;
        let mut arrays = Vec::new();
        let mut aliases = Vec::new();
        let mut params = Vec::new();
        let mut exprs = Vec::new();
        let mut k = 0;
        for (_, c) in self.columns {
            match c {
                Col::Now => exprs.push(d.now().to_string()),
                Col::Sql(s) => exprs.push(s.to_string()),
                _ => {
                    let column = rows.iter().filter_map(|r| r.get(k).cloned()).collect();
                    k += 1;
                    params.push(Value::List(column));
                    arrays.push(format!("{}::{}[]", d.mark(k), c.pg_type()));
                    aliases.push(format!("c{k}"));
                    exprs.push(format!("c{k}"));
                }
            }
        }
        if self.has_time() {
            let offsets = rows.iter().filter_map(|r| self.offset_of(r)).collect();
            params.push(Value::List(offsets));
            arrays.push(format!("{}::INT[]", d.mark(k + 1)));
            aliases.push("site_offset".to_string());
            exprs.push("site_offset".to_string());
        }
        Query::new(
            format!(
                "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) AS u({}) {}",
                self.table,
                self.names(d),
                exprs.join(", "),
                arrays.join(", "),
                aliases.join(", "),
                self.tail
            ),
            params,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[(&str, Col)] = &[
        ("world", Col::Text),
        ("update_time", Col::Time),
        ("added_at", Col::Now),
        ("status", Col::Sql("'ok'")),
    ];

    fn t(h: u32) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2024-05-01T{h:02}:00:00-03:00")).expect("time")
    }

    #[test]
    fn an_insert_is_one_row_on_sqlite_and_arrays_on_postgres() {
        let ins = Insert {
            table: "runs",
            columns: COLUMNS,
            tail: "RETURNING id".into(),
        };
        let rows = vec![
            vec![Value::text("A"), Value::Time(t(1))],
            vec![Value::text("B"), Value::Time(t(2))],
        ];
        assert!(ins.check(&rows).is_ok());
        assert!(ins.check(&[vec![Value::text("A")]]).is_err());
        let one = ins.one_row(Dialect::Sqlite, &rows[0]);
        assert_eq!(
            one.sql,
            "INSERT INTO runs (world, update_time, added_at, status) \
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'ok') RETURNING id"
        );
        assert_eq!(one.params, rows[0]);
        let one = ins.one_row(Dialect::Postgres, &rows[0]);
        assert_eq!(
            one.sql,
            "INSERT INTO runs (world, update_time, added_at, status, site_offset) \
             VALUES ($1, $2, now(), 'ok', $3) RETURNING id"
        );
        assert_eq!(one.params[2], Value::Offset(-3 * 3600));
        let many = ins.unnest(&rows);
        assert_eq!(
            many.sql,
            "INSERT INTO runs (world, update_time, added_at, status, site_offset) \
             SELECT c1, c2, now(), 'ok', site_offset \
             FROM UNNEST($1::TEXT[], $2::TIMESTAMPTZ[], $3::INT[]) AS u(c1, c2, site_offset) \
             RETURNING id"
        );
        assert_eq!(
            many.params[2],
            Value::List(vec![Value::Offset(-3 * 3600), Value::Offset(-3 * 3600)])
        );
    }

    #[test]
    fn filters_number_their_placeholders_per_dialect() {
        let names = ["Ana".to_string(), "Bob".to_string()];
        for (d, expected) in [
            (
                Dialect::Sqlite,
                "WHERE world = ?1 AND name IN (?2, ?3) AND update_ts >= ?4 LIMIT ?5",
            ),
            (
                Dialect::Postgres,
                "WHERE world = $1 AND name = ANY($2::TEXT[]) AND update_time >= $3 LIMIT $4",
            ),
        ] {
            let mut w = Sql::new(d)
                .eq("world", Some("Aurera"))
                .eq("guild", None)
                .any_of("name", &names)
                .range(TimeRange {
                    from: Some(t(1)),
                    to: None,
                });
            let lim = w.limit(Some(5));
            assert_eq!(format!("{} {lim}", w.filter()), expected, "{d:?}");
        }
    }
}
