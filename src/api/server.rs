//! The API's HTTP/1.1 server, built so that no client can stop the pool
//! from supervising:
//!
//! - at most `max_connections` connections are open; beyond it the server
//!   stops accepting (new clients wait in the kernel's backlog, holding no
//!   descriptor of ours);
//! - it also stops accepting while the process's open descriptors come
//!   within `fd_reserve` of the soft `RLIMIT_NOFILE`: those are kept for
//!   spawning workers (pipes, the channel, the pidfd);
//! - a request head must arrive within `header_timeout`, counted from the
//!   moment the connection waits for one: a half-sent head and an idle
//!   keep-alive connection are both closed then;
//! - while every connection is taken and clients wait in the accept queue,
//!   as many connections as wait (at most [`EVICT_AT_ONCE`] every 50 ms)
//!   that have neither a request in a handler nor moved a byte for
//!   `evict_idle` are closed, the longest idle first, so clients that hold
//!   sockets without using them cannot keep a new client waiting for the
//!   whole `header_timeout`;
//! - on shutdown it stops accepting, lets open requests finish for
//!   `shutdown_grace`, then drops whatever is still open.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How the API server guards the process (`[api]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time allowed for a request head, and for an idle keep-alive
    /// connection to send its next one.
    pub header_timeout: Duration,
    /// Descriptors below the soft `RLIMIT_NOFILE` the API never takes.
    pub fd_reserve: u64,
    /// How long open responses may run on after shutdown begins.
    pub shutdown_grace: Duration,
    /// How long one write to a client may stay blocked (the client stopped
    /// reading) before the connection is cut.
    pub send_timeout: Duration,
    /// At the connection cap, a connection with no request in a handler
    /// that moved no byte for this long is closed for a waiting client.
    pub evict_idle: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            fd_reserve: 64,
            shutdown_grace: Duration::from_secs(2),
            send_timeout: Duration::from_secs(10),
            evict_idle: Duration::from_secs(1),
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (a supervisor of
/// hundreds of workers and API clients needs more than the usual 1024).
/// Returns the soft limit in force afterwards.
pub fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            rlimit::Resource::NOFILE
                .get()
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// Open descriptors of this process, counted in `/proc/self/fd` at most
/// once per [`FdGauge::EVERY`] near the limit, once per
/// [`FdGauge::FAR_EVERY`] far from it; in between, connections accepted
/// since the count are added to it.
struct FdGauge {
    count: fn() -> u64,
    limit: u64,
    reserve: u64,
    /// Descriptors the API itself may add (its connection cap).
    slack: u64,
    counted: u64,
    at: Option<Instant>,
    accepted_since: u64,
}

impl FdGauge {
    const EVERY: Duration = Duration::from_millis(50);
    /// How often it is counted while far from the limit: more than four
    /// times the reserve and the connection cap left. (Reading
    /// /proc/self/fd takes about 0.4 ms with 1,000 descriptors open: every
    /// 50 ms, that was a delay in the API's answers under attack.)
    const FAR_EVERY: Duration = Duration::from_secs(1);

    fn new(reserve: u64, slack: u64) -> FdGauge {
        let limit = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        FdGauge {
            count: Self::open_now,
            limit,
            reserve,
            slack,
            counted: 0,
            at: None,
            accepted_since: 0,
        }
    }

    fn open_now() -> u64 {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
    }

    /// Whether one more connection would eat into the reserve.
    fn full(&mut self) -> bool {
        let open = self.counted + self.accepted_since;
        let far = open + 4 * (self.reserve + self.slack) < self.limit;
        let every = if far { Self::FAR_EVERY } else { Self::EVERY };
        if self.at.is_none_or(|t| t.elapsed() >= every) {
            self.counted = (self.count)();
            self.at = Some(Instant::now());
            self.accepted_since = 0;
        }
        // +1: the connection about to be accepted.
        self.counted + self.accepted_since + 1 + self.reserve > self.limit
    }

    fn accepted(&mut self) {
        self.accepted_since += 1;
    }

    /// Count afresh at the next check (a connection closed).
    fn stale(&mut self) {
        self.at = None;
    }
}

/// What the accept loop knows of one connection: when it last moved a
/// byte, whether a handler is working on one of its requests, and the
/// token that closes it.
struct Activity {
    origin: Instant,
    /// Milliseconds after `origin` of the last byte read or written.
    last: AtomicU64,
    /// Requests of this connection inside a handler.
    busy: AtomicUsize,
    evict: CancellationToken,
}

impl Activity {
    fn new(origin: Instant) -> Activity {
        Activity {
            origin,
            last: AtomicU64::new(origin.elapsed().as_millis() as u64),
            busy: AtomicUsize::new(0),
            evict: CancellationToken::new(),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Idle this long or more, with nothing in a handler.
    fn idle_for(&self, at_least: Duration) -> bool {
        let now = self.origin.elapsed().as_millis() as u64;
        self.busy.load(Ordering::Acquire) == 0
            && now.saturating_sub(self.last.load(Ordering::Relaxed)) >= at_least.as_millis() as u64
    }
}

/// Marks a connection busy while a handler works on one of its requests.
#[derive(Clone)]
struct Busy<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> tower::Service<axum::http::Request<B>> for Busy<S>
where
    S: tower::Service<axum::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let activity = self.activity.clone();
        activity.busy.fetch_add(1, Ordering::AcqRel);
        let call = self.inner.call(request);
        Box::pin(async move {
            let answer = call.await;
            activity.touch();
            activity.busy.fetch_sub(1, Ordering::AcqRel);
            answer
        })
    }
}

/// Most connections closed per check at the cap: evicted clients that
/// come straight back (an attacker's sockets) are then let in a few at a
/// time, between the requests of the clients being served, rather than
/// hundreds at once.
const EVICT_AT_ONCE: usize = 32;

/// Close up to `at_most` of the connections idle for `idle` (see
/// [`Activity`]), the longest idle first; forget the ended ones. Returns
/// how many were closed.
fn evict_idle(registry: &Mutex<Vec<Weak<Activity>>>, idle: Duration, at_most: usize) -> usize {
    let mut all = registry.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    let mut idle: Vec<Arc<Activity>> = all
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|a| !a.evict.is_cancelled() && a.idle_for(idle))
        .collect();
    drop(all);
    idle.sort_by_key(|a| a.last.load(Ordering::Relaxed));
    for a in idle.iter().take(at_most) {
        a.evict.cancel();
    }
    idle.len().min(at_most)
}

/// Connections waiting in `listener`'s accept queue (Linux reports it in
/// `TCP_INFO` of a listening socket); `None` where it cannot be read.
fn waiting_to_be_accepted(listener: &TcpListener) -> Option<usize> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid socket, a buffer of `len` bytes that outlives the
    // call, and its length.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // For a listening socket, `tcpi_unacked` is the accept queue's length.
    (rc == 0).then_some(info.tcpi_unacked as usize)
}

/// Serve `router` on `listener` until `shutdown` is cancelled, within
/// `limits`; returns once every connection has ended or been dropped.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let closed = Arc::new(Notify::new());
    let mut gauge = FdGauge::new(limits.fd_reserve, limits.max_connections as u64);
    let mut conns = JoinSet::new();
    let mut refused_log = None::<Instant>;
    let origin = Instant::now();
    let registry: Mutex<Vec<Weak<Activity>>> = Mutex::new(Vec::new());
    'accept: loop {
        let permit = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'accept,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => break p,
                    Err(_) => break 'accept,
                },
                // Every connection taken: make room for the clients
                // waiting by closing idle ones.
                () = tokio::time::sleep(FdGauge::EVERY) => {
                    let waiting = waiting_to_be_accepted(&listener).unwrap_or(EVICT_AT_ONCE);
                    let closed = evict_idle(
                        &registry,
                        limits.evict_idle,
                        waiting.min(EVICT_AT_ONCE),
                    );
                    if closed > 0 {
                        tracing::debug!(closed, "API: idle connections closed at the connection cap");
                    }
                }
            }
        };
        while gauge.full() {
            if refused_log.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(10)) {
                tracing::warn!(
                    limit = gauge.limit,
                    reserve = gauge.reserve,
                    open = gauge.counted,
                    "the API stops accepting: the open-files reserve for spawning workers is reached"
                );
                refused_log = Some(Instant::now());
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'accept,
                () = closed.notified() => gauge.stale(),
                () = tokio::time::sleep(FdGauge::EVERY) => {}
            }
        }
        let tcp = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // EMFILE and friends: the connection stays queued; try
                    // again shortly rather than spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(FdGauge::EVERY).await;
                    continue;
                }
            },
        };
        gauge.accepted();
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new(origin));
        {
            let mut all = registry.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the ended ones now and then, at the cap or not.
            if all.len() >= 2 * limits.max_connections.max(1) {
                all.retain(|w| w.strong_count() > 0);
            }
            all.push(Arc::downgrade(&activity));
        }
        let service = TowerToHyperService::new(Busy {
            inner: router.clone(),
            activity: activity.clone(),
        });
        let stop = shutdown.clone();
        let closed = closed.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let evict = activity.evict.clone();
            let io = SendDeadline::new(tcp, limits.send_timeout, activity);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "API connection ended with an error");
                    }
                }
                // Idle at the connection cap: closed (dropped) for another.
                () = evict.cancelled() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            closed.notify_one();
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let open = conns.len();
    if open > 0 {
        tracing::info!(
            open,
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "API: letting open responses finish"
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            dropped = conns.len(),
            "API: connections still open after the shutdown grace are dropped"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// A socket whose writes fail once one has been blocked for `limit`: a
/// client that stops reading a response (a download it never reads) loses
/// its connection instead of holding it, its export and its store reader.
struct SendDeadline {
    io: tokio::net::TcpStream,
    limit: Duration,
    blocked: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Told of every byte moved.
    activity: Arc<Activity>,
}

impl SendDeadline {
    fn new(io: tokio::net::TcpStream, limit: Duration, activity: Arc<Activity>) -> SendDeadline {
        SendDeadline {
            io,
            limit,
            blocked: None,
            activity,
        }
    }

    /// What a write that returned `poll` means under the deadline.
    fn within<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        poll: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future as _;
        use std::task::Poll;
        match poll {
            Poll::Ready(r) => {
                self.blocked = None;
                self.activity.touch();
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .blocked
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the client read nothing for {} ms", limit.as_millis()),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl tokio::io::AsyncRead for SendDeadline {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl tokio::io::AsyncWrite for SendDeadline {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.within(cx, poll)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.within(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.within(cx, poll)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_accept_queue_is_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        assert_eq!(waiting_to_be_accepted(&listener), Some(0));
        let _clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        // Loopback handshakes complete in the kernel at connect.
        assert_eq!(waiting_to_be_accepted(&listener), Some(3));
        let _one = listener.accept().await.expect("accept");
        assert_eq!(waiting_to_be_accepted(&listener), Some(2));
    }

    #[test]
    fn eviction_closes_at_most_the_asked_the_longest_idle_first() {
        let origin = Instant::now() - Duration::from_secs(60);
        let conns: Vec<Arc<Activity>> = (0..5).map(|_| Arc::new(Activity::new(origin))).collect();
        // Last byte 50, 40, 30, 20 and 10 s ago; the last one busy.
        for (n, a) in conns.iter().enumerate() {
            a.last.store(10_000 * (n as u64 + 1), Ordering::Relaxed);
        }
        conns[4].busy.store(1, Ordering::Relaxed);
        let registry = Mutex::new(conns.iter().map(Arc::downgrade).collect::<Vec<_>>());
        assert_eq!(evict_idle(&registry, Duration::from_secs(15), 2), 2);
        let closed: Vec<bool> = conns.iter().map(|a| a.evict.is_cancelled()).collect();
        assert_eq!(closed, [true, true, false, false, false]);
        // The other two idle ones next; the busy one never.
        assert_eq!(evict_idle(&registry, Duration::from_secs(15), 10), 2);
        assert!(!conns[4].evict.is_cancelled());
        assert_eq!(evict_idle(&registry, Duration::from_secs(15), 10), 0);
    }

    #[test]
    fn the_gauge_keeps_the_reserve() {
        let mut g = FdGauge::new(10, 5);
        assert!(
            FdGauge::open_now() > 2,
            "stdio at least: /proc/self/fd is read"
        );
        g.count = || 100;
        let open = 100;
        // 100 open + 1 more + 10 in reserve: 111 fit.
        g.limit = open + 11;
        assert!(!g.full(), "one more fits beside the reserve");
        g.accepted();
        assert!(g.full(), "the next would reach into the reserve");
        g.stale();
        assert!(!g.full(), "counted afresh: the accepted one closed");
        g.limit = open + 10;
        assert!(g.full());
    }

    #[test]
    fn far_from_the_limit_the_gauge_counts_seldom() {
        static OPEN: AtomicU64 = AtomicU64::new(100);
        let mut g = FdGauge::new(10, 5);
        g.count = || OPEN.load(Ordering::Relaxed);
        g.limit = 10_000;
        assert!(!g.full());
        OPEN.store(9_995, Ordering::Relaxed);
        assert!(!g.full(), "far from the limit: not counted again yet");
        g.stale();
        assert!(g.full(), "counted afresh");
    }
}
