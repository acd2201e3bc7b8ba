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
//! then reap. Where `pidfd_open` is not available the runtime's `wait()`
//! reaps at once and that last group kill is skipped; the worker's children
//! then rely on their channel EOF (and on the stop sequence, which signals
//! the group while the leader lives).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitStatus;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::process::Child;

/// The process group of one worker, led by its (unreaped) process.
pub(crate) struct Group {
    pid: u32,
    started: Instant,
    child: Child,
    /// Readable once the leader exited; `None` when pidfds are unavailable.
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// The fallback path already reaped the leader: no more signals.
    reaped: Option<io::Result<ExitStatus>>,
    /// `reap` ran: nothing to kill on drop.
    done: bool,
}

impl Group {
    /// Take charge of a freshly spawned group leader.
    pub fn new(child: Child, pid: u32, started: Instant) -> Group {
        let pidfd = match pidfd_open(pid).and_then(watch) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!(pid, error = %e, "no pidfd: the group cannot be killed after its leader exits");
                None
            }
        };
        Group {
            pid,
            started,
            child,
            pidfd,
            reaped: None,
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

    /// Send `signal` to every process of the group. Does nothing once the
    /// leader was reaped by the fallback path.
    pub fn signal(&self, signal: Signal) {
        if self.reaped.is_some() || self.done {
            return;
        }
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid = self.pid, ?signal, error = %e, "killpg failed"),
        }
    }

    /// Wait until the leader has exited. Cancel safe. With a pidfd the
    /// leader is not reaped yet when this returns.
    pub async fn exited(&mut self) {
        let polled = match &self.pidfd {
            Some(fd) => Some(fd.readable().await.map(|mut ready| ready.retain_ready())),
            None => None,
        };
        match polled {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(pid = self.pid, error = %e, "pidfd poll failed; reaping directly");
                self.pidfd = None;
                self.reaped = Some(self.child.wait().await);
            }
            None => {
                if self.reaped.is_none() {
                    self.reaped = Some(self.child.wait().await);
                }
            }
        }
    }

    /// After [`exited`](Self::exited): SIGKILL what is left of the group
    /// while the leader's pid still pins the group id, then reap the
    /// leader and return its status.
    pub async fn reap(mut self) -> io::Result<ExitStatus> {
        let status = match self.reaped.take() {
            Some(status) => status,
            None => {
                self.signal(Signal::SIGKILL);
                // The pidfd said it exited: reap it now rather than wait
                // for the runtime to notice too.
                match self.child.try_wait() {
                    Ok(Some(status)) => Ok(status),
                    _ => self.child.wait().await,
                }
            }
        };
        self.done = true;
        status
    }
}

impl Drop for Group {
    /// A group dropped with its leader unreaped (the actor ended without a
    /// stop, e.g. the runtime shut down): kill it rather than leave it
    /// behind. The runtime reaps the leader later.
    fn drop(&mut self) {
        if !self.done {
            self.signal(Signal::SIGKILL);
        }
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
