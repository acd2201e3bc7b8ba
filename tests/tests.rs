//! Integration tests: one binary, a module per area, shared fixtures in
//! `helper/`. Every test runs real processes; none sleeps a fixed time.

mod helper;

mod api;
mod bench;
mod browser;
mod compat;
mod config;
mod import;
mod logging;
mod oldpages;
mod parse;
mod polite;
mod pool;
mod reload;
mod scrape;
mod store;
mod vip;
