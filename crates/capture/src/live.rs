//! Live capture through an `AF_PACKET` socket (no libpcap: one socket, one
//! filter attached with `SO_ATTACH_FILTER`, kernel timestamps and original
//! lengths from control messages). rustix has no packet-socket options, so
//! this module speaks to libc directly.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::filter::Insn;
use crate::{Error, Frame, LinkType};

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
/// Where packet sockets see a loopback packet twice: outgoing and incoming.
const PACKET_OUTGOING: u8 = 4;
/// How often a blocked receive looks at the stop flag.
const WAKE: Duration = Duration::from_millis(100);

/// An interface as `-D` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub name: String,
}

/// Every interface the kernel knows, in index order.
pub fn interfaces() -> Result<Vec<Interface>, Error> {
    // SAFETY: if_nameindex returns a list terminated by a zero entry, or null.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(socket_error("if_nameindex"));
    }
    let mut out = Vec::new();
    let mut at = list;
    // SAFETY: walking the list up to its terminator, then freeing it once.
    unsafe {
        while (*at).if_index != 0 && !(*at).if_name.is_null() {
            let name = CStr::from_ptr((*at).if_name).to_string_lossy().into_owned();
            out.push(Interface {
                index: (*at).if_index,
                name,
            });
            at = at.add(1);
        }
        libc::if_freenameindex(list);
    }
    out.sort_by_key(|interface| interface.index);
    Ok(out)
}

/// The link type frames from `interface` carry (`any`: raw IP).
pub fn link_type(interface: &str) -> Result<LinkType, Error> {
    if interface == "any" {
        return Ok(LinkType::Raw);
    }
    index_of(interface)?;
    Ok(match hardware_type(interface)? {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => LinkType::Ethernet,
        _ => LinkType::Raw,
    })
}

fn index_of(interface: &str) -> Result<u32, Error> {
    let name =
        std::ffi::CString::new(interface).map_err(|_| Error::NoInterface(interface.to_owned()))?;
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(Error::NoInterface(interface.to_owned()));
    }
    Ok(index)
}

fn hardware_type(interface: &str) -> Result<u16, Error> {
    let path = format!("/sys/class/net/{interface}/type");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Socket {
        what: "cannot read the interface type",
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| Error::NoInterface(interface.to_owned()))
}

fn socket_error(what: &'static str) -> Error {
    let source = io::Error::last_os_error();
    if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        return Error::Permission;
    }
    Error::Socket { what, source }
}

/// Counters the kernel keeps for the socket since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that passed the filter.
    pub received: u64,
    /// Of those, packets the kernel dropped because the socket's buffer
    /// was full.
    pub dropped: u64,
}

/// An open capture: a packet socket bound to one interface (or all) with
/// the filter attached before the first packet can be queued.
#[derive(Debug)]
pub struct Capture {
    fd: OwnedFd,
    link: LinkType,
    loopback: Option<u32>,
    snaplen: u32,
    buffer: Vec<u8>,
    stats: Stats,
}

impl Capture {
    pub fn open(interface: &str, program: &[Insn], snaplen: u32) -> Result<Capture, Error> {
        let link = link_type(interface)?;
        let index = if interface == "any" {
            0
        } else {
            index_of(interface)?
        };
        let kind = match link {
            LinkType::Ethernet => libc::SOCK_RAW,
            _ => libc::SOCK_DGRAM,
        };
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, kind | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(socket_error("cannot open a packet socket"));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let loopback = index_of("lo").ok();
        let program = if interface == "any" || Some(index) == loopback {
            skip_loopback_echo(program, interface == "any", loopback)
        } else {
            program.to_vec()
        };
        // The filter goes on before bind, so no unfiltered packet is queued.
        let filter = libc::sock_fprog {
            len: u16::try_from(program.len()).map_err(|_| Error::Socket {
                what: "filter too long",
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &filter,
            "cannot attach the filter",
        )?;
        setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &1i32,
            "cannot ask for packet lengths",
        )?;
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &1i32,
            "cannot ask for timestamps",
        )?;
        // A larger buffer rides out bursts, as tcpdump's 2 MiB default does.
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &(4i32 << 20),
            "cannot size the buffer",
        )?;
        let wake = libc::timeval {
            tv_sec: 0,
            tv_usec: WAKE.as_micros() as libc::suseconds_t,
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &wake,
            "cannot set a receive timeout",
        )?;
        // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = all;
        addr.sll_ifindex = index as i32;
        // SAFETY: addr is a sockaddr_ll of the size given.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound < 0 {
            return Err(socket_error("cannot bind the packet socket"));
        }
        let mut capture = Capture {
            fd,
            link,
            loopback,
            snaplen,
            buffer: vec![0; snaplen as usize],
            stats: Stats::default(),
        };
        // Packets that arrived between socket() and bind() on other
        // interfaces were filtered already; the counters start now.
        capture.stats()?;
        capture.stats = Stats::default();
        Ok(capture)
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The next frame, or `None` when none came within a short wait (so
    /// the caller can look at its stop flag) or, with `nonblocking`, none
    /// is queued.
    pub fn next(&mut self, nonblocking: bool) -> Result<Option<Frame>, Error> {
        loop {
            let mut from: libc::sockaddr_ll = unsafe { zeroed() };
            let mut control = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: self.buffer.as_mut_ptr().cast(),
                iov_len: self.buffer.len(),
            };
            // SAFETY: an all-zero msghdr is valid; its pointers are set to
            // live buffers below.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>();
            let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
            // SAFETY: msg points at buffers that outlive the call.
            let got = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, flags) };
            if got < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(Error::Socket {
                        what: "cannot receive",
                        source: err,
                    }),
                };
            }
            // tcpdump shows a loopback packet once: as it comes in.
            if from.sll_pkttype == PACKET_OUTGOING && Some(from.sll_ifindex as u32) == self.loopback
            {
                continue;
            }
            let kept = (got as usize).min(self.buffer.len());
            let (timestamp, original_len) = control_messages(&msg);
            return Ok(Some(Frame {
                timestamp: timestamp.unwrap_or_else(now),
                original_len: original_len.unwrap_or(kept as u32),
                data: self.buffer[..kept].to_vec(),
            }));
        }
    }

    /// The kernel's counters so far (reading them resets the kernel's, so
    /// they are summed here).
    pub fn stats(&mut self) -> Result<Stats, Error> {
        let mut raw = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as u32;
        // SAFETY: raw is a tpacket_stats of the size given.
        let done = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut raw as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if done < 0 {
            return Err(socket_error("cannot read the capture statistics"));
        }
        self.stats.received += u64::from(raw.tp_packets);
        self.stats.dropped += u64::from(raw.tp_drops);
        Ok(self.stats)
    }
}

/// Loopback hands packet sockets each packet twice, going out and coming
/// in; tcpdump shows it once. Dropping the outgoing copy in the kernel
/// saves copying it. (Kernel-only loads: `SKF_AD_PKTTYPE`, `SKF_AD_IFINDEX`.)
fn skip_loopback_echo(program: &[Insn], any: bool, loopback: Option<u32>) -> Vec<Insn> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const AD_PKTTYPE: u32 = 0xffff_f004;
    const AD_IFINDEX: u32 = 0xffff_f008;
    let insn = |code, jt, jf, k| Insn { code, jt, jf, k };
    let mut out = vec![insn(LD_W_ABS, 0, 0, AD_PKTTYPE)];
    match (any, loopback) {
        (true, Some(lo)) => out.extend([
            insn(JEQ_K, 0, 3, u32::from(PACKET_OUTGOING)),
            insn(LD_W_ABS, 0, 0, AD_IFINDEX),
            insn(JEQ_K, 0, 1, lo),
            insn(RET_K, 0, 0, 0),
        ]),
        (true, None) => return program.to_vec(),
        // Bound to one interface; only `lo` echoes, and this is only
        // attached when it is lo (the caller passes `any` otherwise).
        (false, _) => out.extend([
            insn(JEQ_K, 0, 1, u32::from(PACKET_OUTGOING)),
            insn(RET_K, 0, 0, 0),
        ]),
    }
    out.extend_from_slice(program);
    out
}

fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

fn control_messages(msg: &libc::msghdr) -> (Option<Duration>, Option<u32>) {
    let (mut timestamp, mut original_len) = (None, None);
    // SAFETY: the CMSG_ macros walk the control buffer recvmsg filled.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts = std::ptr::read_unaligned(data as *const libc::timespec);
                    timestamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                    let aux = std::ptr::read_unaligned(data as *const libc::tpacket_auxdata);
                    original_len = Some(aux.tp_len);
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (timestamp, original_len)
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    value: &T,
    what: &'static str,
) -> Result<(), Error> {
    // SAFETY: value is a live T of the size given.
    let done = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as u32,
        )
    };
    if done < 0 {
        return Err(socket_error(what));
    }
    Ok(())
}
