//! The chat server: a listener that accepts connections (optionally TLS)
//! under a connection limit, one session task per connection, the shared
//! room, and the account service.

mod auth;
mod hashers;
mod requests;
mod room;
mod rooms;
mod session;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::Error;
use crate::history::{History, HistoryStore, Retention, SqliteHistory};
use crate::rate::RateConfig;
use crate::store::Accounts;
use crate::throttle::{LoginThrottle, RegisterThrottle};
use auth::Auth;
use room::Room;
use rooms::Rooms;

/// How long to wait before accepting again after an accept error such as
/// running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server's limits. Defaults are the documented ones; tests and the
/// benchmark change them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A connection that has not logged in by then is closed.
    pub login_timeout: Duration,
    /// A silent member is pinged after this long and closed after twice it.
    pub keepalive: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The longest message text, in bytes.
    pub max_text: usize,
    /// Frames per client: burst, steady rate, and refusals before a kick.
    pub rate: RateConfig,
    /// Room events a member may fall behind before it is disconnected.
    pub queue: usize,
    /// Failed logins per account and per address within `login_window`
    /// before further attempts are refused.
    pub login_failures: u32,
    pub login_window: Duration,
    /// New accounts per client address, and from all addresses together,
    /// within `register_window`.
    pub register_per_address: u32,
    pub register_overall: u32,
    pub register_window: Duration,
    /// Logins that may wait for a password hashing thread before more are
    /// refused with `busy`.
    pub login_queue: usize,
    /// Named rooms one session may be in at once, and rooms the server
    /// keeps (each exists while someone is in it).
    pub rooms_per_session: usize,
    pub max_rooms: usize,
    /// Room history: how much each room keeps, and how many of its latest
    /// messages a `join` replays.
    pub history: Retention,
    pub history_on_join: usize,
    /// The least time between two broadcasts of the user list.
    pub users_interval: Duration,
    /// TLS on the TCP connection.
    pub tls: Option<Arc<tls::rustls::ServerConfig>>,
}

/// The largest `max_text` allowed: escaped as JSON (at most six bytes per
/// byte), a message still fits in one frame.
pub const MAX_TEXT_LIMIT: usize = 8 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            login_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
            max_connections: 10_000,
            max_text: 4096,
            rate: RateConfig::default(),
            queue: 1024,
            login_failures: 5,
            login_window: Duration::from_secs(60),
            register_per_address: 10,
            register_overall: 100,
            register_window: Duration::from_secs(600),
            login_queue: 1024,
            rooms_per_session: 100,
            max_rooms: 10_000,
            history: Retention {
                per_room: 1000,
                max_age: Duration::from_secs(30 * 24 * 3600),
            },
            history_on_join: 50,
            users_interval: Duration::from_millis(250),
            tls: None,
        }
    }
}

/// What every session shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub room: Arc<Room>,
    pub rooms: Rooms,
    pub history: Arc<History>,
    pub auth: Auth,
}

#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// A server whose room history lasts as long as it runs.
    pub async fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        accounts: Accounts,
    ) -> Result<Self, Error> {
        let store = SqliteHistory::open_in_memory().map_err(Error::Store)?;
        Self::bind_stored(addr, config, accounts, store).await
    }

    /// A server keeping room history in `store`.
    pub async fn bind_stored(
        addr: SocketAddr,
        mut config: ServerConfig,
        accounts: Accounts,
        store: impl HistoryStore,
    ) -> Result<Self, Error> {
        let history = History::start(store, config.history).map_err(Error::Store)?;
        config.max_text = config.max_text.clamp(1, MAX_TEXT_LIMIT);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let throttle = LoginThrottle::new(config.login_failures, config.login_window);
        let registrations = RegisterThrottle::new(
            config.register_per_address,
            config.register_overall,
            config.register_window,
        );
        let shared = Shared {
            room: Room::new(config.queue, config.users_interval),
            rooms: Rooms::new(config.rooms_per_session, config.max_rooms),
            history: Arc::new(history),
            auth: Auth::new(accounts, throttle, registrations, config.login_queue),
            config,
        };
        Ok(Self {
            listener,
            shared: Arc::new(shared),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled; then every session says `bye`
    /// and closes, and `run` returns once all have.
    pub async fn run(self, shutdown: CancellationToken) {
        let limit = Arc::new(Semaphore::new(self.shared.config.max_connections.max(1)));
        let sessions = TaskTracker::new();
        let tls = self.shared.config.tls.clone().map(tls::TlsAcceptor::from);
        sessions.spawn(self.shared.room.clone().announce_lists(shutdown.clone()));
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
            debug!(%peer, "connection accepted");
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            let tls = tls.clone();
            sessions.spawn(async move {
                connection(stream, peer, tls, shared, shutdown).await;
                drop(permit);
            });
        }
        sessions.close();
        sessions.wait().await;
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    // Chat lines are small and latency matters; batching is done above.
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let (reader, writer) = stream.into_split();
            session::serve(reader, writer, peer, shared, shutdown).await;
        }
        Some(acceptor) => {
            let handshake = timeout(shared.config.login_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => {
                    let (reader, writer) = tokio::io::split(stream);
                    session::serve(reader, writer, peer, shared, shutdown).await;
                }
                Ok(Err(err)) => debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}
