//! Integration tests of the pool: real processes (the `test_worker`
//! example and small shell scripts), real signals. One binary, a module per
//! area; nothing sleeps a fixed time (everything waits for a condition with
//! a deadline).

mod helper;

mod channel;
mod dynamic;
mod lifecycle;
mod limits;
mod spawn;
