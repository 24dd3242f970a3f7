//! `netkit mail send --raw` (an existing message sent as it is, its
//! envelope from flags or, with -t, from its headers) and `--json` (one
//! object describing the session), against aiosmtpd, checking the exact
//! bytes it received.

#[path = "mail/support.rs"]
mod support;

use serde_json::Value;
use support::*;

/// A message written by hand as a mail tool would: CRLF lines, a folded
/// header, lines starting with dots, 8-bit text.
const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: bob@example.org,\r\n \"Carol, C.\" <carol@example.net>\r\n\
Subject: as it is\r\n\
Message-ID: <raw-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe.\r\n\
.leading dot\r\n\
..two dots\r\n\
.\r\n\
last line\r\n";

#[test]
fn raw_file_is_sent_byte_for_byte() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("raw-file");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let file = dir.write("message.eml", MESSAGE);
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--from",
            "envelope@example.org",
            "--to",
            "one@example.org",
            "--bcc",
            "two@example.org",
            "--raw",
            file.to_str().unwrap(),
        ],
        &[],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let received = received(&outdir);
    assert_eq!(received.len(), 1);
    assert_eq!(std::fs::read(&received[0].0).unwrap(), MESSAGE);
    // The envelope is the flags', whatever the headers say.
    assert_eq!(received[0].1["from"], "envelope@example.org");
    assert_eq!(
        received[0].1["rcpt"],
        serde_json::json!(["one@example.org", "two@example.org"])
    );
}

#[test]
fn raw_from_stdin_with_t_takes_the_envelope_from_the_headers() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("raw-t");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let mut message = b"Bcc: hidden@example.org,\r\n\tsecret@example.com\r\n".to_vec();
    message.extend_from_slice(MESSAGE);
    message.extend_from_slice(b"Bcc: in the body, not a header\r\n");
    let mut expected = MESSAGE.to_vec();
    expected.extend_from_slice(b"Bcc: in the body, not a header\r\n");

    let out = send(
        &["--server", &server.addr().to_string(), "--raw", "-", "-t"],
        &[],
        &message,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let received = received(&outdir);
    assert_eq!(received.len(), 1);
    let bytes = std::fs::read(&received[0].0).unwrap();
    assert_eq!(text(&bytes), text(&expected));
    assert_eq!(bytes, expected);
    assert_eq!(received[0].1["from"], "alice@example.org");
    assert_eq!(
        received[0].1["rcpt"],
        // In the order the headers give them.
        serde_json::json!([
            "hidden@example.org",
            "secret@example.com",
            "bob@example.org",
            "carol@example.net"
        ])
    );

    // -t only goes with --raw, and then not with --to.
    let usage = send(&["--raw", "-", "-t", "--to", "x@example.org"], &[], b"");
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage.stderr));
    let usage = send(&["-t", "--to", "x@example.org", "--body", "x"], &[], b"");
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage.stderr));
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: stdout is not one JSON object: {}",
            text(&out.stdout)
        )
    })
}

#[test]
fn json_describes_every_stage_of_a_starttls_session() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("json");
    let (server, outdir, cert) = aiosmtpd_tls(&dir, &["--user", "alice"]);
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--cacert",
            cert.to_str().unwrap(),
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--subject",
            "json",
            "--body",
            "hello",
            "--user",
            "alice",
            "--json",
        ],
        &[("NETKIT_SMTP_PASSWORD", PASSWORD)],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The password, and the PLAIN blob that carries it, are never shown.
    let stdout = text(&out.stdout);
    for secret in [
        PASSWORD,
        "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ",
        "AGFsaWNlA",
    ] {
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
    }
    let report = json_of(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["exit_code"], 0);
    assert!(report["elapsed_ms"].is_f64(), "{report}");
    let delivery = &report["deliveries"][0];
    let stages: Vec<&str> = delivery["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "connect", "greeting", "ehlo", "tls", "ehlo", "auth", "mail", "rcpt", "data",
            "message", "quit"
        ],
        "{report:#}"
    );
    for stage in delivery["stages"].as_array().unwrap() {
        assert!(stage["elapsed_ms"].as_f64().unwrap() >= 0.0, "{stage}");
    }
    let stage = |name: &str| {
        delivery["stages"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|stage| stage["stage"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(stage("greeting")["replies"][0]["code"], 220);
    assert_eq!(stage("auth")["sent"][0], "AUTH PLAIN ********");
    assert_eq!(stage("auth")["replies"][0]["code"], 235);
    // aiosmtpd_server.py offers no SIZE unless told to.
    assert_eq!(stage("mail")["sent"][0], "MAIL FROM:<a@example.org>");
    assert_eq!(stage("rcpt")["sent"][0], "RCPT TO:<b@example.org>");
    assert!(stage("message")["message_bytes"].as_u64().unwrap() > 0);
    assert_eq!(stage("message")["replies"][0]["code"], 250);
    assert_eq!(stage("quit")["replies"][0]["code"], 221);
    assert!(
        delivery["tls"]["version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1."),
        "{report}"
    );
    // aiosmtpd_server.py answers `250 2.0.0 Ok: queued as N`.
    assert_eq!(delivery["queue_id"], "1");
    assert_eq!(delivery["accepted"], serde_json::json!(["b@example.org"]));
    assert_eq!(received(&outdir).len(), 1);
}

#[test]
fn json_reports_a_failure_once_with_its_exit_code() {
    let closed = testkit::closed_tcp_port().to_string();
    let out = send(
        &[
            "--server",
            &closed,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "x",
            "--json",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(20));
    let report = json_of(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["exit_code"], 20);
    let delivery = &report["deliveries"][0];
    assert_eq!(delivery["error"]["stage"], "connect");
    assert!(
        delivery["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{report}"
    );
    assert!(
        !text(&out.stderr).contains("connection refused"),
        "{}",
        text(&out.stderr)
    );
}
