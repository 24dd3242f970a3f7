//! Named rooms (`#name`, PROTOCOL.md): created by their first join, each
//! with a topic and operators (the creator). A room outlives its members:
//! kept with its topic and operators in the account store (keeper.rs), it
//! is forgotten only when the server needs a place for a new room and it
//! is the empty room unused longest. Everyone logged in is also in the default room (room.rs),
//! whose fast broadcast path is untouched; a named room's events go into
//! each member's own outgoing queue instead, so a member may be in any
//! number of rooms without its writer following one stream per room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::keeper::{Change, Keeper};
use super::room::{Kick, SessionId};
use crate::bus::Uplink;
use crate::bus::wire::{Event, RoomState, node_of};
use crate::frame::{Action, ErrorCode, LeaveReason, RoomInfo, ServerFrame, UserEntry, encode};
use crate::store::{Sanction, SanctionKind, StoredRoom, unix_now};

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

    pub fn as_str(&self) -> &str {
        &self.0
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
    /// `None` for a session on another node, which delivers its events.
    pub outbox: Option<mpsc::Sender<Bytes>>,
    pub kick: Kick,
}

impl Seat {
    /// A session on another node.
    pub fn remote(id: SessionId, entry: UserEntry) -> Self {
        Self {
            id,
            entry,
            outbox: None,
            kick: Kick::default(),
        }
    }

    fn key(&self) -> String {
        self.entry.name.to_ascii_lowercase()
    }

    fn is_local(&self) -> bool {
        self.outbox.is_some()
    }

    /// Queues a frame; a member whose queue is full is too slow to keep.
    fn send(&self, line: &Bytes) {
        let Some(outbox) = &self.outbox else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = outbox.try_send(line.clone()) {
            self.kick.fire(
                ErrorCode::SlowConsumer,
                LeaveReason::SlowConsumer,
                "outgoing queue full: not reading fast enough",
            );
        }
    }
}

/// A moderation action done.
#[derive(Debug)]
pub struct Moderated {
    /// The room as shown.
    pub room: String,
    pub announcement: ServerFrame,
    /// Whether the moderator got the announcement as a member.
    pub told: bool,
}

/// Who asks for a moderation action.
#[derive(Debug, Clone, Copy)]
pub struct Moderator<'a> {
    pub id: SessionId,
    pub name: &'a str,
    /// A server admin may act in every room, member or not.
    pub admin: bool,
}

#[derive(Debug)]
struct Room {
    name: String,
    topic: String,
    /// Account keys of the operators.
    operators: Vec<String>,
    /// By account key and session: an account may be here in several
    /// sessions. Empty in a room kept for its next members.
    members: BTreeMap<(String, SessionId), Seat>,
    /// Unix seconds.
    created: u64,
    /// Unix seconds when it last changed or emptied.
    used: u64,
}

impl Room {
    fn new(name: &str, topic: String, operators: Vec<String>) -> Self {
        let now = unix_now();
        Self {
            name: name.to_owned(),
            topic,
            operators,
            members: BTreeMap::new(),
            created: now,
            used: now,
        }
    }

    fn stored(&self) -> StoredRoom {
        StoredRoom {
            name: self.name.clone(),
            topic: self.topic.clone(),
            operators: self.operators.clone(),
            created: self.created,
            used: self.used,
        }
    }

    fn publish(&self, frame: &ServerFrame, except: Option<SessionId>) {
        let Ok(line) = encode(frame) else { return };
        for seat in self.members.values() {
            if Some(seat.id) != except {
                seat.send(&line);
            }
        }
    }

    /// Every member's name, once per account.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for seat in self.members.values() {
            if names.last() != Some(&seat.entry.name) {
                names.push(seat.entry.name.clone());
            }
        }
        names
    }

    fn seats_of(&self, account: &str) -> Vec<Seat> {
        self.members
            .range((account.to_owned(), 0)..=(account.to_owned(), SessionId::MAX))
            .map(|(_, seat)| seat.clone())
            .collect()
    }

    fn holds(&self, account: &str) -> bool {
        !self.seats_of(account).is_empty()
    }

    /// Removes every seat of `account`: it gets `room_parted`, the others
    /// `left` with `reason`.
    fn remove_account(&mut self, account: &str, reason: LeaveReason) -> Option<String> {
        let seats = self.seats_of(account);
        let first = seats.first()?;
        let name = first.entry.name.clone();
        let parted = encode(&ServerFrame::RoomParted {
            room: self.name.clone(),
        });
        for seat in &seats {
            self.members.remove(&(account.to_owned(), seat.id));
            if let Ok(line) = &parted {
                seat.send(line);
            }
        }
        let left = ServerFrame::Left {
            name: name.clone(),
            reason,
            room: Some(self.name.clone()),
            key: None,
        };
        self.publish(&left, None);
        Some(name)
    }
}

/// Rooms, and the bans and mutes that outlive them, under one lock: a ban
/// and a join, or a mute and a message, cannot pass each other.
#[derive(Debug, Default)]
struct State {
    rooms: HashMap<String, Room>,
    /// (room key, account key) pairs, each marked once the database has
    /// it: only a ban known to be stored may be found lifted there.
    bans: HashMap<(String, String), bool>,
    mutes: HashSet<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Rooms {
    state: Mutex<State>,
    /// Rooms one session may be in at once, and rooms the server keeps.
    per_session: usize,
    most: usize,
    /// Where the other nodes hear what happens in rooms; `None` alone.
    uplink: Option<Uplink>,
    /// Where changes made here are saved; `None` keeps rooms in memory.
    keeper: Option<Keeper>,
}

impl Rooms {
    pub fn new(
        per_session: usize,
        most: usize,
        uplink: Option<Uplink>,
        keeper: Option<Keeper>,
    ) -> Self {
        Self {
            state: Mutex::new(State::default()),
            per_session: per_session.max(1),
            most: most.max(1),
            uplink,
            keeper,
        }
    }

    /// Saves a change made on this node (another node's are its own to
    /// save); called under the lock, so changes are saved in order.
    fn keep(&self, change: impl FnOnce() -> Change) {
        if let Some(keeper) = &self.keeper {
            keeper.send(change());
        }
    }

    /// Waits until the changes made so far are saved (or tried, while
    /// the store is down): at shutdown, so none is lost with the process.
    pub async fn settle(&self) {
        if let Some(keeper) = &self.keeper {
            keeper.settle().await;
        }
    }

    /// Takes the rooms kept in the store, the most recently used first,
    /// as many as the server keeps.
    pub fn restore_rooms(&self, stored: Vec<StoredRoom>) {
        let mut state = lock(&self.state);
        for kept in stored.into_iter().take(self.most) {
            let room = Room {
                created: kept.created,
                used: kept.used,
                ..Room::new(&kept.name, kept.topic, kept.operators)
            };
            state
                .rooms
                .entry(kept.name.to_ascii_lowercase())
                .or_insert(room);
        }
    }

    fn tell(&self, event: impl FnOnce() -> Event) {
        if let Some(uplink) = &self.uplink {
            uplink.send(event());
        }
    }

    /// Takes the bans and mutes recorded in the database.
    pub fn restore(&self, sanctions: Vec<Sanction>) {
        let mut state = lock(&self.state);
        for sanction in sanctions {
            let pair = (
                sanction.room.to_ascii_lowercase(),
                sanction.account.to_ascii_lowercase(),
            );
            match sanction.kind {
                SanctionKind::Ban => drop(state.bans.insert(pair, true)),
                SanctionKind::Mute => drop(state.mutes.insert(pair)),
            };
        }
    }

    /// Adds `seat` to `room`, creating it (with `seat` as its operator).
    pub fn join(&self, room: &RoomName, seat: Seat) -> Result<Entered, Refused> {
        let mut state = lock(&self.state);
        let key = room.key();
        let me = seat.key();
        if state.bans.contains_key(&(key.clone(), me.clone())) {
            let text = format!("you are banned from {}", room.0);
            return Err((ErrorCode::Banned, text));
        }
        let rooms = &mut state.rooms;
        let already = rooms
            .get(&key)
            .is_some_and(|r| r.members.contains_key(&(me.clone(), seat.id)));
        if !already {
            let mine = rooms
                .values()
                .filter(|r| r.members.contains_key(&(me.clone(), seat.id)))
                .count();
            if mine >= self.per_session {
                let text = format!("you are in {mine} rooms, the most allowed");
                return Err((ErrorCode::TooManyRooms, text));
            }
            if !rooms.contains_key(&key) && rooms.len() >= self.most {
                let Some(forgotten) = evict(rooms) else {
                    let text = "the server has as many rooms as it keeps".to_owned();
                    return Err((ErrorCode::TooManyRooms, text));
                };
                self.keep(|| Change::Forget(forgotten));
            }
        }
        let created = !rooms.contains_key(&key);
        let empty = rooms.get(&key).is_none_or(|r| r.members.is_empty());
        let was_operator = rooms.get(&key).is_some_and(|r| r.operators.contains(&me));
        let id = seat.id;
        let entry = enter(rooms, &room.0, seat);
        if !already {
            self.tell(|| Event::RoomJoined {
                room: entry.name.clone(),
                id,
                operator: !was_operator && entry.operators.contains(&me),
            });
        }
        if empty {
            self.keep(|| Change::Save(entry.stored()));
        }
        let operators = entry
            .names()
            .into_iter()
            .filter(|name| entry.operators.contains(&name.to_ascii_lowercase()))
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
        let mut state = lock(&self.state);
        let key = room.key();
        let shown = self
            .leave_one(&mut state.rooms, &key, id, name, LeaveReason::Parted)
            .ok_or_else(|| not_in(room))?;
        Ok(shown)
    }

    /// Removes session `id` from every room it is in.
    pub fn leave_all(&self, id: SessionId, name: &str, reason: LeaveReason) {
        let mut state = lock(&self.state);
        let me = (name.to_ascii_lowercase(), id);
        let keys: Vec<String> = state
            .rooms
            .iter()
            .filter(|(_, room)| room.members.contains_key(&me))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.leave_one(&mut state.rooms, &key, id, name, reason);
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
        let seat = room.members.remove(&(me.clone(), id))?;
        let shown = room.name.clone();
        if seat.is_local() {
            self.tell(|| Event::RoomLeft {
                room: shown.clone(),
                id,
                reason,
            });
        }
        if room.members.is_empty() {
            room.used = unix_now();
            if seat.is_local() {
                self.keep(|| Change::Save(room.stored()));
            }
        } else if reason != LeaveReason::Shutdown && !room.holds(&me) {
            let left = ServerFrame::Left {
                name: name.to_owned(),
                reason,
                room: Some(shown.clone()),
                key: None,
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
        let state = lock(&self.state);
        let target = state
            .rooms
            .get(&room.key())
            .filter(|r| is_member(r, id, from))
            .ok_or_else(|| not_in(room))?;
        if state
            .mutes
            .contains(&(room.key(), from.to_ascii_lowercase()))
        {
            let text = format!("you are muted in {}", target.name);
            return Err((ErrorCode::Muted, text));
        }
        // Recorded under the lock, so ids rise in the order members see.
        let (message_id, time) = stamp(&target.name, &text);
        self.tell(|| Event::Said {
            id: message_id,
            time,
            from: from.to_owned(),
            text: text.clone(),
            room: Some(target.name.clone()),
        });
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
        let state = lock(&self.state);
        let found = state
            .rooms
            .get(&room.key())
            .filter(|r| is_member(r, id, name))
            .ok_or_else(|| not_in(room))?;
        Ok((found.name.clone(), found.names()))
    }

    /// Sets the topic, if the setter is one of the room's operators (or
    /// an admin); returns the announcement if the setter is not a member
    /// (an admin), who is told apart.
    pub fn topic(
        &self,
        room: &RoomName,
        by: Moderator<'_>,
        topic: String,
    ) -> Result<Option<ServerFrame>, Refused> {
        if topic.len() > MAX_TOPIC {
            let text = format!("a topic has at most {MAX_TOPIC} bytes");
            return Err((ErrorCode::InvalidText, text));
        }
        let mut state = lock(&self.state);
        let target = authorize(&mut state.rooms, room, by)?;
        target.topic = topic.clone();
        target.used = unix_now();
        self.keep(|| Change::Save(target.stored()));
        self.tell(|| Event::Topic {
            room: target.name.clone(),
            topic: topic.clone(),
            by: by.name.to_owned(),
        });
        let changed = ServerFrame::Topic {
            room: target.name.clone(),
            topic,
            by: by.name.to_owned(),
        };
        target.publish(&changed, None);
        let told = is_member(target, by.id, by.name);
        Ok((!told).then_some(changed))
    }

    /// Whether `by` may moderate `room` (its bans may be listed).
    pub fn check_moderator(&self, room: &RoomName, by: Moderator<'_>) -> Result<(), Refused> {
        if by.admin {
            return Ok(());
        }
        authorize(&mut lock(&self.state).rooms, room, by).map(|_| ())
    }

    /// Applies a moderation action on account `target` (as stored, or as
    /// named when the action needs no account) in `room`, announcing it to
    /// the room's members, the target's sessions there included.
    pub fn moderate(
        &self,
        room: &RoomName,
        by: Moderator<'_>,
        action: Action,
        target: &str,
        reason: Option<String>,
    ) -> Result<Moderated, Refused> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let key = room.key();
        let account = target.to_ascii_lowercase();
        let pair = (key.clone(), account.clone());
        let present = state.rooms.get(&key).filter(|r| r.holds(&account));
        let shown_target = present
            .and_then(|r| r.seats_of(&account).first().map(|s| s.entry.name.clone()))
            .unwrap_or_else(|| target.to_owned());
        let shown_room = state
            .rooms
            .get(&key)
            .map_or(room.0.clone(), |r| r.name.clone());
        let missing = |why: &str| {
            (
                ErrorCode::NoSuchUser,
                format!("{target} {why} {shown_room}"),
            )
        };
        let needs_room = !matches!(action, Action::Unban | Action::Unmute) || !by.admin;
        if needs_room {
            authorize(&mut state.rooms, room, by)?;
        }
        match action {
            Action::Kick | Action::Op
                if state.rooms.get(&key).is_none_or(|r| !r.holds(&account)) =>
            {
                return Err(missing("is not in"));
            }
            Action::Deop
                if state
                    .rooms
                    .get(&key)
                    .is_none_or(|r| !r.operators.contains(&account)) =>
            {
                return Err(missing("is not an operator of"));
            }
            Action::Unban if !state.bans.contains_key(&pair) => {
                return Err(missing("is not banned from"));
            }
            Action::Unmute if !state.mutes.contains(&pair) => {
                return Err(missing("is not muted in"));
            }
            _ => {}
        }
        let announcement = ServerFrame::Moderation {
            action,
            user: shown_target.clone(),
            by: by.name.to_owned(),
            room: Some(shown_room.clone()),
            reason: reason.clone(),
        };
        let told = state
            .rooms
            .get(&key)
            .is_some_and(|target| is_member(target, by.id, by.name));
        apply(state, &key, &account, action, &announcement);
        if let Some(changed) = state.rooms.get(&key)
            && matches!(action, Action::Op | Action::Deop)
        {
            self.keep(|| Change::Save(changed.stored()));
        }
        self.tell(|| Event::Moderated {
            room: shown_room.clone(),
            action,
            target: shown_target,
            by: by.name.to_owned(),
            reason,
        });
        Ok(Moderated {
            room: shown_room,
            announcement,
            told,
        })
    }

    /// Marks a ban as stored in the database.
    pub fn ban_stored(&self, room: &str, account: &str) {
        let pair = (room.to_ascii_lowercase(), account.to_ascii_lowercase());
        if let Some(stored) = lock(&self.state).bans.get_mut(&pair) {
            *stored = true;
        }
    }

    /// Forgets a stored ban that the database no longer has (lifted with
    /// `netkit chat admin` while the server ran); a ban still being
    /// written is kept.
    pub fn ban_lifted(&self, room: &str, account: &str) {
        let pair = (room.to_ascii_lowercase(), account.to_ascii_lowercase());
        let mut state = lock(&self.state);
        if state.bans.get(&pair) == Some(&true) {
            state.bans.remove(&pair);
        }
    }

    /// Forgets a deleted account's bans, mutes and operator grants (the
    /// store deletes its own with the account).
    pub fn forget(&self, account: &str) {
        let account = account.to_ascii_lowercase();
        let mut state = lock(&self.state);
        state.bans.retain(|(_, banned), _| *banned != account);
        state.mutes.retain(|(_, muted)| *muted != account);
        for room in state.rooms.values_mut() {
            room.operators.retain(|op| *op != account);
        }
    }

    /// Every named room, kept empty ones too, sorted by name.
    pub fn list(&self) -> Vec<RoomInfo> {
        let state = lock(&self.state);
        let mut list: Vec<RoomInfo> = state
            .rooms
            .values()
            .map(|room| RoomInfo {
                name: room.name.clone(),
                members: room.names().len(),
                topic: room.topic.clone(),
            })
            .collect();
        list.sort_unstable_by_key(|room| room.name.to_ascii_lowercase());
        list
    }
    /// A session on another node joined `room` (creating it here too, as
    /// its operator, if this node had no one in it), and became one of its
    /// operators by entering if `operator`. That node saved the room; this
    /// one saves it only when a member here created it at the same time,
    /// so that both creators are kept as operators everywhere.
    pub fn remote_join(&self, room: &str, seat: Seat, operator: bool) {
        let mut state = lock(&self.state);
        let rooms = &mut state.rooms;
        if !rooms.contains_key(&room.to_ascii_lowercase()) && rooms.len() >= self.most {
            evict(rooms);
        }
        let account = seat.key();
        let entry = enter(rooms, room, seat);
        if operator && !entry.operators.contains(&account) {
            entry.operators.push(account);
            if entry.members.values().any(Seat::is_local) {
                self.keep(|| Change::Save(entry.stored()));
            }
        }
    }

    /// A session on another node left `room`.
    pub fn remote_leave(&self, room: &str, id: SessionId, reason: LeaveReason) {
        let mut state = lock(&self.state);
        let key = room.to_ascii_lowercase();
        let name = state.rooms.get(&key).and_then(|r| {
            r.members
                .values()
                .find(|seat| seat.id == id)
                .map(|seat| seat.entry.name.clone())
        });
        if let Some(name) = name {
            self.leave_one(&mut state.rooms, &key, id, &name, reason);
        }
    }

    /// A message said in `room` on another node, for the members here.
    pub fn remote_say(&self, room: &str, message: &ServerFrame) {
        let state = lock(&self.state);
        if let Some(target) = state.rooms.get(&room.to_ascii_lowercase()) {
            target.publish(message, None);
        }
    }

    /// A topic set on another node.
    pub fn remote_topic(&self, room: &str, topic: String, by: String) {
        let mut state = lock(&self.state);
        if let Some(target) = state.rooms.get_mut(&room.to_ascii_lowercase()) {
            target.topic = topic.clone();
            let changed = ServerFrame::Topic {
                room: target.name.clone(),
                topic,
                by,
            };
            target.publish(&changed, None);
        }
    }

    /// A moderation action taken on another node, which checked it and
    /// stores it: applied and announced here alike.
    pub fn remote_moderate(
        &self,
        room: &str,
        action: Action,
        target: String,
        by: String,
        reason: Option<String>,
    ) {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let key = room.to_ascii_lowercase();
        let shown_room = state
            .rooms
            .get(&key)
            .map_or(room.to_owned(), |r| r.name.clone());
        let announcement = ServerFrame::Moderation {
            action,
            user: target.clone(),
            by,
            room: Some(shown_room),
            reason,
        };
        apply(
            state,
            &key,
            &target.to_ascii_lowercase(),
            action,
            &announcement,
        );
    }

    /// Node `node`'s seats, as it listed them (with its rooms' topics and
    /// operators): those no longer listed leave with `reason`, new ones
    /// join. `entry` finds a session's user entry.
    pub fn sync(
        &self,
        node: u16,
        listed: Vec<RoomState>,
        reason: LeaveReason,
        entry: impl Fn(SessionId) -> Option<UserEntry>,
    ) {
        let mut state = lock(&self.state);
        let mut gone = Vec::new();
        for (key, room) in &state.rooms {
            for seat in room.members.values() {
                let still = listed
                    .iter()
                    .any(|r| r.room.eq_ignore_ascii_case(&room.name) && r.seats.contains(&seat.id));
                if node_of(seat.id) == node && !seat.is_local() && !still {
                    gone.push((key.clone(), seat.id, seat.entry.name.clone()));
                }
            }
        }
        for (key, id, name) in gone {
            self.leave_one(&mut state.rooms, &key, id, &name, reason);
        }
        for room in listed {
            let key = room.room.to_ascii_lowercase();
            let known = state.rooms.entry(key).or_insert_with(|| {
                Room::new(&room.room, room.topic.clone(), room.operators.clone())
            });
            for op in room.operators {
                if !known.operators.contains(&op) {
                    known.operators.push(op);
                }
            }
            for id in room.seats {
                if let Some(user) = entry(id) {
                    enter(&mut state.rooms, &room.room, Seat::remote(id, user));
                }
            }
        }
    }

    /// This node's seats in every room, for another node's `Sync`.
    pub fn local(&self) -> Vec<RoomState> {
        let state = lock(&self.state);
        state
            .rooms
            .values()
            .filter_map(|room| {
                let seats: Vec<SessionId> = room
                    .members
                    .values()
                    .filter(|seat| seat.is_local())
                    .map(|seat| seat.id)
                    .collect();
                (!seats.is_empty()).then(|| RoomState {
                    room: room.name.clone(),
                    topic: room.topic.clone(),
                    operators: room.operators.clone(),
                    seats,
                })
            })
            .collect()
    }
}

/// Seats `seat` in the room shown as `shown`, creating the room with its
/// account as operator (as it does entering an empty room left with no
/// operators, which could not be run otherwise); another session of an
/// account already there joins quietly, and a seat already there changes
/// nothing.
fn enter<'r>(rooms: &'r mut HashMap<String, Room>, shown: &str, seat: Seat) -> &'r mut Room {
    let me = seat.key();
    let room = rooms
        .entry(shown.to_ascii_lowercase())
        .or_insert_with(|| Room::new(shown, String::new(), Vec::new()));
    if room.members.is_empty() && room.operators.is_empty() {
        room.operators.push(me.clone());
    }
    if !room.members.contains_key(&(me.clone(), seat.id)) {
        if !room.holds(&me) {
            let joined = ServerFrame::Joined {
                user: seat.entry.clone(),
                room: Some(room.name.clone()),
            };
            room.publish(&joined, None);
        }
        room.members.insert((me, seat.id), seat);
    }
    room
}

/// Announces a moderation action to the room and applies it. A ban is
/// not yet known to be stored (on another node, not yet known here at
/// all), so a join meanwhile cannot find it missing from the database.
fn apply(state: &mut State, key: &str, account: &str, action: Action, announcement: &ServerFrame) {
    let pair = (key.to_owned(), account.to_owned());
    if let Some(target) = state.rooms.get(key) {
        target.publish(announcement, None);
    }
    match action {
        Action::Kick | Action::Ban => {
            if action == Action::Ban {
                state.bans.insert(pair, false);
            }
            let leave = if action == Action::Ban {
                LeaveReason::Banned
            } else {
                LeaveReason::Kicked
            };
            if let Some(target) = state.rooms.get_mut(key) {
                target.remove_account(account, leave);
                if target.members.is_empty() {
                    target.used = unix_now();
                }
            }
        }
        Action::Unban => {
            state.bans.remove(&pair);
        }
        Action::Mute => {
            state.mutes.insert(pair);
        }
        Action::Unmute => {
            state.mutes.remove(&pair);
        }
        Action::Op => {
            if let Some(target) = state.rooms.get_mut(key)
                && !target.operators.contains(&pair.1)
            {
                target.operators.push(pair.1);
            }
        }
        Action::Deop => {
            if let Some(target) = state.rooms.get_mut(key) {
                target.operators.retain(|op| *op != account);
            }
        }
        Action::Disable | Action::Enable | Action::Delete => {}
    }
}

/// Forgets the empty room unused longest, to make a place for a new one;
/// returns its name, or `None` when every room has members.
fn evict(rooms: &mut HashMap<String, Room>) -> Option<String> {
    let key = rooms
        .iter()
        .filter(|(_, room)| room.members.is_empty())
        .min_by_key(|(_, room)| room.used)
        .map(|(key, _)| key.clone())?;
    rooms.remove(&key).map(|room| room.name)
}

/// The room, if `by` may moderate it: an admin anywhere it exists, anyone
/// else as one of its operators.
fn authorize<'r>(
    rooms: &'r mut HashMap<String, Room>,
    room: &RoomName,
    by: Moderator<'_>,
) -> Result<&'r mut Room, Refused> {
    let target = rooms
        .get_mut(&room.key())
        .filter(|r| by.admin || is_member(r, by.id, by.name))
        .ok_or_else(|| not_in(room))?;
    if !by.admin && !target.operators.contains(&by.name.to_ascii_lowercase()) {
        let text = format!("only the operators of {} may do that", target.name);
        return Err((ErrorCode::NotOperator, text));
    }
    Ok(target)
}

fn is_member(room: &Room, id: SessionId, name: &str) -> bool {
    room.members.contains_key(&(name.to_ascii_lowercase(), id))
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
            addr: "127.0.0.1:9".parse().ok(),
            key: "k".into(),
        };
        let kick = Kick::default();
        (
            Seat {
                id,
                entry,
                outbox: Some(outbox),
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

    fn moderator(id: SessionId, name: &str) -> Moderator<'_> {
        Moderator {
            id,
            name,
            admin: false,
        }
    }

    fn drain(inbox: &mut mpsc::Receiver<Bytes>) -> Vec<ServerFrame> {
        std::iter::from_fn(|| inbox.try_recv().ok())
            .map(|line| decode(&line[..line.len() - 1]).unwrap())
            .collect()
    }

    #[test]
    fn operators_kick_ban_and_mute() {
        let rooms = Rooms::new(10, 10, None, None);
        let (alice, mut alice_in) = seat(1, "alice");
        let (bob, mut bob_in) = seat(2, "bob");
        let (carol, mut carol_in) = seat(3, "carol");
        rooms.join(&room("#r"), alice).unwrap();
        rooms.join(&room("#r"), bob.clone()).unwrap();
        rooms.join(&room("#r"), carol).unwrap();
        drain(&mut alice_in);
        drain(&mut bob_in);
        // Not an operator: refused, nothing announced.
        let refused = rooms.moderate(
            &room("#r"),
            moderator(2, "bob"),
            Action::Kick,
            "carol",
            None,
        );
        assert_eq!(refused.unwrap_err().0, ErrorCode::NotOperator);
        let missing = rooms.moderate(
            &room("#r"),
            moderator(1, "alice"),
            Action::Kick,
            "dave",
            None,
        );
        assert_eq!(missing.unwrap_err().0, ErrorCode::NoSuchUser);
        assert!(
            drain(&mut carol_in)
                .iter()
                .all(|f| !matches!(f, ServerFrame::Moderation { .. }))
        );

        rooms
            .moderate(
                &room("#r"),
                moderator(1, "alice"),
                Action::Mute,
                "carol",
                None,
            )
            .unwrap();
        let said = rooms.say(&room("#r"), 3, "carol", "hi".into(), |_, _| (1, 1));
        assert_eq!(said.unwrap_err().0, ErrorCode::Muted);
        rooms
            .moderate(&room("#r"), moderator(1, "alice"), Action::Op, "bob", None)
            .unwrap();
        rooms
            .moderate(
                &room("#r"),
                moderator(2, "bob"),
                Action::Ban,
                "carol",
                Some("spam".into()),
            )
            .unwrap();
        let seen = drain(&mut carol_in);
        assert!(seen.iter().any(|f| matches!(f, ServerFrame::Moderation { action: Action::Ban, reason: Some(r), .. } if r == "spam")), "{seen:?}");
        assert!(
            matches!(seen.last(), Some(ServerFrame::RoomParted { .. })),
            "{seen:?}"
        );
        assert!(drain(&mut alice_in).iter().any(|f| matches!(
            f,
            ServerFrame::Left {
                reason: LeaveReason::Banned,
                ..
            }
        )));
        let (carol, _carol_in) = seat(4, "Carol");
        assert_eq!(
            rooms.join(&room("#R"), carol.clone()).unwrap_err().0,
            ErrorCode::Banned
        );
        rooms
            .moderate(
                &room("#r"),
                moderator(2, "bob"),
                Action::Unban,
                "CAROL",
                None,
            )
            .unwrap();
        rooms.join(&room("#r"), carol).unwrap();
        // Kicked, not banned: may come back; the room goes with its last.
        rooms
            .moderate(
                &room("#r"),
                moderator(1, "alice"),
                Action::Kick,
                "bob",
                None,
            )
            .unwrap();
        assert!(
            drain(&mut bob_in)
                .iter()
                .any(|f| matches!(f, ServerFrame::RoomParted { .. }))
        );
        rooms.join(&room("#r"), bob).unwrap();
        let admin = Moderator {
            id: 99,
            name: "root",
            admin: true,
        };
        rooms
            .moderate(&room("#r"), admin, Action::Kick, "alice", None)
            .unwrap();
        rooms
            .moderate(&room("#r"), admin, Action::Kick, "bob", None)
            .unwrap();
        rooms
            .moderate(&room("#r"), admin, Action::Kick, "carol", None)
            .unwrap();
        // Emptied, the room is kept for its next members.
        let kept = rooms.list();
        assert_eq!((kept.len(), kept[0].members), (1, 0));
        // A ban is only forgotten as lifted in the database once stored.
        rooms
            .moderate(&room("#r"), admin, Action::Unban, "dave", None)
            .unwrap_err();
        let (dave, _dave_in) = seat(5, "dave");
        rooms.join(&room("#r"), dave.clone()).unwrap();
        rooms
            .moderate(&room("#r"), admin, Action::Ban, "dave", None)
            .unwrap();
        rooms.ban_lifted("#R", "DAVE");
        assert_eq!(
            rooms.join(&room("#r"), dave.clone()).unwrap_err().0,
            ErrorCode::Banned
        );
        rooms.ban_stored("#r", "dave");
        rooms.ban_lifted("#r", "dave");
        rooms.join(&room("#r"), dave).unwrap();
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
        let rooms = Rooms::new(2, 10, None, None);
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
        let refused = rooms.topic(&room("#rust"), moderator(2, "bob"), "mine".into());
        assert_eq!(refused.unwrap_err().0, ErrorCode::NotOperator);
        rooms
            .topic(&room("#rust"), moderator(1, "alice"), "Rust things".into())
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
        // The last member leaving keeps the room, its topic and its
        // operators, for the next members.
        rooms.leave_all(1, "alice", LeaveReason::Quit);
        let kept = rooms.list();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].members, kept[0].topic.as_str()),
            (0, "Rust things")
        );
        let (carol, _carol_in) = seat(3, "carol");
        let entered = rooms.join(&room("#RUST"), carol).unwrap();
        assert!(!entered.created);
        assert_eq!(
            (entered.room.as_str(), entered.topic.as_str()),
            ("#Rust", "Rust things")
        );
        // Alice is still its operator, not whoever comes first.
        assert!(entered.operators.is_empty());
        assert_eq!(
            rooms
                .topic(&room("#rust"), moderator(3, "carol"), "mine".into())
                .unwrap_err()
                .0,
            ErrorCode::NotOperator
        );
    }

    /// Two nodes creating one room at once: each hears that the other's
    /// member became an operator by entering, so both are, on both.
    #[test]
    fn a_room_created_on_two_nodes_at_once_has_both_creators_as_operators() {
        let rooms = Rooms::new(10, 10, None, None);
        let (alice, _alice_in) = seat(1, "alice");
        rooms.join(&room("#x"), alice).unwrap();
        let remote = |id: SessionId, name: &str| {
            let (seat, _) = seat(id | (2 << 48), name);
            Seat::remote(seat.id, seat.entry)
        };
        rooms.remote_join("#x", remote(2, "bob"), true);
        let (carol, _carol_in) = seat(3, "carol");
        let entered = rooms.join(&room("#x"), carol).unwrap();
        assert_eq!(entered.operators, ["alice", "bob"]);
        // A plain join from another node makes no operator.
        rooms.remote_join("#x", remote(4, "dave"), false);
        let (erin, _erin_in) = seat(5, "erin");
        let entered = rooms.join(&room("#x"), erin).unwrap();
        assert_eq!(entered.operators, ["alice", "bob"]);
    }

    /// An empty room left without operators goes to whoever enters it,
    /// so that no room is stuck unmanaged.
    #[test]
    fn an_empty_room_without_operators_goes_to_its_next_member() {
        let rooms = Rooms::new(10, 10, None, None);
        let (alice, _alice_in) = seat(1, "alice");
        rooms.join(&room("#r"), alice).unwrap();
        rooms
            .moderate(
                &room("#r"),
                moderator(1, "alice"),
                Action::Deop,
                "alice",
                None,
            )
            .unwrap();
        rooms.leave_all(1, "alice", LeaveReason::Quit);
        let (bob, _bob_in) = seat(2, "bob");
        let entered = rooms.join(&room("#r"), bob).unwrap();
        assert!(!entered.created);
        assert_eq!(entered.operators, ["bob"]);
    }

    #[test]
    fn limits_per_session_and_overall() {
        let rooms = Rooms::new(2, 3, None, None);
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
            rooms.join(&room("#d"), bob.clone()).unwrap_err().0,
            ErrorCode::TooManyRooms
        );
        // An empty room kept is given up for a new one, the one unused
        // longest first; rooms with members never are.
        rooms.part(&room("#a"), 1, "alice").unwrap();
        rooms.join(&room("#d"), bob.clone()).unwrap();
        let names: Vec<String> = rooms.list().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["#b", "#c", "#d"]);
        let (carol, _carol_in) = seat(3, "carol");
        assert_eq!(
            rooms.join(&room("#e"), carol).unwrap_err().0,
            ErrorCode::TooManyRooms
        );
    }
}
