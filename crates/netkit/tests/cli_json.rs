//! Every client's JSON output and every server's `--log-format json` log,
//! through the binary against real servers, each line checked by Python's
//! json module against the one documented style (snake_case keys, RFC 3339
//! times, float milliseconds in `*_ms`).

#[path = "cli/support.rs"]
mod support;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use testkit::Server;

const WAIT: Duration = Duration::from_secs(20);

/// A server whose stderr (its event log) goes to a file, read once it has
/// stopped.
struct Logged {
    server: Server,
    log: std::path::PathBuf,
}

impl Logged {
    fn start(mut command: Command, listeners: usize, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        command.stderr(File::create(&log).unwrap());
        Self {
            server: Server::start(command, listeners),
            log,
        }
    }

    /// SIGTERM, wait for the exit, and the event log's lines.
    fn stop(mut self) -> String {
        self.server.signal("TERM");
        let status = self.server.wait_timeout(WAIT).expect("the server exits");
        assert!(status.success(), "{status:?}");
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// The event log of a server stopped by SIGTERM, as JSON: at least the
/// shutdown, with its grace period in float milliseconds.
fn check_event_log(log: &str) -> Vec<Value> {
    let events = json_lines(log, &[]);
    let shutdown = events
        .iter()
        .find(|event| event["message"] == "SIGTERM received: shutting down")
        .unwrap_or_else(|| panic!("no shutdown event in {log}"));
    assert_eq!(shutdown["level"], "INFO");
    assert!(shutdown["grace_ms"].as_f64().unwrap() > 0.0);
    assert!(shutdown["timestamp"].is_string());
    events
}

fn by_type<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["type"] == kind).collect()
}

fn run_stdin(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> std::process::Output {
    let mut child = netkit()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "netkit {args:?}: {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[test]
fn upper_send_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = netkit();
    command.args([
        "upper",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    let server = Logged::start(command, 2, dir.path(), "upper");
    let addrs = server.server.addrs().to_vec();
    assert_eq!(addrs[0], addrs[1], "--bind puts TCP and UDP on one port");
    let addr = addrs[0].to_string();

    let out = run_ok(&["upper", "send", "--json", &addr, "hello, json"]);
    let replies = json_lines(&text(&out.stdout), &[]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["type"], "reply");
    assert_eq!(replies[0]["protocol"], "tcp");
    assert_eq!(replies[0]["reply"], "HELLO, JSON");
    assert_eq!(replies[0]["text"], "hello, json");

    for protocol in ["tcp", "udp"] {
        let mut args = vec!["upper", "send", "--json", &addr];
        if protocol == "udp" {
            args.push("--udp");
        }
        let out = run_stdin(&args, &[], b"one\ntwo\n");
        let replies = json_lines(&text(&out.stdout), &[]);
        let got: Vec<_> = replies.iter().map(|r| r["reply"].clone()).collect();
        assert_eq!(got, ["ONE", "TWO"], "{protocol}");
        assert!(replies.iter().all(|r| r["protocol"] == protocol));
    }
    check_event_log(&server.stop());
}

#[test]
fn udping_heartbeat_and_ping_with_the_monitor_logging_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = netkit();
    command.args([
        "udping",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--heartbeat",
        "--interval",
        "100ms",
        "--log-format",
        "json",
    ]);
    let server = Logged::start(command, 1, dir.path(), "udping");
    let addr = server.server.addr().to_string();

    let out = run_ok(&[
        "udping",
        "heartbeat",
        "--json",
        "-c",
        "3",
        "-i",
        "50ms",
        &addr,
    ]);
    let lines = json_lines(&text(&out.stdout), &[]);
    assert_eq!(lines[0]["type"], "start");
    assert_eq!(lines[0]["interval_ms"], 50.0);
    let beats = by_type(&lines, "heartbeat");
    let seqs: Vec<_> = beats.iter().map(|b| b["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(beats.iter().all(|b| b["reachable"] == true));
    assert_eq!(lines.last().unwrap()["type"], "summary");
    assert_eq!(lines.last().unwrap()["sent"], 3);

    // A ping to a heartbeat server still gets replies (the lab's echo).
    let out = run_ok(&["udping", "ping", "--json", "-c", "3", "-i", "0.05", &addr]);
    let lines = json_lines(&text(&out.stdout), &[]);
    let summary = by_type(&lines, "summary")[0];
    assert_eq!(summary["sent"], 3);
    assert!(summary["elapsed_ms"].as_f64().unwrap() > 0.0);

    let events = check_event_log(&server.stop());
    // The monitor's events are in the same JSON log.
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("started sending heartbeats"))),
        "no heartbeat client event in {events:?}"
    );
}

#[test]
fn proxy_purge_and_access_log() {
    if !testkit::require("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("page.txt"), "cached\n").unwrap();
    let mut web = netkit();
    web.args(["web", "serve", "--bind", "127.0.0.1:0", "--quiet"])
        .arg(&site)
        .args(["--cache-control", "max-age=600"]);
    let web = Server::start(web, 1);
    let cache = dir.path().join("cache");
    let mut proxy = netkit();
    proxy
        .args([
            "proxy",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--allow-localhost-origins",
        ])
        .args(["--log-format", "json", "--cache-dir"])
        .arg(&cache);
    let proxy = Logged::start(proxy, 1, dir.path(), "proxy");
    let url = format!("http://{}/page.txt", web.addr());
    for _ in 0..2 {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-x",
                &format!("http://{}", proxy.server.addr()),
                &url,
            ])
            .output()
            .unwrap();
        assert_eq!(text(&out.stdout), "cached\n");
    }
    // The access log is stdout: one JSON object per request.
    let mut access = Vec::new();
    let deadline = Instant::now() + WAIT;
    while access.len() < 2 && Instant::now() < deadline {
        if let Some(line) = proxy.server.next_line(Duration::from_millis(200)) {
            access.push(line);
        }
    }
    let access = json_lines(&access.join("\n"), &[]);
    let caches: Vec<_> = access.iter().map(|a| a["cache"].clone()).collect();
    assert_eq!(caches, ["TCP_MISS", "TCP_HIT"]);
    assert!(access.iter().all(|a| a["status"] == 200 && a["url"] == url));
    assert!(access[0]["elapsed_ms"].is_f64());

    let proxy_addr = proxy.server.addr().to_string();
    let out = run_ok(&["proxy", "purge", "--json", "--proxy", &proxy_addr, &url]);
    let purged = json_lines(&text(&out.stdout), &[]);
    assert_eq!(purged[0]["url"], url);
    assert_eq!(purged[0]["purged"], 1);
    let out = run_ok(&["proxy", "purge", "--json", "--proxy", &proxy_addr, &url]);
    assert_eq!(json_lines(&text(&out.stdout), &[])[0]["purged"], 0);
    check_event_log(&proxy.stop());
}

#[test]
fn chat_join_one_object_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = netkit();
    command
        .args([
            "chat",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--db")
        .arg(dir.path().join("chat.sqlite3"));
    let server = Logged::start(command, 1, dir.path(), "chat");
    let addr = server.server.addr().to_string();
    let out = run_stdin(
        &[
            "chat",
            "join",
            "--json",
            "--server",
            &addr,
            "--user",
            "alice",
            "--register",
        ],
        &[("NETKIT_CHAT_PASSWORD", "correct horse battery")],
        b"#join #json\nhello, room\n#members\n#bogus\n#quit\n",
    );
    let events = json_lines(&text(&out.stdout), &[]);
    assert_eq!(events[0]["type"], "connected");
    assert_eq!(events[0]["user"], "alice");
    let joined = by_type(&events, "room_joined");
    assert_eq!(joined[0]["room"], "#json");
    assert_eq!(joined[0]["created"], true);
    let members = by_type(&events, "members");
    assert!(
        members
            .iter()
            .any(|m| m["room"] == "#json" && m["names"] == serde_json::json!(["alice"])),
        "{events:?}"
    );
    let notices = by_type(&events, "notice");
    assert!(
        notices
            .iter()
            .any(|n| n["text"].as_str().unwrap().contains("#bogus")),
        "{events:?}"
    );
    let events = check_event_log(&server.stop());
    assert!(events.iter().all(|e| e["target"].is_string()));
}

#[test]
fn mail_send_and_sink() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = netkit();
    command
        .args(["mail", "sink", "--bind", "127.0.0.1:0", "--web", "off"])
        .args(["--log-format", "json", "--maildir"])
        .arg(dir.path().join("maildir"));
    let sink = Logged::start(command, 1, dir.path(), "sink");
    let addr = sink.server.addr().to_string();
    let out = netkit()
        .args([
            "mail",
            "send",
            "--json",
            "--server",
            &addr,
            "--insecure",
            "--from",
            "me@example.org",
            "--to",
            "you@example.org",
            "--body",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = json_lines(&text(&out.stdout), &[]);
    assert_eq!(report[0]["exit_code"], 0);
    check_event_log(&sink.stop());
}

#[test]
fn web_get_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = netkit();
    command.args([
        "web",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    let server = Logged::start(command, 1, dir.path(), "web");
    let url = format!("http://{}/", server.server.addr());
    let out = run_ok(&["web", "get", "--json-output", &url]);
    // Header names come from the server, so their spelling is not ours.
    let exchange = json_lines(&text(&out.stdout), &["headers"]);
    assert_eq!(exchange.len(), 1);
    assert!(exchange[0]["timings_ms"]["total"].as_f64().unwrap() > 0.0);
    let access = server
        .server
        .next_line(WAIT)
        .expect("an access log line for the request");
    let access = json_lines(&access, &[]);
    assert_eq!(access[0]["status"], 200);
    check_event_log(&server.stop());
}

#[test]
fn ping_replies_and_summary() {
    // An ICMP socket needs root or net.ipv4.ping_group_range.
    let probe = netkit()
        .args(["ping", "-c", "1", "-W", "5", "127.0.0.1"])
        .output()
        .unwrap();
    if !probe.status.success() && !testkit::require_root() {
        return;
    }
    let out = run_ok(&["ping", "--json", "-c", "2", "-i", "0.1", "127.0.0.1"]);
    let lines = json_lines(&text(&out.stdout), &[]);
    assert_eq!(by_type(&lines, "reply").len(), 2);
    assert_eq!(by_type(&lines, "summary")[0]["received"], 2);
}

#[test]
fn demo_one_object_per_system() {
    let out = netkit().args(["demo", "--json"]).output().unwrap();
    let lines = json_lines(&text(&out.stdout), &[]);
    let systems: Vec<_> = by_type(&lines, "system")
        .iter()
        .map(|s| s["system"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        systems,
        [
            "upper",
            "ping",
            "udping",
            "heartbeat",
            "mail",
            "web",
            "proxy",
            "chat",
            "capture"
        ]
    );
    let summary = by_type(&lines, "summary")[0];
    assert_eq!(summary["systems"], 9);
    // Without root, ping and capture may fail for want of a raw socket.
    if out.status.success() || testkit::require_root() {
        assert!(out.status.success(), "{lines:?}");
        assert_eq!(summary["failed"], 0);
    }
}

/// One UDP datagram on Ethernet, in a pcap file Python writes.
const PCAP: &str = r#"
import struct, sys
payload = b"Ping 1 1764921600.5"
udp = struct.pack("!HHHH", 40000, 12000, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
total = 0
for i in range(0, 20, 2):
    total += (ip[i] << 8) | ip[i + 1]
while total >> 16:
    total = (total & 0xffff) + (total >> 16)
ip = ip[:10] + struct.pack("!H", ~total & 0xffff) + ip[12:]
frame = b"\0" * 12 + b"\x08\x00" + ip + udp
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    out.write(struct.pack("<IIII", 1764921600, 250000, len(frame), len(frame)))
    out.write(frame)
"#;

#[test]
fn capture_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.pcap");
    let made = testkit::python(PCAP, &[file.to_str().unwrap()], b"");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let out = run_ok(&["capture", "-r", file.to_str().unwrap(), "--json"]);
    // `app` gives the application's own fields as they are on the wire
    // (here the lab pinger's `time`, a string of the datagram).
    let packets = json_lines(&text(&out.stdout), &["app"]);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0]["app"]["time"], "1764921600.5");
    assert_eq!(packets[0]["time"], "2025-12-05T08:00:00.25Z");
    assert_eq!(packets[0]["time_epoch"], "1764921600.250000000");
    assert_eq!(packets[0]["transport"]["dst_port"], 12000);
}
