//! A Redis server of a test's own: `redis-server` on a free loopback
//! port, persisting nothing (`--save ''`), in a temporary directory, killed
//! on drop. Never the system's service.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long redis-server may take to answer PING.
const STARTUP: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct Redis {
    dir: PathBuf,
    port: u16,
    /// Extra arguments (`--requirepass`), kept for restarts.
    extra: Vec<String>,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server, or returns `None` (the test is skipped) when
    /// redis-server is not installed, outside CI; under CI a missing
    /// redis-server fails the test.
    pub fn start() -> Option<Redis> {
        Self::start_with(&[])
    }

    /// As [`Redis::start`], with more redis-server arguments.
    pub fn start_with(extra: &[&str]) -> Option<Redis> {
        if !crate::on_path("redis-server") {
            crate::skip_or_fail("redis-server is not installed (see .ci/apt-packages)");
            return None;
        }
        let dir = crate::scratch_dir("redis");
        let mut redis = Redis {
            dir,
            port: 0,
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
        };
        // A free port may be taken between finding it and binding it.
        for _ in 0..5 {
            redis.port = crate::closed_tcp_port().port();
            if redis.launch() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start (log: {})", redis.log());
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again on the same port, empty.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "redis-server did not start again (log: {})",
            self.log()
        );
    }

    /// Starts redis-server; whether it answered PING in time.
    fn launch(&mut self) -> bool {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("log"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the server answers on its port (a password is asked for
    /// by an answer too).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut answer = [0; 64];
        matches!(stream.read(&mut answer), Ok(n) if n > 0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
