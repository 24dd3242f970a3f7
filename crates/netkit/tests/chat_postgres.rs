//! The chat on PostgreSQL (`--db postgres://…`), against a real server
//! each test starts for itself: passwords from PGPASSWORD or a passfile
//! and never from the URL, a schema newer than this netkit refused, and
//! PostgreSQL stopped and started again under a running chat server. The
//! rest of the chat suite runs on PostgreSQL too (`on_both_stores!`).

#[path = "chat/support.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;

use chat::frame::{ClientFrame, ErrorCode, ServerFrame};
use support::{ChatServer, Member, Raw, Scratch, netkit};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_password_in_the_url_or_a_plain_remote_host_is_refused() {
    for command in [
        ["chat", "serve"].as_slice(),
        &["chat", "users"],
        &["chat", "admin", "bans"],
    ] {
        let out = netkit()
            .args(command)
            .args(["--db", "postgres://chat:hunter2@127.0.0.1:9/chat"])
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains("holds a password"), "{stderr}");
        assert!(stderr.contains("PGPASSWORD"), "{stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password is repeated: {stderr}"
        );
    }
    let out = netkit()
        .args([
            "chat",
            "serve",
            "--db",
            "postgres://chat@db.example.com/chat?sslmode=disable",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("must stay on this machine"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_password_comes_from_pgpassword_or_a_private_passfile() {
    let Some(scratch) = Scratch::postgres() else {
        return;
    };
    let url = scratch.db();
    let users = |passfile: &std::path::Path| {
        netkit()
            .args(["chat", "users", "--db"])
            .arg(&url)
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", passfile)
            .output()
            .unwrap()
    };
    // No password anywhere: PostgreSQL's refusal, clearly.
    let missing = users(&scratch.path("no-such-passfile"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("password"),
        "{}",
        text(&missing.stderr)
    );

    let passfile = scratch.path("pgpass");
    let port = scratch.postgres_server().unwrap().port();
    std::fs::write(
        &passfile,
        format!(
            "# the first line that matches wins\n\
             127.0.0.1:{port}:other:*:wrong\n\
             127.0.0.1:{port}:*:netkit:{}\n",
            testkit::postgres::PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let readable = users(&passfile);
    assert_eq!(readable.status.code(), Some(1));
    assert!(
        text(&readable.stderr).contains("chmod 0600"),
        "{}",
        text(&readable.stderr)
    );

    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let listed = users(&passfile);
    assert!(listed.status.success(), "{}", text(&listed.stderr));

    // PGPASSWORD, as the rest of the suite gives it, works as well.
    let listed = netkit()
        .args(["chat", "users", "--db"])
        .arg(&url)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
}

#[test]
fn a_database_of_a_newer_netkit_is_refused_unchanged() {
    let Some(scratch) = Scratch::postgres() else {
        return;
    };
    let postgres = scratch.postgres_server().unwrap();
    {
        let server = ChatServer::start(&scratch, &[]);
        drop(Member::register(&server.addr(), "alice", "alice password"));
    }
    let known = chat::postgres::SCHEMA_VERSION;
    assert_eq!(
        postgres.psql("SELECT version FROM netkit_schema"),
        known.to_string()
    );
    postgres.psql(&format!("UPDATE netkit_schema SET version = {}", known + 1));
    let out = netkit()
        .args(["chat", "serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(scratch.db())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("schema version {}", known + 1))
            && stderr.contains("newer netkit"),
        "{stderr}"
    );
    assert_eq!(
        postgres.psql("SELECT version FROM netkit_schema"),
        (known + 1).to_string()
    );
    assert_eq!(postgres.psql("SELECT name FROM accounts"), "alice");
}

fn login(raw: &mut Raw, name: &str, password: &str) -> ServerFrame {
    let credentials = raw.credentials(name, password);
    raw.send(&ClientFrame::Login(credentials));
    raw.frame().expect("an answer to the login")
}

#[test]
fn logins_fail_clearly_while_postgres_is_down_and_work_once_it_is_back() {
    let Some(scratch) = Scratch::postgres() else {
        return;
    };
    let postgres = scratch.postgres_server().unwrap();
    let mut server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut alice = Member::register(&addr, "alice", "alice password");
    let mut bob = Member::register(&addr, "bob", "bob password");
    alice.expect("* bob joined");
    drop(Member::register(&addr, "carol", "carol password"));

    postgres.stop();
    // Who is in keeps talking; who logs in now is told why it fails.
    alice.send("while the database is down");
    bob.expect("alice: while the database is down");
    let mut raw = Raw::connect(server.addr);
    match login(&mut raw, "carol", "carol password") {
        ServerFrame::Error { code, text } => {
            assert_eq!(code, ErrorCode::Unavailable, "{text}");
            assert!(text.contains("unavailable"), "{text}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let (status, stderr, _) =
        Member::spawn(&addr, "carol", "carol password", &[]).finish_when_closed();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(
        server
            .server
            .wait_timeout(std::time::Duration::ZERO)
            .is_none(),
        "the server died"
    );

    postgres.restart();
    // The same connection logs in once the database is back.
    match login(&mut raw, "carol", "carol password") {
        ServerFrame::Welcome { .. } => {}
        other => panic!("expected welcome, got {other:?}"),
    }
    let mut dave = Member::register(&addr, "dave", "dave password");
    dave.send("back to normal");
    alice.expect("dave: back to normal");
}
