//! Composed messages: the announced size is exactly what is streamed, and
//! attachments of every awkward length come out as proper base64 lines.

use std::path::PathBuf;

use smtp::{Draft, Message};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netkit-smtp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn stream(message: &Message) -> Vec<u8> {
    let mut chunks = message.chunks();
    let mut all = Vec::new();
    while let Some(chunk) = chunks.next().await.unwrap() {
        all.extend_from_slice(chunk);
    }
    all
}

#[tokio::test]
async fn size_is_exact_for_every_attachment_length() {
    let dir = scratch("sizes");
    for len in [0usize, 1, 2, 3, 56, 57, 58, 114, 1000, 58_369, 200_000] {
        let path = dir.join(format!("file-{len}.bin"));
        std::fs::write(
            &path,
            (0..len).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        let message = Draft {
            from: Some("a@example.org".parse().unwrap()),
            to: vec!["b@example.org".parse().unwrap()],
            text: Some("body".into()),
            attachments: vec![path],
            ..Draft::default()
        }
        .compose()
        .unwrap();
        let bytes = stream(&message).await;
        assert_eq!(
            message.size(),
            bytes.len() as u64,
            "attachment of {len} bytes"
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.lines().all(|line| line.len() <= 998),
            "no overlong line"
        );
        assert!(!text.contains('\0'), "a placeholder was left behind");
        let marker = "Content-Transfer-Encoding: base64\r\n\r\n";
        let start = text.find(marker).unwrap() + marker.len();
        let end = start + text[start..].find("\r\n--").unwrap();
        let encoded = &text[start..end];
        assert!(
            encoded
                .split("\r\n")
                .all(|line| line.len() <= 76 && (len == 0 || !line.is_empty()))
        );
        assert_eq!(encoded.replace("\r\n", "").len(), len.div_ceil(3) * 4);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn missing_attachment_is_reported_before_sending() {
    let err = Draft {
        attachments: vec!["/nonexistent/netkit/file.pdf".into()],
        ..Draft::default()
    }
    .compose()
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/netkit/file.pdf"),
        "{err}"
    );
    let err = Draft {
        attachments: vec![std::env::temp_dir()],
        ..Draft::default()
    }
    .compose()
    .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[tokio::test]
async fn headers_only_what_was_asked() {
    let message = Draft {
        from: Some("Zoë <zoe@example.org>".parse().unwrap()),
        to: vec![
            "b@example.org".parse().unwrap(),
            "c@example.org".parse().unwrap(),
        ],
        subject: Some("plain".into()),
        headers: vec![
            "X-Tag: one".parse().unwrap(),
            "Date: Mon, 1 Jan 2024 00:00:00 +0000".parse().unwrap(),
        ],
        ..Draft::default()
    }
    .compose()
    .unwrap();
    let text = String::from_utf8(stream(&message).await).unwrap();
    assert!(text.contains("From: =?utf-8?"), "{text}");
    assert!(
        text.contains("To: <b@example.org>, <c@example.org>\r\n"),
        "{text}"
    );
    assert!(text.contains("X-Tag: one\r\n"), "{text}");
    assert_eq!(
        text.matches("Date: ").count(),
        1,
        "a given Date replaces the generated one"
    );
    assert!(text.contains("Date: Mon, 1 Jan 2024"), "{text}");
    // No Bcc header (random parts such as the Message-ID may spell "bcc").
    assert!(
        !text
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
        "{text}"
    );
    assert!(text.contains("Content-Type: text/plain"), "{text}");
}

#[tokio::test]
async fn only_non_ascii_addresses_make_a_composed_message_8bit() {
    let compose = |to: &str| {
        Draft {
            from: Some("Zoë <zoe@example.org>".parse().unwrap()),
            to: vec![to.parse().unwrap()],
            subject: Some("grüße".into()),
            text: Some("ünïcode text is encoded".into()),
            ..Draft::default()
        }
        .compose()
        .unwrap()
    };
    let encoded = compose("b@example.org");
    assert!(!encoded.is_8bit());
    assert!(stream(&encoded).await.is_ascii());
    let raw = compose("jürgen@bücher.example");
    assert!(raw.is_8bit());
    assert!(!stream(&raw).await.is_ascii());
}

/// SIZE= is the message as sent, CRLF pairs counted (RFC 1870): a body
/// without a final newline still has its last line ended on the wire.
#[tokio::test]
async fn size_counts_the_last_line_ending() {
    let message = Draft {
        from: Some("a@example.org".parse().unwrap()),
        to: vec!["b@example.org".parse().unwrap()],
        text: Some("one\ntwo, no newline".into()),
        ..Draft::default()
    }
    .compose()
    .unwrap();
    let bytes = stream(&message).await;
    assert!(bytes.ends_with(b"\r\ntwo, no newline\r\n"));
    assert_eq!(message.size(), bytes.len() as u64);
    let mut wire = Vec::new();
    let mut stuffer = smtp::DotStuffer::new();
    stuffer.encode(&bytes, &mut wire);
    stuffer.finish(&mut wire);
    assert_eq!(
        wire.len() as u64,
        message.size() + 3,
        "only the `.` line added"
    );
}
