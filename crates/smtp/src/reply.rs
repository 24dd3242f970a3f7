//! Server replies (RFC 5321 §4.2): a three-digit code and one or more text
//! lines. Every line but the last has `-` after the code.

use std::fmt;

/// The most lines one reply may have; a server that sends more is broken or
/// hostile, and the client would otherwise buffer without end.
pub const MAX_REPLY_LINES: usize = 256;

/// A reply code such as `250`. The first digit says whether the command
/// succeeded, the second what the reply is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    pub const HELP: Self = Self(214);
    pub const SERVICE_READY: Self = Self(220);
    pub const CLOSING: Self = Self(221);
    pub const AUTH_SUCCESSFUL: Self = Self(235);
    pub const OK: Self = Self(250);
    /// VRFY: the server cannot verify, but will try to deliver.
    pub const CANNOT_VERIFY: Self = Self(252);
    pub const AUTH_CONTINUE: Self = Self(334);
    pub const START_DATA: Self = Self(354);
    /// The server is shutting down and closes the connection (RFC 5321
    /// §3.8): it may come in answer to any command.
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    pub const LOCAL_ERROR: Self = Self(451);
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    pub const SYNTAX_ERROR: Self = Self(500);
    pub const PARAMETER_SYNTAX_ERROR: Self = Self(501);
    pub const NOT_IMPLEMENTED: Self = Self(502);
    pub const BAD_SEQUENCE: Self = Self(503);
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// RFC 4954 §6.
    pub const AUTH_REQUIRED: Self = Self(530);
    pub const AUTH_INVALID: Self = Self(535);
    pub const ENCRYPTION_REQUIRED: Self = Self(538);
    pub const EXCEEDED_STORAGE: Self = Self(552);
    pub const TRANSACTION_FAILED: Self = Self(554);

    /// A code from its three digits; `None` unless the first digit is 2-5
    /// and the second 0-5, as RFC 5321 allows.
    pub fn new(code: u16) -> Option<Self> {
        let (first, second) = (code / 100, code / 10 % 10);
        ((2..=5).contains(&first) && second <= 5).then_some(Self(code))
    }

    pub fn value(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One complete reply: its code and the text of each line, without the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: ReplyCode,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: ReplyCode, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// A one-line reply with an enhanced status code (RFC 3463) before
    /// its text, as `250 2.0.0 OK`.
    pub fn enhanced(code: ReplyCode, status: &str, text: &str) -> Self {
        Self::new(code, vec![format!("{status} {text}")])
    }

    /// All text lines joined, for error messages.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The reply as sent on the wire, line by line (without CRLF).
    pub fn wire_lines(&self) -> Vec<String> {
        let last = self.lines.len().saturating_sub(1);
        if self.lines.is_empty() {
            return vec![self.code.to_string()];
        }
        self.lines
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let sep = if i == last { ' ' } else { '-' };
                format!("{}{sep}{text}", self.code)
            })
            .collect()
    }
}

impl Reply {
    /// The reply as sent on the wire, each line ending in CRLF.
    pub fn to_wire(&self) -> String {
        let mut wire = self.wire_lines().join("\r\n");
        wire.push_str("\r\n");
        wire
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// Why a line from the server is not part of a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("reply line with code {found} inside a reply with code {expected}")]
    MixedCodes {
        expected: ReplyCode,
        found: ReplyCode,
    },
    #[error("reply has more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

/// One parsed line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: ReplyCode,
    /// True when more lines of the same reply follow (`250-...`).
    pub more: bool,
    pub text: String,
}

impl ReplyLine {
    /// Parses one line without its line ending. A bare code (`250`) is
    /// accepted as a last line with empty text, as RFC 5321 allows.
    pub fn parse(line: &[u8]) -> Result<Self, ReplyError> {
        let malformed = || ReplyError::Malformed(String::from_utf8_lossy(line).into_owned());
        let digits = line.get(..3).ok_or_else(malformed)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        let value = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        let code = ReplyCode::new(value).ok_or_else(malformed)?;
        let (more, text) = match line.get(3) {
            None => (false, &line[3..]),
            Some(b' ') => (false, &line[4..]),
            Some(b'-') => (true, &line[4..]),
            Some(_) => return Err(malformed()),
        };
        Ok(Self {
            code,
            more,
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

/// Collects lines into a reply: push each line as it arrives until one
/// completes the reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    pending: Option<(ReplyCode, Vec<String>)>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line; returns the reply once its last line has arrived.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let parsed = ReplyLine::parse(line)?;
        let (code, lines) = self
            .pending
            .get_or_insert_with(|| (parsed.code, Vec::new()));
        if *code != parsed.code {
            let expected = *code;
            self.pending = None;
            return Err(ReplyError::MixedCodes {
                expected,
                found: parsed.code,
            });
        }
        if lines.len() == MAX_REPLY_LINES {
            self.pending = None;
            return Err(ReplyError::TooManyLines);
        }
        lines.push(parsed.text);
        if parsed.more {
            return Ok(None);
        }
        let (code, lines) = self.pending.take().expect("pending was just filled");
        Ok(Some(Reply { code, lines }))
    }
}

/// Parses every reply in `text` (lines separated by CRLF or LF).
pub fn parse_replies(text: &[u8]) -> Result<Vec<Reply>, ReplyError> {
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if let Some(reply) = parser.push(line)? {
            replies.push(reply);
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_and_multi_line() {
        let replies = parse_replies(
            b"220 mx.example ESMTP ready\r\n250-mx.example\r\n250-SIZE 1000\r\n250 PIPELINING\r\n",
        )
        .unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].code.value(), 220);
        assert_eq!(replies[0].lines, ["mx.example ESMTP ready"]);
        assert_eq!(replies[1].code, ReplyCode::OK);
        assert_eq!(replies[1].lines, ["mx.example", "SIZE 1000", "PIPELINING"]);
        assert_eq!(
            replies[1].wire_lines(),
            ["250-mx.example", "250-SIZE 1000", "250 PIPELINING"]
        );
    }

    #[test]
    fn bare_code_and_empty_text() {
        let replies = parse_replies(b"250\r\n354 \r\n").unwrap();
        assert_eq!(replies[0].lines, [""]);
        assert_eq!(replies[1].code, ReplyCode::START_DATA);
        assert_eq!(replies[1].lines, [""]);
    }

    #[test]
    fn rejects_malformed_lines() {
        for line in [
            &b"25"[..],
            b"abc hello",
            b"250x",
            b"650 no such class",
            b"170 too low",
            b"260 bad second digit",
            b"",
        ] {
            assert!(ReplyLine::parse(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn rejects_mixed_codes() {
        let err = parse_replies(b"250-first\r\n251 second\r\n").unwrap_err();
        assert!(matches!(err, ReplyError::MixedCodes { .. }));
    }

    #[test]
    fn bounds_the_number_of_lines() {
        let mut parser = ReplyParser::new();
        for _ in 0..MAX_REPLY_LINES {
            assert_eq!(parser.push(b"250-more").unwrap(), None);
        }
        assert_eq!(parser.push(b"250-more"), Err(ReplyError::TooManyLines));
        assert_eq!(
            parser.push(b"250 fresh"),
            Ok(Some(Reply::new(ReplyCode::OK, vec!["fresh".into()])))
        );
    }

    #[test]
    fn keeps_invalid_utf8_readable() {
        let reply = parse_replies(b"550 caf\xe9\r\n").unwrap();
        assert_eq!(reply[0].lines, ["caf\u{fffd}"]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_replies(&bytes);
            let mut parser = ReplyParser::new();
            for line in bytes.split(|&b| b == b'\n') {
                let _ = parser.push(line);
            }
        }

        #[test]
        fn wire_lines_round_trip(
            code in 200u16..=559,
            lines in proptest::collection::vec("[ -~]{0,40}", 1..8),
        ) {
            prop_assume!(ReplyCode::new(code).is_some());
            let reply = Reply::new(ReplyCode::new(code).unwrap(), lines);
            let wire = reply.wire_lines().join("\r\n") + "\r\n";
            let parsed = parse_replies(wire.as_bytes()).unwrap();
            prop_assert_eq!(parsed, vec![reply]);
        }
    }
}
