//! `netkit web serve` under hostile input: path traversal in every
//! spelling, symlinks and dotfiles, malformed and oversized requests sent
//! on raw sockets, slow clients and too many clients. The server must
//! answer or close, never crash or hang.

#[path = "web/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn malformed_and_oversized_requests_on_raw_sockets() {
    let fixture = Fixture::new("raw");
    let server = serve(Some(&fixture.root()), &[]);
    let addr = server.addr();

    let long_target = format!("/{}", "a".repeat(9000));
    let reply = raw_get(addr, &long_target);
    assert_eq!(reply.status, 414);
    assert!(reply.body_text().contains("414 URI Too Long"));
    // Past hyper's own limits (64 KiB targets, 80 KiB heads): still 414
    // with a page, never a hang.
    for len in [70_000, 100_000, 300_000] {
        let reply = raw_get(addr, &format!("/{}", "a".repeat(len)));
        assert_eq!(reply.status, 414, "a target of {len} bytes");
        assert!(reply.body_text().contains("<h1>414 URI Too Long</h1>"));
    }

    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    let reply = raw_reply(addr, big_header.as_bytes());
    assert_eq!(reply.status, 431);
    assert!(reply.body_text().contains("431"));
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    let many = (0..200)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect::<String>();
    let many = format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    for head in [huge_header, many] {
        let reply = raw_reply(addr, head.as_bytes());
        assert_eq!(reply.status, 431);
        assert!(
            reply
                .body_text()
                .contains("<h1>431 Request Header Fields Too Large</h1>")
        );
    }

    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    ] {
        let reply = raw_reply(addr, garbage);
        assert_eq!(reply.status, 400, "{:?}", text(garbage));
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            reply.header("content-length"),
            Some(reply.body.len().to_string().as_str())
        );
        assert!(reply.body_text().contains("<h1>400 Bad Request</h1>"));
    }
    // HTTP/1.1 without Host.
    let reply = raw_reply(
        addr,
        b"GET /hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 400);
    // HTTP/1.0 needs no Host.
    let reply = raw_reply(addr, b"GET /hello.txt HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), HELLO);
    // A client that closes half-way through its head.
    drop(raw(addr, b"GET /hello.txt HTTP/1.1\r\nHo"));

    assert_eq!(raw_get(addr, "/hello.txt").status, 200, "still serving");
}

/// Every trick the issue names, sent byte for byte (curl would normalize
/// most of them away). None may reveal the secret next to the root.
#[test]
fn traversal_tricks_never_escape() {
    let fixture = Fixture::new("traversal");
    let server = serve(Some(&fixture.root()), &["--list"]);
    let addr = server.addr();
    let tricks: &[(&str, u16)] = &[
        ("/../outside/secret.txt", 400),
        ("/docs/../../outside/secret.txt", 400),
        ("/%2e%2e/outside/secret.txt", 400),
        ("/%2E%2E/outside/secret.txt", 400),
        ("/.%2e/outside/secret.txt", 400),
        ("/%2e%2e%2foutside%2fsecret.txt", 400),
        ("/..%2foutside%2fsecret.txt", 400),
        ("/docs%2f..%2f..%2foutside%2fsecret.txt", 400),
        ("/..\\outside\\secret.txt", 400),
        ("/..%5coutside%5csecret.txt", 400),
        ("/%5c..%5c..%5coutside%5csecret.txt", 400),
        ("/hello.txt%00.png", 400),
        ("/..%00/outside/secret.txt", 400),
        ("/%252e%252e/outside/secret.txt", 404),
        ("/C:/Windows/win.ini", 400),
        ("/c:%5cwindows%5cwin.ini", 400),
        ("//etc/passwd", 404),
        ("/etc/passwd", 404),
        ("/%2fetc%2fpasswd", 400),
        ("/link-outside", 403),
        ("/dir-outside/secret.txt", 403),
        ("/dir-outside/", 403),
        ("http://test/../outside/secret.txt", 400),
        ("http://test/%2e%2e/outside/secret.txt", 400),
        ("/%", 400),
        ("/%zz", 400),
    ];
    for (target, status) in tricks {
        let reply = raw_get(addr, target);
        assert_eq!(reply.status, *status, "{target}");
        assert!(!reply.body_text().contains("top secret"), "{target} leaked");
    }
    // `*` is only for OPTIONS.
    let reply = raw_get(addr, "*");
    assert!(matches!(reply.status, 400), "{}", reply.status);
    // And the legitimate paths through symlinks inside the root work,
    // absolute ones included.
    assert_eq!(raw_get(addr, "/link-inside").body_text(), HELLO);
    assert_eq!(raw_get(addr, "/abs-link-inside").body_text(), HELLO);
}

#[test]
fn symlink_and_dotfile_policy_flags() {
    let fixture = Fixture::new("policy");
    let strict = serve(Some(&fixture.root()), &[]);
    assert_eq!(raw_get(strict.addr(), "/link-outside").status, 403);
    assert_eq!(raw_get(strict.addr(), "/.env").status, 404);
    assert_eq!(raw_get(strict.addr(), "/.git/config").status, 404);
    assert_eq!(raw_get(strict.addr(), "/%2eenv").status, 404);

    let relaxed = serve(Some(&fixture.root()), &["--follow-symlinks", "--hidden"]);
    assert_eq!(raw_get(relaxed.addr(), "/link-outside").body_text(), SECRET);
    assert_eq!(
        raw_get(relaxed.addr(), "/dir-outside/secret.txt").body_text(),
        SECRET
    );
    assert_eq!(
        raw_get(relaxed.addr(), "/.env").body_text(),
        "PASSWORD=hunter2\n"
    );
    // Traversal stays refused whatever the flags.
    assert_eq!(
        raw_get(relaxed.addr(), "/../outside/secret.txt").status,
        400
    );
}

#[test]
fn slowloris_is_cut_off() {
    let fixture = Fixture::new("slowloris");
    let server = serve(Some(&fixture.root()), &["--header-timeout", "500ms"]);
    let addr = server.addr();

    // Trickles a head forever, one byte at a time.
    let trickle = b"GET /hello.txt HTTP/1.1\r\nX-Slow: ";
    assert_cut_off(addr, b"", trickle, b'a');
    // HTTP/2 has no header read timeout in hyper: a HEADERS frame that
    // never completes must still end the connection.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    assert_cut_off(addr, &preface, b"\x00\x40\x00\x01\x04\x00\x00\x00\x01", 0);
    // A TLS handshake trickled to an HTTPS server.
    let tls = serve(
        Some(&fixture.root()),
        &["--header-timeout", "500ms", "--self-signed"],
    );
    assert_cut_off(tls.addr(), b"", b"\x16\x03\x01\x40\x00\x01", 0);

    // A client that connects and says nothing is closed too.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(silent.read(&mut buf).unwrap_or(0), 0);

    // An idle keep-alive connection is closed after serving.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    idle.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(all.starts_with(b"HTTP/1.1 200 OK"), "{}", text(&all));

    assert_eq!(raw_get(addr, "/hello.txt").status, 200);
}

/// A client that asks for a large file and stops reading is cut off after
/// `--send-timeout`, which frees its connection slot.
#[test]
fn a_client_that_stops_reading_is_cut_off() {
    let fixture = Fixture::new("slowread");
    // Sparse, so it costs no disk, and far larger than socket buffers.
    let size: u64 = 256 << 20;
    let file = std::fs::File::create(fixture.path("large.iso")).unwrap();
    file.set_len(size).unwrap();
    let server = serve(
        Some(&fixture.root()),
        &["--send-timeout", "500ms", "--max-connections", "1"],
    );
    let addr = server.addr();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stalled
        .write_all(b"GET /large.iso HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The head proves it holds the only slot; then it reads no more.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while find(&head, b"\r\n\r\n").is_none() {
        stalled.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200 OK"), "{}", text(&head));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = raw_get(addr, "/hello.txt");
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503);
        assert!(
            Instant::now() < deadline,
            "the stalled client kept its slot"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0u64;
    loop {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n as u64,
        }
    }
    assert!(received < size, "the download was cut off");
}

/// Sends `at_once`, then `trickled` and `filler` bytes one at a time,
/// each some milliseconds apart, until the server closes the connection
/// (which it must do long before 400 bytes).
fn assert_cut_off(addr: std::net::SocketAddr, at_once: &[u8], trickled: &[u8], filler: u8) {
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(at_once).unwrap();
    for i in 0..400 {
        let byte = trickled.get(i).copied().unwrap_or(filler);
        if slow.write_all(&[byte]).is_err() {
            return;
        }
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    panic!(
        "a client trickling {:?} kept its connection for {:?}",
        text(trickled),
        started.elapsed()
    );
}

/// Busy connections (each in the middle of a download) fill the server:
/// a newcomer waits briefly for a slot, then gets 503. Idle keep-alive
/// connections would be closed to make room instead (tests/limits_web.rs).
#[test]
fn connection_limit_answers_503() {
    let fixture = Fixture::new("limit");
    // Sparse, so it costs no disk, and far larger than socket buffers.
    let file = std::fs::File::create(fixture.path("large.iso")).unwrap();
    file.set_len(256 << 20).unwrap();
    let server = serve(Some(&fixture.root()), &["--max-connections", "2"]);
    let addr = server.addr();
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            // The head of a response proves the connection holds a slot;
            // then it reads no more, so the response is still in flight.
            stream
                .write_all(b"GET /large.iso HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 1024];
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            assert!(stream.read(&mut buf).unwrap() > 0);
            stream
        })
        .collect();
    for _ in 0..5 {
        let reply = raw_get(addr, "/hello.txt");
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    held.pop();
    // The freed slot is reused as soon as the server sees the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = raw_get(addr, "/hello.txt");
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        thread::sleep(Duration::from_millis(20));
    }
}
