//! Delivery without --server: the recipient domain's MX records come from
//! a dnsmasq (Debian's, not ours) started by the test on a loopback port,
//! and point at aiosmtpd.

#[path = "mail/support.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// dnsmasq answering for the test domains only, killed when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Dnsmasq {
        // The port is free when picked but may be taken (over TCP, which
        // dnsmasq also listens on) before dnsmasq binds it: then try another.
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut command = Command::new(DNSMASQ);
            command
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--user=root",
                    "--pid-file=",
                    "--log-facility=-",
                ])
                .arg(format!("--port={port}"))
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let child = command.spawn().expect("dnsmasq starts");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut dnsmasq = Dnsmasq { child, addr };
            if dnsmasq.wait_ready() {
                return dnsmasq;
            }
        }
        panic!("dnsmasq could not bind a free port in five tries");
    }

    /// Asks for test.example's MX until an answer comes back; false if
    /// dnsmasq exited (its port was taken).
    fn wait_ready(&mut self) -> bool {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["test", "example"] {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 15, 0, 1]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let _ = socket.send_to(&query, self.addr);
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 2
                && buf[..2] == [0x12, 0x34]
            {
                return true;
            }
        }
        panic!("dnsmasq did not answer on {}", self.addr);
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_dnsmasq() -> bool {
    Path::new(DNSMASQ).exists()
        || testkit::skip_or_fail("dnsmasq is not installed (dnsmasq-base in .ci/apt-packages)")
}

fn deliver(dns: SocketAddr, port: Option<u16>, to: &str) -> std::process::Output {
    let dns = dns.to_string();
    let port = port.map(|p| p.to_string());
    let mut args = vec![
        "--dns",
        &dns,
        "--from",
        "alice@example.org",
        "--to",
        to,
        "--subject",
        "via MX",
        "--body",
        "found you through DNS",
    ];
    if let Some(port) = &port {
        args.extend(["--port", port]);
    }
    send(&args, &[], b"")
}

#[test]
fn mx_records_choose_the_server() {
    if !have_aiosmtpd() || !have_dnsmasq() {
        return;
    }
    let dir = Scratch::new("mx");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let port = server.addr().port();
    let dnsmasq = Dnsmasq::start(&[
        // The preferred exchanger does not answer; the next one does, and
        // the last is never tried. Listed out of order, so whichever order
        // dnsmasq answers in, the order tried is netkit's.
        "--mx-host=test.example,down.test.example,5".into(),
        "--mx-host=test.example,last.test.example,20".into(),
        "--mx-host=test.example,mx.test.example,10".into(),
        "--host-record=last.test.example,127.0.0.3".into(),
        "--host-record=down.test.example,127.0.0.2".into(),
        "--host-record=mx.test.example,127.0.0.1".into(),
        // No MX at all: the domain's own address is used.
        "--host-record=bare.example,127.0.0.1".into(),
        // Answer for these names from the records above only: NODATA or
        // NXDOMAIN, as an authoritative server would, not REFUSED.
        "--local=/bare.example/".into(),
        "--local=/unknown.example/".into(),
        // No MX and only an IPv6 address: the AAAA record is used.
        "--host-record=v6only.example,::1".into(),
        "--local=/v6only.example/".into(),
    ]);

    let out = deliver(dnsmasq.addr, Some(port), "user@test.example");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let first = stdout.find("=== MX for test.example: down.test.example (preference 5)");
    let second = stdout.find("=== MX for test.example: mx.test.example (preference 10)");
    assert!(first.is_some() && second > first, "{stdout}");
    assert!(!stdout.contains("last.test.example"), "{stdout}");
    assert!(
        stdout.contains("connection refused by 127.0.0.2"),
        "{stdout}"
    );
    assert!(stdout.contains("<-  220 mx.test.example"), "{stdout}");

    let out = deliver(dnsmasq.addr, Some(port), "someone@bare.example");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let received = received(&outdir);
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].1["rcpt"],
        serde_json::json!(["user@test.example"])
    );
    assert_eq!(
        received[1].1["rcpt"],
        serde_json::json!(["someone@bare.example"])
    );
    let message = inspect(&received[0].0, None);
    assert_eq!(header(&message, "subject"), ["via MX"]);

    let outdir6 = dir.join("out6");
    std::fs::create_dir(&outdir6).unwrap();
    let server6 = aiosmtpd(&outdir6, &["--host", "::1"]);
    let port6 = server6.addr().port();
    let out = deliver(dnsmasq.addr, Some(port6), "someone@v6only.example");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("=== Connected to [::1]:{port6}.")),
        "{stdout}"
    );
    assert_eq!(
        support::received(&outdir6)[0].1["rcpt"],
        serde_json::json!(["someone@v6only.example"])
    );

    // A domain DNS knows nothing about fails at the connect stage.
    let out = deliver(dnsmasq.addr, Some(port), "nobody@unknown.example");
    assert_eq!(out.status.code(), Some(20), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unknown.example"),
        "{}",
        text(&out.stderr)
    );
}

/// The default: MX hosts are contacted on port 25. Needs root to bind it
/// (on an address of the loopback range of its own).
#[test]
fn mx_delivery_uses_port_25() {
    if !have_aiosmtpd() || !have_dnsmasq() || !testkit::require_root() {
        return;
    }
    let ip = format!(
        "127.25.{}.{}",
        std::process::id() % 200 + 1,
        std::process::id() / 200 % 200 + 1
    );
    let dir = Scratch::new("mx25");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--host", &ip, "--port", "25"]);
    assert_eq!(server.addr().port(), 25);
    let dnsmasq = Dnsmasq::start(&[
        "--mx-host=test.example,mx.test.example,10".into(),
        format!("--host-record=mx.test.example,{ip}"),
    ]);
    let out = deliver(dnsmasq.addr, None, "user@test.example");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(&format!("Connected to {ip}:25")));
    assert_eq!(received(&outdir).len(), 1);
}

/// Greets every client with 421 and hangs up, as a server too busy to
/// take mail does. Not netkit's code.
const BUSY: &str = r#"
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(8)
print("listening on %s:%s" % (sys.argv[1], sys.argv[2]), flush=True)
while True:
    client, _ = listener.accept()
    client.sendall(b"421 4.3.2 busy.test too busy, try later\r\n")
    client.close()
"#;

/// An exchanger that answers but will not greet (421) is passed over for
/// the next one, as RFC 5321 §5.1 asks: try each until delivery succeeds.
#[test]
fn a_busy_exchanger_is_passed_over() {
    if !have_aiosmtpd() || !have_dnsmasq() {
        return;
    }
    let dir = Scratch::new("mx-busy");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let port = server.addr().port().to_string();
    let mut python = Command::new("python3");
    python.args(["-c", BUSY, "127.0.0.4", &port]);
    let _busy = testkit::Server::start(python, 1);
    let dnsmasq = Dnsmasq::start(&[
        "--mx-host=test.example,busy.test.example,5".into(),
        "--mx-host=test.example,mx.test.example,10".into(),
        "--host-record=busy.test.example,127.0.0.4".into(),
        "--host-record=mx.test.example,127.0.0.1".into(),
    ]);
    let out = deliver(
        dnsmasq.addr,
        Some(server.addr().port()),
        "user@test.example",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let busy = stdout.find("<-  421 4.3.2 busy.test too busy");
    let delivered = stdout.find("<-  220 mx.test.example");
    assert!(busy.is_some() && delivered > busy, "{stdout}");
    assert_eq!(received(&outdir).len(), 1);

    // With no other exchanger, the busy one's answer is the outcome.
    let dnsmasq = Dnsmasq::start(&[
        "--mx-host=test.example,busy.test.example,5".into(),
        "--host-record=busy.test.example,127.0.0.4".into(),
    ]);
    let out = deliver(
        dnsmasq.addr,
        Some(server.addr().port()),
        "user@test.example",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(21), "{stderr}");
    assert!(stderr.contains("421 4.3.2 busy.test too busy"), "{stderr}");
}
