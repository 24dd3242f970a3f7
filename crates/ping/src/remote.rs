//! Steering a running session from another thread (a signal handler's
//! task): stop it, or ask for a status report. Flags, and a socket pair
//! that wakes the session's `poll`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A handle on a running session; clones share it.
#[derive(Debug, Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stop: AtomicBool,
    status: AtomicBool,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Remote {
    pub fn new() -> io::Result<Remote> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Remote {
            inner: Arc::new(Inner {
                stop: AtomicBool::new(false),
                status: AtomicBool::new(false),
                wake_tx,
                wake_rx,
            }),
        })
    }

    /// Asks the session to finish (SIGINT): it stops sending and reports
    /// what it has as if the run had ended.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }

    /// Asks the session for an `Event::Status` per target (SIGQUIT); the
    /// run goes on.
    pub fn ask_status(&self) {
        self.inner.status.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a status report was asked for since the last call.
    pub(crate) fn take_status(&self) -> bool {
        self.inner.status.swap(false, Ordering::SeqCst)
    }

    fn wake(&self) {
        // A full pipe already holds a wake-up.
        let _ = (&self.inner.wake_tx).write(&[1]);
    }

    /// Readable once the session is stopped or asked for its status.
    pub(crate) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake_rx.as_fd()
    }

    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.inner.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}
