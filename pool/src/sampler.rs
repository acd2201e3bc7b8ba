//! CPU and memory sampling of the pool's processes, on a thread of its own.
//!
//! Once per `sample_interval` the sampler reads, for each live worker,
//! `/proc/PID/stat` (CPU time) and `/proc/PID/smaps_rollup` (RSS and PSS),
//! into one reused buffer ([`crate::procfs`]): about 30 µs per process, so
//! 1.5 ms a tick for 50 workers. It writes CPU percent, RSS and PSS into
//! the shared snapshot of a worker whose pid is unchanged, and the CPU time
//! the exit classifier uses. The first sample of a new process already
//! has a CPU percent (its average since it started). Death is detected by
//! the actors, never here. The thread ends with the pool (it holds a weak
//! reference).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::procfs::{Reader, since_boot};
use crate::table::{Shared, Slot};

/// Start the sampler thread.
pub(crate) fn start(shared: Weak<Shared>, interval: Duration) -> Result<(), Error> {
    let interval = interval.max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("pool-sampler".into())
        // A small stack: the sampler reads small files and parses numbers.
        .stack_size(128 * 1024)
        .spawn(move || run(shared, interval))
        .map_err(|source| Error::Io {
            context: "starting the sampler thread".into(),
            source,
        })?;
    Ok(())
}

/// The previous CPU sample of a pid: ticks, and when.
type Previous = HashMap<u32, (u64, Instant)>;

fn run(shared: Weak<Shared>, interval: Duration) {
    let mut reader = Reader::new();
    let mut slots: Vec<(Arc<Slot>, u32)> = Vec::new();
    let mut previous = Previous::new();
    let mut current = Previous::new();
    loop {
        std::thread::sleep(interval);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        slots.clear();
        for slot in shared.slots() {
            let pid = slot.status.read().ok().and_then(|s| s.pid);
            if let Some(pid) = pid {
                slots.push((slot, pid));
            }
        }
        drop(shared);
        current.clear();
        for (slot, pid) in slots.drain(..) {
            sample(&mut reader, &slot, pid, &previous, &mut current);
        }
        std::mem::swap(&mut previous, &mut current);
    }
}

fn sample(reader: &mut Reader, slot: &Slot, pid: u32, previous: &Previous, current: &mut Previous) {
    let now = Instant::now();
    let Some(stat) = reader.stat(pid) else { return };
    let memory = reader.memory(pid);
    current.insert(pid, (stat.cpu_ticks, now));
    let cpu = reader.ticks(stat.cpu_ticks);
    let percent = match previous.get(&pid) {
        Some((ticks, at)) => {
            let used = reader.ticks(stat.cpu_ticks.saturating_sub(*ticks));
            percent(used, now.saturating_duration_since(*at))
        }
        // A new process: its average since it started.
        None => since_boot()
            .and_then(|boot| percent(cpu, boot.saturating_sub(reader.ticks(stat.start_ticks)))),
    };
    if let Ok(mut s) = slot.status.write()
        && s.pid == Some(pid)
    {
        slot.cpu_time_ms
            .store(cpu.as_millis() as u64, Ordering::Relaxed);
        s.cpu_percent = percent.or(s.cpu_percent);
        if let Some(m) = memory {
            s.rss_bytes = Some(m.rss);
            s.pss_bytes = Some(m.pss);
        }
    }
}

fn percent(used: Duration, over: Duration) -> Option<f32> {
    (over > Duration::ZERO).then(|| (used.as_secs_f64() / over.as_secs_f64() * 100.0) as f32)
}
