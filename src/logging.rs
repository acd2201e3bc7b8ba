//! Tracing subscriber for the binary (libraries only emit events).

use std::io::IsTerminal as _;
use std::str::FromStr;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

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

/// Install the global subscriber, filtered by `RUST_LOG`, else
/// `settings.level`, else `info`. Escape codes only on a terminal, so a
/// `worldpool run > run.log` file stays plain. Workers always write plain
/// text without time or target: the supervisor reads their stderr line by
/// line, re-emits each line at its level, tagged with the world, in its own
/// format.
pub fn init(settings: &LogSettings, is_worker: bool) {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            settings
                .level
                .as_deref()
                .and_then(|l| EnvFilter::try_new(l).ok())
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if is_worker {
        builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init()
    } else if settings.format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
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
}
