//! `netkit mail send` end to end against aiosmtpd, an SMTP server we did not
//! write, started by each test; what arrived is read back with python3's
//! `email` package. The failure paths are in mail_failures.rs.

#[path = "mail/support.rs"]
mod support;

use support::*;

const BODY: &str = "Hello,\n.this line starts with a dot\n..and this one with two\n.\nend.\n";

#[test]
fn full_message_over_starttls_with_auth_plain() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("full");
    let (server, outdir, cert) = aiosmtpd_tls(&dir, &["--user", "alice"]);
    let logo = binary_blob(3000);
    let report = binary_blob(100_003);
    let logo_path = dir.write("logo.png", &logo);
    let report_path = dir.write("report.pdf", &report);
    let html = dir.write(
        "page.html",
        b"<html><body><p>Hi!</p><img src=\"cid:logo.png\"></body></html>\n",
    );

    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--cacert",
            cert.to_str().unwrap(),
            "--user",
            "alice",
            "--from",
            "Alice Sender <alice@example.org>",
            "--to",
            "bob@example.org",
            "--cc",
            "Carol <carol@example.org>",
            "--bcc",
            "dave@example.org",
            "--subject",
            "Grüße aus netkit ✓",
            "--body",
            "-",
            "--html-file",
            html.to_str().unwrap(),
            "--attach",
            report_path.to_str().unwrap(),
            "--attach",
            logo_path.to_str().unwrap(),
            "--header",
            "X-Test-Run: 42",
        ],
        // The most verbose logs, rustls' handshake included, must not
        // show the password either.
        &[("NETKIT_SMTP_PASSWORD", PASSWORD), ("RUST_LOG", "trace")],
        BODY.as_bytes(),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // The transcript: plaintext, then STARTTLS, then everything inside TLS,
    // with the credentials masked.
    assert!(stdout.contains("<-  220 "), "{stdout}");
    assert!(stdout.contains(" -> EHLO client.test"), "{stdout}");
    assert!(stdout.contains(" -> STARTTLS"), "{stdout}");
    assert!(stdout.contains("=== TLS started with TLSv1."), "{stdout}");
    assert!(
        stdout.contains("=== TLS peer certificate verified: subject CN="),
        "{stdout}"
    );
    assert!(stdout.contains(" ~> EHLO client.test"), "{stdout}");
    assert!(stdout.contains(" ~> AUTH PLAIN ********"), "{stdout}");
    assert!(stdout.contains("<~  235"), "{stdout}");
    assert!(
        stdout.contains(" ~> RCPT TO:<dave@example.org>"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" ~> ..this line starts with a dot"),
        "{stdout}"
    );
    assert!(stdout.contains(" ~> QUIT"), "{stdout}");
    assert!(stderr.contains("TRACE rustls"), "trace logs on: {stderr}");
    let secret_b64 = "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ";
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains(PASSWORD) && !shown.contains(secret_b64));
        assert!(!shown.contains("AGFsaWNl"), "PLAIN blob shown: {shown}");
    }

    let received = received(&outdir);
    assert_eq!(received.len(), 1);
    let (eml, envelope) = &received[0];
    assert_eq!(envelope["from"], "alice@example.org");
    assert_eq!(
        envelope["rcpt"],
        serde_json::json!(["bob@example.org", "carol@example.org", "dave@example.org"])
    );
    assert_eq!(envelope["tls"], true);
    assert!(
        envelope["mail_options"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !o.as_str().unwrap().starts_with("SIZE")),
        "aiosmtpd does not advertise SIZE, so none is sent"
    );

    let extracted = dir.join("parts");
    let message = inspect(eml, Some(&extracted));
    assert_eq!(message["defects"], serde_json::json!([]));
    assert_eq!(header(&message, "subject"), ["Grüße aus netkit ✓"]);
    assert_eq!(
        header(&message, "from"),
        ["Alice Sender <alice@example.org>"]
    );
    assert_eq!(header(&message, "to"), ["bob@example.org"]);
    assert_eq!(header(&message, "cc"), ["Carol <carol@example.org>"]);
    assert_eq!(header(&message, "x-test-run"), ["42"]);
    assert_eq!(header(&message, "mime-version"), ["1.0"]);
    assert_eq!(header(&message, "message-id").len(), 1);
    assert_eq!(header(&message, "date").len(), 1);
    assert!(header(&message, "bcc").is_empty());
    let raw = std::fs::read(eml).unwrap();
    assert!(
        !text(&raw).contains("dave@example.org"),
        "Bcc leaked into the message"
    );
    assert!(
        text(&raw).contains("Subject: =?utf-8?"),
        "subject not RFC 2047 encoded"
    );

    let parts = parts(&message);
    let kinds: Vec<String> = parts
        .iter()
        .map(|p| {
            p["multipart"]
                .as_str()
                .or(p["type"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "application/pdf",
        ]
    );
    let text_part = &parts[2];
    assert_eq!(
        text_part["text"].as_str().unwrap().replace("\r\n", "\n"),
        BODY,
        "dot-stuffed lines restored exactly"
    );
    let image = &parts[5];
    assert_eq!(image["cid"], "<logo.png>");
    assert_eq!(image["disposition"], "inline");
    assert_eq!(std::fs::read(extracted.join("5")).unwrap(), logo);
    let pdf = &parts[6];
    assert_eq!(pdf["disposition"], "attachment");
    assert_eq!(pdf["filename"], "report.pdf");
    assert_eq!(std::fs::read(extracted.join("6")).unwrap(), report);
}

#[test]
fn implicit_tls_with_auth_login() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("implicit");
    let (server, outdir, cert) = aiosmtpd_tls(&dir, &["--implicit", "--user", "alice"]);
    let out = send(
        &[
            "--server",
            &format!("localhost:{}", server.addr().port()),
            "--tls-on-connect",
            "--cacert",
            cert.to_str().unwrap(),
            "--user",
            "alice",
            "--auth",
            "login",
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--subject",
            "implicit",
            "--body",
            "over TLS from the first byte",
        ],
        &[("NETKIT_SMTP_PASSWORD", PASSWORD), ("RUST_LOG", "trace")],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(" -> "), "nothing in plaintext: {stdout}");
    assert!(stdout.contains("<~  220 "), "{stdout}");
    assert!(stdout.contains(" ~> AUTH LOGIN"), "{stdout}");
    assert!(stdout.contains("<~  334 "), "{stdout}");
    assert!(stdout.contains(" ~> YWxpY2U="), "user name shown: {stdout}");
    assert!(stdout.contains(" ~> ********"), "{stdout}");
    assert!(stderr.contains("TRACE rustls"), "trace logs on: {stderr}");
    let secret_b64 = "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ";
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains(PASSWORD) && !shown.contains(secret_b64));
    }
    let received = received(&outdir);
    assert_eq!(received.len(), 1);
    let message = inspect(&received[0].0, None);
    assert_eq!(
        parts(&message)[0]["text"].as_str().unwrap().trim_end(),
        "over TLS from the first byte"
    );
}

#[test]
fn dump_prints_the_message() {
    if !testkit::require("python3") {
        return;
    }
    let dir = Scratch::new("dump");
    let blob = binary_blob(10_000);
    let data = dir.write("data.bin", &blob);
    let out = send(
        &[
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--bcc",
            "hidden@example.org",
            "--subject",
            "plain ascii",
            "--body",
            "just text",
            "--attach",
            data.to_str().unwrap(),
            "--user",
            "alice",
            "--dump",
        ],
        &[("NETKIT_SMTP_PASSWORD", PASSWORD), ("RUST_LOG", "trace")],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let eml = dir.write("dump.eml", &out.stdout);
    assert!(!text(&out.stdout).contains("hidden@example.org"));
    for shown in [text(&out.stdout), text(&out.stderr)] {
        assert!(!shown.contains(PASSWORD) && !shown.contains("Y29ycmVjdCBob3Jz"));
    }
    assert!(text(&out.stdout).contains("Subject: plain ascii\r\n"));
    let extracted = dir.join("parts");
    let message = inspect(&eml, Some(&extracted));
    let parts = parts(&message);
    assert_eq!(parts[1]["text"].as_str().unwrap().trim_end(), "just text");
    assert_eq!(parts[2]["type"], "application/octet-stream");
    assert_eq!(std::fs::read(extracted.join("2")).unwrap(), blob);
}

/// Non-ASCII addresses need SMTPUTF8 (RFC 6531) and make the message
/// 8-bit (BODY=8BITMIME, RFC 6152); a server without SMTPUTF8 is not sent
/// a MAIL it cannot take.
#[test]
fn non_ascii_addresses_use_smtputf8() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("utf8");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let args = |addr: &str| {
        [
            "--server",
            addr,
            "--from",
            "Zoë <zoë@exämple.org>",
            "--to",
            "jürgen@bücher.example",
            "--to",
            "plain@example.org",
            "--subject",
            "ünïcode",
            "--body",
            "grüße",
        ]
        .map(str::to_owned)
    };
    let server = aiosmtpd(&outdir, &[]);
    let addr = server.addr().to_string();
    let out = send(
        &args(&addr).iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
        b"",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(" -> MAIL FROM:<zoë@exämple.org> BODY=8BITMIME SMTPUTF8\n"),
        "{stdout}"
    );
    let first = received(&outdir);
    let envelope = &first[0].1;
    assert_eq!(envelope["from"], "zoë@exämple.org");
    assert_eq!(
        envelope["rcpt"],
        serde_json::json!(["jürgen@bücher.example", "plain@example.org"])
    );
    assert_eq!(
        envelope["mail_options"],
        serde_json::json!(["BODY=8BITMIME", "SMTPUTF8"])
    );
    let message = inspect(&first[0].0, None);
    assert_eq!(message["defects"], serde_json::json!([]));
    assert_eq!(header(&message, "from"), ["Zoë <zoë@exämple.org>"]);
    assert_eq!(
        header(&message, "to"),
        ["jürgen@bücher.example, plain@example.org"]
    );
    assert_eq!(header(&message, "subject"), ["ünïcode"]);
    assert_eq!(parts(&message)[0]["text"], "grüße");

    // ASCII addresses: no SMTPUTF8, and a 7-bit message needs no BODY=.
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--subject",
            "ünïcode",
            "--body",
            "grüße",
        ],
        &[],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(received_options(&outdir, 1), serde_json::json!([]));

    let outdir = dir.join("out-ascii-only");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--no-smtputf8"]);
    let addr = server.addr().to_string();
    let out = send(
        &args(&addr).iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(23), "{stdout}\n{stderr}");
    assert!(stderr.contains("needs SMTPUTF8"), "{stderr}");
    assert!(!stdout.contains("MAIL FROM"), "{stdout}");
    assert!(stdout.contains(" -> QUIT"), "{stdout}");
    assert!(received(&outdir).is_empty());
}

fn received_options(outdir: &std::path::Path, n: usize) -> serde_json::Value {
    received(outdir)[n].1["mail_options"].clone()
}

/// Bare LF and bare CR in the body become CRLF on the wire, lines of dots
/// are stuffed and restored, whatever the line endings around them.
#[test]
fn line_endings_are_normalised_and_dots_restored() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("crlf");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let body = dir.write(
        "body.txt",
        b"unix\nmac\rdos\r\n.\n.\r..\r...dots\nCR before LF\r\r\nlast line, no newline",
    );
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body-file",
            body.to_str().unwrap(),
        ],
        &[],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for stuffed in [" -> ..\n", " -> ...\n", " -> ....dots\n"] {
        assert!(stdout.contains(stuffed), "{stuffed:?} in {stdout}");
    }
    let received = received(&outdir);
    let raw = std::fs::read(&received[0].0).unwrap();
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert_eq!(raw[i - 1], b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
    let message = inspect(&received[0].0, None);
    assert_eq!(
        parts(&message)[0]["text"]
            .as_str()
            .unwrap()
            .replace("\r\n", "\n"),
        "unix\r\nmac\r\ndos\r\n.\r\n.\r\n..\r\n...dots\r\nCR before LF\r\n\r\nlast line, no newline\r\n"
            .replace("\r\n", "\n")
    );
}

#[test]
fn headers_given_replace_generated_ones() {
    let out = send(
        &[
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--subject",
            "generated",
            "--header",
            "Subject: given",
            "--header",
            "To: undisclosed-recipients:;",
            "--body",
            "x",
            "--dump",
        ],
        &[],
        b"",
    );
    let dump = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(dump.matches("Subject:").count(), 1, "{dump}");
    assert!(dump.contains("Subject: given\r\n"), "{dump}");
    assert!(dump.contains("To: undisclosed-recipients:;\r\n"), "{dump}");
    assert!(!dump.contains("b@example.org"), "{dump}");

    for structural in ["Content-Type: text/html", "MIME-Version: 1.0"] {
        let out = send(
            &[
                "--from",
                "a@example.org",
                "--to",
                "b@example.org",
                "--header",
                structural,
                "--dump",
            ],
            &[],
            b"",
        );
        assert_eq!(out.status.code(), Some(2), "{structural}");
        assert!(
            text(&out.stderr).contains("written by netkit"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// When the server advertises SIZE, MAIL carries SIZE= (RFC 1870): the
/// message's exact size as the server receives it, CRLF pairs counted,
/// whether or not the body ends with a newline. A message over the limit
/// is not sent at all.
#[test]
fn size_is_announced_exactly() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("size");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--size-limit", "100000"]);
    let addr = server.addr().to_string();
    let small = dir.write("small.bin", &binary_blob(3001));
    let large = dir.write("large.bin", &binary_blob(80_000));
    let base = [
        "--server",
        addr.as_str(),
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
    ];
    let cases = [
        vec!["--body", "no newline at the end"],
        vec!["--body", "ends\nwith a newline\n"],
        vec!["--body", ".dot\n", "--attach", small.to_str().unwrap()],
    ];
    for (n, extra) in cases.iter().enumerate() {
        let out = send(&[&base[..], extra].concat(), &[], b"");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
        assert!(stdout.contains("<-  250-SIZE 100000"), "{stdout}");
        let (eml, envelope) = &received(&outdir)[n];
        let size = std::fs::metadata(eml).unwrap().len();
        assert_eq!(
            envelope["mail_options"],
            serde_json::json!([format!("SIZE={size}")]),
            "{extra:?}"
        );
    }

    let out = send(
        &[&base[..], &["--attach", large.to_str().unwrap()]].concat(),
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(23), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("more than the server's limit of 100000 bytes"),
        "{stderr}"
    );
    assert!(!stdout.contains("MAIL FROM"), "{stdout}");
    assert!(stdout.contains(" -> QUIT"), "{stdout}");
    assert_eq!(received(&outdir).len(), 3);
}
