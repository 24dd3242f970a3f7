//! `netkit udping` at its edges: usage errors, help, unreachable servers,
//! Ctrl-C on an endless run, `--json` lines streamed as they happen, zero
//! and absurd durations, and the lines `netkit demo` prints for udping and
//! heartbeat.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use testkit::Server;

/// A duration `Instant` cannot reach: 10^19 seconds.
const ABSURD: &str = "10000000000000000000";

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ping(args: &[&str]) -> std::process::Output {
    netkit()
        .args(["udping", "ping"])
        .args(args)
        .output()
        .expect("netkit runs")
}

fn free_udp_port() -> String {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

fn serve(args: &[&str]) -> Server {
    let mut command = netkit();
    command
        .args(["udping", "serve", "--bind", "127.0.0.1:0"])
        .args(args);
    Server::start(command, 1)
}

/// A client whose stdout lines arrive on a channel as it prints them.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn start(args: &[&str]) -> Client {
        let mut command = netkit();
        command.args(args);
        Client::spawn(command)
    }

    fn spawn(mut command: Command) -> Client {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("netkit runs");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Client { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s")
    }

    /// SIGINT, as Ctrl-C sends; returns the exit code and the lines after.
    fn interrupt(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success());
        let status = testkit::wait_timeout(&mut self.child, Duration::from_secs(10))
            .expect("the client exits on SIGINT");
        let rest = self.lines.iter().collect();
        (status.code(), rest)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn json_lines_stream_and_ctrl_c_prints_the_summary() {
    let server = serve(&[]);
    let addr = server.addr().to_string();
    let client = Client::start(&["udping", "ping", "--json", "-c", "0", "-i", "50ms", &addr]);
    // Replies show up while the run goes on, not at its end.
    for seq in 1..=3 {
        let line: Value = serde_json::from_str(&client.line()).unwrap();
        assert_eq!(
            (&line["type"], &line["seq"]),
            (&"reply".into(), &seq.into())
        );
    }
    let (code, rest) = client.interrupt();
    assert_eq!(code, Some(0), "{rest:?}");
    let summary: Value = serde_json::from_str(rest.last().expect("a summary")).unwrap();
    assert_eq!(summary["type"], "summary");
    assert!(summary["received"].as_u64().unwrap() >= 3, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");

    // The same in text: Ctrl-C ends an endless run with the statistics.
    let client = Client::start(&["udping", "ping", "-c", "0", "-i", "50ms", &addr]);
    assert!(client.line().starts_with("UDPING "));
    assert!(client.line().contains("seq=1 time="));
    let (code, rest) = client.interrupt();
    assert_eq!(code, Some(0));
    assert!(
        rest.iter().any(|l| l.contains("udping statistics")),
        "{rest:?}"
    );
}

#[test]
fn absurd_durations_do_not_panic() {
    // The timeout and interval are past what a clock can hold: the first
    // reply comes, the second probe never goes, and Ctrl-C ends the run.
    let server = serve(&[]);
    let addr = server.addr().to_string();
    let client = Client::start(&[
        "udping", "ping", "-c", "2", "-i", ABSURD, "-W", ABSURD, &addr,
    ]);
    assert!(client.line().starts_with("UDPING "));
    assert!(client.line().contains("seq=1 time="));
    let (code, rest) = client.interrupt();
    assert_eq!(code, Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("1 probe sent, 1 received")),
        "{rest:?}"
    );

    // A server told to delay forever holds the reply and stays up: a
    // heartbeat sent after the held probe still reaches its status table.
    let mut server = serve(&[
        "--delay",
        ABSURD,
        "--grace",
        "200ms",
        "--heartbeat",
        "--status",
    ]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = socket.local_addr().unwrap().to_string();
    socket.send_to(b"Ping 1 0.0", server.addr()).unwrap();
    socket.send_to(b"Heartbeat 1 0.0", server.addr()).unwrap();
    wait_for_row(&server, &client, 1);
    server.signal("TERM");
    let status = server.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");

    // A heartbeat monitor whose dead time overflows never calls anyone dead:
    // the table shows the client alive on two redraws, with checks between.
    let server = serve(&[
        "--heartbeat",
        "--interval",
        ABSURD,
        "--dead-after",
        "1000",
        "--status",
    ]);
    socket.send_to(b"Heartbeat 1 0.0", server.addr()).unwrap();
    wait_for_row(&server, &client, 2);
}

/// Waits (bounded) until the server's status table has shown `client` alive
/// `times` times.
fn wait_for_row(server: &Server, client: &str, times: usize) {
    let mut seen = 0;
    while seen < times {
        let line = server
            .next_line(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no status row for {client}"));
        if line.starts_with(client) {
            assert!(line.contains("alive"), "{line}");
            seen += 1;
        }
    }
}

#[test]
fn zero_heartbeat_intervals_are_usage_errors() {
    for args in [
        &["udping", "heartbeat", "-i", "0", "127.0.0.1:9"][..],
        &["udping", "serve", "--heartbeat", "--interval", "0ms"],
    ] {
        let out = netkit().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("must be longer than zero"),
            "{args:?}"
        );
    }
}

/// A network namespace of our own, deleted even when the test fails.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("nkudping{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let netns = Netns(name);
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    fn ip(&self, args: &[&str]) {
        run(Command::new("ip").arg("-n").arg(&self.0).args(args));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("ip runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_route_going_away_mid_run_is_reported_not_fatal() {
    if !(testkit::require_root() && testkit::require("ip")) {
        return;
    }
    // 10.99.0.2 lies behind a veth whose far end answers nothing, so the
    // probes time out; for a while the route to it says unreachable, and
    // sending fails at once with EHOSTUNREACH.
    let netns = Netns::new();
    netns.ip(&[
        "link", "add", "nkudpa", "type", "veth", "peer", "name", "nkudpb",
    ]);
    netns.ip(&["addr", "add", "10.99.0.1/24", "dev", "nkudpa"]);
    netns.ip(&["link", "set", "nkudpa", "up"]);
    netns.ip(&["link", "set", "nkudpb", "up"]);
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &netns.0, env!("CARGO_BIN_EXE_netkit")])
        .args(["udping", "ping", "-c", "12", "-i", "50ms", "-W", "100ms"])
        .arg("10.99.0.2:9");
    let client = Client::spawn(command);
    assert!(client.line().starts_with("UDPING "));
    assert_eq!(client.line(), "Request timed out (seq=1)");
    netns.ip(&["route", "add", "unreachable", "10.99.0.2/32"]);
    let lines: Vec<String> = client.lines.iter().collect();
    let hinted = lines
        .iter()
        .filter(|l| l.ends_with("(host unreachable)"))
        .count();
    assert!(hinted > 0, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("12 probes sent, 0 received")),
        "the run goes on to its summary: {lines:?}"
    );
}

#[test]
fn demo_has_udping_and_heartbeat_lines() {
    let out = netkit().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |system: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{system} ")))
            .unwrap_or_else(|| panic!("no {system} line in:\n{stdout}"))
    };
    let udping = line("udping");
    for part in [
        " ok ",
        "lab pings to 127.0.0.1:",
        "as seed 42 decided",
        "STAMP rtt",
    ] {
        assert!(udping.contains(part), "{udping}");
    }
    let heartbeat = line("heartbeat");
    for part in [" ok ", "reported stopped", "back on its next", "0 lost"] {
        assert!(heartbeat.contains(part), "{heartbeat}");
    }
}

#[test]
fn usage_errors_and_unreachable_servers() {
    for bad in [
        &["udping", "serve", "--loss", "1.5"][..],
        &["udping", "serve", "--delay", "soon"],
        &["udping", "ping"],
        &["udping", "ping", "-s", "0", "127.0.0.1:1"],
        &["udping", "serve", "--status"],
        &["udping", "ping", "-W", "0", "127.0.0.1:1"],
        &["udping", "ping", "127.0.0.1"],
        &["udping", "heartbeat", "::1"],
    ] {
        let out = netkit().args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let out = netkit()
        .args(["udping", "serve", "--bind", "127.0.0.1:0", "--stateful"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--mode stamp"));

    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = netkit()
        .args(["udping", "serve", "--bind", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&addr));

    // Nothing listens: the kernel says port unreachable, and ping says so.
    let closed = free_udp_port();
    let out = ping(&["-c", "2", "-i", "0.05", "-W", "0.2", &closed]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Request timed out (seq=2) (port unreachable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 probes sent, 0 received, 100.0% loss"),
        "{stdout}"
    );

    let out = ping(&["-c", "1", "no-such-host.invalid:12000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot resolve"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_documents_every_verb() {
    let out = netkit().args(["udping", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for verb in ["serve", "ping", "heartbeat"] {
        assert!(help.contains(verb), "{help}");
    }
    let out = netkit()
        .args(["udping", "serve", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for flag in [
        "--loss",
        "--delay",
        "--duplicate",
        "--reorder",
        "--seed",
        "--mode",
        "--stateful",
        "--heartbeat",
        "--dead-after",
        "--status",
        "--grace",
    ] {
        assert!(help.contains(flag), "serve --help documents {flag}");
    }
}
