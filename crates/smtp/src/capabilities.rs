//! What a server says it supports, read from its EHLO reply (RFC 5321 §4.1.1.1):
//! the first line greets, each further line names one extension.

use std::fmt;

use crate::reply::Reply;

/// A SASL mechanism this client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// Our order of preference when the user does not choose.
    pub const PREFERRED: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub starttls: bool,
    pub pipelining: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    /// `SIZE` was advertised; the limit, when the server gave one (0 means
    /// no fixed limit, RFC 1870).
    pub size: Option<u64>,
    /// Every mechanism the server named after `AUTH`, upper-cased.
    pub auth: Vec<String>,
}

impl Capabilities {
    /// What a server that only answered HELO supports: nothing.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                // Some old servers wrote `AUTH=LOGIN PLAIN`.
                auth if auth == "AUTH" || auth.starts_with("AUTH=") => {
                    let first = auth.strip_prefix("AUTH=").filter(|m| !m.is_empty());
                    for mechanism in first.into_iter().chain(words) {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !caps.auth.contains(&mechanism) {
                            caps.auth.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    pub fn offers(&self, mechanism: Mechanism) -> bool {
        self.auth.iter().any(|m| m == mechanism.name())
    }

    /// The server's size limit, if it set one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&limit| limit > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse_replies;

    #[test]
    fn reads_extensions() {
        let reply = &parse_replies(
            b"250-mx.example greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-starttls\r\n\
              250-AUTH PLAIN login CRAM-MD5\r\n250-AUTH=LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
        )
        .unwrap()[0];
        let caps = Capabilities::from_ehlo(reply);
        assert!(caps.starttls && caps.pipelining && caps.eight_bit_mime && caps.smtputf8);
        assert_eq!(caps.size_limit(), Some(10_240_000));
        assert_eq!(caps.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(caps.offers(Mechanism::Login));
    }

    #[test]
    fn greeting_line_is_not_an_extension() {
        let reply = &parse_replies(b"250-STARTTLS\r\n250 SIZE\r\n").unwrap()[0];
        let caps = Capabilities::from_ehlo(reply);
        assert!(!caps.starttls);
        assert_eq!(caps.size, Some(0));
        assert_eq!(caps.size_limit(), None);
    }
}
