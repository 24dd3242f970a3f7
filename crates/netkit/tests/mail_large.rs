//! `netkit mail send` with big attachments: 200 MiB streamed through the
//! sink in bounded memory, and the DATA progress bar (and the password
//! prompt) on a terminal.

#[path = "mail/support.rs"]
mod support;

use std::io::{BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// The attachment: a 1 MiB pseudo-random block, repeated.
fn block() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_200_mib_attachment_streams_in_bounded_memory() {
    const MIB: usize = 1 << 20;
    let dir = Scratch::in_memory("sink-big");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &["--max-size", "400M"]);
    let block = block();
    let path = dir.join("big.bin");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..200 {
            file.write_all(&block).unwrap();
        }
    }
    let mut child = netkit()
        .args([
            "mail",
            "send",
            "--server",
            &server.addr().to_string(),
            "--hide-data",
            "--tls",
            "--insecure",
        ])
        .args([
            "--from",
            "big@example.org",
            "--to",
            "inbox@example.org",
            "--subject",
            "big",
        ])
        .arg("--attach")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        BufReader::new(stdout).read_to_string(&mut all).unwrap();
        BufReader::new(stderr).read_to_string(&mut all).unwrap();
        all
    });
    let mut peak = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(rss) = resident_kib(pid) {
            peak = peak.max(rss);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let transcript = reader.join().unwrap();
    assert!(status.success(), "{transcript}");
    assert!(samples > 10, "only {samples} samples of VmRSS");
    assert!(
        peak < 64 * 1024,
        "netkit resident memory peaked at {peak} KiB"
    );
    assert!(transcript.contains("SIZE="), "{transcript}");
    assert!(transcript.contains("=== TLS started"), "{transcript}");
    assert!(transcript.contains("=== message body of "), "{transcript}");
    assert!(
        !transcript.contains("MiB/"),
        "a progress bar only on a terminal: {transcript}"
    );
    assert!(
        !transcript.contains("Content-Type"),
        "--hide-data: {transcript}"
    );

    // The stored attachment decodes to the same bytes (python3's base64).
    let files = stored(&maildir);
    assert_eq!(files.len(), 1);
    let out = testkit::python(
        SAME_ATTACHMENT,
        &[files[0].to_str().unwrap(), path.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("same {}", 200 * MIB));
}

/// Decodes the one base64 part of a stored message and compares it with
/// the original file.
const SAME_ATTACHMENT: &str = r#"
import base64, sys
data = open(sys.argv[1], "rb").read()
start = data.index(b"Content-Transfer-Encoding: base64\r\n\r\n") + 37
end = data.index(b"\r\n--", start)
encoded = data[start:end]
assert max(map(len, encoded.split(b"\r\n"))) <= 76
assert not encoded.startswith(b".") and b"\r\n." not in encoded
decoded = base64.b64decode(encoded)
original = open(sys.argv[2], "rb").read()
print("same %d" % len(decoded) if decoded == original else "different")
"#;

/// On a terminal: the password is asked for without echo, and the DATA
/// upload shows a progress bar on stderr.
const ON_A_TERMINAL: &str = r#"
import os, pty, select, sys, time
netkit, addr, attachment = sys.argv[1:4]
env = dict(os.environ)
env.pop("NETKIT_SMTP_PASSWORD", None)
pid, fd = pty.fork()
if pid == 0:
    os.execve(netkit, [netkit, "mail", "send", "--server", addr, "--tls", "--insecure",
        "--user", "demo", "--from", "a@example.org", "--to", "b@example.org",
        "--hide-data", "--attach", attachment], env)
seen = b""
def read_until(done):
    global seen
    deadline = time.time() + 30
    while not done() and time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk
read_until(lambda: b"Password for demo: " in seen)
os.write(fd, sys.stdin.buffer.read())
read_until(lambda: False)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn password_prompt_and_progress_bar_on_a_terminal() {
    if !testkit::require("python3") {
        return;
    }
    let dir = Scratch::new("sink-terminal");
    let maildir = dir.join("maildir");
    let server = sink(&maildir, &[]);
    let attachment = dir.join("four-mib.bin");
    std::fs::write(&attachment, block().repeat(4)).unwrap();
    let typed = format!("{PASSWORD}\n");
    let out = testkit::python(
        ON_A_TERMINAL,
        &[
            env!("CARGO_BIN_EXE_netkit"),
            &server.addr().to_string(),
            attachment.to_str().unwrap(),
        ],
        typed.as_bytes(),
    );
    let seen = text(&out.stdout);
    assert!(out.status.success(), "{seen}\n{}", text(&out.stderr));
    assert!(seen.contains(" ~> AUTH PLAIN ********"), "{seen}");
    assert!(!seen.contains(PASSWORD), "the password was echoed: {seen}");
    assert!(
        seen.contains("DATA ") && seen.contains("MiB/"),
        "no progress bar: {seen}"
    );
    assert!(seen.contains("<~  250 2.0.0 OK queued"), "{seen}");
    assert_eq!(stored(&maildir).len(), 1);
}
