//! Thread priorities: work that serves clients (an HTTP API, its store
//! readers) runs niced, so the supervisor's own threads and the workers are
//! scheduled first when the machine is busy.

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
