//! `netkit mail sink` driven by swaks (a client we did not write), by raw
//! sockets sending what no polite client would, and by `netkit mail send`.
//! The 200 MiB attachment is in mail_large.rs.

#[path = "mail/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use support::*;
use testkit::Server;

fn swaks(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new("swaks")
        .args(["--server", &server.addr().to_string(), "--timeout", "10"])
        .args(args)
        .output()
        .expect("swaks runs")
}

#[test]
fn swaks_delivers_over_starttls_with_auth_plain() {
    if !testkit::require("swaks") {
        return;
    }
    let dir = Scratch::new("sink-swaks");
    let maildir = dir.join("maildir");
    // Logging everything, rustls included, to a file checked at the end.
    let log = dir.join("sink.log");
    let mut command = sink_command(&maildir, &["--require-auth"]);
    command
        .env("RUST_LOG", "trace")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = Server::start(command, 1);
    for pipeline in [false, true] {
        let mut args = vec![
            "--from",
            "swaks@example.org",
            "--to",
            "one@example.org,two@example.org",
            "--header",
            "Subject: from swaks",
            "--body",
            "hello\n.leading dot\nbye",
            "-tls",
            "-a",
            "PLAIN",
            "-au",
            "demo",
            "-ap",
            PASSWORD,
        ];
        if pipeline {
            args.push("--pipeline");
        }
        let out = swaks(&server, &args);
        assert!(out.status.success(), "{}", text(&out.stdout));
        let transcript = text(&out.stdout);
        assert!(transcript.contains("<~  235 2.7.0"), "{transcript}");
    }
    let files = stored(&maildir);
    assert_eq!(files.len(), 2);
    let message = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        message.starts_with("Return-Path: <swaks@example.org>\r\n"),
        "{message}"
    );
    assert!(message.contains("with ESMTPSA"), "{message}");
    assert!(
        message.contains("for <one@example.org>, <two@example.org>"),
        "{message}"
    );
    assert!(message.contains("Subject: from swaks\r\n"), "{message}");
    assert!(
        message.contains("\r\nhello\r\n.leading dot\r\nbye\r\n"),
        "{message}"
    );
    assert!(
        std::fs::read_dir(maildir.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("TRACE rustls"), "{log}");
    assert!(log.contains("authenticated"), "{log}");
    // The password, and the PLAIN blob that carries it (`\0demo\0...`).
    for secret in [
        PASSWORD,
        "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ",
        "AGRlbW8A",
    ] {
        assert!(!log.contains(secret), "{secret} in the sink's log");
    }
}

#[test]
fn swaks_failures_get_the_right_replies() {
    if !testkit::require("swaks") {
        return;
    }
    let dir = Scratch::new("sink-swaks-fail");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--require-auth"]);
    let base = ["--from", "swaks@example.org", "--to", "one@example.org"];

    let out = swaks(
        &server,
        &[
            &base[..],
            &["-tls", "-a", "PLAIN", "-au", "demo", "-ap", "wrong"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(28), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("535 5.7.8"),
        "{}",
        text(&out.stdout)
    );

    // AUTH is offered only inside TLS.
    let out = swaks(
        &server,
        &[&base[..], &["-a", "PLAIN", "-au", "demo", "-ap", PASSWORD]].concat(),
    );
    assert_eq!(out.status.code(), Some(28), "{}", text(&out.stdout));

    // MAIL before AUTH is refused with --require-auth.
    let out = swaks(&server, &base);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("530 5.7.0"),
        "{}",
        text(&out.stdout)
    );
    assert!(stored(&maildir).is_empty());
}

#[test]
fn netkit_client_pipelines_and_messages_round_trip() {
    if !testkit::require("python3") {
        return;
    }
    let dir = Scratch::new("sink-netkit");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &[]);
    let cert_free = [
        "--server",
        &server.addr().to_string(),
        "--insecure",
        "--tls",
        "--user",
        "demo",
        "--from",
        "me@example.org",
        "--to",
        "a@example.org",
        "--to",
        "b@example.org",
        "--subject",
        "pipelined",
        "--body",
        ".\n..\n.x\n",
    ]
    .map(str::to_owned);
    let args: Vec<&str> = cert_free.iter().map(String::as_str).collect();
    let out = send(&args, &[("NETKIT_SMTP_PASSWORD", PASSWORD)], b"");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // PIPELINING: MAIL and both RCPTs go out before any of their replies.
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap();
    let mail = at(" ~> MAIL FROM:<me@example.org> SIZE=");
    assert!(
        lines[mail + 1].starts_with(" ~> RCPT TO:<a@example.org>"),
        "{stdout}"
    );
    assert!(
        lines[mail + 2].starts_with(" ~> RCPT TO:<b@example.org>"),
        "{stdout}"
    );
    assert!(lines[mail + 3].starts_with("<~  250 2.1.0"), "{stdout}");

    let files = stored(&maildir);
    assert_eq!(files.len(), 1);
    let message = inspect(&files[0], None);
    assert_eq!(header(&message, "subject"), ["pipelined"]);
    assert_eq!(
        parts(&message)[0]["text"]
            .as_str()
            .unwrap()
            .replace("\r\n", "\n"),
        ".\n..\n.x\n"
    );
}

#[test]
fn quiet_prints_nothing_but_problems() {
    let dir = Scratch::new("sink-quiet");
    let server = sink(&dir.join("maildir"), &["--no-tls", "--max-size", "1K"]);
    let addr = server.addr().to_string();
    let base = [
        "--server",
        addr.as_str(),
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
    ];
    let out = send(
        &[&base[..], &["--quiet", "--body", "small"]].concat(),
        &[],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");

    // Over the advertised SIZE: refused before MAIL, reported even when quiet.
    let big = "x".repeat(2000);
    let out = send(
        &[&base[..], &["--quiet", "--body", &big]].concat(),
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(23));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("*** MAIL failed: the message is"),
        "{}",
        text(&out.stderr)
    );
}

/// Sends `bytes`, then reads until `want` shows up or the server closes.
fn exchange(stream: &mut TcpStream, bytes: &[u8], want: &str) -> String {
    stream.write_all(bytes).unwrap();
    read_until(stream, want)
}

fn read_until(stream: &mut TcpStream, want: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&seen).contains(want) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    text(&seen)
}

/// Waits (boundedly) until the sink has logged `line`.
fn wait_for_log(log: &std::path::Path, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(line) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sink never logged {line:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let greeting = read_until(&mut stream, "\r\n");
    assert!(greeting.starts_with("220 "), "{greeting}");
    stream
}

#[test]
fn hostile_input_never_crashes_the_sink() {
    let dir = Scratch::new("sink-hostile");
    let maildir = dir.join("maildir");
    // The log tells when the sink has given up a message.
    let log = dir.join("sink.log");
    let mut command = sink_command(&maildir, &["--max-size", "64K", "--no-tls"]);
    command
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = Server::start(command, 1);

    let mut stream = connect(&server);
    let mut huge = vec![b'A'; 200_000];
    huge.extend_from_slice(b"\r\n");
    assert!(exchange(&mut stream, &huge, "\r\n").starts_with("500 5.5.2 Line too long"));
    assert!(exchange(&mut stream, b"\x00\xff\xfe junk\r\n", "\r\n").starts_with("500 "));
    assert!(exchange(&mut stream, b"MAIL FROM:<a@b.c>\r\n", "\r\n").starts_with("503 "));
    assert!(exchange(&mut stream, b"EHLO x\r\n", "250 ").contains("250-SIZE 65536"));
    assert!(exchange(&mut stream, b"AUTH PLAIN AGRlbW8AZGVtbw==\r\n", "\r\n").starts_with("538 "));
    assert!(exchange(&mut stream, b"RCPT TO:<a@b.c>\r\n", "\r\n").starts_with("503 "));
    assert!(
        exchange(&mut stream, b"MAIL FROM:<a@b.c> SIZE=999999\r\n", "\r\n").starts_with("552 ")
    );
    assert!(exchange(&mut stream, b"MAIL FROM:a@b.c\r\n", "\r\n").starts_with("501 "));
    assert!(exchange(&mut stream, b"MAIL FROM:<a@b.c>\r\n", "\r\n").starts_with("250 "));
    assert!(exchange(&mut stream, b"DATA\r\n", "\r\n").starts_with("554 "));
    assert!(exchange(&mut stream, b"RCPT TO:<d@e.f>\r\n", "\r\n").starts_with("250 "));
    assert!(exchange(&mut stream, b"DATA\r\n", "\r\n").starts_with("354 "));
    // Too big: read to the end, refused, nothing stored.
    let mut body = Vec::new();
    for _ in 0..2000 {
        body.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        );
    }
    body.extend_from_slice(b".\r\n");
    assert!(exchange(&mut stream, &body, "\r\n").starts_with("552 5.3.4"));
    // An overlong line inside DATA.
    exchange(
        &mut stream,
        b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n",
        "354 ",
    );
    let mut long_line = vec![b'x'; 100_000];
    long_line.extend_from_slice(b"\r\n.\r\n");
    assert!(exchange(&mut stream, &long_line, "\r\n").starts_with("552 5.3.4 Line too long"));
    assert!(exchange(&mut stream, b"QUIT\r\n", "\r\n").starts_with("221 "));
    assert!(stored(&maildir).is_empty());

    // A client that hangs up in the middle of DATA leaves nothing behind.
    let mut stream = connect(&server);
    exchange(
        &mut stream,
        b"HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n",
        "354 ",
    );
    stream
        .write_all(b"Subject: half\r\n\r\nhalf a mess")
        .unwrap();
    drop(stream);

    // Too many errors: the sink hangs up.
    let mut stream = connect(&server);
    let junk = "NONSENSE\r\n".repeat(30);
    let replies = exchange(&mut stream, junk.as_bytes(), "421 ");
    assert!(replies.contains("421 4.7.0 Too many errors"), "{replies}");

    // Still serving after all that.
    let mut stream = connect(&server);
    assert!(exchange(&mut stream, b"NOOP\r\n", "\r\n").starts_with("250 "));
    wait_for_log(
        &log,
        "connection closed in the middle of DATA; message discarded",
    );
    assert!(stored(&maildir).is_empty());
    assert!(
        std::fs::read_dir(maildir.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn plaintext_pipelined_after_starttls_is_refused() {
    let dir = Scratch::new("sink-inject");
    let server = sink(&dir.join("maildir"), &[]);
    let mut stream = connect(&server);
    exchange(&mut stream, b"EHLO x\r\n", "250 ");
    let reply = exchange(
        &mut stream,
        b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n",
        "\r\n",
    );
    assert!(reply.starts_with("220 "), "{reply}");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without another word");
}

#[test]
fn sigterm_lets_the_sink_finish_gracefully() {
    let dir = Scratch::new("sink-term");
    let mut server = sink(&dir.join("maildir"), &["--grace", "3s"]);
    assert_eq!(server.addr().ip().to_string(), "127.0.0.1");
    let mut idle = connect(&server);
    server.signal("TERM");
    let goodbye = read_until(&mut idle, "\r\n");
    assert!(goodbye.starts_with("421 4.3.2"), "{goodbye}");
    let status = server.wait_timeout(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
}

/// A client that sends commands but never reads the replies is dropped
/// once its replies stop flowing for the idle timeout, so it cannot hold a
/// connection slot for ever.
#[test]
fn a_client_that_stops_reading_is_dropped() {
    let dir = Scratch::new("sink-noread");
    let server = sink(
        &dir.join("maildir"),
        &["--no-tls", "--idle-timeout", "1s", "--max-connections", "1"],
    );
    let mut deaf = connect(&server);
    deaf.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // HELP has a long reply: the sink's writes block soon.
    let flood = std::thread::spawn(move || {
        let commands = "HELP\r\n".repeat(10_000);
        while deaf.write_all(commands.as_bytes()).is_ok() {}
    });
    std::thread::sleep(Duration::from_millis(500));
    // The only slot is the deaf client's until the sink gives up on it.
    let mut next = TcpStream::connect(server.addr()).unwrap();
    next.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let greeting = read_until(&mut next, "\r\n");
    assert!(greeting.starts_with("220 "), "{greeting:?}");
    flood.join().unwrap();
}

/// SMTP smuggling: a dot between bare LFs does not end the message (only
/// CRLF . CRLF does), so what follows cannot pass for a second message.
#[test]
fn only_crlf_dot_crlf_ends_the_message() {
    let dir = Scratch::new("sink-smuggle");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--no-tls"]);
    let mut stream = connect(&server);
    for dot in ["\n.\n", "\r\n.\n", "\n.\r\n"] {
        let reply = exchange(
            &mut stream,
            b"HELO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n",
            "354 ",
        );
        assert!(reply.contains("354 "), "{reply}");
        let smuggled = format!(
            "Subject: one\r\n\r\nbody{dot}MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n"
        );
        let reply = exchange(&mut stream, smuggled.as_bytes(), "\r\n");
        assert!(reply.starts_with("250 2.0.0 OK queued"), "{dot:?}: {reply}");
    }
    assert!(exchange(&mut stream, b"QUIT\r\n", "\r\n").starts_with("221 "));
    let files = stored(&maildir);
    assert_eq!(files.len(), 3, "one message per DATA");
    for file in files {
        let message = std::fs::read_to_string(file).unwrap();
        assert!(
            message.contains("MAIL FROM:<evil@x.example>\r\n"),
            "{message}"
        );
        assert!(message.contains("Subject: smuggled\r\n"), "{message}");
    }
}
