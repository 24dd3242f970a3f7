//! The sink's per-session limits, driven by Python socket clients that do
//! what no polite client does: a DATA that never ends, more recipients and
//! more messages than allowed. Each is bounded in time and count.

#[path = "mail/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Shared by the scripts: a connection and a reader of whole replies.
const CLIENT: &str = r#"
import json, select, socket, sys, time

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
f = s.makefile("rb")

def reply():
    lines = []
    while True:
        line = f.readline()
        if not line:
            lines.append("(closed)")
            return " | ".join(lines)
        lines.append(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            return " | ".join(lines)

def say(command):
    s.sendall(command.encode() + b"\r\n")
    return reply()

def closed():
    """Whether the server closes the connection (bounded wait)."""
    try:
        return f.readline() == b""
    except OSError:
        return True

greeting = reply()
"#;

fn script(body: &str) -> String {
    format!("{CLIENT}\n{body}")
}

fn run_python(body: &str, port: u16) -> Value {
    let out = testkit::python(&script(body), &[&port.to_string()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("{err}: {}", text(&out.stdout)))
}

#[test]
fn recipients_beyond_the_limit_get_452() {
    if !testkit::require("python3") {
        return;
    }
    let dir = Scratch::new("limit-rcpt");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--no-tls", "--max-recipients", "3"]);
    let replies = run_python(
        r#"
out = [say("EHLO limits.test"), say("MAIL FROM:<a@example.org>")]
out += [say("RCPT TO:<r%d@example.org>" % n) for n in range(5)]
out.append(say("DATA"))
s.sendall(b"Subject: three\r\n\r\nhello\r\n.\r\n")
out.append(reply())
out.append(say("QUIT"))
print(json.dumps(out))
"#,
        server.addr().port(),
    );
    let replies: Vec<&str> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(replies[1].starts_with("250 "), "{replies:?}");
    for accepted in &replies[2..5] {
        assert!(accepted.starts_with("250 2.1.5"), "{replies:?}");
    }
    for refused in &replies[5..7] {
        assert_eq!(*refused, "452 4.5.3 Too many recipients", "{replies:?}");
    }
    assert!(replies[7].starts_with("354 "), "{replies:?}");
    assert!(replies[8].starts_with("250 2.0.0 OK queued"), "{replies:?}");
    let files = stored(&maildir);
    assert_eq!(files.len(), 1);
    let message = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        message.contains("for <r0@example.org>, <r1@example.org>, <r2@example.org>;"),
        "{message}"
    );
}

#[test]
fn messages_beyond_the_limit_end_the_session_with_421() {
    if !testkit::require("python3") {
        return;
    }
    let dir = Scratch::new("limit-msgs");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--no-tls", "--max-messages-per-session", "2"]);
    let replies = run_python(
        r#"
out = [say("HELO limits.test")]
for n in range(2):
    out += [say("MAIL FROM:<a@example.org>"), say("RCPT TO:<b@example.org>"), say("DATA")]
    s.sendall(b"Subject: %d\r\n\r\nbody\r\n.\r\n" % n)
    out.append(reply())
out.append(say("MAIL FROM:<a@example.org>"))
out.append("closed" if closed() else "open")
print(json.dumps(out))
"#,
        server.addr().port(),
    );
    let replies: Vec<&str> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(replies[4].starts_with("250 2.0.0 OK queued"), "{replies:?}");
    assert!(replies[8].starts_with("250 2.0.0 OK queued"), "{replies:?}");
    assert_eq!(
        replies[9], "421 4.7.0 Too many messages in one session, closing connection",
        "{replies:?}"
    );
    assert_eq!(replies[10], "closed", "{replies:?}");
    assert_eq!(stored(&maildir).len(), 2);

    // A new session starts counting afresh.
    let again = run_python(
        r#"
out = [say("HELO limits.test"), say("MAIL FROM:<a@example.org>")]
print(json.dumps(out))
"#,
        server.addr().port(),
    );
    assert!(again[1].as_str().unwrap().starts_with("250 "), "{again}");
}

/// A client that sends DATA for ever, a line at a time and never idle, is
/// cut off at --data-timeout with 421 4.7.0 and its message dropped;
/// meanwhile another sender is served.
#[test]
fn a_transfer_that_never_ends_is_cut_off() {
    if !testkit::require("python3") || !testkit::require("swaks") {
        return;
    }
    let dir = Scratch::new("limit-data");
    let maildir = dir.join("maildir");
    let server = sink(
        &maildir,
        &["--no-tls", "--idle-timeout", "10s", "--data-timeout", "3s"],
    );
    let flood = script(
        r#"
for command in ["HELO flood.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>"]:
    say(command)
print(say("DATA"), flush=True)
# A line every 20 ms, well inside the idle timeout, until the server
# speaks (bounded: 60 s).
deadline = time.time() + 60
sent = 0
answer = "(nothing within 60 s)"
while time.time() < deadline:
    readable, _, _ = select.select([s], [], [], 0.02)
    if readable:
        answer = reply()
        break
    try:
        s.sendall(b"x" * 70 + b"\r\n")
        sent += 1
    except OSError:
        answer = reply()
        break
print(json.dumps({"answer": answer, "lines": sent, "closed": closed()}), flush=True)
"#,
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(&flood)
        .arg(server.addr().port().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.next().unwrap().unwrap();
    assert!(started.starts_with("354 "), "{started}");

    // While the flood runs, an ordinary sender gets through, promptly (the
    // bound is generous: swaks itself takes a while to start).
    let polite = std::time::Instant::now();
    let out = Command::new("swaks")
        .args(["--server", &server.addr().to_string(), "--timeout", "20"])
        .args(["--from", "polite@example.org", "--to", "c@example.org"])
        .args(["--header", "Subject: polite"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        polite.elapsed() < Duration::from_secs(5),
        "swaks took {:?}",
        polite.elapsed()
    );

    let verdict: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let status =
        testkit::wait_timeout(&mut child, Duration::from_secs(30)).expect("the flood ends");
    assert!(status.success());
    assert_eq!(
        verdict["answer"], "421 4.7.0 Message transfer took too long, closing connection",
        "{verdict}"
    );
    assert_eq!(verdict["closed"], true, "{verdict}");
    assert!(verdict["lines"].as_u64().unwrap() > 10, "{verdict}");
    // Only the polite message was stored; the flood left nothing behind.
    let files = stored(&maildir);
    assert_eq!(files.len(), 1);
    assert!(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("Subject: polite")
    );
    assert!(
        std::fs::read_dir(maildir.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}
