//! Direct messages relayed by the server, still signed end to end: to and
//! from a client without UDP (`--relay-only`, as a browser is), and the
//! fallback when a datagram gets no acknowledgement. The recipient checks
//! a relayed message against the sender's key from the user list; that a
//! server altering one is caught is shown in direct.rs's unit tests.

#[path = "chat/support.rs"]
mod support;

use chat::direct::{Inbox, PublicKey, Received};
use chat::frame::{ClientFrame, ErrorCode, Relay, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch};

#[test]
fn a_client_without_udp_sends_and_receives_through_the_server() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::spawn(
        &addr,
        "bob",
        "bob password",
        &["--register", "--relay-only"],
    )
    .connected();
    alice.expect("* bob joined");
    alice.send("@bob: over the server");
    alice.expect("* direct message to bob relayed through the server");
    bob.expect("[direct relayed] alice: over the server");
    bob.send("@alice: and back");
    bob.expect("* direct message to alice relayed through the server");
    alice.expect("[direct relayed] bob: and back");
    // Between two clients with UDP, over UDP: acknowledged, so not
    // relayed (unless a stalled machine holds the acknowledgement past
    // the fallback's second; then the relayed copy may win, and the
    // other is dropped as a replay: shown once either way).
    let mut carol = Member::register(&addr, "carol", "carol password");
    alice.expect("* carol joined");
    carol.send("@alice: by datagram");
    let line = alice.expect("carol: by datagram");
    assert!(line.starts_with("[direct"), "{line}");
    assert_eq!(alice.count("by datagram", std::time::Duration::ZERO), 1);
}

#[test]
fn an_unacknowledged_datagram_is_relayed_and_verified_by_the_recipient() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    // A recipient whose announced UDP port (9, discard) has nobody on it.
    let mut carol = Raw::connect(server.addr);
    carol.join("carol", "carol password", true);
    let mut alice = Member::spawn(
        &server.addr(),
        "alice",
        "alice password",
        &["--register", "--show-unverified"],
    )
    .connected();
    let joined = carol.until(|frame| matches!(frame, ServerFrame::Joined { .. }));
    let ServerFrame::Joined { user, .. } = joined else {
        unreachable!()
    };
    let alice_key = PublicKey::parse(&user.key).expect("alice's key");
    alice.send("@carol: are you there?");
    alice.expect("* no answer over UDP from carol: direct message relayed through the server");
    let relayed = carol.until(|frame| matches!(frame, ServerFrame::Direct(_)));
    let ServerFrame::Direct(direct) = relayed else {
        unreachable!()
    };
    assert_eq!(direct.from, "alice");
    let mut inbox = Inbox::new("carol", carol.key.public());
    let keys = |name: &str| {
        if name == "alice" {
            vec![alice_key]
        } else {
            Vec::new()
        }
    };
    // What the server passed on verifies; the same with its text changed
    // does not.
    let altered = chat::frame::Direct {
        text: "are you not there?".into(),
        ..direct.clone()
    };
    assert!(matches!(
        inbox.accept(altered, keys),
        Received::Rejected { .. }
    ));
    assert!(
        matches!(inbox.accept(direct, keys), Received::Verified { ref text, .. } if text == "are you there?")
    );

    // Relays the server cannot deliver, or will not.
    let relay = |to: &str, key: &str, text: &str| {
        ClientFrame::Relay(Relay {
            to: to.into(),
            key: key.into(),
            seq: 1,
            text: text.into(),
            sig: "AAAA".into(),
        })
    };
    let alice_key = alice_key.to_base64();
    for (frame, code) in [
        (relay("nobody", &alice_key, "hi"), ErrorCode::NotOnline),
        (relay("alice", "not her key", "hi"), ErrorCode::NotOnline),
        (
            relay(&"a".repeat(50_000), &alice_key, "hi"),
            ErrorCode::NotOnline,
        ),
        (relay("alice", &alice_key, ""), ErrorCode::InvalidText),
        (
            relay("alice", &alice_key, &"x".repeat(5000)),
            ErrorCode::InvalidText,
        ),
    ] {
        carol.send(&frame);
        let answer = carol.until(|frame| matches!(frame, ServerFrame::Error { .. }));
        assert!(
            matches!(answer, ServerFrame::Error { code: got, .. } if got == code),
            "{answer:?}"
        );
    }
    // A forged relay reaches alice, whose client rejects it.
    carol.send(&relay("alice", &alice_key, "forged"));
    let line = alice.expect("forged");
    assert!(
        line.starts_with("[direct] unverified carol (relayed, signature does not match"),
        "{line}"
    );
}
