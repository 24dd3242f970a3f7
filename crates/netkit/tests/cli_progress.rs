//! Long-running clients show progress on a terminal's stderr, cleared when
//! they end, and nothing of it when their output is piped.

#[path = "cli/support.rs"]
mod support;
#[path = "cli/terminal.rs"]
mod terminal;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::*;
use terminal::Terminal;
use testkit::Server;

fn udping_server() -> Server {
    let mut command = netkit();
    command.args(["udping", "serve", "--bind", "127.0.0.1:0"]);
    Server::start(command, 1)
}

#[test]
fn udping_flood_shows_a_bar_on_a_terminal_only() {
    if !testkit::require("tmux") {
        return;
    }
    let server = udping_server();
    let addr = server.addr().to_string();
    let args = ["udping", "ping", "--flood", "--duration", "3s", &addr];
    let terminal = Terminal::start("flood", &args);
    terminal.wait_for(&format!("flooding {addr} ["), 1);
    let screen = terminal.wait_for("netkit exited 0", 1);
    assert!(screen.contains(&format!("flood {addr}")), "{screen}");
    assert!(
        !screen.contains("flooding"),
        "the bar is cleared:\n{screen}"
    );

    let out = netkit().args(args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("flood {addr}")));
    assert!(
        !text(&out.stderr).contains("flooding"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out.stderr.contains(&0x1b), "no terminal codes when piped");
}

#[test]
fn capture_to_a_file_counts_packets_on_a_terminal() {
    if !testkit::require("tmux") || !testkit::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.pcapng");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let filter = format!("udp and dst port {}", target.port());
    let args = [
        "capture",
        "-i",
        "lo",
        "-c",
        "3",
        "-w",
        file.to_str().unwrap(),
        &filter,
    ];
    let terminal = Terminal::start("capture", &args);
    // Until the capture is running, datagrams go unseen: send until the
    // count appears.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !terminal.screen().contains("packets written to") {
        assert!(Instant::now() < deadline, "{}", terminal.screen());
        socket.send_to(b"counted", target).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    while !terminal.screen().contains("netkit exited") {
        assert!(Instant::now() < deadline, "{}", terminal.screen());
        socket.send_to(b"counted", target).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = terminal.wait_for("netkit exited 0", 1);
    assert!(screen.contains("3 packets captured"), "{screen}");
    assert!(!screen.contains("packets written to"), "cleared:\n{screen}");
}
