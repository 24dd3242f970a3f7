//! The web inbox of `netkit mail sink`: every message the sink stores in
//! its Maildir is indexed in SQLite beside it (`netkit-index.sqlite` in the
//! Maildir's root, where Maildir readers ignore it), parsed as MIME on
//! demand, and served as a JSON API (`/api/v1/…`, Mailpit's names) and
//! as HTML pages that work without JavaScript.
//!
//! The Maildir stays the store: the index is rebuilt from it when missing
//! or damaged, a message read is moved to `cur/` with the `S` flag, and
//! messages that arrived while nothing indexed them are added at start.

mod event;
mod http;
mod index;
mod maildir;
mod parsed;
mod search;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use smtp::sink::Stored;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

pub use event::Event;
pub use http::{WebConfig, WebError, WebServer};
pub use index::Summary;
pub use parsed::{HeaderField, Mailbox, Parsed, Part, PartBody};
pub use search::{Search, SearchError};

use index::{Index, Record};

/// The index's file name in the Maildir's root.
pub const INDEX_FILE: &str = "netkit-index.sqlite";
/// Arrivals indexed in one transaction at most.
const BATCH: usize = 256;
/// Events a slow subscriber may fall behind before it misses some.
const EVENT_BACKLOG: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the index {path} failed: {source}")]
    Index {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot read the maildir {path}: {source}")]
    Maildir { path: PathBuf, source: io::Error },
    #[error("no message {0}")]
    NotFound(String),
    #[error(transparent)]
    Search(#[from] SearchError),
    /// Work on the index or a message stopped short (a bug: it panicked).
    #[error("the inbox failed: {0}")]
    Failed(String),
}

#[derive(Debug)]
pub struct Inbox {
    root: PathBuf,
    index_path: PathBuf,
    index: Mutex<Index>,
    events: broadcast::Sender<Event>,
    /// Oldest messages beyond this many are deleted.
    max_messages: Option<u64>,
}

/// One page of a listing.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listing {
    /// Messages in the inbox.
    pub total: u64,
    pub unread: u64,
    /// Messages the search matched (all of them without one).
    pub messages_count: u64,
    pub start: u64,
    pub messages: Vec<Summary>,
}

impl Inbox {
    /// Opens the inbox of the Maildir at `root` (creating it if missing),
    /// rebuilding the index if it is missing or damaged and adding any
    /// message it does not know.
    pub fn open(root: &Path, max_messages: Option<u64>) -> Result<Arc<Self>, InboxError> {
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .map_err(|source| InboxError::Maildir { path: dir, source })?;
        }
        let index_path = root.join(INDEX_FILE);
        let (index, new) = Index::open(&index_path).map_err(|source| InboxError::Index {
            path: index_path.clone(),
            source,
        })?;
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let inbox = Arc::new(Self {
            root: root.to_owned(),
            index_path,
            index: Mutex::new(index),
            events,
            max_messages,
        });
        let added = inbox.reconcile()?;
        if new || added > 0 {
            info!(added, maildir = %root.display(), "index built from the maildir");
        }
        inbox.prune()?;
        Ok(inbox)
    }

    pub fn maildir(&self) -> &Path {
        &self.root
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A channel for the sink's `on_stored`: each message sent on it is
    /// indexed (in batches) before it is answered. The task ends when every
    /// sender is dropped.
    pub fn indexer(self: &Arc<Self>) -> mpsc::Sender<Stored> {
        let (tx, mut rx) = mpsc::channel::<Stored>(BATCH);
        let inbox = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let stored = std::mem::take(&mut batch);
                let inbox = inbox.clone();
                let added = tokio::task::spawn_blocking(move || {
                    let result = inbox.add(&stored);
                    for s in stored {
                        let _ = s.done.send(());
                    }
                    result
                })
                .await;
                match added {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => warn!(%err, "cannot index arrivals"),
                    Err(err) => warn!(%err, "the indexer failed"),
                }
            }
        });
        tx
    }

    /// Indexes messages just stored.
    fn add(&self, arrivals: &[Stored]) -> Result<(), InboxError> {
        let mut records = Vec::with_capacity(arrivals.len());
        for arrival in arrivals {
            let content = arrival.content.as_deref();
            let Some(record) = self.record_at(&arrival.path, content, arrival.recipients.clone())
            else {
                continue;
            };
            records.push(record);
        }
        let summaries = {
            let mut index = self.lock();
            index.insert(&records).map_err(|e| self.index_error(e))?;
            records
                .iter()
                .filter_map(|record| index.get(&record.id).ok().flatten())
                .collect::<Vec<_>>()
        };
        for summary in summaries {
            let _ = self.events.send(Event::New(Box::new(summary)));
        }
        self.prune()
    }

    /// A row for the file at `path` (whose bytes are `content`, if the
    /// caller has them); None if it is not a message file of this Maildir
    /// or cannot be read.
    fn record_at(
        &self,
        path: &Path,
        content: Option<&[u8]>,
        envelope_to: Vec<String>,
    ) -> Option<Record> {
        let relative = path.strip_prefix(&self.root).ok()?.to_str()?.to_owned();
        let name = path.file_name()?.to_str()?;
        let (id, read) = match name.split_once(":2,") {
            Some((id, flags)) => (id, relative.starts_with("cur/") && flags.contains('S')),
            None => (name, false),
        };
        let from_file;
        let raw = match content {
            Some(content) => content,
            None => match std::fs::read(path) {
                Ok(bytes) => {
                    from_file = bytes;
                    &from_file[..]
                }
                Err(err) => {
                    warn!(%err, path = %path.display(), "cannot read a stored message");
                    return None;
                }
            },
        };
        let received = maildir::received_from_name(id).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64)
        });
        Some(Record {
            id: id.to_owned(),
            file: relative,
            received,
            read,
            size: raw.len() as u64,
            envelope_to,
            digest: parsed::digest(raw),
        })
    }

    /// Brings the index in line with the Maildir; returns how many
    /// messages were added.
    fn reconcile(&self) -> Result<usize, InboxError> {
        let entries = maildir::scan(&self.root).map_err(|source| InboxError::Maildir {
            path: self.root.clone(),
            source,
        })?;
        let mut index = self.lock();
        let known: std::collections::HashMap<String, String> = index
            .files()
            .map_err(|e| self.index_error(e))?
            .into_iter()
            .collect();
        let on_disk: std::collections::HashSet<&str> =
            entries.iter().map(|entry| entry.id.as_str()).collect();
        let gone: Vec<String> = known
            .keys()
            .filter(|id| !on_disk.contains(id.as_str()))
            .cloned()
            .collect();
        index.delete(&gone).map_err(|e| self.index_error(e))?;
        let mut added = 0;
        for chunk in entries.chunks(BATCH) {
            let mut records = Vec::new();
            for entry in chunk {
                match known.get(&entry.id) {
                    Some(file) if *file == entry.file => {}
                    Some(_) => index
                        .set_read(&entry.id, &entry.file, entry.read)
                        .map_err(|e| self.index_error(e))?,
                    None => {
                        let path = self.root.join(&entry.file);
                        if let Some(mut record) = self.record_at(&path, None, Vec::new()) {
                            record.received = entry.received;
                            record.read = entry.read;
                            records.push(record);
                        }
                    }
                }
            }
            added += records.len();
            index.insert(&records).map_err(|e| self.index_error(e))?;
        }
        if !gone.is_empty() {
            debug!(
                count = gone.len(),
                "forgot messages no longer in the maildir"
            );
        }
        Ok(added)
    }

    /// Deletes the oldest messages beyond `max_messages`.
    fn prune(&self) -> Result<(), InboxError> {
        let Some(max) = self.max_messages else {
            return Ok(());
        };
        let doomed = {
            let index = self.lock();
            let (total, _) = index.counts().map_err(|e| self.index_error(e))?;
            if total <= max {
                return Ok(());
            }
            index.oldest(total - max).map_err(|e| self.index_error(e))?
        };
        let ids = doomed.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        self.remove(&doomed)?;
        debug!(count = ids.len(), "pruned the oldest messages");
        let _ = self.events.send(Event::Deleted(ids));
        Ok(())
    }

    pub fn list(&self, search: &Search, start: u64, limit: u64) -> Result<Listing, InboxError> {
        let index = self.lock();
        let (messages_count, messages) = index
            .list(search, start, limit)
            .map_err(|e| self.index_error(e))?;
        let (total, unread) = index.counts().map_err(|e| self.index_error(e))?;
        Ok(Listing {
            total,
            unread,
            messages_count,
            start,
            messages,
        })
    }

    pub fn summary(&self, id: &str) -> Result<Summary, InboxError> {
        if !maildir::valid_id(id) {
            return Err(InboxError::NotFound(id.to_owned()));
        }
        self.lock()
            .get(id)
            .map_err(|e| self.index_error(e))?
            .ok_or_else(|| InboxError::NotFound(id.to_owned()))
    }

    /// The message's bytes exactly as stored.
    pub fn raw(&self, id: &str) -> Result<Vec<u8>, InboxError> {
        // Marking read moves the file; a second look finds it.
        for _ in 0..2 {
            let summary = self.summary(id)?;
            match std::fs::read(self.root.join(&summary.file)) {
                Ok(raw) => return Ok(raw),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(InboxError::Maildir {
                        path: self.root.join(&summary.file),
                        source,
                    });
                }
            }
        }
        Err(InboxError::NotFound(id.to_owned()))
    }

    pub fn parsed(&self, id: &str) -> Result<(Summary, Parsed), InboxError> {
        let raw = self.raw(id)?;
        Ok((self.summary(id)?, parsed::parse(&raw)))
    }

    pub fn part(&self, id: &str, part_id: usize) -> Result<PartBody, InboxError> {
        let raw = self.raw(id)?;
        parsed::part(&raw, part_id)
            .ok_or_else(|| InboxError::NotFound(format!("{id} part {part_id}")))
    }

    pub fn set_read(&self, ids: &[String], read: bool) -> Result<(), InboxError> {
        let mut changed = Vec::new();
        {
            let index = self.lock();
            for id in ids {
                let Some(summary) = index.get(id).map_err(|e| self.index_error(e))? else {
                    continue;
                };
                if summary.read == read {
                    continue;
                }
                let file =
                    maildir::set_read(&self.root, &summary.file, id, read).map_err(|source| {
                        InboxError::Maildir {
                            path: self.root.join(&summary.file),
                            source,
                        }
                    })?;
                index
                    .set_read(id, &file, read)
                    .map_err(|e| self.index_error(e))?;
                changed.push(id.clone());
            }
        }
        if !changed.is_empty() {
            let _ = self.events.send(Event::Read { ids: changed, read });
        }
        Ok(())
    }

    pub fn delete(&self, ids: &[String]) -> Result<(), InboxError> {
        let found = {
            let index = self.lock();
            let mut found = Vec::new();
            for id in ids {
                if let Some(summary) = index.get(id).map_err(|e| self.index_error(e))? {
                    found.push((summary.id, summary.file));
                }
            }
            found
        };
        self.remove(&found)?;
        let _ = self.events.send(Event::Deleted(
            found.into_iter().map(|(id, _)| id).collect(),
        ));
        Ok(())
    }

    /// Deletes every message, indexed or not.
    pub fn delete_all(&self) -> Result<(), InboxError> {
        let mut index = self.lock();
        let entries = maildir::scan(&self.root).map_err(|source| InboxError::Maildir {
            path: self.root.clone(),
            source,
        })?;
        for entry in &entries {
            maildir::remove(&self.root, &entry.file).map_err(|source| InboxError::Maildir {
                path: self.root.join(&entry.file),
                source,
            })?;
        }
        let ids = index
            .files()
            .map_err(|e| self.index_error(e))?
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>();
        index.delete(&ids).map_err(|e| self.index_error(e))?;
        drop(index);
        let _ = self.events.send(Event::Cleared);
        Ok(())
    }

    /// Removes message files and their rows.
    fn remove(&self, messages: &[(String, String)]) -> Result<(), InboxError> {
        let mut index = self.lock();
        for (_, file) in messages {
            maildir::remove(&self.root, file).map_err(|source| InboxError::Maildir {
                path: self.root.join(file),
                source,
            })?;
        }
        let ids = messages
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>();
        index.delete(&ids).map_err(|e| self.index_error(e))
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves SQLite consistent (a
        // transaction rolls back), so the index is still usable.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn index_error(&self, source: rusqlite::Error) -> InboxError {
        InboxError::Index {
            path: self.index_path.clone(),
            source,
        }
    }
}
