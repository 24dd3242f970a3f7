//! One connection, from `hello` to `bye`: the login phase, then a reader
//! that handles requests while a writer task (writer.rs) sends.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::Shared;
use super::auth::AuthError;
use super::room::{Kick, SessionId};
use super::rooms::{DEFAULT_ROOM, RoomName, Seat};
use crate::connection::{FrameSink, FrameSource};
use crate::direct::PublicKey;
use crate::frame::{
    Action, ClientFrame, Credentials, ErrorCode, FrameError, LeaveReason, OLDEST_VERSION,
    PROTOCOL_VERSION, ServerFrame, UserEntry, encode,
};
use crate::name::{Username, check_password};
use crate::rate::{RateLimit, Verdict};
use crate::store::Standing;

/// Replies a member may have waiting besides room events.
const REPLY_QUEUE: usize = 64;

use super::writer::{BYE_WAIT, write_member};

/// Serves one connection, whatever its transport, until it ends.
pub(crate) async fn serve<R, W>(
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    R: FrameSource + Send + 'static,
    W: FrameSink + Send + 'static,
{
    let mut limit = RateLimit::new(shared.config.rate, std::time::Instant::now());
    let deadline = Instant::now() + shared.config.login_timeout;
    let hello = ServerFrame::Hello {
        version: PROTOCOL_VERSION,
        server: concat!("netkit-chat/", env!("CARGO_PKG_VERSION")).into(),
        max_frame: crate::frame::MAX_FRAME,
        max_text: shared.config.max_text,
    };
    let login = async {
        send(&mut writer, &hello).await?;
        log_in(&mut reader, &mut writer, &mut limit, peer, &shared).await
    };
    let outcome = tokio::select! {
        _ = shutdown.cancelled() => Err(End::Bye(ErrorCode::ShuttingDown, "the server is shutting down".into())),
        outcome = timeout_at(deadline, login) => outcome.unwrap_or_else(|_| Err(End::Bye(
            ErrorCode::LoginTimeout,
            format!("no login within {:?}", shared.config.login_timeout),
        ))),
    };
    let user = match outcome {
        Ok(user) => user,
        Err(end) => {
            if let End::Bye(code, text) = end {
                debug!(%peer, %code, "closing before login");
                let _ = timeout(
                    BYE_WAIT,
                    writer.send_frame(&ServerFrame::Bye { code, text }),
                )
                .await;
            }
            let _ = timeout(BYE_WAIT, writer.close()).await;
            return;
        }
    };
    member(reader, writer, limit, user, peer, shared, shutdown).await;
}

/// Why the login phase ended without a login.
enum End {
    Bye(ErrorCode, String),
    Closed,
}

struct LoggedIn {
    name: Username,
    /// Where it receives direct messages; `None`: relayed only.
    udp: Option<SocketAddr>,
    key: String,
    registered: bool,
    admin: bool,
}

async fn send<W: FrameSink + Send>(writer: &mut W, frame: &ServerFrame) -> Result<(), End> {
    writer.send_frame(frame).await.map_err(|_| End::Closed)
}

fn error(code: ErrorCode, text: impl Into<String>) -> ServerFrame {
    ServerFrame::Error {
        code,
        text: text.into(),
    }
}

async fn log_in<R, W>(
    reader: &mut R,
    writer: &mut W,
    limit: &mut RateLimit,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<LoggedIn, End>
where
    R: FrameSource + Send,
    W: FrameSink + Send,
{
    loop {
        let read = reader.read_frame::<ClientFrame>().await;
        match limit.check(std::time::Instant::now()) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                send(
                    writer,
                    &error(ErrorCode::RateLimited, "too many frames; slow down"),
                )
                .await?;
                continue;
            }
            Verdict::Disconnect => {
                return Err(End::Bye(ErrorCode::Flooding, "too many frames".into()));
            }
        }
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(FrameError::Io(_)) => return Err(End::Closed),
            Err(err) if err.is_fatal() => return Err(End::Bye(err.code(), err.to_string())),
            Err(err) => {
                send(writer, &error(err.code(), err.to_string())).await?;
                continue;
            }
        };
        let (credentials, register) = match frame {
            ClientFrame::Register(credentials) => (credentials, true),
            ClientFrame::Login(credentials) => (credentials, false),
            ClientFrame::Ping { id } => {
                send(writer, &ServerFrame::Pong { id }).await?;
                continue;
            }
            ClientFrame::Pong { .. } => continue,
            ClientFrame::Logout => return Err(End::Bye(ErrorCode::LoggedOut, "goodbye".into())),
            ClientFrame::Say { .. }
            | ClientFrame::Users
            | ClientFrame::Join { .. }
            | ClientFrame::Part { .. }
            | ClientFrame::Rooms
            | ClientFrame::Members { .. }
            | ClientFrame::Topic { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Kick { .. }
            | ClientFrame::Ban { .. }
            | ClientFrame::Unban { .. }
            | ClientFrame::Mute { .. }
            | ClientFrame::Unmute { .. }
            | ClientFrame::Op { .. }
            | ClientFrame::Deop { .. }
            | ClientFrame::Bans { .. }
            | ClientFrame::Disable { .. }
            | ClientFrame::Enable { .. }
            | ClientFrame::Delete { .. }
            | ClientFrame::Relay(_) => {
                let text = "log in first: only register, login and ping are accepted";
                send(writer, &error(ErrorCode::NotLoggedIn, text)).await?;
                continue;
            }
        };
        match authenticate(credentials, register, peer, shared).await {
            Ok(user) => return Ok(user),
            Err(Refusal::Close(code, text)) => return Err(End::Bye(code, text)),
            Err(Refusal::Retry(code, text)) => send(writer, &error(code, text)).await?,
        }
    }
}

enum Refusal {
    /// Say why; the client may try again.
    Retry(ErrorCode, String),
    /// Say why and close.
    Close(ErrorCode, String),
}

async fn authenticate(
    credentials: Credentials,
    register: bool,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<LoggedIn, Refusal> {
    use Refusal::{Close, Retry};
    if !(OLDEST_VERSION..=PROTOCOL_VERSION).contains(&credentials.version) {
        return Err(Close(
            ErrorCode::UnsupportedVersion,
            format!(
                "this server speaks protocol versions {OLDEST_VERSION} to {PROTOCOL_VERSION}, not {}",
                credentials.version
            ),
        ));
    }
    if PublicKey::parse(&credentials.key).is_none() {
        return Err(Retry(
            ErrorCode::InvalidKey,
            "key must be a base64 Ed25519 public key".into(),
        ));
    }
    if credentials.udp_port == Some(0) {
        return Err(Retry(
            ErrorCode::BadFrame,
            "udp_port must be 1-65535".into(),
        ));
    }
    let Credentials {
        name,
        password,
        udp_port,
        key,
        ..
    } = credentials;
    let ip = peer.ip().to_canonical();
    let stored = if register {
        let name =
            Username::parse(&name).map_err(|err| Retry(ErrorCode::InvalidName, err.to_string()))?;
        check_password(password.expose())
            .map_err(|err| Retry(ErrorCode::InvalidPassword, err.to_string()))?;
        let registered = shared.auth.register(name, password, ip).await;
        if let Ok(stored) = &registered {
            // A new account inherits nothing: grants, bans and mutes still
            // held here under its name were a deleted account's (deleted
            // with `netkit chat admin` while the server ran).
            shared.rooms.forget(stored);
        }
        registered.map(|stored| (stored, Standing::default()))
    } else {
        // A name that could never be registered still costs a full check,
        // so a wrong name looks exactly like a wrong password.
        let name: String = name.chars().take(crate::name::MAX_NAME + 1).collect();
        shared.auth.login(&name, password, ip).await
    };
    let stored = stored.map_err(|err| match err {
        AuthError::NameTaken => Retry(ErrorCode::NameTaken, "that name is taken".into()),
        AuthError::LoginFailed => {
            Retry(ErrorCode::LoginFailed, "wrong user name or password".into())
        }
        AuthError::Throttled(wait) => Retry(
            ErrorCode::Throttled,
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs() + 1
            ),
        ),
        AuthError::TooManyRegistrations(wait) => Retry(
            ErrorCode::Throttled,
            format!(
                "too many new accounts; try again in {} s",
                wait.as_secs() + 1
            ),
        ),
        AuthError::Busy => Retry(
            ErrorCode::Busy,
            "the server is busy checking passwords; try again shortly".into(),
        ),
        AuthError::Disabled => Retry(
            ErrorCode::AccountDisabled,
            "this account is disabled; ask the server's admin".into(),
        ),
        AuthError::Internal => Retry(
            ErrorCode::Internal,
            "the account store failed; try again later".into(),
        ),
        AuthError::Unavailable => Retry(
            ErrorCode::Unavailable,
            "the account database is unavailable; try again later".into(),
        ),
    })?;
    let (stored, standing) = stored;
    let name = Username::parse(&stored).map_err(|_| {
        Retry(
            ErrorCode::Internal,
            "the stored account name is invalid".into(),
        )
    })?;
    Ok(LoggedIn {
        name,
        udp: udp_port.map(|port| SocketAddr::new(ip, port)),
        key,
        registered: register,
        admin: standing.admin,
    })
}

/// A logged-in member: joins the room, runs the writer, reads requests,
/// and leaves exactly once.
async fn member<R, W>(
    mut reader: R,
    writer: W,
    mut limit: RateLimit,
    user: LoggedIn,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    R: FrameSource + Send + 'static,
    W: FrameSink + Send + 'static,
{
    let kick = Kick::default();
    let joined = shared
        .room
        .join(&user.name, user.udp, user.key.clone(), kick.clone());
    let udp = user
        .udp
        .map_or_else(|| "none".into(), |udp| udp.to_string());
    info!(user = %user.name, %peer, %udp, registered = user.registered, admin = user.admin, "joined");
    // Named rooms' events come through this queue too.
    let capacity = REPLY_QUEUE + shared.config.queue + joined.snapshot.len();
    let (replies, queue) = mpsc::channel(capacity);
    shared.room.attach(joined.id, replies.clone());
    let welcome = ServerFrame::Welcome {
        name: user.name.to_string(),
        registered: user.registered,
        admin: user.admin,
    };
    let status = shared.status();
    let status = status.as_ref().and_then(|frame| encode(frame).ok());
    for line in encode(&welcome)
        .into_iter()
        .chain(joined.snapshot)
        .chain(status)
    {
        let _ = replies.try_send(line);
    }
    let writing = tokio::spawn(write_member(
        writer,
        queue,
        joined.events,
        joined.id,
        kick.clone(),
        shared.room.capacity(),
    ));
    let member = Member {
        name: &user.name,
        id: joined.id,
        admin: user.admin,
        shared: &shared,
        seat: Seat {
            id: joined.id,
            entry: UserEntry {
                name: user.name.to_string(),
                addr: user.udp,
                key: user.key.clone(),
            },
            outbox: Some(replies.clone()),
            kick: kick.clone(),
        },
        replies,
        kick: kick.clone(),
    };
    let lost = member.read(&mut reader, &mut limit, &shutdown).await;
    let reason = kick.farewell().map_or(lost, |farewell| farewell.leave);
    shared
        .rooms
        .leave_all(joined.id, user.name.as_str(), reason);
    if shared.room.leave(joined.id, reason) {
        info!(user = %user.name, %peer, reason = reason.describe(), "left");
    }
    kick.stop();
    let _ = writing.await;
}

pub(super) struct Member<'a> {
    pub name: &'a Username,
    pub id: SessionId,
    /// A server admin: may moderate every room and act on accounts.
    pub admin: bool,
    pub shared: &'a Shared,
    /// This session as named rooms know it.
    pub seat: Seat,
    pub replies: mpsc::Sender<Bytes>,
    pub kick: Kick,
}

impl Member<'_> {
    /// Handles requests until the session ends; returns how it ended if
    /// nobody kicked it.
    async fn read<R: FrameSource + Send>(
        &self,
        reader: &mut R,
        limit: &mut RateLimit,
        shutdown: &CancellationToken,
    ) -> LeaveReason {
        let keepalive = self.shared.config.keepalive;
        let mut pinged = false;
        let kicked = self.kick.fired();
        let stopping = shutdown.cancelled();
        tokio::pin!(kicked, stopping);
        loop {
            let read = tokio::select! {
                biased;
                _ = &mut kicked => return LeaveReason::Kicked,
                _ = &mut stopping => {
                    self.kick.fire(ErrorCode::ShuttingDown, LeaveReason::Shutdown, "the server is shutting down");
                    return LeaveReason::Shutdown;
                }
                read = timeout(keepalive, reader.read_frame::<ClientFrame>()) => read,
            };
            let Ok(read) = read else {
                if pinged {
                    let text = format!("nothing heard for {:?}", keepalive * 2);
                    self.kick
                        .fire(ErrorCode::KeepaliveTimeout, LeaveReason::Lost, text);
                    return LeaveReason::Lost;
                }
                pinged = true;
                self.reply(&ServerFrame::Ping { id: None });
                continue;
            };
            pinged = false;
            if let Ok(None) | Err(FrameError::Io(_)) = read {
                return LeaveReason::Lost;
            }
            match limit.check(std::time::Instant::now()) {
                Verdict::Allow => {}
                Verdict::Refuse => {
                    self.reply(&error(
                        ErrorCode::RateLimited,
                        "too many messages; slow down",
                    ));
                    continue;
                }
                Verdict::Disconnect => {
                    let text = "kept sending past the rate limit";
                    self.kick
                        .fire(ErrorCode::Flooding, LeaveReason::Kicked, text);
                    return LeaveReason::Kicked;
                }
            }
            let frame = match read {
                Ok(Some(frame)) => frame,
                Err(err) if err.is_fatal() => {
                    self.kick
                        .fire(err.code(), LeaveReason::Kicked, err.to_string());
                    return LeaveReason::Kicked;
                }
                Err(err) => {
                    self.reply(&error(err.code(), err.to_string()));
                    continue;
                }
                Ok(None) => return LeaveReason::Lost,
            };
            match frame {
                ClientFrame::Say { text, room } => self.say(text, room),
                ClientFrame::Join { room } => self.join(&room).await,
                ClientFrame::Part { room } => self.part(&room),
                ClientFrame::Rooms => self.rooms(),
                ClientFrame::Members { room } => self.members(&room),
                ClientFrame::Topic { room, topic } => self.topic(&room, topic),
                ClientFrame::Kick { room, user, reason } => {
                    self.moderate(Action::Kick, &room, &user, reason).await
                }
                ClientFrame::Ban { room, user, reason } => {
                    self.moderate(Action::Ban, &room, &user, reason).await
                }
                ClientFrame::Unban { room, user } => {
                    self.moderate(Action::Unban, &room, &user, None).await
                }
                ClientFrame::Mute { room, user, reason } => {
                    self.moderate(Action::Mute, &room, &user, reason).await
                }
                ClientFrame::Unmute { room, user } => {
                    self.moderate(Action::Unmute, &room, &user, None).await
                }
                ClientFrame::Op { room, user } => {
                    self.moderate(Action::Op, &room, &user, None).await
                }
                ClientFrame::Deop { room, user } => {
                    self.moderate(Action::Deop, &room, &user, None).await
                }
                ClientFrame::Bans { room } => self.bans(room).await,
                ClientFrame::Disable { user } => self.account_action(Action::Disable, &user).await,
                ClientFrame::Enable { user } => self.account_action(Action::Enable, &user).await,
                ClientFrame::Delete { user } => self.account_action(Action::Delete, &user).await,
                ClientFrame::Relay(relay) => self.relay(relay),
                ClientFrame::History {
                    room,
                    before,
                    limit,
                } => self.history(&room, before, limit),
                ClientFrame::Users => {
                    for line in self.shared.room.snapshot() {
                        self.queue(line);
                    }
                }
                ClientFrame::Ping { id } => self.reply(&ServerFrame::Pong { id }),
                ClientFrame::Pong { .. } => {}
                ClientFrame::Logout => {
                    self.kick
                        .fire(ErrorCode::LoggedOut, LeaveReason::Quit, "goodbye");
                    return LeaveReason::Quit;
                }
                ClientFrame::Register(_) | ClientFrame::Login(_) => {
                    self.reply(&error(
                        ErrorCode::AlreadyLoggedIn,
                        "this connection is already logged in",
                    ));
                }
            }
        }
    }

    fn say(&self, text: String, room: Option<String>) {
        let max = self.shared.config.max_text;
        if text.is_empty() || text.len() > max {
            let why = format!("message text must be 1 to {max} bytes, not {}", text.len());
            self.reply(&error(ErrorCode::InvalidText, why));
            return;
        }
        let from = self.name.as_str();
        let history = &self.shared.history;
        match room.as_deref().map(RoomName::parse) {
            Some(Ok(room)) if !room.is_default() => {
                let stamp = |room: &str, text: &str| history.record(room, from, text);
                let said = self.shared.rooms.say(&room, self.id, from, text, stamp);
                self.refused(said);
            }
            None | Some(Ok(_)) => {
                let stamp = history.record(DEFAULT_ROOM, from, &text);
                self.shared.room.say(self.id, from, text, stamp);
            }
            Some(Err(why)) => self.reply(&error(ErrorCode::InvalidRoom, why)),
        }
    }

    pub(super) fn reply(&self, frame: &ServerFrame) {
        match encode(frame) {
            Ok(line) => self.queue(line),
            Err(err) => tracing::error!(%err, "cannot encode a reply"),
        }
    }

    /// Queues a reply; a client whose queue is full is too slow to keep.
    pub(super) fn queue(&self, line: Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.replies.try_send(line) {
            self.kick.fire(
                ErrorCode::SlowConsumer,
                LeaveReason::SlowConsumer,
                "outgoing queue full: not reading fast enough",
            );
        }
    }
}
