//! The system calls behind the memory tier's zero-copy bodies that std
//! does not offer, over libc (the one system-call layer of the workspace).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// A new memfd that can be sealed, closed on exec.
pub fn memfd_sealable(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by no one.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Seals `fd` against writes, growing, shrinking and further seals.
pub fn seal_contents(fd: BorrowedFd<'_>) -> io::Result<()> {
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int argument and touches no memory.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Maps the first `len` bytes of `fd` shared and read-only.
pub fn map_read_only(fd: BorrowedFd<'_>, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh mapping at an address of the kernel's choosing; no
    // existing memory is touched.
    let start = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if start == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(start.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Unmaps a mapping made by [`map_read_only`].
///
/// # Safety
/// `start..start + len` must be exactly one such mapping, not referred to
/// after this call.
pub unsafe fn unmap(start: NonNull<u8>, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(start.as_ptr().cast(), len) };
}

/// `sendfile(2)` of up to `len` bytes of `file` from `*offset` to
/// `socket`, advancing `offset` by what was sent.
pub fn sendfile(
    socket: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    len: usize,
) -> io::Result<usize> {
    let mut at =
        libc::off_t::try_from(*offset).map_err(|_| io::Error::other("offset too large"))?;
    // SAFETY: `at` is a live off_t the kernel updates; no buffer is passed.
    let sent = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut at, len) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = at as u64;
    Ok(sent as usize)
}

/// `send(2)` with `MSG_MORE` (more follows at once) and no SIGPIPE.
pub fn send_more(socket: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length during the call.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}
