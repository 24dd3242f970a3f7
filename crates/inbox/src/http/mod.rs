//! The inbox over HTTP/1.1: a listener bounded by a semaphore, optional
//! TLS, optional Basic auth, one task per connection, and the router in
//! front of the JSON API and the HTML pages.

mod api;
mod pages;
mod respond;
mod sse;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tls::rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};
use web::{BasicAuth, Gate};

use crate::Inbox;
use respond::Body;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
const HEADER_READ: Duration = Duration::from_secs(30);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
    /// Ask every request, pages and API alike, for these credentials.
    pub auth: Option<BasicAuth>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot bind the web inbox to {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

#[derive(Debug)]
pub struct WebServer {
    listener: TcpListener,
    inbox: Arc<Inbox>,
    tls: Option<Arc<ServerConfig>>,
    auth: Option<BasicAuth>,
}

/// What every request handler can reach.
#[derive(Debug, Clone)]
struct State {
    inbox: Arc<Inbox>,
    shutdown: CancellationToken,
    auth: Option<BasicAuth>,
}

impl WebServer {
    pub async fn bind(
        addr: SocketAddr,
        inbox: Arc<Inbox>,
        config: WebConfig,
    ) -> Result<Self, WebError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        Ok(Self {
            listener,
            inbox,
            tls: config.tls,
            auth: config.auth,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The page's URL, for people to open.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr())
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight
    /// finish (event streams end at once).
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let connections = TaskTracker::new();
        let state = State {
            inbox: self.inbox.clone(),
            shutdown: shutdown.clone(),
            auth: self.auth.clone(),
        };
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = limit.clone().acquire_owned() => permit.expect("semaphore never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        warn!(%err, "accept failed; backing off");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let tls = self.tls.clone().map(tls::TlsAcceptor::from);
            let state = state.clone();
            connections.spawn(async move {
                match tls {
                    None => serve(TokioIo::new(stream), peer.ip(), state).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => serve(TokioIo::new(stream), peer.ip(), state).await,
                            Ok(Err(err)) => debug!(%peer, %err, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                drop(permit);
            });
        }
        connections.close();
        connections.wait().await;
    }
}

async fn serve<I>(io: TokioIo<I>, peer: IpAddr, state: State)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = state.shutdown.clone();
    let handler = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(route(request, peer, state).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .serve_connection(io, handler);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        debug!(%err, "web connection ended");
    }
}

async fn route(request: Request<Incoming>, peer: IpAddr, state: State) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let refused = match &state.auth {
        Some(auth) => authenticate(auth, &request, peer).await,
        None => None,
    };
    let mut response = if let Some(refusal) = refused {
        refusal
    } else if !respond::same_origin(&request) {
        respond::error(
            StatusCode::FORBIDDEN,
            "cross-site requests may not change the inbox",
        )
    } else if let Some(rest) = path.strip_prefix("/api/v1/") {
        api::route(request, rest, &state).await
    } else {
        pages::route(request, &path, &state).await
    };
    respond::secure(&mut response);
    debug!(%method, %path, status = response.status().as_u16(), "web request");
    response
}

/// `None` when the request carries a valid user and password; otherwise
/// the answer: 401 with a challenge, or 429 for a client that failed too
/// often. The hash is checked on a blocking thread.
async fn authenticate<B>(
    auth: &BasicAuth,
    request: &Request<B>,
    peer: IpAddr,
) -> Option<Response<Body>> {
    let refusal = match auth.gate(request, peer) {
        Gate::Refuse(refusal) => refusal,
        Gate::Verify { user, password } => {
            let checker = auth.clone();
            let verified =
                tokio::task::spawn_blocking(move || checker.verify(peer, &user, &password))
                    .await
                    .unwrap_or(false);
            if verified {
                return None;
            }
            auth.challenge()
        }
    };
    // The status and the headers that matter; the body in the inbox's shape.
    let mut response = respond::error(
        refusal.status(),
        "this inbox needs a user name and password",
    );
    for name in [http::header::WWW_AUTHENTICATE, http::header::RETRY_AFTER] {
        if let Some(value) = refusal.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Some(response)
}

/// Runs index work off the async threads.
async fn blocking<T, F>(state: &State, work: F) -> Result<T, crate::InboxError>
where
    F: FnOnce(&Inbox) -> Result<T, crate::InboxError> + Send + 'static,
    T: Send + 'static,
{
    let inbox = state.inbox.clone();
    tokio::task::spawn_blocking(move || work(&inbox))
        .await
        .unwrap_or_else(|err| Err(crate::InboxError::Failed(err.to_string())))
}

/// A method the route does not take.
fn not_allowed(allowed: &[Method]) -> Response<Body> {
    let mut response = respond::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = allow.parse() {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}
