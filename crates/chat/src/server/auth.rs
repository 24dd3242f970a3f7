//! Registration and login for the async server. The account store and
//! Argon2 block, so neither runs on the runtime's threads: database calls go to the
//! blocking pool, and hashing to the bounded queues of hashers.rs, where
//! logins go before registrations. A burst of logins or registrations is
//! refused with `busy` once it fills its queue instead of exhausting memory
//! or delaying everyone.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::hashers::{Hashers, Job, Priority};
use crate::bus::{Counted, Throttles};
use crate::frame::Password;
use crate::name::Username;
use crate::password::Hasher;
use crate::store::{AccountStore, Standing, StoreError};
use crate::throttle::{Attempt, LoginThrottle, RegisterThrottle, Registration, source};

#[derive(Debug)]
pub(crate) enum AuthError {
    NameTaken,
    LoginFailed,
    Throttled(Duration),
    /// Too many registrations from this address or overall.
    TooManyRegistrations(Duration),
    /// The hashing queue is full.
    Busy,
    /// The password was right but the account is disabled.
    Disabled,
    /// The account store cannot be reached now.
    Unavailable,
    Internal,
}

#[derive(Debug)]
pub(crate) struct Auth {
    accounts: Arc<dyn AccountStore>,
    hashers: Hashers,
    throttle: Mutex<LoginThrottle>,
    registrations: Mutex<RegisterThrottle>,
    /// In a cluster, the counts every node shares; the local ones above
    /// stand in while Redis cannot be reached.
    shared: Option<Arc<Throttles>>,
}

/// An attempt counted here or in the cluster.
enum Ticket<T> {
    Local(T),
    Shared(Counted),
}

impl Auth {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        throttle: LoginThrottle,
        registrations: RegisterThrottle,
        shared: Option<Throttles>,
        login_queue: usize,
    ) -> Self {
        let hashers = Hashers::start(login_queue);
        // The decoy hash for unknown names is made now: made by the first
        // login for an unknown name, it would make that answer stand out.
        let _ = hashers.submit(
            Priority::Login,
            Box::new(|hasher: &mut Hasher| {
                hasher.check(None, "");
            }),
        );
        Self {
            accounts,
            hashers,
            throttle: Mutex::new(throttle),
            registrations: Mutex::new(registrations),
            shared: shared.map(Arc::new),
        }
    }

    /// Creates an account; returns its name as stored.
    pub async fn register(
        &self,
        name: Username,
        password: Password,
        ip: IpAddr,
    ) -> Result<String, AuthError> {
        let registration = self.begin_register(ip).await.map_err(|wait| {
            info!(%ip, "registration refused: throttled");
            AuthError::TooManyRegistrations(wait)
        })?;
        let created = self.create(name, password).await;
        if let Err(AuthError::Busy | AuthError::Internal | AuthError::Unavailable) = created {
            match registration {
                Ticket::Local(registration) => lock(&self.registrations).abandoned(registration),
                Ticket::Shared(counted) => self.settle(counted, false),
            }
        }
        created
    }

    /// The whole registration runs on a hashing thread, so a flood of
    /// them waits in (or is refused by) the bounded queue, and never ties
    /// up the database or the blocking pool.
    async fn create(&self, name: Username, password: Password) -> Result<String, AuthError> {
        let accounts = self.accounts.clone();
        let stored = name.to_string();
        self.hashing(Priority::Register, move |hasher| {
            if accounts.lookup(name.as_str())?.is_some() {
                return Err(StoreError::NameTaken(name.to_string()));
            }
            let hash = hasher.hash(password.expose())?;
            accounts.insert(&name, &hash)
        })
        .await?
        .map_err(|err| match err {
            StoreError::NameTaken(_) => AuthError::NameTaken,
            err @ StoreError::Unavailable(_) => {
                warn!(%err, "registration failed");
                AuthError::Unavailable
            }
            err => {
                warn!(%err, "registration failed");
                AuthError::Internal
            }
        })?;
        info!(user = %stored, "account registered");
        Ok(stored)
    }

    /// Checks a login; returns the account's name as stored and its
    /// standing. A disabled account is refused only once its password
    /// proved right, so the refusal tells a guesser nothing.
    pub async fn login(
        &self,
        name: &str,
        password: Password,
        ip: IpAddr,
    ) -> Result<(String, Standing), AuthError> {
        let account = name.to_ascii_lowercase();
        let attempt = self.begin_login(&account, ip).await.map_err(|wait| {
            info!(%ip, "login refused: throttled");
            AuthError::Throttled(wait)
        })?;
        let accounts = self.accounts.clone();
        let lookup = name.to_owned();
        let verified = async {
            let (found, standing) = self
                .database(move || {
                    let standing = accounts.standing(&lookup)?;
                    Ok((accounts.lookup(&lookup)?, standing))
                })
                .await?;
            let checked = self
                .hashing(Priority::Login, move |hasher| {
                    hasher.check(found, password.expose())
                })
                .await?;
            Ok(checked.map(|stored| (stored, standing.unwrap_or_default().1)))
        };
        match verified.await {
            Ok(Some((stored, standing))) => {
                match attempt {
                    Ticket::Local(attempt) => lock(&self.throttle).succeeded(attempt),
                    Ticket::Shared(counted) => self.settle(counted, true),
                }
                if standing.disabled {
                    info!(%ip, user = %stored, "login refused: account disabled");
                    return Err(AuthError::Disabled);
                }
                Ok((stored, standing))
            }
            Ok(None) => {
                // The attempt already counts as a failure. The name is
                // logged, never the password.
                info!(%ip, user = %name, "login failed");
                Err(AuthError::LoginFailed)
            }
            Err(err) => {
                match attempt {
                    Ticket::Local(attempt) => lock(&self.throttle).abandoned(attempt),
                    Ticket::Shared(counted) => self.settle(counted, false),
                }
                Err(err)
            }
        }
    }

    async fn begin_login(&self, account: &str, ip: IpAddr) -> Result<Ticket<Attempt>, Duration> {
        if let Some(shared) = &self.shared
            && let Ok(counted) = shared.begin_login(account, source(ip)).await
        {
            return counted.map(Ticket::Shared);
        }
        let mut throttle = lock(&self.throttle);
        throttle
            .begin(account, ip, Instant::now())
            .map(Ticket::Local)
    }

    async fn begin_register(&self, ip: IpAddr) -> Result<Ticket<Registration>, Duration> {
        if let Some(shared) = &self.shared
            && let Ok(counted) = shared.begin_register(source(ip)).await
        {
            return counted.map(Ticket::Shared);
        }
        let mut registrations = lock(&self.registrations);
        registrations.begin(ip, Instant::now()).map(Ticket::Local)
    }

    /// Settles a shared attempt in the background: the answer need not
    /// wait for Redis.
    fn settle(&self, counted: Counted, succeeded: bool) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        tokio::spawn(async move {
            if succeeded {
                shared.succeeded(counted).await;
            } else {
                shared.abandoned(counted).await;
            }
        });
    }

    /// Runs `work` on the account store, on the blocking pool.
    pub async fn accounts<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        F: FnOnce(&dyn AccountStore) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let accounts = self.accounts.clone();
        self.database(move || work(accounts.as_ref())).await
    }

    async fn hashing<T, F>(&self, priority: Priority, work: F) -> Result<T, AuthError>
    where
        F: FnOnce(&mut Hasher) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            let _ = done.send(work(hasher));
        });
        if self.hashers.submit(priority, job).is_err() {
            // Debug only: a flood would otherwise write a line per frame.
            debug!(?priority, "password hashing queue full: busy");
            return Err(AuthError::Busy);
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
            Ok(Err(err @ StoreError::Unavailable(_))) => {
                warn!(%err, "account store unavailable");
                Err(AuthError::Unavailable)
            }
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
