//! What every netkit TCP server shares, in the shape of mini-redis's
//! `Listener`: bind, an accept loop that backs off on accept errors, the
//! connection limits, and graceful shutdown with a task tracker. A server
//! gives the listener a [`Handler`]: how to serve one connection, and what
//! to say to one it refuses.
//!
//! # The policy for a full server
//!
//! Every connection is accepted at once, so no client is left unseen in
//! the kernel's backlog. Then, in order:
//!
//! 1. A client (an IPv4 address, or an IPv6 /64) over its new-connection
//!    rate ([`Limits::max_rate`]) or already holding
//!    [`Limits::max_per_client`] connections is refused.
//! 2. Within [`Limits::max_connections`] it is served.
//! 3. At the limit, the connection idle the longest (one that told its
//!    [`Connection`] it waits for the client's next request) is closed to
//!    make room, as nginx reclaims keep-alive connections; the newcomer
//!    takes its slot at once. A client is never refused while idle
//!    connections hold the slots.
//! 4. With nothing idle, the newcomer waits up to [`FULL_WAIT`] for a slot
//!    (or an idle connection) and is refused after that.
//!
//! A refused connection is told why in the protocol's own words (the
//! handler's [`Handler::refusal`]), then closed; refusals are bounded in
//! time and number so a flood of them cannot hold sockets.

mod admission;
mod client;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

pub use admission::{Admission, Arrival, Busy, Connection, FULL_WAIT, Limits, Refusal};
pub use client::Client;

/// Connections the kernel queues before they are accepted (tokio's own
/// default).
const BACKLOG: i32 = 1024;
/// The first pause after an accept error (such as running out of file
/// descriptors); doubled on each error in a row, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a refused client is given to read why.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// What a server gives its listener.
pub trait Handler: Send + Sync + 'static {
    /// Serves one admitted connection until it closes. The server treats
    /// `connection.closing()` as its shutdown signal, and marks the
    /// connection idle while it waits for the client's next request.
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static;

    /// The bytes that tell a refused client why, in the protocol's words;
    /// `None` closes without a word (TLS, or a protocol with no words).
    fn refusal(&self, refusal: Refusal) -> Option<Vec<u8>>;
}

/// Binds with the options a server wants: address reuse (a restart does
/// not wait for TIME_WAIT), non-blocking, and a deep backlog. A std
/// listener, so it can be shared by several runtimes (`try_clone`).
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A bound socket and its limits, for a server with one accept loop.
#[derive(Debug)]
pub struct Listener {
    socket: TcpListener,
    admission: Admission,
}

impl Listener {
    /// Binds `addr`; must be called within a tokio runtime.
    pub fn bind(addr: SocketAddr, limits: Limits) -> io::Result<Self> {
        Ok(Self {
            socket: TcpListener::from_std(bind(addr)?)?,
            admission: Admission::new(limits),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and
    /// returns once every connection has closed.
    pub async fn run<H: Handler>(self, handler: H, shutdown: CancellationToken) {
        accept(self.socket, &self.admission, handler, shutdown).await;
    }
}

/// The accept loop: admits or refuses each connection by the policy in the
/// crate docs, serves admitted ones on tasks of their own, and after
/// `shutdown` closes the socket (new clients are refused, not left
/// waiting) and waits for every connection it started. Several loops may
/// share one `admission`.
pub async fn accept<H: Handler>(
    socket: TcpListener,
    admission: &Admission,
    handler: H,
    shutdown: CancellationToken,
) {
    let handler = Arc::new(handler);
    let tasks = TaskTracker::new();
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                accepted
            }
            Err(err) => {
                warn!(%err, ?backoff, "accept failed; backing off");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let arrival = match admission.arrive(peer) {
            Ok(arrival) => arrival,
            Err(refusal) => {
                debug!(%peer, ?refusal, "connection refused");
                refuse(&tasks, &handler, &refusing, admission, stream, refusal);
                continue;
            }
        };
        let (handler, shutdown, refusing, admission) = (
            handler.clone(),
            shutdown.clone(),
            refusing.clone(),
            admission.clone(),
        );
        let inner = tasks.clone();
        tasks.spawn(async move {
            match arrival.admit(&shutdown).await {
                Some(connection) => {
                    debug!(%peer, "connection accepted");
                    handler.serve(stream, connection).await;
                }
                None if shutdown.is_cancelled() => {}
                None => {
                    debug!(%peer, "server full: connection refused");
                    refuse(
                        &inner,
                        &handler,
                        &refusing,
                        &admission,
                        stream,
                        Refusal::Full,
                    );
                }
            }
        });
    }
    drop(socket);
    tasks.close();
    tasks.wait().await;
}

/// Says why and closes, on a task of its own, bounded in time; past as
/// many refusals in flight as the server has slots, closes without a word.
fn refuse<H: Handler>(
    tasks: &TaskTracker,
    handler: &Arc<H>,
    refusing: &Arc<AtomicUsize>,
    admission: &Admission,
    mut stream: TcpStream,
    refusal: Refusal,
) {
    let Some(words) = handler.refusal(refusal) else {
        return;
    };
    if refusing.fetch_add(1, Ordering::Relaxed) >= admission.limits().max_connections {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tasks.spawn(async move {
        let _ = tokio::time::timeout(REFUSE_LINGER, async {
            stream.write_all(&words).await?;
            stream.shutdown().await?;
            // Read what the client sent, so closing does not reset the
            // connection before the client has read the answer.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}
