//! The pinger: sends numbered probes at an interval and matches every reply
//! to its probe by sequence number, so a late, reordered or duplicated reply
//! is recognised as such instead of being taken for the current probe.
//! Replies that carry no sequence number (a server that answers `pong`) are
//! matched to the oldest probe still waiting, and marked as matched by order.
//! Against such a server the pinger goes stop-and-wait, as the lab's client
//! does: the next probe leaves only once the last is answered or timed out,
//! so a reply cannot be charged to a probe it does not answer. Probes go on
//! schedule until the first such reply shows what kind of server this is:
//! holding them back before that would change the timing every numbered
//! server sees.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

use super::stats::{DirectionTracker, RttAccumulator, Summary};
use crate::ntp::NtpTimestamp;
use crate::wire::stamp::{
    self, ErrorEstimate, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr,
};
use crate::wire::text::{MAX_TEXT_LEN, TextKind, TextRepr, unix_now};
use crate::{Error, Mode};

/// Probes remembered for matching; replies to older ones count as unmatched.
const TRACKED: usize = 1 << 16;
/// Large enough for any UDP payload.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, Clone)]
pub struct PingConfig {
    pub mode: Mode,
    /// Probes to send; `None` sends until cancelled.
    pub count: Option<u64>,
    pub interval: Duration,
    /// How long each probe waits for its reply.
    pub timeout: Duration,
    /// Datagram size in bytes; text probes are padded, STAMP probes are at
    /// least 44 bytes. 0 means the natural size.
    pub size: usize,
    pub bind: Option<SocketAddr>,
}

impl Default for PingConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Text,
            count: Some(10),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            size: 0,
            bind: None,
        }
    }
}

/// What happened, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum PingEvent {
    Sent {
        sequence: u32,
        bytes: usize,
    },
    Reply(Reply),
    Timeout {
        sequence: u32,
    },
    /// The first reply without a sequence number: from here on such
    /// replies are matched to probes by order, one probe at a time.
    MatchingByOrder,
    /// A datagram that answers no probe we remember.
    Unmatched {
        from: SocketAddr,
        bytes: usize,
    },
    /// The kernel reported an ICMP error for our probes, or had no route:
    /// said when it starts or changes, and again after a probe went out or
    /// a reply came in between.
    Unreachable(Unreachable),
}

/// The ICMP errors the kernel passes on to a connected UDP socket, which
/// leave the run going: a server restarting, a route flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    Port,
    Host,
    Network,
}

impl Unreachable {
    fn of(err: &std::io::Error) -> Option<Self> {
        match err.kind() {
            ErrorKind::ConnectionRefused => Some(Unreachable::Port),
            ErrorKind::HostUnreachable => Some(Unreachable::Host),
            ErrorKind::NetworkUnreachable => Some(Unreachable::Network),
            _ => None,
        }
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unreachable::Port => "port unreachable",
            Unreachable::Host => "host unreachable",
            Unreachable::Network => "network unreachable",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    OnTime,
    Duplicate,
    /// Arrived after its probe had timed out.
    Late,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub sequence: u32,
    pub from: SocketAddr,
    pub bytes: usize,
    /// Round-trip time; in STAMP mode net of the reflector's residence.
    pub rtt: Duration,
    pub status: ReplyStatus,
    /// A first copy that arrived after the reply to a later probe.
    pub out_of_order: bool,
    pub by_order: bool,
    pub stamp: Option<StampReply>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampReply {
    pub reflector_sequence: u32,
    /// RTT as measured, before subtracting the residence time.
    pub gross_rtt: Duration,
    pub residence: Duration,
    pub ttl: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeState {
    Waiting,
    Answered,
    TimedOut,
    AnsweredLate,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    sent: Instant,
    state: ProbeState,
}

#[derive(Debug)]
pub struct Pinger {
    socket: UdpSocket,
    target: SocketAddr,
    config: PingConfig,
}

impl Pinger {
    pub async fn connect(target: SocketAddr, config: PingConfig) -> Result<Self, Error> {
        let socket = dial::udp(target, config.bind).await?;
        Ok(Self {
            socket,
            target,
            config,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// Runs until `count` probes are each answered or timed out, or until
    /// `shutdown`; reports every event to `on_event` and returns the summary.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        mut on_event: impl FnMut(PingEvent),
    ) -> Result<Summary, Error> {
        let started = Instant::now();
        let mut run = Run::new(&self.config, self.target);
        let mut out = vec![0u8; self.config.size.max(MAX_TEXT_LEN).max(stamp::PACKET_LEN)];
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut next_send = Some(started);
        let mut unreachable = None;
        let mut report = |now: Option<Unreachable>, on_event: &mut dyn FnMut(PingEvent)| {
            if let Some(kind) = now
                && unreachable != now
            {
                on_event(PingEvent::Unreachable(kind));
            }
            unreachable = now;
        };
        loop {
            let deadline = run.next_deadline(self.config.timeout);
            if next_send.is_none() && deadline.is_none() {
                break;
            }
            let may_send = next_send.is_some() && !run.stop_and_wait(deadline);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sleep_until(next_send.unwrap_or(started).into()), if may_send => {
                    let at = next_send.expect("guarded");
                    let len = run.probe(&mut out, self.config.size);
                    match self.socket.send(&out[..len]).await {
                        // The path is open again (a port unreachable comes
                        // back as an error on the next call, if at all).
                        Ok(_) => report(None, &mut on_event),
                        // An ICMP error for an earlier probe, or no route now.
                        Err(err) if Unreachable::of(&err).is_some() => {
                            report(Unreachable::of(&err), &mut on_event);
                        }
                        Err(source) => return Err(Error::Send { addr: self.target, source }),
                    }
                    on_event(PingEvent::Sent { sequence: run.last_sequence(), bytes: len });
                    next_send = run.more(self.config.count).then(|| crate::later(at, self.config.interval).max(Instant::now()));
                }
                _ = sleep_until(deadline.unwrap_or(started).into()), if deadline.is_some() => {
                    run.expire(Instant::now(), self.config.timeout, &mut on_event);
                }
                received = self.socket.recv(&mut buf) => match received {
                    Ok(n) => {
                        report(None, &mut on_event);
                        run.reply(&buf[..n], Instant::now(), &mut on_event);
                    }
                    Err(err) if Unreachable::of(&err).is_some() => {
                        report(Unreachable::of(&err), &mut on_event);
                    }
                    Err(source) => return Err(Error::Receive { addr: self.target, source }),
                },
            }
        }
        // Copies already queued (a duplicate right behind the last reply)
        // still count.
        while let Ok(n) = self.socket.try_recv(&mut buf) {
            run.reply(&buf[..n], Instant::now(), &mut on_event);
        }
        Ok(run.summary(started.elapsed()))
    }
}

/// The bookkeeping of one run, apart from the socket.
struct Run {
    mode: Mode,
    target: SocketAddr,
    first_sequence: u32,
    probes: VecDeque<Probe>,
    /// Index (in sequence order, from the first probe ever) of `probes[0]`.
    base: u64,
    /// Indices of probes that may still be waiting, oldest first.
    waiting: VecDeque<u64>,
    sent: u64,
    received: u64,
    duplicates: u64,
    late: u64,
    unmatched: u64,
    out_of_order: u64,
    highest: Option<u64>,
    by_order: bool,
    rtt: RttAccumulator,
    residence_sum: f64,
    directions: DirectionTracker,
}

impl Run {
    fn new(config: &PingConfig, target: SocketAddr) -> Self {
        Self {
            mode: config.mode,
            target,
            // The lab numbers its pings from 1; STAMP numbers from 0.
            first_sequence: match config.mode {
                Mode::Text => 1,
                Mode::Stamp => 0,
            },
            probes: VecDeque::new(),
            base: 0,
            waiting: VecDeque::new(),
            sent: 0,
            received: 0,
            duplicates: 0,
            late: 0,
            unmatched: 0,
            out_of_order: 0,
            highest: None,
            by_order: false,
            rtt: RttAccumulator::default(),
            residence_sum: 0.0,
            directions: DirectionTracker::default(),
        }
    }

    fn sequence_of(&self, index: u64) -> u32 {
        self.first_sequence.wrapping_add(index as u32)
    }

    fn last_sequence(&self) -> u32 {
        self.sequence_of(self.sent - 1)
    }

    /// Whether the next probe must wait for the one in flight (whose
    /// deadline is `waiting_until`): against a server whose replies carry no
    /// sequence number.
    fn stop_and_wait(&self, waiting_until: Option<Instant>) -> bool {
        self.by_order && waiting_until.is_some()
    }

    fn more(&self, count: Option<u64>) -> bool {
        count.is_none_or(|count| self.sent < count)
    }

    /// Writes the next probe into `out` and records it as sent.
    fn probe(&mut self, out: &mut [u8], size: usize) -> usize {
        let sequence = self.sequence_of(self.sent);
        let len = match self.mode {
            Mode::Text => TextRepr {
                kind: TextKind::Ping,
                sequence,
                time: Some(unix_now()),
                interval: None,
            }
            .emit(out, size),
            Mode::Stamp => {
                let len = size.max(stamp::PACKET_LEN);
                let mut packet = SenderPacket::new_checked(&mut out[..len]).expect("long enough");
                SenderRepr {
                    sequence,
                    timestamp: NtpTimestamp::now(),
                    error_estimate: ErrorEstimate::LOCAL,
                }
                .emit(&mut packet);
                len
            }
        };
        if self.probes.len() == TRACKED {
            self.probes.pop_front();
            self.base += 1;
        }
        self.probes.push_back(Probe {
            sent: Instant::now(),
            state: ProbeState::Waiting,
        });
        self.waiting.push_back(self.sent);
        self.sent += 1;
        len
    }

    fn probe_mut(&mut self, index: u64) -> Option<&mut Probe> {
        let offset = index.checked_sub(self.base)?;
        self.probes.get_mut(offset as usize)
    }

    /// Drops resolved probes from the front of the waiting queue.
    fn trim_waiting(&mut self) {
        while let Some(&index) = self.waiting.front() {
            match self.probe_mut(index) {
                Some(probe) if probe.state == ProbeState::Waiting => break,
                _ => {
                    self.waiting.pop_front();
                }
            }
        }
    }

    fn next_deadline(&mut self, timeout: Duration) -> Option<Instant> {
        self.trim_waiting();
        let index = *self.waiting.front()?;
        self.probe_mut(index)
            .map(|probe| crate::later(probe.sent, timeout))
    }

    fn expire(&mut self, now: Instant, timeout: Duration, on_event: &mut impl FnMut(PingEvent)) {
        loop {
            self.trim_waiting();
            let Some(&index) = self.waiting.front() else {
                return;
            };
            let sequence = self.sequence_of(index);
            let Some(probe) = self.probe_mut(index) else {
                return;
            };
            if crate::later(probe.sent, timeout) > now {
                return;
            }
            probe.state = ProbeState::TimedOut;
            on_event(PingEvent::Timeout { sequence });
        }
    }

    fn reply(&mut self, datagram: &[u8], now: Instant, on_event: &mut impl FnMut(PingEvent)) {
        let from = self.target;
        let (index, by_order, stamp) = match self.mode {
            Mode::Text => match TextRepr::parse(datagram) {
                Ok(text) => (self.index_of(text.sequence), false, None),
                Err(_) => {
                    self.trim_waiting();
                    if !self.by_order {
                        self.by_order = true;
                        on_event(PingEvent::MatchingByOrder);
                    }
                    (self.waiting.front().copied(), true, None)
                }
            },
            Mode::Stamp => match ReflectorPacket::new_checked(datagram) {
                Ok(packet) => {
                    let repr = ReflectorRepr::parse(&packet);
                    (self.index_of(repr.sender_sequence), false, Some(repr))
                }
                Err(_) => (None, false, None),
            },
        };
        let Some((index, probe)) = index.and_then(|i| Some((i, *self.probe_mut(i)?))) else {
            self.unmatched += 1;
            on_event(PingEvent::Unmatched {
                from,
                bytes: datagram.len(),
            });
            return;
        };
        let gross = now.saturating_duration_since(probe.sent);
        let stamp = stamp.map(|repr| StampReply {
            reflector_sequence: repr.sequence,
            gross_rtt: gross,
            residence: repr.residence().unwrap_or_default(),
            ttl: repr.sender_ttl,
        });
        let rtt = stamp.map_or(gross, |s| gross.saturating_sub(s.residence));
        let (status, next) = match probe.state {
            ProbeState::Waiting => (ReplyStatus::OnTime, ProbeState::Answered),
            ProbeState::TimedOut => (ReplyStatus::Late, ProbeState::AnsweredLate),
            ProbeState::Answered | ProbeState::AnsweredLate => {
                (ReplyStatus::Duplicate, probe.state)
            }
        };
        self.probe_mut(index).expect("present").state = next;
        let mut out_of_order = false;
        match status {
            ReplyStatus::OnTime => {
                self.received += 1;
                out_of_order = self.highest.is_some_and(|highest| index < highest);
                self.out_of_order += u64::from(out_of_order);
                self.highest = Some(self.highest.map_or(index, |h| h.max(index)));
                self.rtt.add(rtt);
                if let Some(stamp) = &stamp {
                    self.residence_sum += stamp.residence.as_secs_f64();
                }
            }
            ReplyStatus::Late => self.late += 1,
            ReplyStatus::Duplicate => self.duplicates += 1,
        }
        if let (Some(stamp), ReplyStatus::OnTime | ReplyStatus::Late) = (&stamp, status) {
            let reflector = stamp.reflector_sequence.wrapping_sub(self.first_sequence);
            self.directions.add(index as u32, reflector);
        }
        on_event(PingEvent::Reply(Reply {
            sequence: self.sequence_of(index),
            from,
            bytes: datagram.len(),
            rtt,
            status,
            out_of_order,
            by_order,
            stamp,
        }));
    }

    /// The probe index a sequence number names, if we sent it and still
    /// remember it.
    fn index_of(&self, sequence: u32) -> Option<u64> {
        let offset = u64::from(sequence.wrapping_sub(self.sequence_of(self.base)));
        (offset < self.probes.len() as u64).then_some(self.base + offset)
    }

    fn summary(&self, elapsed: Duration) -> Summary {
        let lost = self.sent - self.received;
        Summary {
            target: self.target,
            mode: self.mode,
            sent: self.sent,
            received: self.received,
            lost,
            loss_percent: if self.sent == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / self.sent as f64
            },
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            late: self.late,
            unmatched: self.unmatched,
            matched_by_order: self.by_order,
            rtt_ms: self.rtt.stats(),
            jitter_ms: self.rtt.jitter_ms(),
            residence_ms: (self.mode == Mode::Stamp && self.received > 0)
                .then(|| self.residence_sum * 1e3 / self.received as f64),
            stamp_loss: (self.mode == Mode::Stamp).then(|| self.directions.loss(self.sent)),
            elapsed_ms: elapsed.as_secs_f64() * 1e3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(100);

    fn run(mode: Mode) -> Run {
        let config = PingConfig {
            mode,
            ..PingConfig::default()
        };
        Run::new(&config, "127.0.0.1:12000".parse().unwrap())
    }

    /// Sends `n` probes; returns when they were sent (close enough).
    fn send(run: &mut Run, n: usize) -> Instant {
        let at = Instant::now();
        let mut out = [0u8; 64];
        for _ in 0..n {
            run.probe(&mut out, 0);
        }
        at
    }

    fn text_reply(sequence: u32) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = TextRepr {
            kind: TextKind::Ping,
            sequence,
            time: Some(unix_now()),
            interval: None,
        }
        .emit(&mut buf, 0);
        buf[..n].to_ascii_uppercase()
    }

    fn replies(events: &[PingEvent]) -> Vec<(u32, ReplyStatus, bool)> {
        events
            .iter()
            .filter_map(|event| match event {
                PingEvent::Reply(r) => Some((r.sequence, r.status, r.out_of_order)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reordered_and_duplicated_replies_are_matched_by_sequence() {
        let mut run = run(Mode::Text);
        let at = send(&mut run, 3);
        let mut events = Vec::new();
        let now = at + Duration::from_millis(5);
        for seq in [2, 1, 2, 3, 3] {
            run.reply(&text_reply(seq), now, &mut |e| events.push(e));
        }
        use ReplyStatus::*;
        assert_eq!(
            replies(&events),
            vec![
                (2, OnTime, false),
                (1, OnTime, true),
                (2, Duplicate, false),
                (3, OnTime, false),
                (3, Duplicate, false),
            ]
        );
        let summary = run.summary(Duration::from_secs(1));
        assert_eq!(
            (summary.received, summary.duplicates, summary.out_of_order),
            (3, 2, 1)
        );
        assert_eq!((summary.lost, summary.late, summary.unmatched), (0, 0, 0));
    }

    #[test]
    fn a_late_reply_is_not_taken_for_the_current_probe() {
        let mut run = run(Mode::Text);
        let at = send(&mut run, 1);
        let mut events = Vec::new();
        run.expire(at + TIMEOUT * 2, TIMEOUT, &mut |e| events.push(e));
        assert_eq!(events, vec![PingEvent::Timeout { sequence: 1 }]);
        send(&mut run, 1);
        let now = Instant::now() + Duration::from_millis(1);
        // Probe 1's reply arrives while probe 2 waits: late, for probe 1.
        run.reply(&text_reply(1), now, &mut |e| events.push(e));
        run.reply(&text_reply(1), now, &mut |e| events.push(e));
        run.reply(&text_reply(2), now, &mut |e| events.push(e));
        use ReplyStatus::*;
        assert_eq!(
            replies(&events),
            vec![(1, Late, false), (1, Duplicate, false), (2, OnTime, false)]
        );
        let summary = run.summary(Duration::from_secs(1));
        assert_eq!((summary.received, summary.lost, summary.late), (1, 1, 1));
        assert_eq!(summary.duplicates, 1);
        // The late reply's RTT does not enter the statistics.
        assert!(summary.rtt_ms.unwrap().max < TIMEOUT.as_secs_f64() * 1e3);
    }

    #[test]
    fn replies_for_unsent_probes_are_unmatched() {
        let mut run = run(Mode::Text);
        let at = send(&mut run, 2);
        let mut events = Vec::new();
        for reply in [text_reply(0), text_reply(3), text_reply(u32::MAX)] {
            run.reply(&reply, at, &mut |e| events.push(e));
        }
        assert!(
            events
                .iter()
                .all(|e| matches!(e, PingEvent::Unmatched { .. })),
            "{events:?}"
        );
        let summary = run.summary(Duration::from_secs(1));
        assert_eq!((summary.received, summary.unmatched), (0, 3));
        assert!(!summary.matched_by_order);
    }

    #[test]
    fn seqless_replies_go_to_the_oldest_waiting_probe() {
        let mut run = run(Mode::Text);
        let at = send(&mut run, 1);
        let mut events = Vec::new();
        run.expire(at + TIMEOUT * 2, TIMEOUT, &mut |e| events.push(e));
        send(&mut run, 2);
        let now = Instant::now();
        for _ in 0..3 {
            run.reply(b"pong", now, &mut |e| events.push(e));
        }
        // Probe 1 had timed out, so the pongs answer 2 and 3; the third
        // answers nothing.
        assert_eq!(events[1], PingEvent::MatchingByOrder);
        let matched: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                PingEvent::Reply(r) => Some((r.sequence, r.by_order)),
                _ => None,
            })
            .collect();
        assert_eq!(matched, vec![(2, true), (3, true)]);
        assert!(matches!(events.last(), Some(PingEvent::Unmatched { .. })));
        assert_eq!(
            events
                .iter()
                .filter(|e| **e == PingEvent::MatchingByOrder)
                .count(),
            1
        );
        let summary = run.summary(Duration::from_secs(1));
        assert!(summary.matched_by_order);
        assert_eq!((summary.received, summary.unmatched), (2, 1));
    }

    #[test]
    fn stamp_rtt_is_net_of_residence() {
        let mut run = run(Mode::Stamp);
        let at = send(&mut run, 2);
        let received = NtpTimestamp::now();
        // 0x0400_0000 / 2^32 s = 15.625 ms spent in the reflector.
        let reply = |sequence, reflector| {
            let mut bytes = [0u8; stamp::PACKET_LEN];
            ReflectorRepr {
                sequence: reflector,
                timestamp: NtpTimestamp(received.0 + 0x0400_0000),
                error_estimate: ErrorEstimate::LOCAL,
                receive_timestamp: received,
                sender_sequence: sequence,
                sender_timestamp: received,
                sender_error_estimate: ErrorEstimate::LOCAL,
                sender_ttl: 61,
            }
            .emit(&mut ReflectorPacket::new_checked(&mut bytes[..]).unwrap());
            bytes
        };
        let now = at + Duration::from_millis(40);
        let mut events = Vec::new();
        run.reply(&reply(1, 0), now, &mut |e| events.push(e));
        let PingEvent::Reply(r) = &events[0] else {
            panic!("{events:?}")
        };
        let stamp = r.stamp.unwrap();
        assert_eq!(stamp.residence, Duration::from_micros(15_625));
        assert_eq!((stamp.reflector_sequence, stamp.ttl), (0, 61));
        assert_eq!(r.rtt, stamp.gross_rtt - stamp.residence);
        assert!(stamp.gross_rtt <= Duration::from_millis(40));
        // Probe 0 never reached the stateful reflector: forward loss.
        let loss = run.summary(Duration::from_secs(1)).stamp_loss.unwrap();
        assert!(loss.reflector_stateful);
        assert_eq!((loss.forward, loss.backward), (Some(1), Some(0)));
        let summary = run.summary(Duration::from_secs(1));
        assert!((summary.residence_ms.unwrap() - 15.625).abs() < 1e-9);
    }
}
