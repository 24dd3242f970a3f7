//! The account store in SQLite: the accounts database file (created
//! readable by its owner only), its schema versioned with `PRAGMA
//! user_version` and migrated forward on open. Everything here blocks.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Account, AccountStore, Sanction, SanctionKind, Standing, StoreError, StoredRoom, unix_now,
};
use crate::name::Username;

/// The schema version this code writes: 1 is accounts alone, 2 adds the
/// disabled and admin flags and the sanctions table, 3 the rooms.
pub const SCHEMA_VERSION: i64 = 3;

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
    "CREATE TABLE rooms (
         room_key TEXT    NOT NULL PRIMARY KEY,
         name     TEXT    NOT NULL,
         topic    TEXT    NOT NULL,
         created  INTEGER NOT NULL,
         used     INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE room_operators (
         room_key TEXT NOT NULL,
         account  TEXT NOT NULL COLLATE NOCASE,
         PRIMARY KEY (room_key, account)
     ) STRICT;",
];

/// A connection to the account database.
#[derive(Debug)]
pub struct Accounts {
    /// One connection, shared by the server's threads one call at a time.
    conn: Mutex<Connection>,
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
                db: path.display().to_string(),
                found,
                known: SCHEMA_VERSION,
            }),
            Err(InitError::Sqlite(source)) => Err(open(source)),
        }
    }

    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?).map_err(|err| match err {
            InitError::Sqlite(err) => StoreError::Sqlite(err),
            InitError::Newer(found) => StoreError::Newer {
                db: ":memory:".into(),
                found,
                known: SCHEMA_VERSION,
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
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AccountStore for Accounts {
    fn lookup(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, hash FROM accounts WHERE name = ?1",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    fn insert(&self, name: &Username, hash: &str) -> Result<(), StoreError> {
        let now = unix_now();
        match self.conn().execute(
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

    fn set_hash(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE accounts SET hash = ?2, updated = ?3 WHERE name = ?1",
            params![name, hash, unix_now()],
        )?;
        Ok(changed > 0)
    }

    fn list(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare(
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

    fn standing(&self, name: &str) -> Result<Option<(String, Standing)>, StoreError> {
        Ok(self
            .conn()
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

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE accounts SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        Ok(changed > 0)
    }

    fn set_admin(&self, name: &str, admin: bool) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE accounts SET admin = ?2 WHERE name = ?1",
            params![name, admin],
        )?;
        Ok(changed > 0)
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sanctions WHERE account = ?1", [name])?;
        tx.execute("DELETE FROM room_operators WHERE account = ?1", [name])?;
        let deleted = tx.execute("DELETE FROM accounts WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    fn add_sanction(&self, sanction: &Sanction) -> Result<(), StoreError> {
        self.conn().execute(
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

    fn remove_sanction(
        &self,
        kind: SanctionKind,
        room: &str,
        account: &str,
    ) -> Result<bool, StoreError> {
        let removed = self.conn().execute(
            "DELETE FROM sanctions WHERE kind = ?1 AND room_key = ?2 AND account = ?3",
            params![kind.as_str(), room.to_ascii_lowercase(), account],
        )?;
        Ok(removed > 0)
    }

    fn sanctions(
        &self,
        kind: SanctionKind,
        room: Option<&str>,
    ) -> Result<Vec<Sanction>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare(
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

    fn save_room(&self, room: &StoredRoom) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let key = room.name.to_ascii_lowercase();
        tx.execute(
            "INSERT INTO rooms (room_key, name, topic, created, used)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (room_key) DO UPDATE SET
                 name = excluded.name, topic = excluded.topic, used = excluded.used",
            params![key, room.name, room.topic, room.created, room.used],
        )?;
        tx.execute("DELETE FROM room_operators WHERE room_key = ?1", [&key])?;
        for operator in &room.operators {
            tx.execute(
                "INSERT OR IGNORE INTO room_operators (room_key, account) VALUES (?1, ?2)",
                params![key, operator],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn forget_room(&self, room: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let key = room.to_ascii_lowercase();
        tx.execute("DELETE FROM room_operators WHERE room_key = ?1", [&key])?;
        let forgotten = tx.execute("DELETE FROM rooms WHERE room_key = ?1", [&key])?;
        tx.commit()?;
        Ok(forgotten > 0)
    }

    fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare(
            "SELECT rooms.room_key, name, topic, created, used, lower(account)
             FROM rooms LEFT JOIN room_operators USING (room_key)
             ORDER BY used DESC, rooms.room_key, account COLLATE NOCASE",
        )?;
        let mut rows = query.query([])?;
        let mut rooms: Vec<(String, StoredRoom)> = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if rooms.last().is_none_or(|(last, _)| *last != key) {
                let room = StoredRoom {
                    name: row.get(1)?,
                    topic: row.get(2)?,
                    operators: Vec::new(),
                    created: row.get(3)?,
                    used: row.get(4)?,
                };
                rooms.push((key, room));
            }
            if let (Some((_, room)), Some(operator)) = (rooms.last_mut(), row.get(5)?) {
                room.operators.push(operator);
            }
        }
        Ok(rooms.into_iter().map(|(_, room)| room).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Username {
        Username::parse(text).unwrap()
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
