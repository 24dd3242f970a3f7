//! `netkit chat serve` under a registration flood from many loopback
//! addresses (a python3 asyncio client): the password queue stays bounded
//! and answers `busy`, registrations are throttled per address and
//! overall, and a user outside the flood still logs in at once.

#[path = "chat/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chat::frame::{ClientFrame, ServerFrame};
use support::{ChatServer, Raw, Scratch, WAIT, netkit};

const REGISTER_FLOOD: &str = include_str!("chat/register_flood.py");

/// The bound for a login during a flood (it took 5.1 s before).
const LOGIN_BOUND: Duration = Duration::from_millis(500);

struct Flood {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Flood {
    fn start(addr: &str, connections: usize, sources: usize, seconds: u32) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", REGISTER_FLOOD, addr])
            .args([
                connections.to_string(),
                sources.to_string(),
                seconds.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let flood = Self { child, lines };
        let first = flood.lines.recv_timeout(WAIT).expect("the flood starts");
        assert_eq!(first, "flooding");
        flood
    }

    /// Waits for the end; returns how often each answer came.
    fn counts(mut self) -> serde_json::Map<String, serde_json::Value> {
        let line = self
            .lines
            .recv_timeout(WAIT * 2)
            .expect("the flood reports");
        let _ = testkit::wait_timeout(&mut self.child, WAIT);
        match serde_json::from_str(&line).unwrap() {
            serde_json::Value::Object(counts) => counts,
            other => panic!("{other}"),
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(counts: &serde_json::Map<String, serde_json::Value>, kind: &str) -> u64 {
    counts.get(kind).and_then(|n| n.as_u64()).unwrap_or(0)
}

fn accounts(server: &ChatServer) -> usize {
    let out = netkit()
        .args(["chat", "users", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("flood"))
        .count()
}

/// Logs `alice` in on a new connection; returns how long `welcome` took.
fn timed_login(server: &ChatServer) -> Duration {
    let mut raw = Raw::connect(server.addr);
    let login = ClientFrame::Login(raw.credentials("alice", "alice password"));
    let sent = Instant::now();
    raw.send(&login);
    match raw.frame() {
        Some(ServerFrame::Welcome { .. }) => sent.elapsed(),
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[test]
fn a_login_is_answered_at_once_during_a_registration_flood() {
    if !testkit::require("python3") {
        return;
    }
    let scratch = Scratch::new();
    // Three accounts per address from 100 addresses: 300 Argon2 hashes,
    // seconds of work for the server's hashing threads.
    let server = ChatServer::start(
        &scratch,
        &[
            "--register-per-address",
            "3",
            "--register-overall",
            "100000",
        ],
    );
    Raw::connect(server.addr).join("alice", "alice password", true);
    let flood = Flood::start(&server.addr(), 400, 100, 8);
    let mut took = Vec::new();
    for _ in 0..3 {
        took.push(timed_login(&server));
        thread::sleep(Duration::from_millis(200));
    }
    let counts = flood.counts();
    eprintln!("logins took {took:?} during the flood ({counts:?})");
    // The flood filled the password queue, and was refused rather than
    // queued; no address got more than its three accounts.
    assert!(count(&counts, "busy") > 0, "{counts:?}");
    assert!(count(&counts, "welcome") <= 300, "{counts:?}");
    assert!(accounts(&server) <= 300);
    for login in &took {
        assert!(
            *login < LOGIN_BOUND,
            "logins took {took:?} during the flood ({counts:?})"
        );
    }
}

#[test]
fn registrations_from_many_addresses_are_throttled() {
    if !testkit::require("python3") {
        return;
    }
    let scratch = Scratch::new();
    let server = ChatServer::start(
        &scratch,
        &["--register-per-address", "2", "--register-overall", "12"],
    );
    // Ten addresses may have two each, but only twelve in all.
    let flood = Flood::start(&server.addr(), 40, 10, 5);
    let counts = flood.counts();
    assert!(count(&counts, "throttled") > 0, "{counts:?}");
    assert!(count(&counts, "welcome") <= 12, "{counts:?}");
    assert!(accounts(&server) <= 12);
}

/// Registers `name` on a new connection; returns the answer.
fn register(server: &ChatServer, name: &str) -> ServerFrame {
    let mut raw = Raw::connect(server.addr);
    raw.send(&ClientFrame::Register(
        raw.credentials(name, "some password"),
    ));
    raw.frame().expect("an answer")
}

fn is_throttled(frame: &ServerFrame) -> bool {
    matches!(frame, ServerFrame::Error { code, text }
        if code.as_str() == "throttled" && text.contains("new accounts; try again in"))
}

#[test]
fn registrations_are_throttled_overall() {
    let scratch = Scratch::new();
    let server = ChatServer::start(
        &scratch,
        &["--register-per-address", "100", "--register-overall", "3"],
    );
    for name in ["one", "two", "three"] {
        let answer = register(&server, name);
        assert!(matches!(answer, ServerFrame::Welcome { .. }), "{answer:?}");
    }
    let answer = register(&server, "four");
    assert!(is_throttled(&answer), "{answer:?}");
}

#[test]
fn one_address_gets_its_share_of_registrations() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--register-per-address", "2"]);
    for name in ["first", "second"] {
        let answer = register(&server, name);
        assert!(matches!(answer, ServerFrame::Welcome { .. }), "{answer:?}");
    }
    let answer = register(&server, "third");
    assert!(is_throttled(&answer), "{answer:?}");
    // Logging in to an existing account is not a registration.
    Raw::connect(server.addr).join("first", "some password", false);
}
