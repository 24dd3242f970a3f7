//! `netkit capture -r` on a pcap that tcpdump wrote: the decoding equals
//! tshark's, and every filter keeps exactly the packets tcpdump keeps.

#[path = "capture/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread;

use support::{Capture, Program, Scratch, netkit, read_json};

/// Ports of the traffic the file holds.
struct Ports {
    tcp4: u16,
    udp4: u16,
    tcp6: u16,
    udp6: u16,
}

/// TCP and UDP over IPv4 and IPv6 plus ICMP and ICMPv6 echoes on loopback,
/// written by tcpdump.
fn traffic(scratch: &Scratch) -> (std::path::PathBuf, Ports) {
    let tcp4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp6 = TcpListener::bind("[::1]:0").unwrap();
    let udp4 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp6 = UdpSocket::bind("[::1]:0").unwrap();
    let ports = Ports {
        tcp4: tcp4.local_addr().unwrap().port(),
        udp4: udp4.local_addr().unwrap().port(),
        tcp6: tcp6.local_addr().unwrap().port(),
        udp6: udp6.local_addr().unwrap().port(),
    };
    let file = scratch.path("tcpdump.pcap");
    // Only echoes: an ICMP error from another test would carry a second
    // IP header that tshark reports as a second address.
    let filter = format!(
        "port {} or port {} or port {} or port {} or icmp[0] == 8 or icmp[0] == 0 \
         or (icmp6 and (ip6[40] == 128 or ip6[40] == 129))",
        ports.tcp4, ports.udp4, ports.tcp6, ports.udp6
    );
    let capture = Capture::start(Program::Tcpdump, &file, &filter);
    for listener in [&tcp4, &tcp6] {
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"hello over tcp").unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).unwrap();
            reply
        });
        let (mut served, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 14];
        served.read_exact(&mut buffer).unwrap();
        served.write_all(b"HELLO OVER TCP").unwrap();
        drop(served);
        assert_eq!(client.join().unwrap(), b"HELLO OVER TCP");
    }
    for socket in [&udp4, &udp6] {
        let addr = socket.local_addr().unwrap();
        let client = UdpSocket::bind(if addr.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        })
        .unwrap();
        client.send_to(b"one datagram", addr).unwrap();
        let mut buffer = [0u8; 64];
        let (len, from) = socket.recv_from(&mut buffer).unwrap();
        socket.send_to(&buffer[..len], from).unwrap();
        client.recv_from(&mut buffer).unwrap();
    }
    for host in ["127.0.0.1", "::1"] {
        let out = netkit()
            .args(["ping", "-c", "2", "-i", "0.2", host])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    capture.finish();
    (file, ports)
}

#[test]
fn tcpdump_pcap_decodes_as_tshark_sees_it() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let (file, ports) = traffic(&scratch);
    let packets = support::assert_same_as_tshark(&file);
    for port in [ports.tcp4, ports.tcp6] {
        let tcp = support::on_port(&packets, port);
        assert!(tcp.len() >= 8, "{tcp:?}");
    }
    let icmp: Vec<_> = packets
        .iter()
        .filter(|p| matches!(p["transport"]["type"].as_str(), Some("icmp" | "icmpv6")))
        .collect();
    assert!(icmp.len() >= 8, "two echoes and replies each way: {icmp:?}");
    // tcpdump's own lines and ours agree word for word on our traffic.
    let expr = format!("port {} or port {}", ports.tcp4, ports.udp4);
    let ours = support::read_text(&file, &[expr.as_str()]);
    let theirs = tcpdump_lines(&file, &expr, &[]);
    assert_eq!(ours, theirs);
    let ours = support::read_text(&file, &["-X", expr.as_str()]);
    let theirs = tcpdump_lines(&file, &expr, &["-X"]);
    assert_eq!(ours, theirs, "the -X dump");
}

/// `tcpdump -n -r FILE [flags] EXPR`, in UTC.
fn tcpdump_lines(file: &Path, expr: &str, flags: &[&str]) -> Vec<String> {
    let out = Command::new("tcpdump")
        .env("TZ", "UTC")
        .args(["-n", "-r"])
        .arg(file)
        .args(flags)
        .arg(expr)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn filters_keep_what_tcpdump_keeps() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let (file, ports) = traffic(&scratch);
    let Ports {
        tcp4,
        udp4,
        tcp6,
        udp6,
    } = ports;
    let (low, high) = (tcp4.min(udp4), tcp4.max(udp4));
    let expressions = [
        "tcp".to_owned(),
        "udp".to_owned(),
        "icmp".to_owned(),
        "icmp6".to_owned(),
        "ip".to_owned(),
        "ip6".to_owned(),
        "host 127.0.0.1".to_owned(),
        "host ::1".to_owned(),
        "src host 127.0.0.1".to_owned(),
        "dst host ::1".to_owned(),
        "net 127.0.0.0/8".to_owned(),
        "net 10.0.0.0/8".to_owned(),
        "net ::/0".to_owned(),
        "ip6 net ::1/128".to_owned(),
        format!("port {tcp4}"),
        format!("src port {tcp4}"),
        format!("dst port {udp6}"),
        format!("tcp port {tcp6}"),
        format!("udp port {tcp6}"),
        format!("udp port {udp4} or {udp6}"),
        format!("portrange {low}-{high}"),
        format!("tcp portrange {low}-{high}"),
        "not tcp".to_owned(),
        "! udp && ! icmp".to_owned(),
        format!("tcp and not port {tcp4}"),
        "(udp or icmp) and host 127.0.0.1".to_owned(),
        "udp or icmp and host 127.0.0.1".to_owned(),
        format!("src or dst port {udp4}"),
        format!("src and dst host ::1 and port {tcp6}"),
        format!("ip and (tcp or udp) and not (port {tcp4} or port {udp4})"),
        "arp".to_owned(),
    ];
    let all = read_json(&file, &[]);
    for expr in &expressions {
        let theirs: Vec<String> = tcpdump_lines(&file, expr, &["-tt"])
            .iter()
            .map(|line| line.split(' ').next().unwrap().to_owned())
            .collect();
        let ours: Vec<String> = read_json(&file, &[expr.as_str()])
            .iter()
            .map(|packet| {
                let time = packet["time_epoch"].as_str().unwrap();
                time[..time.len() - 3].to_owned()
            })
            .collect();
        assert_eq!(ours, theirs, "filter {expr:?}");
        assert!(ours.len() <= all.len());
    }
}

#[test]
fn icmp_errors_read_as_tcpdump_prints_them() {
    if !support::ready() {
        return;
    }
    let scratch = Scratch::new();
    let file = scratch.path("unreachable.pcap");
    let capture = Capture::start(Program::Tcpdump, &file, "icmp[0] == 3");
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"anyone there?", closed_addr).unwrap();
    capture.finish();
    let ours = support::read_text(&file, &[]);
    let theirs = tcpdump_lines(&file, "", &[]);
    assert_eq!(ours, theirs);
    let wanted = format!("ICMP 127.0.0.1 udp port {} unreachable", closed_addr.port());
    assert!(ours.iter().any(|line| line.contains(&wanted)), "{ours:?}");
}
