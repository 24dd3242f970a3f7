//! The SQLite index beside the Maildir: one row per message file, with
//! what the list shows and what search reads. The Maildir stays the truth;
//! the index can always be thrown away and rebuilt from it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::parsed::{Digest, Mailbox};
use crate::search::Search;

/// Bumped when the schema changes; an index of another version is rebuilt.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE message (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    received INTEGER NOT NULL,
    read INTEGER NOT NULL,
    size INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    from_json TEXT NOT NULL,
    to_json TEXT NOT NULL,
    cc_json TEXT NOT NULL,
    from_text TEXT NOT NULL,
    to_text TEXT NOT NULL,
    subject TEXT NOT NULL,
    attachments INTEGER NOT NULL,
    snippet TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX message_received ON message (received, seq);
";

/// A message as the list shows it (Mailpit's `/api/v1/messages` names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    pub read: bool,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    /// When the sink received it, RFC 3339.
    pub created: String,
    pub size: u64,
    pub attachments: u32,
    pub snippet: String,
    #[serde(skip)]
    pub file: String,
    #[serde(skip)]
    pub received: i64,
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub file: String,
    pub received: i64,
    pub read: bool,
    pub size: u64,
    /// RCPT TO addresses, searchable as `to:` (they include any Bcc).
    pub envelope_to: Vec<String>,
    pub digest: Digest,
}

#[derive(Debug)]
pub struct Index {
    connection: Connection,
}

const COLUMNS: &str = "id, message_id, read, from_json, to_json, cc_json, subject, received, size, attachments, snippet, file";

impl Index {
    /// Opens the index at `path`, or makes a new one if it is missing,
    /// damaged or of another version. Returns whether it is new (and so
    /// must be filled from the Maildir).
    pub fn open(path: &Path) -> rusqlite::Result<(Self, bool)> {
        match Self::open_existing(path) {
            Ok(Some(index)) => return Ok((index, false)),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, path = %path.display(), "index unreadable; rebuilding it from the maildir")
            }
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        let connection = Connection::open(path)?;
        configure(&connection)?;
        connection.execute_batch(SCHEMA)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok((Self { connection }, true))
    }

    /// The index at `path` if it is there, whole and of this version.
    fn open_existing(path: &Path) -> rusqlite::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&connection)?;
        let check: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if check != "ok" || version != SCHEMA_VERSION {
            tracing::warn!(%check, version, "index damaged or of another version; rebuilding it");
            return Ok(None);
        }
        Ok(Some(Self { connection }))
    }

    /// Adds messages in one transaction; a message already indexed is
    /// left as it is.
    pub fn insert(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let tx = self.connection.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO message (id, file, received, read, size, message_id, from_json, to_json, cc_json, from_text, to_text, subject, attachments, snippet, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for record in records {
                let digest = &record.digest;
                let mut to_text = digest
                    .to
                    .iter()
                    .chain(&digest.cc)
                    .map(described)
                    .collect::<Vec<_>>();
                to_text.extend(record.envelope_to.iter().cloned());
                insert.execute(params![
                    record.id,
                    record.file,
                    record.received,
                    record.read,
                    record.size as i64,
                    digest.message_id,
                    json(&digest.from),
                    json(&digest.to),
                    json(&digest.cc),
                    digest.from.as_ref().map(described).unwrap_or_default(),
                    to_text.join(", "),
                    digest.subject,
                    digest.attachments,
                    digest.snippet,
                    digest.body,
                ])?;
            }
        }
        tx.commit()
    }

    /// Every indexed message: (ID, file).
    pub fn files(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut statement = self.connection.prepare("SELECT id, file FROM message")?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    }

    /// One page of the messages `search` matches, newest first, and how
    /// many match in all.
    pub fn list(
        &self,
        search: &Search,
        start: u64,
        limit: u64,
    ) -> rusqlite::Result<(u64, Vec<Summary>)> {
        let (condition, mut values) = search.to_sql();
        let total: i64 = self.connection.query_row(
            &format!("SELECT COUNT(*) FROM message WHERE {condition}"),
            params_from_iter(values.iter()),
            |row| row.get(0),
        )?;
        values.push((limit.min(i64::MAX as u64) as i64).into());
        values.push((start.min(i64::MAX as u64) as i64).into());
        let n = values.len();
        let mut statement = self.connection.prepare(&format!(
            "SELECT {COLUMNS} FROM message WHERE {condition} ORDER BY received DESC, seq DESC LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?;
        let page = statement
            .query_map(params_from_iter(values.iter()), summary)?
            .collect::<rusqlite::Result<_>>()?;
        Ok((total as u64, page))
    }

    /// (all messages, unread messages)
    pub fn counts(&self) -> rusqlite::Result<(u64, u64)> {
        self.connection.query_row(
            "SELECT COUNT(*), COALESCE(SUM(read = 0), 0) FROM message",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
        )
    }

    pub fn get(&self, id: &str) -> rusqlite::Result<Option<Summary>> {
        // Cached: the indexer asks for each message it has just added.
        self.connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM message WHERE id = ?1"))?
            .query_row([id], summary)
            .optional()
    }

    pub fn set_read(&self, id: &str, file: &str, read: bool) -> rusqlite::Result<()> {
        self.connection.execute(
            "UPDATE message SET read = ?2, file = ?3 WHERE id = ?1",
            params![id, read, file],
        )?;
        Ok(())
    }

    pub fn delete(&mut self, ids: &[String]) -> rusqlite::Result<()> {
        let tx = self.connection.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM message WHERE id = ?1")?;
            for id in ids {
                delete.execute([id])?;
            }
        }
        tx.commit()
    }

    /// The `count` oldest messages: (ID, file).
    pub fn oldest(&self, count: u64) -> rusqlite::Result<Vec<(String, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT id, file FROM message ORDER BY received, seq LIMIT ?1")?;
        statement
            .query_map([count.min(i64::MAX as u64) as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect()
    }
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    // WAL and NORMAL: a commit is not an fsync; a crash can lose the last
    // rows, which the next start re-adds from the Maildir.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    let received: i64 = row.get(7)?;
    Ok(Summary {
        id: row.get(0)?,
        message_id: row.get(1)?,
        read: row.get(2)?,
        from: from_json(&row.get::<_, String>(3)?),
        to: from_json(&row.get::<_, String>(4)?),
        cc: from_json(&row.get::<_, String>(5)?),
        subject: row.get(6)?,
        created: rfc3339(received),
        size: row.get::<_, i64>(8)? as u64,
        attachments: row.get(9)?,
        snippet: row.get(10)?,
        file: row.get(11)?,
        received,
    })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("mailboxes serialize")
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

/// `Name <address>`, as search matches it.
fn described(mailbox: &Mailbox) -> String {
    if mailbox.name.is_empty() {
        mailbox.address.clone()
    } else {
        format!("{} <{}>", mailbox.name, mailbox.address)
    }
}

pub fn rfc3339(micros: i64) -> String {
    mail_parser::DateTime::from_timestamp(micros.div_euclid(1_000_000)).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, received: i64, subject: &str) -> Record {
        Record {
            id: id.into(),
            file: format!("new/{id}"),
            received,
            read: false,
            size: 10,
            envelope_to: vec!["hidden@example.org".into()],
            digest: Digest {
                subject: subject.into(),
                from: Some(Mailbox {
                    name: "Ann".into(),
                    address: "ann@example.org".into(),
                }),
                body: format!("body of {subject}"),
                ..Digest::default()
            },
        }
    }

    #[test]
    fn lists_newest_first_and_searches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let (mut index, new) = Index::open(&path).unwrap();
        assert!(new);
        index
            .insert(&[
                record("a", 1, "first"),
                record("b", 3, "third"),
                record("c", 2, "second"),
            ])
            .unwrap();
        let (total, page) = index.list(&Search::default(), 0, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            page.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        let (total, page) = index
            .list(&Search::parse("second").unwrap(), 0, 10)
            .unwrap();
        assert_eq!((total, page[0].id.as_str()), (1, "c"));
        let (total, _) = index
            .list(&Search::parse("to:hidden").unwrap(), 0, 10)
            .unwrap();
        assert_eq!(total, 3);
        index.set_read("a", "cur/a:2,S", true).unwrap();
        assert_eq!(index.counts().unwrap(), (3, 2));
        let (total, _) = index
            .list(&Search::parse("is:unread").unwrap(), 0, 10)
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(index.oldest(1).unwrap(), [("a".into(), "cur/a:2,S".into())]);
        index.delete(&["a".into()]).unwrap();
        assert_eq!(index.counts().unwrap(), (2, 2));
        drop(index);

        let (index, new) = Index::open(&path).unwrap();
        assert!(!new);
        assert_eq!(index.counts().unwrap(), (2, 2));
    }

    #[test]
    fn a_damaged_index_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        std::fs::write(&path, b"this is not a database, not even close to one").unwrap();
        let (index, new) = Index::open(&path).unwrap();
        assert!(new);
        assert_eq!(index.counts().unwrap(), (0, 0));
    }
}
