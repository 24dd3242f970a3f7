//! What the chat client reports to its caller: room messages and events,
//! answers to its requests, verified (or rejected) direct messages, and the
//! end of the session.

use std::net::SocketAddr;

use crate::direct::Rejection;
use crate::frame::{Action, BanEntry, ClusterState, ErrorCode, LeaveReason, RoomInfo, UserEntry};

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message {
        from: String,
        text: String,
        time: u64,
        /// The named room it was said in; `None` for the default room.
        room: Option<String>,
        /// The server's id for it (what `history` pages by).
        id: Option<u64>,
        /// Replayed from history rather than said just now.
        history: bool,
    },
    /// The end of a history replay.
    HistoryEnd {
        room: String,
        count: usize,
    },
    /// A direct message verified against the sender's current key.
    Direct {
        from: String,
        text: String,
        /// Came through the server rather than over UDP.
        relayed: bool,
    },
    /// Direct messages to `to` got no acknowledgement over UDP and were
    /// sent again through the server.
    Relayed {
        to: String,
    },
    /// A direct message that could not be verified, with what it claimed;
    /// `source` is the datagram's sender, `None` when the server relayed it.
    Unverified {
        source: Option<SocketAddr>,
        claimed: Option<String>,
        text: Option<String>,
        why: Rejection,
    },
    Joined {
        name: String,
        room: Option<String>,
    },
    Left {
        name: String,
        reason: LeaveReason,
        room: Option<String>,
    },
    /// This session joined a named room; its member list follows.
    RoomJoined {
        room: String,
        topic: String,
        created: bool,
        operators: Vec<String>,
    },
    RoomParted {
        room: String,
    },
    /// The complete room list, after the server sent it.
    Rooms(Vec<RoomInfo>),
    /// A room's complete member list.
    Members {
        room: String,
        names: Vec<String>,
    },
    Topic {
        room: String,
        topic: String,
        by: String,
    },
    /// A moderation action in `room`, or on an account (no room).
    Moderation {
        action: Action,
        user: String,
        by: String,
        room: Option<String>,
        reason: Option<String>,
    },
    /// The complete ban list asked for.
    Bans(Vec<BanEntry>),
    /// The complete user list, after the server sent it.
    Users(Vec<UserEntry>),
    /// The server's link to its cluster went down or came back.
    Status {
        cluster: ClusterState,
        text: String,
    },
    /// A request failed; the session goes on.
    Error {
        code: ErrorCode,
        text: String,
    },
    /// The session is over; no events follow.
    Closed {
        code: Option<ErrorCode>,
        text: String,
    },
}
