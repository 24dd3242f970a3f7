//! `netkit mail sink`: a small receiving SMTP server for local testing. It
//! speaks enough of RFC 5321 for real clients (EHLO, STARTTLS, AUTH PLAIN,
//! PIPELINING, SIZE, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and stores each
//! message as a file in a Maildir. The shared listener (limits, idle
//! reclaim, shutdown), one task per connection, every read bounded in size
//! and time.

mod answer;
mod maildir;
mod session;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use listener::{Connection, Handler, Limits, Listener, Refusal};
use tls::rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::debug;

pub use maildir::{Committed, Maildir};

use crate::auth::Credentials;
use crate::reply::ReplyCode;

/// Connections one client may hold by default: Postfix's
/// `smtpd_client_connection_count_limit`.
pub const MAX_PER_CLIENT: usize = 50;
/// New connections one client may open per minute by default (Postfix
/// leaves its `smtpd_client_connection_rate_limit` off; a sink for testing
/// wants a bound that no real client reaches).
pub const MAX_RATE: u32 = 600;

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
    /// Connections at once, in all and per client, and new connections
    /// per client per minute. A session waiting for a command is idle: a
    /// full sink closes the oldest such (with 421) to make room.
    pub limits: Limits,
    /// Told of every message once it is stored; the client's 250 waits
    /// until the receiver answers (the web inbox, once it is indexed).
    pub on_stored: Option<mpsc::Sender<Stored>>,
}

/// A message the sink has just made durable in the Maildir.
#[derive(Debug)]
pub struct Stored {
    pub path: PathBuf,
    /// The file's bytes, when the sink still held them all in memory.
    pub content: Option<Vec<u8>>,
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
            max_messages: 1000,
            data_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(60),
            limits: Limits {
                max_connections: 1000,
                max_per_client: MAX_PER_CLIENT,
                max_rate: NonZeroU32::new(MAX_RATE),
            },
            on_stored: None,
        }
    }

    /// Tells `on_stored` of a message and waits for its answer.
    pub(crate) async fn announce(&self, committed: Committed, from: &str, recipients: &[String]) {
        let Some(on_stored) = &self.on_stored else {
            return;
        };
        let (done, answered) = oneshot::channel();
        let stored = Stored {
            path: committed.path,
            content: committed.content,
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
    listener: Listener,
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
        let listener = Listener::bind(addr, config.limits.clone())
            .map_err(|source| SinkError::Bind { addr, source })?;
        Ok(Self {
            listener,
            config: Arc::new(config),
            maildir: Arc::new(maildir),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, tells
    /// idle clients 421, lets a message being received finish, and returns
    /// once every connection is closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let handler = Sessions {
            config: self.config,
            maildir: self.maildir,
        };
        self.listener.run(handler, shutdown).await;
    }
}

#[derive(Debug)]
struct Sessions {
    config: Arc<SinkConfig>,
    maildir: Arc<Maildir>,
}

impl Handler for Sessions {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        let session = session::Session::new(
            stream,
            connection,
            self.config.clone(),
            self.maildir.clone(),
        );
        async move {
            let peer = session.peer();
            match session.run().await {
                Ok(()) => debug!(%peer, "smtp connection closed"),
                Err(err) => debug!(%peer, %err, "smtp connection failed"),
            }
        }
    }

    /// As Postfix refuses: 421 before the greeting, then the close.
    fn refusal(&self, refusal: Refusal) -> Option<Vec<u8>> {
        let text = match refusal {
            Refusal::Full => "4.3.2 Too many connections, try again later",
            Refusal::PerClient => "4.7.0 Too many connections from your address",
            Refusal::Rate => "4.7.0 Too many connections from your address in the last minute",
        };
        let code = ReplyCode::SERVICE_NOT_AVAILABLE;
        Some(format!("{code} {text}\r\n").into_bytes())
    }
}
