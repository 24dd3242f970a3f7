//! User names and password rules.

use std::fmt;

pub const MAX_NAME: usize = 32;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 1024;

/// A valid user name: 1-32 ASCII letters, digits, `_` or `-`. Names are
/// unique regardless of case; [`Username::key`] is the form compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a user name needs at least one character")]
    Empty,
    #[error("a user name has at most {MAX_NAME} characters")]
    TooLong,
    #[error("a user name may only hold letters, digits, `_` and `-`")]
    BadCharacter,
}

impl Username {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME {
            return Err(NameError::TooLong);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(NameError::BadCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as its owner spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that identifies the account.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a password has {MIN_PASSWORD} to {MAX_PASSWORD} bytes")]
pub struct PasswordError;

/// Checks the length rules for a new password.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        Ok(())
    } else {
        Err(PasswordError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        for good in ["a", "Alice", "bob_2", "x-y", &"z".repeat(32)] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        assert_eq!(Username::parse(""), Err(NameError::Empty));
        assert_eq!(Username::parse(&"z".repeat(33)), Err(NameError::TooLong));
        for bad in ["a b", "é", "a.b", "a\n", "a:b", "@x", "#ls"] {
            assert_eq!(Username::parse(bad), Err(NameError::BadCharacter), "{bad}");
        }
        assert_eq!(Username::parse("AlIcE").unwrap().key(), "alice");
    }

    #[test]
    fn password_rules() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"p".repeat(1025)).is_err());
    }
}
