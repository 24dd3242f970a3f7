//! The TCP side: the shared listener (limits, idle reclaim, shutdown), and
//! one task per connection that converts bytes as they arrive.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use listener::{Connection, Handler, Limits, Listener, Refusal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::{Error, uppercase};

/// Bytes read and written back per step: the whole per-connection memory.
const CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// A connection that makes no progress (nothing read, or a reply that
    /// cannot be written) for this long is closed.
    pub idle_timeout: Duration,
    /// Connections at once, in all and per client. A connection waiting
    /// for input is idle: a full server closes the oldest such to make
    /// room. A refused client is simply closed (the protocol has no words).
    pub limits: Limits,
}

/// Connections one client may hold by default: enough for a class lab
/// behind one NAT address.
pub const MAX_PER_CLIENT: usize = 256;

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            limits: Limits {
                max_connections: 10_000,
                max_per_client: MAX_PER_CLIENT,
                max_rate: None,
            },
        }
    }
}

#[derive(Debug)]
pub struct TcpServer {
    listener: Listener,
    config: TcpConfig,
}

impl TcpServer {
    pub async fn bind(addr: SocketAddr, config: TcpConfig) -> Result<Self, Error> {
        let listener = Listener::bind(addr, config.limits.clone())
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { listener, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets
    /// every connection write back what it has already read, and returns
    /// once all connections are closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let handler = Upper {
            idle: self.config.idle_timeout,
        };
        self.listener.run(handler, shutdown).await;
    }
}

#[derive(Debug)]
struct Upper {
    idle: Duration,
}

impl Handler for Upper {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        let idle = self.idle;
        async move {
            let peer = connection.peer();
            match serve(stream, idle, &connection).await {
                Ok(Close::Eof) => debug!(%peer, "tcp connection closed by client"),
                Ok(Close::Idle) => info!(%peer, ?idle, "closing idle tcp connection"),
                Ok(Close::Shutdown) => debug!(%peer, "tcp connection closed for shutdown"),
                Err(err) => debug!(%peer, %err, "tcp connection failed"),
            }
        }
    }

    fn refusal(&self, _: Refusal) -> Option<Vec<u8>> {
        None
    }
}

enum Close {
    Eof,
    Idle,
    Shutdown,
}

async fn serve(
    mut stream: TcpStream,
    idle: Duration,
    connection: &Connection,
) -> io::Result<Close> {
    // Replies are often a few bytes; Nagle's algorithm would hold them back
    // waiting for an ACK that delayed-ACK holds back in turn.
    stream.set_nodelay(true)?;
    let closing = connection.closing();
    let mut buf = vec![0u8; CHUNK];
    let close = loop {
        connection.idle();
        let read = tokio::select! {
            _ = closing.cancelled() => break Close::Shutdown,
            read = timeout(idle, stream.read(&mut buf)) => read,
        };
        connection.active();
        let n = match read {
            Err(_) => break Close::Idle,
            Ok(n) => n?,
        };
        if n == 0 {
            break Close::Eof;
        }
        uppercase(&mut buf[..n]);
        // A client that stops reading stops us reading too (backpressure), but
        // only for as long as the idle timeout allows.
        if timeout(idle, stream.write_all(&buf[..n])).await.is_err() {
            break Close::Idle;
        }
    };
    stream.shutdown().await?;
    Ok(close)
}
