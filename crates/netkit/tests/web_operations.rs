//! `netkit web serve` in operation, end to end: TLS, the access log,
//! memory while streaming a large file, the built-in site, signals and
//! graceful shutdown, and the demo line.

#[path = "web/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn tls_with_a_self_signed_certificate() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("tls");
    let server = serve(Some(&fixture.root()), &["--self-signed"]);
    let https = format!("https://localhost:{}/hello.txt", server.addr().port());

    // ALPN picks HTTP/2 for curl, which offers it.
    let out = curl_output(&["-s", "-k", "-w", "%{http_version}"], &[&https]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{HELLO}2"));
    let out = curl_output(
        &["-s", "-k", "--http1.1", "-w", "%{http_version}"],
        &[&https],
    );
    assert_eq!(text(&out.stdout), format!("{HELLO}1.1"));
    // Without -k curl refuses the certificate.
    let out = curl_output(&["-s"], &[&https]);
    assert!(!out.status.success());

    let out = get(&["--insecure", &https]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), HELLO);
    let out = get(&["-v", "--insecure", "--http1.1", &https]);
    assert!(
        text(&out.stderr).contains("ALPN: http/1.1"),
        "{}",
        text(&out.stderr)
    );
    let out = get(&[&https]);
    assert_eq!(out.status.code(), Some(60));
    let err = text(&out.stderr);
    assert!(
        err.contains("certificate") && err.contains("--insecure"),
        "{err}"
    );

    // Cleartext to a TLS port is refused without harm.
    let response = raw(server.addr(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(!response.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn tls_with_certificate_files_and_cacert() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("tlsfiles");
    let identity = tls::SelfSigned::generate(&[]).unwrap();
    let cert = fixture.base.join("cert.pem");
    let key = fixture.base.join("key.pem");
    std::fs::write(&cert, &identity.cert_pem).unwrap();
    std::fs::write(&key, &identity.key_pem).unwrap();
    let server = serve(
        Some(&fixture.root()),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = format!("https://localhost:{}/hello.txt", server.addr().port());
    let out = get(&["--cacert", cert.to_str().unwrap(), &https]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), HELLO);
    let out = curl_output(&["-s", "--cacert", cert.to_str().unwrap()], &[&https]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), HELLO);

    // A missing key file is a clear start-up error.
    let out = netkit()
        .args(["web", "serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/key.pem"));
}

#[test]
fn access_log_in_combined_log_format() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("log");
    let server = serve(Some(&fixture.root()), &["--loud"]);
    curl(&[
        "-A",
        "test-agent/1.0",
        "-e",
        "http://ref.example/",
        &url(&server, "/hello.txt?q=1"),
    ]);
    curl(&["-H", "User-Agent: evil\"agent", &url(&server, "/missing")]);
    curl(&["-I", &url(&server, "/hello.txt")]);
    let lines: Vec<String> = (0..3)
        .map(|_| {
            server
                .next_line(Duration::from_secs(10))
                .expect("a log line")
        })
        .collect();
    let first = &lines[0];
    assert!(first.starts_with("127.0.0.1 - - ["), "{first}");
    assert!(
        first.ends_with(
            "\"GET /hello.txt?q=1 HTTP/1.1\" 200 14 \"http://ref.example/\" \"test-agent/1.0\""
        ),
        "{first}"
    );
    let date = &first[first.find('[').unwrap() + 1..first.find(']').unwrap()];
    assert!(date.ends_with(" +0000") && date.len() == 26, "{date}");
    assert!(
        lines[1].contains("\"GET /missing HTTP/1.1\" 404 "),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with("\"evil\\\"agent\""), "{}", lines[1]);
    assert!(
        lines[2].contains("\"HEAD /hello.txt HTTP/1.1\" 200 - "),
        "{}",
        lines[2]
    );
    // Requests hyper refuses before they reach the site are logged too.
    let refused = raw_reply(server.addr(), b"GARBAGE \"x\"\r\n\r\n");
    let line = server
        .next_line(Duration::from_secs(10))
        .expect("a log line");
    let logged = format!(
        "\"GARBAGE \\\"x\\\"\" 400 {} \"-\" \"-\"",
        refused.body.len()
    );
    assert!(line.ends_with(&logged), "{line}");

    let log = fixture.base.join("access.log");
    let logged = serve(Some(&fixture.root()), &["--log", log.to_str().unwrap()]);
    curl(&[&url(&logged, "/hello.txt")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
        assert!(Instant::now() < deadline, "nothing logged to the file");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("\"GET /hello.txt HTTP/1.1\" 200 14")
    );
    assert!(
        logged.next_line(Duration::from_millis(300)).is_none(),
        "nothing on stdout"
    );

    let quiet = serve(Some(&fixture.root()), &[]);
    curl(&[&url(&quiet, "/hello.txt")]);
    assert!(quiet.next_line(Duration::from_millis(300)).is_none());
}

/// A 2 GiB file (sparse, so it costs no disk) downloaded by curl while
/// the server's resident memory is sampled.
#[test]
fn large_files_stream_in_bounded_memory() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("large");
    let size: u64 = 2 << 30;
    let file = std::fs::File::create(fixture.path("large.iso")).unwrap();
    file.set_len(size).unwrap();
    let server = serve(Some(&fixture.root()), &[]);
    let pid = server.pid();
    let mut download = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{http_code}",
        ])
        .arg(url(&server, "/large.iso"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while download.try_wait().unwrap().is_none() {
        peak = peak.max(resident_kib(pid));
        thread::sleep(Duration::from_millis(25));
    }
    let out = download.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), format!("{size} 200"));
    assert!(
        peak < 64 * 1024,
        "server resident memory peaked at {peak} KiB"
    );
}

#[test]
fn built_in_site_without_a_directory() {
    if !testkit::require("curl") {
        return;
    }
    let server = serve(None, &[]);
    let reply = curl(&[&url(&server, "/")]);
    assert_eq!(reply.status, 200);
    assert!(reply.body_text().contains("netkit"));
    assert!(
        reply
            .body_text()
            .contains("<img id=\"logo\" src=\"netkit.png\"")
    );
    let logo = curl(&[&url(&server, "/netkit.png")]);
    assert_eq!(logo.header("content-type"), Some("image/png"));
    assert!(logo.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    let etag = logo.header("etag").unwrap().to_owned();
    assert_eq!(
        curl(&[
            "-H",
            &format!("If-None-Match: {etag}"),
            &url(&server, "/netkit.png")
        ])
        .status,
        304
    );
    assert_eq!(curl(&[&url(&server, "/missing")]).status, 404);
    assert_eq!(curl(&[&url(&server, "/.env")]).status, 404);
}

#[test]
fn signals_and_start_up_errors() {
    let fixture = Fixture::new("signals");
    for signal in ["TERM", "INT"] {
        let mut server = serve(Some(&fixture.root()), &["--grace", "2s"]);
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let _ = read_one_response(&mut stream);
        server.signal(signal);
        let status = server.wait_timeout(Duration::from_secs(15)).expect("exits");
        assert!(status.success(), "SIG{signal}: {status:?}");
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = netkit()
        .args(["web", "serve", "--bind", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&addr), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "the cause once: {err}");

    let out = netkit()
        .args(["web", "serve", "/nonexistent/dir", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/dir"));

    let out = netkit()
        .args(["web", "serve", "--bind", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = netkit().args(["web", "serve", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for flag in [
        "--bind",
        "--list",
        "--hidden",
        "--follow-symlinks",
        "--header-timeout",
        "--send-timeout",
        "--max-connections",
        "--tls-cert",
        "--tls-key",
        "--self-signed",
        "--log",
        "--quiet",
    ] {
        assert!(help.contains(flag), "serve --help documents {flag}");
    }
}

/// SIGTERM while a response is in flight: it completes within `--grace`,
/// while new connections are refused; past the grace period the server
/// closes what is left and exits.
#[test]
fn shutdown_lets_a_download_finish_within_the_grace_period() {
    let fixture = Fixture::new("grace");
    // Sparse, so it costs no disk, and far larger than socket buffers.
    let size: u64 = 256 << 20;
    let file = std::fs::File::create(fixture.path("large.iso")).unwrap();
    file.set_len(size).unwrap();
    let request = b"GET /large.iso HTTP/1.1\r\nHost: t\r\n\r\n";
    // Connects, asks for the file and reads the head: the server is then
    // writing the body, blocked on a full socket.
    let start_download = |server: &testkit::Server| {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while find(&head, b"\r\n\r\n").is_none() {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200 OK"), "{}", text(&head));
        stream
    };
    let read_rest = |stream: &mut TcpStream| {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    };

    let mut server = serve(Some(&fixture.root()), &["--grace", "30s"]);
    let addr = server.addr();
    let mut download = start_download(&server);
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections accepted while shutting down"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read_rest(&mut download), size, "the download completed");
    let status = server.wait_timeout(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status:?}");

    let mut server = serve(Some(&fixture.root()), &["--grace", "300ms"]);
    let mut download = start_download(&server);
    server.signal("TERM");
    // The client reads nothing more, yet the server must not wait for it.
    let status = server
        .wait_timeout(Duration::from_secs(15))
        .expect("exits once the grace period is over");
    assert!(status.success(), "{status:?}");
    assert!(read_rest(&mut download) < size, "the download was cut off");
}

#[test]
fn demo_has_a_web_line() {
    let out = netkit().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("web "))
        .unwrap_or_else(|| panic!("no web line: {stdout}"));
    assert!(
        line.contains(" ok ") && line.contains("304 Not Modified"),
        "{line}"
    );
}
