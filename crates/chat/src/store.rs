//! The account store: one SQLite table of user names and Argon2id password
//! hashes (PHC strings, each with its own salt). The plain password is never
//! stored. Everything here blocks: the server calls it from other threads.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::name::Username;
use crate::password::{HashError, Hasher};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the account database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the account database {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("account database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the name `{0}` is taken")]
    NameTaken(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("cannot start the history thread: {0}")]
    Thread(String),
}

/// One account as `netkit chat users` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last password change.
    pub updated: u64,
}

/// A connection to the account database.
#[derive(Debug)]
pub struct Accounts {
    conn: Connection,
}

impl Accounts {
    /// Opens (creating if needed, readable by its owner only) the database
    /// at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::Create {
                    path: path.to_owned(),
                    source,
                })?;
        }
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        Self::init(conn).map_err(open)
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self::init(Connection::open_in_memory()?)?)
    }

    fn init(conn: Connection) -> Result<Self, rusqlite::Error> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets `netkit chat users` read while a server writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS accounts (
                 name    TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
                 hash    TEXT    NOT NULL,
                 created INTEGER NOT NULL,
                 updated INTEGER NOT NULL
             ) STRICT;",
        )?;
        Ok(Self { conn })
    }

    /// The stored spelling and PHC hash of `name` (any case), if it exists.
    pub fn lookup(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, hash FROM accounts WHERE name = ?1",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    /// Adds an account with an already computed hash.
    pub fn insert(&self, name: &Username, hash: &str) -> Result<(), StoreError> {
        let now = unix_now();
        match self.conn.execute(
            "INSERT INTO accounts (name, hash, created, updated) VALUES (?1, ?2, ?3, ?3)",
            params![name.as_str(), hash, now],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(err, _))
                if err.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::NameTaken(name.to_string()))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Replaces the hash of `name`; false when there is no such account.
    pub fn set_hash(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET hash = ?2, updated = ?3 WHERE name = ?1",
            params![name, hash, unix_now()],
        )?;
        Ok(changed > 0)
    }

    pub fn list(&self) -> Result<Vec<Account>, StoreError> {
        let mut query = self
            .conn
            .prepare("SELECT name, created, updated FROM accounts ORDER BY name COLLATE NOCASE")?;
        let rows = query.query_map([], |row| {
            Ok(Account {
                name: row.get(0)?,
                created: row.get(1)?,
                updated: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Hashes `password` and creates the account (slow: one Argon2 run).
    pub fn register(&self, name: &Username, password: &str) -> Result<(), StoreError> {
        if self.lookup(name.as_str())?.is_some() {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        self.insert(name, &Hasher::new().hash(password)?)
    }

    /// The account's spelling if `password` is right; `None` for a wrong
    /// password and for a missing account alike, after the same work.
    pub fn verify(&self, name: &str, password: &str) -> Result<Option<String>, StoreError> {
        let found = self.lookup(name)?;
        Ok(Hasher::new().check(found, password))
    }

    /// Sets a new password; false when there is no such account.
    pub fn set_password(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        if self.lookup(name)?.is_none() {
            return Ok(false);
        }
        self.set_hash(name, &Hasher::new().hash(password)?)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Username {
        Username::parse(text).unwrap()
    }

    #[test]
    fn register_verify_and_reset() {
        let accounts = Accounts::open_in_memory().unwrap();
        accounts.register(&name("Alice"), "correct horse").unwrap();
        assert!(matches!(
            accounts.register(&name("aLiCe"), "another one"),
            Err(StoreError::NameTaken(_))
        ));
        assert_eq!(
            accounts
                .verify("ALICE", "correct horse")
                .unwrap()
                .as_deref(),
            Some("Alice")
        );
        assert_eq!(accounts.verify("alice", "wrong horse").unwrap(), None);
        assert_eq!(accounts.verify("nobody", "correct horse").unwrap(), None);

        let (_, hash) = accounts.lookup("alice").unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));

        assert!(accounts.set_password("alice", "battery staple").unwrap());
        assert!(!accounts.set_password("nobody", "battery staple").unwrap());
        assert_eq!(accounts.verify("alice", "correct horse").unwrap(), None);
        assert!(
            accounts
                .verify("alice", "battery staple")
                .unwrap()
                .is_some()
        );

        let listed = accounts.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "Alice");
    }

    #[test]
    fn a_file_database_persists_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("netkit-chat-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accounts.sqlite3");
        {
            let accounts = Accounts::open(&path).unwrap();
            accounts.register(&name("bob"), "bob's password").unwrap();
        }
        let accounts = Accounts::open(&path).unwrap();
        assert!(accounts.verify("bob", "bob's password").unwrap().is_some());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        drop(accounts);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
