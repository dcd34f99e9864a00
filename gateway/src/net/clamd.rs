//! A client for clamd's INSTREAM command (TCP): the message goes in
//! length-prefixed chunks, and clamd answers `stream: OK` or
//! `stream: NAME FOUND`. clamd unpacks MIME parts and archives itself.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What went wrong asking clamd.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    /// No connection or a broken one.
    #[error("clamd at {address}: {source}")]
    Io {
        /// The socket asked.
        address: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// An answer that is neither OK nor FOUND (e.g. size limit exceeded).
    #[error("clamd at {address} could not scan the message: {reply}")]
    Refused {
        /// The socket asked.
        address: SocketAddr,
        /// clamd's words.
        reply: String,
    },
}

/// clamd's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdReply {
    /// Nothing found.
    Clean,
    /// Malware found: the signature's name.
    Found(String),
}

/// Chunk size sent to clamd (well under its StreamMaxLength).
const CHUNK: usize = 64 * 1024;

/// Scans `message` with the clamd at `address`.
pub async fn scan(address: SocketAddr, message: &[u8]) -> Result<ClamdReply, ClamdError> {
    let io = |source| ClamdError::Io { address, source };
    let mut s = TcpStream::connect(address).await.map_err(io)?;
    s.write_all(b"zINSTREAM\0").await.map_err(io)?;
    for chunk in message.chunks(CHUNK) {
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX).to_be_bytes();
        s.write_all(&len).await.map_err(io)?;
        s.write_all(chunk).await.map_err(io)?;
    }
    s.write_all(&[0, 0, 0, 0]).await.map_err(io)?;
    let mut reply = Vec::new();
    // One short NUL-ended line; bounded so a confused peer cannot feed us forever.
    (&mut s)
        .take(4096)
        .read_to_end(&mut reply)
        .await
        .map_err(io)?;
    let text = String::from_utf8_lossy(&reply);
    let text = text.trim_end_matches(['\0', '\n']).trim();
    let verdict = text.strip_prefix("stream:").map(str::trim);
    match verdict {
        Some("OK") => Ok(ClamdReply::Clean),
        Some(v) if v.ends_with(" FOUND") => {
            let name: String = v
                .trim_end_matches(" FOUND")
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(128)
                .collect();
            Ok(ClamdReply::Found(name))
        }
        _ => Err(ClamdError::Refused {
            address,
            reply: text.chars().take(200).collect(),
        }),
    }
}
