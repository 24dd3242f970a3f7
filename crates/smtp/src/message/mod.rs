//! Message composition. mail-builder writes the headers and the MIME
//! structure; attachments are not loaded into it: each one's body is a
//! placeholder that is cut out of the result, and at send time the file is
//! read and base64-encoded a chunk at a time in its place. So a message with
//! a 200 MiB attachment takes no more memory than one with a 2 KiB one, and
//! its exact size is known before it is sent (for `SIZE=`).

mod chunks;
mod header;
mod raw;

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};

pub use chunks::Chunks;
pub use header::{ExtraHeader, HeaderError};
pub use raw::{HeaderEnvelope, header_envelope, without_bcc};

use crate::address::Mailbox;

/// Base64 input bytes per encoded line: 57 bytes make the 76 characters
/// RFC 2045 allows.
const BASE64_LINE_INPUT: u64 = 57;
const BASE64_LINE: u64 = 76;

/// Everything the user asked the message to hold.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<PathBuf>,
    pub headers: Vec<ExtraHeader>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot attach {path}: {source}")]
    Attachment { path: PathBuf, source: io::Error },
    #[error("cannot attach {0}: it is not a regular file")]
    NotAFile(PathBuf),
    #[error("cannot build the message: {0}")]
    Build(io::Error),
}

/// A composed message, ready to be streamed.
#[derive(Debug, Clone)]
pub struct Message {
    segments: Vec<Segment>,
    size: u64,
    eight_bit: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Bytes(Vec<u8>),
    /// A file whose contents go here, base64-encoded in 76-character lines
    /// separated (not terminated) by CRLF.
    Base64File {
        path: PathBuf,
        len: u64,
    },
}

impl Segment {
    fn size(&self) -> u64 {
        match self {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::Base64File { len, .. } => base64_len(*len),
        }
    }
}

/// Length of `len` bytes base64-encoded in lines joined by CRLF.
fn base64_len(len: u64) -> u64 {
    let encoded = len.div_ceil(3) * 4;
    let lines = encoded.div_ceil(BASE64_LINE);
    encoded + 2 * lines.saturating_sub(1)
}

impl Message {
    /// A message given as bytes, sent as it is but for its line endings,
    /// which become CRLF.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self::from_segments(vec![Segment::Bytes(bytes)])
    }

    fn from_segments(mut segments: Vec<Segment>) -> Self {
        // The size announced in SIZE= counts CRLF pairs (RFC 1870), so the
        // line endings are made what the wire will carry before counting:
        // CRLF everywhere, the last line ended too. Segments are cut after
        // a CRLF, never inside one, so each can be fixed alone.
        for segment in &mut segments {
            if let Segment::Bytes(bytes) = segment {
                *bytes = crlf(bytes);
            }
        }
        if let Some(Segment::Bytes(last)) = segments.last_mut()
            && !last.is_empty()
            && !last.ends_with(b"\n")
        {
            last.extend_from_slice(b"\r\n");
        }
        let size = segments.iter().map(Segment::size).sum();
        // Attachments are base64, so only the in-memory pieces can hold
        // bytes above 127.
        let eight_bit = segments.iter().any(|segment| match segment {
            Segment::Bytes(bytes) => !bytes.is_ascii(),
            Segment::Base64File { .. } => false,
        });
        Self {
            segments,
            size,
            eight_bit,
        }
    }

    /// Whether any byte has its high bit set (then DATA needs
    /// `BODY=8BITMIME`, RFC 6152).
    pub fn is_8bit(&self) -> bool {
        self.eight_bit
    }

    /// Its size in bytes as it will be sent, before dot-stuffing.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the message a chunk at a time.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks::new(&self.segments)
    }
}

impl Draft {
    pub fn compose(&self) -> Result<Message, ComposeError> {
        let placeholder = Placeholder::new();
        let mut files = Vec::new();
        let mut inline = Vec::new();
        let mut attached = Vec::new();
        for path in &self.attachments {
            let len = file_len(path)?;
            let name = file_name(path);
            let content_type = mime_guess::from_path(path)
                .first_or_octet_stream()
                .essence_str()
                .to_owned();
            let marker = placeholder.marker(files.len());
            files.push((marker.clone(), path.clone(), len));
            let part = MimePart::new(
                ContentType::new(content_type),
                BodyPart::Binary(marker.into_bytes().into()),
            );
            let referenced = self
                .html
                .as_deref()
                .is_some_and(|html| references_cid(html, &name));
            if referenced {
                inline.push(
                    part.header(
                        "Content-Disposition",
                        ContentType::new("inline").attribute("filename", name.clone()),
                    )
                    .cid(name)
                    .transfer_encoding("base64"),
                );
            } else {
                attached.push(part.attachment(name).transfer_encoding("base64"));
            }
        }

        // A --header of the same name replaces what would be generated, as
        // swaks' --header does (mail-builder does so itself for Date,
        // Message-ID and MIME-Version).
        let given = |name: &str| {
            self.headers
                .iter()
                .any(|header| header.name.eq_ignore_ascii_case(name))
        };
        let mut builder = MessageBuilder::new();
        if let Some(from) = &self.from
            && !given("From")
        {
            builder = builder.from(address(from));
        }
        if !self.to.is_empty() && !given("To") {
            builder = builder.to(address_list(&self.to));
        }
        if !self.cc.is_empty() && !given("Cc") {
            builder = builder.cc(address_list(&self.cc));
        }
        if let Some(subject) = &self.subject
            && !given("Subject")
        {
            builder = builder.subject(subject.as_str());
        }
        for header in &self.headers {
            builder = builder.header(header.name.clone(), Text::new(header.value.clone()));
        }
        builder = builder.body(self.body(inline, attached));
        let skeleton = builder.write_to_vec().map_err(ComposeError::Build)?;
        Ok(Message::from_segments(splice(skeleton, files)))
    }

    /// text/plain alone; with HTML, multipart/alternative (the HTML inside
    /// multipart/related with its inline images); with attachments, all
    /// that first in multipart/mixed.
    fn body<'a>(&'a self, inline: Vec<MimePart<'a>>, attached: Vec<MimePart<'a>>) -> MimePart<'a> {
        let text = self
            .text
            .as_deref()
            .map(|text| MimePart::new("text/plain", text));
        let html = self.html.as_deref().map(|html| {
            let html = MimePart::new("text/html", html);
            if inline.is_empty() {
                html
            } else {
                let mut related = vec![html];
                related.extend(inline);
                MimePart::new("multipart/related", related)
            }
        });
        let body = match (text, html) {
            (Some(text), Some(html)) => MimePart::new("multipart/alternative", vec![text, html]),
            (Some(text), None) => text,
            (None, Some(html)) => html,
            (None, None) => MimePart::new("text/plain", ""),
        };
        if attached.is_empty() {
            return body;
        }
        let mut mixed = vec![body];
        mixed.extend(attached);
        MimePart::new("multipart/mixed", mixed)
    }
}

fn address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(mailbox.name.as_deref(), mailbox.address.as_str())
}

fn address_list(mailboxes: &[Mailbox]) -> Address<'_> {
    match mailboxes {
        [one] => address(one),
        many => Address::new_list(many.iter().map(address).collect()),
    }
}

fn file_len(path: &Path) -> Result<u64, ComposeError> {
    let meta = std::fs::metadata(path).map_err(|source| ComposeError::Attachment {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ComposeError::NotAFile(path.to_owned()));
    }
    // Opening now reports an unreadable file before anything is sent.
    std::fs::File::open(path).map_err(|source| ComposeError::Attachment {
        path: path.to_owned(),
        source,
    })?;
    Ok(meta.len())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned())
}

/// The bytes with every line ending CRLF, a bare CR or LF included.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                rest = rest.strip_prefix(b"\n").unwrap_or(rest);
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
    }
    out
}

/// Whether `html` refers to `cid:NAME` as a whole token.
fn references_cid(html: &str, name: &str) -> bool {
    let needle = format!("cid:{name}");
    html.match_indices(&needle).any(|(at, _)| {
        html[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|next| matches!(next, '"' | '\'' | ')' | '>' | ' ' | '\t' | '\r' | '\n'))
    })
}

/// Random markers for attachment bodies: they cannot occur in anything else
/// mail-builder writes, since they start with a NUL that text parts encode.
#[derive(Debug)]
struct Placeholder(u64);

impl Placeholder {
    fn new() -> Self {
        Self(RandomState::new().hash_one(std::process::id()))
    }

    fn marker(&self, index: usize) -> String {
        format!("\0netkit-attachment-{:016x}-{index}\0", self.0)
    }
}

/// Cuts the skeleton at each marker and puts the file in its place. The
/// markers appear in MIME order, not the order the files were given.
fn splice(skeleton: Vec<u8>, files: Vec<(String, PathBuf, u64)>) -> Vec<Segment> {
    let mut found: Vec<(usize, String, PathBuf, u64)> = files
        .into_iter()
        .map(|(marker, path, len)| {
            let at = skeleton
                .windows(marker.len())
                .position(|window| window == marker.as_bytes())
                .expect("mail-builder writes raw parts verbatim");
            (at, marker, path, len)
        })
        .collect();
    found.sort_by_key(|(at, ..)| *at);
    let mut segments = Vec::new();
    let mut done = 0;
    for (at, marker, path, len) in found {
        segments.push(Segment::Bytes(skeleton[done..at].to_vec()));
        segments.push(Segment::Base64File { path, len });
        done = at + marker.len();
    }
    segments.push(Segment::Bytes(skeleton[done..].to_vec()));
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(57), 76);
        assert_eq!(base64_len(58), 76 + 2 + 4);
        assert_eq!(base64_len(114), 76 + 2 + 76);
    }

    #[test]
    fn line_endings_are_counted_as_sent() {
        for (given, sent) in [
            (&b"a\nb\r.c\r\nd"[..], &b"a\r\nb\r\n.c\r\nd\r\n"[..]),
            (b"ends\r\n", b"ends\r\n"),
            (b"cr at the end\r", b"cr at the end\r\n"),
            (b"", b""),
        ] {
            let message = Message::from_bytes(given.to_vec());
            let [Segment::Bytes(bytes)] = &message.segments[..] else {
                panic!("one segment");
            };
            assert_eq!(bytes, sent);
            assert_eq!(message.size(), sent.len() as u64);
        }
    }

    #[test]
    fn cid_references_are_whole_names() {
        let html = r#"<img src="cid:logo.png"><img src='cid:a.gif'>"#;
        assert!(references_cid(html, "logo.png"));
        assert!(references_cid(html, "a.gif"));
        assert!(!references_cid(html, "logo"));
        assert!(!references_cid(html, "b.gif"));
    }
}
