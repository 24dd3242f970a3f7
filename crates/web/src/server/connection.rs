//! One connection: TLS and protocol selection, then hyper serving requests
//! until the client leaves, a timeout strikes, or the server shuts down.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use listener::{Busy, Connection};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::head_errors::HeadErrors;
use super::plain_on_tls;
use super::prefixed::{self, Protocol};
use super::send_timeout::SendTimeout;
use crate::access_log::{AccessEntry, AccessLog, LoggedBody};
use crate::body::Body;
use crate::files::Site;
use crate::settings::{Admission, SiteSettings};
use crate::upload;

/// Request heads (request line and headers) larger than this are refused
/// by hyper itself with 431 (414 when the request line alone is too long,
/// see `head_errors`). Below it, `respond` answers long targets with 414
/// and large headers with 431, each with a page.
const MAX_HEAD: usize = 80 * 1024;
const MAX_HEADERS: usize = 100;
/// Streams one HTTP/2 client may have open at once.
const MAX_STREAMS: u32 = 128;

/// What is served and how; replaced whole by a reload.
#[derive(Debug)]
pub struct Served {
    pub site: Site,
    pub settings: SiteSettings,
}

/// What every connection needs, built once per server.
pub struct Shared {
    /// The site now served; `generation` counts replacements, so a
    /// connection rereads this only after one (a single atomic load per
    /// request otherwise, and no lock).
    served: RwLock<Arc<Served>>,
    generation: AtomicU64,
    tls: Option<tls::TlsAcceptor>,
    log: Option<AccessLog>,
    header_read_timeout: Duration,
    send_timeout: Duration,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Shared {
    pub fn new(
        served: Served,
        tls: Option<tls::TlsAcceptor>,
        log: Option<AccessLog>,
        header_read_timeout: Duration,
        send_timeout: Duration,
    ) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEAD)
            // A client that pipelines requests and then shuts down its
            // sending side (`printf ... | nc`) still gets every answer, as
            // from nginx: EOF ends the connection only once it is idle.
            .half_close(true)
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(MAX_HEAD as u32)
            .keep_alive_interval(header_read_timeout)
            .keep_alive_timeout(header_read_timeout);
        Self {
            served: RwLock::new(Arc::new(served)),
            generation: AtomicU64::new(0),
            tls,
            log,
            header_read_timeout,
            send_timeout,
            http1,
            http2,
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The site now served, and its generation.
    fn current(&self) -> (u64, Arc<Served>) {
        let served = self.served.read().unwrap_or_else(PoisonError::into_inner);
        (self.generation.load(Ordering::Acquire), served.clone())
    }

    pub fn replace(&self, served: Served) {
        let mut current = self.served.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(served);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("generation", &self.generation)
            .field("tls", &self.tls.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .finish_non_exhaustive()
    }
}

/// Serves one connection; `connection.closing()` (shutdown, or the
/// listener reclaiming an idle connection) ends it gracefully.
pub async fn serve(stream: TcpStream, connection: Connection, shared: Arc<Shared>) {
    // Responses are written whole by hyper; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let peer = connection.peer();
    let shutdown = connection.closing();
    // The first byte and the TLS handshake share one deadline.
    let handshake_deadline = tokio::time::Instant::now() + shared.header_read_timeout;
    if shared.tls.is_some() {
        let plain = tokio::select! {
            _ = shutdown.cancelled() => return,
            plain = plain_on_tls::sent_plain_http(&stream, handshake_deadline) => plain,
        };
        if plain {
            debug!(%peer, "plain HTTP on the TLS port");
            return plain_on_tls::answer(stream).await;
        }
    }
    let stream = SendTimeout::new(stream, shared.send_timeout);
    let wait = shared.header_read_timeout;
    let handler = Handler {
        served: RefCell::new(shared.current()),
        shared: shared.clone(),
        client: peer.ip(),
        activity: None,
        connection,
    };
    let outcome = match &shared.tls {
        Some(acceptor) => {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = tokio::time::timeout_at(handshake_deadline, acceptor.accept(stream)) => accepted,
            };
            let stream = match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let protocol = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => Protocol::Http2,
                _ => Protocol::Http1,
            };
            speak(protocol, stream, &shared, handler, shutdown).await
        }
        None => {
            let detected = tokio::select! {
                _ = shutdown.cancelled() => return,
                detected = prefixed::detect(stream, wait) => detected,
            };
            match detected {
                Ok(Some((protocol, stream))) => {
                    speak(protocol, stream, &shared, handler, shutdown).await
                }
                Ok(None) => {
                    debug!(%peer, "closed or silent before a request");
                    return;
                }
                Err(err) => Err(err.into()),
            }
        }
    };
    if let Err(err) = outcome {
        debug!(%peer, %err, "connection ended with an error");
    }
}

async fn speak<S>(
    protocol: Protocol,
    stream: S,
    shared: &Shared,
    handler: Handler,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match protocol {
        Protocol::Http1 => {
            let log = shared.log.clone().map(|log| (log, handler.client));
            let io = TokioIo::new(HeadErrors::new(stream, log));
            // hyper's header read timeout also closes idle keep-alive
            // connections.
            let connection = shared.http1.serve_connection(io, handler);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => return Ok(result?),
                _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            Ok(connection.await?)
        }
        Protocol::Http2 => {
            let io = TokioIo::new(stream);
            let activity = Arc::new(Activity::default());
            let handler = Handler {
                activity: Some(activity.clone()),
                ..handler
            };
            let connection = shared.http2.serve_connection(io, handler);
            tokio::pin!(connection);
            // HTTP/2 has no header read timeout; a connection with nothing
            // in flight and no new request for a whole period is idle.
            let period = shared.header_read_timeout;
            let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            let mut seen = 0;
            loop {
                tokio::select! {
                    result = connection.as_mut() => return Ok(result?),
                    _ = shutdown.cancelled() => break,
                    _ = check.tick() => {
                        let started = activity.started.load(Ordering::Relaxed);
                        if activity.open.load(Ordering::Relaxed) == 0 && started == seen {
                            debug!("closing an idle HTTP/2 connection");
                            break;
                        }
                        seen = started;
                    }
                }
            }
            connection.as_mut().graceful_shutdown();
            Ok(connection.await?)
        }
    }
}

/// What an HTTP/2 connection has been doing, to tell when it is idle.
#[derive(Debug, Default)]
struct Activity {
    /// Requests received so far.
    started: AtomicU64,
    /// Responses whose bodies are still being sent.
    open: AtomicUsize,
}

/// What a refused client is told: 503 with `Retry-After` in cleartext;
/// a TLS client is simply closed, since no handshake is spent on it.
pub fn refusal(tls: bool) -> Option<Vec<u8>> {
    if tls {
        return None;
    }
    const BODY: &str = "<!DOCTYPE html>\n<title>503 Service Unavailable</title>\n\
        <h1>503 Service Unavailable</h1>\n<p>The server is at its connection limit; try again shortly.</p>\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    Some(response.into_bytes())
}

/// Answers each request on one connection.
#[derive(Debug, Clone)]
struct Handler {
    /// The site as this connection last saw it, with its generation.
    served: RefCell<(u64, Arc<Served>)>,
    shared: Arc<Shared>,
    client: IpAddr,
    /// Kept for HTTP/2 connections only.
    activity: Option<Arc<Activity>>,
    /// Told a request is in progress until its response body is done.
    connection: Connection,
}

impl Service<Request<Incoming>> for Handler {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    /// Ready at once, unless credentials must be checked first.
    type Future = Either<
        Ready<Result<Self::Response, Infallible>>,
        Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>,
    >;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let served = self.served();
        let settings = &served.settings;
        let check = match settings.admit(&request, self.client) {
            Admission::Answer(response) => {
                return Either::Left(ready(Ok(self.track(&request, response))));
            }
            Admission::Serve if !upload::is_upload(&served.site, &request) => {
                let response = settings.answer(&served.site, &request);
                return Either::Left(ready(Ok(self.track(&request, response))));
            }
            Admission::Serve => None,
            Admission::Check(check) => Some(check),
        };
        // Credentials to check, or an upload to receive: both wait.
        let handler = self.clone();
        let served = Arc::clone(&served);
        Either::Right(Box::pin(async move {
            let settings = &served.settings;
            if let Some(check) = check
                && let Err(refusal) = check.run().await
            {
                return Ok(handler.track(&request, settings.decorated(&request, refusal)));
            }
            if upload::is_upload(&served.site, &request) {
                let (parts, body) = request.into_parts();
                let head = Request::from_parts(parts, ());
                let response = upload::receive(&served.site, &head, body).await;
                return Ok(handler.track(&head, settings.decorated(&head, response)));
            }
            Ok(handler.track(&request, settings.answer(&served.site, &request)))
        }))
    }
}

impl Handler {
    /// The site to answer with: the one this connection saw last, unless
    /// a reload has replaced it since.
    fn served(&self) -> std::cell::Ref<'_, Arc<Served>> {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if self.served.borrow().0 != generation {
            *self.served.borrow_mut() = self.shared.current();
        }
        std::cell::Ref::map(self.served.borrow(), |(_, served)| served)
    }

    /// Logs the response and, on HTTP/2, counts it as in flight.
    fn track<B>(&self, request: &Request<B>, response: Response<Body>) -> Response<TrackedBody> {
        let pending = self.shared.log.as_ref().map(|log| {
            let mut entry = AccessEntry::start(self.client, request);
            entry.status = response.status().as_u16();
            (entry, log.clone())
        });
        let activity = self.activity.clone();
        if let Some(activity) = &activity {
            activity.started.fetch_add(1, Ordering::Relaxed);
            activity.open.fetch_add(1, Ordering::Relaxed);
        }
        let busy = self.connection.busy();
        response.map(|body| TrackedBody {
            body: LoggedBody::new(body, pending),
            activity,
            _busy: busy,
        })
    }
}

/// A response body that counts as in flight until it is dropped.
#[derive(Debug)]
struct TrackedBody {
    body: LoggedBody,
    activity: Option<Arc<Activity>>,
    /// The connection is idle again once every response body is dropped.
    _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let Some(activity) = &self.activity {
            activity.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
