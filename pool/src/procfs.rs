//! A process's CPU time and memory from /proc (Linux), read into one
//! reused buffer: no allocation per process once the buffers have grown.
//!
//! - `/proc/PID/stat`: CPU ticks (user + system), start time, resident
//!   pages; about 7 µs per process.
//! - `/proc/PID/smaps_rollup`: RSS split into anonymous and file pages,
//!   and PSS (each shared page divided by the number of processes mapping
//!   it: what the process really costs); the kernel walks the process's
//!   page tables, about 20–40 µs for a worker.
//! - `/proc/PID/status`: the peak RSS (`VmHWM`), for measuring a run.
//! - [`children`]: the live children of a process with their command lines
//!   (a scan of `/proc`, for a benchmark watching a supervisor it did not
//!   start through this crate).

use std::io::{self, Read};
use std::time::Duration;

/// Memory of one process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size (what `ps` and `top` show).
    pub rss: u64,
    /// Proportional set size: private pages plus each shared page divided
    /// by the number of processes that map it.
    pub pss: u64,
    /// Resident anonymous pages (heap, stacks, relocated data).
    pub rss_anon: u64,
    /// Resident file pages (the binary and libraries, mostly shared).
    pub rss_file: u64,
}

/// CPU figures of one process from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// User + system time, clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, clock ticks.
    pub start_ticks: u64,
    /// The parent's pid.
    pub ppid: u32,
    /// Exited, not yet reaped (state `Z`).
    pub zombie: bool,
}

/// Reads /proc files into a reused buffer.
pub(crate) struct Reader {
    buf: Vec<u8>,
    path: String,
    /// Clock ticks per second.
    pub hz: u64,
}

impl Reader {
    pub fn new() -> Reader {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Reader {
            buf: Vec::with_capacity(2048),
            path: String::with_capacity(32),
            hz: if hz > 0 { hz as u64 } else { 100 },
        }
    }

    fn read(&mut self, pid: u32, file: &str) -> io::Result<&[u8]> {
        use std::fmt::Write as _;
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/{file}");
        let mut f = std::fs::File::open(&self.path)?;
        self.buf.clear();
        f.read_to_end(&mut self.buf)?;
        Ok(&self.buf)
    }

    /// `/proc/PID/stat`: CPU ticks and start time.
    pub fn stat(&mut self, pid: u32) -> Option<Stat> {
        parse_stat(self.read(pid, "stat").ok()?)
    }

    /// `/proc/PID/smaps_rollup`: RSS and PSS.
    pub fn memory(&mut self, pid: u32) -> Option<Memory> {
        parse_rollup(self.read(pid, "smaps_rollup").ok()?)
    }

    /// `/proc/PID/status`: the peak resident set size (`VmHWM`), bytes.
    pub fn peak_rss(&mut self, pid: u32) -> Option<u64> {
        status_bytes(self.read(pid, "status").ok()?, "VmHWM")
    }

    /// `/proc/PID/cmdline`: the arguments.
    pub fn cmdline(&mut self, pid: u32) -> Option<Vec<String>> {
        let raw = self.read(pid, "cmdline").ok()?;
        Some(
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        )
    }

    /// Convert clock ticks to a duration.
    pub fn ticks(&self, ticks: u64) -> Duration {
        Duration::from_millis(ticks.saturating_mul(1000) / self.hz)
    }
}

/// Memory of any process (RSS and PSS from `/proc/PID/smaps_rollup`).
/// `None` when the process is gone or the file is unreadable.
pub fn memory(pid: u32) -> Option<Memory> {
    Reader::new().memory(pid)
}

/// User + system CPU time of any process (not of its children). `None`
/// when the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let mut r = Reader::new();
    let stat = r.stat(pid)?;
    Some(r.ticks(stat.cpu_ticks))
}

/// CPU time of the calling thread so far (what some work cost it,
/// whatever the scheduler did meanwhile).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Peak resident set size (`VmHWM`) of any process, in bytes. `None` when
/// the process is gone.
pub fn peak_rss(pid: u32) -> Option<u64> {
    Reader::new().peak_rss(pid)
}

/// The live (not zombie) children of `ppid`, each with its command line,
/// in pid order.
pub fn children(ppid: u32) -> Vec<(u32, Vec<String>)> {
    let mut r = Reader::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !r.stat(pid).is_some_and(|s| s.ppid == ppid && !s.zombie) {
            continue;
        }
        if let Some(args) = r.cmdline(pid) {
            out.push((pid, args));
        }
    }
    out.sort_unstable_by_key(|(pid, _)| *pid);
    out
}

/// A `kB` line of `/proc/PID/status` (`VmHWM:    1234 kB`), in bytes.
fn status_bytes(text: &[u8], field: &str) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.split_ascii_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Fields after the `(comm)` of /proc/PID/stat (the name may hold spaces
/// and parentheses: split at the last `)`).
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    // After comm: state(0) ppid(1) … utime(11) stime(12) … starttime(19).
    let mut zombie = false;
    let mut ppid = None;
    let mut utime = None;
    let mut stime = None;
    for (i, field) in rest.split_ascii_whitespace().enumerate() {
        match i {
            0 => zombie = field == "Z",
            1 => ppid = field.parse::<u32>().ok(),
            11 => utime = field.parse::<u64>().ok(),
            12 => stime = field.parse::<u64>().ok(),
            19 => {
                return Some(Stat {
                    cpu_ticks: utime? + stime?,
                    start_ticks: field.parse().ok()?,
                    ppid: ppid?,
                    zombie,
                });
            }
            _ => {}
        }
    }
    None
}

/// `Rss:`, `Pss:`, `Pss_Anon:`… lines of smaps_rollup, in kB.
fn parse_rollup(text: &[u8]) -> Option<Memory> {
    let text = std::str::from_utf8(text).ok()?;
    let mut m = Memory::default();
    let (mut rss, mut pss) = (false, false);
    let (mut anon, mut file) = (0u64, 0u64);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Some(kb) = value
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let bytes = kb * 1024;
        match key {
            "Rss" => {
                m.rss = bytes;
                rss = true;
            }
            "Pss" => {
                m.pss = bytes;
                pss = true;
            }
            "Anonymous" => anon = bytes,
            _ => {}
        }
    }
    if m.rss >= anon {
        file = m.rss - anon;
    }
    m.rss_anon = anon;
    m.rss_file = file;
    (rss && pss).then_some(m)
}

/// Time since boot (the clock of /proc/PID/stat's start time).
pub(crate) fn since_boot() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_name() {
        let line = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 50 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 10,
                start_ticks: 12345,
                ppid: 1,
                zombie: false,
            })
        );
        let zombie = b"43 (z) Z 7 43 43 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0";
        assert!(parse_stat(zombie).is_some_and(|s| s.zombie && s.ppid == 7));
        assert_eq!(parse_stat(b"42 (x) S 1"), None);
    }

    #[test]
    fn rollup_fields() {
        let text = b"55d0-7ffd ---p 00000000 00:00 0                          [rollup]\n\
Rss:               12896 kB\nPss:                2800 kB\nPss_Dirty:          2400 kB\n\
Pss_Anon:           2300 kB\nPss_File:            500 kB\nShared_Clean:      10600 kB\n\
Anonymous:          2300 kB\nSwap:                  0 kB\n";
        let m = parse_rollup(text).expect("parses");
        assert_eq!(m.rss, 12896 * 1024);
        assert_eq!(m.pss, 2800 * 1024);
        assert_eq!(m.rss_anon, 2300 * 1024);
        assert_eq!(m.rss_file, (12896 - 2300) * 1024);
        assert_eq!(parse_rollup(b"Rss: 1 kB\n"), None, "no Pss line");
    }

    #[test]
    fn status_lines() {
        let text = b"Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        assert_eq!(status_bytes(text, "VmHWM"), Some(5120 * 1024));
        assert_eq!(status_bytes(text, "VmRSS"), Some(4096 * 1024));
        assert_eq!(status_bytes(text, "VmSwap"), None);
    }

    #[test]
    fn children_with_their_command_lines() {
        let mut child = std::process::Command::new("sleep")
            .args(["30", "1"])
            .spawn()
            .expect("sleep runs");
        let me = std::process::id();
        // The child's arguments show once its exec has set them up, a
        // moment after spawn returns (the kernel wakes a vfork parent
        // before it fills in the new program's arguments).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = children(me);
            let has_args = found
                .iter()
                .any(|(pid, args)| *pid == child.id() && !args.is_empty());
            if has_args || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        let mine = found.iter().find(|(pid, _)| *pid == child.id());
        assert_eq!(
            mine.map(|(_, args)| args.as_slice()),
            Some(&["sleep".to_string(), "30".into(), "1".into()][..]),
            "{found:?}"
        );
        assert!(
            children(me).iter().all(|(pid, _)| *pid != child.id()),
            "reaped"
        );
        let peak = peak_rss(me).expect("VmHWM of this process");
        assert!(peak > 1 << 20, "{peak}");
        assert!(cpu_time(me).is_some() && cpu_time(u32::MAX).is_none());
    }

    #[test]
    fn reads_this_process() {
        let mut r = Reader::new();
        let me = std::process::id();
        let m = r.memory(me).expect("smaps_rollup of this process");
        assert!(m.rss > 1 << 20 && m.pss > 0 && m.pss <= m.rss, "{m:?}");
        let s = r.stat(me).expect("stat of this process");
        let boot = since_boot().expect("boot clock");
        assert!(r.ticks(s.start_ticks) <= boot);
        assert!(r.memory(u32::MAX).is_none());
    }
}
