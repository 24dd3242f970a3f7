//! Mailboxes as people write them on the command line: `alice@example.org`
//! or `Alice Liddell <alice@example.org>`.

use std::fmt;
use std::str::FromStr;

/// A mailbox: the address the envelope uses, and the display name the
/// headers may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a mail address: {why} (examples: alice@example.org, 'Alice <alice@example.org>')"
)]
pub struct AddressError {
    input: String,
    why: &'static str,
}

impl Mailbox {
    /// The domain after the last `@`.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }

    pub fn is_ascii(&self) -> bool {
        self.address.is_ascii()
    }
}

impl FromStr for Mailbox {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why| AddressError {
            input: input.to_owned(),
            why,
        };
        let trimmed = input.trim();
        let (name, address) = match trimmed.rfind('<') {
            Some(open) => {
                let inner = trimmed[open + 1..]
                    .strip_suffix('>')
                    .ok_or_else(|| fail("`<` without a closing `>` at the end"))?;
                let name = trimmed[..open].trim().trim_matches('"').trim();
                ((!name.is_empty()).then(|| name.to_owned()), inner.trim())
            }
            None => (None, trimmed),
        };
        if address.is_empty() {
            return Err(fail("the address is empty"));
        }
        if address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>()[],;\\\"".contains(c))
        {
            return Err(fail(
                "it contains a space, a control character or one of <>()[],;\\\"",
            ));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(fail("there is no `@`"));
        };
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err(fail("the part before or after `@` is empty or malformed"));
        }
        if let Some(name) = &name
            && name.chars().any(char::is_control)
        {
            return Err(fail("the display name contains a control character"));
        }
        Ok(Mailbox {
            name,
            address: address.to_owned(),
        })
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mailbox;

    #[test]
    fn forms() {
        let plain: Mailbox = "alice@example.org".parse().unwrap();
        assert_eq!(plain.name, None);
        assert_eq!(plain.domain(), "example.org");
        let named: Mailbox = "\"Alice L.\" <alice@example.org>".parse().unwrap();
        assert_eq!(named.name.as_deref(), Some("Alice L."));
        assert_eq!(named.address, "alice@example.org");
        let utf8: Mailbox = "Zoë <zoë@exämple.org>".parse().unwrap();
        assert!(!utf8.is_ascii());
    }

    #[test]
    fn rejects_what_would_break_the_envelope() {
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@example.org>",
            "<alice@example.org",
            "alice@example.org\r\nRCPT TO:<x@y>",
            "a b@example.org",
            "Alice <>",
        ] {
            assert!(bad.parse::<Mailbox>().is_err(), "{bad:?}");
        }
    }
}
