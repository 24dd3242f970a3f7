//! Large bodies in the memory tier leave by `sendfile(2)`, not `writev`:
//! TCP then takes the body's pages by reference instead of copying a
//! megabyte into socket buffers for every hit, which was most of the
//! proxy's time on a 1 MiB hit.
//!
//! Such a body lives in a sealed memfd mapped read-only into memory, so to
//! hyper it is an ordinary `Bytes`. The client connection's stream
//! ([`ClientStream`]) recognises a buffer inside one of these mappings when
//! hyper writes it and sends those bytes from the memfd instead; the bytes
//! on the wire are the same either way.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, RwLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::sys;

/// Smaller bodies are copied: the copy is cheap and a memfd costs a file
/// descriptor.
pub const MIN_LEN: usize = 64 * 1024;

/// At most this many bodies are held in memfds at once (each holds a file
/// descriptor); the rest stay on the heap.
const MAX_SEALED: usize = 256;

static SEALED: AtomicUsize = AtomicUsize::new(0);

/// The live mappings by start address: (length, memfd).
static REGIONS: LazyLock<RwLock<BTreeMap<usize, (usize, RawFd)>>> = LazyLock::new(Default::default);

/// `body` as the memory tier keeps it: in a sealed memfd when it is large
/// enough (and the limit allows), else as it is.
pub fn body(body: Vec<u8>) -> Bytes {
    if body.len() < MIN_LEN {
        return Bytes::from(body);
    }
    if SEALED.fetch_add(1, Ordering::Relaxed) >= MAX_SEALED {
        SEALED.fetch_sub(1, Ordering::Relaxed);
        return Bytes::from(body);
    }
    match Sealed::new(&body) {
        Ok(sealed) => Bytes::from_owner(sealed),
        Err(err) => {
            SEALED.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(%err, "cannot seal a body in a memfd; keeping it on the heap");
            Bytes::from(body)
        }
    }
}

/// A body in a sealed memfd, mapped read-only. Nothing can change its bytes
/// (the seals forbid writes, growing and shrinking), so pages handed to TCP
/// stay what they were.
#[derive(Debug)]
struct Sealed {
    /// Open as long as the mapping: `sendfile` reads the body from it.
    _fd: OwnedFd,
    start: NonNull<u8>,
    len: usize,
}

// The mapping is read-only and lives as long as the value.
unsafe impl Send for Sealed {}
unsafe impl Sync for Sealed {}

impl Sealed {
    fn new(body: &[u8]) -> io::Result<Self> {
        let mut file = File::from(sys::memfd_sealable(c"netkit-cached-body")?);
        file.write_all(body)?;
        let fd = OwnedFd::from(file);
        sys::seal_contents(fd.as_fd())?;
        let start = sys::map_read_only(fd.as_fd(), body.len())?;
        REGIONS
            .write()
            .expect("not poisoned")
            .insert(start.as_ptr() as usize, (body.len(), fd.as_raw_fd()));
        Ok(Sealed {
            _fd: fd,
            start,
            len: body.len(),
        })
    }
}

impl AsRef<[u8]> for Sealed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `start..start + len` is mapped readable until drop, and
        // the seals keep its bytes from changing.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        REGIONS
            .write()
            .expect("not poisoned")
            .remove(&(self.start.as_ptr() as usize));
        // SAFETY: the mapping made in `new`; no `Bytes` refers to it any
        // more, or this owner would not be dropped.
        unsafe { sys::unmap(self.start, self.len) };
        SEALED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where `buf` lies in a sealed body: the memfd and the offset, if it lies
/// wholly inside one. The memfd stays open while `buf` is borrowed: the
/// buffer belongs to a live `Bytes` that keeps its owner alive.
fn sealed_source(buf: &[u8]) -> Option<(RawFd, u64)> {
    if buf.is_empty() {
        return None;
    }
    let at = buf.as_ptr() as usize;
    let regions = REGIONS.read().expect("not poisoned");
    let (&start, &(len, fd)) = regions.range(..=at).next_back()?;
    (at + buf.len() <= start + len).then(|| (fd, (at - start) as u64))
}

/// A client connection: a `TcpStream` whose vectored writes send buffers
/// that lie in sealed bodies with `sendfile`.
#[derive(Debug)]
pub struct ClientStream(TcpStream);

impl ClientStream {
    pub fn new(stream: TcpStream) -> Self {
        ClientStream(stream)
    }

    /// Sends `buf`, which lies in the memfd `fd` at `offset`, from the file.
    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        fd: RawFd,
        mut offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, || {
            // SAFETY: see `sealed_source`: the caller holds the buffer whose
            // owner keeps `fd` open.
            let file = unsafe { BorrowedFd::borrow_raw(fd) };
            sys::sendfile(self.0.as_fd(), file, &mut offset, len)
        })
    }

    /// Sends the head before a sealed body with `MSG_MORE`, so it leaves
    /// in the same segment as the body's first bytes.
    fn poll_send_more(&self, cx: &mut Context<'_>, head: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, || sys::send_more(self.0.as_fd(), head))
    }

    /// Runs a non-blocking send once the socket is writable, waiting again
    /// while it would block.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_io(Interest::WRITABLE, &mut send) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                sent => return Poll::Ready(sent),
            }
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
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
        let skip = bufs.iter().take_while(|buf| buf.is_empty()).count();
        let bufs = &bufs[skip..];
        let sealed = bufs
            .iter()
            .enumerate()
            .find_map(|(at, buf)| sealed_source(buf).map(|source| (at, source)));
        match sealed {
            _ if bufs.is_empty() => Poll::Ready(Ok(0)),
            None => Pin::new(&mut this.0).poll_write_vectored(cx, bufs),
            Some((0, (fd, offset))) => this.poll_sendfile(cx, fd, offset, bufs[0].len()),
            Some((1, _)) => this.poll_send_more(cx, &bufs[0]),
            // What comes before the body goes first; the body on the next call.
            Some((at, _)) => Pin::new(&mut this.0).poll_write_vectored(cx, &bufs[..at]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn large_bodies_are_sealed_and_read_back_intact() {
        let data = pattern(MIN_LEN * 3 + 5);
        let bytes = body(data.clone());
        assert_eq!(&bytes[..], &data[..]);
        assert!(sealed_source(&bytes).is_some());
        assert!(sealed_source(&bytes.slice(100..200)).is_some());
        let small = body(pattern(MIN_LEN - 1));
        assert!(sealed_source(&small).is_none());
        let at = bytes.as_ptr() as usize;
        drop(bytes);
        assert!(
            !REGIONS.read().unwrap().contains_key(&at),
            "dropping the last reference unmaps the body"
        );
    }

    #[tokio::test]
    async fn a_head_and_a_sealed_body_arrive_byte_for_byte() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = pattern(3 * 1024 * 1024 + 17);
        let sealed = body(data.clone());
        assert!(sealed_source(&sealed).is_some());
        let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let writer = {
            let head = head.clone();
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                // Small buffers both ends: sends come up short and resume.
                socket2::SockRef::from(&stream)
                    .set_send_buffer_size(16 * 1024)
                    .unwrap();
                let mut stream = ClientStream::new(stream);
                let mut calls = 0;
                // As hyper writes: vectored, advancing past what was taken,
                // so partial writes (a slow reader) resume mid-body.
                let mut parts = [Bytes::from(head), sealed];
                let mut first = 0;
                while first < parts.len() {
                    let slices: Vec<IoSlice<'_>> =
                        parts[first..].iter().map(|p| IoSlice::new(p)).collect();
                    let mut n = stream.write_vectored(&slices).await.unwrap();
                    calls += 1;
                    while n > 0 {
                        let take = n.min(parts[first].len());
                        parts[first] = parts[first].slice(take..);
                        n -= take;
                        if parts[first].is_empty() {
                            first += 1;
                        }
                    }
                }
                stream.shutdown().await.unwrap();
                calls
            })
        };
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let mut client = socket.connect(addr).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0; 4096];
        loop {
            // Read slowly at first so the proxy's writes come up short.
            if got.len() < 256 * 1024 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let n = client.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        let calls = writer.await.unwrap();
        assert!(
            calls > 10,
            "only {calls} writes: the body went in one piece"
        );
        assert_eq!(got.len(), head.len() + data.len());
        assert_eq!(&got[..head.len()], &head[..]);
        assert!(got[head.len()..] == data[..], "the body arrived changed");
    }
}
