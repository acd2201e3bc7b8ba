//! The kernel's process events (the netlink process connector): every
//! fork, exec and exit on the machine, with the kernel's own nanosecond
//! timestamps. Needs root (CAP_NET_ADMIN); `open` fails otherwise.
//!
//! Restart latency measured here is the supervisor's alone: from the old
//! worker's exit (the kernel reports it as the process dies) to the exec of
//! its replacement, nothing of the measuring process in between.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// nlmsghdr (16) + cn_msg (20): where `struct proc_event` starts.
const EVENT: usize = 36;

/// One process event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A process or thread was created.
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
        ns: u64,
    },
    /// A process called exec.
    Exec { pid: u32, tgid: u32, ns: u64 },
    /// A thread or process exited.
    Exit { pid: u32, tgid: u32, ns: u64 },
}

/// A socket subscribed to the process events.
pub struct Connector {
    fd: OwnedFd,
    buf: Vec<u8>,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Connector {
    /// Subscribe (root only).
    pub fn open() -> io::Result<Connector> {
        // SAFETY: plain socket(2) call.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_CONNECTOR,
            )
        })?;
        // SAFETY: we own the new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid; fields set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        // SAFETY: addr is a valid sockaddr_nl of the given size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        // A busy machine sends many events: a large buffer, and a timeout.
        let size: libc::c_int = 8 << 20;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: setsockopt with pointers to live values of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let mut msg = Vec::with_capacity(40);
        msg.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
        msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes()); // nlmsg_type
        msg.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes()); // nlmsg_pid
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes()); // cn_msg.id.idx
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes()); // cn_msg.id.val
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        // SAFETY: msg is a live buffer of msg.len() bytes.
        let sent = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Connector {
            fd,
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// The next event, or `None` after the receive timeout (200 ms).
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            // SAFETY: buf is a live buffer of buf.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(None),
                    // Events were dropped (buffer full): go on.
                    Some(libc::ENOBUFS) | Some(libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            if let Some(ev) = parse(&self.buf[..n as usize]) {
                return Ok(Some(ev));
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn parse(b: &[u8]) -> Option<Event> {
    let what = u32_at(b, EVENT)?;
    let ns = u64::from_ne_bytes(b.get(EVENT + 8..EVENT + 16)?.try_into().ok()?);
    let data = EVENT + 16;
    Some(match what {
        PROC_EVENT_FORK => Event::Fork {
            parent_tgid: u32_at(b, data + 4)?,
            child_pid: u32_at(b, data + 8)?,
            child_tgid: u32_at(b, data + 12)?,
            ns,
        },
        PROC_EVENT_EXEC => Event::Exec {
            pid: u32_at(b, data)?,
            tgid: u32_at(b, data + 4)?,
            ns,
        },
        PROC_EVENT_EXIT => Event::Exit {
            pid: u32_at(b, data)?,
            tgid: u32_at(b, data + 4)?,
            ns,
        },
        _ => return None,
    })
}

/// One restart as the kernel saw it.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// Old worker's exit → the supervisor's fork of the replacement.
    pub exit_to_fork: Duration,
    /// Fork → exec of the replacement.
    pub fork_to_exec: Duration,
    /// Old worker's exit → exec of the replacement.
    pub exit_to_exec: Duration,
}

/// SIGKILL `victim` (a child of `parent`) and wait for its replacement's
/// exec, a child of `parent` too. `None` after `limit`.
pub fn kill_and_measure(
    conn: &mut Connector,
    parent: u32,
    victim: u32,
    limit: Duration,
) -> io::Result<Option<Restart>> {
    // Drop events that queued up before this kill.
    let deadline = Instant::now() + limit;
    // SAFETY: kill(2) on a pid we started (indirectly).
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let (mut exit, mut fork, mut child) = (None, None, None);
    while Instant::now() < deadline {
        let Some(ev) = conn.next_event()? else {
            continue;
        };
        match ev {
            Event::Exit { pid, tgid, ns } if pid == victim && tgid == victim => exit = Some(ns),
            Event::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ns,
            } if exit.is_some()
                && child.is_none()
                && parent_tgid == parent
                && child_pid == child_tgid =>
            {
                fork = Some(ns);
                child = Some(child_pid);
            }
            Event::Exec { pid, ns, .. } if Some(pid) == child => {
                let (e, f) = (exit.unwrap_or(ns), fork.unwrap_or(ns));
                return Ok(Some(Restart {
                    exit_to_fork: Duration::from_nanos(f.saturating_sub(e)),
                    fork_to_exec: Duration::from_nanos(ns.saturating_sub(f)),
                    exit_to_exec: Duration::from_nanos(ns.saturating_sub(e)),
                }));
            }
            _ => {}
        }
    }
    Ok(None)
}
