//! Stopping a running session from another thread (a signal handler's
//! task): a flag, and a socket pair that wakes the session's `poll`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle that asks a session to stop; clones share the request.
#[derive(Debug, Clone)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Stop {
    pub fn new() -> io::Result<Stop> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Stop {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                wake_tx,
                wake_rx,
            }),
        })
    }

    /// Asks the session to finish: it stops sending, and reports what it
    /// has as if the run had ended.
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        // A full pipe already holds a wake-up.
        let _ = (&self.inner.wake_tx).write(&[1]);
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Readable once a stop is requested.
    pub(crate) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake_rx.as_fd()
    }

    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.inner.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}
