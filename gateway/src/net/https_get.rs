//! One HTTPS GET with a strict response reader, made with ureq: no
//! redirects, a size cap, an optional media-type check, one deadline for
//! connect, handshake, request and response. Shared by MTA-STS policy
//! fetches (`deliver/mta_sts.rs`) and WKD key lookups (`keys/wkd.rs`),
//! which both connect to an address our own resolver found.
//!
//! ureq's resolver is replaced by [`FixedAddress`] and its TLS by ours (the
//! gateway's provider and roots, TLS 1.2 and 1.3), so neither the system's
//! DNS nor its proxy settings decide the peer, and a connection closed
//! without a TLS close never ends a body (a truncated policy is never taken
//! for a whole one).

use crate::net::fixed_address::FixedAddress;
use crate::net::tls::provider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    time, Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};

/// Largest HTTP response head accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a fetch accepts.
#[derive(Debug, Clone)]
pub struct Want {
    /// Acceptable media types (`text/plain`); empty accepts any.
    pub media_types: &'static [&'static str],
    /// Largest body accepted.
    pub max_body: usize,
    /// Connect, handshake, request and response together.
    pub timeout: Duration,
}

/// Why a fetch gave no body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// The server answered with a status other than 200.
    #[error("HTTP status {code}{}", location.as_ref().map(|l| format!(" (redirect to {l} not followed)")).unwrap_or_default())]
    Status {
        /// The status code as sent.
        code: String,
        /// Where a redirect pointed (not followed).
        location: Option<String>,
    },
    /// rustls refused the client configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The host cannot be named in a URL or checked in a certificate.
    #[error("not a host name: {0:.80}")]
    Host(String),
    /// No TCP connection.
    #[error("connect {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// Why it failed.
        reason: String,
    },
    /// The TLS handshake failed (certificate, name, protocol).
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// The address tried.
        addr: SocketAddr,
        /// Why it failed.
        reason: String,
    },
    /// The deadline passed before the whole body arrived.
    #[error("no complete answer from {addr} within {} s", timeout.as_secs())]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// The deadline.
        timeout: Duration,
    },
    /// The response head is over [`MAX_HEAD_BYTES`].
    #[error("response header too large")]
    HeadTooLarge,
    /// The server closed the connection early; names the part cut short.
    #[error("connection closed before the end of the {0}")]
    Closed(&'static str),
    /// Not an HTTP/1.x response, or broken framing.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// A transfer coding other than chunked.
    #[error("unsupported Transfer-Encoding {0:.30}")]
    TransferEncoding(String),
    /// `Content-Length` announces more than the cap.
    #[error("body of {length} bytes exceeds {max}")]
    Announced {
        /// The announced length.
        length: u64,
        /// The cap.
        max: usize,
    },
    /// The body grew past the cap.
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    /// The media type is not one the caller accepts.
    #[error("Content-Type {found:.40} is not {wanted}")]
    MediaType {
        /// The `Content-Type` as sent, or `(none)`.
        found: String,
        /// The accepted types.
        wanted: String,
    },
    /// Reading or writing the connection failed.
    #[error("reading the response: {0}")]
    Io(String),
    /// The blocking fetch did not finish (it panicked or the runtime stopped).
    #[error("the fetch did not finish: {0}")]
    Task(String),
}

/// The TLS client configuration for fetches: WebPKI against `roots`,
/// TLS 1.2+ with the gateway's strong suites, HTTP/1.1 by ALPN.
pub fn client_config(roots: Arc<RootCertStore>) -> Result<Arc<ClientConfig>, GetError> {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GetError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// GETs `path` from `host` at `addr` over HTTPS, the certificate verified
/// for `host` by `config`; returns the body of a 200 response that `want`
/// accepts. ureq blocks, so the fetch runs on tokio's blocking pool.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    config: Arc<ClientConfig>,
    want: &Want,
) -> Result<Vec<u8>, GetError> {
    // The deadline starts now, not when a blocking thread is free.
    let deadline = Instant::now() + want.timeout;
    let (host, path, want) = (host.to_string(), path.to_string(), want.clone());
    tokio::task::spawn_blocking(move || get_blocking(addr, &host, &path, config, &want, deadline))
        .await
        .map_err(|e| GetError::Task(e.to_string()))?
}

fn get_blocking(
    addr: SocketAddr,
    host: &str,
    path: &str,
    config: Arc<ClientConfig>,
    want: &Want,
    deadline: Instant,
) -> Result<Vec<u8>, GetError> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| GetError::Host(host.into()))?;
    let accept = if want.media_types.is_empty() {
        "*/*".to_string()
    } else {
        want.media_types.join(", ")
    };
    let agent_config = ureq::Agent::config_builder()
        .https_only(true)
        // Redirects are not followed (RFC 8461 §3.3; WKD is fetched the same
        // way): a 3xx comes back as a response and is refused below.
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(0)
        .max_response_header_size(MAX_HEAD_BYTES)
        .timeout_global(Some(deadline.saturating_duration_since(Instant::now())))
        .user_agent("sealgate")
        .accept(accept)
        .build();
    let connector = Pinned {
        addr,
        name,
        tls: config,
        deadline,
    };
    let agent = ureq::Agent::with_parts(agent_config, connector, FixedAddress(addr));
    let fail = |e, part| classify(e, addr, want, part);
    let mut response = agent
        .get(format!("https://{host}{path}"))
        .call()
        .map_err(|e| fail(e, "response header"))?;
    check_head(&response, want)?;
    if let Some(length) = response.body().content_length() {
        if length > want.max_body as u64 {
            return Err(GetError::Announced {
                length,
                max: want.max_body,
            });
        }
    }
    response
        .body_mut()
        .with_config()
        .limit(want.max_body as u64)
        .read_to_vec()
        .map_err(|e| fail(e, "body"))
}

/// Checks status and headers of a response whose framing ureq accepted.
fn check_head(response: &ureq::http::Response<ureq::Body>, want: &Want) -> Result<(), GetError> {
    let headers = response.headers();
    let text = |v: &ureq::http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    // ureq reads any other coding as if there were none.
    for te in headers.get_all(ureq::http::header::TRANSFER_ENCODING) {
        if !te.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err(GetError::TransferEncoding(text(te)));
        }
    }
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        return Err(GetError::Status {
            code: status.as_str().to_string(),
            location: headers
                .get(ureq::http::header::LOCATION)
                .filter(|_| status.is_redirection())
                .map(|l| text(l).chars().take(80).collect()),
        });
    }
    let content_type = headers.get(ureq::http::header::CONTENT_TYPE).map(text);
    let media = content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .unwrap_or("");
    if !want.media_types.is_empty()
        && !want
            .media_types
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m))
    {
        return Err(GetError::MediaType {
            found: content_type.unwrap_or_else(|| "(none)".into()),
            wanted: want.media_types.join(" or "),
        });
    }
    Ok(())
}

/// Our error for ureq's, `part` naming what was being read.
fn classify(e: ureq::Error, addr: SocketAddr, want: &Want, part: &'static str) -> GetError {
    match e {
        ureq::Error::Timeout(_) => GetError::Timeout {
            addr,
            timeout: want.timeout,
        },
        ureq::Error::Other(inner) => match inner.downcast::<GetError>() {
            Ok(ours) => *ours,
            Err(other) => GetError::Io(other.to_string()),
        },
        ureq::Error::LargeResponseHeader(..) => GetError::HeadTooLarge,
        ureq::Error::BodyExceedsLimit(_) => GetError::TooLarge(want.max_body),
        ureq::Error::Protocol(p) => GetError::Malformed(p.to_string()),
        ureq::Error::Io(io) if io.kind() == ErrorKind::UnexpectedEof => GetError::Closed(part),
        ureq::Error::Io(io) => GetError::Io(io.to_string()),
        ureq::Error::BadUri(u) => GetError::Host(u),
        other => GetError::Io(other.to_string()),
    }
}

/// Our error carried through ureq, which hands it back in `Error::Other`.
fn carry(e: GetError) -> ureq::Error {
    ureq::Error::Other(Box::new(e))
}

/// The connector: TCP to the one address, then TLS with our configuration.
#[derive(Debug)]
struct Pinned {
    addr: SocketAddr,
    name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    deadline: Instant,
}

impl Connector<()> for Pinned {
    type Out = TlsTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<TlsTransport>, ureq::Error> {
        let addr = self.addr;
        let tcp = Connector::<()>::connect(&TcpConnector::default(), details, None)
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => e,
                ureq::Error::Io(io) => carry(GetError::Connect {
                    addr,
                    reason: io.to_string(),
                }),
                e => carry(GetError::Connect {
                    addr,
                    reason: e.to_string(),
                }),
            })?
            .ok_or_else(|| {
                carry(GetError::Connect {
                    addr,
                    reason: "no connection".into(),
                })
            })?;
        let handshake = |reason: String| carry(GetError::Tls { addr, reason });
        let mut conn = ClientConnection::new(self.tls.clone(), self.name.clone())
            .map_err(|e| handshake(e.to_string()))?;
        let mut sock = TransportAdapter::new(
            Box::new(tcp) as Box<dyn Transport>,
            details.current_time.clone(),
        );
        // The handshake gets what is left of the one deadline.
        sock.set_timeout(NextTimeout {
            after: time::Duration::Exact(self.deadline.saturating_duration_since(Instant::now())),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        });
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(match ureq::Error::from(e) {
                e @ ureq::Error::Timeout(_) => e,
                ureq::Error::Io(io) => handshake(io.to_string()),
                e => handshake(e.to_string()),
            });
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(TlsTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
        }))
    }
}

/// A TLS connection as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self
            .stream
            .read(input)
            .map_err(|e| match ureq::Error::from(e) {
                // rustls reports a close without close_notify as an unexpected
                // end, which ureq would take for the end of a body sent without
                // a length: make it an error that ends the fetch.
                ureq::Error::Io(io) if io.kind() == ErrorKind::UnexpectedEof => {
                    carry(GetError::Io(io.to_string()))
                }
                e => e,
            })?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Never pooled (max_idle_connections is 0): one connection per fetch.
        false
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::test_pki::{read_request_head, tls_listener, Ca};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const ANY: Want = Want {
        media_types: &[],
        max_body: 1024,
        timeout: Duration::from_secs(10),
    };

    /// An HTTPS server on loopback for `name` that answers one request
    /// with `raw`, then ends with a TLS close (`close_notify`) or drops the
    /// TCP connection without one.
    async fn server(ca: &Ca, name: &str, raw: Vec<u8>, close_notify: bool) -> SocketAddr {
        let (chain, key) = ca.leaf(&[name], false).with(ca);
        let (listener, acceptor, addr) = tls_listener(chain, key).await;
        tokio::spawn(async move {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            if read_request_head(&mut tls).await.is_none() {
                return;
            }
            let _ = tls.write_all(&raw).await;
            let _ = tls.flush().await;
            if close_notify {
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    fn config(ca: &Ca) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert()).unwrap();
        client_config(Arc::new(roots)).unwrap()
    }

    /// The body (or error) `raw` gives, sent with a TLS close.
    async fn fetch(raw: &[u8]) -> Result<Vec<u8>, GetError> {
        let ca = Ca::new("Test CA");
        let addr = server(&ca, "www.example.test", raw.to_vec(), true).await;
        get(addr, "www.example.test", "/x", config(&ca), &ANY).await
    }

    #[tokio::test]
    async fn connects_to_the_given_address_whatever_the_name() {
        // www.example.test resolves nowhere; the fetch still reaches the
        // server, and checks its certificate for that name.
        let body = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .await
            .unwrap();
        assert_eq!(body, b"hi");
    }

    #[tokio::test]
    async fn a_body_cut_by_a_bare_tcp_close_is_refused() {
        let ca = Ca::new("Test CA");
        let raw = b"HTTP/1.1 200 OK\r\n\r\npart of a bod".to_vec();
        let addr = server(&ca, "www.example.test", raw.clone(), false).await;
        let e = get(addr, "www.example.test", "/x", config(&ca), &ANY)
            .await
            .unwrap_err();
        assert!(matches!(e, GetError::Io(_)), "{e}");
        // The same bytes ended by a TLS close are a whole body.
        assert_eq!(fetch(&raw).await.unwrap(), b"part of a bod");
    }

    #[tokio::test]
    async fn a_redirect_is_refused_with_its_location() {
        let e = fetch(b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.test/k\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            GetError::Status {
                code: "302".into(),
                location: Some("https://elsewhere.test/k".into())
            }
        );
        assert_eq!(
            e.to_string(),
            "HTTP status 302 (redirect to https://elsewhere.test/k not followed)"
        );
    }

    #[tokio::test]
    async fn one_deadline_covers_the_whole_exchange() {
        // A server that accepts and never says a word.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let ca = Ca::new("Test CA");
        let want = Want {
            timeout: Duration::from_millis(500),
            ..ANY
        };
        let started = Instant::now();
        let e = get(addr, "www.example.test", "/x", config(&ca), &want)
            .await
            .unwrap_err();
        assert!(matches!(e, GetError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let ca = Ca::new("Test CA");
        let e = get(addr, "www.example.test", "/x", config(&ca), &ANY)
            .await
            .unwrap_err();
        assert!(matches!(e, GetError::Connect { .. }), "{e}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }

    #[tokio::test]
    async fn chunked_bodies_end_at_the_last_chunk_only() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let with = |body: &str| format!("{head}{body}").into_bytes();
        assert_eq!(fetch(&with("3\r\nabc\r\n0\r\n")).await.unwrap(), b"abc");
        assert_eq!(
            fetch(&with("3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))
                .await
                .unwrap(),
            b"abcde"
        );
        // Closed (with a TLS close) before the zero-size chunk: incomplete.
        for cut in ["3\r\nabc\r\n", "3\r\nab", "3\r\nabc"] {
            assert!(fetch(&with(cut)).await.is_err(), "{cut:?}");
        }
        for bad in ["x\r\n", "3\r\nabcX", "123456789\r\n"] {
            assert!(fetch(&with(bad)).await.is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn any_media_type_when_none_is_asked_for() {
        let body = fetch(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\n\r\nk")
            .await
            .unwrap();
        assert_eq!(body, b"k");
    }
}
