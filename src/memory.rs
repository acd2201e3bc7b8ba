//! Keeping the supervisor and the workers small (measured in
//! `docs/bench/MEMORY.md`).
//!
//! - **malloc arenas**: glibc gives each thread that allocates an arena of
//!   its own (up to 8 per core), each holding freed memory of its own; the
//!   supervisor and the worker allow 1.
//! - **start-up pages**: most of a process's resident file pages are code
//!   and read-only data it ran once, at start-up (argument parsing, config
//!   validation, building the runtime, loading TLS roots). Once running,
//!   [`release_startup_pages`] unmaps the clean, private, read-only file
//!   mappings (the binary's text and read-only data, the libraries' text)
//!   with `MADV_DONTNEED`; the pages stay in the page cache, and what is
//!   used again faults back in (a minor fault, no I/O). Mappings holding
//!   anonymous pages (relocated data, copy-on-write) are never touched.
//! - **freed heap**: [`trim_heap`] hands freed heap pages back to the
//!   kernel (`malloc_trim`); the worker calls it after each scrape.
//!
//! [`MEMORY_OFF_ENV`] turns single measures off, to measure what each gives.

/// Environment variable turning measures off, comma-separated: `arenas`,
/// `startup-pages`, `evict` (both processes), `evict-worker`, `trim`,
/// `threads` (for measuring what each gives; see `docs/bench/MEMORY.md`).
pub const MEMORY_OFF_ENV: &str = "WORLDPOOL_MEMORY_OFF";

/// Whether `measure` was turned off in [`MEMORY_OFF_ENV`].
pub fn off(measure: &str) -> bool {
    std::env::var(MEMORY_OFF_ENV)
        .map(|v| v.split(',').any(|m| m.trim() == measure))
        .unwrap_or(false)
}

/// Allow at most `n` malloc arenas (glibc; call before threads start).
pub fn limit_malloc_arenas(n: i32) {
    if off("arenas") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = n;
}

/// The supervisor's runtime: the main thread alone (it waits for signals;
/// the pool's actors run on the pool's thread, the API on a runtime of its
/// own). Every thread brings a stack and a malloc arena. `threads` in
/// [`MEMORY_OFF_ENV`] gives tokio's default (a worker thread per core).
pub fn supervisor_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    if off("threads") {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(4)
            .enable_all()
            .build()
    }
}

/// Threads of the API's own runtime in `worldpool run`: one (two with
/// `threads` in [`MEMORY_OFF_ENV`]).
pub fn api_threads() -> usize {
    if off("threads") { 2 } else { 1 }
}

/// Hand freed heap memory back to the kernel.
pub fn trim_heap() {
    if off("trim") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What [`release_startup_pages`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings released.
    pub mappings: usize,
    /// Resident bytes they held.
    pub bytes: u64,
}

/// Unmap the resident pages of clean, private, read-only file mappings
/// (code and read-only data) with `MADV_DONTNEED`: they stay in the page
/// cache, and what runs again faults back in. Mappings with any anonymous
/// page (relocated or copied-on-write data) are left alone.
///
/// With `evict`, this binary's own pages that no process maps any more
/// also leave the page cache (`POSIX_FADV_DONTNEED`), and its mappings are
/// marked `MADV_RANDOM` (no read-around): the kernel maps up to 16 cached
/// pages around each page fault ("fault-around"), so with the whole binary
/// cached every fault maps 64 KiB; with only the pages in use cached, a
/// fault maps little more than what runs. The pages faulted in after are
/// read from the file (the first run of a code path costs a read).
pub fn release_startup_pages_and(evict: bool) -> Released {
    let mut done = Released::default();
    if off("startup-pages") {
        return done;
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return done;
    };
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let evict = evict && !off("evict");
    for m in clean_readonly_mappings(&smaps) {
        if evict && exe.as_deref().is_some_and(|e| e == m.path.as_path()) {
            // SAFETY: advice on a whole mapping of ours; no data changes.
            unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_RANDOM,
                );
            }
        }
        // SAFETY: the range is a whole mapping of this process, private,
        // not writable, file-backed, and holds no anonymous page, so its
        // content is the file's: dropping the page-table entries loses
        // nothing, the next access maps the page-cache page again.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            done.mappings += 1;
            done.bytes += m.rss;
        }
    }
    if evict && let Some(exe) = exe.as_ref().and_then(|e| std::fs::File::open(e).ok()) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: advice on a descriptor we own; pages still mapped stay.
        unsafe { libc::posix_fadvise(exe.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    done
}

/// [`release_startup_pages_and`] without eviction.
pub fn release_startup_pages() -> Released {
    release_startup_pages_and(false)
}

/// The supervisor: once every worker is running (at most 10 s after the
/// call), release the start-up pages, on the runtime, once; then trim the
/// heap every 30 s.
pub fn release_startup_pages_once_up(
    pool: pool::PoolHandle,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let up = pool
                .workers()
                .iter()
                .all(|w| w.state == pool::StateName::Running);
            if up || tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        // The supervisor is the only process mapping its binary.
        let r = release_startup_pages_and(true);
        tracing::debug!(
            mappings = r.mappings,
            bytes = r.bytes,
            "released start-up pages"
        );
        // From then on, hand freed heap pages back now and then (a few
        // hundred KiB of a fragmented heap; about a millisecond).
        let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => trim_heap(),
            }
        }
    });
}

/// The worker's bookkeeping: after a scrape cycle that stored a run (the
/// parsed documents and buffers are freed), trim the heap; after the first
/// one, also release the start-up pages.
#[derive(Debug, Default)]
pub struct AfterWork {
    /// The current cycle stored a run.
    pub worked: bool,
    released: bool,
}

impl AfterWork {
    /// End of a cycle.
    pub fn cycle_done(&mut self) {
        if !std::mem::take(&mut self.worked) {
            return;
        }
        trim_heap();
        if !self.released {
            self.released = true;
            let r = release_startup_pages_and(!off("evict-worker"));
            tracing::debug!(
                mappings = r.mappings,
                bytes = r.bytes,
                "released start-up pages"
            );
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    rss: u64,
    path: std::path::PathBuf,
}

/// The mappings of an smaps text that are private, not writable, backed by
/// a file, resident, and without anonymous pages.
fn clean_readonly_mappings(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut current: Option<(Mapping, bool)> = None;
    let mut anon_free = false;
    let mut finish = |m: Option<(Mapping, bool)>, anon_free: bool| {
        if let Some((m, eligible)) = m
            && eligible
            && anon_free
            && m.rss > 0
        {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            finish(current.take(), anon_free);
            let perms = fields.next().unwrap_or("");
            let _offset = fields.next();
            let _dev = fields.next();
            let inode = fields.next().unwrap_or("0");
            let path = fields.next().unwrap_or("");
            let eligible = perms.len() == 4
                && perms.starts_with('r')
                && perms.as_bytes()[1] == b'-'
                && perms.ends_with('p')
                && inode != "0"
                && path.starts_with('/');
            current = Some((
                Mapping {
                    start,
                    end,
                    rss: 0,
                    path: std::path::PathBuf::from(path),
                },
                eligible,
            ));
            anon_free = false;
            continue;
        }
        let kb = || {
            line.split_ascii_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        };
        if line.starts_with("Rss:") {
            if let (Some((m, _)), Some(kb)) = (current.as_mut(), kb()) {
                m.rss = kb * 1024;
            }
        } else if line.starts_with("Anonymous:") {
            anon_free = kb() == Some(0);
        }
    }
    finish(current.take(), anon_free);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_private_readonly_file_mappings() {
        let smaps = "\
5600-5700 r--p 00000000 fd:01 123 /usr/bin/worldpool
Rss:                 64 kB
Anonymous:            0 kB
5700-5900 r-xp 00100000 fd:01 123 /usr/bin/worldpool
Rss:                512 kB
Anonymous:            0 kB
5900-5a00 r--p 00300000 fd:01 123 /usr/bin/worldpool
Rss:                 64 kB
Anonymous:           64 kB
5a00-5b00 rw-p 00400000 fd:01 123 /usr/bin/worldpool
Rss:                  8 kB
Anonymous:            8 kB
7000-7100 r-xp 00000000 00:00 0 
Rss:                  4 kB
Anonymous:            0 kB
7100-7200 r-xs 00000000 fd:01 77 /dev/shm/x
Rss:                  4 kB
Anonymous:            0 kB
7200-7300 r-xp 00000000 fd:01 88 /usr/lib/libc.so.6
Rss:                  0 kB
Anonymous:            0 kB
7300-7400 r-xp 00000000 fd:01 89 /usr/lib/libm.so.6
Rss:                 12 kB
Anonymous:            0 kB
";
        let got: Vec<(usize, u64)> = clean_readonly_mappings(smaps)
            .iter()
            .map(|m| (m.start, m.rss / 1024))
            .collect();
        assert_eq!(got, vec![(0x5600, 64), (0x5700, 512), (0x7300, 12)]);
    }

    #[test]
    fn released_pages_fault_back_in() {
        let before = pool::procfs::memory(std::process::id()).expect("own memory");
        let r = release_startup_pages();
        assert!(r.mappings > 0 && r.bytes > 0, "{r:?}");
        let after = pool::procfs::memory(std::process::id()).expect("own memory");
        // The test keeps running (what it needs faulted back in), with
        // fewer file pages mapped than before.
        assert!(after.rss_file < before.rss_file, "{before:?} -> {after:?}");
    }
}
