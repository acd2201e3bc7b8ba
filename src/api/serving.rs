//! Binding and serving the router: the bind check, [`serve`] on the
//! caller's runtime and [`serve_dedicated`] on a runtime of its own (the
//! accept loop and its limits are in [`super::server`]).

use super::*;

/// Refuse to expose the API beyond loopback without a token.
pub fn check_bind(bind: SocketAddr, has_token: bool) -> anyhow::Result<()> {
    if !bind.ip().is_loopback() && !has_token {
        anyhow::bail!(
            "refusing to serve the API on {bind}: it is not a loopback address and no control \
             token is configured. Set {TOKEN_ENV} to a secret, or bind 127.0.0.1"
        );
    }
    Ok(())
}

/// Bind `bind` (port 0 picks a free port) and serve until `shutdown` is
/// cancelled; open event streams end then too. Returns the bound address
/// and the server task, which finishes after the graceful shutdown.
pub async fn serve(
    bind: SocketAddr,
    state: ApiState,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(bind, state, ServerLimits::default(), shutdown).await
}

/// [`serve`] within `limits` (connections, timeouts, the descriptor
/// reserve, the shutdown grace: [`server`]).
pub async fn serve_with(
    bind: SocketAddr,
    state: ApiState,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    check_bind(bind, state.has_token())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} for the API"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the API's bound address")?;
    let hosts = state.allowed_hosts.as_ref().clone().bound_to(addr);
    let router = app(state
        .bound_to(bind)
        .with_shutdown(shutdown.clone())
        .with_allowed_hosts(hosts));
    let task = tokio::spawn(server::run(listener, router, limits, shutdown));
    tracing::info!(%addr, "API listening");
    Ok((addr, task))
}

/// How [`serve_dedicated`] runs the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedicatedOptions {
    /// Runtime worker threads for the API.
    pub threads: usize,
    /// Nice value added to the API threads (0..=19): under HTTP load the
    /// scheduler then favours the pool's supervisor threads and the
    /// workers, so restart latency does not suffer.
    pub nice: i32,
    /// Connections, timeouts and the descriptor reserve.
    pub limits: ServerLimits,
}

impl Default for DedicatedOptions {
    fn default() -> Self {
        DedicatedOptions {
            threads: 2,
            nice: 10,
            limits: ServerLimits::default(),
        }
    }
}

/// Lower the calling thread's scheduling priority.
pub(super) fn lower_thread_priority(nice: i32) {
    pool::priority::lower_thread_priority(nice);
}

/// Like [`serve`], but on a runtime of its own, on its own OS threads at a
/// lower priority, so a flood of API requests cannot delay the pool's
/// supervision (exits, restarts, heartbeats) running on the caller's
/// runtime. The returned task (on the caller's runtime) finishes once the
/// server has shut down and its runtime is gone.
pub async fn serve_dedicated(
    bind: SocketAddr,
    state: ApiState,
    shutdown: CancellationToken,
    options: DedicatedOptions,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    check_bind(bind, state.has_token())?;
    // One thread: the API thread itself runs the runtime.
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(2)
            .thread_name("worldpool-api")
            .on_thread_start(move || lower_thread_priority(options.nice))
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .max_blocking_threads(2)
            .thread_name("worldpool-api")
            .on_thread_start(move || lower_thread_priority(options.nice))
            .enable_all()
            .build()
    }
    .context("cannot build the API runtime")?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("worldpool-api-main".into())
        .spawn(move || {
            lower_thread_priority(options.nice);
            runtime.block_on(async move {
                match serve_with(bind, state, options.limits, shutdown).await {
                    Ok((addr, task)) => {
                        let _ = ready_tx.send(Ok(addr));
                        if let Err(e) = task.await {
                            tracing::error!(error = %e, "API server task failed");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Shut the runtime down here (a plain thread may): a blocking
            // query still running gets a moment, not a wait without end.
            runtime.shutdown_timeout(options.limits.shutdown_grace);
            let _ = done_tx.send(());
        })
        .context("cannot start the API thread")?;
    let addr = ready_rx
        .await
        .context("the API thread ended before binding")??;
    let task = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    Ok((addr, task))
}
