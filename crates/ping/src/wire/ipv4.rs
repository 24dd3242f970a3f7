//! The IPv4 header (RFC 791), as read from raw sockets and from the
//! original datagram quoted inside ICMP errors.

use std::net::Ipv4Addr;

use super::{WireError, checksum};

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// The ICMP protocol number in the header's protocol field.
pub const PROTOCOL_ICMP: u8 = 1;

mod field {
    use std::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const LENGTH: Range<usize> = 2..4;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// A read-only view of an IPv4 header followed by (part of) its payload.
///
/// [`Packet::new_checked`] verifies the version and that the whole header,
/// options included, is in the buffer; the payload may be cut short, as it
/// is in an ICMP error quoting the start of a datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Packet { buffer };
        let bytes = packet.buffer.as_ref();
        if bytes.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if bytes[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN || usize::from(packet.total_len()) < header_len {
            return Err(WireError::Malformed);
        }
        if bytes.len() < header_len {
            return Err(WireError::Truncated);
        }
        Ok(packet)
    }

    /// The header length in bytes, options included (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The datagram length the sender declared, header included.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn header_checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The payload present in the buffer, never past the declared length.
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(bytes.len());
        &bytes[self.header_len()..end]
    }
}

/// The header fields ping cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
        }
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_addr(bytes: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 127.0.0.1 → 127.0.0.1, ICMP, TTL 64, 84 bytes; checksum valid.
    pub const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x2a, 0x73, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01,
    ];

    #[test]
    fn deconstruct() {
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&[0xaa; 8]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 84);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), PROTOCOL_ICMP);
        assert_eq!(packet.src_addr(), Ipv4Addr::LOCALHOST);
        assert_eq!(packet.dst_addr(), Ipv4Addr::LOCALHOST);
        assert!(packet.verify_checksum());
        // The payload stops where the buffer does when it is cut short.
        assert_eq!(packet.payload(), &[0xaa; 8]);
        assert_eq!(
            Repr::parse(&packet),
            Repr {
                src_addr: Ipv4Addr::LOCALHOST,
                dst_addr: Ipv4Addr::LOCALHOST,
                protocol: 1,
                ttl: 64
            }
        );
    }

    #[test]
    fn options_extend_the_header() {
        let mut bytes = HEADER.to_vec();
        bytes[0] = 0x46;
        bytes.extend_from_slice(&[1, 1, 1, 0, 8, 0]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.payload(), &[8, 0]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&HEADER[..19]).err(),
            Some(WireError::Truncated)
        );
        let mut v6 = HEADER;
        v6[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&v6[..]).err(),
            Some(WireError::Malformed)
        );
        let mut short_ihl = HEADER;
        short_ihl[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&short_ihl[..]).err(),
            Some(WireError::Malformed)
        );
        let mut long_ihl = HEADER;
        long_ihl[0] = 0x4f;
        long_ihl[3] = 0xff;
        assert_eq!(
            Packet::new_checked(&long_ihl[..]).err(),
            Some(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&packet);
                let _ = packet.verify_checksum();
                prop_assert!(packet.payload().len() <= bytes.len());
            }
        }
    }
}
