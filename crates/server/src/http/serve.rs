//! The connection loop: HTTP/1.1 over hyper with bounded connections.
//!
//! `axum::serve` sets no header-read timeout and takes every connection the kernel hands it, so
//! idle or slow connections pile up until the process runs out of file descriptors and even
//! `/readiness` stops answering. This loop bounds them:
//! - at most `max_connections` are served at once (clamped below the process's file limit); a
//!   connection beyond that is answered `503` with `Retry-After` and closed at once;
//! - a connection must deliver a request's headers within [`HEADER_READ_TIMEOUT`], and an idle
//!   keep-alive connection is closed after the same time (hyper restarts the header timer when it
//!   waits for the next request);
//! - after [`MAX_REQUESTS_PER_CONNECTION`] requests a connection is closed (`Connection: close`),
//!   so one client cannot hold a connection forever;
//! - on shutdown, in-flight requests finish (for at most [`SHUTDOWN_GRACE`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A client must send a request's headers (and, between requests, start the next) within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 1000;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// File descriptors kept free for the database, the log and the listener itself.
const RESERVED_FILES: u64 = 256;

/// The connection cap actually used: the configured one, but never more than the process may
/// open files for. Raises the soft file limit to the hard one first.
pub fn effective_max_connections(configured: usize) -> usize {
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = if files > 2 * RESERVED_FILES {
        files - RESERVED_FILES
    } else {
        files / 2
    };
    let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
    if configured > room {
        tracing::warn!(
            configured,
            file_limit = files,
            using = room,
            "max_connections is above what the file limit allows; serving fewer at once"
        );
    }
    configured.min(room)
}

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
connection: close\r\n\
content-length: 93\r\n\r\n\
{\"error\":{\"message\":\"The server has too many connections open.\",\"code\":\"SERVICE_UNAVAILABLE\"}}";

/// Answers a connection beyond the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(REFUSAL).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(client = %peer.ip(), "too many connections; refused one");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = Arc::new(AtomicU64::new(0));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let count = served.fetch_add(1, Ordering::Relaxed) + 1;
            let call = router.clone().oneshot(req.map(Body::new));
            async move {
                let mut response = match call.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // A refused body may be left unread on the connection: the client must not reuse it.
                let unread = matches!(
                    response.status(),
                    StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
                );
                if unread || count >= MAX_REQUESTS_PER_CONNECTION {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("some requests were still running when the server stopped");
        }
    }
}
