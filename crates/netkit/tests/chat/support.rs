//! Test support for `netkit chat`: a server on port 0 with its own database
//! (an SQLite file in its own directory, or a PostgreSQL server of its
//! own), clients driven through piped stdin/stdout, and a raw protocol
//! client for what the netkit client would never send.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chat::direct::SessionKey;
use chat::frame::{
    ClientFrame, Credentials, PROTOCOL_VERSION, Password, ServerFrame, decode, encode,
};
use testkit::Server;
use testkit::postgres::{self, Postgres};

/// How long any expected line may take to appear.
pub const WAIT: Duration = Duration::from_secs(20);

/// netkit, given the test PostgreSQL's password as an operator would (in
/// the environment, never on the command line).
pub fn netkit() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netkit"));
    command.env("PGPASSWORD", postgres::PASSWORD);
    command
}

/// Runs each named test, a `fn(Scratch)`, twice: as `sqlite::NAME` with
/// the default SQLite file, and as `postgres::NAME` on a PostgreSQL server
/// of its own, so one suite covers both stores.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Scratch::new());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(scratch) = $crate::support::Scratch::postgres() {
                        super::$name(scratch);
                    }
                }
            )*
        }
    };
}

/// A directory of its own for each test, removed afterwards, and the
/// PostgreSQL server of a test on that store.
#[derive(Debug)]
pub struct Scratch(pub PathBuf, Option<Postgres>);

impl Scratch {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netkit-chat-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir, None)
    }

    /// A scratch whose database is a PostgreSQL server of its own; `None`
    /// when the test is skipped (no PostgreSQL, outside CI).
    pub fn postgres() -> Option<Self> {
        let postgres = Postgres::start()?;
        let mut scratch = Self::new();
        scratch.1 = Some(postgres);
        Some(scratch)
    }

    /// The `--db` of this test's server: `chat.sqlite3` in the directory,
    /// or the PostgreSQL URL.
    pub fn db(&self) -> OsString {
        match &self.1 {
            Some(postgres) => postgres.url().into(),
            None => self.path("chat.sqlite3").into(),
        }
    }

    pub fn postgres_server(&self) -> Option<&Postgres> {
        self.1.as_ref()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chat server process with fast timeouts for tests.
pub struct ChatServer {
    pub server: Server,
    pub addr: SocketAddr,
    pub db: OsString,
}

impl ChatServer {
    pub fn start(scratch: &Scratch, extra: &[&str]) -> Self {
        Self::start_with_db(scratch.db(), extra)
    }

    pub fn start_with_db(db: impl AsRef<OsStr>, extra: &[&str]) -> Self {
        let db = db.as_ref();
        let mut command = netkit();
        command
            .args(["chat", "serve", "--bind", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(["--users-interval", "20ms", "--grace", "2s"])
            .args(extra);
        let server = Server::start(command, 1);
        let addr = server.addr();
        Self {
            server,
            addr,
            db: db.to_owned(),
        }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}

/// A `netkit chat join` process: commands in on stdin, lines out on stdout.
pub struct Member {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Member {
    pub fn register(server: &str, name: &str, password: &str) -> Self {
        let member = Self::spawn(server, name, password, &["--register"]);
        member.connected()
    }

    pub fn login(server: &str, name: &str, password: &str) -> Self {
        Self::spawn(server, name, password, &[]).connected()
    }

    /// Starts a client without waiting for it to connect.
    pub fn spawn(server: &str, name: &str, password: &str, extra: &[&str]) -> Self {
        Self::spawn_logging(server, name, password, extra, "warn")
    }

    /// Starts a client that logs to stderr at `log` (a `RUST_LOG` filter).
    pub fn spawn_logging(
        server: &str,
        name: &str,
        password: &str,
        extra: &[&str],
        log: &str,
    ) -> Self {
        let mut child = netkit()
            .args(["chat", "join", "--server", server, "--user", name])
            .args(extra)
            .env("NETKIT_CHAT_PASSWORD", password)
            .env("RUST_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("netkit runs");
        let lines = forward(child.stdout.take().unwrap());
        let stderr = forward(child.stderr.take().unwrap());
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    pub fn connected(mut self) -> Self {
        self.expect("* connected to");
        self
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("client reads stdin");
        stdin.flush().unwrap();
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{}: no line with {needle:?} within {WAIT:?}; saw {:#?}; stderr {:?}",
                    self.name,
                    self.seen,
                    self.stderr_now()
                ),
            }
        }
    }

    /// Every line seen so far (and any arriving within `settle`) containing
    /// `needle`.
    pub fn count(&mut self, needle: &str, settle: Duration) -> usize {
        let deadline = Instant::now() + settle;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits for a line containing `needle` on stderr; returns it.
    pub fn expect_logged(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{}: nothing logged with {needle:?}", self.name),
            }
        }
    }

    pub fn stderr_now(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the process to end; returns its status and stderr.
    pub fn finish(mut self) -> (ExitStatus, String, Vec<String>) {
        drop(self.stdin.take());
        self.finish_when_closed()
    }

    /// Waits for the process to end by itself, its stdin still open.
    pub fn finish_when_closed(mut self) -> (ExitStatus, String, Vec<String>) {
        let status = testkit::wait_timeout(&mut self.child, WAIT).expect("client exits");
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.try_iter());
        // The forwarding threads end with the process's pipes.
        thread::sleep(Duration::from_millis(50));
        seen.extend(self.lines.try_iter());
        let stderr = self.stderr.try_iter().collect::<Vec<_>>().join("\n");
        (status, stderr, seen)
    }

    pub fn quit(mut self) -> ExitStatus {
        self.send("#quit");
        self.finish().0
    }

    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs a one-shot `netkit` command with a password in the environment.
pub fn run_with_password(args: &[&str], password: &str) -> std::process::Output {
    netkit()
        .args(args)
        .env("NETKIT_CHAT_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A protocol client written against the wire, for hostile input.
pub struct Raw {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub key: SessionKey,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).unwrap())
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut raw = Self {
            stream,
            reader,
            key: SessionKey::generate(),
        };
        match raw.frame() {
            Some(ServerFrame::Hello { version, .. }) => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("expected hello, got {other:?}"),
        }
        raw
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, frame: &ClientFrame) {
        let line = encode(frame).unwrap();
        self.send_bytes(&line);
    }

    pub fn credentials(&self, name: &str, password: &str) -> Credentials {
        Credentials {
            version: PROTOCOL_VERSION,
            name: name.into(),
            password: Password::new(password),
            udp_port: Some(9),
            key: self.key.public().to_base64(),
        }
    }

    /// Registers (or logs in) and reads up to the complete user list.
    pub fn join(&mut self, name: &str, password: &str, register: bool) {
        let credentials = self.credentials(name, password);
        self.send(&if register {
            ClientFrame::Register(credentials)
        } else {
            ClientFrame::Login(credentials)
        });
        match self.frame() {
            Some(ServerFrame::Welcome { .. }) => {}
            other => panic!("expected welcome, got {other:?}"),
        }
        self.until(|frame| matches!(frame, ServerFrame::Users { more: false, .. }));
    }

    /// The next line as raw bytes, without its newline; `None` at the end.
    pub fn line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                line.pop();
                Some(line)
            }
        }
    }

    /// The next frame; `None` once the server has closed the connection.
    pub fn frame(&mut self) -> Option<ServerFrame> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                decode(line.strip_suffix(b"\n").unwrap_or(&line)).expect("server frames decode"),
            ),
        }
    }

    /// Reads frames until one matches; returns it.
    pub fn until(&mut self, wanted: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        let mut seen = Vec::new();
        loop {
            match self.frame() {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => seen.push(frame),
                None => panic!("connection closed; saw {seen:#?}"),
            }
        }
    }

    /// Reads until the server closes; returns the `bye` it sent, if any.
    pub fn bye(&mut self) -> Option<ServerFrame> {
        let mut bye = None;
        while let Some(frame) = self.frame() {
            if let ServerFrame::Bye { .. } = frame {
                bye = Some(frame);
            }
        }
        bye
    }
}
