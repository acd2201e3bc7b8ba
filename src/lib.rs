//! worldpool: a process-pool scraping orchestrator.
//!
//! The binary is thin (`main.rs`); everything lives here so that tests and
//! benchmarks can reach it. Module map:
//!
//! - [`commands`]: the command line, one file per verb (the only place
//!   that knows clap).
//! - [`config`]: the TOML config, validated with every problem reported.
//! - [`protocol`]: the typed messages between a worker and the supervisor.
//! - [`supervise`]: `worldpool run`: worker specs from the config, the pool,
//!   signals, the API.
//! - [`reload`]: reloading the config of a running pool (plan, apply,
//!   triggers); [`app_events`]: the supervisor's own events on the SSE stream.
//! - [`worker`]: the worker process entry point (`worldpool worker`).
//! - [`site`], [`scrape`]: fetching and parsing the ranking site, the scrape loop.
//! - [`store`]: runs, players and deltas in SQLite or PostgreSQL.
//! - [`legacy`], [`import`]: the replaced system's formats, and importing
//!   its data folder or SQLite file.
//! - [`demo_site`]: an offline copy of the site with fault injection.
//! - [`api`]: the REST API (axum) and `worldpool status`.
//! - [`bench`]: `worldpool bench`.
//! - [`memory`]: keeping the processes small (arenas, start-up pages).

pub mod api;
pub mod app_events;
pub mod bench;
pub mod budget;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod demo_site;
pub mod import;
pub mod legacy;
pub mod logging;
pub mod memory;
pub mod protocol;
pub mod reload;
pub mod scrape;
pub mod site;
pub mod store;
pub mod supervise;
pub mod topology;
pub mod watcher;
pub mod worker;
