//! hyper answers a request it cannot parse (400, 414, 431) itself, with no
//! hook to add fields; every other answer of the proxy carries `Via` and
//! `X-Cache`. [`Stamped`] wraps the client connection and adds the two
//! fields to an error head written without them, which only hyper writes,
//! until the connection becomes a CONNECT tunnel: its bytes are the
//! client's and the origin's, never changed.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What hyper's own answers lack (`headers::VIA_ENTRY` and `BYPASS`), in
/// the case hyper writes names in.
pub const STAMP: &str = "via: 1.1 netkit\r\nx-cache: BYPASS\r\n";

/// Set once a connection carries a CONNECT tunnel.
#[derive(Debug, Clone, Default)]
pub struct Tunnelled(Arc<AtomicBool>);

impl Tunnelled {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Stamped<S> {
    inner: S,
    tunnelled: Tunnelled,
    /// A stamped head being written: its bytes, how many are sent, and the
    /// length of the head as hyper gave it (what the write reports).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> Stamped<S> {
    pub fn new(inner: S, tunnelled: Tunnelled) -> Self {
        Stamped {
            inner,
            tunnelled,
            pending: None,
        }
    }
}

/// `buf` with the stamp before its blank line, if it is a whole 4xx head
/// without `x-cache` (ours all have one).
fn stamped(buf: &[u8]) -> Option<Vec<u8>> {
    if !(buf.starts_with(b"HTTP/1.1 4") || buf.starts_with(b"HTTP/1.0 4")) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = &buf[..end];
    if head
        .windows(10)
        .any(|w| w.eq_ignore_ascii_case(b"\r\nx-cache:"))
    {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + 48);
    out.extend_from_slice(&buf[..end + 2]);
    out.extend_from_slice(STAMP.as_bytes());
    out.extend_from_slice(&buf[end + 2..]);
    Some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> Stamped<S> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, sent, reported)) = &mut self.pending {
            if *sent == bytes.len() {
                let reported = *reported;
                self.pending = None;
                return Poll::Ready(Ok(reported));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() && this.tunnelled.get() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        if this.pending.is_none() {
            // A head goes in one buffer: the first that is not empty.
            let first = bufs.iter().find(|buf| !buf.is_empty());
            match first.and_then(|buf| stamped(buf).map(|out| (out, buf.len()))) {
                Some((out, len)) => {
                    // Whatever precedes the head in `bufs` is empty.
                    this.pending = Some((out, 0, len));
                }
                None => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            }
        }
        this.poll_pending(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_our_via() {
        assert!(STAMP.contains(crate::headers::VIA_ENTRY));
    }

    #[test]
    fn only_heads_without_x_cache_are_stamped() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(stamped(hyper).unwrap()).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\nvia: 1.1 netkit\r\nx-cache: BYPASS\r\n\r\n"
        );
        let ours = b"HTTP/1.1 403 Forbidden\r\nvia: 1.1 netkit\r\nx-cache: BYPASS\r\n\r\nbody";
        assert_eq!(stamped(ours), None);
        assert_eq!(stamped(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        assert_eq!(stamped(b"HTTP/1.1 431 no end"), None);
        assert_eq!(stamped(b"HTTP/1.1 4"), None);
    }
}
