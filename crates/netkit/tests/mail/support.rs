//! Shared by the mail tests: the netkit binary, aiosmtpd or the sink
//! started by the test, a certificate made for the test, and python3's
//! `email` package to read what arrived.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testkit::Server;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mail")
        .join(name)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    /// In memory (tmpfs) where there is one: for hundreds of MiB that
    /// would otherwise wait on a disk shared with other builds.
    pub fn in_memory(name: &str) -> Self {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            Self::under(shm, name)
        } else {
            Self::new(name)
        }
    }

    fn under(base: &Path, name: &str) -> Self {
        let path = base.join(format!("netkit-mail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for localhost/127.0.0.1, as cert.pem and key.pem.
pub fn certificate(dir: &Scratch) -> (PathBuf, PathBuf) {
    let generated = tls::SelfSigned::generate(&["mx.test.example"]).unwrap();
    (
        dir.write("cert.pem", generated.cert_pem.as_bytes()),
        dir.write("key.pem", generated.key_pem.as_bytes()),
    )
}

/// Whether aiosmtpd can run here (skips, or fails under CI, if not).
pub fn have_aiosmtpd() -> bool {
    if !testkit::require("python3") {
        return false;
    }
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    found || testkit::skip_or_fail("python module aiosmtpd is not installed (.ci/requirements.txt)")
}

/// aiosmtpd saving messages into `outdir`, with `extra` flags of
/// aiosmtpd_server.py (`--cert`, `--implicit`, `--user`, `--reject`, ...).
pub fn aiosmtpd(outdir: &Path, extra: &[&str]) -> Server {
    let mut command = Command::new("python3");
    command
        .arg(fixture("aiosmtpd_server.py"))
        .arg("--outdir")
        .arg(outdir)
        .args(extra)
        .env("TEST_SMTP_PASSWORD", PASSWORD);
    Server::start(command, 1)
}

/// aiosmtpd with a certificate for mx.test.example (STARTTLS, or implicit
/// TLS with `--implicit` in `extra`), saving into `dir/out`: the server,
/// that directory and the certificate (for `--cacert`).
pub fn aiosmtpd_tls(dir: &Scratch, extra: &[&str]) -> (Server, PathBuf, PathBuf) {
    let (cert, key) = certificate(dir);
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let tls = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let server = aiosmtpd(&outdir, &[&tls[..], extra].concat());
    (server, outdir, cert)
}

/// scripted_server.py answering by `script` (see the script for its keys).
pub fn scripted(script: Value) -> Server {
    let mut command = Command::new("python3");
    command
        .arg(fixture("scripted_server.py"))
        .arg(script.to_string());
    Server::start(command, 1)
}

/// The command lines the scripted server read, in order.
pub fn commands(server: &Server) -> Vec<String> {
    std::iter::from_fn(|| server.next_line(std::time::Duration::from_secs(2)))
        .filter_map(|line| line.strip_prefix("C: ").map(str::to_owned))
        .collect()
}

/// Every byte value, several times, and then some: a binary attachment.
pub fn binary_blob(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|i| {
            if i < 512 {
                return (i % 256) as u8;
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `netkit mail sink` on a port of its own, storing into `maildir`, its
/// account's password PASSWORD.
pub fn sink(maildir: &Path, extra: &[&str]) -> Server {
    Server::start(sink_command(maildir, extra), 1)
}

pub fn sink_command(maildir: &Path, extra: &[&str]) -> Command {
    let mut command = netkit();
    command
        .args([
            "mail",
            "sink",
            "--bind",
            "127.0.0.1:0",
            "--web",
            "off",
            "--maildir",
        ])
        .arg(maildir)
        .args(extra)
        .env("NETKIT_SINK_PASSWORD", PASSWORD);
    command
}

/// The messages the sink stored, oldest first.
pub fn stored(maildir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Runs `netkit mail send ARGS` with `env` set and stdin from `stdin`.
pub fn send(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = netkit();
    command
        .args(["mail", "send", "--timeout", "10s", "--ehlo", "client.test"])
        .args(args)
        .env_remove("NETKIT_SMTP_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("netkit runs");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("netkit finishes");
    writer.join().unwrap();
    output
}

/// The files aiosmtpd saved: `(message bytes path, envelope JSON)`, in order.
pub fn received(outdir: &Path) -> Vec<(PathBuf, Value)> {
    let mut found = Vec::new();
    for n in 0.. {
        let eml = outdir.join(format!("{n}.eml"));
        if !eml.exists() {
            break;
        }
        let meta = std::fs::read_to_string(outdir.join(format!("{n}.eml.json"))).unwrap();
        found.push((eml, serde_json::from_str(&meta).unwrap()));
    }
    found
}

/// The message at `path` as python's `email` package sees it; decoded
/// payloads are extracted into `extract` when given.
pub fn inspect(path: &Path, extract: Option<&Path>) -> Value {
    let mut command = Command::new("python3");
    command.arg(fixture("inspect_message.py")).arg(path);
    if let Some(dir) = extract {
        std::fs::create_dir_all(dir).unwrap();
        command.arg(dir);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "inspect: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The header's values (lower-case name), as the parser decoded them.
pub fn header<'a>(message: &'a Value, name: &str) -> Vec<&'a str> {
    message["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The leaf parts (multipart containers have a "multipart" key instead).
pub fn parts(message: &Value) -> &Vec<Value> {
    message["parts"].as_array().unwrap()
}
