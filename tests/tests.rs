//! Integration tests: one binary, a module per area, shared fixtures in
//! `helper/`. Every test runs real processes; none sleeps a fixed time.

mod helper;

mod api;
mod bench;
mod config;
mod parse;
mod pool;
mod scrape;
mod store;
