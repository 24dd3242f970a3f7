//! Pages for the requests hyper refuses before they reach `respond`.
//!
//! When a request head cannot be parsed (400), is too large (431) or has
//! a target longer than hyper accepts (414), hyper answers by itself with
//! an empty body, and a target longer than the whole head limit is
//! reported as 431. This stream wrapper gives those answers the page every
//! other error has, and the 414 a too-long request line deserves.
//!
//! The refusal is logged like any other response, with the request line
//! as far as it was read.
//!
//! Only the first response on a connection is looked at: before any
//! request has been served, the first bytes written can only be a response
//! head, so a body that happens to look like hyper's answer is never
//! mistaken for one. A malformed request later on a keep-alive connection
//! keeps hyper's empty answer, with the right status.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::access_log::{AccessEntry, AccessLog};
use crate::pages;
use crate::respond::MAX_URI_LEN;

/// How much of the request line is kept for the access log.
const LOGGED_LINE: usize = MAX_URI_LEN;

#[derive(Debug)]
pub struct HeadErrors<S> {
    inner: S,
    log: Option<(AccessLog, IpAddr)>,
    /// Length of the first line the client sent, so far, and its start.
    request_line: usize,
    request_line_ended: bool,
    request_line_start: Vec<u8>,
    /// Whether the first write has been seen.
    first_write_seen: bool,
    /// A replacement response still to be written, from `written` on.
    replacement: Vec<u8>,
    written: usize,
    /// What the caller was told it wrote when the replacement is done.
    replaced_len: usize,
}

impl<S> HeadErrors<S> {
    /// `log`: where refusals are logged, and the client's address.
    pub fn new(inner: S, log: Option<(AccessLog, IpAddr)>) -> Self {
        Self {
            inner,
            log,
            request_line: 0,
            request_line_ended: false,
            request_line_start: Vec::new(),
            first_write_seen: false,
            replacement: Vec::new(),
            written: 0,
            replaced_len: 0,
        }
    }

    fn observe_read(&mut self, bytes: &[u8]) {
        if self.request_line_ended {
            return;
        }
        let line = match bytes.iter().position(|&b| b == b'\n') {
            Some(at) => {
                self.request_line_ended = true;
                &bytes[..at]
            }
            None => bytes,
        };
        self.request_line += line.len();
        if self.log.is_some() && !self.first_write_seen {
            let room = LOGGED_LINE.saturating_sub(self.request_line_start.len());
            self.request_line_start
                .extend_from_slice(&line[..line.len().min(room)]);
        }
    }

    /// Looks at the first write; if it is hyper's own bodiless error
    /// answer, queues the page to send instead.
    fn inspect_first_write(&mut self, buf: &[u8]) {
        if self.first_write_seen || buf.is_empty() {
            return;
        }
        self.first_write_seen = true;
        let too_long_line = self.request_line > MAX_URI_LEN;
        let line = std::mem::take(&mut self.request_line_start);
        if let Some((status, page, body_len)) = replacement(buf, too_long_line) {
            self.replacement = page;
            self.written = 0;
            self.replaced_len = buf.len();
            if let Some((log, client)) = &self.log {
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                log.record(AccessEntry {
                    client: *client,
                    time: std::time::SystemTime::now(),
                    request_line: String::from_utf8_lossy(line).into_owned(),
                    status: status.as_u16(),
                    bytes: body_len as u64,
                    referer: None,
                    user_agent: None,
                });
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> HeadErrors<S> {
    /// Writes what is left of the replacement; Ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.replacement.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.replacement[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The response to send instead of `head` (its status, its bytes and the
/// length of its body), if `head` is hyper's answer to a request it could
/// not parse: a whole head, no body, `content-length: 0`.
fn replacement(head: &[u8], too_long_line: bool) -> Option<(StatusCode, Vec<u8>, usize)> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let status: StatusCode = rest.get(..3)?.parse().ok()?;
    let (detail, status) = match status {
        StatusCode::BAD_REQUEST => (
            "The request could not be parsed as HTTP.".to_owned(),
            status,
        ),
        StatusCode::URI_TOO_LONG => (too_long(), status),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE if too_long_line => {
            (too_long(), StatusCode::URI_TOO_LONG)
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "The request headers are too large or too many.".to_owned(),
            status,
        ),
        _ => return None,
    };
    let fields = text.strip_suffix("\r\n\r\n")?.split_once("\r\n")?.1;
    if fields.contains("\r\n\r\n")
        || !fields
            .split("\r\n")
            .any(|field| field.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let html = pages::error_html(status, &detail);
    let mut page = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        html.len()
    );
    for field in fields.split("\r\n") {
        if !field.to_ascii_lowercase().starts_with("content-length:") {
            page.push_str(field);
            page.push_str("\r\n");
        }
    }
    page.push_str("\r\n");
    page.push_str(&html);
    Some((status, page.into_bytes(), html.len()))
}

fn too_long() -> String {
    format!("The request target is longer than {MAX_URI_LEN} bytes.")
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.observe_read(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadErrors<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.inspect_first_write(buf);
        if this.replaced_len > 0 {
            ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(std::mem::take(&mut this.replaced_len)));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replaced_len > 0 {
            ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(std::mem::take(&mut this.replaced_len)));
        }
        if !this.first_write_seen {
            // hyper's answer is one slice; a write of several is a served
            // response and goes out as it is.
            let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
            match (non_empty.next(), non_empty.next()) {
                (Some(only), None) => return Pin::new(this).poll_write(cx, only),
                (Some(_), Some(_)) => this.first_write_seen = true,
                (None, _) => {}
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DATE: &str = "date: Thu, 03 Dec 2026 16:40:58 GMT";

    fn hyper_answer(status: &str) -> String {
        format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n{DATE}\r\n\r\n")
    }

    /// Feeds `request` to the wrapper, writes `writes` through it, and
    /// returns what the client receives.
    async fn exchange(request: &[u8], writes: &[&[u8]]) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut wrapped = HeadErrors::new(server, None);
        client.write_all(request).await.unwrap();
        let mut sink = vec![0u8; request.len()];
        if !request.is_empty() {
            wrapped.read_exact(&mut sink).await.unwrap();
        }
        for write in writes {
            wrapped.write_all(write).await.unwrap();
        }
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        received
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[tokio::test]
    async fn hyper_answers_get_a_page() {
        let got = text(
            &exchange(
                b"GARBAGE\r\n\r\n",
                &[hyper_answer("400 Bad Request").as_bytes()],
            )
            .await,
        );
        assert!(
            got.starts_with(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/html; charset=utf-8\r\n"
            ),
            "{got}"
        );
        assert!(
            got.contains("\r\nconnection: close\r\n") && got.contains(DATE),
            "{got}"
        );
        let (head, body) = got.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{got}"
        );
        assert!(body.contains("<h1>400 Bad Request</h1>"), "{got}");

        let got = text(
            &exchange(
                b"GET / HTTP/1.1\r\nX: y",
                &[hyper_answer("431 Request Header Fields Too Large").as_bytes()],
            )
            .await,
        );
        assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
        assert!(
            got.contains("<h1>431 Request Header Fields Too Large</h1>"),
            "{got}"
        );
    }

    #[tokio::test]
    async fn a_too_long_request_line_is_414() {
        let request = format!("GET /{}", "a".repeat(MAX_URI_LEN + 1));
        let answer = hyper_answer("431 Request Header Fields Too Large");
        let got = text(&exchange(request.as_bytes(), &[answer.as_bytes()]).await);
        assert!(got.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{got}");
        assert!(got.contains("<h1>414 URI Too Long</h1>"), "{got}");
        // A long header line is not a long request line.
        let request = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_URI_LEN + 1));
        let got = text(&exchange(request.as_bytes(), &[answer.as_bytes()]).await);
        assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    }

    #[tokio::test]
    async fn served_responses_pass_unchanged() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(exchange(b"GET / HTTP/1.1\r\n\r\n", &[ok]).await, ok);
        // Once a response has gone out, later bytes are never rewritten,
        // even if they look like hyper's answer (a served file could).
        let answer = hyper_answer("400 Bad Request");
        let got = exchange(b"GET / HTTP/1.1\r\n\r\n", &[ok, answer.as_bytes()]).await;
        assert_eq!(got, [&ok[..], answer.as_bytes()].concat());
        // Other statuses, and heads with a body, are left alone.
        for head in [
            hyper_answer("404 Not Found"),
            hyper_answer("400 Bad Request") + "body",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\n".to_owned(),
        ] {
            assert_eq!(text(&exchange(b"x", &[head.as_bytes()]).await), head);
        }
    }

    #[tokio::test]
    async fn refusals_are_logged_with_the_line_as_read() {
        let entries = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = {
            let entries = entries.clone();
            AccessLog::new(move |entry| entries.lock().unwrap().push(entry))
        };
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut wrapped = HeadErrors::new(server, Some((log, "::1".parse().unwrap())));
        let request = format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\n",
            "a".repeat(2 * LOGGED_LINE)
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let mut read = vec![0u8; request.len()];
        wrapped.read_exact(&mut read).await.unwrap();
        wrapped
            .write_all(hyper_answer("431 Request Header Fields Too Large").as_bytes())
            .await
            .unwrap();
        let entries = entries.lock().unwrap();
        let [entry] = entries.as_slice() else {
            panic!("{entries:?}")
        };
        assert_eq!(entry.status, 414);
        assert_eq!(entry.request_line.len(), LOGGED_LINE);
        assert!(entry.request_line.starts_with("GET /aaa"));
        assert!(entry.bytes > 0);
    }

    proptest! {
        #[test]
        fn arbitrary_writes_are_kept_unless_they_are_hyper_answers(
            request in proptest::collection::vec(any::<u8>(), 0..64),
            writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 0..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let slices: Vec<&[u8]> = writes.iter().map(Vec::as_slice).collect();
            let got = runtime.block_on(exchange(&request, &slices));
            let first = writes.first().map(Vec::as_slice).unwrap_or_default();
            if replacement(first, false).is_none() && replacement(first, true).is_none() {
                prop_assert_eq!(got, writes.concat());
            }
        }
    }
}
