//! Connections to origins: hyper-util's connector (connect timeout,
//! `TCP_NODELAY`) with one change. Small origins write a response's head
//! and body apart with Nagle on, so the body waits for our ACK of the head;
//! on a reused connection Linux delays that ACK (40 ms at least), and every
//! response through the pool would stall for it. Each read that brings data
//! is therefore followed by `TCP_QUICKACK`, which sends the pending ACK now.
//!
//! Unless `--allow-localhost-origins`, it also refuses to connect to the
//! proxy's own host: a literal address here, a name in its resolver.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::guard::{self, OwnAddress, Resolver};

#[derive(Debug, Clone)]
pub struct Connector {
    inner: HttpConnector<Resolver>,
    allow_own: bool,
}

impl Connector {
    pub fn new(connect_timeout: Duration, allow_own: bool) -> Connector {
        let mut inner = HttpConnector::new_with_resolver(Resolver::new(allow_own));
        inner.set_connect_timeout(Some(connect_timeout));
        inner.set_nodelay(true);
        Connector { inner, allow_own }
    }
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<OriginStream>, BoxError>> + Send + 'static>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Uri> for Connector {
    type Response = TokioIo<OriginStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let literal = uri
            .host()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<IpAddr>().ok());
        if let Some(ip) = literal
            && !self.allow_own
            && guard::is_own(ip)
        {
            return Box::pin(async { Err(OwnAddress.into()) });
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let stream = connecting.await?.into_inner();
            Ok(TokioIo::new(OriginStream { stream }))
        })
    }
}

/// A connection to an origin that acknowledges what it reads at once.
#[derive(Debug)]
pub struct OriginStream {
    stream: TcpStream,
}

impl Connection for OriginStream {
    fn connected(&self) -> Connected {
        self.stream.connected()
    }
}

impl AsyncRead for OriginStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            // Not permanent: the kernel may go back to delaying, so after
            // every read. A failure only costs the delay it would have saved.
            let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for OriginStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
