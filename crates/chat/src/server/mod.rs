//! The chat server: the shared listener (limits, shutdown) accepting
//! connections (optionally TLS), one session task per connection, the
//! shared room, and the account service.

mod auth;
mod cluster;
mod hashers;
mod keeper;
mod moderation;
mod relay;
mod requests;
mod room;
mod rooms;
mod session;
mod web;
mod writer;

pub use web::CHAT_PATH;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use listener::{Admission, Connection, Handler, Limits, Refusal};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::Error;
use crate::bus::{Bus, ThrottleLimits};
use crate::connection::{FrameReader, FrameWriter};
use crate::frame::{ClusterState, ErrorCode, ServerFrame, encode};
use crate::history::{History, HistoryStore, Retention, SqliteHistory};
use crate::rate::RateConfig;
use crate::store::{AccountStore, SanctionKind, StoreError};
use crate::throttle::{LoginThrottle, RegisterThrottle};
use auth::Auth;
use keeper::Keeper;
use room::Room;
use rooms::Rooms;

/// Connections one address may hold by default: one per user, for a NAT
/// of many users.
pub const MAX_PER_CLIENT: usize = 64;
/// New connections one address may open per minute by default.
pub const MAX_RATE: u32 = 120;
/// How long shutdown waits for the last room changes to be saved.
const SETTLE: Duration = Duration::from_secs(5);

/// The server's limits. Defaults are the documented ones; tests and the
/// benchmark change them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A connection that has not logged in by then is closed.
    pub login_timeout: Duration,
    /// A silent member is pinged after this long and closed after twice it.
    pub keepalive: Duration,
    /// Connections at once, in all and per address, and new connections
    /// per address per minute. Sessions are never idle, so a full server
    /// refuses (`error` / `server_full`) rather than closing anyone.
    pub limits: Limits,
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
    /// Sessions one account may have at once; a login beyond them
    /// replaces the oldest (1: a new login replaces the old one).
    pub sessions_per_user: usize,
    /// TLS on the TCP connection (and on the web listener).
    pub tls: Option<Arc<tls::rustls::ServerConfig>>,
    /// Where to serve the browser client (HTTP and WebSocket), if at all.
    pub web: Option<SocketAddr>,
    /// In a cluster, how long a node may be silent before its sessions
    /// are taken for gone; it beats four times as often.
    pub presence: Duration,
}

/// The largest `max_text` allowed: escaped as JSON (at most six bytes per
/// byte), a message still fits in one frame.
pub const MAX_TEXT_LIMIT: usize = 8 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            login_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
            limits: Limits {
                max_connections: 10_000,
                max_per_client: MAX_PER_CLIENT,
                max_rate: NonZeroU32::new(MAX_RATE),
            },
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
            sessions_per_user: 1,
            tls: None,
            web: None,
            presence: Duration::from_secs(10),
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
    /// In a cluster, whether the link to the other nodes is down.
    pub degraded: AtomicBool,
}

impl Shared {
    /// The `status` a member logging in now is told: only while this
    /// node is cut off from its cluster.
    pub fn status(&self) -> Option<ServerFrame> {
        self.degraded
            .load(Ordering::Acquire)
            .then(|| ServerFrame::Status {
                cluster: ClusterState::Degraded,
                text: cluster::DEGRADED.into(),
            })
    }
}

#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// The browser client's listener, sharing `admission`.
    web: Option<TcpListener>,
    admission: Admission,
    shared: Arc<Shared>,
    /// The cluster this node is in, until `run` starts its link.
    bus: Option<Bus>,
}

impl Server {
    /// A server whose room history lasts as long as it runs.
    pub async fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        accounts: impl AccountStore,
    ) -> Result<Self, Error> {
        let store = SqliteHistory::open_in_memory().map_err(Error::Store)?;
        Self::bind_stored(addr, config, accounts, store).await
    }

    /// A server keeping room history in `store`.
    pub async fn bind_stored(
        addr: SocketAddr,
        config: ServerConfig,
        accounts: impl AccountStore,
        store: impl HistoryStore,
    ) -> Result<Self, Error> {
        Self::bind_with(addr, config, accounts, store, None).await
    }

    /// A node of the cluster `bus` joins, sharing `accounts` and `store`
    /// (PostgreSQL) with the other nodes.
    pub async fn bind_cluster(
        addr: SocketAddr,
        config: ServerConfig,
        accounts: impl AccountStore,
        store: impl HistoryStore,
        bus: Bus,
    ) -> Result<Self, Error> {
        Self::bind_with(addr, config, accounts, store, Some(bus)).await
    }

    async fn bind_with(
        addr: SocketAddr,
        mut config: ServerConfig,
        accounts: impl AccountStore,
        store: impl HistoryStore,
        bus: Option<Bus>,
    ) -> Result<Self, Error> {
        let accounts: Arc<dyn AccountStore> = Arc::new(accounts);
        let node = bus.as_ref().map(Bus::node);
        let uplink = bus.as_ref().map(Bus::uplink);
        let retention = config.history;
        // The stores block (PostgreSQL's on this very runtime), so they are
        // read off its worker threads.
        let stored = accounts.clone();
        let (history, sanctions, kept) = tokio::task::spawn_blocking(move || {
            let history = History::start(store, retention, node)?;
            let mut sanctions = Vec::new();
            for kind in [SanctionKind::Ban, SanctionKind::Mute] {
                sanctions.push(stored.sanctions(kind, None)?);
            }
            Ok((history, sanctions, stored.rooms()?))
        })
        .await
        .map_err(|err| {
            Error::Store(StoreError::Thread(format!(
                "cannot read the store at start-up: {err}"
            )))
        })?
        .map_err(Error::Store)?;
        config.max_text = config.max_text.clamp(1, MAX_TEXT_LIMIT);
        let bind = |addr| {
            listener::bind(addr)
                .and_then(TcpListener::from_std)
                .map_err(|source| Error::Bind { addr, source })
        };
        let listener = bind(addr)?;
        let web = config.web.map(bind).transpose()?;
        let admission = Admission::new(config.limits.clone());
        let throttle = LoginThrottle::new(config.login_failures, config.login_window);
        let registrations = RegisterThrottle::new(
            config.register_per_address,
            config.register_overall,
            config.register_window,
        );
        let throttles = bus.as_ref().map(|bus| {
            bus.throttles(ThrottleLimits {
                login_failures: config.login_failures,
                login_window: config.login_window,
                register_per_address: config.register_per_address,
                register_overall: config.register_overall,
                register_window: config.register_window,
            })
        });
        let keeper = Keeper::start(accounts.clone()).map_err(Error::Store)?;
        let rooms = Rooms::new(
            config.rooms_per_session,
            config.max_rooms,
            uplink.clone(),
            Some(keeper),
        );
        for restored in sanctions {
            rooms.restore(restored);
        }
        rooms.restore_rooms(kept);
        let shared = Shared {
            room: Room::new(
                config.queue,
                config.users_interval,
                config.sessions_per_user,
                node.unwrap_or(0),
                uplink,
            ),
            rooms,
            history: Arc::new(history),
            auth: Auth::new(
                accounts,
                throttle,
                registrations,
                throttles,
                config.login_queue,
            ),
            degraded: AtomicBool::new(false),
            config,
        };
        Ok(Self {
            listener,
            web,
            admission,
            shared: Arc::new(shared),
            bus,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The browser client's address, when it is served.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        let web = self.web.as_ref()?;
        Some(web.local_addr().expect("a bound listener has an address"))
    }

    /// The browser client's URL, when it is served.
    pub fn web_url(&self) -> Option<String> {
        let tls = self.shared.config.tls.is_some();
        self.web_addr().map(|addr| web::url(addr, tls))
    }

    /// Serves until `shutdown` is cancelled; then every session says `bye`
    /// and closes, and `run` returns once all have.
    pub async fn run(self, shutdown: CancellationToken) {
        let tls = self.shared.config.tls.clone().map(tls::TlsAcceptor::from);
        let sessions = Sessions {
            tls: tls.clone(),
            shared: self.shared.clone(),
        };
        let web = async {
            if let Some(socket) = self.web {
                let sessions = web::WebSessions {
                    tls,
                    shared: self.shared.clone(),
                };
                listener::accept(socket, &self.admission, sessions, shutdown.clone()).await;
            }
        };
        let cluster = async {
            if let Some(bus) = self.bus {
                let presence = self.shared.config.presence;
                let arrivals = bus.start(shutdown.clone());
                cluster::follow(&self.shared, arrivals, presence, shutdown.clone()).await;
            }
        };
        tokio::join!(
            self.shared.room.clone().announce_lists(shutdown.clone()),
            listener::accept(self.listener, &self.admission, sessions, shutdown.clone()),
            web,
            cluster,
        );
        // The last room changes are written before the process ends; a
        // store that does not answer does not hold the shutdown for long.
        if timeout(SETTLE, self.shared.rooms.settle()).await.is_err() {
            tracing::warn!("room changes not all saved at shutdown");
        }
    }
}

struct Sessions {
    tls: Option<tls::TlsAcceptor>,
    shared: Arc<Shared>,
}

impl Handler for Sessions {
    fn serve(
        &self,
        stream: TcpStream,
        connection: Connection,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (tls, shared) = (self.tls.clone(), self.shared.clone());
        async move {
            let peer = connection.peer();
            start_session(stream, peer, tls, shared, connection.closing()).await;
        }
    }

    /// An `error` frame, then the close; over TLS just the close, since no
    /// handshake is spent on a refused client.
    fn refusal(&self, refusal: Refusal) -> Option<Vec<u8>> {
        if self.tls.is_some() {
            return None;
        }
        let (code, text) = match refusal {
            Refusal::Full => (ErrorCode::ServerFull, "the server is full; try again later"),
            Refusal::PerClient => (
                ErrorCode::TooManyConnections,
                "too many connections from your address",
            ),
            Refusal::Rate => (
                ErrorCode::TooManyConnections,
                "too many new connections from your address; try again in a minute",
            ),
        };
        let frame = ServerFrame::Error {
            code,
            text: text.to_owned(),
        };
        encode(&frame).ok().map(|line| line.to_vec())
    }
}

async fn start_session(
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
            let (reader, writer) = (FrameReader::new(reader), FrameWriter::new(writer));
            session::serve(reader, writer, peer, shared, shutdown).await;
        }
        Some(acceptor) => {
            let handshake = timeout(shared.config.login_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => {
                    let (reader, writer) = tokio::io::split(stream);
                    let (reader, writer) = (FrameReader::new(reader), FrameWriter::new(writer));
                    session::serve(reader, writer, peer, shared, shutdown).await;
                }
                Ok(Err(err)) => debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}
