//! Tracing subscriber for the binary (libraries only emit events).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber: human text by default, JSON on request,
/// filtered by `RUST_LOG` (default `info`). Workers log to stderr, which the
/// supervisor captures line by line and tags with the world.
pub fn init(json: bool, is_worker: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else if is_worker {
        // The supervisor adds its own timestamp and world tag.
        builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("warning: could not install the log subscriber: {e}");
    }
}
