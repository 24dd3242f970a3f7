//! What the sockets deliver, turned into replies and errors matched to our
//! probes: by source address (or the address an error quotes), echo
//! identifier and sequence number.

use std::io;
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::host::ProbeState;
use super::{State, family_index};
use crate::socket::{Datagram, IcmpSocket, Origin, QueuedError, SocketKind};
use crate::stats::micros_between;
use crate::wire::{icmpv4, icmpv6, ipv4, payload};
use crate::{DataMismatch, Event, Family, IcmpError, LocalError, ProbeError, Reply, ReplyStatus};

/// An echo reply as read, before it is matched.
struct Arrival<'a> {
    from: IpAddr,
    seq: u16,
    /// ICMP message length.
    bytes: usize,
    hop_limit: Option<u8>,
    data: &'a [u8],
    checksum_ok: bool,
    at: SystemTime,
}

impl State {
    /// Reads every queued message from `socket`.
    pub(super) fn drain(
        &mut self,
        socket: &IcmpSocket,
        buf: &mut [u8],
        control: &mut [u8],
        emit: &mut dyn FnMut(Event),
    ) {
        // Once every target is done the run is over: later messages (a
        // duplicate of the last reply, say) are left unread, as iputils does.
        while self.remaining > 0 {
            match socket.recv(buf, control) {
                Ok(datagram) => {
                    let bytes = &buf[..datagram.len];
                    self.on_datagram(socket, bytes, &datagram, emit);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // A pending socket error, raised by an ICMP error on a
                    // datagram socket: the error queue has the details.
                    self.drain_errors(socket, buf, control, emit);
                    return;
                }
            }
        }
    }

    /// Reads every entry of `socket`'s error queue.
    pub(super) fn drain_errors(
        &mut self,
        socket: &IcmpSocket,
        buf: &mut [u8],
        control: &mut [u8],
        emit: &mut dyn FnMut(Event),
    ) {
        while self.remaining > 0 {
            match socket.recv_error(buf, control) {
                Ok(queued) => {
                    // A raw socket reads ICMP errors as packets already; only
                    // the kernel's local errors are news from its queue.
                    let local = queued.error.is_some_and(|e| e.origin == Origin::Local);
                    if socket.kind() == SocketKind::Datagram || local {
                        let bytes = &buf[..queued.len];
                        self.on_queued_error(socket.family(), bytes, &queued, emit);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Reports the local error the kernel queued for a send it refused, if
    /// it queued one; only the extended error matters, not the bytes.
    pub(super) fn take_local_error(
        &mut self,
        socket: &IcmpSocket,
        emit: &mut dyn FnMut(Event),
    ) -> bool {
        let mut buf = [0u8; 64];
        let mut control = [0u8; 512];
        match socket.recv_error(&mut buf, &mut control) {
            Ok(queued) => {
                self.on_queued_error(socket.family(), &buf[..queued.len], &queued, emit);
                true
            }
            Err(_) => false,
        }
    }

    fn on_datagram(
        &mut self,
        socket: &IcmpSocket,
        bytes: &[u8],
        datagram: &Datagram,
        emit: &mut dyn FnMut(Event),
    ) {
        let at = datagram
            .ancillary
            .stamp
            .map_or_else(SystemTime::now, |stamp| UNIX_EPOCH + stamp);
        let raw = socket.kind() == SocketKind::Raw;
        let hop_limit = datagram.ancillary.hop_limit;
        match socket.family() {
            Family::V4 if raw => {
                let Ok(ip) = ipv4::Packet::new_checked(bytes) else {
                    return;
                };
                let icmp = &bytes[ip.header_len()..];
                self.on_icmpv4(socket, icmp, datagram.from, Some(ip.ttl()), at, emit);
            }
            Family::V4 => self.on_icmpv4(socket, bytes, datagram.from, hop_limit, at, emit),
            Family::V6 => self.on_icmpv6(socket, bytes, datagram.from, hop_limit, at, emit),
        }
    }

    fn on_icmpv4(
        &mut self,
        socket: &IcmpSocket,
        bytes: &[u8],
        from: IpAddr,
        hop_limit: Option<u8>,
        at: SystemTime,
        emit: &mut dyn FnMut(Event),
    ) {
        let Ok(packet) = icmpv4::Packet::new_checked(bytes) else {
            return;
        };
        let raw = socket.kind() == SocketKind::Raw;
        // Datagram sockets get only what the kernel has verified.
        let checksum_ok = !raw || packet.verify_checksum();
        match icmpv4::Repr::parse(&packet) {
            Ok(icmpv4::Repr::EchoReply {
                ident,
                seq_no,
                data,
            }) if !raw || ident == socket.ident() => {
                let arrival = Arrival {
                    from,
                    seq: seq_no,
                    bytes: bytes.len(),
                    hop_limit,
                    data,
                    checksum_ok,
                    at,
                };
                self.on_reply(arrival, emit);
            }
            Ok(icmpv4::Repr::Error { message, quote }) if checksum_ok => {
                let Some(echo) = quote.echo_request() else {
                    return;
                };
                let probed = IpAddr::V4(quote.header.dst_addr);
                if let (true, Some(&index)) =
                    (echo.ident == socket.ident(), self.by_addr.get(&probed))
                {
                    self.on_error(index, echo.seq_no, from, IcmpError::V4(message), emit);
                }
            }
            _ => {}
        }
    }

    fn on_icmpv6(
        &mut self,
        socket: &IcmpSocket,
        bytes: &[u8],
        from: IpAddr,
        hop_limit: Option<u8>,
        at: SystemTime,
        emit: &mut dyn FnMut(Event),
    ) {
        let Ok(packet) = icmpv6::Packet::new_checked(bytes) else {
            return;
        };
        let raw = socket.kind() == SocketKind::Raw;
        match icmpv6::Repr::parse(&packet) {
            Ok(icmpv6::Repr::EchoReply {
                ident,
                seq_no,
                data,
            }) if !raw || ident == socket.ident() => {
                let arrival = Arrival {
                    from,
                    seq: seq_no,
                    bytes: bytes.len(),
                    hop_limit,
                    data,
                    checksum_ok: true,
                    at,
                };
                self.on_reply(arrival, emit);
            }
            Ok(icmpv6::Repr::Error { message, quote }) => {
                let Some(echo) = quote.echo_request() else {
                    return;
                };
                let probed = IpAddr::V6(quote.header.dst_addr);
                if let (true, Some(&index)) =
                    (echo.ident == socket.ident(), self.by_addr.get(&probed))
                {
                    self.on_error(index, echo.seq_no, from, IcmpError::V6(message), emit);
                }
            }
            _ => {}
        }
    }

    /// An entry of a datagram socket's error queue: the kernel matched the
    /// ICMP error to our socket and hands back our original echo header.
    fn on_queued_error(
        &mut self,
        family: Family,
        bytes: &[u8],
        queued: &QueuedError,
        emit: &mut dyn FnMut(Event),
    ) {
        let (Some(error), Some(destination)) = (queued.error, queued.destination) else {
            return;
        };
        let Some(&index) = self.by_addr.get(&destination) else {
            return;
        };
        let message = match (error.origin, family) {
            (Origin::Local, _) => {
                self.hosts[index].stats.errors += 1;
                let error = if error.errno == libc::EMSGSIZE {
                    LocalError::MessageTooLong { mtu: error.info }
                } else {
                    LocalError::Os(error.errno)
                };
                emit(Event::LocalError { host: index, error });
                self.check_done(index, Instant::now(), emit);
                return;
            }
            (Origin::Icmp, Family::V4) => {
                icmpv4::ErrorMessage::from_parts(error.icmp_type, error.icmp_code, error.info)
                    .map(IcmpError::V4)
            }
            (Origin::Icmp6, Family::V6) => {
                icmpv6::ErrorMessage::from_parts(error.icmp_type, error.icmp_code, error.info)
                    .map(IcmpError::V6)
            }
            _ => None,
        };
        let seq = match family {
            Family::V4 => icmpv4::Packet::new_checked(bytes)
                .ok()
                .filter(|echo| echo.msg_type() == icmpv4::Message::EchoRequest)
                .map(|echo| echo.echo_seq_no()),
            Family::V6 => icmpv6::Packet::new_checked(bytes)
                .ok()
                .filter(|echo| echo.msg_type() == icmpv6::Message::EchoRequest)
                .map(|echo| echo.echo_seq_no()),
        };
        if let (Some(message), Some(seq)) = (message, seq) {
            let from = error.offender.unwrap_or(destination);
            self.on_error(index, seq, from, message, emit);
        }
    }

    fn on_reply(&mut self, arrival: Arrival<'_>, emit: &mut dyn FnMut(Event)) {
        let family = family_index(Family::of(&arrival.from));
        let (index, wrong_source) = match self.by_addr.get(&arrival.from) {
            Some(&index) => (index, false),
            None => match self.only[family] {
                Some(index) => (index, true),
                None => return,
            },
        };
        let payload_len = self.config.payload_len;
        let host = &mut self.hosts[index];
        let probe = if arrival.checksum_ok {
            host.answer(arrival.seq)
        } else {
            host.find_mut(arrival.seq).map(|probe| *probe)
        };
        let Some(probe) = probe else {
            tracing::debug!(from = %arrival.from, seq = arrival.seq, "echo reply matches no probe");
            return;
        };
        let status = match (arrival.checksum_ok, probe.state) {
            (false, _) => ReplyStatus::BadChecksum,
            (true, ProbeState::Waiting | ProbeState::Failed) => ReplyStatus::Fresh,
            (true, ProbeState::Answered) => ReplyStatus::Duplicate,
            (true, ProbeState::Expired) => ReplyStatus::Late,
        };
        let timed =
            payload_len >= payload::TIMESTAMP_LEN && arrival.data.len() >= payload::TIMESTAMP_LEN;
        let rtt = timed.then(|| {
            arrival
                .at
                .duration_since(probe.sent_wall)
                .unwrap_or_default()
        });
        let stats = &mut host.stats;
        match status {
            ReplyStatus::Fresh | ReplyStatus::Duplicate => {
                if status == ReplyStatus::Fresh {
                    stats.received += 1;
                } else {
                    stats.duplicates += 1;
                }
                if timed {
                    stats.record_rtt(micros_between(probe.sent_wall, arrival.at));
                }
                if let Some(outstanding) = host.outstanding_at(arrival.seq) {
                    host.stats.record_pipe(outstanding);
                }
            }
            ReplyStatus::Late => stats.late += 1,
            ReplyStatus::BadChecksum => stats.corrupted += 1,
        }
        let mismatch = matches!(status, ReplyStatus::Fresh | ReplyStatus::Duplicate)
            .then(|| payload::check(arrival.data, payload_len))
            .flatten()
            .map(|first| {
                let offset = if payload_len >= payload::TIMESTAMP_LEN {
                    payload::TIMESTAMP_LEN
                } else {
                    0
                };
                let end = arrival.data.len().min(payload_len);
                DataMismatch {
                    first,
                    data: arrival.data[offset..end].to_vec(),
                    offset,
                }
            });
        emit(Event::Reply(Reply {
            host: index,
            seq: arrival.seq,
            from: arrival.from,
            bytes: arrival.bytes,
            hop_limit: arrival.hop_limit,
            rtt,
            status,
            wrong_source,
            mismatch,
            sent: probe.sent_wall,
            at: arrival.at,
        }));
        if status == ReplyStatus::Fresh {
            self.settled(index, Instant::now(), emit);
        }
    }

    fn on_error(
        &mut self,
        index: usize,
        seq: u16,
        from: IpAddr,
        message: IcmpError,
        emit: &mut dyn FnMut(Event),
    ) {
        let host = &mut self.hosts[index];
        let failure = message.is_failure();
        let probe = if failure {
            host.fail(seq)
        } else {
            host.find_mut(seq).map(|probe| *probe)
        };
        let Some(probe) = probe else {
            return;
        };
        if failure {
            host.stats.errors += 1;
            if let Some(outstanding) = host.outstanding_at(seq) {
                host.stats.record_pipe(outstanding);
            }
        }
        emit(Event::Error(ProbeError {
            host: index,
            seq,
            from,
            message,
            sent: probe.sent_wall,
            at: SystemTime::now(),
        }));
        if failure {
            self.settled(index, Instant::now(), emit);
        }
    }
}
