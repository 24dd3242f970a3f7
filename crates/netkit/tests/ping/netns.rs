//! Network namespaces for ping's end-to-end tests, torn down by `Drop` even
//! when a test fails, and runners for netkit and iputils ping inside them.
//!
//! Names are `nkping<pid>-<n>` so parallel test processes never collide.
//! Veth pairs are created directly inside their namespaces, so their names
//! never meet in the host's namespace either.
//!
//! Each test file uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// No single ping run in these tests may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(30);

pub const NETKIT: &str = env!("CARGO_BIN_EXE_netkit");

/// Whether namespaces can be made here: root and iproute2. Fails under CI
/// when they cannot, skips with a note elsewhere.
pub fn available() -> bool {
    testkit::require_root() && testkit::require("ip")
}

#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "nkping{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        // Addresses usable at once (no duplicate address detection), and
        // every ICMP error sent (no rate limit), so runs are repeatable.
        for setting in [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv6.icmp.ratelimit=0",
        ] {
            netns.sysctl(setting);
        }
        netns
    }

    /// `ip -n NAME ARGS...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }

    /// `PROGRAM` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// `sysctl -w KEY=VALUE` inside the namespace (these are per namespace).
    pub fn sysctl(&self, setting: &str) {
        run_ok(self.command("sysctl").args(["-qw", setting]));
    }

    /// Whether unprivileged ICMP datagram sockets are allowed (for every
    /// group) or not at all, which also decides what root gets: a datagram
    /// socket when allowed, a raw one otherwise.
    pub fn datagram_sockets(&self, allowed: bool) {
        let range = if allowed { "0 2147483647" } else { "1 0" };
        self.sysctl(&format!("net.ipv4.ping_group_range={range}"));
    }

    pub fn iptables(&self, tool: &str, rule: &str) {
        run_ok(self.command(tool).args(rule.split_whitespace()));
    }

    /// Runs `netkit ping ARGS` here.
    pub fn netkit_ping(&self, args: &[&str]) -> Run {
        let mut command = self.command(NETKIT);
        command.arg("ping").args(args).env("RUST_LOG", "debug");
        Run::of(command)
    }

    /// Runs iputils `ping ARGS` here.
    pub fn iputils_ping(&self, args: &[&str]) -> Run {
        let mut command = self.command("ping");
        command.args(args);
        Run::of(command)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair from `a`'s `a_if` to `b`'s `b_if`, both up.
pub fn link(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    run_ok(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]));
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Host A — router R — host B, IPv4 and IPv6.
#[derive(Debug)]
pub struct Routed {
    pub a: Netns,
    pub router: Netns,
    pub b: Netns,
}

pub const ROUTER4: &str = "10.201.1.1";
pub const ROUTER6: &str = "fd00:201:1::1";
pub const B4: &str = "10.201.2.2";
pub const B6: &str = "fd00:201:2::2";
/// On A's link, with a neighbour entry pointing nowhere: probes leave and
/// nothing ever answers.
pub const NOBODY4: &str = "10.201.1.99";
pub const NOBODY6: &str = "fd00:201:1::99";

impl Routed {
    pub fn new() -> Routed {
        let (a, router, b) = (Netns::new(), Netns::new(), Netns::new());
        link(&a, "va", &router, "vra");
        link(&b, "vb", &router, "vrb");
        let address = |netns: &Netns, dev: &str, v4: &str, v6: &str| {
            netns.ip(&["addr", "add", v4, "dev", dev]);
            netns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        };
        address(&a, "va", "10.201.1.2/24", "fd00:201:1::2/64");
        address(&router, "vra", "10.201.1.1/24", "fd00:201:1::1/64");
        address(&router, "vrb", "10.201.2.1/24", "fd00:201:2::1/64");
        address(&b, "vb", "10.201.2.2/24", "fd00:201:2::2/64");
        a.ip(&["route", "add", "default", "via", ROUTER4]);
        a.ip(&["-6", "route", "add", "default", "via", ROUTER6]);
        b.ip(&["route", "add", "default", "via", "10.201.2.1"]);
        b.ip(&["-6", "route", "add", "default", "via", "fd00:201:2::1"]);
        router.sysctl("net.ipv4.ip_forward=1");
        router.sysctl("net.ipv6.conf.all.forwarding=1");
        let nowhere = "02:00:00:00:00:99";
        a.ip(&[
            "neigh",
            "add",
            NOBODY4,
            "lladdr",
            nowhere,
            "dev",
            "va",
            "nud",
            "permanent",
        ]);
        a.ip(&[
            "neigh",
            "add",
            NOBODY6,
            "lladdr",
            nowhere,
            "dev",
            "va",
            "nud",
            "permanent",
        ]);
        Routed { a, router, b }
    }
}

/// What one ping run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Run {
    fn of(mut command: Command) -> Run {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
        let (tx, rx) = mpsc::channel();
        let pid = child.id();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(RUN_LIMIT) {
            Ok(output) => output.expect("wait for ping"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("{command:?} ran for more than {RUN_LIMIT:?}");
            }
        };
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code(),
        }
    }

    /// The "N packets transmitted, ..." line.
    pub fn counts(&self) -> &str {
        self.stdout
            .lines()
            .find(|line| line.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no statistics in:\n{}", self.stdout))
    }

    /// stdout with every measured number replaced, so two runs can be
    /// compared for format and counts.
    pub fn shape(&self) -> String {
        normalize(&self.stdout)
    }
}

/// Replaces round-trip times, run time and timestamps by `#`.
pub fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = match line.strip_prefix('[') {
                Some(rest) if rest.contains("] ") => {
                    format!("[#] {}", rest.split_once("] ").map_or("", |split| split.1))
                }
                _ => line.to_owned(),
            };
            if let Some((head, _)) = line.split_once("rtt min/avg/max/mdev = ") {
                return format!("{head}rtt min/avg/max/mdev = # ms");
            }
            let line = replace_number_after(&line, "time=");
            replace_number_after(&line, ", time ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn replace_number_after(line: &str, marker: &str) -> String {
    let Some(at) = line.find(marker) else {
        return line.to_owned();
    };
    let start = at + marker.len();
    let end = line[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(line.len(), |offset| start + offset);
    format!("{}#{}", &line[..start], &line[end..])
}

/// A process started in a namespace whose stdout and stderr lines arrive
/// on channels.
pub struct Background {
    child: Child,
    pub lines: mpsc::Receiver<String>,
    pub errors: mpsc::Receiver<String>,
}

impl Background {
    pub fn start(mut command: Command) -> Background {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
        let lines = forward(child.stdout.take().expect("piped"));
        let errors = forward(child.stderr.take().expect("piped"));
        Background {
            child,
            lines,
            errors,
        }
    }

    /// Waits for a line containing `text`.
    pub fn wait_for(&self, text: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => panic!("no line containing {text:?}"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn run_ok(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
