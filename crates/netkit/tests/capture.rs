//! `netkit capture` live on loopback while netkit's own servers and clients
//! talk, checked packet by packet against tshark reading the same file.

#[path = "capture/support.rs"]
mod support;

#[path = "chat/support.rs"]
mod chat_support;

use std::process::Command;

use serde_json::Value;
use support::{Capture, Program, Scratch, assert_same_as_tshark, netkit, on_port, read_json};
use testkit::Server;

fn upper_server() -> Server {
    let mut command = netkit();
    command.args([
        "upper",
        "serve",
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
    ]);
    Server::start(command, 2)
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tcp_flags(packet: &Value) -> u64 {
    packet["transport"]["flags"].as_u64().unwrap_or(0)
}

#[test]
fn upper_udping_and_web_traffic_decodes_as_tshark_sees_it() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let upper = upper_server();
    let (upper_tcp, upper_udp) = (upper.addrs()[0], upper.addrs()[1]);
    let udping = Server::start(
        {
            let mut command = netkit();
            command.args(["udping", "serve", "--bind", "127.0.0.1:0"]);
            command
        },
        1,
    );
    std::fs::write(scratch.path("index.html"), "<h1>captured</h1>\n").unwrap();
    let web = Server::start(
        {
            let mut command = netkit();
            command
                .args(["web", "serve"])
                .arg(scratch.0.path())
                .args(["--bind", "127.0.0.1:0"]);
            command
        },
        1,
    );
    let file = scratch.path("traffic.pcapng");
    let filter = format!(
        "port {} or port {} or port {} or port {}",
        upper_tcp.port(),
        upper_udp.port(),
        udping.addr().port(),
        web.addr().port()
    );
    let capture = Capture::start(Program::Netkit, &file, &filter);

    let reply = run_ok(netkit().args(["upper", "send", &upper_tcp.to_string(), "over tcp"]));
    assert!(reply.contains("OVER TCP"), "{reply}");
    let reply =
        run_ok(netkit().args(["upper", "send", "--udp", &upper_udp.to_string(), "over udp"]));
    assert!(reply.contains("OVER UDP"), "{reply}");
    run_ok(netkit().args([
        "udping",
        "ping",
        "-c",
        "3",
        "-i",
        "50ms",
        &udping.addr().to_string(),
    ]));
    let body = run_ok(netkit().args(["web", "get", &format!("http://{}/index.html", web.addr())]));
    assert!(body.contains("captured"), "{body}");

    let stats = capture.finish();
    assert!(
        stats
            .iter()
            .any(|l| l.ends_with("packets dropped by kernel")),
        "{stats:?}"
    );
    assert!(
        stats
            .iter()
            .any(|l| l.ends_with("packets dropped by netkit")),
        "{stats:?}"
    );

    let packets = assert_same_as_tshark(&file);
    // What each exchange must have put on the wire.
    let tcp = on_port(&packets, upper_tcp.port());
    assert_eq!(tcp_flags(tcp[0]), 0x002, "the first TCP packet is the SYN");
    assert_eq!(tcp_flags(tcp[1]), 0x012, "then the SYN-ACK");
    assert!(
        tcp.iter().any(|p| tcp_flags(p) & 0x001 != 0),
        "a FIN closes it"
    );
    let udp = on_port(&packets, upper_udp.port());
    assert_eq!(udp.len(), 2, "one datagram each way");
    assert_eq!(udp[0]["transport"]["length"], 8 + "over udp".len());
    let pings = on_port(&packets, udping.addr().port());
    assert_eq!(pings.len(), 6, "three probes and three replies");
    let web_packets = on_port(&packets, web.addr().port());
    assert!(web_packets.len() >= 6, "{web_packets:?}");
}

#[test]
fn chat_session_answers_the_labs_questions() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let chat_scratch = chat_support::Scratch::new();
    let server = chat_support::ChatServer::start(&chat_scratch, &[]);
    let port = server.addr.port();
    let file = scratch.path("chat.pcapng");
    let capture = Capture::start(Program::Netkit, &file, &format!("tcp port {port}"));
    let mut alice = chat_support::Member::register(&server.addr(), "alice", "alice secret pw");
    alice.send("#ls");
    alice.expect("* online (1): alice");
    assert!(alice.quit().success());
    capture.finish();

    let packets = read_json(&file, &["tcp", "port", &port.to_string()]);
    let syn = packets
        .iter()
        .find(|p| tcp_flags(p) == 0x002)
        .expect("a SYN");
    let synack = packets
        .iter()
        .find(|p| tcp_flags(p) == 0x012)
        .expect("a SYN-ACK");
    let tshark = support::tshark(&file, Some("tcp.flags.syn == 1"));
    assert_eq!(tshark.len(), 2, "{tshark:?}");
    assert_eq!(
        syn["transport"]["seq"].to_string(),
        tshark[0].seq,
        "the SYN's ISN"
    );
    assert_eq!(
        synack["transport"]["seq"].to_string(),
        tshark[1].seq,
        "SYN-ACK seq"
    );
    assert_eq!(
        synack["transport"]["ack"].to_string(),
        tshark[1].ack,
        "SYN-ACK ack"
    );
    assert_eq!(
        synack["transport"]["ack"].as_u64().unwrap(),
        (syn["transport"]["seq"].as_u64().unwrap() + 1) % (1 << 32),
        "the SYN-ACK acknowledges ISN + 1"
    );
}

#[test]
fn bad_filters_are_usage_errors_naming_the_word() {
    let out = netkit()
        .args(["capture", "-r", "/nonexistent", "tcp", "port", "http"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"http\""), "{stderr}");
    let out = netkit()
        .args(["capture", "-r", "/nonexistent", "tcp", "and", "(udp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn interfaces_are_listed() {
    let out = netkit().args(["capture", "-D"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.ends_with(".lo")), "{text}");
}

#[test]
fn count_snaplen_and_any_interface() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let file = scratch.path("any.pcapng");
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut command = netkit();
    command
        .args(["capture", "-i", "any", "-c", "3", "-s", "40", "-w"])
        .arg(&file)
        .args(["udp", "dst", "port", &port.to_string()]);
    let (mut child, stderr) = support::spawn_listening(command, "any");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // -c 3 ends the capture by itself once three datagrams are in.
    let status = loop {
        sender.send_to(&[b'x'; 100], ("127.0.0.1", port)).unwrap();
        if let Some(status) =
            testkit::wait_timeout(&mut child, std::time::Duration::from_millis(200))
        {
            break status;
        }
    };
    assert!(status.success(), "{status}");
    let stats: Vec<String> = stderr.iter().collect();
    assert!(
        stats.contains(&"3 packets captured".to_owned()),
        "{stats:?}"
    );
    let packets = read_json(&file, &[]);
    assert_eq!(packets.len(), 3);
    for packet in &packets {
        // Raw IP on `any`: 20 + 8 + 100 bytes on the wire, 40 kept.
        assert_eq!(packet["link"]["type"], "raw");
        assert_eq!(packet["length"], 128);
        assert_eq!(packet["captured"], 40);
        assert_eq!(packet["transport"]["dst_port"], port);
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-T", "fields", "-e", "frame.cap_len", "-e", "frame.len"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "40\t128\n".repeat(3));
}

#[test]
fn without_cap_net_raw_it_says_what_to_run() {
    if !support::ready() || !testkit::require("setpriv") {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .args(["capture", "-i", "lo", "-c", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(stderr.contains("setcap cap_net_raw+ep"), "{stderr}");
}

#[test]
fn demo_reports_the_handshakes_it_captured() {
    if !support::ready() || !testkit::require("setpriv") {
        return;
    }
    let out = netkit().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("capture "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" ok    captured the chat login"), "{line}");
    assert!(line.contains("SYN-ACK seq"), "{line}");
    // The ack of the SYN-ACK is the SYN's sequence number + 1.
    let number_after = |word: &str| -> u64 {
        let rest = &line[line.find(word).unwrap() + word.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        number_after(" ack "),
        (number_after("SYN seq ") + 1) % (1 << 32)
    );

    let out = Command::new("setpriv")
        .args(["--inh-caps=-net_raw", "--bounding-set=-net_raw"])
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("capture "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" ok    skipped: ") && line.contains("setcap cap_net_raw+ep"),
        "{line}"
    );
}
