//! ICMP for IPv4 (RFC 792): echo request and reply, and the error messages
//! that quote the datagram which caused them.

use std::fmt;
use std::net::Ipv4Addr;

use super::{Echo, WireError, checksum, codes, ipv4};

/// Length of the ICMP header: type, code, checksum and four bytes whose
/// meaning depends on the type.
pub const HEADER_LEN: usize = 8;

mod field {
    use std::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ_NO: Range<usize> = 6..8;
    pub const POINTER: usize = 4;
    pub const GATEWAY: Range<usize> = 4..8;
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
}

codes! {
    /// The ICMP message type.
    Message {
        EchoReply = 0,
        DstUnreachable = 3,
        SourceQuench = 4,
        Redirect = 5,
        EchoRequest = 8,
        TimeExceeded = 11,
        ParamProblem = 12,
        Timestamp = 13,
        TimestampReply = 14,
    }
}

codes! {
    /// Why a destination is unreachable (the code of type 3).
    DstUnreachable {
        NetUnreachable = 0,
        HostUnreachable = 1,
        ProtoUnreachable = 2,
        PortUnreachable = 3,
        FragRequired = 4,
        SrcRouteFailed = 5,
        DstNetUnknown = 6,
        DstHostUnknown = 7,
        SrcHostIsolated = 8,
        NetProhibited = 9,
        HostProhibited = 10,
        NetUnreachToS = 11,
        HostUnreachToS = 12,
        CommProhibited = 13,
        HostPrecedenceViolation = 14,
        PrecedenceCutoff = 15,
    }
}

codes! {
    /// What ran out (the code of type 11).
    TimeExceeded {
        TtlExpired = 0,
        FragExpired = 1,
    }
}

codes! {
    /// What a redirect is for (the code of type 5).
    Redirect {
        Net = 0,
        Host = 1,
        NetTos = 2,
        HostTos = 3,
    }
}

/// A view of an ICMP message; [`Packet::new_checked`] ensures the header is
/// present, so no accessor can read out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM.start)
    }

    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT.start)
    }

    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQ_NO.start)
    }

    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::NEXT_HOP_MTU.start)
    }

    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    pub fn gateway(&self) -> Ipv4Addr {
        let bytes = &self.buffer.as_ref()[field::GATEWAY];
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
    }

    /// Everything after the 8-byte header: echo data, or the quoted datagram.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }

    fn read_u16(&self, at: usize) -> u16 {
        let bytes = self.buffer.as_ref();
        u16::from_be_bytes([bytes[at], bytes[at + 1]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    pub fn set_echo_ident(&mut self, value: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.buffer.as_mut()[field::ECHO_SEQ_NO].copy_from_slice(&value.to_be_bytes());
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    pub fn fill_checksum(&mut self) {
        self.buffer.as_mut()[field::CHECKSUM].fill(0);
        let sum = !checksum::data(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An ICMP error (or advice, for redirect and source quench), decoded from
/// a message or from the type, code and info the kernel's error queue
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMessage {
    DstUnreachable {
        reason: DstUnreachable,
        /// Meaningful for [`DstUnreachable::FragRequired`] (RFC 1191).
        next_hop_mtu: u16,
    },
    SourceQuench,
    Redirect {
        reason: Redirect,
        gateway: Ipv4Addr,
    },
    TimeExceeded(TimeExceeded),
    ParamProblem {
        pointer: u8,
    },
}

impl ErrorMessage {
    /// From the type, code and info of a `sock_extended_err`; `None` for
    /// types that are not errors.
    pub fn from_parts(msg_type: u8, code: u8, info: u32) -> Option<Self> {
        Some(match Message::from(msg_type) {
            Message::DstUnreachable => ErrorMessage::DstUnreachable {
                reason: code.into(),
                next_hop_mtu: u16::try_from(info).unwrap_or(u16::MAX),
            },
            Message::SourceQuench => ErrorMessage::SourceQuench,
            Message::Redirect => ErrorMessage::Redirect {
                reason: code.into(),
                gateway: Ipv4Addr::from(info),
            },
            Message::TimeExceeded => ErrorMessage::TimeExceeded(code.into()),
            Message::ParamProblem => ErrorMessage::ParamProblem {
                pointer: u8::try_from(info).unwrap_or(u8::MAX),
            },
            _ => return None,
        })
    }

    fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Option<Self> {
        let code = packet.msg_code();
        Some(match packet.msg_type() {
            Message::DstUnreachable => ErrorMessage::DstUnreachable {
                reason: code.into(),
                next_hop_mtu: packet.next_hop_mtu(),
            },
            Message::SourceQuench => ErrorMessage::SourceQuench,
            Message::Redirect => ErrorMessage::Redirect {
                reason: code.into(),
                gateway: packet.gateway(),
            },
            Message::TimeExceeded => ErrorMessage::TimeExceeded(code.into()),
            Message::ParamProblem => ErrorMessage::ParamProblem {
                pointer: packet.pointer(),
            },
            _ => return None,
        })
    }

    pub fn msg_type(&self) -> Message {
        match self {
            ErrorMessage::DstUnreachable { .. } => Message::DstUnreachable,
            ErrorMessage::SourceQuench => Message::SourceQuench,
            ErrorMessage::Redirect { .. } => Message::Redirect,
            ErrorMessage::TimeExceeded(_) => Message::TimeExceeded,
            ErrorMessage::ParamProblem { .. } => Message::ParamProblem,
        }
    }

    pub fn code(&self) -> u8 {
        match *self {
            ErrorMessage::DstUnreachable { reason, .. } => reason.into(),
            ErrorMessage::Redirect { reason, .. } => reason.into(),
            ErrorMessage::TimeExceeded(reason) => reason.into(),
            ErrorMessage::SourceQuench | ErrorMessage::ParamProblem { .. } => 0,
        }
    }

    /// Whether the probe failed. Redirects and source quench are advice:
    /// the datagram may still have been delivered.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            ErrorMessage::SourceQuench | ErrorMessage::Redirect { .. }
        )
    }
}

/// The wording of iputils ping, so output can be compared line for line.
impl fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DstUnreachable as D;
        match *self {
            ErrorMessage::DstUnreachable {
                reason,
                next_hop_mtu,
            } => match reason {
                D::NetUnreachable => f.write_str("Destination Net Unreachable"),
                D::HostUnreachable => f.write_str("Destination Host Unreachable"),
                D::ProtoUnreachable => f.write_str("Destination Protocol Unreachable"),
                D::PortUnreachable => f.write_str("Destination Port Unreachable"),
                D::FragRequired => write!(f, "Frag needed and DF set (mtu = {next_hop_mtu})"),
                D::SrcRouteFailed => f.write_str("Source Route Failed"),
                D::DstNetUnknown => f.write_str("Destination Net Unknown"),
                D::DstHostUnknown => f.write_str("Destination Host Unknown"),
                D::SrcHostIsolated => f.write_str("Source Host Isolated"),
                D::NetProhibited => f.write_str("Destination Net Prohibited"),
                D::HostProhibited => f.write_str("Destination Host Prohibited"),
                D::NetUnreachToS => f.write_str("Destination Net Unreachable for Type of Service"),
                D::HostUnreachToS => {
                    f.write_str("Destination Host Unreachable for Type of Service")
                }
                D::CommProhibited => f.write_str("Packet filtered"),
                D::HostPrecedenceViolation => f.write_str("Precedence Violation"),
                D::PrecedenceCutoff => f.write_str("Precedence Cutoff"),
                D::Unknown(code) => write!(f, "Dest Unreachable, Bad Code: {code}"),
            },
            ErrorMessage::SourceQuench => f.write_str("Source Quench"),
            ErrorMessage::Redirect { reason, gateway } => {
                match reason {
                    Redirect::Net => f.write_str("Redirect Network")?,
                    Redirect::Host => f.write_str("Redirect Host")?,
                    Redirect::NetTos => f.write_str("Redirect Type of Service and Network")?,
                    Redirect::HostTos => f.write_str("Redirect Type of Service and Host")?,
                    Redirect::Unknown(code) => write!(f, "Redirect, Bad Code: {code}")?,
                }
                write!(f, "(New nexthop: {gateway})")
            }
            ErrorMessage::TimeExceeded(reason) => match reason {
                TimeExceeded::TtlExpired => f.write_str("Time to live exceeded"),
                TimeExceeded::FragExpired => f.write_str("Frag reassembly time exceeded"),
                TimeExceeded::Unknown(code) => write!(f, "Time exceeded, Bad Code: {code}"),
            },
            ErrorMessage::ParamProblem { pointer } => {
                write!(f, "Parameter problem: pointer = {pointer}")
            }
        }
    }
}

/// The start of the datagram an error is about: its IPv4 header (options
/// skipped by the header length) and as much payload as was quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<'a> {
    pub header: ipv4::Repr,
    pub payload: &'a [u8],
}

impl Quote<'_> {
    /// The echo request quoted, if the datagram was one.
    pub fn echo_request(&self) -> Option<Echo> {
        if self.header.protocol != ipv4::PROTOCOL_ICMP {
            return None;
        }
        let packet = Packet::new_checked(self.payload).ok()?;
        (packet.msg_type() == Message::EchoRequest).then(|| Echo {
            ident: packet.echo_ident(),
            seq_no: packet.echo_seq_no(),
        })
    }
}

/// A parsed ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    Error {
        message: ErrorMessage,
        quote: Quote<'a>,
    },
    /// A type ping has no use for (timestamps, router advertisements, ...).
    Other { msg_type: Message, code: u8 },
}

impl<'a> Repr<'a> {
    /// Parses a message. The checksum is not checked here: on a raw socket
    /// the caller verifies it, and the kernel already has on a datagram one.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self, WireError> {
        let data = &packet.buffer.as_ref()[HEADER_LEN..];
        match packet.msg_type() {
            Message::EchoRequest => Ok(Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Message::EchoReply => Ok(Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            msg_type => match ErrorMessage::parse(packet) {
                Some(message) => {
                    let inner = ipv4::Packet::new_checked(data)?;
                    Ok(Repr::Error {
                        message,
                        quote: Quote {
                            header: ipv4::Repr::parse(&inner),
                            payload: &data[inner.header_len()..],
                        },
                    })
                }
                None => Ok(Repr::Other {
                    msg_type,
                    code: packet.msg_code(),
                }),
            },
        }
    }

    /// The length of the echo message [`Repr::emit`] writes; errors and
    /// other types are never emitted, so only their header is counted.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Repr::Error { .. } | Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// Writes an echo request or reply, checksum included. Errors and
    /// other types are only ever received, so they are not emitted.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), WireError> {
        let (msg_type, ident, seq_no, data) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (Message::EchoRequest, ident, seq_no, data),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (Message::EchoReply, ident, seq_no, data),
            Repr::Error { .. } | Repr::Other { .. } => return Err(WireError::Unsupported),
        };
        if packet.buffer.as_ref().len() < HEADER_LEN + data.len() {
            return Err(WireError::Truncated);
        }
        packet.set_msg_type(msg_type);
        packet.set_msg_code(0);
        packet.set_echo_ident(ident);
        packet.set_echo_seq_no(seq_no);
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::tests::HEADER as IPV4_HEADER;
    use proptest::prelude::*;

    /// An echo request, ident 0x1234, seq 1, data "abcd".
    const ECHO_REQUEST: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    fn error_message(msg_type: u8, code: u8, rest: [u8; 4], quoted_ip: &[u8]) -> Vec<u8> {
        let mut bytes = vec![msg_type, code, 0, 0];
        bytes.extend_from_slice(&rest);
        bytes.extend_from_slice(quoted_ip);
        bytes.extend_from_slice(&ECHO_REQUEST[..8]);
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        bytes
    }

    #[test]
    fn deconstruct_echo_request() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x2104);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcd");
        assert!(packet.verify_checksum());
    }

    #[test]
    fn emit_echo_request_matches_fixture() {
        let repr = Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, ECHO_REQUEST);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Ok(repr));
    }

    #[test]
    fn echo_reply_round_trips() {
        let repr = Repr::EchoReply {
            ident: 7,
            seq_no: 65535,
            data: &[],
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(Repr::parse(&packet), Ok(repr));
    }

    #[test]
    fn bad_checksum_is_detected() {
        let mut bytes = ECHO_REQUEST;
        bytes[9] ^= 1;
        assert!(!Packet::new_checked(&bytes[..]).unwrap().verify_checksum());
    }

    #[test]
    fn host_unreachable_quotes_our_probe() {
        let bytes = error_message(3, 1, [0; 4], &IPV4_HEADER);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum());
        let Repr::Error { message, quote } = Repr::parse(&packet).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(message.to_string(), "Destination Host Unreachable");
        assert!(message.is_failure());
        assert_eq!(quote.header.dst_addr, Ipv4Addr::LOCALHOST);
        assert_eq!(
            quote.echo_request(),
            Some(Echo {
                ident: 0x1234,
                seq_no: 1
            })
        );
    }

    #[test]
    fn quoted_header_length_is_honoured() {
        let mut quoted = IPV4_HEADER.to_vec();
        quoted[0] = 0x47; // 28-byte header: 8 bytes of options
        quoted.extend_from_slice(&[1; 8]);
        let bytes = error_message(11, 0, [0; 4], &quoted);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let Repr::Error { message, quote } = Repr::parse(&packet).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(message.to_string(), "Time to live exceeded");
        assert_eq!(quote.echo_request().map(|echo| echo.seq_no), Some(1));
    }

    #[test]
    fn frag_needed_carries_the_mtu() {
        let bytes = error_message(3, 4, [0, 0, 0x05, 0x78], &IPV4_HEADER);
        let Repr::Error { message, .. } =
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap()
        else {
            panic!("not an error");
        };
        assert_eq!(message.to_string(), "Frag needed and DF set (mtu = 1400)");
        assert_eq!(ErrorMessage::from_parts(3, 4, 1400), Some(message));
    }

    #[test]
    fn wording_matches_iputils() {
        let cases = [
            (3, 0, 0, "Destination Net Unreachable"),
            (3, 3, 0, "Destination Port Unreachable"),
            (3, 10, 0, "Destination Host Prohibited"),
            (3, 13, 0, "Packet filtered"),
            (3, 99, 0, "Dest Unreachable, Bad Code: 99"),
            (4, 0, 0, "Source Quench"),
            (11, 1, 0, "Frag reassembly time exceeded"),
            (11, 7, 0, "Time exceeded, Bad Code: 7"),
            (12, 0, 20, "Parameter problem: pointer = 20"),
            (5, 1, 0x0a00_0001, "Redirect Host(New nexthop: 10.0.0.1)"),
        ];
        for (msg_type, code, info, text) in cases {
            let message = ErrorMessage::from_parts(msg_type, code, info).unwrap();
            assert_eq!(message.to_string(), text);
            assert_eq!(u8::from(message.msg_type()), msg_type);
            assert_eq!(message.code(), code);
        }
        assert_eq!(ErrorMessage::from_parts(0, 0, 0), None);
        assert!(!ErrorMessage::from_parts(5, 0, 0).unwrap().is_failure());
    }

    #[test]
    fn unknown_types_are_kept() {
        let mut bytes = [42, 3, 0, 0, 0, 0, 0, 0];
        Packet::new_checked(&mut bytes[..]).unwrap().fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet),
            Ok(Repr::Other {
                msg_type: Message::Unknown(42),
                code: 3
            })
        );
        assert_eq!(u8::from(Message::Unknown(42)), 42);
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert_eq!(
            Packet::new_checked(&ECHO_REQUEST[..7]).err(),
            Some(WireError::Truncated)
        );
        let mut bytes = vec![3, 1, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&IPV4_HEADER[..12]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Truncated));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = packet.verify_checksum();
                if let Ok(Repr::Error { quote, message }) = Repr::parse(&packet) {
                    let _ = quote.echo_request();
                    let _ = message.to_string();
                }
            }
        }

        #[test]
        fn arbitrary_errors_never_panic(
            msg_type in prop::sample::select(vec![3u8, 4, 5, 11, 12]),
            code in any::<u8>(),
            rest in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let mut bytes = vec![msg_type, code, 0, 0, 0, 0, 0, 0];
            bytes.extend_from_slice(&rest);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            if let Ok(Repr::Error { quote, message }) = Repr::parse(&packet) {
                let _ = quote.echo_request();
                prop_assert!(!message.to_string().is_empty());
            }
        }

        #[test]
        fn echo_round_trips(ident in any::<u16>(), seq_no in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let repr = Repr::EchoRequest { ident, seq_no, data: &data };
            let mut bytes = vec![0; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
        }
    }
}
