//! `worldpool-test-worker`: a pool worker that misbehaves on demand, for the
//! test suite and the benchmarks (built only with the `test-support`
//! feature, which `cargo test` and `cargo bench` turn on; never installed).
//!
//! It takes the real worker's arguments (`worker --world NAME … --config
//! PATH`, or `--all`, or `--watcher`, with `--watched` and `--pool-budget`), so `worldpool run` can run it in place of itself
//! (`WORLDPOOL_WORKER_PROGRAM`). The misbehaviour comes from `--test-mode
//! MODE` or from `WORLDPOOL_TEST_WORKER_MODE`: a bare mode for every
//! worker (`idle`), or `world=mode` pairs with an optional `*=mode` default
//! (`Bellum=ignore-term,*=idle`). A worker with no mode is the real one.

use std::path::PathBuf;
use std::process::ExitCode;

use worldpool::worker::{Session, SessionOptions, WorkerOptions};

/// Environment variable selecting the modes.
const MODE_ENV: &str = "WORLDPOOL_TEST_WORKER_MODE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Report ready and heartbeats, do nothing else.
    Idle,
    /// Allocate without bound.
    Alloc,
    /// Spin on the CPU.
    Spin,
    /// Report ready, then stop sending heartbeats.
    NoHeartbeat,
    /// Exit with status 1 at start, every time.
    FailStart,
    /// Ignore SIGTERM.
    IgnoreTerm,
    /// Like idle, and write an INFO line to stderr every 2 ms.
    Chatty,
    /// Ignore SIGTERM and do not watch the channel for EOF: only
    /// `PR_SET_PDEATHSIG` (or SIGKILL) ends it when the supervisor dies.
    Stubborn,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        Some(match text.trim() {
            "idle" => Mode::Idle,
            "alloc" => Mode::Alloc,
            "spin" => Mode::Spin,
            "no-heartbeat" => Mode::NoHeartbeat,
            "fail-start" => Mode::FailStart,
            "ignore-term" => Mode::IgnoreTerm,
            "stubborn" => Mode::Stubborn,
            "chatty" => Mode::Chatty,
            _ => return None,
        })
    }
}

/// The mode for `worlds` from a [`MODE_ENV`] value.
fn mode_from_env_value(value: &str, worlds: &[String]) -> Option<Mode> {
    let mut default = None;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            None => default = Mode::parse(part),
            Some(("*", mode)) => default = Mode::parse(mode),
            Some((world, mode)) => {
                if worlds.iter().any(|w| w == world.trim()) {
                    return Mode::parse(mode);
                }
            }
        }
    }
    default
}

struct Args {
    worlds: Vec<String>,
    all: bool,
    config: PathBuf,
    mode: Option<Mode>,
    watcher: bool,
    watched: bool,
    pool_budget: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("worker") => {}
        other => return Err(format!("expected `worker`, got {other:?}")),
    }
    let mut out = Args {
        worlds: Vec::new(),
        all: false,
        config: PathBuf::from("config/worlds.toml"),
        mode: None,
        watcher: false,
        watched: false,
        pool_budget: false,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--world" => out.worlds.push(value()?),
            "--all" => out.all = true,
            "--watcher" => out.watcher = true,
            "--watched" => out.watched = true,
            "--pool-budget" => out.pool_budget = true,
            "--config" | "-c" => out.config = PathBuf::from(value()?),
            "--test-mode" => {
                let m = value()?;
                out.mode = Some(Mode::parse(&m).ok_or_else(|| format!("unknown mode {m}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if out.mode.is_none()
        && let Ok(v) = std::env::var(MODE_ENV)
    {
        out.mode = mode_from_env_value(&v, &out.worlds);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("worldpool-test-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .without_time()
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
    let Some(mode) = args.mode else {
        // No misbehaviour asked for: the real worker.
        return match worldpool::worker::main(WorkerOptions {
            watcher: args.watcher,
            watched: args.watched,
            pool_budget: args.pool_budget,
            ..WorkerOptions::new(args.worlds, args.all, args.config)
        }) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    };
    worldpool::worker::install_panic_hook();
    if mode == Mode::FailStart {
        eprintln!("test mode fail-start: exiting with status 1 before ready");
        return ExitCode::from(1);
    }
    if matches!(mode, Mode::IgnoreTerm | Mode::Stubborn) {
        // SAFETY: setting a signal disposition to SIG_IGN is always sound.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    let session = match Session::open_with(SessionOptions {
        watch_supervisor: mode != Mode::Stubborn,
        handle_sigterm: !matches!(mode, Mode::IgnoreTerm | Mode::Stubborn),
        heartbeats: mode != Mode::NoHeartbeat,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    session.block_on(|_channel, token| async move {
        match mode {
            Mode::Alloc => {
                tokio::spawn(async {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        // Touch every page so it is really allocated.
                        hoard.push(vec![1u8; 1 << 20]);
                        tokio::task::yield_now().await;
                    }
                });
            }
            Mode::Spin => {
                let spun = std::thread::Builder::new().name("spin".into()).spawn(|| {
                    let mut x: u64 = 0;
                    loop {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                });
                if let Err(e) = spun {
                    eprintln!("cannot start the spinning thread: {e}");
                }
            }
            Mode::Chatty => {
                tokio::spawn(async {
                    let mut tick = tokio::time::interval(std::time::Duration::from_millis(2));
                    for n in 0u64.. {
                        tick.tick().await;
                        eprintln!("INFO chatter {n}: a line the supervisor re-logs");
                    }
                });
            }
            _ => {}
        }
        token.cancelled().await;
    });
    session.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_env_values() {
        let w = |s: &str| vec![s.to_string()];
        let table = [
            ("idle", w("A"), Some(Mode::Idle)),
            ("no-heartbeat", w("A"), Some(Mode::NoHeartbeat)),
            ("B=ignore-term,*=idle", w("B"), Some(Mode::IgnoreTerm)),
            ("B=ignore-term,*=idle", w("A"), Some(Mode::Idle)),
            ("B=ignore-term", w("A"), None),
            ("", w("A"), None),
            ("bogus", w("A"), None),
        ];
        for (value, worlds, want) in table {
            assert_eq!(mode_from_env_value(value, &worlds), want, "{value}");
        }
    }
}
