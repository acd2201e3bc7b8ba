//! An import of a replaced system's history, in one transaction (see
//! [`crate::store::import`] for what it keeps and counts).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};

use super::super::StoreError;
use super::super::dialect::{Col, Dialect, Insert, Query, Value};
use super::super::exec::{Done, Exec};
use super::super::import::{ImportBatch, ImportWritten, delta_updates, latest_per_world};
use super::super::row::{RowGet, text_of};
use super::{makers, vip};

/// Successful runs: `id, world, update time` (seconds).
fn runs(d: Dialect) -> Query {
    Query::new(
        format!(
            "SELECT id, world, update_time{} FROM runs WHERE status = 'ok'",
            d.offset("")
        ),
        Vec::new(),
    )
}

fn run_key_of(r: &dyn RowGet) -> Result<(i64, String, i64), StoreError> {
    Ok((r.int(0)?, r.text(1)?, r.site_time(2, 3)?.timestamp()))
}

const RUN: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("update_time", Col::Time),
    ("started_at", Col::Now),
    ("finished_at", Col::Now),
    ("status", Col::Sql("'ok'")),
    ("rows", Col::Int),
    ("deltas", Col::Int),
    ("source", Col::Sql("'import'")),
];

/// A run for each imported update: returns their keys.
fn insert_runs(d: Dialect) -> Insert {
    Insert {
        table: "runs",
        columns: RUN,
        tail: format!("RETURNING id, world, update_time{}", d.offset("")),
    }
}

const DELTA: &[(&str, Col)] = &[
    ("run_id", Col::Int),
    ("world", Col::Text),
    ("name", Col::Text),
    ("guild", Col::Text),
    ("delta", Col::Int),
    ("update_time", Col::Time),
    ("previous_update_time", Col::Time),
];

fn insert_deltas() -> Insert {
    Insert {
        table: "deltas",
        columns: DELTA,
        tail: "ON CONFLICT DO NOTHING RETURNING world".into(),
    }
}

const PLAYER: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("name", Col::Text),
    ("guild", Col::Text),
    ("vocation", Col::Sql("''")),
    ("level", Col::Sql("0")),
    ("experience", Col::Int),
    ("update_time", Col::Time),
];

/// Players, a stored row replaced only by a newer one.
fn upsert_players(d: Dialect) -> Insert {
    Insert {
        table: "players",
        columns: PLAYER,
        tail: format!(
            "ON CONFLICT (world, name) DO UPDATE SET guild = excluded.guild,
               experience = excluded.experience, update_time = excluded.update_time{}
             WHERE {} > {} RETURNING world",
            d.keep_offset(),
            d.instant("excluded.update_time"),
            d.instant("players.update_time"),
        ),
    }
}

const WORLD_STATE: &[(&str, Col)] = &[
    ("world", Col::Text),
    ("last_update_time", Col::Time),
    ("last_rebase", Col::Time),
    ("updated_at", Col::Now),
];

fn upsert_world_state(d: Dialect) -> Insert {
    Insert {
        table: "world_state",
        columns: WORLD_STATE,
        tail: format!(
            "ON CONFLICT (world) DO UPDATE SET last_update_time = excluded.last_update_time,
               last_rebase = excluded.last_rebase{}, updated_at = excluded.updated_at",
            d.keep_offset()
        ),
    }
}

fn count_worlds(worlds: Vec<String>, into: &mut BTreeMap<String, usize>) {
    for world in worlds {
        *into.entry(world).or_insert(0) += 1;
    }
}

fn offset(t: DateTime<FixedOffset>) -> i32 {
    t.offset().local_minus_utc()
}

/// Write `batch`; committed unless `dry_run`.
pub(crate) async fn import(
    e: &impl Exec,
    batch: &ImportBatch,
    dry_run: bool,
) -> Result<Done<ImportWritten>, StoreError> {
    let d = e.dialect();
    if let Some(sql) = d.no_deadline() {
        e.execute(&Query::new(sql, Vec::new())).await?;
    }
    let mut out = ImportWritten::default();

    // Runs: an existing successful run of the same update is reused.
    let mut run_ids: HashMap<(String, i64), i64> = e
        .fetch(&runs(d), run_key_of)
        .await?
        .into_iter()
        .map(|(id, world, ts)| ((world, ts), id))
        .collect();
    let missing: Vec<Vec<Value>> = delta_updates(batch)
        .into_iter()
        .filter(|(key, _)| !run_ids.contains_key(key))
        .map(|((world, _), (t, count))| {
            let count = count as i64;
            vec![
                Value::Text(world),
                Value::Time(t),
                Value::Int(count),
                Value::Int(count),
            ]
        })
        .collect();
    for (id, world, ts) in e.insert(&insert_runs(d), &missing, run_key_of).await? {
        *out.runs.entry(world.clone()).or_insert(0) += 1;
        run_ids.insert((world, ts), id);
    }

    let mut deltas = Vec::with_capacity(batch.deltas.len());
    for x in &batch.deltas {
        let run_id = run_ids
            .get(&(x.world.clone(), x.update_time.timestamp()))
            .copied()
            .ok_or_else(|| StoreError::Rejected("import: a delta without its run".into()))?;
        deltas.push(vec![
            Value::Int(run_id),
            Value::text(&x.world),
            Value::text(&x.name),
            Value::text(&x.guild),
            Value::Int(x.delta),
            Value::Time(x.update_time),
            Value::OptTime(x.previous_update_time),
        ]);
    }
    let worlds = e.insert(&insert_deltas(), &deltas, text_of).await?;
    count_worlds(worlds, &mut out.deltas);

    let players: Vec<Vec<Value>> = batch
        .players
        .iter()
        .map(|p| {
            vec![
                Value::text(&p.world),
                Value::text(&p.name),
                Value::text(&p.guild),
                Value::Int(p.experience),
                Value::Time(p.update_time),
            ]
        })
        .collect();
    let worlds = e.insert(&upsert_players(d), &players, text_of).await?;
    count_worlds(worlds, &mut out.players);

    let watched: Vec<Vec<Value>> = batch
        .watched
        .iter()
        .map(|(world, name)| vip::watched_row(world, name))
        .collect();
    out.watched = e
        .insert(&vip::add_watched(), &watched, text_of)
        .await?
        .len();
    let daily: Vec<Vec<Value>> = batch.vip_daily.iter().map(vip::daily_row).collect();
    out.vip_daily = e
        .insert(&vip::upsert_daily(d, true), &daily, text_of)
        .await?
        .len();
    let vip_deltas: Vec<Vec<Value>> = batch.vip_deltas.iter().map(vip::delta_row).collect();
    out.vip_deltas = e
        .insert(&vip::insert_delta(), &vip_deltas, text_of)
        .await?
        .len();
    let makers: Vec<Vec<Value>> = batch.makers.iter().map(makers::row).collect();
    out.makers = e.insert(&makers::upsert(), &makers, text_of).await?.len();

    // World state only moves forward: the latest update and reset known.
    let latest = latest_per_world(batch);
    let mut worlds: Vec<&String> = latest
        .keys()
        .chain(batch.resets.iter().map(|(w, _)| w))
        .collect();
    worlds.sort();
    worlds.dedup();
    for world in worlds {
        let reset = batch
            .resets
            .iter()
            .filter(|(w, _)| w == world)
            .map(|(_, t)| *t)
            .max();
        let any = latest.get(world).copied().or(reset);
        let state = e.world_state_locked(world, any.map_or(0, offset)).await?;
        let last = state.last_update_time.max(latest.get(world).copied());
        let rebase = state.last_rebase.max(reset);
        if (last, rebase) == (state.last_update_time, state.last_rebase) {
            continue;
        }
        let row = [
            Value::text(world),
            Value::OptTime(last),
            Value::OptTime(rebase),
        ];
        e.execute(&upsert_world_state(d).one_row(d, &row)).await?;
        out.world_states += 1;
    }
    Ok(if dry_run {
        Done::rollback(out)
    } else {
        Done::commit(out)
    })
}
