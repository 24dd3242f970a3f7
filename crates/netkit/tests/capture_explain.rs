//! `--explain` and `--follow` on traffic netkit captured itself: the lab's
//! questions about a chat session, passwords masked, STAMP and the lab
//! pinger recognised, a TLS ClientHello's SNI, a stream followed in order.

#[path = "capture/support.rs"]
mod support;

#[path = "chat/support.rs"]
mod chat_support;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use support::{Capture, Program, Scratch, netkit, read_json, read_text};
use testkit::Server;

const PASSWORD: &str = "capture-test secret";

#[test]
fn chat_session_explained_with_the_password_masked() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let chat_scratch = chat_support::Scratch::new();
    let server = chat_support::ChatServer::start(&chat_scratch, &[]);
    let port = server.addr.port().to_string();
    let file = scratch.path("chat.pcapng");
    let capture = Capture::start(Program::Netkit, &file, &format!("tcp port {port}"));
    let mut alice = chat_support::Member::register(&server.addr(), "alice", PASSWORD);
    alice.send("hello from the capture test");
    alice.send("#ls");
    alice.expect("* online (1): alice");
    assert!(alice.quit().success());
    capture.finish();

    let filter = ["tcp", "port", port.as_str()];
    let explained = read_text(&file, &[&["--explain"][..], &filter[..]].concat()).join("\n");
    // The lab's questions, answered as tshark answers them.
    let syns = support::tshark(&file, Some("tcp.flags.syn == 1"));
    assert_eq!(syns.len(), 2, "{syns:?}");
    assert!(
        explained.contains(&format!(
            "SYN from 127.0.0.1:{}, initial sequence number {}",
            syns[0].src_port, syns[0].seq
        )),
        "{explained}"
    );
    assert!(
        explained.contains(&format!(
            "SYN-ACK from {}:{port}, initial sequence number {}, acknowledging {} (the client's ISN + 1)",
            syns[1].src, syns[1].seq, syns[1].ack
        )),
        "{explained}"
    );
    assert!(explained.contains("three-way handshake 3/3"), "{explained}");
    assert!(explained.contains("FIN: "), "{explained}");
    assert!(explained.contains("TCP header (40 bytes)"), "{explained}");
    assert!(
        explained.contains("    register "),
        "the register frame is named: {explained}"
    );
    assert!(
        explained.contains("\"password\":\"********\""),
        "{explained}"
    );

    // No view netkit prints carries the password; the file itself does,
    // as the wire did.
    let json = read_json(&file, &filter);
    let followed = read_text(&file, &["--follow", "tcp", &server.addr()]).join("\n");
    assert!(
        followed.contains("hello from the capture test"),
        "{followed}"
    );
    for shown in [
        &explained,
        &followed,
        &serde_json::to_string(&json).unwrap(),
    ] {
        assert!(!shown.contains(PASSWORD));
    }
    let raw = std::fs::read(&file).unwrap();
    assert!(
        raw.windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );
}

#[test]
fn udping_text_and_stamp_are_recognised() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let start = |mode: &str| {
        let mut command = netkit();
        command.args(["udping", "serve", "--bind", "127.0.0.1:0", "--mode", mode]);
        Server::start(command, 1)
    };
    let (text, stamp) = (start("text"), start("stamp"));
    let file = scratch.path("udping.pcapng");
    let filter = format!(
        "udp port {} or udp port {}",
        text.addr().port(),
        stamp.addr().port()
    );
    let capture = Capture::start(Program::Netkit, &file, &filter);
    for (server, mode) in [(&text, "text"), (&stamp, "stamp")] {
        let out = netkit()
            .args([
                "udping",
                "ping",
                "-c",
                "2",
                "-i",
                "50ms",
                "--mode",
                mode,
                &server.addr().to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    capture.finish();
    let packets = read_json(&file, &[filter.as_str()]);
    assert_eq!(packets.len(), 8);
    let protocols: Vec<&str> = packets
        .iter()
        .map(|p| p["app"]["protocol"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(
        protocols,
        [
            "udping", "udping", "udping", "udping", "stamp", "stamp", "stamp", "stamp"
        ]
    );
    assert_eq!(packets[0]["app"]["word"], "Ping");
    assert_eq!(packets[1]["app"]["word"], "PING");
    assert_eq!(packets[4]["app"]["role"], "sender");
    assert_eq!(packets[5]["app"]["role"], "reflector");
    assert_eq!(
        packets[5]["app"]["sender_sequence"],
        packets[4]["app"]["sequence"]
    );
    let explained = read_text(&file, &["--explain", filter.as_str()]).join("\n");
    assert!(explained.contains("UDP header: four fields of 2 bytes each (8 bytes)"));
    assert!(
        explained.contains("STAMP reflector packet (RFC 8762)"),
        "{explained}"
    );
}

#[test]
fn tls_client_hello_shows_its_server_name() {
    if !support::ready() || !testkit::require("openssl") {
        return;
    }
    let scratch = Scratch::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let file = scratch.path("tls.pcapng");
    let capture = Capture::start(Program::Netkit, &file, &format!("tcp port {}", addr.port()));
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Read the ClientHello, then hang up: no handshake is needed.
        let mut buffer = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut buffer);
    });
    let _ = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "lab.example",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    accept.join().unwrap();
    capture.finish();
    let explained = read_text(&file, &["--explain"]).join("\n");
    assert!(
        explained.contains("TLS record (not decrypted)"),
        "{explained}"
    );
    assert!(explained.contains("1 (ClientHello)"), "{explained}");
    assert!(
        explained.contains("server name (SNI)       lab.example")
            || explained.contains("lab.example"),
        "{explained}"
    );
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_server_name",
            "-Y",
            "tls.handshake.type == 1",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lab.example");
    let json = read_json(&file, &[]);
    let hello = json
        .iter()
        .find(|p| p["app"]["protocol"] == "tls")
        .expect("a TLS record");
    assert_eq!(hello["app"]["server_name"], "lab.example");
    assert_eq!(hello["app"]["handshake_type"], 1);
}

#[test]
fn follow_prints_the_stream_as_tshark_reassembles_it() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let mut command = netkit();
    command.args(["upper", "serve", "--tcp", "127.0.0.1:0"]);
    let upper = Server::start(command, 1);
    let file = scratch.path("upper.pcapng");
    let capture = Capture::start(
        Program::Netkit,
        &file,
        &format!("tcp port {}", upper.addr().port()),
    );
    let mut child = netkit()
        .args(["upper", "send", &upper.addr().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"first line\nsecond line\n").unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());
    capture.finish();

    let ours = read_text(&file, &["--follow", "tcp", &upper.addr().to_string()]).join("\n");
    // tshark's payloads, one segment a line, retransmissions left out.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-T", "fields", "-e", "tcp.srcport", "-e", "tcp.payload"])
        .args(["-Y", "tcp.len > 0 and not tcp.analysis.retransmission"])
        .output()
        .unwrap();
    let mut expected = String::new();
    let mut last = String::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (port, hex) = line.split_once('\t').unwrap();
        if port != last {
            expected.push_str(&format!("\n===== 127.0.0.1:{port} =====\n"));
            last = port.to_owned();
        }
        let hex = hex.replace(':', "");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        expected.push_str(&String::from_utf8(bytes).unwrap());
    }
    // Compare the payload text and which side sent it, ignoring the
    // header's second endpoint.
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| match line.strip_prefix("===== ") {
                Some(rest) => format!("===== {}", rest.split(' ').next().unwrap()),
                None => line.to_owned(),
            })
            .filter(|line| !line.is_empty())
            .collect()
    };
    assert_eq!(strip(&ours), strip(&expected));
    assert!(
        ours.contains("FIRST LINE") && ours.contains("second line"),
        "{ours}"
    );
}
