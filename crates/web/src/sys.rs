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

/// Creates `name` in `dir` for writing; fails if anything has that name
/// (`O_EXCL`, which also refuses to follow a symlink there).
pub fn create_new_at(dir: BorrowedFd<'_>, name: &Path, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let name = c_path(name)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    owned(fd)
}

/// Renames `from` to `to`, both in `dir`. Without `replace`, an existing
/// `to` is an `AlreadyExists` error, decided atomically by the kernel
/// (`RENAME_NOREPLACE`, or a hard link on file systems without it).
pub fn rename_at(dir: BorrowedFd<'_>, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    let fd = dir.as_raw_fd();
    if replace {
        // SAFETY: both names are NUL-terminated and outlive the call.
        return check(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) });
    }
    // SAFETY: as above.
    let renamed = check(unsafe {
        libc::renameat2(fd, from.as_ptr(), fd, to.as_ptr(), libc::RENAME_NOREPLACE)
    });
    match renamed {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above.
            check(unsafe { libc::linkat(fd, from.as_ptr(), fd, to.as_ptr(), 0) })?;
            // SAFETY: `from` is NUL-terminated and outlives the call.
            check(unsafe { libc::unlinkat(fd, from.as_ptr(), 0) })
        }
        result => result,
    }
}

/// What `statx` says of a file: enough to tell whether it is still the
/// file it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub regular: bool,
    pub dev: (u32, u32),
    pub ino: u64,
    pub len: u64,
    pub modified: (i64, u32),
    pub changed: (i64, u32),
}

/// `statx` of `path` beneath `dir`, following symlinks.
pub fn stamp_at(dir: BorrowedFd<'_>, path: &Path) -> io::Result<FileStamp> {
    let path = c_path(path)?;
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_TYPE
        | libc::STATX_INO
        | libc::STATX_SIZE
        | libc::STATX_MTIME
        | libc::STATX_CTIME;
    // SAFETY: `path` is NUL-terminated and `buf` is a statx the kernel fills.
    check(unsafe {
        libc::statx(
            dir.as_raw_fd(),
            path.as_ptr(),
            libc::AT_STATX_SYNC_AS_STAT,
            mask,
            buf.as_mut_ptr(),
        )
    })?;
    // SAFETY: statx succeeded, so the buffer is filled (and was zeroed).
    let stx = unsafe { buf.assume_init() };
    Ok(FileStamp {
        regular: u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFREG,
        dev: (stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
        len: stx.stx_size,
        modified: (stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec),
        changed: (stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec),
    })
}

/// The same stamp for an open file, from its metadata.
pub fn stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    FileStamp {
        regular: meta.is_file(),
        dev: (libc::major(dev), libc::minor(dev)),
        ino: meta.ino(),
        len: meta.size(),
        modified: (meta.mtime(), meta.mtime_nsec() as u32),
        changed: (meta.ctime(), meta.ctime_nsec() as u32),
    }
}

/// Removes the file `name` from `dir`.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let name = c_path(name)?;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
