//! Several sessions of one account (`chat serve --sessions-per-user`, as
//! IRC bouncers allow): each session hears the room, the account is one
//! user in lists, and a login beyond the limit replaces the oldest. The
//! default, one session, is in chat.rs (a second login replaces the first).

#[path = "chat/support.rs"]
mod support;

use support::{ChatServer, Member, Scratch};

#[test]
fn an_account_may_be_logged_in_from_several_sessions_when_allowed() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--sessions-per-user", "2"]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut laptop = Member::register(&addr, "bob", "bob password");
    let mut phone = Member::login(&addr, "BOB", "bob password");
    laptop.expect("* bob joined");
    alice.send("hello, both of you");
    laptop.expect("[room] alice: hello, both of you");
    phone.expect("[room] alice: hello, both of you");
    alice.send("#ls");
    alice.expect("* online (2): alice, bob");

    // In a named room the account is one member, and every session hears.
    laptop.send("#join #home");
    laptop.expect("* you joined #home (created)");
    phone.send("#join #home");
    phone.expect("* in #home (1): bob");
    alice.send("#join #home");
    alice.expect("* in #home (2): alice, bob");
    alice.send("at home");
    laptop.expect("[#home] alice: at home");
    phone.expect("[#home] alice: at home");
    // What one session says, the other sees too.
    phone.send("from my phone");
    laptop.expect("[#home] bob: from my phone");
    alice.expect("[#home] bob: from my phone");
    // One session leaving the room is not the account leaving it.
    phone.send("#part");
    phone.expect("* you left #home");
    laptop.send("still here");
    alice.expect("[#home] bob: still here");
    assert_eq!(
        alice.count("* bob left #home", std::time::Duration::ZERO),
        0
    );

    // A third login replaces the oldest session.
    let mut tablet = Member::login(&addr, "bob", "bob password");
    laptop
        .expect("! disconnected: this account logged in on another connection (session_replaced)");
    alice.expect("* bob left #home");
    alice.send("#room #lobby");
    alice.send("who is left?");
    phone.expect("[room] alice: who is left?");
    tablet.expect("[room] alice: who is left?");
    // A direct message reaches every session, each sealed for its key.
    alice.send("@bob: to all of you");
    phone.expect("[direct] alice: to all of you");
    tablet.expect("[direct] alice: to all of you");
    let (status, _, _) = laptop.finish_when_closed();
    assert_eq!(status.code(), Some(1));
}
