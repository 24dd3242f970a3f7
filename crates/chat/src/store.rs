//! The account store: SQLite tables of accounts (user names, Argon2id
//! password hashes as PHC strings each with its own salt, whether the
//! account is disabled or a server admin) and of room sanctions (bans and
//! mutes). The plain password is never stored. The schema is versioned
//! (`PRAGMA user_version`) and migrated forward on open. Everything here
//! blocks: the server calls it from other threads.

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
    #[error(
        "the account database {path} has schema version {found}; this netkit knows up to {SCHEMA_VERSION}: use a newer netkit"
    )]
    Newer { path: PathBuf, found: i64 },
}

/// The schema version this code writes: 1 is accounts alone, 2 adds the
/// disabled and admin flags and the sanctions table.
pub const SCHEMA_VERSION: i64 = 2;

/// Each migration takes the schema from its index to the next version.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    "CREATE TABLE IF NOT EXISTS accounts (
         name    TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
         hash    TEXT    NOT NULL,
         created INTEGER NOT NULL,
         updated INTEGER NOT NULL
     ) STRICT;",
    "ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE sanctions (
         kind      TEXT    NOT NULL CHECK (kind IN ('ban', 'mute')),
         room_key  TEXT    NOT NULL,
         room      TEXT    NOT NULL,
         account   TEXT    NOT NULL COLLATE NOCASE,
         moderator TEXT    NOT NULL,
         reason    TEXT,
         time      INTEGER NOT NULL,
         PRIMARY KEY (kind, room_key, account)
     ) STRICT;",
];

/// What a sanction does to an account in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SanctionKind {
    /// May not join the room.
    Ban,
    /// May not say anything in it.
    Mute,
}

impl SanctionKind {
    fn as_str(self) -> &'static str {
        match self {
            SanctionKind::Ban => "ban",
            SanctionKind::Mute => "mute",
        }
    }
}

/// A ban or mute of an account in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    pub kind: SanctionKind,
    /// The room as shown; looked up regardless of case.
    pub room: String,
    /// The account as stored.
    pub account: String,
    /// Who imposed it.
    pub moderator: String,
    pub reason: Option<String>,
    /// Unix seconds.
    pub time: u64,
}

/// Whether an account may log in and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub disabled: bool,
    pub admin: bool,
}

/// One account as `netkit chat users` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last password change.
    pub updated: u64,
    pub standing: Standing,
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
        match Self::init(conn) {
            Ok(accounts) => Ok(accounts),
            Err(InitError::Newer(found)) => Err(StoreError::Newer {
                path: path.to_owned(),
                found,
            }),
            Err(InitError::Sqlite(source)) => Err(open(source)),
        }
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?).map_err(|err| match err {
            InitError::Sqlite(err) => StoreError::Sqlite(err),
            InitError::Newer(found) => StoreError::Newer {
                path: ":memory:".into(),
                found,
            },
        })
    }

    fn init(mut conn: Connection) -> Result<Self, InitError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets `netkit chat users` read while a server writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // One migration at a time, each in a transaction with its version,
        // so a crash leaves the schema at one version or the next.
        loop {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(InitError::Newer(version));
            }
            let Some(migration) = MIGRATIONS.get(version as usize) else {
                break;
            };
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
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
        let mut query = self.conn.prepare(
            "SELECT name, created, updated, disabled, admin FROM accounts
             ORDER BY name COLLATE NOCASE",
        )?;
        let rows = query.query_map([], |row| {
            Ok(Account {
                name: row.get(0)?,
                created: row.get(1)?,
                updated: row.get(2)?,
                standing: Standing {
                    disabled: row.get(3)?,
                    admin: row.get(4)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored spelling and standing of `name` (any case), if it exists.
    pub fn standing(&self, name: &str) -> Result<Option<(String, Standing)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, disabled, admin FROM accounts WHERE name = ?1",
                [name],
                |row| {
                    let standing = Standing {
                        disabled: row.get(1)?,
                        admin: row.get(2)?,
                    };
                    Ok((row.get(0)?, standing))
                },
            )
            .optional()?)
    }

    /// Disables or enables an account; false when there is no such account.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        Ok(changed > 0)
    }

    /// Makes an account a server admin or not; false when there is no such
    /// account.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET admin = ?2 WHERE name = ?1",
            params![name, admin],
        )?;
        Ok(changed > 0)
    }

    /// Deletes an account with its bans and mutes; false when there is no
    /// such account.
    pub fn delete(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM sanctions WHERE account = ?1", [name])?;
        let deleted = tx.execute("DELETE FROM accounts WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    /// Records a sanction, replacing one of the same kind for the same
    /// account and room.
    pub fn add_sanction(&self, sanction: &Sanction) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO sanctions
                 (kind, room_key, room, account, moderator, reason, time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                sanction.kind.as_str(),
                sanction.room.to_ascii_lowercase(),
                sanction.room,
                sanction.account,
                sanction.moderator,
                sanction.reason,
                sanction.time
            ],
        )?;
        Ok(())
    }

    /// Lifts a sanction; false when there was none.
    pub fn remove_sanction(
        &self,
        kind: SanctionKind,
        room: &str,
        account: &str,
    ) -> Result<bool, StoreError> {
        let removed = self.conn.execute(
            "DELETE FROM sanctions WHERE kind = ?1 AND room_key = ?2 AND account = ?3",
            params![kind.as_str(), room.to_ascii_lowercase(), account],
        )?;
        Ok(removed > 0)
    }

    /// Sanctions of one kind, of one room or all, by room then account.
    pub fn sanctions(
        &self,
        kind: SanctionKind,
        room: Option<&str>,
    ) -> Result<Vec<Sanction>, StoreError> {
        let mut query = self.conn.prepare(
            "SELECT room, account, moderator, reason, time FROM sanctions
             WHERE kind = ?1 AND (?2 IS NULL OR room_key = ?2)
             ORDER BY room_key, account COLLATE NOCASE",
        )?;
        let room = room.map(str::to_ascii_lowercase);
        let rows = query.query_map(params![kind.as_str(), room], |row| {
            Ok(Sanction {
                kind,
                room: row.get(0)?,
                account: row.get(1)?,
                moderator: row.get(2)?,
                reason: row.get(3)?,
                time: row.get(4)?,
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

/// Why the schema could not be brought up to date.
enum InitError {
    Sqlite(rusqlite::Error),
    Newer(i64),
}

impl From<rusqlite::Error> for InitError {
    fn from(err: rusqlite::Error) -> Self {
        InitError::Sqlite(err)
    }
}

pub(crate) fn unix_now() -> u64 {
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
    fn standing_and_sanctions() {
        let mut accounts = Accounts::open_in_memory().unwrap();
        accounts.insert(&name("Bob"), "hash").unwrap();
        assert_eq!(
            accounts.standing("bob").unwrap(),
            Some(("Bob".into(), Standing::default()))
        );
        assert!(accounts.set_disabled("BOB", true).unwrap());
        assert!(accounts.set_admin("bob", true).unwrap());
        assert!(!accounts.set_admin("nobody", true).unwrap());
        let (_, standing) = accounts.standing("bob").unwrap().unwrap();
        assert!(standing.disabled && standing.admin);
        let ban = Sanction {
            kind: SanctionKind::Ban,
            room: "#Rust".into(),
            account: "Bob".into(),
            moderator: "alice".into(),
            reason: Some("spam".into()),
            time: 7,
        };
        accounts.add_sanction(&ban).unwrap();
        accounts.add_sanction(&ban).unwrap();
        accounts
            .add_sanction(&Sanction {
                kind: SanctionKind::Mute,
                ..ban.clone()
            })
            .unwrap();
        let bans = accounts.sanctions(SanctionKind::Ban, None).unwrap();
        assert_eq!(bans, std::slice::from_ref(&ban));
        assert_eq!(
            accounts
                .sanctions(SanctionKind::Ban, Some("#RUST"))
                .unwrap()
                .len(),
            1
        );
        assert!(
            accounts
                .sanctions(SanctionKind::Ban, Some("#go"))
                .unwrap()
                .is_empty()
        );
        assert!(
            accounts
                .remove_sanction(SanctionKind::Ban, "#rust", "BOB")
                .unwrap()
        );
        assert!(
            !accounts
                .remove_sanction(SanctionKind::Ban, "#rust", "bob")
                .unwrap()
        );
        // Deleting the account takes its mutes with it.
        assert!(accounts.delete("bob").unwrap());
        assert!(!accounts.delete("bob").unwrap());
        assert!(
            accounts
                .sanctions(SanctionKind::Mute, None)
                .unwrap()
                .is_empty()
        );
    }

    /// A database written before the schema was versioned (accounts only,
    /// `user_version` 0) is migrated, its accounts kept; one from a newer
    /// netkit is refused, not changed.
    #[test]
    fn old_databases_are_migrated_and_newer_ones_refused() {
        let dir = std::env::temp_dir().join(format!("netkit-chat-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute("INSERT INTO accounts VALUES ('carol', 'hash', 1, 2)", [])
                .unwrap();
        }
        let accounts = Accounts::open(&path).unwrap();
        assert_eq!(accounts.list().unwrap()[0].name, "carol");
        assert!(accounts.set_disabled("carol", true).unwrap());
        drop(accounts);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Accounts::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Newer { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
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
