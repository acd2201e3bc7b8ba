//! Reading process figures from /proc (Linux): CPU seconds, peak RSS,
//! children, command lines. Used to measure a supervisor run as a separate
//! process, exactly as `worldpool run` runs in production.

use std::collections::HashMap;

/// Clock ticks per second for /proc/<pid>/stat times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Fields after the `(comm)` of /proc/<pid>/stat.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// User + system CPU seconds of a process (not of its children).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // after comm: state(0) ppid(1) ... utime(11) stime(12)
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// A `kB` field of /proc/<pid>/status (e.g. `VmHWM`, `VmRSS`) in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Peak resident set size (VmHWM) in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM")
}

/// Live (non-zombie) children of `ppid` with their command lines.
pub fn children(ppid: u32) -> HashMap<u32, Vec<String>> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        if f.first().map(String::as_str) == Some("Z") {
            continue;
        }
        if f.get(1).and_then(|p| p.parse::<u32>().ok()) != Some(ppid) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.insert(pid, args);
    }
    out
}

/// The worker slot a command line belongs to: the value after `--world`,
/// or `single` for `--all`.
pub fn worker_slot(args: &[String]) -> Option<String> {
    if args.iter().any(|a| a == "--all") {
        return Some("single".to_string());
    }
    let i = args.iter().position(|a| a == "--world")?;
    args.get(i + 1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        let hwm = peak_rss(me).expect("VmHWM");
        assert!(hwm > 1 << 20, "{hwm}");
        assert!(status_bytes(me, "NoSuchField").is_none());
    }

    #[test]
    fn slots() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            worker_slot(&s(&["wp", "worker", "--world", "Aurera"])),
            Some("Aurera".into())
        );
        assert_eq!(
            worker_slot(&s(&["wp", "worker", "--all"])),
            Some("single".into())
        );
        assert_eq!(worker_slot(&s(&["wp", "run"])), None);
    }
}
