//! The HTTP server loop: accepts connections with a cap, serves HTTP/1.1 with hyper, and shuts
//! down gracefully.
//!
//! Why not `axum::serve`: it sets no header-read timeout and no connection cap, so trickling
//! ("slowloris") connections were held for minutes and about 20,000 of them stopped new clients
//! connecting. Here:
//! - a request's head must arrive within [`HEADER_READ_TIMEOUT`] of the connection opening or
//!   of the previous response (an idle keep-alive connection counts as "waiting for a head"),
//!   else the connection is closed; request bodies and SSE streams are not affected;
//! - at most `max_connections` connections are open at once: past that, new ones wait in the
//!   kernel's accept backlog until a slot frees (the header timeout frees slots held by slow
//!   clients), and the open ones keep being served;
//! - the peer address is put in each request's extensions as axum's `ConnectInfo`;
//! - on shutdown the listener closes, in-flight requests get a grace period, then connections
//!   still open (SSE streams) are dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The default connection cap: file descriptors the process may open, less a reserve for the
/// database, files and logs, at most 25,000.
pub fn default_max_connections() -> usize {
    raise_nofile_limit().saturating_sub(256).clamp(64, 25_000)
}

/// Raises the soft limit of open files to the hard limit; returns the soft limit in effect.
fn raise_nofile_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// Serves `router` on `listener` until `stop` resolves, then waits up to `grace` for open
/// connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    grace: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (tcp, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // TCP_NODELAY on every connection (Go's default, so PocketBase's too): without it,
        // Nagle's algorithm holds a realtime event back until the client acknowledges the
        // previous one.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let svc = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, peer = %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::info!("connections still open after the grace period; closing them");
        }
    }
    Ok(())
}

/// The peer address recorded by [`serve`] (also by `axum::serve` with connect info).
pub fn peer(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
