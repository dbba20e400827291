//! The HTTP/1.1 front end: accepts connections, hands each request to the
//! engine, and shuts down gracefully on SIGINT or SIGTERM.

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
use rvm_engine::App;
use tokio::net::TcpListener;

/// Largest request head (request line and headers) accepted; larger ones get 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Time a client has to send a request head once it started one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(listen: SocketAddr, app: Arc<App>) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("listener address")?;
    tracing::info!(app = app.name(), "serving on http://{local}");

    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // E.g. out of file descriptors: wait and go on, as servers do.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            signal = &mut shutdown => {
                tracing::info!("{signal}: finishing in-flight requests");
                break;
            }
        };
        // Small responses should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(with_authority(request, local)).await) }
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
    drop(listener);
    graceful.shutdown().await;
    tracing::info!("stopped");
    Ok(())
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
async fn shutdown_signal() -> &'static str {
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
