//! One target's probes: a window of recent probes indexed by sequence
//! number, and what each one's fate does to the statistics.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::{Family, Statistics};

/// The most probes remembered per target; the 16-bit sequence number must
/// map to one of them unambiguously.
const MAX_WINDOW: usize = 32_768;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeState {
    Waiting,
    Answered,
    /// An ICMP error came back, or the kernel refused to send it.
    Failed,
    /// Its timeout passed with no reply.
    Expired,
}

#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// 1 for the first probe; the sequence number is its low 16 bits.
    pub number: u64,
    pub sent: Instant,
    /// Wall-clock send time, to subtract from the kernel's receive stamp.
    pub sent_wall: SystemTime,
    pub state: ProbeState,
}

#[derive(Debug)]
pub struct Host {
    pub target: SocketAddr,
    pub family: Family,
    pub stats: Statistics,
    probes: VecDeque<Probe>,
    /// Probes sent and neither answered, failed nor expired.
    pub waiting: u64,
    /// When the next probe is due; `None` once sending is over.
    pub next_send: Option<Instant>,
    /// After the last probe: give up waiting for replies at this time.
    pub finish_at: Option<Instant>,
    pub done: bool,
}

impl Host {
    pub fn new(target: SocketAddr, first_send: Instant) -> Host {
        Host {
            target,
            family: Family::of(&target.ip()),
            stats: Statistics::default(),
            probes: VecDeque::new(),
            waiting: 0,
            next_send: Some(first_send),
            finish_at: None,
            done: false,
        }
    }

    pub fn last(&self) -> Option<&Probe> {
        self.probes.back()
    }

    /// Records a probe just sent (or refused by the kernel, `Failed`).
    pub fn push(&mut self, probe: Probe, keep: Duration) {
        if probe.state == ProbeState::Waiting {
            self.waiting += 1;
        }
        self.probes.push_back(probe);
        self.trim(probe.sent, keep);
    }

    /// Forgets settled probes older than `keep` (duplicates and late
    /// replies for them are then not recognised) and bounds the window.
    fn trim(&mut self, now: Instant, keep: Duration) {
        while let Some(front) = self.probes.front() {
            let old = now.saturating_duration_since(front.sent) > keep
                && front.state != ProbeState::Waiting;
            if !old && self.probes.len() <= MAX_WINDOW {
                break;
            }
            if front.state == ProbeState::Waiting {
                self.waiting -= 1;
            }
            self.probes.pop_front();
        }
    }

    /// The most recent probe with this sequence number still remembered.
    pub fn find_mut(&mut self, seq: u16) -> Option<&mut Probe> {
        let last = self.probes.back()?.number as u16;
        let back = usize::from(last.wrapping_sub(seq));
        let index = self.probes.len().checked_sub(back + 1)?;
        self.probes.get_mut(index)
    }

    pub fn by_number_mut(&mut self, number: u64) -> Option<&mut Probe> {
        let first = self.probes.front()?.number;
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.probes.get_mut(index)
    }

    /// Expires probe `number` if it is still waiting, returning it.
    pub fn expire(&mut self, number: u64) -> Option<Probe> {
        let probe = self.by_number_mut(number)?;
        if probe.state != ProbeState::Waiting {
            return None;
        }
        probe.state = ProbeState::Expired;
        let probe = *probe;
        self.waiting -= 1;
        Some(probe)
    }

    /// Marks probe `seq` failed (an ICMP error came back); `None` when the
    /// sequence number is not one of ours.
    pub fn fail(&mut self, seq: u16) -> Option<Probe> {
        let probe = self.find_mut(seq)?;
        let before = *probe;
        if probe.state == ProbeState::Waiting {
            probe.state = ProbeState::Failed;
            self.waiting -= 1;
        }
        Some(before)
    }

    /// Marks probe `seq` answered unless it already was or had expired,
    /// returning it as it was before; `None` when it is not one of ours.
    pub fn answer(&mut self, seq: u16) -> Option<Probe> {
        let probe = self.find_mut(seq)?;
        let before = *probe;
        match probe.state {
            ProbeState::Waiting => {
                probe.state = ProbeState::Answered;
                self.waiting -= 1;
            }
            ProbeState::Failed => probe.state = ProbeState::Answered,
            ProbeState::Answered | ProbeState::Expired => {}
        }
        Some(before)
    }

    /// How many probes were outstanding when `seq` was acknowledged, as
    /// iputils counts its "pipe".
    pub fn outstanding_at(&self, seq: u16) -> Option<u64> {
        let diff = (self.stats.transmitted as u16).wrapping_sub(seq);
        (diff <= 0x7fff).then_some(u64::from(diff) + 1)
    }

    /// Marks every waiting probe expired and returns them, oldest first.
    pub fn expire_all(&mut self) -> Vec<Probe> {
        let mut expired = Vec::new();
        for probe in self.probes.iter_mut() {
            if probe.state == ProbeState::Waiting {
                probe.state = ProbeState::Expired;
                expired.push(*probe);
            }
        }
        self.waiting = 0;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(count: u64) -> (Host, Instant) {
        let start = Instant::now();
        let mut host = Host::new("127.0.0.1:0".parse().unwrap(), start);
        for number in 1..=count {
            host.push(
                Probe {
                    number,
                    sent: start,
                    sent_wall: SystemTime::now(),
                    state: ProbeState::Waiting,
                },
                Duration::from_secs(10),
            );
            host.stats.transmitted = number;
        }
        (host, start)
    }

    #[test]
    fn sequence_numbers_wrap() {
        let (mut host, _) = host_with(65_540);
        // 65537 and 1 share sequence number 1: the newer one is found.
        assert_eq!(host.find_mut(1).unwrap().number, 65_537);
        assert_eq!(host.find_mut(0).unwrap().number, 65_536);
        assert_eq!(host.find_mut(65_535).unwrap().number, 65_535);
        assert_eq!(host.probes.len(), MAX_WINDOW);
        // Older than the window: unknown.
        assert!(
            host.find_mut(65_540u64.wrapping_sub(40_000) as u16)
                .is_none()
        );
    }

    #[test]
    fn settling_counts_waiting() {
        let (mut host, _) = host_with(3);
        assert_eq!(host.waiting, 3);
        assert_eq!(host.answer(2).unwrap().state, ProbeState::Waiting);
        assert_eq!(host.answer(2).unwrap().state, ProbeState::Answered);
        assert!(host.expire(1).is_some());
        assert!(host.expire(1).is_none());
        assert_eq!(host.waiting, 1);
        // A reply after an error still answers the probe.
        assert_eq!(host.fail(3).unwrap().state, ProbeState::Waiting);
        assert_eq!(host.answer(3).unwrap().state, ProbeState::Failed);
        assert_eq!(host.find_mut(3).unwrap().state, ProbeState::Answered);
        // A reply after the timeout leaves the probe expired.
        assert_eq!(host.answer(1).unwrap().state, ProbeState::Expired);
        assert_eq!(host.find_mut(1).unwrap().state, ProbeState::Expired);
        assert!(host.answer(7).is_none());
        assert_eq!(host.waiting, 0);
    }

    #[test]
    fn pipe_counts_probes_in_flight() {
        let (host, _) = host_with(5);
        assert_eq!(host.outstanding_at(5), Some(1));
        assert_eq!(host.outstanding_at(3), Some(3));
        assert_eq!(host.outstanding_at(9), None);
    }

    #[test]
    fn old_settled_probes_are_forgotten() {
        let start = Instant::now();
        let mut host = Host::new("127.0.0.1:0".parse().unwrap(), start);
        let keep = Duration::from_millis(10);
        let probe = |number, sent| Probe {
            number,
            sent,
            sent_wall: SystemTime::now(),
            state: ProbeState::Waiting,
        };
        host.push(probe(1, start), keep);
        host.answer(1);
        host.push(probe(2, start + Duration::from_millis(5)), keep);
        host.push(probe(3, start + Duration::from_millis(20)), keep);
        // 1 is settled and old; 2 is old but still waiting.
        assert!(host.find_mut(1).is_none());
        assert!(host.find_mut(2).is_some());
        assert_eq!(host.expire_all().len(), 2);
        assert_eq!(host.waiting, 0);
    }
}
