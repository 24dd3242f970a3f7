//! The STAMP session-reflector (RFC 8762 §4.3): turns a session-sender test
//! packet into the reflector's packet in place, keeping per-sender sequence
//! numbers when stateful.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ntp::NtpTimestamp;
use crate::wire::WireError;
use crate::wire::stamp::{ErrorEstimate, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};

/// Senders remembered by a stateful reflector; idle ones are forgotten first.
const MAX_SESSIONS: usize = 65_536;
/// A session silent this long starts again from sequence number 0.
const SESSION_IDLE: Duration = Duration::from_secs(300);

/// What a reflector remembers between packets.
#[derive(Debug)]
pub enum Reflector {
    /// Copies the sender's sequence number (§4.3: stateless mode).
    Stateless,
    /// Numbers its own replies per sender, so the sender can tell forward
    /// loss from backward loss.
    Stateful(HashMap<SocketAddr, Session>),
}

#[derive(Debug, Clone, Copy)]
pub struct Session {
    next: u32,
    last_seen: Instant,
}

impl Reflector {
    pub fn new(stateful: bool) -> Self {
        if stateful {
            Reflector::Stateful(HashMap::new())
        } else {
            Reflector::Stateless
        }
    }

    /// Rewrites the sender's packet in `datagram` as our reply. The reply
    /// keeps the datagram's length (symmetric size, §4.3), and every octet
    /// past the base packet is left as the sender wrote it.
    pub fn reflect(
        &mut self,
        datagram: &mut [u8],
        peer: SocketAddr,
        ttl: Option<u8>,
        received: NtpTimestamp,
        now: Instant,
    ) -> Result<SenderRepr, WireError> {
        let sender = SenderRepr::parse(&SenderPacket::new_checked(&*datagram)?);
        let sequence = match self {
            Reflector::Stateless => sender.sequence,
            Reflector::Stateful(sessions) => next_sequence(sessions, peer, now),
        };
        let reply = ReflectorRepr {
            sequence,
            timestamp: NtpTimestamp::now(),
            error_estimate: ErrorEstimate::LOCAL,
            receive_timestamp: received,
            sender_sequence: sender.sequence,
            sender_timestamp: sender.timestamp,
            sender_error_estimate: sender.error_estimate,
            // Unknown TTL: 255 says "no hops seen", the most that is honest.
            sender_ttl: ttl.unwrap_or(255),
        };
        reply.emit(&mut ReflectorPacket::new_checked(datagram)?);
        Ok(sender)
    }
}

fn next_sequence(
    sessions: &mut HashMap<SocketAddr, Session>,
    peer: SocketAddr,
    now: Instant,
) -> u32 {
    if !sessions.contains_key(&peer) && sessions.len() >= MAX_SESSIONS {
        // Forget any one sender rather than search for the idlest: a flood
        // of new source addresses must not cost a scan per packet. A
        // forgotten sender that returns simply starts again from 0.
        if let Some(&victim) = sessions.keys().next() {
            sessions.remove(&victim);
        }
    }
    let session = sessions.entry(peer).or_insert(Session {
        next: 0,
        last_seen: now,
    });
    if now.saturating_duration_since(session.last_seen) >= SESSION_IDLE {
        session.next = 0;
    }
    session.last_seen = now;
    let sequence = session.next;
    session.next = session.next.wrapping_add(1);
    sequence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::stamp::PACKET_LEN;

    fn sender_packet(sequence: u32, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        SenderRepr {
            sequence,
            timestamp: NtpTimestamp(0x1111_2222_3333_4444),
            error_estimate: ErrorEstimate::LOCAL,
        }
        .emit(&mut SenderPacket::new_checked(&mut bytes[..]).unwrap());
        bytes
    }

    #[test]
    fn stateless_copies_and_stateful_counts() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let now = Instant::now();
        let received = NtpTimestamp(0x5555_0000_0000_0000);
        let mut stateless = Reflector::new(false);
        let mut stateful = Reflector::new(true);
        for (peer, seq, expect_stateful) in [(a, 10, 0), (a, 12, 1), (b, 7, 0), (a, 13, 2)] {
            let mut bytes = sender_packet(seq, PACKET_LEN);
            stateless
                .reflect(&mut bytes, peer, Some(63), received, now)
                .unwrap();
            let reply = ReflectorRepr::parse(&ReflectorPacket::new_checked(&bytes[..]).unwrap());
            assert_eq!(reply.sequence, seq);
            assert_eq!(reply.sender_sequence, seq);
            assert_eq!(reply.sender_timestamp, NtpTimestamp(0x1111_2222_3333_4444));
            assert_eq!(reply.receive_timestamp, received);
            assert_eq!(reply.sender_ttl, 63);
            assert!(reply.timestamp >= received);

            let mut bytes = sender_packet(seq, PACKET_LEN);
            stateful
                .reflect(&mut bytes, peer, None, received, now)
                .unwrap();
            let reply = ReflectorRepr::parse(&ReflectorPacket::new_checked(&bytes[..]).unwrap());
            assert_eq!(reply.sequence, expect_stateful);
            assert_eq!(reply.sender_ttl, 255);
        }
    }

    #[test]
    fn padding_is_kept_and_short_packets_refused() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut bytes = sender_packet(1, 100);
        bytes[60] = 0xAB;
        let mut reflector = Reflector::new(false);
        reflector
            .reflect(&mut bytes, peer, None, NtpTimestamp::now(), Instant::now())
            .unwrap();
        assert_eq!(bytes.len(), 100);
        assert_eq!(bytes[60], 0xAB);
        let mut short = vec![0u8; 20];
        assert!(
            reflector
                .reflect(&mut short, peer, None, NtpTimestamp::now(), Instant::now())
                .is_err()
        );
        assert_eq!(short, vec![0u8; 20], "a refused packet is left alone");
    }
}
