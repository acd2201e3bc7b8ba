//! The worker process: `worldpool worker --world NAME --config PATH`.
//!
//! Started by the pool (`crate::supervise`) with the channel on fd 3. It
//! builds a small tokio runtime, reports `ready`, sends heartbeats, and runs
//! the scrape loop until SIGTERM (exit 0) or until the supervisor is gone
//! (EOF on the channel).
//!
//! Test modes (`--test-mode MODE`, or the environment variable
//! [`TEST_MODE_ENV`]) replace the scrape loop with a misbehaviour the
//! integration tests need; they need no config file.
//!
//! Memory: a failed allocation makes the worker exit with
//! [`pool::exit::EXIT_OUT_OF_MEMORY`] (see [`ExitOnOom`]) instead of a bare
//! abort, so the pool can tell a memory limit from a crash.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum as _;
use pool::{WorkerChannel, WorkerMessage};
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;

mod reporter;

pub use reporter::Reporter;

/// Environment variable the supervisor sets to the heartbeat period in
/// milliseconds (`heartbeat_timeout / 3`).
pub const HEARTBEAT_ENV: &str = "WORLDPOOL_HEARTBEAT_MS";

/// Environment variable selecting a test mode when `--test-mode` is not
/// given: either a bare mode (`idle`) for every worker, or comma-separated
/// `world=mode` pairs with an optional `*=mode` default
/// (`Bellum=ignore-term,*=idle`). `worldpool run` passes its environment to
/// its workers, so tests set it on the supervisor.
pub const TEST_MODE_ENV: &str = "WORLDPOOL_WORKER_TEST_MODE";

/// Test-only behaviours of the worker (hidden flag `--test-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestMode {
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
}

/// The test mode for `worlds` from a [`TEST_MODE_ENV`] value.
pub fn test_mode_from_env_value(value: &str, worlds: &[String]) -> Option<TestMode> {
    let mut default = None;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            None => default = TestMode::from_str(part, true).ok(),
            Some(("*", mode)) => default = TestMode::from_str(mode.trim(), true).ok(),
            Some((world, mode)) => {
                if worlds.iter().any(|w| w == world.trim()) {
                    return TestMode::from_str(mode.trim(), true).ok();
                }
            }
        }
    }
    default
}

/// Global allocator: the system allocator, except that a failed
/// allocation writes a short message to stderr and exits with
/// [`pool::exit::EXIT_OUT_OF_MEMORY`] (86). On success it adds one
/// null check. (It also applies to the supervisor, where running out of
/// memory is just as fatal.) Note: this turns a failed `try_reserve` into
/// an exit too.
pub struct ExitOnOom;

#[cold]
fn out_of_memory() -> ! {
    const MSG: &[u8] =
        b"worldpool: memory allocation failed (memory limit?), exiting with status 86\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe and allocate nothing.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(pool::exit::EXIT_OUT_OF_MEMORY);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; a null result
// never returns to the caller.
unsafe impl GlobalAlloc for ExitOnOom {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
}

#[global_allocator]
static GLOBAL: ExitOnOom = ExitOnOom;

/// Print the panic, then abort: a runtime that cannot spawn its threads
/// panics on a background thread, and without this the process would hang.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::abort();
    }));
}

/// Entry point of the worker process.
pub fn main(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    install_panic_hook();
    match worker_main(args) {
        Ok(code) => Ok(code),
        Err(e) if is_out_of_memory(&e) => {
            // Threads or buffers could not be created under the memory
            // limit: report it as the memory limit it is.
            eprintln!("worldpool worker: {e:#} (memory limit?)");
            Ok(ExitCode::from(pool::exit::EXIT_OUT_OF_MEMORY as u8))
        }
        Err(e) => Err(e),
    }
}

fn is_out_of_memory(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::OutOfMemory
            )
        })
    })
}

fn worker_main(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let mode = args.test_mode.or_else(|| {
        std::env::var(TEST_MODE_ENV)
            .ok()
            .and_then(|v| test_mode_from_env_value(&v, &args.world))
    });
    if mode == Some(TestMode::FailStart) {
        eprintln!("test mode fail-start: exiting with status 1 before ready");
        return Ok(ExitCode::from(1));
    }
    if mode == Some(TestMode::IgnoreTerm) {
        // SAFETY: setting a signal disposition to SIG_IGN is always sound.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    // Real mode needs the config before anything starts.
    let config = match mode {
        Some(_) => None,
        None => match crate::config::Config::load(&args.config) {
            Ok(c) => Some(c),
            Err(e) => {
                eprint!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let worlds = match &config {
        Some(c) if args.all || args.world.is_empty() => {
            c.worlds.iter().map(|w| w.name.clone()).collect()
        }
        Some(c) => {
            for w in &args.world {
                if c.world(w).is_none() {
                    eprintln!("world `{w}` is not in {}", args.config.display());
                    return Ok(ExitCode::from(2));
                }
            }
            args.world.clone()
        }
        None => args.world.clone(),
    };

    // Open the channel before anything else can take descriptor 3.
    let channel = WorkerChannel::from_env().map(Arc::new);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .thread_name("worker-rt")
        .enable_all()
        .build()?;
    let token = CancellationToken::new();
    if let Some(ch) = &channel {
        watch_supervisor(ch, token.clone())?;
    }
    let result = runtime.block_on(run(mode, config, worlds, channel, token));
    // Do not wait for blocking tasks (DNS lookups…) at exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Exit when the supervisor's end of the channel closes.
fn watch_supervisor(channel: &WorkerChannel, token: CancellationToken) -> anyhow::Result<()> {
    let mut reader = channel.eof_watcher()?;
    std::thread::Builder::new()
        .name("eof-watcher".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            tracing::warn!("supervisor gone (channel closed), exiting");
            token.cancel();
            // Give the scrape loop a moment to stop cleanly, then go.
            std::thread::sleep(Duration::from_secs(2));
            // SAFETY: _exit ends the process without running destructors.
            unsafe { libc::_exit(0) };
        })?;
    Ok(())
}

async fn run(
    mode: Option<TestMode>,
    config: Option<crate::config::Config>,
    worlds: Vec<String>,
    channel: Option<Arc<WorkerChannel>>,
    token: CancellationToken,
) -> anyhow::Result<ExitCode> {
    if mode != Some(TestMode::IgnoreTerm) {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let t = token.clone();
        tokio::spawn(async move {
            term.recv().await;
            tracing::info!("SIGTERM: stopping");
            t.cancel();
        });
    }
    let send = |msg: WorkerMessage| {
        if let Some(ch) = &channel
            && let Err(e) = ch.send(&msg)
        {
            tracing::debug!(error = %e, "channel send failed");
        }
    };
    send(WorkerMessage::Ready);
    if mode != Some(TestMode::NoHeartbeat) {
        let period = std::env::var(HEARTBEAT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(10));
        let reporter = Reporter::new(channel.clone());
        let t = token.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => reporter.heartbeat(),
                    () = t.cancelled() => break,
                }
            }
        });
    }
    match (mode, config) {
        (None, Some(config)) => {
            crate::scrape::run_worker(config, worlds, Reporter::new(channel), token).await?;
        }
        (Some(TestMode::Alloc), _) => {
            tokio::spawn(async {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so it is really allocated.
                    hoard.push(vec![1u8; 1 << 20]);
                    tokio::task::yield_now().await;
                }
            });
            token.cancelled().await;
        }
        (Some(TestMode::Spin), _) => {
            std::thread::Builder::new().name("spin".into()).spawn(|| {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })?;
            token.cancelled().await;
        }
        _ => token.cancelled().await,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mode_env_values() {
        let w = |s: &str| vec![s.to_string()];
        let table = [
            ("idle", w("A"), Some(TestMode::Idle)),
            ("no-heartbeat", w("A"), Some(TestMode::NoHeartbeat)),
            ("B=ignore-term,*=idle", w("B"), Some(TestMode::IgnoreTerm)),
            ("B=ignore-term,*=idle", w("A"), Some(TestMode::Idle)),
            ("B=ignore-term", w("A"), None),
            ("", w("A"), None),
            ("bogus", w("A"), None),
        ];
        for (value, worlds, want) in table {
            assert_eq!(test_mode_from_env_value(value, &worlds), want, "{value}");
        }
    }
}
