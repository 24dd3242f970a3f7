//! htpasswd files (Apache's format, `user:hash` a line) with the hashes
//! worth accepting today: bcrypt (`htpasswd -B`: `$2y$`, `$2a$`, `$2b$`)
//! and Argon2 in PHC form (`$argon2id$…`, `$argon2i$`, `$argon2d$`). The
//! weaker kinds htpasswd can also write (MD5 `$apr1$`, SHA-1 `{SHA}`,
//! crypt, plain text) are refused when the file is read, naming the line.
//!
//! Public so other servers (the mail inbox) check passwords the same way.

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordVerifier};

/// A bcrypt hash of a password nobody knows, checked when the user is
/// unknown so that an unknown name takes as long as a wrong password.
const DECOY: &str = "$2y$05$wVsx3qQyDDGTT8KHECddNuedL9yhRDI7X7ZWOXa5mqvIvC2p9IC8m";

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
}

/// One user's stored hash, of a kind that can be checked.
#[derive(Clone)]
enum Hash {
    Bcrypt(String),
    Argon2(String),
}

impl Hash {
    fn parse(text: &str) -> Result<Self, String> {
        if ["$2y$", "$2a$", "$2b$"].iter().any(|p| text.starts_with(p)) {
            // Checked now, so a damaged hash fails at start-up, not at
            // the first login.
            if !is_bcrypt_shape(text) {
                return Err("bad bcrypt hash: expected $2y$NN$ and 53 characters".into());
            }
            return Ok(Hash::Bcrypt(text.to_owned()));
        }
        if text.starts_with("$argon2") {
            let parsed =
                PasswordHash::new(text).map_err(|err| format!("bad Argon2 hash: {err}"))?;
            if parsed.hash.is_none() || parsed.salt.is_none() {
                return Err("bad Argon2 hash: no salt or hash".into());
            }
            return Ok(Hash::Argon2(text.to_owned()));
        }
        let kind = if text.starts_with("$apr1$") {
            "MD5 ($apr1$)"
        } else if text.starts_with("{SHA}") {
            "SHA-1 ({SHA})"
        } else {
            "crypt or plain text"
        };
        Err(format!(
            "{kind} hashes are too weak; make the line with `htpasswd -B` (bcrypt) or use an Argon2 hash"
        ))
    }

    /// Both libraries compare in constant time.
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Hash::Argon2(hash) => PasswordHash::new(hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password, &parsed)
                    .is_ok()
            }),
        }
    }
}

/// `$2y$05$` then 22 characters of salt and 31 of hash, in bcrypt's
/// base64 alphabet.
fn is_bcrypt_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 60
        && bytes[4..6].iter().all(u8::is_ascii_digit)
        && bytes[6] == b'$'
        && bytes[7..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

/// The users of an htpasswd file. Hashes are not shown by `Debug`.
#[derive(Clone)]
pub struct Htpasswd {
    users: Vec<(String, Hash)>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Self, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, HtpasswdError> {
        let mut users: Vec<(String, Hash)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let fail = |problem: String| HtpasswdError::Line { line, problem };
            let (user, hash) = entry
                .split_once(':')
                .ok_or_else(|| fail("expected user:hash".into()))?;
            if user.is_empty() {
                return Err(fail("empty user name".into()));
            }
            if users.iter().any(|(known, _)| known == user) {
                return Err(fail(format!("user {user:?} appears twice")));
            }
            users.push((user.to_owned(), Hash::parse(hash).map_err(fail)?));
        }
        Ok(Self { users })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Slow on purpose (the hash's cost):
    /// call it off the event loop. An unknown user costs a bcrypt check
    /// too, so the time taken does not tell which names exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.iter().find(|(known, _)| known == user) {
            Some((_, hash)) => hash.verify(password),
            None => {
                let _ = bcrypt::verify(password, DECOY);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn checks_bcrypt_and_argon2_lines() {
        let bcrypt_line = bcrypt::hash("open sesame", 4).unwrap();
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let argon = argon2::Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let file =
            Htpasswd::parse(&format!("# users\nalice:{bcrypt_line}\n\nbob:{argon}\n")).unwrap();
        assert!(file.verify("alice", b"open sesame"));
        assert!(!file.verify("alice", b"open sesame!"));
        assert!(file.verify("bob", b"correct horse"));
        assert!(!file.verify("bob", b"open sesame"));
        assert!(!file.verify("carol", b"open sesame"));
        assert!(!format!("{file:?}").contains("$2"));
    }

    #[test]
    fn refuses_weak_or_broken_lines_naming_them() {
        let cases = [
            ("alice:$apr1$abc$def\n", 1, "MD5"),
            ("# c\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", 2, "SHA-1"),
            ("carol:plain\n", 1, "too weak"),
            ("dave\n", 1, "user:hash"),
            ("erin:$2y$05$short\n", 1, "bad bcrypt"),
            ("f:$argon2id$nonsense\n", 1, "bad Argon2"),
        ];
        for (text, line, words) in cases {
            let err = Htpasswd::parse(text).unwrap_err().to_string();
            assert!(err.starts_with(&format!("line {line}:")), "{err}");
            assert!(err.contains(words), "{err}");
        }
        let hash = bcrypt::hash("x", 4).unwrap();
        let twice = format!("a:{hash}\na:{hash}\n");
        assert!(
            Htpasswd::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn the_decoy_is_a_valid_hash() {
        assert!(is_bcrypt_shape(DECOY));
        assert!(
            !Htpasswd::parse(&format!("x:{DECOY}"))
                .unwrap()
                .verify("x", b"")
        );
    }
}
