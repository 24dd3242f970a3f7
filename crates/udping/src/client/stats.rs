//! Statistics over a ping run: loss, RTT spread (iputils' mdev), RFC 3550
//! interarrival jitter, reordering and duplication counts, and, against a
//! stateful STAMP reflector, loss split by direction.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::Mode;

/// RTT figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RttStats {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Standard deviation, as iputils ping computes it.
    pub mdev: f64,
}

/// Running RTT sums and the jitter estimate.
#[derive(Debug, Clone, Default)]
pub struct RttAccumulator {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    previous: Option<f64>,
    jitter: f64,
}

impl RttAccumulator {
    /// Adds one RTT, in the order replies arrived.
    pub fn add(&mut self, rtt: Duration) {
        let ms = rtt.as_secs_f64() * 1e3;
        if self.count == 0 {
            self.min = ms;
            self.max = ms;
        }
        self.count += 1;
        self.sum += ms;
        self.sum_sq += ms * ms;
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
        // RFC 3550 §6.4.1: J += (|D(i-1,i)| - J) / 16, with D the change in
        // transit time between consecutive packets; the change in RTT is the
        // same quantity for a round trip.
        if let Some(previous) = self.previous {
            self.jitter += ((ms - previous).abs() - self.jitter) / 16.0;
        }
        self.previous = Some(ms);
    }

    pub fn stats(&self) -> Option<RttStats> {
        (self.count > 0).then(|| {
            let n = self.count as f64;
            let avg = self.sum / n;
            RttStats {
                min: self.min,
                avg,
                max: self.max,
                mdev: (self.sum_sq / n - avg * avg).max(0.0).sqrt(),
            }
        })
    }

    pub fn jitter_ms(&self) -> f64 {
        self.jitter
    }
}

/// Loss by direction, known only when the reflector numbers its own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StampLoss {
    /// Whether the reflector's sequence numbers showed it to be stateful.
    pub reflector_stateful: bool,
    /// Probes that never reached the reflector (sender → reflector).
    pub forward: Option<u64>,
    /// Replies the reflector sent that never arrived (reflector → sender).
    pub backward: Option<u64>,
    /// Probes after the last reply: lost, direction unknown.
    pub undetermined: Option<u64>,
}

/// Tracks the reply with the highest sender sequence number and the
/// reflector's number for it.
#[derive(Debug, Clone, Default)]
pub struct DirectionTracker {
    highest: Option<(u32, u32)>,
    distinct: u64,
    stateful: bool,
}

impl DirectionTracker {
    /// Records the first copy of a reply (on time or late); sequence numbers
    /// are relative to the first probe (which STAMP numbers 0).
    pub fn add(&mut self, sender: u32, reflector: u32) {
        self.distinct += 1;
        if sender != reflector {
            self.stateful = true;
        }
        if self.highest.is_none_or(|(s, _)| sender > s) {
            self.highest = Some((sender, reflector));
        }
    }

    pub fn loss(&self, sent: u64) -> StampLoss {
        let known = self.stateful || self.distinct == sent;
        let split = self.highest.filter(|_| known).map(|(s, r)| {
            let (s, r) = (u64::from(s), u64::from(r));
            (
                s.saturating_sub(r),
                (r + 1).saturating_sub(self.distinct),
                sent.saturating_sub(s + 1),
            )
        });
        StampLoss {
            reflector_stateful: self.stateful,
            forward: split
                .map(|(f, _, _)| f)
                .or((known && sent == 0).then_some(0)),
            backward: split
                .map(|(_, b, _)| b)
                .or((known && sent == 0).then_some(0)),
            undetermined: split.map(|(_, _, u)| u),
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub target: SocketAddr,
    pub mode: Mode,
    pub sent: u64,
    /// Probes answered within the timeout (first copies only).
    pub received: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub duplicates: u64,
    /// First copies that arrived after a reply to a later probe.
    pub out_of_order: u64,
    /// Replies that came after their probe had timed out.
    pub late: u64,
    /// Datagrams that matched no probe.
    pub unmatched: u64,
    /// Whether some replies carried no sequence number and were matched to
    /// the oldest outstanding probe instead.
    pub matched_by_order: bool,
    /// RTT of on-time replies; in STAMP mode net of reflector residence.
    pub rtt_ms: Option<RttStats>,
    pub jitter_ms: f64,
    /// STAMP only: mean time replies spent inside the reflector.
    pub residence_ms: Option<f64>,
    pub stamp_loss: Option<StampLoss>,
    pub elapsed_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_figures_and_jitter() {
        let mut acc = RttAccumulator::default();
        assert_eq!(acc.stats(), None);
        for ms in [10, 20, 30, 20] {
            acc.add(Duration::from_millis(ms));
        }
        let stats = acc.stats().unwrap();
        assert_eq!((stats.min, stats.avg, stats.max), (10.0, 20.0, 30.0));
        assert!((stats.mdev - 50f64.sqrt()).abs() < 1e-9, "{}", stats.mdev);
        // J: 0 -> 10/16 -> (10 - 0.625)/16 + 0.625 -> ...
        let mut j = 0.0;
        for d in [10.0, 10.0, 10.0] {
            j += (d - j) / 16.0;
        }
        assert!((acc.jitter_ms() - j).abs() < 1e-9);
    }

    #[test]
    fn direction_of_loss() {
        // Probes 0..10; 2 and 5 never reached a stateful reflector, which
        // numbered the other 8 0..8; the reply to probe 4 was lost on the
        // way back; probes 8 and 9 got no reply, direction unknown.
        let mut t = DirectionTracker::default();
        for (s, r) in [(0, 0), (1, 1), (3, 2), (6, 4), (7, 5)] {
            t.add(s, r);
        }
        let loss = t.loss(10);
        assert!(loss.reflector_stateful);
        assert_eq!(loss.forward, Some(2));
        assert_eq!(loss.backward, Some(1));
        assert_eq!(loss.undetermined, Some(2));

        // A stateless reflector with loss: direction unknown.
        let mut t = DirectionTracker::default();
        t.add(0, 0);
        t.add(2, 2);
        let loss = t.loss(3);
        assert!(!loss.reflector_stateful);
        assert_eq!(loss.forward, None);
        // No loss at all: nothing lost in either direction.
        let mut t = DirectionTracker::default();
        t.add(0, 0);
        t.add(1, 1);
        assert_eq!(t.loss(2).forward, Some(0));
        assert_eq!(t.loss(2).backward, Some(0));
    }
}
