//! Getting a byte stream to the origin: TCP to the host (or to a proxy,
//! tunnelled with CONNECT for https), then TLS with ALPN when the scheme
//! asks for it.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{ClientError, Event, HttpVersion, IpFamily, RequestHead};

/// Any stream a connection can run over: TCP, TLS, or a CONNECT tunnel.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

pub type BoxIo = Box<dyn Io>;

/// Where a request goes and how.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Target {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Where to open a TCP connection: a host and port, and perhaps the
/// addresses to use for them (`--resolve`) or the family (`-4`, `-6`).
#[derive(Debug, Clone)]
pub struct Dial {
    pub host: String,
    pub port: u16,
    pub fixed: Option<Vec<IpAddr>>,
    pub family: Option<IpFamily>,
}

/// Connects by TCP to the first address of `host:port` that accepts.
pub async fn tcp(
    dial: &Dial,
    wait: Duration,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<TcpStream, ClientError> {
    let host = &dial.host;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<SocketAddr> = match &dial.fixed {
        Some(fixed) => fixed
            .iter()
            .map(|ip| SocketAddr::new(*ip, dial.port))
            .collect(),
        None => timeout(wait, tokio::net::lookup_host((bare, dial.port)))
            .await
            .map_err(|_| ClientError::Resolve {
                host: host.to_owned(),
                reason: format!("no answer within {wait:?}"),
            })?
            .map_err(|err| ClientError::Resolve {
                host: host.to_owned(),
                reason: err.to_string(),
            })?
            .collect(),
    };
    match dial.family {
        Some(IpFamily::V4) => addrs.retain(SocketAddr::is_ipv4),
        Some(IpFamily::V6) => addrs.retain(SocketAddr::is_ipv6),
        None => {}
    }
    events(Event::Resolved {
        host: host.to_owned(),
        addrs: addrs.clone(),
    });
    let mut last = ClientError::Resolve {
        host: host.to_owned(),
        reason: match dial.family {
            Some(IpFamily::V4) => "no IPv4 addresses".to_owned(),
            Some(IpFamily::V6) => "no IPv6 addresses".to_owned(),
            None => "no addresses".to_owned(),
        },
    };
    for addr in addrs {
        events(Event::Connecting { addr });
        match timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                events(Event::Connected { addr });
                return Ok(stream);
            }
            Ok(Err(err)) if err.kind() == ErrorKind::ConnectionRefused => {
                last = ClientError::Refused { addr };
            }
            Ok(Err(source)) => last = ClientError::Connect { addr, source },
            Err(_) => {
                last = ClientError::ConnectTimeout {
                    addr,
                    timeout: wait,
                }
            }
        }
    }
    Err(last)
}

/// TLS over `io`, offering the protocols `version` allows; returns the
/// stream and whether the server chose HTTP/2.
pub async fn tls(
    io: BoxIo,
    host: &str,
    config: &std::sync::Arc<tls::rustls::ClientConfig>,
    wait: Duration,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<(BoxIo, bool), ClientError> {
    let name = tls::server_name(host)?;
    let connector = tls::TlsConnector::from(config.clone());
    let stream = timeout(wait, connector.connect(name, io))
        .await
        .map_err(|_| ClientError::TlsTimeout {
            host: host.to_owned(),
            timeout: wait,
        })?
        .map_err(|reason| ClientError::Tls {
            host: host.to_owned(),
            reason,
        })?;
    let session = stream.get_ref().1;
    let alpn = session
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let h2 = alpn.as_deref() == Some("h2");
    events(Event::Tls {
        description: tls::describe(session),
        alpn,
    });
    Ok((Box::new(stream), h2))
}

/// Whether the server at `addr` completes a TLS handshake within a second,
/// whatever its certificate: asked when it did not answer plain HTTP.
pub async fn speaks_tls(addr: SocketAddr) -> bool {
    let insecure = tls::ClientOptions {
        insecure: true,
        ca_file: None,
    };
    let (Ok(config), Ok(name)) = (
        tls::client_config(&insecure, &[]),
        tls::server_name(&addr.ip().to_string()),
    ) else {
        return false;
    };
    let handshake = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        tls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .ok()
    };
    matches!(
        timeout(Duration::from_secs(1), handshake).await,
        Ok(Some(_))
    )
}

/// The ALPN protocols to offer for a requested version.
pub fn alpn(version: HttpVersion) -> &'static [&'static [u8]] {
    match version {
        HttpVersion::Auto => &[b"h2", b"http/1.1"],
        HttpVersion::Http1 => &[b"http/1.1"],
        HttpVersion::Http2 => &[b"h2"],
    }
}

/// Opens a tunnel to `target` through an HTTP proxy with CONNECT.
pub async fn tunnel(
    proxy: TcpStream,
    proxy_name: &str,
    target: &Target,
    wait: Duration,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<BoxIo, ClientError> {
    let http = |source| ClientError::Http {
        context: format!("proxy {proxy_name}"),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(proxy))
        .await
        .map_err(http)?;
    tokio::spawn(connection.with_upgrades());
    let authority = target.authority();
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri(&authority)
        .header(http::header::HOST, &authority)
        .body(Empty::<Bytes>::new())
        .map_err(|err| ClientError::InvalidRequest(err.to_string()))?;
    events(Event::Request(RequestHead {
        method: Method::CONNECT,
        target: authority.clone(),
        version: Version::HTTP_11,
        headers: request.headers().clone(),
    }));
    let response = timeout(wait, sender.send_request(request))
        .await
        .map_err(|_| ClientError::ProxyTimeout {
            proxy: proxy_name.to_owned(),
            timeout: wait,
        })?
        .map_err(http)?;
    events(Event::Response(super::ResponseHead {
        version: response.version(),
        status: response.status(),
        headers: response.headers().clone(),
    }));
    if response.status() != StatusCode::OK {
        return Err(ClientError::ProxyRefused {
            proxy: proxy_name.to_owned(),
            target: authority,
            status: response.status(),
        });
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(http)?;
    Ok(Box::new(TokioIo::new(upgraded)))
}

/// A cleartext connection that remembers the first two bytes the server
/// sent, so that an answer HTTP cannot parse can be recognised as a TLS
/// record: the server wants https://.
#[derive(Debug)]
pub struct Sniffed<T> {
    inner: T,
    first: Arc<AtomicU16>,
    seen: bool,
}

/// What a `Sniffed` connection saw first.
#[derive(Debug, Clone, Default)]
pub struct FirstBytes(Arc<AtomicU16>);

impl FirstBytes {
    /// A TLS record starts with its type (20 to 23: alert, handshake...)
    /// and the major version 3.
    pub fn look_like_tls(&self) -> bool {
        let [kind, major] = self.0.load(Ordering::Relaxed).to_be_bytes();
        (20..=23).contains(&kind) && major == 3
    }
}

impl<T> Sniffed<T> {
    pub fn new(inner: T) -> (Self, FirstBytes) {
        let first = FirstBytes::default();
        (
            Self {
                inner,
                first: first.0.clone(),
                seen: false,
            },
            first,
        )
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniffed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if !self.seen && !new.is_empty() {
            let pair = [new[0], new.get(1).copied().unwrap_or(0)];
            self.first
                .store(u16::from_be_bytes(pair), Ordering::Relaxed);
            self.seen = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniffed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
