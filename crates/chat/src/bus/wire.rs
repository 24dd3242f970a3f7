//! What nodes say to each other on the bus: one JSON object per Redis
//! message, naming the node that published it and its place in that
//! node's sequence, so receivers apply each node's events in its order
//! and notice a gap (messages lost while a link was down).

use serde::{Deserialize, Serialize};

use crate::frame::{Action, ErrorCode, LeaveReason, UserEntry};

/// A session anywhere in the cluster; the node is in its high bits
/// ([`node_of`]), so ids never collide between nodes.
pub type SessionId = u64;

/// Bits of a session id below its node's number.
pub const NODE_SHIFT: u32 = 48;

/// The node a session lives on.
pub fn node_of(id: SessionId) -> u16 {
    (id >> NODE_SHIFT) as u16
}

/// One bus message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub node: u16,
    pub seq: u64,
    pub event: Event,
}

impl Envelope {
    /// Reads a message from the channel, as any node (or anyone else who
    /// can publish to this Redis) put it there.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The message as it goes on the channel.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// A session as other nodes list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Present {
    pub id: SessionId,
    /// When it logged in, Unix milliseconds: the newest logins of an
    /// account are the ones kept, on every node alike.
    pub since: u64,
    pub user: UserEntry,
}

/// A named room as one node holds it, for a node that has just come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub room: String,
    pub topic: String,
    /// Account keys.
    pub operators: Vec<String>,
    /// The sending node's sessions in it.
    pub seats: Vec<SessionId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Event {
    /// A node (re)connected: every node answers with its `Sync`.
    Hello,
    /// Everything the sender holds; it replaces what others knew of it.
    Sync {
        sessions: Vec<Present>,
        rooms: Vec<RoomState>,
    },
    /// The sender is alive; a node silent for the presence bound is dead.
    Beat,
    /// The sender is shutting down: its sessions end.
    Gone,
    Joined(Present),
    Left {
        id: SessionId,
        reason: LeaveReason,
    },
    /// A room message (`room` absent: the default room), with the id and
    /// time its node gave it.
    Said {
        id: u64,
        time: u64,
        from: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    RoomJoined {
        room: String,
        id: SessionId,
        /// Entering made the session's account an operator (it created
        /// the room): two nodes creating one room at once thus agree on
        /// both creators.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        operator: bool,
    },
    RoomLeft {
        room: String,
        id: SessionId,
        reason: LeaveReason,
    },
    Topic {
        room: String,
        topic: String,
        by: String,
    },
    Moderated {
        room: String,
        action: Action,
        target: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An admin ended an account's sessions (disabled, deleted).
    Ended {
        account: String,
        code: ErrorCode,
        text: String,
        deleted: bool,
    },
    /// A relayed direct message for one session, as its frame.
    Relay {
        to: SessionId,
        line: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let envelope = Envelope {
            node: 3,
            seq: 9,
            event: Event::Said {
                id: 41,
                time: 1,
                from: "alice".into(),
                text: "hi".into(),
                room: Some("#rust".into()),
            },
        };
        let json = String::from_utf8(envelope.encode().unwrap()).unwrap();
        assert!(json.contains(r#""op":"said""#), "{json}");
        let back = Envelope::decode(json.as_bytes()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(node_of((7 << NODE_SHIFT) | 5), 7);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(envelope) = Envelope::decode(&bytes) {
                let again = Envelope::decode(&envelope.encode().unwrap()).unwrap();
                proptest::prop_assert_eq!(again, envelope);
            }
        }

        #[test]
        fn said_events_survive_the_channel(
            node in 1u16..1024,
            seq: u64,
            id: u64,
            time: u64,
            from in "\\PC{1,32}",
            text in "\\PC{0,200}",
            room in proptest::option::of("#\\PC{1,20}"),
        ) {
            let envelope = Envelope { node, seq, event: Event::Said { id, time, from, text, room } };
            proptest::prop_assert_eq!(Envelope::decode(&envelope.encode().unwrap()).unwrap(), envelope);
        }
    }
}
