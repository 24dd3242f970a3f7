//! Response bodies: whole bodies from memory, files from the cache, and the
//! origin's body streamed to the client while a copy goes to the cache.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::io::poll_read_buf;
use tokio_util::sync::PollSender;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends or forwards.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body file already checked against its checksum.
pub fn file(file: std::fs::File) -> Body {
    Reader::new(tokio::fs::File::from_std(file)).boxed_unsync()
}

/// `len` bytes of a checked body file from `first` on.
pub fn file_part(mut file: std::fs::File, first: u64, len: u64) -> std::io::Result<Body> {
    use std::io::Seek;
    use tokio::io::AsyncReadExt;
    file.seek(std::io::SeekFrom::Start(first))?;
    let part = tokio::fs::File::from_std(file).take(len);
    Ok(Reader::new(part).boxed_unsync())
}

/// Bytes read from a file per frame.
const READ_CHUNK: usize = 64 * 1024;

/// A body read from `R` a chunk at a time, ending where `R` ends.
#[derive(Debug)]
struct Reader<R> {
    reader: R,
    buf: BytesMut,
}

impl<R> Reader<R> {
    fn new(reader: R) -> Self {
        Reader {
            reader,
            buf: BytesMut::new(),
        }
    }
}

impl<R: AsyncRead + Unpin> HttpBody for Reader<R> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.buf.capacity() == 0 {
            this.buf.reserve(READ_CHUNK);
        }
        Poll::Ready(
            match ready!(poll_read_buf(Pin::new(&mut this.reader), cx, &mut this.buf)) {
                Ok(0) => None,
                Ok(_) => Some(Ok(Frame::data(this.buf.split().freeze()))),
                Err(err) => Some(Err(err.into())),
            },
        )
    }
}

/// What the body copy sends to the cache writer.
#[derive(Debug)]
pub enum Chunk {
    Data(Bytes),
    /// The origin's body ended cleanly: the copy is complete.
    End,
}

/// The origin's body on its way to the client, copied to the cache writer
/// as it passes. The client sets the pace: a slow cache writer slows the
/// copy (bounded channel), and a writer that gives up only stops the copy.
#[derive(Debug)]
pub struct Tee<B> {
    inner: B,
    copy: Option<PollSender<Chunk>>,
}

impl<B> Tee<B> {
    pub fn new(inner: B, copy: mpsc::Sender<Chunk>) -> Self {
        Tee {
            inner,
            copy: Some(PollSender::new(copy)),
        }
    }
}

impl<B> HttpBody for Tee<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let copy_gone = match &mut this.copy {
            Some(copy) => ready!(copy.poll_reserve(cx)).is_err(),
            None => false,
        };
        if copy_gone {
            this.copy = None;
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                let sent = match (frame.data_ref(), &mut this.copy) {
                    (Some(data), Some(copy)) => copy.send_item(Chunk::Data(data.clone())).is_ok(),
                    _ => true,
                };
                if !sent {
                    this.copy = None;
                }
            }
            Some(Err(_)) => this.copy = None,
            None => {
                if let Some(mut copy) = this.copy.take() {
                    let _ = copy.send_item(Chunk::End);
                }
            }
        }
        Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        // Claiming the end early would skip the poll that sends `End`.
        self.copy.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An origin body that must keep moving: if no frame arrives for `limit`,
/// it fails, so a stalled origin ends the client's response instead of
/// holding it open for ever.
#[derive(Debug)]
pub struct Deadline<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> Deadline<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Deadline {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the origin sent nothing for {0:?}")]
pub struct Stalled(Duration);

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.limit;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Stalled(this.limit).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts the bytes a body delivers and calls `done` with the count when the
/// body is dropped (finished, or abandoned by the client).
pub struct Counted<B, F: FnOnce(u64)> {
    inner: B,
    sent: u64,
    done: Option<F>,
}

impl<B, F: FnOnce(u64)> std::fmt::Debug for Counted<B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").field("sent", &self.sent).finish()
    }
}

impl<B, F: FnOnce(u64)> Counted<B, F> {
    pub fn new(inner: B, done: F) -> Self {
        Counted {
            inner,
            sent: 0,
            done: Some(done),
        }
    }
}

impl<B, F> HttpBody for Counted<B, F>
where
    B: HttpBody<Data = Bytes> + Unpin,
    F: FnOnce(u64) + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            self.sent += frame.data_ref().map_or(0, |data| data.len() as u64);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, F: FnOnce(u64)> Drop for Counted<B, F> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn tee_copies_everything_then_ends() {
        let (tx, mut rx) = mpsc::channel(4);
        use tokio::io::AsyncReadExt;
        // Three reads, so three frames.
        let inner = Reader::new((&b"one "[..]).chain(&b"two "[..]).chain(&b"three"[..]));
        let body = Tee::new(inner, tx);
        let collected = tokio::spawn(async move { body.collect().await.unwrap().to_bytes() });
        let mut copy = Vec::new();
        let mut ended = false;
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Data(data) => copy.extend_from_slice(&data),
                Chunk::End => ended = true,
            }
        }
        assert_eq!(collected.await.unwrap(), "one two three");
        assert_eq!(copy, b"one two three");
        assert!(ended);
    }

    #[tokio::test]
    async fn tee_survives_a_writer_that_gives_up() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let body = Tee::new(Full::new(Bytes::from_static(b"data")), tx);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "data");
    }

    #[tokio::test]
    async fn counted_reports_on_drop() {
        let (tx, rx) = std::sync::mpsc::channel();
        let body = Counted::new(Full::new(Bytes::from_static(b"12345")), move |n| {
            tx.send(n).unwrap()
        });
        body.collect().await.unwrap();
        assert_eq!(rx.recv().unwrap(), 5);
    }
}
