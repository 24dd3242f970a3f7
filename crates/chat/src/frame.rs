//! The frames of the chat protocol (PROTOCOL.md): one JSON object per line,
//! told apart by its `type` field. Client frames are requests, server frames
//! are responses and events. Decoding a line never panics: every failure is a
//! [`FrameError`] that says whether the connection can go on.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks, exchanged at connect.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest client version the server still serves: version 2 only adds
/// frames and fields, so a version-1 client (the lab's) works unchanged in
/// the default room.
pub const OLDEST_VERSION: u32 = 1;

/// The largest frame either side sends or accepts, newline included.
pub const MAX_FRAME: usize = 64 * 1024;

/// A password as it travels in `register` and `login`. Its `Debug` output is
/// redacted so a frame can be logged without leaking it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What `register` and `login` carry: who, the password, and where this
/// session receives direct messages and with which key they are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The client's protocol version; must equal the server's.
    pub version: u32,
    pub name: String,
    pub password: Password,
    /// The UDP port this session receives direct messages on; absent for
    /// a client without UDP (a browser), which gets them relayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
    /// The session's Ed25519 public key, base64 (standard, padded).
    pub key: String,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Register(Credentials),
    Login(Credentials),
    Logout,
    Say {
        text: String,
        /// The room to say it in; the default room when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    Users,
    /// Joins a room, creating it if it does not exist.
    Join {
        room: String,
    },
    /// Leaves a room.
    Part {
        room: String,
    },
    /// Asks for the list of rooms.
    Rooms,
    /// Asks who is in a room.
    Members {
        room: String,
    },
    /// Sets a room's topic (its operator only).
    Topic {
        room: String,
        topic: String,
    },
    /// Asks for a room's messages before id `before` (the latest when
    /// absent), at most `limit` (50 when absent, at most 200).
    History {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Removes a user from a room (operators, admins).
    Kick {
        room: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Bans an account from a room, removing it if present.
    Ban {
        room: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Unban {
        room: String,
        user: String,
    },
    /// Refuses an account's messages in a room.
    Mute {
        room: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Unmute {
        room: String,
        user: String,
    },
    /// Makes a member an operator of the room.
    Op {
        room: String,
        user: String,
    },
    Deop {
        room: String,
        user: String,
    },
    /// Lists bans: of one room (its operators), or all (admins).
    Bans {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// Disables an account and ends its sessions (admins).
    Disable {
        user: String,
    },
    Enable {
        user: String,
    },
    /// Deletes an account, its bans and mutes, and ends its sessions
    /// (admins).
    Delete {
        user: String,
    },
    /// A direct message for the server to pass on, signed by the sender.
    Relay(Relay),
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

/// A direct message handed to the server: as a datagram, less `from`,
/// which the server fills in with the sender's account; plus the
/// recipient's key, which picks the session it was sealed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub to: String,
    pub key: String,
    pub seq: u64,
    pub text: String,
    pub sig: String,
}

/// A signed direct message, as a UDP datagram carries it and as the
/// server relays it (`direct`). The signature is checked by the recipient
/// against the sender's key from the user list (direct.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direct {
    pub from: String,
    pub to: String,
    pub seq: u64,
    pub text: String,
    pub sig: String,
}

/// A moderation action, as `moderation` announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
    Op,
    Deop,
    Disable,
    Enable,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Kick => "kick",
            Action::Ban => "ban",
            Action::Unban => "unban",
            Action::Mute => "mute",
            Action::Unmute => "unmute",
            Action::Op => "op",
            Action::Deop => "deop",
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ban as `bans` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    pub room: String,
    pub user: String,
    pub by: String,
    /// Unix seconds.
    pub time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One active user, as the user list and `joined` carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub name: String,
    /// Where the user receives direct messages: the address the server sees
    /// the user's TCP connection come from, with the announced UDP port;
    /// absent for a session without UDP (send it relayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
    /// The user's current Ed25519 public key, base64.
    pub key: String,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        version: u32,
        server: String,
        max_frame: usize,
        max_text: usize,
    },
    /// The answer to a successful `register` or `login`.
    Welcome {
        name: String,
        registered: bool,
        /// The account is a server admin.
        #[serde(default, skip_serializing_if = "is_false")]
        admin: bool,
    },
    Message {
        from: String,
        text: String,
        /// Server time when the message was accepted, Unix milliseconds.
        time: u64,
        /// The room it was said in; absent for the default room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The server's id for the message, rising; `history` pages by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Sent from history (on `join` or `history`), not live.
        #[serde(default, skip_serializing_if = "is_false")]
        history: bool,
    },
    /// The active user list; a long list is split over several frames, all
    /// but the last with `more: true`.
    Users {
        users: Vec<UserEntry>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    Joined {
        user: UserEntry,
        /// The room joined; absent for the default room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    Left {
        name: String,
        reason: LeaveReason,
        /// The room left; absent for the default room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// In the default room, the key of the session that left: an
        /// account may have several.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The answer to `join`: the room as it is now.
    RoomJoined {
        room: String,
        topic: String,
        /// Whether this join created the room.
        created: bool,
        /// The room's operators. The member list follows in `members`.
        operators: Vec<String>,
    },
    /// The answer to `part`.
    RoomParted { room: String },
    /// The answer to `rooms`; a long list is split like `users`.
    Rooms {
        rooms: Vec<RoomInfo>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    /// The answer to `members` (and what follows `room_joined`); a long
    /// list is split like `users`.
    Members {
        room: String,
        members: Vec<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    /// Ends the history messages answering `join` or `history`.
    HistoryEnd { room: String, count: usize },
    /// A room's topic changed (sent to every member, the setter included).
    Topic {
        room: String,
        topic: String,
        by: String,
    },
    /// A moderation action: to every member of `room` and to whoever
    /// asked; an account action (no `room`) to the admin who asked.
    Moderation {
        action: Action,
        user: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The answer to `bans`; a long list is split like `users`.
    Bans {
        bans: Vec<BanEntry>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
    },
    /// A direct message the server relayed.
    Direct(Direct),
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// The node's link to the rest of its cluster changed (or, on login,
    /// is down): while `degraded`, what is said reaches this server's
    /// members only.
    Status { cluster: ClusterState, text: String },
    /// A request failed; the connection goes on.
    Error { code: ErrorCode, text: String },
    /// The server is closing the connection, and why.
    Bye { code: ErrorCode, text: String },
}

/// The state of a server's link to its cluster, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Linked: messages reach every node's members.
    Connected,
    /// Cut off: messages reach this node's members only.
    Degraded,
}

/// One room as `rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub members: usize,
    pub topic: String,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Why a user left the room, as `left` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Logged out, or closed the connection cleanly.
    Quit,
    /// The connection broke or went silent.
    Lost,
    /// The same account logged in again elsewhere.
    Replaced,
    /// Could not keep up with the room.
    SlowConsumer,
    /// Kept sending past the rate limit, or sent something unacceptable.
    Kicked,
    /// The server is shutting down.
    Shutdown,
    /// Left the room with `part` (named rooms only).
    Parted,
    /// Banned from the room (named rooms only).
    Banned,
}

impl LeaveReason {
    pub fn describe(self) -> &'static str {
        match self {
            LeaveReason::Quit => "quit",
            LeaveReason::Lost => "connection lost",
            LeaveReason::Replaced => "logged in elsewhere",
            LeaveReason::SlowConsumer => "too slow to keep up",
            LeaveReason::Kicked => "disconnected by the server",
            LeaveReason::Shutdown => "server shutting down",
            LeaveReason::Parted => "parted",
            LeaveReason::Banned => "banned",
        }
    }
}

/// Every error code of `error` and `bye` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a JSON object of a known shape.
    BadFrame,
    /// The `type` field names no frame this server knows.
    UnknownType,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is longer than the frame limit (always a `bye`).
    FrameTooLong,
    /// The client's protocol version is not the server's.
    UnsupportedVersion,
    /// Only `register`, `login` and `ping` are accepted before login.
    NotLoggedIn,
    /// `register` or `login` on a connection that is already logged in.
    AlreadyLoggedIn,
    /// The user name breaks the rules (1-32 of letters, digits, `_`, `-`).
    InvalidName,
    /// The password breaks the rules (8-1024 bytes).
    InvalidPassword,
    /// The announced key is not a base64 Ed25519 public key.
    InvalidKey,
    /// `register` for a name that exists (compared case-insensitively).
    NameTaken,
    /// Wrong name or password; deliberately does not say which.
    LoginFailed,
    /// Too many failed logins for this account or from this address.
    Throttled,
    /// Too many password checks waiting; try again shortly.
    Busy,
    /// Message text over the limit, or empty.
    InvalidText,
    /// A room name that breaks the rules, or a room that cannot be left.
    InvalidRoom,
    /// `part`, `say`, `members` or `topic` for a room the client is not in.
    NotInRoom,
    /// The client is in as many rooms as allowed, or the server has as
    /// many rooms as it keeps.
    TooManyRooms,
    /// Only the room's operators may do that.
    NotOperator,
    /// Frames sent faster than the rate limit; this one was dropped.
    RateLimited,
    /// Kept flooding after being told to slow down (a `bye`).
    Flooding,
    /// The outgoing queue overflowed (a `bye`).
    SlowConsumer,
    /// No login within the login deadline (a `bye`).
    LoginTimeout,
    /// Nothing heard from the client for too long (a `bye`).
    KeepaliveTimeout,
    /// The account logged in on another connection (a `bye`).
    SessionReplaced,
    /// The client asked to log out (a `bye`).
    LoggedOut,
    /// The server is shutting down (a `bye`).
    ShuttingDown,
    /// Something failed inside the server; try again later.
    Internal,
    /// The server cannot reach its account database now (a login or
    /// registration); try again later.
    Unavailable,
    /// Refused on connecting: the address holds too many connections or
    /// opened too many in the last minute (then the connection closes).
    TooManyConnections,
    /// Refused on connecting: every connection slot is taken (then the
    /// connection closes).
    ServerFull,
    /// The account named does not exist, or is not in the room.
    NoSuchUser,
    /// `join` of a room the account is banned from.
    Banned,
    /// `say` in a room the account is muted in.
    Muted,
    /// Only server admins may do that.
    NotAdmin,
    /// The account is disabled (a login, or a `bye` to its sessions).
    AccountDisabled,
    /// The account was deleted (a `bye` to its sessions).
    AccountDeleted,
    /// `relay` to a user (or session key) not online.
    NotOnline,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::FrameTooLong => "frame_too_long",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::AlreadyLoggedIn => "already_logged_in",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidPassword => "invalid_password",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::LoginFailed => "login_failed",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Busy => "busy",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::NotOperator => "not_operator",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Flooding => "flooding",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::LoginTimeout => "login_timeout",
            ErrorCode::KeepaliveTimeout => "keepalive_timeout",
            ErrorCode::SessionReplaced => "session_replaced",
            ErrorCode::LoggedOut => "logged_out",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::NotAdmin => "not_admin",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::AccountDeleted => "account_deleted",
            ErrorCode::NotOnline => "not_online",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame type set, so a decoder can tell an unknown `type` from a known
/// one with bad fields.
pub trait FrameSet: DeserializeOwned {
    const TYPES: &'static [&'static str];
}

impl FrameSet for ClientFrame {
    const TYPES: &'static [&'static str] = &[
        "register", "login", "logout", "say", "users", "join", "part", "rooms", "members", "topic",
        "history", "kick", "ban", "unban", "mute", "unmute", "op", "deop", "bans", "disable",
        "enable", "delete", "relay", "ping", "pong",
    ];
}

impl FrameSet for ServerFrame {
    const TYPES: &'static [&'static str] = &[
        "hello",
        "welcome",
        "message",
        "users",
        "joined",
        "left",
        "room_joined",
        "room_parted",
        "rooms",
        "members",
        "topic",
        "history_end",
        "moderation",
        "bans",
        "direct",
        "ping",
        "pong",
        "error",
        "bye",
    ];
}

/// Why a frame could not be read, written or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the connection must close: a frame too long cannot be
    /// skipped safely and an I/O error ends the stream; anything else was one
    /// bad line among good ones.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::TooLong | FrameError::Io(_))
    }

    /// The code the server answers this error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLong => ErrorCode::FrameTooLong,
            FrameError::InvalidUtf8 => ErrorCode::InvalidUtf8,
            FrameError::UnknownType(_) => ErrorCode::UnknownType,
            FrameError::Malformed(_) | FrameError::Io(_) => ErrorCode::BadFrame,
        }
    }
}

/// Decodes one line (without its newline) into a frame of set `F`.
pub fn decode<F: FrameSet>(line: &[u8]) -> Result<F, FrameError> {
    if line.len() >= MAX_FRAME {
        return Err(FrameError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| FrameError::InvalidUtf8)?;
    serde_json::from_str(text).map_err(|err| classify::<F>(text, err))
}

/// Tells an unknown `type` from a malformed frame; only runs on failure.
fn classify<F: FrameSet>(text: &str, err: serde_json::Error) -> FrameError {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<Cow<'a, str>>,
    }
    match serde_json::from_str::<Probe>(text) {
        Ok(Probe { kind: Some(kind) }) if !F::TYPES.contains(&kind.as_ref()) => {
            FrameError::UnknownType(kind.chars().take(32).collect())
        }
        _ => FrameError::Malformed(err.to_string()),
    }
}

/// Encodes a frame as one line, newline included, checking the size limit.
pub fn encode<F: Serialize>(frame: &F) -> Result<Bytes, FrameError> {
    let mut line = serde_json::to_vec(frame)
        .map_err(|err| FrameError::Malformed(format!("cannot encode: {err}")))?;
    line.push(b'\n');
    if line.len() > MAX_FRAME {
        return Err(FrameError::TooLong);
    }
    Ok(Bytes::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn credentials() -> Credentials {
        Credentials {
            version: 1,
            name: "alice".into(),
            password: Password::new("correct horse"),
            udp_port: Some(40000),
            key: "AAAA".into(),
        }
    }

    #[test]
    fn client_frames_round_trip() {
        let frames = [
            ClientFrame::Register(credentials()),
            ClientFrame::Login(credentials()),
            ClientFrame::Logout,
            ClientFrame::Say {
                text: "hi".into(),
                room: None,
            },
            ClientFrame::Say {
                text: "hi".into(),
                room: Some("#rust".into()),
            },
            ClientFrame::Join {
                room: "#rust".into(),
            },
            ClientFrame::Rooms,
            ClientFrame::Users,
            ClientFrame::Ban {
                room: "#rust".into(),
                user: "bob".into(),
                reason: Some("spam".into()),
            },
            ClientFrame::Unmute {
                room: "#rust".into(),
                user: "bob".into(),
            },
            ClientFrame::Bans { room: None },
            ClientFrame::Delete { user: "bob".into() },
            ClientFrame::Relay(Relay {
                to: "bob".into(),
                key: "k".into(),
                seq: 3,
                text: "hi".into(),
                sig: "s".into(),
            }),
            ClientFrame::Register(Credentials {
                udp_port: None,
                ..credentials()
            }),
            ClientFrame::Ping { id: Some(7) },
            ClientFrame::Pong { id: None },
        ];
        for frame in frames {
            let line = encode(&frame).unwrap();
            assert!(line.ends_with(b"\n"));
            let back: ClientFrame = decode(&line[..line.len() - 1]).unwrap();
            assert_eq!(back, frame);
        }
    }

    #[test]
    fn documented_examples_decode() {
        let say: ClientFrame = decode(br#"{"type":"say","text":"hello, room"}"#).unwrap();
        assert_eq!(
            say,
            ClientFrame::Say {
                text: "hello, room".into(),
                room: None,
            }
        );
        let logout: ClientFrame = decode(br#"{"type":"logout"}"#).unwrap();
        assert_eq!(logout, ClientFrame::Logout);
        // Unknown fields are ignored, so later versions can add some.
        let ping: ClientFrame = decode(br#"{"type":"ping","extra":[1,2]}"#).unwrap();
        assert_eq!(ping, ClientFrame::Ping { id: None });
        let left = encode(&ServerFrame::Left {
            name: "bob".into(),
            reason: LeaveReason::SlowConsumer,
            room: None,
            key: None,
        })
        .unwrap();
        assert_eq!(
            &left[..],
            b"{\"type\":\"left\",\"name\":\"bob\",\"reason\":\"slow_consumer\"}\n"
        );
    }

    /// Every frame shown in PROTOCOL.md decodes as what it claims to be, and
    /// every error code there is one the code knows.
    #[test]
    fn protocol_document_examples_decode() {
        let doc = include_str!("../PROTOCOL.md");
        let mut checked = 0;
        for (at, _) in doc.match_indices("{\"type\":") {
            let example = &doc[at..];
            let end = example.find(['`', '\n']).unwrap_or(example.len());
            let example = &example[..end];
            if example.starts_with("{\"type\":\"direct_ack\"") {
                assert!(crate::direct::Ack::parse(example.as_bytes()).is_some());
                continue;
            }
            let client = decode::<ClientFrame>(example.as_bytes());
            let server = decode::<ServerFrame>(example.as_bytes());
            assert!(
                client.is_ok() || server.is_ok(),
                "{example}: {client:?} {server:?}"
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} examples found");
        let codes = [
            ErrorCode::BadFrame,
            ErrorCode::UnknownType,
            ErrorCode::InvalidUtf8,
            ErrorCode::FrameTooLong,
            ErrorCode::UnsupportedVersion,
            ErrorCode::NotLoggedIn,
            ErrorCode::AlreadyLoggedIn,
            ErrorCode::InvalidName,
            ErrorCode::InvalidPassword,
            ErrorCode::InvalidKey,
            ErrorCode::NameTaken,
            ErrorCode::LoginFailed,
            ErrorCode::Throttled,
            ErrorCode::Busy,
            ErrorCode::InvalidText,
            ErrorCode::InvalidRoom,
            ErrorCode::NotInRoom,
            ErrorCode::TooManyRooms,
            ErrorCode::NotOperator,
            ErrorCode::RateLimited,
            ErrorCode::Flooding,
            ErrorCode::SlowConsumer,
            ErrorCode::LoginTimeout,
            ErrorCode::KeepaliveTimeout,
            ErrorCode::SessionReplaced,
            ErrorCode::LoggedOut,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
            ErrorCode::TooManyConnections,
            ErrorCode::ServerFull,
            ErrorCode::NoSuchUser,
            ErrorCode::Banned,
            ErrorCode::Muted,
            ErrorCode::NotAdmin,
            ErrorCode::AccountDisabled,
            ErrorCode::AccountDeleted,
            ErrorCode::NotOnline,
        ];
        for code in codes {
            // No wildcard: a new code fails to compile until it is listed.
            match code {
                ErrorCode::BadFrame
                | ErrorCode::UnknownType
                | ErrorCode::InvalidUtf8
                | ErrorCode::FrameTooLong
                | ErrorCode::UnsupportedVersion
                | ErrorCode::NotLoggedIn
                | ErrorCode::AlreadyLoggedIn
                | ErrorCode::InvalidName
                | ErrorCode::InvalidPassword
                | ErrorCode::InvalidKey
                | ErrorCode::NameTaken
                | ErrorCode::LoginFailed
                | ErrorCode::Throttled
                | ErrorCode::Busy
                | ErrorCode::InvalidText
                | ErrorCode::InvalidRoom
                | ErrorCode::NotInRoom
                | ErrorCode::TooManyRooms
                | ErrorCode::NotOperator
                | ErrorCode::RateLimited
                | ErrorCode::Flooding
                | ErrorCode::SlowConsumer
                | ErrorCode::LoginTimeout
                | ErrorCode::KeepaliveTimeout
                | ErrorCode::SessionReplaced
                | ErrorCode::LoggedOut
                | ErrorCode::ShuttingDown
                | ErrorCode::Internal
                | ErrorCode::Unavailable
                | ErrorCode::TooManyConnections
                | ErrorCode::ServerFull
                | ErrorCode::NoSuchUser
                | ErrorCode::Banned
                | ErrorCode::Muted
                | ErrorCode::NotAdmin
                | ErrorCode::AccountDisabled
                | ErrorCode::AccountDeleted
                | ErrorCode::NotOnline => {}
            }
            assert!(
                doc.contains(&format!("| `{code}` |")),
                "{code} is not documented"
            );
        }
        let mut documented = 0;
        for line in doc.lines().filter(|line| line.starts_with("| `")) {
            let code = line.split('`').nth(1).unwrap();
            if line.contains("| error |") || line.contains("| bye |") {
                let parsed: ErrorCode = serde_json::from_str(&format!("\"{code}\"")).unwrap();
                assert_eq!(parsed.as_str(), code);
                documented += 1;
            }
        }
        assert_eq!(documented, codes.len(), "each code documented once");
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(
            decode::<ClientFrame>(br#"{"type":"dance"}"#),
            Err(FrameError::UnknownType(kind)) if kind == "dance"
        ));
        assert!(matches!(
            decode::<ClientFrame>(br#"{"type":"say"}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ClientFrame>(b"{not json"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ClientFrame>(b"[1,2]"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ClientFrame>(b"{\"type\":\"say\",\"text\":\"\xff\"}"),
            Err(FrameError::InvalidUtf8)
        ));
        let long = vec![b' '; MAX_FRAME];
        assert!(matches!(
            decode::<ClientFrame>(&long),
            Err(FrameError::TooLong)
        ));
        assert!(FrameError::TooLong.is_fatal());
        assert!(!FrameError::InvalidUtf8.is_fatal());
    }

    #[test]
    fn passwords_are_not_logged() {
        let shown = format!("{:?}", ClientFrame::Login(credentials()));
        assert!(!shown.contains("correct horse"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn codes_match_their_wire_names() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::LoginFailed,
            ErrorCode::SlowConsumer,
            ErrorCode::Internal,
        ] {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn oversized_encode_is_refused() {
        let frame = ClientFrame::Say {
            text: "x".repeat(MAX_FRAME),
            room: None,
        };
        assert!(matches!(encode(&frame), Err(FrameError::TooLong)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode::<ClientFrame>(&line);
            let _ = decode::<ServerFrame>(&line);
        }

        #[test]
        fn arbitrary_json_like_text_never_panics(line in r#"\{("type":"(say|login|users|ping|x)",?)?("[a-z_]{1,8}":("[^"]{0,8}"|[0-9]{1,20}|null|true|\[\]|\{\}),?){0,4}\}"#) {
            let _ = decode::<ClientFrame>(line.as_bytes());
            let _ = decode::<ServerFrame>(line.as_bytes());
        }

        #[test]
        fn say_text_round_trips(text in "\\PC{0,200}") {
            let frame = ClientFrame::Say { text, room: None };
            let line = encode(&frame).unwrap();
            prop_assert_eq!(decode::<ClientFrame>(&line[..line.len() - 1]).unwrap(), frame);
        }
    }
}
