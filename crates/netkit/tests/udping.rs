//! `netkit udping` end to end through the binary: against python3 clients
//! and servers written like the lab's, and against itself with seeded
//! impairment, where the client's counts must equal the server's decisions.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::Server;
use udping::{Expected, Impairer, Impairment};

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server log file, removed when the test ends.
struct Log(PathBuf);

impl Log {
    fn new(name: &str) -> Log {
        let path = std::env::temp_dir().join(format!(
            "netkit-udping-{name}-{}-{:?}.log",
            std::process::id(),
            Instant::now()
        ));
        Log(path)
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`.
    fn wait_for(&self, needle: &str, limit: Duration) -> String {
        self.wait_for_after(0, needle, limit)
    }

    /// Waits (bounded) until the log after its first `offset` bytes
    /// contains `needle`; returns the whole log.
    fn wait_for_after(&self, offset: usize, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.read();
            if log.get(offset..).is_some_and(|rest| rest.contains(needle)) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `netkit udping serve` on an ephemeral port, logging at debug to `log`.
fn serve(args: &[&str], log: &Log) -> Server {
    let mut command = netkit();
    command
        .args(["udping", "serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info,udping=debug")
        .stderr(Stdio::from(File::create(&log.0).expect("log file")));
    Server::start(command, 1)
}

fn ping(args: &[&str]) -> Output {
    netkit()
        .args(["udping", "ping"])
        .args(args)
        .output()
        .expect("netkit runs")
}

/// `ping --json`, one object per line, gathered as `{"summary": the
/// summary line, "probes": the reply and no_reply lines}`.
fn ping_json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ping(&all);
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("not a JSON line ({err}): {line}\n{}", text(&out.stderr))
            })
        })
        .collect();
    let (summary, events) = lines.split_last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{summary}");
    let probes: Vec<Value> = events
        .iter()
        .filter(|line| line["type"] == "reply" || line["type"] == "no_reply")
        .cloned()
        .collect();
    serde_json::json!({"summary": summary, "probes": probes})
}

fn count(log: &str, needle: &str) -> u64 {
    log.lines().filter(|line| line.contains(needle)).count() as u64
}

/// Sequence numbers in lines containing `needle` followed by `seq=N`.
fn sequences(log: &str, needle: &str) -> Vec<u32> {
    log.lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| line.split("seq=").nth(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn stop(mut server: Server) {
    server.signal("TERM");
    let status = server
        .wait_timeout(Duration::from_secs(15))
        .expect("server exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn seeded_impairment_counts_equal_the_server_decisions() {
    let impairment = Impairment {
        loss: 0.25,
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(2),
        duplicate: 0.2,
        reorder: 0.2,
    };
    let seed = 7;
    let decisions: Vec<_> = Impairer::new(impairment, seed).take(200).collect();
    let (n, expected) = (30..200)
        .map(|n| (n, Expected::from_decisions(&decisions[..n])))
        .find(|(_, e)| e.settles)
        .unwrap();
    let log = Log::new("impair");
    let server = serve(
        &[
            "--loss",
            "0.25",
            "--delay",
            "3ms±2ms",
            "--duplicate",
            "0.2",
            "--reorder",
            "0.2",
            "--seed",
            "7",
        ],
        &log,
    );
    let addr = server.addr().to_string();
    let report = ping_json(&["-c", &n.to_string(), "-i", "0.015", "-W", "1.5", &addr]);
    stop(server);
    let log = log.read();
    let summary = &report["summary"];
    let field = |name: &str| summary[name].as_u64().unwrap();

    // What the server logged it did...
    assert_eq!(field("lost"), count(&log, "impairment: drop"), "{log}");
    assert_eq!(field("duplicates"), count(&log, "impairment: duplicate"));
    assert_eq!(field("out_of_order"), count(&log, ": sent after"));
    assert_eq!(count(&log, "impairment: delay"), field("received"));
    // ... is what the seed decides.
    assert_eq!(field("sent"), n as u64);
    assert_eq!(field("received"), expected.received);
    assert_eq!(field("lost"), expected.dropped);
    assert_eq!(field("duplicates"), expected.duplicates);
    assert_eq!(field("out_of_order"), expected.out_of_order);
    assert_eq!((field("late"), field("unmatched")), (0, 0));
    // Per probe: the dropped sequence numbers are the timed-out ones.
    let mut timed_out: Vec<u32> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "no_reply")
        .map(|p| p["seq"].as_u64().unwrap() as u32)
        .collect();
    timed_out.sort_unstable();
    assert_eq!(timed_out, sequences(&log, "impairment: drop"));
    // ... the duplicated ones are the server's duplicates, and the ones
    // flagged out of order are the replies it held back.
    let probes_where = |keep: &dyn Fn(&Value) -> bool| -> Vec<u32> {
        let mut seqs: Vec<u32> = report["probes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| keep(p))
            .map(|p| p["seq"].as_u64().unwrap() as u32)
            .collect();
        seqs.sort_unstable();
        seqs
    };
    let mut duplicated = sequences(&log, "impairment: duplicate");
    duplicated.sort_unstable();
    assert_eq!(probes_where(&|p| p["status"] == "duplicate"), duplicated);
    let mut held = sequences(&log, ": sent after");
    held.sort_unstable();
    assert_eq!(probes_where(&|p| p["out_of_order"] == true), held);
    assert!(!held.is_empty() && !duplicated.is_empty(), "{log}");
    // No reply came back faster than the smallest delay the jitter allows.
    assert!(summary["rtt_ms"]["min"].as_f64().unwrap() >= 1.0);
}

/// The lab's client: ten pings, one-second timeout, min/avg/max and loss.
const LAB_CLIENT: &str = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
rtts = []
for seq in range(1, 11):
    sent = time.time()
    s.sendto(("Ping %d %s" % (seq, sent)).encode(), (host, int(port)))
    try:
        reply, server = s.recvfrom(1024)
        rtt = time.time() - sent
        rtts.append(rtt)
        print("Reply: %s RTT %.6f" % (reply.decode(), rtt))
    except socket.timeout:
        print("Request timed out")
print("min %.6f avg %.6f max %.6f loss %d%%" % (min(rtts), sum(rtts) / len(rtts), max(rtts), (10 - len(rtts)) * 10))
"#;

#[test]
fn lab_client_against_netkit_serve() {
    if !testkit::require("python3") {
        return;
    }
    let log = Log::new("labclient");
    let server = serve(&["--loss", "0.3", "--seed", "3"], &log);
    let addr = server.addr().to_string();
    let out = testkit::python(LAB_CLIENT, &[&addr], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let impairment = Impairment {
        loss: 0.3,
        ..Impairment::default()
    };
    let dropped: Vec<bool> = Impairer::new(impairment, 3)
        .take(10)
        .map(|d| d.drop)
        .collect();
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, dropped) in dropped.iter().enumerate() {
        if *dropped {
            assert_eq!(lines[i], "Request timed out", "{stdout}");
        } else {
            let expected = format!("Reply: PING {} ", i + 1);
            assert!(lines[i].starts_with(&expected), "{stdout}");
        }
    }
    let loss = dropped.iter().filter(|d| **d).count() * 10;
    assert!(lines[10].ends_with(&format!("loss {loss}%")), "{stdout}");
    assert_eq!(count(&log.read(), "impairment: drop"), (loss / 10) as u64);
}

/// The lab's server: upper-cases each datagram and drops about 30% of them,
/// printing each decision so the test knows them.
const LAB_SERVER: &str = r#"
import random, socket, sys
random.seed(int(sys.argv[1]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    message, address = s.recvfrom(1024)
    rand = random.randint(0, 10)
    seq = message.split()[1].decode()
    if rand < 4:
        print("drop %s" % seq, flush=True)
        continue
    print("echo %s" % seq, flush=True)
    s.sendto(message.upper(), address)
"#;

#[test]
fn netkit_ping_against_the_lab_server() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", LAB_SERVER, "11"]);
    let server = Server::start(python, 1);
    let addr = server.addr().to_string();
    let out = ping(&["-c", "10", "-i", "0.05", "-W", "0.5", &addr]);
    let stdout = text(&out.stdout);
    let mut dropped = Vec::new();
    for _ in 0..10 {
        let line = server
            .next_line(Duration::from_secs(5))
            .expect("decision line");
        if let Some(seq) = line.strip_prefix("drop ") {
            dropped.push(seq.to_owned());
        }
    }
    for seq in 1..=10 {
        let seq = seq.to_string();
        let timed_out = stdout.contains(&format!("Request timed out (seq={seq})"));
        let replied = stdout.contains(&format!("seq={seq} time="));
        assert_eq!(timed_out, dropped.contains(&seq), "seq {seq}: {stdout}");
        assert_eq!(replied, !timed_out, "seq {seq}: {stdout}");
    }
    let summary = format!(
        "10 probes sent, {} received, {:.1}% loss",
        10 - dropped.len(),
        dropped.len() as f64 * 10.0
    );
    assert!(stdout.contains(&summary), "{summary}: {stdout}");
    assert!(stdout.contains("rtt min/avg/max/mdev = "), "{stdout}");
    assert!(stdout.contains("jitter"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(if dropped.len() == 10 { 1 } else { 0 })
    );
}

/// A server that answers every datagram with `pong`.
const PONG_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    message, address = s.recvfrom(1024)
    s.sendto(b"pong", address)
"#;

#[test]
fn seqless_replies_are_matched_by_order() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", PONG_SERVER]);
    let server = Server::start(python, 1);
    let addr = server.addr().to_string();
    let out = ping(&["-c", "5", "-i", "0.02", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("replies carry no sequence number"),
        "{stdout}"
    );
    for seq in 1..=5 {
        assert!(
            stdout.contains(&format!("seq={seq} time=")) && stdout.contains("(matched by order)"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("5 probes sent, 5 received, 0.0% loss"),
        "{stdout}"
    );
    assert!(stdout.contains("matched to probes by order"), "{stdout}");
    let report = ping_json(&["-c", "3", "-i", "0.02", &addr]);
    assert_eq!(report["summary"]["matched_by_order"], true);
    assert_eq!(report["probes"][0]["matched_by_order"], true);
}

#[test]
fn stamp_sender_against_reflector() {
    // Stateful, with loss: every drop is forward loss (or after the last
    // reply, undetermined), none is backward.
    let log = Log::new("stamp");
    let server = serve(
        &[
            "--mode",
            "stamp",
            "--stateful",
            "--loss",
            "0.3",
            "--seed",
            "9",
        ],
        &log,
    );
    let addr = server.addr().to_string();
    let report = ping_json(&[
        "--mode", "stamp", "-c", "30", "-i", "0.01", "-W", "0.5", &addr,
    ]);
    stop(server);
    let drops = count(&log.read(), "impairment: drop");
    let summary = &report["summary"];
    let loss = &summary["stamp_loss"];
    assert_eq!(summary["lost"].as_u64().unwrap(), drops);
    assert_eq!(loss["reflector_stateful"], true, "{report}");
    assert_eq!(
        loss["forward"].as_u64().unwrap() + loss["undetermined"].as_u64().unwrap(),
        drops
    );
    assert_eq!(loss["backward"], 0);
    let probe = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "reply")
        .unwrap();
    assert_eq!(probe["ttl"], 64, "the reflector copies the IP TTL");
    assert!(probe["residence_ms"].as_f64().unwrap() >= 0.0);

    // Stateless, padded probes: the text output.
    let log = Log::new("stamp-stateless");
    let server = serve(&["--mode", "stamp"], &log);
    let addr = server.addr().to_string();
    let out = ping(&[
        "--mode", "stamp", "-c", "3", "-i", "0.01", "-s", "200", &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Reply from "), "{stdout}");
    assert!(
        stdout.contains("in reflector) reflector_seq=2 ttl=64"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 probes sent, 3 received, 0.0% loss"),
        "{stdout}"
    );
    assert!(stdout.contains("(net of reflector residence)"), "{stdout}");
    assert!(stdout.contains("forward 0, backward 0"), "{stdout}");
}

fn heartbeat(target: &str, args: &[&str]) -> Child {
    netkit()
        .args(["udping", "heartbeat", target])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("netkit runs")
}

fn free_udp_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn heartbeat_client_killed_and_restarted() {
    let log = Log::new("hb");
    let server = serve(
        &["--heartbeat", "--interval", "100ms", "--dead-after", "3"],
        &log,
    );
    let addr = server.addr().to_string();
    let client = free_udp_port().to_string();
    let mut first = heartbeat(&addr, &["-i", "100ms", "--bind", &client]);
    log.wait_for(&format!("client {client} started"), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    // A loaded machine may have stalled the client long enough to be taken
    // for stopped already; only what follows the kill counts.
    let killed_at = log.read().len();
    let stopped = format!("client {client} stopped (silent for ");
    let text = log.wait_for_after(killed_at, &stopped, Duration::from_secs(10));
    let silent: f64 = text[killed_at..]
        .split(&stopped)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        silent >= 0.3,
        "stopped after {silent} s, before 3 intervals"
    );

    let stopped_at = log.read().len();
    let mut second = heartbeat(&addr, &["-i", "100ms", "--bind", &client]);
    let restarted = format!("client {client} restarted at seq=1");
    let text = log.wait_for_after(stopped_at, &restarted, Duration::from_secs(10));
    assert!(
        text[stopped_at..].contains(&format!("client {client} is back")),
        "{text}"
    );
    assert_eq!(count(&text, "lost heartbeat"), 0, "{text}");
    second.kill().unwrap();
    second.wait().unwrap();
    stop(server);
}

#[test]
fn dropped_heartbeats_are_reported_by_sequence_number() {
    let log = Log::new("hb-loss");
    let server = serve(
        &[
            "--heartbeat",
            "--interval",
            "20ms",
            "--dead-after",
            "5",
            "--loss",
            "0.3",
            "--seed",
            "21",
        ],
        &log,
    );
    let addr = server.addr().to_string();
    let out = netkit()
        .args(["udping", "heartbeat", &addr, "-i", "20ms", "-c", "40"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("40 heartbeats sent"));
    let decisions: Vec<bool> = Impairer::new(
        Impairment {
            loss: 0.3,
            ..Impairment::default()
        },
        21,
    )
    .take(40)
    .map(|d| d.drop)
    .collect();
    let first = decisions.iter().position(|d| !d).unwrap() as u32 + 1;
    let last = decisions.iter().rposition(|d| !d).unwrap() as u32 + 1;
    // Every heartbeat that got through has been seen once the last has.
    let text = log.wait_for(&format!("heartbeat seq={last},"), Duration::from_secs(10));
    let dropped: Vec<u32> = sequences(&text, "impairment: drop")
        .into_iter()
        .filter(|seq| (first..last).contains(seq))
        .collect();
    assert!(!dropped.is_empty());
    assert_eq!(sequences(&text, "lost heartbeat seq="), dropped, "{text}");
    stop(server);
}

#[test]
fn status_table_lists_clients() {
    let log = Log::new("status");
    let server = serve(&["--heartbeat", "--interval", "100ms", "--status"], &log);
    let addr = server.addr().to_string();
    let client = free_udp_port().to_string();
    let mut beats = heartbeat(&addr, &["-i", "50ms", "--bind", &client]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut header = false;
    let row = loop {
        let line = server
            .next_line(Duration::from_secs(5))
            .expect("table line");
        header |= line.starts_with("CLIENT") && line.contains("LOSS%");
        if line.starts_with(&client) && header {
            break line;
        }
        assert!(Instant::now() < deadline, "no row for {client}");
    };
    assert!(row.contains("alive"), "{row}");
    beats.kill().unwrap();
    beats.wait().unwrap();
}

#[test]
fn delayed_replies_go_out_during_graceful_shutdown() {
    let log = Log::new("grace");
    let mut server = serve(&["--delay", "300ms", "--grace", "5s"], &log);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.send_to(b"Ping 1 0.0", server.addr()).unwrap();
    log.wait_for("impairment: delay seq=1", Duration::from_secs(10));
    server.signal("TERM");
    let mut buf = [0u8; 64];
    let (n, _) = socket
        .recv_from(&mut buf)
        .expect("the delayed reply still arrives");
    assert_eq!(&buf[..n], b"PING 1 0.0");
    let status = server.wait_timeout(Duration::from_secs(15)).unwrap();
    assert!(status.success());
}

#[test]
fn flood_reports_a_rate() {
    let log = Log::new("flood");
    let server = serve(&[], &log);
    let addr = server.addr().to_string();
    let report = ping_json(&["--flood", "--duration", "300ms", "-s", "64", &addr]);
    let summary = &report["summary"];
    assert!(summary["received"].as_u64().unwrap() > 0, "{report}");
    assert!(summary["rate_pps"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["size"], 64);
}

/// A server that answers `pong` to every datagram but the second, which it
/// drops: the seed lab's server with one loss at a known place.
const LOSSY_PONG_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
received = 0
while True:
    message, address = s.recvfrom(1024)
    received += 1
    if received != 2:
        s.sendto(b"pong", address)
"#;

#[test]
fn a_seqless_server_is_pinged_stop_and_wait() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", LOSSY_PONG_SERVER]);
    let server = Server::start(python, 1);
    let addr = server.addr().to_string();
    // The interval is shorter than the timeout: sent on schedule, probe 3
    // would go while probe 2 still waits, and its pong be charged to 2.
    let report = ping_json(&["-c", "4", "-i", "0.1", "-W", "1", &addr]);
    let probes = report["probes"].as_array().unwrap();
    let of = |kind: &str| -> Vec<u64> {
        probes
            .iter()
            .filter(|p| p["type"] == kind)
            .map(|p| p["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(of("no_reply"), vec![2], "{report}");
    assert_eq!(of("reply"), vec![1, 3, 4], "{report}");
    assert_eq!(report["summary"]["lost"], 1, "{report}");
    assert_eq!(report["summary"]["matched_by_order"], true, "{report}");

    let out = ping(&["-c", "2", "-i", "0.1", &addr]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("one probe at a time (stop-and-wait)"),
        "{stdout}"
    );
}

/// Waits for the server to call `client` stopped after `since` bytes of log;
/// returns the silence it reported, in seconds.
fn stopped_after(log: &Log, since: usize, client: &str) -> f64 {
    let stopped = format!("client {client} stopped (silent for ");
    let text = log.wait_for_after(since, &stopped, Duration::from_secs(10));
    text[since..]
        .split(&stopped)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap()
}

#[test]
fn each_heartbeat_client_is_judged_by_its_own_interval() {
    // The server expects a beat a second, so by its own measure a client
    // is stopped after 3 s of silence.
    let log = Log::new("hb-cadence");
    let server = serve(
        &["--heartbeat", "--interval", "1s", "--dead-after", "3"],
        &log,
    );
    let addr = server.addr().to_string();

    // netkit's client announces its 100 ms interval.
    let client = free_udp_port().to_string();
    let mut beats = heartbeat(&addr, &["-i", "100ms", "--bind", &client]);
    log.wait_for(
        &format!("client {client} heartbeat seq=5,"),
        Duration::from_secs(10),
    );
    beats.kill().unwrap();
    beats.wait().unwrap();
    let killed_at = log.read().len();
    let silent = stopped_after(&log, killed_at, &client);
    assert!(
        silent < 2.0,
        "stopped after {silent} s: judged by the server's 1 s"
    );

    // A lab client says nothing of its interval: its cadence is observed.
    if !testkit::require("python3") {
        return;
    }
    let lab_client = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("%s:%d" % s.getsockname(), flush=True)
host, port = sys.argv[1].rsplit(":", 1)
for seq in range(1, 11):
    s.sendto(("Heartbeat %d %f" % (seq, time.time())).encode(), (host, int(port)))
    time.sleep(0.1)
"#;
    let since = log.read().len();
    let out = testkit::python(lab_client, &[&addr], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lab = text(&out.stdout).trim().to_string();
    log.wait_for_after(
        since,
        &format!("client {lab} heartbeat seq=10,"),
        Duration::from_secs(10),
    );
    let silent = stopped_after(&log, since, &lab);
    assert!(
        silent < 2.0,
        "stopped after {silent} s: judged by the server's 1 s"
    );
    stop(server);
}
