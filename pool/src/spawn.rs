//! Spawning workers from one long-lived thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, so every
//! fork happens on a dedicated thread that lives as long as the pool (it
//! ends when the last actor drops its [`Spawner`]). The thread enters the
//! runtime so that `tokio::process` registers the child with the runtime's
//! reaper, and hands the child back over a oneshot channel.
//!
//! Between fork and exec (`pre_exec`) nothing allocates: the limits are a
//! fixed array built before, and errors are plain errno values. A refused
//! limit is reported through the errno as `LIMIT_ERRNO_BASE + index * 1000
//! + errno`, so the parent can name the limit.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use rlimit::Resource;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::channel::{CHANNEL_ENV, CHANNEL_FD};
use crate::error::Error;
use crate::spec::Limits;

const LIMIT_ERRNO_BASE: i32 = 1_000_000;
const MAX_LIMITS: usize = 4;

/// One rlimit to apply: resource, soft, hard.
#[derive(Debug, Clone, Copy)]
struct Rlim {
    resource: Resource,
    name: &'static str,
    soft: u64,
    hard: u64,
}

/// Everything needed to spawn one worker process.
#[derive(Debug)]
pub(crate) struct Plan {
    pub worker: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// The worker's end of the channel socket pair.
    pub child_end: OwnedFd,
}

type Reply = oneshot::Sender<Result<Child, Error>>;

/// Handle to the spawner thread.
#[derive(Clone)]
pub(crate) struct Spawner {
    tx: std::sync::mpsc::Sender<(Plan, Reply)>,
}

impl Spawner {
    /// Start the spawner thread, entering `runtime` there.
    pub fn start(runtime: tokio::runtime::Handle) -> Result<Spawner, Error> {
        let (tx, rx) = std::sync::mpsc::channel::<(Plan, Reply)>();
        std::thread::Builder::new()
            .name("pool-spawner".into())
            .spawn(move || {
                let _guard = runtime.enter();
                while let Ok((plan, reply)) = rx.recv() {
                    let _ = reply.send(spawn_now(plan));
                }
            })
            .map_err(|source| Error::Io {
                context: "starting the spawner thread".into(),
                source,
            })?;
        Ok(Spawner { tx })
    }

    /// Spawn on the spawner thread and wait for the child.
    pub async fn spawn(&self, plan: Plan) -> Result<Child, Error> {
        let worker = plan.worker.clone();
        let (reply, rx) = oneshot::channel();
        let gone = || Error::Io {
            context: format!("worker `{worker}`: spawner thread is gone"),
            source: io::Error::other("spawner thread ended"),
        };
        self.tx.send((plan, reply)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

fn rlimits(limits: &Limits) -> ([Option<Rlim>; MAX_LIMITS], usize) {
    let mut out = [None; MAX_LIMITS];
    let mut n = 0;
    let mut push = |r: Rlim| {
        out[n] = Some(r);
        n += 1;
    };
    // SIGXCPU dumps core by default: never write cores.
    push(Rlim {
        resource: Resource::CORE,
        name: "RLIMIT_CORE",
        soft: 0,
        hard: 0,
    });
    if let Some(cpu) = limits.cpu_time {
        let soft = cpu.as_secs_f64().ceil().max(1.0) as u64;
        push(Rlim {
            resource: Resource::CPU,
            name: "RLIMIT_CPU",
            soft,
            hard: soft + 1,
        });
    }
    if let Some(mem) = limits.memory {
        push(Rlim {
            resource: Resource::DATA,
            name: "RLIMIT_DATA",
            soft: mem,
            hard: mem,
        });
    }
    if let Some(files) = limits.open_files {
        push(Rlim {
            resource: Resource::NOFILE,
            name: "RLIMIT_NOFILE",
            soft: files,
            hard: files,
        });
    }
    (out, n)
}

fn spawn_now(plan: Plan) -> Result<Child, Error> {
    let (limits, n) = rlimits(&plan.limits);
    let child_fd = plan.child_end.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;

    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .env(CHANNEL_ENV, CHANNEL_FD.to_string())
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe system calls
    // (dup2, fcntl, prctl, getppid, setrlimit, _exit) on data captured by
    // value; it does not allocate, lock or log.
    unsafe {
        cmd.pre_exec(move || {
            if child_fd == CHANNEL_FD {
                // Already in place: only clear close-on-exec.
                if libc::fcntl(CHANNEL_FD, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(child_fd, CHANNEL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody will
            // ever send the death signal.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            for (i, lim) in limits.iter().take(n).enumerate() {
                if let Some(l) = lim
                    && let Err(e) = rlimit::setrlimit(l.resource, l.soft, l.hard)
                {
                    let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                    return Err(io::Error::from_raw_os_error(
                        LIMIT_ERRNO_BASE + (i as i32) * 1000 + errno,
                    ));
                }
            }
            Ok(())
        });
    }
    let result = cmd.spawn();
    // Close our copy of the worker's end now (the child has its own).
    drop(plan.child_end);
    result.map_err(|e| match e.raw_os_error() {
        Some(code) if code >= LIMIT_ERRNO_BASE => {
            let i = ((code - LIMIT_ERRNO_BASE) / 1000) as usize;
            let errno = (code - LIMIT_ERRNO_BASE) % 1000;
            let lim = limits.get(i).copied().flatten();
            Error::Limit {
                worker: plan.worker.clone(),
                limit: lim.map(|l| l.name).unwrap_or("rlimit"),
                value: lim.map(|l| l.soft).unwrap_or(0),
                source: io::Error::from_raw_os_error(errno),
            }
        }
        _ => Error::Spawn {
            worker: plan.worker.clone(),
            program: plan.program.clone(),
            source: e,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_are_built_before_fork() {
        let (l, n) = rlimits(&Limits {
            cpu_time: Some(Duration::from_millis(1500)),
            memory: Some(64 << 20),
            open_files: Some(100),
        });
        assert_eq!(n, 4);
        let names: Vec<_> = l
            .iter()
            .flatten()
            .map(|r| (r.name, r.soft, r.hard))
            .collect();
        assert_eq!(
            names,
            vec![
                ("RLIMIT_CORE", 0, 0),
                ("RLIMIT_CPU", 2, 3),
                ("RLIMIT_DATA", 64 << 20, 64 << 20),
                ("RLIMIT_NOFILE", 100, 100)
            ]
        );
    }
}
