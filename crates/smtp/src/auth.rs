//! SASL PLAIN (RFC 4616) and LOGIN, the two mechanisms mail servers offer
//! to clients over TLS. The password lives in a `Password` that never
//! prints itself.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A password: shown as `********` by `Debug`, so it cannot leak into logs
/// by way of a derived `Debug` on something that holds it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Self {
        Self(password)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::transcript::MASK)
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Password,
}

impl Credentials {
    /// The PLAIN initial response: base64 of `\0user\0password`.
    pub fn plain(&self) -> String {
        STANDARD.encode(format!("\0{}\0{}", self.user, self.password.expose()))
    }

    pub fn login_user(&self) -> String {
        STANDARD.encode(&self.user)
    }

    pub fn login_password(&self) -> String {
        STANDARD.encode(self.password.expose())
    }

    /// Checks a PLAIN response against this account, as a server does.
    pub fn matches_plain(&self, response: &str) -> bool {
        let Ok(decoded) = STANDARD.decode(response.trim()) else {
            return false;
        };
        let mut parts = decoded.split(|&b| b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let authzid_ok = authzid.is_empty() || authzid == self.user.as_bytes();
        // Compare every byte so the time taken does not say how much matched.
        let same = |a: &[u8], b: &[u8]| {
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        authzid_ok
            & same(user, self.user.as_bytes())
            & same(password, self.password.expose().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Credentials {
        Credentials {
            user: "alice".into(),
            password: Password::new("s3cret pass".into()),
        }
    }

    #[test]
    fn plain_round_trip() {
        let creds = account();
        assert_eq!(creds.plain(), STANDARD.encode("\0alice\0s3cret pass"));
        assert!(creds.matches_plain(&creds.plain()));
        assert!(creds.matches_plain(&STANDARD.encode("alice\0alice\0s3cret pass")));
        assert!(!creds.matches_plain(&STANDARD.encode("\0alice\0wrong")));
        assert!(!creds.matches_plain(&STANDARD.encode("bob\0alice\0s3cret pass")));
        assert!(!creds.matches_plain("not base64 !"));
        assert!(!creds.matches_plain(&STANDARD.encode("\0alice\0s3cret pass\0extra")));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", account());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn login_encodes_each_answer() {
        assert_eq!(account().login_user(), "YWxpY2U=");
        assert_eq!(account().login_password(), STANDARD.encode("s3cret pass"));
    }
}
