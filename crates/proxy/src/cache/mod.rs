//! The cache: an index in memory over the entries on disk, ordered by last
//! use and bounded in bytes, with a memory tier holding the bodies of small
//! hot entries. The index is the only shared state a hit touches; bodies in
//! the memory tier are reference-counted `Bytes`, so a hit copies nothing.

mod disk;
mod flight;
mod meta;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use lru::LruCache;
use tracing::debug;

pub use disk::{BodyError, Disk, check_body};
pub use flight::{Flights, Joined, Leader, Outcome, follow};
#[cfg(test)]
pub use meta::tests::sample;
pub use meta::{Meta, MetaError, VariantId, unix_seconds};

/// Size limits, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Everything on disk: bodies and metadata.
    pub disk: u64,
    /// Bodies held in memory.
    pub memory: u64,
    /// Largest body the memory tier takes.
    pub memory_object: u64,
    /// Largest body stored at all.
    pub object: u64,
}

/// One stored response, as the index knows it.
#[derive(Debug)]
pub struct Entry {
    pub meta: Meta,
    /// Bytes on disk: body plus metadata.
    pub size: u64,
    /// Set by the first fresh hit of a plain request; see [`HitTemplate`].
    pub template: OnceLock<HitTemplate>,
}

impl Entry {
    pub fn new(meta: Meta, size: u64) -> Entry {
        Entry {
            meta,
            size,
            template: OnceLock::new(),
        }
    }
}

/// The response a fresh hit sends, as the caching policy worked it out for
/// a plain request (no `Cache-Control`, no `Pragma`) to an entry without
/// `Vary`. Until `fresh_until` every such request gets the same answer but
/// for `Age` and `Date`, so the hit path can skip the policy.
#[derive(Debug)]
pub struct HitTemplate {
    pub status: http::StatusCode,
    /// Everything but `Age` and `Date`.
    pub headers: http::HeaderMap,
    pub fresh_until: SystemTime,
    /// When the response's age was zero: `Age` is the time since.
    pub born: SystemTime,
}

/// A candidate for answering a request: an entry and its body, when the
/// memory tier holds it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub entry: Arc<Entry>,
    pub body: Option<Bytes>,
}

/// What the cache holds, for the stats page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub entries: u64,
    pub disk_bytes: u64,
    pub memory_entries: u64,
    pub memory_bytes: u64,
}

#[derive(Debug)]
pub struct Cache {
    disk: Arc<Disk>,
    index: Mutex<Index>,
    limits: Limits,
    pub flights: Flights,
}

#[derive(Debug)]
struct Index {
    urls: HashMap<String, Vec<VariantId>>,
    entries: LruCache<VariantId, Arc<Entry>>,
    disk_used: u64,
    memory: LruCache<VariantId, Bytes>,
    memory_used: u64,
}

impl Index {
    fn remove(&mut self, id: VariantId) -> Option<Arc<Entry>> {
        let entry = self.entries.pop(&id)?;
        self.disk_used -= entry.size;
        if let Some(body) = self.memory.pop(&id) {
            self.memory_used -= body.len() as u64;
        }
        if let Some(ids) = self.urls.get_mut(&entry.meta.url) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.urls.remove(&entry.meta.url);
            }
        }
        Some(entry)
    }

    fn remember(&mut self, id: VariantId, body: Bytes, limits: &Limits) {
        let len = body.len() as u64;
        if len > limits.memory_object || len > limits.memory {
            return;
        }
        if let Some(old) = self.memory.put(id, body) {
            self.memory_used -= old.len() as u64;
        }
        self.memory_used += len;
        while self.memory_used > limits.memory {
            match self.memory.pop_lru() {
                Some((_, evicted)) => self.memory_used -= evicted.len() as u64,
                None => break,
            }
        }
    }
}

impl Cache {
    /// Opens the cache directory and indexes what it holds. Blocks.
    pub fn open(dir: &Path, limits: Limits) -> io::Result<Cache> {
        let (disk, found) = Disk::open(dir)?;
        let cache = Cache {
            disk: Arc::new(disk),
            index: Mutex::new(Index {
                urls: HashMap::new(),
                entries: LruCache::unbounded(),
                disk_used: 0,
                memory: LruCache::unbounded(),
                memory_used: 0,
            }),
            limits,
            flights: Flights::default(),
        };
        let evicted = {
            let mut index = cache.lock();
            let mut evicted = Vec::new();
            for (meta, size) in found {
                evicted.extend(cache.insert_locked(&mut index, Entry::new(meta, size)));
            }
            evicted
        };
        for entry in evicted {
            cache.disk.remove(entry.meta.id, entry.meta.body_hash);
        }
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().expect("cache index lock")
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }

    /// The stored variants of `url`, each marked as just used.
    pub fn candidates(&self, url: &str) -> Vec<Candidate> {
        let mut index = self.lock();
        let Some(ids) = index.urls.get(url).cloned() else {
            return Vec::new();
        };
        ids.into_iter()
            .filter_map(|id| {
                let entry = index.entries.get(&id)?.clone();
                let body = index.memory.get(&id).cloned();
                Some(Candidate { entry, body })
            })
            .collect()
    }

    /// Adds an entry that is already on disk, replacing the same variant,
    /// and evicts the least recently used entries beyond the disk limit.
    pub fn insert(&self, entry: Entry, body: Option<Bytes>) {
        let id = entry.meta.id;
        let evicted = {
            let mut index = self.lock();
            let evicted = self.insert_locked(&mut index, entry);
            match body {
                Some(body) if index.entries.contains(&id) => {
                    index.remember(id, body, &self.limits);
                }
                _ => {}
            }
            evicted
        };
        self.remove_files(evicted);
    }

    fn insert_locked(&self, index: &mut Index, entry: Entry) -> Vec<Arc<Entry>> {
        let id = entry.meta.id;
        let mut removed = Vec::new();
        if let Some(old) = index.remove(id)
            && old.meta.body_hash != entry.meta.body_hash
        {
            let disk = self.disk.clone();
            let hash = old.meta.body_hash;
            spawn_blocking_or_now(move || disk.remove_body(id, hash));
        }
        index.disk_used += entry.size;
        index
            .urls
            .entry(entry.meta.url.clone())
            .or_default()
            .push(id);
        index.entries.put(id, Arc::new(entry));
        while index.disk_used > self.limits.disk {
            let Some((&lru, _)) = index.entries.peek_lru() else {
                break;
            };
            if let Some(evicted) = index.remove(lru) {
                debug!(url = %evicted.meta.url, "evicted from the cache");
                removed.push(evicted);
            }
        }
        removed
    }

    /// Keeps a body read from disk in the memory tier.
    pub fn remember(&self, id: VariantId, body: Bytes) {
        let mut index = self.lock();
        if index.entries.contains(&id) {
            index.remember(id, body, &self.limits);
        }
    }

    /// Drops the entry `id` (its body turned out damaged) if it still holds
    /// the body `hash`: a newer copy stored meanwhile is left alone.
    pub fn remove(&self, id: VariantId, hash: u64) {
        let removed = {
            let mut index = self.lock();
            match index.entries.peek(&id) {
                Some(entry) if entry.meta.body_hash == hash => index.remove(id),
                _ => None,
            }
        };
        self.remove_files(removed.into_iter().collect());
    }

    /// Drops every variant of `url`; returns how many there were.
    pub fn purge(&self, url: &str) -> usize {
        let removed: Vec<_> = {
            let mut index = self.lock();
            let ids = index.urls.get(url).cloned().unwrap_or_default();
            ids.into_iter().filter_map(|id| index.remove(id)).collect()
        };
        let count = removed.len();
        self.remove_files(removed);
        count
    }

    pub fn usage(&self) -> Usage {
        let index = self.lock();
        Usage {
            entries: index.entries.len() as u64,
            disk_bytes: index.disk_used,
            memory_entries: index.memory.len() as u64,
            memory_bytes: index.memory_used,
        }
    }

    fn remove_files(&self, entries: Vec<Arc<Entry>>) {
        if entries.is_empty() {
            return;
        }
        let disk = self.disk.clone();
        spawn_blocking_or_now(move || {
            for entry in entries {
                disk.remove(entry.meta.id, entry.meta.body_hash);
            }
        });
    }
}

/// File removal off the async threads when a runtime is running (always,
/// except while the cache is opened and in unit tests).
fn spawn_blocking_or_now(work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(work);
        }
        Err(_) => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::cache::meta::tests::sample;

    fn open(dir: &Path, disk: u64, memory: u64) -> Cache {
        let limits = Limits {
            disk,
            memory,
            memory_object: 1000,
            object: disk,
        };
        Cache::open(dir, limits).unwrap()
    }

    fn store(cache: &Cache, url: &str, body: &[u8]) -> VariantId {
        let meta = sample(url, body);
        let (temp, mut file) = cache.disk().create_temp().unwrap();
        file.write_all(body).unwrap();
        drop(file);
        let size = cache.disk().commit(&meta, Some(&temp)).unwrap();
        let id = meta.id;
        cache.insert(Entry::new(meta, size), Some(Bytes::copy_from_slice(body)));
        id
    }

    fn urls(cache: &Cache) -> Vec<String> {
        let index = cache.lock();
        let mut urls: Vec<String> = index.urls.keys().cloned().collect();
        urls.sort();
        urls
    }

    #[test]
    fn least_recently_used_goes_first() {
        let dir = tempfile::tempdir().unwrap();
        // Each entry is 600 body bytes plus under 800 of metadata.
        let cache = open(dir.path(), 3500, 10_000);
        store(&cache, "http://a/", &[b'a'; 600]);
        store(&cache, "http://b/", &[b'b'; 600]);
        assert_eq!(
            cache.candidates("http://a/").len(),
            1,
            "a is now the most recent"
        );
        store(&cache, "http://c/", &[b'c'; 600]);
        assert_eq!(urls(&cache), ["http://a/", "http://c/"]);
        let usage = cache.usage();
        assert_eq!(usage.entries, 2);
        assert!(usage.disk_bytes <= 3500);
        assert_eq!(usage.memory_bytes, 1200);
    }

    #[test]
    fn memory_tier_is_bounded_and_a_subset_of_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20, 1000);
        store(&cache, "http://a/", &[b'a'; 400]);
        store(&cache, "http://b/", &[b'b'; 400]);
        store(&cache, "http://c/", &[b'c'; 400]);
        let usage = cache.usage();
        assert_eq!((usage.entries, usage.memory_entries), (3, 2));
        assert_eq!(usage.memory_bytes, 800);
        assert!(
            cache.candidates("http://a/")[0].body.is_none(),
            "a left memory"
        );
        assert!(cache.candidates("http://c/")[0].body.is_some());
        // Bodies above the per-object limit stay on disk only.
        store(&cache, "http://big/", &[b'x'; 1500]);
        assert!(cache.candidates("http://big/")[0].body.is_none());
        // Dropping an entry drops its body from memory too.
        assert_eq!(cache.purge("http://c/"), 1);
        assert_eq!(cache.usage().memory_bytes, 400);
        assert_eq!(cache.purge("http://c/"), 0);
    }

    #[test]
    fn removing_a_damaged_body_spares_a_newer_copy() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20, 1 << 20);
        store(&cache, "http://a/", b"old");
        let old = cache.candidates("http://a/")[0].entry.meta.clone();
        store(&cache, "http://a/", b"new body");
        // A reader that found the old body damaged drops only that one.
        cache.remove(old.id, old.body_hash);
        assert_eq!(cache.candidates("http://a/").len(), 1);
        let current = cache.candidates("http://a/")[0].entry.meta.clone();
        cache.remove(current.id, current.body_hash);
        assert!(cache.candidates("http://a/").is_empty());
    }

    #[test]
    fn replacing_a_variant_keeps_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20, 1 << 20);
        store(&cache, "http://a/", b"old");
        store(&cache, "http://a/", b"new body");
        let candidates = cache.candidates("http://a/");
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].body.as_deref(), Some(&b"new body"[..]));
        assert_eq!(cache.usage().entries, 1);
        drop(cache);
        let reopened = open(dir.path(), 1 << 20, 1 << 20);
        let candidates = reopened.candidates("http://a/");
        assert_eq!(candidates.len(), 1);
        let body = reopened
            .disk()
            .read_body(&candidates[0].entry.meta)
            .unwrap();
        assert_eq!(body, "new body");
    }
}
