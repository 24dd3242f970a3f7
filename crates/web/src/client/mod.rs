//! A small HTTP client: HTTP/1.1 and HTTP/2 over TCP or TLS, through an
//! HTTP proxy if asked, following redirects if asked. What happens on the
//! wire is reported as `Event`s for the caller to render (`-v`).

mod connect;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, COOKIE, HOST, LOCATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use connect::{BoxIo, Sniffed, Target};

/// Redirects followed at most, as curl's default for `-L` is generous but
/// a loop must end.
pub const MAX_REDIRECTS: usize = 10;

const DEFAULT_USER_AGENT: &str = concat!("netkit/", env!("CARGO_PKG_VERSION"));

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 when TLS negotiates it, HTTP/1.1 otherwise.
    #[default]
    Auto,
    Http1,
    /// HTTP/2 only: with prior knowledge on cleartext connections.
    Http2,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub tls: tls::ClientOptions,
    /// An HTTP proxy (`http://host:port`) for every request.
    pub proxy: Option<Url>,
    pub version: HttpVersion,
    /// Bounds name resolution, each connection attempt, the TLS handshake
    /// and a proxy's answer to CONNECT.
    pub connect_timeout: Duration,
    /// Redirects to follow; 0 returns the redirect itself.
    pub max_redirects: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tls: tls::ClientOptions::default(),
            proxy: None,
            version: HttpVersion::Auto,
            connect_timeout: Duration::from_secs(10),
            max_redirects: 0,
        }
    }
}

/// Everything that can go wrong in a request. Where there is an underlying
/// cause it is the error's `source`, not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{0}` is not a valid URL")]
    InvalidUrl(String),
    #[error("unsupported scheme `{0}`: use http:// or https://")]
    UnsupportedScheme(String),
    #[error("the proxy must be http://HOST:PORT, not `{0}`")]
    InvalidProxy(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection refused by {addr}: is the server running?")]
    Refused { addr: SocketAddr },
    #[error("cannot connect to {addr}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("timed out after {timeout:?} connecting to {addr}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("TLS handshake with {host} failed: {reason}{}", tls_hint(reason))]
    Tls { host: String, reason: io::Error },
    #[error("TLS handshake with {host} timed out after {timeout:?}")]
    TlsTimeout { host: String, timeout: Duration },
    #[error(transparent)]
    TlsConfig(#[from] tls::Error),
    #[error("proxy {proxy} refused to connect to {target}: {status}")]
    ProxyRefused {
        proxy: String,
        target: String,
        status: StatusCode,
    },
    #[error("proxy {proxy} did not answer CONNECT within {timeout:?}")]
    ProxyTimeout { proxy: String, timeout: Duration },
    #[error("{context}")]
    Http {
        context: String,
        source: hyper::Error,
    },
    #[error("the server at {authority} speaks TLS: try https://")]
    SpeaksTls { authority: String },
    #[error("stopped after {0} redirects")]
    TooManyRedirects(usize),
    #[error("redirect to an invalid location `{0}`")]
    BadRedirect(String),
}

impl ClientError {
    /// Whether the TLS handshake failed because the server's certificate
    /// is not trusted (curl's exit 60) rather than for another reason.
    pub fn is_untrusted_certificate(&self) -> bool {
        match self {
            ClientError::Tls { reason, .. } => reason
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tls::rustls::Error>())
                .is_some_and(|err| {
                    matches!(
                        err,
                        tls::rustls::Error::InvalidCertificate(_)
                            | tls::rustls::Error::NoCertificatesPresented
                    )
                }),
            _ => false,
        }
    }
}

/// For a certificate the client does not trust, what the user can do.
fn tls_hint(reason: &io::Error) -> &'static str {
    let reason = reason.to_string();
    if reason.contains("NotValidForName") {
        " (the certificate is for another name)"
    } else if reason.contains("Expired") || reason.contains("NotValidYet") {
        " (the certificate is outside its validity period)"
    } else if reason.contains("CaUsedAsEndEntity") {
        // What `openssl req -x509` makes unless told otherwise.
        " (the server presents a self-signed CA certificate as its own: \
         trust exactly that certificate with --cacert FILE, or use --insecure)"
    } else if reason.contains("certificate") {
        " (for a test server, use --cacert FILE, or --insecure)"
    } else {
        ""
    }
}

/// A request head as sent, for transcripts.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    /// The request target as on the wire: `/path`, an absolute URL through
    /// a proxy, or `host:port` for CONNECT.
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
}

#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// What happens on the wire, in order.
#[derive(Debug, Clone)]
pub enum Event {
    Connecting {
        addr: SocketAddr,
    },
    Connected {
        addr: SocketAddr,
    },
    Tls {
        description: String,
        alpn: Option<String>,
    },
    Request(RequestHead),
    Response(ResponseHead),
    Redirect {
        location: Url,
    },
}

/// A request: method, URL and extra headers (which replace the defaults
/// of the same name).
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
}

impl ClientRequest {
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
        }
    }
}

/// A response whose body is still to be read.
#[derive(Debug)]
pub struct ClientResponse {
    /// The URL that answered, after any redirects.
    pub url: Url,
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Incoming,
}

impl ClientResponse {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        use http_body_util::BodyExt;
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Http {
                        context: format!("reading the body from {}", self.url),
                        source,
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body in memory; for small responses.
    pub async fn bytes(mut self) -> Result<Vec<u8>, ClientError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    tls: Arc<tls::rustls::ClientConfig>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if let Some(proxy) = &config.proxy
            && (proxy.scheme() != "http" || proxy.host_str().is_none())
        {
            return Err(ClientError::InvalidProxy(proxy.to_string()));
        }
        let tls = tls::client_config(&config.tls, connect::alpn(config.version))?;
        Ok(Self { config, tls })
    }

    /// Parses a URL the way a user types it; `example.com/x` means http.
    pub fn parse_url(text: &str) -> Result<Url, ClientError> {
        let url = match Url::parse(text) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                Url::parse(&format!("http://{text}"))
                    .map_err(|_| ClientError::InvalidUrl(text.to_owned()))?
            }
            Err(_) => return Err(ClientError::InvalidUrl(text.to_owned())),
        };
        target(&url)?;
        Ok(url)
    }

    /// Sends `request`, following redirects as configured, and returns the
    /// final response with its body unread.
    pub async fn send(
        &self,
        mut request: ClientRequest,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Result<ClientResponse, ClientError> {
        let mut redirects = 0;
        loop {
            let response = self.send_once(&request, events).await?;
            let location = response
                .headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok());
            let follow = self.config.max_redirects > 0
                && response.status.is_redirection()
                && response.status != StatusCode::NOT_MODIFIED;
            let Some(location) = location.filter(|_| follow) else {
                return Ok(response);
            };
            if redirects == self.config.max_redirects {
                return Err(ClientError::TooManyRedirects(redirects));
            }
            redirects += 1;
            let next = response
                .url
                .join(location)
                .map_err(|_| ClientError::BadRedirect(location.to_owned()))?;
            target(&next).map_err(|_| ClientError::BadRedirect(location.to_owned()))?;
            events(Event::Redirect {
                location: next.clone(),
            });
            // 303, and 301/302 after anything but GET/HEAD, become GET, as
            // browsers do (RFC 9110 §15.4).
            if response.status == StatusCode::SEE_OTHER
                || (matches!(response.status.as_u16(), 301 | 302)
                    && request.method != Method::GET
                    && request.method != Method::HEAD)
            {
                request.method = Method::GET;
            }
            // Credentials are for the host they were given for.
            if next.host_str() != request.url.host_str()
                || next.port_or_known_default() != request.url.port_or_known_default()
            {
                request.headers.remove(AUTHORIZATION);
                request.headers.remove(COOKIE);
                request.headers.remove(HOST);
            }
            request.url = next;
        }
    }

    async fn send_once(
        &self,
        request: &ClientRequest,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Result<ClientResponse, ClientError> {
        let target = target(&request.url)?;
        let wait = self.config.connect_timeout;
        let via_proxy = self.config.proxy.as_ref();
        let mut first_bytes = None;
        let (io, h2, absolute_form): (BoxIo, bool, bool) = match via_proxy {
            Some(proxy) => {
                let proxy_host = proxy.host_str().expect("checked in new");
                let proxy_port = proxy.port_or_known_default().unwrap_or(3128);
                let proxy_name = format!("{proxy_host}:{proxy_port}");
                let stream = connect::tcp(proxy_host, proxy_port, wait, events).await?;
                if target.tls {
                    let tunnel =
                        connect::tunnel(stream, &proxy_name, &target, wait, events).await?;
                    let (io, h2) =
                        connect::tls(tunnel, &target.host, &self.tls, wait, events).await?;
                    (io, h2, false)
                } else {
                    (Box::new(stream), false, true)
                }
            }
            None => {
                let stream = connect::tcp(&target.host, target.port, wait, events).await?;
                if target.tls {
                    let (io, h2) =
                        connect::tls(Box::new(stream), &target.host, &self.tls, wait, events)
                            .await?;
                    (io, h2, false)
                } else {
                    let addr = stream.peer_addr().ok();
                    let (stream, first) = Sniffed::new(stream);
                    first_bytes = addr.map(|addr| (first, addr));
                    (
                        Box::new(stream),
                        self.config.version == HttpVersion::Http2,
                        false,
                    )
                }
            }
        };
        let (http_request, head) = build(request, &target, h2, absolute_form)?;
        events(Event::Request(head));
        let sent = async {
            if h2 {
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                        .await?;
                tokio::spawn(connection);
                sender.send_request(http_request).await
            } else {
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
                tokio::spawn(connection);
                sender.send_request(http_request).await
            }
        };
        let response = match sent.await {
            Ok(response) => response,
            Err(source) => {
                // A TLS server answers an HTTP request with an alert, or
                // closes: ask it for a TLS handshake to say which it is.
                if let Some((first, addr)) = &first_bytes
                    && (first.look_like_tls() || connect::speaks_tls(*addr).await)
                {
                    return Err(ClientError::SpeaksTls {
                        authority: target.authority(),
                    });
                }
                return Err(ClientError::Http {
                    context: format!("request to {}", request.url),
                    source,
                });
            }
        };
        let (parts, body) = response.into_parts();
        events(Event::Response(ResponseHead {
            version: parts.version,
            status: parts.status,
            headers: parts.headers.clone(),
        }));
        Ok(ClientResponse {
            url: request.url.clone(),
            version: parts.version,
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Host, port and TLS for a URL, or why it cannot be fetched.
fn target(url: &Url) -> Result<Target, ClientError> {
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(ClientError::UnsupportedScheme(other.to_owned())),
    };
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| ClientError::InvalidUrl(url.to_string()))?;
    Ok(Target {
        host: host.to_owned(),
        port: url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 }),
        tls,
    })
}

/// The request as hyper sends it, and its head as shown in transcripts.
fn build(
    request: &ClientRequest,
    target: &Target,
    h2: bool,
    absolute_form: bool,
) -> Result<(Request<Empty<Bytes>>, RequestHead), ClientError> {
    let url = &request.url;
    let mut origin_form = url.path().to_owned();
    if let Some(query) = url.query() {
        origin_form.push('?');
        origin_form.push_str(query);
    }
    let mut without_fragment = url.clone();
    without_fragment.set_fragment(None);
    let (uri, version) = if h2 {
        (without_fragment.to_string(), Version::HTTP_2)
    } else if absolute_form {
        (without_fragment.to_string(), Version::HTTP_11)
    } else {
        (origin_form, Version::HTTP_11)
    };
    let mut headers = HeaderMap::new();
    if !h2 {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or(&target.host)),
            None => url.host_str().unwrap_or(&target.host).to_owned(),
        };
        headers.insert(
            HOST,
            HeaderValue::from_str(&host)
                .map_err(|err| ClientError::InvalidRequest(err.to_string()))?,
        );
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    for name in request.headers.keys() {
        if h2 && name == HOST {
            continue;
        }
        headers.remove(name);
        for value in request.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(&uri)
        .version(version);
    *builder.headers_mut().expect("a fresh builder") = headers.clone();
    let http_request = builder
        .body(Empty::new())
        .map_err(|err| ClientError::InvalidRequest(err.to_string()))?;
    Ok((
        http_request,
        RequestHead {
            method: request.method.clone(),
            target: uri,
            version,
            headers,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_users_type_them() {
        let url = Client::parse_url("127.0.0.1:8080/x?y=1").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/x?y=1");
        assert!(matches!(
            Client::parse_url("ftp://example.com/"),
            Err(ClientError::UnsupportedScheme(_))
        ));
        assert!(Client::parse_url("http://").is_err());
        let t = target(&Client::parse_url("https://[::1]/").unwrap()).unwrap();
        assert_eq!(t.authority(), "[::1]:443");
    }

    #[test]
    fn tls_failures_say_what_to_do() {
        let hint = |text: &str| tls_hint(&io::Error::other(text.to_owned()));
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--cacert"));
        assert!(
            hint("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))")
                .contains("--cacert FILE")
        );
        assert_eq!(hint("received corrupt message"), "");
    }

    #[test]
    fn request_forms() {
        let request =
            ClientRequest::get(Url::parse("http://example.com:8080/a%20b?q=1#frag").unwrap());
        let t = target(&request.url).unwrap();
        let (_, head) = build(&request, &t, false, false).unwrap();
        assert_eq!(head.target, "/a%20b?q=1");
        assert_eq!(head.headers[HOST], "example.com:8080");
        let (_, head) = build(&request, &t, false, true).unwrap();
        assert_eq!(head.target, "http://example.com:8080/a%20b?q=1");
        let (_, head) = build(&request, &t, true, false).unwrap();
        assert_eq!(head.version, Version::HTTP_2);
        assert!(head.headers.get(HOST).is_none());

        let mut custom = request.clone();
        custom
            .headers
            .insert(USER_AGENT, HeaderValue::from_static("me"));
        custom
            .headers
            .append("x-two", HeaderValue::from_static("1"));
        custom
            .headers
            .append("x-two", HeaderValue::from_static("2"));
        let (_, head) = build(&custom, &t, false, false).unwrap();
        assert_eq!(head.headers[USER_AGENT], "me");
        assert_eq!(head.headers.get_all("x-two").iter().count(), 2);
    }
}
