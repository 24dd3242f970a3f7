//! Live capture through an `AF_PACKET` socket (no libpcap: one socket, one
//! filter attached with `SO_ATTACH_FILTER`, kernel timestamps and original
//! lengths from control messages), over libc, the workspace's one
//! system-call layer.

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
    /// Packets read from the kernel but never handed on: left in the last
    /// batch when the capture stopped (`-c` reached, or interrupted).
    pub discarded: u64,
}

/// An open capture: a packet socket bound to one interface (or all) with
/// the filter attached before the first packet can be queued.
#[derive(Debug)]
pub struct Capture {
    fd: OwnedFd,
    link: LinkType,
    loopback: Option<u32>,
    snaplen: u32,
    batch: Batch,
    stats: Stats,
}

/// Receive buffers for `recvmmsg`: one system call brings up to a batch of
/// frames. The vectors are allocated once and never grow, so the pointers
/// the headers hold into them stay valid wherever the `Batch` moves.
struct Batch {
    data: Vec<u8>,
    names: Vec<libc::sockaddr_ll>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    slot: usize,
    /// Frames received by the last call, and the next one to hand out.
    filled: usize,
    at: usize,
}

/// Room for a timestamp and the auxiliary data control messages.
const CONTROL_WORDS: usize = 16;
/// At most this much memory for a batch of receive buffers.
const BATCH_BYTES: usize = 4 << 20;
const MAX_BATCH: usize = 64;

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("slots", &self.headers.len())
            .finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers in `iovecs` and `headers` point only into this
// batch's own heap buffers.
unsafe impl Send for Batch {}

impl Batch {
    fn new(slot: usize) -> Batch {
        let count = (BATCH_BYTES / slot.max(1)).clamp(1, MAX_BATCH);
        let mut batch = Batch {
            data: vec![0; slot * count],
            // SAFETY: all-zero sockaddr_ll and mmsghdr values are valid.
            names: vec![unsafe { zeroed() }; count],
            controls: vec![[0; CONTROL_WORDS]; count],
            iovecs: Vec::with_capacity(count),
            headers: Vec::with_capacity(count),
            slot,
            filled: 0,
            at: 0,
        };
        for index in 0..count {
            batch.iovecs.push(libc::iovec {
                iov_base: batch.data[index * slot..].as_mut_ptr().cast(),
                iov_len: slot,
            });
        }
        for index in 0..count {
            // SAFETY: as above; the pointers are set just below.
            let mut header: libc::mmsghdr = unsafe { zeroed() };
            header.msg_hdr.msg_name = (&mut batch.names[index] as *mut libc::sockaddr_ll).cast();
            header.msg_hdr.msg_iov = &mut batch.iovecs[index];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = batch.controls[index].as_mut_ptr().cast();
            batch.headers.push(header);
        }
        batch
    }

    /// Resets the lengths the kernel overwrote on the last call.
    fn rearm(&mut self) {
        for header in &mut self.headers {
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
            header.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>();
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }
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
            batch: Batch::new(snaplen as usize),
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
        let mut frame = Frame {
            timestamp: Duration::ZERO,
            original_len: 0,
            data: Vec::new(),
        };
        Ok(self.next_into(&mut frame, nonblocking)?.then_some(frame))
    }

    /// As [`Capture::next`], filling `frame` (and reusing its buffer);
    /// false when there was none.
    pub fn next_into(&mut self, frame: &mut Frame, nonblocking: bool) -> Result<bool, Error> {
        loop {
            if self.batch.at == self.batch.filled && !self.receive(nonblocking)? {
                return Ok(false);
            }
            let index = self.batch.at;
            self.batch.at += 1;
            let header = &self.batch.headers[index];
            // tcpdump shows a loopback packet once: as it comes in.
            if self.is_loopback_echo(index) {
                continue;
            }
            let kept = (header.msg_len as usize).min(self.batch.slot);
            let (timestamp, original_len) = control_messages(&header.msg_hdr);
            let start = index * self.batch.slot;
            frame.timestamp = timestamp.unwrap_or_else(now);
            frame.original_len = original_len.unwrap_or(kept as u32);
            frame.data.clear();
            frame
                .data
                .extend_from_slice(&self.batch.data[start..start + kept]);
            return Ok(true);
        }
    }

    /// One `recvmmsg`: waits (up to the receive timeout) for the first
    /// frame, then takes whatever else is queued, up to a batch.
    fn receive(&mut self, nonblocking: bool) -> Result<bool, Error> {
        self.batch.rearm();
        let flags = if nonblocking {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        loop {
            // SAFETY: the headers point at the batch's live buffers.
            let got = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    self.batch.headers.as_mut_ptr(),
                    self.batch.headers.len() as u32,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            if got < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(false),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(Error::Socket {
                        what: "cannot receive",
                        source: err,
                    }),
                };
            }
            self.batch.filled = got as usize;
            self.batch.at = 0;
            return Ok(got > 0);
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
        self.stats.discarded = self.unread();
        Ok(self.stats)
    }

    /// Frames still in the batch that `next_into` would hand on.
    fn unread(&self) -> u64 {
        (self.batch.at..self.batch.filled)
            .filter(|&index| !self.is_loopback_echo(index))
            .count() as u64
    }

    /// Loopback's outgoing copy of a packet, which tcpdump does not show.
    fn is_loopback_echo(&self, index: usize) -> bool {
        let from = &self.batch.names[index];
        from.sll_pkttype == PACKET_OUTGOING && Some(from.sll_ifindex as u32) == self.loopback
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
