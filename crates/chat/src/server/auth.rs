//! Registration and login for the async server. SQLite and Argon2 block,
//! so neither runs on the runtime's threads: database calls go to the
//! blocking pool, and hashing to a few dedicated threads (one per core, at
//! most four), each keeping its 19 MiB of Argon2 memory for the next hash
//! until it has been idle for a while.
//! A burst of a thousand logins queues there instead of exhausting memory.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::frame::Password;
use crate::name::Username;
use crate::password::Hasher;
use crate::store::{Accounts, StoreError};
use crate::throttle::LoginThrottle;

/// The most hashing threads, whatever the core count.
const MAX_HASHERS: usize = 4;

/// A hashing thread idle this long gives its Argon2 memory back, so a
/// server between login bursts holds only what its sessions need.
const RELEASE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) enum AuthError {
    NameTaken,
    LoginFailed,
    Throttled(Duration),
    Internal,
}

type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

#[derive(Debug)]
pub(crate) struct Auth {
    accounts: Arc<Mutex<Accounts>>,
    hashers: Mutex<mpsc::Sender<Job>>,
    throttle: Mutex<LoginThrottle>,
}

impl Auth {
    pub fn new(accounts: Accounts, throttle: LoginThrottle) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_HASHERS);
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("chat-hasher-{i}"))
                .spawn(move || {
                    let mut hasher = Hasher::new();
                    loop {
                        // The lock is released before the job runs.
                        let job = lock(&queue).recv_timeout(RELEASE_AFTER);
                        match job {
                            Ok(job) => job(&mut hasher),
                            Err(mpsc::RecvTimeoutError::Timeout) => hasher.release(),
                            // The server, holding the sender, is gone.
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            if let Err(err) = spawned {
                warn!(%err, "cannot start a password hashing thread");
            }
        }
        // The decoy hash for unknown names is made now: made by the first
        // login for an unknown name, it would make that answer stand out.
        let _ = jobs.send(Box::new(|hasher: &mut Hasher| {
            hasher.check(None, "");
        }));
        Self {
            accounts: Arc::new(Mutex::new(accounts)),
            hashers: Mutex::new(jobs),
            throttle: Mutex::new(throttle),
        }
    }

    /// Creates an account; returns its name as stored.
    pub async fn register(&self, name: Username, password: Password) -> Result<String, AuthError> {
        let accounts = self.accounts.clone();
        let probe = name.clone();
        let taken = self
            .database(move || Ok(lock(&accounts).lookup(probe.as_str())?.is_some()))
            .await?;
        if taken {
            return Err(AuthError::NameTaken);
        }
        let hash = self
            .hashing(move |hasher| hasher.hash(password.expose()))
            .await?
            .map_err(|err| {
                warn!(%err, "hashing failed");
                AuthError::Internal
            })?;
        let accounts = self.accounts.clone();
        let stored = name.to_string();
        self.database(move || lock(&accounts).insert(&name, &hash))
            .await?;
        info!(user = %stored, "account registered");
        Ok(stored)
    }

    /// Checks a login; returns the account's name as stored.
    pub async fn login(
        &self,
        name: &str,
        password: Password,
        ip: IpAddr,
    ) -> Result<String, AuthError> {
        let account = name.to_ascii_lowercase();
        let attempt = lock(&self.throttle)
            .begin(&account, ip, Instant::now())
            .map_err(|wait| {
                info!(%ip, "login refused: throttled");
                AuthError::Throttled(wait)
            })?;
        let accounts = self.accounts.clone();
        let lookup = name.to_owned();
        let verified = async {
            let found = self
                .database(move || lock(&accounts).lookup(&lookup))
                .await?;
            self.hashing(move |hasher| hasher.check(found, password.expose()))
                .await
        };
        match verified.await {
            Ok(Some(stored)) => {
                lock(&self.throttle).succeeded(attempt);
                Ok(stored)
            }
            Ok(None) => {
                // The attempt already counts as a failure. The name is
                // logged, never the password.
                info!(%ip, user = %name, "login failed");
                Err(AuthError::LoginFailed)
            }
            Err(err) => {
                lock(&self.throttle).abandoned(attempt);
                Err(err)
            }
        }
    }

    async fn hashing<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce(&mut Hasher) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            let _ = done.send(work(hasher));
        });
        if lock(&self.hashers).send(job).is_err() {
            warn!("no password hashing thread is running");
            return Err(AuthError::Internal);
        }
        result.await.map_err(|_| AuthError::Internal)
    }

    async fn database<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(StoreError::NameTaken(_))) => Err(AuthError::NameTaken),
            Ok(Err(err)) => {
                warn!(%err, "account store failed");
                Err(AuthError::Internal)
            }
            Err(err) => {
                warn!(%err, "account task failed");
                Err(AuthError::Internal)
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
