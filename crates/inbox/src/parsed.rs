//! A stored message read as MIME: what the index keeps for listing and
//! searching (`Digest`), what the API shows of one message (`Parsed`),
//! and the decoded bytes of one part. Parsing never fails: a message
//! that is not MIME at all still has headers and a body of sorts.

use mail_parser::{Address, HeaderName, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// The most of a body kept in the index for text search.
const INDEXED_BODY: usize = 64 * 1024;
const SNIPPET: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mailbox {
    pub name: String,
    pub address: String,
}

/// What the index keeps of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub message_id: String,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub attachments: u32,
    pub snippet: String,
    /// Plain text (or HTML made text), cut to `INDEXED_BODY` bytes.
    pub body: String,
}

/// One message as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parsed {
    #[serde(rename = "MessageID")]
    pub message_id: String,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub return_path: String,
    pub subject: String,
    /// The Date header, RFC 3339; absent if missing or unreadable.
    pub date: Option<String>,
    pub text: String,
    #[serde(rename = "HTML")]
    pub html: String,
    /// Every header of the message, in order, values as received
    /// (folding kept).
    pub headers: Vec<HeaderField>,
    /// Every leaf MIME part.
    pub parts: Vec<Part>,
    /// Parts shown in place (an inline image with a Content-ID).
    pub inline: Vec<Part>,
    pub attachments: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Part {
    #[serde(rename = "PartID")]
    pub part_id: usize,
    pub content_type: String,
    pub file_name: String,
    #[serde(rename = "ContentID")]
    pub content_id: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// The decoded content of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartBody {
    pub content_type: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// The message, if there is one at all (not for empty input); every
/// accessor of `Message` may assume it has a root part.
fn parse_mime(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default()
        .parse(raw)
        .filter(|message| !message.parts.is_empty())
}

pub fn digest(raw: &[u8]) -> Digest {
    let Some(message) = parse_mime(raw) else {
        return Digest::default();
    };
    let mut body = message
        .body_text(0)
        .map(|text| text.into_owned())
        .unwrap_or_default();
    let snippet = snippet(&body);
    cut(&mut body, INDEXED_BODY);
    Digest {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        from: mailboxes(message.from()).into_iter().next(),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        subject: message.subject().unwrap_or_default().to_owned(),
        attachments: message.attachment_count() as u32,
        snippet,
        body,
    }
}

pub fn parse(raw: &[u8]) -> Parsed {
    let Some(message) = parse_mime(raw) else {
        return Parsed::default();
    };
    let headers = message
        .headers()
        .iter()
        .map(|header| HeaderField {
            name: text_at(
                raw,
                header.offset_field as usize,
                header.offset_start as usize,
            )
            .trim_end_matches(':')
            .trim()
            .to_owned(),
            value: text_at(
                raw,
                header.offset_start as usize,
                header.offset_end as usize,
            )
            .trim()
            .to_owned(),
        })
        .collect();
    let mut parts = Vec::new();
    let mut attachments = Vec::new();
    for (part_id, part) in message.parts.iter().enumerate() {
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let described = Part {
            part_id,
            content_type: content_type(part),
            file_name: part.attachment_name().unwrap_or_default().to_owned(),
            content_id: part
                .content_id()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_owned(),
            size: part.len(),
        };
        if message.attachments.contains(&(part_id as u32)) {
            attachments.push(described.clone());
        }
        parts.push(described);
    }
    let text = message
        .text_body
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .find_map(|part| match &part.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    let html = message
        .html_body
        .iter()
        .filter_map(|&id| message.parts.get(id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    // A part the HTML shows in place (`cid:`) is inline, whatever its
    // Content-Disposition says; the rest are attachments.
    let (inline, attachments) = attachments.into_iter().partition(|part: &Part| {
        !part.content_id.is_empty() && html.contains(&format!("cid:{}", part.content_id))
    });
    Parsed {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        from: mailboxes(message.from()).into_iter().next(),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        bcc: mailboxes(message.bcc()),
        reply_to: mailboxes(message.reply_to()),
        return_path: message
            .header(HeaderName::ReturnPath)
            .and_then(|value| value.as_text())
            .unwrap_or_default()
            .to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        date: message.date().map(|date| date.to_rfc3339()),
        text,
        html,
        headers,
        parts,
        inline,
        attachments,
    }
}

/// Part `part_id` (as listed in `Parsed::parts`), decoded.
pub fn part(raw: &[u8], part_id: usize) -> Option<PartBody> {
    let message = parse_mime(raw)?;
    let part = message.parts.get(part_id)?;
    if matches!(part.body, PartType::Multipart(_)) {
        return None;
    }
    let bytes = match &part.body {
        PartType::Message(inner) => inner.raw_message.to_vec(),
        _ => part.contents().to_vec(),
    };
    Some(PartBody {
        content_type: content_type(part),
        file_name: part.attachment_name().unwrap_or_default().to_owned(),
        bytes,
    })
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match part.body {
            PartType::Html(_) => "text/html".into(),
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Text(_) => "text/plain".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|address| {
            address
                .iter()
                .map(|addr| Mailbox {
                    name: addr.name().unwrap_or_default().to_owned(),
                    address: addr.address().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text_at(raw: &[u8], start: usize, end: usize) -> String {
    raw.get(start..end)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default()
}

fn snippet(body: &str) -> String {
    let words = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut snippet: String = words.chars().take(SNIPPET).collect();
    if snippet.len() < words.len() {
        snippet.push('…');
    }
    snippet
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: \"Ann Example\" <ann@example.org>\r\n\
To: bob@example.org, Carol <carol@example.org>\r\n\
Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\
X-Folded: one\r\n two\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/related; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hi <img src=\"cid:logo@x\"></p>\r\n\
--b2\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo@x>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
\r\n\
%PDF-1.4\r\n\
--b1--\r\n";

    #[test]
    fn a_mixed_message() {
        let parsed = parse(MIXED);
        assert_eq!(parsed.subject, "grüße");
        assert_eq!(
            parsed.from,
            Some(Mailbox {
                name: "Ann Example".into(),
                address: "ann@example.org".into()
            })
        );
        assert_eq!(parsed.to.len(), 2);
        assert_eq!(parsed.message_id, "m1@example.org");
        assert!(parsed.html.contains("cid:logo@x"));
        let folded = parsed
            .headers
            .iter()
            .find(|h| h.name == "X-Folded")
            .unwrap();
        assert_eq!(folded.value, "one\r\n two");
        assert_eq!(parsed.inline.len(), 1);
        assert_eq!(parsed.inline[0].content_id, "logo@x");
        assert_eq!(parsed.inline[0].size, 8);
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].file_name, "report.pdf");
        let pdf = part(MIXED, parsed.attachments[0].part_id).unwrap();
        assert_eq!(pdf.bytes, b"%PDF-1.4");
        assert_eq!(pdf.content_type, "application/pdf");
        let png = part(MIXED, parsed.inline[0].part_id).unwrap();
        assert!(png.bytes.starts_with(b"\x89PNG"));

        let digest = digest(MIXED);
        assert_eq!(digest.attachments, 2);
        assert!(digest.body.contains("Hi"), "{digest:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let parsed = parse(&raw);
            let _ = digest(&raw);
            for part in parsed.parts {
                proptest::prop_assert!(super::part(&raw, part.part_id).is_some());
            }
        }

        #[test]
        fn mangled_mime_parses_without_panicking(cut in 0..MIXED.len(), junk in "[ -~\r\n]{0,40}") {
            let mut raw = MIXED[..cut].to_vec();
            raw.extend_from_slice(junk.as_bytes());
            raw.extend_from_slice(&MIXED[cut..]);
            let _ = parse(&raw);
            let _ = digest(&raw);
        }
    }

    #[test]
    fn not_mime_at_all() {
        for raw in [&b""[..], b"\xff\xfe", b"no headers here", b"Subject: x\r\n"] {
            let _ = parse(raw);
            let _ = digest(raw);
            assert!(part(raw, 99).is_none());
        }
    }
}
