//! Maildir storage: a message is written to `tmp/`, synced, and renamed
//! into `new/` (so a reader never sees half a message), and the rename is
//! made durable before the client is told it was stored, so a crash loses
//! none that was acknowledged.
//!
//! The rename's durability is a group commit: one fsync of `new/` covers
//! every message renamed into it before that fsync began. Sessions storing
//! at once share it instead of each paying a journal commit of its own; a
//! message renamed while one runs waits for the next. (A crash between
//! the rename and that fsync can leave a message the client was not told
//! of, which it sends again: a duplicate, never a loss.)

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

/// Bytes of a message kept in memory before they go to its file.
const SPILL_AT: usize = 64 * 1024;

/// Messages one sync may cover; more wait for the next.
const MAX_GROUP: usize = 1024;

/// Asks for a sync; answered once one that began after the asking ends.
type SyncRequest = oneshot::Sender<Result<(), io::ErrorKind>>;

#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    hostname: String,
    /// Part of every file name; read once, not a syscall per message.
    pid: u32,
    counter: AtomicU64,
    /// `new/`, held open to be synced.
    new_dir: Arc<std::fs::File>,
    /// The group-commit task, started with the first message (inside the
    /// runtime).
    syncer: OnceLock<mpsc::UnboundedSender<SyncRequest>>,
}

/// A message made durable by [`Delivery::commit`].
#[derive(Debug)]
pub struct Committed {
    /// Its file in `new/`.
    pub path: PathBuf,
    /// Its bytes, if it was small enough to be held in memory whole.
    pub content: Option<Vec<u8>>,
}

/// A message being written; dropped without `commit`, it is removed.
///
/// Bytes gather in memory and go to the file a large piece at a time, so
/// a small message costs one trip to a blocking thread (create, write,
/// fsync, rename) instead of one for each step.
#[derive(Debug)]
pub struct Delivery {
    buffer: Vec<u8>,
    /// Created once the message outgrows the buffer, or at commit.
    file: Option<std::fs::File>,
    tmp: PathBuf,
    new: PathBuf,
    syncer: mpsc::UnboundedSender<SyncRequest>,
    committed: bool,
}

impl Maildir {
    pub fn create(root: PathBuf, hostname: &str) -> Result<Self, (PathBuf, io::Error)> {
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|err| (dir, err))?;
        }
        let new = root.join("new");
        let new_dir = std::fs::File::open(&new).map_err(|err| (new, err))?;
        Ok(Self {
            root,
            hostname: hostname.replace(['/', ':'], "_"),
            pid: std::process::id(),
            counter: AtomicU64::new(0),
            new_dir: Arc::new(new_dir),
            syncer: OnceLock::new(),
        })
    }

    /// Starts a new message with a unique name (`time.M<micros>P<pid>Q<n>.host`).
    /// Its file is created when the first bytes are written out.
    pub fn begin(&self) -> Delivery {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}.M{}P{}Q{n}.{}",
            now.as_secs(),
            now.subsec_micros(),
            self.pid,
            self.hostname
        );
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let syncer = self
            .syncer
            .get_or_init(|| {
                let (requests, waiting) = mpsc::unbounded_channel();
                tokio::spawn(group_sync(self.new_dir.clone(), waiting));
                requests
            })
            .clone();
        Delivery {
            buffer: Vec::with_capacity(SPILL_AT),
            file: None,
            tmp,
            new,
            syncer,
            committed: false,
        }
    }
}

/// Answers sync requests a group at a time until every sender is gone.
async fn group_sync(dir: Arc<std::fs::File>, mut waiting: mpsc::UnboundedReceiver<SyncRequest>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let dir = dir.clone();
        let synced = tokio::task::spawn_blocking(move || dir.sync_all())
            .await
            .map_err(|_| io::ErrorKind::Other)
            .and_then(|synced| synced.map_err(|err| err.kind()));
        for request in group.drain(..) {
            let _ = request.send(synced);
        }
    }
}

impl Delivery {
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= SPILL_AT {
            self.on_file(|file, buffer| {
                file.write_all(buffer)?;
                buffer.clear();
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Makes the message durable and visible.
    pub async fn commit(mut self) -> io::Result<Committed> {
        // A message that never outgrew the buffer is all in it: it is
        // handed back so that whoever reads it next need not read the file.
        let whole = self.file.is_none();
        let (tmp, new) = (self.tmp.clone(), self.new.clone());
        self.on_file(move |file, buffer| {
            file.write_all(buffer)?;
            if !whole {
                buffer.clear();
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &new)
        })
        .await?;
        self.committed = true;
        let (request, synced) = oneshot::channel();
        self.syncer
            .send(request)
            .map_err(|_| io::Error::other("the Maildir's sync task is gone"))?;
        match synced.await {
            Ok(Ok(())) => Ok(Committed {
                path: self.new.clone(),
                // Shrunk: it was reserved for the largest message kept in memory.
                content: whole.then(|| {
                    let mut content = std::mem::take(&mut self.buffer);
                    content.shrink_to_fit();
                    content
                }),
            }),
            Ok(Err(kind)) => Err(io::Error::new(
                kind,
                "cannot sync the Maildir's new/ to disk",
            )),
            Err(_) => Err(io::Error::other("the Maildir's sync task is gone")),
        }
    }

    /// Runs `work` on a blocking thread with the file (created in `tmp/`
    /// the first time) and the bytes gathered so far.
    async fn on_file<F>(&mut self, work: F) -> io::Result<()>
    where
        F: FnOnce(&mut std::fs::File, &mut Vec<u8>) -> io::Result<()> + Send + 'static,
    {
        let file = self.file.take();
        let mut buffer = std::mem::take(&mut self.buffer);
        let tmp = self.tmp.clone();
        let (file, buffer, done) = tokio::task::spawn_blocking(move || {
            let mut file = match file.map_or_else(|| std::fs::File::create_new(&tmp), Ok) {
                Ok(file) => file,
                Err(err) => return (None, buffer, Err(err)),
            };
            let done = work(&mut file, &mut buffer);
            (Some(file), buffer, done)
        })
        .await
        .map_err(io::Error::other)?;
        self.file = file;
        self.buffer = buffer;
        done
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("netkit-maildir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        root
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut names = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        names.sort();
        names
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_and_large_messages_arrive_whole_and_at_once() {
        let root = scratch("store");
        let maildir = Arc::new(Maildir::create(root.clone(), "host/x:y").unwrap());
        // Messages committed at the same time share the syncs of new/.
        let mut stores = Vec::new();
        for size in [10, SPILL_AT - 1, SPILL_AT, 3 * SPILL_AT + 7] {
            let maildir = maildir.clone();
            stores.push(tokio::spawn(async move {
                let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let mut delivery = maildir.begin();
                for piece in body.chunks(1000) {
                    delivery.write(piece).await.unwrap();
                }
                let committed = delivery.commit().await.unwrap();
                let in_memory = size < SPILL_AT;
                assert_eq!(committed.content.is_some(), in_memory, "{size} bytes");
                if let Some(content) = &committed.content {
                    assert_eq!(content, &body);
                }
                (committed.path, body)
            }));
        }
        for store in stores {
            let (path, body) = store.await.unwrap();
            assert!(path.starts_with(root.join("new")));
            assert!(path.to_str().unwrap().ends_with(".host_x_y"));
            assert_eq!(std::fs::read(&path).unwrap(), body);
        }
        assert_eq!(names(&root.join("new")).len(), 4);
        assert!(names(&root.join("tmp")).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn a_message_not_committed_leaves_nothing() {
        let root = scratch("dropped");
        let maildir = Maildir::create(root.clone(), "host").unwrap();
        let mut spilled = maildir.begin();
        spilled.write(&vec![b'x'; 2 * SPILL_AT]).await.unwrap();
        assert_eq!(names(&root.join("tmp")).len(), 1, "written out to tmp/");
        let mut small = maildir.begin();
        small.write(b"hello").await.unwrap();
        drop((spilled, small));
        assert!(names(&root.join("tmp")).is_empty());
        assert!(names(&root.join("new")).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
