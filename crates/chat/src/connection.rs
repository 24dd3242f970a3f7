//! Byte-level framing, in one place: a [`FrameReader`] turns a byte stream
//! into lines of at most [`MAX_FRAME`] bytes and decodes them; a
//! [`FrameWriter`] encodes and writes them. Everything above speaks frames,
//! through [`FrameSource`] and [`FrameSink`], which the WebSocket transport
//! (`websocket`) implements too, so one session serves both.

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use crate::frame::{FrameError, FrameSet, MAX_FRAME, decode, encode};

/// Bytes asked of the socket per read. They land on the stack and only
/// what arrived is kept, so a connection waiting for its next line holds
/// no read buffer, however many thousands of them wait.
const READ_CHUNK: usize = 4 * 1024;

/// Frames gathered into one vectored write.
const WRITE_SLICES: usize = 64;

/// Where a session's frames come from: lines of a byte stream, or
/// WebSocket text messages.
pub trait FrameSource {
    /// The next frame's bytes (without a line ending), `None` at the end.
    fn next_frame(&mut self) -> impl Future<Output = Result<Option<Bytes>, FrameError>> + Send;

    /// The next frame decoded, `None` at the end. A non-fatal error (see
    /// [`FrameError::is_fatal`]) consumed one bad frame; reading can go on.
    fn read_frame<F: FrameSet>(
        &mut self,
    ) -> impl Future<Output = Result<Option<F>, FrameError>> + Send
    where
        Self: Send,
    {
        async move {
            match self.next_frame().await? {
                Some(line) => decode(&line).map(Some),
                None => Ok(None),
            }
        }
    }
}

/// Where a session's frames go.
pub trait FrameSink {
    /// Writes whole encoded frames, each ending in a newline (one `Bytes`
    /// may hold several), and flushes.
    fn write_frames(
        &mut self,
        frames: &[Bytes],
    ) -> impl Future<Output = Result<(), FrameError>> + Send;

    /// Flushes and closes the sending side.
    fn close(&mut self) -> impl Future<Output = Result<(), FrameError>> + Send;

    fn send_frame<F: Serialize + Sync>(
        &mut self,
        frame: &F,
    ) -> impl Future<Output = Result<(), FrameError>> + Send
    where
        Self: Send,
    {
        async move {
            let line = encode(frame)?;
            self.write_frames(std::slice::from_ref(&line)).await
        }
    }
}

/// Splits a byte stream into lines. Pure and synchronous, so it can be
/// tested (and fuzzed) without I/O.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: BytesMut,
    /// How far `buf` is known to hold no newline, so a long line arriving
    /// in small pieces is scanned once, not once per piece.
    scanned: usize,
}

impl LineBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes just read.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its `\n` (and `\r`), `None` when more
    /// bytes are needed, or [`FrameError::TooLong`] once a line cannot end
    /// within the limit.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, FrameError> {
        match memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            Some(at) => {
                let end = self.scanned + at;
                self.scanned = 0;
                if end + 1 > MAX_FRAME {
                    return Err(FrameError::TooLong);
                }
                let mut line = self.buf.split_to(end + 1).freeze();
                if self.buf.is_empty() {
                    // Lets the memory go with the line, rather than keep it
                    // for a next line that may be long in coming.
                    self.buf = BytesMut::new();
                }
                line.truncate(end);
                if line.ends_with(b"\r") {
                    line.truncate(end - 1);
                }
                Ok(Some(line))
            }
            None if self.buf.len() >= MAX_FRAME => Err(FrameError::TooLong),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    /// What is left after the last newline (a final line with no newline).
    pub fn take_rest(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        if self.buf.is_empty() {
            return None;
        }
        let rest = self.buf.split().freeze();
        Some(rest)
    }

    /// Reads what `inner` has (at most `READ_CHUNK` bytes) and keeps it;
    /// 0 at the end of the stream. Nothing is allocated while waiting.
    async fn read_from<R: AsyncRead + Unpin>(&mut self, inner: &mut R) -> std::io::Result<usize> {
        poll_fn(|cx| {
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *inner).poll_read(cx, &mut read))?;
            self.buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(read.filled().len()))
        })
        .await
    }
}

/// Reads frames of set `F` from `R`.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    lines: LineBuffer,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            lines: LineBuffer::new(),
            eof: false,
        }
    }

    /// The next non-empty line, or `None` at the end of the stream. A final
    /// line without a newline still counts.
    pub async fn read_line(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(line) = self.lines.next_line()? {
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.eof {
                return Ok(self.lines.take_rest().filter(|rest| !rest.is_empty()));
            }
            if self.lines.read_from(&mut self.inner).await? == 0 {
                self.eof = true;
            }
        }
    }

    /// The next frame, `None` at the end of the stream. A non-fatal error
    /// (see [`FrameError::is_fatal`]) consumed one bad line; reading can go on.
    pub async fn read_frame<F: FrameSet>(&mut self) -> Result<Option<F>, FrameError> {
        match self.read_line().await? {
            Some(line) => decode(&line).map(Some),
            None => Ok(None),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> FrameSource for FrameReader<R> {
    async fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.read_line().await
    }
}

/// Writes frames to `W`, flushing after each.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    pub async fn write_frame<F: Serialize>(&mut self, frame: &F) -> Result<(), FrameError> {
        let line = encode(frame)?;
        self.write_encoded(&line).await
    }

    /// Writes bytes that are already whole encoded frames (one or many).
    pub async fn write_encoded(&mut self, lines: &[u8]) -> Result<(), FrameError> {
        self.inner.write_all(lines).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Writes whole encoded frames, many per system call where the stream
    /// supports vectored writes, without copying them into one buffer.
    pub async fn write_frames(&mut self, frames: &[Bytes]) -> Result<(), FrameError> {
        let (mut first, mut offset) = (0, 0);
        while first < frames.len() {
            let mut written = self.write_some(&frames[first..], offset).await?;
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            while written > 0 {
                let left = frames[first].len() - offset;
                if written >= left {
                    written -= left;
                    first += 1;
                    offset = 0;
                } else {
                    offset += written;
                    written = 0;
                }
            }
        }
        self.inner.flush().await?;
        Ok(())
    }

    /// One vectored write of `frames`, the first from `offset` on. The
    /// slices are built on the stack inside the poll, so a writer waiting on
    /// a full socket holds none of them.
    async fn write_some(&mut self, frames: &[Bytes], offset: usize) -> std::io::Result<usize> {
        let inner = &mut self.inner;
        poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(frames) {
                let skip = if count == 0 { offset } else { 0 };
                *slot = IoSlice::new(&frame[skip..]);
                count += 1;
            }
            Pin::new(&mut *inner).poll_write_vectored(cx, &slices[..count])
        })
        .await
    }

    /// Flushes and closes the writing side.
    pub async fn shutdown(&mut self) -> Result<(), FrameError> {
        self.inner.shutdown().await?;
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: AsyncWrite + Unpin + Send> FrameSink for FrameWriter<W> {
    async fn write_frames(&mut self, frames: &[Bytes]) -> Result<(), FrameError> {
        FrameWriter::write_frames(self, frames).await
    }

    async fn close(&mut self) -> Result<(), FrameError> {
        self.shutdown().await
    }
}

/// Both directions of one stream.
#[derive(Debug)]
pub struct Connection<S> {
    pub reader: FrameReader<ReadHalf<S>>,
    pub writer: FrameWriter<WriteHalf<S>>,
}

impl<S: AsyncRead + AsyncWrite> Connection<S> {
    pub fn new(stream: S) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: FrameReader::new(read),
            writer: FrameWriter::new(write),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ClientFrame;
    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn splits_lines_and_strips_endings() {
        let mut lines = LineBuffer::new();
        lines.extend(b"one\r\ntwo\n\nthr");
        assert_eq!(lines.next_line().unwrap().unwrap(), &b"one"[..]);
        assert_eq!(lines.next_line().unwrap().unwrap(), &b"two"[..]);
        assert_eq!(lines.next_line().unwrap().unwrap(), &b""[..]);
        assert_eq!(lines.next_line().unwrap(), None);
        lines.extend(b"ee\n");
        assert_eq!(lines.next_line().unwrap().unwrap(), &b"three"[..]);
        assert_eq!(lines.take_rest(), None);
    }

    #[test]
    fn limit_is_enforced_with_and_without_newline() {
        let mut lines = LineBuffer::new();
        lines.extend(&vec![b'a'; MAX_FRAME - 1]);
        assert_eq!(lines.next_line().unwrap(), None);
        lines.extend(b"\n");
        assert_eq!(lines.next_line().unwrap().unwrap().len(), MAX_FRAME - 1);

        let mut lines = LineBuffer::new();
        lines.extend(&vec![b'a'; MAX_FRAME]);
        assert!(matches!(lines.next_line(), Err(FrameError::TooLong)));

        let mut lines = LineBuffer::new();
        lines.extend(&vec![b'a'; MAX_FRAME]);
        lines.extend(b"\n");
        assert!(matches!(lines.next_line(), Err(FrameError::TooLong)));
    }

    #[tokio::test]
    async fn reads_frames_from_a_stream() {
        let input: &[u8] = b"{\"type\":\"ping\"}\n\n{\"type\":\"nope\"}\n{\"type\":\"logout\"}";
        let mut reader = FrameReader::new(input);
        assert_eq!(
            reader.read_frame::<ClientFrame>().await.unwrap(),
            Some(ClientFrame::Ping { id: None })
        );
        let err = reader.read_frame::<ClientFrame>().await.unwrap_err();
        assert!(!err.is_fatal());
        assert_eq!(
            reader.read_frame::<ClientFrame>().await.unwrap(),
            Some(ClientFrame::Logout)
        );
        assert_eq!(reader.read_frame::<ClientFrame>().await.unwrap(), None);
    }

    #[tokio::test]
    async fn vectored_writes_survive_short_writes() {
        // A duplex with a tiny buffer forces many partial writes.
        let (client, mut server) = tokio::io::duplex(7);
        let frames: Vec<Bytes> = (0..200)
            .map(|i| Bytes::from(format!("frame number {i}\n")))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        let writing = tokio::spawn(async move {
            let mut writer = FrameWriter::new(client);
            writer.write_frames(&frames).await.unwrap();
        });
        let mut received = vec![0u8; expected.len()];
        server.read_exact(&mut received).await.unwrap();
        writing.await.unwrap();
        assert_eq!(received, expected);
    }

    #[tokio::test]
    async fn writer_and_reader_agree() {
        let (client, server) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(client);
        let mut reader = FrameReader::new(server);
        let frame = ClientFrame::Say {
            text: "line one\nline two \u{1b}[31m".into(),
            room: None,
        };
        writer.write_frame(&frame).await.unwrap();
        assert_eq!(
            reader.read_frame::<ClientFrame>().await.unwrap(),
            Some(frame)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_chunks_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
        ) {
            let mut lines = LineBuffer::new();
            for chunk in &chunks {
                lines.extend(chunk);
                while let Ok(Some(line)) = lines.next_line() {
                    prop_assert!(line.len() < MAX_FRAME);
                    prop_assert!(!line.contains(&b'\n'));
                    let _ = decode::<ClientFrame>(&line);
                }
            }
            let _ = lines.take_rest();
        }

        #[test]
        fn lines_survive_any_chunking(
            lines_in in proptest::collection::vec("[^\n\r]{0,40}", 0..10),
            cut in 1usize..17,
        ) {
            let joined: String = lines_in.iter().map(|l| format!("{l}\n")).collect();
            let mut buffer = LineBuffer::new();
            let mut out = Vec::new();
            for piece in joined.as_bytes().chunks(cut) {
                buffer.extend(piece);
                while let Some(line) = buffer.next_line().unwrap() {
                    out.push(String::from_utf8(line.to_vec()).unwrap());
                }
            }
            prop_assert_eq!(out, lines_in);
        }
    }
}
