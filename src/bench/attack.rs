//! The attackers of `worldpool bench --hostile`, in a process of their
//! own, as a real attacker on the same machine would be: their CPU, their
//! runtime and their descriptors are not the bench's, so the bench's own
//! measuring client never waits behind them.
//!
//! [`AttackProcess::start`] runs this binary's `bench --hostile-attack
//! ADDR --attack-sizes I,H,D,Q`, which is [`run`]: idle sockets, half-sent
//! request heads, stalled downloads and abandoned heavy queries against
//! ADDR (each reconnects when the server closes it), until its stdin
//! closes or [`MAX_RUN`] passes. Meanwhile it prints `{"open": N}` every
//! 50 ms on stdout, and at the end one `{"done": AttackStats}` line.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::hostile::{Attack, AttackStats};

/// An attacker process ends by itself after this long, whatever happens
/// to the bench.
pub const MAX_RUN: Duration = Duration::from_secs(600);

/// What the attacker process prints, one JSON object a line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Report {
    Open(usize),
    Done(AttackStats),
}

/// `worldpool bench --hostile-attack ADDR --attack-sizes I,H,D,Q`.
pub async fn run(addr: SocketAddr, attack: Attack) -> anyhow::Result<ExitCode> {
    // Hundreds of attack sockets live in this process.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("attacker: cannot raise the open-files limit: {e}");
    }
    let attackers = Attackers::start(addr, attack);
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let deadline = tokio::time::Instant::now() + MAX_RUN;
    let mut buf = [0u8; 64];
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            // EOF (or an error): the bench is done with us.
            r = stdin.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { break },
            () = tokio::time::sleep_until(deadline) => break,
            _ = ticker.tick() => {
                let open = attackers.counters.open.load(Ordering::Relaxed);
                let line = format!("{}\n", serde_json::to_string(&Report::Open(open))?);
                if stdout.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                let _ = stdout.flush().await;
            }
        }
    }
    let stats = attackers.finish().await;
    let line = format!("{}\n", serde_json::to_string(&Report::Done(stats))?);
    let _ = stdout.write_all(line.as_bytes()).await;
    let _ = stdout.flush().await;
    Ok(ExitCode::SUCCESS)
}

/// `I,H,D,Q` of `--attack-sizes`.
pub fn parse_sizes(text: &str) -> Result<Attack, String> {
    let n: Vec<usize> = text
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{text}`: {e} (four counts: idle,half-heads,downloads,queries)"))?;
    match n[..] {
        [
            idle_sockets,
            half_heads,
            stalled_downloads,
            abandoned_queries,
        ] => Ok(Attack {
            idle_sockets,
            half_heads,
            stalled_downloads,
            abandoned_queries,
        }),
        _ => Err(format!(
            "`{text}`: four counts expected (idle,half-heads,downloads,queries)"
        )),
    }
}

/// The attacker process, seen from the bench.
pub struct AttackProcess {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    /// Attack connections open now (the child's last report).
    pub open: Arc<AtomicUsize>,
    reports: tokio::task::JoinHandle<Option<AttackStats>>,
    sockets: usize,
    started: Instant,
}

impl AttackProcess {
    /// Start `exe bench --hostile-attack ADDR` with `attack`'s sizes.
    pub fn start(exe: &Path, addr: SocketAddr, attack: Attack) -> anyhow::Result<AttackProcess> {
        let sizes = format!(
            "{},{},{},{}",
            attack.idle_sockets,
            attack.half_heads,
            attack.stalled_downloads,
            attack.abandoned_queries
        );
        let mut child = tokio::process::Command::new(exe)
            .args([
                "bench",
                "--hostile-attack",
                &addr.to_string(),
                "--attack-sizes",
                &sizes,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the attacker process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the attacker's stdout")?;
        let open = Arc::new(AtomicUsize::new(0));
        let reports = {
            let open = open.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Report>(&line) {
                        Ok(Report::Open(n)) => open.store(n, Ordering::Relaxed),
                        Ok(Report::Done(stats)) => return Some(stats),
                        Err(_) => {}
                    }
                }
                None
            })
        };
        Ok(AttackProcess {
            child,
            stdin,
            open,
            reports,
            sockets: attack.idle_sockets
                + attack.half_heads
                + attack.stalled_downloads
                + attack.abandoned_queries,
            started: Instant::now(),
        })
    }

    /// The attacker's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Until every attack connection is open (or `within`), then a second
    /// for the queries and downloads to start.
    pub async fn in_place(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.open.load(Ordering::Relaxed) < self.sockets && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// Stop the attack (close its stdin) and collect what it did; the
    /// process is killed if it does not end within 30 s.
    pub async fn finish(mut self) -> AttackStats {
        let cpu = self.pid().and_then(pool::procfs::cpu_time);
        let alive = self.started.elapsed();
        drop(self.stdin.take());
        let stats = tokio::time::timeout(Duration::from_secs(30), &mut self.reports)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let mut stats = stats.unwrap_or_else(|| {
            eprintln!("hostile: the attacker process did not report its figures");
            AttackStats::default()
        });
        stats.attacker_cpu_s = cpu.map_or(f64::NAN, |c| c.as_secs_f64());
        stats.attacker_alive_s = alive.as_secs_f64();
        stats
    }
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    connections: AtomicU64,
    stalled: AtomicU64,
    refused: AtomicU64,
    abandoned: AtomicU64,
}

/// The attack's tasks, in the attacker process.
struct Attackers {
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    counters: Arc<Counters>,
}

/// One attack connection, counted while open.
struct Held {
    stream: TcpStream,
    counters: Arc<Counters>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn open(
    addr: SocketAddr,
    counters: &Arc<Counters>,
    stop: &CancellationToken,
    recv_buffer: Option<u32>,
) -> Option<Held> {
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        if let Some(size) = recv_buffer {
            let _ = socket.set_recv_buffer_size(size);
        }
        socket.connect(addr).await.ok()
    };
    let stream = tokio::select! {
        () = stop.cancelled() => return None,
        s = tokio::time::timeout(Duration::from_secs(5), connect) => s.ok().flatten(),
    };
    let Some(stream) = stream else {
        // Refused or timed out: do not spin.
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        return None;
    };
    counters.connections.fetch_add(1, Ordering::Relaxed);
    counters.open.fetch_add(1, Ordering::Relaxed);
    Some(Held {
        stream,
        counters: counters.clone(),
    })
}

/// Hold a connection (after `head`, when given) until the server closes
/// it, then open another; until `stop`.
async fn hold(
    addr: SocketAddr,
    head: Option<&'static [u8]>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let Some(mut held) = open(addr, &counters, &stop, None).await else {
            continue;
        };
        if let Some(head) = head
            && held.stream.write_all(head).await.is_err()
        {
            continue;
        }
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                r = held.stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
    }
}

/// Download every delta, read the status line, then nothing; re-opened
/// every 10 s.
async fn stalled_download(addr: SocketAddr, counters: Arc<Counters>, stop: CancellationToken) {
    let request = format!("GET /api/download/deltas HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    while !stop.is_cancelled() {
        let Some(mut held) = open(addr, &counters, &stop, Some(4096)).await else {
            continue;
        };
        if held.stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        let mut status = [0u8; 12];
        let read = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(10), held.stream.read_exact(&mut status)) => r,
        };
        match read {
            Ok(Ok(_)) if status.ends_with(b"429") => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(_)) => {
                counters.stalled.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// `POST /api/rankings-table {}` (every update of the history), given up
/// after 0.5 s; again until `stop`.
async fn abandoned_query(addr: SocketAddr, counters: Arc<Counters>, stop: CancellationToken) {
    let request = format!(
        "POST /api/rankings-table HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    while !stop.is_cancelled() {
        let Some(mut held) = open(addr, &counters, &stop, None).await else {
            continue;
        };
        if held.stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        counters.abandoned.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

impl Attackers {
    fn start(addr: SocketAddr, a: Attack) -> Attackers {
        let stop = CancellationToken::new();
        let counters = Arc::new(Counters::default());
        let mut tasks = tokio::task::JoinSet::new();
        // The heavy ones first, then the sockets that only wait.
        for _ in 0..a.stalled_downloads {
            tasks.spawn(stalled_download(addr, counters.clone(), stop.clone()));
        }
        for _ in 0..a.abandoned_queries {
            tasks.spawn(abandoned_query(addr, counters.clone(), stop.clone()));
        }
        for _ in 0..a.half_heads {
            tasks.spawn(hold(
                addr,
                Some(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
                counters.clone(),
                stop.clone(),
            ));
        }
        for _ in 0..a.idle_sockets {
            tasks.spawn(hold(addr, None, counters.clone(), stop.clone()));
        }
        Attackers {
            stop,
            tasks,
            counters,
        }
    }

    async fn finish(mut self) -> AttackStats {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        let c = &self.counters;
        AttackStats {
            connections: c.connections.load(Ordering::Relaxed),
            open_at_start: 0,
            downloads_stalled: c.stalled.load(Ordering::Relaxed),
            downloads_refused: c.refused.load(Ordering::Relaxed),
            queries_abandoned: c.abandoned.load(Ordering::Relaxed),
            ..AttackStats::default()
        }
    }
}
