//! Who gets a connection slot: the global and per-client limits, the
//! per-client rate, and the reclaiming of idle connections when the server
//! is full. One `Admission` may be shared by several accept loops (the web
//! server's worker threads), so every count is under one lock, except each
//! connection's busy/idle mode: that changes twice a request, so it is one
//! atomic word the connection owns, and only reclaiming (a full server)
//! reads them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::client::{Bucket, Client};

/// How long a newcomer to a full server with no idle connection waits for
/// a slot before it is refused.
pub const FULL_WAIT: Duration = Duration::from_secs(2);

/// Rate buckets kept before the full ones (clients quiet for a minute) are
/// forgotten.
const RATE_BUCKETS: usize = 4096;

/// The limits a server gives its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client (IPv4 address, IPv6 /64) may have at once,
    /// waiting ones included.
    pub max_per_client: usize,
    /// New connections one client may open per minute (a minute's worth
    /// at once); `None` for no limit.
    pub max_rate: Option<NonZeroU32>,
}

impl Limits {
    /// `max_connections` at once, with no per-client limits.
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            max_per_client: usize::MAX,
            max_rate: None,
        }
    }
}

/// Why a connection is not served; the server says it in its protocol's
/// words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is busy (none idle to reclaim), and none freed within
    /// `FULL_WAIT`.
    Full,
    /// The client already has `max_per_client` connections.
    PerClient,
    /// The client opened more than `max_rate` connections in the last
    /// minute.
    Rate,
}

/// The shared accounting; cheap to clone.
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    slots: Arc<Semaphore>,
    state: Mutex<State>,
    /// Told when a connection becomes idle while a newcomer waits, so it
    /// can reclaim it.
    idle_now: Notify,
    /// Newcomers waiting for a slot.
    waiting: AtomicUsize,
    /// What idle times count from.
    epoch: Instant,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    live: HashMap<u64, Live>,
    per_client: HashMap<Client, usize>,
    rates: HashMap<Client, Bucket>,
}

#[derive(Debug)]
struct Live {
    slot: Arc<Slot>,
    /// Taken away when the connection is reclaimed: its slot goes to the
    /// newcomer at once, while the connection closes.
    permit: Option<OwnedSemaphorePermit>,
}

/// What a connection and the listener both see of it.
#[derive(Debug)]
struct Slot {
    /// A `Mode`, packed.
    mode: AtomicU64,
    closing: CancellationToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Serving, or not yet asked for anything: not to be closed.
    Active,
    /// Waiting for the client's next request since this many nanoseconds
    /// after the admission's epoch.
    Idle(u64),
    /// Serving this many requests (HTTP/2 streams serve several).
    Busy(u64),
    /// Asked to close to make room; never idle again.
    Reclaimed,
}

/// A mode packs into one word: its kind in the top two bits, its count or
/// time in the rest (2^62 ns is over a century).
const KIND: u32 = 62;
const PAYLOAD: u64 = (1 << KIND) - 1;

impl Mode {
    fn pack(self) -> u64 {
        match self {
            Mode::Active => 0,
            Mode::Busy(n) => (1 << KIND) | (n & PAYLOAD),
            Mode::Idle(since) => (2 << KIND) | (since & PAYLOAD),
            Mode::Reclaimed => 3 << KIND,
        }
    }

    fn unpack(word: u64) -> Self {
        match word >> KIND {
            0 => Mode::Active,
            1 => Mode::Busy(word & PAYLOAD),
            2 => Mode::Idle(word & PAYLOAD),
            _ => Mode::Reclaimed,
        }
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            max_connections: limits.max_connections.max(1),
            max_per_client: limits.max_per_client.max(1),
            ..limits
        };
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(limits.max_connections)),
                limits,
                state: Mutex::new(State::default()),
                idle_now: Notify::new(),
                waiting: AtomicUsize::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The per-client checks, done as the connection is accepted: counts
    /// the connection against its client, or says why not.
    pub fn arrive(&self, peer: SocketAddr) -> Result<Arrival, Refusal> {
        let client = Client::of(peer.ip());
        let limits = &self.inner.limits;
        let mut state = self.inner.lock();
        if let Some(per_minute) = limits.max_rate.map(NonZeroU32::get) {
            let now = Instant::now();
            if state.rates.len() >= RATE_BUCKETS && !state.rates.contains_key(&client) {
                state
                    .rates
                    .retain(|_, bucket| !bucket.is_full(per_minute, now));
            }
            let bucket = state
                .rates
                .entry(client)
                .or_insert_with(|| Bucket::full(per_minute, now));
            if !bucket.take(per_minute, now) {
                return Err(Refusal::Rate);
            }
        }
        let count = state.per_client.entry(client).or_insert(0);
        if *count >= limits.max_per_client {
            return Err(Refusal::PerClient);
        }
        *count += 1;
        Ok(Arrival {
            admission: self.clone(),
            client,
            peer,
            counted: true,
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget_client(state: &mut State, client: Client) {
        if let Some(count) = state.per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                state.per_client.remove(&client);
            }
        }
    }

    /// Nanoseconds since the epoch, as idle modes count.
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Closes the oldest idle connection and takes its slot. A scan of
    /// every connection, but only when the server is full: the price of
    /// keeping the per-request path to one atomic operation.
    fn reclaim(&self, state: &mut State) -> Option<OwnedSemaphorePermit> {
        loop {
            let (since, id) = state
                .live
                .iter()
                .filter_map(|(&id, live)| match live.slot.mode() {
                    Mode::Idle(since) => Some((since, id)),
                    _ => None,
                })
                .min()?;
            let live = state.live.get_mut(&id).expect("just found");
            let idle = Mode::Idle(since).pack();
            let reclaimed = Mode::Reclaimed.pack();
            if live
                .slot
                .mode
                .compare_exchange(idle, reclaimed, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                // A request arrived on it meanwhile: look again.
                continue;
            }
            live.slot.closing.cancel();
            if let Some(permit) = live.permit.take() {
                let idle = Duration::from_nanos(self.now().saturating_sub(since));
                tracing::debug!(?idle, "closing an idle connection to make room");
                return Some(permit);
            }
        }
    }
}

impl Slot {
    fn mode(&self) -> Mode {
        Mode::unpack(self.mode.load(Ordering::SeqCst))
    }
}

/// An accepted connection within its client's limits, not yet given a
/// slot.
#[derive(Debug)]
pub struct Arrival {
    admission: Admission,
    client: Client,
    peer: SocketAddr,
    /// Still counted against its client (until it becomes a `Connection`,
    /// which takes the count over).
    counted: bool,
}

impl Arrival {
    /// A slot: a free one, else the oldest idle connection's, else the
    /// first to free within `FULL_WAIT`. `None` means refuse with
    /// `Refusal::Full`.
    pub async fn admit(mut self, shutdown: &CancellationToken) -> Option<Connection> {
        let inner = self.admission.inner.clone();
        let deadline = tokio::time::Instant::now() + FULL_WAIT;
        if let Ok(permit) = inner.slots.clone().try_acquire_owned() {
            return Some(self.connect(permit, shutdown));
        }
        // Counted as waiting before looking for an idle connection, so one
        // turning idle after the look sees a waiter and says so (see
        // `Connection::set`). At most as many waiting as served: past that
        // a flood would only pile up sockets.
        if inner.waiting.fetch_add(1, Ordering::SeqCst) >= inner.limits.max_connections {
            inner.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let _waiting = Waiting(&inner.waiting);
        loop {
            let idle_now = inner.idle_now.notified();
            tokio::pin!(idle_now);
            idle_now.as_mut().enable();
            let permit = match inner.slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => inner.reclaim(&mut inner.lock()),
            };
            if let Some(permit) = permit {
                return Some(self.connect(permit, shutdown));
            }
            tokio::select! {
                permit = inner.slots.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    return Some(self.connect(permit, shutdown));
                }
                _ = idle_now => {}
                _ = tokio::time::sleep_until(deadline) => return None,
                _ = shutdown.cancelled() => return None,
            }
        }
    }

    fn connect(
        &mut self,
        permit: OwnedSemaphorePermit,
        shutdown: &CancellationToken,
    ) -> Connection {
        let inner = &self.admission.inner;
        let slot = Arc::new(Slot {
            mode: AtomicU64::new(Mode::Active.pack()),
            closing: shutdown.child_token(),
        });
        let mut state = inner.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(
            id,
            Live {
                slot: slot.clone(),
                permit: Some(permit),
            },
        );
        self.counted = false;
        Connection {
            shared: Arc::new(Shared {
                admission: self.admission.clone(),
                id,
                client: self.client,
                peer: self.peer,
                slot,
            }),
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if self.counted {
            Inner::forget_client(&mut self.admission.inner.lock(), self.client);
        }
    }
}

/// Counts a newcomer waiting for a slot while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A served connection's handle: its slot, its client's count, and the
/// way it tells the listener when it is idle. Clones share one slot,
/// released when the last is dropped.
#[derive(Debug, Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    admission: Admission,
    id: u64,
    client: Client,
    peer: SocketAddr,
    slot: Arc<Slot>,
}

impl Connection {
    pub fn peer(&self) -> SocketAddr {
        self.shared.peer
    }

    pub fn client(&self) -> Client {
        self.shared.client
    }

    /// Cancelled when the server shuts down, or when the listener closes
    /// this connection (idle) to make room: either way the server finishes
    /// what it is doing and closes, as for a graceful shutdown.
    pub fn closing(&self) -> CancellationToken {
        self.shared.slot.closing.clone()
    }

    /// Whether the listener closed this connection to make room (rather
    /// than for shutdown), so the server can say why.
    pub fn is_reclaimed(&self) -> bool {
        self.shared.slot.mode() == Mode::Reclaimed
    }

    /// The connection now waits for the client's next request (an idle
    /// keep-alive connection, an SMTP session between commands): when the
    /// server is full it may be closed to make room, oldest idle first.
    pub fn idle(&self) {
        let now = self.shared.admission.inner.now();
        self.set(|mode| match mode {
            Mode::Active | Mode::Idle(_) => Mode::Idle(now),
            other => other,
        });
    }

    /// The connection is working again (a command arrived).
    pub fn active(&self) {
        self.set(|mode| match mode {
            Mode::Idle(_) => Mode::Active,
            other => other,
        });
    }

    /// A request in progress: not idle while the guard lives; idle again
    /// when the last guard is dropped (a response finished).
    pub fn busy(&self) -> Busy {
        self.set(|mode| match mode {
            Mode::Busy(n) => Mode::Busy(n + 1),
            Mode::Reclaimed => Mode::Reclaimed,
            Mode::Active | Mode::Idle(_) => Mode::Busy(1),
        });
        Busy {
            connection: self.clone(),
        }
    }

    fn set(&self, change: impl Fn(Mode) -> Mode) {
        let changed =
            self.shared
                .slot
                .mode
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
                    let before = Mode::unpack(word);
                    let after = change(before);
                    (after != before).then(|| after.pack())
                });
        let Ok(before) = changed else {
            return;
        };
        let before = Mode::unpack(before);
        let became_idle =
            matches!(change(before), Mode::Idle(_)) && !matches!(before, Mode::Idle(_));
        let inner = &self.shared.admission.inner;
        // The store above comes before this load, and a waiter counts
        // itself before it looks: either it sees this connection idle or
        // this sees it waiting.
        if became_idle && inner.waiting.load(Ordering::SeqCst) > 0 {
            inner.idle_now.notify_waiters();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut state = self.admission.inner.lock();
        state.live.remove(&self.id);
        Inner::forget_client(&mut state, self.client);
    }
}

/// A request in progress on a connection (see `Connection::busy`).
#[derive(Debug)]
pub struct Busy {
    connection: Connection,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.connection.shared.admission.inner.now();
        self.connection.set(|mode| match mode {
            Mode::Busy(1) => Mode::Idle(now),
            Mode::Busy(n) => Mode::Busy(n - 1),
            other => other,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    /// A newcomer from `ip` through both checks: `None` if refused a slot.
    async fn newcomer(
        admission: &Admission,
        ip: &str,
        shutdown: &CancellationToken,
    ) -> Option<Connection> {
        admission.arrive(peer(ip)).unwrap().admit(shutdown).await
    }

    async fn served(admission: &Admission, ip: &str, shutdown: &CancellationToken) -> Connection {
        newcomer(admission, ip, shutdown).await.unwrap()
    }

    fn limits(max_connections: usize, max_per_client: usize) -> Limits {
        Limits {
            max_connections,
            max_per_client,
            max_rate: None,
        }
    }

    #[test]
    fn modes_pack_into_one_word_and_back() {
        for mode in [
            Mode::Active,
            Mode::Busy(1),
            Mode::Busy(70_000),
            Mode::Idle(0),
            Mode::Idle(PAYLOAD),
            Mode::Reclaimed,
        ] {
            assert_eq!(Mode::unpack(mode.pack()), mode);
        }
    }

    #[tokio::test]
    async fn a_connection_busy_again_is_not_reclaimed() {
        let admission = Admission::new(limits(2, 10));
        let shutdown = CancellationToken::new();
        let first = served(&admission, "10.0.0.1", &shutdown).await;
        let second = served(&admission, "10.0.0.1", &shutdown).await;
        drop(first.busy());
        drop(second.busy());
        let _working = first.busy();
        let third = newcomer(&admission, "10.0.0.3", &shutdown).await;
        assert!(third.is_some());
        assert!(!first.is_reclaimed(), "a request came in on it");
        assert!(second.is_reclaimed());
    }

    #[tokio::test]
    async fn the_per_client_limit_counts_waiting_and_served_connections() {
        let admission = Admission::new(limits(10, 2));
        let shutdown = CancellationToken::new();
        let first = admission.arrive(peer("10.0.0.1")).unwrap();
        let _waiting = admission.arrive(peer("10.0.0.1")).unwrap();
        assert_eq!(
            admission.arrive(peer("10.0.0.1")).unwrap_err(),
            Refusal::PerClient
        );
        assert!(admission.arrive(peer("10.0.0.2")).is_ok());
        let served = first.admit(&shutdown).await.unwrap();
        assert_eq!(
            admission.arrive(peer("10.0.0.1")).unwrap_err(),
            Refusal::PerClient
        );
        drop(served);
        assert!(admission.arrive(peer("10.0.0.1")).is_ok());
    }

    #[tokio::test]
    async fn a_full_server_reclaims_the_oldest_idle_connection() {
        let admission = Admission::new(limits(2, 10));
        let shutdown = CancellationToken::new();
        let older = served(&admission, "10.0.0.1", &shutdown).await;
        let newer = served(&admission, "10.0.0.1", &shutdown).await;
        newer.idle();
        older.idle();
        newer.idle();
        let third = newcomer(&admission, "10.0.0.3", &shutdown).await;
        assert!(third.is_some());
        assert!(older.closing().is_cancelled(), "idle the longest");
        assert!(older.is_reclaimed());
        assert!(!newer.closing().is_cancelled());
        assert!(!newer.is_reclaimed());
    }

    #[tokio::test]
    async fn a_full_server_with_nothing_idle_refuses_after_the_wait() {
        let admission = Admission::new(limits(1, 10));
        let shutdown = CancellationToken::new();
        let held = served(&admission, "10.0.0.1", &shutdown).await;
        let _busy = held.busy();
        let refused = newcomer(&admission, "10.0.0.2", &shutdown).await;
        assert!(refused.is_none());
        assert!(!held.closing().is_cancelled());
    }

    #[tokio::test]
    async fn a_waiting_newcomer_gets_a_connection_that_turns_idle() {
        let admission = Admission::new(limits(1, 10));
        let shutdown = CancellationToken::new();
        let held = served(&admission, "10.0.0.1", &shutdown).await;
        let busy = held.busy();
        let arrival = admission.arrive(peer("10.0.0.2")).unwrap();
        let waiter = tokio::spawn(async move { arrival.admit(&shutdown).await.is_some() });
        tokio::task::yield_now().await;
        drop(busy);
        assert!(waiter.await.unwrap());
        assert!(held.closing().is_cancelled());
    }

    #[tokio::test]
    async fn the_rate_limit_allows_a_minute_at_once() {
        let admission = Admission::new(Limits {
            max_rate: NonZeroU32::new(3),
            ..limits(10, 10)
        });
        for _ in 0..3 {
            drop(admission.arrive(peer("10.0.0.1")).unwrap());
        }
        assert_eq!(
            admission.arrive(peer("10.0.0.1")).unwrap_err(),
            Refusal::Rate
        );
        assert!(admission.arrive(peer("10.0.0.2")).is_ok());
    }
}
