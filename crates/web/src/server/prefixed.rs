//! Telling HTTP/2 with prior knowledge from HTTP/1 on a cleartext
//! connection: the first bytes are read (with a deadline, so a silent
//! client cannot hold a connection open) and then replayed to whichever
//! protocol handles the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Reads until the bytes so far either are the HTTP/2 preface or cannot
/// be; `None` when the client closes or says nothing within `wait`.
pub async fn detect<S>(mut stream: S, wait: Duration) -> io::Result<Option<(Protocol, Prefixed<S>)>>
where
    S: AsyncRead + Unpin,
{
    let mut seen = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    let deadline = tokio::time::Instant::now() + wait;
    let protocol = loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut seen[filled..])).await;
        let n = match read {
            Err(_) => return Ok(None),
            Ok(n) => n?,
        };
        if n == 0 {
            return Ok(None);
        }
        filled += n;
        if seen[..filled] != H2_PREFACE[..filled] {
            break Protocol::Http1;
        }
        if filled == H2_PREFACE.len() {
            break Protocol::Http2;
        }
    };
    Ok(Some((
        protocol,
        Prefixed {
            prefix: seen,
            start: 0,
            end: filled,
            inner: stream,
        },
    )))
}

/// A stream whose first bytes were already read: they are returned again
/// before anything more is read from the stream.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: [u8; H2_PREFACE.len()],
    start: usize,
    end: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            let n = (this.end - this.start).min(buf.remaining());
            buf.put_slice(&this.prefix[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn detect_bytes(chunks: &[&[u8]]) -> Option<(Protocol, Vec<u8>)> {
        let (mut client, server) = tokio::io::duplex(1024);
        for chunk in chunks {
            client.write_all(chunk).await.unwrap();
        }
        drop(client);
        let (protocol, mut stream) = detect(server, Duration::from_secs(5)).await.unwrap()?;
        let mut replayed = Vec::new();
        stream.read_to_end(&mut replayed).await.unwrap();
        Some((protocol, replayed))
    }

    #[tokio::test]
    async fn tells_protocols_apart_and_replays() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            detect_bytes(&[get]).await,
            Some((Protocol::Http1, get.to_vec()))
        );
        let mut h2 = H2_PREFACE.to_vec();
        h2.extend_from_slice(b"\x00\x00\x00\x04");
        assert_eq!(
            detect_bytes(&[&h2]).await,
            Some((Protocol::Http2, h2.clone()))
        );
        // `PRI` that is not the preface, and POST which shares its `P`.
        let pri = b"PRI / HTTP/1.1\r\n\r\n";
        assert_eq!(detect_bytes(&[pri]).await.unwrap().0, Protocol::Http1);
        let post = b"POST / HTTP/1.1\r\n\r\n";
        assert_eq!(detect_bytes(&[post]).await.unwrap().0, Protocol::Http1);
        // A preface that arrives a byte at a time.
        let bytes: Vec<&[u8]> = H2_PREFACE.chunks(1).collect();
        assert_eq!(detect_bytes(&bytes).await.unwrap().0, Protocol::Http2);
        // Closed early: nothing to serve.
        assert_eq!(detect_bytes(&[b"PRI * HT"]).await, None);
        assert_eq!(detect_bytes(&[]).await, None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_are_replayed_intact(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let detected = runtime.block_on(detect_bytes(&[&bytes]));
            match detected {
                Some((protocol, replayed)) => {
                    proptest::prop_assert_eq!(&replayed, &bytes);
                    proptest::prop_assert_eq!(protocol == Protocol::Http2, bytes.starts_with(H2_PREFACE));
                }
                None => proptest::prop_assert!(H2_PREFACE.starts_with(&bytes)),
            }
        }
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let detected = detect(server, Duration::from_millis(50)).await.unwrap();
        assert!(detected.is_none());
    }
}
