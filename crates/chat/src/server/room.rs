//! The room: who is logged in, and the event stream every member's writer
//! follows. Joins, leaves and list snapshots happen under one lock and are
//! published while it is held, so every member sees them in the same order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tracing::{debug, info};

use crate::bus::Uplink;
use crate::bus::wire::{self, NODE_SHIFT, Present, node_of};
use crate::frame::{ErrorCode, LeaveReason, MAX_FRAME, ServerFrame, UserEntry, encode};
use crate::history::now_millis;
use crate::name::Username;

pub(crate) use crate::bus::wire::SessionId;

/// Added to the list interval per active user, so the bytes spent on list
/// updates grow with the room, not with its square.
const LIST_INTERVAL_PER_USER: Duration = Duration::from_millis(1);

/// One encoded frame on its way to every member but `from`.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub from: SessionId,
    pub line: Bytes,
}

/// How a session is told to end, and why. The first reason given wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kick {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Farewell>>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Farewell {
    pub code: ErrorCode,
    pub leave: LeaveReason,
    pub text: String,
}

impl Kick {
    pub fn fire(&self, code: ErrorCode, leave: LeaveReason, text: impl Into<String>) {
        let mut reason = lock(&self.reason);
        if reason.is_none() {
            *reason = Some(Farewell {
                code,
                leave,
                text: text.into(),
            });
        }
        drop(reason);
        self.token.cancel();
    }

    /// Ends the session without a farewell: the connection is already gone.
    pub fn stop(&self) {
        self.token.cancel();
    }

    /// Completes once the session is told to end (again at every poll
    /// after that, so it can be pinned once and polled in a loop).
    pub fn fired(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    pub fn farewell(&self) -> Option<Farewell> {
        lock(&self.reason).clone()
    }
}

#[derive(Debug)]
struct Member {
    id: SessionId,
    /// When it logged in, Unix milliseconds: an account's newest sessions
    /// are kept, on every node alike.
    since: u64,
    entry: UserEntry,
    /// `entry` as JSON, made once: lists are built from these.
    json: Vec<u8>,
    /// How to end it; `None` for a session on another node.
    kick: Option<Kick>,
    /// The session's own queue, for what is meant for it alone (relayed
    /// direct messages); set once the session has made it.
    outbox: Option<mpsc::Sender<Bytes>>,
}

#[derive(Debug, Default)]
struct Members {
    /// This node's sessions and, in a cluster, the other nodes'.
    by_id: HashMap<SessionId, Member>,
    /// Each account's sessions.
    by_account: HashMap<String, Vec<SessionId>>,
    next_id: SessionId,
}

impl Members {
    fn insert(&mut self, member: Member) {
        let account = member.entry.name.to_ascii_lowercase();
        self.by_account.entry(account).or_default().push(member.id);
        self.by_id.insert(member.id, member);
    }

    fn remove(&mut self, id: SessionId) -> Option<Member> {
        let member = self.by_id.remove(&id)?;
        let account = member.entry.name.to_ascii_lowercase();
        if let Some(ids) = self.by_account.get_mut(&account) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_account.remove(&account);
            }
        }
        Some(member)
    }

    /// An account's sessions, oldest first.
    fn sessions(&self, account: &str) -> Vec<&Member> {
        let mut found: Vec<&Member> = self
            .by_account
            .get(&account.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .collect();
        found.sort_unstable_by_key(|member| (member.since, member.id));
        found
    }

    /// This node's sessions of `account` that are not among its newest
    /// `keep` (counting `adding` new ones) anywhere in the cluster.
    fn beyond(&self, account: &str, keep: usize, adding: usize) -> Vec<SessionId> {
        let sessions = self.sessions(account);
        let excess = (sessions.len() + adding).saturating_sub(keep.max(1));
        sessions
            .into_iter()
            .take(excess)
            .filter(|member| member.kick.is_some())
            .map(|member| member.id)
            .collect()
    }
}

/// One session of an account, as `relay` and account actions find it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: SessionId,
    pub key: String,
    /// `None` for a session on another node (or not yet started).
    pub outbox: Option<mpsc::Sender<Bytes>>,
    pub kick: Option<Kick>,
}

/// What a session gets when it joins.
#[derive(Debug)]
pub(crate) struct Joined {
    pub id: SessionId,
    pub events: broadcast::Receiver<Event>,
    /// The user list at the moment of joining, as encoded frames.
    pub snapshot: Vec<Bytes>,
}

#[derive(Debug)]
pub(crate) struct Room {
    members: Mutex<Members>,
    events: broadcast::Sender<Event>,
    list_dirty: AtomicBool,
    list_changed: Notify,
    list_interval: Duration,
    capacity: usize,
    /// Sessions one account may have at once, in the whole cluster.
    sessions_per_user: usize,
    /// Where the other nodes hear of joins, leaves and messages; `None`
    /// for a server alone.
    uplink: Option<Uplink>,
}

impl Room {
    /// `queue` bounds how many events a member may fall behind. `node` is
    /// this node's number in a cluster (0 alone): its session ids carry it.
    pub fn new(
        queue: usize,
        list_interval: Duration,
        sessions_per_user: usize,
        node: u16,
        uplink: Option<Uplink>,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(queue.max(1));
        Arc::new(Self {
            members: Mutex::new(Members {
                next_id: (u64::from(node) << NODE_SHIFT) + 1,
                ..Members::default()
            }),
            events,
            list_dirty: AtomicBool::new(false),
            list_changed: Notify::new(),
            list_interval,
            // The channel rounds its capacity up to a power of two.
            capacity: queue.max(1).next_power_of_two(),
            sessions_per_user: sessions_per_user.max(1),
            uplink,
        })
    }

    /// Events a member may fall behind before it has lagged.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a session; an account already in as many sessions as it may
    /// have has its oldest here replaced (kicked). Older ones on other
    /// nodes are replaced there, when they hear of this one.
    pub fn join(
        &self,
        name: &Username,
        addr: Option<SocketAddr>,
        key: String,
        kick: Kick,
    ) -> Joined {
        let entry = UserEntry {
            name: name.to_string(),
            addr,
            key,
        };
        let mut members = lock(&self.members);
        let oldest = members.beyond(&name.key(), self.sessions_per_user, 1);
        self.replace(&mut members, oldest);
        let id = members.next_id;
        members.next_id += 1;
        let events = self.events.subscribe();
        self.publish(
            id,
            &ServerFrame::Joined {
                user: entry.clone(),
                room: None,
            },
        );
        let json = serde_json::to_vec(&entry).expect("a user entry serializes");
        let since = now_millis();
        self.tell(|| {
            wire::Event::Joined(Present {
                id,
                since,
                user: entry.clone(),
            })
        });
        members.insert(Member {
            id,
            since,
            entry,
            json,
            kick: Some(kick),
            outbox: None,
        });
        let snapshot = users_pages(&members);
        drop(members);
        self.list_changed_now();
        Joined {
            id,
            events,
            snapshot,
        }
    }

    /// Ends this node's sessions `ids`, replaced by newer logins.
    fn replace(&self, members: &mut Members, ids: Vec<SessionId>) {
        for old in ids {
            let Some(old) = members.remove(old) else {
                continue;
            };
            info!(user = %old.entry.name, "session replaced by a new login");
            if let Some(kick) = &old.kick {
                kick.fire(
                    ErrorCode::SessionReplaced,
                    LeaveReason::Replaced,
                    "this account logged in on another connection",
                );
            }
            self.publish_left(&old.entry, LeaveReason::Replaced);
            self.tell(|| wire::Event::Left {
                id: old.id,
                reason: LeaveReason::Replaced,
            });
        }
    }

    /// Gives session `id` its own queue.
    pub fn attach(&self, id: SessionId, outbox: mpsc::Sender<Bytes>) {
        if let Some(member) = lock(&self.members).by_id.get_mut(&id) {
            member.outbox = Some(outbox);
        }
    }

    /// The sessions of an account (any case), oldest first.
    pub fn sessions(&self, account: &str) -> Vec<Session> {
        lock(&self.members)
            .sessions(account)
            .into_iter()
            .map(|member| Session {
                id: member.id,
                key: member.entry.key.clone(),
                outbox: member.outbox.clone(),
                kick: member.kick.clone(),
            })
            .collect()
    }

    /// Removes session `id` if it is still logged in (not replaced),
    /// announcing the leave; returns whether it was.
    pub fn leave(&self, id: SessionId, reason: LeaveReason) -> bool {
        let mut members = lock(&self.members);
        let Some(gone) = members.remove(id) else {
            return false;
        };
        if reason != LeaveReason::Shutdown {
            self.publish_left(&gone.entry, reason);
        }
        self.tell(|| wire::Event::Left { id, reason });
        drop(members);
        self.list_changed_now();
        true
    }

    /// Sends a room message from session `id` to everyone else.
    /// `stamp` is the message's id and time, as history recorded it.
    pub fn say(&self, id: SessionId, from: &str, text: String, stamp: (u64, u64)) {
        if let Some(uplink) = &self.uplink {
            // Told before the local members see it, so that no node sees
            // a reply to it before it.
            uplink.send(wire::Event::Said {
                id: stamp.0,
                time: stamp.1,
                from: from.to_owned(),
                text: text.clone(),
                room: None,
            });
        }
        self.publish(
            id,
            &ServerFrame::Message {
                from: from.to_owned(),
                text,
                time: stamp.1,
                room: None,
                id: Some(stamp.0),
                history: false,
            },
        );
    }

    /// A session on another node joined.
    pub fn remote_joined(&self, present: Present) {
        let mut members = lock(&self.members);
        if members.by_id.contains_key(&present.id) {
            return;
        }
        self.publish(
            0,
            &ServerFrame::Joined {
                user: present.user.clone(),
                room: None,
            },
        );
        let account = present.user.name.to_ascii_lowercase();
        let json = serde_json::to_vec(&present.user).expect("a user entry serializes");
        members.insert(Member {
            id: present.id,
            since: present.since,
            entry: present.user,
            json,
            kick: None,
            outbox: None,
        });
        let oldest = members.beyond(&account, self.sessions_per_user, 0);
        self.replace(&mut members, oldest);
        drop(members);
        self.list_changed_now();
    }

    /// A session on another node left.
    pub fn remote_left(&self, id: SessionId, reason: LeaveReason) {
        let mut members = lock(&self.members);
        if members
            .by_id
            .get(&id)
            .is_none_or(|member| member.kick.is_some())
        {
            return;
        }
        if let Some(gone) = members.remove(id) {
            self.publish_left(&gone.entry, reason);
        }
        drop(members);
        self.list_changed_now();
    }

    /// Node `node`'s sessions, as it listed them: those no longer there
    /// leave (`lost`), new ones join. An empty list: the node is gone.
    pub fn sync(&self, node: u16, sessions: Vec<Present>, reason: LeaveReason) {
        let listed: Vec<SessionId> = sessions.iter().map(|present| present.id).collect();
        let gone: Vec<SessionId> = lock(&self.members)
            .by_id
            .values()
            .filter(|member| {
                member.kick.is_none() && node_of(member.id) == node && !listed.contains(&member.id)
            })
            .map(|member| member.id)
            .collect();
        for id in gone {
            self.remote_left(id, reason);
        }
        for present in sessions {
            self.remote_joined(present);
        }
    }

    /// This node's own sessions, for another node's `Sync`.
    pub fn local(&self) -> Vec<Present> {
        lock(&self.members)
            .by_id
            .values()
            .filter(|member| member.kick.is_some())
            .map(|member| Present {
                id: member.id,
                since: member.since,
                user: member.entry.clone(),
            })
            .collect()
    }

    /// A session's entry, wherever it is.
    pub fn entry(&self, id: SessionId) -> Option<UserEntry> {
        lock(&self.members)
            .by_id
            .get(&id)
            .map(|member| member.entry.clone())
    }

    /// Hands an encoded frame to one of this node's sessions; a session
    /// whose queue is full is too slow to keep.
    pub fn deliver_to(&self, id: SessionId, line: Bytes) {
        let members = lock(&self.members);
        let Some(member) = members.by_id.get(&id) else {
            return;
        };
        if let (Some(outbox), Some(kick)) = (&member.outbox, &member.kick)
            && let Err(mpsc::error::TrySendError::Full(_)) = outbox.try_send(line)
        {
            kick.fire(
                ErrorCode::SlowConsumer,
                LeaveReason::SlowConsumer,
                "outgoing queue full: not reading fast enough",
            );
        }
    }

    /// Sends a frame to every member here.
    pub fn broadcast(&self, frame: &ServerFrame) {
        self.publish(0, frame);
    }

    /// Hands an event to the other nodes, if there are any.
    pub fn tell(&self, event: impl FnOnce() -> wire::Event) {
        if let Some(uplink) = &self.uplink {
            uplink.send(event());
        }
    }

    /// The current user list as encoded frames.
    pub fn snapshot(&self) -> Vec<Bytes> {
        users_pages(&lock(&self.members))
    }

    /// Everyone's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let members = lock(&self.members);
        let mut names: Vec<String> = members
            .by_account
            .values()
            .filter_map(|ids| members.by_id.get(ids.first()?))
            .map(|member| member.entry.name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Accounts logged in (a user in several sessions counts once).
    pub fn len(&self) -> usize {
        lock(&self.members).by_account.len()
    }

    /// Sessions logged in.
    fn sessions_len(&self) -> usize {
        lock(&self.members).by_id.len()
    }

    /// Sends the full user list to everyone after joins and leaves, at most
    /// once per interval (longer for bigger rooms), until `shutdown`.
    pub async fn announce_lists(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last = Instant::now() - self.list_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.list_changed.notified() => {}
            }
            let interval = self.list_interval + LIST_INTERVAL_PER_USER * self.sessions_len() as u32;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(last + interval) => {}
            }
            if !self.list_dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let members = lock(&self.members);
            let pages = users_pages(&members);
            debug!(
                users = members.by_id.len(),
                frames = pages.len(),
                "user list broadcast"
            );
            for line in pages {
                let _ = self.events.send(Event { from: 0, line });
            }
            drop(members);
            last = Instant::now();
        }
    }

    fn list_changed_now(&self) {
        self.list_dirty.store(true, Ordering::Release);
        self.list_changed.notify_one();
    }

    fn publish_left(&self, entry: &UserEntry, reason: LeaveReason) {
        self.publish(
            0,
            &ServerFrame::Left {
                name: entry.name.clone(),
                reason,
                room: None,
                key: Some(entry.key.clone()),
            },
        );
    }

    fn publish(&self, from: SessionId, frame: &ServerFrame) {
        match encode(frame) {
            // No receivers is not an error: the room may be empty.
            Ok(line) => drop(self.events.send(Event { from, line })),
            Err(err) => tracing::error!(%err, "cannot encode a room event"),
        }
    }
}

/// The user list, sorted by name, split into frames under the size limit.
/// Entries were serialized once at join; a list is their concatenation.
fn users_pages(members: &Members) -> Vec<Bytes> {
    const OPEN: &[u8] = br#"{"type":"users","users":["#;
    const MORE: &[u8] = b"],\"more\":true}\n";
    const LAST: &[u8] = b"]}\n";
    let mut entries: Vec<&Member> = members.by_id.values().collect();
    entries.sort_unstable_by(|a, b| (&a.entry.name, a.id).cmp(&(&b.entry.name, b.id)));
    let mut pages = Vec::new();
    let mut page = OPEN.to_vec();
    for member in entries {
        let fits = page.len() + 1 + member.json.len() + MORE.len() <= MAX_FRAME;
        if !fits && page.len() > OPEN.len() {
            page.extend_from_slice(MORE);
            pages.push(Bytes::from(std::mem::replace(&mut page, OPEN.to_vec())));
        }
        if page.len() > OPEN.len() {
            page.push(b',');
        }
        page.extend_from_slice(&member.json);
    }
    page.extend_from_slice(LAST);
    pages.push(Bytes::from(page));
    pages
}

/// Locks ignoring poisoning: every critical section here leaves the data
/// consistent even if a panic interrupts it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ServerFrame, decode};

    fn name(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    fn addr() -> Option<SocketAddr> {
        Some("127.0.0.1:40000".parse().unwrap())
    }

    fn frame(line: &Bytes) -> ServerFrame {
        decode(&line[..line.len() - 1]).unwrap()
    }

    #[test]
    fn join_replace_and_leave_are_announced_once() {
        let room = Room::new(64, Duration::from_millis(10), 1, 0, None);
        let alice = room.join(&name("alice"), addr(), "k1".into(), Kick::default());
        let mut watcher = alice.events;
        // Everyone's writer sees its own `joined` and skips it by id.
        assert_eq!(watcher.try_recv().unwrap().from, alice.id);
        let first_kick = Kick::default();
        let bob = room.join(&name("bob"), addr(), "k2".into(), first_kick.clone());
        let event = watcher.try_recv().unwrap();
        assert_eq!(event.from, bob.id);
        assert!(
            matches!(frame(&event.line), ServerFrame::Joined { user, .. } if user.name == "bob")
        );

        // Bob again, in any case: the first session is kicked and left once.
        let bob2 = room.join(&name("BOB"), addr(), "k3".into(), Kick::default());
        assert_eq!(
            first_kick.farewell().unwrap().code,
            ErrorCode::SessionReplaced
        );
        let left = frame(&watcher.try_recv().unwrap().line);
        assert_eq!(
            left,
            ServerFrame::Left {
                name: "bob".into(),
                reason: LeaveReason::Replaced,
                room: None,
                key: Some("k2".into()),
            }
        );
        assert!(matches!(
            frame(&watcher.try_recv().unwrap().line),
            ServerFrame::Joined { .. }
        ));
        // The replaced session ending later announces nothing.
        assert!(!room.leave(bob.id, LeaveReason::Lost));
        assert!(watcher.try_recv().is_err());
        assert!(room.leave(bob2.id, LeaveReason::Quit));
        assert!(matches!(
            frame(&watcher.try_recv().unwrap().line),
            ServerFrame::Left {
                reason: LeaveReason::Quit,
                ..
            }
        ));
        assert_eq!(room.len(), 1);
    }

    #[test]
    fn several_sessions_of_one_account_when_allowed() {
        let room = Room::new(64, Duration::from_millis(10), 2, 0, None);
        let first_kick = Kick::default();
        let first = room.join(&name("bob"), addr(), "k1".into(), first_kick.clone());
        let second = room.join(&name("Bob"), addr(), "k2".into(), Kick::default());
        assert!(first_kick.farewell().is_none());
        assert_eq!(room.len(), 1);
        assert_eq!(room.names(), ["bob"]);
        let keys: Vec<String> = room.sessions("BOB").into_iter().map(|s| s.key).collect();
        assert_eq!(keys, ["k1", "k2"]);
        // A third login replaces the oldest.
        room.join(&name("bob"), addr(), "k3".into(), Kick::default());
        assert_eq!(
            first_kick.farewell().unwrap().code,
            ErrorCode::SessionReplaced
        );
        assert!(!room.leave(first.id, LeaveReason::Lost));
        assert!(room.leave(second.id, LeaveReason::Quit));
        assert_eq!(room.sessions("bob").len(), 1);
    }

    #[test]
    fn other_nodes_sessions_are_listed_replace_older_ones_and_go_with_their_node() {
        let room = Room::new(64, Duration::from_millis(10), 1, 1, None);
        let kick = Kick::default();
        let local = room.join(&name("bob"), addr(), "k1".into(), kick.clone());
        assert_eq!(node_of(local.id), 1);
        let mut watcher = local.events;
        let remote = |id: SessionId, user: &str, since: u64| Present {
            id,
            since,
            user: UserEntry {
                name: user.into(),
                addr: addr(),
                key: format!("key-{id}"),
            },
        };
        room.remote_joined(remote((2 << NODE_SHIFT) | 1, "alice", 1));
        assert_eq!(room.names(), ["alice", "bob"]);
        // A newer login of bob on node 2 replaces the one here.
        room.remote_joined(remote((2 << NODE_SHIFT) | 2, "Bob", u64::MAX));
        assert_eq!(kick.farewell().unwrap().code, ErrorCode::SessionReplaced);
        assert_eq!(room.sessions("bob").len(), 1);
        assert!(room.local().is_empty());
        // Node 2 is gone: its sessions leave, once each.
        room.sync(2, Vec::new(), LeaveReason::Lost);
        assert!(room.names().is_empty());
        let lefts = std::iter::from_fn(|| watcher.try_recv().ok())
            .filter(|event| matches!(frame(&event.line), ServerFrame::Left { .. }))
            .count();
        assert_eq!(lefts, 3);
    }

    #[test]
    fn big_lists_are_paged_under_the_limit() {
        let room = Room::new(64, Duration::from_millis(10), 1, 0, None);
        for i in 0..2000 {
            let key = format!("{i:044}");
            room.join(&name(&format!("user{i:04}")), addr(), key, Kick::default());
        }
        let pages = room.snapshot();
        assert!(pages.len() > 1);
        let mut seen = 0;
        for (i, page) in pages.iter().enumerate() {
            assert!(page.len() <= MAX_FRAME);
            match frame(page) {
                ServerFrame::Users { users, more } => {
                    seen += users.len();
                    assert_eq!(more, i + 1 < pages.len());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, 2000);
    }
}
