//! The delay line: replies waiting for their impairment delay, and replies
//! held back to be sent after the next one. Buffers are reused, so a steady
//! stream of delayed replies allocates nothing once warmed up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Label;

/// Replies waiting at once; beyond this new ones are dropped (and logged),
/// so a flood against a long delay cannot exhaust memory.
pub const MAX_WAITING: usize = 65_536;
/// A reply held for reordering goes out after the next reply to the same
/// sender, or after this long if none comes.
pub const HOLD_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub peer: SocketAddr,
    pub label: Label,
    pub copies: u8,
    pub reorder: bool,
}

/// What to do with a reply whose time has come.
#[derive(Debug)]
pub enum Due {
    /// Send `copies` copies of the reply in slot `slot`, then the reply
    /// released from hold, if any.
    Send {
        slot: usize,
        released: Option<usize>,
    },
    /// The reply was put on hold to be reordered.
    Held { slot: usize },
    /// A held reply waited `HOLD_LIMIT` with no later reply to follow.
    Expired { slot: usize },
}

#[derive(Debug, Default)]
pub struct DelayLine {
    slots: Vec<Reply>,
    free: Vec<usize>,
    spare: Vec<Vec<u8>>,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    order: u64,
    held: HashMap<SocketAddr, (usize, Instant)>,
    /// The latest due time queued per sender, so jitter never reorders one
    /// sender's replies: only `--reorder` does, and only as decided.
    last_due: HashMap<SocketAddr, Instant>,
}

impl DelayLine {
    pub fn is_full(&self) -> bool {
        self.queue.len() + self.held.len() >= MAX_WAITING
    }

    /// A buffer holding a copy of `bytes`, reused where possible.
    pub fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        buf
    }

    /// Queues `reply` to go out at `due`, or right after the sender's
    /// previous reply if that is due later; returns when it will go out.
    pub fn push(&mut self, due: Instant, reply: Reply) -> Instant {
        let due = match self.last_due.get(&reply.peer) {
            Some(&previous) if previous > due => previous,
            _ => due,
        };
        self.last_due.insert(reply.peer, due);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = reply;
                slot
            }
            None => {
                self.slots.push(reply);
                self.slots.len() - 1
            }
        };
        self.order += 1;
        self.queue.push(Reverse((due, self.order, slot)));
        due
    }

    pub fn reply(&self, slot: usize) -> &Reply {
        &self.slots[slot]
    }

    /// Returns the slot to the pool once its reply has been sent.
    pub fn release(&mut self, slot: usize) {
        let bytes = std::mem::take(&mut self.slots[slot].bytes);
        self.spare.push(bytes);
        self.free.push(slot);
    }

    /// When the next reply (or held reply) is due.
    pub fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.peek().map(|Reverse((due, _, _))| *due);
        let held = self
            .held
            .values()
            .map(|&(_, since)| since + HOLD_LIMIT)
            .min();
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do at `now`, if anything is due.
    pub fn pop_due(&mut self, now: Instant) -> Option<Due> {
        if let Some((&peer, &(slot, _))) = self
            .held
            .iter()
            .find(|(_, (_, since))| *since + HOLD_LIMIT <= now)
        {
            self.held.remove(&peer);
            return Some(Due::Expired { slot });
        }
        let &Reverse((due, _, slot)) = self.queue.peek()?;
        if due > now {
            return None;
        }
        self.queue.pop();
        let reply = &self.slots[slot];
        if self.last_due.get(&reply.peer) == Some(&due) {
            self.last_due.remove(&reply.peer);
        }
        if reply.reorder && !self.held.contains_key(&reply.peer) {
            self.held.insert(reply.peer, (slot, now));
            return Some(Due::Held { slot });
        }
        let released = self.held.remove(&reply.peer).map(|(held, _)| held);
        Some(Due::Send { slot, released })
    }
}
