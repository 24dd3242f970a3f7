//! The client: connects (optionally over TLS), checks the protocol version,
//! registers or logs in with a fresh session key and a UDP port for direct
//! messages, then reports what happens as [`Event`]s while the caller says
//! things, asks for the user list and sends direct messages.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::debug;

use crate::Error;
use crate::connection::{Connection, FrameReader, FrameWriter};
use crate::direct::{
    Ack, Inbox, MAX_DATAGRAM, PublicKey, Received, Rejection, SessionKey, datagram,
};
pub use crate::event::Event;
use crate::frame::{
    Action, BanEntry, ClientFrame, Credentials, ErrorCode, OLDEST_VERSION, PROTOCOL_VERSION,
    Password, Relay, RoomInfo, ServerFrame, UserEntry,
};

/// Events waiting for the caller before the client stops reading the
/// server (which then sees a slow consumer).
const EVENT_QUEUE: usize = 1024;

/// How long to wait before asking again when the server answers `busy`.
const BUSY_RETRY: Duration = Duration::from_millis(200);

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

type Writer = FrameWriter<WriteHalf<Box<dyn Stream>>>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `HOST:PORT`.
    pub server: String,
    /// TLS, with these trust settings.
    pub tls: Option<tls::ClientOptions>,
    /// Bounds connecting, the handshake and the login.
    pub timeout: Duration,
    /// Receive direct messages over UDP; without, every direct message
    /// goes through the server, as a browser's do.
    pub udp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Login,
    /// Create the account, then be logged in.
    Register,
}

/// How long a direct message sent over UDP waits for its
/// acknowledgement before it is sent again through the server.
pub const RELAY_AFTER: Duration = Duration::from_secs(1);

/// How often unacknowledged direct messages are looked at.
const RELAY_CHECK: Duration = Duration::from_millis(100);

/// How a direct message left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Over UDP; relayed later if no acknowledgement comes.
    Udp,
    /// Through the server: the recipient has no UDP address, or we have
    /// no UDP socket.
    Relayed,
}

/// A direct message sent over UDP and not yet acknowledged.
#[derive(Debug)]
struct Pending {
    relay: Relay,
    sent: Instant,
}

/// Unacknowledged direct messages by sequence number.
type Unacknowledged = Arc<Mutex<HashMap<u64, Pending>>>;

/// A logged-in session.
#[derive(Debug)]
pub struct Client {
    name: String,
    server: SocketAddr,
    tls: Option<String>,
    max_text: usize,
    admin: bool,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    roster: Arc<Mutex<Roster>>,
    udp: Option<Arc<UdpSocket>>,
    key: Arc<SessionKey>,
    unacknowledged: Unacknowledged,
}

impl Client {
    /// Connects, logs in (or registers), and starts reporting events.
    pub async fn connect(
        options: &ClientOptions,
        name: &str,
        password: Password,
        mode: Mode,
    ) -> Result<(Client, mpsc::Receiver<Event>), Error> {
        let limit = options.timeout;
        let within = |doing| {
            move |_| Error::Timeout {
                doing,
                timeout: limit,
            }
        };
        let addrs = resolve(&options.server).await?;
        let (mut tcp, server) = connect_any(&addrs, limit).await?;
        let local = tcp.local_addr().map_err(Error::Udp)?;
        let (stream, tls): (Box<dyn Stream>, _) = match &options.tls {
            None => {
                probe_plain(&mut tcp, server, limit).await?;
                (Box::new(tcp), None)
            }
            Some(trust) => {
                let host = options
                    .server
                    .rsplit_once(':')
                    .map_or(options.server.as_str(), |(host, _)| host);
                let connector = tls::TlsConnector::from(tls::client_config(trust, &[])?);
                let stream = timeout(limit, connector.connect(tls::server_name(host)?, tcp))
                    .await
                    .map_err(within("in the TLS handshake"))?
                    .map_err(|source| Error::Handshake {
                        addr: server,
                        source,
                    })?;
                let described = tls::describe(stream.get_ref().1);
                (Box::new(stream), Some(described))
            }
        };
        let Connection {
            mut reader,
            mut writer,
        } = Connection::new(stream);

        let hello = timeout(limit, reader.read_frame::<ServerFrame>())
            .await
            .map_err(within("waiting for the server's hello"))??;
        // A server of an older version is spoken to in its version: the
        // client only sends newer frames when asked to.
        let (version, max_text) = match hello {
            Some(ServerFrame::Hello {
                version, max_text, ..
            }) if (OLDEST_VERSION..=PROTOCOL_VERSION).contains(&version) => (version, max_text),
            Some(ServerFrame::Hello { version, .. }) => {
                return Err(Error::Version {
                    server: version,
                    client: PROTOCOL_VERSION,
                });
            }
            Some(ServerFrame::Bye { code, text }) => return Err(Error::Closed { code, text }),
            Some(other) => return Err(Error::Unexpected(format!("{other:?}"))),
            None => return Err(Error::Eof),
        };

        let udp = match options.udp {
            true => Some(
                UdpSocket::bind(SocketAddr::new(local.ip(), 0))
                    .await
                    .map_err(Error::Udp)?,
            ),
            false => None,
        };
        let udp_port = match &udp {
            Some(udp) => Some(udp.local_addr().map_err(Error::Udp)?.port()),
            None => None,
        };
        let key = SessionKey::generate();
        let credentials = Credentials {
            version,
            name: name.to_owned(),
            password,
            udp_port,
            key: key.public().to_base64(),
        };
        let request = match mode {
            Mode::Login => ClientFrame::Login(credentials),
            Mode::Register => ClientFrame::Register(credentials),
        };
        let logging_in = async {
            loop {
                writer.write_frame(&request).await?;
                match welcome(&mut reader).await {
                    // Nothing was checked or created: ask again shortly.
                    Err(Error::Rejected {
                        code: ErrorCode::Busy,
                        ..
                    }) => tokio::time::sleep(BUSY_RETRY).await,
                    done => return done,
                }
            }
        };
        let (name, admin, roster) = timeout(limit, logging_in)
            .await
            .map_err(within("waiting for the login to be accepted"))??;

        let roster = Arc::new(Mutex::new(roster));
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let udp = udp.map(Arc::new);
        let key = Arc::new(key);
        let unacknowledged = Unacknowledged::default();
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let inbox = Inbox::new(&name, key.public());
        tokio::spawn(
            Background {
                reader,
                writer: writer.clone(),
                roster: roster.clone(),
                udp: udp.clone(),
                name: name.clone(),
                inbox,
                events,
                unacknowledged: unacknowledged.clone(),
                rooms: Vec::new(),
                members: Vec::new(),
                bans: Vec::new(),
            }
            .run(),
        );
        let client = Client {
            name,
            server,
            tls,
            max_text,
            admin,
            writer,
            roster,
            udp,
            key,
            unacknowledged,
        };
        Ok((client, receiver))
    }

    /// The account name as the server spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The TLS version and cipher suite, if the connection uses TLS.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_deref()
    }

    /// The server's limit on message text, in bytes.
    pub fn max_text(&self) -> usize {
        self.max_text
    }

    /// Whether the account is a server admin.
    pub fn admin(&self) -> bool {
        self.admin
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref()?.local_addr().ok()
    }

    /// Active users as last reported, sorted by name, one entry per
    /// session.
    pub fn users(&self) -> Vec<UserEntry> {
        lock(&self.roster)
            .users
            .values()
            .flatten()
            .map(|peer| peer.entry.clone())
            .collect()
    }

    /// Names of the users online, each once, sorted.
    pub fn names(&self) -> Vec<String> {
        lock(&self.roster)
            .users
            .values()
            .filter_map(|sessions| Some(sessions.first()?.entry.name.clone()))
            .collect()
    }

    /// Says `text` in `room`, or in the default room.
    pub async fn say(&self, room: Option<&str>, text: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Say {
            text: text.to_owned(),
            room: room.map(str::to_owned),
        })
        .await
    }

    /// Joins (creating) a room: [`Event::RoomJoined`] then
    /// [`Event::Members`] answer.
    pub async fn join_room(&self, room: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Join { room: room.into() }).await
    }

    pub async fn part_room(&self, room: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Part { room: room.into() }).await
    }

    /// Asks for the room list (answered by [`Event::Rooms`]).
    pub async fn request_rooms(&self) -> Result<(), Error> {
        self.send(&ClientFrame::Rooms).await
    }

    pub async fn request_members(&self, room: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Members { room: room.into() }).await
    }

    /// Asks for up to `limit` messages of `room` before id `before`.
    pub async fn request_history(
        &self,
        room: &str,
        before: Option<u64>,
        limit: Option<usize>,
    ) -> Result<(), Error> {
        self.send(&ClientFrame::History {
            room: room.into(),
            before,
            limit,
        })
        .await
    }

    pub async fn set_topic(&self, room: &str, topic: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Topic {
            room: room.into(),
            topic: topic.into(),
        })
        .await
    }

    /// Asks the server for the user list (answered by [`Event::Users`]).
    pub async fn request_users(&self) -> Result<(), Error> {
        self.send(&ClientFrame::Users).await
    }

    /// Sends a signed direct message to each session of `to`: over UDP
    /// to its announced address, falling back to the server after
    /// [`RELAY_AFTER`] without an acknowledgement; through the server at
    /// once when either side has no UDP. Returns how the message left
    /// (relayed if it was for any session).
    pub async fn direct(&self, to: &str, text: &str) -> Result<Delivery, Error> {
        let sessions: Vec<(Option<SocketAddr>, String, PublicKey)> = {
            let roster = lock(&self.roster);
            let peers = roster
                .users
                .get(&to.to_ascii_lowercase())
                .ok_or_else(|| Error::NotOnline(to.to_owned()))?;
            peers
                .iter()
                .filter_map(|peer| Some((peer.entry.addr, peer.entry.name.clone(), peer.key?)))
                .collect()
        };
        if sessions.is_empty() {
            return Err(Error::NotOnline(to.to_owned()));
        }
        let mut delivery = Delivery::Udp;
        for (addr, name, key) in sessions {
            let signed = self.key.sign(&self.name, &name, &key, text);
            let relay = Relay {
                to: signed.to.clone(),
                key: key.to_base64(),
                seq: signed.seq,
                text: signed.text.clone(),
                sig: signed.sig.clone(),
            };
            let (Some(udp), Some(addr)) = (&self.udp, addr) else {
                self.send(&ClientFrame::Relay(relay)).await?;
                delivery = Delivery::Relayed;
                continue;
            };
            let seq = signed.seq;
            lock(&self.unacknowledged).insert(
                seq,
                Pending {
                    relay,
                    sent: Instant::now(),
                },
            );
            if let Err(err) = udp.send_to(&datagram(signed), addr).await {
                // Unreachable at once: no need to wait for the timeout.
                debug!(%err, %addr, "direct message not sent over UDP: relaying");
                let pending = lock(&self.unacknowledged).remove(&seq);
                if let Some(pending) = pending {
                    self.send(&ClientFrame::Relay(pending.relay)).await?;
                }
                delivery = Delivery::Relayed;
            }
        }
        Ok(delivery)
    }

    /// A room moderation request (`kick`, `ban`, `unban`, `mute`,
    /// `unmute`, `op`, `deop`); announced by [`Event::Moderation`].
    pub async fn moderate(
        &self,
        action: Action,
        room: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let (room, user) = (room.to_owned(), user.to_owned());
        let reason = reason.map(str::to_owned);
        let frame = match action {
            Action::Kick => ClientFrame::Kick { room, user, reason },
            Action::Ban => ClientFrame::Ban { room, user, reason },
            Action::Unban => ClientFrame::Unban { room, user },
            Action::Mute => ClientFrame::Mute { room, user, reason },
            Action::Unmute => ClientFrame::Unmute { room, user },
            Action::Op => ClientFrame::Op { room, user },
            Action::Deop => ClientFrame::Deop { room, user },
            Action::Disable => ClientFrame::Disable { user },
            Action::Enable => ClientFrame::Enable { user },
            Action::Delete => ClientFrame::Delete { user },
        };
        self.send(&frame).await
    }

    /// Asks for the bans of `room`, or of every room (admins); answered by
    /// [`Event::Bans`].
    pub async fn request_bans(&self, room: Option<&str>) -> Result<(), Error> {
        self.send(&ClientFrame::Bans {
            room: room.map(str::to_owned),
        })
        .await
    }

    /// Logs out; the server answers with `bye` and [`Event::Closed`] follows.
    pub async fn logout(&self) -> Result<(), Error> {
        self.send(&ClientFrame::Logout).await
    }

    async fn send(&self, frame: &ClientFrame) -> Result<(), Error> {
        self.writer.lock().await.write_frame(frame).await?;
        Ok(())
    }
}

/// Reads up to `welcome` and the user list that follows it: the name as
/// the server spells it, whether the account is an admin, the users.
async fn welcome<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<(String, bool, Roster), Error> {
    let mut name = None;
    let mut admin = false;
    let mut roster = Roster::default();
    loop {
        let frame = reader
            .read_frame::<ServerFrame>()
            .await?
            .ok_or(Error::Eof)?;
        match frame {
            ServerFrame::Welcome {
                name: welcomed,
                admin: is_admin,
                ..
            } => {
                name = Some(welcomed);
                admin = is_admin;
            }
            ServerFrame::Users { users, more } => {
                if let (Some(name), Some(_)) = (&name, roster.page(users, more)) {
                    return Ok((name.clone(), admin, roster));
                }
            }
            ServerFrame::Error { code, text } => return Err(Error::Rejected { code, text }),
            ServerFrame::Bye { code, text } => return Err(Error::Closed { code, text }),
            other => debug!(?other, "ignored before welcome"),
        }
    }
}

#[derive(Debug)]
struct Peer {
    entry: UserEntry,
    /// `None` if the server sent a key that does not parse.
    key: Option<PublicKey>,
}

/// Active users by case-folded name, each with its sessions.
#[derive(Debug, Default)]
struct Roster {
    users: BTreeMap<String, Vec<Peer>>,
    pages: Vec<UserEntry>,
}

impl Roster {
    fn insert(&mut self, entry: UserEntry) {
        let key = PublicKey::parse(&entry.key);
        let sessions = self
            .users
            .entry(entry.name.to_ascii_lowercase())
            .or_default();
        sessions.retain(|peer| peer.entry.key != entry.key);
        sessions.push(Peer { entry, key });
    }

    /// Takes one page of a user list; the whole list once it is complete.
    fn page(&mut self, users: Vec<UserEntry>, more: bool) -> Option<Vec<UserEntry>> {
        self.pages.extend(users);
        if more {
            return None;
        }
        let complete = std::mem::take(&mut self.pages);
        self.users.clear();
        for entry in complete.iter().cloned() {
            self.insert(entry);
        }
        Some(complete)
    }

    /// Removes the session of `name` with `key`; every session of `name`
    /// when the key is not given (an older server).
    fn remove(&mut self, name: &str, key: Option<&str>) {
        let account = name.to_ascii_lowercase();
        let Some(sessions) = self.users.get_mut(&account) else {
            return;
        };
        sessions.retain(|peer| key.is_some_and(|key| peer.entry.key != key));
        if sessions.is_empty() {
            self.users.remove(&account);
        }
    }

    fn keys_of(&self, name: &str) -> Vec<PublicKey> {
        self.users
            .get(&name.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|peer| peer.key)
            .collect()
    }
}

/// Reads the server and the UDP socket, keeps the roster, answers pings.
struct Background {
    reader: FrameReader<tokio::io::ReadHalf<Box<dyn Stream>>>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    roster: Arc<Mutex<Roster>>,
    udp: Option<Arc<UdpSocket>>,
    /// This session's name, for acknowledgements.
    name: String,
    inbox: Inbox,
    events: mpsc::Sender<Event>,
    unacknowledged: Unacknowledged,
    /// Pages of a `rooms`, `members` or `bans` answer still to come.
    rooms: Vec<RoomInfo>,
    members: Vec<String>,
    bans: Vec<BanEntry>,
}

impl Background {
    async fn run(mut self) {
        let mut datagram = vec![0u8; if self.udp.is_some() { MAX_DATAGRAM } else { 0 }];
        let mut check = tokio::time::interval(RELAY_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closed = loop {
            let event = tokio::select! {
                frame = self.reader.read_frame::<ServerFrame>() => match frame {
                    Ok(Some(frame)) => match self.frame(frame).await {
                        Ok(Some(event)) => event,
                        Ok(None) => continue,
                        Err(closed) => break closed,
                    },
                    Ok(None) => break Event::Closed { code: None, text: "the server closed the connection".into() },
                    Err(err) if err.is_fatal() => break Event::Closed { code: None, text: err.to_string() },
                    Err(err) => {
                        debug!(%err, "bad frame from the server");
                        continue;
                    }
                },
                received = receive(self.udp.as_deref(), &mut datagram) => match received {
                    Ok((n, source)) => match self.datagram(&datagram[..n], source).await {
                        Some(event) => event,
                        None => continue,
                    },
                    Err(err) => {
                        debug!(%err, "UDP receive failed");
                        continue;
                    }
                },
                _ = check.tick() => {
                    for event in self.relay_overdue().await {
                        if self.events.send(event).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            if self.events.send(event).await.is_err() {
                return;
            }
        };
        let _ = self.events.send(closed).await;
    }

    /// The event for a server frame; `Err` with the closing event at `bye`.
    async fn frame(&mut self, frame: ServerFrame) -> Result<Option<Event>, Event> {
        Ok(Some(match frame {
            ServerFrame::Message {
                from,
                text,
                time,
                room,
                id,
                history,
            } => Event::Message {
                from,
                text,
                time,
                room,
                id,
                history,
            },
            ServerFrame::HistoryEnd { room, count } => Event::HistoryEnd { room, count },
            ServerFrame::Users { users, more } => match lock(&self.roster).page(users, more) {
                Some(complete) => Event::Users(complete),
                None => return Ok(None),
            },
            // The roster is the default room's: everyone online.
            ServerFrame::Joined { user, room } => {
                let name = user.name.clone();
                if room.is_none() {
                    lock(&self.roster).insert(user);
                }
                Event::Joined { name, room }
            }
            ServerFrame::Left {
                name,
                reason,
                room,
                key,
            } => {
                if room.is_none() {
                    lock(&self.roster).remove(&name, key.as_deref());
                }
                Event::Left { name, reason, room }
            }
            ServerFrame::RoomJoined {
                room,
                topic,
                created,
                operators,
            } => Event::RoomJoined {
                room,
                topic,
                created,
                operators,
            },
            ServerFrame::RoomParted { room } => Event::RoomParted { room },
            ServerFrame::Rooms { rooms, more } => {
                self.rooms.extend(rooms);
                if more {
                    return Ok(None);
                }
                Event::Rooms(std::mem::take(&mut self.rooms))
            }
            ServerFrame::Members {
                room,
                members,
                more,
            } => {
                self.members.extend(members);
                if more {
                    return Ok(None);
                }
                let names = std::mem::take(&mut self.members);
                Event::Members { room, names }
            }
            ServerFrame::Topic { room, topic, by } => Event::Topic { room, topic, by },
            ServerFrame::Moderation {
                action,
                user,
                by,
                room,
                reason,
            } => Event::Moderation {
                action,
                user,
                by,
                room,
                reason,
            },
            ServerFrame::Bans { bans, more } => {
                self.bans.extend(bans);
                if more {
                    return Ok(None);
                }
                Event::Bans(std::mem::take(&mut self.bans))
            }
            ServerFrame::Direct(direct) => {
                let roster = self.roster.clone();
                let received = self
                    .inbox
                    .accept(direct, |name| lock(&roster).keys_of(name));
                match self.received(received, None) {
                    Some(event) => event,
                    None => return Ok(None),
                }
            }
            ServerFrame::Ping { id } => {
                let pong = ClientFrame::Pong { id };
                if let Err(err) = self.writer.lock().await.write_frame(&pong).await {
                    debug!(%err, "cannot answer a ping");
                }
                return Ok(None);
            }
            ServerFrame::Status { cluster, text } => Event::Status { cluster, text },
            ServerFrame::Error { code, text } => Event::Error { code, text },
            ServerFrame::Bye { code, text } => {
                return Err(Event::Closed {
                    code: Some(code),
                    text,
                });
            }
            ServerFrame::Pong { .. } | ServerFrame::Hello { .. } | ServerFrame::Welcome { .. } => {
                return Ok(None);
            }
        }))
    }

    /// A datagram: an acknowledgement of ours, or a direct message, which
    /// is acknowledged once verified.
    async fn datagram(&mut self, bytes: &[u8], source: SocketAddr) -> Option<Event> {
        if let Some(ack) = Ack::parse(bytes) {
            let mut unacknowledged = lock(&self.unacknowledged);
            if unacknowledged
                .get(&ack.seq)
                .is_some_and(|pending| pending.relay.to.eq_ignore_ascii_case(&ack.from))
            {
                unacknowledged.remove(&ack.seq);
            }
            return None;
        }
        let roster = self.roster.clone();
        let received = self
            .inbox
            .receive(bytes, |name| lock(&roster).keys_of(name));
        if let (Received::Verified { seq, .. }, Some(udp)) = (&received, &self.udp) {
            let ack = Ack::new(&self.name, *seq).to_bytes();
            if let Err(err) = udp.send_to(&ack, source).await {
                debug!(%err, %source, "cannot acknowledge a direct message");
            }
        }
        self.received(received, Some(source))
    }

    /// The event for a checked direct message; `source` is `None` when the
    /// server relayed it.
    fn received(&self, received: Received, source: Option<SocketAddr>) -> Option<Event> {
        match received {
            Received::Verified { from, text, .. } => Some(Event::Direct {
                from,
                text,
                relayed: source.is_none(),
            }),
            Received::Rejected {
                why: Rejection::Replayed,
                claimed,
                ..
            } => {
                debug!(?source, ?claimed, "replayed direct message dropped");
                None
            }
            Received::Rejected { why, claimed, text } => {
                debug!(
                    ?source,
                    ?claimed,
                    why = why.describe(),
                    "unverified direct message"
                );
                Some(Event::Unverified {
                    source,
                    claimed,
                    text,
                    why,
                })
            }
        }
    }

    /// Sends through the server the direct messages whose acknowledgement
    /// is overdue; one event per recipient.
    async fn relay_overdue(&mut self) -> Vec<Event> {
        let overdue: Vec<Relay> = {
            let mut unacknowledged = lock(&self.unacknowledged);
            let late: Vec<u64> = unacknowledged
                .iter()
                .filter(|(_, pending)| pending.sent.elapsed() >= RELAY_AFTER)
                .map(|(seq, _)| *seq)
                .collect();
            late.into_iter()
                .filter_map(|seq| unacknowledged.remove(&seq))
                .map(|pending| pending.relay)
                .collect()
        };
        let mut recipients: Vec<String> = Vec::new();
        if overdue.is_empty() {
            return Vec::new();
        }
        let mut writer = self.writer.lock().await;
        for relay in overdue {
            if !recipients
                .iter()
                .any(|to| to.eq_ignore_ascii_case(&relay.to))
            {
                recipients.push(relay.to.clone());
            }
            if let Err(err) = writer.write_frame(&ClientFrame::Relay(relay)).await {
                debug!(%err, "cannot relay a direct message");
            }
        }
        recipients
            .into_iter()
            .map(|to| Event::Relayed { to })
            .collect()
    }
}

/// The next datagram, or never without a UDP socket.
async fn receive(
    udp: Option<&UdpSocket>,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(udp) => udp.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

/// Resolves `HOST:PORT`.
pub async fn resolve(target: &str) -> Result<Vec<SocketAddr>, Error> {
    Ok(dial::resolve(target).await?)
}

/// Connects to the first address that accepts.
/// A TLS server waits for the client to speak first while a chat client
/// waits for the server's `hello`, so a client that forgot TLS would wait
/// out its timeout. An empty line, which a chat server ignores, makes a TLS
/// server fail its handshake at once with an alert record: that first byte
/// (a chat server's is always `{`) tells the two apart in one round trip.
async fn probe_plain(tcp: &mut TcpStream, addr: SocketAddr, limit: Duration) -> Result<(), Error> {
    /// TLS record types: alert and handshake.
    const TLS_RECORDS: [u8; 2] = [0x15, 0x16];
    tcp.write_all(b"\n")
        .await
        .map_err(|source| Error::Connect { addr, source })?;
    let mut first = [0u8; 1];
    let peeked = timeout(limit, tcp.peek(&mut first))
        .await
        .map_err(|_| Error::Timeout {
            doing: "waiting for the server's hello",
            timeout: limit,
        })?;
    match peeked {
        Ok(1) if TLS_RECORDS.contains(&first[0]) => Err(Error::SpeaksTls { addr }),
        // Anything else, even the end of the stream, is for the frame
        // reader to make sense of.
        _ => Ok(()),
    }
}

pub async fn connect_any(
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = Error::Dial(dial::DialError::NoAddress {
        host: String::new(),
    });
    for &addr in addrs {
        match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::Refused { addr };
            }
            Ok(Err(source)) => last = Error::Connect { addr, source },
            Err(_) => {
                last = Error::Timeout {
                    doing: "connecting",
                    timeout: limit,
                }
            }
        }
    }
    Err(last)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
