//! Thread priorities: work that serves clients (an HTTP API, its store
//! readers) runs niced, so the supervisor's own threads and the workers are
//! scheduled first when the machine is busy; the pool's own thread may run
//! above them all ([`PoolOptions::thread_nice`](crate::PoolOptions)).

/// The calling thread's nice value (Linux nice is per thread).
pub fn thread_nice() -> i32 {
    // SAFETY: errno is thread-local; getpriority has no memory-safety
    // preconditions. -1 is a valid nice, so errno tells an error apart.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            nice
        }
    }
}

/// Lower the calling thread's scheduling priority to `nice` (0..=19;
/// Linux nice is per thread). Failures are logged: it is an optimisation.
pub fn lower_thread_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: setpriority has no memory-safety preconditions; `who` = 0 is
    // the calling thread on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.min(19)) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), nice, "cannot lower a thread's priority");
    }
}

/// Put the calling thread under `SCHED_IDLE`: it runs on CPU time no
/// other thread wants, and any thread of another policy that wakes up
/// preempts it at once (under contention it still gets a small share, so
/// it is slowed, never stopped). Any thread may do this; failures are
/// logged.
pub fn idle_thread_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param`; pid 0 is the calling
    // thread on Linux.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot put a thread under SCHED_IDLE");
    }
}

/// Raise the calling thread's priority to `nice` (-20..0) when it is
/// below the current one. That takes `CAP_SYS_NICE` (root has it) or an
/// `RLIMIT_NICE` that allows it; without, the thread stays as it is.
/// Returns whether it was raised.
pub fn raise_thread_priority(nice: i32) -> bool {
    let nice = nice.max(-20);
    if nice >= thread_nice() {
        return false;
    }
    // SAFETY: as above.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            nice,
            "cannot raise the pool thread's priority (needs CAP_SYS_NICE or RLIMIT_NICE); it stays at the process's"
        );
        return false;
    }
    true
}

/// Put the calling thread back to `nice` after a raise (lowering a
/// priority is always allowed).
pub fn restore_thread_priority(nice: i32) {
    if thread_nice() == nice {
        return;
    }
    // SAFETY: as above.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.clamp(-20, 19)) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), nice, "cannot restore a thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reads_and_lowers_its_own_nice_only() {
        let base = thread_nice();
        let lowered = std::thread::spawn(move || {
            lower_thread_priority((base + 3).min(19));
            thread_nice()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, (base + 3).min(19));
        assert_eq!(thread_nice(), base, "the caller's nice is its own");
    }

    #[test]
    fn a_thread_goes_idle_alone() {
        // SAFETY: sched_getscheduler only reads; 0 is the calling thread.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let idle = std::thread::spawn(move || {
            idle_thread_priority();
            policy()
        })
        .join()
        .expect("thread");
        assert_eq!(idle, libc::SCHED_IDLE);
        assert_eq!(policy(), before, "the caller's policy is its own");
    }
}
