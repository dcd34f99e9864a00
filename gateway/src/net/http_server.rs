//! The one HTTP/1.1 server behind the portal and the admin API, with the
//! limits a listener facing untrusted clients needs. Without them, idle or
//! slow connections pile up until the file descriptors the SMTP listeners and
//! the stores share run out, and every message then gets a 451.
//!
//! - a global connection cap and one per client (IPv4 address, IPv6 /64);
//!   a connection over either is closed at once;
//! - a TLS handshake deadline, a header deadline (hyper's
//!   `header_read_timeout`, also for the next request on a kept-alive
//!   connection), an idle deadline (no byte read or written), and a deadline
//!   for a whole request, body included (408).

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client (IPv4 address or IPv6 /64) at most.
    pub max_connections_per_client: usize,
    /// Time for the TLS handshake and then for each request's header section.
    pub header_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Time for one whole request, body included, until the response starts.
    pub request_timeout: Duration,
}

impl From<&crate::config::HttpListenerConfig> for HttpLimits {
    fn from(c: &crate::config::HttpListenerConfig) -> Self {
        HttpLimits {
            max_connections: c.max_connections.max(1),
            max_connections_per_client: c.max_connections_per_client.max(1),
            header_timeout: c.header_timeout.0,
            idle_timeout: c.idle_timeout.0,
            request_timeout: c.request_timeout.0,
        }
    }
}

/// The client address of a connection, as handlers see it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The key a client's connections are counted under: an IPv4 address, or
/// the /64 an IPv6 address is in (one host usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    }
}

/// Counts open connections per client.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerClient`], given back on drop.
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
    _global: OwnedSemaphorePermit,
}

impl PerClient {
    fn take(
        table: &Arc<PerClient>,
        key: IpAddr,
        limit: usize,
        global: OwnedSemaphorePermit,
    ) -> Option<ClientSlot> {
        let mut t = crate::locks::lock(&table.0);
        let n = t.entry(key).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: table.clone(),
            key,
            _global: global,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut t = crate::locks::lock(&self.table.0);
        if let Some(n) = t.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.key);
            }
        }
    }
}

/// Serves `app` on `tcp` (over TLS when `tls` is given) within `limits`
/// until `stop` changes; `name` labels log lines.
pub async fn serve(
    name: &'static str,
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let request_timeout = limits.request_timeout;
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(request_timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
            }
        },
    ));
    let global = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and kin: wait rather than spin.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Ok(permit) = global.clone().try_acquire_owned() else {
            tracing::debug!(listener = name, "connection refused: listener full");
            continue;
        };
        let key = client_key(peer.ip());
        let Some(slot) =
            PerClient::take(&per_client, key, limits.max_connections_per_client, permit)
        else {
            tracing::debug!(
                listener = name,
                "connection refused: client has too many open"
            );
            continue;
        };
        let (app, acceptor, stop) = (app.clone(), acceptor.clone(), stop.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => connection(tls, peer, app, limits, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(listener = name, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(listener = name, "TLS handshake timed out"),
                    }
                }
                None => connection(stream, peer, app, limits, stop).await,
            }
        });
    }
}

/// Serves one connection until the client is done, a deadline passes, or
/// `stop` changes (then the request in progress finishes first).
async fn connection<S>(
    io: S,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(IdleIo::new(io, limits.idle_timeout)), svc);
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = r {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// A stream that fails with `TimedOut` once neither a read nor a write has
/// made progress for its idle limit.
struct IdleIo<S> {
    inner: S,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleIo<S> {
    fn new(inner: S, limit: Duration) -> Self {
        IdleIo {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn progressed(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.limit);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// (tests) A header map of `pairs`, as a client would send them.
#[cfg(test)]
pub fn test_headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, axum::http::HeaderValue::from_static(v));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn per_client_slots_are_capped_and_given_back() {
        let table = Arc::new(PerClient::default());
        let global = Arc::new(Semaphore::new(10));
        let key: IpAddr = "192.0.2.1".parse().unwrap();
        let take = || PerClient::take(&table, key, 2, global.clone().try_acquire_owned().unwrap());
        let (a, b) = (take().unwrap(), take().unwrap());
        assert!(take().is_none());
        drop(a);
        assert!(take().is_some());
        drop(b);
        assert_eq!(global.available_permits(), 10);
        assert!(table.0.lock().unwrap().is_empty());
    }
}
