//! The server: a listener that accepts connections up to a limit, and one
//! task per connection speaking HTTP/1.1 or HTTP/2 (over TLS when
//! configured) through hyper.

mod connection;
mod prefixed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::Error;
use crate::access_log::AccessLog;
use crate::files::Site;

use connection::Shared;

/// How long to wait before accepting again after an accept error such as
/// running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// The small site compiled into the binary.
    BuiltIn,
    Directory(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub root: Root,
    /// List directories that have no `index.html`.
    pub list: bool,
    /// Serve dotfiles and dot-directories.
    pub hidden: bool,
    /// Follow symlinks that lead outside the root.
    pub follow_symlinks: bool,
    /// A client must send a complete request head (and, at the start, its
    /// TLS handshake) within this time, or the connection is closed. This
    /// also bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are answered with 503 and closed.
    pub max_connections: usize,
    /// Serve HTTPS with this identity (HTTP/2 is offered with ALPN).
    pub tls: Option<tls::Identity>,
    /// Where access log entries go; `None` logs nothing.
    pub access_log: Option<AccessLog>,
}

impl ServerConfig {
    /// The built-in site on `addr`, with the defaults of `netkit web serve`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            root: Root::BuiltIn,
            list: false,
            hidden: false,
            follow_symlinks: false,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            tls: None,
            access_log: None,
        }
    }
}

#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
}

impl Server {
    /// Opens the root, prepares TLS and binds; nothing is served until
    /// `run`.
    pub async fn bind(config: ServerConfig) -> Result<Self, Error> {
        let site = match &config.root {
            Root::BuiltIn => Site::built_in(),
            Root::Directory(path) => {
                Site::directory(path, config.list, config.hidden, config.follow_symlinks).map_err(
                    |source| Error::Root {
                        path: path.clone(),
                        source,
                    },
                )?
            }
        };
        let tls = match &config.tls {
            Some(identity) => Some(tls::TlsAcceptor::from(tls::server_config(
                identity,
                &[b"h2", b"http/1.1"],
            )?)),
            None => None,
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
        debug!(site = %site.describe(), "site ready");
        let shared = Arc::new(Shared::new(
            site,
            tls,
            config.access_log,
            config.header_read_timeout,
        ));
        Ok(Self {
            listener,
            shared,
            max_connections: config.max_connections.max(1),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn is_tls(&self) -> bool {
        self.shared.is_tls()
    }

    /// The base URL clients use: `http://127.0.0.1:8080/`.
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr())
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, lets
    /// every connection finish the request it is serving, and returns when
    /// all are closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    warn!(%err, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                debug!(%peer, "connection limit reached");
                connections.spawn(connection::refuse(stream, self.shared.is_tls()));
                continue;
            };
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                connection::serve(stream, peer, shared, shutdown).await;
                drop(permit);
            });
        }
        connections.close();
        connections.wait().await;
    }
}
