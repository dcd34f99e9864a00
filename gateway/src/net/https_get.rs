//! One HTTPS GET with a strict response reader: no redirects, a size cap,
//! an optional media-type check, one deadline for connect, handshake,
//! request and response. Shared by MTA-STS policy fetches
//! (`deliver/mta_sts.rs`) and WKD key lookups (`keys/wkd.rs`), which both
//! connect to an address our own resolver found.

use crate::net::tls::provider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest HTTP response head accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Chunk-size lines and extensions on top of the body, for chunked responses.
const MAX_CHUNK_OVERHEAD: usize = 16 * 1024;

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
    /// Anything else: connection, TLS, framing, size, media type.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for GetError {
    fn from(s: String) -> Self {
        GetError::Failed(s)
    }
}

impl From<&str> for GetError {
    fn from(s: &str) -> Self {
        GetError::Failed(s.to_string())
    }
}

/// The TLS client configuration for fetches: WebPKI against `roots`,
/// TLS 1.2+ with the gateway's strong suites, HTTP/1.1 by ALPN.
pub fn client_config(roots: Arc<RootCertStore>) -> Result<Arc<ClientConfig>, String> {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// GETs `path` from `host` at `addr` over HTTPS, the certificate verified
/// for `host` by `config`; returns the body of a 200 response that `want`
/// accepts.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    config: Arc<ClientConfig>,
    want: &Want,
) -> Result<Vec<u8>, GetError> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let accept = if want.media_types.is_empty() {
        "*/*".to_string()
    } else {
        want.media_types.join(", ")
    };
    let work = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {addr}: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sealgate\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending request: {e}"))?;
        tls.flush()
            .await
            .map_err(|e| format!("sending request: {e}"))?;
        read_response(&mut tls, want).await
    };
    match tokio::time::timeout(want.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(GetError::Failed(format!(
            "no complete answer from {addr} within {} s",
            want.timeout.as_secs()
        ))),
    }
}

/// How the response body is delimited.
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

/// Reads an HTTP/1.1 response and returns the body, or why it is not
/// acceptable. Pure protocol handling, so it is tested on byte slices.
pub(crate) async fn read_response<R: AsyncRead + Unpin>(
    r: &mut R,
    want: &Want,
) -> Result<Vec<u8>, GetError> {
    let max = want.max_body;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let (head_len, body_start) = loop {
        if let Some(found) = head_end(&buf) {
            if found.0 > MAX_HEAD_BYTES {
                return Err("response header too large".into());
            }
            break found;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err("response header too large".into());
        }
        if read_more(r, &mut buf).await? == 0 {
            return Err("connection closed before the end of the response header".into());
        }
    };
    let head = std::str::from_utf8(&buf[..head_len])
        .map_err(|_| "response header is not text".to_string())?;
    let framing = check_head(head, want)?;
    let mut body = buf.split_off(body_start);
    let body = match framing {
        Framing::Length(n) => {
            if n > max {
                return Err(format!("body of {n} bytes exceeds {max}").into());
            }
            while body.len() < n {
                if read_more(r, &mut body).await? == 0 {
                    return Err("connection closed before the end of the body".into());
                }
            }
            body.truncate(n);
            body
        }
        Framing::Chunked => loop {
            match decode_chunked(&body, max)? {
                Some(decoded) => break decoded,
                None => {
                    if body.len() > max + MAX_CHUNK_OVERHEAD {
                        return Err(format!("body exceeds {max} bytes").into());
                    }
                    if read_more(r, &mut body).await? == 0 {
                        return Err("connection closed inside the chunked body".into());
                    }
                }
            }
        },
        Framing::UntilClose => {
            // A clean TLS close (close_notify) ends the body; a bare TCP
            // close is an error from tokio-rustls, so a truncated policy is
            // never taken for a whole one.
            while read_more(r, &mut body).await? > 0 {
                if body.len() > max {
                    return Err(format!("body exceeds {max} bytes").into());
                }
            }
            body
        }
    };
    Ok(body)
}

async fn read_more<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    let n = r
        .read(&mut chunk)
        .await
        .map_err(|e| format!("reading the response: {e}"))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Where the header ends: (length of the header lines, start of the body).
/// Accepts CRLF CRLF and, leniently, LF LF.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1..) {
                Some([b'\r', b'\n', ..]) => return Some((i, i + 3)),
                Some([b'\n', ..]) => return Some((i, i + 2)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Checks status and headers; returns how the body is framed.
fn check_head(head: &str, want: &Want) -> Result<Framing, GetError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:.60}").into());
    }
    let mut content_type: Option<&str> = None;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut location: Option<&str> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line: {line:.60}").into());
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value),
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:.20}"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return Err(format!("unsupported Transfer-Encoding {value:.30}").into());
                }
            }
            "location" => location = Some(value),
            _ => {}
        }
    }
    if code != "200" {
        // Redirects are not followed (RFC 8461 §3.3; WKD is fetched the same way).
        return Err(GetError::Status {
            code: code.chars().take(3).collect(),
            location: location
                .filter(|_| code.starts_with('3'))
                .map(|l| l.chars().take(80).collect()),
        });
    }
    let media = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .unwrap_or("");
    if !want.media_types.is_empty()
        && !want
            .media_types
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m))
    {
        return Err(GetError::Failed(format!(
            "Content-Type {:.40} is not {}",
            content_type.unwrap_or("(none)"),
            want.media_types.join(" or ")
        )));
    }
    Ok(match (chunked, length) {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    })
}

/// Decodes a chunked body: `Ok(None)` while incomplete, the data once the
/// last (zero-size) chunk has been seen. Trailers are not needed and not read.
pub(crate) fn decode_chunked(raw: &[u8], max: usize) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = raw[pos..].iter().position(|&b| b == b'\n') else {
            if raw.len() - pos > 1024 {
                return Err("chunk-size line too long".into());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&raw[pos..pos + nl])
            .map_err(|_| "bad chunk-size line".to_string())?;
        let size_hex = line
            .trim_end_matches('\r')
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if size_hex.is_empty() || size_hex.len() > 8 {
            return Err(format!("bad chunk size {size_hex:.10}"));
        }
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:.10}"))?;
        pos += nl + 1;
        if size == 0 {
            return Ok(Some(out));
        }
        if out.len() + size > max {
            return Err(format!("body exceeds {max} bytes"));
        }
        // The chunk data and its CRLF (or LF).
        let Some(data) = raw.get(pos..pos + size) else {
            return Ok(None);
        };
        out.extend_from_slice(data);
        pos += size;
        match raw.get(pos..) {
            Some([b'\r', b'\n', ..]) => pos += 2,
            Some([b'\n', ..]) => pos += 1,
            Some([]) | Some([b'\r']) | None => return Ok(None),
            Some(_) => return Err("chunk not followed by CRLF".into()),
        }
    }
}
