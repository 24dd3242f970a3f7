//! Writing an uploaded file beneath the root with the layers reads have:
//! the directory is reached as a read reaches it (a checked request path,
//! dotfiles hidden, opened beneath the root), and the new name must be one
//! plain segment. The bytes go to a hidden temporary file in that
//! directory, renamed into place only once whole, so no reader ever sees
//! half a file; an existing file is replaced only when allowed.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::path::RequestPath;
use super::{OpenError, Site, Source};

/// Temporary files start with this; no upload may take such a name.
const TEMP_PREFIX: &str = ".netkit-upload-";

/// Longest file name most Linux file systems take, in bytes.
const MAX_NAME: usize = 255;

/// Whether a site takes uploads into its listed directories, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    /// The largest request body taken, in bytes.
    pub max_size: u64,
    /// Replace a file that has the name already.
    pub overwrite: bool,
}

/// Why an upload could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("there is no such directory")]
    NotFound,
    #[error("this directory does not take uploads")]
    Forbidden,
    #[error("{0}")]
    BadName(&'static str),
    #[error("a file with that name exists")]
    Exists,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<OpenError> for StoreError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::NotFound => StoreError::NotFound,
            OpenError::Forbidden => StoreError::Forbidden,
            OpenError::Io(err) => StoreError::Io(err),
        }
    }
}

/// A file being received; removed unless `commit` puts it in place.
#[derive(Debug)]
pub struct NewFile {
    dir: File,
    temp: PathBuf,
    name: PathBuf,
    file: File,
    written: u64,
    committed: bool,
}

impl Site {
    /// Starts a file called `name` in the directory `dir` (a listing's
    /// path). Without `overwrite` an existing name is refused at once, and
    /// again, atomically, by `commit`.
    pub fn create(
        &self,
        dir: &RequestPath,
        name: &str,
        overwrite: bool,
    ) -> Result<NewFile, StoreError> {
        let Source::Directory(root) = &self.source else {
            return Err(StoreError::Forbidden);
        };
        if dir.is_hidden() && !self.hidden {
            return Err(StoreError::NotFound);
        }
        let name = upload_name(name, self.hidden)?;
        let relative = dir.relative();
        let directory = root.open_read(&relative)?;
        if !directory.metadata()?.is_dir() {
            return Err(StoreError::NotFound);
        }
        if !overwrite {
            match root.open_read(&relative.join(name)) {
                Err(OpenError::NotFound) => {}
                _ => return Err(StoreError::Exists),
            }
        }
        let temp = temp_name();
        let file = File::from(crate::sys::create_new_at(directory.as_fd(), &temp, 0o644)?);
        Ok(NewFile {
            dir: directory,
            temp,
            name: name.to_path_buf(),
            file,
            written: 0,
            committed: false,
        })
    }
}

impl NewFile {
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the file to disk and renames it into place (blocking).
    pub fn commit(mut self, overwrite: bool) -> Result<(), StoreError> {
        self.file.sync_all()?;
        match crate::sys::rename_at(self.dir.as_fd(), &self.temp, &self.name, overwrite) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists),
            // Renaming a file over a directory.
            Err(err) if err.raw_os_error() == Some(libc::EISDIR) => Err(StoreError::Exists),
            Err(err) => Err(StoreError::Io(err)),
        }
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = crate::sys::unlink_at(self.dir.as_fd(), &self.temp);
        }
    }
}

/// The name an upload may take: one segment, as a request path's would
/// be after decoding, and no dotfile unless dotfiles are served.
fn upload_name(name: &str, hidden: bool) -> Result<&Path, StoreError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(StoreError::BadName("the file has no usable name"));
    }
    if name.contains(['/', '\\', '\0']) {
        return Err(StoreError::BadName(
            "a file name may not hold `/`, `\\` or NUL",
        ));
    }
    if name.len() > MAX_NAME {
        return Err(StoreError::BadName(
            "the file name is longer than 255 bytes",
        ));
    }
    if name.starts_with(TEMP_PREFIX) || (name.starts_with('.') && !hidden) {
        return Err(StoreError::BadName(
            "names starting with `.` are not accepted",
        ));
    }
    Ok(Path::new(name))
}

/// A temporary name no other upload in this process uses at once.
fn temp_name() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!("{TEMP_PREFIX}{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_plain_segments() {
        assert!(upload_name("report.pdf", false).is_ok());
        assert!(upload_name("with space & <b>.txt", false).is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\\b",
            "C:\\x.txt",
            "nul\0",
            ".env",
            ".netkit-upload-1-2",
        ] {
            assert!(upload_name(bad, false).is_err(), "{bad:?}");
        }
        assert!(upload_name(".env", true).is_ok());
        assert!(upload_name(".netkit-upload-1-2", true).is_err());
        assert!(upload_name(&"x".repeat(256), false).is_err());
    }

    struct Tree(PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree(name: &str) -> Tree {
        let base = std::env::temp_dir().join(format!("netkit-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/sub")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), base.join("root/escape")).unwrap();
        Tree(base)
    }

    fn path(text: &str) -> RequestPath {
        RequestPath::parse(text).unwrap()
    }

    #[test]
    fn files_appear_whole_and_are_not_overwritten_unless_allowed() {
        let tree = tree("whole");
        let site = Site::directory(&tree.0.join("root"), true, false, false).unwrap();
        let mut file = site.create(&path("/sub/"), "a.txt", false).unwrap();
        file.write(b"first").unwrap();
        assert!(!tree.0.join("root/sub/a.txt").exists());
        file.commit(false).unwrap();
        assert_eq!(
            std::fs::read(tree.0.join("root/sub/a.txt")).unwrap(),
            b"first"
        );

        assert!(matches!(
            site.create(&path("/sub/"), "a.txt", false),
            Err(StoreError::Exists)
        ));
        // Two uploads racing for one name: the second rename is refused.
        let mut one = site.create(&path("/sub/"), "b.txt", false).unwrap();
        let mut two = site.create(&path("/sub/"), "b.txt", false).unwrap();
        one.write(b"one").unwrap();
        two.write(b"two").unwrap();
        one.commit(false).unwrap();
        assert!(matches!(two.commit(false), Err(StoreError::Exists)));
        assert_eq!(
            std::fs::read(tree.0.join("root/sub/b.txt")).unwrap(),
            b"one"
        );

        let mut again = site.create(&path("/sub/"), "a.txt", true).unwrap();
        again.write(b"second").unwrap();
        again.commit(true).unwrap();
        assert_eq!(
            std::fs::read(tree.0.join("root/sub/a.txt")).unwrap(),
            b"second"
        );
        // No temporary file is left behind, committed or dropped.
        drop(site.create(&path("/sub/"), "c.txt", false).unwrap());
        let names: Vec<_> = std::fs::read_dir(tree.0.join("root/sub"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn uploads_stay_beneath_the_root() {
        let tree = tree("beneath");
        let site = Site::directory(&tree.0.join("root"), true, false, false).unwrap();
        assert!(matches!(
            site.create(&path("/escape/"), "x.txt", false),
            Err(StoreError::Forbidden)
        ));
        assert!(matches!(
            site.create(&path("/missing/"), "x.txt", false),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            site.create(&path("/.git/"), "x.txt", false),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            Site::built_in().create(&path("/"), "x.txt", false),
            Err(StoreError::Forbidden)
        ));
        assert_eq!(
            std::fs::read_dir(tree.0.join("outside")).unwrap().count(),
            0
        );
    }
}
