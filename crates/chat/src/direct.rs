//! Direct messages: one UDP datagram each, from one client straight to
//! another, signed with the sender's per-session Ed25519 key.
//!
//! A datagram is a JSON object (PROTOCOL.md, "Direct messages"):
//! `{"type":"direct","from":..,"to":..,"seq":..,"text":..,"sig":..}`. The
//! signature covers a domain tag, both names, the recipient's current public
//! key and the sequence number, so a datagram cannot be altered, sent to
//! someone else, carried into a later session or played twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::frame::{Direct, ServerFrame};

/// Prefix of the signed bytes, so a signature made here means nothing to
/// any other protocol.
const DOMAIN: &[u8] = b"netkit-chat direct v1\0";

/// How far behind the newest sequence number a datagram may arrive (UDP can
/// reorder) and still be accepted once.
const REPLAY_WINDOW: u64 = 64;

/// The largest datagram a receiver reads.
pub const MAX_DATAGRAM: usize = 65_507;

/// A public key as the protocol carries it: base64 of 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = BASE64.decode(text).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(Self)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// The key pair of one session, made fresh at every start.
#[derive(Debug)]
pub struct SessionKey {
    signing: SigningKey,
    next_seq: AtomicU64,
}

/// 32 bytes from the operating system's random generator, for a key.
fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random generator works");
    seed
}

impl SessionKey {
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::from_bytes(&random_seed()),
            next_seq: AtomicU64::new(1),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// A signed direct message from `from` to `to`, whose current key is
    /// `to_key`, with the session's next sequence number.
    pub fn sign(&self, from: &str, to: &str, to_key: &PublicKey, text: &str) -> Direct {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let signature = self
            .signing
            .sign(&signed_bytes(from, to, to_key, seq, text));
        Direct {
            from: from.into(),
            to: to.into(),
            seq,
            text: text.into(),
            sig: BASE64.encode(signature.to_bytes()),
        }
    }

    /// A signed datagram from `from` to `to`, whose current key is `to_key`.
    pub fn seal(&self, from: &str, to: &str, to_key: &PublicKey, text: &str) -> Vec<u8> {
        datagram(self.sign(from, to, to_key, text))
    }
}

/// A direct message as one UDP datagram: the `direct` frame the server
/// relays, without its newline.
pub fn datagram(direct: Direct) -> Vec<u8> {
    serde_json::to_vec(&ServerFrame::Direct(direct)).expect("a datagram always serializes")
}

/// Tells the sender that a datagram arrived, so it need not relay it.
/// Unsigned: a forged acknowledgement can only stop a fallback, which
/// dropping the datagram can do as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(rename = "type")]
    kind: AckType,
    /// Who received it.
    pub from: String,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AckType {
    DirectAck,
}

impl Ack {
    pub fn new(from: &str, seq: u64) -> Self {
        Self {
            kind: AckType::DirectAck,
            from: from.to_owned(),
            seq,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an acknowledgement always serializes")
    }

    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The bytes a signature covers. Names are at most 32 bytes (a length byte
/// each keeps the encoding unambiguous); the text runs to the end.
pub fn signed_bytes(from: &str, to: &str, to_key: &PublicKey, seq: u64, text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN.len() + 2 + from.len() + to.len() + 40 + text.len());
    bytes.extend_from_slice(DOMAIN);
    for name in [from, to] {
        let name = &name.as_bytes()[..name.len().min(255)];
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name);
    }
    bytes.extend_from_slice(to_key.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// What became of one received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Signed by the claimed sender's current key, for us, not seen before.
    Verified {
        from: String,
        text: String,
        seq: u64,
    },
    /// Dropped; `claimed` and `text` are whatever the datagram said, if it
    /// could be read at all.
    Rejected {
        why: Rejection,
        claimed: Option<String>,
        text: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a direct-message datagram.
    Malformed,
    /// The claimed sender is not in the user list.
    UnknownSender,
    /// Not signed by the claimed sender's current key.
    BadSignature,
    /// Signed for someone else, or for an earlier session of ours.
    NotForUs,
    /// A sequence number already seen (or too old to tell).
    Replayed,
}

impl Rejection {
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::Malformed => "not a direct message",
            Rejection::UnknownSender => "sender not in the user list",
            Rejection::BadSignature => "signature does not match the sender's key",
            Rejection::NotForUs => "addressed to another user or session",
            Rejection::Replayed => "replayed",
        }
    }
}

/// Verifies incoming datagrams for one session and remembers which
/// sequence numbers each sender's key has used.
#[derive(Debug)]
pub struct Inbox {
    name: String,
    key: PublicKey,
    seen: HashMap<[u8; 32], ReplayWindow>,
}

impl Inbox {
    pub fn new(name: &str, key: PublicKey) -> Self {
        Self {
            name: name.to_owned(),
            key,
            seen: HashMap::new(),
        }
    }

    /// Checks a datagram; `keys_of` gives a user's current keys by name
    /// (one per session).
    pub fn receive(
        &mut self,
        datagram: &[u8],
        keys_of: impl Fn(&str) -> Vec<PublicKey>,
    ) -> Received {
        match serde_json::from_slice::<ServerFrame>(datagram) {
            Ok(ServerFrame::Direct(direct)) => self.accept(direct, keys_of),
            _ => Received::Rejected {
                why: Rejection::Malformed,
                claimed: None,
                text: None,
            },
        }
    }

    /// Checks a direct message, whether it came as a datagram or relayed
    /// by the server: the server cannot sign for the sender, so what it
    /// relays passes only if it passed on the sender's bytes unchanged.
    pub fn accept(&mut self, direct: Direct, keys_of: impl Fn(&str) -> Vec<PublicKey>) -> Received {
        let reject = |why| Received::Rejected {
            why,
            claimed: Some(direct.from.clone()),
            text: Some(direct.text.clone()),
        };
        let senders = keys_of(&direct.from);
        if senders.is_empty() {
            return reject(Rejection::UnknownSender);
        }
        if !direct.to.eq_ignore_ascii_case(&self.name) {
            return reject(Rejection::NotForUs);
        }
        let Some(signature) = BASE64
            .decode(&direct.sig)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
        else {
            return reject(Rejection::BadSignature);
        };
        let signed = signed_bytes(
            &direct.from,
            &direct.to,
            &self.key,
            direct.seq,
            &direct.text,
        );
        // Either forged, or sealed for another key of ours: a message from
        // an earlier session can only fail here.
        let Some(sender) = senders
            .iter()
            .find(|sender| sender.0.verify_strict(&signed, &signature).is_ok())
        else {
            return reject(Rejection::BadSignature);
        };
        let window = self.seen.entry(*sender.as_bytes()).or_default();
        if !window.accept(direct.seq) {
            return reject(Rejection::Replayed);
        }
        Received::Verified {
            from: direct.from,
            text: direct.text,
            seq: direct.seq,
        }
    }
}

/// The anti-replay window of IPsec: the newest sequence number and a bitmap
/// of which of the 64 before it have been seen.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayWindow {
    newest: u64,
    bitmap: u64,
}

impl ReplayWindow {
    /// True the first time `seq` is offered, false for repeats and for
    /// numbers too far behind to remember. Zero is never valid.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.newest {
            let shift = seq - self.newest;
            self.bitmap = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bitmap << shift
            };
            self.bitmap |= 1;
            self.newest = seq;
            return true;
        }
        let behind = self.newest - seq;
        if behind >= REPLAY_WINDOW {
            return false;
        }
        let bit = 1u64 << behind;
        if self.bitmap & bit != 0 {
            return false;
        }
        self.bitmap |= bit;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair() -> (SessionKey, SessionKey) {
        (SessionKey::generate(), SessionKey::generate())
    }

    #[test]
    fn verified_once_then_replay_rejected() {
        let (alice, bob) = pair();
        let mut inbox = Inbox::new("bob", bob.public());
        let alice_key = alice.public();
        let keys = |name: &str| {
            if name == "alice" {
                vec![alice_key]
            } else {
                Vec::new()
            }
        };
        let datagram = alice.seal("alice", "bob", &bob.public(), "hi bob");
        assert_eq!(
            inbox.receive(&datagram, keys),
            Received::Verified {
                from: "alice".into(),
                text: "hi bob".into(),
                seq: 1,
            }
        );
        assert!(matches!(
            inbox.receive(&datagram, keys),
            Received::Rejected {
                why: Rejection::Replayed,
                ..
            }
        ));
    }

    #[test]
    fn forgeries_are_rejected() {
        let (alice, bob) = pair();
        let mallory = SessionKey::generate();
        let mut inbox = Inbox::new("bob", bob.public());
        let alice_key = alice.public();
        let mallory_key = mallory.public();
        let keys = |name: &str| match name {
            "alice" => vec![alice_key],
            "mallory" => vec![mallory_key],
            _ => Vec::new(),
        };
        let why = |received| match received {
            Received::Rejected { why, .. } => why,
            other => panic!("accepted {other:?}"),
        };
        // Mallory signs with her own key but claims to be alice.
        let forged = mallory.seal("alice", "bob", &bob.public(), "send money");
        assert_eq!(why(inbox.receive(&forged, keys)), Rejection::BadSignature);
        // A genuine datagram with its text changed.
        let genuine = alice.seal("alice", "bob", &bob.public(), "lunch at noon");
        let altered = String::from_utf8(genuine).unwrap().replace("noon", "nine");
        assert_eq!(
            why(inbox.receive(altered.as_bytes(), keys)),
            Rejection::BadSignature
        );
        // Sealed for carol, replayed to bob.
        let carol = SessionKey::generate();
        let for_carol = alice.seal("alice", "carol", &carol.public(), "psst");
        assert_eq!(why(inbox.receive(&for_carol, keys)), Rejection::NotForUs);
        // Sealed for bob's previous session.
        let old_bob = SessionKey::generate();
        let stale = alice.seal("alice", "bob", &old_bob.public(), "old");
        assert_eq!(why(inbox.receive(&stale, keys)), Rejection::BadSignature);
        // Unknown sender, garbage.
        let stranger = SessionKey::generate().seal("eve", "bob", &bob.public(), "hello");
        assert_eq!(
            why(inbox.receive(&stranger, keys)),
            Rejection::UnknownSender
        );
        assert_eq!(
            why(inbox.receive(b"\xff\x00junk", keys)),
            Rejection::Malformed
        );
    }

    /// What the server relays passes only as the sender signed it: a
    /// server that changes the text, the sender, the recipient or the
    /// sequence number, or signs with a key of its own, is caught; and a
    /// message that came both ways is shown once.
    #[test]
    fn a_relay_altered_by_the_server_is_rejected() {
        let (alice, bob) = pair();
        let server = SessionKey::generate();
        let alice_key = alice.public();
        let carol_key = SessionKey::generate().public();
        let keys = |name: &str| match name {
            "alice" => vec![alice_key],
            "carol" => vec![carol_key],
            _ => Vec::new(),
        };
        let mut inbox = Inbox::new("bob", bob.public());
        let genuine = alice.sign("alice", "bob", &bob.public(), "meet at noon");
        let why = |received| match received {
            Received::Rejected { why, .. } => why,
            other => panic!("accepted {other:?}"),
        };
        let altered = [
            Direct {
                text: "meet at nine".into(),
                ..genuine.clone()
            },
            Direct {
                from: "carol".into(),
                ..genuine.clone()
            },
            Direct {
                seq: genuine.seq + 1,
                ..genuine.clone()
            },
            server.sign("alice", "bob", &bob.public(), "meet at nine"),
        ];
        for direct in altered {
            assert_eq!(why(inbox.accept(direct, keys)), Rejection::BadSignature);
        }
        let redirected = Direct {
            to: "dave".into(),
            ..genuine.clone()
        };
        assert_eq!(why(inbox.accept(redirected, keys)), Rejection::NotForUs);
        assert!(matches!(
            inbox.accept(genuine.clone(), keys),
            Received::Verified { text, .. } if text == "meet at noon"
        ));
        // The same message over UDP after its relayed copy: a replay.
        assert_eq!(
            why(inbox.receive(&datagram(genuine), keys)),
            Rejection::Replayed
        );
        // A sender in several sessions: any of its current keys will do.
        let second = SessionKey::generate();
        let both = |_: &str| vec![alice_key, second.public()];
        let other = second.sign("alice", "bob", &bob.public(), "from my phone");
        assert!(matches!(
            inbox.accept(other, both),
            Received::Verified { .. }
        ));
    }

    #[test]
    fn acknowledgements_round_trip() {
        let ack = Ack::new("bob", 17);
        assert_eq!(Ack::parse(&ack.to_bytes()), Some(ack));
        let direct = datagram(SessionKey::generate().sign("a", "b", &pair().0.public(), "x"));
        assert_eq!(Ack::parse(&direct), None);
    }

    #[test]
    fn window_accepts_reordering_once() {
        let mut window = ReplayWindow::default();
        assert!(!window.accept(0));
        assert!(window.accept(5));
        assert!(window.accept(3));
        assert!(!window.accept(3));
        assert!(window.accept(4));
        assert!(!window.accept(5));
        assert!(window.accept(100));
        assert!(!window.accept(36));
        assert!(window.accept(37));
        assert!(!window.accept(37));
    }

    #[test]
    fn keys_round_trip_as_base64() {
        let key = SessionKey::generate().public();
        assert_eq!(PublicKey::parse(&key.to_base64()), Some(key));
        assert_eq!(PublicKey::parse("not base64"), None);
        assert_eq!(PublicKey::parse("AAAA"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let bob = SessionKey::generate();
            let mut inbox = Inbox::new("bob", bob.public());
            let alice = SessionKey::generate().public();
            let received = inbox.receive(&bytes, |_| vec![alice]);
            prop_assert!(matches!(received, Received::Rejected { .. }), "accepted noise");
        }

        #[test]
        fn window_never_accepts_twice(seqs in proptest::collection::vec(0u64..200, 0..100)) {
            let mut window = ReplayWindow::default();
            let mut accepted = std::collections::HashSet::new();
            for seq in seqs {
                if window.accept(seq) {
                    prop_assert!(accepted.insert(seq), "{} accepted twice", seq);
                }
            }
        }
    }
}
