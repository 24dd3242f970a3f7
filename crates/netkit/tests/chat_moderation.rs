//! Moderation end to end: room operators kicking, banning, muting and
//! making operators with `netkit chat join`; bans that hold across
//! reconnects and restarts; server admins (made with `netkit chat admin`)
//! acting in every room and on accounts; and hostile moderation requests
//! over the raw protocol: requests from non-operators, bad and oversized
//! targets, and kicks racing joins.

#[path = "chat/support.rs"]
mod support;

use std::process::Output;

use chat::frame::{Action, ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch, netkit};

crate::on_both_stores!(
    operators_kick_ban_and_mute_and_a_ban_outlasts_reconnects_and_restarts,
    admins_moderate_every_room_and_disable_enable_and_delete_accounts,
);

fn admin(db: &std::ffi::OsStr, args: &[&str]) -> Output {
    netkit()
        .args(["chat", "admin", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn operators_kick_ban_and_mute_and_a_ban_outlasts_reconnects_and_restarts(scratch: Scratch) {
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    let mut carol = Member::register(&addr, "carol", "carol password");
    alice.send("#join #rust");
    alice.expect("* you joined #rust (created)");
    for member in [&mut bob, &mut carol] {
        member.send("#join #rust");
        member.expect("* history of #rust");
    }
    alice.expect("* carol joined #rust");

    // Only operators moderate.
    carol.send("#kick bob");
    carol.expect("! only the operators of #rust may do that (not_operator)");
    alice.send("#op #rust bob");
    bob.expect("* alice made bob an operator of #rust");
    carol.expect("* alice made bob an operator of #rust");

    // A muted member reads but cannot talk, and is told why.
    bob.send("#mute carol flooding");
    carol.expect("* bob muted carol in #rust: flooding");
    carol.send("can anyone hear me");
    carol.expect("! you are muted in #rust (muted)");
    alice.send("#unmute #rust carol");
    carol.expect("* alice unmuted carol in #rust");
    carol.send("back again");
    bob.expect("[#rust] carol: back again");
    assert_eq!(
        bob.count("can anyone hear me", std::time::Duration::ZERO),
        0
    );

    // A kick removes; the kicked may come back.
    alice.send("#kick #rust carol too loud");
    carol.expect("* alice kicked carol from #rust: too loud");
    carol.expect("* you left #rust");
    bob.expect("* carol left #rust (kicked)");
    carol.send("#join #rust");
    carol.expect("* you joined #rust");

    // A ban removes and keeps out, also after reconnecting.
    bob.send("#ban carol spam");
    carol.expect("* bob banned carol from #rust: spam");
    carol.expect("* you left #rust");
    alice.expect("* carol left #rust (banned)");
    carol.send("#join #RUST");
    carol.expect("! you are banned from #RUST (banned)");
    assert!(carol.quit().success());
    let mut carol = Member::login(&addr, "carol", "carol password");
    carol.send("#join #rust");
    carol.expect("(banned)");
    carol.send("#bans");
    carol.expect("! only admins list every ban; name a room you operate (not_admin)");
    alice.send("#bans #rust");
    alice.expect("* bans (1):");
    alice.expect("*   #rust carol (by bob): spam");
    alice.send("#topic #rust all about Rust");
    bob.expect("* alice set the topic of #rust: all about Rust");

    // The ban is in the database: a restart keeps it, and the admin
    // command lifts it. The room is kept too, with its topic and its
    // operators.
    drop((alice, bob, carol));
    // Stopped as an operator would: the last changes are saved first.
    let mut server = server;
    server.server.signal("TERM");
    let stopped = server.server.wait_timeout(support::WAIT);
    assert!(
        stopped.is_some_and(|status| status.success()),
        "{stopped:?}"
    );
    let listed = admin(&scratch.db(), &["bans"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout);
    assert!(
        listed.contains("#rust") && listed.contains("carol") && listed.contains("by bob"),
        "{listed}"
    );
    let elsewhere = admin(&scratch.db(), &["bans", "--room", "#go"]);
    assert!(elsewhere.status.success());
    assert_eq!(text(&elsewhere.stdout), "");
    let server = ChatServer::start(&scratch, &[]);
    let mut carol = Member::login(&server.addr(), "carol", "carol password");
    carol.send("#join #rust");
    carol.expect("! you are banned from #rust (banned)");
    // Lifted with the admin command while the server runs: the next
    // join finds the database no longer bans her.
    let db = scratch.db();
    let lifted = admin(&db, &["unban", "#Rust", "CAROL"]);
    assert!(lifted.status.success(), "{}", text(&lifted.stderr));
    let again = admin(&db, &["unban", "#rust", "carol"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not banned"),
        "{}",
        text(&again.stderr)
    );
    carol.send("#join #rust");
    carol.expect("* you joined #rust; topic: all about Rust");
    assert_eq!(carol.count("(created)", std::time::Duration::ZERO), 0);
    carol.send("#topic #rust mine now");
    carol.expect("! only the operators of #rust may do that (not_operator)");
    let mut bob = Member::login(&server.addr(), "bob", "bob password");
    bob.send("#join #rust");
    bob.expect("* you joined #rust; topic: all about Rust; operators: bob");
    bob.send("#kick #rust carol");
    carol.expect("* bob kicked carol from #rust");

    // An account deleted with the admin command while the server runs
    // leaves nothing to a new account of the same name.
    assert!(bob.quit().success());
    let deleted = admin(&db, &["delete", "bob"]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let mut bob = Member::register(&server.addr(), "bob", "another bob password");
    bob.send("#join #rust");
    bob.expect("* you joined #rust; topic: all about Rust");
    bob.send("#topic #rust mine now");
    bob.expect("! only the operators of #rust may do that (not_operator)");
}

fn admins_moderate_every_room_and_disable_enable_and_delete_accounts(scratch: Scratch) {
    let db = scratch.db();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let root = Member::register(&addr, "root", "root password");
    assert!(root.quit().success());
    let missing = admin(&db, &["grant-admin", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no account `nobody`"));
    let granted = admin(&db, &["grant-admin", "root"]);
    assert!(granted.status.success(), "{}", text(&granted.stderr));
    let users = netkit()
        .args(["chat", "users", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        text(&users.stdout).contains("  admin"),
        "{}",
        text(&users.stdout)
    );

    let mut root = Member::spawn(&addr, "root", "root password", &[]);
    root.expect("as root, an admin");
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut mallory = Member::register(&addr, "mallory", "mallory password");
    alice.send("#join #den");
    alice.expect("* you joined #den (created)");
    mallory.send("#join #den");
    alice.expect("* mallory joined #den");

    // An admin acts in a room it is not in, and hears the outcome.
    root.send("#kick #den mallory");
    root.expect("* root kicked mallory from #den");
    alice.expect("* root kicked mallory from #den");
    mallory.expect("* you left #den");
    root.send("#topic #den tidy up");
    root.expect("* root set the topic of #den: tidy up");
    alice.expect("* root set the topic of #den: tidy up");
    root.send("#ban #den mallory");
    root.expect("* root banned mallory from #den");
    root.send("#bans");
    root.expect("*   #den mallory (by root)");
    alice.send("#disable mallory");
    alice.expect("! only server admins may disable accounts (not_admin)");

    // Disabled: the session ends, and logins are refused until enabled.
    root.send("#disable mallory");
    root.expect("* root disabled the account mallory");
    mallory.expect("! disconnected: your account was disabled by root (account_disabled)");
    let (status, _, _) = mallory.finish_when_closed();
    assert_eq!(status.code(), Some(1));
    alice.expect("* mallory left");
    let (status, stderr, _) =
        Member::spawn(&addr, "mallory", "mallory password", &[]).finish_when_closed();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("(account_disabled)"), "{stderr}");
    // A wrong password does not learn that the account is disabled.
    let (_, stderr, _) =
        Member::spawn(&addr, "mallory", "wrong password", &[]).finish_when_closed();
    assert!(stderr.contains("(login_failed)"), "{stderr}");
    root.send("#enable mallory");
    root.expect("* root enabled the account mallory");
    let mallory = Member::login(&addr, "mallory", "mallory password");

    // Deleted: the session ends, the account and its bans are gone, and
    // the name may be registered afresh.
    root.send("#delete mallory");
    root.expect("* root deleted the account mallory");
    let (status, _, seen) = mallory.finish_when_closed();
    assert_eq!(status.code(), Some(1));
    assert!(
        seen.iter().any(|line| line.contains("(account_deleted)")),
        "{seen:?}"
    );
    root.send("#bans");
    root.expect("* bans (0):");
    let mut mallory = Member::register(&addr, "mallory", "a new password");
    mallory.send("#join #den");
    mallory.expect("* you joined #den");

    // The admin command acts on the database while the server runs: the
    // account's next login sees it.
    let disabled = admin(&db, &["disable", "alice"]);
    assert!(disabled.status.success(), "{}", text(&disabled.stderr));
    let (status, stderr, _) =
        Member::spawn(&addr, "alice", "alice password", &[]).finish_when_closed();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(account_disabled)"), "{stderr}");
    assert!(admin(&db, &["enable", "alice"]).status.success());
    drop(Member::login(&addr, "alice", "alice password"));
    assert!(admin(&db, &["delete", "alice"]).status.success());
    let users = netkit()
        .args(["chat", "users", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        !text(&users.stdout).contains("alice"),
        "{}",
        text(&users.stdout)
    );
    assert!(admin(&db, &["revoke-admin", "ROOT"]).status.success());
    let users = netkit()
        .args(["chat", "users", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        !text(&users.stdout).contains("admin"),
        "{}",
        text(&users.stdout)
    );
}

fn next_error(raw: &mut Raw) -> ErrorCode {
    match raw.until(|frame| matches!(frame, ServerFrame::Error { .. })) {
        ServerFrame::Error { code, .. } => code,
        other => panic!("{other:?}"),
    }
}

fn join(raw: &mut Raw, room: &str) {
    raw.send(&ClientFrame::Join { room: room.into() });
    raw.until(|frame| matches!(frame, ServerFrame::HistoryEnd { .. }));
}

fn kick(room: &str, user: &str) -> ClientFrame {
    ClientFrame::Kick {
        room: room.into(),
        user: user.into(),
        reason: None,
    }
}

#[test]
fn hostile_moderation_requests_are_refused() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--rate", "100000", "--burst", "100000"]);
    let mut early = Raw::connect(server.addr);
    early.send(&kick("#rust", "bob"));
    assert_eq!(next_error(&mut early), ErrorCode::NotLoggedIn);

    let mut op = Raw::connect(server.addr);
    op.join("op", "op password", true);
    let mut bob = Raw::connect(server.addr);
    bob.join("bob", "bob password", true);
    join(&mut op, "#rust");
    join(&mut bob, "#rust");

    // From a member who is not an operator, and from a non-member.
    for frame in [
        kick("#rust", "op"),
        ClientFrame::Op {
            room: "#rust".into(),
            user: "bob".into(),
        },
        ClientFrame::Bans {
            room: Some("#rust".into()),
        },
        ClientFrame::Topic {
            room: "#rust".into(),
            topic: "mine".into(),
        },
    ] {
        bob.send(&frame);
        assert_eq!(next_error(&mut bob), ErrorCode::NotOperator, "{frame:?}");
    }
    bob.send(&kick("#elsewhere", "op"));
    assert_eq!(next_error(&mut bob), ErrorCode::NotInRoom);
    for frame in [
        ClientFrame::Disable { user: "op".into() },
        ClientFrame::Enable { user: "op".into() },
        ClientFrame::Delete { user: "op".into() },
        ClientFrame::Bans { room: None },
    ] {
        bob.send(&frame);
        assert_eq!(next_error(&mut bob), ErrorCode::NotAdmin, "{frame:?}");
    }

    // Bad targets: names that cannot be accounts (oversized ones too),
    // accounts that do not exist or are not there, bad rooms and reasons.
    let long = "x".repeat(60_000);
    for bad in ["", "bad name!", "\u{202e}bob", long.as_str()] {
        op.send(&kick("#rust", bad));
        assert_eq!(next_error(&mut op), ErrorCode::InvalidName, "{bad:.20}");
    }
    let unknown = [
        ClientFrame::Ban {
            room: "#rust".into(),
            user: "nobody".into(),
            reason: None,
        },
        kick("#rust", "nobody"),
        ClientFrame::Unban {
            room: "#rust".into(),
            user: "bob".into(),
        },
        ClientFrame::Unmute {
            room: "#rust".into(),
            user: "bob".into(),
        },
        ClientFrame::Deop {
            room: "#rust".into(),
            user: "bob".into(),
        },
    ];
    for frame in unknown {
        op.send(&frame);
        assert_eq!(next_error(&mut op), ErrorCode::NoSuchUser, "{frame:?}");
    }
    for room in ["#lobby", "rust", "#", &format!("#{}", "r".repeat(60_000))] {
        op.send(&kick(room, "bob"));
        assert_eq!(next_error(&mut op), ErrorCode::InvalidRoom, "{room:.20}");
    }
    op.send(&ClientFrame::Mute {
        room: "#rust".into(),
        user: "bob".into(),
        reason: Some("r".repeat(301)),
    });
    assert_eq!(next_error(&mut op), ErrorCode::InvalidText);
    op.send_bytes(b"{\"type\":\"kick\",\"room\":\"#rust\"}\n");
    assert_eq!(next_error(&mut op), ErrorCode::BadFrame);
    op.send_bytes(b"{\"type\":\"ban\",\"room\":\"#rust\",\"user\":7}\n");
    assert_eq!(next_error(&mut op), ErrorCode::BadFrame);

    // Nothing above changed anything: bob is still there and may talk.
    op.send(&ClientFrame::Members {
        room: "#rust".into(),
    });
    let members = op.until(|frame| matches!(frame, ServerFrame::Members { .. }));
    assert!(
        matches!(&members, ServerFrame::Members { members, .. } if members == &["bob", "op"]),
        "{members:?}"
    );
}

/// Kicks racing joins, and a ban racing both: each kick either removes
/// bob or finds him gone, the server keeps answering both, and once the
/// ban is through bob can never get back in, not even from a new
/// connection.
#[test]
fn kicks_race_joins_and_a_banned_user_reconnecting_stays_out() {
    let scratch = Scratch::new();
    let server = ChatServer::start(
        &scratch,
        &[
            "--rate",
            "100000",
            "--burst",
            "100000",
            "--history-on-join",
            "0",
        ],
    );
    let mut op = Raw::connect(server.addr);
    op.join("op", "op password", true);
    let mut bob = Raw::connect(server.addr);
    bob.join("bob", "bob password", true);
    join(&mut op, "#race");
    // Bob starts inside, so the first kick always finds him.
    join(&mut bob, "#race");

    const ROUNDS: usize = 200;
    let mut joins = Vec::new();
    let mut kicks = Vec::new();
    for _ in 0..ROUNDS {
        joins.extend_from_slice(
            &chat::frame::encode(&ClientFrame::Join {
                room: "#race".into(),
            })
            .unwrap(),
        );
        joins.extend_from_slice(
            &chat::frame::encode(&ClientFrame::Say {
                text: "still here".into(),
                room: Some("#race".into()),
            })
            .unwrap(),
        );
        kicks.extend_from_slice(&chat::frame::encode(&kick("#race", "bob")).unwrap());
    }
    let bob_stream = bob.stream.try_clone().unwrap();
    let op_stream = op.stream.try_clone().unwrap();
    let sending = [
        std::thread::spawn(move || {
            use std::io::Write;
            (&bob_stream).write_all(&joins).unwrap();
        }),
        std::thread::spawn(move || {
            use std::io::Write;
            (&op_stream).write_all(&kicks).unwrap();
        }),
    ];
    // Every kick is answered: done (announced) or refused (bob not in).
    let (mut done, mut refused) = (0, 0);
    while done + refused < ROUNDS {
        match op.frame().expect("the server keeps answering the operator") {
            ServerFrame::Moderation {
                action: Action::Kick,
                ..
            } => done += 1,
            ServerFrame::Error {
                code: ErrorCode::NoSuchUser,
                ..
            } => refused += 1,
            _ => {}
        }
    }
    for thread in sending {
        thread.join().unwrap();
    }
    assert!(
        done >= 1,
        "no kick found bob in the room: {refused} refused"
    );
    // Bob's every join was answered, and the server still answers him.
    let mut answered = 0;
    while answered < ROUNDS {
        if let ServerFrame::RoomJoined { .. } = bob.frame().expect("bob is still connected") {
            answered += 1;
        }
    }
    bob.send(&ClientFrame::Ping { id: Some(1) });
    bob.until(|frame| matches!(frame, ServerFrame::Pong { id: Some(1) }));

    join(&mut bob, "#race");
    op.send(&ClientFrame::Ban {
        room: "#race".into(),
        user: "BOB".into(),
        reason: None,
    });
    bob.until(|frame| matches!(frame, ServerFrame::RoomParted { .. }));
    bob.send(&ClientFrame::Join {
        room: "#race".into(),
    });
    assert_eq!(next_error(&mut bob), ErrorCode::Banned);
    bob.send(&ClientFrame::Say {
        text: "let me in".into(),
        room: Some("#race".into()),
    });
    assert_eq!(next_error(&mut bob), ErrorCode::NotInRoom);
    drop(bob);
    let mut back = Raw::connect(server.addr);
    back.join("bob", "bob password", false);
    back.send(&ClientFrame::Join {
        room: "#Race".into(),
    });
    assert_eq!(next_error(&mut back), ErrorCode::Banned);
    op.send(&ClientFrame::Members {
        room: "#race".into(),
    });
    let members = op.until(|frame| matches!(frame, ServerFrame::Members { .. }));
    assert!(
        matches!(&members, ServerFrame::Members { members, .. } if members == &["op"]),
        "{members:?}"
    );
}
