//! libpq's password file: `PGPASSFILE`, or `~/.pgpass`, one
//! `host:port:database:user:password` per line, `*` matching any value,
//! `\` escaping `:` and `\`, `#` starting a comment; the first matching
//! line wins. Like libpq, a file that others may read is not used; unlike
//! libpq, which warns and carries on without it, that is an error here, so
//! the fix is asked for rather than a login failing later.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// The password for this connection from the passfile, if there is one
/// and a line matches.
pub(super) fn find(
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(path) => PathBuf::from(path),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".pgpass"),
            None => return Ok(None),
        },
    };
    lookup(&path, &[host, &port.to_string(), db, user])
}

fn lookup(path: &Path, wanted: &[&str; 4]) -> Result<Option<String>, StoreError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::Target(format!(
            "the password file {} may be read by others (mode {:o}): chmod 0600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|err| {
        StoreError::Target(format!(
            "cannot read the password file {}: {err}",
            path.display()
        ))
    })?;
    Ok(text.lines().find_map(|line| matching(line, wanted)))
}

/// The password of `line` if its first four fields match `wanted`.
fn matching(line: &str, wanted: &[&str; 4]) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let fields = split(line);
    let [host, port, db, user, password] = fields.as_slice() else {
        return None;
    };
    let matches = [host, port, db, user]
        .iter()
        .zip(wanted)
        .all(|(field, wanted)| field.as_str() == "*" || field.as_str() == *wanted);
    matches.then(|| password.clone())
}

/// The fields of a line, unescaped. A fifth field keeps any further `:`,
/// as libpq reads the password as the rest of the line.
fn split(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [&str; 4] = ["127.0.0.1", "5433", "chat", "netkit"];

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        assert_eq!(
            matching("127.0.0.1:5433:chat:netkit:pw", &WANTED).as_deref(),
            Some("pw")
        );
        assert_eq!(
            matching("*:*:*:netkit:a\\:b\\\\c", &WANTED).as_deref(),
            Some("a:b\\c")
        );
        assert_eq!(
            matching("*:*:*:netkit:a:b", &WANTED).as_deref(),
            Some("a:b")
        );
        assert_eq!(matching("*:5432:*:netkit:pw", &WANTED), None);
        assert_eq!(matching("*:*:*:other:pw", &WANTED), None);
        assert_eq!(matching("#*:*:*:*:pw", &WANTED), None);
        assert_eq!(matching("*:*:*", &WANTED), None);
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        let dir = std::env::temp_dir().join(format!("netkit-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(
            &path,
            "# test\n*:*:other:*:no\n*:*:chat:*:yes\n*:*:*:*:later\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &WANTED).unwrap().as_deref(), Some("yes"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = lookup(&path, &WANTED).unwrap_err().to_string();
        assert!(err.contains("chmod 0600"), "{err}");
        assert_eq!(lookup(&dir.join("missing"), &WANTED).unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
