//! Closed pipes end a command quietly with a documented exit code, never a
//! panic; and plain HTTP to a TLS port is explained.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

/// A one-response HTTP server on a free loopback port, answering every
/// connection with `body`.
fn http_server(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/")
}

/// Runs netkit with stdout and/or stderr on a pipe whose reader is already
/// gone, as after `| head -1`.
fn with_closed(stdout: bool, stderr: bool, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = netkit();
    command.args(args).stdin(Stdio::null());
    if stdout {
        command.stdout(writer.try_clone().unwrap());
    } else {
        command.stdout(Stdio::null());
    }
    if stderr {
        command.stderr(writer);
        command.output().unwrap()
    } else {
        command.stderr(Stdio::piped());
        command.output().unwrap()
    }
}

fn assert_quiet(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn web_get_ends_with_curls_write_error() {
    let url = http_server("hello\n");
    // `netkit web get -v URL 2>&1 | head -1`
    let out = with_closed(true, true, &["web", "get", "-v", &url]);
    assert_quiet(&out, 23, "-v with both closed");
    let out = with_closed(false, true, &["web", "get", "-v", &url]);
    assert_quiet(&out, 23, "-v with stderr closed");
    let out = with_closed(true, false, &["web", "get", &url]);
    assert_quiet(&out, 23, "body to a closed stdout");
    assert!(out.stderr.is_empty() || String::from_utf8_lossy(&out.stderr).contains("write"));
    // Without -v, nothing goes to a closed stderr: the transfer succeeds.
    let out = with_closed(false, true, &["web", "get", &url]);
    assert_quiet(&out, 0, "stderr closed, not written");
}

#[test]
fn other_commands_end_as_if_killed_by_sigpipe() {
    // upper send: its reply goes to a closed stdout.
    let mut server = netkit()
        .args(["upper", "serve", "--tcp", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|line| testkit::listening_addr(&line.unwrap()))
        .unwrap();
    let out = with_closed(true, false, &["upper", "send", &addr.to_string(), "hi"]);
    assert_quiet(&out, 141, "upper send");
    let _ = server.kill();
    let _ = server.wait();

    // mail send: its error goes to a closed stderr.
    let closed = testkit::closed_tcp_port().to_string();
    let out = with_closed(
        false,
        true,
        &[
            "mail",
            "send",
            "--server",
            &closed,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "hi",
        ],
    );
    assert_quiet(&out, 141, "mail send");

    // ping: a count it would take seconds to finish ends at once.
    if testkit::require_root() {
        let started = Instant::now();
        let out = with_closed(
            true,
            false,
            &["ping", "-c", "100", "-i", "0.2", "127.0.0.1"],
        );
        assert_quiet(&out, 141, "ping");
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

#[test]
fn plain_http_to_a_tls_port_says_so_within_a_second() {
    let mut server = netkit()
        .args(["web", "serve", "--self-signed", "--bind", "127.0.0.1:0"])
        .arg(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|line| testkit::listening_addr(&line.unwrap()))
        .unwrap();
    // netkit's own server answers plain HTTP on its TLS port as nginx does,
    // with a 400 page that says what to do; web get shows it, as curl does.
    let started = Instant::now();
    let out = netkit()
        .args(["web", "get", &format!("http://{addr}/")])
        .output()
        .unwrap();
    let took = started.elapsed();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("The plain HTTP request was sent to HTTPS port"),
        "{body} (exit {:?})",
        out.status
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    let _ = server.kill();
    let _ = server.wait();

    // openssl s_server closes without a word: netkit asks it for TLS.
    if !testkit::require("openssl") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("netkit-pipes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
        ])
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s_server = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "s_server", "-www", "-cert", "c.pem", "-key", "k.pem", "-accept",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(s_server.stdout.take().unwrap()).lines();
    assert!(lines.any(|line| line.is_ok_and(|line| line.contains("ACCEPT"))));
    std::thread::spawn(move || lines.for_each(drop));
    let started = Instant::now();
    let out = netkit()
        .args(["web", "get", &format!("http://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("speaks TLS: try https://"), "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let _ = s_server.kill();
    let _ = s_server.wait();
    let _ = std::fs::remove_dir_all(dir);
}
