//! A member's room requests: `join`, `part`, `rooms`, `members`, `topic`.
//! Long answers (`rooms`, `members`) are split over several frames, every
//! one but the last marked `more`, as the user list is.

use super::rooms::{DEFAULT_ROOM, Refused, RoomName};
use super::session::Member;
use crate::frame::{ErrorCode, RoomInfo, ServerFrame, encode};

/// Names per `members` frame: 1,000 names of at most 32 bytes stay far
/// below the frame limit.
const NAMES_PER_FRAME: usize = 1000;

/// Rooms per `rooms` frame: with 300-byte topics, 100 rooms stay below it.
const ROOMS_PER_FRAME: usize = 100;

impl Member<'_> {
    pub(super) fn join(&self, room: &str) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            self.reply(&ServerFrame::RoomJoined {
                room: DEFAULT_ROOM.into(),
                topic: String::new(),
                created: false,
                operators: Vec::new(),
            });
            self.send_members(DEFAULT_ROOM, self.shared.room.names());
            return;
        }
        match self.shared.rooms.join(&room, self.seat.clone()) {
            Ok(entered) => {
                self.reply(&ServerFrame::RoomJoined {
                    room: entered.room.clone(),
                    topic: entered.topic,
                    created: entered.created,
                    operators: entered.operators,
                });
                self.send_members(&entered.room, entered.members);
            }
            Err((code, text)) => self.reply(&error(code, text)),
        }
    }

    pub(super) fn part(&self, room: &str) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            let text = "the default room cannot be left; log out instead";
            self.reply(&error(ErrorCode::InvalidRoom, text));
            return;
        }
        match self.shared.rooms.part(&room, self.id, self.name.as_str()) {
            Ok(room) => self.reply(&ServerFrame::RoomParted { room }),
            Err((code, text)) => self.reply(&error(code, text)),
        }
    }

    pub(super) fn rooms(&self) {
        let mut rooms = vec![RoomInfo {
            name: DEFAULT_ROOM.into(),
            members: self.shared.room.len(),
            topic: String::new(),
        }];
        rooms.extend(self.shared.rooms.list());
        let pages: Vec<Vec<RoomInfo>> = rooms
            .chunks(ROOMS_PER_FRAME)
            .map(<[RoomInfo]>::to_vec)
            .collect();
        let last = pages.len() - 1;
        for (i, rooms) in pages.into_iter().enumerate() {
            self.reply(&ServerFrame::Rooms {
                rooms,
                more: i < last,
            });
        }
    }

    pub(super) fn members(&self, room: &str) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            self.send_members(DEFAULT_ROOM, self.shared.room.names());
            return;
        }
        match self
            .shared
            .rooms
            .members(&room, self.id, self.name.as_str())
        {
            Ok((shown, names)) => self.send_members(&shown, names),
            Err((code, text)) => self.reply(&error(code, text)),
        }
    }

    pub(super) fn topic(&self, room: &str, topic: String) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            let text = "the default room has no topic";
            self.reply(&error(ErrorCode::InvalidRoom, text));
            return;
        }
        let set = self
            .shared
            .rooms
            .topic(&room, self.id, self.name.as_str(), topic);
        self.refused(set);
    }

    /// Answers a refused request with its `error`.
    pub(super) fn refused<T>(&self, result: Result<T, Refused>) {
        if let Err((code, text)) = result {
            self.reply(&error(code, text));
        }
    }

    fn room(&self, name: &str) -> Option<RoomName> {
        match RoomName::parse(name) {
            Ok(room) => Some(room),
            Err(why) => {
                self.reply(&error(ErrorCode::InvalidRoom, why));
                None
            }
        }
    }

    fn send_members(&self, room: &str, names: Vec<String>) {
        let pages: Vec<&[String]> = names.chunks(NAMES_PER_FRAME).collect();
        let last = pages.len().saturating_sub(1);
        if pages.is_empty() {
            self.reply(&ServerFrame::Members {
                room: room.into(),
                members: Vec::new(),
                more: false,
            });
        }
        for (i, members) in pages.into_iter().enumerate() {
            if let Ok(line) = encode(&ServerFrame::Members {
                room: room.into(),
                members: members.to_vec(),
                more: i < last,
            }) {
                self.queue(line);
            }
        }
    }
}

fn error(code: ErrorCode, text: impl Into<String>) -> ServerFrame {
    ServerFrame::Error {
        code,
        text: text.into(),
    }
}
