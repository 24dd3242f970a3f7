//! The Maildir as the inbox sees it: each message is a file in `new/`
//! (unread) or `cur/` (read, with the `:2,S` flag), named by a unique ID
//! the sink chose. The ID is the file name up to the flags, so it survives
//! marking read and rebuilding the index.

use std::io;
use std::path::Path;

/// Where a message file is: its ID and whether it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    /// The file's path under the Maildir root (`new/ID`, `cur/ID:2,S`).
    pub file: String,
    pub read: bool,
    /// Microseconds since the epoch at which the sink received it.
    pub received: i64,
}

/// Every message file in `new/` and `cur/`, oldest first.
pub fn scan(root: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (sub, read) in [("new", false), ("cur", true)] {
        for item in std::fs::read_dir(root.join(sub))? {
            let item = item?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !item.file_type()?.is_file() {
                continue;
            }
            let (id, flags) = split_flags(&name);
            let read = read && flags.contains('S');
            let received = match received_from_name(id) {
                Some(micros) => micros,
                None => modified_micros(&item.path()),
            };
            entries.push(Entry {
                id: id.to_owned(),
                file: format!("{sub}/{name}"),
                read,
                received,
            });
        }
    }
    entries.sort_by(|a, b| a.received.cmp(&b.received).then(a.id.cmp(&b.id)));
    Ok(entries)
}

/// `ID:2,FLAGS` → (`ID`, `FLAGS`).
fn split_flags(name: &str) -> (&str, &str) {
    match name.split_once(":2,") {
        Some((id, flags)) => (id, flags),
        None => (name, ""),
    }
}

/// The sink names files `SECONDS.M<MICROS>P<pid>Q<n>.host`.
pub fn received_from_name(id: &str) -> Option<i64> {
    let (seconds, rest) = id.split_once('.')?;
    let seconds: i64 = seconds.parse().ok()?;
    let micros = rest
        .strip_prefix('M')
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<i64>().ok())
        .unwrap_or(0);
    Some(seconds * 1_000_000 + micros)
}

fn modified_micros(path: &Path) -> i64 {
    path.metadata()
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_micros() as i64)
}

/// An ID that names a file and nothing else: no path separators, no
/// flags separator, not hidden.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b'\\')
}

/// Where message `id` goes when marked read or unread.
pub fn file_for(id: &str, read: bool) -> String {
    if read {
        format!("cur/{id}:2,S")
    } else {
        format!("new/{id}")
    }
}

/// Moves message `id` from `file` to where its new read state puts it;
/// returns the new file.
pub fn set_read(root: &Path, file: &str, id: &str, read: bool) -> io::Result<String> {
    let to = file_for(id, read);
    if to != file {
        std::fs::rename(root.join(file), root.join(&to))?;
    }
    Ok(to)
}

/// Removes a message file; one already gone is no error.
pub fn remove(root: &Path, file: &str) -> io::Result<()> {
    match std::fs::remove_file(root.join(file)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            received_from_name("1733300000.M42P7Q0.localhost"),
            Some(1_733_300_000_000_042)
        );
        assert_eq!(received_from_name("junk"), None);
        assert_eq!(split_flags("a.b:2,S"), ("a.b", "S"));
        assert_eq!(split_flags("a.b"), ("a.b", ""));
    }

    #[test]
    fn ids() {
        assert!(valid_id("1733300000.M42P7Q0.localhost"));
        for bad in ["", "..", ".hidden", "a/b", "a:2,S", "a b", "a\\b", "a\0"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn read_state_moves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("new/1.M1P1Q0.h"), b"x").unwrap();
        let file = set_read(dir.path(), "new/1.M1P1Q0.h", "1.M1P1Q0.h", true).unwrap();
        assert_eq!(file, "cur/1.M1P1Q0.h:2,S");
        assert!(dir.path().join(&file).exists());
        let entries = scan(dir.path()).unwrap();
        assert_eq!(
            entries,
            [Entry {
                id: "1.M1P1Q0.h".into(),
                file: file.clone(),
                read: true,
                received: 1_000_001
            }]
        );
        let file = set_read(dir.path(), &file, "1.M1P1Q0.h", false).unwrap();
        assert!(dir.path().join("new/1.M1P1Q0.h").exists());
        remove(dir.path(), &file).unwrap();
        remove(dir.path(), &file).unwrap();
        assert!(scan(dir.path()).unwrap().is_empty());
    }
}
