//! `netkit chat bench` end to end, with a handful of clients for a few
//! seconds: against `netkit chat serve`, and speaking IRC to ngircd with
//! bench/chat.sh's configuration. Only that it measures is checked here;
//! how fast anything is belongs to bench/chat.sh on a quiet machine.

#[path = "chat/support.rs"]
mod support;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{ChatServer, Scratch, WAIT, netkit};

const CLIENTS: usize = 4;

/// Runs the generator against `server` with `extra` flags; returns the
/// step lines after checking that each measured something.
fn bench(server: &str, extra: &[&str]) -> Vec<String> {
    let clients = CLIENTS.to_string();
    let out = netkit()
        .args(["chat", "bench", "--server", server, "--clients", &clients])
        .args(["--rate", "2,3", "--duration", "2s", "--warmup", "200ms"])
        .args(extra)
        .env("NETKIT_CHAT_PASSWORD", "bench password")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("best sustained: "), "{stdout}");
    let steps: Vec<String> = stdout
        .lines()
        .filter(|line| line.starts_with("rate "))
        .map(str::to_owned)
        .collect();
    assert!(!steps.is_empty(), "{stdout}");
    for step in &steps {
        assert!(number_after(step, "sent") > 0.0, "{step}");
        assert!(number_after(step, "delivered") > 0.0, "{step}");
        for label in ["latency p50", "p99", "max"] {
            number_after(step, label);
        }
        // The server's process is found from its listening port.
        assert!(number_after(step, "server rss") > 1.0, "{step}");
    }
    steps
}

/// The number printed after `label` in `line`.
fn number_after(line: &str, label: &str) -> f64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line}"));
    let digits: String = line[at + label.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {line}"))
}

#[test]
fn bench_measures_a_netkit_server() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &["--rate", "1000", "--burst", "1000"]);
    bench(&server.addr(), &[]);

    // The generator's clients were real accounts, logged in for real.
    let listed = netkit()
        .args(["chat", "users", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let accounts = listed.lines().filter(|l| l.starts_with("bench")).count();
    assert_eq!(accounts, CLIENTS, "{listed}");
}

/// ngircd in the foreground on a free loopback port; killed when dropped.
struct Ngircd(Child);

impl Drop for Ngircd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bench_speaks_irc_to_ngircd() {
    if !testkit::require("ngircd") {
        return;
    }
    let scratch = Scratch::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        include_str!("../../../bench/chat/ngircd.conf").replace("@PORT@", &port.to_string());
    let path = scratch.path("ngircd.conf");
    std::fs::write(&path, config).unwrap();
    let _ngircd = Ngircd(
        Command::new("ngircd")
            .arg("--nodaemon")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "ngircd never listened on {addr}");
        thread::sleep(Duration::from_millis(50));
    }
    bench(&addr, &["--irc"]);
}
