//! ICMP and ICMPv6 echo, done the way iputils ping does it, for many
//! targets at once.
//!
//! - [`wire`]: the packet formats (checked views and parsed values).
//! - [`socket`]: datagram ("ping") sockets when the system allows them, raw
//!   sockets otherwise, and the kernel's ancillary data and error queue.
//! - [`Session`]: one socket per address family, a send schedule and replies
//!   matched by address, identifier and sequence number, reporting
//!   [`Event`]s as they happen and [`Statistics`] computed exactly as
//!   iputils computes them.
//! - [`resolve`]: host names in and out, as ping prints them.
//!
//! Nothing here prints: the caller renders events and statistics.

mod error;
mod event;
mod remote;
pub mod resolve;
mod session;
pub mod socket;
mod stats;
pub mod wire;

use std::fmt;
use std::net::IpAddr;

pub use error::Error;
pub use event::{DataMismatch, Event, IcmpError, LocalError, ProbeError, Reply, ReplyStatus};
pub use remote::Remote;
pub use session::{Config, Report, Session, Target};
pub use socket::SocketKind;
pub use stats::{RttSummary, Statistics};

/// IPv4 or IPv6: each has its own socket and ICMP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The bytes of IP header (without options) and ICMP header around the
    /// payload, as ping's `56(84) bytes` counts them.
    pub fn header_overhead(self) -> usize {
        match self {
            Family::V4 => wire::ipv4::MIN_HEADER_LEN + wire::icmpv4::HEADER_LEN,
            Family::V6 => wire::ipv6::HEADER_LEN + wire::icmpv6::HEADER_LEN,
        }
    }

    /// The largest payload ping accepts. An IPv4 packet holds at most
    /// 65507 bytes of it; as iputils does, root may ask for up to the ICMP
    /// message's own limit and is then told of the kernel's local error
    /// (`message too long, mtu=65535`) for each probe.
    pub fn max_payload(self, privileged: bool) -> usize {
        match self {
            Family::V4 if privileged => 65535 - wire::icmpv4::HEADER_LEN,
            Family::V4 => 65535 - wire::ipv4::MIN_HEADER_LEN - wire::icmpv4::HEADER_LEN,
            Family::V6 => 65535 - wire::icmpv6::HEADER_LEN,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Whether the kernel has a route to `addr`, checked as iputils does
/// before its first probe: by connecting a UDP socket, which sends nothing.
pub fn check_route(addr: IpAddr, scope_id: u32) -> std::io::Result<()> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
    let (local, remote) = match addr {
        IpAddr::V4(_) => (
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            SocketAddr::new(addr, 1025),
        ),
        IpAddr::V6(v6) => (
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            SocketAddr::V6(SocketAddrV6::new(v6, 1025, 0, scope_id)),
        ),
    };
    UdpSocket::bind(local)?.connect(remote)
}

/// Whether this process may send probes closer together than
/// [`MIN_USER_INTERVAL`], as root may.
pub fn is_privileged() -> bool {
    socket::effective_ids().0 == 0
}

/// The shortest interval iputils allows users other than root.
pub const MIN_USER_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);
