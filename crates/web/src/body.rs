//! Response bodies: whole buffers, file ranges read a chunk at a time,
//! `multipart/byteranges`, and on-the-fly compression. Memory per response
//! is one chunk plus what hyper queues, whatever the size of the file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::negotiate::Coding;

/// Bytes read from a file per frame: large enough that syscalls stay cheap
/// next to copying, small enough that many slow clients cost little memory.
const CHUNK: usize = 128 * 1024;

/// What a representation's bytes are read from.
#[derive(Debug, Clone)]
pub enum Content {
    File(Arc<File>),
    /// Compiled into the binary (the built-in site).
    Static(&'static [u8]),
    /// A small file kept in memory (`files::cache`).
    Memory(Bytes),
}

impl Content {
    /// Up to `max` bytes at `offset`, read into a buffer from `pool`;
    /// fewer only at the end of the content.
    fn read(&self, offset: u64, max: usize, pool: &mut BufferPool) -> io::Result<Bytes> {
        match self {
            Content::Static(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(max).min(bytes.len());
                Ok(Bytes::from_static(&bytes[start..end]))
            }
            Content::Memory(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(max).min(bytes.len());
                Ok(bytes.slice(start..end))
            }
            Content::File(file) => {
                let buf = pool.take(max);
                while buf.len() < max {
                    let filled = buf.len();
                    let position = offset + filled as u64;
                    let spare = &mut buf.spare_capacity_mut()[..max - filled];
                    let file: &File = file;
                    match crate::sys::pread(file.as_fd(), spare, position)? {
                        0 => break,
                        // SAFETY: pread initialized the first `n` bytes of
                        // the spare capacity it was given.
                        n => unsafe { buf.set_len(buf.len() + n) },
                    }
                }
                Ok(buf.split().freeze())
            }
        }
    }

    /// The whole of a small content in one buffer.
    pub fn read_all(&self, len: u64) -> io::Result<Bytes> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("too large"))?;
        let bytes = self.read(0, len, &mut BufferPool::default())?;
        if bytes.len() < len {
            return Err(truncated());
        }
        Ok(bytes)
    }
}

/// Read buffers for one body, reused once hyper has written and dropped
/// the chunks cut from them: a large file then costs no allocation (and no
/// fresh pages to fault in) per chunk.
#[derive(Debug, Default)]
struct BufferPool {
    buffers: Vec<BytesMut>,
}

/// Chunks one body may have in flight (queued in hyper) before a buffer
/// is allocated rather than reused.
const POOL_SIZE: usize = 4;

impl BufferPool {
    /// An empty buffer with room for `len` bytes.
    fn take(&mut self, len: usize) -> &mut BytesMut {
        let reusable = self
            .buffers
            .iter_mut()
            .position(|buf| buf.is_empty() && buf.try_reclaim(len));
        let index = match reusable {
            Some(index) => index,
            None if self.buffers.len() < POOL_SIZE => {
                self.buffers.push(BytesMut::with_capacity(len));
                self.buffers.len() - 1
            }
            None => {
                self.buffers[0] = BytesMut::with_capacity(len);
                0
            }
        };
        &mut self.buffers[index]
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while it was being sent",
    )
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// A byte range of a content, read as it is sent.
    Ranges(RangeReader),
    Compressed(Box<Compressing>),
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }

    pub fn range(content: Content, range: Range<u64>) -> Self {
        Body::Ranges(RangeReader::new(VecDeque::from([Part::Range(
            content, range,
        )])))
    }

    /// A `multipart/byteranges` body: each range preceded by its part head,
    /// then the closing delimiter. `parts` alternates heads and ranges.
    pub fn parts(parts: VecDeque<Part>) -> Self {
        Body::Ranges(RangeReader::new(parts))
    }

    pub fn compressed(content: Content, len: u64, coding: Coding) -> Self {
        let (encoder, failed) = match Encoder::new(coding) {
            Ok(encoder) => (Some(encoder), None),
            Err(err) => (None, Some(err)),
        };
        Body::Compressed(Box::new(Compressing {
            reader: RangeReader::new(VecDeque::from([Part::Range(content, 0..len)])),
            encoder,
            failed,
        }))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let next = match self.get_mut() {
            Body::Empty => None,
            Body::Full(bytes) => bytes.take().map(Ok),
            Body::Ranges(reader) => reader.next_chunk(),
            Body::Compressed(compressing) => compressing.next_chunk(),
        };
        Poll::Ready(next.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Ranges(reader) => reader.parts.is_empty(),
            Body::Compressed(compressing) => {
                compressing.encoder.is_none() && compressing.failed.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Ranges(reader) => SizeHint::with_exact(reader.remaining()),
            Body::Compressed(_) => SizeHint::default(),
        }
    }
}

/// One piece of a ranged body.
#[derive(Debug)]
pub enum Part {
    /// Literal bytes: a multipart head or the closing delimiter.
    Bytes(Bytes),
    Range(Content, Range<u64>),
}

#[derive(Debug)]
pub struct RangeReader {
    parts: VecDeque<Part>,
    pool: BufferPool,
}

impl RangeReader {
    fn new(parts: VecDeque<Part>) -> Self {
        Self {
            parts,
            pool: BufferPool::default(),
        }
    }

    fn remaining(&self) -> u64 {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.len() as u64,
                Part::Range(_, range) => range.end - range.start,
            })
            .sum()
    }

    fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.parts.front_mut()? {
                Part::Bytes(bytes) => {
                    let bytes = std::mem::take(bytes);
                    self.parts.pop_front();
                    return Some(Ok(bytes));
                }
                Part::Range(content, range) => {
                    if range.start >= range.end {
                        self.parts.pop_front();
                        continue;
                    }
                    let want = (range.end - range.start).min(CHUNK as u64) as usize;
                    let chunk = match content.read(range.start, want, &mut self.pool) {
                        Ok(chunk) if chunk.is_empty() => Err(truncated()),
                        other => other,
                    };
                    match chunk {
                        Ok(chunk) => {
                            range.start += chunk.len() as u64;
                            return Some(Ok(chunk));
                        }
                        Err(err) => {
                            self.parts.clear();
                            return Some(Err(err));
                        }
                    }
                }
            }
        }
    }
}

/// A body compressed a chunk at a time as it is sent.
#[derive(Debug)]
pub struct Compressing {
    reader: RangeReader,
    encoder: Option<Encoder>,
    /// An encoder that could not be made, reported as the first chunk.
    failed: Option<io::Error>,
}

impl Compressing {
    fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if let Some(err) = self.failed.take() {
            return Some(Err(err));
        }
        loop {
            let encoder = self.encoder.as_mut()?;
            let result = match self.reader.next_chunk() {
                Some(Ok(input)) => encoder.push(&input),
                Some(Err(err)) => Err(err),
                None => self.encoder.take().expect("checked above").finish(),
            };
            match result {
                // The encoder is still filling its window: feed it more.
                Ok(output) if output.is_empty() && self.encoder.is_some() => continue,
                Ok(output) if output.is_empty() => return None,
                Ok(output) => return Some(Ok(output)),
                Err(err) => {
                    self.encoder = None;
                    return Some(Err(err));
                }
            }
        }
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Gzip(_) => "Encoder::Gzip",
            Encoder::Brotli(_) => "Encoder::Brotli",
            Encoder::Zstd(_) => "Encoder::Zstd",
        })
    }
}

/// Levels that favour speed: the response is compressed while the client
/// waits, unlike precompressed siblings made ahead of time at the highest.
const GZIP_LEVEL: u32 = 5;
const BROTLI_QUALITY: u32 = 4;
/// A 512 KiB window, as nginx's brotli module uses: larger windows cost
/// memory per response in flight for little gain on web content.
const BROTLI_WINDOW: u32 = 19;
/// zstd's own default level, fast enough to compress as we send.
const ZSTD_LEVEL: i32 = 3;

impl Encoder {
    fn new(coding: Coding) -> io::Result<Self> {
        Ok(match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                CHUNK,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => Encoder::Zstd(Box::new(zstd::stream::write::Encoder::new(
                Vec::new(),
                ZSTD_LEVEL,
            )?)),
        })
    }

    /// Compresses `input` and returns whatever output is ready.
    fn push(&mut self, input: &[u8]) -> io::Result<Bytes> {
        let output = match self {
            Encoder::Gzip(encoder) => {
                encoder.write_all(input)?;
                encoder.get_mut()
            }
            Encoder::Brotli(encoder) => {
                encoder.write_all(input)?;
                encoder.get_mut()
            }
            Encoder::Zstd(encoder) => {
                encoder.write_all(input)?;
                encoder.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(output)))
    }

    fn finish(self) -> io::Result<Bytes> {
        let output = match self {
            Encoder::Gzip(encoder) => encoder.finish()?,
            Encoder::Brotli(encoder) => encoder.into_inner(),
            Encoder::Zstd(encoder) => encoder.finish()?,
        };
        Ok(Bytes::from(output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use std::io::Read;

    async fn collect(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    fn text() -> &'static [u8] {
        static TEXT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| {
            (0..40_000u32)
                .flat_map(|i| format!("line {i} of a compressible text\n").into_bytes())
                .collect()
        })
    }

    #[tokio::test]
    async fn ranges_of_static_and_file_content() {
        let data = text();
        let body = Body::range(Content::Static(data), 10..300_000);
        assert_eq!(collect(body).await, &data[10..300_000]);

        let path = std::env::temp_dir().join(format!("web-body-{}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let len = data.len() as u64;
        let body = Body::range(Content::File(file.clone()), 0..len);
        assert_eq!(body.size_hint().exact(), Some(len));
        assert_eq!(collect(body).await, data);

        // A file shorter than promised ends the body with an error.
        let body = Body::range(Content::File(file), 0..len + 1);
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn compression_round_trips() {
        let data = text();
        let len = data.len() as u64;
        let gz = collect(Body::compressed(Content::Static(data), len, Coding::Gzip)).await;
        assert!(gz.len() < data.len() / 4);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data);

        let br = collect(Body::compressed(Content::Static(data), len, Coding::Brotli)).await;
        assert!(br.len() < data.len() / 4);
        let mut plain = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data);

        let zst = collect(Body::compressed(Content::Static(data), len, Coding::Zstd)).await;
        assert!(zst.len() < data.len() / 4, "{} bytes", zst.len());
        assert_eq!(zstd::stream::decode_all(&zst[..]).unwrap(), data);
        let empty = collect(Body::compressed(Content::Static(b""), 0, Coding::Gzip)).await;
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert!(plain.is_empty());
    }
}
