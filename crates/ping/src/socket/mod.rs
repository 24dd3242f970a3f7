//! ICMP sockets. An unprivileged datagram ("ping") socket when
//! `net.ipv4.ping_group_range` lets our group open one, otherwise a raw
//! socket, which needs `CAP_NET_RAW`; the same order iputils tries.
//!
//! The two kinds differ in what they hand back. A datagram socket receives
//! only echo replies to its own identifier (the kernel rewrites the
//! identifier we send) and reports ICMP errors through the socket's error
//! queue (`IP_RECVERR`/`IPV6_RECVERR`). A raw socket receives every ICMP
//! message on the host: a kernel filter keeps echo replies with our
//! identifier and error messages, and we decode the errors ourselves.

pub mod control;
mod sys;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};

use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};

pub use control::{Ancillary, ExtendedError, Origin};
pub use sys::{describe_errno, effective_ids, poll};

use crate::Family;

/// Which kind of ICMP socket carries the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` with `IPPROTO_ICMP(V6)`: allowed by `ping_group_range`.
    Datagram,
    /// `SOCK_RAW`: needs `CAP_NET_RAW`.
    Raw,
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketKind::Datagram => "datagram",
            SocketKind::Raw => "raw",
        })
    }
}

/// One message read from a socket's receive queue.
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    pub len: usize,
    pub from: IpAddr,
    /// The message was longer than the buffer.
    pub truncated: bool,
    pub ancillary: Ancillary,
}

/// One entry read from a socket's error queue.
#[derive(Debug, Clone, Copy)]
pub struct QueuedError {
    /// Bytes of our original message (its ICMP header onwards).
    pub len: usize,
    /// Where the original message was going.
    pub destination: Option<IpAddr>,
    pub error: Option<ExtendedError>,
}

/// `ICMP_FILTER` (`SOL_RAW`): the IPv4 types a raw socket should not see.
const ICMP_FILTER: i32 = 1;
/// `ICMP6_FILTER` (`IPPROTO_ICMPV6`).
const ICMP6_FILTER: i32 = 1;
/// IPv4 types we read: echo reply and the five that quote a datagram.
const V4_TYPES: [u8; 6] = [0, 3, 4, 5, 11, 12];
/// ICMPv6 types we read: the four errors and echo reply.
const V6_TYPES: [u8; 5] = [1, 2, 3, 4, 129];

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_B_ABS: u16 = 0x30;
const BPF_LD_H_ABS: u16 = 0x28;
const BPF_LD_B_IND: u16 = 0x50;
const BPF_LD_H_IND: u16 = 0x48;
const BPF_LDX_B_MSH: u16 = 0xb1;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

/// An open ICMP or ICMPv6 socket, non-blocking.
#[derive(Debug)]
pub struct IcmpSocket {
    socket: Socket,
    family: Family,
    kind: SocketKind,
    ident: u16,
}

impl IcmpSocket {
    /// Opens a datagram socket if allowed, a raw one otherwise. `ident` is
    /// the echo identifier raw probes carry; a datagram socket gets its
    /// own from the kernel.
    pub fn open(family: Family, ident: u16) -> Result<Self, OpenError> {
        let datagram = match Self::open_kind(family, SocketKind::Datagram, ident) {
            Ok(socket) => return Ok(socket),
            Err(err) => err,
        };
        let dgram_refused = matches!(
            datagram.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT)
        );
        if !dgram_refused {
            return Err(OpenError::Failed(datagram));
        }
        tracing::debug!("no {family} datagram ICMP socket ({datagram}); trying a raw one");
        match Self::open_kind(family, SocketKind::Raw, ident) {
            Ok(socket) => Ok(socket),
            Err(raw) if matches!(raw.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                Err(OpenError::NotPermitted)
            }
            Err(raw) => Err(OpenError::Failed(raw)),
        }
    }

    /// Opens exactly this kind of socket.
    pub fn open_kind(family: Family, kind: SocketKind, ident: u16) -> io::Result<Self> {
        let (domain, protocol) = match family {
            Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
            Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
        };
        let ty = match kind {
            SocketKind::Datagram => Type::DGRAM,
            SocketKind::Raw => Type::RAW,
        };
        let socket = Socket::new(domain, ty, Some(protocol))?;
        socket.set_nonblocking(true)?;
        let ident = match kind {
            SocketKind::Raw => ident,
            SocketKind::Datagram => {
                // Binding picks the identifier the kernel will stamp on our
                // requests; its "port" is that identifier.
                let any = match family {
                    Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                    Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
                };
                socket.bind(&SockAddr::from(any))?;
                socket
                    .local_addr()?
                    .as_socket()
                    .map_or(0, |addr| addr.port())
            }
        };
        let socket = IcmpSocket {
            socket,
            family,
            kind,
            ident,
        };
        socket.configure()?;
        Ok(socket)
    }

    fn configure(&self) -> io::Result<()> {
        let fd = self.socket.as_fd();
        sys::set_int_option(fd, libc::SOL_SOCKET, control::SO_TIMESTAMPNS, 1)?;
        match (self.family, self.kind) {
            (Family::V4, SocketKind::Datagram) => {
                sys::set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)?;
                sys::set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
            }
            (Family::V6, SocketKind::Datagram) => {
                sys::set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
                sys::set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
            }
            (Family::V4, SocketKind::Raw) => {
                let blocked = !V4_TYPES.iter().fold(0u32, |mask, &t| mask | 1 << t);
                sys::set_option(fd, libc::SOL_RAW, ICMP_FILTER, &blocked.to_ne_bytes())?;
                self.socket.attach_filter(&self.raw_filter())?;
                // For the kernel's local errors (a probe too long for IPv4),
                // as iputils does; ICMP errors still come as raw packets.
                sys::set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)?;
            }
            (Family::V6, SocketKind::Raw) => {
                let mut blocked = [u32::MAX; 8];
                for t in V6_TYPES {
                    blocked[usize::from(t >> 5)] &= !(1 << (t & 31));
                }
                let bytes: Vec<u8> = blocked.iter().flat_map(|word| word.to_ne_bytes()).collect();
                sys::set_option(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &bytes)?;
                sys::set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
                self.socket.attach_filter(&self.raw_filter())?;
            }
        }
        Ok(())
    }

    /// A socket filter that drops echo replies carrying another process's
    /// identifier before they are queued: every raw ICMP socket on the host
    /// sees every reply.
    fn raw_filter(&self) -> Vec<SockFilter> {
        let ident = u32::from(self.ident);
        let accept = SockFilter::new(BPF_RET_K, 0, 0, u32::MAX);
        let reject = SockFilter::new(BPF_RET_K, 0, 0, 0);
        match self.family {
            // IPv4 raw sockets see the IP header: X = its length.
            Family::V4 => vec![
                SockFilter::new(BPF_LDX_B_MSH, 0, 0, 0),
                SockFilter::new(BPF_LD_B_IND, 0, 0, 0),
                SockFilter::new(BPF_JEQ_K, 0, 2, 0),
                SockFilter::new(BPF_LD_H_IND, 0, 0, 4),
                SockFilter::new(BPF_JEQ_K, 0, 1, ident),
                accept,
                reject,
            ],
            Family::V6 => vec![
                SockFilter::new(BPF_LD_B_ABS, 0, 0, 0),
                SockFilter::new(BPF_JEQ_K, 0, 2, 129),
                SockFilter::new(BPF_LD_H_ABS, 0, 0, 4),
                SockFilter::new(BPF_JEQ_K, 0, 1, ident),
                accept,
                reject,
            ],
        }
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// The echo identifier our requests carry on the wire.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// The TTL (IPv4) or hop limit (IPv6) of our probes, unicast and
    /// multicast alike.
    pub fn set_hop_limit(&self, hops: u8) -> io::Result<()> {
        let hops = u32::from(hops);
        match self.family {
            Family::V4 => {
                self.socket.set_ttl_v4(hops)?;
                self.socket.set_multicast_ttl_v4(hops)
            }
            Family::V6 => {
                self.socket.set_unicast_hops_v6(hops)?;
                self.socket.set_multicast_hops_v6(hops)
            }
        }
    }

    /// Asks for a receive buffer of `bytes`: beyond `net.core.rmem_max`
    /// when privileged, as large as allowed otherwise.
    pub fn set_receive_buffer(&self, bytes: usize) {
        let size = i32::try_from(bytes).unwrap_or(i32::MAX);
        let fd = self.socket.as_fd();
        if sys::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
            let _ = self.socket.set_recv_buffer_size(bytes);
        }
    }

    pub fn send_to(&self, message: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(message, &SockAddr::from(to))
    }

    /// Reads one message from the receive queue, without blocking. On a
    /// raw IPv4 socket it starts with the IP header.
    pub fn recv(&self, buf: &mut [u8], control: &mut [u8]) -> io::Result<Datagram> {
        let mut name = [0u8; sys::NAME_LEN];
        let got = sys::recv_msg(
            self.socket.as_fd(),
            buf,
            &mut name,
            control,
            libc::MSG_DONTWAIT,
        )?;
        let from = control::parse_sockaddr(&name[..got.name_len])
            .map(|addr| addr.ip())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sender address"))?;
        Ok(Datagram {
            len: got.len.min(buf.len()),
            from,
            truncated: got.flags & libc::MSG_TRUNC != 0,
            ancillary: Ancillary::parse(&control[..got.control_len]),
        })
    }

    /// Reads one entry from the error queue, without blocking.
    pub fn recv_error(&self, buf: &mut [u8], control: &mut [u8]) -> io::Result<QueuedError> {
        let mut name = [0u8; sys::NAME_LEN];
        let got = sys::recv_msg(
            self.socket.as_fd(),
            buf,
            &mut name,
            control,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )?;
        Ok(QueuedError {
            len: got.len.min(buf.len()),
            destination: control::parse_sockaddr(&name[..got.name_len]).map(|addr| addr.ip()),
            error: Ancillary::parse(&control[..got.control_len]).error,
        })
    }
}

impl AsFd for IcmpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Why no ICMP socket could be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Neither kind is allowed for this user.
    NotPermitted,
    Failed(io::Error),
}
