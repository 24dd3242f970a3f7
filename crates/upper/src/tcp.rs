//! The TCP side: an accept loop bounded by a semaphore, and one task per
//! connection that converts bytes as they arrive.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::{Error, uppercase};

/// Bytes read and written back per step: the whole per-connection memory.
const CHUNK: usize = 16 * 1024;

/// How long to wait before accepting again after an accept error such as
/// running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// A connection that makes no progress (nothing read, or a reply that
    /// cannot be written) for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    config: TcpConfig,
}

impl TcpServer {
    pub async fn bind(addr: SocketAddr, config: TcpConfig) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { listener, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets every
    /// connection write back what it has already read, and returns once all
    /// connections are closed.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let connections = TaskTracker::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = limit.clone().acquire_owned() => permit.expect("semaphore never closed"),
            };
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
            debug!(%peer, "tcp connection accepted");
            let shutdown = shutdown.clone();
            let idle = self.config.idle_timeout;
            connections.spawn(async move {
                match serve(stream, idle, shutdown).await {
                    Ok(Close::Eof) => debug!(%peer, "tcp connection closed by client"),
                    Ok(Close::Idle) => info!(%peer, ?idle, "closing idle tcp connection"),
                    Ok(Close::Shutdown) => debug!(%peer, "tcp connection closed for shutdown"),
                    Err(err) => debug!(%peer, %err, "tcp connection failed"),
                }
                drop(permit);
            });
        }
        connections.close();
        connections.wait().await;
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
    shutdown: CancellationToken,
) -> io::Result<Close> {
    // Replies are often a few bytes; Nagle's algorithm would hold them back
    // waiting for an ACK that delayed-ACK holds back in turn.
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; CHUNK];
    let close = loop {
        let read = tokio::select! {
            _ = shutdown.cancelled() => break Close::Shutdown,
            read = timeout(idle, stream.read(&mut buf)) => read,
        };
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
