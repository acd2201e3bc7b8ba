//! PostgreSQL's migrations 2 to 4 (migration 1 is in `pg.rs`).

/// Migration 2: indexes for the replaced system's queries, one delta per
/// (world, player, update), imported runs, status pages, watched players.
pub(super) const MIGRATION_2: &str = r#"
ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'scrape';
CREATE UNIQUE INDEX deltas_once ON deltas (world, name, update_time);
CREATE INDEX deltas_by_time ON deltas (update_time DESC, name COLLATE "C", delta);
CREATE INDEX deltas_by_world_time ON deltas (world, update_time DESC, name COLLATE "C");
CREATE INDEX deltas_by_guild_time ON deltas (guild, update_time DESC, name COLLATE "C");
CREATE INDEX deltas_by_name ON deltas (name, update_time, delta);
CREATE INDEX deltas_by_world_name ON deltas (world, guild, name COLLATE "C");
CREATE INDEX players_by_name ON players (name);
CREATE TABLE status_pages (
    world TEXT PRIMARY KEY,
    fetch_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,
    routines TEXT NOT NULL                 -- JSON array of StatusRoutine
);
CREATE TABLE watched_players (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (world, name)
);
CREATE TABLE vip_daily (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date DATE NOT NULL,
    raw_xp BIGINT NOT NULL,
    online_minutes BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    site_offset INTEGER NOT NULL,
    PRIMARY KEY (world, name, date)
);
CREATE TABLE vip_deltas (
    id BIGSERIAL PRIMARY KEY,
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    date DATE NOT NULL,
    delta_exp BIGINT NOT NULL,
    delta_online BIGINT NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    prev_update_time TIMESTAMPTZ,
    site_offset INTEGER NOT NULL
);
CREATE UNIQUE INDEX vip_deltas_once ON vip_deltas (world, name, update_time);
CREATE INDEX vip_deltas_by_time ON vip_deltas (update_time DESC);
"#;

/// Migration 3: the watched players' deltas by player and by world (the
/// `name=` and `world=` filters of `/api/vip/deltas`, the VIP graph).
pub(super) const MIGRATION_3: &str = r#"
CREATE INDEX vip_deltas_by_name ON vip_deltas (name, update_time DESC);
CREATE INDEX vip_deltas_by_world_time ON vip_deltas (world, update_time DESC);
"#;

/// Migration 4: makers, the watched players tied to a main character
/// (their reads are `vip_daily` / `vip_deltas` rows like any watched
/// player's).
pub(super) const MIGRATION_4: &str = r#"
CREATE TABLE makers (
    world TEXT NOT NULL,
    name TEXT NOT NULL,
    main TEXT,                             -- NULL: not known
    main_world TEXT,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (world, name)
);
"#;
