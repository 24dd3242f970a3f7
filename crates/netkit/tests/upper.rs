//! `netkit upper` end to end through the binary, against clients and servers
//! we did not write (python3's socket module) as well as our own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use testkit::Server;

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

fn start(extra: &[&str]) -> Server {
    let mut command = netkit();
    command.args([
        "upper",
        "serve",
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
    ]);
    command.args(extra);
    Server::start(command, 2)
}

fn send(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = netkit()
        .arg("upper")
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netkit runs");
    let mut input = child.stdin.take().expect("piped");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("netkit finishes");
    writer.join().unwrap().expect("stdin written");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lab's TCP client: connect, send a sentence with no newline, wait.
const LAB_TCP_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
s.connect((host, int(port)))
s.send(sys.argv[2].encode())
print(s.recv(1024).decode(), end="")
s.close()
"#;

/// The lab's UDP client: one datagram, one reply.
const LAB_UDP_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(sys.argv[2].encode(), (host, int(port)))
reply, server = s.recvfrom(2048)
print(reply.decode(), end="")
"#;

#[test]
fn lab_clients_get_upper_case() {
    if !testkit::require("python3") {
        return;
    }
    let server = start(&[]);
    let (tcp, udp) = (server.addrs()[0].to_string(), server.addrs()[1].to_string());
    let sentence = "the quick brown fox, 42 times: ça va?";
    let expected = "THE QUICK BROWN FOX, 42 TIMES: çA VA?";

    let out = testkit::python(LAB_TCP_CLIENT, &[&tcp, sentence], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);

    let out = testkit::python(LAB_UDP_CLIENT, &[&udp, sentence], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn netkit_client_text_and_lines() {
    let server = start(&[]);
    let (tcp, udp) = (server.addrs()[0].to_string(), server.addrs()[1].to_string());

    let out = send(&[&tcp, "hello, World 1"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "HELLO, WORLD 1\n");

    let out = send(&["--udp", &udp, "hello, World 2"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "HELLO, WORLD 2\n");

    // Piped stdin: no prompt, one reply per line.
    let lines = b"first line\nsecond line\nno newline at end";
    let out = send(&[&tcp], lines);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "FIRST LINE\nSECOND LINE\nNO NEWLINE AT END"
    );

    let out = send(&["--udp", &udp], lines);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "FIRST LINE\nSECOND LINE\nNO NEWLINE AT END\n"
    );
}

#[test]
fn large_stream_on_one_connection() {
    let server = start(&[]);
    let tcp = server.addrs()[0].to_string();
    let input: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 \n\xc3\xa9"[(i % 40) as usize])
        .collect();
    let out = send(&[&tcp], &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input.to_ascii_uppercase(), "stream corrupted");
}

#[test]
fn many_concurrent_clients() {
    let server = start(&[]);
    let addr = server.addrs()[0];
    let clients: Vec<_> = (0..200)
        .map(|id| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                for line in 0..20 {
                    let request = format!("client {id} line {line}\n");
                    stream.write_all(request.as_bytes()).unwrap();
                    let mut reply = vec![0u8; request.len()];
                    stream.read_exact(&mut reply).unwrap();
                    assert_eq!(reply, request.to_ascii_uppercase().as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client succeeded");
    }
}

#[test]
fn idle_connection_is_closed() {
    let server = start(&["--idle-timeout", "300ms"]);
    let mut stream = TcpStream::connect(server.addrs()[0]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream.write_all(b"still here").unwrap();
    let mut reply = [0u8; 10];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"STILL HERE");
    // Then silence: the server closes, so the read sees end of stream.
    let mut rest = Vec::new();
    let n = stream
        .read_to_end(&mut rest)
        .expect("closed, not timed out");
    assert_eq!(n, 0);
}

#[test]
fn a_client_that_never_reads_does_not_grow_the_server() {
    let server = start(&[]);
    let stream = TcpStream::connect(server.addrs()[0]).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut written = 0usize;
    // Write until the socket buffers on both sides are full.
    while written < 256 * 1024 * 1024 {
        match writer.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(
        written < 256 * 1024 * 1024,
        "server kept reading without writing"
    );
    let rss = resident_kib(server.pid());
    assert!(
        rss < 64 * 1024,
        "server resident memory {rss} KiB after {written} bytes"
    );
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

#[test]
fn refused_connection_is_reported_at_once() {
    let closed = testkit::closed_tcp_port().to_string();
    let out = send(&[&closed, "hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains(&closed), "{err}");
    assert!(err.contains("is the server running?"), "{err}");
}

#[test]
fn udp_to_a_closed_port_reports_port_unreachable_at_once() {
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    // An hour's timeout: only the ICMP error can end this run.
    let out = send(&["--udp", "--timeout", "1h", &addr, "hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("port unreachable"), "{err}");
    assert!(err.contains(&addr), "{err}");
}

#[test]
fn udp_request_times_out() {
    // A socket that receives but never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = send(&["--udp", "--timeout", "300ms", &addr, "hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains(&addr), "{err}");
    let mut buf = [0u8; 16];
    let (n, _) = silent.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
}

/// The lab's server: reads once, answers, closes the connection.
const LAB_TCP_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(1)
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    conn, addr = s.accept()
    sentence = conn.recv(1024).decode()
    conn.send(sentence.upper().encode())
    conn.close()
"#;

#[test]
fn netkit_client_against_the_lab_server() {
    if !testkit::require("python3") {
        return;
    }
    let mut python = Command::new("python3");
    python.args(["-c", LAB_TCP_SERVER]);
    let server = Server::start(python, 1);
    let addr = server.addr().to_string();
    for sentence in ["one sentence", "another one"] {
        let out = send(&[&addr, sentence], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{}\n", sentence.to_uppercase()));
    }
}

#[test]
fn signals_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut server = start(&["--grace", "2s"]);
        // A connected client does not hold the server beyond the grace period.
        let mut stream = TcpStream::connect(server.addrs()[0]).unwrap();
        stream.write_all(b"x").unwrap();
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).unwrap();
        server.signal(signal);
        let status = server
            .wait_timeout(Duration::from_secs(15))
            .expect("server exits after the signal");
        assert!(status.success(), "SIG{signal}: {status:?}");
        // The server stopped accepting.
        assert!(TcpStream::connect(server.addrs()[0]).is_err());
    }
}

#[test]
fn serve_prints_actual_addresses() {
    let server = start(&[]);
    for addr in server.addrs() {
        assert_ne!(addr.port(), 0);
        assert_eq!(addr.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    }
    let tcp_only = Server::start(
        {
            let mut command = netkit();
            command.args(["upper", "serve", "--tcp", "127.0.0.1:0"]);
            command
        },
        1,
    );
    let addr: SocketAddr = tcp_only.addr();
    assert!(TcpStream::connect(addr).is_ok());
}

#[test]
fn help_version_and_usage_errors() {
    let out = netkit().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for system in ["upper", "demo"] {
        assert!(help.contains(system), "--help lists {system}: {help}");
    }
    assert!(help.contains("Examples:"), "{help}");

    let out = netkit()
        .args(["upper", "serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--tcp",
        "--udp",
        "--idle-timeout",
        "--grace",
        "--max-connections",
    ] {
        assert!(help.contains(flag), "serve --help documents {flag}");
    }

    let out = netkit().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("netkit "));

    let out = netkit().args(["upper", "send"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = netkit()
        .args(["upper", "serve", "--tcp", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bind_failure_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = netkit()
        .args(["upper", "serve", "--tcp", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&addr));
}

#[test]
fn demo_passes() {
    let out = netkit().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("upper"));
}

/// Drives `netkit upper send` on a pseudo-terminal, as a person would.
const ON_A_TERMINAL: &str = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "upper", "send", sys.argv[2]])
seen = b""
def read_until(done):
    global seen
    deadline = time.time() + 10
    while not done() and time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
read_until(lambda: b"Input lowercase sentence: " in seen)
os.write(fd, b"typed by hand\n")
read_until(lambda: seen.count(b"Input lowercase sentence: ") == 2)
os.write(fd, b"\x04")
os.waitpid(pid, 0)
sys.stdout.write(seen.decode())
"#;

#[test]
fn prompts_on_a_terminal() {
    if !testkit::require("python3") {
        return;
    }
    let server = start(&[]);
    let out = testkit::python(
        ON_A_TERMINAL,
        &[env!("CARGO_BIN_EXE_netkit"), &server.addrs()[0].to_string()],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = text(&out.stdout);
    assert_eq!(
        seen.matches("Input lowercase sentence: ").count(),
        2,
        "{seen}"
    );
    assert!(seen.contains("TYPED BY HAND"), "{seen}");
}
