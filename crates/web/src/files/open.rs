//! The third layer of path safety: opening a sanitized relative path so that
//! the file system itself cannot lead outside the served directory.
//!
//! On Linux 5.6 and later the kernel enforces this: `openat2` with
//! `RESOLVE_BENEATH` refuses, atomically and without races, any resolution
//! that would leave the directory, whether by a symlink or a mount. It also
//! refuses absolute symlinks that point back inside; those are resolved in
//! user space and the link-free result opened beneath the root. On
//! older kernels the path is canonicalized and checked to stay under the
//! canonical root, as static-web-server does.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// The served directory, held open so every lookup is relative to it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    canonical: PathBuf,
    follow_symlinks: bool,
}

/// Why a path could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not found")]
    NotFound,
    /// The path resolves outside the root (through a symlink), or the file
    /// is not readable by the server.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Once `openat2` reports that the kernel lacks it, stop trying.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

impl RootDir {
    pub fn open(path: &Path, follow_symlinks: bool) -> io::Result<Self> {
        let canonical = path.canonicalize()?;
        let fd = sys::open(&canonical, libc::O_PATH | libc::O_DIRECTORY)?;
        Ok(Self {
            fd,
            canonical,
            follow_symlinks,
        })
    }

    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// What `relative` names now (symlinks followed), to tell whether it
    /// is still a file opened before; not a safety check.
    pub fn stamp(&self, relative: &Path) -> io::Result<sys::FileStamp> {
        sys::stamp_at(self.fd.as_fd(), relative)
    }

    /// Opens `relative` (from `RequestPath::relative`) for reading. Works
    /// for files and directories alike.
    pub fn open_read(&self, relative: &Path) -> Result<File, OpenError> {
        let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
        self.open_with(relative, flags).map(File::from)
    }

    fn open_with(&self, relative: &Path, flags: libc::c_int) -> Result<OwnedFd, OpenError> {
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match self.open_beneath(relative, flags) {
                Err(OpenError::Io(err)) if err.raw_os_error() == Some(libc::ENOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                result => return result,
            }
        }
        self.open_canonical(relative, flags)
    }

    fn open_beneath(&self, relative: &Path, flags: libc::c_int) -> Result<OwnedFd, OpenError> {
        let mut resolve = libc::RESOLVE_NO_MAGICLINKS;
        if !self.follow_symlinks {
            resolve |= libc::RESOLVE_BENEATH;
        }
        match self.openat2(relative, flags, resolve) {
            // RESOLVE_BENEATH refuses every absolute symlink, even one that
            // points back inside the root.
            Err(err) if err.raw_os_error() == Some(libc::EXDEV) && !self.follow_symlinks => {
                self.open_resolved(relative, flags)
            }
            result => result.map_err(classify),
        }
    }

    /// Resolves the symlinks of `relative` in user space and, if the result
    /// is inside the root, opens that link-free path beneath the root with
    /// symlinks forbidden: a link swapped in meanwhile is refused, not
    /// followed.
    fn open_resolved(&self, relative: &Path, flags: libc::c_int) -> Result<OwnedFd, OpenError> {
        let canonical = self
            .canonical
            .join(relative)
            .canonicalize()
            .map_err(from_io)?;
        let inside = canonical
            .strip_prefix(&self.canonical)
            .map_err(|_| OpenError::Forbidden)?;
        let inside = if inside.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inside
        };
        let resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        self.openat2(inside, flags, resolve).map_err(classify)
    }

    fn openat2(&self, path: &Path, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
        loop {
            match sys::openat2(self.fd.as_fd(), path, flags, resolve) {
                // The kernel asks for a retry when a rename raced the lookup.
                Err(err) if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {}
                result => return result,
            }
        }
    }

    /// The fallback for kernels without `openat2`. Racy against a local user
    /// swapping in a symlink between the check and the open, which
    /// `openat2` is not.
    fn open_canonical(&self, relative: &Path, flags: libc::c_int) -> Result<OwnedFd, OpenError> {
        let joined = self.canonical.join(relative);
        let target = if self.follow_symlinks {
            joined
        } else {
            let canonical = joined.canonicalize().map_err(from_io)?;
            if !is_within(&canonical, &self.canonical) {
                return Err(OpenError::Forbidden);
            }
            canonical
        };
        sys::open(&target, flags).map_err(classify)
    }
}

fn classify(err: io::Error) -> OpenError {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => OpenError::NotFound,
        // EXDEV: resolution left the root; ELOOP: too many or refused links.
        Some(libc::EXDEV | libc::ELOOP | libc::EACCES | libc::EPERM) => OpenError::Forbidden,
        _ => OpenError::Io(err),
    }
}

fn from_io(err: io::Error) -> OpenError {
    match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OpenError::NotFound,
        io::ErrorKind::PermissionDenied => OpenError::Forbidden,
        _ => OpenError::Io(err),
    }
}

/// Whether `path` is `root` or below it, comparing whole components.
pub fn is_within(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree {
        base: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Self {
            let base = std::env::temp_dir().join(format!("web-open-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("root/sub")).unwrap();
            std::fs::create_dir_all(base.join("outside")).unwrap();
            std::fs::write(base.join("root/file.txt"), "inside").unwrap();
            std::fs::write(base.join("root/sub/nested.txt"), "nested").unwrap();
            std::fs::write(base.join("outside/secret.txt"), "secret").unwrap();
            symlink("file.txt", base.join("root/inner-link")).unwrap();
            symlink("../outside/secret.txt", base.join("root/escape")).unwrap();
            symlink(base.join("outside"), base.join("root/abs-escape")).unwrap();
            symlink("../sub", base.join("root/sub/up-and-back")).unwrap();
            // Absolute links that stay inside the root are as good as
            // relative ones.
            symlink(base.join("root/file.txt"), base.join("root/abs-inside")).unwrap();
            symlink(base.join("root/sub"), base.join("root/abs-sub")).unwrap();
            symlink(base.join("root/abs-escape"), base.join("root/abs-chain")).unwrap();
            Self { base }
        }

        fn root(&self, follow: bool) -> RootDir {
            RootDir::open(&self.base.join("root"), follow).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    fn read(root: &RootDir, path: &str) -> Result<String, OpenError> {
        let mut file = root.open_read(Path::new(path))?;
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).map_err(OpenError::Io)?;
        Ok(text)
    }

    fn check_policy(root: &RootDir, follow: bool) {
        assert_eq!(read(root, "file.txt").unwrap(), "inside");
        assert_eq!(read(root, "sub/nested.txt").unwrap(), "nested");
        assert_eq!(read(root, "inner-link").unwrap(), "inside");
        assert!(read(root, "sub/up-and-back/nested.txt").is_ok());
        assert_eq!(read(root, "abs-inside").unwrap(), "inside");
        assert_eq!(read(root, "abs-sub/nested.txt").unwrap(), "nested");
        assert!(root.open_read(Path::new("abs-sub")).is_ok());
        assert!(matches!(read(root, "missing"), Err(OpenError::NotFound)));
        assert!(matches!(read(root, "file.txt/x"), Err(OpenError::NotFound)));
        if follow {
            assert_eq!(read(root, "escape").unwrap(), "secret");
            assert_eq!(read(root, "abs-escape/secret.txt").unwrap(), "secret");
        } else {
            assert!(matches!(read(root, "escape"), Err(OpenError::Forbidden)));
            assert!(matches!(
                read(root, "abs-escape/secret.txt"),
                Err(OpenError::Forbidden)
            ));
            assert!(matches!(
                read(root, "abs-chain/secret.txt"),
                Err(OpenError::Forbidden)
            ));
        }
    }

    #[test]
    fn symlinks_outside_are_refused_unless_followed() {
        let tree = Tree::new("beneath");
        check_policy(&tree.root(false), false);
        check_policy(&tree.root(true), true);
    }

    #[test]
    fn fallback_has_the_same_policy() {
        let tree = Tree::new("fallback");
        for follow in [false, true] {
            let root = tree.root(follow);
            let flags = libc::O_RDONLY;
            let open = |path: &str| root.open_canonical(Path::new(path), flags);
            assert!(open("file.txt").is_ok());
            assert!(open("inner-link").is_ok());
            assert!(open("abs-inside").is_ok());
            assert!(matches!(open("missing"), Err(OpenError::NotFound)));
            assert_eq!(open("escape").is_ok(), follow);
            assert_eq!(open("abs-escape/secret.txt").is_ok(), follow);
        }
    }

    #[test]
    fn within_compares_components() {
        assert!(is_within(Path::new("/srv/www/a"), Path::new("/srv/www")));
        assert!(is_within(Path::new("/srv/www"), Path::new("/srv/www")));
        assert!(!is_within(Path::new("/srv/www2/a"), Path::new("/srv/www")));
        assert!(!is_within(Path::new("/srv"), Path::new("/srv/www")));
    }
}
