//! A misbehaving worker for the pool's own integration tests
//! (`pool/tests/`). Not part of the library: cargo builds it with the tests
//! (`target/<profile>/examples/test_worker`), and nothing ships it.
//!
//! Usage: `test_worker MODE`, run by a pool (channel on fd 3). Heartbeats
//! every `POOL_TEST_HEARTBEAT_MS` milliseconds (default 100).
//!
//! | mode           | behaviour                                                   |
//! |----------------|-------------------------------------------------------------|
//! | `idle`         | ready, heartbeats; exits 0 on SIGTERM or channel EOF        |
//! | `echo`         | `idle`, and sends back every message as an `echo` event     |
//! | `deaf`         | `idle`, but never reads its channel                         |
//! | `alloc`        | ready, then allocates without bound (exit 86 on failure)    |
//! | `spin`         | ready, then burns CPU                                       |
//! | `no-heartbeat` | ready, then silence                                         |
//! | `fail-start`   | exits 1 before ready                                        |
//! | `ignore-term`  | `idle`, but ignores SIGTERM                                 |
//! | `stubborn`     | ignores SIGTERM and channel EOF: only SIGKILL ends it       |

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use pool::{WorkerChannel, WorkerMessage};

/// Exit status after an allocation failed (the pool classifies it as
/// `memory_limit`).
const EXIT_OUT_OF_MEMORY: u8 = pool::exit::EXIT_OUT_OF_MEMORY as u8;

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "fail-start" {
        eprintln!("fail-start: exiting with status 1 before ready");
        return ExitCode::from(1);
    }
    let ignore_term = matches!(mode.as_str(), "ignore-term" | "stubborn");
    // SIGTERM: blocked in every thread and taken by `sigwait` in main, or
    // ignored.
    let term = SigSet::from(Signal::SIGTERM);
    if ignore_term {
        // SAFETY: SIG_IGN installs no handler code.
        let ignored = unsafe {
            nix::sys::signal::signal(Signal::SIGTERM, nix::sys::signal::SigHandler::SigIgn)
        };
        if let Err(e) = ignored {
            eprintln!("cannot ignore SIGTERM: {e}");
            return ExitCode::from(3);
        }
    } else if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None) {
        eprintln!("cannot block SIGTERM: {e}");
        return ExitCode::from(3);
    }

    let Some(channel) = WorkerChannel::from_env().map(Arc::new) else {
        eprintln!("no pool channel");
        return ExitCode::from(2);
    };
    // The descriptor is taken once per process.
    let second_from_env = WorkerChannel::from_env().is_some();
    let send = {
        let channel = channel.clone();
        move |msg: &WorkerMessage| {
            if let Err(e) = channel.send(msg) {
                eprintln!("channel send failed: {e}");
            }
        }
    };

    // Reading the channel: EOF means the supervisor is gone.
    match mode.as_str() {
        "deaf" | "stubborn" => {}
        _ => {
            let incoming = match channel.incoming() {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("no channel reader: {e}");
                    return ExitCode::from(3);
                }
            };
            let echo = mode == "echo";
            let reply = send.clone();
            std::thread::spawn(move || {
                for line in incoming {
                    let Ok(line) = line else { break };
                    if echo {
                        let data =
                            serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                        reply(&WorkerMessage::Event {
                            kind: "echo".into(),
                            data,
                        });
                    }
                }
                eprintln!("INFO supervisor gone (channel EOF), exiting");
                std::process::exit(0);
            });
        }
    }

    send(&WorkerMessage::Ready);
    if mode == "echo" {
        send(&WorkerMessage::Event {
            kind: "hello".into(),
            data: serde_json::json!({
                "pid": std::process::id(),
                "second_from_env": second_from_env,
            }),
        });
    }
    if mode != "no-heartbeat" {
        let period = std::env::var("POOL_TEST_HEARTBEAT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(100));
        let beat = send.clone();
        std::thread::spawn(move || {
            loop {
                beat(&WorkerMessage::Heartbeat);
                std::thread::sleep(period);
            }
        });
    }
    match mode.as_str() {
        "alloc" => {
            std::thread::spawn(allocate);
        }
        "spin" => {
            std::thread::spawn(|| {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            });
        }
        _ => {}
    }
    if ignore_term {
        loop {
            std::thread::park();
        }
    }
    match term.wait() {
        Ok(_) => {
            eprintln!("INFO SIGTERM: exiting");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sigwait failed: {e}");
            ExitCode::from(3)
        }
    }
}

/// Allocate and touch 1 MiB at a time until the memory limit says no.
fn allocate() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(1 << 20).is_err() || hoard.try_reserve(1).is_err() {
            eprintln!("ERROR allocation failed, exiting with status 86");
            std::process::exit(i32::from(EXIT_OUT_OF_MEMORY));
        }
        chunk.resize(1 << 20, 1);
        hoard.push(chunk);
    }
}
