//! Ephemeral PostgreSQL cluster for tests (stub).
