//! `netkit mail sink`: a small receiving SMTP server for local testing. It
//! speaks enough of RFC 5321 for real clients (EHLO, STARTTLS, AUTH PLAIN,
//! PIPELINING, SIZE, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and stores each
//! message as a file in a Maildir. A listener bounded by a semaphore, one
//! task per connection, every read bounded in size and time.

mod maildir;
mod session;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tls::rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
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
    pub max_recipients: usize,
    /// A client silent for this long is disconnected.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Told of every message once it is stored; the client's 250 waits
    /// until the receiver answers (the web inbox, once it is indexed).
    pub on_stored: Option<mpsc::Sender<Stored>>,
}

/// A message the sink has just made durable in the Maildir.
#[derive(Debug)]
pub struct Stored {
    pub path: PathBuf,
    /// The envelope: MAIL FROM (empty for the null path) and RCPT TO.
    pub from: String,
    pub recipients: Vec<String>,
    /// Answered (or dropped) by the receiver when it is done with it.
    pub done: oneshot::Sender<()>,
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
            idle_timeout: Duration::from_secs(60),
            max_connections: 1000,
            on_stored: None,
        }
    }

    /// Tells `on_stored` of a message and waits for its answer.
    pub(crate) async fn announce(&self, path: &Path, from: &str, recipients: &[String]) {
        let Some(on_stored) = &self.on_stored else {
            return;
        };
        let (done, answered) = oneshot::channel();
        let stored = Stored {
            path: path.to_owned(),
            from: from.to_owned(),
            recipients: recipients.to_vec(),
            done,
        };
        if on_stored.send(stored).await.is_ok() {
            let _ = answered.await;
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
