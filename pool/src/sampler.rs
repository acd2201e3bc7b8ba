//! CPU and memory sampling of the pool's processes, on a thread of its own.
//!
//! sysinfo refreshes only the pids of the pool (about 40 µs per process),
//! once per `sample_interval`. The sampler writes CPU percent and RSS into
//! the shared snapshot of a worker whose pid is unchanged, and the CPU time
//! the exit classifier uses. Death is detected by the actors, never here.
//! The thread ends with the pool (it holds a weak reference).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::error::Error;
use crate::handle::{Shared, Slot};

/// Start the sampler thread.
pub(crate) fn start(shared: Weak<Shared>, interval: Duration) -> Result<(), Error> {
    let interval = interval.max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("pool-sampler".into())
        .spawn(move || run(shared, interval))
        .map_err(|source| Error::Io {
            context: "starting the sampler thread".into(),
            source,
        })?;
    Ok(())
}

fn run(shared: Weak<Shared>, interval: Duration) {
    let mut sys = match System::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "resource sampling disabled");
            return;
        }
    };
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let mut pids: Vec<(Arc<Slot>, Pid)> = Vec::new();
    let mut only: Vec<Pid> = Vec::new();
    loop {
        std::thread::sleep(interval);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        pids.clear();
        for slot in shared.slots() {
            let pid = slot.status.read().ok().and_then(|s| s.pid);
            if let Some(pid) = pid {
                pids.push((slot, Pid::from_u32(pid)));
            }
        }
        drop(shared);
        only.clear();
        only.extend(pids.iter().map(|(_, p)| *p));
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&only), true, kind);
        for (slot, pid) in pids.drain(..) {
            let Some(p) = sys.process(pid) else { continue };
            if let Ok(mut s) = slot.status.write()
                && s.pid == Some(pid.as_u32())
            {
                slot.cpu_time_ms
                    .store(p.accumulated_cpu_time(), Ordering::Relaxed);
                s.cpu_percent = Some(p.cpu_usage());
                s.rss_bytes = Some(p.memory());
            }
        }
    }
}
