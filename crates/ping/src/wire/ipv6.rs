//! The IPv6 header (RFC 8200), as quoted inside ICMPv6 errors, with the
//! extension headers walked to reach the upper-layer message.

use std::net::Ipv6Addr;

use super::WireError;

pub const HEADER_LEN: usize = 40;

/// The ICMPv6 next-header value.
pub const NEXT_HEADER_ICMPV6: u8 = 58;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DESTINATION_OPTIONS: u8 = 60;

mod field {
    use std::ops::Range;

    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A read-only view of an IPv6 header followed by (part of) its payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if bytes[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        Ok(Packet { buffer })
    }

    pub fn payload_len(&self) -> u16 {
        let bytes = self.buffer.as_ref();
        u16::from_be_bytes([
            bytes[field::PAYLOAD_LEN.start],
            bytes[field::PAYLOAD_LEN.start + 1],
        ])
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        read_addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        read_addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The payload present in the buffer, never past the declared length.
    pub fn payload(&self) -> &[u8] {
        let bytes = &self.buffer.as_ref()[HEADER_LEN..];
        &bytes[..bytes.len().min(usize::from(self.payload_len()))]
    }

    /// The upper-layer protocol and its bytes, past any hop-by-hop,
    /// routing, fragment and destination-options headers. `None` when the
    /// chain is cut short or this is a non-first fragment, which carries no
    /// upper-layer header.
    pub fn upper_layer(&self) -> Option<(u8, &[u8])> {
        walk_extensions(self.next_header(), self.payload())
    }
}

impl<'a> Packet<&'a [u8]> {
    /// [`Packet::upper_layer`], borrowing from the buffer itself.
    pub fn into_upper_layer(self) -> Option<(u8, &'a [u8])> {
        let next = self.next_header();
        let len = self.payload().len();
        walk_extensions(next, &self.buffer[HEADER_LEN..HEADER_LEN + len])
    }
}

fn walk_extensions(mut next: u8, mut rest: &[u8]) -> Option<(u8, &[u8])> {
    loop {
        match next {
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                let len = (usize::from(*rest.get(1)?) + 1) * 8;
                next = *rest.first()?;
                rest = rest.get(len..)?;
            }
            FRAGMENT => {
                let header = rest.get(..8)?;
                let offset = u16::from_be_bytes([header[2], header[3]]) >> 3;
                if offset != 0 {
                    return None;
                }
                next = header[0];
                rest = &rest[8..];
            }
            protocol => return Some((protocol, rest)),
        }
    }
}

/// The header fields ping cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
        }
    }
}

fn read_addr(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(bytes);
    Ipv6Addr::from(octets)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ::1 → ::1, ICMPv6, hop limit 64, 16 bytes of payload declared.
    pub fn header(next_header: u8, payload_len: u16) -> Vec<u8> {
        let mut bytes = vec![0x60, 0, 0, 0];
        bytes.extend_from_slice(&payload_len.to_be_bytes());
        bytes.extend_from_slice(&[next_header, 64]);
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        bytes
    }

    #[test]
    fn deconstruct() {
        let mut bytes = header(NEXT_HEADER_ICMPV6, 8);
        bytes.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 2, 0xff]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), Ipv6Addr::LOCALHOST);
        assert_eq!(packet.payload().len(), 8, "stops at the declared length");
        assert_eq!(
            packet.upper_layer(),
            Some((NEXT_HEADER_ICMPV6, &[128, 0, 0, 0, 0, 1, 0, 2][..]))
        );
        assert_eq!(Repr::parse(&packet).next_header, NEXT_HEADER_ICMPV6);
    }

    #[test]
    fn walks_extension_headers() {
        let mut bytes = header(HOP_BY_HOP, 24);
        bytes.extend_from_slice(&[FRAGMENT, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, 8 bytes
        bytes.extend_from_slice(&[NEXT_HEADER_ICMPV6, 0, 0, 1, 0, 0, 0, 7]); // first fragment
        bytes.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 2]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            packet.upper_layer(),
            Some((NEXT_HEADER_ICMPV6, &[128, 0, 0, 0, 0, 1, 0, 2][..]))
        );
    }

    #[test]
    fn later_fragments_have_no_upper_layer() {
        let mut bytes = header(FRAGMENT, 16);
        bytes.extend_from_slice(&[NEXT_HEADER_ICMPV6, 0, 0x05, 0x01, 0, 0, 0, 7]);
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().upper_layer(), None);
    }

    #[test]
    fn rejects() {
        let bytes = header(NEXT_HEADER_ICMPV6, 0);
        assert_eq!(
            Packet::new_checked(&bytes[..39]).err(),
            Some(WireError::Truncated)
        );
        let mut v4 = bytes.clone();
        v4[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&v4[..]).err(),
            Some(WireError::Malformed)
        );
        let mut cut = header(ROUTING, 16);
        cut.extend_from_slice(&[NEXT_HEADER_ICMPV6, 4, 0, 0]);
        assert_eq!(Packet::new_checked(&cut[..]).unwrap().upper_layer(), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&packet);
                if let Some((_, upper)) = packet.upper_layer() {
                    prop_assert!(upper.len() <= bytes.len());
                }
            }
        }

        #[test]
        fn arbitrary_extension_chains_never_panic(
            next in prop::sample::select(vec![0u8, 43, 44, 60, 58]),
            rest in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let mut bytes = header(next, rest.len() as u16);
            bytes.extend_from_slice(&rest);
            let _ = Packet::new_checked(&bytes[..]).unwrap().upper_layer();
        }
    }
}
