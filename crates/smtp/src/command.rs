//! Client commands (RFC 5321 §4.1) as the receiving side reads them: one
//! line in, a typed [`Command`] out, or the reason it is not one. Written
//! back with `Display`, a command parses to itself.

use std::fmt;

/// An ESMTP parameter after the path of MAIL or RCPT (`BODY=8BITMIME`,
/// `SMTPUTF8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub keyword: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// `MAIL FROM:<path>`; an empty path is the null sender of bounces.
    /// `SIZE=` (RFC 1870) is taken out of the parameters.
    Mail {
        path: String,
        size: Option<u64>,
        params: Vec<Parameter>,
    },
    Rcpt {
        path: String,
        params: Vec<Parameter>,
    },
    Data,
    Rset,
    Noop,
    Vrfy(String),
    Help,
    Quit,
}

/// The command verbs, for what depends on the verb alone (whether it may
/// come now), even when its arguments are wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Vrfy,
    Help,
    Quit,
}

/// Why a line is not a command the server can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command not recognized")]
    Unknown,
    /// EHLO or HELO without the client's name.
    #[error("{0:?} needs the client's host name")]
    MissingHostName(Verb),
    /// MAIL or RCPT without a `FROM:<path>`/`TO:<path>` that parses.
    #[error("{0:?} needs a path in angle brackets")]
    BadPath(Verb),
    #[error("SIZE is not a number")]
    BadSize,
}

impl CommandError {
    /// The verb the line started with, when it was one.
    pub fn verb(&self) -> Option<Verb> {
        match self {
            Self::Unknown => None,
            Self::MissingHostName(verb) | Self::BadPath(verb) => Some(*verb),
            Self::BadSize => Some(Verb::Mail),
        }
    }
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Self::Ehlo(_) => Verb::Ehlo,
            Self::Helo(_) => Verb::Helo,
            Self::StartTls => Verb::StartTls,
            Self::Auth { .. } => Verb::Auth,
            Self::Mail { .. } => Verb::Mail,
            Self::Rcpt { .. } => Verb::Rcpt,
            Self::Data => Verb::Data,
            Self::Rset => Verb::Rset,
            Self::Noop => Verb::Noop,
            Self::Vrfy(_) => Verb::Vrfy,
            Self::Help => Verb::Help,
            Self::Quit => Verb::Quit,
        }
    }
}

/// Parses one command line without its CRLF. Verbs are case-insensitive;
/// bytes that are not UTF-8 are kept as U+FFFD; a space after `FROM:`/`TO:`
/// is tolerated, as many clients send one. Arguments that NOOP, HELP,
/// RSET, DATA, STARTTLS and QUIT do not take are ignored.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = String::from_utf8_lossy(line);
    // Trimmed as parameters are split (ASCII whitespace), so a parameter
    // ending in another control character, such as VT, written last
    // survives being read again.
    let (verb, arg) = match line.split_once(' ') {
        Some((verb, arg)) => (verb, arg.trim_ascii()),
        None => (line.trim_ascii(), ""),
    };
    let verb = match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Verb::Ehlo,
        "HELO" => Verb::Helo,
        "STARTTLS" => Verb::StartTls,
        "AUTH" => Verb::Auth,
        "MAIL" => Verb::Mail,
        "RCPT" => Verb::Rcpt,
        "DATA" => Verb::Data,
        "RSET" => Verb::Rset,
        "NOOP" => Verb::Noop,
        "VRFY" => Verb::Vrfy,
        "HELP" => Verb::Help,
        "QUIT" => Verb::Quit,
        _ => return Err(CommandError::Unknown),
    };
    Ok(match verb {
        Verb::Ehlo | Verb::Helo if arg.is_empty() => {
            return Err(CommandError::MissingHostName(verb));
        }
        Verb::Ehlo => Command::Ehlo(arg.to_owned()),
        Verb::Helo => Command::Helo(arg.to_owned()),
        Verb::StartTls => Command::StartTls,
        Verb::Auth => match arg.split_once(' ') {
            Some((mechanism, initial)) => Command::Auth {
                mechanism: mechanism.to_owned(),
                initial: Some(initial.trim_ascii().to_owned()),
            },
            None => Command::Auth {
                mechanism: arg.to_owned(),
                initial: None,
            },
        },
        Verb::Mail => {
            let (path, params) = parse_path(arg, "FROM:").ok_or(CommandError::BadPath(verb))?;
            let mut size = None;
            let mut rest = Vec::new();
            for param in params {
                if param.keyword.eq_ignore_ascii_case("SIZE") {
                    let value = param.value.as_deref().unwrap_or_default();
                    size = Some(value.parse().map_err(|_| CommandError::BadSize)?);
                } else {
                    rest.push(param);
                }
            }
            Command::Mail {
                path,
                size,
                params: rest,
            }
        }
        Verb::Rcpt => {
            let (path, params) = parse_path(arg, "TO:").ok_or(CommandError::BadPath(verb))?;
            Command::Rcpt { path, params }
        }
        Verb::Data => Command::Data,
        Verb::Rset => Command::Rset,
        Verb::Noop => Command::Noop,
        Verb::Vrfy => Command::Vrfy(arg.to_owned()),
        Verb::Help => Command::Help,
        Verb::Quit => Command::Quit,
    })
}

/// Splits `FROM:<path> params` (or `TO:`). The path may not hold control
/// characters or a second `<`: it is echoed into headers and logs.
fn parse_path(arg: &str, prefix: &str) -> Option<(String, Vec<Parameter>)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = &rest[..close];
    if path.contains(|c: char| c.is_control() || c == '<') {
        return None;
    }
    let params = rest[close + 1..]
        .split_ascii_whitespace()
        .map(|param| match param.split_once('=') {
            Some((keyword, value)) => Parameter {
                keyword: keyword.to_owned(),
                value: Some(value.to_owned()),
            },
            None => Parameter {
                keyword: param.to_owned(),
                value: None,
            },
        })
        .collect();
    Some((path.to_owned(), params))
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, " {}={value}", self.keyword),
            None => write!(f, " {}", self.keyword),
        }
    }
}

impl fmt::Display for Command {
    /// The command line as a client sends it, without CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ehlo(name) => write!(f, "EHLO {name}"),
            Self::Helo(name) => write!(f, "HELO {name}"),
            Self::StartTls => f.write_str("STARTTLS"),
            Self::Auth {
                mechanism,
                initial: None,
            } => write!(f, "AUTH {mechanism}"),
            Self::Auth {
                mechanism,
                initial: Some(initial),
            } => write!(f, "AUTH {mechanism} {initial}"),
            Self::Mail { path, size, params } => {
                write!(f, "MAIL FROM:<{path}>")?;
                if let Some(size) = size {
                    write!(f, " SIZE={size}")?;
                }
                params.iter().try_for_each(|param| write!(f, "{param}"))
            }
            Self::Rcpt { path, params } => {
                write!(f, "RCPT TO:<{path}>")?;
                params.iter().try_for_each(|param| write!(f, "{param}"))
            }
            Self::Data => f.write_str("DATA"),
            Self::Rset => f.write_str("RSET"),
            Self::Noop => f.write_str("NOOP"),
            Self::Vrfy(arg) => write!(f, "VRFY {arg}"),
            Self::Help => f.write_str("HELP"),
            Self::Quit => f.write_str("QUIT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn param(keyword: &str, value: Option<&str>) -> Parameter {
        Parameter {
            keyword: keyword.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn verbs_and_arguments() {
        assert_eq!(
            parse_command(b"ehlo client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(parse_command(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse_command(b"noop whatever"), Ok(Command::Noop));
        assert_eq!(parse_command(b"DATA "), Ok(Command::Data));
        assert_eq!(
            parse_command(b"AUTH PLAIN AGRlbW8AZGVtbw=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGRlbW8AZGVtbw==".into())
            })
        );
        assert_eq!(
            parse_command(b"AUTH"),
            Ok(Command::Auth {
                mechanism: String::new(),
                initial: None
            })
        );
        assert_eq!(
            parse_command(b"EHLO"),
            Err(CommandError::MissingHostName(Verb::Ehlo))
        );
        assert_eq!(
            parse_command(b"HELO   "),
            Err(CommandError::MissingHostName(Verb::Helo))
        );
        assert_eq!(parse_command(b"NONSENSE"), Err(CommandError::Unknown));
        assert_eq!(parse_command(b""), Err(CommandError::Unknown));
        assert_eq!(parse_command(b"\xff\xfe"), Err(CommandError::Unknown));
    }

    #[test]
    fn paths_and_parameters() {
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.c> SIZE=10 BODY=8BITMIME SMTPUTF8"),
            Ok(Command::Mail {
                path: "a@b.c".into(),
                size: Some(10),
                params: vec![param("BODY", Some("8BITMIME")), param("SMTPUTF8", None)],
            })
        );
        assert_eq!(
            parse_command(b"mail from: <>"),
            Ok(Command::Mail {
                path: String::new(),
                size: None,
                params: vec![]
            })
        );
        assert_eq!(
            parse_command(b"RCPT To:<d@e.f>"),
            Ok(Command::Rcpt {
                path: "d@e.f".into(),
                params: vec![]
            })
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.c> SIZE=big"),
            Err(CommandError::BadSize)
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.c> SIZE"),
            Err(CommandError::BadSize)
        );
        for bad in [
            &b"RCPT TO:a@b.c"[..],
            b"RCPT TO:<a@b.c",
            b"RCPT",
            b"RCPT T\xc3\x96:<x>",
            b"MAIL FROM:<a<b@c>",
            b"MAIL FROM:<a\x01b>",
            b"MAIL TO:<a@b.c>",
        ] {
            assert!(
                matches!(parse_command(bad), Err(CommandError::BadPath(_))),
                "{bad:?}"
            );
        }
    }

    fn word() -> impl Strategy<Value = String> {
        "[!-;=?-~]{1,12}"
    }

    fn text() -> impl Strategy<Value = String> {
        "[!-~]([ -~]{0,20}[!-~])?"
    }

    fn params() -> impl Strategy<Value = Vec<Parameter>> {
        proptest::collection::vec(
            (
                "[A-RT-Z][A-Z0-9-]{0,8}",
                proptest::option::of("[!-<>-~]{1,12}"),
            )
                .prop_map(|(keyword, value)| Parameter { keyword, value }),
            0..4,
        )
    }

    fn command() -> impl Strategy<Value = Command> {
        let path = "[!-;=?-~]{0,30}";
        prop_oneof![
            text().prop_map(Command::Ehlo),
            text().prop_map(Command::Helo),
            Just(Command::StartTls),
            (word(), proptest::option::of(text()))
                .prop_map(|(mechanism, initial)| Command::Auth { mechanism, initial }),
            (path, proptest::option::of(any::<u64>()), params())
                .prop_map(|(path, size, params)| Command::Mail { path, size, params }),
            (path, params()).prop_map(|(path, params)| Command::Rcpt { path, params }),
            Just(Command::Data),
            Just(Command::Rset),
            Just(Command::Noop),
            text().prop_map(Command::Vrfy),
            Just(Command::Help),
            Just(Command::Quit),
        ]
    }

    proptest! {
        #[test]
        fn written_commands_parse_back(command in command()) {
            let line = command.to_string();
            prop_assert_eq!(parse_command(line.as_bytes()), Ok(command));
        }

        #[test]
        fn arbitrary_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            match parse_command(&bytes) {
                Ok(Command::Mail { path, .. } | Command::Rcpt { path, .. }) => {
                    prop_assert!(!path.contains(|c: char| c.is_control() || c == '<'));
                }
                Ok(command) => {
                    // What parsed once parses the same when written back.
                    let again = parse_command(command.to_string().as_bytes());
                    prop_assert_eq!(again, Ok(command));
                }
                Err(err) => prop_assert_eq!(err.verb().is_none(), err == CommandError::Unknown),
            }
        }
    }
}
