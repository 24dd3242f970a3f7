//! Support for integration tests: start a server process and learn the
//! address it bound, require the outside tools a test drives, and run a
//! PostgreSQL or Redis server of a test's own.
//!
//! A test that needs a tool or privilege the machine lacks is skipped with a
//! note on stderr during development, but fails under `CI=true`: CI installs
//! everything and runs as root, so a skip there would hide a broken test.

mod netns;
pub mod postgres;
pub mod redis;

pub use netns::Netns;
pub use postgres::Postgres;
pub use redis::Redis;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening on` lines.
const STARTUP: Duration = Duration::from_secs(20);

/// A fresh directory under the temp dir for one server a test runs
/// (`netkit-KIND-PID-N`); the server's guard removes it.
fn scratch_dir(kind: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "netkit-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("create {}: {err}", dir.display()));
    dir
}

pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("yes")
    )
}

/// Whether the test may go on: true if `tool` is on PATH. Otherwise fails
/// under CI, and elsewhere prints why the test is skipped and returns false.
pub fn require(tool: &str) -> bool {
    if on_path(tool) {
        return true;
    }
    skip_or_fail(&format!("`{tool}` is not installed (see .ci/run)"))
}

/// Whether the test may go on: true when running as root.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    skip_or_fail("this test needs root (raw sockets or network namespaces)")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// Fails under CI; elsewhere notes the skip and returns false.
pub fn skip_or_fail(why: &str) -> bool {
    assert!(!in_ci(), "required under CI=true: {why}");
    eprintln!("SKIPPED: {why}");
    false
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(tool)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A server process, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addrs: Vec<SocketAddr>,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `command` and waits until it has printed `listening on ADDR`
    /// `listeners` times. Its stdout is captured; stderr is inherited so a
    /// failing test shows the server's log.
    pub fn start(mut command: Command, listeners: usize) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let lines = forward_lines(child.stdout.take().expect("stdout is piped"));
        let deadline = Instant::now() + STARTUP;
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => addrs.extend(listening_addr(&line)),
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "{command:?} printed {} of {listeners} `listening on` lines (exit: {status:?})",
                        addrs.len()
                    );
                }
            }
        }
        Server {
            child,
            addrs,
            lines,
        }
    }

    /// The first address the server printed.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the server prints on stdout, if one comes within `wait`.
    pub fn next_line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, limit)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn forward_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The address in a `listening on ADDR` line. A scheme (`http://`) before
/// the address and anything after it (` (udp)`) are allowed.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let token = rest.split_whitespace().next()?;
    let token = token.split("://").last()?;
    token.trim_end_matches('/').parse().ok()
}

/// Runs a python3 script given as text, with `args`, feeding `stdin`.
pub fn python(script: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("python3 finishes");
    writer.join().expect("stdin writer");
    output
}

/// A port on `127.0.0.1` that nothing listens on (bound, then released).
pub fn closed_tcp_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr")
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn parses_listening_lines() {
        let addr = "127.0.0.1:8080".parse().ok();
        assert_eq!(listening_addr("listening on 127.0.0.1:8080"), addr);
        assert_eq!(listening_addr("listening on 127.0.0.1:8080 (tcp)"), addr);
        assert_eq!(listening_addr("listening on http://127.0.0.1:8080/"), addr);
        assert_eq!(
            listening_addr("listening on [::1]:53"),
            "[::1]:53".parse().ok()
        );
        assert_eq!(listening_addr("started"), None);
    }
}
