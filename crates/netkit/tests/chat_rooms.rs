//! Named rooms (protocol version 2) end to end: `netkit chat join` users
//! joining, talking in, listing and leaving rooms beside the default room,
//! a version-1 client served as before, and hostile room requests.

#[path = "chat/support.rs"]
mod support;

use std::time::Duration;

use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch};

crate::on_both_stores!(
    rooms_are_joined_talked_in_listed_and_left,
    history_is_replayed_on_join_paged_and_kept_across_restarts,
);

fn rooms_are_joined_talked_in_listed_and_left(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    let mut carol = Member::register(&addr, "carol", "carol password");

    alice.send("#join #Rust");
    alice.expect("* you joined #Rust (created); topic: ; operators: alice");
    alice.expect("* in #Rust (1): alice");
    // Any case names the same room, shown as first spelled.
    bob.send("#join #rust");
    bob.expect("* you joined #Rust; topic: ; operators: alice");
    bob.expect("* in #Rust (2): alice, bob");
    alice.expect("* bob joined #Rust");

    // Plain text goes to the current room, and only to its members.
    bob.send("hello, rustaceans");
    alice.expect("[#Rust] bob: hello, rustaceans");
    bob.send("#room #lobby");
    bob.expect("* now talking in #lobby");
    bob.send("hello, everyone");
    carol.expect("[room] bob: hello, everyone");
    alice.expect("[room] bob: hello, everyone");
    assert_eq!(
        carol.count("[#Rust]", Duration::ZERO),
        0,
        "{:#?}",
        carol.seen
    );

    // The operator sets the topic; others may not.
    alice.send("#topic #rust all about Rust");
    bob.expect("* alice set the topic of #Rust: all about Rust");
    alice.expect("* alice set the topic of #Rust: all about Rust");
    bob.send("#topic #rust mine now");
    bob.expect("! only the operators of #Rust may do that (not_operator)");

    // A client is in any number of rooms at once.
    alice.send("#join #ops");
    alice.expect("* you joined #ops (created)");
    carol.send("#join #OPS");
    carol.expect("* you joined #ops");
    alice.expect("* carol joined #ops");
    carol.send("ops talk");
    alice.expect("[#ops] carol: ops talk");
    bob.send("#room #rust");
    bob.expect("* now talking in #rust");
    bob.send("rust talk");
    alice.expect("[#Rust] bob: rust talk");

    carol.send("#rooms");
    carol.expect("* rooms (3):");
    carol.expect("*   #lobby (3) ");
    carol.expect("*   #ops (2) ");
    carol.expect("*   #Rust (2) all about Rust");
    carol.send("#members #rust");
    carol.expect("! you are not in #rust (not_in_room)");
    carol.send("#members #lobby");
    carol.expect("* in #lobby (3): alice, bob, carol");

    bob.send("#part");
    bob.expect("* you left #Rust");
    alice.expect("* bob left #Rust (parted)");
    bob.send("#part #lobby");
    bob.expect("! the default room cannot be left; log out instead (invalid_room)");
    // Leaving the server leaves every room, with the session's reason.
    assert!(carol.quit().success());
    // The two rooms' events travel apart: either may come first.
    alice.expect("* carol left #ops (quit)");
    if !alice.seen.iter().any(|line| line == "* carol left (quit)") {
        alice.expect("* carol left (quit)");
    }
    alice.send("#rooms");
    alice.expect("* rooms (3):");
    alice.expect("*   #ops (1) ");
}

#[test]
fn a_version_1_client_is_served_in_the_default_room() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let mut old = Raw::connect(server.addr);
    let mut credentials = old.credentials("oldtimer", "old password");
    credentials.version = 1;
    old.send(&ClientFrame::Register(credentials));
    assert!(matches!(old.frame(), Some(ServerFrame::Welcome { .. })));
    old.until(|frame| matches!(frame, ServerFrame::Users { more: false, .. }));

    let mut new = Member::register(&server.addr(), "newcomer", "new password");
    new.send("#join #elsewhere");
    new.expect("* you joined #elsewhere");
    new.send("not for the lobby");
    new.send("#room #lobby");
    new.send("for the lobby");
    // The first message the old client sees is the lobby's.
    let message = old.until(|frame| matches!(frame, ServerFrame::Message { .. }));
    assert!(
        matches!(&message, ServerFrame::Message { text, room: None, .. } if text == "for the lobby"),
        "{message:?}"
    );

    let mut future = Raw::connect(server.addr);
    let mut credentials = future.credentials("future", "future password");
    credentials.version = 3;
    future.send(&ClientFrame::Register(credentials));
    assert!(matches!(
        future.bye(),
        Some(ServerFrame::Bye {
            code: ErrorCode::UnsupportedVersion,
            ..
        })
    ));
}

fn next_error(raw: &mut Raw) -> ErrorCode {
    match raw.until(|frame| matches!(frame, ServerFrame::Error { .. })) {
        ServerFrame::Error { code, .. } => code,
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_room_requests_are_refused() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--rate", "100000", "--burst", "100000"]);
    let mut raw = Raw::connect(server.addr);
    raw.join("hostile", "hostile password", true);

    for bad in [
        format!("#{}", "x".repeat(100_000 / 2)),
        "#".into(),
        "rust".into(),
        "#sp ace".into(),
        "#\u{202e}evil".into(),
    ] {
        raw.send(&ClientFrame::Join { room: bad });
        assert_eq!(next_error(&mut raw), ErrorCode::InvalidRoom);
    }
    raw.send(&ClientFrame::Say {
        text: "hi".into(),
        room: Some("#nowhere".into()),
    });
    assert_eq!(next_error(&mut raw), ErrorCode::NotInRoom);
    raw.send(&ClientFrame::Topic {
        room: "#nowhere".into(),
        topic: "x".into(),
    });
    assert_eq!(next_error(&mut raw), ErrorCode::NotInRoom);

    // Ten thousand joins: the first 100 rooms are joined, the rest refused,
    // and the server answers everything and stays usable.
    // Sent in windows, each read back before the next: a client that
    // sends requests without reading the answers is a slow consumer.
    const JOINS: usize = 10_000;
    const WINDOW: usize = 500;
    let (mut joined, mut refused) = (0, 0);
    for window in 0..JOINS / WINDOW {
        let mut batch = Vec::new();
        for i in window * WINDOW..(window + 1) * WINDOW {
            let frame = ClientFrame::Join {
                room: format!("#r{i}"),
            };
            batch.extend_from_slice(&chat::frame::encode(&frame).unwrap());
        }
        raw.send_bytes(&batch);
        while joined + refused < (window + 1) * WINDOW {
            match raw.frame().expect("the server keeps answering") {
                ServerFrame::RoomJoined { .. } => joined += 1,
                ServerFrame::Error {
                    code: ErrorCode::TooManyRooms,
                    ..
                } => refused += 1,
                _ => {}
            }
        }
    }
    assert_eq!((joined, refused), (100, JOINS - 100));
    // The room list comes in pages: the default room and 100 more.
    raw.send(&ClientFrame::Rooms);
    let mut listed = 0;
    loop {
        match raw.until(|frame| matches!(frame, ServerFrame::Rooms { .. })) {
            ServerFrame::Rooms { rooms, more } => {
                listed += rooms.len();
                if !more {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(listed, 101);
    let mut other = Member::register(&server.addr(), "other", "other password");
    other.send("#join #r5");
    other.expect("* in #r5 (2): hostile, other");
}

fn history_page(
    raw: &mut Raw,
    room: &str,
    before: Option<u64>,
    limit: usize,
) -> Vec<(u64, String)> {
    raw.send(&ClientFrame::History {
        room: room.into(),
        before,
        limit: Some(limit),
    });
    read_page(raw)
}

/// Reads history messages up to `history_end`.
fn read_page(raw: &mut Raw) -> Vec<(u64, String)> {
    let mut page = Vec::new();
    loop {
        match raw.until(|frame| {
            matches!(
                frame,
                ServerFrame::Message { history: true, .. } | ServerFrame::HistoryEnd { .. }
            )
        }) {
            ServerFrame::Message { id, text, .. } => page.push((id.unwrap(), text)),
            ServerFrame::HistoryEnd { count, .. } => {
                assert_eq!(count, page.len());
                return page;
            }
            other => panic!("{other:?}"),
        }
    }
}

fn history_is_replayed_on_join_paged_and_kept_across_restarts(scratch: Scratch) {
    let db = scratch.db();
    let server = ChatServer::start_with_db(&db, &["--history-on-join", "2"]);
    let mut alice = Member::register(&server.addr(), "alice", "alice password");
    alice.send("#join #rust");
    alice.expect("* history of #rust: 0 messages");
    for text in ["first", "second", "third"] {
        alice.send(text);
    }
    alice.send("#room #lobby");
    alice.send("in the lobby");
    // A newcomer gets the latest two, marked as history, in order.
    let mut bob = Member::register(&server.addr(), "bob", "bob password");
    bob.send("#join #RUST");
    let second = bob.expect("] alice: second");
    assert!(second.starts_with("[#rust history "), "{second}");
    bob.expect("] alice: third");
    bob.expect("* history of #rust: 2 messages");
    assert_eq!(bob.count("alice: first", Duration::ZERO), 0);

    // Paging back by id, as IRCv3 CHATHISTORY BEFORE does.
    let mut raw = Raw::connect(server.addr);
    raw.join("pager", "pager password", true);
    raw.send(&ClientFrame::Join {
        room: "#rust".into(),
    });
    let latest = read_page(&mut raw);
    let texts: Vec<&str> = latest.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["second", "third"], "the join's replay comes first");
    let all = history_page(&mut raw, "#rust", None, 50);
    assert_eq!(all.len(), 3);
    let third = all[2].0;
    let before = history_page(&mut raw, "#rust", Some(third), 1);
    assert_eq!(before, [all[1].clone()]);
    // Bad cursors: nothing before the first, the latest for a cursor past
    // the end, an error for what is not a cursor at all.
    assert!(history_page(&mut raw, "#rust", Some(all[0].0), 10).is_empty());
    assert!(history_page(&mut raw, "#rust", Some(0), 10).is_empty());
    assert_eq!(
        history_page(&mut raw, "#rust", Some(u64::MAX), 1),
        [all[2].clone()]
    );
    raw.send_bytes(b"{\"type\":\"history\",\"room\":\"#rust\",\"before\":-1}\n");
    assert_eq!(next_error(&mut raw), ErrorCode::BadFrame);
    raw.send_bytes(b"{\"type\":\"history\",\"room\":\"#rust\",\"before\":\"abc\"}\n");
    assert_eq!(next_error(&mut raw), ErrorCode::BadFrame);
    raw.send(&ClientFrame::History {
        room: "#elsewhere".into(),
        before: None,
        limit: None,
    });
    assert_eq!(next_error(&mut raw), ErrorCode::NotInRoom);
    let lobby = history_page(&mut raw, "#lobby", None, 50);
    assert_eq!(
        lobby.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["in the lobby"]
    );

    // A restart keeps history, and ids keep rising.
    drop((alice, bob, raw));
    drop(server);
    let server = ChatServer::start_with_db(&db, &[]);
    let mut carol = Member::register(&server.addr(), "carol", "carol password");
    carol.send("#join #rust");
    carol.expect("] alice: first");
    carol.expect("* history of #rust: 3 messages");
    carol.send("after the restart");
    let mut raw = Raw::connect(server.addr);
    raw.join("pager", "pager password", false);
    raw.send(&ClientFrame::Join {
        room: "#rust".into(),
    });
    read_page(&mut raw);
    let after = history_page(&mut raw, "#rust", None, 50);
    assert_eq!(after.len(), 4);
    assert!(after[3].0 > third, "{after:?}");
}

#[test]
fn a_corrupt_database_is_a_clear_error() {
    let scratch = Scratch::new();
    let db = scratch.path("chat.sqlite3");
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();
    let out = support::netkit()
        .args(["chat", "serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a database"), "{stderr}");
    assert!(stderr.contains("chat.sqlite3"), "{stderr}");
}
