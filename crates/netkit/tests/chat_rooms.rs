//! Named rooms (protocol version 2) end to end: `netkit chat join` users
//! joining, talking in, listing and leaving rooms beside the default room,
//! a version-1 client served as before, and hostile room requests.

#[path = "chat/support.rs"]
mod support;

use std::time::Duration;

use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch};

#[test]
fn rooms_are_joined_talked_in_listed_and_left() {
    let scratch = Scratch::new();
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
    alice.expect("* carol joined #ops");
    carol.send("ops talk");
    alice.expect("[#ops] carol: ops talk");
    bob.send("#room #rust");
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
