//! The browser client's listener (`--web`): HTTP/1.1 that serves the
//! client's page, script and style (built into the binary) and upgrades
//! `/chat` to a WebSocket, over which the same session as on TCP runs.
//! It shares the chat listener's limits: one count of connections per
//! client, whichever port they came in on.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use listener::{Connection, Handler, Refusal};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use super::{Shared, session};
use crate::websocket;

/// Where the client's page opens its WebSocket.
pub const CHAT_PATH: &str = "/chat";

/// The largest request head read: the client's requests are small.
const MAX_HEAD: usize = 16 * 1024;

/// Everything a page needs is here, so nothing else may load or run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The browser client: path, type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "/chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/chat.js"),
    ),
    (
        "/chat.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/chat.css"),
    ),
];

pub(super) struct WebSessions {
    pub tls: Option<tls::TlsAcceptor>,
    pub shared: Arc<Shared>,
}

impl Handler for WebSessions {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (tls, shared) = (self.tls.clone(), self.shared.clone());
        async move {
            let _ = stream.set_nodelay(true);
            let peer = connection.peer();
            match tls {
                None => serve_http(stream, connection, shared).await,
                Some(acceptor) => {
                    let handshake = timeout(shared.config.login_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_http(stream, connection, shared).await,
                        Ok(Err(err)) => debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        }
    }

    /// 503 with `Retry-After`, as the web server says it; over TLS just
    /// the close.
    fn refusal(&self, refusal: Refusal) -> Option<Vec<u8>> {
        if self.tls.is_some() {
            return None;
        }
        let body = match refusal {
            Refusal::Full => "the server is full; try again later\n",
            Refusal::PerClient => "too many connections from your address\n",
            Refusal::Rate => "too many new connections from your address; try again in a minute\n",
        };
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        Some(response.into_bytes())
    }
}

/// Answers requests until the connection closes or becomes a WebSocket;
/// then runs the chat session on it.
async fn serve_http<S>(stream: S, connection: Connection, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer();
    let closing = connection.closing();
    let upgrade: Mutex<Option<OnUpgrade>> = Mutex::new(None);
    connection.idle();
    let service = service_fn(|request| {
        let busy = connection.busy();
        let response = respond(request, &upgrade);
        async move {
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.login_timeout)
        .max_buf_size(MAX_HEAD);
    let http = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let served = tokio::select! {
        served = http => served,
        _ = closing.cancelled() => return,
    };
    if let Err(err) = served {
        debug!(%peer, %err, "HTTP connection failed");
        return;
    }
    let Some(upgrade) = upgrade.lock().map(|mut slot| slot.take()).ok().flatten() else {
        return;
    };
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(err) => {
            debug!(%peer, %err, "WebSocket upgrade failed");
            return;
        }
    };
    connection.active();
    let (sink, source) = websocket::split(TokioIo::new(upgraded), Role::Server).await;
    session::serve(source, sink, peer, shared, closing).await;
}

fn respond(
    mut request: Request<Incoming>,
    upgrade: &Mutex<Option<OnUpgrade>>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path == CHAT_PATH {
        return match handshake(&request) {
            Ok(accept) => {
                if let Ok(mut slot) = upgrade.lock() {
                    *slot = Some(hyper::upgrade::on(&mut request));
                }
                let mut response = Response::new(Full::default());
                *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let headers = response.headers_mut();
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
                response
            }
            Err((status, why)) => plain(status, why),
        };
    }
    let Some((_, kind, body)) = ASSETS.iter().find(|(at, ..)| *at == path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        let allow = HeaderValue::from_static("GET, HEAD");
        response.headers_mut().insert(header::ALLOW, allow);
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Checks a WebSocket opening handshake (RFC 6455 §4.2.1) and returns the
/// `Sec-WebSocket-Accept` value. A page from another origin may not open
/// one: its script would act with whatever the user typed into it.
fn handshake(request: &Request<Incoming>) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if request.method() != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket opens with GET\n",
        ));
    }
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this is the chat's WebSocket: open it with a WebSocket client\n",
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err((
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version must be 13\n",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n"));
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, host)| host.as_bytes());
        if host.is_none() || origin_host != host {
            return Err((
                StatusCode::FORBIDDEN,
                "a page from another origin may not open the chat\n",
            ));
        }
    }
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "cannot answer the key\n"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The address a browser opens for a server listening on `addr`.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}/")
}
