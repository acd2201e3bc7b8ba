//! For the pool's integration tests (`pool/tests/supervisor/spawn.rs`): a
//! supervisor whose stdio is closed when it spawns a worker. Not part of
//! the library; cargo builds it with the tests.
//!
//! Usage: `closed_stdio LOG`. A process started with descriptors 0, 1 and
//! 2 closed finds them open on `/dev/null` once Rust's runtime started (it
//! reopens them), so this one closes them itself, after its runtime and the
//! pool started and just before the worker is added: the worker's channel
//! and output pipes then take those very numbers, as in a supervisor whose
//! stdio was closed (by a daemonizing parent or library). The log (the
//! pool's `tracing` output, plain text) goes to `LOG` on a descriptor above
//! them. The worker (`/bin/sh`) writes a line to its stdout, one to its
//! stderr and an event on its channel. Exit 0 once all three reached the
//! supervisor, 1 when one did not within 10 s, 3 when 0, 1 or 2 could not
//! be closed.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pool::{Pool, PoolEvent, PoolOptions, WorkerSpec};

const SCRIPT: &str = r#"
echo "closed-stdio stdout line"
echo "closed-stdio stderr line" >&2
printf '{"type":"event","kind":"channel_ok"}\n' >&3
exec sleep 1000
"#;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        return ExitCode::from(2);
    };
    let Ok(file) = std::fs::File::create(&path) else {
        return ExitCode::from(2);
    };
    // The log above the stdio numbers.
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let high = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if high < 0 {
        return ExitCode::from(2);
    }
    drop(file);
    // SAFETY: `high` is a new descriptor nobody else owns.
    let mut log = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(high) });
    let _ = writeln!(log, "closed_stdio: started");
    let Ok(writer) = log.try_clone() else {
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(writer))
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::from(2);
    };
    let ok = runtime.block_on(async move {
        let Ok(pool) = Pool::start(vec![], PoolOptions::default()) else {
            return false;
        };
        let h = pool.handle();
        let mut events = h.subscribe();
        // SAFETY: close(2) of the standard descriptors, which nothing here
        // uses any more (the log has its own); fcntl only reads flags.
        let closed = (0..3).all(|fd| unsafe {
            libc::close(fd);
            libc::fcntl(fd, libc::F_GETFD) == -1
        });
        if !closed {
            std::process::exit(3);
        }
        let mut spec = WorkerSpec::new("closed", "/bin/sh");
        spec.args = vec!["-c".into(), SCRIPT.into()];
        spec.heartbeat_timeout = None;
        spec.stop_grace = Duration::from_millis(500);
        if h.add(spec).await.is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut channel = false;
        let logged = |what: &str| {
            std::fs::read_to_string(&path).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.contains(what) && l.contains("worker=\"closed\""))
            })
        };
        while Instant::now() < deadline {
            if channel && logged("stdout line") && logged("stderr line") {
                pool.shutdown().await;
                return true;
            }
            match tokio::time::timeout(Duration::from_millis(20), events.recv()).await {
                Ok(Ok(PoolEvent::Custom { kind, .. })) if kind == "channel_ok" => channel = true,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                _ => {}
            }
        }
        tracing::error!(
            channel,
            stdout = logged("stdout line"),
            stderr = logged("stderr line"),
            "closed_stdio: the worker's streams did not all arrive"
        );
        pool.shutdown().await;
        false
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
