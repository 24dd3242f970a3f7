//! `netkit web get` end to end: against our server, against servers and a
//! proxy we did not write (python3's standard library), and its failures.

#[path = "web/support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use testkit::Server;

#[test]
fn body_to_stdout_or_file() {
    let fixture = Fixture::new("client-out");
    let server = serve(Some(&fixture.root()), &[]);
    let out = get(&[&url(&server, "/big.txt")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), big_text());
    assert!(
        out.stderr.is_empty(),
        "no progress bar when not on a terminal"
    );

    let file = fixture.base.join("download.bin");
    let out = get(&["-o", file.to_str().unwrap(), &url(&server, "/data.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(out.stderr.is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), binary_data());

    // Without a scheme, http is assumed.
    let bare = format!("{}/hello.txt", server.addr());
    assert_eq!(text(&get(&[&bare]).stdout), HELLO);
}

#[test]
fn heads_include_head_and_verbose() {
    let fixture = Fixture::new("client-heads");
    let server = serve(Some(&fixture.root()), &[]);

    let out = get(&["-i", &url(&server, "/hello.txt")]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("HTTP/1.1 200 OK\r\n"), "{stdout}");
    assert!(stdout.contains("content-length: 14\r\n"));
    assert!(stdout.ends_with(&format!("\r\n\r\n{HELLO}")));

    let out = get(&["-I", &url(&server, "/hello.txt")]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        stdout.ends_with("\r\n\r\n"),
        "HEAD prints no body: {stdout}"
    );

    let out = get(&["-v", &url(&server, "/hello.txt")]);
    assert_eq!(text(&out.stdout), HELLO);
    let stderr = text(&out.stderr);
    for expected in [
        "* Connected to ",
        "> GET /hello.txt HTTP/1.1\n",
        &format!("> host: {}\n", server.addr()),
        "> user-agent: netkit/",
        "< HTTP/1.1 200 OK\n",
        "< content-type: text/plain; charset=utf-8\n",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
    let sent = stderr.find("> GET").unwrap();
    let received = stderr.find("< HTTP/1.1").unwrap();
    assert!(sent < received);
}

#[test]
fn headers_ranges_methods_and_redirects() {
    let fixture = Fixture::new("client-misc");
    let server = serve(Some(&fixture.root()), &["--list", "--loud"]);

    let out = get(&[
        "-H",
        "User-Agent: custom-agent/2",
        "-H",
        "X-Extra: 1",
        &url(&server, "/hello.txt"),
    ]);
    assert!(out.status.success());
    let line = server.next_line(Duration::from_secs(10)).unwrap();
    assert!(line.ends_with("\"custom-agent/2\""), "{line}");

    let out = get(&["--range", "5-9", &url(&server, "/big.txt")]);
    assert_eq!(text(&out.stdout), &big_text()[5..10]);
    server.next_line(Duration::from_secs(10)).unwrap();

    // Without -L the redirect itself is the answer; with -L it is followed.
    let out = get(&["-i", &url(&server, "/docs")]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("HTTP/1.1 301"));
    let out = get(&["-L", &url(&server, "/docs")]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Index of /docs/"));
    // -i with -L shows every head, as curl does.
    let out = get(&["-i", "-L", &url(&server, "/docs")]);
    let stdout = text(&out.stdout);
    let redirect = stdout.find("HTTP/1.1 301 Moved Permanently\r\n").unwrap();
    let listing = stdout.find("HTTP/1.1 200 OK\r\n").unwrap();
    assert!(redirect < listing, "{stdout}");

    let out = get(&["--fail", "-X", "DELETE", &url(&server, "/hello.txt")]);
    assert_eq!(out.status.code(), Some(22));
    assert!(
        text(&out.stderr).contains("HTTP 405 Method Not Allowed"),
        "{}",
        text(&out.stderr)
    );

    let out = get(&["-H", "no colon", &url(&server, "/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("'Name: value'"));
}

/// Redirects forever, and answers 500 on /fail: a server we did not write.
const REDIRECTING_SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/short":
            self.send_response(200); self.send_header("Content-Length", "100"); self.end_headers(); self.wfile.write(b"only ten b")
            self.close_connection = True
            return
        if self.path == "/fail":
            self.send_response(500); self.send_header("Content-Length", "4"); self.end_headers(); self.wfile.write(b"oops")
            return
        n = int(self.path.strip("/") or 0)
        self.send_response(302)
        self.send_header("Location", "/%d" % (n + 1))
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn redirect_limit_and_server_errors() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", REDIRECTING_SERVER]);
    let server = Server::start(python, 1);
    let out = get(&["-L", &format!("http://{}/0", server.addr())]);
    assert_eq!(out.status.code(), Some(47));
    assert!(
        text(&out.stderr).contains("stopped after 10 redirects"),
        "{}",
        text(&out.stderr)
    );
    let out = get(&["-v", "-L", &format!("http://{}/5", server.addr())]);
    assert!(text(&out.stderr).contains("/15"), "ten hops were followed");

    // A body shorter than its Content-Length is a failed transfer.
    let out = get(&[&format!("http://{}/short", server.addr())]);
    assert_eq!(out.status.code(), Some(56));
    let err = text(&out.stderr);
    assert!(err.contains("reading the body from"), "{err}");
    assert_eq!(err.matches("error reading a body").count(), 1, "{err}");

    let out = get(&["--fail", &format!("http://{}/fail", server.addr())]);
    assert_eq!(out.status.code(), Some(22));
    assert!(out.stdout.is_empty(), "like curl --fail, no body");
    assert!(text(&out.stderr).contains("HTTP 500 Internal Server Error"));
}

/// A forward proxy in python3's standard library: absolute-form requests
/// are forwarded, CONNECT is tunnelled; each request line is printed.
const PROXY: &str = r#"
import socket, sys, threading
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data: break
            b.sendall(data)
    except OSError: pass
    finally:
        try: b.shutdown(socket.SHUT_WR)
        except OSError: pass
def handle(client):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(4096)
        if not chunk: return
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode()
    print("PROXY " + line, flush=True)
    method, target, version = line.split(" ")
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        rest = target.split("://", 1)[1]
        hostport, path = (rest.split("/", 1) + [""])[:2]
        host, port = hostport.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        upstream.sendall(("%s /%s %s" % (method, path, version)).encode() + head[len(line):])
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    pipe(client, upstream)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

#[test]
fn through_an_http_proxy() {
    if !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("client-proxy");
    let origin = serve(Some(&fixture.root()), &[]);
    let secure = serve(Some(&fixture.root()), &["--self-signed"]);
    let mut python = Command::new("python3");
    python.args(["-c", PROXY]);
    let proxy = Server::start(python, 1);
    let proxy_url = format!("http://{}", proxy.addr());

    let target = url(&origin, "/hello.txt");
    let out = get(&["-x", &proxy_url, "-v", &target]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), HELLO);
    assert!(text(&out.stderr).contains(&format!("> GET {target} HTTP/1.1")));
    let line = proxy.next_line(Duration::from_secs(10)).unwrap();
    assert_eq!(line, format!("PROXY GET {target} HTTP/1.1"));

    let https = format!("https://localhost:{}/docs/a.txt", secure.addr().port());
    let out = get(&["-x", &proxy_url, "--insecure", &https]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "document a\n");
    let line = proxy.next_line(Duration::from_secs(10)).unwrap();
    assert_eq!(
        line,
        format!("PROXY CONNECT localhost:{} HTTP/1.1", secure.addr().port())
    );

    let out = get(&["-x", "socks5://127.0.0.1:1", &target]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("proxy"), "{}", text(&out.stderr));
}

#[test]
fn connection_failures_exit_with_curls_codes_and_a_message() {
    let closed = testkit::closed_tcp_port();
    let out = get(&[&format!("http://{closed}/")]);
    assert_eq!(out.status.code(), Some(7));
    let err = text(&out.stderr);
    assert!(
        err.contains("connection refused") && err.contains(&closed.to_string()),
        "{err}"
    );
    assert!(err.contains("is the server running?"), "{err}");

    let out = get(&["http://no-such-host.invalid/"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(
        text(&out.stderr).contains("cannot resolve no-such-host.invalid"),
        "{}",
        text(&out.stderr)
    );

    let out = get(&["ftp://example.com/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unsupported scheme"));

    // A server that accepts and closes at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        drop(stream);
    });
    let out = get(&[&format!("http://{addr}/")]);
    closer.join().unwrap();
    assert_eq!(out.status.code(), Some(56));
    assert!(!text(&out.stderr).is_empty());

    // A server that accepts and never answers: --max-time ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let out = get(&["--max-time", "500ms", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(28));
    assert!(
        text(&out.stderr).contains("--max-time"),
        "{}",
        text(&out.stderr)
    );
    drop(silent);

    let out = get(&[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn netkit_client_against_python_http_server() {
    if !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("client-python");
    let mut python = Command::new("python3");
    python.args([
        "-u",
        "-c",
        "import http.server, functools, sys\n\
        h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
        s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n\
        print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n\
        s.serve_forever()",
    ]);
    python.arg(fixture.root());
    let server = Server::start(python, 1);
    let out = get(&[&format!("http://{}/big.txt", server.addr())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), big_text());
}

/// On a terminal (a pseudo-terminal from `script`), downloading to a file
/// draws a progress bar on stderr.
#[test]
fn progress_bar_on_a_terminal_only() {
    if !testkit::require("script") {
        return;
    }
    let fixture = Fixture::new("client-progress");
    let data: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(fixture.path("large.bin"), &data).unwrap();
    let server = serve(Some(&fixture.root()), &[]);
    let file = fixture.base.join("large.download");
    let command = format!(
        "{} web get -o {} {}",
        env!("CARGO_BIN_EXE_netkit"),
        file.display(),
        url(&server, "/large.bin")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let terminal = text(&out.stdout);
    assert!(
        terminal.contains("/16.00 MiB"),
        "no progress bar: {terminal:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), data);
}

#[test]
fn compressed_decodes_zstd_as_it_arrives() {
    let fixture = Fixture::new("client-zstd");
    let server = serve(Some(&fixture.root()), &[]);
    let big = url(&server, "/big.txt");
    // --compressed offers zstd among the codings it decodes.
    let out = get(&["--compressed", "-v", &big]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("> accept-encoding: deflate, gzip, br, zstd\n"));
    assert_eq!(text(&out.stdout), big_text());

    // The server made to choose zstd: the body came compressed, and the
    // bytes written are the file's.
    let only_zstd = ["--compressed", "-H", "Accept-Encoding: zstd"];
    let out = get(&[&only_zstd[..], &["-i", &big]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (head, body) = stdout.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("content-encoding: zstd\r\n"), "{head}");
    assert_eq!(body, big_text());
    let file = fixture.base.join("big.out");
    let out = get(&[&only_zstd[..], &["-o", file.to_str().unwrap(), &big]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), big_text());

    // Without --compressed the coded bytes are written as they came.
    let out = get(&["-H", "Accept-Encoding: zstd", &big]);
    assert!(out.status.success());
    assert!(
        out.stdout.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "a zstd frame"
    );
    assert_ne!(text(&out.stdout), big_text());

    // A frame cut short is curl's exit 61 (bad content encoding), not a
    // quietly short file.
    let frame = out.stdout;
    let cut = frame[..frame.len() / 2].to_vec();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0; 4096];
        let _ = stream.read(&mut request);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            cut.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&cut);
    });
    let out = get(&["--compressed", &format!("http://{addr}/")]);
    assert_eq!(out.status.code(), Some(61), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot decode the body"),
        "{}",
        text(&out.stderr)
    );
}
