//! A PostgreSQL server of a test's own: `initdb` into a temporary
//! directory, `pg_ctl` listening on a free loopback port and on a Unix
//! socket in that directory, stopped (`-m immediate`) and removed on drop.
//! Never the system's service. PostgreSQL refuses to run as root, and
//! tests run as root in CI, so there its tools run as `nobody`, who owns
//! the directory. TCP connections need the password [`PASSWORD`] of the
//! superuser [`USER`]; the socket trusts whoever can reach it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser the cluster is made with, and its password.
pub const USER: &str = "netkit";
pub const PASSWORD: &str = "netkit-test-secret";
/// The database made for the test.
pub const DATABASE: &str = "chat";

/// Where Debian keeps PostgreSQL's programs off PATH.
const DEBIAN_BIN: &str = "/usr/lib/postgresql";

#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin: Tools,
    port: u16,
    /// Whether it serves TLS (`ssl=on`) with `server.crt`/`server.key`.
    tls: bool,
}

#[derive(Debug)]
struct Tools {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

impl Postgres {
    /// Starts a server with a database [`DATABASE`], or returns `None`
    /// (the test is skipped) when PostgreSQL is not installed, outside
    /// CI; under CI a missing PostgreSQL fails the test.
    pub fn start() -> Option<Postgres> {
        Self::start_with(None)
    }

    /// As [`Postgres::start`], also serving TLS with the PEM certificate
    /// chain and key given; plain connections are still accepted.
    pub fn start_with_tls(cert: &str, key: &str) -> Option<Postgres> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Postgres> {
        let tools = (|| {
            Some(Tools {
                initdb: tool("initdb")?,
                pg_ctl: tool("pg_ctl")?,
                psql: tool("psql")?,
            })
        })();
        let Some(bin) = tools else {
            crate::skip_or_fail(
                "PostgreSQL (initdb, pg_ctl, psql) is not installed (see .ci/apt-packages)",
            );
            return None;
        };
        let dir = crate::scratch_dir("pg");
        let mut postgres = Postgres {
            dir,
            bin,
            port: 0,
            tls: tls.is_some(),
        };
        postgres.give_away(&postgres.dir);
        if let Some((cert, key)) = tls {
            // PostgreSQL wants its key readable by its owner only.
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = postgres.dir.join(name);
                std::fs::write(&path, pem).expect("write the TLS files");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("chmod the TLS files");
                postgres.give_away(&path);
            }
        }
        let pwfile = postgres.dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        postgres.give_away(&pwfile);
        let data = postgres.data();
        let initdb = postgres
            .command(&postgres.bin.initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--no-locale", "--no-sync"])
            .output()
            .expect("initdb runs");
        check(&initdb, "initdb");
        // A free port may be taken between finding it and binding it: try
        // a few.
        let mut started = None;
        for _ in 0..5 {
            postgres.port = crate::closed_tcp_port().port();
            let output = postgres.pg_ctl_start();
            let up = output.status.success();
            started = Some(output);
            if up {
                break;
            }
        }
        let started = started.expect("pg_ctl was run");
        check(
            &started,
            &format!("pg_ctl start (log: {})", postgres.log_tail()),
        );
        postgres.psql(&format!("CREATE DATABASE {DATABASE}"));
        Some(postgres)
    }

    /// `postgres://netkit@127.0.0.1:PORT/chat`, no password in it.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The same database over the Unix socket, where no password is
    /// asked: `postgres://netkit@%2Ftmp%2F…/chat`.
    pub fn socket_url(&self) -> String {
        let dir = self.dir.display().to_string().replace('/', "%2F");
        format!("postgres://{USER}@{dir}:{}/{DATABASE}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`-m fast`: sessions are ended) and waits for it.
    pub fn stop(&self) {
        let output = self
            .command(&self.bin.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("pg_ctl runs");
        check(&output, "pg_ctl stop");
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        let output = self.pg_ctl_start();
        check(&output, &format!("pg_ctl start (log: {})", self.log_tail()));
    }

    /// Runs SQL in [`DATABASE`] (or `postgres` while it is being made)
    /// over the Unix socket; returns what psql printed (unaligned, tuples
    /// only).
    pub fn psql(&self, sql: &str) -> String {
        let db = if sql.starts_with("CREATE DATABASE") {
            "postgres"
        } else {
            DATABASE
        };
        let output = self
            .command(&self.bin.psql)
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        check(&output, &format!("psql -c {sql:?}"));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl_start(&self) -> Output {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        if self.tls {
            let dir = self.dir.display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
            ));
        }
        self.command(&self.bin.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("pg_ctl runs")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `tool`, as `nobody` when the test runs as root.
    fn command(&self, tool: &Path) -> Command {
        let mut command = if crate::is_root() {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(tool);
            command
        } else {
            Command::new(tool)
        };
        command.current_dir(&self.dir);
        command
    }

    /// Makes `path` belong to whoever runs PostgreSQL.
    fn give_away(&self, path: &Path) {
        if crate::is_root() {
            let status = Command::new("chown")
                .arg("nobody:nogroup")
                .arg(path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown nobody:nogroup {}", path.display());
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command(&self.bin.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `name` on PATH, else in the newest of Debian's versioned directories.
fn tool(name: &str) -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        let found = std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| crate::is_executable(path));
        if found.is_some() {
            return found;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_BIN)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| crate::is_executable(path))
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path)
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
