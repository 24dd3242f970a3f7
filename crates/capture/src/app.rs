//! The protocols netkit speaks, recognised in a segment's payload by content
//! (and, for SMTP, by port): HTTP/1.x heads, SMTP commands and replies, chat
//! NDJSON frames, the lab UDP pinger and STAMP, and TLS records. Secrets are
//! masked here, before anything is shown: SMTP AUTH arguments and chat
//! `password` fields.

use serde::Serialize;
use serde_json::Value;

use crate::decode::{Packet, Transport};

/// What replaces a secret, as `netkit mail send` shows it.
pub const MASK: &str = "********";

const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];
const SMTP_VERBS: [&str; 12] = [
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "AUTH", "STARTTLS", "RSET", "NOOP", "VRFY",
    "HELP",
];
const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum App {
    /// A request or status line and the header lines after it.
    Http {
        start: String,
        headers: Vec<(String, String)>,
    },
    /// Command or reply lines, AUTH secrets masked.
    Smtp {
        lines: Vec<String>,
    },
    /// One entry per NDJSON frame: its `type` and the frame, passwords masked.
    Chat {
        frames: Vec<(String, String)>,
    },
    /// The lab pinger's `Ping <seq> <time>` (or its upper-cased echo).
    Udping {
        word: String,
        sequence: u32,
        time: String,
    },
    Stamp(Stamp),
    Tls(Tls),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// `sender` or `reflector`.
    pub role: &'static str,
    pub sequence: u32,
    /// NTP seconds and fraction, as on the wire.
    pub timestamp: (u32, u32),
    pub error_estimate: u16,
    /// Reflector only: when it received the probe, and the probe's fields.
    pub receive_timestamp: Option<(u32, u32)>,
    pub sender_sequence: Option<u32>,
    pub sender_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tls {
    pub content_type: u8,
    /// The record layer's version, e.g. `0x0303`.
    pub version: u16,
    pub length: u16,
    pub handshake_type: Option<u8>,
    pub server_name: Option<String>,
}

impl Tls {
    pub fn content_name(&self) -> &'static str {
        match self.content_type {
            20 => "change_cipher_spec",
            21 => "alert",
            22 => "handshake",
            23 => "application_data",
            _ => "unknown",
        }
    }

    pub fn handshake_name(&self) -> Option<&'static str> {
        Some(match self.handshake_type? {
            1 => "ClientHello",
            2 => "ServerHello",
            4 => "NewSessionTicket",
            8 => "EncryptedExtensions",
            11 => "Certificate",
            12 => "ServerKeyExchange",
            13 => "CertificateRequest",
            14 => "ServerHelloDone",
            15 => "CertificateVerify",
            16 => "ClientKeyExchange",
            20 => "Finished",
            _ => "unknown",
        })
    }
}

/// Recognises the application data in `packet`'s payload (`frame` is the
/// frame the packet was decoded from).
pub fn decode(packet: &Packet, frame: &[u8]) -> Option<App> {
    let payload = frame.get(packet.payload.clone())?;
    if payload.is_empty() {
        return None;
    }
    match &packet.transport {
        Some(Transport::Tcp(tcp)) => tls(payload)
            .map(App::Tls)
            .or_else(|| http(payload))
            .or_else(|| chat(payload))
            .or_else(|| {
                smtp(
                    payload,
                    SMTP_PORTS.contains(&tcp.src_port) || SMTP_PORTS.contains(&tcp.dst_port),
                )
            }),
        Some(Transport::Udp(_)) => udping(payload).or_else(|| stamp(payload).map(App::Stamp)),
        _ => None,
    }
}

fn lines(payload: &[u8]) -> Option<Vec<&str>> {
    let text = std::str::from_utf8(payload).ok()?;
    Some(text.split('\n').map(|l| l.trim_end_matches('\r')).collect())
}

fn http(payload: &[u8]) -> Option<App> {
    let head = payload.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(head).ok()?.trim_end_matches('\r');
    let method = first.split(' ').next()?;
    let is_request = HTTP_METHODS.contains(&method) && first.contains(" HTTP/1.");
    if !is_request && !first.starts_with("HTTP/1.") {
        return None;
    }
    // The head is text even when the body is not.
    let end = payload
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(payload.len(), |at| at + 2);
    let text = String::from_utf8_lossy(&payload[..end]);
    let headers = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect();
    Some(App::Http {
        start: first.to_owned(),
        headers,
    })
}

fn chat(payload: &[u8]) -> Option<App> {
    if payload.first() != Some(&b'{') {
        return None;
    }
    let mut frames = Vec::new();
    for line in lines(payload)? {
        if line.is_empty() {
            continue;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(line) else {
            // The rest of a frame split across segments.
            break;
        };
        let kind = value.get("type")?.as_str()?.to_owned();
        mask_passwords(&mut value);
        frames.push((kind, value.to_string()));
    }
    (!frames.is_empty()).then_some(App::Chat { frames })
}

/// Masks the secrets in a stretch of stream text, line by line: chat frames'
/// password fields and `AUTH <mechanism> <secret>`. (`--follow` shows
/// streams through this.)
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let line = piece.trim_end_matches(['\r', '\n']);
        let ending = &piece[line.len()..];
        let masked = if line.starts_with('{') {
            match serde_json::from_str::<Value>(line) {
                Ok(mut value) => {
                    mask_passwords(&mut value);
                    value.to_string()
                }
                // A frame cut by the segment: mask what might be a password.
                Err(_) if line.contains("password") => MASK.to_owned(),
                Err(_) => line.to_owned(),
            }
        } else if line
            .as_bytes()
            .get(..5)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"AUTH "))
        {
            mask_smtp(line)
        } else {
            line.to_owned()
        };
        out.push_str(&masked);
        out.push_str(ending);
    }
    out
}

fn mask_passwords(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if key.to_ascii_lowercase().contains("password") {
                    *field = Value::String(MASK.to_owned());
                } else {
                    mask_passwords(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_passwords),
        _ => {}
    }
}

fn smtp(payload: &[u8], smtp_port: bool) -> Option<App> {
    let lines = lines(payload)?;
    let first = lines.first()?;
    let verb = first.split([' ', ':']).next()?.to_ascii_uppercase();
    let reply = first.len() >= 3
        && first.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && matches!(first.as_bytes().get(3), None | Some(b' ' | b'-'));
    if !(smtp_port || reply || SMTP_VERBS.contains(&verb.as_str())) {
        return None;
    }
    let shown = lines
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| mask_smtp(line))
        .collect();
    Some(App::Smtp { lines: shown })
}

/// `AUTH PLAIN <secret>` keeps its mechanism; a lone base64 word (an AUTH
/// LOGIN answer) is masked whole, as `netkit mail send` shows them.
fn mask_smtp(line: &str) -> String {
    let mut words = line.split(' ');
    let first = words.next().unwrap_or_default();
    if first.eq_ignore_ascii_case("AUTH") {
        let mechanism = words.next().unwrap_or_default();
        return match words.next() {
            Some(_) => format!("AUTH {mechanism} {MASK}"),
            None => format!("AUTH {mechanism}"),
        };
    }
    let lone_base64 = !line.contains(' ')
        && line.len() >= 4
        && !SMTP_VERBS.contains(&line.to_ascii_uppercase().as_str())
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if lone_base64 {
        MASK.to_owned()
    } else {
        line.to_owned()
    }
}

fn udping(payload: &[u8]) -> Option<App> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut words = text.split_whitespace();
    let word = words.next()?;
    if !["ping", "heartbeat"].contains(&word.to_ascii_lowercase().as_str()) {
        return None;
    }
    let sequence = words.next()?.parse().ok()?;
    let time = words.next().unwrap_or_default().to_owned();
    Some(App::Udping {
        word: word.to_owned(),
        sequence,
        time,
    })
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// RFC 8762 unauthenticated packets: told apart by their must-be-zero
/// octets, since any port may carry them.
fn stamp(payload: &[u8]) -> Option<Stamp> {
    if payload.len() < 44 {
        return None;
    }
    let zero = |from: usize, to: usize| payload[from..to].iter().all(|&b| b == 0);
    let timestamp = (be32(payload, 4), be32(payload, 8));
    let error_estimate = u16::from_be_bytes([payload[12], payload[13]]);
    let mut stamp = Stamp {
        role: "sender",
        sequence: be32(payload, 0),
        timestamp,
        error_estimate,
        receive_timestamp: None,
        sender_sequence: None,
        sender_ttl: None,
    };
    if zero(14, 44) {
        return Some(stamp);
    }
    if zero(14, 16) && zero(38, 40) && zero(41, 44) {
        stamp.role = "reflector";
        stamp.receive_timestamp = Some((be32(payload, 16), be32(payload, 20)));
        stamp.sender_sequence = Some(be32(payload, 24));
        stamp.sender_ttl = Some(payload[40]);
        return Some(stamp);
    }
    None
}

fn tls(payload: &[u8]) -> Option<Tls> {
    let header = payload.get(..5)?;
    if !(20..=23).contains(&header[0]) || header[1] != 3 || header[2] > 4 {
        return None;
    }
    let mut record = Tls {
        content_type: header[0],
        version: u16::from_be_bytes([header[1], header[2]]),
        length: u16::from_be_bytes([header[3], header[4]]),
        handshake_type: None,
        server_name: None,
    };
    if record.content_type == 22 {
        record.handshake_type = payload.get(5).copied();
        if record.handshake_type == Some(1) {
            record.server_name = payload.get(5..).and_then(server_name);
        }
    }
    Some(record)
}

/// The SNI host name in a ClientHello (RFC 8446 §4.1.2, RFC 6066 §3).
fn server_name(hello: &[u8]) -> Option<String> {
    let mut at = 4 + 2 + 32; // handshake header, legacy_version, random
    let session = usize::from(*hello.get(at)?);
    at += 1 + session;
    let suites = usize::from(u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]));
    at += 2 + suites;
    let compression = usize::from(*hello.get(at)?);
    at += 1 + compression;
    let end = at + 2 + usize::from(u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]));
    at += 2;
    while at + 4 <= end.min(hello.len()) {
        let kind = u16::from_be_bytes([hello[at], hello[at + 1]]);
        let len = usize::from(u16::from_be_bytes([hello[at + 2], hello[at + 3]]));
        let body = hello.get(at + 4..at + 4 + len)?;
        if kind == 0 {
            // server_name_list: length, then (type 0, length, name).
            let name_len = usize::from(u16::from_be_bytes([*body.get(3)?, *body.get(4)?]));
            let name = body.get(5..5 + name_len)?;
            return String::from_utf8(name.to_vec()).ok();
        }
        at += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_secrets_are_masked() {
        assert_eq!(
            mask_smtp("AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            format!("AUTH PLAIN {MASK}")
        );
        assert_eq!(mask_smtp("AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(mask_smtp("c2VjcmV0"), MASK);
        assert_eq!(
            mask_smtp("MAIL FROM:<a@example.org>"),
            "MAIL FROM:<a@example.org>"
        );
        assert_eq!(mask_smtp("QUIT"), "QUIT");
    }

    #[test]
    fn chat_passwords_are_masked() {
        let frame = br#"{"type":"login","version":1,"name":"alice","password":"correct horse"}
"#;
        let Some(App::Chat { frames }) = chat(frame) else {
            panic!()
        };
        assert_eq!(frames[0].0, "login");
        assert!(!frames[0].1.contains("correct horse"));
        assert!(frames[0].1.contains(MASK));
    }

    #[test]
    fn stream_text_is_masked() {
        let text = "{\"type\":\"login\",\"password\":\"hunter22\"}\nAUTH PLAIN c2VjcmV0\r\nhello\n";
        let masked = mask_text(text);
        assert!(
            !masked.contains("hunter22") && !masked.contains("c2VjcmV0"),
            "{masked}"
        );
        assert!(
            masked.ends_with("AUTH PLAIN ********\r\nhello\n"),
            "{masked}"
        );
    }

    /// Found by the fuzzer: a multi-byte character across the fifth byte
    /// of a line was cut in the middle when looking for `AUTH `.
    #[test]
    fn lines_with_wide_characters_early_are_left_whole() {
        let text = "E\0%\0\u{75c}";
        assert_eq!(mask_text(text), text);
        assert_eq!(mask_text("AUT\u{e9} x"), "AUT\u{e9} x");
    }

    #[test]
    fn http_heads() {
        let Some(App::Http { start, headers }) = http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody")
        else {
            panic!()
        };
        assert_eq!(start, "GET / HTTP/1.1");
        assert_eq!(headers, [("Host".to_owned(), "x".to_owned())]);
        assert!(http(b"GETTING started").is_none());
    }

    #[test]
    fn udping_and_stamp() {
        assert!(matches!(
            udping(b"Ping 3 1700000000.5"),
            Some(App::Udping { sequence: 3, .. })
        ));
        let mut probe = [0u8; 44];
        probe[3] = 7;
        assert_eq!(stamp(&probe).unwrap().role, "sender");
        probe[16] = 1;
        probe[27] = 7;
        probe[40] = 64;
        let reflected = stamp(&probe).unwrap();
        assert_eq!(
            (
                reflected.role,
                reflected.sender_sequence,
                reflected.sender_ttl
            ),
            ("reflector", Some(7), Some(64))
        );
    }
}
