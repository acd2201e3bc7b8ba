//! Tracing subscriber for the binary (libraries only emit events), and the
//! console stream: the workers' log lines as the API's
//! `/api/console-stream` serves them.
//!
//! The supervisor re-emits every line a worker writes to stderr as a
//! tracing event with target `pool::worker` and the fields `worker` and
//! `stream`, at the line's level. [`ConsoleLayer`], installed by [`init`],
//! copies those events into a bounded broadcast ([`subscribe_console`]):
//! sending never waits, and a subscriber that falls [`CONSOLE_BUFFER`]
//! lines behind loses them (the API then drops it), so a slow client never
//! slows the pool.

mod queue;

pub use queue::{QUEUE_LINES, flush};

use std::io::IsTerminal as _;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the supervisor's re-emitted worker lines.
pub const WORKER_LINE_TARGET: &str = "pool::worker";

/// Lines a console subscriber may fall behind before it is dropped.
pub const CONSOLE_BUFFER: usize = 1024;

/// One log line of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleLine {
    /// When the supervisor read it.
    pub time: DateTime<Utc>,
    /// The worker (its world in pool mode).
    pub world: String,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The line, without its level word.
    pub message: String,
    /// `stderr` or `stdout`.
    pub stream: String,
}

fn console() -> &'static broadcast::Sender<ConsoleLine> {
    static CONSOLE: OnceLock<broadcast::Sender<ConsoleLine>> = OnceLock::new();
    CONSOLE.get_or_init(|| broadcast::channel(CONSOLE_BUFFER).0)
}

/// Follow the workers' log lines from now on.
pub fn subscribe_console() -> broadcast::Receiver<ConsoleLine> {
    console().subscribe()
}

/// Publish a line to the console subscribers (never waits; nothing happens
/// without subscribers).
pub fn publish_console(line: ConsoleLine) {
    let _ = console().send(line);
}

/// Copies the supervisor's re-emitted worker lines into the console
/// broadcast. Install it with the [`console_filter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleLayer;

/// Only the re-emitted worker lines, at every level (the workers' own
/// `[log] level` already chose what they print).
pub fn console_filter() -> Targets {
    Targets::new().with_target(WORKER_LINE_TARGET, LevelFilter::TRACE)
}

#[derive(Default)]
struct LineFields {
    worker: Option<String>,
    stream: Option<String>,
    message: Option<String>,
}

impl Visit for LineFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "worker" => self.worker = Some(value.to_string()),
            "stream" => self.stream = Some(value.to_string()),
            "message" => self.message = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "worker" => self.worker = Some(format!("{value:?}")),
            "stream" => self.stream = Some(format!("{value:?}")),
            "message" => self.message = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() != WORKER_LINE_TARGET || console().receiver_count() == 0 {
            return;
        }
        let mut fields = LineFields::default();
        event.record(&mut fields);
        publish_console(ConsoleLine {
            time: Utc::now(),
            world: fields.worker.unwrap_or_default(),
            level: meta.level().to_string(),
            message: fields.message.unwrap_or_default(),
            stream: fields.stream.unwrap_or_default(),
        });
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human text; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}`: use text or json")),
        }
    }
}

/// `[log]` (and `--log-format`): format and level.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// Text or JSON.
    pub format: LogFormat,
    /// A filter such as `info` or `worldpool=debug,pool=info`; `RUST_LOG`
    /// takes precedence; `None` = `info`.
    pub level: Option<String>,
}

/// Whether `level` is a filter `RUST_LOG` would accept (`info`,
/// `worldpool=debug,pool=info`, …).
pub fn valid_level(level: &str) -> bool {
    EnvFilter::try_new(level).is_ok()
}

/// The supervisor's filter, changed by [`set_level`].
static LEVEL: OnceLock<
    tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
> = OnceLock::new();

/// Change the filter of the subscriber [`init`] installed to `level`
/// (`None` = `info`), as a config reload does with `[log] level`.
/// `Ok(false)` when nothing changed: `RUST_LOG` is set (it wins), or no
/// subscriber of [`init`] is installed (a worker, a test).
pub fn set_level(level: Option<&str>) -> Result<bool, String> {
    if std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty()) {
        return Ok(false);
    }
    let Some(handle) = LEVEL.get() else {
        return Ok(false);
    };
    let filter = EnvFilter::try_new(level.unwrap_or("info")).map_err(|e| e.to_string())?;
    handle.reload(filter).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Install the global subscriber, filtered by `RUST_LOG`, else
/// `settings.level`, else `info`. Escape codes only on a terminal, so a
/// `worldpool run > run.log` file stays plain. Workers always write plain
/// text without time or target: the supervisor reads their stderr line by
/// line, re-emits each line at its level, tagged with the world, in its own
/// format.
///
/// `queued` (the supervisor): lines go to stderr through [`queue`]'s
/// bounded queue and thread, so that no thread of the pool ever waits for
/// stderr to be read; call [`flush`] before exiting.
pub fn init(settings: &LogSettings, is_worker: bool, queued: bool) {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            settings
                .level
                .as_deref()
                .and_then(|l| EnvFilter::try_new(l).ok())
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let result = if is_worker {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init()
            .map_err(|e| e.to_string())
    } else {
        let json = settings.format == LogFormat::Json;
        let ansi = std::io::stderr().is_terminal();
        let output = match (json, queued) {
            (true, false) => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
            (true, true) => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(queue::Queued::new(true))
                .boxed(),
            (false, false) => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .boxed(),
            (false, true) => tracing_subscriber::fmt::layer()
                .with_writer(queue::Queued::new(false))
                .with_ansi(ansi)
                .boxed(),
        };
        let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
        tracing_subscriber::registry()
            .with(output.with_filter(filter))
            .with(ConsoleLayer.with_filter(console_filter()))
            .try_init()
            .map(|()| {
                // Only a layer that was installed can be reloaded.
                let _ = LEVEL.set(handle);
            })
            .map_err(|e| e.to_string())
    };
    if let Err(e) = result {
        eprintln!("warning: could not install the log subscriber: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_levels() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" Text ".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
        assert!(valid_level("info"));
        assert!(valid_level("worldpool=debug,pool=info"));
        assert!(!valid_level("worldpool=loud"));
    }

    #[test]
    fn console_layer_copies_worker_lines_only() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let mut rx = subscribe_console();
        let subscriber =
            tracing_subscriber::registry().with(ConsoleLayer.with_filter(console_filter()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "pool::worker", worker = "Aurera", stream = "stderr", "run stored rows=3");
            tracing::warn!(target: "worldpool::api", "not a worker line");
            tracing::warn!(target: "pool::worker", worker = "São Paulo", stream = "stderr", "store down");
        });
        let a = rx.try_recv().expect("first line");
        assert_eq!(
            (
                a.world.as_str(),
                a.level.as_str(),
                a.message.as_str(),
                a.stream.as_str()
            ),
            ("Aurera", "INFO", "run stored rows=3", "stderr")
        );
        let b = loop {
            let line = rx.try_recv().expect("second line");
            // Other tests of this process may publish too.
            if line.world == "São Paulo" {
                break line;
            }
        };
        assert_eq!(
            (b.level.as_str(), b.message.as_str()),
            ("WARN", "store down")
        );
    }
}
