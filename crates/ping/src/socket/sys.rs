//! The few system calls socket2 does not wrap: `recvmsg` with control
//! data and the error queue, `ppoll` with a nanosecond timeout, and plain
//! `setsockopt` for ICMP-specific options.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Large enough for any socket address (`sizeof(struct sockaddr_storage)`).
pub const NAME_LEN: usize = 128;

/// What one `recvmsg` filled in.
#[derive(Debug, Clone, Copy)]
pub struct RecvMsg {
    pub len: usize,
    pub name_len: usize,
    pub control_len: usize,
    pub flags: i32,
}

/// `recvmsg` into one buffer, with the sender's address in `name` and
/// ancillary data in `control`. Byte buffers suffice: the kernel copies
/// both out without alignment requirements, and `control::Ancillary`
/// parses them without casting.
pub fn recv_msg(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    name: &mut [u8; NAME_LEN],
    control: &mut [u8],
    flags: i32,
) -> io::Result<RecvMsg> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = NAME_LEN as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: every pointer in msg refers to a live buffer of the stated
    // length, borrowed mutably for the duration of the call.
    let len = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RecvMsg {
        len: len as usize,
        name_len: (msg.msg_namelen as usize).min(NAME_LEN),
        control_len: (msg.msg_controllen as usize).min(control.len()),
        flags: msg.msg_flags,
    })
}

/// Waits for `events` on each descriptor, at most `timeout` (forever when
/// `None`). An interrupted wait returns 0 ready descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let spec = timeout.map(|wait| libc::timespec {
        tv_sec: wait.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: wait.subsec_nanos() as _,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |spec| spec as *const libc::timespec);
    // SAFETY: fds is a live slice of pollfd and spec_ptr is null or points
    // to a timespec that outlives the call; no signal mask is passed.
    let ready = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            spec_ptr,
            std::ptr::null(),
        )
    };
    if ready < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(ready as usize)
}

pub fn set_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: value is a live byte slice of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn set_int_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    set_option(fd, level, name, &value.to_ne_bytes())
}

/// The effective user and group, which decide what sockets we may open.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// The text of an errno value, as `strerror` gives it.
pub fn describe_errno(errno: i32) -> String {
    io::Error::from_raw_os_error(errno)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_owned()
}
