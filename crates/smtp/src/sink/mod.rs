//! `netkit mail sink`: a small receiving SMTP server for local testing. It
//! speaks enough of RFC 5321 for real clients (EHLO, STARTTLS, AUTH PLAIN,
//! PIPELINING, SIZE, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and stores each
//! message as a file in a Maildir. A listener bounded by a semaphore, one
//! task per connection, every read bounded in size and time.

mod answer;
mod maildir;
mod session;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tls::rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

pub use maildir::Maildir;

use crate::auth::Credentials;

const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The name the server gives in its greeting.
    pub hostname: String,
    /// Offered as STARTTLS when set.
    pub tls: Option<Arc<ServerConfig>>,
    /// The one account AUTH PLAIN accepts.
    pub account: Credentials,
    /// Refuse MAIL before AUTH.
    pub require_auth: bool,
    /// Messages larger than this are refused (advertised as SIZE).
    pub max_message_size: u64,
    /// Recipients of one message; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Messages in one session; the next MAIL gets `421 4.7.0` and the
    /// connection is closed.
    pub max_messages: usize,
    /// The longest one message transfer (DATA to the final dot) may take,
    /// however steadily the client sends: then `421 4.7.0` and close.
    pub data_timeout: Duration,
    /// A client silent for this long is disconnected.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl SinkConfig {
    pub fn new(account: Credentials) -> Self {
        Self {
            hostname: "localhost".to_owned(),
            tls: None,
            account,
            require_auth: false,
            max_message_size: 32 * 1024 * 1024,
            max_recipients: 100,
            max_messages: 1000,
            data_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot use {path} as a maildir: {source}")]
    Maildir { path: PathBuf, source: io::Error },
}

#[derive(Debug)]
pub struct Sink {
    listener: TcpListener,
    config: Arc<SinkConfig>,
    maildir: Arc<Maildir>,
}

impl Sink {
    pub async fn bind(
        addr: SocketAddr,
        maildir: PathBuf,
        config: SinkConfig,
    ) -> Result<Self, SinkError> {
        let maildir = Maildir::create(maildir, &config.hostname)
            .map_err(|(path, source)| SinkError::Maildir { path, source })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SinkError::Bind { addr, source })?;
        Ok(Self {
            listener,
            config: Arc::new(config),
            maildir: Arc::new(maildir),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, tells
    /// idle clients 421, lets a message being received finish, and returns
    /// once every connection is closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let connections = TaskTracker::new();
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
            debug!(%peer, "smtp connection accepted");
            let session = session::Session::new(
                stream,
                peer,
                self.config.clone(),
                self.maildir.clone(),
                shutdown.clone(),
            );
            connections.spawn(async move {
                match session.run().await {
                    Ok(()) => debug!(%peer, "smtp connection closed"),
                    Err(err) => debug!(%peer, %err, "smtp connection failed"),
                }
                drop(permit);
            });
        }
        connections.close();
        connections.wait().await;
    }
}
