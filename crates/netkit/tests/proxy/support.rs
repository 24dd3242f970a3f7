//! What the proxy tests share: the python3 origin, the proxy started through
//! the binary, and curl driven as a user would.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use testkit::Server;

pub const ORIGIN_PY: &str = include_str!("origin.py");

pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

/// Whether curl and python3 are here (or the test is skipped; CI fails).
pub fn tools() -> bool {
    testkit::require("curl") && testkit::require("python3")
}

/// Makes the command that runs a program: on the host, or inside a network
/// namespace (`ip netns exec NAME PROGRAM`).
pub type Runner = Arc<dyn Fn(&str) -> Command + Send + Sync>;

pub fn on_host() -> Runner {
    Arc::new(|program| Command::new(program))
}

/// The python3 origin (plain HTTP, or HTTPS with a cert+key PEM).
pub struct Origin {
    pub server: Server,
    tls: bool,
    /// Set when the origin runs in a network namespace: its loopback is
    /// reachable only from programs run there.
    isolated: Option<Runner>,
}

impl Origin {
    pub fn start() -> Origin {
        Origin::start_with(&[], None)
    }

    pub fn start_tls(pem: &Path) -> Origin {
        Origin::start_with(&[pem.to_str().unwrap()], None)
    }

    /// The origin run by `runner`, e.g. inside a network namespace.
    pub fn start_in(runner: Runner) -> Origin {
        Origin::start_with(&[], Some(runner))
    }

    fn start_with(args: &[&str], isolated: Option<Runner>) -> Origin {
        let mut command = match &isolated {
            Some(runner) => runner("python3"),
            None => Command::new("python3"),
        };
        command.arg("-c").arg(ORIGIN_PY).args(args);
        Origin {
            server: Server::start(command, 1),
            tls: !args.is_empty(),
            isolated,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// What the origin has seen, straight from it (not through the proxy).
    pub fn stats(&self) -> serde_json::Value {
        let body = if let Some(runner) = &self.isolated {
            curl_command(runner("curl"), &[&self.url("/_stats")]).body
        } else if self.tls {
            curl(&["-k", &format!("https://{}/_stats", self.addr())]).body
        } else {
            direct_get(self.addr(), "/_stats")
        };
        serde_json::from_slice(&body).expect("origin stats are JSON")
    }

    /// Requests the origin received for `path` (with its query).
    pub fn count(&self, path: &str) -> u64 {
        self.stats()["counts"][path].as_u64().unwrap_or(0)
    }

    /// The headers of the last request for `path`, lower-case names.
    pub fn headers_seen(&self, path: &str) -> serde_json::Value {
        self.stats()["headers"][path].clone()
    }

    /// Changes what `path` answers (query parameters, e.g. `etag=v2`).
    pub fn set(&self, path: &str, query: &str) {
        direct_get(self.addr(), &format!("/_set?path={path}&{query}"));
    }
}

/// A GET with std's TcpStream and `Connection: close`: the body.
pub fn direct_get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("origin reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    response[at + 4..].to_vec()
}

/// `netkit proxy serve` on an ephemeral port with its own cache directory.
pub struct Proxy {
    pub server: Server,
    pub dir: PathBuf,
    /// Runs the proxy's clients where they can reach it.
    pub runner: Runner,
}

impl Proxy {
    pub fn start(cache_dir: &Path, extra: &[&str]) -> Proxy {
        Proxy::start_in(on_host(), cache_dir, extra)
    }

    /// The proxy run by `runner`, e.g. inside a network namespace; curl
    /// through it ([`via`], [`Proxy::stats`]) is run the same way.
    /// Origins on loopback are allowed (`--allow-localhost-origins`): the
    /// tests' origins are all there.
    pub fn start_in(runner: Runner, cache_dir: &Path, extra: &[&str]) -> Proxy {
        let mut allowed = vec!["--allow-localhost-origins"];
        allowed.extend_from_slice(extra);
        Proxy::start_guarded(runner, cache_dir, &allowed)
    }

    /// The proxy with its default refusals of the host's own addresses.
    pub fn start_guarded(runner: Runner, cache_dir: &Path, extra: &[&str]) -> Proxy {
        let mut command = runner(env!("CARGO_BIN_EXE_netkit"));
        command.args(["proxy", "serve", "--bind", "127.0.0.1:0", "--cache-dir"]);
        command.arg(cache_dir).args(extra);
        Proxy {
            server: Server::start(command, 1),
            dir: cache_dir.to_owned(),
            runner,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The next access log lines, waiting briefly for each.
    pub fn log_lines(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.server
                    .next_line(Duration::from_secs(10))
                    .expect("an access log line")
            })
            .collect()
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        self.server.signal("TERM");
        let status = self
            .server
            .wait_timeout(Duration::from_secs(15))
            .expect("proxy exits after SIGTERM");
        assert!(status.success(), "{status:?}");
    }

    pub fn stats(&self) -> serde_json::Value {
        let reply = via(self, "http://netkit.proxy/stats", &[]);
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).expect("stats are JSON")
    }
}

/// What curl received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub stderr: String,
    /// curl's exit status: 0, or why the transfer failed (18: cut short,
    /// 28: timed out).
    pub exit: Option<i32>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("<none>")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` and returns the last response (status, headers,
/// body). `-s`, the header dump and `--max-time 30` are added.
pub fn curl(args: &[&str]) -> Reply {
    curl_command(Command::new("curl"), args)
}

/// [`curl`] run by `command` (curl itself, or a runner such as
/// `ip netns exec NAME curl`).
pub fn curl_command(mut command: Command, args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let output = command
        .args(["-s", "--max-time", "30", "--suppress-connect-headers", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    reply(output, &head, &body)
}

fn reply(output: Output, head: &Path, body: &Path) -> Reply {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let status: u16 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let head = std::fs::read_to_string(head).unwrap_or_default();
    // With several responses (redirects, 100-continue) the last block counts.
    let last = head
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .last()
        .unwrap_or("");
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: std::fs::read(body).unwrap_or_default(),
        stderr,
        exit: output.status.code(),
    }
}

/// `curl -x PROXY URL` with extra arguments.
pub fn via(proxy: &Proxy, url: &str, extra: &[&str]) -> Reply {
    let proxy_url = proxy.url();
    let mut args = vec!["-x", proxy_url.as_str()];
    args.extend_from_slice(extra);
    args.push(url);
    curl_command((proxy.runner)("curl"), &args)
}

/// Sends raw bytes to `addr` and returns everything read until close.
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// Files under the cache directory whose name ends with `suffix`.
pub fn cache_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = dir.join("entries");
    for shard in std::fs::read_dir(&entries).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found
}

/// Waits (up to 10 s) until `n` complete entries are on disk: the proxy
/// commits a body just after the client has it.
pub fn wait_for_entries(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let bodies = cache_files(dir, ".body");
        if cache_files(dir, ".meta").len() == n && bodies.len() == n {
            return bodies;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} entries on disk",
            bodies.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
