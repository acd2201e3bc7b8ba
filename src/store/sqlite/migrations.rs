//! SQLite's migrations 2 to 4 (migration 1 is in `sqlite.rs`).
//!
//! Update times are stored as RFC 3339 text with the site's offset; a
//! virtual generated column `update_ts = unixepoch(update_time)` gives them
//! an order and an index that do not depend on how the offset is written.

/// Migration 2: indexes for the replaced system's queries, one delta per
/// (world, player, update), imported runs, status pages, watched players.
pub(super) const MIGRATION_2: &str = r#"
ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'scrape';
ALTER TABLE deltas ADD COLUMN update_ts INTEGER
    GENERATED ALWAYS AS (unixepoch(update_time)) VIRTUAL;
CREATE UNIQUE INDEX deltas_once ON deltas (world, name, update_ts);
CREATE INDEX deltas_by_time ON deltas (update_ts DESC, name, delta);
CREATE INDEX deltas_by_world_time ON deltas (world, update_ts DESC, name);
CREATE INDEX deltas_by_guild_time ON deltas (guild, update_ts DESC, name);
CREATE INDEX deltas_by_name ON deltas (name, update_ts, delta);
CREATE INDEX deltas_by_world_name ON deltas (world, guild, name);
CREATE INDEX players_by_name ON players (name);
CREATE TABLE status_pages (
    world TEXT PRIMARY KEY,
    fetch_time TEXT NOT NULL,             -- RFC 3339, site offset
    routines TEXT NOT NULL                -- JSON array of StatusRoutine
);
CREATE TABLE watched_players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    added_at TEXT NOT NULL,               -- RFC 3339 UTC
    PRIMARY KEY (world, name)
);
CREATE TABLE vip_daily (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date TEXT NOT NULL,                   -- YYYY-MM-DD, the site's day
    raw_xp INTEGER NOT NULL,
    online_minutes INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (world, name, date)
);
CREATE TABLE vip_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date TEXT NOT NULL,
    delta_exp INTEGER NOT NULL,
    delta_online INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    prev_update_time TEXT,
    update_ts INTEGER GENERATED ALWAYS AS (unixepoch(update_time)) VIRTUAL
);
CREATE UNIQUE INDEX vip_deltas_once ON vip_deltas (world, name, update_ts);
CREATE INDEX vip_deltas_by_time ON vip_deltas (update_ts DESC);
"#;

/// Migration 3: the watched players' deltas by player and by world (the
/// `name=` and `world=` filters of `/api/vip/deltas`, the VIP graph).
pub(super) const MIGRATION_3: &str = r#"
CREATE INDEX vip_deltas_by_name ON vip_deltas (name, update_ts DESC);
CREATE INDEX vip_deltas_by_world_time ON vip_deltas (world, update_ts DESC);
"#;

/// Migration 4: makers, the watched players tied to a main character
/// (their reads are `vip_daily` / `vip_deltas` rows like any watched
/// player's).
pub(super) const MIGRATION_4: &str = r#"
CREATE TABLE makers (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    main TEXT,                            -- NULL: not known
    main_world TEXT,
    added_at TEXT NOT NULL,               -- RFC 3339 UTC
    PRIMARY KEY (world, name)
);
"#;
