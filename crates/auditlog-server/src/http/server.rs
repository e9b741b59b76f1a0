//! The accept loop: serves each connection with HTTP/1 under a header-read
//! time limit, and drains open connections on shutdown.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read limit never
//! fires there and a client that sends its headers a byte a minute (or
//! opens a connection and says nothing) holds it forever. With the
//! connection cap, a few hundred such clients would shut everyone else
//! out. Here each connection gets the limit, for the first request's
//! headers and for every later one on a kept-alive connection.

use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::http::connections::LimitedListener;

/// hyper's read buffer, which bounds the request head it will hold.
const HYPER_BUFFER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops
/// accepting, lets every open connection finish its request in flight and
/// returns once they have all closed.
pub async fn serve(
    mut listener: LimitedListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        // Room for headers a little over the router's JSON-refused limit;
        // past this hyper answers a bare 431 and reads no further.
        .max_buf_size(HYPER_BUFFER_BYTES);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.tcp().set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
