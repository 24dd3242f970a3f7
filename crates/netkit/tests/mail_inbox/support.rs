//! Shared by the inbox tests: `netkit mail sink` with its web inbox on
//! ports of its own, the API read with curl, messages sent with swaks and
//! Python's smtplib.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testkit::Server;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mail_inbox")
        .join(name)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A sink with its web inbox, storing into `maildir`.
pub struct Inbox {
    pub server: Server,
    pub smtp: SocketAddr,
    pub web: SocketAddr,
    pub maildir: PathBuf,
}

impl Inbox {
    pub fn start(maildir: &Path, extra: &[&str]) -> Inbox {
        let mut command = Command::new(env!("CARGO_BIN_EXE_netkit"));
        command
            .args([
                "mail",
                "sink",
                "--bind",
                "127.0.0.1:0",
                "--web",
                "127.0.0.1:0",
                "--no-tls",
            ])
            .arg("--maildir")
            .arg(maildir)
            .args(extra);
        Self::from_command(command, maildir)
    }

    pub fn from_command(command: Command, maildir: &Path) -> Inbox {
        let server = Server::start(command, 2);
        let (smtp, web) = (server.addrs()[0], server.addrs()[1]);
        Inbox {
            server,
            smtp,
            web,
            maildir: maildir.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.web)
    }

    /// curl with `args` on `path`: (HTTP status, body).
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl {path}: {}", text(&out.stderr));
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').unwrap();
        let status = std::str::from_utf8(&body[split + 1..])
            .unwrap()
            .parse()
            .unwrap();
        body.truncate(split);
        (status, body)
    }

    pub fn get(&self, path: &str) -> Vec<u8> {
        let (status, body) = self.curl(&[], path);
        assert_eq!(status, 200, "GET {path}: {}", text(&body));
        body
    }

    pub fn json(&self, path: &str) -> Value {
        serde_json::from_slice(&self.get(path)).unwrap()
    }

    /// The one message whose Message-ID is `message_id`.
    pub fn find(&self, message_id: &str) -> Value {
        let listing = self.json("/api/v1/messages?limit=1000");
        listing["Messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["MessageID"] == message_id)
            .cloned()
            .unwrap_or_else(|| panic!("no message {message_id} in {listing:#}"))
    }

    /// The file the sink stored for message `id`.
    pub fn stored(&self, id: &str) -> Vec<u8> {
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.maildir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                if name == id || name.starts_with(&format!("{id}:2,")) {
                    return std::fs::read(path).unwrap();
                }
            }
        }
        panic!("no file for {id} in {}", self.maildir.display());
    }

    /// Sends with smtplib_send.py; returns the bytes it sent.
    pub fn smtplib(&self, kind: &str, remote: &str) -> Vec<u8> {
        let out = Command::new("python3")
            .arg(fixture("smtplib_send.py"))
            .args([
                &self.smtp.ip().to_string(),
                &self.smtp.port().to_string(),
                kind,
                remote,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "smtplib: {}", text(&out.stderr));
        out.stdout
    }

    /// Sends `data` (a whole message, CRLF line ends) with swaks.
    pub fn swaks(&self, data: &[u8], dir: &Path) -> Output {
        let file = dir.join("swaks-message.eml");
        std::fs::write(&file, data).unwrap();
        let out = Command::new("swaks")
            .args(["--server", &self.smtp.ip().to_string()])
            .args(["--port", &self.smtp.port().to_string()])
            .args(["--from", "swaks@example.org", "--to", "rcpt@example.org"])
            .args(["--helo", "swaks.test"])
            .arg("--data")
            .arg(format!("@{}", file.display()))
            .stdin(Stdio::null())
            .output()
            .expect("swaks runs");
        assert!(
            out.status.success(),
            "swaks: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

/// Whether the tools these tests drive are here (a skip, or under CI a
/// failure, if not).
pub fn tools() -> bool {
    testkit::require("curl") && testkit::require("python3") && testkit::require("swaks")
}
