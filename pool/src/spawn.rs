//! Spawning workers the way `posix_spawn` does: `clone(CLONE_VM |
//! CLONE_VFORK)`.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, so every
//! spawn happens on the pool's own thread ([`crate::thread`]), which lives
//! exactly as long as the pool; the actors run there too, so a restart
//! needs no hand-off between threads.
//!
//! The child shares the pool thread's memory until it calls `execve` (the
//! thread is suspended meanwhile), so no page table is copied and
//! none torn down: the cost does not grow with the supervisor's address
//! space or threads. Between clone and exec the child runs on a stack of
//! its own and makes system calls only: it resets the signal handlers the
//! parent installed (they must not run in the child) and unblocks signals,
//! puts stdin (`/dev/null`), stdout, stderr and the channel (fd 3) in
//! place (whatever numbers they had: a supervisor started with closed
//! stdio has its pipes on 0, 1 and 2) and closes every other descriptor, starts its own process group, sets `PR_SET_PDEATHSIG` and checks
//! the parent did not die before it, applies the rlimits, and execs. When
//! the pool's thread runs above the process's priority the child execs
//! at that priority too, and the parent puts the new worker back to the
//! process's nice as soon as the clone returns.
//! Nothing there allocates: the limits are a fixed array, the program,
//! arguments and environment C strings built before. A step that fails
//! writes its errno into memory the parent reads once the clone returns; a
//! refused limit is reported as `LIMIT_ERRNO_BASE + index * 1000 + errno`,
//! so the parent can name the limit.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::ThreadId;

use rlimit::Resource;

use crate::channel::{CHANNEL_ENV, CHANNEL_FD};
use crate::error::Error;
use crate::spec::Limits;

const LIMIT_ERRNO_BASE: i32 = 1_000_000;
const MAX_LIMITS: usize = 4;
/// The child's stack until it execs (it only makes system calls).
const CHILD_STACK: usize = 64 * 1024;

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
    pub inherit_env: Option<Vec<String>>,
    pub limits: Limits,
    /// The worker's end of the channel socket pair.
    pub child_end: OwnedFd,
}

/// A spawned worker: its pid and the read ends of its stdout and stderr.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: u32,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Spawns workers; only on the pool's thread (see [`crate::thread`]).
pub(crate) struct Spawner {
    kit: Mutex<Kit>,
    thread: ThreadId,
    /// The nice each child sets before exec (the pool thread runs above).
    worker_nice: Option<i32>,
}

/// What every spawn reuses.
struct Kit {
    stack: ChildStack,
    null: OwnedFd,
}

impl Spawner {
    /// A spawner for the thread `thread` (the pool's); each child is put
    /// to `worker_nice`, when given, as soon as it exec'd.
    pub fn new(thread: ThreadId, worker_nice: Option<i32>) -> Result<Spawner, Error> {
        let io_error = |context: &str, source| Error::Io {
            context: context.into(),
            source,
        };
        let stack = ChildStack::new().map_err(|e| io_error("mapping the spawn stack", e))?;
        let null = std::fs::File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| io_error("opening /dev/null", e))?;
        Ok(Spawner {
            kit: Mutex::new(Kit { stack, null }),
            thread,
            worker_nice,
        })
    }

    /// Spawn now; returns once the child exec'd. Refuses to run on any
    /// thread but the pool's: `PR_SET_PDEATHSIG` follows the thread that
    /// forked, and only the pool's lives exactly as long as the pool.
    pub fn spawn(&self, plan: Plan) -> Result<Spawned, Error> {
        if std::thread::current().id() != self.thread {
            return Err(Error::Io {
                context: format!("worker `{}`: spawn outside the pool's thread", plan.worker),
                source: io::Error::other("wrong thread"),
            });
        }
        let kit = self.kit.lock().unwrap_or_else(|p| p.into_inner());
        spawn_now(plan, &kit.stack, &kit.null, self.worker_nice)
    }
}

/// A stack for the cloned child, below a guard page.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is only used by one spawn at a time (under the
// spawner's lock), and by the clone while the spawning thread is suspended.
unsafe impl Send for ChildStack {}

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        let page = 4096;
        let len = CHILD_STACK + page;
        // SAFETY: an anonymous private mapping; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping what we just mapped.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(ChildStack { base, len })
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping, never dereferenced here.
        let end = unsafe { self.base.cast::<u8>().add(self.len) };
        end.cast()
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our mapping; no child can be running on it (each clone
        // returns only after the child exec'd or exited).
        unsafe { libc::munmap(self.base, self.len) };
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

/// What the child needs, built before the clone; the child writes the
/// first failure into `error`.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    channel: RawFd,
    parent: libc::pid_t,
    /// Highest signal number (SIGRTMAX).
    signals: libc::c_int,
    limits: [Option<Rlim>; MAX_LIMITS],
    n_limits: usize,
    error: AtomicI32,
}

/// NUL-terminated strings and the null-terminated pointer array over them.
struct CStrings {
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl CStrings {
    fn new(items: impl IntoIterator<Item = Vec<u8>>) -> io::Result<CStrings> {
        let strings = items
            .into_iter()
            .map(|b| CString::new(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e)))
            .collect::<io::Result<Vec<CString>>>()?;
        let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Ok(CStrings {
            _strings: strings,
            pointers,
        })
    }
}

/// Whether `key` is named by `allowed` (exactly, or by a prefix ending in `*`).
fn inherited(key: &OsStr, allowed: &[String]) -> bool {
    let key = key.as_encoded_bytes();
    allowed.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix.as_bytes()),
        None => key == a.as_bytes(),
    })
}

/// This process's environment (all of it, or what `inherit_env` allows)
/// with the worker's variables on top.
fn environment(plan: &Plan) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| plan.inherit_env.as_ref().is_none_or(|a| inherited(k, a)))
        .collect();
    let channel_fd = CHANNEL_FD.to_string();
    let overrides = std::iter::once((CHANNEL_ENV, channel_fd.as_str()))
        .chain(plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in overrides {
        env.retain(|(key, _)| key.as_os_str() != OsStr::new(k));
        env.push((k.into(), v.into()));
    }
    env
}

/// The program as `execve` wants it: a path with a slash is used as is,
/// a bare name is looked up in the worker's `PATH` (as `execvp` does).
fn resolve(program: &Path, env: &[(OsString, OsString)]) -> PathBuf {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return program.to_path_buf();
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt as _;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| program.to_path_buf())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn spawn_now(
    plan: Plan,
    stack: &ChildStack,
    null: &OwnedFd,
    worker_nice: Option<i32>,
) -> Result<Spawned, Error> {
    let spawn_error = |source: io::Error| Error::Spawn {
        worker: plan.worker.clone(),
        program: plan.program.clone(),
        source,
    };
    let env = environment(&plan);
    let program = resolve(&plan.program, &env);
    let program_c = CString::new(program.as_os_str().as_bytes())
        .map_err(|e| spawn_error(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let argv = CStrings::new(
        std::iter::once(plan.program.as_os_str().as_bytes().to_vec())
            .chain(plan.args.iter().map(|a| a.as_bytes().to_vec())),
    )
    .map_err(spawn_error)?;
    let envp = CStrings::new(env.into_iter().map(|(k, v)| {
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        kv
    }))
    .map_err(spawn_error)?;
    let (out_read, out_write) = pipe().map_err(spawn_error)?;
    let (err_read, err_write) = pipe().map_err(spawn_error)?;
    let (limits, n_limits) = rlimits(&plan.limits);
    let args = ChildArgs {
        program: program_c.as_ptr(),
        argv: argv.pointers.as_ptr(),
        envp: envp.pointers.as_ptr(),
        stdin: null.as_raw_fd(),
        stdout: out_write.as_raw_fd(),
        stderr: err_write.as_raw_fd(),
        channel: plan.child_end.as_raw_fd(),
        parent: std::process::id() as libc::pid_t,
        signals: libc::SIGRTMAX(),
        limits,
        n_limits,
        error: AtomicI32::new(0),
    };
    let pid = clone_and_exec(&args, stack).map_err(spawn_error)?;
    // The child has its copies (or is gone): close ours.
    drop(out_write);
    drop(err_write);
    let code = args.error.load(Ordering::SeqCst);
    if code != 0 {
        // It failed before exec and exited: reap it.
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        drop(plan.child_end);
        return Err(if code >= LIMIT_ERRNO_BASE {
            let i = ((code - LIMIT_ERRNO_BASE) / 1000) as usize;
            let errno = (code - LIMIT_ERRNO_BASE) % 1000;
            let lim = limits.get(i).copied().flatten();
            Error::Limit {
                worker: plan.worker.clone(),
                limit: lim.map(|l| l.name).unwrap_or("rlimit"),
                value: lim.map(|l| l.soft).unwrap_or(0),
                source: io::Error::from_raw_os_error(errno),
            }
        } else {
            spawn_error(io::Error::from_raw_os_error(code))
        });
    }
    drop(plan.child_end);
    if let Some(nice) = worker_nice {
        take_back_priority(pid, nice);
    }
    Ok(Spawned {
        pid: pid as u32,
        stdout: out_read,
        stderr: err_read,
    })
}

/// The worker `pid`, just exec'd at the pool thread's raised priority
/// (so that its set-up and `execve` were not kept waiting), goes to
/// `nice`: its main thread, then any thread it started meanwhile (they
/// inherited the raised one; threads started later inherit `nice`).
/// Lowering a priority is always allowed; a worker already gone is no
/// error.
fn take_back_priority(pid: libc::pid_t, nice: i32) {
    // SAFETY: setpriority has no memory-safety preconditions.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for tid in tasks
        .filter_map(Result::ok)
        .filter_map(|t| t.file_name().to_str()?.parse::<libc::id_t>().ok())
        .filter(|tid| *tid != pid as libc::id_t)
    {
        // SAFETY: as above.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    }
}

/// Clone with `CLONE_VM | CLONE_VFORK` and run [`child`] on `stack`;
/// returns the child's pid once it exec'd or exited.
fn clone_and_exec(args: &ChildArgs, stack: &ChildStack) -> io::Result<libc::pid_t> {
    // Block every signal in this thread while the child shares our memory:
    // a handler must not run in the child before it reset them.
    // SAFETY: sigset_t is plain data; the calls fill and read it.
    let (pid, clone_error) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (args as *const ChildArgs).cast_mut().cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (pid, clone_error)
    };
    if pid < 0 {
        return Err(clone_error);
    }
    Ok(pid)
}

/// The child, between clone and exec. System calls only: no allocation,
/// no lock, no unwinding (every path ends in `execve` or `_exit`).
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive and unchanged until
    // this child execs or exits (the parent thread is suspended).
    let a = unsafe { &*(arg as *const ChildArgs) };
    let fail = |code: i32| -> ! {
        a.error.store(code, Ordering::SeqCst);
        // SAFETY: _exit ends the child without running anything else.
        unsafe { libc::_exit(127) }
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // SAFETY: plain system calls on descriptors and data the parent
    // prepared; see the module documentation.
    unsafe {
        // The parent's handlers must not run here, nor survive an ignored
        // SIGPIPE (Rust ignores it): back to the defaults, then unblock.
        for sig in 1..=a.signals {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if old.sa_sigaction != libc::SIG_DFL
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());

        // stdin, stdout, stderr and the channel to 0, 1, 2 and 3. A
        // supervisor started with closed stdio gets its pipes on those very
        // numbers: a source may be its own target (`dup2(fd, fd)` would
        // keep close-on-exec and the worker would lose the stream) or the
        // target of another (an earlier `dup2` would close it). So every
        // source below 4 is first moved above 3 (this is the child's own
        // descriptor table); then each `dup2` copies a distinct descriptor
        // and clears close-on-exec on the copy. The moved ones are closed
        // with the rest below.
        let mut sources = [a.stdin, a.stdout, a.stderr, a.channel];
        for fd in sources.iter_mut() {
            if *fd <= CHANNEL_FD {
                let moved = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, CHANNEL_FD + 1);
                if moved < 0 {
                    fail(errno());
                }
                *fd = moved;
            }
        }
        for (to, from) in sources.into_iter().enumerate() {
            if libc::dup2(from, to as RawFd) < 0 {
                fail(errno());
            }
        }
        // Descriptors the supervisor inherited without close-on-exec are
        // not the worker's business (kernels before 5.9 say ENOSYS: then
        // they pass, as with any spawn).
        libc::syscall(libc::SYS_close_range, CHANNEL_FD + 1, libc::c_uint::MAX, 0);
        if libc::setpgid(0, 0) != 0 {
            fail(errno());
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(errno());
        }
        // The parent may have died before the prctl: then nobody will
        // ever send the death signal.
        if libc::getppid() != a.parent {
            libc::_exit(1);
        }
        for (i, lim) in a.limits.iter().take(a.n_limits).enumerate() {
            if let Some(l) = lim
                && let Err(e) = rlimit::setrlimit(l.resource, l.soft, l.hard)
            {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                fail(LIMIT_ERRNO_BASE + (i as i32) * 1000 + errno);
            }
        }
        libc::execve(a.program, a.argv, a.envp);
        fail(errno())
    }
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

    #[test]
    fn bare_names_are_found_in_path() {
        let env = vec![(OsString::from("PATH"), OsString::from("/nonexistent:/bin"))];
        assert_eq!(resolve(Path::new("sh"), &env), PathBuf::from("/bin/sh"));
        assert_eq!(
            resolve(Path::new("./x/sh"), &env),
            PathBuf::from("./x/sh"),
            "a path is used as is"
        );
        assert_eq!(
            resolve(Path::new("no-such-program-here"), &env),
            PathBuf::from("no-such-program-here")
        );
    }

    #[test]
    fn the_worker_environment_overrides_ours() {
        let (_a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let plan = Plan {
            worker: "w".into(),
            program: "/bin/true".into(),
            args: vec![],
            env: vec![("POOL_TEST_VAR".into(), "1".into())],
            inherit_env: None,
            limits: Limits::default(),
            child_end: OwnedFd::from(b),
        };
        let env = environment(&plan);
        let get = |k: &str| env.iter().filter(|(key, _)| key == k).count();
        assert_eq!(get(CHANNEL_ENV), 1);
        assert_eq!(get("POOL_TEST_VAR"), 1);
        assert!(get("PATH") <= 1);
    }

    #[test]
    fn an_allow_list_keeps_only_the_names_it_gives() {
        let allowed = vec!["PATH".to_string(), "LC_*".to_string()];
        for (key, kept) in [
            ("PATH", true),
            ("PATHX", false),
            ("LC_ALL", true),
            ("LC_", true),
            ("LANG", false),
            ("SECRET_TOKEN", false),
        ] {
            assert_eq!(inherited(OsStr::new(key), &allowed), kept, "{key}");
        }
    }
}

#[cfg(test)]
mod child_state {
    use super::*;
    use std::io::Read as _;

    /// Spawn `program args` directly and return its stdout.
    pub(crate) fn output(program: &str, args: &[&str], limits: Limits) -> String {
        let stack = ChildStack::new().expect("stack");
        let null = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let (_ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let plan = Plan {
            worker: "t".into(),
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            inherit_env: None,
            limits,
            child_end: OwnedFd::from(theirs),
        };
        let child = spawn_now(plan, &stack, &null, None).expect("spawned");
        let mut out = String::new();
        std::fs::File::from(child.stdout)
            .read_to_string(&mut out)
            .expect("stdout");
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(child.pid as i32, &mut status, 0) };
        out
    }

    fn sig_field(status: &str, key: &str) -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim_start_matches(':').trim(), 16).ok())
            .unwrap_or_else(|| panic!("{key} in {status}"))
    }

    #[test]
    fn signals_are_reset_and_unblocked() {
        // A handler of ours, and signals blocked in the spawning thread.
        // SAFETY: installing a handler that does nothing, blocking signals
        // in this test thread only.
        unsafe {
            extern "C" fn nothing(_: libc::c_int) {}
            libc::signal(
                libc::SIGUSR1,
                nothing as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let ours = std::fs::read_to_string("/proc/thread-self/status").expect("own status");
        assert_ne!(sig_field(&ours, "SigBlk"), 0);
        let out = output("/bin/cat", &["/proc/self/status"], Limits::default());
        assert_eq!(sig_field(&out, "SigBlk"), 0, "nothing blocked: {out}");
        assert_eq!(sig_field(&out, "SigCgt"), 0, "no handler: {out}");
        // Ignored signals stay ignored across exec, as with any spawn,
        // except SIGPIPE (Rust ignores it for itself).
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_eq!(
            sig_field(&out, "SigIgn"),
            sig_field(&ours, "SigIgn") & !sigpipe,
            "{out}"
        );
    }

    #[test]
    fn limits_and_descriptors() {
        let limits = Limits {
            cpu_time: None,
            memory: None,
            open_files: Some(300),
        };
        let out = output("/bin/cat", &["/proc/self/limits"], limits);
        let line = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert!(line("Max open files").contains("300 300"), "{out}");
        assert!(line("Max core file size").contains("0 0"), "{out}");
        let out = output("/bin/ls", &["/proc/self/fd"], Limits::default());
        let fds: Vec<u32> = out
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // 0-3, and the one ls opened to list the directory.
        assert_eq!(&fds[..4], &[0, 1, 2, 3], "{out}");
        assert!(fds.len() <= 5, "{out}");
    }

    #[test]
    fn a_refused_limit_is_named() {
        let plan_limits = Limits {
            cpu_time: None,
            memory: None,
            open_files: Some(u64::MAX / 2),
        };
        let stack = ChildStack::new().expect("stack");
        let null = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let (_ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let plan = Plan {
            worker: "t".into(),
            program: "/bin/true".into(),
            args: vec![],
            env: vec![],
            inherit_env: None,
            limits: plan_limits,
            child_end: OwnedFd::from(theirs),
        };
        match spawn_now(plan, &stack, &null, None) {
            Err(Error::Limit { limit, .. }) => assert_eq!(limit, "RLIMIT_NOFILE"),
            other => panic!("{other:?}"),
        }
    }
}
