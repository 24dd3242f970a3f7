//! A member's room requests: `join`, `part`, `rooms`, `members`, `topic`.
//! Long answers (`rooms`, `members`) are split over several frames, every
//! one but the last marked `more`, as the user list is.

use super::rooms::{DEFAULT_ROOM, Refused, RoomName};
use super::session::Member;
use tokio::sync::mpsc;

use crate::frame::{ErrorCode, LeaveReason, RoomInfo, ServerFrame, encode};

/// Names per `members` frame: 1,000 names of at most 32 bytes stay far
/// below the frame limit.
const NAMES_PER_FRAME: usize = 1000;

/// Messages a `history` request gets without `limit`, and at most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

/// Rooms per `rooms` frame: with 300-byte topics, 100 rooms stay below it.
const ROOMS_PER_FRAME: usize = 100;

impl Member<'_> {
    pub(super) async fn join(&self, room: &str) {
        let Some(room) = self.room(room) else { return };
        if room.is_default() {
            self.reply(&ServerFrame::RoomJoined {
                room: DEFAULT_ROOM.into(),
                topic: String::new(),
                created: false,
                operators: Vec::new(),
            });
            self.send_members(DEFAULT_ROOM, self.shared.room.names());
            let replay = self.shared.config.history_on_join;
            self.send_history(DEFAULT_ROOM.into(), None, replay);
            return;
        }
        let mut joined = self.shared.rooms.join(&room, self.seat.clone());
        if let Err((ErrorCode::Banned, _)) = joined
            && !self.still_banned(&room).await
        {
            joined = self.shared.rooms.join(&room, self.seat.clone());
        }
        match joined {
            Ok(entered) => {
                self.reply(&ServerFrame::RoomJoined {
                    room: entered.room.clone(),
                    topic: entered.topic,
                    created: entered.created,
                    operators: entered.operators,
                });
                self.send_members(&entered.room, entered.members);
                let replay = self.shared.config.history_on_join;
                self.send_history(entered.room, None, replay);
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
        let length = topic.len();
        match self.shared.rooms.topic(&room, self.moderator(), topic) {
            Ok(untold) => {
                tracing::info!(room = %room.key(), by = %self.name, bytes = length, "topic set");
                if let Some(changed) = untold {
                    self.reply(&changed);
                }
            }
            Err((code, text)) => self.reply(&error(code, text)),
        }
    }

    pub(super) fn history(&self, room: &str, before: Option<u64>, limit: Option<usize>) {
        let Some(room) = self.room(room) else { return };
        let limit = limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        if room.is_default() {
            self.send_history(DEFAULT_ROOM.into(), before, limit);
            return;
        }
        // Only members read a room's history.
        match self
            .shared
            .rooms
            .members(&room, self.id, self.name.as_str())
        {
            Ok((shown, _)) => self.send_history(shown, before, limit),
            Err((code, text)) => self.reply(&error(code, text)),
        }
    }

    /// Sends up to `limit` messages of `room` before id `before`, marked
    /// as history, then `history_end`. The store answers on its own thread,
    /// in the order asked; the messages follow whatever is queued meanwhile.
    fn send_history(&self, room: String, before: Option<u64>, limit: usize) {
        let replies = self.replies.clone();
        let kick = self.kick.clone();
        let asked = room.clone();
        self.shared
            .history
            .page(&asked, before, limit, move |page| {
                let count = page.len();
                let frames = page
                    .into_iter()
                    .map(|stored| ServerFrame::Message {
                        from: stored.from,
                        text: stored.text,
                        time: stored.time,
                        room: (stored.room != DEFAULT_ROOM).then_some(stored.room),
                        id: Some(stored.id),
                        history: true,
                    })
                    .chain(std::iter::once(ServerFrame::HistoryEnd { room, count }));
                for frame in frames {
                    let Ok(line) = encode(&frame) else { continue };
                    if let Err(mpsc::error::TrySendError::Full(_)) = replies.try_send(line) {
                        kick.fire(
                            ErrorCode::SlowConsumer,
                            LeaveReason::SlowConsumer,
                            "outgoing queue full: not reading fast enough",
                        );
                        return;
                    }
                }
            });
    }

    /// Answers a refused request with its `error`.
    pub(super) fn refused<T>(&self, result: Result<T, Refused>) {
        if let Err((code, text)) = result {
            self.reply(&error(code, text));
        }
    }

    pub(super) fn room(&self, name: &str) -> Option<RoomName> {
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

pub(super) fn error(code: ErrorCode, text: impl Into<String>) -> ServerFrame {
    ServerFrame::Error {
        code,
        text: text.into(),
    }
}
