//! The chat protocol over WebSocket (RFC 6455), for browsers: one text
//! message is one frame, without the newline that ends it on TCP. The
//! frame rules are the TCP ones: a message longer than [`MAX_FRAME`]
//! ends the session (`frame_too_long`), and a binary message is a bad
//! frame (answered, then skipped), as a malformed line is.

use bytes::{Buf, Bytes};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::connection::{FrameSink, FrameSource};
use crate::frame::{FrameError, MAX_FRAME};

/// Bytes read from the socket at a time: tungstenite allocates its read
/// buffer at this size up front, for every connection (its default is
/// 128 KiB).
const READ_BUFFER: usize = 4 * 1024;

/// Encoded messages gathered before they are written: a batch of small
/// frames goes out in a few writes, and the buffer an idle connection
/// keeps stays small.
const WRITE_BUFFER: usize = 8 * 1024;

/// The limits a chat session puts on WebSocket input.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // Room to queue one more frame of the largest size past the
        // target, which is all a batch ever adds before it is written.
        .max_write_buffer_size(WRITE_BUFFER + 2 * MAX_FRAME)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Both directions of a WebSocket whose handshake is done.
pub async fn split<S>(stream: S, role: Role) -> (WebSocketSink<S>, WebSocketSource<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let socket = WebSocketStream::from_raw_socket(stream, role, Some(config())).await;
    let (sink, source) = socket.split();
    (
        WebSocketSink { inner: sink },
        WebSocketSource { inner: source },
    )
}

/// Frames arriving as text messages.
#[derive(Debug)]
pub struct WebSocketSource<S> {
    inner: SplitStream<WebSocketStream<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> FrameSource for WebSocketSource<S> {
    async fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let message = match self.inner.next().await {
                None => return Ok(None),
                Some(Ok(message)) => message,
                Some(Err(err)) => return closed_or(err),
            };
            match message {
                Message::Text(text) => {
                    let mut line = Bytes::from(text);
                    while line.ends_with(b"\n") || line.ends_with(b"\r") {
                        line.truncate(line.len() - 1);
                    }
                    if !line.is_empty() {
                        return Ok(Some(line));
                    }
                }
                Message::Binary(_) => {
                    return Err(FrameError::Malformed(
                        "a binary WebSocket message: chat frames are text messages".into(),
                    ));
                }
                Message::Close(_) => return Ok(None),
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

/// The end of the stream for a closed socket, the frame rules' errors for
/// what breaks them, and an I/O error for anything else.
fn closed_or(err: tungstenite::Error) -> Result<Option<Bytes>, FrameError> {
    use tungstenite::Error;
    match err {
        Error::ConnectionClosed | Error::AlreadyClosed => Ok(None),
        Error::Capacity(_) => Err(FrameError::TooLong),
        Error::Io(err) => Err(FrameError::Io(err)),
        other => Err(FrameError::Io(std::io::Error::other(other))),
    }
}

fn write_error(err: tungstenite::Error) -> FrameError {
    match err {
        tungstenite::Error::Io(err) => FrameError::Io(err),
        other => FrameError::Io(std::io::Error::other(other)),
    }
}

/// Frames leaving as text messages, one per line.
#[derive(Debug)]
pub struct WebSocketSink<S> {
    inner: SplitSink<WebSocketStream<S>, Message>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> FrameSink for WebSocketSink<S> {
    async fn write_frames(&mut self, frames: &[Bytes]) -> Result<(), FrameError> {
        for frame in frames {
            for line in lines(frame) {
                // Encoded frames are JSON, so UTF-8; the check is the price
                // of handing the shared bytes over without a copy.
                let text = Utf8Bytes::try_from(line).map_err(|_| FrameError::InvalidUtf8)?;
                self.inner
                    .feed(Message::Text(text))
                    .await
                    .map_err(write_error)?;
            }
        }
        self.inner.flush().await.map_err(write_error)
    }

    async fn close(&mut self) -> Result<(), FrameError> {
        self.inner.close().await.map_err(write_error)
    }
}

/// The newline-ended lines in `frames`, without their newlines, sharing
/// its memory.
fn lines(frames: &Bytes) -> impl Iterator<Item = Bytes> + use<> {
    let mut rest = frames.clone();
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', &rest).unwrap_or(rest.len());
            let line = rest.split_to(end);
            if !rest.is_empty() {
                rest.advance(1);
            }
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ClientFrame, ServerFrame, encode};
    use tokio::io::DuplexStream;

    type Server = (WebSocketSink<DuplexStream>, WebSocketSource<DuplexStream>);

    /// A server's two halves and a raw client on the other end.
    async fn connected() -> (Server, WebSocketStream<DuplexStream>) {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let server = split(a, Role::Server).await;
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (server, client)
    }

    #[test]
    fn lines_split_without_copies() {
        let frames = Bytes::from_static(b"one\ntwo\n\nthree");
        let got: Vec<Bytes> = lines(&frames).collect();
        assert_eq!(got, ["one", "two", "three"]);
    }

    #[tokio::test]
    async fn each_line_is_one_text_message() {
        let ((mut sink, _source), mut client) = connected().await;
        let line = encode(&ServerFrame::Pong { id: Some(7) }).unwrap();
        let two = Bytes::from([&line[..], &line[..]].concat());
        sink.write_frames(&[line.clone(), two]).await.unwrap();
        for _ in 0..3 {
            let message = client.next().await.unwrap().unwrap();
            assert_eq!(message, Message::text(r#"{"type":"pong","id":7}"#));
        }
    }

    #[tokio::test]
    async fn binary_is_a_bad_frame_and_reading_goes_on() {
        let ((_sink, mut source), mut client) = connected().await;
        let binary = Message::Binary(Bytes::from_static(b"\x00\x01"));
        client.send(binary).await.unwrap();
        client
            .send(Message::text("{\"type\":\"ping\"}\n"))
            .await
            .unwrap();
        let err = source.read_frame::<ClientFrame>().await.unwrap_err();
        assert!(!err.is_fatal(), "{err}");
        let next: ClientFrame = source.read_frame().await.unwrap().unwrap();
        assert_eq!(next, ClientFrame::Ping { id: None });
        client.close(None).await.unwrap();
        assert!(source.read_frame::<ClientFrame>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_oversize_message_is_fatal() {
        let ((_sink, mut source), mut client) = connected().await;
        let big = "a".repeat(MAX_FRAME + 1);
        let sending = tokio::spawn(async move { client.send(Message::text(big)).await });
        let err = source.read_frame::<ClientFrame>().await.unwrap_err();
        assert!(matches!(err, FrameError::TooLong), "{err}");
        drop(source);
        let _ = sending.await;
    }
}
