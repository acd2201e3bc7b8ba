//! Integration tests: one binary, a module per area, shared fixtures in
//! `helper/`. Every test runs real processes; none sleeps a fixed time.

mod helper;

mod api;
mod bench;
mod browser;
mod cluster;
mod compat;
mod config;
mod hostile;
mod import;
mod layering;
mod logging;
mod makers;
mod oldpages;
mod parse;
mod pg_tls;
mod player_details;
mod polite;
mod pool;
mod reload;
mod scrape;
mod store;
mod unknown_guild;
mod vip;
