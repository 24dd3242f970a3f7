//! `--db`: where the chat keeps accounts, bans and history, an SQLite file
//! (the default, created if missing) or a PostgreSQL database
//! (`postgres://USER@HOST:PORT/DBNAME`, its password from PGPASSWORD or a
//! passfile, never from the command line).

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use chat::postgres::Postgres;
use chat::{AccountStore, Accounts};

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(PathBuf),
    /// The URL as given; checked (no password, loopback only) on connecting.
    Postgres(String),
}

impl FromStr for Db {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Infallible> {
        Ok(
            if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                Db::Postgres(text.to_owned())
            } else {
                Db::Sqlite(PathBuf::from(text))
            },
        )
    }
}

impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Db::Sqlite(path) => write!(f, "{}", path.display()),
            // Whatever the URL holds, only its scheme is repeated: a
            // password in it is refused, never shown.
            Db::Postgres(_) => f.write_str("the PostgreSQL database"),
        }
    }
}

/// The account store of an existing database, for administration, which
/// never creates an SQLite file: a typo in --db should fail. Blocks: call
/// it off the runtime's worker threads.
pub(super) fn open_existing(db: &Db) -> anyhow::Result<Box<dyn AccountStore>> {
    match db {
        Db::Sqlite(path) => {
            if !path.exists() {
                bail!(
                    "{} does not exist (the server creates it: netkit chat serve --db FILE)",
                    path.display()
                );
            }
            let accounts =
                Accounts::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Box::new(accounts))
        }
        Db::Postgres(url) => {
            let runtime = tokio::runtime::Handle::current();
            Ok(Box::new(runtime.block_on(Postgres::connect(url))?))
        }
    }
}
