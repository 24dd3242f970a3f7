//! `netkit mail send` when things go wrong: a wrong password, refused
//! recipients, a server that hangs up, says nothing or never answers; each
//! stage with its exit code. TLS failures are in mail_tls.rs.

#[path = "mail/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use support::*;

#[test]
fn wrong_password_fails_at_auth() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("wrongpw");
    let (server, outdir, cert) = aiosmtpd_tls(&dir, &["--user", "alice"]);
    for mechanism in ["plain", "login"] {
        let out = send(
            &[
                "--server",
                &server.addr().to_string(),
                "--cacert",
                cert.to_str().unwrap(),
                "--user",
                "alice",
                "--auth",
                mechanism,
                "--from",
                "alice@example.org",
                "--to",
                "bob@example.org",
                "--body",
                "x",
            ],
            &[("NETKIT_SMTP_PASSWORD", "wrong password")],
            b"",
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(28), "{stdout}\n{stderr}");
        assert!(stderr.contains("*** AUTH failed"), "{stderr}");
        assert!(
            stderr.contains("535 5.7.8 Authentication credentials invalid"),
            "{stderr}"
        );
        assert!(stdout.contains(" ~> QUIT"), "polite QUIT: {stdout}");
        assert!(!stdout.contains("wrong password"));
    }
    assert!(received(&outdir).is_empty());
}

#[test]
fn password_is_never_taken_from_argv_and_needs_tls() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("plainauth");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--user", "alice", "--auth-without-tls"]);
    let base = [
        "--server",
        &server.addr().to_string(),
        "--user",
        "alice",
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.org",
        "--body",
        "x",
    ]
    .map(str::to_owned);
    let args: Vec<&str> = base.iter().map(String::as_str).collect();

    // No password in the environment and no terminal (setsid: not even
    // the one a developer runs the tests from): a clear error.
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .args(["mail", "send", "--timeout", "10s"])
        .args(&args)
        .env_remove("NETKIT_SMTP_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("NETKIT_SMTP_PASSWORD"),
        "{}",
        text(&out.stderr)
    );
    let out = netkit()
        .args(["mail", "send", "--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "there is no --password flag");

    // The server offers AUTH in plaintext: refused unless allowed.
    let out = send(&args, &[("NETKIT_SMTP_PASSWORD", PASSWORD)], b"");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(28), "{stdout}\n{stderr}");
    assert!(stderr.contains("unencrypted"), "{stderr}");
    assert!(!stdout.contains(" -> AUTH"), "no AUTH sent: {stdout}");

    let mut allowed = args.clone();
    allowed.push("--allow-plaintext-auth");
    let out = send(&allowed, &[("NETKIT_SMTP_PASSWORD", PASSWORD)], b"");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(" -> AUTH PLAIN ********"), "{stdout}");
    assert_eq!(received(&outdir).len(), 1);
}

#[test]
fn rejected_recipients_are_reported() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("reject");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(
        &outdir,
        &[
            "--reject",
            "nobody@example.org",
            "--reject",
            "ghost@example.org",
        ],
    );
    let addr = server.addr().to_string();
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--to",
            "nobody@example.org",
            "--cc",
            "carol@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("nobody@example.org"), "{stderr}");
    assert!(stderr.contains("550 5.1.1"), "{stderr}");
    assert!(
        stdout.contains("delivered to bob@example.org, carol@example.org"),
        "{stdout}"
    );
    let received = received(&outdir);
    assert_eq!(
        received[0].1["rcpt"],
        serde_json::json!(["bob@example.org", "carol@example.org"])
    );

    // Nobody accepted: the RCPT stage fails and nothing is sent.
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "alice@example.org",
            "--to",
            "nobody@example.org",
            "--to",
            "ghost@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(24), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("accepted none of the recipients"),
        "{stderr}"
    );
    assert!(!stdout.contains("DATA"), "{stdout}");
    assert!(stdout.contains(" -> QUIT"), "{stdout}");
}

/// A server (python, not netkit) that accepts the envelope and then hangs
/// up after the first bytes of the message.
const CLOSES_IN_DATA: &str = r#"
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
c, _ = s.accept()
f = c.makefile("rb")
c.sendall(b"220 flaky.test ESMTP\r\n")
while True:
    line = f.readline()
    if not line:
        break
    verb = line[:4].upper()
    if verb == b"EHLO":
        c.sendall(b"250-flaky.test\r\n250 8BITMIME\r\n")
    elif verb == b"DATA":
        c.sendall(b"354 go ahead\r\n")
        f.read(1000)
        c.shutdown(socket.SHUT_RDWR)
        c.close()
        break
    else:
        c.sendall(b"250 OK\r\n")
"#;

#[test]
fn server_closing_mid_data_fails_the_message_stage() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = std::process::Command::new("python3");
    python.args(["-c", CLOSES_IN_DATA]);
    let server = testkit::Server::start(python, 1);
    let dir = Scratch::new("middata");
    let big = dir.write("big.bin", &binary_blob(4 * 1024 * 1024));
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--attach",
            big.to_str().unwrap(),
            "--hide-data",
        ],
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(26), "{stdout}\n{stderr}");
    assert!(stderr.contains("*** message failed"), "{stderr}");
    assert!(stderr.contains("closed the connection"), "{stderr}");
}

/// aiosmtpd dies while the message is on its way.
#[test]
fn aiosmtpd_killed_mid_data_fails_the_message_stage() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("killed");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let big = dir.write("big.bin", &binary_blob(24 * 1024 * 1024));
    let mut child = netkit()
        .args(["mail", "send", "--timeout", "10s", "--hide-data"])
        .args(["--server", &server.addr().to_string()])
        .args([
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--attach",
        ])
        .arg(&big)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut transcript = String::new();
    while stdout.read_line(&mut transcript).unwrap() > 0 {
        if transcript.contains("<-  354") {
            server.signal("KILL");
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(26), "{transcript}\n{stderr}");
    assert!(stderr.contains("*** message failed"), "{stderr}");
    assert!(received(&outdir).is_empty());
}

#[test]
fn connect_failures_have_their_own_exit_code() {
    let closed = testkit::closed_tcp_port().to_string();
    let out = send(
        &[
            "--server",
            &closed,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("connection refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains(&closed));
    // Told once, not as a note and again as the failure.
    let both = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(both.matches("connection refused").count(), 1, "{both}");

    // Without a port: 25, or 465 for implicit TLS.
    for (flags, port) in [(&[][..], 25), (&["--tls-on-connect"][..], 465)] {
        let mut args = vec![
            "--server",
            "127.0.0.9",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ];
        args.extend(flags);
        let out = send(&args, &[], b"");
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with(&format!("=== Trying 127.0.0.9:{port}...")),
            "{stdout}"
        );
    }
}

/// A server that greets with 554: the greeting stage fails.
#[test]
fn unwelcoming_greeting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .write_all(b"554-go away\r\n554 no service here\r\n")
            .unwrap();
        let mut quit = String::new();
        BufReader::new(&stream).read_line(&mut quit).unwrap();
        stream.write_all(b"221 bye\r\n").unwrap();
        quit
    });
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(21), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("554 go away no service here"), "{stderr}");
    let sent = server.join().unwrap();
    assert_eq!(sent, "QUIT\r\n", "polite QUIT after the refusal");
}

#[test]
fn help_documents_exit_codes_and_usage_errors() {
    let out = netkit().args(["mail", "send", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for needle in [
        "Exit status:",
        "20  connect",
        "21  greeting",
        "22  EHLO",
        "23  MAIL",
        "24  RCPT",
        "25  DATA",
        "26  message",
        "28  AUTH",
        "29  TLS",
        "NETKIT_SMTP_PASSWORD",
        "--hide-data",
        "--dump",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    for bad in [
        &["mail", "send", "--to", "b@example.org"][..],
        &[
            "mail",
            "send",
            "--from",
            "not an address",
            "--to",
            "b@example.org",
        ],
        &[
            "mail",
            "send",
            "--from",
            "a@example.org",
            "--header",
            "Bcc: x@example.org",
        ],
        &["mail", "send", "--from", "a@example.org", "--auth", "plain"],
        &[
            "mail",
            "send",
            "--from",
            "a@example.org",
            "--tls",
            "--tls-on-connect",
        ],
    ] {
        let out = netkit().args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let out = send(
        &["--from", "a@example.org", "--server", "127.0.0.1:1"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no recipient"));
}

/// A listener whose accept queue is full: the kernel drops further SYNs,
/// so a connection attempt waits until the client gives up.
const FULL_BACKLOG: &str = r#"
import socket, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(0)
port = listener.getsockname()[1]
fillers = []
for _ in range(64):
    filler = socket.socket()
    filler.settimeout(0.5)
    try:
        filler.connect(("127.0.0.1", port))
    except socket.timeout:
        break
    fillers.append(filler)
else:
    raise SystemExit("the accept queue never filled")
print("listening on 127.0.0.1:%d" % port, flush=True)
time.sleep(300)
"#;

/// `--timeout` bounds connecting and each wait for a reply; the stage that
/// was waiting is the one that fails.
#[test]
fn timeouts_end_the_stage_that_waits() {
    if !testkit::require("python3") {
        return;
    }
    let run = |addr: &str| {
        netkit()
            .args(["mail", "send", "--timeout", "1s", "--server", addr])
            .args(["--from", "a@example.org", "--to", "b@example.org"])
            .args(["--body", "x"])
            .output()
            .unwrap()
    };

    // Accepted by the kernel, never a word from the server.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = run(&silent.local_addr().unwrap().to_string());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(21), "{stderr}");
    assert!(
        stderr.contains("*** greeting failed: timed out after 1s"),
        "{stderr}"
    );

    let mut python = std::process::Command::new("python3");
    python.args(["-c", FULL_BACKLOG]);
    let full = testkit::Server::start(python, 1);
    let out = run(&full.addr().to_string());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(20), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("*** connect failed: timed out after 1s"),
        "{stderr}"
    );
    assert!(!stdout.contains("Connected"), "{stdout}");
}
