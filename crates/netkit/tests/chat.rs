//! `netkit chat` end to end through the binary: accounts, the room, the
//! user list, direct messages, sessions, persistence and TLS. Clients are
//! `netkit chat join` processes driven through piped stdin and stdout.

#[path = "chat/support.rs"]
mod support;

use std::time::Duration;

use chat::LeaveReason;
use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch, netkit, run_with_password};

crate::on_both_stores!(
    room_messages_reach_everyone_but_the_sender,
    user_list_is_broadcast_on_join_and_leave,
    wrong_password_and_unknown_user_get_the_same_error,
    duplicate_registration_is_refused_whatever_the_case,
    second_login_replaces_the_first_session,
    accounts_persist_across_restart_and_can_be_administered,
);

const SETTLE: Duration = Duration::from_millis(300);

fn room_messages_reach_everyone_but_the_sender(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    alice.expect("* bob joined");
    let mut carol = Member::register(&addr, "carol", "carol password");
    alice.expect("* carol joined");
    bob.expect("* carol joined");

    alice.send("hello, room: ünïcode and \"quotes\"");
    bob.expect("[room] alice: hello, room: ünïcode and \"quotes\"");
    carol.expect("[room] alice: hello, room: ünïcode and \"quotes\"");
    // The sender gets no copy: bob's next message arrives with nothing before it.
    bob.send("marker");
    alice.expect("[room] bob: marker");
    assert_eq!(
        alice.count("[room] alice:", Duration::ZERO),
        0,
        "{:#?}",
        alice.seen
    );

    // Control characters cannot reach another user's terminal raw.
    carol.send("\u{1b}[2Jcleared?");
    alice.expect("[room] carol: \\u{1b}[2Jcleared?");
    // Nor can a bidirectional override, which would show "gpj.exe" as
    // "exe.jpg", or an isolate, a zero-width space or a line separator.
    carol.send("photo\u{202e}gpj.exe \u{2067}x\u{2069}\u{200b}\u{2028}end");
    alice.expect("[room] carol: photo\\u{202e}gpj.exe \\u{2067}x\\u{2069}\\u{200b}\\u{2028}end");

    alice.send("#ls");
    alice.expect("* online (3): alice, bob, carol");

    assert!(carol.quit().success());
    alice.expect("* carol left (quit)");
    bob.expect("* carol left (quit)");
    alice.send("#ls");
    alice.expect("* online (2): alice, bob");
}

fn user_list_is_broadcast_on_join_and_leave(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let mut watcher = Raw::connect(server.addr);
    watcher.join("watcher", "watcher password", true);

    let bob = Member::register(&server.addr(), "bob", "bob password");
    let users = |frame: &ServerFrame| match frame {
        ServerFrame::Users { users, more: false } => {
            Some(users.iter().map(|u| u.name.clone()).collect::<Vec<_>>())
        }
        _ => None,
    };
    let joined = watcher
        .until(|frame| matches!(frame, ServerFrame::Joined { user, .. } if user.name == "bob"));
    let ServerFrame::Joined { user, .. } = joined else {
        unreachable!()
    };
    let addr = user.addr.expect("a UDP address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert!(
        chat::direct::PublicKey::parse(&user.key).is_some(),
        "{}",
        user.key
    );
    let list = watcher.until(|frame| users(frame).is_some_and(|names| names.len() == 2));
    assert_eq!(users(&list).unwrap(), ["bob", "watcher"]);
    let ServerFrame::Users { users: entries, .. } = &list else {
        unreachable!()
    };
    assert_eq!(entries[0], user, "the list carries address and key");

    // An explicit request is answered with the list too.
    watcher.send(&ClientFrame::Users);
    watcher.until(|frame| users(frame).is_some_and(|names| names.len() == 2));

    assert!(bob.quit().success());
    watcher.until(|frame| {
        matches!(frame, ServerFrame::Left { name, reason: LeaveReason::Quit, .. } if name == "bob")
    });
    let list = watcher.until(|frame| users(frame).is_some_and(|names| names.len() == 1));
    assert_eq!(users(&list).unwrap(), ["watcher"]);
}

fn wrong_password_and_unknown_user_get_the_same_error(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    drop(Member::register(&addr, "alice", "alice password"));

    let (ok, _, _) = Member::login(&addr, "ALICE", "alice password").finish();
    assert!(ok.success(), "login is case-insensitive");

    let join = |name: &str, password: &str| {
        let (status, stderr, _) = Member::spawn(&addr, name, password, &[]).finish_when_closed();
        assert_eq!(status.code(), Some(1), "{stderr}");
        stderr.replace(name, "NAME")
    };
    let wrong_password = join("alice", "not her password");
    let unknown_user = join("nobody", "alice password");
    assert!(
        wrong_password.contains("wrong user name or password (login_failed)"),
        "{wrong_password}"
    );
    assert_eq!(wrong_password, unknown_user);
    // A name that could never exist gets the same answer too.
    assert_eq!(join("bad name!", "alice password"), unknown_user);
}

fn duplicate_registration_is_refused_whatever_the_case(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    drop(Member::register(&addr, "Alice", "alice password"));
    for name in ["Alice", "alice", "ALICE"] {
        let (status, stderr, _) =
            Member::spawn(&addr, name, "other password", &["--register"]).finish_when_closed();
        assert_eq!(status.code(), Some(1));
        assert!(
            stderr.contains("that name is taken (name_taken)"),
            "{stderr}"
        );
    }
    let (status, stderr, _) =
        Member::spawn(&addr, "no spaces", "password123", &["--register"]).finish_when_closed();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("invalid_name"), "{stderr}");
    let (status, stderr, _) =
        Member::spawn(&addr, "shorty", "short", &["--register"]).finish_when_closed();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("invalid_password"), "{stderr}");

    // The stored spelling is the one the room sees.
    let mut watcher = Member::register(&addr, "watcher", "watcher password");
    let _alice = Member::login(&addr, "aLiCe", "alice password");
    watcher.expect("* Alice joined");
}

#[test]
fn direct_messages_are_delivered_over_udp() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    alice.expect("* bob joined");
    alice.send("@bob: just between us");
    bob.expect("[direct] alice: just between us");
    bob.send("@ALICE:   case does not matter");
    alice.expect("[direct] bob: case does not matter");
    alice.send("@nobody: hello?");
    alice.expect("! nobody is not online");
    alice.send("@bob no colon");
    alice.expect("! to send a direct message: @name: text");
}

#[test]
fn killed_client_is_removed_and_announced_once() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    alice.expect("* bob joined");
    bob.kill9();
    alice.expect("* bob left (connection lost)");
    alice.send("#ls");
    alice.expect("* online (1): alice");
    assert_eq!(alice.count("* bob left", SETTLE), 1, "{:#?}", alice.seen);
    // The name is free for a new session at once.
    let _bob = Member::login(&addr, "bob", "bob password");
    alice.expect("* bob joined");
}

fn second_login_replaces_the_first_session(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut watcher = Member::register(&addr, "watcher", "watcher password");
    let first = Member::register(&addr, "alice", "alice password");
    watcher.expect("* alice joined");
    let mut second = Member::login(&addr, "alice", "alice password");

    let mut first = first;
    first.expect("! disconnected: this account logged in on another connection (session_replaced)");
    let (status, _, _) = first.finish_when_closed();
    assert_eq!(status.code(), Some(1));
    watcher.expect("* alice left (logged in elsewhere)");
    watcher.expect("* alice joined");
    watcher.send("still one alice?");
    second.expect("[room] watcher: still one alice?");
    assert_eq!(watcher.count("* alice left", SETTLE), 1);
    assert_eq!(watcher.count("* alice joined", Duration::ZERO), 2);
    watcher.send("#ls");
    watcher.expect("* online (2): alice, watcher");
}

fn accounts_persist_across_restart_and_can_be_administered(scratch: Scratch) {
    let db = scratch.db();
    {
        let server = ChatServer::start_with_db(&db, &[]);
        drop(Member::register(&server.addr(), "alice", "first password"));
        server.server.signal("TERM");
    }
    let out = netkit()
        .args(["chat", "users", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.starts_with("alice "), "{listed}");
    assert!(listed.contains(" UTC"), "{listed}");

    let db_arg = db.to_str().unwrap();
    let out = run_with_password(
        &["chat", "passwd", "alice", "--db", db_arg],
        "second password",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_with_password(
        &["chat", "passwd", "nobody", "--db", db_arg],
        "second password",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account `nobody`"));
    let out = run_with_password(&["chat", "passwd", "alice", "--db", db_arg], "short");
    assert_eq!(out.status.code(), Some(1));
    let out = netkit()
        .args(["chat", "users", "--db"])
        .arg(scratch.path("missing.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let server = ChatServer::start_with_db(&db, &[]);
    let (status, stderr, _) =
        Member::spawn(&server.addr(), "alice", "first password", &[]).finish_when_closed();
    assert_eq!(
        status.code(),
        Some(1),
        "the old password no longer works: {stderr}"
    );
    let alice = Member::login(&server.addr(), "alice", "second password");
    assert!(alice.quit().success());

    // Hashes only: neither password is anywhere in the database.
    let bytes = match scratch.postgres_server() {
        Some(postgres) => postgres.psql("SELECT * FROM accounts").into_bytes(),
        None => std::fs::read(&db).unwrap(),
    };
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("first password") && !text.contains("second password"));
}

#[test]
fn passwords_stay_out_of_argv_and_logs() {
    let out = netkit().args(["chat", "join", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.contains("--password"), "{help}");
    assert!(help.contains("NETKIT_CHAT_PASSWORD"), "{help}");

    // No terminal and no variable: a clear error, not a hang.
    let out = netkit()
        .args(["chat", "join", "--user", "alice", "--server", "127.0.0.1:9"])
        .env_remove("NETKIT_CHAT_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NETKIT_CHAT_PASSWORD"));

    let scratch = Scratch::new();
    let secret = "sup3r-secret-passw0rd";
    let log = logged_output(&scratch, secret);
    assert!(!log.contains(secret), "password in the log");
    assert!(!log.contains("wrong-passw0rd-guess"), "password in the log");
    assert!(log.contains("login failed"), "{log}");
}

/// Runs a server with trace logging, registers an account and fails a
/// login against it, and returns everything the server logged.
fn logged_output(scratch: &Scratch, secret: &str) -> String {
    use std::io::{BufRead, BufReader, Read};
    let mut child = netkit()
        .args(["chat", "serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(scratch.path("logged.sqlite3"))
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = testkit::listening_addr(&line)
        .expect("listening line")
        .to_string();
    let bob = Member::spawn_logging(&addr, "bob", secret, &["--register"], "trace").connected();
    let (_, client_log, _) = bob.finish();
    assert!(!client_log.contains(secret), "password in the client's log");
    let guess = "wrong-passw0rd-guess";
    let (_, client_log, _) = Member::spawn_logging(&addr, "bob", guess, &[], "trace").finish();
    assert!(client_log.contains("login_failed"), "{client_log}");
    assert!(!client_log.contains(guess), "password in the client's log");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    log.join().unwrap()
}

#[test]
fn tls_with_self_signed_and_with_certificate_files() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--self-signed"]);
    let addr = format!("localhost:{}", server.addr.port());
    let mut alice = Member::spawn(
        &addr,
        "alice",
        "alice password",
        &["--register", "--tls", "--insecure"],
    );
    let line = alice.expect("* connected to");
    assert!(line.contains("TLSv1.3"), "{line}");
    let (status, stderr, _) =
        Member::spawn(&addr, "bob", "bob password", &["--register", "--tls"]).finish_when_closed();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("certificate"),
        "unverified certificate accepted: {stderr}"
    );
    // Plain text to a TLS server fails at once (not after --timeout) and
    // says what to do.
    let started = std::time::Instant::now();
    let (status, stderr, _) =
        Member::spawn(&addr, "bob", "bob password", &["--register"]).finish_when_closed();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "plain text to a TLS server fails");
    assert!(
        stderr.contains("the server speaks TLS: try --tls"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // A certificate from files, trusted through --cacert.
    let generated = tls::SelfSigned::generate(&[]).unwrap();
    let (cert, key) = (scratch.path("cert.pem"), scratch.path("key.pem"));
    std::fs::write(&cert, &generated.cert_pem).unwrap();
    std::fs::write(&key, &generated.key_pem).unwrap();
    let files = ChatServer::start_with_db(
        scratch.path("files.sqlite3"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr = format!("localhost:{}", files.addr.port());
    let trust = ["--tls", "--cacert", cert.to_str().unwrap()];
    let mut carol = Member::spawn(
        &addr,
        "carol",
        "carol password",
        &[&["--register"][..], &trust].concat(),
    );
    carol.expect("* connected to");
    let mut dave = Member::spawn(
        &addr,
        "dave",
        "dave password",
        &[&["--register"][..], &trust].concat(),
    );
    dave.expect("* connected to");
    // A direct message needs dave's key, which carol learns from his join.
    carol.expect("* dave joined");
    carol.send("over TLS");
    dave.expect("[room] carol: over TLS");
    carol.send("@dave: direct, still signed");
    dave.expect("[direct] carol: direct, still signed");
    drop(alice);
}

#[test]
fn shutdown_tells_clients_and_exits() {
    let scratch = Scratch::new();
    let mut server = ChatServer::start(&scratch, &[]);
    let mut alice = Member::register(&server.addr(), "alice", "alice password");
    server.server.signal("TERM");
    let status = server
        .server
        .wait_timeout(Duration::from_secs(10))
        .expect("server exits");
    assert!(status.success());
    alice.expect("! disconnected: the server is shutting down (shutting_down)");
    let (status, _, _) = alice.finish_when_closed();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn raw_protocol_round_trip() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let mut alice = Raw::connect(server.addr);
    alice.join("alice", "alice password", true);
    alice.send(&ClientFrame::Ping { id: Some(42) });
    alice.until(|frame| *frame == ServerFrame::Pong { id: Some(42) });
    alice.send(&ClientFrame::Login(
        alice.credentials("alice", "alice password"),
    ));
    alice.until(|frame| {
        matches!(
            frame,
            ServerFrame::Error {
                code: ErrorCode::AlreadyLoggedIn,
                ..
            }
        )
    });
    alice.send(&ClientFrame::Logout);
    assert!(matches!(
        alice.bye(),
        Some(ServerFrame::Bye {
            code: ErrorCode::LoggedOut,
            ..
        })
    ));
}

#[test]
fn demo_includes_chat() {
    let out = netkit().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("chat"))
        .expect("a chat line");
    assert!(line.contains(" ok "), "{line}");
}
