//! The few file system calls std does not offer, over libc (the one
//! system-call layer of the workspace): positioned reads into spare
//! capacity, `openat2` with its resolve flags, and reading a directory
//! that is already open.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `pread` into uninitialized memory; returns how many bytes it filled
/// (0 at the end of the file). Retries when interrupted.
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [MaybeUninit<u8>], offset: u64) -> io::Result<usize> {
    let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`,
        // which is valid for writes of that length.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `open(2)` of an absolute or cwd-relative path.
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    owned(fd)
}

/// `openat2(2)` relative to `dir` with `resolve` (`RESOLVE_*` flags). The
/// error is the raw errno, which callers classify.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: open_how is plain data; all-zero is valid (no flags).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `path` is NUL-terminated and `how` is a live open_how whose
    // size is passed with it, as openat2 requires.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    owned(fd as libc::c_int)
}

/// Calls `each` with the name of every entry of the open directory `dir`
/// (`.` and `..` included), until it breaks or the entries run out.
pub fn read_dir(
    dir: BorrowedFd<'_>,
    mut each: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    // fdopendir takes ownership of the descriptor it is given, and
    // closedir closes it; a duplicate leaves the caller's open.
    let copy = dir.try_clone_to_owned()?;
    // SAFETY: `copy` is an open descriptor; the stream owns it from here.
    let stream = unsafe { libc::fdopendir(copy.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    let _ = copy.into_raw_fd();
    // The copy shares its offset with `dir`: start from the beginning.
    // SAFETY: `stream` is the open stream just created.
    unsafe { libc::rewinddir(stream) };
    let result = loop {
        // readdir reports errors only through errno, which must be cleared.
        // SAFETY: writing this thread's errno.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is open until closedir below.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is
        // NUL-terminated and lives until the next readdir call.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if each(name.to_bytes()).is_break() {
            break Ok(());
        }
    };
    // SAFETY: `stream` is open and not used after this.
    unsafe { libc::closedir(stream) };
    result
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by no one.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
