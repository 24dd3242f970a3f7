//! STAMP against an implementation we did not write: scapy's RFC 8762
//! packet classes (`scapy.contrib.stamp`) as session-sender against
//! `netkit udping serve --mode stamp`, and as a stateful session-reflector
//! (holding each packet, losing one probe on the way in and one reply on the
//! way back) against `netkit udping ping --mode stamp`.

use std::process::{Command, Output};

use serde_json::Value;
use testkit::Server;

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether python3 and scapy (with its STAMP layer) are here; fails under CI.
fn have_scapy() -> bool {
    if !testkit::require("python3") {
        return false;
    }
    let found = Command::new("python3")
        .args(["-c", "import scapy.contrib.stamp"])
        .output()
        .is_ok_and(|out| out.status.success());
    found || testkit::skip_or_fail("python3 module scapy is missing (see .ci/requirements.txt)")
}

/// A session-sender built from scapy's classes: four probes (the last
/// padded with an RFC 8972 TLV area), each reply checked field by field.
const SCAPY_SENDER: &str = r#"
import socket, sys, time
from scapy.contrib.stamp import (ErrorEstimate,
    STAMPSessionReflectorTestUnauthenticated as Reflector,
    STAMPSessionSenderTestUnauthenticated as Sender)
from scapy.layers.ntp import _NTP_BASETIME as NTP_EPOCH
host, port = sys.argv[1].rsplit(":", 1)
stateful = sys.argv[2] == "stateful"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# Not a test packet: the reflector must ignore it.
s.sendto(b"\x00" * 20, (host, int(port)))
s.settimeout(0.3)
try:
    s.recvfrom(2048)
    sys.exit("a 20-byte datagram was answered")
except socket.timeout:
    pass
s.settimeout(5)
for i in range(4):
    seq = 1000 + i
    sent = time.time() + NTP_EPOCH
    probe = bytes(Sender(seq=seq, ts=sent, ssid=0,
                         err_estimate=ErrorEstimate(S=1, Z=0, scale=5, multiplier=7)))
    assert len(probe) == 44, len(probe)
    if i == 3:
        probe += bytes(range(1, 57))
    s.sendto(probe, (host, int(port)))
    data, _ = s.recvfrom(2048)
    now = time.time() + NTP_EPOCH
    assert len(data) == len(probe), (len(data), len(probe))
    r = Reflector(data[:44])
    assert r.seq == (i if stateful else seq), r.seq
    assert r.seq_sender == seq, r.seq_sender
    assert data[28:36] == probe[4:12], "sender timestamp copied"
    e = r.err_estimate_sender
    assert (e.S, e.Z, e.scale, e.multiplier) == (1, 0, 5, 7), e
    e = r.err_estimate
    assert e.Z == 0 and e.multiplier > 0, e
    assert sent - 1 <= float(r.ts_rx) <= float(r.ts) <= now + 1, (sent, r.ts_rx, r.ts, now)
    assert r.ttl_sender == 64, r.ttl_sender
    assert (r.ssid, r.mbz1, r.mbz2) == (0, 0, 0)
    assert data[44:] == probe[44:], "octets past the base packet are reflected as sent"
    print("seq=%d reflector_seq=%d" % (r.seq_sender, r.seq))
"#;

#[test]
fn scapy_sender_against_netkit_reflector() {
    if !have_scapy() {
        return;
    }
    for (flags, state) in [
        (&["--mode", "stamp"][..], "stateless"),
        (&["--mode", "stamp", "--stateful"], "stateful"),
    ] {
        let mut command = netkit();
        command
            .args(["udping", "serve", "--bind", "127.0.0.1:0"])
            .args(flags);
        let server = Server::start(command, 1);
        let out = testkit::python(SCAPY_SENDER, &[&server.addr().to_string(), state], b"");
        assert!(
            out.status.success(),
            "{state}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let expected: Vec<String> = (0..4)
            .map(|i| {
                let reflector = if state == "stateful" { i } else { 1000 + i };
                format!("seq={} reflector_seq={reflector}", 1000 + i)
            })
            .collect();
        assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>(), expected);
    }
}

/// A stateful session-reflector built from scapy's classes. It holds each
/// packet 200 ms between its receive and transmit timestamps, never answers
/// probe 2 (lost on the way in) and counts but never sends its reply to
/// probe 4 (lost on the way back).
const SCAPY_REFLECTOR: &str = r#"
import socket, time
from scapy.contrib.stamp import (ErrorEstimate,
    STAMPSessionReflectorTestUnauthenticated as Reflector,
    STAMPSessionSenderTestUnauthenticated as Sender)
from scapy.layers.ntp import _NTP_BASETIME as NTP_EPOCH
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
counts = {}
while True:
    data, peer = s.recvfrom(2048)
    received = time.time() + NTP_EPOCH
    probe = Sender(data[:44])
    if probe.seq == 2:
        continue
    time.sleep(0.2)
    count = counts.get(peer, 0)
    counts[peer] = count + 1
    reply = bytes(Reflector(seq=count, ts=time.time() + NTP_EPOCH, ssid=0,
                            err_estimate=ErrorEstimate(S=0, Z=0, scale=22, multiplier=1),
                            ts_rx=received, seq_sender=probe.seq, ts_sender=probe.ts,
                            err_estimate_sender=probe.err_estimate, ttl_sender=63))
    if probe.seq == 4:
        continue
    s.sendto(reply + data[len(reply):], peer)
"#;

fn stamp_ping(server: &Server, extra: &[&str]) -> Output {
    netkit()
        .args(["udping", "ping", "--mode", "stamp", "-c", "6", "-i", "0.25"])
        .args(["-W", "2"])
        .args(extra)
        .arg(server.addr().to_string())
        .output()
        .expect("netkit runs")
}

#[test]
fn netkit_sender_against_scapy_reflector() {
    if !have_scapy() {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", SCAPY_REFLECTOR]);
    let server = Server::start(python, 1);

    let out = stamp_ping(&server, &["--json"]);
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    let report = serde_json::json!(lines);
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{report}");
    assert_eq!(summary["received"], 4, "{report}");
    let loss = &summary["stamp_loss"];
    assert_eq!(loss["reflector_stateful"], true, "{report}");
    assert_eq!(
        (&loss["forward"], &loss["backward"]),
        (&1.into(), &1.into())
    );
    assert_eq!(loss["undetermined"], 0);
    let replies: Vec<&Value> = lines
        .iter()
        .filter(|line| line["type"] == "reply" && line["status"] == "reply")
        .collect();
    let lost: Vec<&Value> = lines
        .iter()
        .filter(|line| line["type"] == "no_reply")
        .map(|line| &line["seq"])
        .collect();
    assert_eq!(lost, [2, 4], "{report}");
    let pairs: Vec<(u64, u64)> = replies
        .iter()
        .map(|p| {
            (
                p["seq"].as_u64().unwrap(),
                p["reflector_seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, vec![(0, 0), (1, 1), (3, 2), (5, 4)]);
    for probe in replies {
        assert_eq!(probe["ttl"], 63);
        // The reflector's 200 ms hold is read from its timestamps and taken
        // off the round trip.
        let residence = probe["residence_ms"].as_f64().unwrap();
        let rtt = probe["rtt_ms"].as_f64().unwrap();
        assert!(residence >= 199.0, "{probe}");
        assert!(rtt < 200.0, "net RTT includes the residence: {probe}");
    }

    let out = stamp_ping(&server, &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "loss by direction: forward 1, backward 1, undetermined 0 (reflector stateful)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("(net of reflector residence)"), "{stdout}");
}
