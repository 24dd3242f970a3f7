//! The server: the shared listener (limits, idle reclaim, shutdown) on one
//! or more worker threads, and one task per connection speaking HTTP/1.1
//! or HTTP/2 (over TLS when configured) through hyper.

mod connection;
mod head_errors;
mod plain_on_tls;
mod prefixed;
mod send_timeout;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use listener::{Admission, Connection, Handler, Limits, Refusal};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::Error;
use crate::access_log::AccessLog;
use crate::files::{Site, UploadPolicy};
use crate::settings::SiteSettings;

use connection::{Served, Shared};

/// Connections one client may hold by default: a browser opens six per
/// host, and a NAT may hide dozens of browsers behind one address.
pub const MAX_PER_CLIENT: usize = 256;

/// What to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// The small site compiled into the binary.
    BuiltIn,
    Directory(PathBuf),
}

/// What a server serves and how: the part of its configuration that
/// `Reloader::reload` may replace while it runs.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub root: Root,
    /// List directories that have no `index.html`.
    pub list: bool,
    /// Serve dotfiles and dot-directories.
    pub hidden: bool,
    /// Follow symlinks that lead outside the root.
    pub follow_symlinks: bool,
    /// Take uploads into listed directories.
    pub upload: Option<UploadPolicy>,
    /// Headers, caching policy, CORS, Basic auth and pages.
    pub settings: SiteSettings,
}

impl Default for SiteConfig {
    /// The built-in site, with no settings.
    fn default() -> Self {
        Self {
            root: Root::BuiltIn,
            list: false,
            hidden: false,
            follow_symlinks: false,
            upload: None,
            settings: SiteSettings::default(),
        }
    }
}

impl SiteConfig {
    /// Opens the root.
    fn open(&self) -> Result<Served, Error> {
        let site = match &self.root {
            Root::BuiltIn => Site::built_in(),
            Root::Directory(path) => {
                Site::directory(path, self.list, self.hidden, self.follow_symlinks).map_err(
                    |source| Error::Root {
                        path: path.clone(),
                        source,
                    },
                )?
            }
        };
        debug!(site = %site.describe(), "site ready");
        Ok(Served {
            site: site.with_upload(self.upload),
            settings: self.settings.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub site: SiteConfig,
    /// A client must send a complete request head (and, at the start, its
    /// TLS handshake) within this time, or the connection is closed. This
    /// also bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// A response write that makes no progress for this long (a client
    /// that stopped reading) ends the connection.
    pub send_timeout: Duration,
    /// Connections at once, in all and per client. A keep-alive
    /// connection between requests is idle: a full server closes the oldest
    /// such to make room; a refused client gets 503 (cleartext) or is
    /// closed (TLS).
    pub limits: Limits,
    /// Serve HTTPS with this identity (HTTP/2 is offered with ALPN).
    pub tls: Option<tls::Identity>,
    /// Where access log entries go; `None` logs nothing.
    pub access_log: Option<AccessLog>,
    /// Threads that accept and serve connections, each with a
    /// single-threaded runtime of its own (like nginx's workers: no work
    /// stealing, no cross-thread wake-ups). 0 serves on the runtime that
    /// calls `run`, which suits a server embedded in other code.
    pub workers: usize,
}

impl ServerConfig {
    /// The built-in site on `addr`, with the defaults of `netkit web serve`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            site: SiteConfig::default(),
            header_read_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(60),
            limits: Limits {
                max_connections: 10_000,
                max_per_client: MAX_PER_CLIENT,
                max_rate: None,
            },
            tls: None,
            access_log: None,
            workers: 0,
        }
    }
}

#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    admission: Admission,
    workers: usize,
}

impl Server {
    /// Opens the root, prepares TLS and binds; nothing is served until
    /// `run`.
    pub async fn bind(config: ServerConfig) -> Result<Self, Error> {
        let served = config.site.open()?;
        let tls = match &config.tls {
            Some(identity) => Some(tls::TlsAcceptor::from(tls::server_config(
                identity,
                &[b"h2", b"http/1.1"],
            )?)),
            None => None,
        };
        let listener = listener::bind(config.addr).map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
        let shared = Arc::new(Shared::new(
            served,
            tls,
            config.access_log,
            config.header_read_timeout,
            config.send_timeout,
        ));
        Ok(Self {
            listener,
            shared,
            admission: Admission::new(config.limits),
            workers: config.workers,
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

    /// A handle that replaces what this server serves while it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
        }
    }

    /// The base URL clients use: `http://127.0.0.1:8080/`.
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr())
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, lets
    /// every connection finish the request it is serving, and returns when
    /// all are closed. Dropping the returned future before then (a grace
    /// period that ran out) closes every connection at once.
    pub async fn run(self, shutdown: CancellationToken) {
        // Worker threads outlive a dropped future unless told to stop: the
        // guard tells them when this future goes away, finished or not.
        let abort = CancellationToken::new();
        let _abort_on_drop = abort.clone().drop_guard();
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        for index in 0..self.workers {
            match self.start_worker(index, &shutdown, &abort) {
                Ok(worker) => workers.push(worker),
                Err(err) => {
                    warn!(%err, "cannot start a worker thread; serving with fewer");
                    break;
                }
            }
        }
        if workers.is_empty() {
            match TcpListener::from_std(self.listener) {
                Ok(listener) => {
                    let http = Http {
                        shared: self.shared,
                    };
                    listener::accept(listener, &self.admission, http, shutdown).await;
                }
                Err(err) => warn!(%err, "cannot use the listening socket"),
            }
            return;
        }
        // The workers accept on duplicates of the socket. Once they stop,
        // this one would only queue connections nobody accepts.
        drop(self.listener);
        for worker in workers {
            let _ = worker.await;
        }
    }

    /// A thread with its own single-threaded runtime, accepting on a
    /// duplicate of the listening socket; the returned task ends with it.
    /// When `abort` is cancelled the runtime is dropped, and with it every
    /// connection the worker still serves.
    fn start_worker(
        &self,
        index: usize,
        shutdown: &CancellationToken,
        abort: &CancellationToken,
    ) -> std::io::Result<JoinHandle<()>> {
        let listener = self.listener.try_clone()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let http = Http {
            shared: self.shared.clone(),
        };
        let (admission, shutdown) = (self.admission.clone(), shutdown.clone());
        let abort = abort.clone();
        let thread = std::thread::Builder::new()
            .name(format!("web-worker-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(err) => {
                            warn!(%err, "worker cannot use the listening socket");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = listener::accept(listener, &admission, http, shutdown) => {}
                        _ = abort.cancelled() => debug!("worker stopped with connections open"),
                    }
                })
            })?;
        Ok(tokio::task::spawn_blocking(move || {
            let _ = thread.join();
        }))
    }
}

/// Replaces a running server's site: requests that arrive afterwards, on
/// open connections too, are served with the new one; those in progress
/// finish with the old.
#[derive(Debug, Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl Reloader {
    /// Opens the new root first: on an error the old site stays.
    pub fn reload(&self, site: &SiteConfig) -> Result<(), Error> {
        self.shared.replace(site.open()?);
        Ok(())
    }
}

/// What the listener needs of the web server.
struct Http {
    shared: Arc<Shared>,
}

impl Handler for Http {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        connection::serve(stream, connection, self.shared.clone())
    }

    fn refusal(&self, _: Refusal) -> Option<Vec<u8>> {
        connection::refusal(self.shared.is_tls())
    }
}
