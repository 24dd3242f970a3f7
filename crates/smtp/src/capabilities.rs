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
    use crate::reply::{ReplyCode, parse_replies};
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn any_reply_lines_parse(lines in proptest::collection::vec("\\PC{0,40}", 1..12)) {
            let caps = Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, lines));
            prop_assert!(caps.auth.iter().all(|m| *m == m.to_ascii_uppercase()));
        }

        /// What a server advertises, in any case and order, is what is read.
        #[test]
        fn advertised_extensions_are_read_back(
            starttls: bool,
            pipelining: bool,
            size in proptest::option::of(0u64..1 << 40),
            auth in proptest::collection::vec("[A-Za-z0-9-]{1,12}", 0..4),
            lower: bool,
            order in proptest::collection::vec(any::<u8>(), 5),
        ) {
            let mut lines = Vec::new();
            if starttls { lines.push("STARTTLS".to_owned()); }
            if pipelining { lines.push("PIPELINING".to_owned()); }
            if let Some(size) = size { lines.push(format!("SIZE {size}")); }
            if !auth.is_empty() { lines.push(format!("AUTH {}", auth.join(" "))); }
            lines.push("X-UNKNOWN with words".to_owned());
            let mut keyed: Vec<(u8, String)> = order.into_iter().zip(lines).collect();
            keyed.sort();
            let mut reply = vec!["mx.example greets you".to_owned()];
            reply.extend(keyed.into_iter().map(|(_, line)| {
                if lower { line.to_ascii_lowercase() } else { line }
            }));
            let caps = Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, reply));
            prop_assert_eq!(caps.starttls, starttls);
            prop_assert_eq!(caps.pipelining, pipelining);
            prop_assert_eq!(caps.size, size);
            let mut wanted: Vec<String> = Vec::new();
            for mechanism in &auth {
                let mechanism = mechanism.to_ascii_uppercase();
                if !wanted.contains(&mechanism) {
                    wanted.push(mechanism);
                }
            }
            prop_assert_eq!(caps.auth, wanted);
        }
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
