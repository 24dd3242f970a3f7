//! Room history: every room message gets a server-assigned id and time and
//! is stored, bounded per room by count and age. Storage sits behind
//! [`HistoryStore`] (SQLite here, in the accounts database; PostgreSQL in
//! the `postgres` module). One thread owns the store and serves appends
//! and queries in the order they were made, so a query sees every message
//! accepted before it, and a busy room costs one transaction per batch of
//! messages, not one per message. While the store is unavailable
//! (PostgreSQL down) messages wait, in order and up to a bound, and are
//! stored once it is back.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use tracing::{info, warn};

use crate::store::StoreError;

/// One stored room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: u64,
    /// The room as shown (`#Rust`); looked up regardless of case.
    pub room: String,
    pub from: String,
    pub text: String,
    /// Unix milliseconds.
    pub time: u64,
}

/// How much history each room keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub per_room: usize,
    pub max_age: Duration,
}

/// Where history is kept.
pub trait HistoryStore: Send + 'static {
    /// Stores messages (ids already assigned) and applies `retention` to
    /// their rooms.
    fn append(&mut self, batch: &[Stored], retention: Retention) -> Result<(), StoreError>;
    /// Up to `limit` messages of `room` older than `before` (all when
    /// `None`), oldest first.
    fn page(
        &mut self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError>;
    /// The highest id ever assigned, so ids keep rising across restarts.
    fn last_id(&mut self) -> Result<u64, StoreError>;
}

/// History in SQLite, in its own connection to the accounts database.
#[derive(Debug)]
pub struct SqliteHistory {
    conn: Connection,
}

impl SqliteHistory {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        Self::init(conn).map_err(open)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self::init(Connection::open_in_memory()?)?)
    }

    fn init(conn: Connection) -> Result<Self, rusqlite::Error> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Ids are never reused: AUTOINCREMENT's sequence outlives deletes.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS history (
                 id      INTEGER PRIMARY KEY AUTOINCREMENT,
                 room    TEXT    NOT NULL,
                 room_key TEXT   NOT NULL,
                 sender  TEXT    NOT NULL,
                 text    TEXT    NOT NULL,
                 time    INTEGER NOT NULL
             ) STRICT;
             CREATE INDEX IF NOT EXISTS history_by_room ON history (room_key, id);",
        )?;
        Ok(Self { conn })
    }
}

impl HistoryStore for SqliteHistory {
    fn append(&mut self, batch: &[Stored], retention: Retention) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut rooms: Vec<String> = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO history (id, room, room_key, sender, text, time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for message in batch {
                let key = message.room.to_ascii_lowercase();
                insert.execute(params![
                    message.id,
                    message.room,
                    key,
                    message.from,
                    message.text,
                    message.time
                ])?;
                if !rooms.contains(&key) {
                    rooms.push(key);
                }
            }
            let oldest = now_millis().saturating_sub(retention.max_age.as_millis() as u64);
            let mut prune = tx.prepare_cached(
                "DELETE FROM history WHERE room_key = ?1 AND (time < ?2 OR id <= (
                     SELECT id FROM history WHERE room_key = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET ?3))",
            )?;
            for room in &rooms {
                prune.execute(params![room, oldest, retention.per_room])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn page(
        &mut self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut query = self.conn.prepare_cached(
            "SELECT id, room, sender, text, time FROM history
             WHERE room_key = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
        let rows = query.query_map(params![room.to_ascii_lowercase(), before, limit], |row| {
            Ok(Stored {
                id: row.get(0)?,
                room: row.get(1)?,
                from: row.get(2)?,
                text: row.get(3)?,
                time: row.get(4)?,
            })
        })?;
        let mut page: Vec<Stored> = rows.collect::<Result<_, _>>()?;
        page.reverse();
        Ok(page)
    }

    fn last_id(&mut self) -> Result<u64, StoreError> {
        let stored: Option<u64> = self.conn.query_row(
            "SELECT MAX(seq) FROM (
                 SELECT seq FROM sqlite_sequence WHERE name = 'history'
                 UNION ALL SELECT MAX(id) FROM history)",
            [],
            |row| row.get(0),
        )?;
        Ok(stored.unwrap_or(0))
    }
}

/// What to do with a page, run on the history thread so that pages are
/// delivered in the order they were asked for.
type Deliver = Box<dyn FnOnce(Vec<Stored>) + Send>;

enum Command {
    Append(Stored),
    Page {
        room: String,
        before: Option<u64>,
        limit: usize,
        deliver: Deliver,
    },
}

/// The server's side: assigns ids and hands work to the store's thread.
///
/// In a cluster, nodes share the store, so an id is a counter with the
/// node's number in its low bits ([`NODE_BITS`]), and each node moves its
/// counter past every id it sees from the others (a Lamport clock): ids
/// never collide, and a message said after another was seen gets a
/// higher one.
#[derive(Debug)]
pub struct History {
    commands: mpsc::Sender<Command>,
    next_id: AtomicU64,
    node: Option<u64>,
    /// Other nodes' messages heard on the bus lately: their nodes store
    /// them a moment later, so a page read meanwhile is completed from
    /// here.
    heard: Arc<Mutex<VecDeque<(Instant, Stored)>>>,
}

/// How long another node's message is kept for pages: longer than its
/// node takes to store it.
const HEARD_FOR: Duration = Duration::from_secs(5);
/// Other nodes' messages kept at most, however many arrive within it.
const HEARD_MOST: usize = 20_000;

/// Low bits of a clustered message id that hold its node's number.
pub const NODE_BITS: u32 = 10;

impl History {
    /// Starts the thread that owns `store`, for node `node` of a cluster
    /// (ids as above), or for a server alone (`None`: ids count up by one).
    pub fn start(
        mut store: impl HistoryStore,
        retention: Retention,
        node: Option<u16>,
    ) -> Result<Self, StoreError> {
        let node = node.map(u64::from);
        let last = store.last_id()?;
        let next = match node {
            Some(_) => (last >> NODE_BITS) + 1,
            None => last + 1,
        };
        let (commands, queue) = mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("chat-history".into())
            .spawn(move || serve(store, retention, &queue))
            .map_err(|err| StoreError::Thread(format!("cannot start the history thread: {err}")))?;
        Ok(Self {
            commands,
            next_id: AtomicU64::new(next),
            node,
            heard: Arc::default(),
        })
    }

    /// A message another node accepted (and stores): later ones here get
    /// a higher id, and pages include it until it is surely stored.
    pub fn heard(&self, message: Stored) {
        if self.node.is_none() {
            return;
        }
        self.next_id
            .fetch_max((message.id >> NODE_BITS) + 1, Ordering::Relaxed);
        let now = Instant::now();
        let mut heard = lock(&self.heard);
        while heard
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > HEARD_FOR)
            || heard.len() >= HEARD_MOST
        {
            heard.pop_front();
        }
        heard.push_back((now, message));
    }

    /// Records a message said now in `room`; returns its id and time.
    pub fn record(&self, room: &str, from: &str, text: &str) -> (u64, u64) {
        let count = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = match self.node {
            Some(node) => (count << NODE_BITS) | node,
            None => count,
        };
        let time = now_millis();
        let stored = Stored {
            id,
            room: room.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            time,
        };
        if self.commands.send(Command::Append(stored)).is_err() {
            warn!("the history thread is gone; a message was not stored");
        }
        (id, time)
    }

    /// Hands up to `limit` messages of `room` before id `before`, oldest
    /// first, to `deliver`, after every earlier request has had its own.
    pub fn page(
        &self,
        room: &str,
        before: Option<u64>,
        limit: usize,
        deliver: impl FnOnce(Vec<Stored>) + Send + 'static,
    ) {
        let heard = self.heard.clone();
        let key = room.to_ascii_lowercase();
        let command = Command::Page {
            room: room.to_owned(),
            before,
            limit,
            deliver: Box::new(move |page| {
                let recent: Vec<Stored> = lock(&heard)
                    .iter()
                    .map(|(_, message)| message)
                    .filter(|m| m.room.eq_ignore_ascii_case(&key))
                    .filter(|m| before.is_none_or(|before| m.id < before))
                    .cloned()
                    .collect();
                deliver(complete(page, recent, limit));
            }),
        };
        if let Err(mpsc::SendError(Command::Page { deliver, .. })) = self.commands.send(command) {
            deliver(Vec::new());
        }
    }
}

/// A stored page completed with messages heard but perhaps not yet
/// stored: each once, by id, the newest `limit`.
fn complete(mut page: Vec<Stored>, recent: Vec<Stored>, limit: usize) -> Vec<Stored> {
    if recent.is_empty() {
        return page;
    }
    page.extend(recent);
    page.sort_unstable_by_key(|message| message.id);
    page.dedup_by_key(|message| message.id);
    let extra = page.len().saturating_sub(limit);
    page.drain(..extra);
    page
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(mut store: impl HistoryStore, retention: Retention, queue: &mpsc::Receiver<Command>) {
    let mut waiting = Waiting::default();
    loop {
        let first = match waiting.retry_at {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => queue.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let mut next = match first {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if next.is_none() {
            waiting.store(&mut store, retention, true);
        }
        while let Some(command) = next.take() {
            match command {
                Command::Append(stored) => {
                    waiting.push(stored);
                    // Whatever else is waiting joins this transaction.
                    next = queue.try_recv().ok();
                    if next.is_none() || waiting.messages.len() >= BATCH {
                        waiting.store(&mut store, retention, false);
                    }
                }
                Command::Page {
                    room,
                    before,
                    limit,
                    deliver,
                } => {
                    waiting.store(&mut store, retention, true);
                    let page = store.page(&room, before, limit).unwrap_or_else(|err| {
                        warn!(%err, "cannot read history");
                        Vec::new()
                    });
                    deliver(page);
                }
            }
        }
    }
    waiting.store(&mut store, retention, true);
}

/// Messages per transaction.
const BATCH: usize = 1024;
/// Bytes of messages kept while the store is unavailable; past it the
/// oldest are dropped (and counted in the log).
const MAX_WAITING: usize = 32 << 20;
/// The first wait before storing again after the store was unavailable,
/// doubled up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Messages accepted and not yet stored, oldest first.
#[derive(Default)]
struct Waiting {
    messages: Vec<Stored>,
    bytes: usize,
    /// While the store is unavailable: when to try again, and the wait
    /// after that.
    retry_at: Option<Instant>,
    retry: Duration,
    /// Dropped since the store became unavailable.
    lost: usize,
}

impl Waiting {
    fn size(message: &Stored) -> usize {
        message.room.len() + message.from.len() + message.text.len() + size_of::<Stored>()
    }

    fn push(&mut self, message: Stored) {
        self.bytes += Self::size(&message);
        self.messages.push(message);
        if self.bytes > MAX_WAITING {
            let mut dropped = 0;
            while self.bytes > MAX_WAITING * 3 / 4 && dropped < self.messages.len() {
                self.bytes -= Self::size(&self.messages[dropped]);
                dropped += 1;
            }
            self.messages.drain(..dropped);
            self.lost += dropped;
            warn!(
                dropped,
                "the history store is still unavailable; the oldest waiting messages are dropped"
            );
        }
    }

    /// Stores what waits, in batches; while the store is unavailable only
    /// when the retry is due, or when `now` (a reader is waiting).
    fn store(&mut self, store: &mut impl HistoryStore, retention: Retention, now: bool) {
        if self.messages.is_empty() || !now && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let mut stored = 0;
        let mut failure = None;
        for batch in self.messages.chunks(BATCH) {
            match store.append(batch, retention) {
                Ok(()) => stored += batch.len(),
                Err(err @ StoreError::Unavailable(_)) => {
                    failure = Some(err);
                    break;
                }
                Err(err) => {
                    // Not the store's absence: trying again would fail alike.
                    warn!(%err, lost = batch.len(), "cannot store history");
                    stored += batch.len();
                }
            }
        }
        for message in self.messages.drain(..stored) {
            self.bytes -= Self::size(&message);
        }
        match failure {
            None => {
                if self.retry_at.take().is_some() {
                    info!(
                        lost = self.lost,
                        "history stored again, waiting messages caught up"
                    );
                }
                self.lost = 0;
                self.retry = FIRST_RETRY;
            }
            Some(err) => {
                if self.retry_at.is_none() {
                    warn!(%err, waiting = self.messages.len(), "cannot store history; keeping it until the store is back");
                    self.retry = FIRST_RETRY;
                } else {
                    self.retry = (self.retry * 2).min(LAST_RETRY);
                }
                self.retry_at = Some(Instant::now() + self.retry);
            }
        }
    }
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// SQLite that can be made unavailable, as PostgreSQL is when down.
    struct Flaky {
        inner: SqliteHistory,
        down: Arc<AtomicBool>,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down for the test".into()));
            }
            Ok(())
        }
    }

    impl HistoryStore for Flaky {
        fn append(&mut self, batch: &[Stored], retention: Retention) -> Result<(), StoreError> {
            self.check()?;
            self.inner.append(batch, retention)
        }
        fn page(
            &mut self,
            room: &str,
            before: Option<u64>,
            limit: usize,
        ) -> Result<Vec<Stored>, StoreError> {
            self.check()?;
            self.inner.page(room, before, limit)
        }
        fn last_id(&mut self) -> Result<u64, StoreError> {
            self.inner.last_id()
        }
    }

    fn page(history: &History, room: &str) -> Vec<String> {
        let (tx, rx) = mpsc::channel();
        history.page(room, None, 10, move |page| {
            tx.send(page.into_iter().map(|m| m.text).collect()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// In a cluster, a page holds the other nodes' messages heard on the
    /// bus that their nodes have not stored yet, each once, in id order.
    #[test]
    fn pages_include_what_other_nodes_said_before_it_is_stored() {
        let retention = Retention {
            per_room: 100,
            max_age: Duration::from_secs(3600),
        };
        let store = SqliteHistory::open_in_memory().unwrap();
        let history = History::start(store, retention, Some(1)).unwrap();
        let heard = |id: u64, text: &str| Stored {
            id: (id << NODE_BITS) | 2,
            room: "#Rust".into(),
            from: "bob".into(),
            text: text.into(),
            time: now_millis(),
        };
        history.heard(heard(1, "from node 2"));
        history.heard(Stored {
            room: "#go".into(),
            ..heard(2, "elsewhere")
        });
        // Said here after hearing it, so its id is higher.
        history.record("#rust", "alice", "from node 1");
        assert_eq!(page(&history, "#rust"), ["from node 2", "from node 1"]);
        // Heard twice, it is there once.
        history.heard(heard(1, "from node 2"));
        assert_eq!(page(&history, "#RUST"), ["from node 2", "from node 1"]);
    }

    /// Messages said while the store is unavailable wait, in order, and
    /// are stored once it is back.
    #[test]
    fn messages_wait_for_an_unavailable_store() {
        let down = Arc::new(AtomicBool::new(true));
        let store = Flaky {
            inner: SqliteHistory::open_in_memory().unwrap(),
            down: down.clone(),
        };
        let retention = Retention {
            per_room: 100,
            max_age: Duration::from_secs(3600),
        };
        let history = History::start(store, retention, None).unwrap();
        for text in ["one", "two", "three"] {
            history.record("#rust", "alice", text);
        }
        assert!(page(&history, "#rust").is_empty());
        down.store(false, Ordering::SeqCst);
        history.record("#rust", "alice", "four");
        assert_eq!(page(&history, "#rust"), ["one", "two", "three", "four"]);
    }
}
