use std::io;
use std::net::IpAddr;
use std::time::Duration;

use crate::Family;

/// Everything that stops a ping session from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{host}: {reason}")]
    Resolve { host: String, reason: String },

    #[error(
        "no permission to open an {family} ICMP socket: a raw socket needs CAP_NET_RAW \
         (run as root, or `setcap cap_net_raw+ep` on the netkit binary) and a datagram \
         socket needs group {gid} inside net.ipv4.ping_group_range (widen it, e.g. \
         `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`)"
    )]
    NotPermitted { family: Family, gid: u32 },

    #[error("cannot open an {family} ICMP socket: {source}")]
    Socket { family: Family, source: io::Error },

    #[error("cannot set {what} on the ICMP socket: {source}")]
    SocketOption {
        what: &'static str,
        source: io::Error,
    },

    #[error("{addr} is listed more than once; give each address once")]
    DuplicateTarget { addr: IpAddr },

    #[error("packet size {size} is too large. Maximum is {max}")]
    PayloadTooLarge { size: usize, max: usize },

    #[error(
        "cannot flood; minimal interval allowed for user is {}ms",
        crate::MIN_USER_INTERVAL.as_millis()
    )]
    IntervalTooShort { interval: Duration },

    #[error("no host to ping")]
    NoTargets,

    #[error("cannot wait for the ICMP sockets: {0}")]
    Poll(io::Error),
}
