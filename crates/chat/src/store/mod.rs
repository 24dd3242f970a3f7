//! The account store: accounts (user names, Argon2id password hashes as
//! PHC strings each with its own salt, whether the account is disabled or
//! a server admin), room sanctions (bans and mutes) and named rooms (topic
//! and operators), behind [`AccountStore`], kept in SQLite ([`Accounts`], the default) or in
//! PostgreSQL (the `postgres` module). The plain password is never stored.
//! Every call blocks: the server makes them from other threads.

mod sqlite;

pub use sqlite::{Accounts, SCHEMA_VERSION};

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

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
    #[error("account database error: {0}")]
    Postgres(String),
    /// The database cannot be reached now (down, restarting, or the
    /// connection was lost); the same call may work later.
    #[error("the account database is unavailable: {0}")]
    Unavailable(String),
    /// A `postgres://` target that cannot be used as given.
    #[error("{0}")]
    Target(String),
    #[error("the name `{0}` is taken")]
    NameTaken(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The history thread could not be started, or the start-up reads
    /// off the runtime failed.
    #[error("{0}")]
    Thread(String),
    #[error(
        "the account database {db} has schema version {found}; this netkit knows up to {known}: use a newer netkit"
    )]
    Newer { db: String, found: i64, known: i64 },
}

/// What a sanction does to an account in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SanctionKind {
    /// May not join the room.
    Ban,
    /// May not say anything in it.
    Mute,
}

impl SanctionKind {
    pub(crate) fn as_str(self) -> &'static str {
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

/// A named room as kept between its members: it outlives them, and the
/// server, so its next members find its topic and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room as shown; looked up regardless of case.
    pub name: String,
    pub topic: String,
    /// Account keys (lower case) of its operators.
    pub operators: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last change or departure: the room unused
    /// longest is the first forgotten when the server needs room.
    pub used: u64,
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

/// Where accounts, sanctions and rooms are kept. Names are looked up regardless
/// of (ASCII) case and returned as stored.
pub trait AccountStore: Send + Sync + std::fmt::Debug + 'static {
    /// The stored spelling and PHC hash of `name`, if it exists.
    fn lookup(&self, name: &str) -> Result<Option<(String, String)>, StoreError>;
    /// Adds an account with an already computed hash.
    fn insert(&self, name: &Username, hash: &str) -> Result<(), StoreError>;
    /// Replaces the hash of `name`; false when there is no such account.
    fn set_hash(&self, name: &str, hash: &str) -> Result<bool, StoreError>;
    /// Every account, by name.
    fn list(&self) -> Result<Vec<Account>, StoreError>;
    /// The stored spelling and standing of `name`, if it exists.
    fn standing(&self, name: &str) -> Result<Option<(String, Standing)>, StoreError>;
    /// Disables or enables an account; false when there is no such account.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Makes an account a server admin or not; false when there is no such
    /// account.
    fn set_admin(&self, name: &str, admin: bool) -> Result<bool, StoreError>;
    /// Deletes an account with its bans, mutes and room operator grants;
    /// false when there is no such account.
    fn delete(&self, name: &str) -> Result<bool, StoreError>;
    /// Records a sanction, replacing one of the same kind for the same
    /// account and room.
    fn add_sanction(&self, sanction: &Sanction) -> Result<(), StoreError>;
    /// Lifts a sanction; false when there was none.
    fn remove_sanction(
        &self,
        kind: SanctionKind,
        room: &str,
        account: &str,
    ) -> Result<bool, StoreError>;
    /// Sanctions of one kind, of one room or all, by room then account.
    fn sanctions(
        &self,
        kind: SanctionKind,
        room: Option<&str>,
    ) -> Result<Vec<Sanction>, StoreError>;

    /// Records a room as it is now, replacing what was kept of it (its
    /// `created` time stays the first one recorded).
    fn save_room(&self, room: &StoredRoom) -> Result<(), StoreError>;
    /// Forgets a room; false when none was kept.
    fn forget_room(&self, room: &str) -> Result<bool, StoreError>;
    /// Every kept room, the most recently used first.
    fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError>;

    /// Hashes `password` and creates the account (slow: one Argon2 run).
    fn register(&self, name: &Username, password: &str) -> Result<(), StoreError> {
        if self.lookup(name.as_str())?.is_some() {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        self.insert(name, &Hasher::new().hash(password)?)
    }

    /// The account's spelling if `password` is right; `None` for a wrong
    /// password and for a missing account alike, after the same work.
    fn verify(&self, name: &str, password: &str) -> Result<Option<String>, StoreError> {
        let found = self.lookup(name)?;
        Ok(Hasher::new().check(found, password))
    }

    /// Sets a new password; false when there is no such account.
    fn set_password(&self, name: &str, password: &str) -> Result<bool, StoreError> {
        if self.lookup(name)?.is_none() {
            return Ok(false);
        }
        self.set_hash(name, &Hasher::new().hash(password)?)
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
