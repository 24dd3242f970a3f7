//! Many datagrams per system call: `recvmmsg(2)` and `sendmmsg(2)` over a
//! fixed set of preallocated slots, so the hot path neither allocates nor
//! pays a syscall per packet. Optionally reads each datagram's IP TTL (or
//! IPv6 hop limit), which a STAMP reflector copies into its reply.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams moved per system call.
pub const SLOTS: usize = 32;

/// Room for one `int` control message, aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 8;

/// A set of datagram slots, each with its length, peer and TTL.
pub struct Batch {
    data: Box<[u8]>,
    slot_len: usize,
    lens: [usize; SLOTS],
    addrs: [libc::sockaddr_storage; SLOTS],
    addr_lens: [libc::socklen_t; SLOTS],
    controls: Box<[[u64; CONTROL_WORDS]; SLOTS]>,
    ttls: [Option<u8>; SLOTS],
    want_ttl: bool,
    count: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("slot_len", &self.slot_len)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// `slot_len` bounds each datagram; 65 535 never truncates UDP.
    pub fn new(slot_len: usize, want_ttl: bool) -> Self {
        Self {
            data: vec![0u8; slot_len * SLOTS].into_boxed_slice(),
            slot_len,
            lens: [0; SLOTS],
            // SAFETY: sockaddr_storage is plain old data; all zeroes is valid.
            addrs: unsafe { zeroed() },
            addr_lens: [0; SLOTS],
            controls: Box::new([[0; CONTROL_WORDS]; SLOTS]),
            ttls: [None; SLOTS],
            want_ttl,
            count: 0,
        }
    }

    /// Datagrams held after the last `recv`.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The bytes of slot `i` as received (or as set for sending).
    pub fn payload(&self, i: usize) -> &[u8] {
        let start = i * self.slot_len;
        &self.data[start..start + self.lens[i]]
    }

    /// The whole slot `i`, for writing a datagram of up to `slot_len` bytes
    /// (follow with `set_len`).
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.slot_len;
        &mut self.data[start..start + self.slot_len]
    }

    /// Slot `i` up to its current length.
    pub fn payload_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.slot_len;
        &mut self.data[start..start + self.lens[i]]
    }

    pub fn set_len(&mut self, i: usize, len: usize) {
        assert!(len <= self.slot_len, "datagram larger than its slot");
        self.lens[i] = len;
    }

    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        from_storage(&self.addrs[i], self.addr_lens[i])
    }

    pub fn ttl(&self, i: usize) -> Option<u8> {
        self.ttls[i]
    }

    /// Receives up to `SLOTS` datagrams without blocking; `WouldBlock` when
    /// none is waiting.
    pub fn recv(&mut self, fd: &impl AsRawFd) -> io::Result<usize> {
        self.recv_raw(fd.as_raw_fd())
    }

    fn recv_raw(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: mmsghdr and iovec are plain old data.
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        let mut iovecs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let base = self.data.as_mut_ptr();
        for i in 0..SLOTS {
            iovecs[i] = libc::iovec {
                // SAFETY: slot i lies inside `data`, which is SLOTS slots long.
                iov_base: unsafe { base.add(i * self.slot_len) }.cast(),
                iov_len: self.slot_len,
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
            if self.want_ttl {
                header.msg_control = self.controls[i].as_mut_ptr().cast();
                header.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
            }
        }
        // SAFETY: every header points at live buffers owned by `self` (or at
        // the local iovec array) that stay valid for the duration of the call.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                SLOTS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        let received = received as usize;
        for (i, header) in headers.iter().enumerate().take(received) {
            // A datagram longer than the slot arrives cut short: keep what fits.
            self.lens[i] = (header.msg_len as usize).min(self.slot_len);
            self.addr_lens[i] = header.msg_hdr.msg_namelen;
            self.ttls[i] = if self.want_ttl {
                // SAFETY: the kernel filled msg_control/msg_controllen.
                unsafe { read_ttl(&header.msg_hdr) }
            } else {
                None
            };
        }
        self.count = received;
        Ok(received)
    }

    /// Sends the slots named by `indices`, in order, each to its peer; returns
    /// how many went out (fewer when the socket buffer fills).
    pub fn send(&self, fd: &impl AsRawFd, indices: &[usize]) -> io::Result<usize> {
        let n = indices.len().min(SLOTS);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: plain old data.
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        let mut iovecs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let base = self.data.as_ptr();
        for (k, &i) in indices.iter().take(n).enumerate() {
            assert!(i < SLOTS, "slot index out of range");
            iovecs[k] = libc::iovec {
                // SAFETY: slot i lies inside `data`; the kernel only reads it.
                iov_base: unsafe { base.add(i * self.slot_len) } as *mut libc::c_void,
                iov_len: self.lens[i],
            };
            let header = &mut headers[k].msg_hdr;
            if self.addr_lens[i] != 0 {
                header.msg_name = (&self.addrs[i] as *const libc::sockaddr_storage
                    as *mut libc::sockaddr_storage)
                    .cast();
                header.msg_namelen = self.addr_lens[i];
            }
            header.msg_iov = &mut iovecs[k];
            header.msg_iovlen = 1;
        }
        // SAFETY: the headers point at buffers that outlive the call; the
        // kernel does not write through msg_name or the iovecs on send.
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// Asks the kernel to attach the TTL (IPv4) or hop limit (IPv6) to every
/// datagram received on `socket`.
pub fn enable_ttl(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let options: &[(libc::c_int, libc::c_int)] = if ipv6 {
        &[
            (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT),
            (libc::IPPROTO_IP, libc::IP_RECVTTL),
        ]
    } else {
        &[(libc::IPPROTO_IP, libc::IP_RECVTTL)]
    };
    for (k, &(level, name)) in options.iter().enumerate() {
        // SAFETY: `on` is a live c_int and its size is passed alongside.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // IPv4 TTLs on a dual-stack socket are a bonus; only the first matters.
        if rc != 0 && k == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// # Safety
/// `header` must describe a control buffer the kernel has just filled.
unsafe fn read_ttl(header: &libc::msghdr) -> Option<u8> {
    // SAFETY: the caller guarantees a valid, kernel-filled msghdr; CMSG_*
    // stay within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            if (level == libc::IPPROTO_IP && kind == libc::IP_TTL)
                || (level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT)
            {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return u8::try_from(value).ok();
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
        None
    }
}

fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let addr = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                u16::from_be(addr.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let addr = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(addr.sin6_addr.s6_addr),
                u16::from_be(addr.sin6_port),
                addr.sin6_flowinfo,
                addr.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_storage is large and aligned enough for any
                // sockaddr; sockaddr_in is plain old data.
                let out = unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in) };
                *out = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*v4.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(v6) => {
                // SAFETY: as above, for sockaddr_in6.
                let out = unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in6) };
                *out = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    #[test]
    fn addresses_round_trip() {
        // SAFETY: plain old data.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        for text in ["127.0.0.1:12000", "[::1]:53", "[fe80::1%2]:9"] {
            let addr: SocketAddr = text.parse().unwrap();
            let len = to_storage(addr, &mut storage);
            assert_eq!(from_storage(&storage, len), Some(addr));
        }
        assert_eq!(from_storage(&storage, 0), None);
    }

    #[test]
    fn echo_a_batch_with_ttl() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_ttl(&server, false).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 10], to).unwrap();
        }
        let mut batch = Batch::new(2048, true);
        let mut got = 0;
        while got < 5 {
            match batch.recv(&server) {
                Ok(n) => {
                    for i in 0..n {
                        assert_eq!(batch.payload(i), &[(got + i) as u8; 10]);
                        assert_eq!(batch.peer(i), Some(client.local_addr().unwrap()));
                        assert_eq!(batch.ttl(i), Some(64));
                    }
                    let all: Vec<usize> = (0..n).collect();
                    assert_eq!(batch.send(&server, &all).unwrap(), n);
                    got += n;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(err) => panic!("{err}"),
            }
        }
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[i; 10][..], to));
        }
    }
}
