//! The server: the shared listener (limits, idle reclaim, shutdown)
//! accepts clients; this refuses those outside `--allow` with 403, and
//! serves each connection with hyper's HTTP/1.1 server, keep-alive and
//! CONNECT upgrades included.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use listener::{Connection, Handler, Listener, Refusal};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::access::{AccessRecord, CacheCode, Hierarchy};
use crate::cache::{Cache, Limits};
use crate::connector::Connector;
use crate::forward;
use crate::stamp::{STAMP, Stamped, Tunnelled};
use crate::state::State;
use crate::stats::{Counted, Stats};
use crate::zerocopy::ClientStream;
use crate::{Config, Error};

/// Idle keep-alive connections kept per origin.
const POOL_PER_HOST: usize = 64;
const POOL_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Proxy {
    listener: Listener,
    state: Arc<State>,
    access_log: Option<mpsc::UnboundedReceiver<AccessRecord>>,
}

impl Proxy {
    /// Opens the cache (indexing what a previous run left) and binds.
    pub async fn bind(config: Config) -> Result<Proxy, Error> {
        if config.max_object_size > config.cache_size {
            return Err(Error::Limits {
                object: config.max_object_size,
                cache: config.cache_size,
            });
        }
        let limits = Limits {
            disk: config.cache_size,
            memory: config.memory_size,
            memory_object: config.memory_object_size,
            object: config.max_object_size,
        };
        let dir = config.cache_dir.clone();
        let cache = tokio::task::spawn_blocking(move || Cache::open(&dir, limits))
            .await
            .expect("cache opening does not panic")
            .map_err(|source| Error::CacheDir {
                path: config.cache_dir.clone(),
                source,
            })?;
        let listener =
            Listener::bind(config.bind, config.limits.clone()).map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?;
        let connector = Connector::new(config.connect_timeout, config.allow_localhost_origins);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(POOL_PER_HOST)
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            config,
            cache,
            client,
            stats: Stats::default(),
            access_log: log_tx,
            shutdown: CancellationToken::new(),
        });
        Ok(Proxy {
            listener,
            state,
            access_log: Some(log_rx),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// One record per request, in the order requests finish. Records are
    /// dropped unless this is taken before `run`.
    pub fn take_access_log(&mut self) -> Option<mpsc::UnboundedReceiver<AccessRecord>> {
        self.access_log.take()
    }

    /// The counters and cache usage now.
    pub fn stats(&self) -> crate::Snapshot {
        self.state.snapshot()
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, lets
    /// requests in progress finish and closes idle keep-alive connections.
    pub async fn run(self, shutdown: CancellationToken) {
        let state = self.state;
        info!(
            entries = state.cache.usage().entries,
            dir = %state.config.cache_dir.display(),
            "cache ready"
        );
        let clients = Clients {
            state: state.clone(),
        };
        let stop_forwarding = async {
            shutdown.cancelled().await;
            state.shutdown.cancel();
        };
        tokio::join!(
            self.listener.run(clients, shutdown.clone()),
            stop_forwarding
        );
    }
}

struct Clients {
    state: Arc<State>,
}

impl Handler for Clients {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        serve(self.state.clone(), stream, connection)
    }

    /// 503 with `Retry-After`, before reading the request.
    fn refusal(&self, refusal: Refusal) -> Option<Vec<u8>> {
        let body = match refusal {
            Refusal::Full => "The proxy is at its connection limit; try again shortly.\n",
            Refusal::PerClient | Refusal::Rate => {
                "Too many connections from your address; try again shortly.\n"
            }
        };
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        Some(response.into_bytes())
    }
}

async fn serve(state: Arc<State>, stream: TcpStream, connection: Connection) {
    let peer = connection.peer();
    let shutdown = connection.closing();
    let _ = stream.set_nodelay(true);
    let client = peer.ip().to_canonical();
    let allowed = is_allowed(&state.config.allow, client);
    if !allowed {
        info!(%peer, "client not in --allow: answering 403");
    }
    let tunnelled = Tunnelled::default();
    let service = {
        let state = state.clone();
        let tunnelled = tunnelled.clone();
        service_fn(move |request| {
            let state = state.clone();
            // Not idle until the response is sent: the guard goes with
            // its body.
            let busy = connection.busy();
            let tunnelled = tunnelled.clone();
            async move {
                let connect = request.method() == http::Method::CONNECT;
                let response = if allowed {
                    forward::handle(state, client, request).await
                } else {
                    forward::deny(&state, client, &request)
                };
                if connect && response.status().is_success() {
                    tunnelled.set();
                }
                let response = response.map(|body| {
                    body.map_frame(move |frame| {
                        let _ = &busy;
                        frame
                    })
                });
                Ok::<_, Infallible>(response)
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.idle_timeout)
        .keep_alive(allowed)
        .serve_connection(
            TokioIo::new(Stamped::new(ClientStream::new(stream), tunnelled)),
            service,
        )
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        debug!(%peer, %err, "client connection ended with an error");
        if let Some(record) = unparsable(&err, client) {
            state.stats.count(Counted::Bypass);
            let _ = state.access_log.send(record);
        }
    }
}

/// The log line for a request hyper could not parse and answered itself
/// (400, 414 or 431, no body), as Squid logs one: `NONE_NONE/400 ... NONE
/// error:invalid-request`. `None` for errors that were not a request.
fn unparsable(err: &hyper::Error, client: IpAddr) -> Option<AccessRecord> {
    if !err.is_parse() || err.is_parse_version_h2() {
        return None;
    }
    let (status, url) = if !err.is_parse_too_large() {
        (StatusCode::BAD_REQUEST, "error:invalid-request")
    } else if err.to_string() == "URI too long" {
        // hyper tells the two apart only in its message.
        (StatusCode::URI_TOO_LONG, "error:request-too-large")
    } else {
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "error:request-too-large",
        )
    };
    // What hyper sends: the status line, `connection`, `content-length`
    // and `date` (29 characters), and what `Stamped` adds.
    let reason = status.canonical_reason().unwrap_or("");
    let head = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).len()
        + "connection: close\r\ncontent-length: 0\r\ndate: \r\n\r\n".len()
        + 29
        + STAMP.len();
    Some(AccessRecord {
        time: SystemTime::now(),
        elapsed: Duration::ZERO,
        client,
        code: CacheCode::None,
        status: status.as_u16(),
        bytes: head as u64,
        method: "NONE".into(),
        url: url.into(),
        hierarchy: Hierarchy::None,
        content_type: None,
    })
}

fn is_allowed(allow: &[ipnet::IpNet], client: IpAddr) -> bool {
    allow.iter().any(|net| net.contains(&client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let loopback = Config::new("127.0.0.1:0".parse().unwrap(), "/tmp".into()).allow;
        assert!(is_allowed(&loopback, "127.0.0.1".parse().unwrap()));
        assert!(is_allowed(&loopback, "127.0.0.2".parse().unwrap()));
        assert!(is_allowed(&loopback, "::1".parse().unwrap()));
        assert!(!is_allowed(&loopback, "192.168.1.10".parse().unwrap()));
        let lan: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(!is_allowed(&lan, "127.0.0.1".parse().unwrap()));
        assert!(is_allowed(&lan, "10.1.2.3".parse().unwrap()));
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse::<IpAddr>().unwrap().to_canonical();
        assert!(is_allowed(&loopback, mapped));
    }
}
