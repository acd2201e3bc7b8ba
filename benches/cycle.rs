//! One fetch + parse + store cycle of a world against the demo site on
//! 127.0.0.1: status page, 3 guilds × 50 players, one SQLite transaction.
//!
//! Run: `cargo bench --bench cycle`

use chrono::{FixedOffset, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;
use worldpool::config::{Config, Mode};
use worldpool::demo_site::{DemoSite, DemoSiteOptions, Sizing};
use worldpool::scrape::Reporter;
use worldpool::scrape::{Outcome, Scraper, process_world};
use worldpool::site::{Clock, find_world};
use worldpool::store::Store;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::manual(
        FixedOffset::west_opt(3 * 3600)
            .expect("offset")
            .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc),
    );
    let (site, config, store) = rt.block_on(async {
        let site = DemoSite::start(DemoSiteOptions {
            sized: Some(Sizing {
                worlds: 1,
                guilds_per_world: 3,
                players_per_guild: 50,
            }),
            now: clock.clone(),
            ..DemoSiteOptions::default()
        })
        .await
        .expect("demo site");
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let path = dir.path().join("bench.toml");
        std::fs::write(&path, site.config_toml(&url, Mode::Pool)).expect("config");
        let config = Config::load(&path).expect("valid config");
        let store = Store::open(&url, 1).await.expect("store");
        (site, config, store)
    });
    let scraper = Scraper::new(&config, clock.clone()).expect("scraper");
    let world = config.worlds[0].clone();
    let stop = CancellationToken::new();
    let reporter = Reporter::none();
    let mut group = c.benchmark_group("world_cycle_3x50");
    group.sample_size(30);
    group.throughput(Throughput::Elements(1));
    group.bench_function("status_fetch_parse_store", |b| {
        b.iter(|| {
            clock.advance(chrono::Duration::minutes(1));
            site.advance_world(&world.name);
            rt.block_on(async {
                let status = scraper.status().await.expect("status");
                let ws = find_world(&status, &world.name).expect("world");
                let out = process_world(
                    &scraper,
                    &store,
                    &config,
                    &world,
                    ws.update_time,
                    &reporter,
                    &stop,
                )
                .await
                .expect("processed");
                assert!(
                    matches!(out, Outcome::Stored { rows, .. } if rows >= 150),
                    "{out:?}"
                );
            })
        })
    });
    group.finish();
    rt.block_on(site.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
