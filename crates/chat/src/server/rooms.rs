//! Named rooms (`#name`, PROTOCOL.md): created by their first join, gone
//! when their last member leaves, each with a topic and operators (the
//! creator). Everyone logged in is also in the default room (room.rs),
//! whose fast broadcast path is untouched; a named room's events go into
//! each member's own outgoing queue instead, so a member may be in any
//! number of rooms without its writer following one stream per room.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::room::{Kick, SessionId};
use crate::frame::{ErrorCode, LeaveReason, RoomInfo, ServerFrame, UserEntry, encode};

/// The room everyone is in, as `rooms` lists it and `join`/`say` name it.
pub const DEFAULT_ROOM: &str = "#lobby";

/// The longest room name after its `#`.
pub const MAX_ROOM_NAME: usize = 32;

/// The longest topic, in bytes.
pub const MAX_TOPIC: usize = 300;

/// A valid room name: `#` and 1-32 ASCII letters, digits, `_` or `-`,
/// compared regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let Some(bare) = name.strip_prefix('#') else {
            return Err("a room name starts with #".into());
        };
        if bare.is_empty() || bare.len() > MAX_ROOM_NAME {
            return Err(format!(
                "a room name has 1 to {MAX_ROOM_NAME} characters after its #"
            ));
        }
        if !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("a room name may only hold letters, digits, `_` and `-`".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn is_default(&self) -> bool {
        self.key() == DEFAULT_ROOM
    }
}

/// Why a room request failed: the code and text of the `error` frame.
pub type Refused = (ErrorCode, String);

/// A room as `join` finds it.
#[derive(Debug)]
pub struct Entered {
    pub room: String,
    pub topic: String,
    pub created: bool,
    /// Operators present, then every member, by name.
    pub operators: Vec<String>,
    pub members: Vec<String>,
}

/// A session as the rooms know it: where its events go.
#[derive(Debug, Clone)]
pub struct Seat {
    pub id: SessionId,
    pub entry: UserEntry,
    pub outbox: mpsc::Sender<Bytes>,
    pub kick: Kick,
}

impl Seat {
    fn key(&self) -> String {
        self.entry.name.to_ascii_lowercase()
    }

    /// Queues a frame; a member whose queue is full is too slow to keep.
    fn send(&self, line: &Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(line.clone()) {
            self.kick.fire(
                ErrorCode::SlowConsumer,
                LeaveReason::SlowConsumer,
                "outgoing queue full: not reading fast enough",
            );
        }
    }
}

#[derive(Debug)]
struct Room {
    name: String,
    topic: String,
    /// Account keys of the operators.
    operators: Vec<String>,
    /// By account key.
    members: BTreeMap<String, Seat>,
}

impl Room {
    fn publish(&self, frame: &ServerFrame, except: Option<SessionId>) {
        let Ok(line) = encode(frame) else { return };
        for seat in self.members.values() {
            if Some(seat.id) != except {
                seat.send(&line);
            }
        }
    }

    fn names(&self) -> Vec<String> {
        self.members
            .values()
            .map(|s| s.entry.name.clone())
            .collect()
    }
}

#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: Mutex<HashMap<String, Room>>,
    /// Rooms one session may be in at once, and rooms the server keeps.
    per_session: usize,
    most: usize,
}

impl Rooms {
    pub fn new(per_session: usize, most: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            per_session: per_session.max(1),
            most: most.max(1),
        }
    }

    /// Adds `seat` to `room`, creating it (with `seat` as its operator).
    pub fn join(&self, room: &RoomName, seat: Seat) -> Result<Entered, Refused> {
        let mut rooms = lock(&self.rooms);
        let key = room.key();
        let me = seat.key();
        let already = rooms
            .get(&key)
            .is_some_and(|r| r.members.get(&me).is_some_and(|s| s.id == seat.id));
        if !already {
            let mine = rooms
                .values()
                .filter(|r| r.members.get(&me).is_some_and(|s| s.id == seat.id))
                .count();
            if mine >= self.per_session {
                let text = format!("you are in {mine} rooms, the most allowed");
                return Err((ErrorCode::TooManyRooms, text));
            }
            if !rooms.contains_key(&key) && rooms.len() >= self.most {
                let text = "the server has as many rooms as it keeps".to_owned();
                return Err((ErrorCode::TooManyRooms, text));
            }
        }
        let created = !rooms.contains_key(&key);
        let entry = rooms.entry(key).or_insert_with(|| Room {
            name: room.0.clone(),
            topic: String::new(),
            operators: vec![me.clone()],
            members: BTreeMap::new(),
        });
        if !already {
            let joined = ServerFrame::Joined {
                user: seat.entry.clone(),
                room: Some(entry.name.clone()),
            };
            entry.publish(&joined, None);
            // A replaced session's seat is taken over by the new one.
            entry.members.insert(me, seat);
        }
        let operators = entry
            .members
            .iter()
            .filter(|(key, _)| entry.operators.contains(key))
            .map(|(_, seat)| seat.entry.name.clone())
            .collect();
        Ok(Entered {
            room: entry.name.clone(),
            topic: entry.topic.clone(),
            created,
            operators,
            members: entry.names(),
        })
    }

    /// Removes session `id` from `room`.
    pub fn part(&self, room: &RoomName, id: SessionId, name: &str) -> Result<String, Refused> {
        let mut rooms = lock(&self.rooms);
        let key = room.key();
        let shown = self
            .leave_one(&mut rooms, &key, id, name, LeaveReason::Parted)
            .ok_or_else(|| not_in(room))?;
        Ok(shown)
    }

    /// Removes session `id` from every room it is in.
    pub fn leave_all(&self, id: SessionId, name: &str, reason: LeaveReason) {
        let mut rooms = lock(&self.rooms);
        let keys: Vec<String> = rooms.keys().cloned().collect();
        for key in keys {
            self.leave_one(&mut rooms, &key, id, name, reason);
        }
    }

    fn leave_one(
        &self,
        rooms: &mut HashMap<String, Room>,
        key: &str,
        id: SessionId,
        name: &str,
        reason: LeaveReason,
    ) -> Option<String> {
        let room = rooms.get_mut(key)?;
        let me = name.to_ascii_lowercase();
        if room.members.get(&me).is_none_or(|seat| seat.id != id) {
            return None;
        }
        room.members.remove(&me);
        let shown = room.name.clone();
        if room.members.is_empty() {
            rooms.remove(key);
        } else if reason != LeaveReason::Shutdown {
            let left = ServerFrame::Left {
                name: name.to_owned(),
                reason,
                room: Some(shown.clone()),
            };
            room.publish(&left, None);
        }
        Some(shown)
    }

    /// Sends a message from session `id` to the other members of `room`.
    pub fn say(
        &self,
        room: &RoomName,
        id: SessionId,
        from: &str,
        text: String,
        stamp: impl FnOnce(&str, &str) -> (u64, u64),
    ) -> Result<(), Refused> {
        let rooms = lock(&self.rooms);
        let target = rooms
            .get(&room.key())
            .filter(|r| is_member(r, id, from))
            .ok_or_else(|| not_in(room))?;
        // Recorded under the lock, so ids rise in the order members see.
        let (message_id, time) = stamp(&target.name, &text);
        let message = ServerFrame::Message {
            from: from.to_owned(),
            text,
            time,
            room: Some(target.name.clone()),
            id: Some(message_id),
            history: false,
        };
        target.publish(&message, Some(id));
        Ok(())
    }

    /// The room's name and members, for one of its members.
    pub fn members(
        &self,
        room: &RoomName,
        id: SessionId,
        name: &str,
    ) -> Result<(String, Vec<String>), Refused> {
        let rooms = lock(&self.rooms);
        let found = rooms
            .get(&room.key())
            .filter(|r| is_member(r, id, name))
            .ok_or_else(|| not_in(room))?;
        Ok((found.name.clone(), found.names()))
    }

    /// Sets the topic, if session `id` is one of the room's operators.
    pub fn topic(
        &self,
        room: &RoomName,
        id: SessionId,
        by: &str,
        topic: String,
    ) -> Result<(), Refused> {
        if topic.len() > MAX_TOPIC {
            let text = format!("a topic has at most {MAX_TOPIC} bytes");
            return Err((ErrorCode::InvalidText, text));
        }
        let mut rooms = lock(&self.rooms);
        let target = rooms
            .get_mut(&room.key())
            .filter(|r| is_member(r, id, by))
            .ok_or_else(|| not_in(room))?;
        if !target.operators.contains(&by.to_ascii_lowercase()) {
            let text = format!("only the operators of {} may do that", target.name);
            return Err((ErrorCode::NotOperator, text));
        }
        target.topic = topic.clone();
        let changed = ServerFrame::Topic {
            room: target.name.clone(),
            topic,
            by: by.to_owned(),
        };
        target.publish(&changed, None);
        Ok(())
    }

    /// Every named room, sorted by name.
    pub fn list(&self) -> Vec<RoomInfo> {
        let rooms = lock(&self.rooms);
        let mut list: Vec<RoomInfo> = rooms
            .values()
            .map(|room| RoomInfo {
                name: room.name.clone(),
                members: room.members.len(),
                topic: room.topic.clone(),
            })
            .collect();
        list.sort_unstable_by_key(|room| room.name.to_ascii_lowercase());
        list
    }
}

fn is_member(room: &Room, id: SessionId, name: &str) -> bool {
    room.members
        .get(&name.to_ascii_lowercase())
        .is_some_and(|seat| seat.id == id)
}

fn not_in(room: &RoomName) -> Refused {
    (ErrorCode::NotInRoom, format!("you are not in {}", room.0))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::decode;

    fn seat(id: SessionId, name: &str) -> (Seat, mpsc::Receiver<Bytes>) {
        let (outbox, inbox) = mpsc::channel(16);
        let entry = UserEntry {
            name: name.into(),
            addr: "127.0.0.1:9".parse().unwrap(),
            key: "k".into(),
        };
        let kick = Kick::default();
        (
            Seat {
                id,
                entry,
                outbox,
                kick,
            },
            inbox,
        )
    }

    fn next(inbox: &mut mpsc::Receiver<Bytes>) -> ServerFrame {
        let line = inbox.try_recv().expect("a frame");
        decode(&line[..line.len() - 1]).unwrap()
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(RoomName::parse("#rust").is_ok());
        assert!(RoomName::parse("#a-b_C9").is_ok());
        assert_eq!(room("#Rust").key(), "#rust");
        assert!(room("#LOBBY").is_default());
        for bad in ["rust", "#", "# x", "#ünï", &format!("#{}", "x".repeat(33))] {
            assert!(RoomName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn join_say_topic_part() {
        let rooms = Rooms::new(2, 10);
        let (alice, mut alice_in) = seat(1, "alice");
        let (bob, mut bob_in) = seat(2, "bob");
        let joined = rooms.join(&room("#Rust"), alice).unwrap();
        assert!(joined.created);
        assert_eq!(joined.operators, ["alice"]);
        // Any case names the same room; its first spelling stays.
        let joined = rooms.join(&room("#RUST"), bob).unwrap();
        assert!(!joined.created);
        assert_eq!(joined.room, "#Rust");
        assert_eq!(joined.members, ["alice", "bob"]);
        assert!(
            matches!(next(&mut alice_in), ServerFrame::Joined { user, .. } if user.name == "bob")
        );
        rooms
            .say(&room("#rust"), 2, "bob", "hi".into(), |_, _| (1, 2))
            .unwrap();
        assert!(matches!(next(&mut alice_in), ServerFrame::Message { text, .. } if text == "hi"));
        assert!(bob_in.try_recv().is_err(), "no echo to the sender");
        let refused = rooms.topic(&room("#rust"), 2, "bob", "mine".into());
        assert_eq!(refused.unwrap_err().0, ErrorCode::NotOperator);
        rooms
            .topic(&room("#rust"), 1, "alice", "Rust things".into())
            .unwrap();
        assert!(
            matches!(next(&mut bob_in), ServerFrame::Topic { topic, .. } if topic == "Rust things")
        );
        assert_eq!(rooms.list()[0].topic, "Rust things");
        assert_eq!(rooms.part(&room("#rust"), 2, "bob").unwrap(), "#Rust");
        assert!(matches!(next(&mut alice_in), ServerFrame::Topic { .. }));
        assert!(matches!(
            next(&mut alice_in),
            ServerFrame::Left {
                reason: LeaveReason::Parted,
                ..
            }
        ));
        assert_eq!(
            rooms.part(&room("#rust"), 2, "bob").unwrap_err().0,
            ErrorCode::NotInRoom
        );
        assert_eq!(
            rooms
                .say(&room("#rust"), 2, "bob", "x".into(), |_, _| (3, 4))
                .unwrap_err()
                .0,
            ErrorCode::NotInRoom
        );
        // The last member leaving removes the room.
        rooms.leave_all(1, "alice", LeaveReason::Quit);
        assert!(rooms.list().is_empty());
    }

    #[test]
    fn limits_per_session_and_overall() {
        let rooms = Rooms::new(2, 3);
        let (alice, _alice_in) = seat(1, "alice");
        rooms.join(&room("#a"), alice.clone()).unwrap();
        rooms.join(&room("#b"), alice.clone()).unwrap();
        // Joining a room again is not one more.
        rooms.join(&room("#B"), alice.clone()).unwrap();
        assert_eq!(
            rooms.join(&room("#c"), alice).unwrap_err().0,
            ErrorCode::TooManyRooms
        );
        let (bob, _bob_in) = seat(2, "bob");
        rooms.join(&room("#c"), bob.clone()).unwrap();
        assert_eq!(
            rooms.join(&room("#d"), bob).unwrap_err().0,
            ErrorCode::TooManyRooms
        );
    }
}
