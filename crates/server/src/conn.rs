//! The accept loop shared by HTTP and HTTPS: a cap on concurrent connections, header, body
//! and idle timeouts, the peer address for the handlers, and graceful shutdown.
//!
//! Ward runs its own loop over hyper's HTTP/1.1 connection rather than `axum::serve`, which
//! has no timeouts, and rather than `axum-server`, so that both schemes get the same limits.
//! When `max_connections` are open the loop stops accepting: further clients wait in the
//! kernel's listen backlog (they are not refused) and are served as connections close.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Connection limits of a server. All are configurable in `ward serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest time a client may take to send a request's headers (and, over HTTPS, to
    /// complete the handshake). hyper starts this clock whenever the connection waits for a
    /// request, so it also bounds how long a kept-alive connection may sit idle between
    /// requests.
    pub header_read_timeout: Duration,
    /// Longest pause between two chunks of a request body; a body that stalls this long is
    /// answered with an error and the connection closed.
    pub body_read_timeout: Duration,
    /// A connection on which no byte moves in either direction for this long, while no
    /// request is being handled on it, is closed (a client that stops reading its response,
    /// one that connects and sends nothing).
    pub idle_timeout: Duration,
    /// Most connections open at once; past it, new clients wait in the listen backlog.
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Empty by default: the header is
    /// then ignored, since any client can send it to dodge the authentication throttle.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long shutdown waits for open requests to finish before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Turns an accepted TCP stream into the stream HTTP is spoken on (plain, or after a TLS
/// handshake).
pub(crate) trait Handshake: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(
        &self,
        tcp: Tracked<TcpStream>,
    ) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

/// Plain HTTP: the TCP stream as it is.
#[derive(Clone)]
pub(crate) struct Plain;

impl Handshake for Plain {
    type Stream = Tracked<TcpStream>;
    async fn handshake(&self, tcp: Tracked<TcpStream>) -> std::io::Result<Self::Stream> {
        Ok(tcp)
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves, then lets open
/// requests finish (up to ten seconds).
pub(crate) async fn serve<H: Handshake>(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout));
    let trusted: Arc<[IpAddr]> = limits.trusted_proxies.clone().into();
    let (header_timeout, idle_timeout) = (limits.header_read_timeout, limits.idle_timeout);
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let handshake = handshake.clone();
        let mut stop = stop_rx.clone();
        let trusted = trusted.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let activity = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let tcp = Tracked {
                inner: tcp,
                activity: activity.clone(),
                started,
            };
            let stream = match tokio::time::timeout(header_timeout, handshake.handshake(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("handshake timed out");
                    return;
                }
            };
            // Requests being handled: a slow handler (a large retention run) moves no bytes
            // for a while, and must not be mistaken for an idle connection.
            let busy = Arc::new(AtomicUsize::new(0));
            let in_flight = busy.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let client = client_addr(peer, req.headers(), &trusted);
                req.extensions_mut().insert(ConnectInfo(client));
                let app = app.clone();
                let guard = Busy::enter(&in_flight);
                async move {
                    let r = app.oneshot(req).await;
                    drop(guard);
                    r
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                let idle_at = if busy.load(Ordering::Relaxed) > 0 {
                    Instant::now() + idle_timeout
                } else {
                    last_activity(&activity, started) + idle_timeout
                };
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended");
                        }
                        return;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = tokio::time::sleep_until(idle_at.into()) => {
                        if busy.load(Ordering::Relaxed) == 0
                            && last_activity(&activity, started) + idle_timeout <= Instant::now()
                        {
                            tracing::debug!("idle connection closed");
                            return;
                        }
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all are done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    Ok(())
}

/// Counts a request in flight on its connection until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not itself a trusted proxy (the entries before it were
/// written by the client and prove nothing).
fn client_addr(peer: SocketAddr, headers: &hyper::HeaderMap, trusted: &[IpAddr]) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return SocketAddr::new(ip, 0),
            // A malformed hop ends what can be believed.
            Err(_) => return peer,
        }
    }
    peer
}

fn last_activity(activity: &AtomicU64, started: Instant) -> Instant {
    started + Duration::from_millis(activity.load(Ordering::Relaxed))
}

/// A stream that notes when a byte last moved, for the idle timeout.
pub(crate) struct Tracked<S> {
    inner: S,
    /// Milliseconds after `started` of the last read or write that moved bytes.
    activity: Arc<AtomicU64>,
    started: Instant,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
