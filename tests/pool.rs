//! Tests: pool.
