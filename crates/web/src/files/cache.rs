//! Small files kept in memory by each worker thread, so that a file asked
//! for again costs one `statx` instead of open, fstat, read and close.
//!
//! An entry is used only while its path still names the same file,
//! unchanged: same device and inode, size, modification and change time.
//! Every write, truncation, chmod or rename in place moves the change
//! time, which no one can set back. A file changed within the last two
//! seconds is not kept: timestamps tick coarsely (a few milliseconds), and
//! a write in the same tick as the read that filled the entry would go
//! unseen. The path's safety was checked by the open that filled the
//! entry; `statx` only says whether the path still leads to that same
//! file (a symlink swapped in leads to another inode, and to a fresh,
//! checked open).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::body::Content;
use crate::sys::FileStamp;

use super::Entity;
use super::open::RootDir;

/// Files up to this size are kept (the size respond.rs sends in one
/// buffer).
pub const MAX_LEN: u64 = 64 * 1024;

/// Files kept per site and thread: at most 32 MiB.
const MAX_ENTRIES: usize = 512;

/// Sites remembered per thread (a reload makes a new one); past this the
/// thread forgets them all.
const MAX_SITES: usize = 8;

/// How long a file must have been left alone before it is kept.
const SETTLED: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Entry {
    stamp: FileStamp,
    entity: Entity,
}

thread_local! {
    /// Per site (by id), per relative path.
    static FILES: RefCell<HashMap<u64, HashMap<PathBuf, Entry>>> = RefCell::new(HashMap::new());
}

/// The kept entity for `relative`, if the path still names that file.
pub fn get(site: u64, root: &RootDir, relative: &Path) -> Option<Entity> {
    FILES.with(|files| {
        let mut files = files.borrow_mut();
        let kept = files.get_mut(&site)?;
        let entry = kept.get(relative)?;
        match root.stamp(relative) {
            Ok(stamp) if stamp == entry.stamp => Some(entry.entity.clone()),
            _ => {
                kept.remove(relative);
                None
            }
        }
    })
}

/// Keeps `entity` (just opened at `relative`, with `stamp`) when it is a
/// small regular file left alone for a while; returns the entity to send,
/// its content in memory once kept.
pub fn keep(site: u64, relative: &Path, stamp: FileStamp, entity: Entity) -> Entity {
    if !stamp.regular || stamp.len > MAX_LEN || !settled(&stamp) {
        return entity;
    }
    let Ok(bytes) = entity.content.read_all(entity.len) else {
        return entity;
    };
    let kept = Entity {
        content: Content::Memory(bytes),
        ..entity
    };
    FILES.with(|files| {
        let mut files = files.borrow_mut();
        if !files.contains_key(&site) && files.len() >= MAX_SITES {
            files.clear();
        }
        let entries = files.entry(site).or_default();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            relative.to_path_buf(),
            Entry {
                stamp,
                entity: kept.clone(),
            },
        );
    });
    kept
}

/// Whether both of the file's times are at least `SETTLED` in the past.
fn settled(stamp: &FileStamp) -> bool {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return false;
    };
    let limit = now.saturating_sub(SETTLED).as_secs() as i64;
    stamp.modified.0 < limit && stamp.changed.0 < limit
}

#[cfg(test)]
mod tests {
    use super::super::{RequestPath, Resolved, Site};
    use super::*;

    fn resolve(site: &Site, path: &str) -> Result<(bool, Vec<u8>), super::super::OpenError> {
        match site.resolve(&RequestPath::parse(path).unwrap())? {
            Resolved::File { entity, .. } => {
                let kept = matches!(entity.content, Content::Memory(_));
                Ok((kept, entity.content.read_all(entity.len).unwrap().to_vec()))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kept_files_follow_every_change_to_their_path() {
        let base = std::env::temp_dir().join(format!("netkit-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        let root = base.join("root");
        for name in ["a.txt", "b.txt", "c.txt", "d.txt"] {
            std::fs::write(root.join(name), "first").unwrap();
        }
        std::fs::write(base.join("outside/secret.txt"), "first").unwrap();
        let site = Site::directory(&root, false, false, false).unwrap();
        // Fresh files are not kept: their times may still tick.
        assert_eq!(
            resolve(&site, "/a.txt").unwrap(),
            (false, b"first".to_vec())
        );
        // Once left alone, the next read keeps the file.
        std::thread::sleep(SETTLED + Duration::from_secs(1));
        for name in ["/a.txt", "/b.txt", "/c.txt", "/d.txt"] {
            resolve(&site, name).unwrap();
            assert_eq!(resolve(&site, name).unwrap(), (true, b"first".to_vec()));
        }
        // Rewritten in place at the same size, in the same instant.
        std::fs::write(root.join("a.txt"), "again").unwrap();
        assert_eq!(
            resolve(&site, "/a.txt").unwrap(),
            (false, b"again".to_vec())
        );
        // Replaced by a rename.
        std::fs::write(root.join("new"), "fresh").unwrap();
        std::fs::rename(root.join("new"), root.join("b.txt")).unwrap();
        assert_eq!(
            resolve(&site, "/b.txt").unwrap(),
            (false, b"fresh".to_vec())
        );
        // Replaced by a symlink leading outside: refused, as uncached.
        std::fs::remove_file(root.join("c.txt")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/secret.txt"), root.join("c.txt")).unwrap();
        assert!(matches!(
            resolve(&site, "/c.txt"),
            Err(super::super::OpenError::Forbidden)
        ));
        // Removed.
        std::fs::remove_file(root.join("d.txt")).unwrap();
        assert!(matches!(
            resolve(&site, "/d.txt"),
            Err(super::super::OpenError::NotFound)
        ));
        // Another site on the same directory keeps its own entries: one
        // that follows symlinks keeps the file its link leads to, which
        // the first site still refuses.
        let other = Site::directory(&root, false, false, true).unwrap();
        resolve(&other, "/c.txt").unwrap();
        assert_eq!(
            resolve(&other, "/c.txt").unwrap(),
            (true, b"first".to_vec())
        );
        assert!(matches!(
            resolve(&site, "/c.txt"),
            Err(super::super::OpenError::Forbidden)
        ));
        let _ = std::fs::remove_dir_all(&base);
    }
}
