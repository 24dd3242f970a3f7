//! Ancillary data the kernel hands back with `recvmsg`: the receive
//! timestamp, the TTL or hop limit, and queued ICMP errors
//! (`sock_extended_err` plus the offender's address). Parsed from bytes
//! with bounds checks, so a surprising control buffer cannot panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

const USIZE: usize = std::mem::size_of::<usize>();
/// `cmsghdr`: `size_t cmsg_len; int cmsg_level; int cmsg_type;`
const CMSG_HEADER_LEN: usize = USIZE + 8;

/// `SO_TIMESTAMPNS` (asm-generic); the libc crate does not export it on
/// every target.
pub const SO_TIMESTAMPNS: i32 = 35;
/// `SOL_SOCKET`'s control-message type for `SO_TIMESTAMPNS`.
const SCM_TIMESTAMPNS: i32 = SO_TIMESTAMPNS;

/// Where a queued error came from (`ee_origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Raised by this host's stack, e.g. "message too long" for the MTU.
    Local,
    Icmp,
    Icmp6,
    Other(u8),
}

/// A `sock_extended_err` and the address of the host that sent the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedError {
    pub errno: i32,
    pub origin: Origin,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The MTU for "fragmentation needed"/"packet too big", the pointer for
    /// a parameter problem.
    pub info: u32,
    pub offender: Option<IpAddr>,
}

impl ExtendedError {
    /// `struct sock_extended_err` (16 bytes), then `SO_EE_OFFENDER`.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let header = data.get(..16)?;
        let errno = u32::from_ne_bytes(header[0..4].try_into().ok()?);
        let origin = match header[4] {
            1 => Origin::Local,
            2 => Origin::Icmp,
            3 => Origin::Icmp6,
            other => Origin::Other(other),
        };
        let info = u32::from_ne_bytes(header[8..12].try_into().ok()?);
        Some(ExtendedError {
            errno: i32::try_from(errno).unwrap_or(i32::MAX),
            origin,
            icmp_type: header[5],
            icmp_code: header[6],
            info,
            offender: data
                .get(16..)
                .and_then(parse_sockaddr)
                .map(|addr| addr.ip())
                .filter(|ip| !ip.is_unspecified()),
        })
    }
}

/// Everything ping reads from one message's control buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// Wall-clock time the kernel received the packet.
    pub stamp: Option<Duration>,
    /// TTL (IPv4 datagram sockets) or hop limit (IPv6).
    pub hop_limit: Option<u8>,
    pub error: Option<ExtendedError>,
}

impl Ancillary {
    pub fn parse(control: &[u8]) -> Ancillary {
        let mut found = Ancillary::default();
        for message in (Messages { rest: control }) {
            match (message.level, message.kind) {
                (libc::SOL_SOCKET, SCM_TIMESTAMPNS) => found.stamp = parse_timespec(message.data),
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    found.hop_limit = parse_int(message.data).and_then(|v| u8::try_from(v).ok());
                }
                (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                    found.error = ExtendedError::parse(message.data);
                }
                _ => {}
            }
        }
        found
    }
}

struct Message<'a> {
    level: i32,
    kind: i32,
    data: &'a [u8],
}

/// Walks `cmsghdr`s: each is padded to `size_t` alignment.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        let header = self.rest.get(..CMSG_HEADER_LEN)?;
        let len = usize::from_ne_bytes(header[..USIZE].try_into().ok()?);
        let level = i32::from_ne_bytes(header[USIZE..USIZE + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(header[USIZE + 4..].try_into().ok()?);
        if len < CMSG_HEADER_LEN || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let data = &self.rest[CMSG_HEADER_LEN..len];
        let advance = len.checked_next_multiple_of(USIZE).unwrap_or(usize::MAX);
        self.rest = self.rest.get(advance..).unwrap_or(&[]);
        Some(Message { level, kind, data })
    }
}

fn parse_int(data: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

/// `struct timespec` with 64-bit fields, as on every 64-bit Linux.
fn parse_timespec(data: &[u8]) -> Option<Duration> {
    let secs = i64::from_ne_bytes(data.get(..8)?.try_into().ok()?);
    let nanos = i64::from_ne_bytes(data.get(8..16)?.try_into().ok()?);
    Some(Duration::new(
        u64::try_from(secs).ok()?,
        u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?,
    ))
}

/// A `sockaddr_in` or `sockaddr_in6` in the kernel's layout.
pub fn parse_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let octets: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(octets),
                port,
            )))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
            let octets: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(bytes.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                flowinfo,
                scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let len = CMSG_HEADER_LEN + data.len();
        let mut bytes = len.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&level.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(data);
        bytes.resize(len.next_multiple_of(USIZE), 0);
        bytes
    }

    fn sockaddr_in(addr: Ipv4Addr) -> Vec<u8> {
        let mut bytes = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&addr.octets());
        bytes.extend_from_slice(&[0; 8]);
        bytes
    }

    fn extended_error(origin: u8, icmp_type: u8, code: u8, info: u32) -> Vec<u8> {
        let mut bytes = (libc::EHOSTUNREACH as u32).to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[origin, icmp_type, code, 0]);
        bytes.extend_from_slice(&info.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes
    }

    #[test]
    fn timestamp_ttl_and_error() {
        let mut stamp = 1_700_000_000i64.to_ne_bytes().to_vec();
        stamp.extend_from_slice(&123_456_789i64.to_ne_bytes());
        let mut error = extended_error(2, 11, 0, 0);
        error.extend_from_slice(&sockaddr_in(Ipv4Addr::new(10, 0, 0, 1)));
        let mut control = cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS, &stamp);
        control.extend(cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes()));
        control.extend(cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &error));
        let found = Ancillary::parse(&control);
        assert_eq!(found.stamp, Some(Duration::new(1_700_000_000, 123_456_789)));
        assert_eq!(found.hop_limit, Some(64));
        assert_eq!(
            found.error,
            Some(ExtendedError {
                errno: libc::EHOSTUNREACH,
                origin: Origin::Icmp,
                icmp_type: 11,
                icmp_code: 0,
                info: 0,
                offender: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            })
        );
    }

    #[test]
    fn local_error_has_no_offender() {
        let mut error = extended_error(1, 0, 0, 1400);
        error.extend_from_slice(&[0; 16]);
        let found = Ancillary::parse(&cmsg(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, &error));
        let error = found.error.unwrap();
        assert_eq!(error.origin, Origin::Local);
        assert_eq!(error.info, 1400);
        assert_eq!(error.offender, None);
    }

    #[test]
    fn sockaddr_in6() {
        let mut bytes = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[0, 7, 0, 0, 0, 0]);
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        bytes.extend_from_slice(&3u32.to_ne_bytes());
        assert_eq!(
            parse_sockaddr(&bytes),
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::LOCALHOST,
                7,
                0,
                3
            )))
        );
        assert_eq!(parse_sockaddr(&bytes[..27]), None);
    }

    #[test]
    fn bad_lengths_stop_the_walk() {
        let mut control = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes());
        control[0] = 3; // shorter than a header
        assert_eq!(Ancillary::parse(&control), Ancillary::default());
        let mut control = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes());
        control[0] = 200; // longer than the buffer
        assert_eq!(Ancillary::parse(&control), Ancillary::default());
    }

    proptest! {
        #[test]
        fn arbitrary_control_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Ancillary::parse(&bytes);
            let _ = ExtendedError::parse(&bytes);
            let _ = parse_sockaddr(&bytes);
        }

        #[test]
        fn arbitrary_payloads_never_panic(
            level in prop::sample::select(vec![libc::SOL_SOCKET, libc::IPPROTO_IP, libc::IPPROTO_IPV6]),
            kind in prop::sample::select(vec![SCM_TIMESTAMPNS, libc::IP_TTL, libc::IP_RECVERR, libc::IPV6_RECVERR, libc::IPV6_HOPLIMIT]),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = Ancillary::parse(&cmsg(level, kind, &data));
        }
    }
}
