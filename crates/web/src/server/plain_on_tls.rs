//! Plain HTTP sent to the TLS port. A TLS connection starts with a
//! handshake record (content type 22); an HTTP request starts with a
//! method in capital letters. Rather than failing the handshake (which
//! curl reads as an HTTP/0.9 reply), the client gets a cleartext `400`
//! saying what happened, as nginx answers.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::pages;

/// How long the client is given to read the answer before the close.
const LINGER: Duration = Duration::from_secs(1);

/// Whether the first byte the client sent, waiting for it until
/// `deadline`, begins an HTTP method rather than a TLS record. `false`
/// when nothing came: the handshake's own timeout and errors deal with
/// that.
pub async fn sent_plain_http(stream: &TcpStream, deadline: Instant) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout_at(deadline, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0].is_ascii_uppercase()
    )
}

/// Answers `400` in cleartext and closes once the client has read it.
pub async fn answer(mut stream: TcpStream) {
    let html = pages::error_html(
        StatusCode::BAD_REQUEST,
        "The plain HTTP request was sent to HTTPS port: use https:// for this address.",
    );
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the
        // connection before the client has read the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
