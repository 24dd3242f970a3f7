//! `web serve` against clients it was not written with, on the edges of
//! HTTP/1.1 where nginx sets the expectation: pipelined requests followed
//! by a half-close (nc, Python sockets), and plain HTTP sent to the TLS
//! port (curl, Python sockets).

#[path = "web/support.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::*;

/// Counts the response heads in a byte stream: `HTTP/1.1 200 OK\r\n`
/// may follow binary data with no newline before it.
fn count_responses(bytes: &[u8], status_line: &[u8]) -> usize {
    bytes
        .windows(status_line.len())
        .filter(|window| *window == status_line)
        .count()
}

fn pipelined(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
        .into_bytes()
}

/// `printf '…' | nc -N HOST PORT`: nc sends both requests, shuts down its
/// sending side at end of input, and prints what comes back.
fn nc(addr: std::net::SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("timeout")
        .args([
            "20",
            "nc",
            "-N",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nc runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    out.stdout
}

#[test]
fn pipelined_requests_then_half_close_get_every_answer_from_nc() {
    if !testkit::require("nc") {
        return;
    }
    let fixture = Fixture::new("interop-nc");
    let server = serve(Some(&fixture.root()), &[]);
    // The race lost before was between the EOF and the second response:
    // large bodies (streamed in chunks) lost it most often.
    for path in ["/hello.txt", "/data.bin", "/big.txt"] {
        for round in 0..10 {
            let got = nc(server.addr(), &pipelined(path));
            assert_eq!(
                count_responses(&got, b"HTTP/1.1 200 OK\r\n"),
                2,
                "{path}, round {round}: {} bytes back",
                got.len()
            );
            let body_len = std::fs::metadata(fixture.path(path.trim_start_matches('/')))
                .unwrap()
                .len() as usize;
            assert!(got.len() > 2 * body_len, "{path}: both bodies in full");
        }
    }
}

#[test]
fn pipelined_requests_then_half_close_get_every_answer_from_python() {
    if !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("interop-py");
    let server = serve(Some(&fixture.root()), &[]);
    const SCRIPT: &str = r#"
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
request = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
for _ in range(10):
    s = socket.create_connection((host, port), timeout=20)
    s.sendall(request * 3)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    print(data.count(b"HTTP/1.1 200 OK\r\n"))
"#;
    let addr = server.addr();
    for path in ["/hello.txt", "/data.bin"] {
        let out = testkit::python(
            SCRIPT,
            &[&addr.ip().to_string(), &addr.port().to_string(), path],
            b"",
        );
        assert!(out.status.success(), "python: {}", text(&out.stderr));
        let counts = text(&out.stdout);
        assert!(
            counts.lines().count() == 10 && counts.lines().all(|line| line == "3"),
            "{path}: responses per connection: {counts:?}"
        );
    }
}

#[test]
fn plain_http_to_the_tls_port_gets_a_cleartext_400_curl_can_read() {
    if !testkit::require("curl") {
        return;
    }
    let server = serve(None, &["--self-signed"]);
    let http_url = url(&server, "/");
    // curl reads a proper HTTP/1.1 answer: no HTTP/0.9 complaint, a 400.
    let reply = curl(&[&http_url]);
    assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request");
    assert!(
        reply
            .body_text()
            .contains("plain HTTP request was sent to HTTPS port"),
        "{}",
        reply.body_text()
    );
    // The port still speaks TLS to TLS clients.
    let https = format!("https://{}/", server.addr());
    let reply = curl(&["-k", &https]);
    assert_eq!(reply.status, 200);
}

#[test]
fn plain_http_to_the_tls_port_gets_a_400_on_a_python_socket() {
    if !testkit::require("python3") {
        return;
    }
    let server = serve(None, &["--self-signed"]);
    const SCRIPT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode("latin-1"))
"#;
    let addr = server.addr();
    let out = testkit::python(
        SCRIPT,
        &[&addr.ip().to_string(), &addr.port().to_string()],
        b"",
    );
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    let reply = parse_reply(&out.stdout);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("connection"), Some("close"));
}
