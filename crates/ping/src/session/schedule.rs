//! The bookkeeping of a run: when each target's next probe is due, when
//! probes time out, and when a target (and the run) is done.

use std::cmp::Reverse;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::State;
use super::host::{Host, Probe, ProbeState};
use crate::socket::IcmpSocket;
use crate::wire::{icmpv4, icmpv6, payload};
use crate::{Event, Family, Report};

/// The gap iputils keeps between flood probes while one is unanswered, and
/// after a probe the kernel refused to send.
const MIN_GAP: Duration = Duration::from_millis(10);

impl State {
    /// Schedules every target's first probe. With many targets and a
    /// regular interval, first probes are spread over up to a millisecond
    /// each rather than sent in one burst.
    pub(super) fn begin(&mut self, now: Instant) {
        self.start = now;
        let count = self.hosts.len() as u32;
        let stagger = if self.config.flood() || count < 2 {
            Duration::ZERO
        } else {
            (self.config.interval / count).min(Duration::from_millis(1))
        };
        for (index, host) in self.hosts.iter_mut().enumerate() {
            let at = now + stagger * index as u32;
            host.next_send = Some(at);
            self.schedule.push(Reverse((at, index)));
        }
    }

    /// Sends the next probe to host `index`. Returns false, sending
    /// nothing, when the socket cannot take it now.
    pub(super) fn send(
        &mut self,
        socket: &IcmpSocket,
        index: usize,
        probe: &mut [u8],
        data: &mut [u8],
        emit: &mut dyn FnMut(Event),
    ) -> bool {
        let host = &mut self.hosts[index];
        let number = host.stats.transmitted + 1;
        let seq = number as u16;
        if self.config.report_outstanding
            && host
                .last()
                .is_some_and(|last| last.state != ProbeState::Answered)
        {
            emit(Event::NoAnswerYet {
                host: index,
                seq: (number - 1) as u16,
                at: SystemTime::now(),
            });
        }
        let sent_wall = SystemTime::now();
        payload::write(
            data,
            sent_wall.duration_since(UNIX_EPOCH).unwrap_or_default(),
        );
        let len = emit_echo(host.family, socket.ident(), seq, data, probe);
        let sent = Instant::now();
        let state = match socket.send_to(&probe[..len], host.target) {
            Ok(_) => ProbeState::Waiting,
            Err(err)
                if err.kind() == std::io::ErrorKind::WouldBlock
                    || err.raw_os_error() == Some(libc::ENOBUFS) =>
            {
                return false;
            }
            // Too long for IPv4: the kernel also queued a local error, which
            // iputils reports (and counts) instead of the send's own.
            Err(err)
                if err.raw_os_error() == Some(libc::EMSGSIZE)
                    && self.take_local_error(socket, emit) =>
            {
                ProbeState::Failed
            }
            Err(error) => {
                emit(Event::SendFailed {
                    host: index,
                    seq,
                    error,
                });
                ProbeState::Failed
            }
        };
        let host = &mut self.hosts[index];
        host.push(
            Probe {
                number,
                sent,
                sent_wall,
                state,
            },
            self.keep,
        );
        host.stats.transmitted = number;
        host.stats.elapsed = sent.saturating_duration_since(self.start);
        if state == ProbeState::Waiting {
            self.expiry
                .push_back((sent + self.config.timeout, index, number));
        }
        let more = match (self.config.count, self.config.deadline) {
            (Some(count), None) => number < count,
            _ => true,
        };
        if more {
            let gap = if state == ProbeState::Failed {
                self.config.interval.max(MIN_GAP)
            } else if self.config.flood() {
                MIN_GAP
            } else {
                self.config.interval
            };
            host.next_send = Some(sent + gap);
            self.schedule.push(Reverse((sent + gap, index)));
        } else {
            host.next_send = None;
            let linger = match host.stats.max_rtt() {
                Some(max) if host.stats.received > 0 => (max * 2).max(self.config.interval),
                _ => self.config.timeout,
            };
            host.finish_at = Some(sent + linger);
            self.lingering.push(Reverse((sent + linger, index)));
        }
        self.check_done(index, sent, emit);
        true
    }

    /// Expires probes whose timeout has passed and ends lingering targets.
    pub(super) fn expire(&mut self, now: Instant, emit: &mut dyn FnMut(Event)) {
        while let Some(&(at, index, number)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            if let Some(probe) = self.hosts[index].expire(number) {
                emit(Event::NoReply {
                    host: index,
                    seq: probe.number as u16,
                    sent: probe.sent_wall,
                });
                self.settled(index, now, emit);
            }
        }
        while let Some(&Reverse((at, index))) = self.lingering.peek() {
            if at > now {
                break;
            }
            self.lingering.pop();
            self.check_done(index, now, emit);
        }
    }

    /// After a probe of host `index` is answered, failed or expired: a
    /// flooding target sends again at once, and the target may be done.
    pub(super) fn settled(&mut self, index: usize, now: Instant, emit: &mut dyn FnMut(Event)) {
        let host = &mut self.hosts[index];
        if self.config.flood() && host.waiting == 0 && host.next_send.is_some_and(|at| at > now) {
            host.next_send = Some(now);
            self.schedule.push(Reverse((now, index)));
        }
        self.check_done(index, now, emit);
    }

    pub(super) fn check_done(&mut self, index: usize, now: Instant, emit: &mut dyn FnMut(Event)) {
        let config = &self.config;
        let host = &mut self.hosts[index];
        if host.done {
            return;
        }
        let stats = &host.stats;
        let answered = config
            .count
            .is_some_and(|count| stats.received + stats.errors >= count);
        let failed_under_deadline = config.deadline.is_some() && stats.errors > 0;
        let sending_over = host.next_send.is_none()
            && (host.waiting == 0 || host.finish_at.is_some_and(|at| now >= at));
        if answered || failed_under_deadline || sending_over {
            host.done = true;
            host.next_send = None;
            self.remaining -= 1;
            report_unanswered(index, host, emit);
        }
    }

    pub(super) fn report_status(&self, emit: &mut dyn FnMut(Event)) {
        for (index, host) in self.hosts.iter().enumerate() {
            emit(Event::Status {
                host: index,
                stats: host.stats.clone(),
            });
        }
    }

    pub(super) fn next_wake(&self) -> Option<Instant> {
        let send = self.schedule.peek().map(|Reverse((at, _))| *at);
        let expiry = self.expiry.front().map(|(at, _, _)| *at);
        let linger = self.lingering.peek().map(|Reverse((at, _))| *at);
        [send, expiry, linger].into_iter().flatten().min()
    }

    pub(super) fn finish(mut self, stopped: bool, emit: &mut dyn FnMut(Event)) -> Report {
        for (index, host) in self.hosts.iter_mut().enumerate() {
            if !host.done {
                report_unanswered(index, host, emit);
            }
        }
        Report {
            hosts: self.hosts.into_iter().map(|host| host.stats).collect(),
            stopped,
        }
    }
}

fn report_unanswered(index: usize, host: &mut Host, emit: &mut dyn FnMut(Event)) {
    for probe in host.expire_all() {
        emit(Event::NoReply {
            host: index,
            seq: probe.number as u16,
            sent: probe.sent_wall,
        });
    }
}

/// Writes an echo request into `buf`, returning its length. ICMPv6 and
/// datagram sockets fill the checksum in themselves.
fn emit_echo(family: Family, ident: u16, seq_no: u16, data: &[u8], buf: &mut [u8]) -> usize {
    let written = match family {
        Family::V4 => {
            let repr = icmpv4::Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            repr.emit(&mut icmpv4::Packet::new_unchecked(&mut *buf))
                .map(|()| repr.buffer_len())
        }
        Family::V6 => {
            let repr = icmpv6::Repr::EchoRequest {
                ident,
                seq_no,
                data,
            };
            repr.emit(&mut icmpv6::Packet::new_unchecked(&mut *buf))
                .map(|()| repr.buffer_len())
        }
    };
    written.expect("the probe buffer fits header and data")
}
