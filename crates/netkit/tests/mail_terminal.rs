//! `netkit mail send` on a real terminal, through tmux: the body piped in
//! on stdin (`--body -`) and the password typed at the terminal's prompt.

#[path = "mail/support.rs"]
mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of its own running one shell command in a detached
/// session; killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn run(script: &str) -> Self {
        let terminal = Self {
            socket: format!("netkit-mail-{}", std::process::id()),
        };
        let script = format!("{script}; echo \"exited $?\"; sleep 600");
        let out = terminal
            .tmux(&["new-session", "-d", "-x", "120", "-y", "40", &script])
            .env_remove("NETKIT_SMTP_PASSWORD")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args);
        command
    }

    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p"]).output().unwrap();
        text(&out.stdout)
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {WAIT:?}; the screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, line: &str) {
        let typed = self.tmux(&["send-keys", "-l", line]).status().unwrap();
        let entered = self.tmux(&["send-keys", "Enter"]).status().unwrap();
        assert!(typed.success() && entered.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).output();
    }
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[test]
fn body_from_stdin_and_password_from_the_terminal() {
    if !testkit::require("tmux") || !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("terminal");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--user", "alice", "--auth-without-tls"]);
    let body = dir.write("body.txt", b"Piped in on stdin.\nSecond line.\n");
    let args = [
        env!("CARGO_BIN_EXE_netkit"),
        "mail",
        "send",
        "--timeout",
        "10s",
        "--server",
        &server.addr().to_string(),
        "--allow-plaintext-auth",
        "--user",
        "alice",
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.org",
        "--subject",
        "from a pipe",
        "--body",
        "-",
    ];
    let command: Vec<String> = args.iter().map(|arg| quote(arg)).collect();
    let terminal = Terminal::run(&format!(
        "cat {} | {}",
        quote(body.to_str().unwrap()),
        command.join(" ")
    ));
    terminal.wait_for("Password for alice:");
    terminal.type_line(PASSWORD);
    let screen = terminal.wait_for("exited ");
    assert!(screen.contains("exited 0"), "{screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was echoed:\n{screen}"
    );
    assert!(screen.contains("235 "), "{screen}");

    let received = received(&outdir);
    assert_eq!(received.len(), 1, "{screen}");
    let message = inspect(&received[0].0, None);
    assert_eq!(header(&message, "subject"), ["from a pipe"]);
    let raw = std::fs::read_to_string(&received[0].0).unwrap();
    assert!(
        raw.contains("Piped in on stdin.\r\nSecond line.\r\n"),
        "{raw}"
    );
}
