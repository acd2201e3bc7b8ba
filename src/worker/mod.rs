//! The worker process: `worldpool worker --world NAME --config PATH`.
//!
//! Started by the pool (`crate::supervise`) with the channel on fd 3. It
//! builds a small tokio runtime, reports `ready`, sends heartbeats, and runs
//! the scrape loop until SIGTERM (exit 0) or until the supervisor is gone
//! (EOF on the channel).
//!
//! Memory: a failed allocation makes the worker exit with
//! [`pool::exit::EXIT_OUT_OF_MEMORY`] (see [`ExitOnOom`]) instead of a bare
//! abort, so the pool can tell a memory limit from a crash.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pool::{WorkerChannel, WorkerMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::SupervisorMessage;
use crate::site::Limiter;

use crate::scrape::Reporter;

use crate::protocol::HEARTBEAT_ENV;

/// Which worlds a worker process scrapes, from which config.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The worlds (one in pool mode); empty or `all` = every world.
    pub worlds: Vec<String>,
    /// Scrape every world of the config in turn (single mode).
    pub all: bool,
    /// Config file.
    pub config: std::path::PathBuf,
    /// Be the pool's status watcher instead of a world worker.
    pub watcher: bool,
    /// Wait for the pool's status watcher instead of polling (pool mode
    /// with a watcher).
    pub watched: bool,
    /// Ask the supervisor's budget before each request
    /// (`[site] budget = "pool"`).
    pub pool_budget: bool,
}

impl WorkerOptions {
    /// A plain world worker of `config` for `worlds` (polling on its own,
    /// with a budget of its own).
    pub fn new(worlds: Vec<String>, all: bool, config: std::path::PathBuf) -> WorkerOptions {
        WorkerOptions {
            worlds,
            all,
            config,
            watcher: false,
            watched: false,
            pool_budget: false,
        }
    }
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
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::abort();
    }));
}

/// Entry point of the worker process.
pub fn main(options: WorkerOptions) -> anyhow::Result<ExitCode> {
    install_panic_hook();
    match worker_main(options) {
        Ok(code) => Ok(code),
        Err(e) if crate::scrape::is_fenced(&e) => {
            eprintln!("worldpool worker: {e:#}");
            Ok(ExitCode::from(pool::exit::EXIT_FENCED as u8))
        }
        Err(e) if is_out_of_memory(&e) => {
            // Threads or buffers could not be created under the memory
            // limit: report it as the memory limit it is.
            eprintln!("worldpool worker: {e:#} (memory limit?)");
            Ok(ExitCode::from(pool::exit::EXIT_OUT_OF_MEMORY as u8))
        }
        Err(e) => Err(e),
    }
}

/// Context marking errors of the scrape loop itself (not of start-up).
#[derive(Debug)]
struct ScrapeLoopFailed;

impl std::fmt::Display for ScrapeLoopFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scrape loop failed")
    }
}

/// A start-up failure caused by the memory limit: threads that cannot be
/// created (EAGAIN) or memory that cannot be mapped (ENOMEM). Errors of the
/// scrape loop never count (a non-blocking socket says EAGAIN too).
fn is_out_of_memory(e: &anyhow::Error) -> bool {
    if e.downcast_ref::<ScrapeLoopFailed>().is_some() {
        return false;
    }
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::OutOfMemory
            )
        })
    })
}

fn worker_main(args: WorkerOptions) -> anyhow::Result<ExitCode> {
    // The config before anything starts.
    let config = match crate::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let worlds = if args.watcher {
        Vec::new()
    } else if args.all || args.worlds.is_empty() {
        config.worlds.iter().map(|w| w.name.clone()).collect()
    } else {
        for w in &args.worlds {
            if config.world(w).is_none() {
                eprintln!("world `{w}` is not in {}", args.config.display());
                return Ok(ExitCode::from(2));
            }
        }
        args.worlds.clone()
    };
    let mut session = Session::open()?;
    let mut messages = session.take_messages();
    let result = session.block_on(|channel, token| async move {
        // The pool's budget: every site client of this process asks it.
        let limiter = match (&channel, args.pool_budget) {
            (Some(ch), true) => {
                let l = Limiter::pool(ch.clone());
                Limiter::install(l.clone());
                Some(l)
            }
            _ => None,
        };
        let check_now = if args.watched && !args.watcher {
            crate::scrape::CheckNow::watched()
        } else {
            crate::scrape::CheckNow::new()
        };
        let wake = check_now.clone();
        let reporter = Reporter::new(channel);
        let details = crate::scrape::PlayerDetailsService::new(
            config.clone(),
            worlds.clone(),
            reporter.clone(),
        );
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                route(message, &wake, limiter.as_ref(), &details);
            }
        });
        if args.watcher {
            crate::watcher::run_watcher(config, reporter, token, check_now)
                .await
                .context(ScrapeLoopFailed)
        } else {
            crate::scrape::run_worker_with(config, worlds, reporter, token, check_now)
                .await
                .context(ScrapeLoopFailed)
        }
    });
    session.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}

/// Hand one message of the supervisor to whom it concerns.
fn route(
    message: SupervisorMessage,
    wake: &crate::scrape::CheckNow,
    limiter: Option<&Limiter>,
    details: &Arc<crate::scrape::PlayerDetailsService>,
) {
    match message {
        SupervisorMessage::CheckNow => wake.request(),
        SupervisorMessage::WorldDue {
            world,
            update_time,
            checked_at,
        } => wake.world_due(&world, update_time, checked_at),
        SupervisorMessage::WatcherUp { checked_at } => wake.watcher_up(checked_at),
        SupervisorMessage::WatcherDown => wake.watcher_down(),
        SupervisorMessage::BudgetGrant { host, ids } => match limiter {
            Some(l) => l.requester().granted(&host, &ids),
            None => tracing::warn!(%host, "a budget grant, but this worker has its own budget"),
        },
        SupervisorMessage::BudgetResync => {
            if let Some(l) = limiter {
                l.requester().resync();
            }
        }
        SupervisorMessage::PlayerDetails { id, name, world } => details.spawn(id, name, world),
    }
}

/// The process side of being a pool worker: the channel (fd 3, taken
/// first), a small runtime, the watch for the supervisor's end, SIGTERM as
/// a cancellation, `ready` and heartbeats. The scrape loop and the test
/// worker both run inside one.
pub struct Session {
    channel: Option<Arc<WorkerChannel>>,
    runtime: tokio::runtime::Runtime,
    token: CancellationToken,
    messages: Option<mpsc::UnboundedReceiver<SupervisorMessage>>,
}

impl Session {
    /// Take the channel (before anything else can take descriptor 3),
    /// build the runtime, start watching the supervisor.
    pub fn open() -> anyhow::Result<Session> {
        Session::open_with(SessionOptions::default())
    }

    /// [`Session::open`] with options (the test worker misbehaves with them).
    pub fn open_with(options: SessionOptions) -> anyhow::Result<Session> {
        let channel = WorkerChannel::from_env().map(Arc::new);
        // One malloc arena and one runtime thread: a worker scrapes one
        // world, its waits are I/O, and every thread would bring a stack
        // and an arena of its own. SQLite and DNS run on the blocking pool.
        crate::memory::limit_malloc_arenas(1);
        let runtime = if crate::memory::off("threads") {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(4)
                .thread_name("worker-rt")
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(2)
                .thread_name("worker-rt")
                .enable_all()
                .build()?
        };
        let token = CancellationToken::new();
        let (tx, messages) = mpsc::unbounded_channel();
        if let Some(ch) = &channel
            && options.watch_supervisor
        {
            read_supervisor(ch, tx, token.clone())?;
        }
        if options.handle_sigterm {
            let _guard = runtime.enter();
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let t = token.clone();
            runtime.spawn(async move {
                term.recv().await;
                tracing::info!("SIGTERM: stopping");
                t.cancel();
            });
        }
        let session = Session {
            channel,
            runtime,
            token,
            messages: Some(messages),
        };
        session.send(WorkerMessage::Ready);
        if options.heartbeats {
            session.start_heartbeats();
        }
        Ok(session)
    }

    fn send(&self, msg: WorkerMessage) {
        if let Some(ch) = &self.channel
            && let Err(e) = ch.send(&msg)
        {
            tracing::debug!(error = %e, "channel send failed");
        }
    }

    fn start_heartbeats(&self) {
        let period = std::env::var(HEARTBEAT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(10));
        let reporter = Reporter::new(self.channel.clone());
        let t = self.token.clone();
        self.runtime.spawn(async move {
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

    /// The supervisor's messages, in order (taken once; later calls get a
    /// receiver that never yields).
    pub fn take_messages(&mut self) -> mpsc::UnboundedReceiver<SupervisorMessage> {
        self.messages
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    /// Run `body` (given the channel and the stop token) on the runtime.
    pub fn block_on<F, Fut, T>(&self, body: F) -> T
    where
        F: FnOnce(Option<Arc<WorkerChannel>>, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.runtime
            .block_on(body(self.channel.clone(), self.token.clone()))
    }

    /// End the runtime without waiting for blocking tasks (DNS lookups…).
    pub fn shutdown(self) {
        self.runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

/// How a [`Session`] behaves; the defaults are the real worker's.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Read the supervisor's messages, and exit when its end of the
    /// channel closes.
    pub watch_supervisor: bool,
    /// SIGTERM cancels the session's token.
    pub handle_sigterm: bool,
    /// Send heartbeats every [`HEARTBEAT_ENV`] milliseconds.
    pub heartbeats: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            watch_supervisor: true,
            handle_sigterm: true,
            heartbeats: true,
        }
    }
}

/// Read the supervisor's messages on a thread of their own, forwarding
/// them in order; when its end of the channel closes (the supervisor is
/// gone), cancel `token` and exit shortly after.
fn read_supervisor(
    channel: &WorkerChannel,
    messages: mpsc::UnboundedSender<SupervisorMessage>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let mut incoming = channel.incoming()?;
    std::thread::Builder::new()
        .name("supervisor-reader".into())
        .spawn(move || {
            loop {
                match incoming.recv::<SupervisorMessage>() {
                    Ok(Some(message)) => {
                        // Nobody listening (a test worker) is fine.
                        let _ = messages.send(message);
                    }
                    Ok(None) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        tracing::warn!(error = %e, "message from the supervisor not understood; ignored");
                    }
                    Err(_) => break,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_up_resource_errors_mean_out_of_memory() {
        let eagain = || anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EAGAIN));
        assert!(is_out_of_memory(&eagain()));
        assert!(is_out_of_memory(&eagain().context("building the runtime")));
        assert!(!is_out_of_memory(&eagain().context(ScrapeLoopFailed)));
        assert!(!is_out_of_memory(&anyhow::anyhow!("config")));
    }
}
