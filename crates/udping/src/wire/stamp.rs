//! STAMP test packets in unauthenticated mode (RFC 8762 §4.2.1 and §4.3.1).
//!
//! Both packets are 44 octets. A session-sender may pad its packet; the
//! reflector answers with a packet of the same length (symmetric size), and
//! both must ignore the MBZ octets on receipt so that RFC 8972 extensions
//! pass through untouched.

use std::time::Duration;

use crate::ntp::NtpTimestamp;
use crate::wire::WireError;

/// Length of both unauthenticated test packets.
pub const PACKET_LEN: usize = 44;

mod field {
    use std::ops::Range;

    pub const SEQUENCE: Range<usize> = 0..4;
    pub const TIMESTAMP: Range<usize> = 4..12;
    pub const ERROR_ESTIMATE: Range<usize> = 12..14;
    /// Session-sender packet: everything after the error estimate.
    pub const SENDER_MBZ: Range<usize> = 14..44;

    pub const REFLECTOR_MBZ_1: Range<usize> = 14..16;
    pub const RECEIVE_TIMESTAMP: Range<usize> = 16..24;
    pub const SENDER_SEQUENCE: Range<usize> = 24..28;
    pub const SENDER_TIMESTAMP: Range<usize> = 28..36;
    pub const SENDER_ERROR_ESTIMATE: Range<usize> = 36..38;
    pub const REFLECTOR_MBZ_2: Range<usize> = 38..40;
    pub const SENDER_TTL: usize = 40;
    pub const REFLECTOR_MBZ_3: Range<usize> = 41..44;
}

/// The error estimate of RFC 4656 §4.1.2: `S` (clock synchronised to UTC),
/// `Z` (timestamps in PTP rather than NTP format, RFC 8186), and an error of
/// `multiplier * 2^(scale - 32)` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorEstimate {
    pub synchronized: bool,
    pub ptp_format: bool,
    /// Six bits; larger values are masked when emitted.
    pub scale: u8,
    pub multiplier: u8,
}

impl ErrorEstimate {
    /// What this host claims: an unsynchronised clock in NTP format, good to
    /// about a millisecond (2^-10 s).
    pub const LOCAL: ErrorEstimate = ErrorEstimate {
        synchronized: false,
        ptp_format: false,
        scale: 22,
        multiplier: 1,
    };

    pub fn from_bits(bits: u16) -> Self {
        Self {
            synchronized: bits & 0x8000 != 0,
            ptp_format: bits & 0x4000 != 0,
            scale: ((bits >> 8) & 0x3f) as u8,
            multiplier: bits as u8,
        }
    }

    pub fn to_bits(self) -> u16 {
        (u16::from(self.synchronized) << 15)
            | (u16::from(self.ptp_format) << 14)
            | (u16::from(self.scale & 0x3f) << 8)
            | u16::from(self.multiplier)
    }

    /// The estimated error in seconds.
    pub fn seconds(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(i32::from(self.scale & 0x3f) - 32)
    }
}

fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(raw)
}

fn check_len(len: usize) -> Result<(), WireError> {
    if len < PACKET_LEN {
        return Err(WireError::Truncated {
            len,
            need: PACKET_LEN,
        });
    }
    Ok(())
}

/// A checked view of a session-sender test packet (§4.2.1).
#[derive(Debug, Clone)]
pub struct SenderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SenderPacket<T> {
    /// Fails unless the buffer holds at least the 44-octet packet, so every
    /// accessor below is in bounds.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref().len())?;
        Ok(Self { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn sequence(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQUENCE])
    }

    pub fn timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(read_u64(&self.buffer.as_ref()[field::TIMESTAMP]))
    }

    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate::from_bits(read_u16(&self.buffer.as_ref()[field::ERROR_ESTIMATE]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SenderPacket<T> {
    fn bytes(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_sequence(&mut self, value: u32) {
        self.bytes()[field::SEQUENCE].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_timestamp(&mut self, value: NtpTimestamp) {
        self.bytes()[field::TIMESTAMP].copy_from_slice(&value.0.to_be_bytes());
    }

    pub fn set_error_estimate(&mut self, value: ErrorEstimate) {
        self.bytes()[field::ERROR_ESTIMATE].copy_from_slice(&value.to_bits().to_be_bytes());
    }

    /// Zeroes the MBZ field and any padding after the base packet.
    pub fn clear_padding(&mut self) {
        self.bytes()[field::SENDER_MBZ.start..].fill(0);
    }
}

/// What a session-sender says in a test packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderRepr {
    pub sequence: u32,
    pub timestamp: NtpTimestamp,
    pub error_estimate: ErrorEstimate,
}

impl SenderRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &SenderPacket<T>) -> Self {
        Self {
            sequence: packet.sequence(),
            timestamp: packet.timestamp(),
            error_estimate: packet.error_estimate(),
        }
    }

    /// Writes the packet, zeroing MBZ and padding.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut SenderPacket<T>) {
        packet.clear_padding();
        packet.set_sequence(self.sequence);
        packet.set_timestamp(self.timestamp);
        packet.set_error_estimate(self.error_estimate);
    }
}

/// A checked view of a session-reflector test packet (§4.3.1).
#[derive(Debug, Clone)]
pub struct ReflectorPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReflectorPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref().len())?;
        Ok(Self { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn sequence(&self) -> u32 {
        read_u32(&self.bytes()[field::SEQUENCE])
    }

    pub fn timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(read_u64(&self.bytes()[field::TIMESTAMP]))
    }

    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate::from_bits(read_u16(&self.bytes()[field::ERROR_ESTIMATE]))
    }

    pub fn receive_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(read_u64(&self.bytes()[field::RECEIVE_TIMESTAMP]))
    }

    pub fn sender_sequence(&self) -> u32 {
        read_u32(&self.bytes()[field::SENDER_SEQUENCE])
    }

    pub fn sender_timestamp(&self) -> NtpTimestamp {
        NtpTimestamp(read_u64(&self.bytes()[field::SENDER_TIMESTAMP]))
    }

    pub fn sender_error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate::from_bits(read_u16(&self.bytes()[field::SENDER_ERROR_ESTIMATE]))
    }

    pub fn sender_ttl(&self) -> u8 {
        self.bytes()[field::SENDER_TTL]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ReflectorPacket<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_sequence(&mut self, value: u32) {
        self.bytes_mut()[field::SEQUENCE].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_timestamp(&mut self, value: NtpTimestamp) {
        self.bytes_mut()[field::TIMESTAMP].copy_from_slice(&value.0.to_be_bytes());
    }

    pub fn set_error_estimate(&mut self, value: ErrorEstimate) {
        self.bytes_mut()[field::ERROR_ESTIMATE].copy_from_slice(&value.to_bits().to_be_bytes());
    }

    pub fn set_receive_timestamp(&mut self, value: NtpTimestamp) {
        self.bytes_mut()[field::RECEIVE_TIMESTAMP].copy_from_slice(&value.0.to_be_bytes());
    }

    pub fn set_sender_sequence(&mut self, value: u32) {
        self.bytes_mut()[field::SENDER_SEQUENCE].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_sender_timestamp(&mut self, value: NtpTimestamp) {
        self.bytes_mut()[field::SENDER_TIMESTAMP].copy_from_slice(&value.0.to_be_bytes());
    }

    pub fn set_sender_error_estimate(&mut self, value: ErrorEstimate) {
        self.bytes_mut()[field::SENDER_ERROR_ESTIMATE]
            .copy_from_slice(&value.to_bits().to_be_bytes());
    }

    pub fn set_sender_ttl(&mut self, value: u8) {
        self.bytes_mut()[field::SENDER_TTL] = value;
    }

    /// Zeroes the three MBZ fields of the base packet.
    pub fn clear_mbz(&mut self) {
        let bytes = self.bytes_mut();
        bytes[field::REFLECTOR_MBZ_1].fill(0);
        bytes[field::REFLECTOR_MBZ_2].fill(0);
        bytes[field::REFLECTOR_MBZ_3].fill(0);
    }
}

/// What a session-reflector says: its own sequence number and timestamps,
/// and a copy of what the sender sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorRepr {
    pub sequence: u32,
    pub timestamp: NtpTimestamp,
    pub error_estimate: ErrorEstimate,
    pub receive_timestamp: NtpTimestamp,
    pub sender_sequence: u32,
    pub sender_timestamp: NtpTimestamp,
    pub sender_error_estimate: ErrorEstimate,
    pub sender_ttl: u8,
}

impl ReflectorRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &ReflectorPacket<T>) -> Self {
        Self {
            sequence: packet.sequence(),
            timestamp: packet.timestamp(),
            error_estimate: packet.error_estimate(),
            receive_timestamp: packet.receive_timestamp(),
            sender_sequence: packet.sender_sequence(),
            sender_timestamp: packet.sender_timestamp(),
            sender_error_estimate: packet.sender_error_estimate(),
            sender_ttl: packet.sender_ttl(),
        }
    }

    /// Writes the base packet and zeroes its MBZ fields; octets after the
    /// first 44 are left as they are.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ReflectorPacket<T>) {
        packet.clear_mbz();
        packet.set_sequence(self.sequence);
        packet.set_timestamp(self.timestamp);
        packet.set_error_estimate(self.error_estimate);
        packet.set_receive_timestamp(self.receive_timestamp);
        packet.set_sender_sequence(self.sender_sequence);
        packet.set_sender_timestamp(self.sender_timestamp);
        packet.set_sender_error_estimate(self.sender_error_estimate);
        packet.set_sender_ttl(self.sender_ttl);
    }

    /// Time the packet spent inside the reflector (transmit minus receive
    /// timestamp), read in whichever format the Z bit names. `None` if the
    /// reflector's clock went backwards between the two.
    pub fn residence(&self) -> Option<Duration> {
        if self.error_estimate.ptp_format {
            let nanos = |t: NtpTimestamp| {
                i128::from(t.seconds()) * 1_000_000_000 + i128::from(t.fraction())
            };
            let diff = nanos(self.timestamp) - nanos(self.receive_timestamp);
            u64::try_from(diff).ok().map(Duration::from_nanos)
        } else {
            self.timestamp.since(self.receive_timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A session-sender packet laid out by hand from the figure in §4.2.1:
    /// sequence 0x01020304, timestamp 0xE8A1B2C3.80000000 (half a second),
    /// error estimate S=1 Z=0 scale=0x05 multiplier=0x07, 30 MBZ octets.
    const SENDER: [u8; 44] = [
        0x01, 0x02, 0x03, 0x04, // Sequence Number
        0xE8, 0xA1, 0xB2, 0xC3, 0x80, 0x00, 0x00, 0x00, // Timestamp
        0x85, 0x07, // Error Estimate
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, // MBZ (30 octets)
    ];

    /// A session-reflector packet laid out by hand from §4.3.1.
    const REFLECTOR: [u8; 44] = [
        0x00, 0x00, 0x00, 0x2A, // Sequence Number (42)
        0xE8, 0xA1, 0xB2, 0xC4, 0x00, 0x10, 0x00, 0x00, // Timestamp (transmit)
        0x16, 0x01, // Error Estimate: S=0 Z=0 scale=22 multiplier=1
        0x00, 0x00, // MBZ
        0xE8, 0xA1, 0xB2, 0xC4, 0x00, 0x00, 0x00, 0x00, // Receive Timestamp
        0x01, 0x02, 0x03, 0x04, // Session-Sender Sequence Number
        0xE8, 0xA1, 0xB2, 0xC3, 0x80, 0x00, 0x00, 0x00, // Session-Sender Timestamp
        0x85, 0x07, // Session-Sender Error Estimate
        0x00, 0x00, // MBZ
        0x40, // Session-Sender TTL (64)
        0x00, 0x00, 0x00, // MBZ
    ];

    fn sender_repr() -> SenderRepr {
        SenderRepr {
            sequence: 0x0102_0304,
            timestamp: NtpTimestamp(0xE8A1_B2C3_8000_0000),
            error_estimate: ErrorEstimate {
                synchronized: true,
                ptp_format: false,
                scale: 5,
                multiplier: 7,
            },
        }
    }

    fn reflector_repr() -> ReflectorRepr {
        let sender = sender_repr();
        ReflectorRepr {
            sequence: 42,
            timestamp: NtpTimestamp(0xE8A1_B2C4_0010_0000),
            error_estimate: ErrorEstimate::LOCAL,
            receive_timestamp: NtpTimestamp(0xE8A1_B2C4_0000_0000),
            sender_sequence: sender.sequence,
            sender_timestamp: sender.timestamp,
            sender_error_estimate: sender.error_estimate,
            sender_ttl: 64,
        }
    }

    #[test]
    fn sender_deconstruct_and_parse() {
        let packet = SenderPacket::new_checked(&SENDER[..]).unwrap();
        assert_eq!(packet.sequence(), 0x0102_0304);
        assert_eq!(packet.timestamp().seconds(), 0xE8A1_B2C3);
        assert_eq!(packet.timestamp().fraction(), 0x8000_0000);
        assert_eq!(packet.error_estimate().to_bits(), 0x8507);
        assert_eq!(SenderRepr::parse(&packet), sender_repr());
    }

    #[test]
    fn sender_emit_matches_fixture() {
        let mut bytes = [0xFFu8; 44];
        let mut packet = SenderPacket::new_checked(&mut bytes[..]).unwrap();
        sender_repr().emit(&mut packet);
        assert_eq!(bytes, SENDER);
    }

    #[test]
    fn reflector_deconstruct_and_parse() {
        let packet = ReflectorPacket::new_checked(&REFLECTOR[..]).unwrap();
        assert_eq!(packet.sequence(), 42);
        assert_eq!(packet.sender_sequence(), 0x0102_0304);
        assert_eq!(packet.sender_ttl(), 64);
        assert_eq!(packet.error_estimate(), ErrorEstimate::LOCAL);
        assert_eq!(ReflectorRepr::parse(&packet), reflector_repr());
    }

    #[test]
    fn reflector_emit_matches_fixture() {
        let mut bytes = [0xFFu8; 44];
        let mut packet = ReflectorPacket::new_checked(&mut bytes[..]).unwrap();
        reflector_repr().emit(&mut packet);
        assert_eq!(bytes, REFLECTOR);
    }

    #[test]
    fn residence_in_both_formats() {
        // 0x00100000 / 2^32 s = 244.140625 µs.
        let ntp = reflector_repr().residence().unwrap();
        assert_eq!(ntp.as_nanos(), 244_140);
        let mut ptp = reflector_repr();
        ptp.error_estimate.ptp_format = true;
        ptp.receive_timestamp = NtpTimestamp((10 << 32) | 999_999_000);
        ptp.timestamp = NtpTimestamp((11 << 32) | 500);
        assert_eq!(ptp.residence(), Some(Duration::from_nanos(1_500)));
        let mut backwards = reflector_repr();
        std::mem::swap(&mut backwards.timestamp, &mut backwards.receive_timestamp);
        assert_eq!(backwards.residence(), None);
    }

    #[test]
    fn error_estimate_bits() {
        assert!((ErrorEstimate::LOCAL.seconds() - 1.0 / 1024.0).abs() < 1e-12);
        for bits in [0u16, 0x8507, 0xffff, 0x4001] {
            assert_eq!(ErrorEstimate::from_bits(bits).to_bits(), bits);
        }
    }

    #[test]
    fn short_packets_are_refused() {
        assert_eq!(
            SenderPacket::new_checked(&SENDER[..43]).unwrap_err(),
            WireError::Truncated { len: 43, need: 44 }
        );
        assert!(ReflectorPacket::new_checked(&[][..]).is_err());
        // Padding beyond the base packet is allowed.
        assert!(SenderPacket::new_checked(&[0u8; 1400][..]).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = SenderPacket::new_checked(&bytes[..]) {
                let repr = SenderRepr::parse(&packet);
                let mut out = vec![0u8; bytes.len()];
                repr.emit(&mut SenderPacket::new_checked(&mut out[..]).unwrap());
                prop_assert_eq!(&out[..14], &bytes[..14]);
            }
            if let Ok(packet) = ReflectorPacket::new_checked(&bytes[..]) {
                let repr = ReflectorRepr::parse(&packet);
                let _ = repr.residence();
                let mut out = bytes.clone();
                repr.emit(&mut ReflectorPacket::new_checked(&mut out[..]).unwrap());
                prop_assert_eq!(ReflectorRepr::parse(&ReflectorPacket::new_checked(&out[..]).unwrap()), repr);
            }
        }
    }
}
