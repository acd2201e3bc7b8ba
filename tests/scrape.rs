//! Tests: scrape.
