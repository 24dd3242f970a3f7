//! The delay line: replies waiting for their impairment delay, and replies
//! held back to be sent after the next one. Buffers are reused, so a steady
//! stream of delayed replies allocates nothing once warmed up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Label;

/// Replies waiting at once, and their bytes; beyond either new ones are
/// dropped (and logged), so a flood of large datagrams against a long delay
/// cannot exhaust memory.
pub const MAX_WAITING: usize = 65_536;
pub const MAX_WAITING_BYTES: usize = 64 << 20;
/// Buffers of sent replies kept for reuse, in bytes of capacity.
const MAX_SPARE_BYTES: usize = 8 << 20;
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
    spare_bytes: usize,
    waiting_bytes: usize,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    order: u64,
    held: HashMap<SocketAddr, (usize, Instant)>,
    /// The latest due time queued per sender, so jitter never reorders one
    /// sender's replies: only `--reorder` does, and only as decided.
    last_due: HashMap<SocketAddr, Instant>,
}

impl DelayLine {
    /// Whether a reply of `len` bytes may wait.
    pub fn admits(&self, len: usize) -> bool {
        self.queue.len() + self.held.len() < MAX_WAITING
            && self.waiting_bytes + len <= MAX_WAITING_BYTES
    }

    /// A buffer holding a copy of `bytes`, reused where possible.
    pub fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        self.spare_bytes -= buf.capacity();
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
        self.waiting_bytes += reply.bytes.len();
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
        self.waiting_bytes -= bytes.len();
        if self.spare_bytes + bytes.capacity() <= MAX_SPARE_BYTES {
            self.spare_bytes += bytes.capacity();
            self.spare.push(bytes);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &mut DelayLine, len: usize, reorder: bool) -> Reply {
        Reply {
            bytes: line.buffer(&vec![7u8; len]),
            peer: "127.0.0.1:9".parse().unwrap(),
            label: Label::Arrival(0),
            copies: 1,
            reorder,
        }
    }

    #[test]
    fn large_replies_are_bounded_by_bytes() {
        let mut line = DelayLine::default();
        let now = Instant::now();
        let big = 65_507;
        let mut waiting = 0;
        while line.admits(big) {
            let r = reply(&mut line, big, false);
            line.push(now, r);
            waiting += 1;
        }
        assert_eq!(waiting, MAX_WAITING_BYTES / big);
        // Sending one makes room for one.
        let Some(Due::Send { slot, released }) = line.pop_due(now) else {
            panic!("a reply is due")
        };
        assert_eq!(released, None);
        line.release(slot);
        assert!(line.admits(big));
        // Sent buffers are kept for reuse only up to a bound.
        while let Some(Due::Send { slot, .. }) = line.pop_due(now) {
            line.release(slot);
        }
        assert!(line.spare_bytes <= MAX_SPARE_BYTES);
        assert_eq!(line.waiting_bytes, 0);
    }

    #[test]
    fn a_reordered_reply_follows_the_next() {
        let mut line = DelayLine::default();
        let now = Instant::now();
        let (first, second) = (reply(&mut line, 10, true), reply(&mut line, 20, false));
        line.push(now, first);
        line.push(now, second);
        assert!(matches!(line.pop_due(now), Some(Due::Held { slot: 0 })));
        assert!(matches!(
            line.pop_due(now),
            Some(Due::Send {
                slot: 1,
                released: Some(0)
            })
        ));
        // A reply held with nothing after it goes out after HOLD_LIMIT.
        let lone = reply(&mut line, 5, true);
        line.push(now, lone);
        let Some(Due::Held { slot }) = line.pop_due(now) else {
            panic!("held")
        };
        assert!(line.pop_due(now).is_none());
        assert_eq!(line.next_due(), Some(now + HOLD_LIMIT));
        assert!(
            matches!(line.pop_due(now + HOLD_LIMIT), Some(Due::Expired { slot: s }) if s == slot)
        );
    }
}
