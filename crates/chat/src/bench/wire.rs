//! What the load generator says on the wire, for netkit's protocol and for
//! the IRC subset (NICK, USER, JOIN, PRIVMSG, PING/PONG): how a client logs
//! in and joins, how a benchmark message is written, and how a received line
//! is recognised, without decoding whole frames on the hot path.

use bytes::Bytes;
use memchr::memmem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::connection::LineBuffer;
use crate::direct::SessionKey;
use crate::frame::{
    ClientFrame, Credentials, ErrorCode, PROTOCOL_VERSION, Password, ServerFrame, decode, encode,
};

/// Every benchmark message starts its text with this, then the send time in
/// microseconds since the run began.
const MARK: &str = "b ";

/// How long a client waits before asking again after `busy`.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Text after the time stamp, so messages are a realistic size.
const PADDING: &str = "the quick brown fox jumps over the lazy dog";

#[derive(Debug, Clone)]
pub enum Protocol {
    /// netkit's chat protocol; accounts are registered (or logged in) with
    /// this password.
    Netkit { password: Password, udp_port: u16 },
    /// IRC, all clients in one channel.
    Irc { channel: String },
}

/// A received line, as far as the benchmark cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A benchmark message sent at this many microseconds into the run.
    Message(Option<u64>),
    /// The server wants an answer: this line.
    Ping(Vec<u8>),
    /// The server is closing the connection.
    Closing(String),
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the server refused {name}: {why}")]
    Refused { name: String, why: String },
    #[error("the server closed the connection while {0} logged in")]
    Closed(String),
}

impl Protocol {
    /// Logs in (registering if needed) and joins the room.
    pub async fn join<S>(
        &self,
        stream: &mut S,
        lines: &mut LineBuffer,
        name: &str,
    ) -> Result<(), WireError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self {
            Protocol::Netkit { password, udp_port } => {
                let credentials = Credentials {
                    version: PROTOCOL_VERSION,
                    name: name.to_owned(),
                    password: password.clone(),
                    udp_port: Some(*udp_port),
                    key: SessionKey::generate().public().to_base64(),
                };
                let mut attempt = ClientFrame::Register(credentials.clone());
                stream
                    .write_all(&encode(&attempt).expect("small frame"))
                    .await?;
                loop {
                    let line = next_line(stream, lines, name).await?;
                    match decode::<ServerFrame>(&line) {
                        Ok(ServerFrame::Welcome { .. }) => return Ok(()),
                        Ok(ServerFrame::Error {
                            code: ErrorCode::NameTaken,
                            ..
                        }) => {
                            attempt = ClientFrame::Login(credentials.clone());
                            stream
                                .write_all(&encode(&attempt).expect("small frame"))
                                .await?;
                        }
                        // The server's password queue is full: try again.
                        Ok(ServerFrame::Error {
                            code: ErrorCode::Busy,
                            ..
                        }) => {
                            tokio::time::sleep(BUSY_RETRY).await;
                            stream
                                .write_all(&encode(&attempt).expect("small frame"))
                                .await?;
                        }
                        Ok(ServerFrame::Error { code, text } | ServerFrame::Bye { code, text }) => {
                            return Err(WireError::Refused {
                                name: name.to_owned(),
                                why: format!("{text} ({code})"),
                            });
                        }
                        _ => {}
                    }
                }
            }
            Protocol::Irc { channel } => {
                let hello = format!("NICK {name}\r\nUSER {name} 0 * :netkit bench\r\n");
                stream.write_all(hello.as_bytes()).await?;
                let mut joined = false;
                loop {
                    let line = next_line(stream, lines, name).await?;
                    let text = String::from_utf8_lossy(&line);
                    let mut words = text.split(' ');
                    let first = words.next().unwrap_or("");
                    if first == "PING" {
                        stream.write_all(&pong(&line)).await?;
                        continue;
                    }
                    if first == "ERROR" {
                        return Err(WireError::Refused {
                            name: name.to_owned(),
                            why: text.into_owned(),
                        });
                    }
                    match words.next().unwrap_or("") {
                        // Welcome: registration is done.
                        "001" if !joined => {
                            joined = true;
                            stream
                                .write_all(format!("JOIN {channel}\r\n").as_bytes())
                                .await?;
                        }
                        // End of the channel's name list: joined.
                        "366" => return Ok(()),
                        code if code.starts_with('4') || code.starts_with('5') => {
                            return Err(WireError::Refused {
                                name: name.to_owned(),
                                why: text.into_owned(),
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// One benchmark message, sent `micros` into the run.
    pub fn message(&self, micros: u64) -> Vec<u8> {
        match self {
            Protocol::Netkit { .. } => {
                let say = ClientFrame::Say {
                    room: None,
                    text: format!("{MARK}{micros} {PADDING}"),
                };
                encode(&say).expect("small frame").to_vec()
            }
            Protocol::Irc { channel } => {
                format!("PRIVMSG {channel} :{MARK}{micros} {PADDING}\r\n").into_bytes()
            }
        }
    }

    /// Recognises a received line without decoding all of it.
    pub fn classify(&self, line: &[u8]) -> Line {
        match self {
            Protocol::Netkit { .. } => {
                if line.starts_with(br#"{"type":"message""#) {
                    let at = memmem::find(line, br#""text":"b "#).map(|at| at + 10);
                    return Line::Message(at.and_then(|at| digits(&line[at..])));
                }
                if line.starts_with(br#"{"type":"ping""#) {
                    return Line::Ping(line.to_vec());
                }
                if line.starts_with(br#"{"type":"bye""#) {
                    return Line::Closing(String::from_utf8_lossy(line).into_owned());
                }
                Line::Other
            }
            Protocol::Irc { .. } => {
                if line.starts_with(b"PING") {
                    return Line::Ping(line.to_vec());
                }
                if line.starts_with(b"ERROR") {
                    return Line::Closing(String::from_utf8_lossy(line).into_owned());
                }
                if memmem::find(line, b" PRIVMSG ").is_some() {
                    let at = memmem::find(line, b" :b ").map(|at| at + 4);
                    return Line::Message(at.and_then(|at| digits(&line[at..])));
                }
                Line::Other
            }
        }
    }

    /// The answer to a ping line.
    pub fn answer(&self, ping: &[u8]) -> Vec<u8> {
        match self {
            Protocol::Netkit { .. } => {
                let id = decode::<ServerFrame>(ping)
                    .ok()
                    .and_then(|frame| match frame {
                        ServerFrame::Ping { id } => id,
                        _ => None,
                    });
                encode(&ClientFrame::Pong { id })
                    .expect("small frame")
                    .to_vec()
            }
            Protocol::Irc { .. } => pong(ping),
        }
    }
}

fn pong(ping: &[u8]) -> Vec<u8> {
    let mut pong = b"PONG".to_vec();
    pong.extend_from_slice(&ping[4.min(ping.len())..]);
    pong.extend_from_slice(b"\r\n");
    pong
}

fn digits(text: &[u8]) -> Option<u64> {
    let end = text.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&text[..end]).ok()?.parse().ok()
}

async fn next_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    lines: &mut LineBuffer,
    name: &str,
) -> Result<Bytes, WireError> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Ok(Some(line)) = lines.next_line() {
            if !line.is_empty() {
                return Ok(line);
            }
            continue;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(WireError::Closed(name.to_owned()));
        }
        lines.extend(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_recognised() {
        let netkit = Protocol::Netkit {
            password: Password::new("x"),
            udp_port: 9,
        };
        let sent = netkit.message(12345);
        assert!(sent.ends_with(b"\n"));
        let relayed =
            br#"{"type":"message","from":"bench0001","text":"b 12345 the quick","time":1}"#;
        assert_eq!(netkit.classify(relayed), Line::Message(Some(12345)));
        assert!(matches!(
            netkit.classify(br#"{"type":"ping"}"#),
            Line::Ping(_)
        ));
        assert_eq!(
            netkit.classify(br#"{"type":"users","users":[]}"#),
            Line::Other
        );

        let irc = Protocol::Irc {
            channel: "#bench".into(),
        };
        assert_eq!(
            irc.message(7),
            b"PRIVMSG #bench :b 7 the quick brown fox jumps over the lazy dog\r\n"
        );
        let relayed = b":bench0001!~bench0001@localhost PRIVMSG #bench :b 987 the quick";
        assert_eq!(irc.classify(relayed), Line::Message(Some(987)));
        assert_eq!(irc.answer(b"PING :irc.example"), b"PONG :irc.example\r\n");
        assert!(matches!(
            irc.classify(b"ERROR :Closing link"),
            Line::Closing(_)
        ));
    }
}
