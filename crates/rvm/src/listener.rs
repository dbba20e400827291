//! The HTTP/1.1 front end: accepts connections on each listener, hands each
//! request to that listener's [`Handler`], and on SIGINT or SIGTERM stops
//! accepting and lets the requests in flight finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rvm_service::Handler;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Largest request head (request line and headers) accepted; larger ones get 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Time a client has to send a request head once it started one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound socket and what it serves.
pub struct Listener {
    socket: TcpListener,
    local: SocketAddr,
    handler: Handler,
    /// What the log line announcing it says it is.
    role: &'static str,
}

impl Listener {
    pub async fn bind(addr: SocketAddr, handler: Handler, role: &'static str) -> Result<Listener> {
        let socket = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        Listener::new(socket, handler, role)
    }

    /// A socket bound by another process; within the async runtime.
    pub fn from_std(
        socket: std::net::TcpListener,
        handler: Handler,
        role: &'static str,
    ) -> Result<Listener> {
        let socket = TcpListener::from_std(socket).context("cannot watch the listener")?;
        Listener::new(socket, handler, role)
    }

    fn new(socket: TcpListener, handler: Handler, role: &'static str) -> Result<Listener> {
        let local = socket.local_addr().context("listener address")?;
        Ok(Listener {
            socket,
            local,
            handler,
            role,
        })
    }
}

/// Serves every listener until SIGINT or SIGTERM, then waits for the
/// requests in flight.
pub async fn serve(listeners: Vec<Listener>) -> Result<()> {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut accepting = JoinSet::new();
    for listener in listeners {
        tracing::info!("{} on http://{}", listener.role, listener.local);
        accepting.spawn(accept(listener, Arc::clone(&graceful)));
    }
    let signal = shutdown_signal().await;
    tracing::info!("{signal}: finishing in-flight requests");
    // The accepting tasks hold the other references; they end here.
    accepting.shutdown().await;
    if let Some(graceful) = Arc::into_inner(graceful) {
        graceful.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn accept(listener: Listener, graceful: Arc<GracefulShutdown>) {
    let Listener {
        socket,
        local,
        handler,
        ..
    } = listener;
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                // E.g. out of file descriptors: wait and go on, as servers do.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small responses should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(with_authority(request, local)).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, "connection ended: {error}");
            }
        });
    }
}

/// HTTP/1.0 clients may send no `Host`; the guest then sees the address it
/// was reached at, as `wasi:http` requires an authority.
fn with_authority<B>(mut request: hyper::Request<B>, local: SocketAddr) -> hyper::Request<B> {
    if !request.headers().contains_key(http::header::HOST) && request.uri().authority().is_none() {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = local.to_string().parse().ok();
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Resolves with the name of the first SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot watch for signals: stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}
