//! The chat as a cluster (`--bus redis://…` with `--db postgres://…`):
//! three nodes sharing a Redis and a PostgreSQL that the tests start for
//! themselves, with clients spread over the nodes. Then the faults: a node
//! killed (its users leave elsewhere within the presence bound), Redis
//! restarted mid-conversation, PostgreSQL stopped and started again.

#[path = "chat/support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, WAIT, netkit};
use testkit::{Postgres, Redis};

/// The presence bound the nodes are started with: short, so a dead node
/// is noticed quickly; the tests allow `WAIT` all the same.
const PRESENCE: &str = "2s";

struct Cluster {
    redis: Redis,
    postgres: Postgres,
    nodes: Vec<ChatServer>,
}

impl Cluster {
    /// `count` nodes, or `None` when Redis or PostgreSQL is missing
    /// outside CI.
    fn start(count: usize) -> Option<Self> {
        let redis = Redis::start()?;
        let postgres = Postgres::start()?;
        let mut cluster = Self {
            redis,
            postgres,
            nodes: Vec::new(),
        };
        for _ in 0..count {
            cluster.add_node();
        }
        Some(cluster)
    }

    fn add_node(&mut self) {
        let url = self.redis.url();
        let node = ChatServer::start_with_db(
            self.postgres.url(),
            &["--bus", &url, "--presence", PRESENCE],
        );
        self.nodes.push(node);
    }

    fn addr(&self, node: usize) -> String {
        self.nodes[node].addr()
    }
}

#[test]
fn a_bus_needs_postgres_and_keeps_its_password_off_the_command_line() {
    let out = netkit()
        .args(["chat", "serve", "--bind", "127.0.0.1:0"])
        .args(["--bus", "redis://127.0.0.1:9", "--db", "chat.sqlite3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--db postgres://"), "{stderr}");
    for (url, needle) in [
        ("redis://:hunter2@127.0.0.1:9", "NETKIT_REDIS_PASSWORD"),
        ("redis://redis.example.com:6379", "rediss://"),
    ] {
        let out = netkit()
            .args(["chat", "serve", "--bind", "127.0.0.1:0", "--bus", url])
            .args(["--db", "postgres://netkit@127.0.0.1:9/chat"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password is repeated: {stderr}"
        );
    }
}

#[test]
fn the_password_comes_from_the_environment() {
    let Some(redis) = Redis::start_with(&["--requirepass", "bus-secret"]) else {
        return;
    };
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let serve = |password: Option<&str>| {
        let mut command = netkit();
        command
            .args(["chat", "serve", "--bind", "127.0.0.1:0", "--bus"])
            .arg(redis.url())
            .arg("--db")
            .arg(postgres.url())
            .env_remove("NETKIT_REDIS_PASSWORD")
            .env_remove("REDISCLI_AUTH");
        if let Some(password) = password {
            command.env("NETKIT_REDIS_PASSWORD", password);
        }
        command
    };
    let refused = serve(None).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    let mut node = ChatServer {
        server: testkit::Server::start(serve(Some("bus-secret")), 1),
        addr: "127.0.0.1:1".parse().unwrap(),
        db: postgres.url().into(),
    };
    node.addr = node.server.addr();
    drop(Member::register(&node.addr(), "alice", "alice password"));
}

#[test]
fn three_nodes_are_one_chat() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    alice.expect("* bob joined");
    let mut carol = Member::register(&cluster.addr(2), "carol", "carol password");
    alice.expect("* carol joined");
    bob.expect("* carol joined");

    // The user list is the cluster's, whichever node answers.
    carol.send("#ls");
    carol.expect("* online (3): alice, bob, carol");
    let mut raw = Raw::connect(cluster.nodes[1].addr);
    raw.send(&ClientFrame::Login(
        raw.credentials("dave", "dave password"),
    ));
    assert!(matches!(
        raw.frame(),
        Some(ServerFrame::Error {
            code: ErrorCode::LoginFailed,
            ..
        })
    ));
    let mut dave = Raw::connect(cluster.nodes[1].addr);
    dave.send(&ClientFrame::Register(
        dave.credentials("dave", "dave password"),
    ));
    assert!(matches!(dave.frame(), Some(ServerFrame::Welcome { .. })));
    let users = dave.until(|frame| matches!(frame, ServerFrame::Users { more: false, .. }));
    let ServerFrame::Users { users, .. } = users else {
        unreachable!()
    };
    let mut names: Vec<&str> = users.iter().map(|user| user.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);

    // Room messages reach every node, once, in the order said.
    for i in 0..5 {
        alice.send(&format!("one {i}"));
    }
    bob.send("from bob");
    for i in 0..5 {
        carol.expect(&format!("alice: one {i}"));
    }
    // Another node's message may come before, between or after them.
    if carol.count("bob: from bob", Duration::ZERO) == 0 {
        carol.expect("bob: from bob");
    }
    alice.expect("bob: from bob");
    assert_eq!(bob.count("alice: one 4", Duration::from_millis(200)), 1);

    // Named rooms span nodes: members, topic, messages and history.
    alice.send("#join #rust");
    alice.expect("* you joined #rust (created)");
    alice.send("before bob came");
    // What alice's node did before her next lobby message, bob's node
    // has heard when he sees it: the room is known there.
    alice.send("#room #lobby");
    alice.send("the rust room is open");
    bob.expect("alice: the rust room is open");
    alice.send("#room #rust");
    bob.send("#join #rust");
    bob.expect("* you joined #rust; topic: ; operators: alice");
    bob.expect("* in #rust (2): alice, bob");
    alice.expect("* bob joined #rust");
    alice.send("#topic #rust cluster talk");
    bob.expect("* alice set the topic of #rust: cluster talk");
    bob.send("in the room");
    alice.expect("[#rust] bob: in the room");
    alice.send("#room #lobby");
    alice.send("the topic is set");
    carol.expect("alice: the topic is set");
    carol.send("#join #rust");
    carol.expect("* you joined #rust; topic: cluster talk");
    // History comes from PostgreSQL, where each node writes what its own
    // members said a moment after, completed with what carol's node has
    // heard on the bus meanwhile: the older message is surely there.
    carol.expect("alice: before bob came");
    assert_eq!(
        carol.count("[#rust] alice: before bob came", Duration::from_millis(100)),
        0
    );

    // Direct messages between nodes: over UDP with the keys the lists
    // carry, and relayed through both nodes for a client without UDP.
    alice.send("@carol: just us");
    carol.expect("alice: just us");
    let mut erin = Member::spawn(
        &cluster.addr(2),
        "erin",
        "erin password",
        &["--register", "--relay-only"],
    )
    .connected();
    alice.expect("* erin joined");
    alice.send("@erin: over two servers");
    erin.expect("[direct relayed] alice: over two servers");
    erin.send("@alice: and back");
    alice.expect("[direct relayed] erin: and back");
}

#[test]
fn moderation_and_sessions_hold_across_nodes() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    alice.expect("* bob joined");
    alice.send("#join #mod");
    alice.expect("* you joined #mod (created)");
    alice.send("#room #lobby");
    alice.send("the mod room is open");
    bob.expect("alice: the mod room is open");
    alice.send("#room #mod");
    bob.send("#join #mod");
    bob.expect("* you joined #mod; topic: ; operators: alice");
    alice.expect("* bob joined #mod");
    alice.send("#mute #mod bob");
    bob.expect("alice muted bob in #mod");
    bob.send("#room #mod");
    bob.send("can you hear me");
    bob.expect("(muted)");
    alice.send("#ban #mod bob spam");
    bob.expect("alice banned bob from #mod");
    alice.expect("* bob left #mod (banned)");
    bob.send("#join #mod");
    bob.expect("(banned)");

    // One session per account in the whole cluster: the newer login wins.
    let mut bob_again = Member::login(&cluster.addr(0), "bob", "bob password");
    bob.expect("(session_replaced)");
    alice.expect("* bob left (logged in elsewhere)");
    bob_again.send("still here");
    alice.expect("bob: still here");
}

#[test]
fn login_throttles_are_shared() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    drop(Member::register(
        &cluster.addr(0),
        "alice",
        "alice password",
    ));
    let mut codes = Vec::new();
    for attempt in 0..6 {
        let mut raw = Raw::connect(cluster.nodes[attempt % 2].addr);
        raw.send(&ClientFrame::Login(
            raw.credentials("alice", "wrong password"),
        ));
        match raw.frame() {
            Some(ServerFrame::Error { code, .. }) => codes.push(code),
            other => panic!("expected an error, got {other:?}"),
        }
    }
    assert_eq!(&codes[..5], [ErrorCode::LoginFailed; 5]);
    assert_eq!(codes[5], ErrorCode::Throttled, "{codes:?}");
}

#[test]
fn a_killed_node_s_users_leave_the_others() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    let carol = Member::register(&cluster.addr(2), "carol", "carol password");
    alice.expect("* carol joined");
    bob.expect("* carol joined");
    alice.send("#join #ops");
    let carol2 = carol_joins(&cluster, &mut alice);

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-KILL", &cluster.nodes[2].server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    alice.expect("* carol2 left #ops (connection lost)");
    alice.expect("* carol left (connection lost)");
    bob.expect("* carol left (connection lost)");
    // The bound is 2 s; a busy test machine may add to it, never 20 s.
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    drop((carol, carol2));

    alice.send("#room #lobby");
    alice.send("after the loss");
    bob.expect("alice: after the loss");
    // A node started later learns who is in.
    cluster.add_node();
    let mut dave = Member::register(&cluster.addr(3), "dave", "dave password");
    alice.expect("* dave joined");
    bob.expect("* dave joined");
    // Each node's news arrives in its order: after these, their sessions.
    alice.send("hello dave");
    bob.send("hello from bob");
    // The two nodes' messages may come in either order.
    dave.expect(": hello");
    dave.expect(": hello");
    dave.send("#ls");
    dave.expect("* online (3): alice, bob, dave");
}

/// A second session on node 2, in `#ops` with alice.
fn carol_joins(cluster: &Cluster, alice: &mut Member) -> Raw {
    let mut carol = Raw::connect(cluster.nodes[2].addr);
    carol.join("carol2", "carol password", true);
    carol.send(&ClientFrame::Join {
        room: "#ops".into(),
    });
    carol.until(|frame| matches!(frame, ServerFrame::RoomJoined { .. }));
    alice.expect("* carol2 joined #ops");
    carol
}

#[test]
fn redis_restarting_degrades_then_recovers() {
    let Some(mut cluster) = Cluster::start(2) else {
        return;
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    alice.expect("* bob joined");
    alice.send("before");
    bob.expect("alice: before");

    cluster.redis.stop();
    alice.expect("lost its cluster");
    bob.expect("lost its cluster");
    // Local members still hear each other.
    let mut carol = Member::register(&cluster.addr(0), "carol", "carol password");
    carol.expect("lost its cluster");
    alice.send("during");
    carol.expect("alice: during");

    cluster.redis.restart();
    alice.expect("linked to its cluster again");
    bob.expect("linked to its cluster again");
    alice.send("after");
    bob.expect("alice: after");
    bob.send("back");
    alice.expect("bob: back");
    carol.expect("bob: back");
    // What was said during the outage was not delivered late.
    assert_eq!(bob.count("alice: during", Duration::from_millis(200)), 0);
}

#[test]
fn postgres_stopping_fails_logins_clearly_then_recovers() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    alice.expect("* bob joined");
    drop(Member::register(
        &cluster.addr(1),
        "carol",
        "carol password",
    ));

    alice.send("#join #ops");
    alice.expect("* you joined #ops (created)");
    alice.send("#room #lobby");

    cluster.postgres.stop();
    alice.send("the database is down");
    bob.expect("alice: the database is down");
    // Moderation that needs the database says why it cannot be done.
    alice.send("#ban #ops carol");
    alice.expect("! the database is unavailable (unavailable)");
    let mut raw = Raw::connect(cluster.nodes[1].addr);
    raw.send(&ClientFrame::Login(
        raw.credentials("carol", "carol password"),
    ));
    match raw.frame() {
        Some(ServerFrame::Error { code, text }) => {
            assert_eq!(code, ErrorCode::Unavailable, "{text}")
        }
        other => panic!("expected an error, got {other:?}"),
    }

    cluster.postgres.restart();
    let deadline = Instant::now() + WAIT;
    loop {
        raw.send(&ClientFrame::Login(
            raw.credentials("carol", "carol password"),
        ));
        match raw.frame() {
            Some(ServerFrame::Welcome { .. }) => break,
            Some(ServerFrame::Error {
                code: ErrorCode::Unavailable,
                ..
            }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }
    alice.expect("* carol joined");
    // What was said while it was down waited, and is stored now.
    let deadline = Instant::now() + WAIT;
    while cluster
        .postgres
        .psql("SELECT count(*) FROM history WHERE text = 'the database is down'")
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the message said during the outage was not stored"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rooms are kept in PostgreSQL by the node where they changed: changes
/// made while it is down are written once it is back, and a node started
/// after every other has stopped finds the room's topic and operators.
#[test]
fn rooms_outlast_a_postgres_outage_and_every_node() {
    let Some(mut cluster) = Cluster::start(2) else {
        return;
    };
    let kept = |cluster: &Cluster| {
        let topic = cluster
            .postgres
            .psql("SELECT topic FROM rooms WHERE key = '#keep'");
        let operators = cluster.postgres.psql(
            "SELECT string_agg(account_key, ',' ORDER BY account_key)
             FROM room_operators WHERE room_key = '#keep'",
        );
        (topic, operators)
    };
    let settled = |cluster: &Cluster, wanted: (&str, &str)| {
        let deadline = Instant::now() + WAIT;
        loop {
            let (topic, operators) = kept(cluster);
            if (topic.as_str(), operators.as_str()) == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL keeps {topic:?} by {operators:?}, not {wanted:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut alice = Member::register(&cluster.addr(0), "alice", "alice password");
    let mut bob = Member::register(&cluster.addr(1), "bob", "bob password");
    alice.expect("* bob joined");
    alice.send("#join #Keep");
    alice.expect("* you joined #Keep (created)");
    alice.send("#topic #keep first topic");
    alice.expect("* alice set the topic of #Keep: first topic");
    settled(&cluster, ("first topic", "alice"));

    cluster.postgres.stop();
    bob.send("#join #keep");
    bob.expect("* you joined #Keep; topic: first topic; operators: alice");
    alice.expect("* bob joined #Keep");
    alice.send("#topic #keep set while the database was down");
    bob.expect("* alice set the topic of #Keep: set while the database was down");
    alice.send("#op #keep bob");
    bob.expect("* alice made bob an operator of #Keep");
    cluster.postgres.restart();
    settled(&cluster, ("set while the database was down", "alice,bob"));

    drop((alice, bob));
    cluster.nodes.clear();
    cluster.add_node();
    let mut carol = Member::register(&cluster.addr(0), "carol", "carol password");
    carol.send("#join #keep");
    carol.expect("* you joined #Keep; topic: set while the database was down");
    assert_eq!(carol.count("(created)", Duration::ZERO), 0);
    carol.send("#topic #keep mine now");
    carol.expect("(not_operator)");
    let mut bob = Member::login(&cluster.addr(0), "bob", "bob password");
    bob.send("#join #keep");
    bob.expect("* you joined #Keep; topic: set while the database was down; operators: bob");
}

/// A node reaches PostgreSQL on another machine over TLS, verifying its
/// certificate: here a PostgreSQL of the test's own serving TLS, named
/// `localhost` with `sslmode=verify-full`. A server whose certificate is
/// not trusted is refused before anything is sent.
#[test]
fn postgres_over_tls_is_verified() {
    let identity = tls::SelfSigned::generate(&[]).unwrap();
    let Some(postgres) = Postgres::start_with_tls(&identity.cert_pem, &identity.key_pem) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("server-ca.pem");
    std::fs::write(&trusted, &identity.cert_pem).unwrap();
    let stranger = dir.path().join("other-ca.pem");
    let other = tls::SelfSigned::generate(&[]).unwrap();
    std::fs::write(&stranger, &other.cert_pem).unwrap();
    let url = |ca: &std::path::Path| {
        format!(
            "postgres://netkit@localhost:{}/chat?sslmode=verify-full&sslrootcert={}",
            postgres.port(),
            ca.display()
        )
    };

    let refused = netkit()
        .args(["chat", "serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(url(&stranger))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");

    let node = ChatServer::start_with_db(url(&trusted), &[]);
    drop(Member::register(&node.addr(), "alice", "alice password"));
    let encrypted = postgres.psql(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'netkit chat' AND ssl",
    );
    assert!(encrypted.parse::<u32>().unwrap() > 0, "{encrypted}");
    let plain = postgres.psql(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'netkit chat' AND NOT ssl",
    );
    assert_eq!(plain, "0");
    assert_eq!(postgres.psql("SELECT name FROM accounts"), "alice");
}

/// Two members on two nodes joining a new room at the same moment: each
/// node may create it before hearing of the other. Whatever the timing,
/// both nodes end up agreeing on its operators: everyone whose join
/// created it.
#[test]
fn a_room_created_on_two_nodes_at_once_has_one_set_of_operators() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let raw = |node: usize, name: &str| {
        let mut member = Raw::connect(cluster.nodes[node].addr);
        member.join(name, "a long password", true);
        member
    };
    let mut alice = raw(0, "alice");
    let mut bob = raw(1, "bob");
    let mut carol = raw(0, "carol");
    let mut dave = raw(1, "dave");
    let said = |member: &mut Raw, text: &str| {
        member.send(&ClientFrame::Say {
            text: text.into(),
            room: None,
        });
    };
    let heard = |member: &mut Raw, text: &str| {
        member.until(|frame| matches!(frame, ServerFrame::Message { text: t, .. } if t == text));
    };
    let created = |member: &mut Raw| match member
        .until(|frame| matches!(frame, ServerFrame::RoomJoined { .. }))
    {
        ServerFrame::RoomJoined { created, .. } => created,
        _ => unreachable!(),
    };
    let mut races = 0;
    for round in 0..5 {
        let room = format!("#race{round}");
        // Sent back to back: both nodes get the join within microseconds.
        alice.send(&ClientFrame::Join { room: room.clone() });
        bob.send(&ClientFrame::Join { room: room.clone() });
        let mut creators = Vec::new();
        if created(&mut alice) {
            creators.push("alice");
        }
        if created(&mut bob) {
            creators.push("bob");
        }
        races += usize::from(creators.len() == 2);
        // Each node has heard the other's join once it relays a lobby
        // message said after it.
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        said(&mut alice, &a);
        heard(&mut bob, &a);
        said(&mut bob, &b);
        heard(&mut alice, &b);
        for member in [&mut carol, &mut dave] {
            member.send(&ClientFrame::Join { room: room.clone() });
            let ServerFrame::RoomJoined { operators, .. } =
                member.until(|frame| matches!(frame, ServerFrame::RoomJoined { .. }))
            else {
                unreachable!()
            };
            assert_eq!(operators, creators, "{room}");
        }
    }
    eprintln!("{races} of 5 rooms were created on both nodes at once");
}
