//! The cache directory. Each entry is two files under `entries/XX/`: the
//! body, named by the entry and the body's checksum, and the metadata,
//! named by the entry alone. Both are written under `tmp/` and renamed into
//! place, body first, so the metadata's rename is the moment an entry
//! exists; a refresh after a 304 renames only new metadata. A directory lock
//! keeps a second proxy from sharing the directory.
//!
//! All functions here block: callers run them on tokio's blocking pool.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tracing::{debug, warn};
use xxhash_rust::xxh3::Xxh3;

use super::meta::{Meta, MetaError, VariantId};

const READ_CHUNK: usize = 256 * 1024;

#[derive(Debug)]
pub struct Disk {
    root: PathBuf,
    next_temp: AtomicU64,
    /// Held for the life of the proxy: the lock is released when it closes.
    _lock: File,
}

/// Why a stored body cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body file is {actual} bytes, metadata says {expected}")]
    Length { expected: u64, actual: u64 },
    #[error("body checksum mismatch")]
    Checksum,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Disk {
    /// Opens (creating) the directory and returns the entries found in it,
    /// oldest first, with their size on disk. Leftover temporary files,
    /// damaged metadata and bodies without metadata are removed.
    pub fn open(root: &Path) -> io::Result<(Disk, Vec<(Meta, u64)>)> {
        fs::create_dir_all(root.join("entries"))?;
        let lock = File::create(root.join("lock"))?;
        lock_exclusively(&lock)?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        let disk = Disk {
            root: root.to_owned(),
            next_temp: AtomicU64::new(0),
            _lock: lock,
        };
        let mut found = disk.scan()?;
        found.sort_by_key(|(meta, _)| meta.stored_at);
        Ok((disk, found))
    }

    fn scan(&self) -> io::Result<Vec<(Meta, u64)>> {
        let mut found = Vec::new();
        for shard in fs::read_dir(self.root.join("entries"))? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            let mut bodies = Vec::new();
            let mut metas = Vec::new();
            for file in fs::read_dir(&shard)? {
                let path = file?.path();
                match path.extension().and_then(|e| e.to_str()) {
                    Some("meta") => metas.push(path),
                    _ => bodies.push(path),
                }
            }
            let mut wanted = std::collections::HashSet::new();
            for path in metas {
                match load_meta(&path) {
                    Some(meta) => {
                        let body = self.body_path(meta.id, meta.body_hash);
                        match fs::metadata(&body) {
                            Ok(stat) if stat.len() == meta.body_len => {
                                let size = meta.body_len + fs::metadata(&path)?.len();
                                wanted.insert(body);
                                found.push((meta, size));
                            }
                            _ => {
                                warn!(path = %path.display(), "cache entry without its body: removed");
                                remove_quietly(&path);
                            }
                        }
                    }
                    None => remove_quietly(&path),
                }
            }
            for body in bodies.into_iter().filter(|b| !wanted.contains(b)) {
                debug!(path = %body.display(), "orphaned cache body: removed");
                remove_quietly(&body);
            }
        }
        Ok(found)
    }

    fn shard(&self, id: VariantId) -> PathBuf {
        let name = id.to_string();
        self.root.join("entries").join(&name[..2])
    }

    pub fn meta_path(&self, id: VariantId) -> PathBuf {
        self.shard(id).join(format!("{id}.meta"))
    }

    pub fn body_path(&self, id: VariantId, hash: u64) -> PathBuf {
        self.shard(id).join(format!("{id}-{hash:016x}.body"))
    }

    /// A fresh temporary file for a body being received.
    pub fn create_temp(&self) -> io::Result<(PathBuf, File)> {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join("tmp").join(format!("{n}.part"));
        let file = File::create(&path)?;
        Ok((path, file))
    }

    /// Moves a complete body into place (when given) and then writes the
    /// metadata; returns the entry's size on disk.
    pub fn commit(&self, meta: &Meta, body: Option<&Path>) -> io::Result<u64> {
        fs::create_dir_all(self.shard(meta.id))?;
        if let Some(body) = body {
            fs::rename(body, self.body_path(meta.id, meta.body_hash))?;
        }
        let encoded = meta.encode();
        let (temp, mut file) = self.create_temp()?;
        file.write_all(&encoded)?;
        drop(file);
        fs::rename(temp, self.meta_path(meta.id))?;
        Ok(meta.body_len + encoded.len() as u64)
    }

    /// Removes an entry's metadata and body.
    pub fn remove(&self, id: VariantId, hash: u64) {
        remove_quietly(&self.meta_path(id));
        remove_quietly(&self.body_path(id, hash));
    }

    /// Removes only a body (replaced by a newer one under the same entry).
    pub fn remove_body(&self, id: VariantId, hash: u64) {
        remove_quietly(&self.body_path(id, hash));
    }

    /// The whole body, checked against the metadata.
    pub fn read_body(&self, meta: &Meta) -> Result<Bytes, BodyError> {
        let mut file = File::open(self.body_path(meta.id, meta.body_hash))?;
        check_len(&file, meta)?;
        let mut body = Vec::with_capacity(meta.body_len as usize);
        file.read_to_end(&mut body)?;
        check_body(meta, &body)?;
        Ok(crate::zerocopy::body(body))
    }

    /// The body file, checked in full against the metadata and rewound, for
    /// bodies too big to hold in memory: nothing is sent before the check.
    pub fn open_checked_body(&self, meta: &Meta) -> Result<File, BodyError> {
        let mut file = File::open(self.body_path(meta.id, meta.body_hash))?;
        check_len(&file, meta)?;
        let mut hasher = Xxh3::new();
        let mut buf = vec![0; READ_CHUNK];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
        }
        if total != meta.body_len || hasher.digest() != meta.body_hash {
            return Err(BodyError::Checksum);
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// An advisory lock the kernel drops when the process exits, however it
/// exits, so a crashed proxy never leaves the directory locked.
fn lock_exclusively(file: &File) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "in use by another netkit proxy (choose another --cache-dir)",
        )),
        Err(std::fs::TryLockError::Error(err)) => Err(err),
    }
}

/// Whether `body`, the bytes of a body file, is the body `meta` describes:
/// its length and checksum. (The reader of body files, as a function of
/// bytes.)
pub fn check_body(meta: &Meta, body: &[u8]) -> Result<(), BodyError> {
    if body.len() as u64 != meta.body_len {
        return Err(BodyError::Length {
            expected: meta.body_len,
            actual: body.len() as u64,
        });
    }
    if xxhash_rust::xxh3::xxh3_64(body) != meta.body_hash {
        return Err(BodyError::Checksum);
    }
    Ok(())
}

fn check_len(file: &File, meta: &Meta) -> Result<(), BodyError> {
    let actual = file.metadata()?.len();
    if actual != meta.body_len {
        return Err(BodyError::Length {
            expected: meta.body_len,
            actual,
        });
    }
    Ok(())
}

fn load_meta(path: &Path) -> Option<Meta> {
    let bytes = fs::read(path).ok()?;
    match Meta::decode(&bytes) {
        Ok(meta) if path.file_stem().and_then(|s| s.to_str()) == Some(&meta.id.to_string()) => {
            Some(meta)
        }
        Ok(_) => {
            warn!(path = %path.display(), "cache metadata under the wrong name: removed");
            None
        }
        Err(MetaError::Version) => {
            debug!(path = %path.display(), "cache entry in another format: removed");
            None
        }
        Err(err) => {
            warn!(path = %path.display(), %err, "damaged cache metadata: removed");
            None
        }
    }
}

fn remove_quietly(path: &Path) {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            warn!(path = %path.display(), %err, "cannot remove cache file");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::meta::tests::sample;

    fn store(disk: &Disk, url: &str, body: &[u8]) -> Meta {
        let meta = sample(url, body);
        let (temp, mut file) = disk.create_temp().unwrap();
        file.write_all(body).unwrap();
        drop(file);
        disk.commit(&meta, Some(&temp)).unwrap();
        meta
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (disk, found) = Disk::open(dir.path()).unwrap();
            assert!(found.is_empty());
            store(&disk, "http://example.com/a", b"alpha");
            store(&disk, "http://example.com/b", b"beta");
        }
        let (disk, found) = Disk::open(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        for (meta, _) in &found {
            let body = disk.read_body(meta).unwrap();
            assert!(body == "alpha" || body == "beta");
        }
    }

    #[test]
    fn second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Disk::open(dir.path()).unwrap();
        let err = Disk::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn damaged_bodies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _) = Disk::open(dir.path()).unwrap();
        let meta = store(&disk, "http://example.com/a", b"hello world");
        let path = disk.body_path(meta.id, meta.body_hash);

        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(disk.read_body(&meta), Err(BodyError::Checksum)));
        assert!(matches!(
            disk.open_checked_body(&meta),
            Err(BodyError::Checksum)
        ));

        fs::write(&path, b"hello").unwrap();
        assert!(matches!(
            disk.read_body(&meta),
            Err(BodyError::Length { .. })
        ));
    }

    #[test]
    fn body_bytes_are_checked_against_the_metadata() {
        let meta = sample("http://example.com/a", b"hello");
        assert!(check_body(&meta, b"hello").is_ok());
        assert!(matches!(
            check_body(&meta, b"hellO"),
            Err(BodyError::Checksum)
        ));
        assert!(matches!(
            check_body(&meta, b"hell"),
            Err(BodyError::Length {
                expected: 5,
                actual: 4
            })
        ));
    }

    #[test]
    fn leftovers_are_cleaned_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let meta = {
            let (disk, _) = Disk::open(dir.path()).unwrap();
            let meta = store(&disk, "http://example.com/a", b"alpha");
            let (_temp, mut file) = disk.create_temp().unwrap();
            file.write_all(b"half a bo").unwrap();
            fs::write(disk.shard(meta.id).join("orphan-0.body"), b"x").unwrap();
            fs::write(disk.shard(meta.id).join("0000.meta"), b"junk").unwrap();
            meta
        };
        let (disk, found) = Disk::open(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let files = fs::read_dir(disk.shard(meta.id)).unwrap().count();
        assert_eq!(files, 2, "only the entry's meta and body remain");
    }
}
