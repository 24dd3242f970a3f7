//! The password hashing threads and their bounded queue. Argon2 is slow on
//! purpose (tens of milliseconds and 19 MiB per hash), so hashing runs on a
//! few dedicated threads (one per core, at most four), each keeping its
//! memory for the next hash until it has been idle for a while.
//!
//! Logins go before registrations, and with more than one thread one is
//! kept for logins alone: a flood of `register` frames must not make a
//! returning user wait behind it. Both queues are bounded, and a job
//! that finds its queue full is refused at once (the client gets `busy`)
//! rather than waiting for seconds and piling up memory.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing::warn;

use crate::password::Hasher;

/// The most hashing threads, whatever the core count.
const MAX_HASHERS: usize = 4;

/// A hashing thread idle this long gives its Argon2 memory back, so a
/// server between login bursts holds only what its sessions need.
const RELEASE_AFTER: Duration = Duration::from_secs(5);

/// Registrations that may wait, per thread: a handful of people signing up
/// at once wait their turn; a flood is refused.
const REGISTRATIONS_PER_THREAD: usize = 8;

pub(crate) type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

/// Which queue a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Checking a password: served first.
    Login,
    /// Hashing a new account's password: served when no login waits.
    Register,
}

/// The queue for that priority is full.
#[derive(Debug)]
pub(crate) struct Full;

struct Queues {
    logins: VecDeque<Job>,
    registrations: VecDeque<Job>,
    /// Registrations being hashed now, and the most allowed at once.
    registering: usize,
    max_registering: usize,
    closed: bool,
}

impl Queues {
    fn next(&mut self) -> Option<(Priority, Job)> {
        if let Some(job) = self.logins.pop_front() {
            return Some((Priority::Login, job));
        }
        if self.registering < self.max_registering {
            let job = self.registrations.pop_front()?;
            self.registering += 1;
            return Some((Priority::Register, job));
        }
        None
    }
}

struct State {
    queues: Mutex<Queues>,
    ready: Condvar,
}

/// The hashing pool; dropping it stops its threads once their jobs end.
pub(crate) struct Hashers {
    state: Arc<State>,
    max_logins: usize,
    max_registrations: usize,
}

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashers")
            .field("max_logins", &self.max_logins)
            .field("max_registrations", &self.max_registrations)
            .finish_non_exhaustive()
    }
}

impl Hashers {
    /// Starts the threads. At most `max_logins` logins may wait for a
    /// thread; registrations only a few per thread, so a burst of them is
    /// refused early instead of queueing for long.
    pub fn start(max_logins: usize) -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_HASHERS);
        Self::with_threads(threads, max_logins)
    }

    fn with_threads(threads: usize, max_logins: usize) -> Self {
        let state = Arc::new(State {
            queues: Mutex::new(Queues {
                logins: VecDeque::new(),
                registrations: VecDeque::new(),
                registering: 0,
                max_registering: threads.saturating_sub(1).max(1),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let state = state.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("chat-hasher-{i}"))
                .spawn(move || work(&state));
            if let Err(err) = spawned {
                warn!(%err, "cannot start a password hashing thread");
            }
        }
        Self {
            state,
            max_logins: max_logins.max(1),
            max_registrations: REGISTRATIONS_PER_THREAD * threads,
        }
    }

    /// Queues a job, or refuses it when its queue is full.
    pub fn submit(&self, priority: Priority, job: Job) -> Result<(), Full> {
        let mut queues = lock(&self.state.queues);
        let (queue, max) = match priority {
            Priority::Login => (&mut queues.logins, self.max_logins),
            Priority::Register => (&mut queues.registrations, self.max_registrations),
        };
        if queue.len() >= max {
            return Err(Full);
        }
        queue.push_back(job);
        drop(queues);
        self.state.ready.notify_one();
        Ok(())
    }
}

impl Drop for Hashers {
    fn drop(&mut self) {
        lock(&self.state.queues).closed = true;
        self.state.ready.notify_all();
    }
}

fn work(state: &State) {
    let mut hasher = Hasher::new();
    let mut queues = lock(&state.queues);
    loop {
        if let Some((priority, job)) = queues.next() {
            drop(queues);
            job(&mut hasher);
            queues = lock(&state.queues);
            if priority == Priority::Register {
                queues.registering -= 1;
                // A thread may be waiting for this registration's slot.
                state.ready.notify_one();
            }
            continue;
        }
        if queues.closed {
            return;
        }
        let (guard, waited) = state
            .ready
            .wait_timeout(queues, RELEASE_AFTER)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queues = guard;
        if waited.timed_out() && queues.logins.is_empty() && queues.registrations.is_empty() {
            hasher.release();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn logins_go_first_and_full_queues_refuse() {
        let hashers = Hashers::with_threads(1, 2);
        // Hold the thread until told to go on.
        let (go, gate) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel();
        hashers
            .submit(
                Priority::Login,
                Box::new(move |_| {
                    started.send(()).unwrap();
                    gate.recv().unwrap();
                }),
            )
            .unwrap();
        running.recv().unwrap();
        let (done, order) = mpsc::channel();
        let job = |what: &'static str| -> Job {
            let done = done.clone();
            Box::new(move |_| done.send(what).unwrap())
        };
        for _ in 0..REGISTRATIONS_PER_THREAD {
            hashers.submit(Priority::Register, job("register")).unwrap();
        }
        assert!(hashers.submit(Priority::Register, job("refused")).is_err());
        hashers.submit(Priority::Login, job("login 1")).unwrap();
        hashers.submit(Priority::Login, job("login 2")).unwrap();
        assert!(hashers.submit(Priority::Login, job("refused")).is_err());
        drop(done);
        go.send(()).unwrap();
        let order: Vec<&str> = order.iter().collect();
        assert_eq!(order[..3], ["login 1", "login 2", "register"]);
        assert_eq!(order.len(), 2 + REGISTRATIONS_PER_THREAD);
    }

    #[test]
    fn a_thread_stays_free_for_logins() {
        let hashers = Hashers::with_threads(2, 4);
        let (go, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        for _ in 0..3 {
            let gate = gate.clone();
            hashers
                .submit(
                    Priority::Register,
                    Box::new(move |_| lock(&gate).recv().unwrap()),
                )
                .unwrap();
        }
        // The registrations are held (one running, the others waiting for
        // the registration slot), yet a login is served.
        let (done, served) = mpsc::channel();
        hashers
            .submit(Priority::Login, Box::new(move |_| done.send(()).unwrap()))
            .unwrap();
        served
            .recv_timeout(Duration::from_secs(30))
            .expect("the login ran beside the registrations");
        for _ in 0..3 {
            go.send(()).unwrap();
        }
    }
}
