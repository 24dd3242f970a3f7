//! An existing RFC 5322 message sent as it is: its envelope read from its
//! own header fields as `sendmail -t` does (To, Cc and Bcc recipients,
//! the From sender), and its Bcc fields taken out before it is sent.

use crate::address::{AddressError, Mailbox};

/// The envelope a message's header section gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEnvelope {
    /// The mailboxes of `From:`, usually one.
    pub from: Vec<Mailbox>,
    /// `To:`, `Cc:` and `Bcc:` in order, each address once.
    pub recipients: Vec<Mailbox>,
}

/// One header field: its name and its value with folding undone.
fn fields(message: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header_lines(message) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(text);
            }
        } else if let Some((name, value)) = text.split_once(':') {
            fields.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    fields
}

/// The lines of the header section, each with its line ending, up to the
/// empty line that ends it.
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split_inclusive(|&b| b == b'\n')
        .take_while(|line| !matches!(*line, b"\n" | b"\r\n"))
}

/// Reads the envelope from `message`'s header fields.
pub fn header_envelope(message: &[u8]) -> Result<HeaderEnvelope, AddressError> {
    let mut from = Vec::new();
    let mut recipients: Vec<Mailbox> = Vec::new();
    for (name, value) in fields(message) {
        let list = if name.eq_ignore_ascii_case("From") {
            &mut from
        } else if ["To", "Cc", "Bcc"]
            .iter()
            .any(|field| name.eq_ignore_ascii_case(field))
        {
            &mut recipients
        } else {
            continue;
        };
        for address in address_list(&value) {
            let mailbox: Mailbox = address.parse()?;
            let known = list
                .iter()
                .any(|m| m.address.eq_ignore_ascii_case(&mailbox.address));
            if !known {
                list.push(mailbox);
            }
        }
    }
    Ok(HeaderEnvelope { from, recipients })
}

/// `message` without its `Bcc:` fields (continuation lines included): the
/// blind recipients are in the envelope only.
pub fn without_bcc(message: &[u8]) -> Vec<u8> {
    let header_len: usize = header_lines(message).map(<[u8]>::len).sum();
    let (header, body) = message.split_at(header_len);
    let mut out = Vec::with_capacity(message.len());
    let mut skipping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let continued = line.starts_with(b" ") || line.starts_with(b"\t");
        if !continued {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            skipping = name.trim_ascii().eq_ignore_ascii_case(b"Bcc");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// The addr-specs of an address list (RFC 5322 §3.4): commas inside
/// quotes, comments and angle brackets do not separate, a group's name and
/// its `;` are dropped, comments are skipped, and of `Name <addr>` the
/// address is kept.
fn address_list(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    // The text outside angle brackets, and what was inside them.
    let mut bare = String::new();
    let mut angled: Option<String> = None;
    let mut in_angle = false;
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = 0usize;
    let mut finish = |bare: &mut String, angled: &mut Option<String>| {
        let address = match angled.take() {
            // A source route (`<@relay:addr>`) is obsolete; the address
            // is what follows its colon.
            Some(inner) => inner
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            None => bare.split_whitespace().collect(),
        };
        bare.clear();
        if !address.is_empty() {
            found.push(address);
        }
    };
    for c in value.chars() {
        let target = match angled.as_mut() {
            Some(inner) if in_angle => inner,
            _ => &mut bare,
        };
        if escaped {
            escaped = false;
            if quoted {
                target.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            _ if quoted => target.push(c),
            '(' => comment += 1,
            ')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' if !in_angle => {
                in_angle = true;
                angled = Some(String::new());
            }
            '>' if in_angle => in_angle = false,
            _ if in_angle => target.push(c),
            // What came before is a group's name.
            ':' => bare.clear(),
            ',' | ';' => finish(&mut bare, &mut angled),
            // A display name before `<`, or anything after `>`.
            _ => target.push(c),
        }
    }
    finish(&mut bare, &mut angled);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(mailboxes: &[Mailbox]) -> Vec<&str> {
        mailboxes.iter().map(|m| m.address.as_str()).collect()
    }

    #[test]
    fn address_lists() {
        assert_eq!(address_list(" a@b.example"), ["a@b.example"]);
        assert_eq!(
            address_list(r#""Doe, Jane" <jane@x.example>, bob@y.example (Bob, the builder)"#),
            ["jane@x.example", "bob@y.example"]
        );
        assert_eq!(
            address_list("friends: c@z.example, <d@z.example>;, e@z.example"),
            ["c@z.example", "d@z.example", "e@z.example"]
        );
        assert!(address_list("undisclosed-recipients:;").is_empty());
        assert_eq!(
            address_list("<@relay.example:f@z.example>"),
            ["f@z.example"]
        );
        assert_eq!(
            address_list("=?UTF-8?Q?J=C3=B6rg?= <j@x.example>"),
            ["j@x.example"]
        );
    }

    #[test]
    fn envelope_from_headers() {
        let message = b"From: Alice <alice@example.org>\r\nTo: bob@example.org,\r\n carol@example.org\r\nCc: Bob <BOB@example.org>\r\nBcc: secret@example.net\r\nSubject: To: nobody@example.org\r\n\r\nTo: body@example.org\r\n";
        let envelope = header_envelope(message).unwrap();
        assert_eq!(addresses(&envelope.from), ["alice@example.org"]);
        assert_eq!(
            addresses(&envelope.recipients),
            ["bob@example.org", "carol@example.org", "secret@example.net"]
        );
        assert!(header_envelope(b"To: not an address\r\n\r\n").is_err());
    }

    #[test]
    fn bcc_is_taken_out_and_nothing_else() {
        let message = b"From: a@example.org\nBcc: x@example.org,\n\ty@example.org\nTo: b@example.org\nBCC : z@example.org\n\nBcc: stays in the body\n";
        assert_eq!(
            without_bcc(message),
            b"From: a@example.org\nTo: b@example.org\n\nBcc: stays in the body\n"
        );
        let plain = b"To: b@example.org\r\n\r\nbody\r\n";
        assert_eq!(without_bcc(plain), plain);
    }
}
