//! Parse throughput of a realistic 50-row guild ranking page: the bare
//! `scraper::Html::parse_document` against our full extraction (parse +
//! selectors + number parsing). Extraction should add under 10 %.
//!
//! Run: `cargo bench --bench parse`

use std::hint::black_box;

use chrono::{FixedOffset, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use worldpool::demo_site::render;
use worldpool::demo_site::{Data, Sizing};
use worldpool::site::Selectors;
use worldpool::site::parse::parse_guild;

fn page() -> String {
    let offset = FixedOffset::west_opt(3 * 3600).expect("offset");
    let data = Data::sized(
        Sizing {
            worlds: 1,
            guilds_per_world: 1,
            players_per_guild: 50,
        },
        Utc::now(),
        offset,
    );
    let world = &data.worlds[0];
    render::guild_page(Some(world), Some(&world.guilds[0]), 1)
}

fn bench(c: &mut Criterion) {
    let page = page();
    let sel = Selectors::default().compile().expect("selectors");
    let rows = parse_guild(&page, &sel, "http://bench/guild").expect("parses");
    assert_eq!(rows.rows.len(), 50);
    let mut group = c.benchmark_group("guild_page_50_rows");
    group.throughput(Throughput::Elements(1));
    group.bench_function("scraper_parse_document_only", |b| {
        b.iter(|| {
            let doc = scraper::Html::parse_document(black_box(&page));
            black_box(doc.tree.nodes().count())
        })
    });
    group.bench_function("parse_guild_full_extraction", |b| {
        b.iter(|| {
            let out = parse_guild(black_box(&page), &sel, "http://bench/guild").expect("parses");
            black_box(out.rows.len())
        })
    });
    // Extraction alone, on a document parsed once (what parse_guild adds).
    let doc = scraper::Html::parse_document(&page);
    group.bench_function("extraction_only_on_parsed_doc", |b| {
        b.iter(|| {
            let out = worldpool::site::parse::extract_guild(&doc, &sel, "http://bench/guild")
                .expect("extracts");
            black_box(out.rows.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
