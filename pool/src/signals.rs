//! Signals to a worker's process group, and reaping its leader.
//!
//! Every worker leads its own process group (`process_group(0)`), so a
//! signal to the group (`killpg`) reaches the worker's own children too.
//!
//! Pid reuse: a group id is the leader's pid. While the leader is not
//! reaped (alive or a zombie), its pid, and so the group id, cannot be given
//! to another process. Once it is reaped, the number can be reused as soon
//! as the group is empty, and a `killpg` could hit a stranger. So a
//! [`Group`] signals only while its leader is unreaped, and
//! [`Group::reap`] consumes it: the type makes a signal after the reap
//! impossible.
//!
//! Exit detection uses a pidfd of the leader, which becomes readable when
//! the leader exits *without* reaping it. That leaves a safe moment to
//! SIGKILL what is left of the group (children the worker left behind),
//! then reap. Where `pidfd_open` is not available, SIGCHLD wakes the group
//! and `waitid(WNOWAIT)` tells whether the leader exited, without reaping
//! it either.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};

/// The process group of one worker, led by its (unreaped) process.
pub(crate) struct Group {
    pid: u32,
    started: Instant,
    /// Readable once the leader exited; `None` when pidfds are unavailable
    /// (then SIGCHLD and `waitid(WNOWAIT)` tell, without reaping either).
    pidfd: Option<AsyncFd<OwnedFd>>,
    sigchld: Option<tokio::signal::unix::Signal>,
    /// `reap` ran: nothing to signal or kill on drop.
    done: bool,
}

impl Group {
    /// Take charge of a freshly spawned group leader (our child).
    pub fn new(pid: u32, started: Instant) -> Group {
        let pidfd = match pidfd_open(pid).and_then(watch) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!(pid, error = %e, "no pidfd: waiting for the exit with SIGCHLD");
                None
            }
        };
        Group {
            pid,
            started,
            pidfd,
            sigchld: None,
            done: false,
        }
    }

    /// The leader's pid (= the group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the leader was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Send `signal` to every process of the group (the leader is not
    /// reaped yet, so its pid still names this group).
    pub fn signal(&self, signal: Signal) {
        if self.done {
            return;
        }
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid = self.pid, ?signal, error = %e, "killpg failed"),
        }
    }

    /// Wait until the leader has exited. Cancel safe. The leader is not
    /// reaped when this returns.
    pub async fn exited(&mut self) {
        if let Some(fd) = &self.pidfd {
            match fd.readable().await {
                Ok(mut ready) => {
                    ready.retain_ready();
                    return;
                }
                Err(e) => {
                    tracing::warn!(pid = self.pid, error = %e, "pidfd poll failed; waiting with SIGCHLD");
                    self.pidfd = None;
                }
            }
        }
        if self.sigchld.is_none() {
            match signal(SignalKind::child()) {
                Ok(s) => self.sigchld = Some(s),
                Err(e) => {
                    tracing::error!(pid = self.pid, error = %e, "cannot watch SIGCHLD; the exit will not be seen");
                    return std::future::pending().await;
                }
            }
        }
        // Registered first, checked second: no exit can slip between.
        while !has_exited(self.pid) {
            match self.sigchld.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// After [`exited`](Self::exited): SIGKILL what is left of the group
    /// while the leader's pid still pins the group id, then reap the
    /// leader and return its status.
    pub async fn reap(mut self) -> io::Result<ExitStatus> {
        self.signal(Signal::SIGKILL);
        self.done = true;
        let pid = self.pid as libc::pid_t;
        match wait(pid, libc::WNOHANG) {
            Ok(Some(status)) => Ok(status),
            // Not a zombie yet (should not happen after `exited`): wait
            // off the runtime.
            Ok(None) => tokio::task::spawn_blocking(move || wait(pid, 0))
                .await
                .map_err(io::Error::other)?
                .and_then(|s| s.ok_or_else(|| io::Error::other("waitpid returned nothing"))),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Group {
    /// A group dropped with its leader unreaped (the actor ended without a
    /// stop, e.g. the runtime shut down): kill it rather than leave it
    /// behind, and have it reaped.
    fn drop(&mut self) {
        if !self.done {
            self.signal(Signal::SIGKILL);
            reap_later(self.pid);
        }
    }
}

/// `waitpid`: `Some(status)` once reaped, `None` with `WNOHANG` and no
/// exit yet.
fn wait(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child, writing into `status`.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        match rc {
            0 => return Ok(None),
            r if r > 0 => return Ok(Some(ExitStatus::from_raw(status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Whether our child `pid` exited, without reaping it.
fn has_exited(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with WNOWAIT: it stays a zombie.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        // Not our child any more (reaped elsewhere): nothing to wait for.
        return true;
    }
    // SAFETY: si_pid is set by waitid (0 when nothing exited).
    unsafe { info.si_pid() != 0 }
}

/// Reap `pid` on a thread of its own (a process killed while nobody waits
/// for it must not stay a zombie).
fn reap_later(pid: u32) {
    static REAPER: OnceLock<Option<std::sync::Mutex<std::sync::mpsc::Sender<u32>>>> =
        OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        std::thread::Builder::new()
            .name("pool-reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                while let Ok(pid) = rx.recv() {
                    let _ = wait(pid as libc::pid_t, 0);
                }
            })
            .ok()
            .map(|_| std::sync::Mutex::new(tx))
    });
    if let Some(tx) = reaper {
        let _ = tx.lock().map(|tx| tx.send(pid));
    }
}

/// Register a pidfd with the runtime (readable = the process exited).
fn watch(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` keeps its descriptor open and unchanged for as
    // long as the `AsyncFd` owns it.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
