//! The API's read-only connections to a SQLite file: a few threads of
//! their own, each holding one connection opened read-only (WAL readers:
//! they see the last committed snapshot and never wait for a writer, and
//! writers never wait for them). Queries wait in a bounded queue; a query
//! whose caller went away (timeout, client gone) is skipped if it has not
//! started and interrupted (`sqlite3_interrupt`) if it has, so an abandoned
//! heavy query costs nothing once abandoned.
//!
//! Two lanes ([`super::super::lane`]): the first reader serves cheap reads
//! only, at the API's own priority; the others serve cheap reads first,
//! then heavy ones, at the readers' lower priority. A cheap read thus never
//! waits behind a heavy one, nor for the CPU behind one.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle, OpenFlags};

use super::super::lane::Lane;
use super::{StoreError, busy_retry, db};

/// Queries waiting for a reader, per reader; beyond it a read answers
/// "unavailable" at once instead of queueing without bound.
const QUEUE_PER_READER: usize = 32;

/// Put the calling read thread (a reader, an export) at `nice`, and make
/// it background work when `background`
/// ([`pool::priority::background_thread`]).
pub(super) fn read_thread_priority(nice: i32, background: bool) {
    pool::priority::lower_thread_priority(nice);
    if background {
        pool::priority::background_thread();
    }
}

/// How long background work (heavy reads, exports) runs before it gives
/// its CPU away.
const GIVE_WAY_EVERY: Duration = Duration::from_micros(100);

/// Make `conn`'s queries background work that gives way: about every
/// [`GIVE_WAY_EVERY`] of running, the thread yields its CPU
/// (`sched_yield`), so a thread woken on that CPU runs within that time.
/// `SCHED_IDLE` alone does not ensure it: on the kernels measured
/// (Linux 6.18, `HZ=250`), a thread woken on a CPU busy with `SCHED_IDLE`
/// work often waited for the next tick, up to 4 ms; the pool's thread
/// among them, between a worker's exit and its replacement's clone.
pub(super) fn give_way(conn: &mut Connection) -> Result<(), StoreError> {
    give_way_with(conn, GIVE_WAY_EVERY, std::thread::yield_now)
}

/// [`give_way`] every `every`, calling `give`.
fn give_way_with(conn: &mut Connection, every: Duration, give: fn()) -> Result<(), StoreError> {
    let mut since = Instant::now();
    // The handler runs every 1,000 virtual-machine steps, a few
    // microseconds of work: reading the clock there costs nothing.
    conn.progress_handler(
        1_000,
        Some(move || {
            if since.elapsed() >= every {
                give();
                since = Instant::now();
            }
            false // never interrupts
        }),
    )
    .map_err(db)
}

/// A read job as the reader threads see it.
type Work = Box<dyn FnOnce(&mut Connection) + Send>;

struct Job {
    work: Work,
    ticket: Arc<Ticket>,
}

/// The jobs waiting, by lane.
#[derive(Default)]
struct Waiting {
    cheap: VecDeque<Job>,
    heavy: VecDeque<Job>,
    /// The store is gone: the threads end.
    closed: bool,
}

/// The queue the caller and the reader threads share.
struct Queue {
    waiting: Mutex<Waiting>,
    /// A cheap job came (every reader may take it).
    cheap: Condvar,
    /// A job of either lane came (the readers that serve both).
    any: Condvar,
    capacity: usize,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, lane: Lane, job: Job) -> Result<(), StoreError> {
        let mut w = self.lock();
        if w.closed {
            return Err(StoreError::Unavailable(
                "the store's readers stopped".to_string(),
            ));
        }
        if w.cheap.len() + w.heavy.len() >= self.capacity {
            return Err(StoreError::Unavailable(
                "too many store reads are waiting: try again later".to_string(),
            ));
        }
        match lane {
            Lane::Cheap => {
                w.cheap.push_back(job);
                drop(w);
                self.cheap.notify_one();
                self.any.notify_one();
            }
            Lane::Heavy => {
                w.heavy.push_back(job);
                drop(w);
                self.any.notify_one();
            }
        }
        Ok(())
    }

    /// The next job for a reader of `role`; `None` once closed.
    fn take(&self, role: Role) -> Option<Job> {
        let mut w = self.lock();
        loop {
            if w.closed {
                return None;
            }
            if let Some(job) = w.cheap.pop_front() {
                return Some(job);
            }
            if role == Role::Both
                && let Some(job) = w.heavy.pop_front()
            {
                return Some(job);
            }
            let wake = match role {
                Role::CheapOnly => &self.cheap,
                Role::Both => &self.any,
            };
            w = wake.wait(w).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.cheap.notify_all();
        self.any.notify_all();
    }
}

/// What a reader thread serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Cheap reads only (the first reader).
    CheapOnly,
    /// Cheap reads first, then heavy ones.
    Both,
}

/// Where a job is: its caller and its reader thread agree through this.
#[derive(Default)]
struct Ticket(Mutex<Phase>);

#[derive(Default)]
enum Phase {
    #[default]
    Waiting,
    Running(InterruptHandle),
    Finished,
    Abandoned,
}

impl Ticket {
    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The caller's side of a ticket: dropped before the answer came (the
/// caller timed out or was dropped), it abandons the job.
struct Abandon(Option<Arc<Ticket>>);

impl Abandon {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(ticket) = self.0.take() {
            let mut phase = ticket.lock();
            // Interrupt under the lock: the reader marks the job finished
            // under the same lock before it takes the next one, so the
            // interrupt can only reach this job's statement.
            if let Phase::Running(handle) = &*phase {
                handle.interrupt();
            }
            *phase = Phase::Abandoned;
        }
    }
}

/// The read-only connections and their threads. Dropping the last clone of
/// the store closes the queue; the threads then end.
pub(super) struct Readers {
    queue: Arc<Queue>,
    timeout: Duration,
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Readers {
    /// Open `count` read-only connections to `path`, each on a thread: the
    /// first for cheap reads only, at nice `cheap_nice`; the others at
    /// `nice`, under `SCHED_IDLE` when `background` (with a single reader,
    /// it serves both lanes so).
    pub(super) fn open(
        path: &Path,
        count: usize,
        timeout: Duration,
        nice: i32,
        background: bool,
        cheap_nice: i32,
    ) -> Result<Readers, StoreError> {
        let count = count.max(1);
        let queue = Arc::new(Queue {
            waiting: Mutex::new(Waiting::default()),
            cheap: Condvar::new(),
            any: Condvar::new(),
            capacity: count * QUEUE_PER_READER,
        });
        let readers = Readers {
            queue: queue.clone(),
            timeout,
        };
        for n in 0..count {
            let mut conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| StoreError::Unavailable(format!("sqlite {}: {e}", path.display())))?;
            conn.busy_handler(Some(busy_retry)).map_err(db)?;
            let (role, nice, idle) = if n == 0 && count > 1 {
                (Role::CheapOnly, cheap_nice, false)
            } else {
                (Role::Both, nice, background)
            };
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("store-reader-{n}"))
                .spawn(move || {
                    read_thread_priority(nice, idle);
                    if idle && let Err(e) = give_way(&mut conn) {
                        tracing::debug!(error = %e, "a background reader cannot give way");
                    }
                    serve(conn, &queue, role);
                })
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot start a store reader: {e}"))
                })?;
        }
        Ok(readers)
    }

    /// Run `f` on a reader within the deadline. Dropping the returned
    /// future abandons the query (interrupting it if it runs).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ticket = Arc::new(Ticket::default());
        let job = Job {
            work: Box::new(move |c| {
                let _ = tx.send(f(c));
            }),
            ticket: ticket.clone(),
        };
        self.queue.push(lane, job)?;
        let abandon = Abandon(Some(ticket));
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => {
                abandon.answered();
                answer
            }
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "a store reader stopped during the query".to_string(),
            )),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the query took longer than {} ms and was stopped",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// One reader thread: take jobs until the queue closes.
fn serve(mut conn: Connection, queue: &Queue, role: Role) {
    while let Some(job) = queue.take(role) {
        {
            let mut phase = job.ticket.lock();
            if matches!(*phase, Phase::Abandoned) {
                continue;
            }
            *phase = Phase::Running(conn.get_interrupt_handle());
        }
        (job.work)(&mut conn);
        *job.ticket.lock() = Phase::Finished;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lane::HeavyLane;

    fn file_with_rows(n: i64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.db");
        let c = Connection::open(&path).expect("open");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("table");
        c.execute_batch(&format!(
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n})
             INSERT INTO t SELECT x FROM s"
        ))
        .expect("rows");
        (dir, path)
    }

    /// A query that runs for minutes unless interrupted.
    const ENDLESS: &str = "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s)
                           SELECT COUNT(*) FROM s";

    #[tokio::test]
    async fn heavy_reads_run_in_the_background_when_asked() {
        let (_dir, path) = file_with_rows(1);
        let all = pool::priority::allowed_cpus();
        // SAFETY: sched_getscheduler only reads; 0 is the calling thread.
        let policy = |_: &mut Connection| {
            Ok((
                unsafe { libc::sched_getscheduler(0) },
                pool::priority::allowed_cpus().len(),
            ))
        };
        let fewer = all.len().saturating_sub(1).max(1);
        for (background, want) in [
            (true, (libc::SCHED_IDLE, fewer)),
            (false, (libc::SCHED_OTHER, all.len())),
        ] {
            let r =
                Readers::open(&path, 2, Duration::from_secs(5), 0, background, 0).expect("readers");
            let got = r.run(Lane::Heavy, policy).await.expect("policy");
            assert_eq!(got, want, "background: {background}");
        }
    }

    #[test]
    fn a_connection_that_gives_way_yields_while_a_query_runs_and_still_answers() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static GIVEN: AtomicUsize = AtomicUsize::new(0);
        let (_dir, path) = file_with_rows(1);
        let mut conn = Connection::open(&path).expect("open");
        give_way_with(&mut conn, Duration::from_millis(1), || {
            GIVEN.fetch_add(1, Ordering::Relaxed);
        })
        .expect("handler");
        let cpu_ms = || pool::procfs::thread_cpu_time().as_millis();
        let (started, cpu_before) = (Instant::now(), cpu_ms());
        let count: i64 = conn
            .query_row(
                "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 3000000)
                 SELECT COUNT(*) FROM s",
                [],
                |r| r.get(0),
            )
            .expect("the query runs to its end");
        let (ran, on_cpu) = (started.elapsed().as_millis(), cpu_ms() - cpu_before);
        assert_eq!(count, 3_000_000, "giving way never interrupts");
        let given = GIVEN.load(Ordering::Relaxed) as u128;
        // About once per millisecond run: at least once per 2 ms on the
        // CPU, at most once per millisecond of wall time.
        assert!(
            on_cpu >= 10,
            "the query ran long enough to tell: {on_cpu} ms"
        );
        assert!(
            given >= on_cpu / 2 && given <= ran + 1,
            "gave way {given} times in {ran} ms ({on_cpu} ms on the CPU)"
        );
    }

    #[tokio::test]
    async fn reads_answer_and_are_read_only() {
        let (_dir, path) = file_with_rows(10);
        let r = Readers::open(&path, 2, Duration::from_secs(5), 0, false, 0).expect("readers");
        let n: i64 = r
            .run(Lane::Cheap, |c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .expect("count");
        assert_eq!(n, 10);
        let write = r
            .run(Lane::Cheap, |c| {
                c.execute("INSERT INTO t VALUES (1)", []).map_err(db)
            })
            .await;
        assert!(write.is_err(), "a reader cannot write: {write:?}");
    }

    #[tokio::test]
    async fn a_query_past_its_deadline_is_interrupted_and_the_reader_serves_again() {
        let (_dir, path) = file_with_rows(10);
        let r = Readers::open(&path, 1, Duration::from_millis(200), 0, false, 0).expect("readers");
        let started = std::time::Instant::now();
        let slow = r
            .run(Lane::Cheap, |c| {
                c.query_row(ENDLESS, [], |r| r.get::<_, i64>(0)).map_err(db)
            })
            .await;
        assert!(
            matches!(&slow, Err(StoreError::Unavailable(m)) if m.contains("200 ms")),
            "{slow:?}"
        );
        // The one reader is free again: the endless query was interrupted.
        let n: i64 = r
            .run(Lane::Cheap, |c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .expect("the reader serves again");
        assert_eq!(n, 10);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn heavy_reads_never_take_the_reader_kept_for_cheap_ones() {
        let (_dir, path) = file_with_rows(10);
        let r = Arc::new(
            Readers::open(&path, 2, Duration::from_secs(60), 0, false, 0).expect("readers"),
        );
        let count = |r: Arc<Readers>| async move {
            r.run(Lane::Cheap, |c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                    .map_err(db)
            })
            .await
        };
        // An endless query that says when a reader began it.
        let (began, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
        let endless = move |r: Arc<Readers>, lane: Lane| {
            let began = began.clone();
            async move {
                r.run(lane, move |c| {
                    let _ = began.send(());
                    c.query_row(ENDLESS, [], |r| r.get::<_, i64>(0)).map_err(db)
                })
                .await
            }
        };
        let within = Duration::from_secs(10);
        // Two endless cheap reads take both readers: the next cheap read
        // waits for them (here: is not answered at all).
        let mut busy = tokio::task::JoinSet::new();
        for _ in 0..2 {
            busy.spawn(endless(r.clone(), Lane::Cheap));
        }
        for _ in 0..2 {
            tokio::time::timeout(within, running.recv())
                .await
                .expect("an endless query began");
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), count(r.clone()))
                .await
                .is_err(),
            "both readers were taken: the cheap read had to wait"
        );
        busy.abort_all();
        while busy.join_next().await.is_some() {}
        // Five endless heavy reads, more than there are readers: one runs,
        // the others wait (for a place in the lane, or in the queue), and
        // cheap reads are answered all along by the reader kept for them.
        let lane = Arc::new(HeavyLane::new(2, Duration::from_secs(60)));
        for n in 0..5 {
            let (r, lane, endless) = (r.clone(), lane.clone(), endless.clone());
            busy.spawn(async move {
                // Three through the lane's places, two straight into the
                // queue's heavy lane (as a place-holder that lied would).
                let _place = if n < 3 {
                    Some(lane.enter().await?)
                } else {
                    None
                };
                endless(r, Lane::Heavy).await
            });
        }
        tokio::time::timeout(within, running.recv())
            .await
            .expect("a heavy query began");
        for _ in 0..20 {
            let n = tokio::time::timeout(within, count(r.clone()))
                .await
                .expect("a cheap read is answered while heavy ones run and wait")
                .expect("count");
            assert_eq!(n, 10);
        }
        assert_eq!(busy.len(), 5, "the heavy reads still run or wait");
        assert!(running.try_recv().is_err(), "only one heavy read began");
        assert_eq!(lane.free(), 0, "the lane's one place is taken");
        busy.abort_all();
        while busy.join_next().await.is_some() {}
    }

    #[tokio::test]
    async fn a_dropped_caller_abandons_its_query() {
        let (_dir, path) = file_with_rows(10);
        let r = Readers::open(&path, 1, Duration::from_secs(30), 0, false, 0).expect("readers");
        for _ in 0..5 {
            let slow = r.run(Lane::Cheap, |c| {
                c.query_row(ENDLESS, [], |r| r.get::<_, i64>(0)).map_err(db)
            });
            // Given up after 50 ms, like a client that closes its socket.
            assert!(
                tokio::time::timeout(Duration::from_millis(50), slow)
                    .await
                    .is_err()
            );
        }
        let n: i64 = tokio::time::timeout(
            Duration::from_secs(2),
            r.run(Lane::Cheap, |c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(db)
            }),
        )
        .await
        .expect("abandoned queries do not hold the reader")
        .expect("count");
        assert_eq!(n, 10);
    }
}
