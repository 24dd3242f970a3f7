//! Writes the rooms' lasting state (topic, operators; rooms.rs) to the
//! account store on a thread of its own, so the rooms' lock never waits
//! on the database. Changes are handed over under that lock, so they
//! arrive in the order they were made; only the latest of each room is
//! written. While the store is unavailable (PostgreSQL down) they are
//! kept, one per room, and retried with back-off rather than lost. At
//! shutdown the server waits for what is pending to be tried once more.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::store::{AccountStore, StoreError, StoredRoom};

/// The first wait before retrying a failed write, doubled up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// What to write about one room.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Save(StoredRoom),
    /// The room (as shown) was given up to make room for another.
    Forget(String),
}

impl Change {
    fn key(&self) -> String {
        match self {
            Change::Save(room) => room.name.to_ascii_lowercase(),
            Change::Forget(name) => name.to_ascii_lowercase(),
        }
    }

    fn write(&self, store: &dyn AccountStore) -> Result<(), StoreError> {
        match self {
            Change::Save(room) => store.save_room(room),
            Change::Forget(name) => store.forget_room(name).map(drop),
        }
    }
}

/// What the writing thread is handed.
#[derive(Debug)]
enum Order {
    Write(Change),
    /// Answered once everything handed over before has been tried.
    Settle(oneshot::Sender<()>),
}

/// The rooms' side: hands changes to the writing thread.
#[derive(Debug, Clone)]
pub(crate) struct Keeper {
    orders: Sender<Order>,
}

impl Keeper {
    pub fn start(store: Arc<dyn AccountStore>) -> Result<Self, StoreError> {
        let (orders, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("chat-rooms".into())
            .spawn(move || keep(&*store, &queue))
            .map_err(|err| StoreError::Thread(format!("cannot start the rooms thread: {err}")))?;
        Ok(Self { orders })
    }

    pub fn send(&self, change: Change) {
        if self.orders.send(Order::Write(change)).is_err() {
            warn!("the rooms thread is gone; a room change was not saved");
        }
    }

    /// Returns once every change sent before has been written, or tried
    /// and kept for a retry.
    pub async fn settle(&self) {
        let (done, settled) = oneshot::channel();
        if self.orders.send(Order::Settle(done)).is_ok() {
            let _ = settled.await;
        }
    }
}

fn keep(store: &dyn AccountStore, queue: &Receiver<Order>) {
    let mut pending: HashMap<String, Change> = HashMap::new();
    let mut settling = Vec::new();
    let mut retry: Option<Duration> = None;
    loop {
        let next = match retry {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(wait) => queue.recv_timeout(wait),
        };
        let mut take = |order| match order {
            Order::Write(change) => drop(pending.insert(change.key(), change)),
            Order::Settle(done) => settling.push(done),
        };
        let open = match next {
            Ok(order) => {
                take(order);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        while let Ok(order) = queue.try_recv() {
            take(order);
        }
        let mut failed = None;
        for (key, change) in std::mem::take(&mut pending) {
            if let Err(err) = change.write(store) {
                failed = Some(err);
                pending.insert(key, change);
            }
        }
        retry = match (failed, retry) {
            (None, Some(_)) => {
                info!("room changes saved again");
                None
            }
            (None, None) => None,
            (Some(err), None) => {
                warn!(%err, waiting = pending.len(), "cannot save room changes; retrying");
                Some(FIRST_RETRY)
            }
            (Some(_), Some(wait)) => Some((wait * 2).min(LAST_RETRY)),
        };
        for done in settling.drain(..) {
            let _ = done.send(());
        }
        if !open {
            if !pending.is_empty() {
                warn!(lost = pending.len(), "room changes not saved at shutdown");
            }
            return;
        }
    }
}
