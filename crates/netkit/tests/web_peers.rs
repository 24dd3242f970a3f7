//! `netkit web get` against a server and a proxy we did not write: nginx
//! (HTTP/1.1 in cleartext, HTTP/2 with ALPN under TLS) and tinyproxy
//! (absolute-form requests, CONNECT tunnels). Every client flag is checked
//! against them, with the exit codes of `curl --fail`.

#[path = "web/support.rs"]
mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A third-party daemon in the foreground on a port chosen for it, killed
/// when dropped.
struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts `command` and waits until every one of `addrs` accepts.
    fn start(mut command: Command, addrs: &[SocketAddr]) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in addrs {
            while TcpStream::connect(addr).is_err() {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("{command:?} exited with {status} before listening on {addr}");
                }
                assert!(
                    Instant::now() < deadline,
                    "{command:?} never listened on {addr}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Self { child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx serving the fixture's root on `http` (cleartext) and `https`
/// (TLS with HTTP/2), with a certificate for localhost whose PEM is
/// returned beside it.
struct Nginx {
    _daemon: Daemon,
    http: SocketAddr,
    https: SocketAddr,
    cert: std::path::PathBuf,
}

impl Nginx {
    fn start(fixture: &Fixture) -> Self {
        let base = &fixture.base;
        let identity = tls::SelfSigned::generate(&[]).unwrap();
        let cert = base.join("nginx-cert.pem");
        let key = base.join("nginx-key.pem");
        std::fs::write(&cert, &identity.cert_pem).unwrap();
        std::fs::write(&key, &identity.key_pem).unwrap();
        let http = testkit::closed_tcp_port();
        let https = testkit::closed_tcp_port();
        let temp = base.join("nginx-temp");
        std::fs::create_dir_all(&temp).unwrap();
        let temp = temp.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {base}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  default_type application/octet-stream;\n\
             types {{ text/plain txt; text/html html; }}\n  autoindex on;\n\
             client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;\n\
             fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n\
             server {{\n    listen {http};\n    listen {https} ssl http2;\n\
             ssl_certificate {cert};\n    ssl_certificate_key {key};\n    root {root};\n  }}\n}}\n",
            base = base.display(),
            cert = cert.display(),
            key = key.display(),
            root = fixture.root().display(),
        );
        let config_path = base.join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut command = Command::new("nginx");
        command
            .args(["-e", "stderr", "-p"])
            .arg(base)
            .arg("-c")
            .arg(&config_path);
        Self {
            _daemon: Daemon::start(command, &[http, https]),
            http,
            https,
            cert,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn secure_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }
}

/// tinyproxy, allowing CONNECT only to `connect_port`.
fn tinyproxy(fixture: &Fixture, connect_port: u16) -> (Daemon, SocketAddr) {
    let addr = testkit::closed_tcp_port();
    let config = format!(
        "Port {}\nListen 127.0.0.1\nTimeout 30\nMaxClients 16\nConnectPort {connect_port}\nLogLevel Error\n",
        addr.port()
    );
    let path = fixture.base.join("tinyproxy.conf");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new("tinyproxy");
    command.arg("-d").arg("-c").arg(&path);
    (Daemon::start(command, &[addr]), addr)
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn every_flag_against_nginx() {
    if !testkit::require("nginx") {
        return;
    }
    let fixture = Fixture::new("peer-nginx");
    let nginx = Nginx::start(&fixture);
    let data = binary_data();

    assert_eq!(stdout_of(&get(&[&nginx.url("/hello.txt")])), HELLO);

    // -i: the head, then the body.
    let out = stdout_of(&get(&["-i", &nginx.url("/hello.txt")]));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("server: nginx"), "{out}");
    assert!(out.ends_with(&format!("\r\n\r\n{HELLO}")), "{out}");

    // -I: HEAD, the head only.
    let out = stdout_of(&get(&["-I", &nginx.url("/data.bin")]));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("content-length: 1048576\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "{out}");
    let etag = out
        .lines()
        .find_map(|line| line.strip_prefix("etag: "))
        .expect("nginx sends an ETag")
        .trim()
        .to_owned();

    // --range: exactly the bytes asked for, with 206 in the head.
    let out = get(&["--range", "100-199", &nginx.url("/data.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, &data[100..200]);
    let out = get(&["--range", "-10", &nginx.url("/data.bin")]);
    assert_eq!(out.stdout, &data[data.len() - 10..]);
    let out = stdout_of(&get(&["-i", "--range", "0-4", &nginx.url("/hello.txt")]));
    assert!(out.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{out}");
    assert!(out.contains("content-range: bytes 0-4/14\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nhello"), "{out}");

    // -o: the body in a file, nothing on stdout.
    let file = fixture.base.join("from-nginx.bin");
    let out = get(&["-o", file.to_str().unwrap(), &nginx.url("/data.bin")]);
    assert!(stdout_of(&out).is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), data);

    // -H: a conditional request nginx answers with 304 (success, no body).
    let out = get(&[
        "-i",
        "-H",
        &format!("If-None-Match: {etag}"),
        &nginx.url("/data.bin"),
    ]);
    let out = stdout_of(&out);
    assert!(out.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "{out}");

    // -L: nginx redirects a directory to its slash form.
    let out = stdout_of(&get(&["-i", &nginx.url("/docs")]));
    assert!(
        out.starts_with("HTTP/1.1 301 Moved Permanently\r\n"),
        "{out}"
    );
    let out = stdout_of(&get(&["-L", &nginx.url("/docs")]));
    assert!(out.contains("Index of /docs/"), "{out}");
    assert!(out.contains("a.txt"), "{out}");

    // -v: what was sent and received, on stderr.
    let out = get(&["-v", &nginx.url("/hello.txt")]);
    assert_eq!(stdout_of(&out), HELLO);
    let transcript = text(&out.stderr);
    for expected in [
        "> GET /hello.txt HTTP/1.1\n",
        &format!("> host: {}\n", nginx.http),
        "< HTTP/1.1 200 OK\n",
        "< server: nginx",
    ] {
        assert!(
            transcript.contains(expected),
            "{expected:?} in {transcript}"
        );
    }

    // With --fail, statuses of 400 and above exit 22 with the status, and
    // print no body.
    for (path, method, status) in [
        ("/missing", "GET", "HTTP 404 Not Found"),
        ("/hello.txt", "POST", "HTTP 405 "),
    ] {
        let out = get(&["--fail", "-X", method, &nginx.url(path)]);
        assert_eq!(out.status.code(), Some(22), "{method} {path}");
        assert!(out.stdout.is_empty());
        assert!(text(&out.stderr).contains(status), "{}", text(&out.stderr));
    }
}

#[test]
fn tls_and_http2_against_nginx() {
    if !testkit::require("nginx") {
        return;
    }
    let fixture = Fixture::new("peer-nginx-tls");
    let nginx = Nginx::start(&fixture);
    let cacert = nginx.cert.to_str().unwrap();
    let hello = nginx.secure_url("/hello.txt");

    // Verified by default: an unknown issuer is an error that says what to do.
    let out = get(&[&hello]);
    assert_eq!(out.status.code(), Some(60));
    let err = text(&out.stderr);
    assert!(
        err.contains("certificate") && err.contains("--cacert"),
        "{err}"
    );

    // --cacert: trusted, and ALPN picks HTTP/2.
    let out = get(&["-v", "--cacert", cacert, &hello]);
    assert_eq!(stdout_of(&out), HELLO);
    let transcript = text(&out.stderr);
    assert!(transcript.contains("ALPN: h2"), "{transcript}");
    assert!(transcript.contains("< HTTP/2 200\n"), "{transcript}");
    let out = get(&["-i", "--cacert", cacert, "--range", "7-13", &hello]);
    let out = stdout_of(&out);
    assert!(out.starts_with("HTTP/2 206\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nnetkit\n"), "{out}");
    let file = fixture.base.join("over-h2.bin");
    let out = get(&[
        "--cacert",
        cacert,
        "-o",
        file.to_str().unwrap(),
        &nginx.secure_url("/data.bin"),
    ]);
    stdout_of(&out);
    assert_eq!(std::fs::read(&file).unwrap(), binary_data());

    // --insecure, and HTTP/1.1 on request.
    let out = get(&["--insecure", "--http1.1", "-i", &hello]);
    let out = stdout_of(&out);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    let out = get(&["--insecure", "-I", &nginx.secure_url("/missing")]);
    assert_eq!(out.status.code(), Some(0), "as curl -I without --fail");
    assert!(text(&out.stdout).starts_with("HTTP/2 404\r\n"));
}

#[test]
fn through_tinyproxy() {
    if !testkit::require("nginx") || !testkit::require("tinyproxy") {
        return;
    }
    let fixture = Fixture::new("peer-tinyproxy");
    let nginx = Nginx::start(&fixture);
    let (_proxy, proxy_addr) = tinyproxy(&fixture, nginx.https.port());
    let proxy = format!("http://{proxy_addr}");

    // http: the absolute form goes to the proxy, which adds its Via.
    let target = nginx.url("/hello.txt");
    let out = get(&["-v", "-x", &proxy, &target]);
    assert_eq!(stdout_of(&out), HELLO);
    let transcript = text(&out.stderr);
    assert!(
        transcript.contains(&format!("* Connected to {proxy_addr}\n")),
        "{transcript}"
    );
    assert!(
        transcript.contains(&format!("> GET {target} HTTP/1.1\n")),
        "{transcript}"
    );
    assert!(transcript.contains("tinyproxy"), "{transcript}");
    let out = get(&["-x", &proxy, "--range", "0-4", &target]);
    assert_eq!(stdout_of(&out), "hello");
    let out = get(&["--fail", "-x", &proxy, &nginx.url("/missing")]);
    assert_eq!(out.status.code(), Some(22));

    // https: a CONNECT tunnel, TLS and HTTP/2 inside it.
    let out = get(&[
        "-v",
        "-x",
        &proxy,
        "--cacert",
        nginx.cert.to_str().unwrap(),
        &nginx.secure_url("/docs/a.txt"),
    ]);
    assert_eq!(stdout_of(&out), "document a\n");
    let transcript = text(&out.stderr);
    assert!(
        transcript.contains(&format!(
            "> CONNECT localhost:{} HTTP/1.1\n",
            nginx.https.port()
        )),
        "{transcript}"
    );
    assert!(transcript.contains("ALPN: h2"), "{transcript}");

    // A CONNECT the proxy refuses, and a proxy that is not there.
    let refused = format!("https://localhost:{}/", nginx.http.port());
    let out = get(&["-x", &proxy, "--insecure", &refused]);
    assert_eq!(out.status.code(), Some(56));
    let err = text(&out.stderr);
    assert!(
        err.contains("refused to connect") && err.contains("403"),
        "{err}"
    );
    let closed = testkit::closed_tcp_port();
    let out = get(&["-x", &format!("http://{closed}"), &target]);
    assert_eq!(out.status.code(), Some(7));
    assert!(
        text(&out.stderr).contains("connection refused"),
        "{}",
        text(&out.stderr)
    );
}
