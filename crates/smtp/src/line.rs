//! Reading CRLF-terminated lines with a bound, for both sides of the
//! dialogue: whatever a peer sends, a line never takes more than `max` bytes
//! of memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    /// A whole line, now in the caller's buffer without its CRLF (or LF).
    Complete,
    /// The line was longer than allowed; it has been read and dropped, so
    /// the next line starts in the right place.
    TooLong,
    /// The peer closed the connection (possibly in the middle of a line).
    Closed,
}

/// Bytes read past the end of the last line returned.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    pub fn new() -> Self {
        Self {
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// How many bytes have arrived beyond the last line returned.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Forgets buffered bytes, as after a TLS upgrade (RFC 3207 §4.2).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads the next line into `line` (cleared first). `max` bounds the
    /// line's length without its LF.
    pub async fn read_line<R>(
        &mut self,
        reader: &mut R,
        max: usize,
        line: &mut Vec<u8>,
    ) -> std::io::Result<LineStatus>
    where
        R: AsyncRead + Unpin,
    {
        line.clear();
        let mut too_long = false;
        loop {
            let available = &self.buf[self.start..self.end];
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(available.len());
            if !too_long && line.len() + take > max {
                too_long = true;
                line.clear();
            }
            if !too_long {
                line.extend_from_slice(&available[..take]);
            }
            if let Some(at) = newline {
                self.start += at + 1;
                if too_long {
                    return Ok(LineStatus::TooLong);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(LineStatus::Complete);
            }
            self.clear();
            let n = reader.read(&mut self.buf).await?;
            if n == 0 {
                return Ok(LineStatus::Closed);
            }
            self.end = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Delivers `input` in reads of the given sizes, as a socket might.
    struct Trickle<'a> {
        input: &'a [u8],
        sizes: std::iter::Cycle<std::vec::IntoIter<usize>>,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self
                .sizes
                .next()
                .unwrap()
                .min(self.input.len())
                .min(buf.remaining());
            let (head, rest) = self.input.split_at(n);
            buf.put_slice(head);
            self.input = rest;
            std::task::Poll::Ready(Ok(()))
        }
    }

    proptest! {
        #[test]
        fn lines_stay_bounded_and_complete(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..600),
            sizes in proptest::collection::vec(1usize..40, 1..5),
            max in 0usize..50,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let mut reader = Trickle { input: &input, sizes: sizes.into_iter().cycle() };
                let mut buffer = LineBuffer::new();
                let mut line = Vec::new();
                let mut complete = 0;
                loop {
                    match buffer.read_line(&mut reader, max, &mut line).await.unwrap() {
                        LineStatus::Complete => {
                            prop_assert!(line.len() <= max);
                            prop_assert!(!line.contains(&b'\n'));
                            complete += 1;
                        }
                        LineStatus::TooLong => complete += 1,
                        LineStatus::Closed => break,
                    }
                }
                prop_assert_eq!(complete, input.iter().filter(|&&b| b == b'\n').count());
                Ok(())
            })?;
        }
    }

    async fn lines(input: &[u8], max: usize) -> Vec<(LineStatus, Vec<u8>)> {
        let mut reader = input;
        let mut buffer = LineBuffer::new();
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let status = buffer.read_line(&mut reader, max, &mut line).await.unwrap();
            out.push((status, line));
            if status == LineStatus::Closed {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_and_bounds() {
        let got = lines(b"one\r\ntwo\nthis is far too long\r\nok\r\npartial", 8).await;
        let statuses: Vec<_> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses,
            [
                LineStatus::Complete,
                LineStatus::Complete,
                LineStatus::TooLong,
                LineStatus::Complete,
                LineStatus::Closed
            ]
        );
        assert_eq!(got[0].1, b"one");
        assert_eq!(got[1].1, b"two");
        assert_eq!(got[3].1, b"ok");
    }

    #[tokio::test]
    async fn long_lines_across_reads_stay_bounded() {
        let mut input = vec![b'x'; 3 * READ_CHUNK];
        input.extend_from_slice(b"\r\nnext\r\n");
        let got = lines(&input, 1000).await;
        assert_eq!(got[0].0, LineStatus::TooLong);
        assert!(got[0].1.capacity() <= 2 * READ_CHUNK);
        assert_eq!(got[1], (LineStatus::Complete, b"next".to_vec()));
    }
}
