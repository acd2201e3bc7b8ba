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

/// The CPUs the calling thread may run on, by number.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it; pid 0
    // is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Keep the calling thread off one of the CPUs it may run on (the first),
/// when it may run on two or more; returns the CPUs it keeps. Threads so
/// confined can never take every CPU at once, whatever their number.
///
/// `SCHED_IDLE` alone does not give way at once on every kernel: the
/// scheduler counts a CPU that runs only `SCHED_IDLE` work as idle when it
/// places a woken thread, and on the 2-core machines measured (Linux 6.18,
/// `HZ=250`, autogroup on) a thread woken there often waited for the next
/// tick, up to 4 ms: three `SCHED_IDLE` spinners in one session took the
/// p99 of a socket round trip between two processes of another session
/// from 0.035 to 1.3–1.5 ms, and kept off one CPU, to 0.033–0.038 ms.
pub fn leave_one_cpu() -> Vec<usize> {
    let allowed = allowed_cpus();
    if allowed.len() < 2 {
        return allowed;
    }
    let keep = &allowed[1..];
    // SAFETY: as above; the set is built from CPU numbers below
    // CPU_SETSIZE, and sched_setaffinity only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in keep {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot keep a background thread off a CPU");
        return allowed;
    }
    keep.to_vec()
}

/// Make the calling thread background work: under `SCHED_IDLE`
/// ([`idle_thread_priority`]) and off one CPU ([`leave_one_cpu`]), so
/// that however many such threads are busy, one CPU stays free of them
/// for everything else.
pub fn background_thread() {
    idle_thread_priority();
    leave_one_cpu();
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
    fn a_background_thread_leaves_one_cpu_to_the_others() {
        let before = allowed_cpus();
        assert!(!before.is_empty(), "the affinity is read");
        let (kept, allowed, policy) = std::thread::spawn(|| {
            let kept = leave_one_cpu();
            // SAFETY: sched_getscheduler only reads; 0 is the calling thread.
            (kept, allowed_cpus(), unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .expect("thread");
        assert_eq!(kept, allowed);
        assert_eq!(
            policy,
            libc::SCHED_OTHER,
            "leave_one_cpu alone keeps the policy"
        );
        if before.len() >= 2 {
            assert_eq!(allowed, before[1..], "all but the first CPU");
        } else {
            assert_eq!(allowed, before, "a single CPU is kept");
        }
        assert_eq!(allowed_cpus(), before, "the caller's affinity is its own");
        let (allowed, policy) = std::thread::spawn(|| {
            background_thread();
            // SAFETY: as above.
            (allowed_cpus(), unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .expect("thread");
        assert_eq!(policy, libc::SCHED_IDLE);
        assert_eq!(allowed.len(), before.len().saturating_sub(1).max(1));
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
