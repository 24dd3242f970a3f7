//! Test support for `netkit capture`: a live capture process written to a
//! pcapng file, the marker datagram that proves every earlier packet was
//! written, and per-packet records from netkit's `--json` and from tshark.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

/// Whether this machine can run the capture tests: root (for the packet
/// socket), tshark and tcpdump. Under CI=true a missing one fails.
pub fn ready() -> bool {
    testkit::require_root() && testkit::require("tshark") && testkit::require("tcpdump")
}

/// A scratch directory removed afterwards.
pub struct Scratch(pub tempfile::TempDir);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(tempfile::tempdir().expect("temp dir"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Starts a capture command and waits for its `listening on IFACE` line.
pub fn spawn_listening(mut command: Command, interface: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capture starts");
    let (send, stderr) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let wanted = format!("listening on {interface}");
    loop {
        match stderr.recv_timeout(WAIT.saturating_sub(started.elapsed())) {
            Ok(line) if line.contains(&wanted) => return (child, stderr),
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{command:?} did not start listening");
            }
        }
    }
}

/// A live capture, `-U -w FILE` with a filter, started and ready.
pub struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    pub file: PathBuf,
    /// Bound so the marker datagrams draw no ICMP port unreachable.
    marker: UdpSocket,
}

impl Capture {
    /// Starts `netkit capture` (or, with `tcpdump`, tcpdump itself) on lo
    /// with `filter or udp port MARKER`, and waits until it listens.
    pub fn start(program: Program, file: &Path, filter: &str) -> Capture {
        let marker = UdpSocket::bind("127.0.0.1:0").unwrap();
        let marker_port = marker.local_addr().unwrap().port();
        let filter = format!("({filter}) or udp port {marker_port}");
        let mut command = match program {
            Program::Netkit => {
                let mut command = netkit();
                command.args(["capture", "-i", "lo", "-U", "-w"]);
                command
            }
            Program::Tcpdump => {
                let mut command = Command::new("tcpdump");
                command.args(["-i", "lo", "-U", "-n", "-w"]);
                command
            }
        };
        command.arg(file).arg(&filter);
        let (child, stderr) = spawn_listening(command, "lo");
        Capture {
            child,
            stderr,
            file: file.to_owned(),
            marker,
        }
    }

    /// Sends the marker datagram until the file holds it: every packet
    /// sent before it has then been written too. Then stops the capture
    /// with SIGINT and returns what it printed at the end.
    pub fn finish(mut self) -> Vec<String> {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let marker = self.marker();
        let marker_filter = format!("udp port {marker}");
        'waiting: loop {
            assert!(
                started.elapsed() < WAIT,
                "the marker never reached the file"
            );
            sender.send_to(b"marker", ("127.0.0.1", marker)).unwrap();
            for _ in 0..20 {
                thread::sleep(Duration::from_millis(50));
                if !read_json(&self.file, &[marker_filter.as_str()]).is_empty() {
                    break 'waiting;
                }
            }
        }
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = testkit::wait_timeout(&mut self.child, WAIT).expect("capture stops");
        assert!(status.success(), "capture exited with {status}");
        self.stderr.try_iter().collect()
    }

    pub fn marker(&self) -> u16 {
        self.marker.local_addr().unwrap().port()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Program {
    Netkit,
    Tcpdump,
}

/// `netkit capture -r FILE --json FILTER...`, one value per packet.
pub fn read_json(file: &Path, filter: &[&str]) -> Vec<Value> {
    let out = netkit()
        .args(["capture", "--json", "-r"])
        .arg(file)
        .args(filter)
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
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// `netkit capture -r FILE FILTER...`, the tcpdump-style lines.
pub fn read_text(file: &Path, args: &[&str]) -> Vec<String> {
    let out = netkit()
        .args(["capture", "-r"])
        .arg(file)
        .args(args)
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

/// The fields both sides are compared on, as text in tshark's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub time: String,
    pub src: String,
    pub dst: String,
    pub src_port: String,
    pub dst_port: String,
    pub tcp_flags: String,
    pub seq: String,
    pub ack: String,
    pub udp_length: String,
    pub length: String,
}

const TSHARK_FIELDS: &[&str] = &[
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "tcp.srcport",
    "udp.srcport",
    "tcp.dstport",
    "udp.dstport",
    "tcp.flags",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "udp.length",
    "frame.len",
];

/// tshark's view of every packet in `file` (an optional display filter).
pub fn tshark(file: &Path, display: Option<&str>) -> Vec<Fields> {
    let mut command = Command::new("tshark");
    command
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"]);
    for field in TSHARK_FIELDS {
        command.args(["-e", field]);
    }
    if let Some(display) = display {
        command.args(["-Y", display]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_owned();
            let either = |a: usize, b: usize| {
                let first = cell(a);
                if first.is_empty() { cell(b) } else { first }
            };
            Fields {
                time: cell(0),
                src: either(1, 2),
                dst: either(3, 4),
                src_port: either(5, 6),
                dst_port: either(7, 8),
                tcp_flags: cell(9),
                seq: cell(10),
                ack: cell(11),
                udp_length: cell(12),
                length: cell(13),
            }
        })
        .collect()
}

/// The same fields from one `--json` packet.
pub fn fields(packet: &Value) -> Fields {
    let text = |value: &Value| match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let transport = &packet["transport"];
    let tcp = transport["type"] == "tcp";
    let udp = transport["type"] == "udp";
    Fields {
        time: text(&packet["time_epoch"]),
        src: text(&packet["network"]["src"]),
        dst: text(&packet["network"]["dst"]),
        src_port: text(&transport["src_port"]),
        dst_port: text(&transport["dst_port"]),
        tcp_flags: if tcp {
            format!("0x{:04x}", transport["flags"].as_u64().unwrap())
        } else {
            String::new()
        },
        seq: if tcp {
            text(&transport["seq"])
        } else {
            String::new()
        },
        ack: if tcp {
            text(&transport["ack"])
        } else {
            String::new()
        },
        udp_length: if udp {
            text(&transport["length"])
        } else {
            String::new()
        },
        length: text(&packet["length"]),
    }
}

/// Asserts netkit's decoding of `file` equals tshark's, packet by packet,
/// and that the timestamps never go backwards.
pub fn assert_same_as_tshark(file: &Path) -> Vec<Value> {
    let ours = read_json(file, &[]);
    let theirs = tshark(file, None);
    assert_eq!(ours.len(), theirs.len(), "packet count");
    for (number, (packet, expected)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(&fields(packet), expected, "packet {}", number + 1);
    }
    let times: Vec<f64> = theirs.iter().map(|f| f.time.parse().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timestamps in order"
    );
    // The text lines agree with the JSON on who talked to whom.
    let lines = read_text(file, &[]);
    assert_eq!(lines.len(), ours.len(), "one line per packet");
    for (line, packet) in lines.iter().zip(&ours) {
        let f = fields(packet);
        let (src, dst) = if f.src_port.is_empty() {
            (f.src.clone(), f.dst.clone())
        } else {
            (
                format!("{}.{}", f.src, f.src_port),
                format!("{}.{}", f.dst, f.dst_port),
            )
        };
        assert!(line.contains(&format!(" {src} > {dst}: ")), "{line}");
        if !f.udp_length.is_empty() {
            let payload = f.udp_length.parse::<u32>().unwrap() - 8;
            assert!(line.ends_with(&format!("UDP, length {payload}")), "{line}");
        }
    }
    ours
}

/// Packets of `packets` with this TCP or UDP port on either side.
pub fn on_port(packets: &[Value], port: u16) -> Vec<&Value> {
    packets
        .iter()
        .filter(|p| p["transport"]["src_port"] == port || p["transport"]["dst_port"] == port)
        .collect()
}
