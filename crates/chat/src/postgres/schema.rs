//! The PostgreSQL schema, versioned in `netkit_schema` and migrated
//! forward at connection, all of it in one transaction (PostgreSQL's DDL
//! is transactional), under an advisory lock so that servers starting
//! together take turns. A database of a newer netkit is refused, not
//! changed. Names are kept as written with a lower-case `key` to look them
//! up by, as SQLite's `NOCASE` does for ASCII.

use deadpool_postgres::Object;

use super::failed;
use crate::store::StoreError;

/// The schema version this code writes: 1 is accounts, sanctions and
/// history, 2 adds the rooms.
pub const SCHEMA_VERSION: i64 = 2;

/// Each migration takes the schema from its index to the next version.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    "
    CREATE TABLE accounts (
        key      TEXT    NOT NULL PRIMARY KEY,
        name     TEXT    NOT NULL,
        hash     TEXT    NOT NULL,
        created  BIGINT  NOT NULL,
        updated  BIGINT  NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        admin    BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE sanctions (
        kind        TEXT   NOT NULL CHECK (kind IN ('ban', 'mute')),
        room_key    TEXT   NOT NULL,
        room        TEXT   NOT NULL,
        account_key TEXT   NOT NULL,
        account     TEXT   NOT NULL,
        moderator   TEXT   NOT NULL,
        reason      TEXT,
        time        BIGINT NOT NULL,
        PRIMARY KEY (kind, room_key, account_key)
    );
    CREATE TABLE history (
        id       BIGINT NOT NULL PRIMARY KEY,
        room     TEXT   NOT NULL,
        room_key TEXT   NOT NULL,
        sender   TEXT   NOT NULL,
        text     TEXT   NOT NULL,
        time     BIGINT NOT NULL
    );
    CREATE INDEX history_by_room ON history (room_key, id);
    -- The highest id ever stored, so ids are not reused after pruning.
    CREATE TABLE history_ids (last BIGINT NOT NULL);
    INSERT INTO history_ids VALUES (0);
",
    "
    CREATE TABLE rooms (
        key     TEXT   NOT NULL PRIMARY KEY,
        name    TEXT   NOT NULL,
        topic   TEXT   NOT NULL,
        created BIGINT NOT NULL,
        used    BIGINT NOT NULL
    );
    CREATE TABLE room_operators (
        room_key    TEXT NOT NULL REFERENCES rooms (key) ON DELETE CASCADE,
        account_key TEXT NOT NULL,
        PRIMARY KEY (room_key, account_key)
    );
",
];

/// The advisory lock the migration holds (any number, the same for all).
const MIGRATION_LOCK: i64 = 0x6e65_746b_6974;

pub(super) async fn migrate(client: &mut Object, shown: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS netkit_schema (version BIGINT NOT NULL)")
        .await
        .map_err(failed)?;
    let found = tx
        .query_opt("SELECT version FROM netkit_schema", &[])
        .await
        .map_err(failed)?;
    let version: i64 = match found {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO netkit_schema VALUES (0)", &[])
                .await
                .map_err(failed)?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            db: shown.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let done = usize::try_from(version).unwrap_or_default();
    for migration in &MIGRATIONS[done..] {
        tx.batch_execute(migration).await.map_err(failed)?;
    }
    tx.execute("UPDATE netkit_schema SET version = $1", &[&SCHEMA_VERSION])
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)
}
