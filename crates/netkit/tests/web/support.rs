//! Shared by the web end-to-end tests: a fixture tree, starting the
//! server, and reading responses from curl and from raw sockets.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testkit::Server;

pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory tree for one test, removed when dropped:
/// `root/` is served, `outside/` is next to it and must stay unreachable.
pub struct Fixture {
    pub base: PathBuf,
}

pub const HELLO: &str = "hello, netkit\n";
pub const SECRET: &str = "top secret: outside the root\n";

impl Fixture {
    pub fn new(name: &str) -> Self {
        let base = std::env::temp_dir().join(format!("netkit-web-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        for dir in ["docs", "with-index", ".git", "empty"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret.txt"), SECRET).unwrap();
        std::fs::write(root.join("hello.txt"), HELLO).unwrap();
        std::fs::write(root.join("big.txt"), big_text()).unwrap();
        std::fs::write(root.join("data.bin"), binary_data()).unwrap();
        std::fs::write(root.join("docs/a.txt"), "document a\n").unwrap();
        std::fs::write(root.join("with-index/index.html"), "<h1>the index</h1>\n").unwrap();
        std::fs::write(root.join("odd <name> & \"q\".txt"), "odd\n").unwrap();
        std::fs::write(root.join(".env"), "PASSWORD=hunter2\n").unwrap();
        std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
        std::os::unix::fs::symlink("hello.txt", root.join("link-inside")).unwrap();
        std::os::unix::fs::symlink(root.join("hello.txt"), root.join("abs-link-inside")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.txt", root.join("link-outside")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("dir-outside")).unwrap();
        Self { base }
    }

    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// About 270 KB of text: compressible, and several read chunks long.
pub fn big_text() -> String {
    (0..10_000)
        .map(|i| format!("line {i:05}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

/// 1 MiB where every offset holds a different-looking byte.
pub fn binary_data() -> Vec<u8> {
    (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// `netkit web serve DIR --bind 127.0.0.1:0 -q EXTRA...` (no DIR: the
/// built-in site).
pub fn serve(dir: Option<&Path>, extra: &[&str]) -> Server {
    let mut command = netkit();
    command.args(["web", "serve", "--bind", "127.0.0.1:0"]);
    if let Some(dir) = dir {
        command.arg(dir);
    }
    if !extra.iter().any(|arg| *arg == "--log" || *arg == "--loud") {
        command.arg("-q");
    }
    command.args(extra.iter().filter(|arg| **arg != "--loud"));
    Server::start(command, 1)
}

pub fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.addr())
}

/// One HTTP response, parsed.
#[derive(Debug)]
pub struct Reply {
    pub status_line: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn body_text(&self) -> String {
        text(&self.body)
    }
}

/// Parses `head\r\n\r\nbody`; the last head wins when curl shows several
/// (redirects, 100-continue).
pub fn parse_reply(bytes: &[u8]) -> Reply {
    let mut rest = bytes;
    loop {
        let end = find(rest, b"\r\n\r\n").unwrap_or_else(|| panic!("no head in {:?}", text(bytes)));
        let head = text(&rest[..end]);
        let body = &rest[end + 4..];
        if body.starts_with(b"HTTP/") && !head.contains("content-length") {
            rest = body;
            continue;
        }
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        return Reply {
            status_line,
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `curl -s -i ARGS` parsed into the final response.
pub fn curl(args: &[&str]) -> Reply {
    let out = curl_output(&["-s", "-i"], args);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        text(&out.stderr)
    );
    parse_reply(&out.stdout)
}

pub fn curl_output(fixed: &[&str], args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--max-time", "30"])
        .args(fixed)
        .args(args)
        .output()
        .expect("curl runs")
}

/// Sends `request` as is on a fresh connection and reads until the server
/// closes (requests should say `Connection: close`) or 10 s pass.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    response
}

pub fn raw_reply(addr: SocketAddr, request: &[u8]) -> Reply {
    parse_reply(&raw(addr, request))
}

/// `GET target` with Host and Connection: close.
pub fn raw_get(addr: SocketAddr, target: &str) -> Reply {
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    raw_reply(addr, request.as_bytes())
}

pub fn get(args: &[&str]) -> Output {
    netkit().args(["web", "get"]).args(args).output().unwrap()
}

pub fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// Reads one response with a Content-Length body from a keep-alive stream.
pub fn read_one_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while find(&data, b"\r\n\r\n").is_none() {
        stream.read_exact(&mut byte).unwrap();
        data.push(byte[0]);
    }
    let head = text(&data).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    data.extend_from_slice(&body);
    data
}
