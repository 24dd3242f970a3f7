//! ICMPv6 (RFC 4443): echo request and reply (types 128 and 129), and the
//! error messages that quote the packet which caused them.

use std::fmt;
use std::net::Ipv6Addr;

use super::{Echo, WireError, checksum, codes, ipv6};

pub const HEADER_LEN: usize = 8;

mod field {
    use std::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ_NO: Range<usize> = 6..8;
    /// The MTU of packet-too-big and the pointer of parameter-problem.
    pub const PARAM: Range<usize> = 4..8;
}

codes! {
    /// The ICMPv6 message type.
    Message {
        DstUnreachable = 1,
        PktTooBig = 2,
        TimeExceeded = 3,
        ParamProblem = 4,
        EchoRequest = 128,
        EchoReply = 129,
    }
}

codes! {
    /// Why a destination is unreachable (the code of type 1).
    DstUnreachable {
        NoRoute = 0,
        AdminProhibit = 1,
        BeyondScope = 2,
        AddrUnreachable = 3,
        PortUnreachable = 4,
        FailedPolicy = 5,
        RejectRoute = 6,
    }
}

codes! {
    /// What ran out (the code of type 3).
    TimeExceeded {
        HopLimitExceeded = 0,
        FragReassemExceeded = 1,
    }
}

codes! {
    /// What was wrong with the packet (the code of type 4).
    ParamProblem {
        ErroneousHdrField = 0,
        UnrecognizedNxtHdr = 1,
        UnrecognizedOption = 2,
    }
}

/// A view of an ICMPv6 message with at least its 8-byte header.
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

    /// The MTU (packet too big) or pointer (parameter problem).
    pub fn param(&self) -> u32 {
        let bytes = &self.buffer.as_ref()[field::PARAM];
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum, which covers the IPv6 pseudo-header, is valid.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(length) = u32::try_from(bytes.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v6(src, dst, ipv6::NEXT_HEADER_ICMPV6, length);
        checksum::combine(&[pseudo, checksum::data(bytes)]) == 0xffff
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

    /// Fills the checksum. Sockets do this in the kernel; tests need it to
    /// build valid fixtures.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.buffer.as_mut()[field::CHECKSUM].fill(0);
        let length = u32::try_from(self.buffer.as_ref().len()).unwrap_or(u32::MAX);
        let pseudo = checksum::pseudo_header_v6(src, dst, ipv6::NEXT_HEADER_ICMPV6, length);
        let sum = !checksum::combine(&[pseudo, checksum::data(self.buffer.as_ref())]);
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An ICMPv6 error, decoded from a message or from the type, code and info
/// of the kernel's error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMessage {
    DstUnreachable(DstUnreachable),
    PktTooBig { mtu: u32, code: u8 },
    TimeExceeded(TimeExceeded),
    ParamProblem { reason: ParamProblem, pointer: u32 },
}

impl ErrorMessage {
    /// From the type, code and info of a `sock_extended_err`; `None` for
    /// types that are not errors.
    pub fn from_parts(msg_type: u8, code: u8, info: u32) -> Option<Self> {
        Some(match Message::from(msg_type) {
            Message::DstUnreachable => ErrorMessage::DstUnreachable(code.into()),
            Message::PktTooBig => ErrorMessage::PktTooBig { mtu: info, code },
            Message::TimeExceeded => ErrorMessage::TimeExceeded(code.into()),
            Message::ParamProblem => ErrorMessage::ParamProblem {
                reason: code.into(),
                pointer: info,
            },
            _ => return None,
        })
    }

    pub fn msg_type(&self) -> Message {
        match self {
            ErrorMessage::DstUnreachable(_) => Message::DstUnreachable,
            ErrorMessage::PktTooBig { .. } => Message::PktTooBig,
            ErrorMessage::TimeExceeded(_) => Message::TimeExceeded,
            ErrorMessage::ParamProblem { .. } => Message::ParamProblem,
        }
    }

    pub fn code(&self) -> u8 {
        match *self {
            ErrorMessage::DstUnreachable(reason) => reason.into(),
            ErrorMessage::PktTooBig { code, .. } => code,
            ErrorMessage::TimeExceeded(reason) => reason.into(),
            ErrorMessage::ParamProblem { reason, .. } => reason.into(),
        }
    }
}

/// The wording of iputils ping, so output can be compared line for line.
impl fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DstUnreachable as D;
        match *self {
            ErrorMessage::DstUnreachable(reason) => {
                f.write_str("Destination unreachable: ")?;
                match reason {
                    D::NoRoute => f.write_str("No route"),
                    D::AdminProhibit => f.write_str("Administratively prohibited"),
                    D::BeyondScope => f.write_str("Beyond scope of source address"),
                    D::AddrUnreachable => f.write_str("Address unreachable"),
                    D::PortUnreachable => f.write_str("Port unreachable"),
                    D::FailedPolicy => f.write_str("Source address failed ingress/egress policy"),
                    D::RejectRoute => f.write_str("Reject route to destination"),
                    D::Unknown(code) => write!(f, "Unknown code {code}"),
                }
            }
            ErrorMessage::PktTooBig { mtu, code } => {
                write!(f, "Packet too big: mtu={mtu}")?;
                if code != 0 {
                    write!(f, ", code={code}")?;
                }
                Ok(())
            }
            ErrorMessage::TimeExceeded(reason) => {
                f.write_str("Time exceeded: ")?;
                match reason {
                    TimeExceeded::HopLimitExceeded => f.write_str("Hop limit"),
                    TimeExceeded::FragReassemExceeded => f.write_str("Defragmentation failure"),
                    TimeExceeded::Unknown(code) => write!(f, "code {code}"),
                }
            }
            ErrorMessage::ParamProblem { reason, pointer } => {
                f.write_str("Parameter problem: ")?;
                match reason {
                    ParamProblem::ErroneousHdrField => f.write_str("Wrong header field ")?,
                    ParamProblem::UnrecognizedNxtHdr => f.write_str("Unknown header ")?,
                    ParamProblem::UnrecognizedOption => f.write_str("Unknown option ")?,
                    ParamProblem::Unknown(code) => write!(f, "code {code} ")?,
                }
                write!(f, "at {pointer}")
            }
        }
    }
}

/// The start of the packet an error is about: its IPv6 header and the
/// upper-layer bytes past any extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<'a> {
    pub header: ipv6::Repr,
    /// `None` when the extension headers were cut short or the packet was
    /// a later fragment.
    pub upper_layer: Option<(u8, &'a [u8])>,
}

impl Quote<'_> {
    /// The echo request quoted, if the packet was one.
    pub fn echo_request(&self) -> Option<Echo> {
        let (ipv6::NEXT_HEADER_ICMPV6, bytes) = self.upper_layer? else {
            return None;
        };
        let packet = Packet::new_checked(bytes).ok()?;
        (packet.msg_type() == Message::EchoRequest).then(|| Echo {
            ident: packet.echo_ident(),
            seq_no: packet.echo_seq_no(),
        })
    }
}

/// A parsed ICMPv6 message.
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
    /// Neighbour discovery, MLD and anything else ping has no use for.
    Other { msg_type: Message, code: u8 },
}

impl<'a> Repr<'a> {
    /// Parses a message. The kernel verifies ICMPv6 checksums on every
    /// socket kind, so this does not.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self, WireError> {
        let data = &packet.buffer.as_ref()[HEADER_LEN..];
        let code = packet.msg_code();
        let message = match packet.msg_type() {
            Message::EchoRequest => {
                return Ok(Repr::EchoRequest {
                    ident: packet.echo_ident(),
                    seq_no: packet.echo_seq_no(),
                    data,
                });
            }
            Message::EchoReply => {
                return Ok(Repr::EchoReply {
                    ident: packet.echo_ident(),
                    seq_no: packet.echo_seq_no(),
                    data,
                });
            }
            Message::DstUnreachable => ErrorMessage::DstUnreachable(code.into()),
            Message::PktTooBig => ErrorMessage::PktTooBig {
                mtu: packet.param(),
                code,
            },
            Message::TimeExceeded => ErrorMessage::TimeExceeded(code.into()),
            Message::ParamProblem => ErrorMessage::ParamProblem {
                reason: code.into(),
                pointer: packet.param(),
            },
            msg_type @ Message::Unknown(_) => return Ok(Repr::Other { msg_type, code }),
        };
        let inner = ipv6::Packet::new_checked(data)?;
        Ok(Repr::Error {
            message,
            quote: Quote {
                header: ipv6::Repr::parse(&inner),
                upper_layer: inner.into_upper_layer(),
            },
        })
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

    /// Writes an echo request or reply with a zero checksum: the kernel
    /// fills it in, since it alone knows the source address it will use.
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
        packet.buffer.as_mut()[field::CHECKSUM].fill(0);
        packet.set_echo_ident(ident);
        packet.set_echo_seq_no(seq_no);
        packet.data_mut()[..data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::tests::header as ipv6_header;
    use proptest::prelude::*;

    const LOOPBACK: Ipv6Addr = Ipv6Addr::LOCALHOST;

    /// An echo request ::1 → ::1, ident 0x1234, seq 1, data "abcd", with
    /// the checksum the kernel would fill in.
    const ECHO_REQUEST: [u8; 12] = [
        0x80, 0x00, 0xa8, 0xbb, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    fn error_message(msg_type: u8, code: u8, param: u32) -> Vec<u8> {
        let mut bytes = vec![msg_type, code, 0, 0];
        bytes.extend_from_slice(&param.to_be_bytes());
        bytes.extend_from_slice(&ipv6_header(ipv6::NEXT_HEADER_ICMPV6, 12));
        bytes.extend_from_slice(&ECHO_REQUEST);
        bytes
    }

    #[test]
    fn deconstruct_echo_request() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcd");
        assert!(packet.verify_checksum(&LOOPBACK, &LOOPBACK));
        let other: Ipv6Addr = "fd00::1".parse().unwrap();
        assert!(!packet.verify_checksum(&other, &LOOPBACK));
    }

    #[test]
    fn emit_and_fill_matches_fixture() {
        let repr = Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        let mut bytes = vec![0xa5; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(packet.checksum(), 0, "left for the kernel");
        packet.fill_checksum(&LOOPBACK, &LOOPBACK);
        assert_eq!(bytes, ECHO_REQUEST);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn admin_prohibited_quotes_our_probe() {
        let bytes = error_message(1, 1, 0);
        let Repr::Error { message, quote } =
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap()
        else {
            panic!("not an error");
        };
        assert_eq!(
            message.to_string(),
            "Destination unreachable: Administratively prohibited"
        );
        assert_eq!(quote.header.dst_addr, LOOPBACK);
        assert_eq!(
            quote.echo_request(),
            Some(Echo {
                ident: 0x1234,
                seq_no: 1
            })
        );
    }

    #[test]
    fn packet_too_big_carries_the_mtu() {
        let bytes = error_message(2, 0, 1400);
        let Repr::Error { message, .. } =
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap()
        else {
            panic!("not an error");
        };
        assert_eq!(message.to_string(), "Packet too big: mtu=1400");
    }

    #[test]
    fn wording_matches_iputils() {
        let cases = [
            (1, 0, 0, "Destination unreachable: No route"),
            (1, 3, 0, "Destination unreachable: Address unreachable"),
            (1, 4, 0, "Destination unreachable: Port unreachable"),
            (1, 9, 0, "Destination unreachable: Unknown code 9"),
            (2, 1, 1280, "Packet too big: mtu=1280, code=1"),
            (3, 0, 0, "Time exceeded: Hop limit"),
            (3, 1, 0, "Time exceeded: Defragmentation failure"),
            (3, 5, 0, "Time exceeded: code 5"),
            (4, 1, 40, "Parameter problem: Unknown header at 40"),
            (4, 9, 6, "Parameter problem: code 9 at 6"),
        ];
        for (msg_type, code, info, text) in cases {
            let message = ErrorMessage::from_parts(msg_type, code, info).unwrap();
            assert_eq!(message.to_string(), text);
            assert_eq!(u8::from(message.msg_type()), msg_type);
            assert_eq!(message.code(), code);
        }
        assert_eq!(ErrorMessage::from_parts(129, 0, 0), None);
    }

    #[test]
    fn unknown_types_are_kept() {
        let bytes = [135, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()),
            Ok(Repr::Other {
                msg_type: Message::Unknown(135),
                code: 0
            })
        );
    }

    #[test]
    fn truncated_quote_is_an_error() {
        let mut bytes = error_message(3, 0, 0);
        bytes.truncate(HEADER_LEN + 39);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()),
            Err(WireError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = packet.verify_checksum(&LOOPBACK, &LOOPBACK);
                if let Ok(Repr::Error { quote, message }) = Repr::parse(&packet) {
                    let _ = quote.echo_request();
                    let _ = message.to_string();
                }
            }
        }

        #[test]
        fn arbitrary_errors_never_panic(
            msg_type in 1u8..=4,
            code in any::<u8>(),
            next in prop::sample::select(vec![0u8, 43, 44, 58, 60]),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = vec![msg_type, code, 0, 0, 0, 0, 0, 0];
            bytes.extend_from_slice(&ipv6_header(next, rest.len() as u16));
            bytes.extend_from_slice(&rest);
            if let Ok(Repr::Error { quote, .. }) = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()) {
                let _ = quote.echo_request();
            }
        }

        #[test]
        fn echo_round_trips(ident in any::<u16>(), seq_no in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let repr = Repr::EchoReply { ident, seq_no, data: &data };
            let mut bytes = vec![0; repr.buffer_len()];
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            repr.emit(&mut packet).unwrap();
            packet.fill_checksum(&LOOPBACK, &LOOPBACK);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum(&LOOPBACK, &LOOPBACK));
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
        }
    }
}
