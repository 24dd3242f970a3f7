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
