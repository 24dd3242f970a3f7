//! `netkit mail sink` driven by swaks (a client we did not write), by raw
//! sockets sending what no polite client would, and by `netkit mail send`
//! with a 200 MiB attachment while its memory is watched.

#[path = "mail/support.rs"]
mod support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use testkit::Server;

fn sink(maildir: &Path, extra: &[&str]) -> Server {
    let mut command = netkit();
    command
        .args(["mail", "sink", "--bind", "127.0.0.1:0", "--maildir"])
        .arg(maildir)
        .args(extra)
        .env("NETKIT_SINK_PASSWORD", PASSWORD);
    Server::start(command, 1)
}

fn stored(maildir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

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
    let server = sink(&maildir, &["--require-auth"]);
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
    let server = sink(&maildir, &["--max-size", "64K", "--no-tls"]);

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
    std::thread::sleep(Duration::from_millis(200));
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

/// The attachment: a 1 MiB pseudo-random block, repeated.
fn block() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_200_mib_attachment_streams_in_bounded_memory() {
    const MIB: usize = 1 << 20;
    let dir = Scratch::new("sink-big");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--max-size", "400M"]);
    let block = block();
    let path = dir.join("big.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..200 {
            file.write_all(&block).unwrap();
        }
    }
    let mut child = netkit()
        .args([
            "mail",
            "send",
            "--server",
            &server.addr().to_string(),
            "--hide-data",
            "--tls",
            "--insecure",
        ])
        .args([
            "--from",
            "big@example.org",
            "--to",
            "inbox@example.org",
            "--subject",
            "big",
        ])
        .arg("--attach")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        BufReader::new(stdout).read_to_string(&mut all).unwrap();
        BufReader::new(stderr).read_to_string(&mut all).unwrap();
        all
    });
    let started = Instant::now();
    let mut peak = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(rss) = resident_kib(pid) {
            peak = peak.max(rss);
            samples += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "send took too long"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let transcript = reader.join().unwrap();
    assert!(status.success(), "{transcript}");
    assert!(samples > 10, "only {samples} samples of VmRSS");
    assert!(
        peak < 64 * 1024,
        "netkit resident memory peaked at {peak} KiB"
    );
    assert!(transcript.contains("SIZE="), "{transcript}");
    assert!(transcript.contains("=== TLS started"), "{transcript}");
    assert!(transcript.contains("=== message body of "), "{transcript}");
    assert!(
        !transcript.contains("Content-Type"),
        "--hide-data: {transcript}"
    );

    // The stored attachment decodes to the same bytes (python3's base64).
    let files = stored(&maildir);
    assert_eq!(files.len(), 1);
    let out = testkit::python(
        SAME_ATTACHMENT,
        &[files[0].to_str().unwrap(), path.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("same {}", 200 * MIB));
}

/// Decodes the one base64 part of a stored message and compares it with
/// the original file.
const SAME_ATTACHMENT: &str = r#"
import base64, sys
data = open(sys.argv[1], "rb").read()
start = data.index(b"Content-Transfer-Encoding: base64\r\n\r\n") + 37
end = data.index(b"\r\n--", start)
for line in data[start:end].split(b"\r\n"):
    assert len(line) <= 76 and not line.startswith(b"."), line
decoded = base64.b64decode(data[start:end])
original = open(sys.argv[2], "rb").read()
print("same %d" % len(decoded) if decoded == original else "different")
"#;
