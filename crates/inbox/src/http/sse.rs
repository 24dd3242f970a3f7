//! `GET /api/v1/events`: the inbox's events as Server-Sent Events, so a
//! page or a test waits for mail instead of polling.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::respond::Body;
use crate::Inbox;

/// A comment this often keeps proxies and idle timers from closing the stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The response body: whatever the forwarding task sends.
struct Stream(mpsc::Receiver<Bytes>);

impl HttpBody for Stream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Subscribes now (so nothing after this request is missed) and streams
/// until the client leaves or the server shuts down.
pub fn stream(inbox: &Inbox, shutdown: CancellationToken) -> Response<Body> {
    let mut events = inbox.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 1000\n: connected\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
                event = events.recv() => match event {
                    Ok(event) => format!("event: {}\ndata: {}\n\n", event.name(), event.data()),
                    // The client missed some; it should reload what it shows.
                    Err(broadcast::error::RecvError::Lagged(_)) => "event: lagged\ndata: {}\n\n".to_owned(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => ": keep-alive\n\n".to_owned(),
            };
            if tx.send(Bytes::from(chunk)).await.is_err() {
                break;
            }
        }
    });
    let mut response = Response::new(Stream(rx).boxed());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
