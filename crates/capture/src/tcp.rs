//! TCP as a conversation rather than single segments: each direction's
//! initial sequence number, so numbers can be shown relative to it as
//! tcpdump and Wireshark do.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::decode::{Packet, Tcp, TcpFlags, Transport};

/// One direction of a connection: from `src` to `dst`.
pub type Direction = (SocketAddr, SocketAddr);

/// The endpoints of a TCP segment, if the packet is one.
pub fn endpoints(packet: &Packet) -> Option<(Direction, &Tcp)> {
    let (src, dst) = packet.network.addresses()?;
    match &packet.transport {
        Some(Transport::Tcp(tcp)) => Some((
            (
                SocketAddr::new(src, tcp.src_port),
                SocketAddr::new(dst, tcp.dst_port),
            ),
            tcp,
        )),
        _ => None,
    }
}

/// Sequence numbers relative to each direction's first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relative {
    /// `None` for a SYN: its numbers are shown as they are.
    pub seq: Option<u32>,
    pub ack: Option<u32>,
}

/// Remembers each direction's initial sequence number.
#[derive(Debug, Default)]
pub struct Tracker {
    isn: HashMap<Direction, u32>,
}

impl Tracker {
    /// Learns from `tcp` going `from`→`to` and says its relative numbers.
    pub fn relative(&mut self, direction: Direction, tcp: &Tcp) -> Relative {
        let (from, to) = direction;
        if tcp.flags.has(TcpFlags::SYN) {
            self.isn.insert(direction, tcp.seq);
            if tcp.flags.has(TcpFlags::ACK) {
                self.isn.insert((to, from), tcp.ack.wrapping_sub(1));
            }
            return Relative {
                seq: None,
                ack: None,
            };
        }
        let own = *self.isn.entry(direction).or_insert(tcp.seq.wrapping_sub(1));
        let peer = self.isn.get(&(to, from)).copied();
        Relative {
            seq: Some(tcp.seq.wrapping_sub(own)),
            ack: peer.map(|isn| tcp.ack.wrapping_sub(isn)),
        }
    }

    /// The initial sequence number seen for a direction.
    pub fn isn(&self, direction: Direction) -> Option<u32> {
        self.isn.get(&direction).copied()
    }
}

/// `127.0.0.1.5000` or `::1.5000`, as tcpdump writes an endpoint.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    format!("{addr}.{port}")
}

/// What the connection view says about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Handshake step 1: the client's initial sequence number.
    Syn {
        isn: u32,
    },
    /// Step 2: the server's ISN, acknowledging the client's ISN + 1.
    SynAck {
        isn: u32,
        acknowledges: u32,
    },
    /// Step 3: the client acknowledges the server's ISN + 1.
    HandshakeDone,
    Fin,
    Rst,
    /// Carries bytes (or a SYN/FIN) this direction already sent.
    Retransmission,
    /// The same acknowledgement again with nothing new: the nth duplicate.
    DuplicateAck(u32),
}

#[derive(Debug, Default, Clone, Copy)]
struct Side {
    /// One past the highest sequence number sent so far.
    next: Option<u32>,
    last_ack: Option<(u32, u16)>,
    duplicates: u32,
    /// Sent a SYN-ACK, so its peer's next pure ACK ends the handshake.
    answered_syn: bool,
}

/// Follows connections segment by segment: handshakes, teardown,
/// retransmissions and duplicate ACKs, as Wireshark's analysis marks them.
#[derive(Debug, Default)]
pub struct Analyzer {
    sides: HashMap<Direction, Side>,
}

/// Whether `a` comes after `b` in sequence space (RFC 793 arithmetic).
pub fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Analyzer {
    pub fn notes(&mut self, direction: Direction, tcp: &Tcp, payload_len: usize) -> Vec<Note> {
        let flags = tcp.flags;
        let (syn, fin, rst, ack) = (
            flags.has(TcpFlags::SYN),
            flags.has(TcpFlags::FIN),
            flags.has(TcpFlags::RST),
            flags.has(TcpFlags::ACK),
        );
        let mut notes = Vec::new();
        let peer_answered = self
            .sides
            .get(&(direction.1, direction.0))
            .is_some_and(|side| side.answered_syn);
        let side = self.sides.entry(direction).or_default();
        // SYN and FIN each take one sequence number.
        let span = payload_len as u32 + u32::from(syn) + u32::from(fin);
        let end = tcp.seq.wrapping_add(span);
        let retransmitted = span > 0 && side.next.is_some_and(|next| !after(end, next));
        match (syn, ack) {
            (true, false) => notes.push(Note::Syn { isn: tcp.seq }),
            (true, true) => {
                side.answered_syn = true;
                notes.push(Note::SynAck {
                    isn: tcp.seq,
                    acknowledges: tcp.ack,
                });
            }
            _ => {}
        }
        if retransmitted {
            notes.push(Note::Retransmission);
        } else if span > 0 {
            side.next = Some(end);
        } else if side.next.is_none() {
            side.next = Some(tcp.seq);
        }
        if fin {
            notes.push(Note::Fin);
        }
        if rst {
            notes.push(Note::Rst);
        }
        let pure_ack = ack && span == 0 && !rst;
        if pure_ack && peer_answered {
            notes.push(Note::HandshakeDone);
            if let Some(peer) = self.sides.get_mut(&(direction.1, direction.0)) {
                peer.answered_syn = false;
            }
        }
        let side = self.sides.entry(direction).or_default();
        if pure_ack && side.last_ack == Some((tcp.ack, tcp.window)) {
            side.duplicates += 1;
            notes.push(Note::DuplicateAck(side.duplicates));
        } else if ack {
            side.duplicates = 0;
        }
        if ack {
            side.last_ack = Some((tcp.ack, tcp.window));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn segment(seq: u32, ack: u32, flags: u16) -> Tcp {
        Tcp {
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            header_len: 20,
            flags: TcpFlags(flags),
            window: 100,
            checksum: 0,
            urgent: 0,
            options: Vec::new(),
        }
    }

    #[test]
    fn handshake_data_retransmission_and_duplicate_acks() {
        let client: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let (up, down) = ((client, server), (server, client));
        let mut analyzer = Analyzer::default();
        let (s, a) = (TcpFlags::SYN, TcpFlags::ACK);
        assert_eq!(
            analyzer.notes(up, &segment(100, 0, s), 0),
            [Note::Syn { isn: 100 }]
        );
        assert_eq!(
            analyzer.notes(down, &segment(900, 101, s | a), 0),
            [Note::SynAck {
                isn: 900,
                acknowledges: 101
            }]
        );
        assert_eq!(
            analyzer.notes(up, &segment(101, 901, a), 0),
            [Note::HandshakeDone]
        );
        assert!(analyzer.notes(up, &segment(101, 901, a), 5).is_empty());
        assert_eq!(
            analyzer.notes(up, &segment(101, 901, a), 5),
            [Note::Retransmission]
        );
        assert!(analyzer.notes(down, &segment(901, 106, a), 0).is_empty());
        assert_eq!(
            analyzer.notes(down, &segment(901, 106, a), 0),
            [Note::DuplicateAck(1)]
        );
        assert_eq!(
            analyzer.notes(down, &segment(901, 106, a), 0),
            [Note::DuplicateAck(2)]
        );
        assert_eq!(
            analyzer.notes(up, &segment(106, 901, a | TcpFlags::FIN), 0),
            [Note::Fin]
        );
    }
}
