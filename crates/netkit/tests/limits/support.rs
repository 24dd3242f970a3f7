//! Shared by the connection-limit tests: starting a server through the
//! binary in a scratch directory, and running a scenario of
//! `limits/clients.py` against it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use testkit::Server;

const CLIENTS: &str = include_str!("clients.py");

/// A directory for one test, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netkit-limits-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `netkit ARGS...` as a server on 127.0.0.1:0, once it says where it
/// listens.
pub fn start(args: &[&str], bind_flag: &str, extra: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netkit"));
    command
        .args(args)
        .args([bind_flag, "127.0.0.1:0"])
        .args(extra);
    Server::start(command, 1)
}

/// Runs `scenario` against `addr` with `count` held connections; returns
/// what it printed.
pub fn scenario(scenario: &str, addr: SocketAddr, count: usize, rest: &[&str]) -> Value {
    let (host, port, count) = (
        addr.ip().to_string(),
        addr.port().to_string(),
        count.to_string(),
    );
    let mut args = vec![scenario, &host, &port, &count];
    args.extend_from_slice(rest);
    let out = testkit::python(CLIENTS, &args, b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{scenario}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

pub fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// An `http-idle` scenario's outcome: the newcomer was served within 1 s,
/// the oldest idle connection was closed to make room, the next one still
/// serves.
pub fn assert_idle_made_room(seen: &Value) {
    assert_eq!(seen["status"], 200, "{seen}");
    assert!(seen["elapsed"].as_f64().unwrap() < 1.0, "{seen}");
    assert_eq!(seen["oldest_closed"], true, "{seen}");
    assert_eq!(seen["second_status"], 200, "{seen}");
}

/// An `http-per-client` scenario's outcome: 503 with `Retry-After` past
/// the limit, while another client is served.
pub fn assert_refused_with_503(seen: &Value) {
    assert_eq!(seen["status"], 503, "{seen}");
    assert_eq!(seen["retry_after"], "1", "{seen}");
    assert_eq!(seen["other_status"], 200, "{seen}");
}
