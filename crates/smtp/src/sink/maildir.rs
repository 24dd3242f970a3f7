//! Maildir storage: a message is written to `tmp/`, synced, and renamed
//! into `new/`, so a reader never sees half a message and a crash loses
//! none that was acknowledged.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};

#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    hostname: String,
    counter: AtomicU64,
}

/// A message being written; dropped without `commit`, it is removed.
#[derive(Debug)]
pub struct Delivery {
    file: BufWriter<File>,
    tmp: PathBuf,
    new: PathBuf,
    committed: bool,
}

impl Maildir {
    pub fn create(root: PathBuf, hostname: &str) -> Result<Self, (PathBuf, io::Error)> {
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|err| (dir, err))?;
        }
        Ok(Self {
            root,
            hostname: hostname.replace(['/', ':'], "_"),
            counter: AtomicU64::new(0),
        })
    }

    /// Starts a new message with a unique name (`time.M<micros>P<pid>Q<n>.host`).
    pub async fn begin(&self) -> io::Result<Delivery> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}.M{}P{}Q{n}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            self.hostname
        );
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let file = File::create_new(&tmp).await?;
        Ok(Delivery {
            file: BufWriter::with_capacity(64 * 1024, file),
            tmp,
            new,
            committed: false,
        })
    }
}

impl Delivery {
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes).await
    }

    /// Makes the message durable and visible; returns its path.
    pub async fn commit(mut self) -> io::Result<PathBuf> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        tokio::fs::rename(&self.tmp, &self.new).await?;
        self.committed = true;
        Ok(self.new.clone())
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
