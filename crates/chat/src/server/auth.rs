//! Registration and login for the async server. SQLite and Argon2 block,
//! so they run on blocking threads, and only as many hashes run at once as
//! there are cores: each Argon2 run holds 19 MiB, and a burst of a thousand
//! logins must queue rather than exhaust memory.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::frame::Password;
use crate::name::Username;
use crate::store::{self, Accounts, StoreError};
use crate::throttle::LoginThrottle;

#[derive(Debug)]
pub(crate) enum AuthError {
    NameTaken,
    LoginFailed,
    Throttled(Duration),
    Internal,
}

#[derive(Debug)]
pub(crate) struct Auth {
    accounts: Arc<Mutex<Accounts>>,
    hashing: Arc<Semaphore>,
    throttle: Mutex<LoginThrottle>,
}

impl Auth {
    pub fn new(accounts: Accounts, throttle: LoginThrottle) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            accounts: Arc::new(Mutex::new(accounts)),
            hashing: Arc::new(Semaphore::new(cores)),
            throttle: Mutex::new(throttle),
        }
    }

    /// Creates an account; returns its name as stored.
    pub async fn register(&self, name: Username, password: Password) -> Result<String, AuthError> {
        let accounts = self.accounts.clone();
        let taken = {
            let probe = name.clone();
            self.blocking(move || Ok(lock(&accounts).lookup(probe.as_str())?.is_some()))
                .await?
        };
        if taken {
            return Err(AuthError::NameTaken);
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthError::Internal)?;
        let accounts = self.accounts.clone();
        let stored = name.to_string();
        self.blocking(move || {
            let hash = store::hash_password(password.expose())?;
            lock(&accounts).insert(&name, &hash)
        })
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
        if let Err(wait) = lock(&self.throttle).check(&account, ip, Instant::now()) {
            info!(%ip, "login refused: throttled");
            return Err(AuthError::Throttled(wait));
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthError::Internal)?;
        let accounts = self.accounts.clone();
        let lookup = name.to_owned();
        let verified = self
            .blocking(move || {
                // The lock covers the lookup only; hashing runs unlocked.
                let found = lock(&accounts).lookup(&lookup)?;
                Ok(store::check(found, password.expose()))
            })
            .await?;
        let mut throttle = lock(&self.throttle);
        match verified {
            Some(stored) => {
                throttle.succeeded(&account);
                Ok(stored)
            }
            None => {
                throttle.failed(&account, ip, Instant::now());
                // The name is logged, never the password.
                info!(%ip, user = %name, "login failed");
                Err(AuthError::LoginFailed)
            }
        }
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, AuthError>
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
