//! `netkit chat` against hostile and broken peers: forged and replayed
//! direct messages (a python3 client), login throttling, requests before
//! login, oversized and malformed frames, flooding, a client that never
//! reads, and a client that goes silent. The server must answer with an
//! error or a disconnect and never let one client affect the others.

#[path = "chat/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch, WAIT};

const FORGE_DIRECT: &str = include_str!("chat/forge_direct.py");

fn error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    match frame {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn expect_error(raw: &mut Raw, code: ErrorCode) {
    let frame = raw.until(|frame| matches!(frame, ServerFrame::Error { .. }));
    assert_eq!(error_code(&frame), Some(code), "{frame:?}");
}

#[test]
fn forged_and_replayed_direct_messages_are_rejected() {
    if !testkit::require("python3") {
        return;
    }
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .unwrap();
    if !probe.success()
        && !testkit::skip_or_fail(
            "python3 lacks the cryptography package (see .ci/requirements.txt)",
        )
    {
        return;
    }
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut bob = Member::spawn(
        &addr,
        "bob",
        "bob password",
        &["--register", "--show-unverified"],
    )
    .connected();
    let mut dave = Member::spawn_logging(
        &addr,
        "dave",
        "dave password",
        &["--register"],
        "chat=debug",
    )
    .connected();

    let mut script = Command::new("python3")
        .args(["-c", FORGE_DIRECT, &addr, "carol", "bob,dave", "alice"])
        .env("NETKIT_CHAT_PASSWORD", "carol password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, said) = mpsc::channel();
    let stdout = script.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let expect_script = |wanted: &str| {
        let line = said
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the script never said {wanted:?}"));
        assert!(
            line.starts_with(wanted),
            "script said {line:?}, expected {wanted:?}"
        );
    };
    expect_script("ready");
    let mut alice = Member::register(&addr, "alice", "alice password");
    // Alice's key reaches bob and dave over TCP, the datagrams over UDP:
    // only once they know her can they judge her captured message.
    bob.expect("* alice joined");
    dave.expect("* alice joined");
    expect_script("roster");
    alice.send("@carol: for carol only");
    expect_script("verified alice for carol only");
    expect_script("sent");

    for (member, shows_unverified) in [(&mut bob, true), (&mut dave, false)] {
        member.expect("[direct] carol: last from carol");
        let verified: Vec<&String> = member
            .seen
            .iter()
            .filter(|line| {
                line.starts_with("[direct] ") && !line.starts_with("[direct] unverified")
            })
            .collect();
        assert_eq!(
            verified,
            [
                "[direct] carol: genuine from carol",
                "[direct] carol: last from carol"
            ],
            "{}: {:#?}",
            member.name,
            member.seen
        );
        let unverified: Vec<&String> = member
            .seen
            .iter()
            .filter(|line| line.starts_with("[direct] unverified"))
            .collect();
        if !shows_unverified {
            assert!(unverified.is_empty(), "{unverified:#?}");
            continue;
        }
        let shown = |needle: &str| unverified.iter().any(|line| line.contains(needle));
        assert!(shown("unverified alice (127.0.0.1:"), "{unverified:#?}");
        assert!(shown(
            "signature does not match the sender's key): forged as alice"
        ));
        assert!(shown("altered by carol"));
        assert!(shown("for another key"));
        assert!(shown(
            "addressed to another user or session): for carol only"
        ));
        assert!(shown("ghost"));
        assert!(shown("not a direct message"));
        // A replay is dropped, not shown: "genuine" appears exactly once.
        let genuine = member
            .seen
            .iter()
            .filter(|line| line.contains("genuine from carol"));
        assert_eq!(genuine.count(), 1);
    }
    // Dropped, but reported at debug level.
    let replay = dave.expect_logged("replayed direct message dropped");
    assert!(replay.contains(r#"claimed=Some("carol")"#), "{replay}");
    let forged = dave.expect_logged("signature does not match the sender's key");
    assert!(forged.contains("unverified direct message"), "{forged}");
    drop(script.stdin.take());
    let _ = script.wait();
}

/// A raw client whose connection comes from `source` (any 127/8 address).
fn raw_from(source: &str, server: SocketAddr) -> Raw {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    Raw::from_stream(socket.into())
}

fn attempt(raw: &mut Raw, name: &str, password: &str) -> ServerFrame {
    raw.send(&ClientFrame::Login(raw.credentials(name, password)));
    raw.until(|frame| {
        matches!(
            frame,
            ServerFrame::Error { .. } | ServerFrame::Welcome { .. }
        )
    })
}

#[test]
fn failed_logins_are_throttled_per_account_and_per_address() {
    let scratch = Scratch::new();
    let server = ChatServer::start(
        &scratch,
        &["--login-failures", "3", "--login-window", "60s"],
    );
    for name in ["alice", "bob"] {
        let mut raw = Raw::connect(server.addr);
        raw.join(name, &format!("{name} password"), true);
    }
    let mut attacker = raw_from("127.0.0.2", server.addr);
    for _ in 0..3 {
        let answer = attempt(&mut attacker, "alice", "guess");
        assert_eq!(
            error_code(&answer),
            Some(ErrorCode::LoginFailed),
            "{answer:?}"
        );
    }
    // The right password no longer helps from here...
    let answer = attempt(&mut attacker, "alice", "alice password");
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::Throttled),
        "{answer:?}"
    );
    // ...nor does another account, existing or not: the address is throttled.
    for name in ["bob", "nobody"] {
        let answer = attempt(&mut attacker, name, "whatever");
        assert_eq!(
            error_code(&answer),
            Some(ErrorCode::Throttled),
            "{name}: {answer:?}"
        );
    }
    // From another address, the account is still throttled...
    let mut other = raw_from("127.0.0.3", server.addr);
    let answer = attempt(&mut other, "alice", "alice password");
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::Throttled),
        "{answer:?}"
    );
    // ...but other accounts are not.
    let answer = attempt(&mut other, "bob", "bob password");
    assert!(matches!(answer, ServerFrame::Welcome { .. }), "{answer:?}");

    // An unknown account is throttled exactly like a real one.
    let mut prober = raw_from("127.0.0.4", server.addr);
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(error_code(&attempt(&mut prober, "ghost", "guess")));
    }
    use ErrorCode::{LoginFailed, Throttled};
    let expected = [LoginFailed, LoginFailed, LoginFailed, Throttled].map(Some);
    assert_eq!(answers, expected);
}

#[test]
fn parallel_guesses_get_no_more_tries_than_sequential_ones() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--login-failures", "3"]);
    let mut owner = Raw::connect(server.addr);
    owner.join("alice", "alice password", true);
    // Every guess is on the wire before the server has checked any.
    let mut guessers: Vec<Raw> = (0..10)
        .map(|_| raw_from("127.0.0.5", server.addr))
        .collect();
    for (i, guesser) in guessers.iter_mut().enumerate() {
        let credentials = guesser.credentials("alice", &format!("guess number {i}"));
        guesser.send(&ClientFrame::Login(credentials));
    }
    let mut answers: Vec<ErrorCode> = guessers
        .iter_mut()
        .map(|guesser| {
            let answer = guesser.until(|frame| {
                matches!(
                    frame,
                    ServerFrame::Error { .. } | ServerFrame::Welcome { .. }
                )
            });
            error_code(&answer).unwrap_or_else(|| panic!("{answer:?}"))
        })
        .collect();
    answers.sort_by_key(|code| code.as_str());
    let mut expected = vec![ErrorCode::LoginFailed; 3];
    expected.extend([ErrorCode::Throttled; 7]);
    assert_eq!(answers, expected);
}

#[test]
fn only_login_is_accepted_before_login_and_within_the_deadline() {
    // The deadline is 30 s unless told otherwise; this test shortens it.
    let help = support::netkit()
        .args(["chat", "serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let flag = &help[help
        .find("--login-timeout")
        .expect("a --login-timeout flag")..];
    let default = &flag[flag.find("[default: ").unwrap()..];
    assert!(default.starts_with("[default: 30s]"), "{flag}");

    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--login-timeout", "1s"]);
    let mut raw = Raw::connect(server.addr);
    raw.send(&ClientFrame::Say {
        text: "sneaky".into(),
        room: None,
    });
    expect_error(&mut raw, ErrorCode::NotLoggedIn);
    raw.send(&ClientFrame::Users);
    expect_error(&mut raw, ErrorCode::NotLoggedIn);
    raw.send(&ClientFrame::Ping { id: Some(1) });
    assert_eq!(raw.frame(), Some(ServerFrame::Pong { id: Some(1) }));
    // Then nothing: the deadline closes the connection.
    let bye = raw.bye();
    assert!(
        matches!(
            bye,
            Some(ServerFrame::Bye {
                code: ErrorCode::LoginTimeout,
                ..
            })
        ),
        "{bye:?}"
    );

    // A connection that never sends anything is closed as well.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut silent, &mut all).expect("closed, not timed out");
    assert!(String::from_utf8_lossy(&all).contains("login_timeout"));

    let mut raw = Raw::connect(server.addr);
    let mut credentials = raw.credentials("alice", "alice password");
    credentials.key = "not a key".into();
    raw.send(&ClientFrame::Register(credentials));
    expect_error(&mut raw, ErrorCode::InvalidKey);
    let mut credentials = raw.credentials("alice", "alice password");
    credentials.version = 99;
    raw.send(&ClientFrame::Register(credentials));
    assert!(matches!(
        raw.bye(),
        Some(ServerFrame::Bye {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
}

#[test]
fn malformed_input_gets_errors_and_harms_no_one() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let mut victim = Member::register(&server.addr(), "victim", "victim password");
    let mut raw = Raw::connect(server.addr);
    raw.join("mallory", "mallory password", true);
    let deep = format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let cases: [(&[u8], ErrorCode); 9] = [
        (b"{not json\n", ErrorCode::BadFrame),
        (b"{\"type\":\"dance\"}\n", ErrorCode::UnknownType),
        (b"[1,2,3]\n", ErrorCode::BadFrame),
        (b"null\n", ErrorCode::BadFrame),
        (b"{\"type\":\"say\",\"text\":42}\n", ErrorCode::BadFrame),
        (
            b"{\"type\":\"say\",\"text\":\"\xff\xfe\"}\n",
            ErrorCode::InvalidUtf8,
        ),
        (b"\x00\x01\x02\r\n", ErrorCode::BadFrame),
        (deep.as_bytes(), ErrorCode::BadFrame),
        (
            b"{\"type\":\"say\",\"text\":\"\"}\n",
            ErrorCode::InvalidText,
        ),
    ];
    for (line, code) in cases {
        raw.send_bytes(line);
        expect_error(&mut raw, code);
    }
    raw.send(&ClientFrame::Say {
        text: "x".repeat(4097),
        room: None,
    });
    expect_error(&mut raw, ErrorCode::InvalidText);
    raw.send(&ClientFrame::Say {
        text: "é".repeat(2048),
        room: None,
    });
    victim.expect(&format!("[room] mallory: {}", "é".repeat(2048)));

    // Still connected and heard, and the victim saw none of the garbage.
    raw.send(&ClientFrame::Say {
        text: "still here".into(),
        room: None,
    });
    victim.expect("[room] mallory: still here");
    assert_eq!(
        victim.count("[room]", Duration::ZERO),
        2,
        "{:#?}",
        victim.seen
    );

    // A frame past 64 KiB ends the connection with a reason.
    raw.send_bytes(&vec![b'{'; 70 * 1024]);
    let bye = raw.bye();
    assert!(
        matches!(
            bye,
            Some(ServerFrame::Bye {
                code: ErrorCode::FrameTooLong,
                ..
            })
        ),
        "{bye:?}"
    );
    victim.expect("* mallory left (disconnected by the server)");
    let mut other = Member::register(&server.addr(), "other", "other password");
    other.send("after the attack");
    victim.expect("[room] other: after the attack");
}

#[test]
fn the_client_keeps_to_the_frame_limit_both_ways() {
    // Sending: a line too long for one frame is refused by the client
    // itself, which stays connected.
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let mut alice = Member::register(&server.addr(), "alice", "alice password");
    let mut bob = Member::register(&server.addr(), "bob", "bob password");
    alice.expect("* bob joined");
    alice.send(&"x".repeat(70 * 1024));
    alice.expect("! frame longer than 65536 bytes");
    alice.send("still connected");
    bob.expect("[room] alice: still connected");

    // Receiving: a server whose line never ends within the limit is
    // disconnected from, not buffered without end.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hostile = thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let hello =
            r#"{"type":"hello","version":1,"server":"hostile","max_frame":65536,"max_text":4096}"#;
        writeln!(stream, "{hello}").unwrap();
        // The client may send an empty line first (PROTOCOL.md).
        let mut login = String::new();
        while login.trim().is_empty() {
            login.clear();
            if reader.read_line(&mut login).unwrap() == 0 {
                break;
            }
        }
        writeln!(
            stream,
            r#"{{"type":"welcome","name":"carol","registered":false}}"#
        )
        .unwrap();
        writeln!(stream, r#"{{"type":"users","users":[]}}"#).unwrap();
        // Whether the client stops reading or closes, the write ends.
        let _ = stream.write_all(&vec![b' '; 1024 * 1024]);
        login
    });
    let carol = Member::spawn(&addr, "carol", "carol password", &[]);
    let (status, stderr, seen) = carol.finish_when_closed();
    let login = hostile.join().unwrap();
    assert!(login.starts_with(r#"{"type":"login""#), "{login}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        seen.iter()
            .any(|line| line == "! disconnected: frame longer than 65536 bytes"),
        "{seen:#?} {stderr}"
    );
}

#[test]
fn flooding_is_refused_then_disconnected() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--rate", "2", "--burst", "3", "--strikes", "5"]);
    let mut victim = Member::register(&server.addr(), "victim", "victim password");
    let mut raw = Raw::connect(server.addr);
    raw.join("flooder", "flooder password", true);
    for i in 0..20 {
        raw.send(&ClientFrame::Say {
            text: format!("flood {i}"),
            room: None,
        });
    }
    let mut refused = 0;
    let bye = loop {
        match raw.frame() {
            Some(ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => refused += 1,
            Some(bye @ ServerFrame::Bye { .. }) => break bye,
            Some(_) => {}
            None => panic!("closed without bye"),
        }
    };
    assert!(
        matches!(
            bye,
            ServerFrame::Bye {
                code: ErrorCode::Flooding,
                ..
            }
        ),
        "{bye:?}"
    );
    assert_eq!(refused, 5);
    victim.expect("* flooder left (disconnected by the server)");
    // The burst got through; the rest did not.
    assert!(
        victim.count("[room] flooder:", Duration::ZERO) <= 4,
        "{:#?}",
        victim.seen
    );
}

#[test]
fn a_client_that_never_reads_is_disconnected_without_delaying_others() {
    let scratch = Scratch::new();
    let args = ["--queue", "256", "--rate", "100000", "--burst", "100000"];
    let server = ChatServer::start(&scratch, &args);

    // A small receive window so the backlog builds up in the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut slow = Raw::from_stream(socket.into());
    slow.join("slow", "slow password", true);

    let mut watcher = Raw::connect(server.addr);
    watcher.join("watcher", "watcher password", true);
    let mut sender = Raw::connect(server.addr);
    sender.join("sender", "sender password", true);

    const MESSAGES: usize = 3000;
    let text = "m".repeat(4000);
    let sending = thread::spawn(move || {
        for i in 0..MESSAGES {
            sender.send(&ClientFrame::Say {
                text: format!("{i:05} {text}"),
                room: None,
            });
            // Paced so that a reading client keeps up easily.
            if i % 10 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
        sender
    });
    // Raw lines, not decoded frames: this reader must never be the slow one.
    let mut received = 0;
    let mut slow_left = false;
    while received < MESSAGES {
        let line = watcher.line().expect("the watcher stays connected");
        if line.starts_with(br#"{"type":"message","from":"sender""#) {
            received += 1;
        } else if line.starts_with(br#"{"type":"left","name":"slow""#) {
            let left = String::from_utf8_lossy(&line).into_owned();
            assert!(left.contains(r#""reason":"slow_consumer""#), "{left}");
            slow_left = true;
        }
    }
    assert!(slow_left, "the slow client was never disconnected");
    let _sender = sending.join().unwrap();
    // The slow client's connection is closed: reading what was buffered
    // for it ends (the last frame may be cut short where the write stopped).
    slow.stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut slow.stream, &mut rest).expect("closed, not stalled");
}

#[test]
fn silent_clients_are_timed_out_and_live_ones_kept() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--keepalive", "400ms"]);
    let mut alive = Member::register(&server.addr(), "alive", "alive password");
    let mut silent = Raw::connect(server.addr);
    silent.join("silent", "silent password", true);
    // The server pings; a client that never answers is dropped.
    silent.until(|frame| matches!(frame, ServerFrame::Ping { .. }));
    let bye = silent.bye();
    assert!(
        matches!(
            bye,
            Some(ServerFrame::Bye {
                code: ErrorCode::KeepaliveTimeout,
                ..
            })
        ),
        "{bye:?}"
    );
    alive.expect("* silent left (connection lost)");
    // netkit's client answers the pings, so it outlives several periods.
    thread::sleep(Duration::from_secs(2));
    let mut other = Member::register(&server.addr(), "other", "other password");
    alive.send("still here");
    other.expect("[room] alive: still here");
}
