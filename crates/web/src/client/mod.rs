//! A small HTTP client: HTTP/1.1 and HTTP/2 over TCP or TLS, through an
//! HTTP proxy if asked, following redirects if asked. What happens on the
//! wire is reported as `Event`s for the caller to render (`-v`).

mod connect;
mod error;
mod pool;
mod request;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cookie_store::{CookieStore, RawCookie};
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use connect::{BoxIo, Dial, Sniffed, Target};
pub use error::ClientError;
use pool::{Pool, Sender};
pub use request::{ClientRequest, RequestBody};

/// Redirects followed at most, as curl's default for `-L` is generous but
/// a loop must end.
pub const MAX_REDIRECTS: usize = 10;

pub(crate) const DEFAULT_USER_AGENT: &str = concat!("netkit/", env!("CARGO_PKG_VERSION"));

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
    /// Addresses to use for `host:port` instead of asking DNS (`--resolve`).
    pub resolve: Vec<Resolve>,
    /// Where to connect instead, for a host and port (`--connect-to`).
    pub connect_to: Vec<ConnectTo>,
    /// Only IPv4 or only IPv6 addresses (`-4`, `-6`).
    pub family: Option<IpFamily>,
}

/// `--resolve host:port:addr[,addr]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

/// `--connect-to HOST1:PORT1:HOST2:PORT2`: an empty part matches any host
/// or port, or keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectTo {
    pub from_host: Option<String>,
    pub from_port: Option<u16>,
    pub to_host: Option<String>,
    pub to_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tls: tls::ClientOptions::default(),
            proxy: None,
            version: HttpVersion::Auto,
            connect_timeout: Duration::from_secs(10),
            max_redirects: 0,
            resolve: Vec::new(),
            connect_to: Vec::new(),
            family: None,
        }
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

/// What happens on the wire, in order, each reported as it happens (so a
/// caller can time them).
#[derive(Debug, Clone)]
pub enum Event {
    Resolved {
        host: String,
        addrs: Vec<SocketAddr>,
    },
    Connecting {
        addr: SocketAddr,
    },
    Connected {
        addr: SocketAddr,
    },
    /// A connection kept from an earlier request is used again.
    Reused {
        authority: String,
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

/// A response whose body is still to be read.
#[derive(Debug)]
pub struct ClientResponse {
    /// The URL that answered, after any redirects.
    pub url: Url,
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Incoming,
    /// Redirects followed to get here.
    pub redirects: usize,
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

/// An HTTP client. Connections are kept and used again for later requests
/// to the same origin (redirects, several URLs), as curl does.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    tls: Arc<tls::rustls::ClientConfig>,
    pool: Pool,
    cookies: Option<Arc<Mutex<CookieStore>>>,
}

/// A redirect body larger than this is not read to keep its connection:
/// the connection is dropped instead.
const DRAIN_LIMIT: usize = 1 << 20;

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if let Some(proxy) = &config.proxy
            && (proxy.scheme() != "http" || proxy.host_str().is_none())
        {
            return Err(ClientError::InvalidProxy(proxy.to_string()));
        }
        let tls = tls::client_config(&config.tls, connect::alpn(config.version))?;
        Ok(Self {
            config,
            tls,
            pool: Pool::default(),
            cookies: None,
        })
    }

    /// Keeps cookies in `store`: sent with every request they match and
    /// updated from every response, redirects included.
    pub fn with_cookies(mut self, store: CookieStore) -> Self {
        self.cookies = Some(Arc::new(Mutex::new(store)));
        self
    }

    /// The cookies as they are now, to be saved (`--cookie-jar`).
    pub fn cookies(&self) -> Option<CookieStore> {
        self.cookies
            .as_ref()
            .map(|store| store.lock().expect("cookie store").clone())
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
            let mut response = self.send_once(&request, events).await?;
            response.redirects = redirects;
            let location = response
                .headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
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
                .join(&location)
                .map_err(|_| ClientError::BadRedirect(location.clone()))?;
            target(&next).map_err(|_| ClientError::BadRedirect(location.clone()))?;
            events(Event::Redirect {
                location: next.clone(),
            });
            // Read the redirect's body so its connection can serve the
            // next request; a large one is not worth it.
            let mut drained = 0;
            while drained <= DRAIN_LIMIT {
                match response.chunk().await {
                    Ok(Some(chunk)) => drained += chunk.len(),
                    _ => break,
                }
            }
            drop(response.body);
            // 303, and 301/302 after a POST, become GET without a body, as
            // curl and browsers do (RFC 9110 §15.4); 307 and 308 repeat the
            // request as it was.
            let status = response.status;
            if (status == StatusCode::SEE_OTHER && request.method != Method::HEAD)
                || (matches!(status.as_u16(), 301 | 302) && request.method == Method::POST)
            {
                request.method = Method::GET;
                request.body = RequestBody::Empty;
                request.headers.remove(CONTENT_TYPE);
                request.headers.remove(CONTENT_LENGTH);
            }
            // Credentials are for the origin they were given for.
            if next.origin() != request.url.origin() {
                request.headers.remove(AUTHORIZATION);
                request.headers.remove(COOKIE);
                request.headers.remove(HOST);
            }
            request.url = next;
        }
    }

    /// Where to open a connection for `target`, after `--connect-to`.
    fn dial(&self, target: &Target) -> Dial {
        let mut host = target.host.clone();
        let mut port = target.port;
        if let Some(rule) = self.config.connect_to.iter().find(|rule| {
            rule.from_host
                .as_ref()
                .is_none_or(|from| from.eq_ignore_ascii_case(&target.host))
                && rule.from_port.is_none_or(|from| from == target.port)
        }) {
            if let Some(to) = &rule.to_host {
                host = to.clone();
            }
            if let Some(to) = rule.to_port {
                port = to;
            }
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let fixed = self
            .config
            .resolve
            .iter()
            .find(|entry| entry.host.eq_ignore_ascii_case(bare) && entry.port == port)
            .map(|entry| entry.addrs.clone());
        Dial {
            host,
            port,
            fixed,
            family: self.config.family,
        }
    }

    async fn connect(
        &self,
        target: &Target,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Result<(Sender, bool), ClientError> {
        let wait = self.config.connect_timeout;
        let mut first_bytes = None;
        let (io, h2, absolute_form): (BoxIo, bool, bool) = match &self.config.proxy {
            Some(proxy) => {
                let proxy_host = proxy.host_str().expect("checked in new");
                let proxy_port = proxy.port_or_known_default().unwrap_or(3128);
                let proxy_name = format!("{proxy_host}:{proxy_port}");
                let dial = Dial {
                    host: proxy_host.to_owned(),
                    port: proxy_port,
                    fixed: None,
                    family: self.config.family,
                };
                let stream = connect::tcp(&dial, wait, events).await?;
                if target.tls {
                    let tunnel = connect::tunnel(stream, &proxy_name, target, wait, events).await?;
                    let (io, h2) =
                        connect::tls(tunnel, &target.host, &self.tls, wait, events).await?;
                    (io, h2, false)
                } else {
                    (Box::new(stream), false, true)
                }
            }
            None => {
                let stream = connect::tcp(&self.dial(target), wait, events).await?;
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
        let handshake = async {
            if h2 {
                let (sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                        .await?;
                tokio::spawn(connection);
                Ok(Sender::H2(sender))
            } else {
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
                tokio::spawn(connection);
                Ok(Sender::H1 {
                    sender,
                    absolute_form,
                    first_bytes,
                })
            }
        };
        let sender = handshake.await.map_err(|source| ClientError::Http {
            context: format!("connecting to {}", target.authority()),
            source,
        })?;
        Ok((sender, absolute_form))
    }

    async fn send_once(
        &self,
        request: &ClientRequest,
        events: &mut (dyn FnMut(Event) + Send),
    ) -> Result<ClientResponse, ClientError> {
        let target = target(&request.url)?;
        let key = format!(
            "{}://{} via {:?}",
            request.url.scheme(),
            target.authority(),
            self.config.proxy.as_ref().map(Url::as_str)
        );
        let mut sender = match self.pool.take(&key).await {
            Some(sender) => {
                events(Event::Reused {
                    authority: target.authority(),
                });
                sender
            }
            None => self.connect(&target, events).await?.0,
        };
        let mut with_cookies = request.clone();
        if let Some(store) = &self.cookies {
            let store = store.lock().expect("cookie store");
            let pairs: Vec<String> = store
                .get_request_values(&request.url)
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            if !pairs.is_empty() {
                let mut value = pairs.join("; ");
                if let Some(given) = request.headers.get(COOKIE).and_then(|v| v.to_str().ok()) {
                    value = format!("{given}; {value}");
                }
                if let Ok(value) = HeaderValue::from_str(&value) {
                    with_cookies.headers.insert(COOKIE, value);
                }
            }
        }
        let body = request.body.open(&request.uploaded).await?;
        let (http_request, head) = request::build(
            &with_cookies,
            &target,
            sender.is_h2(),
            sender.absolute_form(),
            body,
        )?;
        events(Event::Request(head));
        let response = match sender.send(http_request).await {
            Ok(response) => response,
            Err(source) => {
                // A TLS server answers an HTTP request with an alert, or
                // closes: ask it for a TLS handshake to say which it is.
                if let Some((first, addr)) = sender.first_bytes()
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
        self.pool.put(key, sender);
        let (parts, body) = response.into_parts();
        if let Some(store) = &self.cookies {
            let set = parts
                .headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .filter_map(|text| RawCookie::parse(text.to_owned()).ok());
            store
                .lock()
                .expect("cookie store")
                .store_response_cookies(set, &request.url);
        }
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
            redirects: 0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::USER_AGENT;

    fn empty() -> request::Body {
        use http_body_util::BodyExt;
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed()
    }

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
    fn request_forms() {
        let request =
            ClientRequest::get(Url::parse("http://example.com:8080/a%20b?q=1#frag").unwrap());
        let t = target(&request.url).unwrap();
        let (_, head) = request::build(&request, &t, false, false, empty()).unwrap();
        assert_eq!(head.target, "/a%20b?q=1");
        assert_eq!(head.headers[HOST], "example.com:8080");
        let (_, head) = request::build(&request, &t, false, true, empty()).unwrap();
        assert_eq!(head.target, "http://example.com:8080/a%20b?q=1");
        let (_, head) = request::build(&request, &t, true, false, empty()).unwrap();
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
        let (_, head) = request::build(&custom, &t, false, false, empty()).unwrap();
        assert_eq!(head.headers[USER_AGENT], "me");
        assert_eq!(head.headers.get_all("x-two").iter().count(), 2);
    }
}
