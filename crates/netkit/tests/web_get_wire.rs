//! The same request made by curl and by netkit puts the same bytes on the
//! wire where curl's choice is fixed (request line, form encoding,
//! multipart parts up to the boundary), as a small recording server sees
//! them; and connections are used again as curl uses them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    line: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Answers every request with a short 200 on kept-alive connections (a
/// 302 to /final for /redirect), recording requests and connections.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<usize>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (log, count) = (seen.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                *count.lock().unwrap() += 1;
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Recorder {
            addr,
            seen,
            connections,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn take_connections(&self) -> usize {
        std::mem::take(&mut *self.connections.lock().unwrap())
    }
}

fn serve(stream: std::net::TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = None;
        let mut expect = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            let value = value.trim().to_owned();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap(),
                "content-type" => content_type = Some(value),
                "expect" => expect = true,
                _ => {}
            }
        }
        if expect {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let line = line.trim_end().to_owned();
        let answer: &[u8] = if line.starts_with("GET /redirect ") {
            b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        log.lock().unwrap().push(Seen {
            line,
            content_type,
            body,
        });
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let mut command = if program == "curl" {
        let mut curl = Command::new("curl");
        curl.arg("-s");
        curl
    } else {
        let mut netkit = Command::new(env!("CARGO_BIN_EXE_netkit"));
        netkit.args(["web", "get"]);
        netkit
    };
    let out = command.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A multipart body and type with the boundary replaced by a fixed word.
fn without_boundary(seen: &Seen) -> Seen {
    let mut seen = seen.clone();
    let Some(kind) = &seen.content_type else {
        return seen;
    };
    let Some((_, boundary)) = kind.split_once("boundary=") else {
        return seen;
    };
    let boundary = boundary.to_owned();
    // curl's boundary: 24 dashes and 16 hex digits, and so is ours.
    assert_eq!(boundary.len(), 40, "{boundary}");
    assert!(boundary.starts_with(&"-".repeat(24)), "{boundary}");
    let text = String::from_utf8_lossy(&seen.body).replace(&boundary, "BOUNDARY");
    seen.body = text.into_bytes();
    seen.content_type = Some(kind.replace(&boundary, "BOUNDARY"));
    seen
}

#[test]
fn curl_and_netkit_send_the_same_bytes() {
    if !testkit::require("curl") {
        return;
    }
    let recorder = Recorder::start();
    let dir = std::env::temp_dir().join(format!("netkit-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "line one\nline two\n").unwrap();
    let notes = notes.to_str().unwrap();
    let form_file = format!("@{notes}");
    let part_file = format!("doc=@{notes}");
    let part_typed = format!("raw=@{notes};type=application/x-raw;filename=r.bin");
    let cases: Vec<Vec<&str>> = vec![
        vec!["-d", "a=1", "-d", "b=x y&z"],
        vec!["-d", &form_file],
        vec!["--data-binary", &form_file],
        vec![
            "--data-urlencode",
            "q=a b&c=d/é~",
            "--data-urlencode",
            "=x+y",
        ],
        vec!["-G", "-d", "x=1", "--data-urlencode", "y=a b"],
        vec!["--json", r#"{"k": [1, 2]}"#],
        vec!["-X", "DELETE"],
        vec!["-X", "PATCH", "-d", "p=1"],
        vec!["-I"],
        vec!["-F", "a=1", "-F", &part_file, "-F", &part_typed],
    ];
    for case in &cases {
        let url = recorder.url("/path/x?q=1");
        let mut args = case.clone();
        args.push(&url);
        run("curl", &args);
        run("netkit", &args);
        let seen = recorder.take();
        assert_eq!(seen.len(), 2, "{case:?}");
        assert_eq!(
            without_boundary(&seen[1]),
            without_boundary(&seen[0]),
            "{case:?}: netkit (left) and curl (right)"
        );
    }
    // `netkit curl` is `netkit web get` under curl's name.
    let url = recorder.url("/alias");
    run("curl", &["-d", "a=1", &url]);
    let out = Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args(["curl", "-d", "a=1", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let seen = recorder.take();
    assert_eq!(seen[1], seen[0]);

    // -T to a URL ending in / names the file, streamed with its length.
    let url = recorder.url("/upload/");
    run("curl", &["-T", notes, &url]);
    run("netkit", &["-T", notes, &url]);
    let seen = recorder.take();
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[0].line, "PUT /upload/notes.txt HTTP/1.1");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn connections_are_used_again_as_curl_uses_them() {
    if !testkit::require("curl") {
        return;
    }
    let recorder = Recorder::start();
    let urls = [
        recorder.url("/a"),
        recorder.url("/redirect"),
        recorder.url("/c"),
    ];
    let mut args = vec!["-L"];
    args.extend(urls.iter().map(String::as_str));
    run("curl", &args);
    let curl = recorder.take_connections();
    let curl_seen = recorder.take();
    run("netkit", &args);
    let ours = recorder.take_connections();
    let seen = recorder.take();
    assert_eq!(ours, 1, "three URLs and a redirect on one connection");
    assert_eq!(ours, curl);
    let lines = |seen: &[Seen]| seen.iter().map(|s| s.line.clone()).collect::<Vec<_>>();
    assert_eq!(lines(&seen), lines(&curl_seen));
    assert_eq!(seen.len(), 4);
}

/// A file's text with each header name lowercased (netkit writes names as
/// its HTTP library keeps them; curl as the server sent them).
fn names_lowercased(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .map(|line| match line.split_once(": ") {
            Some((name, value)) => format!("{}: {value}", name.to_ascii_lowercase()),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn include_with_an_output_file_writes_the_heads_into_it() {
    if !testkit::require("curl") {
        return;
    }
    let recorder = Recorder::start();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Vec<&str>> = vec![vec!["-i"], vec!["-i", "-L"], vec!["-I"]];
    for case in &cases {
        let url = recorder.url("/redirect");
        let mut outputs = Vec::new();
        for program in ["curl", "netkit"] {
            let file = dir.path().join(program);
            let mut args = case.clone();
            args.extend(["-o", file.to_str().unwrap(), &url]);
            let mut command = if program == "curl" {
                let mut curl = Command::new("curl");
                curl.arg("-s");
                curl
            } else {
                let mut netkit = Command::new(env!("CARGO_BIN_EXE_netkit"));
                netkit.args(["web", "get"]);
                netkit
            };
            let out = command.args(&args).output().unwrap();
            assert!(out.status.success(), "{program} {args:?}");
            // Nothing on stdout: the heads went into the file.
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "",
                "{program} {args:?}"
            );
            outputs.push(std::fs::read(&file).unwrap());
        }
        // HEAD is answered 200, GET /redirect 302.
        let first = if case == &["-I"] {
            "200 OK"
        } else {
            "302 Found"
        };
        assert!(
            String::from_utf8_lossy(&outputs[0]).starts_with(&format!("HTTP/1.1 {first}\r\n")),
            "{case:?}"
        );
        assert_eq!(
            names_lowercased(&outputs[1]),
            names_lowercased(&outputs[0]),
            "{case:?}: netkit (left) and curl (right)"
        );
    }
}
