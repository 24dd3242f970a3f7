//! The chat's store in PostgreSQL: accounts, sanctions, rooms and room
//! history in one database, for a server whose state should outlive its
//! machine. A pool of connections (deadpool) reconnects by itself: while
//! the database is down, calls fail with [`StoreError::Unavailable`], and
//! work again once it is back. The stores' traits block, so each call runs
//! its queries on the runtime it was connected from and waits for them; it
//! must be made off that runtime's worker threads (the blocking pool, the
//! hashing, history and rooms threads).

mod accounts;
mod history;
mod passfile;
mod schema;
mod target;
mod tls;

pub use schema::SCHEMA_VERSION;
pub use target::PASSWORD_ENV;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::store::StoreError;

/// Connections kept open: a login takes one for two short queries, the
/// history thread one at a time.
const POOL_SIZE: usize = 8;
/// Connections opened at start-up.
const READY: usize = 3;
/// How long connecting, or waiting for a free connection, may take before
/// the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL database holding the chat's accounts, rooms and history.
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: Pool,
    runtime: Handle,
    /// `postgres://USER@HOST:PORT/DB`, for messages.
    shown: String,
}

impl Postgres {
    /// Connects to `url` (`postgres://USER@HOST[:PORT]/DB`, loopback or a
    /// Unix socket only, no password in it) and brings the schema up to
    /// date. The password comes from [`PASSWORD_ENV`] or a passfile. Must
    /// be called within a tokio runtime, which then runs every query.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let target = target::Target::parse(url)?;
        let manager_config = ManagerConfig {
            // A connection is checked before each use, so the first call
            // after the server restarted does not fail on a connection it
            // closed.
            recycling_method: RecyclingMethod::Verified,
        };
        let manager = match target.tls {
            None => Manager::from_config(target.config, NoTls, manager_config),
            Some(client) => {
                Manager::from_config(target.config, tls::Rustls(client), manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|err| StoreError::Target(format!("cannot set up {}: {err}", target.shown)))?;
        let postgres = Self {
            pool,
            runtime: Handle::current(),
            shown: target.shown,
        };
        let mut client = postgres.client().await?;
        schema::migrate(&mut client, &postgres.shown).await?;
        // Connections are opened ahead, one each for the history thread,
        // the rooms thread and a login, so none waits for a connection to
        // be set up (tens of ms) while the others work.
        let more = (1..READY).map(|_| postgres.client());
        let ready = futures_util::future::try_join_all(more).await?;
        drop((client, ready));
        Ok(postgres)
    }

    /// Where this is, as `postgres://USER@HOST:PORT/DB` (never a password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `work` on the runtime and waits for it.
    fn block<T>(&self, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        self.runtime.block_on(work)
    }

    /// Runs one statement that changes rows; whether it changed any.
    fn change(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<bool, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let changed = client.execute(sql, params).await.map_err(failed)?;
            Ok(changed > 0)
        })
    }

    fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            client.query(sql, params).await.map_err(failed)
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|err| {
            StoreError::Unavailable(format!("cannot connect to {}: {}", self.shown, chain(&err)))
        })
    }
}

/// Sorts a query's failure: lost connections, a server shutting down and
/// the like are [`StoreError::Unavailable`] (worth retrying later); the
/// rest is an error of the database.
fn failed(err: tokio_postgres::Error) -> StoreError {
    let code = err.code().map(SqlState::code).unwrap_or_default();
    // Class 08 is a connection exception, 57 operator intervention (a
    // shutdown, a restart).
    let io = std::error::Error::source(&err).is_some_and(|cause| cause.is::<std::io::Error>());
    let unavailable = err.is_closed() || io || code.starts_with("08") || code.starts_with("57");
    if unavailable {
        StoreError::Unavailable(chain(&err))
    } else {
        StoreError::Postgres(chain(&err))
    }
}

/// An error with its causes, as tokio-postgres's own message is only the
/// kind of failure (`db error`).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Some errors repeat their cause in their own message.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
