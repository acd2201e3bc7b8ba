//! Parse throughput of a realistic 50-row guild ranking page, in both
//! layouts the demo site serves (the real site's tables, read with the
//! default selectors; the table-free redesign, read with
//! `config/examples/alt-layout.toml`): the bare
//! `scraper::Html::parse_document` against our full extraction (parse +
//! selectors + number parsing). Extraction should add under 10 %, and the
//! full parse stay at or above 2,000 pages/s on one core.
//!
//! Run: `cargo bench --bench parse`

use std::hint::black_box;

use chrono::{FixedOffset, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use worldpool::demo_site::{ALT_LAYOUT_PROFILE, Data, Layout, Sizing, render};
use worldpool::site::Selectors;
use worldpool::site::parse::{extract_guild, parse_guild};

fn page(layout: Layout) -> String {
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
    render::guild_page_in(layout, Some(world), Some(&world.guilds[0]), 1)
}

fn selectors(layout: Layout) -> Selectors {
    match layout {
        Layout::Table => Selectors::default(),
        Layout::Alt => {
            let t: toml::Table = toml::from_str(ALT_LAYOUT_PROFILE).expect("toml");
            t["site"]["selectors"]
                .clone()
                .try_into()
                .expect("the example's selectors")
        }
    }
}

fn bench(c: &mut Criterion) {
    for (name, layout) in [("table", Layout::Table), ("alt", Layout::Alt)] {
        let page = page(layout);
        let sel = selectors(layout).compile().expect("selectors");
        let rows = parse_guild(&page, &sel, "http://bench/guild").expect("parses");
        assert_eq!(rows.rows.len(), 50);
        let mut group = c.benchmark_group(format!("guild_page_50_rows_{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("scraper_parse_document_only", |b| {
            b.iter(|| {
                let doc = scraper::Html::parse_document(black_box(&page));
                black_box(doc.tree.nodes().count())
            })
        });
        group.bench_function("parse_guild_full_extraction", |b| {
            b.iter(|| {
                let out =
                    parse_guild(black_box(&page), &sel, "http://bench/guild").expect("parses");
                black_box(out.rows.len())
            })
        });
        // Extraction alone, on a document parsed once (what parse_guild adds).
        let doc = scraper::Html::parse_document(&page);
        group.bench_function("extraction_only_on_parsed_doc", |b| {
            b.iter(|| {
                let out = extract_guild(&doc, &sel, "http://bench/guild").expect("extracts");
                black_box(out.rows.len())
            })
        });
        group.finish();
        interleaved(name, &page, &sel);
    }
}

/// CPU time of the calling thread, in seconds: what one core spent,
/// whatever else the machine runs.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Bare parse and full parse timed in alternating batches by the thread's
/// CPU time, so that load from other processes (this machine is shared)
/// neither inflates nor skews the comparison: prints the median and the
/// best batch of each, and their ratio.
fn interleaved(name: &str, page: &str, sel: &worldpool::site::Compiled) {
    const ROUNDS: usize = 400;
    const BATCH: u32 = 10;
    let per_page = |start: f64| (thread_cpu() - start) / f64::from(BATCH);
    let (mut bare, mut full) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = thread_cpu();
        for _ in 0..BATCH {
            let doc = scraper::Html::parse_document(black_box(page));
            black_box(doc.tree.nodes().count());
        }
        bare.push(per_page(t));
        let t = thread_cpu();
        for _ in 0..BATCH {
            let out = parse_guild(black_box(page), sel, "http://bench/guild").expect("parses");
            black_box(out.rows.len());
        }
        full.push(per_page(t));
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let ((bare_med, bare_min), (full_med, full_min)) = (stats(&mut bare), stats(&mut full));
    println!(
        "{name}: interleaved, CPU time per page (one core): parse_document {:.0} µs (best {:.0}), parse_guild {:.0} µs (best {:.0}) = {:.0} pages/s (best {:.0}); extraction adds {:+.1} % (best batches {:+.1} %)",
        bare_med * 1e6,
        bare_min * 1e6,
        full_med * 1e6,
        full_min * 1e6,
        1.0 / full_med,
        1.0 / full_min,
        (full_med / bare_med - 1.0) * 100.0,
        (full_min / bare_min - 1.0) * 100.0,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
